"""What sensornode costs a board, measured against the floor: a bare umqtt.simple loop.

    python -m tools.bench [--boards N] [--seconds S] [--rate HZ] [--cycles N] [--quick]
                          [--only 32-bit|64-bit] [--out build/bench.json]
    python -m tools.bench --heap [--only 32-bit|64-bit]   # the net heap and its parts alone

Every figure is taken on each runtime there is (tools/bench_boards.py): the PyPI wheel's 64-bit
MicroPython, and a 32-bit (i386) build at <repo>/../shared/micropython-i386/micropython, whose
objects and small integers are a board's size; without it the report says the 32-bit figures
are missing and why. Both programs run on the virtual board against one real broker on
127.0.0.1 (Mosquitto if installed, else amqtt) and publish the same reading at QoS 1,
sensornode's default. The bare loop is tools/bare_loop.py: join, connect, json.dumps + publish.

- In-process figures (resident heap, allocation per cycle, a per-part profile, the heap by
  module): tools/bench_measure.py with tools/bench_harness.py on the board. "Net" heap is
  the resident heap minus what the virtual board holds (interpreter, launcher, board support),
  each measured on the same runtime.
- CPU per cycle: the board thread's CPU time, each program alone on its board, in turns; and,
  with valgrind installed, the user-mode instructions per cycle of the same run under callgrind,
  which the machine's load moves far less (the median of as many runs).
- The smallest heap: a bisection of `-X heapsize` from 0, each run booting and then doing
  --cycles cycles (default 10,000), the result confirmed by several runs in a row.
- First reading, wire bytes, recovery and the fleet: whole board processes (tools/bench_live.py).
- Optional parts as heap on top of the idle node: tools/bench_extras.py (add rows there).

Prints the tables (tools/bench_report.py) and writes build/bench.json as
{"32-bit": {"runtime", "sensornode", "bare", "fleet", "extras"}, "64-bit": {...}}; each
program's "detail" holds the breakdowns behind its headline figures. Targets are reported,
never enforced.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tools import bench_live as live
from tools import bench_measure as measure
from tools import compile as fwcompile
from tools.bench_boards import BARE_LOOP, FEATURES_TEXT, QOS, WHEEL, Runtime, runtimes
from tools.bench_extras import EXTRAS, Extra, tls_extras
from tools.bench_report import heap_report, report, targets
from tools.brokers import Broker, TlsFiles
from tools.watcher import Watcher

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "bench.json"
ARCHS = tuple(fwcompile.ARCHS.values())  # xtensawin, armv6m
KINDS = ("sensornode", "bare")
_T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"bench: [{time.monotonic() - _T0:5.0f} s] {msg}", file=sys.stderr, flush=True)


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


def _cpu(m: dict[str, Any], alone: list[dict[str, Any]]) -> dict[str, Any]:
    kind = m["kind"]
    runs = [a[kind]["cpu"] for a in alone]
    return {
        "cpu_us_runs": [_rounded(r["oncpu_us"]) for r in runs],
        "cycle_us_wall": round(statistics.median(r["median_us"] for r in runs)),
        "cycle_us_wall_runs": [r["median_us"] for r in runs],
        "cycle_us_wall_mean": round(statistics.median(r["mean_us"] for r in runs), 1),
        "as_shipped_cycle_us": m["as_shipped_cycle_us"],
        "alloc_per_cycle_median_bytes": m["alloc_per_cycle_median_bytes"],
        "profile": m["profile"],
    }


def _cpu_time(alone: list[dict[str, Any]], kind: str) -> float | None:
    """The median over the runs of the board thread's CPU time per cycle, us (None where
    /proc/thread-self/schedstat could not be read)."""
    runs = [a[kind]["cpu"]["oncpu_us"] for a in alone]
    return None if None in runs else round(statistics.median(runs), 1)


def _rounded(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _resident(
    rt: Runtime, kind: str, workdir: Path, addr: tuple[str, int], code: str, **kw: Any
) -> dict[str, Any]:
    """A program's resident heap with its code as `code` (measure.in_process): a few cycles
    are enough for the harness to report it. The whole bench and `--heap` both take it here."""
    return measure.in_process(rt, kind, workdir, addr, 100, code, **kw)


def in_process_figures(
    rt: Runtime,
    workdir: Path,
    addr: tuple[str, int],
    args: argparse.Namespace,
    extra_rows: list[Extra],
) -> dict[str, Any]:
    """Everything measured inside board processes, for both programs, on one runtime."""
    cycles = args.cycles
    got: dict[str, Any] = {}
    say(f"{rt.key}: heap, allocation and CPU, sensornode and the bare loop")
    for kind in KINDS:
        got[kind] = {
            "base": measure.heap_baseline(rt, kind, workdir, addr),
            "py": measure.in_process(rt, kind, workdir, addr, cycles),
            "mpy": _resident(rt, kind, workdir, addr, "mpy"),
            "romfs": _resident(rt, kind, workdir, addr, "romfs"),
            # What `make flash NOLINES=1` saves (mpy-cross -O3); the default keeps line numbers.
            "mpy_o3": _resident(rt, kind, workdir, addr, "mpy-O3"),
        }
    # sensornode's first boot on new files checks them with config.py (firmware/validated.py),
    # builds the HA record and restarts once: the figure is the node after that restart
    got["sensornode"]["mpy_first"] = _resident(
        rt, "sensornode", workdir, addr, "mpy", first_boot=True
    )
    modules = got["sensornode"]["mpy"]["modules"]
    got["parts"] = measure.breakdown(rt, workdir, addr, modules, "mpy")
    # CPU time per cycle: each program alone on its board, in turns, the median of `rounds`
    # runs each (what else the machine does at the moment weighs on a run).
    rounds = 1 if args.quick else 3
    say(f"{rt.key}: CPU per cycle, {rounds} run(s) of each program alone")
    got["alone"] = [
        {kind: measure.cpu_alone(rt, kind, workdir, addr, cycles) for kind in KINDS}
        for _ in range(rounds)
    ]
    # Instructions per cycle: the median of as many runs. A single count of the same firmware
    # moved by up to 7 % between runs (README, "How to read it").
    say(f"{rt.key}: instructions per cycle under callgrind, {rounds} run(s) of each alone")
    counts = [
        {kind: measure.instructions_alone(rt, kind, workdir, addr) for kind in KINDS}
        for _ in range(rounds)
    ]
    got["instructions_runs"] = counts
    got["instructions"] = {kind: measure.median_count([c[kind] for c in counts]) for kind in KINDS}
    say(f"{rt.key}: smallest heap, bisecting -X heapsize from 0, {cycles} cycles a run")
    got["heaps"] = measure.min_heaps(rt, workdir, addr, cycles, args.confirm)
    say(f"{rt.key}: optional parts on top of the idle node")
    got["extras"] = measure.extras(rt, workdir, addr, extra_rows)
    return got


def live_figures(
    rt: Runtime, workdir: Path, broker: Broker, sub: live.Seen, args: argparse.Namespace
) -> dict[str, Any]:
    """Whole board processes watched from the broker, on one runtime."""
    addr = (broker.host, broker.port)
    say(f"{rt.key}: first reading and wire bytes")
    repeats = 1 if args.quick else 3
    firsts: dict[str, list[int]] = {"sensornode": [], "nowindow": [], "bare": []}
    wires: dict[str, list[int]] = {"sensornode": [], "bare": []}
    for _ in range(repeats):
        got = live.first_reading(rt, "sensornode", workdir, addr, sub, True)
        firsts["sensornode"].append(got["ms"])
        wires["sensornode"] += got["wire"]
        nowindow = live.first_reading(rt, "sensornode", workdir, addr, sub, False)
        firsts["nowindow"].append(nowindow["ms"])
        got = live.first_reading(rt, "bare", workdir, addr, sub, True)
        firsts["bare"].append(got["ms"])
        wires["bare"] += got["wire"]
    say(f"{rt.key}: broker killed and restarted under sensornode")
    rec = live.recovery(rt, workdir, broker, sub, 1.0 if args.quick else 3.0, 10)
    say(f"{rt.key}: fleet, {args.boards} boards at {args.rate:g} Hz for {args.seconds:g} s")
    fl = live.fleet(rt, workdir, addr, sub, args.boards, args.rate, args.seconds)
    return {"firsts": firsts, "wires": wires, "recovery": rec, "fleet": fl}


def _net(m: dict[str, Any], base: dict[str, Any]) -> int:
    return m["resident_heap_bytes"] - base["before_main"] - base["bsp"]


def assemble(
    rt: Runtime,
    got: dict[str, Any],
    seen: dict[str, Any],
    sizes: tuple[dict[str, int], dict[str, int]],
    cycles: int,
    broker_kind: str,
) -> dict[str, Any]:
    """One runtime's section of bench.json from its raw measurements."""
    alone, heaps = got["alone"], got["heaps"]

    def program(kind: str) -> dict[str, Any]:
        g = got[kind]
        base = g["base"]
        firsts = seen["firsts"][kind]
        return {
            "net_resident_heap_bytes": _net(g["mpy"], base),
            "alloc_per_cycle_bytes": round(g["py"]["alloc_per_cycle_bytes"], 1),
            "cpu_us_per_cycle": _cpu_time(alone, kind),
            "wire_bytes_per_reading": round(statistics.median(seen["wires"][kind])),
            "first_reading_ms": round(statistics.median(firsts)),
            "min_heapsize_bytes": heaps[f"{kind}_mpy"]["bytes"],
            "mpy_bytes": sizes[0] if kind == "sensornode" else sizes[1],
            "detail": {
                "console_line_alloc_bytes": _rounded(g["py"].get("console_line_alloc_bytes")),
                "cycles": cycles,
                "board": base,
                "board_share_bytes": base["before_main"] + base["bsp"],
                "resident_heap_bytes_mpy": g["mpy"]["resident_heap_bytes"],
                "resident_heap_bytes_py": g["py"]["resident_heap_bytes"],
                "resident_heap_bytes_romfs": g["romfs"]["resident_heap_bytes"],
                "net_resident_heap_bytes_py": _net(g["py"], base),
                "net_resident_heap_bytes_romfs": _net(g["romfs"], base),
                "net_resident_heap_bytes_mpy_o3": _net(g["mpy_o3"], base),
                "qstr_pool_bytes_mpy": g["mpy"]["qstr_pool_bytes"],
                "qstr_pool_bytes_py": g["py"]["qstr_pool_bytes"],
                **_cpu(g["py"], alone),
                "instructions_per_cycle": got["instructions"][kind],
                "instructions_per_cycle_runs": [c[kind] for c in got["instructions_runs"]],
                "first_reading_ms_runs": firsts,
                "min_heapsize_bytes_py": heaps[kind]["bytes"],
                "min_heapsize_runs": heaps,
                "problem": g["py"]["problem"],
            },
        }

    sn = program("sensornode")
    sn["detail"]["net_resident_heap_bytes_first_boot"] = _net(
        got["sensornode"]["mpy_first"], got["sensornode"]["base"]
    )
    sn["detail"]["qstr_pool_bytes_first_boot"] = got["sensornode"]["mpy_first"]["qstr_pool_bytes"]
    bare = program("bare")
    rec = seen["recovery"]
    sn["recover_s"] = rec["recover_s"]
    sn["lost_readings"] = rec["lost_readings"]
    d = sn["detail"]
    d["features"] = FEATURES_TEXT
    d["qos"] = QOS
    d["heap_parts"] = got["parts"]
    d["first_reading_ms_no_boot_window"] = round(statistics.median(seen["firsts"]["nowindow"]))
    d["first_reading_ms_no_boot_window_runs"] = seen["firsts"]["nowindow"]
    d["recovery"] = rec["detail"]
    problems = (a[kind]["problem"] for a in alone for kind in KINDS)
    d["problem"] = d["problem"] or next((p for p in problems if p), None)
    bare["detail"]["what"] = (
        "tools/bare_loop.py: join, connect, json.dumps + publish at QoS 1; "
        "no reconnect, so recovery and loss do not apply"
    )
    fl = seen["fleet"]
    sn["targets"] = targets(sn, bare, fl)
    return {
        "runtime": f"{rt.what}; {rt.micropython.name} at {_shown_path(rt.micropython)}; "
        f".mpy for -march={rt.arch}; broker {broker_kind}",
        "sensornode": sn,
        "bare": bare,
        "fleet": fl,
        "extras": got["extras"],
    }


