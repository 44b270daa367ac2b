"""The benchmark's figures from whole board processes, watched from outside: the first
reading after power-on, the PUBLISH size, recovery from a broker outage and a fleet on one
broker. Boards run under the virtual board's supervisor (tools/vboard) on a runtime's
MicroPython; a watcher (tools/watcher.py) sees what reaches the broker.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools import bench_scripts as scripts
from tools.bench_boards import BOARD, QOS, Runtime, bare_fs, sensornode_fs
from tools.bench_measure import BARE_UID, UID, bare_params
from tools.brokers import Broker
from tools.vboard import VirtualBoard
from tools.watcher import Watcher


def publish_packet_bytes(topic_len: int, payload_len: int, qos: int = QOS) -> int:
    """Size of the MQTT 3.1.1 PUBLISH that carries one reading from the device: fixed header,
    remaining length, topic (length-prefixed), packet id (QoS > 0) and payload."""
    remaining = 2 + topic_len + (2 if qos else 0) + payload_len
    length_bytes = 1
    while remaining >= 128**length_bytes:
        length_bytes += 1
    return 1 + length_bytes + remaining


TOPICS = ("sensornode/+/readings", "sensornode/+/heartbeat")


class Seen:
    """What reached the broker through one watcher (tools/watcher.py), per device: every
    reading as (arrival time.monotonic(), seq, PUBLISH bytes) and every heartbeat with its
    inbox index. Parsed as the inbox grows, so a wait that looks again after every message
    stays cheap with a fleet's thousands of them."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.inbox = watcher.inbox
        self._parsed = 0
        self._readings: dict[str, list[tuple[float, int, int]]] = {}
        self._heartbeats: dict[str, list[tuple[int, dict[str, Any]]]] = {}

    def _update(self) -> None:
        msgs = self.inbox.since(self._parsed)
        for k, m in enumerate(msgs, self._parsed):
            parts = m.topic.split("/")
            try:
                doc = json.loads(m.payload)
            except ValueError:
                continue
            if len(parts) != 3 or not isinstance(doc, dict):
                continue
            if parts[2] == "readings" and isinstance(doc.get("seq"), int):
                wire = publish_packet_bytes(len(m.topic.encode()), len(m.payload))
                self._readings.setdefault(parts[1], []).append((m.at, doc["seq"], wire))
            elif parts[2] == "heartbeat":
                self._heartbeats.setdefault(parts[1], []).append((k, doc))
        self._parsed += len(msgs)

    def of(self, device: str) -> list[tuple[float, int, int]]:
        self._update()
        return list(self._readings.get(device, ()))

    def count(self, device: str) -> int:
        self._update()
        return len(self._readings.get(device, ()))

    def heartbeat(self, device: str, since: int) -> dict[str, Any] | None:
        """The device's last heartbeat at inbox index `since` or later."""
        self._update()
        found = [doc for k, doc in self._heartbeats.get(device, ()) if k >= since]
        return found[-1] if found else None

    def wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        self.inbox.wait_until(ready, timeout, f"bench: {what}")


def tagged(rt: Runtime, uid: str) -> str:
    """uid with the runtime ("32" or "64") in the last six hex digits, which name the device:
    each runtime's boards publish under topics of their own, so one watcher never mixes them."""
    return uid[:8] + rt.key[:2] + uid[10:]


def _board(rt: Runtime, fs: Path, uid: str, workdir: Path) -> VirtualBoard:
    """A supervised board on this runtime's MicroPython, its filesystem laid out already."""
    return VirtualBoard(fs=fs, board=BOARD, uid=uid, workdir=workdir, micropython=rt.micropython)


