# The report-on-change gate. Plain code, no hardware: it runs once per reading, so storage is
# allocated once and reused. The smoothing filters live in modules of their own
# (filter_median.py, filter_ema.py), loaded only when a sensor uses one.


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
