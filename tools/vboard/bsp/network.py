# network for the virtual board: WLAN with the port's own constants and status codes, in a
# simulated air the supervisor controls (networks in range, joins that fail, join delay, link
# drops, a driver that hangs). Host-only. Sockets are not touched: they reach 127.0.0.1 for real
# whatever this module says; the firmware drops its MQTT link itself when Wi-Fi goes down.
#
# On a board this module is C in ROM. Here every global, attribute and short string is a name
# interned for the board's lifetime (bspcode.py compiles it to .mpy, which keeps no const() and
# no local names), so the state is kept in lists indexed by const()s, and the port's constants
# the firmware rarely asks for (STAT_*, AUTH_*) are looked up in constants.txt when asked for.
import time

import _vboard
from micropython import const

STA_IF = 0
AP_IF = 1
# What the simulation needs of the port's status codes and security values, in this order.
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
_DELAY_MS = const(200)  # a join's duration when the supervisor sets none
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


def _iface(id):
    import binascii

    # The station's MAC is the unique id (as on the ESP32); the access point's is one more.
    mac = bytearray((b"\x02" * 6 + binascii.unhexlify(_vboard.UID))[-6:])
    mac[5] = (mac[5] + id) & 255
    mac = bytes(mac)
    # (built from one string: short dict keys in the code would each be an interned name)
    # (MicroPython's zip() has no strict=)
    names = "mac channel hidden txpower max_clients pm reconnects".split()  # noqa: SIM905
    params = dict(zip(names, (mac, 1, False, 20, 4, 0, -1)))  # noqa: B905
    if id == AP_IF:
        fmt = "ESP_%02X%02X%02X" if _vboard.PLATFORM == "esp32" else "PICO%02X%02X%02X"
        names = "essid password security".split()  # noqa: SIM905
        params.update(zip(names, (fmt % tuple(mac[3:]), "", 0)))  # noqa: B905
    return [id, False, _CODES[_IDLE], None, 0, None, None, params, None]


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


class WLAN:
    IF_STA = STA_IF
    IF_AP = AP_IF

    def __init__(self, id=STA_IF):
        if id not in (STA_IF, AP_IF):
            raise ValueError("invalid WLAN interface identifier")
        if _ifaces[id] is None:
            _ifaces[id] = _iface(id)
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
        if not self._if[_ACTIVE]:
            raise OSError(_NOT_ACTIVE)
        out = []
        for net in _vboard.switch("air", ()):
            hidden = bool(net.get("hidden", False))
            ssid = net["ssid"]
            h = 0
            for c in ssid.encode():
                h = (h * 31 + c) & 0xFFFFFFFF
            bssid = bytes([0x02, 0x00, h >> 24, (h >> 16) & 255, (h >> 8) & 255, h & 255])
            security = _CODES[_WPA2] if net.get("password", "") else 0  # SEC_OPEN: 0 on both
            channel = net.get("channel", 1 + len(ssid) % 11)
            rssi = net.get("rssi", -60)
            out.append((b"" if hidden else ssid.encode(), bssid, channel, rssi, security, hidden))
        return out

    def connect(self, ssid=None, key=None, *, bssid=None, password=None):
        i = self._if
        _update(i)
        if not i[_ACTIVE]:
            raise OSError(_NOT_ACTIVE)
        if password is None:
            password = key
        if ssid is None:
            ssid = i[_PARAMS].get("essid", "")
        i[_SSID] = None
        i[_STATUS] = _CODES[_CONNECTING]
        i[_JOINING] = (ssid, password or "")
        delay = int(_vboard.switch("delay_ms", _DELAY_MS))
        i[_DONE_AT] = time.ticks_add(time.ticks_ms(), delay)

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
        i = self._if
        _update(i)
        params = i[_PARAMS]
        if config is not None:
            params["ifconfig"] = tuple(config)
            return None
        if "ifconfig" in params:
            return params["ifconfig"]
        if i[_ID] == AP_IF:
            return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "0.0.0.0")
        if i[_STATUS] != _CODES[_GOT_IP]:
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        ip = "192.168.50.%d" % (2 + params["mac"][5] % 250)
        return (ip, "255.255.255.0", "192.168.50.1", "192.168.50.1")

    def config(self, *args, **kw):
        # (parameter names and their other names from a string, for the reason _iface says)
        i = self._if
        if args and kw:
            raise TypeError("either query or set")
        # Other names config() takes for a parameter. Only the ESP32 still takes the pre-1.20
        # names: the Pico W's CYW43 driver answers `authmode` with "unknown config param".
        aliases = "ssid essid key password"
        if _vboard.PLATFORM == "esp32":
            aliases += " authmode security dhcp_hostname hostname"
        aliases = aliases.split()
        aliases = dict(zip(aliases[::2], aliases[1::2]))  # noqa: B905
        params = i[_PARAMS]
        if args:
            key = aliases.get(args[0], args[0])
            if key == "hostname":
                return hostname()
            if key == "essid" and i[_ID] == STA_IF:
                return i[_SSID] or ""
            if key not in params:
                raise ValueError("unknown config param")
            return params[key]
        known = "mac essid password security channel hidden hostname txpower max_clients pm"
        known = (known + " reconnects").split()
        for key, value in kw.items():
            key = aliases.get(key, key)
            if key not in known:
                raise ValueError("unknown config param")
            if key == "hostname":
                hostname(value)
            else:
                params[key] = value
        return None


# The security constants are class attributes (WLAN.SEC_*), which only exist when set.
for _sec in _vboard.constants("WLAN"):
    setattr(WLAN, _sec[2], int(_sec[3], 0))
del _sec
