# ntptime for the virtual board: the host's clock is already right, so settime() only has to
# fail the way a real query does: at once with no Wi-Fi link (no route), after `timeout` seconds
# when the server does not answer (the supervisor's ntp_fail switch). Host-only.
import errno

import _vboard
import network
import utime

host = "pool.ntp.org"
timeout = 1


def time():
    if not network.WLAN(network.STA_IF).isconnected():
        raise OSError(errno.EHOSTUNREACH)
    if _vboard.switch("ntp_fail", False):
        utime.sleep(timeout)
        raise OSError(errno.ETIMEDOUT)
    return int(utime.time())


def settime():
    time()
