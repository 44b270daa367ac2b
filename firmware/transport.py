# The MQTT transport: umqtt.simple, whichever version the board has (1.3.4 to 1.8.0), with what
# it lacks added around it. It never reconnects or decides anything; session.py does.
#
# umqtt.simple sets no socket timeout, its check_msg() leaves the socket fully blocking, and a
# socket timeout is per read anyway: a broker that drips one byte at a time, or keeps sending
# while a QoS 1 publish waits for its PUBACK, never trips it. The socket is therefore wrapped
# (from before CONNECT, through the socket module umqtt sees) and the wrapper reads MQTT's
# framing itself, ahead of umqtt: every packet, and every exchange (CONNECT to CONNACK, PUBLISH
# to PUBACK, SUBSCRIBE to SUBACK), must be complete by one deadline; a PUBLISH the node will not
# take (too large, QoS 2) and any packet umqtt would not read to its end are read past here, a
# scratch buffer at a time, so umqtt never sees them and the stream stays in step. Every byte
# read marks the link as alive, which is how a PINGRESP (check_msg() reports it as None, like
# silence) is noticed. The retain flag of the PUBLISH being delivered, which umqtt does not
# pass to its callback, is kept in `retained`.
#
# umqtt sizes packets with len(), so everything handed to it is bytes: a str with a non-ASCII
# character would go out with a wrong length and the broker would drop the link.
from micropython import const

REFUSALS = {
    1: "unacceptable protocol version",
    2: "client id rejected",
    3: "server unavailable",
    4: "bad username or password",
    5: "not authorised",
}
DEFAULT_TIMEOUT_S = const(5)
_OUT_MAX = const(256)  # one MQTT packet header plus a typical reading; also the drain buffer
# The largest packet handed to umqtt: twice commands.MAX_BYTES, so a command somewhat over its
# limit still reaches commands.parse(), which answers the sender with an error event.
IN_MAX = const(2048)
_TOPIC_MAX = const(200)  # the longest topic a skipped message is named by
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_PINGRESP = const(0xD0)
CONNACK = const(0x20)
SUBACK = const(0x90)
NO_ANSWER = const(-1)  # expect(NO_ANSWER): one deadline for several reads, no answer awaited
_ETIMEDOUT = const(110)  # MicroPython's errno on every port
_EAGAIN = const(11)


