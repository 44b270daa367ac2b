# socket for the virtual board (host-only): the port's own module, except that an address the
# firmware binds to on the access point (0.0.0.0 or the access point's address) is on 127.0.0.1:
# the setup portal's HTTP 80 and DNS 53 become the ports the supervisor chose and printed, so the
# host can reach them (any other port, or a board started without those, gets a free one). The
# virtual board never listens beyond this machine. umqtt imports usocket: the port's own module.
import _vboard
import usocket as _real
from usocket import *  # noqa: F403

_AP_HOSTS = ("0.0.0.0", "192.168.4.1")


def getaddrinfo(host, port, *args):
    if host in _AP_HOSTS:
        return _real.getaddrinfo("127.0.0.1", _vboard.PORTAL_PORTS.get(port, 0), *args)
    return _real.getaddrinfo(host, port, *args)
