# The Wi-Fi manager: joins the strongest known network, notices a lost link and re-joins, and
# when no known network works for a number of rounds brings up the provisioning access point.
# poll() never blocks for long: the reading loop goes on while the link is down.
from micropython import const

_SCAN = const(0)  # next: scan and order the known networks
_JOIN = const(1)  # a join attempt is under way
_WAIT = const(2)  # between rounds, backing off
_UP = const(3)
_JOIN_POLL_MS = const(100)
_LINK_CHECK_MS = const(1000)


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


class WifiManager:
    def __init__(
        self, sta, networks, clock, backoff, log, attempt_ms, rounds_before_ap, ap, fail_codes=None
    ):
        self.sta = sta  # network.WLAN(STA_IF), or anything with its methods
        self.networks = networks  # [{"ssid": ..., "password": ...}] from secrets.json
        self.clock = clock
        self.backoff = backoff
        self.log = log
        self.attempt_ms = attempt_ms
        self.rounds_before_ap = rounds_before_ap  # 0: never start the access point
        self.ap = ap  # the provisioning access point: start() and stop()
        self.fail_codes = fail_codes or {}  # status() value -> reason that ends an attempt early
        self.state = _SCAN
        self.queue = []
        self.current = None
        self.deadline = 0
        self.failed_rounds = 0
        self.ap_started = False
        self.checked = 0  # when a working link was last looked at
        self.asked = None  # the network the setup page asked for, and why its last join failed
        self.asked_fail = None

    @property
    def up(self):
        return self.state == _UP

    def due_in(self, now):
        # Milliseconds until poll() has something to do: the end of a backoff wait, the next look
        # at a join under way, or the next check of a working link.
        if self.state == _WAIT:
            due = self.clock.ticks_diff(self.deadline, now)
        elif self.state == _UP:
            due = self.clock.ticks_diff(self.clock.ticks_add(self.checked, _LINK_CHECK_MS), now)
        else:
            due = _JOIN_POLL_MS if self.state == _JOIN else 0
        if self.ap_started:  # the setup portal's clients are served between Wi-Fi's own steps
            due = min(due, self.ap.due_in(now))
        return due

    def poll(self, now):
        if self.ap_started:
            self.ap.poll(now)
        if self.state == _UP:
            # Once a second is soon enough: a dead link also fails the MQTT session's next read.
            if self.clock.ticks_diff(now, self.checked) < _LINK_CHECK_MS:
                return
            self.checked = now
            if not self.sta.isconnected():
                self.log("wifi", "link to %r lost; re-joining" % self.current)
                self.state = _SCAN
            return
        if self.state == _WAIT:
            if self.clock.ticks_diff(now, self.deadline) >= 0:
                self.state = _SCAN
            return
        if self.state == _SCAN:
            self._start_round(now)
        if self.state == _JOIN:
            self._check_join(now)

    def scan(self):
        # (ssid, bssid, channel, rssi, security, hidden) rows, for the setup page.
        self.sta.active(True)
        return self.sta.scan()

    def join_now(self, net):
        # A network given on the setup page: first in the list and tried at once; the access
        # point stays up until a join works.
        ssid = net["ssid"]
        self.networks = [net] + [n for n in self.networks if n["ssid"] != ssid]
        self.asked = ssid
        self.asked_fail = None
        if self.state == _JOIN:
            self.sta.disconnect()
        if self.state != _UP:
            self.state = _SCAN

    def _failed(self, reason):
        self.log("wifi", "join %r failed (%s)" % (self.current, reason))
        if self.current == self.asked:
            self.asked_fail = reason

    def _start_round(self, now):
        if not self.networks:
            self._round_failed(now, "no Wi-Fi networks in secrets.json")
            return
        self.sta.active(True)
        try:
            scan = self.sta.scan()
        except OSError as e:
            self.log("wifi", "scan failed (%s); trying known networks in config order" % e)
            scan = ()
        self.queue = order_networks(self.networks, scan)
        self._next_network(now)

    def _next_network(self, now):
        if not self.queue:
            self._round_failed(now, "no known network could be joined")
            return
        net = self.queue.pop(0)
        self.current = net["ssid"]
        self.log("wifi", "joining %r" % self.current)
        try:
            self.sta.connect(net["ssid"], net["password"])
        except OSError as e:
            self._failed("at once: %s" % e)
            self._next_network(now)
            return
        self.deadline = self.clock.ticks_add(now, self.attempt_ms)
        self.state = _JOIN

    def _check_join(self, now):
        if self.sta.isconnected():
            self.state = _UP
            self.checked = now
            self.failed_rounds = 0
            self.backoff.reset()
            self.log(
                "wifi", "joined %r (rssi %s dBm, ip %s)" % (self.current, self.rssi(), self.ip())
            )
            if self.ap_started:
                self.ap_started = False
                self.ap.stop()
            return
        status = self.sta.status()
        if status in self.fail_codes:
            reason = self.fail_codes[status]
        elif self.clock.ticks_diff(now, self.deadline) >= 0:
            reason = "no answer in %d s" % (self.attempt_ms // 1000)
        else:
            return
        self._failed(reason)
        self.sta.disconnect()
        self._next_network(now)

    def _round_failed(self, now, why):
        self.failed_rounds += 1
        wait = self.backoff.next_ms()
        self.deadline = self.clock.ticks_add(now, wait)
        self.state = _WAIT
        self.log("wifi", "%s (round %d); retry in %d s" % (why, self.failed_rounds, wait // 1000))
        if (
            self.rounds_before_ap
            and not self.ap_started
            and self.failed_rounds >= self.rounds_before_ap
        ):
            self.ap_started = True
            self.ap.start(self)

    def rssi(self):
        try:
            return self.sta.status("rssi")
        except (OSError, ValueError):
            return None

    def mac(self):
        # The station's MAC as aa:bb:cc:dd:ee:ff, or None where the port will not say.
        try:
            raw = self.sta.config("mac")
        except (OSError, ValueError):
            return None
        if not raw:
            return None
        return ":".join(["%02x" % b for b in raw])

    def ip(self):
        return self.sta.ifconfig()[0] if self.up else None
