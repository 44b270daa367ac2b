# The MQTT transport: umqtt.simple, whichever version the board has (1.3.4 to 1.8.0), with what
# it lacks added around it. It never reconnects or decides anything; session.py does. What stays
# here is what every cycle runs; the connect (linkup.py), what a failed link needs (linkdown.py)
# and reading past a message the node will not take (skipmsg.py) are loaded only for the job.
#
# umqtt.simple sets no socket timeout, its check_msg() leaves the socket fully blocking, and a
# socket timeout is per read anyway: a broker that drips one byte at a time, or keeps sending
# while a QoS 1 publish waits for its PUBACK, never trips it. The socket is therefore wrapped
# (from before CONNECT, through the socket module umqtt sees during a connect) and the wrapper
# reads MQTT's framing itself, ahead of umqtt: every packet, and every exchange (CONNECT to
# CONNACK, PUBLISH to PUBACK, SUBSCRIBE to SUBACK), must be complete by one deadline; a PUBLISH
# the node will not take (too large, QoS 2) and any packet umqtt would not read to its end are
# read past here, a scratch buffer at a time, so umqtt never sees them and the stream stays in
# step. Every byte read marks the link as alive, which is how a PINGRESP (check_msg() reports
# it as None, like silence) is noticed. The retain flag of the PUBLISH being delivered, which
# umqtt does not pass to its callback, is kept in `retained`.
#
# umqtt sizes packets with len(), so everything handed to it is bytes: a str with a non-ASCII
# character would go out with a wrong length and the broker would drop the link.
from micropython import const

_DEFAULT_TIMEOUT_S = const(5)
_OUT_MAX = const(256)  # one MQTT packet header plus a typical reading; also the drain buffer
# The largest packet handed to umqtt: twice commands.MAX_BYTES, so a command somewhat over its
# limit still reaches commands.parse(), which answers the sender with an error event.
IN_MAX = const(2048)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_PINGRESP = const(0xD0)
_ETIMEDOUT = const(110)  # MicroPython's errno on every port
_EAGAIN = const(11)


