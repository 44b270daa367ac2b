# The moving-median filter (config: {"type": "median", "size": n}). Loaded only when a sensor
# uses it; update() runs once per reading, so its storage is allocated once and reused.


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
        if self._count < self.size:
            self._count += 1
        n = self._count
        s = self._scratch
        # Insertion sort of the n live values into the scratch list: at most 15 of them. A
        # while, not a for over range(), and no local for the middle: this runs every reading,
        # and a frame past 11 words would be put on the heap at every call.
        i = 0
        while i < n:
            v = ring[i]
            j = i
            while j > 0 and s[j - 1] > v:
                s[j] = s[j - 1]
                j -= 1
            s[j] = v
            i += 1
        if n & 1:
            return s[n >> 1]
        n >>= 1
        return (s[n - 1] + s[n]) / 2
