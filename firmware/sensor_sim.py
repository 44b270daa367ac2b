# A simulated sensor: base + amplitude * sin(2*pi*t/period_s) + noise, where t counts from the
# driver's construction and the noise comes from a seeded 32-bit xorshift, so the same seed gives
# the same series on every run (CPython or MicroPython).
import math

from micropython import const

_TWO_PI = 2 * math.pi
_WARMUP = const(16)  # xorshift rounds before the first value: small seeds start with few bits set


class SimSensor:
    # ticks_ms: a callable returning the current tick count; ticks_diff: its difference function
    # (time.ticks_ms and time.ticks_diff on a board).
    def __init__(self, spec, ticks_ms, ticks_diff):
        self.keys = (spec["name"],)
        self.base = spec["base"]
        self.amplitude = spec["amplitude"]
        self.noise = spec["noise"]
        self.period_ms = max(1, int(spec["period_s"] * 1000 + 0.5))
        # Fixed factors computed once: every float operation in read() is a heap allocation.
        self._rad_per_ms = _TWO_PI / self.period_ms
        self._noise_step = self.noise / 32768
        self._out = [0.0]  # read()'s result, reused: the caller copies the values out
        self._ticks_ms = ticks_ms
        self._ticks_diff = ticks_diff
        self._then = ticks_ms()
        self._phase_ms = 0  # time into the current period, in whole ms: no float drift
        seed = spec["seed"] & 0xFFFFFFFF
        if seed == 0:
            seed = 0x9E3779B9  # xorshift state must not be 0
        # The 32-bit state lives in two 16-bit halves so that no step needs a big integer.
        self._hi = seed >> 16
        self._lo = seed & 0xFFFF
        for _ in range(_WARMUP):
            self._step()

    def _step(self):
        # One xorshift32 step (13, 17, 5) on (hi, lo); returns the new high half, 0..65535.
        hi = self._hi
        lo = self._lo
        hi ^= ((hi << 13) | (lo >> 3)) & 0xFFFF  # x ^= x << 13
        lo ^= (lo << 13) & 0xFFFF
        lo ^= hi >> 1  # x ^= x >> 17
        hi ^= ((hi << 5) | (lo >> 11)) & 0xFFFF  # x ^= x << 5
        lo ^= (lo << 5) & 0xFFFF
        self._hi = hi
        self._lo = lo
        return hi

    def read(self):
        now = self._ticks_ms()
        elapsed = self._ticks_diff(now, self._then)
        self._then = now
        if elapsed > 0:
            self._phase_ms = (self._phase_ms + elapsed) % self.period_ms
        wave = math.sin(self._rad_per_ms * self._phase_ms)
        # noise * jitter with jitter = (step - 32768) / 32768, so -noise <= it < noise
        out = self._out
        out[0] = self.base + self.amplitude * wave + self._noise_step * (self._step() - 32768)
        return out


def make(spec, clock):
    # What sensor_setup.driver_for() calls, the same for every driver.
    return SimSensor(spec, clock.ticks_ms, clock.ticks_diff)
