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
        # Once the window is full its values stay sorted in the scratch list: the oldest is
        # found there and replaced by the new one, and the list sorted again, each in C.
        if x != x:
            return x  # NaN is no value: it passes as it came, and the window keeps its own
        ring = self._ring
        s = self._scratch
        if self._count < self.size:
            ring[self._next] = x
            n = self.fill()
        else:
            s[s.index(ring[self._next])] = x
            ring[self._next] = x
            s.sort()
            n = self.size
        self._next += 1
        if self._next == self.size:
            self._next = 0
        if n & 1:
            return s[n >> 1]
        n >>= 1
        return (s[n - 1] + s[n]) / 2

    def fill(self):
        # While the window fills: the values seen so far sorted into the scratch list by
        # insertion; their count. (Named as the encoder's `fill`: a name the board interns
        # anyway, where a new one would stay in the qstr pools for good.)
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
