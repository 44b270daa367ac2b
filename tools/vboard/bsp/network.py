# network for the virtual board: WLAN with the port's own constants and status codes, in a
# simulated air the supervisor controls (networks in range, joins that fail, join delay, link
# drops, a driver that hangs). Host-only. Sockets are not touched: they reach 127.0.0.1 for real
# whatever this module says; the firmware drops its MQTT link itself when Wi-Fi goes down.
import time

import _vboard

_ESP32 = _vboard.PLATFORM == "esp32"

STA_IF = 0
AP_IF = 1
if _ESP32:
    STAT_IDLE = 1000
    STAT_CONNECTING = 1001
    STAT_GOT_IP = 1010
    STAT_BEACON_TIMEOUT = 200
    STAT_NO_AP_FOUND = 201
    STAT_WRONG_PASSWORD = 202
    STAT_ASSOC_FAIL = 203
    STAT_CONNECT_FAIL = 203
    STAT_HANDSHAKE_TIMEOUT = 204
    AUTH_OPEN = 0
    AUTH_WEP = 1
    AUTH_WPA_PSK = 2
    AUTH_WPA2_PSK = 3
    AUTH_WPA_WPA2_PSK = 4
    _SEC = {"SEC_OPEN": 0, "SEC_WEP": 1, "SEC_WPA": 2, "SEC_WPA2": 3, "SEC_WPA_WPA2": 4}
    _SEC.update({"SEC_WPA2_ENT": 5, "SEC_WPA3": 6, "SEC_WPA2_WPA3": 7})
    _LINK_LOST = STAT_BEACON_TIMEOUT
    _HOSTNAME = ["espressif"]
else:
    STAT_IDLE = 0
    STAT_CONNECTING = 1
    STAT_GOT_IP = 3
    STAT_CONNECT_FAIL = -1
    STAT_NO_AP_FOUND = -2
    STAT_WRONG_PASSWORD = -3
    _SEC = {"SEC_OPEN": 0, "SEC_WPA_WPA2": 0x400006, "SEC_WPA3": 0x1000004}
    _SEC["SEC_WPA2_WPA3"] = 0x1400004
    _LINK_LOST = STAT_IDLE
    _HOSTNAME = ["PicoW"]

_WPA2 = _SEC["SEC_WPA2"] if _ESP32 else _SEC["SEC_WPA_WPA2"]
_DELAY_MS = 200  # a join's duration when the supervisor sets none
# Other names config() takes for a parameter. Only the ESP32 still takes the pre-1.20 names:
# the Pico W's CYW43 driver answers `authmode` with "unknown config param".
_ALIASES = {"ssid": "essid", "key": "password"}
if _ESP32:
    _ALIASES.update({"authmode": "security", "dhcp_hostname": "hostname"})
_PARAMS = (
    "mac",
    "essid",
    "password",
    "security",
    "channel",
    "hidden",
    "hostname",
    "txpower",
    "max_clients",
    "pm",
    "reconnects",
)


def hostname(name=None):
    if name is None:
        return _HOSTNAME[0]
    if len(name) > 32:
        raise ValueError("hostname too long")
    _HOSTNAME[0] = name


def _air():
    # The networks in range, each a dict: ssid, password ("" for open), rssi, channel, hidden.
    return _vboard.switch("air", ())


def _in_air(ssid):
    for net in _air():
        if net.get("ssid") == ssid:
            return net
    return None


def _mac(if_id):
    # The station's MAC is the unique id (as on the ESP32); the access point's is one more.
    import binascii

    mac = bytearray((b"\x02" * 6 + binascii.unhexlify(_vboard.UID))[-6:])
    mac[5] = (mac[5] + if_id) & 255
    return bytes(mac)


def _bssid(ssid):
    h = 0
    for c in ssid.encode():
        h = (h * 31 + c) & 0xFFFFFFFF
    return bytes([0x02, 0x00, h >> 24, (h >> 16) & 255, (h >> 8) & 255, h & 255])


def _hang_if_stalled():
    # The stall switch: the Wi-Fi driver stops answering; the call never returns. Only a reset
    # (the watchdog, if armed) gets the board going again, as with a real wedged driver.
    if _vboard.happened("stall"):
        while True:
            time.sleep_ms(1000)