def timeout_for(keepalive_s):
    # A blocked call must end before the keepalive check would have noticed the dead link
    # (a third of it), but a slow PUBACK deserves at least 2 s.
    return max(2, min(DEFAULT_TIMEOUT_S, keepalive_s // 3))


def refusal(code):
    return REFUSALS.get(code, "refused with code %s" % code)


class WatchedSocket:
    # Writes are gathered and sent as one segment before the next read: umqtt writes a PUBLISH
    # in four or five pieces, and Nagle's algorithm against the broker's delayed ACK held each
    # QoS 1 publish back by ~40 ms. `sock` is what umqtt reads and writes (a TLS socket over
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
        self.fill = 0
        self.blocking = True  # as umqtt asked: False only for check_msg()'s first read
        self.awaiting = 0  # the answer the running exchange waits for; 0 outside one
        self.until = clock.ticks_add(clock.ticks_ms(), timeout_s * 1000)  # exchange or packet
        self.left = 0  # bytes of the current packet not yet handed to umqtt
        self.ahead = None  # its length bytes, read ahead of umqtt
        self.retained = False  # the retain flag of the last PUBLISH handed to umqtt
        self.t = None
        self._timeout(timeout_s)

    def _timeout(self, t):
        # Reads wait by their deadline or not at all; writes (a full send buffer) by timeout_s.
        if t != self.t:
            self.t = t
            self.raw.settimeout(t)

    def expect(self, op, fresh=True):
        # Starts an exchange: every read until expect(0) shares one deadline, however many
        # other packets come meanwhile; `op` is the answer it waits for. fresh=False goes on
        # with the running deadline (a connect: CONNACK, birth PUBACK and SUBACK in one).
        self.awaiting = op
        if fresh:
            self.until = self.clock.ticks_add(self.clock.ticks_ms(), self.timeout_s * 1000)

    def flush(self):
        if self.fill:
            n = self.fill
            self.fill = 0
            self._timeout(self.timeout_s)
            self.sock.write(self.out, n)

    def read(self, n):
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
            self.ahead = None
            data = ahead + self._recv(min(n - len(ahead), self.left - len(ahead)))
        self.left -= len(data)
        return data if first is None else first + data

    def _start(self):
        # A packet's first byte, then its length, read ahead of umqtt: the packet is handed on
        # only if umqtt can take it whole.
        clock = self.clock
        if not self.awaiting:
            self.until = clock.ticks_add(clock.ticks_ms(), self.timeout_s * 1000)
        if self.blocking:
            first = self._recv(1)
        else:
            self._timeout(0)
            first = self.sock.read(1)
        if not first:
            return first
        self.rx = True
        op = first[0]
        size = 0
        shift = 0
        ahead = None
        while True:
            b = self._recv(1)
            if not b:
                return b""  # closed within a header: umqtt raises OSError(-1) on the next read
            ahead = b if ahead is None else ahead + b
            size |= (b[0] & 0x7F) << shift
            if not b[0] & 0x80 or shift == 21:
                break
            shift += 7
        kind = op & 0xF0
        if kind == _PUBLISH:
            if op & 6 == 6 or op & 6 == 4 or size > IN_MAX:
                self._skip(op, size)
                return None
            self.retained = op & 1 == 1
        elif kind != _PINGRESP and op != self.awaiting:
            # umqtt would return this op without reading the rest, and lose its place
            self._drain(size)
            return None
        self.ahead = ahead
        self.left = len(ahead) + size
        return first

    def _recv(self, n):
        # n bytes by the deadline (fewer only if the broker closed); OSError(ETIMEDOUT) past it.
        data = b""
        while n > len(data):
            self._timeout(0)
            got = self.sock.read(n - len(data))
            if got is None:
                got = self._wait()
            if not got:
                return data  # closed: umqtt raises OSError(-1) or indexes short
            data += got
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

    def _drain(self, n):
        # Reads n bytes past umqtt, into the write buffer (empty: every read flushes it first).
        while n > 0:
            self._timeout(0)
            got = self.sock.readinto(self.out, min(n, _OUT_MAX))
            if got is None:
                got = len(self._wait() or b"")
            if not got:
                raise OSError(-1)
            self.rx = True
            n -= got

    def _skip(self, op, size):
        # A PUBLISH the node does not take: named on the console, read past, and acknowledged
        # at QoS 1 so that the broker's in-flight window does not fill up with it.
        topic = ""
        pid = None
        rest = size
        if rest >= 2:
            n = self._recv(2)
            n = n[0] << 8 | n[1] if len(n) == 2 else rest
            rest -= 2
            if n <= min(rest, _TOPIC_MAX):
                try:
                    topic = self._recv(n).decode()
                except ValueError:  # not UTF-8: unnamed
                    pass
            else:
                self._drain(min(n, rest))
            rest -= n
            if op & 6 == 2 and rest >= 2:
                pid = self._recv(2)
                rest -= 2
        why = "QoS 2 is not supported" if op & 4 else "over the %d bytes this node takes" % IN_MAX
        msg = "skipped a message of %d bytes on %s (%s)" % (size, topic or "?", why)
        if op & 1 and topic:
            msg += "; it is retained: clear it with mosquitto_pub -r -n -t '%s'" % topic
        self.log("mqtt", msg)
        self._drain(rest)
        if pid is not None and len(pid) == 2:
            self.write(b"\x40\x02")
            self.write(pid)

    def readinto(self, buf, n=-1):
        # umqtt.simple reads with read() only; anything else would bypass the framing.
        raise OSError(95)

    def write(self, buf, n=-1):
        if type(buf) is str:  # umqtt writes topics as they were given: gather them too
            buf = buf.encode()
        whole = n < 0 or n == len(buf)
        if whole:
            n = len(buf)
        if n > _OUT_MAX:  # rare: send what is gathered, then this as is
            self.flush()
            self._timeout(self.timeout_s)
            return self.sock.write(buf) if whole else self.sock.write(buf, n)
        if self.fill + n > _OUT_MAX:
            self.flush()
        f = self.fill
        out = self.out
        if whole:
            out[f : f + n] = buf
        else:  # umqtt's fixed headers, 2 to 5 bytes: a memoryview slice would cost 64 B of heap
            for i in range(n):
                out[f + i] = buf[i]
        self.fill = f + n
        return n

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


class _Sockets:
    # Stands in for the socket module inside umqtt.simple: every socket it makes gets the
    # timeout at once (1.3.4 and 1.4.0 take none, so a broker that accepts TCP but never answers
    # would hang the board, TLS handshake included) and, without TLS, is watched from the
    # CONNECT on, so the CONNACK too has a deadline. The last one is kept: under TLS it is the
    # only handle on the TCP socket, which the timeouts must go to.
    def __init__(self, real, transport):
        self.real = real
        self.transport = transport
        self.last = None

    def socket(self, *args):
        s = self.real.socket(*args)
        s.settimeout(self.transport.timeout_s)
        self.last = s
        return self.transport.watch(s)

    def getaddrinfo(self, *args):
        return self.real.getaddrinfo(*args)


def _tls_setup(client, host, ca_data):
    # Sets TLS up the way each umqtt.simple takes it, verifying on all of them: 1.4.0 and later
    # wrap the socket with the SSLContext in `ssl`; 1.3.4 only tests `ssl` for truth and calls
    # ussl.wrap_socket(sock, **ssl_params), whose cert_reqs defaults to CERT_NONE, so the
    # parameters must ask for verification themselves. (1.6.0 and later also keep ssl_params,
    # but use them only when `ssl` is True, which it never is here: no attribute tells the
    # versions apart, and none needs to.)
    import ssl

    mode = ssl.CERT_REQUIRED if ca_data else ssl.CERT_NONE
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_data:
        ctx.load_verify_locations(cadata=ca_data)
    ctx.verify_mode = mode
    client.ssl = ctx
    client.ssl_params = {"server_hostname": host, "cert_reqs": mode, "cadata": ca_data}


def _b(text):
    return text if text is None else text.encode()


class Transport:
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
        timeout_s=DEFAULT_TIMEOUT_S,
        clock=None,
        log=None,
    ):
        self.umqtt = umqtt  # the umqtt.simple module, whichever version the board has
        self.args = (_b(client_id), host, port, _b(user), _b(password), keepalive)
        self.host = host
        self.tls = tls
        self.ca_data = ca_data  # the CA certificate as DER (firmware/cert.py), or None
        self.timeout_s = timeout_s
        self.clock = clock
        self.log = log
        self.client = None
        self.sock = None
        self.sockets = None  # the socket module umqtt sees, once open() has put it there
        self.connect_takes_timeout = True  # umqtt.simple 1.5.0 and later

    @property
    def security(self):
        # What the link is, for the console and the heartbeat.
        if not self.tls:
            return "off"
        return "verified" if self.ca_data else "unverified"

    def watch(self, sock):
        # The raw socket a connect starts with, wrapped (TLS wraps it itself, later).
        if self.tls:
            return sock
        w = WatchedSocket(sock, self.timeout_s, self.clock, self.log)
        w.expect(CONNACK)
        return w

    def _make_client(self):
        c = self.umqtt.MQTTClient(*self.args)
        if self.tls:
            _tls_setup(c, self.host, self.ca_data)
        return c

    def open(self, will_topic, will_msg, on_message):
        # Connects and returns the CONNACK's session-present flag; raises OSError, or
        # MQTTException with the refusal code, or whatever a confused umqtt asserts.
        self.close()
        if self.sockets is None:
            real = self.umqtt.socket
            if type(real) is _Sockets:  # another transport's (in tests): not one inside another
                real = real.real
            self.sockets = self.umqtt.socket = _Sockets(real, self)
        c = self._make_client()
        c.set_last_will(will_topic, will_msg, True, 1)
        c.set_callback(on_message)
        self.client = c
        present = False
        if self.connect_takes_timeout:
            try:
                present = c.connect(True, self.timeout_s)
            except TypeError:  # 1.3.4 and 1.4.0: the sockets' own timeout bounds the connect
                self.connect_takes_timeout = False
        if not self.connect_takes_timeout:
            present = c.connect(True)
        if type(c.sock) is not WatchedSocket:  # TLS: wrapped only now, around the TLS socket
            c.sock = WatchedSocket(c.sock, self.timeout_s, self.clock, self.log, self.sockets.last)
        self.sock = c.sock
        return present

    def publish(self, topic, msg, retain, qos, fresh=True):
        # One PUBLISH; at QoS 1 it and its PUBACK are one exchange with one deadline.
        c, sock = self._begin(_PUBACK if qos else 0, fresh)
        try:
            c.publish(topic, msg, retain, qos)
        finally:
            sock.expect(0)
        sock.flush()

    def subscribe(self, topic, qos, fresh=True):
        c, sock = self._begin(SUBACK, fresh)
        try:
            c.subscribe(topic, qos)
        finally:
            sock.expect(0)

    def _begin(self, op, fresh):
        c = self.client
        sock = self.sock
        if c is None or sock is None:
            raise OSError(-1)  # not connected
        if c.pid >= 0xFFFF:
            c.pid = 0  # umqtt would send packet id 0 next, which brokers reject
        sock.expect(op, fresh)
        return c, sock

    def flush(self):
        # Sends what umqtt wrote and nothing has read after (QoS 0 publishes, PINGREQ).
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

    def disconnect(self):
        # A clean goodbye: the broker discards the last will.
        if self.client is not None:
            try:
                self.client.disconnect()
            except OSError:
                pass
            self.client = None
            self.sock = None

    def describe(self, e):
        # A short reason for a console line: the CONNACK refusal by name, a certificate the
        # TLS handshake did not accept, else the errno's name.
        args = e.args
        if isinstance(e, self.umqtt.MQTTException) and args and type(args[0]) is int:
            return "refused: " + refusal(args[0])
        if self.tls and isinstance(e, ValueError) and args and type(args[0]) is str:
            # mbedtls's verify report, e.g. "The certificate is not correctly signed by the
            # trusted CA", or "... Common Name (CN) does not match with the expected CN"
            return "TLS: certificate not trusted (%s)" % args[0].strip()
        if isinstance(e, OSError) and args:
            return errno_name(args[0])
        return "%s %s" % (type(e).__name__, args[0] if args else "")


def errno_name(code):
    import errno

    if code == -1:
        return "closed by the broker"  # umqtt's way of saying the peer closed
    for name in (
        "ECONNREFUSED",
        "ECONNRESET",
        "ETIMEDOUT",
        "EHOSTUNREACH",
        "ECONNABORTED",
        "ENOTCONN",
        "EPIPE",
        "ENOENT",
    ):
        if getattr(errno, name, None) == code:
            return name
    return "error %s" % code
