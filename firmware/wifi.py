# The Wi-Fi manager: joins the strongest known network, notices a lost link and re-joins, and
# when no known network works for a number of rounds brings up the provisioning access point.
# poll() never blocks for long: the reading loop goes on while the link is down. While the link
# is up only the check of it stays on the heap; joining (firmware/wifi_join.py) and the access
# point (firmware/provision.py) are loaded when the link is down and dropped once it is up.
from micropython import const

from firmware.unload import drop

_LINK_CHECK_MS = const(1000)


class WifiManager:
    def __init__(self, sta, networks, clock, backoff, log, attempt_ms, rounds_before_ap, ap, board):
        self.sta = sta  # network.WLAN(STA_IF), or anything with its methods
        self.networks = networks  # [{"ssid": ..., "password": ...}] from secrets.json
        self.clock = clock
        self.backoff = backoff  # (base_ms, cap_ms, randbits): firmware/backoff.py
        self.failures = 0  # failed join rounds in a row
        self.log = log
        self.attempt_ms = attempt_ms
        self.rounds_before_ap = rounds_before_ap  # 0: never start the access point
        self.ap = ap  # the provisioning access point's (ssid, password or None)
        # Asked only while the link is down, so that nothing of it is held while it is up:
        # join_failures() (status() value -> reason that ends an attempt early) and reset().
        self.board = board
        self.up = False
        self.current = None  # the network joined, or being tried
        self.checked = 0  # when a working link was last looked at
        self.join = None  # the join under way (wifi_join.Join) while the link is down

    def due_in(self, now):
        # Milliseconds until poll() has something to do: the next check of a working link, or
        # the join's next step.
        if self.up:
            return self.clock.ticks_diff(self.clock.ticks_add(self.checked, _LINK_CHECK_MS), now)
        return 0 if self.join is None else self.join.due_in(now)

    def poll(self, now):
        if self.up:
            # Once a second is soon enough: a dead link also fails the MQTT session's next read.
            if self.clock.ticks_diff(now, self.checked) < _LINK_CHECK_MS:
                return
            self.checked = now
            if not self.sta.isconnected():
                self.log("wifi", "link to %r lost; re-joining" % self.current)
                self.up = False
            return
        if self.join is None:
            from firmware.wifi_join import Join

            self.join = Join(self)
        if self.join.poll(now):
            self.join = None
            drop("wifi_join", "provision")

    def rssi(self):
        try:
            return self.sta.status("rssi")
        except (OSError, ValueError):
            return None

    def ip(self):
        return self.sta.ifconfig()[0] if self.up else None
