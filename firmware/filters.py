# Smoothing filters and the report-on-change gate. Plain code, no hardware: every update runs once
# per reading, so storage is allocated once and reused (no lists built per call).


class MovingMedian:
    # Median of the last `size` values; until `size` values came in, the median of those seen.
    def __init__(self, size):
        if size < 1:
            raise ValueError("median size must be at least 1, not %r" % (size,))
        self.size = size
        self._ring = [0.0] * size
        self._scratch = [0.0] * size
        self._next = 0
        self._count = 0

    def reset(self):
        self._next = 0
        self._count = 0

    def update(self, x):
        ring = self._ring
        ring[self._next] = x
        self._next += 1
        if self._next == self.size:
            self._next = 0
        if self._count < self.size:
            self._count += 1
        n = self._count
        s = self._scratch
        # Insertion sort of the n live values into the scratch list: at most 15 of them.
        for i in range(n):
            v = ring[i]
            j = i
            while j > 0 and s[j - 1] > v:
                s[j] = s[j - 1]
                j -= 1
            s[j] = v
        mid = n >> 1
        if n & 1:
            return s[mid]
        return (s[mid - 1] + s[mid]) / 2


class Ema:
    # Exponential moving average: y += alpha * (x - y); the first value passes through.
    def __init__(self, alpha):
        if not 0 < alpha <= 1:
            raise ValueError("ema alpha must be in (0, 1], not %r" % (alpha,))
        self.alpha = alpha
        self._y = None

    def reset(self):
        self._y = None

    def update(self, x):
        y = self._y
        y = x if y is None else y + self.alpha * (x - y)
        self._y = y
        return y


def make_filter(spec):
    # spec: None or a validated filter dict ({"type": "median", "size": 5} / {"type": "ema", ...}).
    if spec is None:
        return None
    kind = spec.get("type")
    if kind == "median":
        return MovingMedian(spec["size"])
    if kind == "ema":
        return Ema(spec["alpha"])
    raise ValueError("unknown filter type %r (median or ema)" % (kind,))


class ChangeGate:
    # Decides whether one sensor's values must be reported now, and remembers what was reported.
    # delta None: every reading is reported. Otherwise a reading is reported when it is the first,
    # when any value moved by delta or more since the last report, when max_silence_ms passed since
    # the last report, or when the sensor started or stopped failing (values None).
    def __init__(self, delta, max_silence_ms):
        self.delta = delta
        self.max_silence_ms = max_silence_ms
        self._last = None  # list of the last reported values, allocated at the first report
        self._failing = False  # the last report was null
        self._reported = False
        self._at = 0

    def due(self, values, now_ms, ticks_diff):
        # values: a sequence of numbers, or None when the sensor failed. Records it when due.
        if not self._changed(values, now_ms, ticks_diff):
            return False
        self._reported = True
        self._at = now_ms
        if values is None:
            self._failing = True
            return True
        self._failing = False
        if self.delta is None:
            return True  # every reading is reported: nothing compares with the last one
        last = self._last
        n = len(values)
        if last is None or len(last) != n:
            last = self._last = [0.0] * n
        for i in range(n):
            last[i] = values[i]
        return True

    def _changed(self, values, now_ms, ticks_diff):
        delta = self.delta
        if delta is None or not self._reported:
            return True
        if (values is None) != self._failing:
            return True
        elapsed = ticks_diff(now_ms, self._at)
        # A negative diff means more than half the tick period went by (over 6 days on a board).
        if elapsed < 0 or elapsed >= self.max_silence_ms:
            return True
        last = self._last
        if values is None or last is None:
            return False  # still failing (a report of values always fills last)
        if len(values) != len(last):
            return True
        for i in range(len(last)):
            d = values[i] - last[i]
            if d >= delta or -d >= delta:
                return True
        return False
