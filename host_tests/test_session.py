"""The MQTT session over umqtt.simple: will, birth, keepalive, reconnect, resubscribe, refusals."""

import errno
from itertools import pairwise

import pytest

from firmware import linkup
from firmware.session import Session, Topics
from firmware.transport import Transport, WatchedSocket
from host_tests.conftest import Clock

T = Topics("sensornode", "esp32-a1b2c3", True)  # with the update topics
STATUS = "sensornode/esp32-a1b2c3/status"


@pytest.fixture
def make(umqtt, clock, log):
    def make(keepalive=30, host="127.0.0.1"):
        transport = Transport(
            umqtt, T.device, host, 1883, "user", "pw", keepalive, clock=clock, log=log
        )
        backoff = (1000, 8000, lambda bits: 0xFFFF)
        return Session(transport, T, keepalive, clock, backoff, log, "127.0.0.1:1883")

    return make


def run(session, clock, ms, step=100):
    for _ in range(ms // step):
        session.poll(clock.advance(step))


def test_connect_sets_a_retained_offline_will_on_the_status_topic(make, clock, umqtt):
    make().poll(clock.now)
    assert umqtt.broker.clients[0].will == (STATUS, b"offline", True, 1)


def test_birth_online_is_published_retained_after_connect(make, clock, umqtt):
    make().poll(clock.now)
    assert umqtt.broker.published == [(STATUS, b"online", True, 1)]


def test_subscribes_to_the_command_topic(make, clock, umqtt):
    make().poll(clock.now)
    assert umqtt.broker.subscribed == [("sensornode/esp32-a1b2c3/cmd", 1)]


def test_a_refused_command_subscription_keeps_the_connection_and_says_so(make, clock, umqtt, log):
    umqtt.broker.subscribe_error = umqtt.MQTTException(0x80)
    s = make()
    s.poll(clock.now)
    assert s.online and s.connects == 1
    assert "refused the subscription to sensornode/esp32-a1b2c3/cmd; commands are off" in (
        log.text()
    )
    assert s.publish(b"t", b"x", False, 1, clock.now) is True


def test_a_subscription_that_fails_otherwise_drops_the_connection(make, clock, umqtt, log):
    umqtt.broker.subscribe_error = OSError(104)
    s = make()
    s.poll(clock.now)
    assert not s.online and "retry in" in log.text()


def test_client_id_and_login_go_to_umqtt_as_bytes_with_the_keepalive(make, clock, umqtt):
    make(keepalive=20).poll(clock.now)
    assert umqtt.broker.clients[0].args == (b"esp32-a1b2c3", "127.0.0.1", 1883, b"user", b"pw", 20)


def test_text_payloads_reach_umqtt_as_their_utf8_bytes(make, clock, umqtt):
    s = make()
    s.poll(clock.now)
    s.publish(T.event, '{"detail": "21.5 °C, café"}', False, 0, clock.now)
    topic, msg, _, _ = umqtt.broker.published[-1]
    assert type(msg) is bytes and msg == '{"detail": "21.5 °C, café"}'.encode()


def test_socket_gets_a_timeout_so_no_call_blocks_forever(make, clock, umqtt):
    s = make()
    s.poll(clock.now)
    timeouts = s.transport.sock.sock.timeouts
    assert timeouts[0] == 5 and None not in timeouts  # waits by deadline, non-blocking reads


def test_pings_on_its_own_schedule(make, clock, umqtt):
    s = make(keepalive=30)
    s.poll(clock.now)
    run(s, clock, 30000)
    assert umqtt.broker.pings == 3


def test_missing_pingresp_drops_the_link_within_the_keepalive(make, clock, umqtt, log):
    s = make(keepalive=30)
    s.poll(clock.now)
    umqtt.broker.silent = True
    run(s, clock, 20000)
    assert not s.online and "no answer to PINGREQ" in log.text()


def test_answered_pings_keep_the_link(make, clock, umqtt):
    s = make(keepalive=30)
    s.poll(clock.now)
    run(s, clock, 120000)
    assert s.online and s.reconnects == 0


def test_reconnects_at_once_after_a_proven_link_drops_and_says_online_again(make, clock, umqtt):
    s = make()
    s.poll(clock.now)
    run(s, clock, 30000)  # the link has lasted long enough to be trusted
    umqtt.broker.check_error = OSError(-1)
    run(s, clock, 100)
    umqtt.broker.check_error = None
    run(s, clock, 100)
    births = [p for p in umqtt.broker.published if p[0] == STATUS]
    assert (s.online, len(births), s.reconnects) == (True, 2, 1)


def test_a_link_that_fails_soon_after_its_connect_is_retried_with_growing_backoff(
    make, clock, umqtt, log
):
    # whatever broke it (a message the node cannot take, a broker that stops answering) would
    # break the next one at once: no reconnect storm
    s = make()
    connects_at = []
    for _ in range(8):
        while not s.online:
            s.poll(clock.advance(100))
        connects_at.append(clock.now)
        s.drop(clock.advance(100), "lost (test)")
    waits = [clock.ticks_diff(b, a) for a, b in pairwise(connects_at)]
    assert waits == sorted(waits) and waits[-1] >= 8000, waits
    assert "broker 127.0.0.1:1883 lost (test); retry in 1 s" in log.text()


def test_resubscribes_after_every_reconnect(make, clock, umqtt):
    s = make()
    s.poll(clock.now)
    s.drop(clock.now, "test")
    run(s, clock, 1100)
    assert [t for t, _ in umqtt.broker.subscribed].count("sensornode/esp32-a1b2c3/cmd") == 2


def test_a_drop_closes_the_socket_without_disconnect_so_the_will_fires(make, clock, umqtt):
    s = make()
    s.poll(clock.now)
    sock = umqtt.broker.clients[0].sock.sock
    s.drop(clock.now, "test")
    assert sock.closed and ("<disconnect>", b"", False, 0) not in umqtt.broker.published


def test_broker_down_at_boot_retries_with_growing_backoff(make, clock, umqtt, log):
    umqtt.broker.connect_error = OSError(errno.ECONNREFUSED)
    s = make()
    run(s, clock, 8000)
    assert "unreachable (ECONNREFUSED); retry in 1 s" in log.text()
    assert "retry in 2 s" in log.text() and "retry in 4 s" in log.text()
    umqtt.broker.connect_error = None
    run(s, clock, 9000)
    assert s.online


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (4, "bad username or password"),
        (5, "not authorised"),
        (2, "client id rejected"),
        (3, "server unavailable"),
        (1, "unacceptable protocol version"),
    ],
)
def test_connack_refusals_are_reported_by_name(make, clock, umqtt, log, code, words):
    umqtt.broker.connect_error = umqtt.MQTTException(code)
    make().poll(clock.now)
    assert f"broker 127.0.0.1:1883 refused: {words}; retry in 1 s" in log.lines[-1]