def first_reading(
    rt: Runtime,
    kind: str,
    workdir: Path,
    broker: tuple[str, int],
    sub: Seen,
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
        uid = tagged(rt, UID)
    else:
        fs = bare_fs(
            workdir / f"{rt.key}-first-bare",
            scripts.BARE_RUN.format(**bare_params(broker, tagged(rt, BARE_UID)), interval_ms=100),
        )
        uid = tagged(rt, BARE_UID)
    board = _board(rt, fs, uid, workdir / f"{rt.key}-vb-first-{kind}")
    device = board.device_id
    seen = len(sub.of(device))
    t0 = time.monotonic()
    with board:  # started on entry, stopped on exit
        sub.wait(lambda: any(r[1] == 1 for r in sub.of(device)[seen:]), 60, "seq 1")
        sub.wait(lambda: sub.count(device) >= seen + 11, 30, "ten readings after seq 1")
    got = sub.of(device)[seen:]
    t1 = next(r[0] for r in got if r[1] == 1)
    return {"ms": round((t1 - t0) * 1000), "wire": [r[2] for r in got]}


def recovery(
    rt: Runtime, workdir: Path, broker: Broker, sub: Seen, outage_s: float, rate_hz: float
) -> dict[str, Any]:
    """sensornode publishing at rate_hz; the broker is SIGKILLed mid-run and restarted after
    outage_s; recover_s runs from the broker's return to the first reading at the subscriber."""
    fs = sensornode_fs(
        workdir / f"{rt.key}-recover",
        (broker.host, broker.port),
        config={"interval_s": 1 / rate_hz},
    )
    uid = tagged(rt, "4ec0e4c1c2c3")  # a device of its own: no earlier run's readings mix in
    board = _board(rt, fs, uid, workdir / f"{rt.key}-vb-recover")
    device = board.device_id
    with board:
        sub.wait(lambda: sub.count(device) >= 2 * rate_hz, 60, "readings before the outage")
        time.sleep(1.0)
        broker.kill()
        killed = time.monotonic()
        time.sleep(outage_s)
        broker.restart()
        back = time.monotonic()
        # A watcher of its own from the broker's first answer: the long-lived one comes back on
        # paho's reconnect delay, after the node may have flushed its outbox.
        after = Seen(Watcher((broker.host, broker.port), TOPICS))
        try:
            after.wait(
                lambda: any(r[0] > back for r in after.of(device)),
                60,
                "a reading after the broker's return",
            )
            first = min(r[0] for r in after.of(device) if r[0] > back)
            # Let the outbox drain and a few more readings come, then look for gaps.
            time.sleep(3.0)
            resubscribed = after.watcher.subscribed_at[0]
            got = sub.of(device) + after.of(device)
        finally:
            after.watcher.close()
        mark = board.console
    seqs = [r[1] for r in got]
    top = max(seqs)
    missing = sorted(set(range(1, top + 1)) - set(seqs))
    connected = [line for line in mark if "mqtt: connected" in line]
    return {
        "recover_s": round(first - back, 3),
        "lost_readings": len(missing),
        "detail": {
            "rate_hz": rate_hz,
            "outage_s": round(back - killed, 3),
            "readings": top,
            "missing_seqs": missing[:20],
            "watcher_back_after_s": round(resubscribed - back, 3),
            "board_connects": len(connected),
        },
    }


def fleet(
    rt: Runtime,
    workdir: Path,
    broker: tuple[str, int],
    sub: Seen,
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
            uid=tagged(rt, f"f1eef1{i:06x}"),
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
            sub.watcher.publish(
                f"sensornode/{d}/cmd", json.dumps({"cmd": "interval", "value": 86400})
            )
        time.sleep(1.0)
        mark = sub.inbox.mark()
        for d in devices:
            sub.watcher.publish(f"sensornode/{d}/cmd", json.dumps({"cmd": "heartbeat"}))
        sub.wait(
            lambda: all(sub.heartbeat(d, mark) for d in devices), 30, "every board's heartbeat"
        )
        time.sleep(1.0)
    finally:
        stoppers = [threading.Thread(target=b.stop) for b in fleet_boards]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
    sent = taken = received = duplicates = later = 0
    short: dict[str, int] = {}
    for d in devices:
        hb = sub.heartbeat(d, mark)
        assert hb is not None  # waited for above
        sent += hb["sent"]
        took = hb["sent"] + hb["buffered"] + hb["dropped"]
        taken += took
        seqs = [r[1] for r in sub.of(d)]
        unique = set(seqs)
        # Readings after the heartbeat (a board that took one more before the interval command
        # reached it) are neither lost nor counted.
        received += len(unique & set(range(1, took + 1)))
        later += len([q for q in unique if q > took])
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
            "after_the_heartbeat": later,
            "boards_missing_readings": short,
            "all_up_after_s": round(up_s, 1),
            "config": config,
        },
    }
