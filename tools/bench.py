"""What sensornode costs a board, measured against the floor: a bare umqtt.simple loop.

    python -m tools.bench [--boards N] [--seconds S] [--rate HZ] [--cycles N] [--quick]
                          [--out build/bench.json]

Both programs run on the virtual board (the MicroPython unix port, tools/vboard) against one
real broker on 127.0.0.1 (Mosquitto if installed, else amqtt), and publish the same reading
({"seq", "uptime_ms", "ts", "temperature"}) at QoS 1, sensornode's default. The bare loop is
tools/bare_loop.py: join Wi-Fi, connect, json.dumps + publish every cycle, nothing else.

- In-process figures (resident heap, allocation and CPU per cycle, a per-part profile) come from
  tools/bench_harness.py, run on the board after a main.py that boots the program as the board
  would; every cycle has a reading due and nothing sleeps.
- min_heapsize_bytes: a bisection over `-X heapsize`, each run booting and then doing --cycles
  cycles (default 10,000); a MemoryError, a dropped link or a reading not sent fails the run.
- first_reading_ms, wire bytes, recovery and the fleet: whole board processes (VirtualBoard)
  and a paho-mqtt subscriber.

Prints one table and writes the figures to build/bench.json as
{"sensornode": {...}, "bare": {...}, "fleet": {...}}; each section's "detail" holds the
breakdowns behind the headline figures. The targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tools import compile as fwcompile
from tools.brokers import Broker
from tools.flash import mpremote_path
from tools.vboard import VirtualBoard, layout
from tools.vboard.supervisor import LAUNCHER, MICROPYTHON, board_env
from tools.vboard.switches import Switches

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "bench.json"
HARNESS = Path(__file__).resolve().parent / "bench_harness.py"
BARE_LOOP = Path(__file__).resolve().parent / "bare_loop.py"
BOARD = "esp32"  # umqtt.simple frozen, as on the ESP32; the Pico W's /lib copy is the same code
UID = "5e0500a1b2c3"
BARE_UID = "ba4e00b1b2c3"  # a topic of the same length as sensornode's
QOS = 1  # sensornode's default (mqtt.qos); the bare loop publishes at the same QoS
ARCHS = tuple(fwcompile.ARCHS.values())  # xtensawin, armv6m
BOOT_WINDOW_MS = 1500  # boot.py's safe-mode window

# "Every feature loaded": Home Assistant discovery, heartbeats, a median filter on the simulated
# sensor, command subscription, keepalive pings, NTP; no watchdog (the unix port has none).
FEATURES: dict[str, Any] = {
    "mqtt": {"keepalive": 30, "qos": QOS},
    "interval_s": 1,
    "heartbeat_s": 60,
    "ha_discovery": True,
    "watchdog_s": 0,
    "sensors": [{"type": "sim", "name": "temperature", "filter": {"type": "median", "size": 5}}],
}
FEATURES_TEXT = (
    "HA discovery, heartbeat every 60 s, median-5 filter on the sim sensor, command topic, "
    "keepalive pings, NTP; watchdog off (unix port)"
)

TARGETS = {
    "resident_heap_bytes": "<= 32 KB",
    "alloc_per_cycle_bytes": "<= bare",
    "cpu_us_per_cycle": "<= 1.5 x bare",
    "min_heapsize_bytes": "<= 64 KB",
    "lost_readings": "0",
    "fleet": "nothing lost",
}

# -- main.py for each kind of run (board-side MicroPython, written into the board's fs) ---------

# Boots sensornode as firmware.app.run() would, and steps it (with the app loop's short waits)
# until it is connected and its first reading is out: discovery and heartbeat have gone too.
_SENSORNODE_BOOT = """\
import gc
import time

import firmware.app

board, node, wdt = firmware.app.build()
_t = time.ticks_ms()
while not node.sent and time.ticks_diff(time.ticks_ms(), _t) < 30000:
    node.step(time.ticks_ms())
    time.sleep_ms(5)
"""
_BARE_BOOT = """\
import gc
import time

import bare_loop