def test_publish_failure_drops_the_link_and_says_so(make, clock, umqtt, log):
    s = make()
    s.poll(clock.now)
    umqtt.broker.publish_error = OSError(errno.ETIMEDOUT)
    assert s.publish(b"t", b"x", False, 1, clock.now) is False
    assert not s.online and "lost (ETIMEDOUT on publish)" in log.text()


def test_commands_are_queued_not_run_inside_the_callback(make, clock, umqtt):
    s = make()
    s.poll(clock.now)
    umqtt.broker.inbox = [(b"sensornode/esp32-a1b2c3/cmd", b'{"cmd":"ping"}')]
    run(s, clock, 100)
    assert s.commands == [b'{"cmd":"ping"}']


def test_a_poll_that_finds_nothing_on_the_wire_makes_no_call_into_umqtt(make, clock, umqtt):
    s = make()
    s.poll(clock.now)
    calls = []
    client = s.transport.client
    check = client.check_msg
    client.check_msg = lambda: calls.append(1) or check()
    run(s, clock, 1000)
    assert calls == []
    umqtt.broker.inbox = [(b"sensornode/esp32-a1b2c3/cmd", b'{"cmd":"ping"}')]
    run(s, clock, 100)
    assert (calls, s.commands) == ([1, 1], [b'{"cmd":"ping"}'])


