"""CPython stand-in for the network module: a WLAN whose air is scripted by the test.

air: ssid -> (password, rssi); a connect to an ssid in the air with the right password comes
up after `join_polls` calls of isconnected(); wrong password and unknown ssid fail as a board
reports them through status().
"""

STA_IF = 0
AP_IF = 1
STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_WRONG_PASSWORD = 2
STAT_NO_AP_FOUND = 3
STAT_CONNECT_FAIL = 4
STAT_GOT_IP = 5

state = {}


def reset_stub():
    state.clear()
    state.update(air={}, join_polls=1, hostname="mpy", interfaces={})


def hostname(name=None):
    if name is None:
        return state["hostname"]
    state["hostname"] = name


class WLAN:
    def __new__(cls, interface=STA_IF):
        # One object per interface, as on a board.
        found = state["interfaces"].get(interface)
        if found is None:
            found = super().__new__(cls)
            found._init(interface)
            state["interfaces"][interface] = found
        return found

    def _init(self, interface):
        self.interface = interface
        self._active = False
        self._status = STAT_IDLE
        self._ssid = None
        self._polls = 0
        self.connects = []
        self.settings = {}

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)

    def scan(self):
        return [
            (ssid.encode(), b"\x00" * 6, 1, rssi, 3, False)
            for ssid, (_pw, rssi) in state["air"].items()
        ]

    def connect(self, ssid, password=""):
        self.connects.append(ssid)
        self._ssid = ssid
        self._polls = 0
        if ssid not in state["air"]:
            self._status = STAT_NO_AP_FOUND
        elif state["air"][ssid][0] != password:
            self._status = STAT_WRONG_PASSWORD
        else:
            self._status = STAT_CONNECTING

    def disconnect(self):
        self._status = STAT_IDLE

    def isconnected(self):
        if self._status == STAT_CONNECTING:
            self._polls += 1
            if self._polls >= state["join_polls"]:
                self._status = STAT_GOT_IP
        if self._status == STAT_GOT_IP and self._ssid not in state["air"]:
            self._status = STAT_IDLE  # the access point went away
        return self._status == STAT_GOT_IP

    def status(self, param=None):
        if param == "rssi":
            return state["air"].get(self._ssid, (None, 0))[1]
        return self._status

    def ifconfig(self):
        if self.interface == AP_IF:
            return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "192.168.4.1")
        return ("10.1.2.3", "255.255.255.0", "10.1.2.1", "10.1.2.1")

    def config(self, *args, **kwargs):
        if args:
            return self.settings.get(args[0])
        self.settings.update(kwargs)
