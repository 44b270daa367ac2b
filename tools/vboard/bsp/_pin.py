# machine.Pin for the virtual board (host-only): loaded by machine on first use.
import _vboard

_ESP32 = _vboard.PLATFORM == "esp32"


class Pin:
    IN = 1 if _ESP32 else 0
    OUT = 3 if _ESP32 else 1
    OPEN_DRAIN = 7 if _ESP32 else 2
    PULL_UP = 2 if _ESP32 else 1
    PULL_DOWN = 1 if _ESP32 else 2

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        self._id = id
        self._mode = None
        self._pull = None
        self._out = 0
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None):
        if mode != -1:
            self._mode = mode
        if pull != -1:
            self._pull = pull
        if value is not None:
            self._out = 1 if value else 0

    def value(self, x=None):
        if x is not None:
            self._out = 1 if x else 0
            return None
        if self._mode == Pin.OUT:
            return self._out
        if _ESP32 and self._id == 0 and _vboard.switch("button", False):
            return 0  # the BOOT button is held: it pulls GPIO0 low
        return 1 if self._pull == Pin.PULL_UP else 0  # nothing wired: the pull decides

    __call__ = value

    def on(self):
        self._out = 1

    def off(self):
        self._out = 0

    def __repr__(self):
        return "Pin(%s)" % self._id
