"""A broker that misbehaves, byte by byte: the session and transport over every real umqtt.simple
(each version in ../shared/umqtt-simple; skipped with the reason without it), run under
CPython against a scripted socket on a fake clock. What the broker sends is a schedule of
(milliseconds, bytes); a read that would wait moves the clock to the next byte, or by the whole
timeout it was given and then times out, exactly as a socket timeout does on a board.
"""

from __future__ import annotations

import errno
import struct
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from firmware.commands import MAX_BYTES
from firmware.session import Session, Topics
from firmware.transport import IN_MAX, Transport
from host_tests.conftest import FakeClock, Log
from host_tests.hostile_broker import publish_packet, varint
from host_tests.test_umqtt_versions import Recorder, load_umqtt, packets
from tools.vboard.layout import UMQTT_VERSIONS

T = Topics("sensornode", "esp32-a1b2c3", True)  # with the update topics
CMD = b"sensornode/esp32-a1b2c3/cmd"
TIMEOUT_S = 2


# -- packets a broker sends ----------------------------------------------------------------


def publish(topic: bytes, msg: bytes, qos: int = 0, retain: bool = False, pid: int = 7) -> bytes:
    return publish_packet(topic.decode(), msg, qos, retain, pid)


def puback(pid: int) -> bytes:
    return b"\x40\x02" + struct.pack("!H", pid)


CONNACK = b"\x20\x02\x00\x00"
BIRTH_ACK = puback(1)
SUBACK = b"\x90\x03\x00\x02\x01"
CONNECTED = [(0, CONNACK + BIRTH_ACK + SUBACK)]


class Script:
    """The broker's side of one connection: what arrives when, and what the node wrote."""

    def __init__(self, clock: FakeClock, schedule: list[tuple[int, bytes]]) -> None:
        self.clock = clock
        self.start = clock.now
        self.chunks = [(at, bytearray(data)) for at, data in schedule]
        self.sent = bytearray()
        self.writes: list[bytes] = []  # each write as it was made
        self.timeout: float | None = None
        self.closed = False

    def at(self, ms: int, data: bytes) -> None:
        self.chunks.append((ms, bytearray(data)))

    def _elapsed(self) -> int:
        return self.clock.ticks_diff(self.clock.now, self.start)

    def _ready(self, n: int) -> bytes | None:
        out = bytearray()
        while self.chunks and len(out) < n and self.chunks[0][0] <= self._elapsed():
            chunk = self.chunks[0][1]
            take = min(n - len(out), len(chunk))
            out += chunk[:take]
            del chunk[:take]
            if not chunk:
                self.chunks.pop(0)
        return bytes(out) if out else None

    # the socket API umqtt and the transport use
    def settimeout(self, t: float | None) -> None:
        self.timeout = t

    def connect(self, addr: Any) -> None:
        pass

    def read(self, n: int) -> bytes | None:
        got = self._ready(n)
        if got is not None or self.timeout == 0:
            return got
        wait_ms = int((self.timeout or 0) * 1000)
        if self.chunks and self.chunks[0][0] - self._elapsed() <= wait_ms:
            self.clock.advance(max(0, self.chunks[0][0] - self._elapsed()))
            return self._ready(1)  # a blocking read returns what came, one byte at least
        self.clock.advance(wait_ms)
        raise OSError(errno.ETIMEDOUT)

    def readinto(self, buf: bytearray, n: int = -1) -> int | None:
        got = self.read(len(buf) if n < 0 else n)
        if got is None:
            return None
        buf[: len(got)] = got
        return len(got)

    def write(self, buf: Any, n: int = -1) -> int:
        data = bytes(buf if n < 0 else memoryview(buf)[:n])
        self.sent += data
        self.writes.append(data)
        return len(data)

    def close(self) -> None:
        self.closed = True

    def packets(self) -> list[tuple[int, bytes]]:
        """What the node sent, as (first byte, body) per packet."""
        return packets(bytes(self.sent))

    def pubacks(self) -> list[int]:
        return [struct.unpack("!H", body)[0] for op, body in self.packets() if op == 0x40]

    def publish_ids(self) -> list[int]:
        ids = []
        for op, body in self.packets():
            if op & 0xF0 == 0x30 and op & 6:
                tl = struct.unpack("!H", body[:2])[0]
                ids.append(struct.unpack("!H", body[2 + tl : 4 + tl])[0])
        return ids


