# The calls of network.WLAN made at a join or at setup, not in a program's loop (host-only):
# network.py loads this module for each such call and drops it after, as a board has this code in
# ROM and holds no heap for it. Each takes the interface's state list (network.py says why a list).
import time

import _vboard
import network
from micropython import const

# The same as network.py's (host_tests check that they agree).
_IDLE = const(0)
_CONNECTING = const(1)
_GOT_IP = const(2)
_WPA2 = const(7)
_ID = const(0)
_ACTIVE = const(1)
_STATUS = const(2)
_JOINING = const(3)
_DONE_AT = const(4)
_SSID = const(5)
_PARAMS = const(7)
_DELAY_MS = const(200)  # a join's duration when the supervisor sets none


def iface(id):
    import binascii

    # The station's MAC is the unique id (as on the ESP32); the access point's is one more.
    mac = bytearray((b"\x02" * 6 + binascii.unhexlify(_vboard.UID))[-6:])
    mac[5] = (mac[5] + id) & 255
    mac = bytes(mac)
    # (built from one string: short dict keys in the code would each be an interned name;
    # MicroPython's zip() has no strict=)
    names = "mac channel hidden txpower max_clients pm reconnects".split()  # noqa: SIM905
    params = dict(zip(names, (mac, 1, False, 20, 4, 0, -1)))  # noqa: B905
    if id == network.AP_IF:
        fmt = "ESP_%02X%02X%02X" if _vboard.PLATFORM == "esp32" else "PICO%02X%02X%02X"
        names = "essid password security".split()  # noqa: SIM905
        params.update(zip(names, (fmt % tuple(mac[3:]), "", 0)))  # noqa: B905
    return [id, False, network._CODES[_IDLE], None, 0, None, None, params, None]


def scan(state):
    if not state[_ACTIVE]:
        raise OSError(network._NOT_ACTIVE)
    out = []
    for net in _vboard.switch("air", ()):
        hidden = bool(net.get("hidden", False))
        ssid = net["ssid"]
        h = 0
        for c in ssid.encode():
            h = (h * 31 + c) & 0xFFFFFFFF
        bssid = bytes([0x02, 0x00, h >> 24, (h >> 16) & 255, (h >> 8) & 255, h & 255])
        security = network._CODES[_WPA2] if net.get("password", "") else 0  # SEC_OPEN: 0 on both
        channel = net.get("channel", 1 + len(ssid) % 11)
        rssi = net.get("rssi", -60)
        out.append((b"" if hidden else ssid.encode(), bssid, channel, rssi, security, hidden))
    return out


def connect(state, ssid, password):
    if not state[_ACTIVE]:
        raise OSError(network._NOT_ACTIVE)
    if ssid is None:
        ssid = state[_PARAMS].get("essid", "")
    state[_SSID] = None
    state[_STATUS] = network._CODES[_CONNECTING]
    state[_JOINING] = (ssid, password or "")
    delay = int(_vboard.switch("delay_ms", _DELAY_MS))
    state[_DONE_AT] = time.ticks_add(time.ticks_ms(), delay)


def ifconfig(state, config):
    params = state[_PARAMS]
    if config is not None:
        params["ifconfig"] = tuple(config)
        return None
    if "ifconfig" in params:
        return params["ifconfig"]
    if state[_ID] == network.AP_IF:
        return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "0.0.0.0")
    if state[_STATUS] != network._CODES[_GOT_IP]:
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
    ip = "192.168.50.%d" % (2 + params["mac"][5] % 250)
    return (ip, "255.255.255.0", "192.168.50.1", "192.168.50.1")


def config(state, args, kw):
    if args and kw:
        raise TypeError("either query or set")
    # Other names config() takes for a parameter. Only the ESP32 still takes the pre-1.20
    # names: the Pico W's CYW43 driver answers `authmode` with "unknown config param".
    aliases = "ssid essid key password"
    if _vboard.PLATFORM == "esp32":
        aliases += " authmode security dhcp_hostname hostname"
    aliases = aliases.split()
    aliases = dict(zip(aliases[::2], aliases[1::2]))  # noqa: B905
    params = state[_PARAMS]
    if args:
        key = aliases.get(args[0], args[0])
        if key == "hostname":
            return network.hostname()
        if key == "essid" and state[_ID] == network.STA_IF:
            return state[_SSID] or ""
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
            network.hostname(value)
        else:
            params[key] = value
    return None
