# A reading's body. It goes out every cycle, so it is written into one preallocated buffer with
# no dict, no string building and no json.dumps (heartbeats and events: firmware/report.py).
from micropython import const

READING_MAX = const(1024)  # the longest reading config.py lets the sensors make
_DIGITS = b"0123456789"
_NULL = b"null"
_FRACTION_DIGITS = const(3)
_FRACTION_SCALE = const(1000)
_INF = float("inf")
_NINF = float("-inf")
# The longest value written: a fixed-point float (-999999999999999.999), "%g" of a larger one,
# null, or an int of up to 20 digits (seq, uptime, time, a sensor's raw count).
_VALUE_MAX = const(24)
_FRAME = len(b'{"seq":,"uptime_ms":,"ts":}')


def reading_bound(keys):
    # The longest reading these keys can make, every value at its longest: config.py refuses a
    # sensor whose keys would take it past READING_MAX, so encode() never meets a full buffer.
    n = _FRAME + 3 * _VALUE_MAX
    for k in keys:
        n += len(k) + 4 + _VALUE_MAX  # ,"key":value
    return n


class ReadingEncoder:
    # {"seq": n, "uptime_ms": t, "ts": s-or-null, "<key>": value-or-null, ...} into self.buf.

    def __init__(self, keys):
        # The buffer holds the longest reading these keys can make, and no more.
        self.size = reading_bound(keys)
        if self.size > READING_MAX:
            raise ValueError("readings could pass %d bytes: fewer keys" % READING_MAX)
        self.buf = bytearray(self.size)
        self.view = memoryview(self.buf)
        # The JSON text before each value is fixed at boot: ,"name":
        self.labels = [(',"' + k + '":').encode() for k in keys]
        self.n = 0
        self._out = self.view[:0]  # the last message's view, reused while its length holds

    def encode(self, seq, uptime_ms, ts, values, due):
        # Returns a memoryview of the message; valid until the next encode().
        self.n = 0
        self._raw(b'{"seq":')
        self._int(seq)
        self._raw(b',"uptime_ms":')
        self._int(uptime_ms)
        self._raw(b',"ts":')
        if ts is None:
            self._raw(_NULL)
        elif type(ts) is int:
            self._int(ts)
        elif ts[0]:  # [seconds // 100000, seconds % 100000], as the board gives it
            self._digits(ts[0], 0)
            self._digits(ts[1], 5)
        else:
            self._digits(ts[1], 0)
        labels = self.labels
        for i in range(len(labels)):
            if due[i]:
                self._raw(labels[i])
                self._number(values[i])
        self._raw(b"}")
        if len(self._out) != self.n:  # a reading's length rarely changes: no new view then
            self._out = self.view[: self.n]
        return self._out

    def _raw(self, b):
        n = self.n
        end = n + len(b)
        if end > self.size:
            raise ValueError("reading longer than %d bytes" % self.size)
        self.buf[n:end] = b
        self.n = end

    def _int(self, v):
        if v < 0:
            self._raw(b"-")
            v = -v
        self._digits(v, 0)

    def _digits(self, v, width):
        # Writes v in decimal straight into buf, zero-padded to width: no string is made.
        n = 1
        top = 10
        while top <= v:
            n += 1
            top *= 10
        if n < width:
            n = width
        end = self.n + n
        if end > self.size:
            raise ValueError("reading longer than %d bytes" % self.size)
        buf = self.buf
        for i in range(end - 1, self.n - 1, -1):
            buf[i] = _DIGITS[v % 10]
            v //= 10
        self.n = end

    def _number(self, v):
        if v is None or v != v or v == _INF or v == _NINF:
            self._raw(_NULL)  # JSON has no NaN or infinity
        elif type(v) is int:
            self._int(v)
        elif -1e15 < v < 1e15:
            self._fixed(v)
        else:
            self._raw(("%g" % v).encode())  # too large for fixed point: rare, allowed to allocate

    def _fixed(self, v):
        # Up to three decimals, trailing zeros trimmed: 21.5, 21.125, 1013.25
        scaled = round(v * _FRACTION_SCALE)  # one float fewer than int(x + 0.5) on the heap
        if scaled < 0:
            self._raw(b"-")
            scaled = -scaled
        self._digits(scaled // _FRACTION_SCALE, 0)
        frac = scaled % _FRACTION_SCALE
        if frac:
            width = _FRACTION_DIGITS
            while frac % 10 == 0:
                frac //= 10
                width -= 1
            self._raw(b".")
            self._digits(frac, width)