class Rig:
    def __init__(self, umqtt: types.ModuleType, clock: FakeClock, log: Log) -> None:
        self.umqtt, self.clock, self.log = umqtt, clock, log
        self.scripts: list[Script] = []
        self.next: list[tuple[int, bytes]] = list(CONNECTED)
        rig = self

        class Sockets:
            @staticmethod
            def socket(*_args: Any) -> Script:
                s = Script(clock, rig.next)
                rig.next = list(CONNECTED)
                rig.scripts.append(s)
                return s

            @staticmethod
            def getaddrinfo(host: str, port: int) -> list[Any]:
                return [(2, 1, 6, "", (host, port))]

        umqtt.socket = Sockets
        transport = Transport(
            umqtt, T.device, "127.0.0.1", 1883, None, None, 6, False, None, TIMEOUT_S, clock, log
        )
        backoff = (1000, 60000, lambda bits: 0xFFFF)
        self.session = Session(transport, T, 6, clock, backoff, log, "127.0.0.1:1883")

    @property
    def wire(self) -> Script:
        return self.scripts[-1]

    def connect(self, schedule: list[tuple[int, bytes]] | None = None) -> Script:
        if schedule is not None:
            self.next = schedule
        self.session.poll(self.clock.now)
        return self.wire

    def poll(self, ms: int = 0) -> None:
        self.session.poll(self.clock.advance(ms))


