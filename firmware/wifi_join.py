# Joining while the link is down: scanning, ordering the known networks, one attempt after the
# other, backing off between rounds, and the provisioning access point when no known network
# works for a number of rounds. firmware/wifi.py loads this module when the link goes down and
# drops it (with the access point's) once a network is joined.
from micropython import const

_SCAN = const(0)  # next: scan and order the known networks
_JOIN = const(1)  # a join attempt is under way
_WAIT = const(2)  # between rounds, backing off
_JOIN_POLL_MS = const(100)


def strongest(scan):
    # {ssid: (rssi, open)} of the named networks in a scan, each at its strongest.
    best = {}
    for row in scan:
        try:
            ssid = row[0].decode()
        except UnicodeError:
            continue
        if ssid and (ssid not in best or row[3] > best[ssid][0]):
            best[ssid] = (row[3], row[4] == 0)
    return best


def order_networks(known, scan):
    # Known networks seen in the scan, strongest first, then the unseen ones (hidden SSIDs).
    best = strongest(scan)
    seen = [n for n in known if n["ssid"] in best]
    seen.sort(key=lambda n: -best[n["ssid"]][0])
    return seen + [n for n in known if n["ssid"] not in best]


class Join:
    # The rounds of join attempts for a WifiManager whose link is down. The setup portal is given
    # this object: scan(), join_now(net), and asked / asked_fail for its page.
    def __init__(self, wifi):
        self.wifi = wifi
        self.fail_codes = wifi.board.join_failures()  # status() value -> reason, for this outage
        self.state = _SCAN
        self.queue = []
        self.deadline = 0
        self.failed_rounds = 0
        self.ap = None  # the provisioning access point (firmware/provision.py) once started
        self.asked = None  # the network the setup page asked for, and why its last join failed
        self.asked_fail = None

    def due_in(self, now):
        # The end of a backoff wait, the next look at a join under way, or a round to start now;
        # the setup portal's clients are served between Wi-Fi's own steps.
        if self.state == _WAIT:
            due = self.wifi.clock.ticks_diff(self.deadline, now)
        else:
            due = _JOIN_POLL_MS if self.state == _JOIN else 0
        if self.ap is not None:
            due = min(due, self.ap.due_in(now))
        return due

    def poll(self, now):
        # True once a network is joined: the access point is down and this object is done.
        if self.ap is not None:
            self.ap.poll(now)
        if self.state == _WAIT:
            if self.wifi.clock.ticks_diff(now, self.deadline) >= 0:
                self.state = _SCAN  # the round starts at the next poll
            return False
        if self.state == _SCAN:
            self._start_round(now)
        return self.state == _JOIN and self._check_join(now)

    def scan(self):
        # (ssid, bssid, channel, rssi, security, hidden) rows, for the setup page.
        sta = self.wifi.sta
        sta.active(True)
        return sta.scan()

    def join_now(self, net):
        # A network given on the setup page: first in the list and tried at once; the access
        # point stays up until a join works.
        wifi = self.wifi
        ssid = net["ssid"]
        wifi.networks = [net] + [n for n in wifi.networks if n["ssid"] != ssid]
        self.asked = ssid
        self.asked_fail = None
        if self.state == _JOIN:
            wifi.sta.disconnect()
        self.state = _SCAN

    def _failed(self, reason):
        self.wifi.log("wifi", "join %r failed (%s)" % (self.wifi.current, reason))
        if self.wifi.current == self.asked:
            self.asked_fail = reason

    def _start_round(self, now):
        wifi = self.wifi
        if not wifi.networks:
            self._round_failed(now, "no Wi-Fi networks in secrets.json")
            return
        wifi.sta.active(True)
        try:
            scan = wifi.sta.scan()
        except OSError as e:
            wifi.log("wifi", "scan failed (%s); trying known networks in config order" % e)
            scan = ()
        self.queue = order_networks(wifi.networks, scan)
        self._next_network(now)

    def _next_network(self, now):
        wifi = self.wifi
        if not self.queue:
            self._round_failed(now, "no known network could be joined")
            return
        net = self.queue.pop(0)
        wifi.current = net["ssid"]
        wifi.log("wifi", "joining %r" % wifi.current)
        try:
            wifi.sta.connect(net["ssid"], net["password"])
        except OSError as e:
            self._failed("at once: %s" % e)
            self._next_network(now)
            return
        self.deadline = wifi.clock.ticks_add(now, wifi.attempt_ms)
        self.state = _JOIN

    def _check_join(self, now):
        wifi = self.wifi
        if wifi.sta.isconnected():
            wifi.up = True
            wifi.checked = now
            wifi.failures = 0
            wifi.log(
                "wifi", "joined %r (rssi %s dBm, ip %s)" % (wifi.current, wifi.rssi(), wifi.ip())
            )
            if self.ap is not None:
                self.ap.stop()
                self.ap = None
            return True
        status = wifi.sta.status()
        if status in self.fail_codes:
            reason = self.fail_codes[status]
        elif wifi.clock.ticks_diff(now, self.deadline) >= 0:
            reason = "no answer in %d s" % (wifi.attempt_ms // 1000)
        else:
            return False
        self._failed(reason)
        wifi.sta.disconnect()
        self._next_network(now)
        return False

    def _round_failed(self, now, why):
        wifi = self.wifi
        self.failed_rounds += 1
        from firmware.backoff import next_wait
        from firmware.unload import drop

        wait = next_wait(wifi)
        drop("backoff")
        self.deadline = wifi.clock.ticks_add(now, wait)
        self.state = _WAIT
        wifi.log("wifi", "%s (round %d); retry in %d s" % (why, self.failed_rounds, wait // 1000))
        if (
            wifi.rounds_before_ap
            and self.ap is None
            and self.failed_rounds >= wifi.rounds_before_ap
        ):
            self.start_ap()

    def start_ap(self):
        # The access point's code is loaded only now: most boards never need it.
        from firmware.provision import AccessPoint

        wifi = self.wifi
        ssid, password = wifi.ap
        self.ap = AccessPoint(ssid, password, wifi.log, wifi.clock, wifi.board.reset)
        self.ap.start(self)
