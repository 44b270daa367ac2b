# Runs under the real MicroPython runtime (unix port):
#     .venv/bin/micropython host_tests/mpy_sensors_check.py
# Imports the sensor modules as the board does, samples simulated sensors and a failing one with a
# fake clock that wraps, and prints one "check <name>: <result>" line per fact;
# test_sensors.py runs it and asserts on those lines.
import gc
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _here + "/..")

from firmware.filter_median import MovingMedian  # noqa: E402
from firmware.sensor_sim import SimSensor  # noqa: E402
from firmware.sensors import SensorSet  # noqa: E402

_PERIOD = 1 << 30


class Clock:
    # time.ticks_ms/ticks_diff with the boards' wrap at 2**30; starts just before the wrap.
    def __init__(self):
        self.now = _PERIOD - 2500

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return (a - b + _PERIOD // 2) % _PERIOD - _PERIOD // 2


class Broken:
    keys = ("broken",)

    def read(self):
        raise OSError(110)


clock = Clock()


def make(spec):
    if spec["type"] == "adc":
        return Broken()
    return SimSensor(spec, clock.ticks_ms, clock.ticks_diff)


def sim(name, seed, delta=None, filt=None):
    spec = {"type": "sim", "name": name, "base": 20.0, "amplitude": 5.0, "period_s": 600}
    spec.update({"noise": 0.2, "seed": seed, "delta": delta, "max_silence_s": 300})
    spec["filter"] = filt
    return spec


broken = {"type": "adc", "name": "broken", "pin": 26, "scale": 1.0, "offset": 0.0}
broken.update({"delta": None, "max_silence_s": 300, "filter": None})
specs = [
    sim("temperature", 1),
    sim("smooth", 2, filt={"type": "median", "size": 5}),
    sim("gated", 3, delta=100.0),
    broken,
]

logged = []
sensors = SensorSet(specs, lambda tag, msg: logged.append(tag + ": " + msg), clock, make)
dues = []
for _ in range(5):
    clock.now = (clock.now + 1000) % _PERIOD
    sensors.sample(clock.now)
    dues.append("".join(["1" if d else "0" for d in sensors.due]))

print("check keys:", ",".join(sensors.keys))
print("check numbers:", all([type(v) is float for v in sensors.values[:3]]))
print("check in_range:", all([14.0 < v < 26.0 for v in sensors.values[:3]]))
print("check broken_value:", sensors.values[3])
print("check errors:", sensors.errors)
print("check due:", " ".join(dues))
print("check log_lines:", len(logged))
print("check log:", logged[0] if logged else "")

clock.now = _PERIOD - 2500
first = SensorSet(specs[:1], lambda tag, msg: None, clock, make)
clock.now = _PERIOD - 1500
first.sample(clock.now)
print("check deterministic:", repr(first.values[0]))


def sample_alloc(n):
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(n):
        clock.now = (clock.now + 1000) % _PERIOD
        sensors.sample(clock.now)
    return gc.mem_alloc() - before


# What a sample allocates (the drivers' floats and tuples) is the same every cycle: no growth.
sample_alloc(3)
a, b = sample_alloc(10), sample_alloc(10)
print("check sample_alloc:", a, b, a == b)

# The median's update allocates nothing once its window is full and the count is odd.
m = MovingMedian(5)
xs = [1.5, 9.25, 3.0, 7.75, 5.5]
for x in xs:
    m.update(x)
gc.collect()
before = gc.mem_alloc()
for _ in range(20):
    for x in xs:
        m.update(x)
print("check median_alloc:", gc.mem_alloc() - before)
print("check median:", m.update(4.0))

# The hardware drivers on the host stubs (stubs/machine.py, onewire.py, ...), to prove they use
# only what this runtime has: memoryview reads into buffers, struct, binascii, raise ... from.
sys.path.insert(0, _here + "/stubs")
import struct  # noqa: E402

import machine  # noqa: E402
import onewire  # noqa: E402

from firmware.sensor_bme280 import BME280  # noqa: E402
from firmware.sensor_ds18b20 import DS18B20  # noqa: E402

regs = bytearray(256)
regs[0xD0] = 0x60
words = (27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
struct.pack_into("<HhhHhhhhhhhh", regs, 0x88, *words)  # Bosch's worked example
for reg, v in ((0xF7, 415148), (0xFA, 519888)):
    regs[reg] = v >> 12
    regs[reg + 1] = (v >> 4) & 0xFF
    regs[reg + 2] = (v & 0xF) << 4
machine.I2C.devices[0x76] = regs
bme = BME280({"name": "air", "i2c": 0, "sda": None, "scl": None, "address": 0x76})
t, _, p = bme.read()
print(f"check bme280: {t:.2f} {p * 100:.2f}")

onewire.bus(5).temps[b"\x28\xff\x64\x1e\x0f\x00\x00\xa1"] = 18.5
ds = DS18B20({"name": "water", "pin": 5, "rom": "28ff641e0f0000a1"})
try:
    ds.read()
    first = "value"
except OSError as e:
    first = str(e)
print(f"check ds18b20: {first} | {ds.read()[0]}")
try:
    DS18B20({"name": "water", "pin": 5, "rom": "28ff641e0f0000zz"})
    bad_rom = "accepted"
except ValueError as e:
    bad_rom = str(e)
print("check ds18b20_bad_rom:", bad_rom)
