# The MQTT transport: umqtt.simple, whichever version the board has (1.3.4 to 1.8.0), with what
# it lacks added around it. It never reconnects or decides anything; session.py does.
#
# umqtt.simple sets no socket timeout and its check_msg() leaves the socket fully blocking, so a
# QoS 1 publish on a dead link would wait for PUBACK forever. The socket is therefore wrapped:
# "blocking" means "blocking up to timeout_s", and every byte read marks the link as alive,
# which is how a PINGRESP (that check_msg() reports as None, like silence) is noticed.
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
_OUT_MAX = const(256)  # one MQTT packet header plus a typical reading


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
    def __init__(self, sock, timeout_s, raw=None):
        self.sock = sock
        self.raw = raw = sock if raw is None else raw
        self.timeout_s = timeout_s
        self.rx = False  # set by any byte received; the session clears it when it pings
        self.out = bytearray(_OUT_MAX)
        self.fill = 0
        raw.settimeout(timeout_s)

    def flush(self):
        if self.fill:
            n = self.fill
            self.fill = 0
            self.sock.write(self.out, n)

    def read(self, n):
        self.flush()
        data = self.sock.read(n)
        if data:
            self.rx = True
        return data

    def readinto(self, buf, n=-1):
        self.flush()
        got = self.sock.readinto(buf) if n < 0 else self.sock.readinto(buf, n)
        if got:
            self.rx = True
        return got

    def write(self, buf, n=-1):
        if type(buf) is str:  # umqtt writes topics as they were given: gather them too
            buf = buf.encode()
        whole = n < 0 or n == len(buf)
        if whole:
            n = len(buf)
        if n > _OUT_MAX:  # rare: send what is gathered, then this as is
            self.flush()
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

    def setblocking(self, flag):
        self.raw.settimeout(self.timeout_s if flag else 0)

    def settimeout(self, t):
        self.raw.settimeout(self.timeout_s if t is None else t)

    def close(self):
        try:
            self.flush()  # a DISCONNECT written just before must still go out
        except OSError:
            pass
        self.sock.close()


class _TimedSockets:
    # Stands in for the socket module inside umqtt.simple: every socket it makes gets the timeout
    # at once (1.3.4 and 1.4.0 take none, so a broker that accepts TCP but never answers would
    # hang the board, TLS handshake included), and the last one is kept: under TLS it is the
    # only handle on the TCP socket, which the timeouts must go to.
    def __init__(self, real, timeout_s):
        self.real = real
        self.timeout_s = timeout_s
        self.last = None

    def socket(self, *args):
        s = self.real.socket(*args)
        s.settimeout(self.timeout_s)
        self.last = s
        return s

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
    ):
        self.umqtt = umqtt  # the umqtt.simple module, whichever version the board has
        self.args = (_b(client_id), host, port, _b(user), _b(password), keepalive)
        self.host = host
        self.tls = tls
        self.ca_data = ca_data  # the CA certificate as DER (firmware/cert.py), or None
        self.timeout_s = timeout_s
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
            self.sockets = self.umqtt.socket = _TimedSockets(self.umqtt.socket, self.timeout_s)
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
        self.sock = WatchedSocket(c.sock, self.timeout_s, self.sockets.last)
        c.sock = self.sock
        return present

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
