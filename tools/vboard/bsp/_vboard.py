# Plumbing shared by the virtual board's support modules (host-only, never flashed):
# - what the supervisor told this board process when it started it (environment variables),
# - the switches it sets while the board runs (a JSON file it replaces atomically),
# - the port's constants, looked up in constants.txt when asked for,
# - what the board tells the supervisor, as UDP datagrams: watchdog arm/feed (a board stuck in a
#   blocking call cannot time itself out, so the supervisor keeps the watchdog's time) and, with a
#   serial port, whether Ctrl-C on the port interrupts (the supervisor then turns it into SIGINT).
# Every global and short string here is a name interned for the board's lifetime (network.py
# says why that matters), so this module's own state is one list indexed by const()s.
import binascii
import json
import os
import time

from micropython import const

# (An unset variable is taken as empty: the supervisor sets them all, "" or "1" for the flags.)
PLATFORM = os.getenv("VBOARD_PLATFORM") or "esp32"  # the supervisor reads it from ident.py
UID = os.getenv("VBOARD_UID") or "a1b2c3d4e5f6"
CAUSE = os.getenv("VBOARD_CAUSE") or "pwron"  # why this process started: pwron, reset or wdt
RESET_EXIT = int(os.getenv("VBOARD_RESET_EXIT") or 86)  # machine.reset() ends the process so
# A soft reset ends the process with SOFT_EXIT (the next start runs main.py) or SOFT_EXIT + 1 (it
# stays in the raw REPL); the supervisor starts the board again at once, with SOFT set.
SOFT_EXIT = int(os.getenv("VBOARD_SOFT_EXIT") or 87)
SOFT = bool(os.getenv("VBOARD_SOFT"))  # this start is a soft reset (Ctrl-D), not a hardware one
SERIAL = bool(os.getenv("VBOARD_SERIAL"))  # stdin/stdout are the board's serial port (the REPL)
# The setup portal's HTTP (80) and DNS (53) ports as the host reaches them on 127.0.0.1.
PORTAL_PORTS = {}
if os.getenv("VBOARD_PORTAL_HTTP"):
    PORTAL_PORTS[80] = int(os.getenv("VBOARD_PORTAL_HTTP"))
if os.getenv("VBOARD_PORTAL_DNS"):
    PORTAL_PORTS[53] = int(os.getenv("VBOARD_PORTAL_DNS"))

_READ_EVERY_MS = const(200)  # the control file is read at most this often, however asked
_SWITCHES = const(0)  # the switches last read
_READ_AT = const(1)  # when (ticks_ms), or None
_SOCK = const(2)  # (socket, address) once the first message goes out
_CONTROL = const(3)  # (VfsPosix of the control file's folder, its name there) once first read
# Events (link drops, stalls) are counters in the control file; those counted before this start
# belong to an earlier life of the board and are not acted on again.
_SEEN = const(4)
_NO_EVENTS = const(5)  # (a default made once: happened() runs in every Wi-Fi call)
_VERSION = const(6)  # how many times new switches were read
_CRC = const(7)  # the CRC-32 of the control file's text they were read from
_state = [{}, None, None, None, {}, {}, 0, None]
if os.getenv("VBOARD_EVENTS"):
    _state[_SEEN] = json.loads(os.getenv("VBOARD_EVENTS"))


def switches():
    now = time.ticks_ms()
    s = _state
    if s[_READ_AT] is None or time.ticks_diff(now, s[_READ_AT]) >= _READ_EVERY_MS:
        s[_READ_AT] = now
        try:
            with _control() as f:
                text = f.read()
            # Most reads find the file as it was: nothing to parse (its CRC is kept rather than
            # the text, which would stay on the heap).
            crc = binascii.crc32(text)
            if crc != s[_CRC]:
                s[_SWITCHES] = json.loads(text)
                s[_CRC] = crc
                s[_VERSION] += 1
        except (OSError, ValueError):
            pass  # keep the last switches we read
    return s[_SWITCHES]


def _control():
    # The control file is on the host, outside the board's filesystem (which may be mounted at /):
    # it is read through a VFS of its own folder, so it stays reachable whatever / is.
    if _state[_CONTROL] is None:
        path = os.getenv("VBOARD_CONTROL")
        if not path:
            raise OSError("no control file")  # a board started without a supervisor
        folder, _, name = path.rpartition("/")
        _state[_CONTROL] = (os.VfsPosix(folder or "."), "/" + name)
    return _state[_CONTROL][0].open(_state[_CONTROL][1], "r")


def version():
    # Changes whenever the switches read (when due) differ from the last: until it does, nothing
    # the switches say has changed.
    switches()
    return _state[_VERSION]


def switch(name, default=None):
    return switches().get(name, default)


def happened(event):
    # True once for each new occurrence of the event since this board process last looked.
    count = switches().get("events", _state[_NO_EVENTS]).get(event, 0)
    seen = _state[_SEEN]
    if count > seen.get(event, 0):
        seen[event] = count
        return True
    return False


def constants(where):
    # The names of this platform's constants of `where` (a module, or a class: WLAN), from
    # constants.txt in the board support's folder (read through a VFS of its own, as _control()
    # reads the control file).
    out = []
    with os.VfsPosix(os.getenv("VBOARD_BSP_DIR")).open("/constants.txt", "r") as f:
        for line in f:
            words = line.split()
            if len(words) == 4 and words[0] == PLATFORM and words[1] == where:
                out.append(words)
    return out


def constant(where, name):
    # The value of that constant on this platform, or None: a board without it.
    for words in constants(where):
        if words[2] == name:
            return int(words[3], 0)
    return None


def tell(msg):
    port = os.getenv("VBOARD_SUPERVISOR")  # UDP port on 127.0.0.1; empty: nobody listens
    if not port:
        return
    if _state[_SOCK] is None:
        import socket

        addr = socket.getaddrinfo("127.0.0.1", int(port))[0][-1]
        _state[_SOCK] = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM), addr)
    sock = _state[_SOCK]
    # The start's number: the supervisor ignores what older processes of the board say.
    sock[0].sendto((os.getenv("VBOARD_BOOT") + " " + msg).encode(), sock[1])
