# The calls of network.WLAN made at setup (an interface made, config()), not in a program's loop
# (host-only): network.py loads this module for each such call and drops it after, as a board
# has this code in ROM and holds no heap for it; the calls of a join are _join.py's. Each takes
# the interface's state list (network.py says why a list).
import _vboard
import network
from micropython import const

# The same as network.py's (host_tests check that they agree).
_IDLE = const(0)
_ID = const(0)
_SSID = const(5)
_PARAMS = const(7)


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
