# network for the virtual board: WLAN with the port's own constants and status codes, in a
# simulated air the supervisor controls (networks in range, joins that fail, join delay, link
# drops, a driver that hangs). Host-only. Sockets are not touched: they reach 127.0.0.1 for real
# whatever this module says; the firmware drops its MQTT link itself when Wi-Fi goes down.
#
# On a board this module is C in ROM: no heap, no interned names. Here it is kept to what a
# program's loop calls (isconnected, status, active); the calls made at a join (scan, connect,
# ifconfig: _join.py) or at setup (an interface made, config(): _wlan.py) are loaded for the call
# and dropped after it. Every global, attribute and short string here is a name interned for the
# board's lifetime (bspcode.py compiles this to .mpy, which keeps no const() and no local names),
# so an interface's state is a list indexed by const()s (_join.py and _wlan.py have the same
# ones: host_tests check that they agree), and the port's constants the firmware rarely asks for
# (STAT_*, AUTH_*) come from constants.txt.
import sys
import time

import _vboard
from micropython import const

STA_IF = 0
AP_IF = 1
# What the simulation needs of the port's status codes and security values, in this order.
# (_join.py and _wlan.py read these, the tables, as network._CODES and network._NOT_ACTIVE.)
_IDLE = const(0)
_CONNECTING = const(1)
_GOT_IP = const(2)
_NO_AP_FOUND = const(3)
_WRONG_PASSWORD = const(4)
_CONNECT_FAIL = const(5)
_LINK_LOST = const(6)  # what status() says after the link went down
_WPA2 = const(7)  # what scan() says of a network with a password
if _vboard.PLATFORM == "esp32":
    _CODES = (1000, 1001, 1010, 201, 202, 203, 200, 3)
else:
    _CODES = (0, 1, 3, -2, -3, -1, 0, 0x400006)
# One interface's state, a list (every WLAN object of the interface shares it, as on the board).
_ID = const(0)
_ACTIVE = const(1)
_STATUS = const(2)
_JOINING = const(3)  # (ssid, password) of the join under way, or None
_DONE_AT = const(4)  # when it ends (ticks_ms)
_SSID = const(5)  # the network joined (STA)
_RSSI = const(6)
_PARAMS = const(7)  # config() values
_SEEN = const(8)  # the switches' version the last _update() acted on
_ifaces = [None, None]  # by interface id
if _vboard.PLATFORM == "esp32":
    _hostname = ["espressif"]
    _NOT_ACTIVE = "Wifi Not Started"
else:
    _hostname = ["PicoW"]
    _NOT_ACTIVE = "WLAN not active"


def __getattr__(name):
    found = _vboard.constant("network", name)
    if found is None:
        raise AttributeError(name)
    return found


def hostname(name=None):
    if name is None:
        return _hostname[0]
    if len(name) > 32:
        raise ValueError("hostname too long")
    _hostname[0] = name


def _in_air(ssid):
    # The network of that name in range, a dict: ssid, password ("" for open), rssi, channel,
    # hidden; or None.
    for net in _vboard.switch("air", ()):
        if net.get("ssid") == ssid:
            return net
    return None


def _update(state):
    # Applies what happened in the air since the last call: a join finishing, a drop. The
    # switches change only when _vboard reads them again (at most five times a second): with the
    # same switches and no join under way nothing can have happened, and the call returns at
    # once without allocating, as the driver's C does.
    i = state
    version = _vboard.version()
    if version == i[_SEEN] and i[_JOINING] is None:
        return
    i[_SEEN] = version
    # The stall switch: the Wi-Fi driver stops answering; the call never returns. Only a reset
    # (the watchdog, if armed) gets the board going again, as with a real wedged driver.
    if _vboard.happened("stall"):
        while True:
            time.sleep_ms(1000)
    if i[_ID] != STA_IF:
        return
    if i[_JOINING] is not None and time.ticks_diff(time.ticks_ms(), i[_DONE_AT]) >= 0:
        ssid, password = i[_JOINING]
        i[_JOINING] = None
        net = _in_air(ssid)
        if _vboard.switch("fail", False):
            i[_STATUS] = _CODES[_CONNECT_FAIL]
        elif net is None:
            i[_STATUS] = _CODES[_NO_AP_FOUND]
        elif net.get("password", "") and net.get("password") != password:
            i[_STATUS] = _CODES[_WRONG_PASSWORD]
        else:
            i[_STATUS] = _CODES[_GOT_IP]
            i[_SSID] = ssid
            i[_RSSI] = net.get("rssi", -60)
    if i[_STATUS] == _CODES[_GOT_IP]:
        dropped = _vboard.happened("drop")
        if dropped or _in_air(i[_SSID]) is None:
            i[_STATUS] = _CODES[_LINK_LOST]
            i[_SSID] = None
    else:
        _vboard.happened("drop")  # a drop while no link is up has nothing to take down


def _cold(module, name, *args):
    # Runs <module>.<name>(*args) (_join or _wlan): loaded for the call and dropped after it,
    # unless it was loaded already (a board with its serial port imports the board support
    # before it mounts its filesystem at /, and keeps it).
    if module in sys.modules:
        return getattr(sys.modules[module], name)(*args)
    try:
        return getattr(__import__(module), name)(*args)
    finally:
        sys.modules.pop(module, None)  # (absent when the import itself failed)


class WLAN:
    IF_STA = STA_IF
    IF_AP = AP_IF

    def __init__(self, id=STA_IF):
        if id not in (STA_IF, AP_IF):
            raise ValueError("invalid WLAN interface identifier")
        if _ifaces[id] is None:
            _ifaces[id] = _cold("_wlan", "iface", id)
        self._if = _ifaces[id]

    def active(self, on=None):
        i = self._if
        _update(i)
        if on is None:
            return i[_ACTIVE]
        i[_ACTIVE] = bool(on)
        if not on:
            i[_JOINING] = i[_SSID] = None
            i[_STATUS] = _CODES[_IDLE]

    def scan(self):
        _update(self._if)
        return _cold("_join", "scan", self._if)

    def connect(self, ssid=None, key=None, *, bssid=None, password=None):
        _update(self._if)
        _cold("_join", "connect", self._if, ssid, key if password is None else password)

    def disconnect(self):
        i = self._if
        _update(i)
        i[_JOINING] = i[_SSID] = None
        i[_STATUS] = _CODES[_IDLE]

    def isconnected(self):
        i = self._if
        _update(i)
        if i[_ID] == AP_IF:
            return False  # no station ever joins our access point
        return i[_STATUS] == _CODES[_GOT_IP]

    def status(self, name=None):
        i = self._if
        _update(i)
        if name is None:
            return i[_STATUS]
        if name == "rssi":
            if i[_STATUS] != _CODES[_GOT_IP]:
                raise OSError("STA is not connected")
            return i[_RSSI]
        if name == "stations":
            return []
        raise ValueError("unknown status param")

    def ifconfig(self, config=None):
        _update(self._if)
        return _cold("_join", "ifconfig", self._if, config)

    def config(self, *args, **kw):
        return _cold("_wlan", "config", self._if, args, kw)


# The security constants are class attributes (WLAN.SEC_*), which only exist when set.
for _sec in _vboard.constants("WLAN"):
    setattr(WLAN, _sec[2], int(_sec[3], 0))
del _sec
