# The node's sensors as one flat list of JSON keys. Each cycle sample() reads every driver once,
# filters the values, and says per key whether it is due for reporting. A sensor that is absent or
# failing reports null for its keys and the loop goes on; the console hears about it once per
# change of state, not once per cycle.
from micropython import const

from firmware.filters import ChangeGate, make_filter
from firmware.log import why

RETRY_MS = const(60000)  # how often a sensor whose driver could not start is tried again

_NEVER_READ = const(0)
_OK = const(1)
_FAILING = const(2)


def sensor_keys(kind, name):
    # The JSON keys a sensor fills: one per quantity it measures.
    if kind in ("dht11", "dht22"):
        return (name + "_temperature", name + "_humidity")
    if kind == "bme280":
        return (name + "_temperature", name + "_humidity", name + "_pressure")
    return (name,)


def keys_for(spec):
    # The JSON keys a sensor fills, known without its driver (so an absent sensor keeps its place).
    return sensor_keys(spec["type"], spec["name"])


def describe(spec):
    # "room (dht22 on pin 4)": how the console names a sensor.
    kind = spec["type"]
    if kind == "bme280":
        where = " at 0x%02x on i2c %d" % (spec["address"], spec["i2c"])
    elif "pin" in spec:
        where = " on pin %d" % spec["pin"]
    else:
        where = ""
    return "%s (%s%s)" % (spec["name"], kind, where)


def driver_for(spec, clock):
    # Builds the driver for spec["type"], importing only that driver's module.
    kind = spec["type"]
    if kind == "sim":
        from firmware.sensor_sim import SimSensor

        return SimSensor(spec, clock.ticks_ms, clock.ticks_diff)
    if kind == "mcu":
        from firmware.sensor_mcu import McuTemperature

        return McuTemperature(spec)
    if kind in ("dht11", "dht22"):
        from firmware.sensor_dht import DHT

        return DHT(spec, clock)
    if kind == "ds18b20":
        from firmware.sensor_ds18b20 import DS18B20

        return DS18B20(spec, clock)
    if kind == "bme280":
        from firmware.sensor_bme280 import BME280

        return BME280(spec)
    if kind == "adc":
        from firmware.sensor_adc import ADCSensor

        return ADCSensor(spec)
    raise ValueError("unknown sensor type %r" % (kind,))


class _Slot:
    # One sensor: its driver (None while it could not start), where its keys sit in the flat
    # lists, one filter per key (or None), its change gate and a preallocated value buffer.
    def __init__(self, spec, start, n, gate, filters):
        self.spec = spec
        self.name = spec["name"]
        self.driver = None
        self.tried_at = 0
        self.start = start
        self.n = n
        self.gate = gate
        self.filters = filters
        self.buf = [0.0] * n
        self.state = _NEVER_READ


class SensorSet:
    # specs: validated sensor dicts (config.validate); log(tag, msg); clock: ticks_ms() and
    # ticks_diff(a, b) with MicroPython's semantics; make_driver(spec): builds a driver (default:
    # driver_for with this clock). keys/values/due are parallel lists, one entry per JSON key.
    def __init__(self, specs, log, clock, make_driver=None):
        self._log = log
        self._clock = clock
        self._make = make_driver
        self.keys = []
        self.values = []
        self.due = []
        self.specs = []  # the sensors kept, as validated: what Home Assistant discovery describes
        self.errors = 0  # failed reads since boot
        self._slots = []
        now = clock.ticks_ms()
        for spec in specs:
            keys = keys_for(spec)
            taken = [k for k in keys if k in self.keys]
            if taken:
                log(
                    "sensor",
                    "%s: key %s is already taken; sensor skipped" % (spec["name"], taken[0]),
                )
                continue
            filters = None
            if spec["filter"] is not None:
                filters = [make_filter(spec["filter"]) for _ in keys]
            gate = ChangeGate(spec["delta"], int(spec["max_silence_s"] * 1000))
            slot = _Slot(spec, len(self.keys), len(keys), gate, filters)
            for k in keys:
                self.keys.append(k)
                self.values.append(None)
                self.due.append(False)
            self.specs.append(spec)
            self._slots.append(slot)
            self._start(slot, now, True)

    def _start(self, slot, now, first):
        # Tries to build the slot's driver; says so on the first failure and on a late success.
        slot.tried_at = now
        try:
            if self._make is None:
                driver = driver_for(slot.spec, self._clock)
            else:
                driver = self._make(slot.spec)
        except Exception as e:
            if first:
                self._log("sensor", "%s: %s; its keys report null" % (describe(slot.spec), why(e)))
            return
        slot.driver = driver
        if not first:
            self._log("sensor", "%s: found; reading it from now on" % describe(slot.spec))

    def sample(self, now_ms):
        # Reads every sensor once; True when any key is due for reporting.
        clock = self._clock
        values = self.values
        any_due = False
        for slot in self._slots:
            if slot.driver is None and clock.ticks_diff(now_ms, slot.tried_at) >= RETRY_MS:
                self._start(slot, now_ms, False)
            got = self._read(slot)
            start = slot.start
            if got is None:
                for i in range(slot.n):
                    values[start + i] = None
            else:
                buf = slot.buf
                filters = slot.filters
                for i in range(slot.n):
                    v = got[i]
                    if filters is not None:
                        v = filters[i].update(v)
                    buf[i] = v
                    values[start + i] = v
                got = buf
            due = slot.gate.due(got, now_ms, clock.ticks_diff)
            for i in range(slot.n):
                self.due[start + i] = due
            if due:
                any_due = True
        return any_due

    def _read(self, slot):
        # The driver's values, or None after counting and (on a change of state) logging a fault.
        driver = slot.driver
        if driver is None:
            return None
        try:
            got = driver.read()
            if len(got) != slot.n:
                raise ValueError("driver gave %d values for %d keys" % (len(got), slot.n))
        except Exception as e:
            self.errors += 1
            if slot.state != _FAILING:
                self._log("sensor", "%s read failed: %s; reporting null" % (slot.name, why(e)))
                slot.state = _FAILING
            return None
        if slot.state == _FAILING:
            self._log("sensor", "%s reads again" % slot.name)
            if slot.filters is not None:
                # Values from before the outage would bend the first ones after it.
                for f in slot.filters:
                    f.reset()
        slot.state = _OK
        return got