bare_loop.join({ssid!r}, {password!r})
bare = bare_loop.Bare({host!r}, {port}, {device!r})
bare.connect()
bare.cycle()
"""
# Resident heap is taken before the harness is imported: its code is not in the figure.
_MEASURE = """\
gc.collect()
_resident = gc.mem_alloc()
import bench_harness

bench_harness.measure({kind!r}, {program}, _resident, {cycles})
"""
# Code in flash: the program's .mpy files packed into a ROMFS image, which MicroPython imports in
# place (bytecode and constants stay in the image). A board maps the image from flash; here it is
# read into the heap first, so what it takes there is counted and left out of the resident figure.
_ROMFS = """\
import gc
import sys
import vfs

gc.collect()
_a = gc.mem_alloc()
with open("rom.img", "rb") as _f:
    _img = _f.read()
gc.collect()
_IMAGE = gc.mem_alloc() - _a
vfs.mount(vfs.VfsRom(_img), "/rom")
sys.path.insert(0, "/rom")
"""
_MEASURE_ROMFS = _MEASURE.replace("= gc.mem_alloc()", "= gc.mem_alloc() - _IMAGE")
# Endurance runs stay inline and small: at the smallest heaps even compiling the harness counts.
# TCP_NODELAY (Linux: level 6, option 1) only spares each cycle the broker's delayed ACK.
_SENSORNODE_ENDURE = """\
_n = node.sent
_c = node.session.connects
_e = node.sensors.errors
if _n:
    node.session.transport.sock.sock.setsockopt(6, 1, 1)
    for _ in range({cycles}):
        _now = time.ticks_ms()
        node.next_reading = _now
        node.step(_now)
if _n and node.sent - _n == {cycles} and node.session.connects == _c and node.sensors.errors == _e:
    print("bench: endurance ok")
else:
    print("bench: endurance failed")
"""
_BARE_ENDURE = """\
bare.client.sock.setsockopt(6, 1, 1)
for _ in range({cycles}):
    bare.cycle()
print("bench: endurance ok" if bare.seq == {cycles} + 1 else "bench: endurance failed")
"""
# Both programs on one board for the paired CPU figure: sensornode has joined Wi-Fi already,
# so the bare loop only connects (a second join would take sensornode's link down).
_PAIR = """\
import bare_loop

bare = bare_loop.Bare({host!r}, {port}, {device!r})
bare.connect()
import bench_harness

bench_harness.pair(node, bare, {cycles})
"""
_BARE_RUN = """\
import bare_loop

bare_loop.run({host!r}, {port}, {ssid!r}, {password!r}, {device!r}, {interval_ms})
"""


_T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"bench: [{time.monotonic() - _T0:5.0f} s] {msg}", file=sys.stderr, flush=True)


def device_of(uid: str) -> str:
    """The bare loop's device id, named as sensornode names a board without device_id."""
    return f"{BOARD}-{uid[-6:]}"


def publish_packet_bytes(topic_len: int, payload_len: int, qos: int = QOS) -> int:
    """Size of the MQTT 3.1.1 PUBLISH that carries one reading from the device: fixed header,
    remaining length, topic (length-prefixed), packet id (QoS > 0) and payload."""
    remaining = 2 + topic_len + (2 if qos else 0) + payload_len
    length_bytes = 1
    while remaining >= 128**length_bytes:
        length_bytes += 1
    return 1 + length_bytes + remaining


# -- board filesystems ---------------------------------------------------------------------------


def sensornode_fs(
    fs: Path,
    broker: tuple[str, int],
    *,
    main: str | None = None,
    config: dict[str, Any] | None = None,
    boot_window: bool = True,
    mpy: bool = False,
) -> Path:
    """sensornode flashed as layout.flash does, optionally with another main.py (plus the
    harness), without boot.py, or with the firmware as bytecode .mpy (as `make flash` leaves it)."""
    cfg = layout.merge(layout.merge(layout.default_config(broker), FEATURES), config or {})
    layout.flash(fs, BOARD, cfg, layout.DEFAULT_SECRETS)
    if main is not None:
        (fs / "main.py").write_text(main)
        shutil.copy2(HARNESS, fs / HARNESS.name)
    if not boot_window:
        (fs / "boot.py").unlink()
    if mpy:
        for py in sorted((fs / "firmware").glob("*.py")):
            to_mpy(py, f"firmware/{py.name}")
        umqtt_mpy(fs)
    return fs


