# The calls of network.WLAN a join makes (scan, connect, ifconfig), not in a program's loop
# (host-only): network.py loads this module for each such call and drops it after, as a board
# has this code in ROM and holds no heap for it. Apart from _wlan.py (the setup calls): a join
# comes when the node's heap is at its fullest, and loads only what it runs. Each takes the
# interface's state list (network.py says why a list).
import time

import _vboard
import network
from micropython import const

# The same as network.py's (host_tests check that they agree).
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