def timeout_for(keepalive_s):
    # A blocked call must end before the keepalive check would have noticed the dead link
    # (a third of it), but a slow PUBACK deserves at least 2 s.
    return max(2, min(_DEFAULT_TIMEOUT_S, keepalive_s // 3))


class WatchedSocket:
    # Writes are gathered and sent as one segment before the next read: umqtt writes a packet
    # in pieces, and Nagle's algorithm against the broker's delayed ACK held each QoS 1 publish
    # back by ~40 ms (the node's PUBLISH it writes whole itself, publish() below). `sock` is
    # what umqtt reads and writes (a TLS socket over
    # TLS); timeouts go to `raw`, the TCP socket under it: MicroPython's TLS socket has no
    # settimeout(), and its reads wait on the TCP socket's timeout.
    def __init__(self, sock, timeout_s, clock, log, raw=None):
        self.sock = sock
        self.raw = sock if raw is None else raw
        self.timeout_s = timeout_s
        self.clock = clock
        self.log = log
        self.rx = False  # set by any byte received; the session clears it when it pings
        self.out = bytearray(_OUT_MAX)
        self.view = memoryview(self.out)  # a slice stored past its end raises, never grows it
        self.fill = 0
        self.blocking = True  # as umqtt asked: False only for check_msg()'s first read
        self.awaiting = 0  # the answer the running exchange waits for; 0 outside one
        self.until = clock.ticks_add(clock.ticks_ms(), timeout_s * 1000)  # exchange or packet
        self.left = 0  # bytes of the current packet not yet handed to umqtt
        self.ahead = None  # its length bytes, read ahead of umqtt
        self.retained = False  # the retain flag of the last PUBLISH handed to umqtt
        # What comes first: bytes read before anyone asked for them (ready(), a publish's
        # PUBACK that was something else), handed out before the socket is read again.
        self.first = None
        self.pid = 0  # the last PUBLISH's packet id (1 to 65535)
        self.ack = bytearray(b"\x40\x02\x00\x00")  # the PUBACK that answers it
        self.t = None
        self._timeout(timeout_s)

    def _timeout(self, t):
        # Reads wait by their deadline or not at all; writes (a full send buffer) by timeout_s.
        if t != self.t:
            self.t = t
            self.raw.settimeout(t)

    def expect(self, op, fresh=True):
        # Starts an exchange: every read until expect(0) shares one deadline, however many
        # other packets come meanwhile; `op` is the answer it waits for (-1: none, the reads of
        # one poll, session.py). fresh=False goes on with the running deadline (a connect:
        # CONNACK, birth PUBACK and SUBACK in one).
        self.awaiting = op
        if fresh and op:  # outside an exchange every packet sets its own deadline (_start)
            self.until = self.clock.ticks_add(self.clock.ticks_ms(), self.timeout_s * 1000)

    def ready(self):
        # Between exchanges: True once a packet has begun to arrive (or the link closed), its
        # first byte kept for umqtt's next read. A poll that finds nothing costs one read of
        # the socket and no call into umqtt.
        if self.first is None:
            if self.t != 0:
                self._timeout(0)
            self.first = self.sock.read(1)
        return self.first is not None

    def flush(self):
        if self.fill:
            n = self.fill
            self.fill = 0
            sent = 0
            if self.t == 0 and self.sock is self.raw:
                # A reading fits the socket's send buffer: tried without waiting first, the
                # socket is not switched to blocking and back around every publish (on the unix
                # port that is six system calls a cycle). Not under TLS, whose writes must be
                # finished once begun.
                sent = self.sock.write(self.out, n) or 0
                if sent >= n:
                    return
            rest = self.out if not sent else memoryview(self.out)[sent:n]  # rare: a full buffer
            self._timeout(self.timeout_s)
            self.sock.write(rest, n - sent)

    def read(self, n):
        # Runs several times per packet: its frame stays within 11 words, so the rare case of a
        # read past the length bytes read ahead is _past()'s.
        if self.fill:
            self.flush()
        first = None
        if not self.left:
            first = self._start()
            if not first:
                return first  # None: nothing to read (or a packet read past); b"": closed
            n -= 1
            if not n:
                return first
        ahead = self.ahead
        if ahead is None:
            data = self._recv(min(n, self.left))
        elif n == len(ahead):
            data = ahead
            self.ahead = None
        elif n < len(ahead):
            data = ahead[:n]
            self.ahead = ahead[n:]
        else:
            data = self._past(ahead, n)
        self.left -= len(data)
        return data if first is None else first + data

    def _past(self, ahead, n):
        # The length bytes read ahead, then what follows them.
        self.ahead = None
        return ahead + self._recv(min(n - len(ahead), self.left - len(ahead)))

    def _start(self):
        # A packet's first byte, then its length, read ahead of umqtt: the packet is handed on
        # only if umqtt can take it whole. The length and the rare reading past a packet are
        # methods of their own: this frame stays within 11 words, off the heap.
        if not self.awaiting:
            self.until = self.clock.ticks_add(self.clock.ticks_ms(), self.timeout_s * 1000)
        if self.first is None and not self.blocking:  # check_msg(): may find nothing
            self._timeout(0)
            first = self.sock.read(1)
        else:
            first = self._recv(1)
        if not first:
            return first
        self.rx = True
        size = self._length()
        if size < 0:
            return b""  # closed within a header: umqtt raises OSError(-1) on the next read
        op = first[0]
        if op & 0xF0 == _PUBLISH and not op & 4 and size <= IN_MAX:  # QoS 0 or 1, not too large
            self.retained = op & 1 == 1
        elif op & 0xF0 == _PUBLISH or op & 0xF0 != _PINGRESP and op != self.awaiting:
            self.skip(op, size)
            return None
        self.left = len(self.ahead) + size  # pyright: ignore[reportArgumentType]: _length() set it
        return first

    def _length(self):
        # A packet's remaining length, its bytes kept in self.ahead for umqtt; -1: closed.
        self.ahead = None
        size = 0
        shift = 0
        while True:
            b = self._recv(1)
            if not b:
                self.ahead = None
                return -1
            self.ahead = b if self.ahead is None else self.ahead + b
            size |= (b[0] & 0x7F) << shift
            if not b[0] & 0x80 or shift == 21:
                return size
            shift += 7

    def skip(self, op, size):
        # A PUBLISH the node does not take, or a packet umqtt would return without reading the
        # rest (and lose its place): read past here. Rare: skipmsg.py is loaded for it and
        # dropped after, also when the link failed while reading past it. (Not _skip: `skip`
        # is interned for the import below anyway, a new name would stay for good.)
        self.ahead = None
        from firmware.skipmsg import skip
        from firmware.unload import drop

        try:
            skip(self, op, size)
        finally:
            drop("skipmsg")

    def _recv(self, n):
        # n bytes by the deadline (fewer only if the broker closed); OSError(ETIMEDOUT) past it.
        # Bytes read before they were asked for (self.first) come first. What the first read
        # brings is returned as it is: usually all of it, and no copy made.
        data = self.first
        if data is not None:
            self.first = None
            if len(data) > n:
                self.first = data[n:]
                return data[:n]
            if len(data) == n or not data:
                return data
        while data is None or n > len(data):
            if self.t != 0:
                self._timeout(0)
            got = self.sock.read(n if data is None else n - len(data))
            if got is None:
                got = self._wait()
            if not got:
                return b"" if data is None else data  # closed: umqtt raises OSError(-1)
            data = got if data is None else data + got
        self.rx = True
        return data

    def _wait(self):
        # One byte, waiting no longer than what is left of the deadline. Waits are for one byte
        # and what else has arrived is then taken without waiting: a socket timeout restarts
        # with every byte, so a broker that drips could otherwise stretch it without end.
        ms = self.clock.ticks_diff(self.until, self.clock.ticks_ms())
        if ms > 0:
            self._timeout(ms / 1000)
            try:
                got = self.sock.read(1)
            except OSError as e:
                if e.args[0] not in (_ETIMEDOUT, _EAGAIN):
                    raise
                got = None
            if got is not None:
                return got
        raise OSError(_ETIMEDOUT)

    def write(self, buf, n=-1):
        # Runs several times per packet, so its frame stays within 11 words (a larger one goes
        # on the heap at every call): what does not fit behind what is gathered is _spill()'s.
        # Everything the node hands umqtt is bytes (topics, payloads, the connect's strings),
        # so umqtt writes bytes (a str here would fail the slice store, loudly).
        size = len(buf)
        if n < 0:
            n = size
        f = self.fill
        if f + size > _OUT_MAX or f + n > _OUT_MAX:
            return self._spill(buf, n, size)
        # all of buf, also past n (umqtt's fixed headers): what lies past fill is not sent
        self.out[f : f + size] = buf
        self.fill = f + n
        return n

    def _spill(self, buf, n, size):
        # Rare: a write that does not fit behind what is gathered.
        if self.fill + n > _OUT_MAX:
            self.flush()
        if n > _OUT_MAX:  # larger than the buffer: sent as it is
            self._timeout(self.timeout_s)
            return self.sock.write(buf) if n == size else self.sock.write(buf, n)
        f = self.fill
        if f + size <= _OUT_MAX:
            self.out[f : f + size] = buf
        else:  # a few bytes of a long buffer: a memoryview slice would cost 64 B of heap
            out = self.out
            for i in range(n):
                out[f + i] = buf[i]
        self.fill = f + n
        return n

    def publish(self, topic, msg, op):
        # One PUBLISH (op: its first byte, 0x30 | QoS << 1 | retain), written here whole and
        # sent in one write, not in umqtt's four or five pieces through write(): each of those
        # is a call in Python. True when it is done: at QoS 0 once sent, at QoS 1 once its
        # PUBACK came, read here when it is the first packet back (it usually is). False: a
        # command or a PINGRESP came first, and umqtt reads on (Transport._acked).
        if self.fill:
            self.flush()  # rare: something gathered and not yet sent
        n = self._head(topic, op, len(msg))
        if n + len(msg) <= _OUT_MAX:
            self.view[n : n + len(msg)] = msg
            self.fill = n + len(msg)
        else:  # larger than the buffer's rest (a heartbeat, a discovery config): write() sends it
            self.fill = n
            self.write(msg)
        self.flush()
        return not op & 2 or self._acked()

    def _head(self, topic, op, n):
        # The fixed header, the topic and the packet id into out; n, the message's length,
        # becomes where the message goes. Two length bytes at most: 16 KB, past any message
        # the node makes (a topic past the buffer raises, the memoryview does not grow).
        out = self.view
        t = len(topic)
        n += t + 2 + (op & 2)  # the remaining length: topic, its length, packet id, message
        if n > 0x3FFF:
            raise ValueError("a PUBLISH of %d bytes is too large to publish" % n)
        out[0] = op
        if n > 0x7F:
            out[1] = n & 0x7F | 0x80
            out[2] = n >> 7
            n = 3
        else:
            out[1] = n
            n = 2
        out[n] = t >> 8
        out[n + 1] = t & 0xFF
        n += 2
        out[n : n + t] = topic
        n += t
        if not op & 2:
            return n
        self.pid = self.pid % 0xFFFF + 1  # 1 to 65535: 0 is no packet id
        out[n] = self.ack[2] = self.pid >> 8
        out[n + 1] = self.ack[3] = self.pid & 0xFF
        return n + 2

    def _acked(self):
        # True when the first four bytes back are this publish's PUBACK (they usually are); it
        # ends the exchange. Else they are held for umqtt, who reads on from them: a PINGRESP,
        # a command, the PUBACK after them (or the broker closed). The usual case, a PUBACK
        # that has come whole, is one read without waiting; anything else goes through _recv().
        got = self.sock.read(4) if self.first is None and self.t == 0 else None
        if got != self.ack:
            if got is not None:
                self.first = got  # a part of it, or something else: _recv() takes it first
            got = self._recv(4)
            if got != self.ack:
                self.first = got
                return False
        self.rx = True
        self.awaiting = 0
        return True

    def connect(self, addr):
        self.sock.connect(addr)

    def setblocking(self, flag):
        self.blocking = flag

    def settimeout(self, t):
        # umqtt 1.5.0 and later set the connect timeout; reads keep their own deadlines.
        self.blocking = t != 0

    def close(self):
        try:
            self.flush()  # a DISCONNECT written just before must still go out
        except OSError:
            pass
        self.sock.close()


class Transport:
    # What every cycle uses: publish, flush, close. Connecting (firmware/linkup.py) and what a
    # failed link needs (firmware/linkdown.py) are loaded for the job and dropped after it.
    def __init__(
        self,
        umqtt,
        client_id,
        host,
        port,
        user,
        password,
        keepalive,
        tls=False,
        ca_data=None,
        timeout_s=_DEFAULT_TIMEOUT_S,
        clock=None,
        log=None,
    ):
        self.umqtt = umqtt  # the umqtt.simple module, whichever version the board has
        self.args = (client_id, host, port, user, password, keepalive)  # encoded at connect
        self.host = host
        self.tls = tls
        self.ca_data = ca_data  # the CA certificate as DER (firmware/cert.py), or None
        self.timeout_s = timeout_s
        self.clock = clock
        self.log = log
        self.client = None
        self.sock = None
        self.connect_takes_timeout = True  # umqtt.simple 1.5.0 and later
        # What the link is, for the console and the heartbeat.
        self.security = ("verified" if ca_data else "unverified") if tls else "off"

    def publish(self, topic, msg, retain, qos):
        # One PUBLISH, written by the socket's wrapper; at QoS 1 it and its PUBACK are one
        # exchange with one deadline. It runs every reading, so its frame stays within 11
        # words, off the heap: no handler, and no locals. A failure leaves the exchange open:
        # the session drops the link and its socket on any.
        if self.sock is None:
            raise OSError(-1)  # not connected
        self.sock.expect(_PUBACK if qos else 0)
        if not self.sock.publish(topic, msg, _PUBLISH + qos + qos + retain):
            self._acked()

    def _acked(self):
        # Something came before the PUBACK (a command, a PINGRESP): umqtt reads each packet, as
        # its own publish() would, until the PUBACK; the exchange's deadline bounds it all.
        c = self.client
        sock = self.sock
        if c is None or sock is None:
            raise OSError(-1)  # not connected
        while True:
            if c.wait_msg() == _PUBACK:
                got = sock.read(3)
                if len(got) != 3 or got[0] != 2:
                    raise ValueError("a PUBACK that is not 2 bytes long")
                if got[1] << 8 | got[2] == sock.pid:
                    break
        sock.expect(0)

    def flush(self):
        # Sends what umqtt wrote and nothing has read after (a PINGREQ, PUBACKs for commands);
        # the node's own PUBLISH is sent by the wrapper's publish().
        if self.sock is not None:
            self.sock.flush()

    def close(self):
        # Drops the connection without a DISCONNECT, so the broker's last will goes out.
        if self.client is not None:
            sock = self.client.sock
            self.client = None
            self.sock = None
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
