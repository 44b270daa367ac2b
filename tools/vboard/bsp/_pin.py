# machine.Pin for the virtual board (host-only): loaded by machine on first use.
import _vboard


class Pin:
    if _vboard.PLATFORM == "esp32":
        IN, OUT, OPEN_DRAIN, PULL_UP, PULL_DOWN = 1, 3, 7, 2, 1
    else:
        IN, OUT, OPEN_DRAIN, PULL_UP, PULL_DOWN = 0, 1, 2, 1, 2

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
        if _vboard.PLATFORM == "esp32" and self._id == 0 and _vboard.switch("button", False):
            return 0  # the BOOT button is held: it pulls GPIO0 low
        return 1 if self._pull == Pin.PULL_UP else 0  # nothing wired: the pull decides

    __call__ = value

    def on(self):
        self._out = 1

    def off(self):
        self._out = 0

    def __repr__(self):
        return "Pin(%s)" % self._id
