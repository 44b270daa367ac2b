# The virtual board's setup for a board with its serial port (host-only), imported by launch.py
# only then: the board support is imported while the bsp folder is still on the path, the
# board's filesystem is mounted at /, and `os` and `micropython` answer as a board's do.
import os
import sys

import _vboard
import micropython

_real_os = os
# The size of the filesystem partition MicroPython gives each board (ESP32_GENERIC's 4 MiB flash
# layout: a 2 MiB vfs partition; RPI_PICO_W: MICROPY_HW_FLASH_STORAGE_BYTES, 848 KiB).
_FS_BYTES = {"esp32": 2 * 1024 * 1024, "picow": 848 * 1024}
_FS_BLOCK = 4096  # littlefs on both: one flash erase block
_real_micropython = micropython


class _BoardOs:
    # `os` on a board whose filesystem is mounted at /: the real module, with ilistdir() giving
    # sizes as FAT and littlefs do (mpremote's `fs ls` shows them) and chdir("..") kept absolute.
    def __getattr__(self, name):
        return getattr(_real_os, name)

    def getcwd(self):
        return _real_os.getcwd() or "/"

    def chdir(self, path):
        if not path.startswith("/"):
            path = self.getcwd().rstrip("/") + "/" + path
        parts = []
        for part in path.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part and part != ".":
                parts.append(part)
        _real_os.chdir("/" + "/".join(parts))

    def statvfs(self, path="/"):
        # The board's partition, not the host's disk: littlefs blocks, those in use counted from
        # the files (each rounded up to whole blocks, a block per folder, two for the superblock).
        block = _FS_BLOCK
        total = _FS_BYTES[os.getenv("VBOARD_BOARD") or "esp32"] // block
        free = max(0, total - 2 - _blocks("/", block))
        return (block, block, total, free, free, 0, 0, 0, 0, 255)

    def ilistdir(self, path=""):
        for entry in _real_os.ilistdir(path):
            size = 0
            if entry[1] == 0x8000:
                size = _size(entry[0] if not path else path.rstrip("/") + "/" + entry[0])
            yield (entry[0], entry[1], entry[2], size)


class _BoardMicropython:
    # `micropython` with a serial port: kbd_intr() tells the supervisor whether Ctrl-C from the
    # port interrupts (it sends SIGINT only then). The real kbd_intr(-1) is not called: on the
    # unix port it takes away the SIGINT handler, and a SIGINT would then end the process.
    def __getattr__(self, name):
        return getattr(_real_micropython, name)

    def kbd_intr(self, chr):
        _vboard.tell("intr 1" if chr == 3 else "intr 0")


def _blocks(folder, block):
    used = 1
    for entry in _real_os.ilistdir(folder):
        path = folder.rstrip("/") + "/" + entry[0]
        if entry[1] == 0x4000:
            used += _blocks(path, block)
        else:
            used += (_size(path) + block - 1) // block
    return used


def _size(path):
    try:
        return _real_os.stat(path)[6]
    except OSError:
        return 0  # gone meanwhile


# The board support a process can import: with the filesystem mounted at / the bsp folder is out
# of reach, so a serial board imports these before it mounts it.
# (and the port's own module, named as its platform: esp32 or rp2).
_BSP = ("machine", "_pin", "_machine_io", "network", "_wlan", "_join", "socket", "ntptime")
_BSP += ("onewire", "ds18x20")
_BSP += ("dht", "_repl")


def setup(bsp, fs, frozen, mpy122):
    # (.frozen: the port's own frozen modules, ssl among them, which ussl stands on)
    sys.path[:] = [bsp] + mpy122 + [".frozen"] + ([frozen] if frozen else [])
    for name in _BSP + (_vboard.PLATFORM,) + (("ussl",) if mpy122 else ()):
        __import__(name)
    if frozen:
        __import__("umqtt.simple")  # frozen into the firmware: importable from anywhere
    os.umount(bsp)  # (launch.py's mount: the board's / lists only the board's files)
    os.umount("/")
    os.mount(os.VfsPosix(fs), "/")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]  # a board's own
    board_os = _BoardOs()
    sys.modules["os"] = board_os
    sys.modules["uos"] = board_os
    sys.modules["micropython"] = _BoardMicropython()
