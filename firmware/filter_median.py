# The moving-median filter (config: {"type": "median", "size": n}). Loaded only when a sensor
# uses it; update() runs once per reading, so its storage is allocated once and reused.


class _Key:
    # Hands back the key it is subscripted with: MicroPython has no slice() constructor.
    def __getitem__(self, key):
        return key


# A slice of a whole list, built once: `s[:] = ring` builds one, 16 bytes of heap, at every call.
_WHOLE = _Key()[:]
del _Key


def make(spec):
    # spec: the validated filter dict (sensor_setup.make_filter)
    return MovingMedian(spec["size"])


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
        s = self._scratch
        if self._count < self.size:
            n = self._first()
        else:  # copied and sorted in C: each step of a sort in Python is a bytecode
            s[_WHOLE] = ring
            s.sort()
            n = self.size
        if n & 1:
            return s[n >> 1]
        n >>= 1
        return (s[n - 1] + s[n]) / 2

    def _first(self):
        # Until size values came in, the live ones sorted into the scratch list by insertion
        # (at most 15): their count. A while, not a for over range(): a frame past 11 words
        # would be put on the heap at every call.
        self._count += 1
        n = self._count
        ring = self._ring
        s = self._scratch
        i = 0
        while i < n:
            v = ring[i]
            j = i
            while j > 0 and s[j - 1] > v:
                s[j] = s[j - 1]
                j -= 1
            s[j] = v
            i += 1
        return n