def test_command_queue_is_bounded(make, clock, umqtt):
    s = make()
    s.poll(clock.now)
    umqtt.broker.inbox = [(b"sensornode/esp32-a1b2c3/cmd", b"{}")] * 10
    run(s, clock, 300)
    assert (len(s.commands), s.commands_lost) == (4, 6)


def test_messages_on_other_topics_are_not_commands(make, clock, umqtt):
    s = make()
    s.poll(clock.now)
    umqtt.broker.inbox = [
        (b"sensornode/esp32-a1b2c3/status", b"online"),
        (b"homeassistant/sensor/x/config", b"{}"),
    ]
    run(s, clock, 200)
    assert s.commands == []


def test_close_says_offline_then_disconnects(make, clock, umqtt):
    s = make()
    s.poll(clock.now)
    s.close(clock.now)
    assert umqtt.broker.published[-2:] == [
        (STATUS, b"offline", True, 1),
        ("<disconnect>", b"", False, 0),
    ]


def test_no_broker_configured_never_connects(make, clock, umqtt):
    s = make(host=None)
    run(s, clock, 60000)
    assert umqtt.broker.clients == []


def test_umqtt_without_connect_timeout_gets_timed_sockets(umqtt, clock, log):
    class Legacy(umqtt.MQTTClient):
        def connect(self, clean_session=True):  # 1.3.4 to 1.5: no timeout argument
            return super().connect(clean_session)

    umqtt.MQTTClient = Legacy
    try:
        t = Transport(umqtt, "id", "127.0.0.1", 1883, None, None, 30, clock=clock, log=log)
        linkup.open_client(t, "s", b"offline", lambda topic, msg: None)
        assert t.connect_takes_timeout is False
        assert (t.sock.raw.timeout, t.client.connect_timeout) == (5, None)
    finally:
        umqtt.MQTTClient = Legacy.__bases__[0]


def test_umqtt_gets_its_own_socket_module_back_after_a_connect(make, clock, umqtt):
    theirs = umqtt.socket
    s = make()
    s.poll(clock.now)
    assert s.online and umqtt.socket is theirs


def test_umqtt_gets_its_own_socket_module_back_after_a_failed_connect(make, clock, umqtt):
    theirs = umqtt.socket
    umqtt.broker.connect_error = OSError(errno.ECONNREFUSED)
    s = make()
    s.poll(clock.now)
    assert not s.online and umqtt.socket is theirs


def test_the_connect_code_leaves_the_heap_after_a_connect_and_after_a_drop(make, clock, umqtt):
    import sys

    s = make()
    s.poll(clock.now)
    assert s.online and "firmware.linkup" not in sys.modules
    s.publish(b"t", b"x", False, 1, clock.now)  # a cycle's work loads nothing
    assert "firmware.linkdown" not in sys.modules
    umqtt.broker.publish_error = OSError(errno.ETIMEDOUT)
    s.publish(b"t", b"x", False, 1, clock.now)
    assert not s.online
    assert "firmware.linkup" not in sys.modules and "firmware.linkdown" not in sys.modules


@pytest.mark.parametrize(("keepalive", "timeout"), [(5, 2), (10, 3), (30, 5), (600, 5)])
def test_socket_timeout_follows_the_keepalive_between_2_and_5_s(keepalive, timeout):
    from firmware.transport import timeout_for

    assert timeout_for(keepalive) == timeout


