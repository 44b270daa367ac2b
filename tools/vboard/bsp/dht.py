# dht for the virtual board. Unwired (the default), measure() times out as the real module does
# when no sensor answers; with the supervisor's `wired` switch on, a DHT on any pin answers with
# the room's temperature and humidity (switches room_c, room_rh), coded as the sensor sends them.
# Host-only.
from errno import ETIMEDOUT

import _vboard


class DHTBase:
    def __init__(self, pin):
        self.pin = pin
        self.buf = bytearray(5)

    def measure(self):
        if not _vboard.switch("wired", False):
            raise OSError(ETIMEDOUT)
        self._code(_vboard.switch("room_c", 21.5), _vboard.switch("room_rh", 45.0))


class DHT11(DHTBase):
    def _code(self, c, rh):
        self.buf[0] = int(rh + 0.5)
        self.buf[2] = int(c + 0.5)

    def humidity(self):
        return self.buf[0]

    def temperature(self):
        return self.buf[2]


class DHT22(DHTBase):
    def _code(self, c, rh):
        h = int(rh * 10 + 0.5)
        t = int(abs(c) * 10 + 0.5)
        self.buf[0:4] = bytes([h >> 8, h & 255, (t >> 8) | (0x80 if c < 0 else 0), t & 255])

    def humidity(self):
        return (self.buf[0] << 8 | self.buf[1]) * 0.1

    def temperature(self):
        t = ((self.buf[2] & 0x7F) << 8 | self.buf[3]) * 0.1
        return -t if self.buf[2] & 0x80 else t
