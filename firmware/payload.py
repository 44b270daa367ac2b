# A reading's body. It goes out every cycle, so it is written into one preallocated buffer with
# no dict and no json.dumps (heartbeats and events: firmware/report.py): the numbers every
# reading has and the sensors' values are formatted in C, a few at a time.
from micropython import const

READING_MAX = const(1024)  # the longest reading config.py lets the sensors make
_NULL = const(b"null")
_FRACTION_DIGITS = const(3)
_FRACTION_SCALE = const(1000)
# The longest value written: a fixed-point float (-999999999999999.999), "%g" of a larger one,
# null, or an int of up to 20 digits (seq, uptime, time, a sensor's raw count).
_VALUE_MAX = const(24)
_FRAME = const(27)  # len(b'{"seq":,"uptime_ms":,"ts":}')
# After '{"seq":' up to the values: one formatting in C. It leaves two small objects (the
# arguments' tuple and the text, about 100 bytes a reading on a 32-bit board) where writing
# these digits in Python left none, for about a quarter of the instructions.
_HEAD_NO_TS = const(b'%d,"uptime_ms":%d,"ts":null')
_HEAD_TS = const(b'%d,"uptime_ms":%d,"ts":%d')
_HEAD_TS_SPLIT = const(b'%d,"uptime_ms":%d,"ts":%d%05d')


def reading_bound(keys):
    # The longest reading these keys can make, every value at its longest: config.py refuses a
    # sensor whose keys would take it past READING_MAX, so encode() never meets a full buffer.
    n = _FRAME + 3 * _VALUE_MAX
    for k in keys:
        n += len(k) + 4 + _VALUE_MAX  # ,"key":value
    return n


class ReadingEncoder:
    # {"seq": n, "uptime_ms": t, "ts": s-or-null, "<key>": value-or-null, ...} into self.buf.
    # values and due are the sensors' lists, parallel to keys (sensors.SensorSet), read at each
    # encode(): they are the encoder's for good, so each reading passes three arguments.

    def __init__(self, keys, values, due, head=b""):
        # The buffer holds the longest reading these keys can make, and no more, after `head`
        # and before a newline: the console's line per reading (firmware/log.py) is the
        # buffer's first head + len(message) + 1 bytes, one write from the same bytes.
        self.size = reading_bound(keys)
        if self.size > READING_MAX:
            raise ValueError("readings could pass %d bytes: fewer keys" % READING_MAX)
        self.values = values
        self.due = due
        self.head = len(head)
        self.buf = bytearray(self.head + self.size + 1)
        self.buf[: self.head] = head
        self.buf[self.head : self.head + 7] = b'{"seq":'  # how every reading begins
        # The writers below write through a memoryview: a slice stored past its end raises
        # ValueError where a bytearray would grow, so no write asks the buffer's length.
        self.view = memoryview(self.buf)
        # The JSON text before each value is fixed at boot: ,"name":
        self.labels = [(',"' + k + '":').encode() for k in keys]
        self.count = len(keys)  # kept: len() is a call each reading
        self._out = self.view[:0]  # the last message's view, reused while its length holds
        self.fill = 0  # its length (a name the firmware interns anyway)

    def encode(self, seq, uptime_ms, ts):
        # Returns a memoryview of the message; valid until the next encode(). It runs every
        # cycle: the writers below are plain functions that take the buffer and the position
        # and return the next one, so they read and store no attribute; a value costs its
        # label's write, _number() and its text's write. Each step is a statement of its own:
        # this frame, and each writer's, stays within 11 words, which keeps it off the heap
        # (a larger one is allocated and freed at every call).
        head = _head(seq, uptime_ms, ts)
        out = self.view
        n = _raw(out, self.head + 7, head)
        n = self._values(out, n)
        out[n] = 125  # "}"
        out[n + 1] = 10  # the console line's newline, after the message
        if self.fill != n + 1 - self.head:  # a reading's length rarely changes: no new view
            self.fill = n + 1 - self.head
            self._out = out[self.head : n + 1]
        return self._out

    def _values(self, out, n):
        # ,"key":value for every key due.
        i = 0
        while i < self.count:
            if self.due[i]:
                n = _raw(out, n, self.labels[i])
                n = _number(out, n, self.values[i])
            i += 1
        return n


def _head(seq, uptime_ms, ts):
    # What follows '{"seq":' up to the sensors' values, formatted in C.
    if ts is None:
        return _HEAD_NO_TS % (seq, uptime_ms)
    if type(ts) is int:
        return _HEAD_TS % (seq, uptime_ms, ts)
    if ts[0]:  # [seconds // 100000, seconds % 100000], as the board gives it
        return _HEAD_TS_SPLIT % (seq, uptime_ms, ts[0], ts[1])
    return _HEAD_TS % (seq, uptime_ms, ts[1])


def _raw(out, n, b):
    # Writes b at out[n:]; returns the position after it.
    end = n + len(b)
    out[n:end] = b
    return end


def _number(out, n, v):
    # A sensor's value: up to three decimals, trailing zeros trimmed (21.5, 21.125, 1013.25),
    # an int as it is, null for what JSON cannot carry.
    if type(v) is not float or not -1e15 < v < 1e15:  # the usual case skips all of this
        if v is None or v - v != 0:  # NaN and the infinities: x - x is NaN only for them
            return _raw(out, n, _NULL)  # JSON has neither
        if type(v) is int:
            return _raw(out, n, b"%d" % v)
        if not -1e15 < v < 1e15:  # too large for fixed point: rare, may allocate
            return _raw(out, n, ("%g" % v).encode())
    v = round(v * _FRACTION_SCALE)  # one float fewer than int(x + 0.5) on the heap
    if v < 0:
        n = _raw(out, n, b"-")  # also before a zero whole part: -0.5
        v = -v
    return _raw(out, n, _fixed(v))


def _fixed(v):
    # A value in thousandths as text, formatted in C (its tuple and text are about 60 bytes of
    # heap; a digit writer in Python took about three times the instructions): trailing zeros
    # trimmed.
    frac = v % _FRACTION_SCALE
    if not frac:
        return b"%d" % (v // _FRACTION_SCALE)
    width = _FRACTION_DIGITS
    while frac % 10 == 0:
        frac //= 10
        width -= 1
    return b"%d.%0*d" % (v // _FRACTION_SCALE, width, frac)
