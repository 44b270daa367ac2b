# machine.WDT, ADC and I2C for the virtual board (host-only): loaded by machine on first use.
import struct
import time
from errno import ENODEV

import _vboard
from _pin import Pin

_ESP32 = _vboard.PLATFORM == "esp32"
_RP2_WDT_MAX_MS = 8388


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


def _bme280():
    # A BME280's registers: the calibration of Bosch's worked example (BMP280 datasheet 3.12)
    # with typical humidity words, and a finished measurement: 25.08 C, 1006.53 hPa, 43.9 %RH.
    regs = bytearray(256)
    regs[0xD0] = 0x60
    struct.pack_into(
        "<HhhHhhhhhhhh", regs, 0x88,
        27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000,
    )  # fmt: skip
    regs[0xA1] = 75  # H1
    struct.pack_into("<hB", regs, 0xE1, 362, 0)  # H2, H3
    regs[0xE4:0xE8] = bytes([313 >> 4, (313 & 0xF) | (50 & 0xF) << 4, 50 >> 4, 30])  # H4 H5 H6
    regs[0xF7:0xFF] = bytes([0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x6D, 0x60])  # P, T, H
    return regs


class I2C:
    # Unwired (the default) a bus with nothing on it: every transfer fails as it does when no
    # device acknowledges. With the supervisor's `wired` switch on, a BME280 answers at 0x76.
    BME280 = 0x76

    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        self._id = id
        self._regs = None

    def _device(self, addr):
        if addr != I2C.BME280 or not _vboard.switch("wired", False):
            raise OSError(ENODEV)
        if self._regs is None:
            self._regs = _bme280()
        return self._regs

    def scan(self):
        return [I2C.BME280] if _vboard.switch("wired", False) else []

    def readfrom_mem_into(self, addr, reg, buf, *, addrsize=8):
        regs = self._device(addr)
        for i in range(len(buf)):
            buf[i] = regs[reg + i]

    def readfrom_mem(self, addr, reg, n, *, addrsize=8):
        buf = bytearray(n)
        self.readfrom_mem_into(addr, reg, buf)
        return bytes(buf)

    def writeto_mem(self, addr, reg, buf, *, addrsize=8):
        regs = self._device(addr)
        if reg < 0xF7:  # configuration; the measurement registers are read-only
            regs[reg : reg + len(buf)] = buf

    def _nack(self, *args, **kw):
        raise OSError(ENODEV)

    readfrom = readfrom_into = writeto = _nack


SoftI2C = I2C