class Wire:
    """A raw socket that records each write as one segment on the wire."""

    def __init__(self):
        self.segments = []
        self.closed = False

    def settimeout(self, t):
        pass

    def write(self, buf, n=-1):
        data = bytes(buf if n < 0 else memoryview(buf)[:n])
        self.segments.append(data)
        return len(data)

    def read(self, n):
        return b"\xd0\x00"[:n]  # PINGRESP, all the wrapper reads at once

    def close(self):
        self.closed = True


def test_the_pieces_of_a_packet_leave_as_one_segment_before_the_next_read():
    wire = Wire()
    w = WatchedSocket(wire, 5, Clock(), print)
    w.write(bytearray(b"\x32\x0c\0\0"), 2)  # umqtt: header, then only its first n bytes
    w.write(b"\x00\x01")
    w.write(b"t")
    w.write(memoryview(b"payload"))
    w.read(1)
    assert wire.segments == [b"\x32\x0c\x00\x01tpayload"]


class FullWire(Wire):
    """A raw socket whose send buffer takes at most `room` bytes while it is non-blocking."""

    def __init__(self, room):
        super().__init__()
        self.room = room
        self.timeouts = []

    def settimeout(self, t):
        self.timeouts.append(t)

    def write(self, buf, n=-1):
        if self.timeouts[-1] == 0:
            n = min(len(buf) if n < 0 else n, self.room)
            if not n:
                return None  # EAGAIN: nothing could be written without waiting
        return super().write(buf, n)


@pytest.mark.parametrize("room", [1000, 3, 0])
def test_a_publish_goes_out_without_waiting_and_waits_only_for_a_full_send_buffer(room):
    wire = FullWire(room)
    w = WatchedSocket(wire, 5, Clock(), print)
    w.read(1)  # a read leaves the socket non-blocking
    before = list(wire.timeouts)
    w.write(b"\x30\x07\x00\x01tpayload")
    w.flush()
    assert b"".join(wire.segments) == b"\x30\x07\x00\x01tpayload"
    switched = wire.timeouts[len(before) :]
    assert switched == ([] if room == 1000 else [5])  # blocking with its timeout only when full


def test_nothing_is_sent_until_a_read_or_a_flush():
    wire = Wire()
    w = WatchedSocket(wire, 5, Clock(), print)
    w.write(b"\xc0\x00")
    assert wire.segments == []
    w.flush()
    assert wire.segments == [b"\xc0\x00"]


def test_a_write_larger_than_the_buffer_goes_straight_out_after_what_was_gathered():
    wire = Wire()
    w = WatchedSocket(wire, 5, Clock(), print)
    w.write(b"head")
    w.write(b"x" * 1000)
    assert wire.segments == [b"head", b"x" * 1000]


def test_close_sends_a_gathered_disconnect_first():
    wire = Wire()
    w = WatchedSocket(wire, 5, Clock(), print)
    w.write(b"\xe0\x00")
    w.close()
    assert (wire.segments, wire.closed) == ([b"\xe0\x00"], True)


def test_qos0_publishes_and_pings_are_flushed_at_once(make, clock, umqtt):
    s = make()
    s.poll(clock.now)
    sock = s.transport.sock
    raw = sock.sock
    sent = []
    write = raw.write

    def recorded(buf, n=-1):
        sent.append(bytes(buf)[: len(buf) if n < 0 else n])
        return write(buf, n)

    raw.write = recorded
    sock.write(b"\xc0\x00")  # a PINGREQ umqtt wrote and nothing has sent yet
    assert s.publish(b"t", b"x", False, 0, clock.now) is True
    assert sock.fill == 0
    assert b"".join(sent) == b"\xc0\x00" + b"\x30\x04\x00\x01tx"  # the PINGREQ first, then it
    assert s.online and umqtt.broker.published[-1] == ("t", b"x", False, 0)
