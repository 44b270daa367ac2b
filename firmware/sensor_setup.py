# Building the sensor set: the JSON keys each sensor fills, how the console names it, its driver
# and its filters. Runs at boot and when a sensor that could not start is tried again; the loop's
# own part (firmware/sensors.py) stays resident, this module is dropped after each use.
from micropython import const

from firmware.log import why
from firmware.sensors import ChangeGate, Slot


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


# Sensor type -> its driver's module (firmware.sensor_<module>, each with make(spec, clock)), in
# one string: names in code would all be interned at the first boot, the drivers never used too.
_DRIVERS = const(" sim:sim mcu:mcu dht11:dht dht22:dht ds18b20:ds18b20 bme280:bme280 adc:adc ")


def driver_for(spec, clock):
    # Builds the driver for spec["type"], importing only that driver's module.
    kind = spec["type"]
    at = _DRIVERS.find(" %s:" % kind)
    if at < 0:
        raise ValueError("unknown sensor type %r" % (kind,))
    module = _DRIVERS[at + len(kind) + 2 : _DRIVERS.find(" ", at + 1)]
    return __import__("firmware.sensor_" + module, None, None, ("make",)).make(spec, clock)


def make_filter(spec):
    # spec: None or a validated filter dict ({"type": "median", "size": 5} / {"type": "ema", ...}).
    # Only the module of the filter in use is loaded: its instances keep it on the heap.
    if spec is None:
        return None
    kind = spec.get("type")
    # Each type is the module firmware.filter_<type> with make(spec); a text, as _DRIVERS is.
    if type(kind) is not str or " median: ema: ".find(" %s:" % kind) < 0:
        raise ValueError("unknown filter type %r (median or ema)" % (kind,))
    return __import__("firmware.filter_" + kind, None, None, ("make",)).make(spec)


def described(specs, log=None):
    # (spec, its JSON keys) for each sensor the set keeps: one with a key that a sensor before it
    # took is skipped (and said, given log). Home Assistant's configs are built from this at boot
    # (wiring.py), before the set exists.
    kept = []
    seen = []
    for spec in specs:
        keys = keys_for(spec)
        taken = [k for k in keys if k in seen]
        if taken:
            if log is not None:
                log(
                    "sensor",
                    "%s: key %s is already taken; sensor skipped" % (spec["name"], taken[0]),
                )
            continue
        seen.extend(keys)
        kept.append((spec, keys))
    return kept


def add(sensors, specs):
    # Fills a new SensorSet from the validated specs: a slot per sensor, a driver started for each.
    now = sensors.clock.ticks_ms()
    for spec, keys in described(specs, sensors.log):
        filters = None
        if spec["filter"] is not None:
            filters = [make_filter(spec["filter"]) for _ in keys]
        gate = None  # no delta: every reading is reported, there is nothing to compare
        if spec["delta"] is not None:
            gate = ChangeGate(spec["delta"], int(spec["max_silence_s"] * 1000))
        slot = Slot(spec, len(sensors.keys), len(keys), gate, filters)
        for k in keys:
            sensors.keys.append(k)
            sensors.values.append(None)
            sensors.due.append(False)
        sensors.slots.append(slot)
        start(sensors, slot, now, True)


def start(sensors, slot, now, first):
    # Tries to build the slot's driver; says so on the first failure and on a late success.
    slot.tried_at = now
    try:
        if sensors.make is None:
            driver = driver_for(slot.spec, sensors.clock)
        else:
            driver = sensors.make(slot.spec)
    except Exception as e:
        if first:
            sensors.log("sensor", "%s: %s; its keys report null" % (describe(slot.spec), why(e)))
        return
    slot.driver = driver
    if not first:
        sensors.log("sensor", "%s: found; reading it from now on" % describe(slot.spec))
