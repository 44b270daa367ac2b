"""One paho-mqtt connection for host tools that talk to nodes: subscribe, publish, wait.

with Link(("127.0.0.1", 1883), ["sensornode/+/event"]) as link:
    link.publish("sensornode/esp32-a1b2c3/cmd", b'{"cmd": "ping"}')
    topic, payload = link.next(timeout=10)
"""

from __future__ import annotations

import os
import queue
import threading
import time
from types import TracebackType
from typing import Any

CONNECT_S = 10.0


class LinkError(Exception):
    pass


class Link:
    """Connected and subscribed (SUBACK seen) once the constructor returns."""

    def __init__(self, broker: tuple[str, int], topics: list[str], name: str = "tool") -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.broker = broker
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._ready = threading.Event()
        self._refused: str | None = None
        client_id = f"sensornode-{name}-{os.getpid()}-{os.urandom(3).hex()}"
        self.client: Any = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        self.client.max_inflight_messages_set(100)
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_connect = self._on_connect
        self._topics = topics
        try:
            self.client.connect(broker[0], broker[1], keepalive=30)
        except OSError as e:
            raise LinkError(f"cannot reach the broker {broker[0]}:{broker[1]} ({e})") from None
        self.client.loop_start()
        if not self._ready.wait(CONNECT_S):
            self.close()
            why = self._refused or "no answer"
            raise LinkError(f"broker {broker[0]}:{broker[1]}: {why}")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, code: Any, props: Any) -> None:
        if code.is_failure:
            self._refused = f"refused the connection ({code})"
            return
        client.subscribe([(t, 1) for t in self._topics])

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos)

    def next(self, timeout: float) -> tuple[str, bytes] | None:
        """The next message, or None when none came within `timeout` seconds."""
        try:
            return self.messages.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def until(self, deadline: float) -> tuple[str, bytes] | None:
        return self.next(deadline - time.monotonic())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Link:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
