"""CPython stand-in for umqtt.simple: a client that records what it was asked to do.

A test scripts the broker through Broker: refuse the next connect, fail the next publish,
deliver messages, or go silent (no byte ever comes back, as on a half-open link).
"""


class MQTTException(Exception):
    pass


class Broker:
    """What the fake broker does; reset for every test by the umqtt fixture."""

    def __init__(self):
        self.clients = []
        self.connect_error = None  # an exception raised by the next connects
        self.publish_error = None
        self.check_error = None
        self.subscribe_error = None  # raised by subscribe(): MQTTException(0x80) is a refusal
        self.silent = False  # True: PINGREQ gets no PINGRESP
        self.inbox = []  # (topic, msg) delivered by check_msg, one per call
        self.published = []  # (topic, msg, retain, qos), in order
        self.subscribed = []
        self.pings = 0


broker = Broker()
# The packet that stands on the wire for a message in broker.inbox (or for check_error): a
# PUBLISH header with nothing after it, which the firmware's framing hands to check_msg() whole.
DELIVERY = b"\x30\x00"


def _text(topic):
    # umqtt sends str and bytes-like topics alike (what len() and write() take); the broker
    # sees the same text either way.
    return topic if isinstance(topic, str) else bytes(topic).decode()


class FakeSocket:
    def __init__(self):
        self.timeout = "unset"
        self.closed = False
        self.pending = b""
        self.written = bytearray()  # what the firmware wrote that is not yet a whole packet
        self.timeouts = []  # every timeout set, in order

    def settimeout(self, t):
        self.timeout = t
        self.timeouts.append(t)

    def setblocking(self, flag):
        self.timeout = None if flag else 0

    def read(self, n):
        if not self.pending and (broker.inbox or broker.check_error is not None):
            # What the broker has for check_msg() arrives as a packet, as on a real link: the
            # session reads the socket first and calls check_msg() only once a byte came.
            self.pending = DELIVERY
        if self.pending:
            data, self.pending = self.pending[:n], self.pending[n:]
            return data
        return None

    def readinto(self, buf, n=-1):
        data = self.read(len(buf) if n < 0 else n)
        if data:
            buf[: len(data)] = data
        return None if data is None else len(data)

    def write(self, buf, n=-1):
        # The firmware writes each PUBLISH itself (transport.py): the broker takes each one
        # once it is whole, or fails it (publish_error), and answers QoS 1 with its PUBACK.
        data = bytes(buf) if n < 0 else bytes(buf)[:n]
        if broker.publish_error is not None and data[:1] and data[0] & 0xF0 == 0x30:
            raise broker.publish_error
        self.written += data
        while True:
            size = _whole(self.written)
            if not size:
                return len(data)
            packet = bytes(self.written[:size])
            del self.written[:size]
            if packet[0] & 0xF0 == 0x30:
                topic, msg, retain, qos, pid = _publish(packet)
                broker.published.append((topic, msg, retain, qos))
                if qos:
                    self.pending += b"\x40\x02" + pid

    def close(self):
        self.closed = True


def _length(packet):
    # (remaining length, where the variable header starts), or None while the length is short.
    size = shift = 0
    for i in range(1, min(len(packet), 5)):
        size |= (packet[i] & 0x7F) << shift
        if not packet[i] & 0x80:
            return size, i + 1
        shift += 7
    return None


def _whole(written):
    # The length of the first whole packet in written, or 0.
    got = _length(written)
    if got is None or len(written) < got[0] + got[1]:
        return 0
    return got[0] + got[1]


def _publish(packet):
    # (topic, message, retain, qos, packet id) of one whole PUBLISH packet.
    i = _length(packet)[1]
    n = packet[i] << 8 | packet[i + 1]
    topic = packet[i + 2 : i + 2 + n].decode()
    i += 2 + n
    qos = packet[0] >> 1 & 3
    pid = packet[i : i + 2] if qos else b""
    return topic, packet[i + len(pid) :], bool(packet[0] & 1), qos, pid


class _Sockets:
    """The socket module as umqtt sees it (transport.py puts a stand-in in its place)."""

    def socket(self, *args):
        return FakeSocket()

    def getaddrinfo(self, host, port):
        return [(2, 1, 0, "", (host, port))]


socket = _Sockets()


class MQTTClient:
    def __init__(
        self,
        client_id,
        server,
        port=0,
        user=None,
        password=None,
        keepalive=0,
        ssl=None,
        ssl_params=None,
    ):
        self.args = (client_id, server, port, user, password, keepalive)
        self.ssl = ssl
        self.ssl_params = ssl_params or {}
        self.sock = None
        self.cb = None
        self.will = None
        self.pid = 0
        broker.clients.append(self)

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.will = (_text(topic), msg, retain, qos)

    def connect(self, clean_session=True, timeout=None):
        if broker.connect_error is not None:
            raise broker.connect_error
        self.sock = socket.socket()  # the firmware's socket module may hand out a wrapped one
        self.raw = getattr(self.sock, "sock", self.sock)  # the wire
        self.connect_timeout = timeout
        return 0

    def disconnect(self):
        broker.published.append(("<disconnect>", b"", False, 0))
        self.sock.close()

    def ping(self):
        broker.pings += 1
        if not broker.silent:
            self.raw.pending += b"\xd0\x00"

    def subscribe(self, topic, qos=0):
        if broker.subscribe_error is not None:
            raise broker.subscribe_error
        broker.subscribed.append((_text(topic), qos))

    def wait_msg(self):
        # What a QoS 1 publish calls (transport.py) when its PUBACK is not the first packet
        # back: one packet, read as umqtt reads it; a PUBACK's rest is left to the caller.
        first = self.sock.read(1)
        return 0x40 if first == b"\x40" else self._take(first)

    def check_msg(self):
        if broker.check_error is not None:
            raise broker.check_error
        self.sock.setblocking(False)  # as umqtt does: only the first read may find nothing
        first = self.sock.read(1)
        self.sock.setblocking(True)
        return self._take(first)

    def _take(self, first):
        # The packet that begins with `first`: a PINGRESP is consumed and reported as nothing,
        # a delivery hands broker.inbox's next message to the callback.
        if first == b"\xd0":
            self.sock.read(1)
            return None
        if first == DELIVERY[:1]:
            self.sock.read(1)  # the rest of the packet that stands for the message
        if broker.inbox:
            topic, msg = broker.inbox.pop(0)
            self.cb(topic, msg)
            return 0x30
        return None
