# Plumbing shared by the virtual board's support modules (host-only, never flashed):
# - what the supervisor told this board process when it started it (environment variables),
# - the switches it sets while the board runs (a JSON file it replaces atomically),
# - what the board tells the supervisor, as UDP datagrams: watchdog arm/feed (a board stuck in a
#   blocking call cannot time itself out, so the supervisor keeps the watchdog's time) and, with a
#   serial port, whether Ctrl-C on the port interrupts (the supervisor then turns it into SIGINT).
import json
import os
import time

# What only the virtual board needs to know of each board (firmware/ident.py has the board
# table): the machine half of the REPL banner (MICROPY_HW_BOARD_NAME " with " MICROPY_HW_MCU_NAME)
# and the size of the filesystem partition MicroPython gives it (ESP32_GENERIC's 4 MiB flash
# layout: a 2 MiB vfs partition; RPI_PICO_W: MICROPY_HW_FLASH_STORAGE_BYTES, 848 KiB).
MACHINES = {"esp32": "Generic ESP32 module with ESP32", "picow": "Raspberry Pi Pico W with RP2040"}
FS_BYTES = {"esp32": 2 * 1024 * 1024, "picow": 848 * 1024}
FS_BLOCK = 4096  # littlefs on both: one flash erase block


def _env(name, default=""):
    value = os.getenv(name)
    return default if value is None else value


BOARD = _env("VBOARD_BOARD", "esp32")
PLATFORM = _env("VBOARD_PLATFORM", "esp32")  # the supervisor reads it from firmware/ident.py
MACHINE = MACHINES[BOARD]
UID = _env("VBOARD_UID", "a1b2c3d4e5f6")
CAUSE = _env("VBOARD_CAUSE", "pwron")  # why this process started: pwron, reset or wdt
RESET_EXIT = int(_env("VBOARD_RESET_EXIT", "86"))  # machine.reset() ends the process with this
# A soft reset ends the process with SOFT_EXIT (the next start runs main.py) or SOFT_EXIT + 1 (it
# stays in the raw REPL); the supervisor starts the board again at once, with SOFT set.
SOFT_EXIT = int(_env("VBOARD_SOFT_EXIT", "87"))
SOFT = _env("VBOARD_SOFT") == "1"  # this start is a soft reset (Ctrl-D), not a hardware one
SERIAL = _env("VBOARD_SERIAL") == "1"  # stdin/stdout are the board's serial port (the REPL runs)
REPL = _env("VBOARD_REPL", "friendly")  # the REPL mode the start is in: friendly or raw
_BOOT = _env("VBOARD_BOOT", "0")  # this start's number: the supervisor ignores older processes
_CONTROL = _env("VBOARD_CONTROL")
_SUPERVISOR_PORT = _env("VBOARD_SUPERVISOR")  # UDP port on 127.0.0.1; empty: nobody listens
# The setup portal's HTTP (80) and DNS (53) ports as the host reaches them on 127.0.0.1.
PORTAL_PORTS = {}
for _port, _name in ((80, "VBOARD_PORTAL_HTTP"), (53, "VBOARD_PORTAL_DNS")):
    if _env(_name):
        PORTAL_PORTS[_port] = int(_env(_name))
# Events (link drops, stalls) are counters in the control file; those counted before this start
# belong to an earlier life of the board and are not acted on again.
_seen = json.loads(_env("VBOARD_EVENTS", "{}"))

_NO_EVENTS = {}  # (a default made once: happened() runs in every Wi-Fi call)
_READ_EVERY_MS = 200  # the control file is read at most this often, however often we are asked
_switches = {}
_read_at = None
_sock = None  # (socket, address) once the first message goes out
_control_vfs = None  # (VfsPosix of the control file's folder, its name there) once first read


def switches():
    global _switches, _read_at
    now = time.ticks_ms()
    if _read_at is None or time.ticks_diff(now, _read_at) >= _READ_EVERY_MS:
        _read_at = now
        if _CONTROL:
            try:
                with _control() as f:
                    _switches = json.load(f)
            except (OSError, ValueError):
                pass  # keep the last switches we read
    return _switches


def _control():
    # The control file is on the host, outside the board's filesystem (which may be mounted at /):
    # it is read through a VFS of its own folder, so it stays reachable whatever / is.
    global _control_vfs
    if _control_vfs is None:
        folder, _, name = _CONTROL.rpartition("/")
        _control_vfs = (os.VfsPosix(folder or "."), "/" + name)
    return _control_vfs[0].open(_control_vfs[1], "r")


def switch(name, default=None):
    return switches().get(name, default)


def happened(event):
    # True once for each new occurrence of the event since this board process last looked.
    count = switches().get("events", _NO_EVENTS).get(event, 0)
    if count > _seen.get(event, 0):
        _seen[event] = count
        return True
    return False


def tell(msg):
    global _sock
    if not _SUPERVISOR_PORT:
        return
    if _sock is None:
        import socket

        addr = socket.getaddrinfo("127.0.0.1", int(_SUPERVISOR_PORT))[0][-1]
        _sock = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM), addr)
    _sock[0].sendto((_BOOT + " " + msg).encode(), _sock[1])
