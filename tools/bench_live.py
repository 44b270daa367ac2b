"""The benchmark's figures from whole board processes, watched from outside: the first
reading after power-on, the PUBLISH size, recovery from a broker outage and a fleet on one
broker. Boards run under the virtual board's supervisor (tools/vboard) on a runtime's
MicroPython; a paho-mqtt subscriber sees what reaches the broker.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tools import bench_scripts as scripts
from tools.bench_boards import BOARD, QOS, Runtime, bare_fs, sensornode_fs
from tools.bench_measure import BARE_UID, UID, bare_params
from tools.brokers import Broker
from tools.vboard import VirtualBoard


def publish_packet_bytes(topic_len: int, payload_len: int, qos: int = QOS) -> int:
    """Size of the MQTT 3.1.1 PUBLISH that carries one reading from the device: fixed header,
    remaining length, topic (length-prefixed), packet id (QoS > 0) and payload."""
    remaining = 2 + topic_len + (2 if qos else 0) + payload_len
    length_bytes = 1
    while remaining >= 128**length_bytes:
        length_bytes += 1
    return 1 + length_bytes + remaining


class Subscriber:
    """paho-mqtt on sensornode/+/readings and /heartbeat, QoS 1, reconnecting within ~50 ms of
    the broker's return; keeps every reading with its arrival time (time.monotonic())."""

    def __init__(self, host: str, port: int) -> None:
        self._cond = threading.Condition()
        self.readings: dict[str, list[tuple[float, int, int]]] = {}  # device: (t, seq, wire)
        self.heartbeats: dict[str, dict[str, Any]] = {}
        self.subscribed_at: list[float] = []
        self._stop = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{os.getpid()}")
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=30)
        self._thread = threading.Thread(target=self._run, name="bench-subscriber", daemon=True)
        self._thread.start()
        self.wait(lambda: bool(self.subscribed_at), 10, "the subscriber's SUBACK")

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                try:
                    self.client.reconnect()
                except OSError:
                    time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(OSError):
            self.client.disconnect()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([("sensornode/+/readings", 1), ("sensornode/+/heartbeat", 1)])

    def _on_subscribe(self, *_: Any) -> None:
        with self._cond:
            self.subscribed_at.append(time.monotonic())
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        parts = msg.topic.split("/")
        if len(parts) != 3:
            return
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        with self._cond:
            if parts[2] == "readings" and isinstance(doc.get("seq"), int):
                wire = publish_packet_bytes(len(msg.topic.encode()), len(msg.payload))
                self.readings.setdefault(parts[1], []).append((now, doc["seq"], wire))
            elif parts[2] == "heartbeat":
                self.heartbeats[parts[1]] = doc
            self._cond.notify_all()

    def wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(ready, timeout):
                raise TimeoutError(f"bench: no {what} within {timeout} s")

    def of(self, device: str) -> list[tuple[float, int, int]]:
        with self._cond:
            return list(self.readings.get(device, []))

    def count(self, device: str) -> int:
        return len(self.readings.get(device, ()))  # called under wait()'s lock

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1)


def first_reading(
    rt: Runtime,
    kind: str,
    workdir: Path,
    broker: tuple[str, int],
    sub: Subscriber,
    boot_window: bool,
) -> dict[str, Any]:
    """From the board process's start to seq 1 at the subscriber, then ten more readings at
    10 Hz for their PUBLISH sizes."""
    if kind == "sensornode":
        fs = sensornode_fs(
            workdir / f"{rt.key}-first-{kind}-{boot_window}",
            broker,
            config={"interval_s": 0.1},
            boot_window=boot_window,
        )
        uid = UID
    else:
        fs = bare_fs(
            workdir / f"{rt.key}-first-bare",
            scripts.BARE_RUN.format(**bare_params(broker), interval_ms=100),
        )
        uid = BARE_UID
    board = VirtualBoard(
        fs=fs,
        board=BOARD,
        uid=uid,
        workdir=workdir / f"{rt.key}-vb-first-{kind}",
        micropython=rt.micropython,
    )
    device = board.device_id
    seen = len(sub.of(device))
    t0 = time.monotonic()
    with board:  # started on entry, stopped on exit
        sub.wait(lambda: any(r[1] == 1 for r in sub.readings.get(device, [])[seen:]), 60, "seq 1")
        sub.wait(lambda: sub.count(device) >= seen + 11, 30, "ten readings after seq 1")
    got = sub.of(device)[seen:]
    t1 = next(r[0] for r in got if r[1] == 1)
    return {"ms": round((t1 - t0) * 1000), "wire": [r[2] for r in got]}