class _Iface:
    # One interface's state; every WLAN(STA_IF) object shares it, as on the board.
    def __init__(self, if_id):
        self.id = if_id
        self.active = False
        self.status = STAT_IDLE
        self.joining = None  # (ssid, password) of the join under way
        self.done_at = 0
        self.ssid = None  # the network joined (STA)
        self.rssi = None
        self.seen = None  # the switches the last update() acted on
        mac = _mac(if_id)
        self.params = {
            "mac": mac,
            "channel": 1,
            "hidden": False,
            "txpower": 20,
            "max_clients": 4,
            "pm": 0,
            "reconnects": -1,
        }
        if if_id == AP_IF:
            name = ("ESP_%02X%02X%02X" if _ESP32 else "PICO%02X%02X%02X") % tuple(mac[3:])
            self.params.update({"essid": name, "password": "", "security": _SEC["SEC_OPEN"]})

    def update(self):
        # Applies what happened in the air since the last call: a join finishing, a drop. The
        # switches change only when _vboard reads them again (at most five times a second):
        # with the same switches and no join under way nothing can have happened, and the
        # call returns at once without allocating, as the driver's C does.
        switches = _vboard.switches()
        if switches is self.seen and self.joining is None:
            return
        self.seen = switches
        _hang_if_stalled()
        if self.id != STA_IF:
            return
        if self.joining is not None and time.ticks_diff(time.ticks_ms(), self.done_at) >= 0:
            ssid, password = self.joining
            self.joining = None
            net = _in_air(ssid)
            if _vboard.switch("fail", False):
                self.status = STAT_CONNECT_FAIL
            elif net is None:
                self.status = STAT_NO_AP_FOUND
            elif net.get("password", "") and net.get("password") != password:
                self.status = STAT_WRONG_PASSWORD
            else:
                self.status = STAT_GOT_IP
                self.ssid = ssid
                self.rssi = net.get("rssi", -60)
        if self.status == STAT_GOT_IP:
            dropped = _vboard.happened("drop")
            if dropped or _in_air(self.ssid) is None:
                self.status = _LINK_LOST
                self.ssid = None
        else:
            _vboard.happened("drop")  # a drop while no link is up has nothing to take down


_ifaces = {}


class WLAN:
    IF_STA = STA_IF
    IF_AP = AP_IF

    def __init__(self, interface_id=STA_IF):
        if interface_id not in (STA_IF, AP_IF):
            raise ValueError("invalid WLAN interface identifier")
        if interface_id not in _ifaces:
            _ifaces[interface_id] = _Iface(interface_id)
        self._if = _ifaces[interface_id]

    def active(self, is_active=None):
        i = self._if
        i.update()
        if is_active is None:
            return i.active
        i.active = bool(is_active)
        if not i.active:
            i.joining = None
            i.ssid = None
            i.status = STAT_IDLE

    def _need_active(self):
        if not self._if.active:
            raise OSError("Wifi Not Started" if _ESP32 else "WLAN not active")

    def scan(self):
        self._if.update()
        self._need_active()
        out = []
        for net in _air():
            hidden = bool(net.get("hidden", False))
            ssid = b"" if hidden else net["ssid"].encode()
            security = _WPA2 if net.get("password", "") else _SEC["SEC_OPEN"]
            channel = net.get("channel", 1 + len(net["ssid"]) % 11)
            row = (ssid, _bssid(net["ssid"]), channel, net.get("rssi", -60), security, hidden)
            out.append(row)
        return out

    def connect(self, ssid=None, key=None, *, bssid=None, password=None):
        i = self._if
        i.update()
        self._need_active()
        if password is None:
            password = key
        if ssid is None:
            ssid = i.params.get("essid", "")
        i.ssid = None
        i.status = STAT_CONNECTING
        i.joining = (ssid, password or "")
        i.done_at = time.ticks_add(time.ticks_ms(), int(_vboard.switch("delay_ms", _DELAY_MS)))

    def disconnect(self):
        i = self._if
        i.update()
        i.joining = None
        i.ssid = None
        i.status = STAT_IDLE

    def isconnected(self):
        i = self._if
        i.update()
        if i.id == AP_IF:
            return False  # no station ever joins our access point
        return i.status == STAT_GOT_IP

    def status(self, param=None):
        i = self._if
        i.update()
        if param is None:
            return i.status
        if param == "rssi":
            if i.status != STAT_GOT_IP:
                raise OSError("STA is not connected")
            return i.rssi
        if param == "stations":
            return []
        raise ValueError("unknown status param")

    def ifconfig(self, config=None):
        i = self._if
        i.update()
        if config is not None:
            i.params["ifconfig"] = tuple(config)
            return None
        if "ifconfig" in i.params:
            return i.params["ifconfig"]
        if i.id == AP_IF:
            return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "0.0.0.0")
        if i.status != STAT_GOT_IP:
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        ip = "192.168.50.%d" % (2 + i.params["mac"][5] % 250)
        return (ip, "255.255.255.0", "192.168.50.1", "192.168.50.1")

    def config(self, *args, **kw):
        i = self._if
        if args and kw:
            raise TypeError("either query or set")
        if args:
            key = _ALIASES.get(args[0], args[0])
            if key == "hostname":
                return hostname()
            if key == "essid" and i.id == STA_IF:
                return i.ssid or ""
            if key not in i.params:
                raise ValueError("unknown config param")
            return i.params[key]
        for key, value in kw.items():
            key = _ALIASES.get(key, key)
            if key not in _PARAMS:
                raise ValueError("unknown config param")
            if key == "hostname":
                hostname(value)
            else:
                i.params[key] = value
        return None


for _name in _SEC:
    setattr(WLAN, _name, _SEC[_name])
