# machine.Pin for the virtual board (host-only): loaded by machine on first use.
import _vboard
from micropython import const

_MODE = const(0)
_PULL = const(1)
_OUT = const(2)


class Pin:
    if _vboard.PLATFORM == "esp32":
        IN, OUT, OPEN_DRAIN, PULL_UP, PULL_DOWN = 1, 3, 7, 2, 1
    else:
        IN, OUT, OPEN_DRAIN, PULL_UP, PULL_DOWN = 0, 1, 2, 1, 2

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        self._id = id
        self._io = [None, None, 0]  # mode, pull, output level (one attribute: fewer names)
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None):
        if mode != -1:
            self._io[_MODE] = mode
        if pull != -1:
            self._io[_PULL] = pull
        if value is not None:
            self._io[_OUT] = 1 if value else 0

    def value(self, value=None):
        io = self._io
        if value is not None:
            io[_OUT] = 1 if value else 0
            return None
        if io[_MODE] == Pin.OUT:
            return io[_OUT]
        if _vboard.PLATFORM == "esp32" and self._id == 0 and _vboard.switch("button", False):
            return 0  # the BOOT button is held: it pulls GPIO0 low
        return 1 if io[_PULL] == Pin.PULL_UP else 0  # nothing wired: the pull decides

    __call__ = value

    def on(self):
        self._io[_OUT] = 1

    def off(self):
        self._io[_OUT] = 0

    def __repr__(self):
        return "Pin(%s)" % self._id