def _shown_path(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT.parent))
    except ValueError:
        return str(p)


def tls_listener(stack: contextlib.ExitStack, kind: str, workdir: Path) -> tuple[int | None, bytes]:
    """A Mosquitto TLS listener for the "TLS on" rows, its certificate from a CA made now:
    (its port, the CA as DER); (None, b"") when the bench's broker is not Mosquitto."""
    if kind != "mosquitto":
        return None, b""
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    files = TlsFiles(workdir / "tls-cert.pem", workdir / "tls-key.pem")
    cert.cert_chain_pems[0].write_to_path(files.certfile)
    cert.private_key_pem.write_to_path(files.keyfile)
    tls = stack.enter_context(Broker("mosquitto", tls=files))
    return tls.port, ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode())


def _chosen(args: argparse.Namespace) -> tuple[list[Runtime], dict[str, Any]]:
    """The runtimes to measure on (--only), and the results begun with why the 32-bit one is
    missing, if it is and was asked for."""
    available, missing = runtimes()
    if args.only:
        available = [rt for rt in available if rt.key == args.only]
    results: dict[str, Any] = {}
    if missing and args.only != WHEEL.key:
        results["32-bit"] = {"missing": missing}
        say(f"32-bit figures missing: {missing}")
    return available, results


def run(args: argparse.Namespace) -> dict[str, Any]:
    available, results = _chosen(args)
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(Broker("auto"))
        addr = (broker.host, broker.port)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        say(f"{broker.kind} on {broker.address}; runtimes {', '.join(r.key for r in available)}")
        sizes = mpy_sizes(workdir)
        rows = EXTRAS + tls_extras(*tls_listener(stack, broker.kind, workdir))
        got = {rt.key: in_process_figures(rt, workdir, addr, args, rows) for rt in available}
        watcher = Watcher(addr, live.TOPICS)
        stack.callback(watcher.close)
        sub = live.Seen(watcher)
        for rt in available:
            seen = live_figures(rt, workdir, broker, sub, args)
            results[rt.key] = assemble(rt, got[rt.key], seen, sizes, args.cycles, broker.kind)
    return results


