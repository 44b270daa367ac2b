# The node's sensors as one flat list of JSON keys. Each cycle sample() reads every driver once,
# filters the values, and says per key whether it is due for reporting. A sensor that is absent or
# failing reports null for its keys and the loop goes on; the console hears about it once per
# change of state, not once per cycle. The report-on-change gate is here too: it runs in every
# cycle (its storage is allocated once and reused). The smoothing filters live in modules of
# their own (filter_median.py, filter_ema.py), loaded only when a sensor uses one.
from micropython import const

from firmware.log import why
from firmware.unload import drop

_RETRY_MS = const(60000)  # how often a sensor whose driver could not start is tried again

_NEVER_READ = const(0)
_OK = const(1)
_FAILING = const(2)


class Slot:
    # One sensor: its driver (None while it could not start), where its keys sit in the flat
    # lists, one filter per key (or None), its change gate (None without a delta: every
    # reading is due) and a preallocated value buffer.
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
        self.log = log
        self.clock = clock
        self.make = make_driver
        self.keys = []
        self.values = []
        self.due = []
        self.errors = 0  # failed reads since boot
        self.slots = []
        from firmware import sensor_setup

        sensor_setup.add(self, specs)
        drop("sensor_setup")

    def sample(self, now_ms):
        # Reads every sensor once; True when any key is due for reporting. This and what it
        # calls run every cycle, so each keeps its frame within 11 words (a larger frame is
        # allocated on the heap and freed at every call): loops count with a local instead of
        # iterating, whose state takes four words, and the rare paths are methods of their own.
        any_due = False
        i = 0
        while i < len(self.slots):
            if self._sample(self.slots[i], now_ms):
                any_due = True
            i += 1
        return any_due

    def _sample(self, slot, now_ms):
        # One sensor: read, filtered into the flat lists, and whether its keys are due.
        if slot.driver is None and self.clock.ticks_diff(now_ms, slot.tried_at) >= _RETRY_MS:
            self.start(slot, now_ms)
        got = None if slot.driver is None else self.read(slot)
        got = self._store(slot, got)
        due = slot.gate is None or slot.gate.due(got, now_ms, self.clock.ticks_diff)
        i = slot.start
        while i < slot.start + slot.n:
            self.due[i] = due
            i += 1
        return due

    # start(), read() and ChangeGate.update() are named with names the board has interned
    # anyway: a new name stays in the qstr pools for good, and the running node is a few names
    # under the pools' next step (4.5 KB at once; README, "Where the heap goes").
    def start(self, slot, now_ms):
        # A sensor that could not start: its setup code is loaded only for the retry.
        from firmware import sensor_setup

        sensor_setup.start(self, slot, now_ms, False)
        drop("sensor_setup")

    def read(self, slot):
        # The driver's values, or None once its failure is settled.
        try:
            got = slot.driver.read()
            if len(got) != slot.n:
                raise ValueError("driver gave %d values for %d keys" % (len(got), slot.n))
        except Exception as e:
            return self._settle(slot, e)
        if slot.state != _OK:
            self._settle(slot, None)
        return got

    def _store(self, slot, values):
        # The driver's values, filtered, into the slot's buffer and the flat list (None: nulls
        # there).
        i = 0
        if values is None:
            while i < slot.n:
                self.values[slot.start + i] = None
                i += 1
            return None
        filters = slot.filters
        while i < slot.n:
            v = values[i] if filters is None else filters[i].update(values[i])
            slot.buf[i] = v
            self.values[slot.start + i] = v
            i += 1
        return slot.buf

    def _settle(self, slot, e):
        # What a read means for the slot's state when it changes it: e is the exception that
        # failed it (counted; said on the console when the sensor starts failing), or None for a
        # good read (the first, or the first after a failure, said on the console).
        if e is not None:
            self.errors += 1
            if slot.state != _FAILING:
                self.log("sensor", "%s read failed: %s; reporting null" % (slot.name, why(e)))
                slot.state = _FAILING
            return None
        if slot.state == _FAILING:
            self.log("sensor", "%s reads again" % slot.name)
            if slot.filters is not None:
                # Values from before the outage would bend the first ones after it.
                for f in slot.filters:
                    f.reset()
        slot.state = _OK


class ChangeGate:
    # Decides whether one sensor's values must be reported now, and remembers what was reported.
    # A reading is reported when it is the first, when any value moved by delta or more since
    # the last report, when max_silence_ms passed since the last report, or when the sensor
    # started or stopped failing (values None). A sensor without a delta has no gate: every
    # reading is reported (sensor_setup.add).
    def __init__(self, delta, max_silence_ms):
        self.delta = delta
        self.max_silence_ms = max_silence_ms
        self._last = None  # list of the last reported values, allocated at the first report
        self._failing = False  # the last report was null
        self._reported = False
        self._at = 0

    def due(self, values, now_ms, ticks_diff):
        # values: a sequence of numbers, or None when the sensor failed. Records it when due.
        # It runs every cycle: its frame, and each helper's, stays within 11 words, off the heap.
        delta = self.delta
        if self._reported and (values is None) == self._failing:
            # Reported before, in the same state: due past max_silence_ms (a negative diff means
            # more than half the tick period went by, over 6 days on a board) or once a value
            # moved by delta or more.
            elapsed = ticks_diff(now_ms, self._at)
            if 0 <= elapsed < self.max_silence_ms:
                if values is None or self._last is None:
                    return False  # still failing (a report of values always fills last)
                if not self._moved(values, delta):
                    return False
        self.update(values, now_ms)
        return True

    def _moved(self, values, delta):
        # Any value moved by delta or more since the last report (or the count changed).
        last = self._last
        if last is None or len(values) != len(last):
            return True
        i = 0
        while i < len(last):
            d = values[i] - last[i]
            if d >= delta or -d >= delta:
                return True
            i += 1
        return False

    def update(self, values, now_ms):
        # What due() decided is reported: remembered for the next decision.
        self._reported = True
        self._at = now_ms
        if values is None:
            self._failing = True
            return
        self._failing = False
        last = self._last
        n = len(values)
        if last is None or len(last) != n:
            last = self._last = [0.0] * n
        i = 0
        while i < n:
            last[i] = values[i]
            i += 1
