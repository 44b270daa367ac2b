# DHT11 / DHT22 (AM2302) through MicroPython's built-in dht module. measure() bit-bangs the
# one-wire protocol and raises OSError on a timeout (no sensor, no pull-up) or a checksum error.


class DHT:
    # clock: optional object with ticks_ms()/ticks_diff() (the time module on a board). With it,
    # reads closer together than the sensor allows (1 s DHT11, 2 s DHT22) return the last values
    # instead of disturbing a sensor that is not ready and would answer with a timeout.
    def __init__(self, spec, clock=None):
        import dht
        import machine

        kind = spec["type"]
        name = spec["name"]
        if kind == "dht11":
            cls = dht.DHT11
            self.min_interval_ms = 1000
        elif kind == "dht22":
            cls = dht.DHT22
            self.min_interval_ms = 2000
        else:
            raise ValueError("DHT driver given sensor type %r (dht11 or dht22)" % (kind,))
        self.keys = (name + "_temperature", name + "_humidity")
        self._dev = cls(machine.Pin(spec["pin"]))
        self._clock = clock
        self._measured_at = None  # ticks of the last measure() attempt
        self._last = None  # values of that attempt, if it succeeded

    def read(self):
        clock = self._clock
        if clock is not None:
            now = clock.ticks_ms()
            then = self._measured_at
            if then is not None and clock.ticks_diff(now, then) < self.min_interval_ms:
                if self._last is None:
                    raise OSError(
                        "asked again within %d ms of a failed read" % self.min_interval_ms
                    )
                return self._last
            self._measured_at = now
        self._last = None
        dev = self._dev
        dev.measure()
        self._last = (dev.temperature(), dev.humidity())
        return self._last


def make(spec, clock):
    # What sensor_setup.driver_for() calls, the same for every driver.
    return DHT(spec, clock)
