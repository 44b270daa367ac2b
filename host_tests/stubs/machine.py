"""CPython stand-in for the machine module: records what the firmware asks of the board."""

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

state = {}


def reset_stub():
    state.clear()
    state.update(
        uid=b"\xde\xad\xbe\xef\xa1\xb2", cause=PWRON_RESET, resets=0, soft_resets=0, wdt=None
    )
    ADC.level.clear()
    ADC.fault.clear()
    I2C.devices.clear()
    I2C.fault.clear()


class Reset(Exception):
    """Raised by reset(): on a board the call never returns."""


def unique_id():
    return state["uid"]


def reset():
    state["resets"] += 1
    raise Reset()


def soft_reset():
    state["soft_resets"] += 1
    raise Reset()


def reset_cause():
    return state["cause"]


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        state["wdt"] = self

    def feed(self):
        self.feeds += 1


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self._value = value or 0

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = v


class ADC:
    """read_u16() returns ADC.level[pin], or raises ADC.fault[pin] if set."""

    level: dict = {}
    fault: dict = {}

    def __init__(self, pin, atten=None):
        self.pin = pin.id if isinstance(pin, Pin) else pin

    def read_u16(self):
        if self.pin in ADC.fault:
            raise ADC.fault[self.pin]
        return ADC.level.get(self.pin, 0)


class I2C:
    """A bus whose devices are register maps: I2C.devices[addr] = bytearray(256)."""

    devices: dict = {}
    fault: dict = {}  # addr -> exception that reads from that device raise

    def __init__(self, id=0, scl=None, sda=None, freq=400000):
        self.id = id
        self.scl = scl
        self.sda = sda

    def scan(self):
        return sorted(I2C.devices)

    def readfrom_mem(self, addr, reg, n):
        if addr not in I2C.devices:
            raise OSError(19)  # ENODEV, as a missing chip answers on a board
        return bytes(I2C.devices[addr][reg : reg + n])

    def readfrom_mem_into(self, addr, reg, buf):
        if addr in I2C.fault:
            raise I2C.fault[addr]
        if addr not in I2C.devices:
            raise OSError(19)
        buf[:] = I2C.devices[addr][reg : reg + len(buf)]

    def writeto_mem(self, addr, reg, buf):
        if addr not in I2C.devices:
            raise OSError(19)
        I2C.devices[addr][reg : reg + len(buf)] = buf