@pytest.fixture(params=UMQTT_VERSIONS)
def rig(request: pytest.FixtureRequest, log: Log, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    yield Rig(load_umqtt(request.param, monkeypatch, Recorder()), FakeClock(), log)


def test_a_command_is_queued_and_acknowledged(rig: Rig) -> None:
    wire = rig.connect()
    wire.at(0, publish(CMD, b'{"cmd":"ping"}', qos=1, pid=9))
    rig.poll(10)
    assert rig.session.commands == [b'{"cmd":"ping"}']
    assert wire.pubacks() == [9]


@pytest.mark.parametrize("qos", [0, 1])
def test_a_retained_command_is_ignored_with_how_to_clear_it(rig: Rig, qos: int) -> None:
    wire = rig.connect()
    wire.at(0, publish(CMD, b'{"cmd":"reboot"}', qos=qos, retain=True, pid=9))
    wire.at(0, publish(CMD, b'{"cmd":"ping"}', qos=qos, pid=10))
    rig.poll(10)
    rig.poll(10)  # umqtt 1.3.4's check_msg() says None after a message: one a poll
    assert rig.session.commands == [b'{"cmd":"ping"}']
    assert (
        "cmd: ignored a retained command on sensornode/esp32-a1b2c3/cmd "
        "(clear it: mosquitto_pub -r -n -t 'sensornode/esp32-a1b2c3/cmd')" in rig.log.lines
    )
    assert wire.pubacks() == ([9, 10] if qos else [])


def test_a_retained_command_before_the_suback_is_ignored_too(rig: Rig) -> None:
    # a broker may send the retained message while the node still waits for its SUBACK
    retained = publish(CMD, b'{"cmd":"reboot"}', qos=1, retain=True, pid=9)
    rig.connect([(0, CONNACK + BIRTH_ACK + retained + SUBACK)])
    assert rig.session.online and rig.session.commands == []
    assert "ignored a retained command" in rig.log.text()


@pytest.mark.parametrize(("size", "retain"), [(IN_MAX, False), (1 << 20, False), (100_000, True)])
def test_a_message_too_large_is_read_past_acknowledged_and_the_link_stays(
    rig: Rig, size: int, retain: bool
) -> None:
    wire = rig.connect()
    wire.at(0, publish(CMD, b"x" * size, qos=1, retain=retain, pid=9))
    wire.at(0, publish(CMD, b'{"cmd":"ping"}', qos=1, pid=10))
    for _ in range(3):
        rig.poll(10)
    assert rig.session.online and rig.session.commands == [b'{"cmd":"ping"}']
    assert wire.pubacks() == [9, 10]
    skipped = [line for line in rig.log.lines if "skipped a message" in line]
    assert len(skipped) == 1, rig.log.lines
    assert f"of {size + len(CMD) + 4} bytes on sensornode/esp32-a1b2c3/cmd (over the" in skipped[0]
    clear = "; it is retained: clear it with mosquitto_pub -r -n -t 'sensornode/esp32-a1b2c3/cmd'"
    assert skipped[0].endswith(clear) == retain


def test_a_message_within_the_limit_reaches_the_command_parser(rig: Rig) -> None:
    # commands.parse() refuses it by its size with an error event the sender can see
    assert IN_MAX >= MAX_BYTES + 256
    wire = rig.connect()
    big = b"x" * (IN_MAX - len(CMD) - 4)
    wire.at(0, publish(CMD, big, qos=1, pid=9))
    rig.poll(10)
    assert rig.session.commands == [big]


def test_a_qos2_publish_is_read_past_and_the_link_stays(rig: Rig) -> None:
    wire = rig.connect()
    wire.at(0, publish(CMD, b'{"cmd":"reboot"}', qos=2, pid=9))
    wire.at(0, publish(CMD, b'{"cmd":"ping"}', qos=0))
    rig.poll(10)
    rig.poll(10)
    assert rig.session.online and rig.session.commands == [b'{"cmd":"ping"}']
    assert "(QoS 2 is not supported)" in rig.log.text()


def test_the_code_that_reads_past_a_message_leaves_the_heap_after_it(rig: Rig) -> None:
    wire = rig.connect()
    wire.at(0, publish(CMD, b"x" * IN_MAX, qos=1, pid=9))
    rig.poll(10)
    assert "skipped a message" in rig.log.text() and wire.pubacks() == [9]
    assert "firmware.skipmsg" not in sys.modules


def test_the_code_that_reads_past_a_message_leaves_the_heap_when_the_link_fails_in_it(
    rig: Rig,
) -> None:
    wire = rig.connect()
    wire.at(0, b"\x30" + varint(200 << 20) + b"\x00\x03abc" + b"y" * 4096)
    rig.poll()
    assert not rig.session.online and "skipped a message" in rig.log.text()
    assert "firmware.skipmsg" not in sys.modules


def test_a_packet_umqtt_would_not_read_whole_is_read_past(rig: Rig) -> None:
    # an UNSUBACK nobody asked for, a PUBACK outside a publish: umqtt returns their type and
    # leaves the rest, which it would then read as the next packet
    wire = rig.connect()
    wire.at(0, b"\xb0\x02\x00\x05" + puback(3) + publish(CMD, b'{"cmd":"ping"}'))
    for _ in range(3):
        rig.poll(10)
    assert rig.session.online and rig.session.commands == [b'{"cmd":"ping"}']


def test_a_200_mb_length_drops_the_link_at_the_packet_deadline_and_backs_off(rig: Rig) -> None:
    wire = rig.connect()
    start = rig.clock.now
    wire.at(0, b"\x30" + varint(200 << 20) + b"\x00\x03abc" + b"y" * 4096)
    rig.poll()
    assert not rig.session.online
    assert rig.clock.ticks_diff(rig.clock.now, start) <= TIMEOUT_S * 1000
    assert "skipped a message of 209715200 bytes on abc" in rig.log.text()
    assert "lost (ETIMEDOUT); retry in" in rig.log.lines[-1]


def test_a_broker_that_drips_one_byte_every_2_s_is_dropped_at_the_packet_deadline(
    rig: Rig,
) -> None:
    wire = rig.connect()
    start = rig.clock.now
    for i, b in enumerate(publish(CMD, b'{"cmd":"ping"}')):
        wire.at(2000 * (i + 1), bytes([b]))
    while rig.session.online:
        rig.poll(100)
    # the first byte opens the packet; it then has TIMEOUT_S however the bytes trickle
    assert rig.clock.ticks_diff(rig.clock.now, start) <= 2000 + TIMEOUT_S * 1000 + 100
    assert rig.session.commands == []


def test_a_connack_that_drips_fails_the_connect_within_its_deadline(rig: Rig) -> None:
    start = rig.clock.now
    rig.connect([(1500 * (i + 1), bytes([b])) for i, b in enumerate(CONNACK)])
    assert not rig.session.online
    assert rig.clock.ticks_diff(rig.clock.now, start) <= TIMEOUT_S * 1000
    assert "unreachable (ETIMEDOUT); retry in" in rig.log.lines[-1]


def test_no_puback_while_commands_keep_coming_fails_the_publish_within_its_deadline(
    rig: Rig,
) -> None:
    wire = rig.connect()
    start = rig.clock.now
    for i in range(100):
        wire.at(100 * i, publish(CMD, b'{"cmd":"ping"}', qos=1, pid=100 + i))
    ok = rig.session.publish(T.readings, b"{}", False, 1, start)
    assert ok is False and not rig.session.online
    assert rig.clock.ticks_diff(rig.clock.now, start) <= TIMEOUT_S * 1000
    assert len(rig.session.commands) == 4  # the queue's bound; the rest are counted as lost


def test_packet_ids_go_from_65535_to_1_never_0(rig: Rig) -> None:
    wire = rig.connect()
    rig.session.transport.sock.pid = 65534
    for pid in (65535, 1, 2):
        wire.at(0, puback(pid))
    for _ in range(3):
        assert rig.session.publish(T.readings, b"{}", False, 1, rig.clock.now)
    assert wire.publish_ids()[-3:] == [65535, 1, 2]


def test_one_poll_reads_for_one_deadline_however_many_slow_packets_come(rig: Rig) -> None:
    # four commands whose last byte each comes 1.5 s after the rest, the next command with it:
    # each is whole within its own deadline, but one poll must not take four of them (a
    # watchdog of a few seconds would reset the board)
    wire = rig.connect()
    start = rig.clock.now
    for i in range(4):
        packet = publish(CMD, b'{"cmd":"ping"}', pid=20 + i)
        wire.at(1500 * i, packet[:-1])
        wire.at(1500 * (i + 1), packet[-1:])
    rig.poll()
    assert rig.clock.ticks_diff(rig.clock.now, start) <= TIMEOUT_S * 1000


def test_a_large_message_on_a_topic_that_is_not_utf8_is_read_past_unnamed(rig: Rig) -> None:
    wire = rig.connect()
    body = struct.pack("!H", 3) + b"\xff\xfe\xfd" + b"x" * 5000
    wire.at(0, b"\x30" + varint(len(body)) + body + publish(CMD, b'{"cmd":"ping"}'))
    for _ in range(3):
        rig.poll(10)
    assert rig.session.online and rig.session.commands == [b'{"cmd":"ping"}']
    assert "skipped a message of 5005 bytes on ? (over the" in rig.log.text()


# -- a PUBLISH of the node's own, and its PUBACK -------------------------------------------------


def next_pid(rig: Rig) -> int:
    sock = rig.session.transport.sock
    assert sock is not None
    return sock.pid % 0xFFFF + 1


def test_a_publish_is_one_write_of_one_whole_packet(rig: Rig) -> None:
    wire = rig.connect()
    pid = next_pid(rig)
    wire.at(0, puback(pid))
    assert rig.session.publish(T.readings, b'{"seq":1}', True, 1, rig.clock.now)
    body = struct.pack("!H", len(T.readings)) + T.readings + struct.pack("!H", pid) + b'{"seq":1}'
    assert packets(wire.writes[-1]) == [(0x33, body)]  # QoS 1, retained, in one write
    assert rig.session.transport.sock.awaiting == 0  # the exchange is over


@pytest.mark.parametrize("size", [100, 200, 1000, 16000])
def test_a_message_of_any_length_the_node_makes_goes_out_whole(rig: Rig, size: int) -> None:
    # two length bytes from 128 on; past the buffer the message follows its header
    wire = rig.connect()
    msg = bytes(range(256)) * (size // 256) + b"m" * (size % 256)
    assert rig.session.publish(T.heartbeat, msg, False, 0, rig.clock.now)
    op, body = packets(bytes(wire.sent))[-1]
    assert op == 0x30 and body == struct.pack("!H", len(T.heartbeat)) + T.heartbeat + msg


def test_a_message_past_16_kb_is_refused_by_name(rig: Rig) -> None:
    rig.connect()
    assert not rig.session.publish(T.heartbeat, b"x" * 16400, False, 0, rig.clock.now)
    assert "is too large to publish" in rig.log.text()


@pytest.mark.parametrize(
    "before",
    [
        publish(CMD, b'{"cmd":"ping"}', qos=1, pid=40),  # a command, acknowledged on the way
        b"\xd0\x00",  # a PINGRESP
        puback(999),  # a PUBACK of another packet: read on to ours
        b"\xb0\x02\x00\x05",  # an UNSUBACK nobody asked for: read past, from what is held
    ],
    ids=["command", "pingresp", "other-puback", "stray-unsuback"],
)
def test_what_comes_before_the_puback_is_read_and_the_publish_succeeds(
    rig: Rig, before: bytes
) -> None:
    wire = rig.connect()
    pid = next_pid(rig)
    wire.at(0, before + puback(pid))
    assert rig.session.publish(T.readings, b"{}", False, 1, rig.clock.now)
    assert rig.session.online
    if before[0] & 0xF0 == 0x30:
        assert rig.session.commands == [b'{"cmd":"ping"}'] and wire.pubacks() == [40]
    rig.poll(10)  # and the stream is in step: a command after it is read as one
    wire.at(0, publish(CMD, b'{"cmd":"info"}'))
    rig.poll(10)
    assert rig.session.commands[-1] == b'{"cmd":"info"}'


def test_a_puback_that_comes_in_pieces_is_waited_for_within_the_deadline(rig: Rig) -> None:
    wire = rig.connect()
    start = rig.clock.now
    ack = puback(next_pid(rig))
    wire.at(0, ack[:1])
    wire.at(700, ack[1:3])
    wire.at(1400, ack[3:])
    assert rig.session.publish(T.readings, b"{}", False, 1, start)
    assert 1400 <= rig.clock.ticks_diff(rig.clock.now, start) <= TIMEOUT_S * 1000


def test_a_qos2_message_before_the_puback_is_read_past_and_the_publish_succeeds(
    rig: Rig,
) -> None:
    # the first bytes back, held for umqtt when they are not the PUBACK, are read past too
    wire = rig.connect()
    pid = next_pid(rig)
    wire.at(0, publish(CMD, b"x" * 600, qos=2, pid=9) + puback(pid))
    assert rig.session.publish(T.readings, b"{}", False, 1, rig.clock.now)
    assert rig.session.online and "(QoS 2 is not supported)" in rig.log.text()