def recovery(
    rt: Runtime, workdir: Path, broker: Broker, sub: Subscriber, outage_s: float, rate_hz: float
) -> dict[str, Any]:
    """sensornode publishing at rate_hz; the broker is SIGKILLed mid-run and restarted after
    outage_s; recover_s runs from the broker's return to the first reading at the subscriber."""
    fs = sensornode_fs(
        workdir / f"{rt.key}-recover",
        (broker.host, broker.port),
        config={"interval_s": 1 / rate_hz},
    )
    uid = f"4ec0{rt.key[:2]}c1c2c3"  # a device of its own: no earlier run's readings mix in
    board = VirtualBoard(
        fs=fs,
        board=BOARD,
        uid=uid,
        workdir=workdir / f"{rt.key}-vb-recover",
        micropython=rt.micropython,
    )
    device = board.device_id
    with board:
        sub.wait(lambda: sub.count(device) >= 2 * rate_hz, 60, "readings before the outage")
        time.sleep(1.0)
        broker.kill()
        killed = time.monotonic()
        time.sleep(outage_s)
        restarting = time.monotonic()
        broker.restart()
        back = time.monotonic()
        sub.wait(
            lambda: any(r[0] > back for r in sub.readings.get(device, [])),
            60,
            "a reading after the broker's return",
        )
        first = min(r[0] for r in sub.of(device) if r[0] > back)
        # Let the outbox drain and a few more readings come, then look for gaps.
        time.sleep(3.0)
        mark = board.console
    got = sub.of(device)
    seqs = [r[1] for r in got]
    top = max(seqs)
    missing = sorted(set(range(1, top + 1)) - set(seqs))
    resubscribed = [t for t in sub.subscribed_at if t > restarting]
    connected = [line for line in mark if "mqtt: connected" in line]
    return {
        "recover_s": round(first - back, 3),
        "lost_readings": len(missing),
        "detail": {
            "rate_hz": rate_hz,
            "outage_s": round(back - killed, 3),
            "readings": top,
            "duplicates": len(seqs) - len(set(seqs)),
            "missing_seqs": missing[:20],
            # negative: the subscriber was back before restart() had seen the broker answer
            "subscriber_back_after_s": round(resubscribed[0] - back, 3) if resubscribed else None,
            "board_connects": len(connected),
        },
    }


def fleet(
    rt: Runtime,
    workdir: Path,
    broker: tuple[str, int],
    sub: Subscriber,
    boards: int,
    rate_hz: float,
    seconds: float,
) -> dict[str, Any]:
    """`boards` virtual boards on one broker at rate_hz for `seconds` once all are up; then each
    is told to stop reading (interval 1 day) and to send a heartbeat, whose sent/buffered/
    dropped counters say how many readings it took. Every one must be at the subscriber."""
    config = {
        "interval_s": 1 / rate_hz,
        "heartbeat_s": 60,
        "mqtt": {"keepalive": 30},
        "sensors": [{"type": "sim", "name": "temperature"}],
    }
    fleet_boards = [
        VirtualBoard(
            board=BOARD,
            uid=f"f1{rt.key[:2]}{i:08x}",  # each runtime's fleet its own devices
            broker=broker,
            config=config,
            workdir=workdir / f"{rt.key}-fleet-{i}",
            micropython=rt.micropython,
        )
        for i in range(boards)
    ]
    devices = [b.device_id for b in fleet_boards]
    started = time.monotonic()
    try:
        for b in fleet_boards:
            b.start()
        sub.wait(
            lambda: all(sub.count(d) for d in devices), 60 + boards, "a reading from every board"
        )
        up_s = time.monotonic() - started
        time.sleep(seconds)
        for d in devices:
            sub.publish(f"sensornode/{d}/cmd", json.dumps({"cmd": "interval", "value": 86400}))
        time.sleep(1.0)
        with sub._cond:
            sub.heartbeats.clear()
        for d in devices:
            sub.publish(f"sensornode/{d}/cmd", json.dumps({"cmd": "heartbeat"}))
        sub.wait(lambda: all(d in sub.heartbeats for d in devices), 30, "every board's heartbeat")
        time.sleep(1.0)
    finally:
        stoppers = [threading.Thread(target=b.stop) for b in fleet_boards]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
    sent = taken = received = duplicates = 0
    short: dict[str, int] = {}
    for d in devices:
        hb = sub.heartbeats[d]
        sent += hb["sent"]
        took = hb["sent"] + hb["buffered"] + hb["dropped"]
        taken += took
        seqs = [r[1] for r in sub.of(d)]
        unique = set(seqs)
        received += len(unique)
        duplicates += len(seqs) - len(unique)
        if set(range(1, took + 1)) - unique:
            short[d] = len(set(range(1, took + 1)) - unique)
    return {
        "boards": boards,
        "rate_hz": rate_hz,
        "seconds": seconds,
        "sent": sent,
        "received": received,
        "detail": {
            "taken": taken,
            "lost": taken - received,
            "duplicates": duplicates,
            "boards_missing_readings": short,
            "all_up_after_s": round(up_s, 1),
            "config": config,
        },
    }