def heap_figures(rt: Runtime, workdir: Path, addr: tuple[str, int]) -> dict[str, Any]:
    """sensornode's net resident heap as .mpy and its parts on one runtime, measured as the
    whole bench measures them, in the shape of a bench.json section (what parts_table reads)."""
    base = measure.heap_baseline(rt, "sensornode", workdir, addr)
    mpy = _resident(rt, "sensornode", workdir, addr, "mpy")
    parts = measure.breakdown(rt, workdir, addr, mpy["modules"], "mpy")
    return {
        "runtime": f"{rt.what}; .mpy for -march={rt.arch}",
        "sensornode": {
            "net_resident_heap_bytes": _net(mpy, base),
            "detail": {
                "board": base,
                "heap_parts": parts,
                "resident_heap_bytes_mpy": mpy["resident_heap_bytes"],
            },
        },
    }


def run_heap(args: argparse.Namespace) -> dict[str, Any]:
    """The heap figures alone (--heap), on each runtime there is: a minute, not the bench's
    quarter hour, for a change to the firmware's size."""
    available, results = _chosen(args)
    with Broker("auto") as broker, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for rt in available:
            say(f"{rt.key}: resident heap and its parts, sensornode as .mpy")
            results[rt.key] = heap_figures(rt, Path(tmp), (broker.host, broker.port))
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
        "--confirm", type=int, default=None, help="runs in a row the smallest heap must pass (3)"
    )
    parser.add_argument("--only", choices=("32-bit", "64-bit"), help="one runtime only")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 3 boards, 5 s, 200 cycles, 1 confirm"
    )
    parser.add_argument(
        "--heap",
        action="store_true",
        help="only the net resident heap (.mpy) and its parts; printed, bench.json untouched",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.heap:
        print(heap_report(run_heap(args)))
        return 0
    defaults = (3, 5.0, 200, 1) if args.quick else (50, 60.0, 10000, measure.CONFIRM_RUNS)
    args.boards = args.boards if args.boards is not None else defaults[0]
    args.seconds = args.seconds if args.seconds is not None else defaults[1]
    args.cycles = args.cycles if args.cycles is not None else defaults[2]
    args.confirm = args.confirm if args.confirm is not None else defaults[3]
    if not WHEEL.micropython.exists():
        say(f"{WHEEL.micropython} is missing: run `make setup`")
        return 2
    started = time.monotonic()
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
    print(f"\nfigures in {args.out} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
