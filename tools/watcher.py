"""One MQTT watcher for every host program and test that listens to boards.

A `Watcher` is a paho-mqtt client that subscribes (again after every reconnect) and puts every
message it gets into an `Inbox`; the inbox keeps them in arrival order and is what callers wait
on. `make listen`, the benchmark and the tests all watch boards through these two classes.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

WAIT_S = 30.0  # the longest a caller waits for one expected thing by default


@dataclass(frozen=True)
class Msg:
    at: float  # time.monotonic() when it arrived
    wall: float  # time.time() when it arrived
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


def anything(_m: Msg) -> bool:
    return True


class Inbox:
    """Every message in arrival order, each with an index that never changes. `keep` bounds the
    messages held (the oldest go first) for a watcher that runs for days; indices stay valid,
    and one older than what is held just starts at the oldest held."""

    def __init__(self, keep: int | None = None) -> None:
        self._cond = threading.Condition()
        self._held: deque[Msg] = deque(maxlen=keep)
        self._first = 0  # index of _held[0]
        self._cursor = 0  # where next() goes on from

    def put(self, msg: Msg) -> None:
        with self._cond:
            if self._held.maxlen is not None and len(self._held) == self._held.maxlen:
                self._first += 1
            self._held.append(msg)
            self._cond.notify_all()

    def poke(self) -> None:
        """Wake every waiter to look again (the watcher's state changed)."""
        with self._cond:
            self._cond.notify_all()

    def mark(self) -> int:
        """The index the next message will get."""
        with self._cond:
            return self._first + len(self._held)

    def since(self, index: int = 0, until: int | None = None) -> list[Msg]:
        with self._cond:
            start = max(0, index - self._first)
            stop = None if until is None else max(0, until - self._first)
            return list(self._held)[start:stop]

    def on(self, topic: str, since: int = 0, until: int | None = None) -> list[Msg]:
        return [m for m in self.since(since, until) if m.topic == topic]

    def wait(
        self,
        topic: str | None,
        match: Callable[[Msg], bool] = anything,
        timeout: float = WAIT_S,
        since: int = 0,
    ) -> tuple[int, Msg]:
        """(index, message): the first message from index `since` on `topic` (any topic: None)
        that matches. TimeoutError, with the last messages seen, if none comes in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = max(since, self._first)
            while True:
                while i < self._first + len(self._held):
                    m = self._held[i - self._first]
                    i += 1
                    if (topic is None or m.topic == topic) and match(m):
                        return i - 1, m
                i = max(i, self._first)
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(m.topic, m.payload[:80]) for m in self.since(since)][-15:]
                    raise TimeoutError(f"no matching message on {topic} in {timeout} s; {seen}")
                self._cond.wait(left)

    def wait_payload(self, topic: str, payload: bytes, since: int = 0) -> tuple[int, Msg]:
        return self.wait(topic, lambda m: m.payload == payload, since=since)

    def next(
        self, topic: str | None = None, payload: bytes | None = None, timeout: float = WAIT_S
    ) -> Msg:
        """The next message on `topic` (with `payload`, if given) after the one the last next()
        returned: a reader that takes each message once."""
        match = anything if payload is None else lambda m: m.payload == payload
        i, m = self.wait(topic, match, timeout, self._cursor)
        self._cursor = i + 1
        return m

    def wait_new(self, since: int, timeout: float) -> tuple[int, list[Msg]]:
        """(next index, messages from `since` on): at once when there are any, else after the
        first arrives, a poke() or `timeout`."""
        with self._cond:
            if self.mark() <= since:
                self._cond.wait(timeout)
            return self.mark(), self.since(since)

    def wait_until(self, done: Callable[[], bool], timeout: float = WAIT_S, what: str = "") -> None:
        """Waits until done() holds, looking again after every message."""
        with self._cond:
            if not self._cond.wait_for(done, timeout):
                raise TimeoutError(f"not within {timeout} s: {what}")


class Watcher:
    """A paho-mqtt 2.x client (MQTT 3.1.1) that subscribes to `topics` at QoS 1 on every connect
    and feeds `inbox`. With `wait_s` (the default) it is connected and subscribed (SUBACK seen)
    on return, or raises ConnectionError (nothing listens) or TimeoutError (it refused, or did
    not answer); with wait_s=None it returns at once and keeps trying to
    reach the broker, for a program that may start before it. `state` says where it is:
    "connecting", "connected", "refused: <reason>", "unreachable" or "lost: <reason>"."""

    def __init__(
        self,
        broker: tuple[str, int],
        topics: str | Iterable[str],
        inbox: Inbox | None = None,
        *,
        client_id: str | None = None,
        wait_s: float | None = WAIT_S,
        reconnect_s: int = 1,
        login: tuple[str, str] | None = None,
        ca: str | None = None,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        """login: (user, password); ca: a CA file to verify a TLS broker with (TLS if given);
        on_state: called with every new state, on paho's thread (polling `state` can miss a
        short one: "lost" turns into "unreachable" as soon as the first reconnect fails)."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.broker = broker
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.inbox = inbox if inbox is not None else Inbox()
        self.state = "connecting"
        self.on_state = on_state
        self.subscribed_at: list[float] = []  # time.monotonic() of every SUBACK
        client_id = client_id or f"watcher-{os.getpid()}-{os.urandom(2).hex()}"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if login is not None:
            client.username_pw_set(*login)
        if ca is not None:
            client.tls_set(ca_certs=ca)
        client.reconnect_delay_set(min_delay=reconnect_s, max_delay=max(reconnect_s, 10))
        client.on_connect = self._on_connect
        client.on_connect_fail = lambda *_: self._set_state("unreachable")
        client.on_disconnect = lambda _c, _u, _f, rc, _p: self._set_state(f"lost: {rc}")
        client.on_subscribe = self._on_subscribe
        client.on_message = lambda _c, _u, m: self.inbox.put(
            Msg(time.monotonic(), time.time(), m.topic, bytes(m.payload), bool(m.retain))
        )
        self.client = client
        host, port = broker
        if wait_s is None:
            client.connect_async(host, port, keepalive=30)
            client.loop_start()
            return
        try:
            client.connect(host, port, keepalive=30)
        except OSError as e:
            raise ConnectionError(f"cannot reach the broker {host}:{port} ({e})") from None
        client.loop_start()
        try:
            self.inbox.wait_until(lambda: bool(self.subscribed_at), wait_s, "")
        except TimeoutError:
            self.close()
            why = self.state if self.state.startswith("refused") else f"no SUBACK in {wait_s} s"
            raise TimeoutError(f"broker {host}:{port}: {why}") from None

    def _set_state(self, state: str) -> None:
        self.state = state
        if self.on_state is not None:
            self.on_state(state)
        self.inbox.poke()

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._set_state(f"refused: {reason}")
            return
        client.subscribe([(t, 1) for t in self.topics])
        self._set_state("connected")

    def _on_subscribe(self, *_: Any) -> None:
        self.subscribed_at.append(time.monotonic())
        self.inbox.poke()

    def next(
        self, topic: str | None = None, payload: bytes | None = None, timeout: float = WAIT_S
    ) -> Msg:
        return self.inbox.next(topic, payload, timeout)

    def publish(self, topic: str, payload: bytes | str, timeout: float = WAIT_S) -> None:
        """Publishes at QoS 1 and returns when the broker has it."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()  # first: it wakes the network thread, which then ends
        self.client.loop_stop()
