# Bosch BME280 (temperature, humidity, pressure) on I2C. The chip runs in normal mode: it measures
# by itself once a second and read() fetches the latest result in one burst, never waiting.
# Compensation: the floating-point formulas of the BME280 datasheet (section 8.1), with the
# calibration words read once at start-up.
import struct

from micropython import const

from firmware.log import why

_CHIP_ID = const(0x60)
_REG_CALIB_TP = const(0x88)  # 0x88..0xA1: dig_T1..dig_P9, a spare byte, dig_H1
_REG_ID = const(0xD0)
_REG_CALIB_H = const(0xE1)  # 0xE1..0xE7: dig_H2..dig_H6
_REG_CTRL_HUM = const(0xF2)
_REG_CTRL_MEAS = const(0xF4)
_REG_CONFIG = const(0xF5)
_REG_DATA = const(0xF7)  # 0xF7..0xFE: press[3], temp[3], hum[2]
_NO_VALUE_20 = const(0x80000)  # what a data register holds before its first measurement
_NO_VALUE_16 = const(0x8000)
_OSRS_X1 = const(1)
_MODE_NORMAL = const(3)
_STANDBY_1000_MS = const(5)


def _other_chip(chip_id):
    # What a chip id at 0xD0 that is not 0x60 most likely belongs to.
    if chip_id in (0x56, 0x57, 0x58):
        return "a BMP280 (pressure and temperature, no humidity)"
    if chip_id == 0x55:
        return "a BMP180"
    if chip_id == 0x61:
        return "a BME680"
    return "not a BME280"


def _signed8(b):
    return b - 256 if b > 127 else b


class BME280:
    def __init__(self, spec):
        import machine

        name = spec["name"]
        self.keys = (name + "_temperature", name + "_humidity", name + "_pressure")
        bus = spec["i2c"]
        sda = spec.get("sda")
        scl = spec.get("scl")
        if sda is None and scl is None:
            i2c = machine.I2C(bus)  # the bus's default pins
        elif sda is None or scl is None:
            raise ValueError(
                "bme280 needs both sda and scl pins, or neither for i2c %d's own" % bus
            )
        else:
            i2c = machine.I2C(bus, scl=machine.Pin(scl), sda=machine.Pin(sda))
        self._i2c = i2c
        self.address = addr = spec["address"]
        where = "0x%02x on i2c %d" % (addr, bus)
        self._buf = bytearray(8)  # one burst of measurement data, reused by every read
        calib = bytearray(26)
        one = memoryview(calib)[:1]
        try:
            i2c.readfrom_mem_into(addr, _REG_ID, one)
        except OSError as e:
            found = ", ".join(["0x%02x" % a for a in i2c.scan()]) or "none"
            msg = "no device answers at %s (%s); devices found: %s" % (where, why(e), found)
            raise OSError(msg) from None
        chip = one[0]
        if chip != _CHIP_ID:
            what = _other_chip(chip)
            raise OSError("chip id 0x%02x at %s: %s (a BME280 says 0x60)" % (chip, where, what))
        i2c.readfrom_mem_into(addr, _REG_CALIB_TP, calib)
        (self.t1, self.t2, self.t3) = struct.unpack_from("<Hhh", calib, 0)
        (self.p1, self.p2, self.p3, self.p4, self.p5) = struct.unpack_from("<Hhhhh", calib, 6)
        (self.p6, self.p7, self.p8, self.p9) = struct.unpack_from("<hhhh", calib, 16)
        self.h1 = calib[25]
        h = memoryview(calib)[:7]
        i2c.readfrom_mem_into(addr, _REG_CALIB_H, h)
        self.h2 = struct.unpack_from("<h", calib, 0)[0]
        self.h3 = calib[2]
        self.h4 = (_signed8(calib[3]) << 4) | (calib[4] & 0x0F)
        self.h5 = (_signed8(calib[5]) << 4) | (calib[4] >> 4)
        self.h6 = _signed8(calib[6])
        if self.t1 == 0 or self.p1 == 0:
            raise OSError("calibration at %s reads as zeros: chip not ready or bus fault" % where)
        # Sleep first: config writes are ignored in normal mode. ctrl_hum takes effect with the
        # next ctrl_meas write.
        reg = bytearray(1)
        for address, value in (
            (_REG_CTRL_MEAS, 0),
            (_REG_CTRL_HUM, _OSRS_X1),
            (_REG_CONFIG, _STANDBY_1000_MS << 5),
            (_REG_CTRL_MEAS, (_OSRS_X1 << 5) | (_OSRS_X1 << 2) | _MODE_NORMAL),
        ):
            reg[0] = value
            i2c.writeto_mem(addr, address, reg)

    def read(self):
        b = self._buf
        self._i2c.readfrom_mem_into(self.address, _REG_DATA, b)
        adc_p = (b[0] << 12) | (b[1] << 4) | (b[2] >> 4)
        adc_t = (b[3] << 12) | (b[4] << 4) | (b[5] >> 4)
        adc_h = (b[6] << 8) | b[7]
        if adc_t == _NO_VALUE_20 or adc_p == _NO_VALUE_20 or adc_h == _NO_VALUE_16:
            raise OSError("no measurement yet (the chip was just started or reset)")
        t_fine = self.t_fine(adc_t)
        return (
            t_fine / 5120.0,
            self.humidity(adc_h, t_fine),
            self.pressure(adc_p, t_fine) / 100.0,
        )

    def t_fine(self, adc_t):
        # Temperature in units of 1/5120 degree C: the datasheet's t_fine, input to the others.
        t1 = self.t1
        x = adc_t / 16384.0 - t1 / 1024.0
        y = adc_t / 131072.0 - t1 / 8192.0
        return x * self.t2 + y * y * self.t3

    def pressure(self, adc_p, t_fine):
        # Pa.
        var1 = t_fine / 2.0 - 64000.0
        var2 = var1 * var1 * self.p6 / 32768.0
        var2 = var2 + var1 * self.p5 * 2.0
        var2 = var2 / 4.0 + self.p4 * 65536.0
        var1 = (self.p3 * var1 * var1 / 524288.0 + self.p2 * var1) / 524288.0
        var1 = (1.0 + var1 / 32768.0) * self.p1
        p = 1048576.0 - adc_p
        p = (p - var2 / 4096.0) * 6250.0 / var1
        var1 = self.p9 * p * p / 2147483648.0
        var2 = p * self.p8 / 32768.0
        return p + (var1 + var2 + self.p7) / 16.0

    def humidity(self, adc_h, t_fine):
        # %RH, clipped to 0..100.
        h = t_fine - 76800.0
        h = (adc_h - (self.h4 * 64.0 + self.h5 / 16384.0 * h)) * (
            self.h2 / 65536.0 * (1.0 + self.h6 / 67108864.0 * h * (1.0 + self.h3 / 67108864.0 * h))
        )
        h = h * (1.0 - self.h1 * h / 524288.0)
        if h > 100.0:
            return 100.0
        if h < 0.0:
            return 0.0
        return h


def make(spec, clock):
    # What sensor_setup.driver_for() calls, the same for every driver.
    return BME280(spec)