def to_mpy(py: Path, name: str) -> None:
    """Replaces py with its bytecode .mpy (mpy-cross, no native code: it runs on any port)."""
    cmd = [fwcompile.mpy_cross(), "-s", name, "-o", str(py.with_suffix(".mpy")), str(py)]
    subprocess.run(cmd, check=True)
    py.unlink()


def umqtt_mpy(fs: Path) -> None:
    """umqtt.simple as a board has it: frozen (ESP32) or installed by mip (Pico W), never source
    that the board compiles at boot. fs/umqtt/ comes before the frozen folder on the path."""
    (fs / "umqtt").mkdir(exist_ok=True)
    shutil.copy2(layout.umqtt_source(), fs / "umqtt" / "simple.py")
    to_mpy(fs / "umqtt" / "simple.py", "umqtt/simple.py")


def bare_fs(fs: Path, main: str, *, mpy: bool = False) -> Path:
    """The bare loop's board: main.py and bare_loop.py, nothing else (no boot.py, no config);
    with mpy, bare_loop and umqtt.simple as bytecode .mpy."""
    if fs.exists():
        shutil.rmtree(fs)
    fs.mkdir(parents=True)
    shutil.copy2(BARE_LOOP, fs / BARE_LOOP.name)
    shutil.copy2(HARNESS, fs / HARNESS.name)
    (fs / "main.py").write_text(main)
    if mpy:
        to_mpy(fs / BARE_LOOP.name, BARE_LOOP.name)
        umqtt_mpy(fs)
    return fs


