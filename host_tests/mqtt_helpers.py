"""For the tests that watch a virtual board from outside: a paho-mqtt subscriber, and a check
that the firmware never crashed. (conftest.py has the loopback broker and subscriber fixtures.)"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.vboard import VirtualBoard

WAIT_S = 30  # the longest anything on a board may take before a test gives up


class Subscriber:
    """Keeps every message on the topic filter it subscribed to; subscribed (SUBACK seen) on
    return, so nothing the board says after that can be missed."""

    def __init__(self, broker: tuple[str, int], topic: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda _c, _u, m: self.messages.put(
            (m.topic, bytes(m.payload), bool(m.retain))
        )
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(*broker)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        if not subscribed.wait(WAIT_S):
            self.close()
            raise TimeoutError(f"subscriber: no SUBACK from {broker}")

    def wait(self, topic: str, payload: bytes | None = None, timeout: float = WAIT_S) -> bytes:
        """The next message on `topic` (with `payload`, if given)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                got_topic, got, _ = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if got_topic == topic and (payload is None or got == payload):
                return got
        raise TimeoutError(f"no message on {topic} ({payload!r}) within {timeout} s")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def no_traceback(board: VirtualBoard) -> None:
    """The firmware ran without an uncaught exception (which would leave it at the REPL)."""
    console = "\n".join(board.console)
    assert "Traceback" not in console, console
