"""CPython stand-in for MicroPython's dht module: sensors on pins, values and faults set by tests.

sensors[pin_id] = {"temperature": t, "humidity": h} puts a sensor on that pin; faults[pin_id] =
an exception makes measure() raise it. measure() on a pin with no sensor raises OSError(110)
(ETIMEDOUT), as the real module does when nothing answers.
"""

sensors: dict = {}
faults: dict = {}
measures: dict = {}  # pin id -> how many times measure() ran


def reset_stub():
    sensors.clear()
    faults.clear()
    measures.clear()


class DHTBase:
    def __init__(self, pin):
        self.pin = pin
        self.buf = bytearray(5)
        self._values = None

    def measure(self):
        pid = self.pin.id
        measures[pid] = measures.get(pid, 0) + 1
        self._values = None
        if pid in faults:
            raise faults[pid]
        if pid not in sensors:
            raise OSError(110)
        self._values = sensors[pid]

    def _get(self, key):
        if self._values is None:
            raise AssertionError("read before a successful measure()")
        return self._values[key]


class DHT11(DHTBase):
    def humidity(self):
        return self._get("humidity")

    def temperature(self):
        return self._get("temperature")


class DHT22(DHTBase):
    def humidity(self):
        return self._get("humidity")

    def temperature(self):
        return self._get("temperature")