def pack_romfs(fs: Path, staging: Path) -> None:
    """Moves the board's .mpy files (firmware/, umqtt/, bare_loop) into fs/rom.img, a ROMFS image
    built by mpremote, as `mpremote romfs deploy` would put it in a board's ROM partition."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for mpy in sorted(fs.rglob("*.mpy")):
        target = staging / mpy.relative_to(fs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(mpy, target)
    image = fs / "rom.img"
    cmd = [mpremote_path(), "romfs", "--no-mpy", "-o", str(image), "build", str(staging)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def bare_params(broker: tuple[str, int]) -> dict[str, Any]:
    return {
        "host": broker[0],
        "port": broker[1],
        "ssid": layout.DEFAULT_SSID,
        "password": layout.DEFAULT_PASSWORD,
        "device": device_of(BARE_UID),
    }


def run_board(
    fs: Path, uid: str, heap: int | None = None, timeout: float = 120.0
) -> tuple[bool, str]:
    """Runs a board's boot.py and main.py once through the launcher (stdin closed, so it ends at
    the REPL); returns (finished in time, console output)."""
    control = fs.parent / f"{fs.name}-control.json"
    switches = Switches(control, layout.DEFAULT_AIR)
    env = board_env(BOARD, uid, fs, layout.frozen_dir(BOARD), switches.path)
    cmd = [str(MICROPYTHON)]
    if heap is not None:
        cmd += ["-X", f"heapsize={heap}"]
    cmd.append(str(LAUNCHER))
    try:
        done = subprocess.run(
            cmd,
            cwd=fs,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        out = e.output.decode(errors="replace") if isinstance(e.output, bytes) else ""
        return False, out
    return True, done.stdout.decode(errors="replace")


def bench_line(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("bench: {"):
            return json.loads(line[len("bench: ") :])
    tail = "\n".join(output.splitlines()[-15:])
    raise RuntimeError(f"bench: the board printed no result; its last lines:\n{tail}")


# -- the subscriber ------------------------------------------------------------------------------


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


# -- the measurements ----------------------------------------------------------------------------


def in_process(
    kind: str, workdir: Path, broker: tuple[str, int], cycles: int, *, code: str = "py"
) -> dict[str, Any]:
    """Resident heap, allocation and CPU per cycle and the per-part profile, from the harness.
    code: "py" (source, as the virtual board lays it out), "mpy" (the program and umqtt.simple
    as bytecode .mpy, as `make flash` leaves a board) or "romfs" (those .mpy in a ROMFS image)."""
    fs = workdir / f"measure-{kind}-{code}"
    romfs = code == "romfs"
    prelude, measure = (_ROMFS, _MEASURE_ROMFS) if romfs else ("", _MEASURE)
    if kind == "sensornode":
        main = prelude + _SENSORNODE_BOOT + measure.format(kind=kind, program="node", cycles=cycles)
        sensornode_fs(fs, broker, main=main, mpy=code != "py")
        uid = UID
    else:
        main = prelude + _BARE_BOOT.format(**bare_params(broker))
        main += measure.format(kind=kind, program="bare", cycles=cycles)
        bare_fs(fs, main, mpy=code != "py")
        uid = BARE_UID
    if romfs:
        pack_romfs(fs, workdir / f"romfs-{kind}")
    finished, out = run_board(fs, uid, timeout=120 + cycles / 100)
    if not finished:
        raise RuntimeError(f"bench: the {kind} measurement did not finish:\n{out[-2000:]}")
    return bench_line(out)


def paired_cpu(workdir: Path, broker: tuple[str, int], cycles: int) -> dict[str, Any]:
    """CPU per cycle of both programs measured in one board process, cycles interleaved."""
    fs = workdir / "pair"
    main = _SENSORNODE_BOOT + _PAIR.format(**bare_params(broker), cycles=cycles)
    sensornode_fs(fs, broker, main=main)
    shutil.copy2(BARE_LOOP, fs / BARE_LOOP.name)
    finished, out = run_board(fs, UID, timeout=120 + cycles / 100)
    if not finished:
        raise RuntimeError(f"bench: the paired measurement did not finish:\n{out[-2000:]}")
    return bench_line(out)


def heap_baseline(kind: str, workdir: Path, broker: tuple[str, int]) -> dict[str, int]:
    """What the virtual board holds that a real board does not: the heap in use when main.py
    starts (the launcher, plus boot.py on sensornode's board) and the board-support modules the
    program imports (Python here, C in a board's firmware)."""
    modules = "machine, network, ntptime" if kind == "sensornode" else "machine, network"
    main = (
        "import gc\ngc.collect()\n_a = gc.mem_alloc()\n"
        f"import {modules}\n"
        "network.WLAN(network.STA_IF).active(True)\n"
        "gc.collect()\n_b = gc.mem_alloc()\n"
        'print(\'bench: {"before_main": %d, "bsp": %d}\' % (_a, _b - _a))\n'
    )
    fs = workdir / f"baseline-{kind}"
    if kind == "sensornode":
        sensornode_fs(fs, broker, main=main)
    else:
        bare_fs(fs, main)
    finished, out = run_board(fs, UID, timeout=60)
    return bench_line(out)


def endurance_ok(fs: Path, uid: str, heap: int, cycles: int) -> bool:
    finished, out = run_board(fs, uid, heap=heap, timeout=60 + cycles / 200)
    return finished and "bench: endurance ok" in out


def bisect_heap(
    fs: Path, uid: str, cycles: int, lo_kb: int, hi_kb: int, steps: int
) -> dict[str, Any]:
    """The smallest -X heapsize (bytes, to the KB the steps allow) that boots and runs `cycles`
    cycles: hi is tried first (doubled until it passes, at most twice), then halved intervals."""
    tried: list[tuple[int, bool]] = []
    for _ in range(3):
        ok = endurance_ok(fs, uid, hi_kb * 1024, cycles)
        tried.append((hi_kb, ok))
        if ok:
            break
        lo_kb, hi_kb = hi_kb, hi_kb * 2
    else:
        return {"bytes": None, "tried_kb": tried}
    for _ in range(steps):
        if hi_kb - lo_kb <= 1:
            break
        mid = (lo_kb + hi_kb) // 2
        ok = endurance_ok(fs, uid, mid * 1024, cycles)
        tried.append((mid, ok))
        if ok:
            hi_kb = mid
        else:
            lo_kb = mid
    return {"bytes": hi_kb * 1024, "fails_at_bytes": lo_kb * 1024, "tried_kb": tried}


def min_heaps(
    workdir: Path, broker: tuple[str, int], cycles: int, steps: int
) -> dict[str, dict[str, Any]]:
    """The bisections run side by side, each board with its own client id (only pass or fail
    counts here): each program from source, as the virtual board lays it out (umqtt.simple
    too), and as bytecode .mpy, as `make flash` leaves sensornode and as a board has umqtt."""
    cases: dict[str, tuple[Path, str, int, int]] = {
        "sensornode": (
            sensornode_fs(
                workdir / "endure-py",
                broker,
                main=_SENSORNODE_BOOT + _SENSORNODE_ENDURE.format(cycles=cycles),
            ),
            "e0d0e0a1b2c1",
            96,
            352,
        ),
        "sensornode_mpy": (
            sensornode_fs(
                workdir / "endure-mpy",
                broker,
                main=_SENSORNODE_BOOT + _SENSORNODE_ENDURE.format(cycles=cycles),
                mpy=True,
            ),
            "e0d0e0a1b2c2",
            96,
            352,
        ),
        "bare": (
            bare_fs(
                workdir / "endure-bare",
                _BARE_BOOT.format(**bare_params(broker)) + _BARE_ENDURE.format(cycles=cycles),
            ),
            "e0d0e0a1b2c3",
            32,
            160,
        ),
        "bare_mpy": (
            bare_fs(
                workdir / "endure-bare-mpy",
                _BARE_BOOT.format(**bare_params(broker)) + _BARE_ENDURE.format(cycles=cycles),
                mpy=True,
            ),
            "e0d0e0a1b2c4",
            32,
            160,
        ),
    }
    results: dict[str, dict[str, Any]] = {}

    def one(name: str) -> None:
        fs, uid, lo, hi = cases[name]
        results[name] = bisect_heap(fs, uid, cycles, lo, hi, steps)

    threads = [threading.Thread(target=one, args=(name,)) for name in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def first_reading(
    kind: str, workdir: Path, broker: tuple[str, int], sub: Subscriber, boot_window: bool
) -> dict[str, Any]:
    """From the board process's start to seq 1 at the subscriber, then ten more readings at
    10 Hz for their PUBLISH sizes."""
    if kind == "sensornode":
        fs = sensornode_fs(
            workdir / f"first-{kind}-{boot_window}",
            broker,
            config={"interval_s": 0.1},
            boot_window=boot_window,
        )
        uid = UID
    else:
        fs = bare_fs(
            workdir / "first-bare", _BARE_RUN.format(**bare_params(broker), interval_ms=100)
        )
        uid = BARE_UID
    board = VirtualBoard(fs=fs, board=BOARD, uid=uid, workdir=workdir / f"vb-first-{kind}")
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
    workdir: Path, broker: Broker, sub: Subscriber, outage_s: float, rate_hz: float
) -> dict[str, Any]:
    """sensornode publishing at rate_hz; the broker is SIGKILLed mid-run and restarted after
    outage_s; recover_s runs from the broker's return to the first reading at the subscriber."""
    fs = sensornode_fs(
        workdir / "recover", (broker.host, broker.port), config={"interval_s": 1 / rate_hz}
    )
    uid = "4ec0e4c1c2c3"  # a device of its own: no earlier run's readings mix in
    board = VirtualBoard(fs=fs, board=BOARD, uid=uid, workdir=workdir / "vb-recover")
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
            uid=f"f1ee{i:08x}",
            broker=broker,
            config=config,
            workdir=workdir / f"fleet-{i}",
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


def mpy_sizes(workdir: Path) -> tuple[dict[str, int], dict[str, int]]:
    firmware: dict[str, int] = {}
    bare: dict[str, int] = {}
    for arch in ARCHS:
        files = fwcompile.compile_firmware(arch, workdir / "mpy" / arch)
        firmware[arch] = sum(f.stat().st_size for f in files)
        target = workdir / "mpy" / arch / "bare_loop.mpy"
        cmd = [fwcompile.mpy_cross(), f"-march={arch}", "-o", str(target), str(BARE_LOOP)]
        subprocess.run(cmd, check=True)
        bare[arch] = target.stat().st_size
    return firmware, bare


# -- the report ----------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, dict):
        return " / ".join(_fmt(x) for x in v.values())
    return str(v)


def _ratio(a: Any, b: Any) -> str:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return f"{a / b:.2f}"
    return ""


def targets(sn: dict[str, Any], bare: dict[str, Any], fl: dict[str, Any]) -> dict[str, bool]:
    return {
        "resident_heap_bytes": sn["resident_heap_bytes"] <= 32 * 1024,
        "alloc_per_cycle_bytes": sn["alloc_per_cycle_bytes"] <= bare["alloc_per_cycle_bytes"],
        "cpu_us_per_cycle": sn["cpu_us_per_cycle"] <= 1.5 * bare["cpu_us_per_cycle"],
        "min_heapsize_bytes": sn["min_heapsize_bytes"] is not None
        and sn["min_heapsize_bytes"] <= 64 * 1024,
        "lost_readings": sn["lost_readings"] == 0,
        "fleet": fl["received"] == fl["detail"]["taken"] == fl["sent"],
    }


def table(results: dict[str, Any]) -> str:
    sn, bare, fl = results["sensornode"], results["bare"], results["fleet"]
    met = sn["targets"]
    d, bd = sn["detail"], bare["detail"]
    rows: list[tuple[str, Any, Any, str, str, str]] = []

    def row(name: str, key: str | None, a: Any, b: Any, ratio: bool = True) -> None:
        target = TARGETS.get(key or "", "")
        ok = _fmt(met[key]) if key in met else ""
        rows.append((name, _fmt(a), _fmt(b), _ratio(a, b) if ratio else "", target, ok))

    key = "resident_heap_bytes"
    row("resident heap, bytes", key, sn[key], bare[key])
    row("  of which before main.py + bsp", None, d["heap_not_firmware"], bd["heap_not_firmware"])
    row("  as .mpy (umqtt too)", None, d["resident_heap_bytes_mpy"], bd["resident_heap_bytes_mpy"])
    rom, bare_rom = d["resident_heap_bytes_romfs"], bd["resident_heap_bytes_romfs"]
    row("  .mpy in a ROMFS image (code in flash)", None, rom, bare_rom)
    key = "alloc_per_cycle_bytes"
    row("alloc per cycle, bytes", key, sn[key], bare[key])
    row("  bsp isconnected(), per call (1/s)", None, d["alloc_bsp_bytes"], 0, False)
    key = "cpu_us_per_cycle"
    row("CPU per cycle, us (median, paired)", key, sn[key], bare[key])
    row("  mean, us (paired)", None, d["cpu_us_mean"], bd["cpu_us_mean"])
    row("  median, each alone, us", None, d["cpu_us_alone"], bd["cpu_us_alone"])
    row("  process CPU, each alone, us", None, d["cpu_us_process"], bd["cpu_us_process"])
    row("  as shipped (Nagle), us", None, d["as_shipped_cycle_us"], bd["as_shipped_cycle_us"])
    key = "wire_bytes_per_reading"
    row("wire bytes per reading", None, sn[key], bare[key])
    key = "first_reading_ms"
    row("first reading, ms", None, sn[key], bare[key])
    row("  without boot.py's 1.5 s window", None, d["first_reading_ms_no_boot_window"], bare[key])
    row("recover after broker restart, s", None, sn["recover_s"], None, False)
    row("lost readings", "lost_readings", sn["lost_readings"], None, False)
    key = "min_heapsize_bytes"
    row("min heapsize (10k cycles), bytes", key, sn[key], bare[key])
    row("  as .mpy (umqtt too)", None, d["min_heapsize_bytes_mpy"], bd["min_heapsize_bytes_mpy"])
    for arch in ARCHS:
        row(f".mpy bytes, {arch}", None, sn["mpy_bytes"][arch], bare["mpy_bytes"][arch])
    fleet_text = f"{fl['received']:,} of {fl['sent']:,}"
    rows.append(
        (
            f"fleet: {fl['boards']} boards x {fl['rate_hz']:g} Hz x {fl['seconds']:g} s",
            fleet_text,
            "",
            "",
            TARGETS["fleet"],
            _fmt(met["fleet"]),
        )
    )
    head = ("figure", "sensornode", "bare", "ratio", "target", "met?")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(6)]
    lines = []
    for r in [head, *rows]:
        cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, 6)]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    cycles = args.cycles
    steps = 2 if quick else 8
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(Broker("auto"))
        addr = (broker.host, broker.port)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        say(f"{broker.kind} on {broker.address}; MicroPython unix port; cycles {cycles}")

        say("in-process figures: sensornode, then the bare loop")
        base = heap_baseline("sensornode", workdir, addr)
        bare_base = heap_baseline("bare", workdir, addr)
        sn_in = in_process("sensornode", workdir, addr, cycles)
        bare_in = in_process("bare", workdir, addr, cycles)
        # Resident heap only: a few cycles are enough for the harness to report.
        sn_mpy = in_process("sensornode", workdir, addr, 100, code="mpy")
        bare_mpy_in = in_process("bare", workdir, addr, 100, code="mpy")
        sn_rom = in_process("sensornode", workdir, addr, 100, code="romfs")
        bare_rom = in_process("bare", workdir, addr, 100, code="romfs")
        # The broker's round trip is in every cycle of both programs, and how long it takes
        # depends on what else the machine does at that moment: the headline CPU figures come
        # from both programs in one process, cycles interleaved, the median of `rounds` runs.
        rounds = 1 if quick else 3
        say(f"CPU per cycle: {rounds} paired run(s)")
        pairs = [paired_cpu(workdir, addr, cycles) for _ in range(rounds)]

        say(f"smallest heap: bisecting -X heapsize, {steps} steps of {cycles} cycles each")
        heaps = min_heaps(workdir, addr, cycles, steps)

        sub = Subscriber(broker.host, broker.port)
        stack.callback(sub.close)
        say("first reading and wire bytes")
        repeats = 1 if quick else 3
        firsts: dict[str, list[int]] = {"sensornode": [], "nowindow": [], "bare": []}
        wires: dict[str, list[int]] = {"sensornode": [], "bare": []}
        for _ in range(repeats):
            got = first_reading("sensornode", workdir, addr, sub, True)
            firsts["sensornode"].append(got["ms"])
            wires["sensornode"] += got["wire"]
            firsts["nowindow"].append(first_reading("sensornode", workdir, addr, sub, False)["ms"])
            got = first_reading("bare", workdir, addr, sub, True)
            firsts["bare"].append(got["ms"])
            wires["bare"] += got["wire"]

        say("broker killed and restarted under sensornode")
        rec = recovery(workdir, broker, sub, 1.0 if quick else 3.0, 10)

        say(f"fleet: {args.boards} boards at {args.rate:g} Hz for {args.seconds:g} s")
        fl = fleet(workdir, addr, sub, args.boards, args.rate, args.seconds)

        fw_mpy, bare_mpy = mpy_sizes(workdir)
        kind = broker.kind

    def cpu(m: dict[str, Any]) -> dict[str, Any]:
        c = m["cpu"]
        tck = os.sysconf("SC_CLK_TCK")
        process = c["process_ticks"] * 1e6 / tck / cycles if c["process_ticks"] >= 0 else None
        kind = m["kind"]
        return {
            "cpu_us_paired_runs": [p[kind]["median_us"] for p in pairs],
            "cpu_us_mean": round(statistics.median(p[kind]["mean_us"] for p in pairs), 1),
            "cpu_us_alone": c["median_us"],
            "cpu_us_process": round(process, 1) if process is not None else None,
            "as_shipped_cycle_us": m["as_shipped_cycle_us"],
            "alloc_per_cycle_median_bytes": m["alloc_per_cycle_median_bytes"],
            "profile": m["profile"],
        }

    def cpu_median(kind: str) -> int:
        return round(statistics.median(p[kind]["median_us"] for p in pairs))

    not_fw = base["before_main"] + base["bsp"]
    bsp_alloc = sn_in["profile"]["bsp isconnected per call"]["alloc_bytes"]
    sensornode = {
        "resident_heap_bytes": sn_in["resident_heap_bytes"],
        "alloc_per_cycle_bytes": round(sn_in["alloc_per_cycle_bytes"], 1),
        "cpu_us_per_cycle": cpu_median("sensornode"),
        "wire_bytes_per_reading": round(statistics.median(wires["sensornode"])),
        "first_reading_ms": round(statistics.median(firsts["sensornode"])),
        "recover_s": rec["recover_s"],
        "lost_readings": rec["lost_readings"],
        "min_heapsize_bytes": heaps["sensornode"]["bytes"],
        "mpy_bytes": fw_mpy,
        "detail": {
            "features": FEATURES_TEXT,
            "qos": QOS,
            "heap_before_main": base["before_main"],
            "heap_bsp": base["bsp"],
            "heap_not_firmware": not_fw,
            "resident_heap_firmware_bytes": sn_in["resident_heap_bytes"] - not_fw,
            "resident_heap_bytes_mpy": sn_mpy["resident_heap_bytes"],
            "resident_heap_bytes_romfs": sn_rom["resident_heap_bytes"],
            "alloc_bsp_bytes": round(bsp_alloc, 1),
            **cpu(sn_in),
            "first_reading_ms_runs": firsts["sensornode"],
            "first_reading_ms_no_boot_window": round(statistics.median(firsts["nowindow"])),
            "first_reading_ms_no_boot_window_runs": firsts["nowindow"],
            "recovery": rec["detail"],
            "min_heapsize_bytes_mpy": heaps["sensornode_mpy"]["bytes"],
            "min_heapsize_runs": heaps,
            "problem": sn_in["problem"]
            or next((p["problem"] for p in pairs if p["problem"]), None),
        },
    }
    bare_not_fw = bare_base["before_main"] + bare_base["bsp"]
    bare = {
        "resident_heap_bytes": bare_in["resident_heap_bytes"],
        "alloc_per_cycle_bytes": round(bare_in["alloc_per_cycle_bytes"], 1),
        "cpu_us_per_cycle": cpu_median("bare"),
        "wire_bytes_per_reading": round(statistics.median(wires["bare"])),
        "first_reading_ms": round(statistics.median(firsts["bare"])),
        "min_heapsize_bytes": heaps["bare"]["bytes"],
        "mpy_bytes": bare_mpy,
        "detail": {
            "what": "tools/bare_loop.py: join, connect, json.dumps + publish at QoS 1; "
            "no reconnect, so recovery and loss do not apply",
            "heap_not_firmware": bare_not_fw,
            "resident_heap_bytes_mpy": bare_mpy_in["resident_heap_bytes"],
            "resident_heap_bytes_romfs": bare_rom["resident_heap_bytes"],
            "min_heapsize_bytes_mpy": heaps["bare_mpy"]["bytes"],
            **cpu(bare_in),
            "first_reading_ms_runs": firsts["bare"],
            "problem": bare_in["problem"],
        },
    }
    results = {"sensornode": sensornode, "bare": bare, "fleet": fl}
    sensornode["targets"] = targets(sensornode, bare, fl)
    sensornode["detail"]["runtime"] = (
        f"MicroPython unix port ({platform.machine()}, 64-bit objects), broker {kind}"
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__)
    parser.add_argument("--boards", type=int, default=None, help="fleet size (default 50)")
    parser.add_argument("--seconds", type=float, default=None, help="fleet run (default 60)")
    parser.add_argument("--rate", type=float, default=1.0, help="fleet readings per second")
    parser.add_argument(
        "--cycles", type=int, default=None, help="cycles per in-process run (default 10000)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 3 boards, 5 s, 200 cycles, 2 steps"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    defaults = (3, 5.0, 200) if args.quick else (50, 60.0, 10000)
    args.boards = args.boards if args.boards is not None else defaults[0]
    args.seconds = args.seconds if args.seconds is not None else defaults[1]
    args.cycles = args.cycles if args.cycles is not None else defaults[2]
    if not MICROPYTHON.exists():
        say(f"{MICROPYTHON} is missing: run `make setup`")
        return 2
    started = time.monotonic()
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nfigures in {args.out} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
