# dht for the virtual board: nothing is wired to any pin, so measure() times out as the real
# module does when no sensor answers. Host-only.
from errno import ETIMEDOUT


class DHTBase:
    def __init__(self, pin):
        self.pin = pin
        self.buf = bytearray(5)

    def measure(self):
        raise OSError(ETIMEDOUT)


class DHT11(DHTBase):
    def humidity(self):
        return self.buf[0]

    def temperature(self):
        return self.buf[2]


class DHT22(DHTBase):
    def humidity(self):
        return (self.buf[0] << 8 | self.buf[1]) * 0.1

    def temperature(self):
        t = ((self.buf[2] & 0x7F) << 8 | self.buf[3]) * 0.1
        return -t if self.buf[2] & 0x80 else t
