"""A small MQTT 3.1.1 server on raw sockets that misbehaves on purpose, for integration tests.

    broker = HostileBroker("puback-never", cmd_topic="sensornode/esp32-00e001/cmd")
    ...                        # a board configured with 127.0.0.1:broker.port
    broker.behave()            # from now on new connections get a broker that behaves
    broker.on(topic)           # what the board published there (QoS 0 and 1), in order
    broker.stop()              # closes the port and every connection

It speaks just enough MQTT to be a broker for one node (CONNACK, SUBACK, PUBACK, PINGRESP, and
the PUBLISHes it receives kept), and while `hostile` it does what its scenario says instead:

    connack-never     reads the CONNECT, never answers (the TCP connection stays open)
    connack-late      answers the CONNECT after LATE_S, after the node's deadline
    connack-malformed answers with a CONNACK of the wrong length
    refuse-N          CONNACK return code N (1..5), then closes
    length-200mb      after the SUBACK: a PUBLISH header announcing 200 MB, 4 KB of it, then silence
    qos2              after the SUBACK: a command at QoS 2
    big-command       after the SUBACK: a 1 MB command
    retained-100kb    after the SUBACK: a 100 KB retained command, at every connect
    retained-reboot   after the SUBACK: a retained {"cmd": "reboot"}, at every connect
    burst             after the SUBACK: 1,000 commands at once
    silent            after the SUBACK: reads everything, answers nothing (no PUBACK, no PINGRESP)
    drip              after the SUBACK: a command, one byte every 2 s
    puback-never      acknowledges nothing after the SUBACK and sends a command every 100 ms

Connections already open when behave() is called keep their scenario: the node must notice on
its own. Every accepted connection's time is kept in `connects` (time.monotonic()).
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time

HOST = "127.0.0.1"
LATE_S = 4.0  # a late CONNACK: past the node's whole-exchange deadline (2 s at keepalive 5)
DRIP_S = 2.0
SCENARIOS = (
    "connack-never",
    "connack-late",
    "connack-malformed",
    "refuse-1",
    "refuse-2",
    "refuse-3",
    "refuse-4",
    "refuse-5",
    "length-200mb",
    "qos2",
    "big-command",
    "retained-100kb",
    "retained-reboot",
    "burst",
    "silent",
    "drip",
    "puback-never",
)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(
    topic: str, payload: bytes, qos: int = 0, retain: bool = False, pid: int = 1
) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", pid) if qos else b"") + payload
    return bytes([0x30 | qos << 1 | int(retain)]) + varint(len(body)) + body


def ping_command(i: int) -> bytes:
    return json.dumps({"cmd": "ping", "id": i}).encode()


class _Closed(Exception):
    pass


class _Conn:
    """One client's connection: reads whole packets, writes under a lock."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def _exact(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            got = self.sock.recv(n - len(data))
            if not got:
                raise _Closed
            data += got
        return bytes(data)

    def packet(self) -> tuple[int, bytes]:
        first = self._exact(1)[0]
        size, shift = 0, 0
        while True:
            b = self._exact(1)[0]
            size |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return first, self._exact(size)

    def send(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)


