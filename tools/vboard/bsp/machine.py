# machine for the virtual board: the calls the firmware makes, with the port's own constants and
# a board on which nothing is wired. Host-only; shadows the unix port's built-in machine module.
import time
from errno import ENODEV

import _vboard

_ESP32 = _vboard.PLATFORM == "esp32"
_RP2_WDT_MAX_MS = 8388

PWRON_RESET = 1
WDT_RESET = 3
if _ESP32:
    HARD_RESET = 2
    DEEPSLEEP_RESET = 4
    SOFT_RESET = 5
    _CAUSES = {"pwron": PWRON_RESET, "wdt": WDT_RESET, "reset": SOFT_RESET}
else:
    # The RP2040 knows only power-on and watchdog resets; its machine.reset() is a watchdog reboot.
    _CAUSES = {"pwron": PWRON_RESET, "wdt": WDT_RESET, "reset": WDT_RESET}
_freq = [160000000 if _ESP32 else 125000000]


def unique_id():
    import binascii

    return binascii.unhexlify(_vboard.UID)


def reset_cause():
    # After a soft reset (Ctrl-D, machine.soft_reset()) the ESP32 says SOFT_RESET; the RP2040 has
    # no such cause and keeps reporting what started the chip.
    if _vboard.SOFT and _ESP32:
        return SOFT_RESET
    return _CAUSES[_vboard.CAUSE]


def reset():
    # The supervisor sees this exit code and starts the board again. Unlike a real reset this
    # unwinds the stack: `finally` blocks run, and a bare `except:` would even stop it.
    raise SystemExit(_vboard.RESET_EXIT)


def soft_reset():
    # As on the boards: SystemExit, which the launcher turns into a soft reset.
    raise SystemExit(_vboard.SOFT_EXIT)


def freq(hz=None):
    if hz is None:
        return _freq[0]
    _freq[0] = hz


def idle():
    time.sleep_ms(1)


class WDT:
    # The supervisor keeps the time: it kills and restarts the board when no feed() arrives
    # within the timeout, even while the board is stuck in a blocking call.
    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError("WDT(%d) does not exist" % id)
        if timeout < 1:
            raise ValueError("WDT timeout too short")
        if not _ESP32 and timeout > _RP2_WDT_MAX_MS:
            raise ValueError("timeout exceeds maximum")
        _vboard.tell("arm %d" % timeout)
        # A loop may feed thousands of times a second; the supervisor hears of it at most every
        # tenth of the timeout (50 ms at most), which makes it fire at most that much early.
        self._every = min(50, timeout // 10)
        self._told = time.ticks_ms()

    def feed(self):
        now = time.ticks_ms()
        if time.ticks_diff(now, self._told) >= self._every:
            self._told = now
            _vboard.tell("feed")


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


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    if not _ESP32:
        CORE_TEMP = 4

    def __init__(self, pin, *, atten=None):
        self._id = pin._id if isinstance(pin, Pin) else pin

    def read_u16(self):
        if not _ESP32 and self._id == 4:
            # The RP2040's sensor: 0.706 V at 27 C, -1.721 mV/C; a 12-bit reading scaled to 16.
            volts = 0.706 - (_vboard.switch("mcu_c", 27.0) - 27) * 0.001721
            raw = int(volts / 3.3 * 4095 + 0.5)
        else:
            raw = 2048  # a floating input sits near mid-scale
        return (raw << 4) | (raw >> 8)

    def read(self):
        return self.read_u16() >> 4

    def read_uv(self):
        return self.read_u16() * 3300000 // 65535

    def atten(self, atten):
        pass

    def width(self, bits):
        pass


class I2C:
    # A bus with nothing on it: every transfer fails as it does when no device acknowledges.
    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        self._id = id

    def scan(self):
        return []

    def _nack(self, *args, **kw):
        raise OSError(ENODEV)

    readfrom = readfrom_into = writeto = _nack
    readfrom_mem = readfrom_mem_into = writeto_mem = _nack


SoftI2C = I2C
