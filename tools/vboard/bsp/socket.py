# socket for the virtual board (host-only): the port's own module, except that the setup
# portal's ports on the access point (HTTP 80 and DNS 53, bound at 0.0.0.0 or the access point's
# address) become the 127.0.0.1 ports the supervisor chose and printed, so the host can reach
# them. umqtt imports usocket, which is the port's own module untouched.
import _vboard
import usocket as _real
from usocket import *  # noqa: F403

_AP_HOSTS = ("0.0.0.0", "192.168.4.1")


def getaddrinfo(host, port, *args):
    mapped = _vboard.PORTAL_PORTS.get(port) if host in _AP_HOSTS else None
    if mapped:
        return _real.getaddrinfo("127.0.0.1", mapped, *args)
    return _real.getaddrinfo(host, port, *args)