class HostileBroker:
    def __init__(self, scenario: str, cmd_topic: str) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}: {', '.join(SCENARIOS)}")
        self.scenario = scenario
        self.cmd_topic = cmd_topic
        self.hostile = True
        self.connects: list[float] = []
        self.published: list[tuple[float, str, bytes]] = []  # (time, topic, payload)
        self._cond = threading.Condition()
        self._socks: list[socket.socket] = []
        self._stopping = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(8)
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="hostile-broker", daemon=True).start()

    # -- the test's side ------------------------------------------------------------------------

    def behave(self) -> None:
        self.hostile = False

    def on(self, topic: str, since: float = 0.0) -> list[bytes]:
        with self._cond:
            return [p for t, top, p in self.published if top == topic and t >= since]

    def wait(self, done: object, timeout: float, what: str) -> None:
        """Waits until done() is true (checked whenever a message arrives, and every 0.2 s)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done():  # type: ignore[operator]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.scenario}: not within {timeout} s: {what}")
                self._cond.wait(min(left, 0.2))

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._cond:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    # -- the broker's side ----------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopping:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._cond:
                self.connects.append(time.monotonic())
                self._socks.append(sock)
            hostile = self.hostile
            threading.Thread(target=self._serve, args=(sock, hostile), daemon=True).start()

    def _serve(self, sock: socket.socket, hostile: bool) -> None:
        conn = _Conn(sock)
        try:
            with contextlib.suppress(_Closed, OSError):
                self._session(conn, self.scenario if hostile else "")
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _session(self, conn: _Conn, scenario: str) -> None:
        first, _ = conn.packet()
        if first != 0x10:
            return
        if not self._connack(conn, scenario):
            return
        acking = scenario not in ("silent", "puback-never")
        subscribed = False
        while not self._stopping:
            first, body = conn.packet()
            kind = first & 0xF0
            if kind == 0x30:
                self._received(first, body, conn, acking or not subscribed)
            elif kind == 0x80:  # SUBSCRIBE: granted at QoS 1
                conn.send(b"\x90\x03" + body[:2] + b"\x01")
                subscribed = True
                self._after_subscribe(conn, scenario)
            elif kind == 0xC0 and acking:
                conn.send(b"\xd0\x00")
            elif kind == 0xE0:
                return

    def _connack(self, conn: _Conn, scenario: str) -> bool:
        # False: the session ends here (the connection is then closed, or held open silently)
        if scenario == "connack-never":
            self._hold(conn)
            return False
        if scenario == "connack-late":
            time.sleep(LATE_S)
        elif scenario == "connack-malformed":
            conn.send(b"\x20\x03\x00\x00\x00")
            self._hold(conn)
            return False
        elif scenario.startswith("refuse-"):
            conn.send(b"\x20\x02\x00" + bytes([int(scenario[-1])]))
            return False
        conn.send(b"\x20\x02\x00\x00")
        return True

    def _hold(self, conn: _Conn) -> None:
        # Keeps the connection open, reading and dropping whatever comes, until the client goes.
        while not self._stopping and conn.sock.recv(4096):
            pass

    def _received(self, first: int, body: bytes, conn: _Conn, ack: bool) -> None:
        tlen = struct.unpack("!H", body[:2])[0]
        topic = body[2 : 2 + tlen].decode("utf-8", "replace")
        qos = (first >> 1) & 3
        payload = body[2 + tlen + (2 if qos else 0) :]
        with self._cond:
            self.published.append((time.monotonic(), topic, payload))
            self._cond.notify_all()
        if qos == 1 and ack:
            conn.send(b"\x40\x02" + body[2 + tlen : 4 + tlen])

    def _after_subscribe(self, conn: _Conn, scenario: str) -> None:
        cmd = self.cmd_topic
        if scenario == "length-200mb":
            head = b"\x30" + varint(200 << 20) + struct.pack("!H", len(cmd)) + cmd.encode()
            conn.send(head + b"y" * 4096)
        elif scenario == "qos2":
            conn.send(publish_packet(cmd, b'{"cmd": "reboot"}', qos=2, pid=7))
        elif scenario == "big-command":
            conn.send(publish_packet(cmd, b'{"cmd": "ping", "pad": "' + b"x" * (1 << 20) + b'"}'))
        elif scenario == "retained-100kb":
            pad = b'{"cmd": "reboot", "pad": "' + b"x" * 100_000 + b'"}'
            conn.send(publish_packet(cmd, pad, qos=1, retain=True, pid=9))
        elif scenario == "retained-reboot":
            conn.send(publish_packet(cmd, b'{"cmd": "reboot"}', qos=1, retain=True, pid=9))
        elif scenario == "burst":
            conn.send(b"".join(publish_packet(cmd, ping_command(i)) for i in range(1000)))
        elif scenario == "drip":
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()
        elif scenario == "puback-never":
            threading.Thread(target=self._commands, args=(conn,), daemon=True).start()

    def _drip(self, conn: _Conn) -> None:
        with contextlib.suppress(OSError):
            for b in publish_packet(self.cmd_topic, b'{"cmd": "ping"}'):
                conn.send(bytes([b]))
                time.sleep(DRIP_S)

    def _commands(self, conn: _Conn) -> None:
        i = 0
        with contextlib.suppress(OSError):
            while not self._stopping:
                i += 1
                conn.send(publish_packet(self.cmd_topic, ping_command(i), qos=1, pid=i % 60000 + 1))
                time.sleep(0.1)
