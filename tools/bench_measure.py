"""The benchmark's measurements inside one board process: heap, allocation, CPU, the heap's
breakdown, the smallest heap that runs, and the optional parts on top of the idle node.

Each function lays out a board (tools/bench_boards.py), writes its main.py from the pieces in
tools/bench_scripts.py, runs it once on a runtime and reads the `bench: {...}` line it prints.
"""

from __future__ import annotations

import ast
import dataclasses
import shutil
import statistics
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware import ident
from tools import bench_scripts as scripts
from tools.bench_boards import (
    ROOT,
    Runtime,
    bare_fs,
    bench_line,
    boot_once,
    pack_romfs,
    qstr_lines,
    qstr_pool_bytes,
    run_board,
    sensornode_fs,
)
from tools.bench_extras import Extra
from tools.compile import NO_LINE_NUMBERS
from tools.vboard import layout

UID = "5e0500a1b2c3"
BARE_UID = "ba4e00b1b2c3"  # a topic of the same length as sensornode's
# The board support each program uses (sensornode's boot.py looks at the ESP32's button: Pin).
BSP = {"sensornode": "machine, _pin, network, ntptime", "bare": "machine, network"}
CONFIRM_RUNS = 3  # the smallest heap must pass this many runs in a row


def device_of(uid: str) -> str:
    """The bare loop's device id, named as sensornode names a board without device_id."""
    return ident.device_id("esp32", bytes.fromhex(uid))


def bare_params(broker: tuple[str, int], uid: str = BARE_UID) -> dict[str, Any]:
    return {
        "host": broker[0],
        "port": broker[1],
        "ssid": layout.DEFAULT_SSID,
        "password": layout.DEFAULT_PASSWORD,
        "device": device_of(uid),
    }


def _run(
    rt: Runtime, fs: Path, uid: str, what: str, timeout: float, console_file: bool = False
) -> str:
    finished, out = run_board(rt, fs, uid, timeout=timeout, console_file=console_file)
    if not finished:
        raise RuntimeError(f"bench: the {what} run on {rt.key} did not finish:\n{out[-2000:]}")
    return out


def in_process(
    rt: Runtime,
    kind: str,
    workdir: Path,
    broker: tuple[str, int],
    cycles: int,
    code: str = "py",
    first_boot: bool = False,
) -> dict[str, Any]:
    """Resident heap, allocation per cycle and the per-part profile, from the harness.
    code: "py" (source, as the virtual board lays it out), "mpy" (the program and umqtt.simple
    as bytecode .mpy, as `make flash` leaves a board), "mpy-O3" (the program compiled as
    `make flash NOLINES=1` does: no line numbers) or "romfs" (those .mpy in a ROMFS image).
    sensornode is measured on a boot after its first (boot_once) unless first_boot."""
    fs = workdir / f"{rt.key}-measure-{kind}-{code}{'-first' if first_boot else ''}"
    romfs = code == "romfs"
    measure = scripts.MEASURE_ROMFS if romfs else scripts.MEASURE
    mpy = rt.arch if code != "py" else None
    options = (NO_LINE_NUMBERS,) if code == "mpy-O3" else ()
    uid = _program_fs(kind, fs, broker, measure, cycles, mpy, options)
    if romfs:
        pack_romfs(fs, workdir / f"{rt.key}-romfs-{kind}")
        # A board mounts its ROM partition before boot.py, which imports from it already.
        boot = fs / "boot.py"
        boot.write_text(scripts.ROMFS + (boot.read_text() if boot.exists() else ""))
    if kind == "sensornode" and not first_boot:
        boot_once(rt, fs, uid)
    out = _run(rt, fs, uid, f"{kind} {code} measurement", 120 + cycles / 100, console_file=True)
    found = bench_line(out)
    found["qstr_pool_bytes"] = qstr_pool_bytes(out)
    return found


def cpu_alone(rt: Runtime, kind: str, workdir: Path, broker: tuple[str, int], cycles: int) -> dict:
    """CPU and wall time per cycle of one program alone on its board (bench_harness.alone).
    The console goes to a file, as a board's goes into its UART's buffer: through a pipe, each
    reading's console line woke the bench's reader, which on a virtual machine cost the
    board's process about 27 us of CPU a line."""
    fs = workdir / f"{rt.key}-alone-{kind}"
    uid = _program_fs(kind, fs, broker, scripts.ALONE, cycles)
    if kind == "sensornode":
        boot_once(rt, fs, uid)
    timeout = 120 + cycles / 100
    return bench_line(_run(rt, fs, uid, f"{kind} CPU", timeout, console_file=True))


# The two runs of each program under callgrind: the difference in instructions over the
# difference in cycles leaves the boot and the warm-up out.
COUNTED_CYCLES = (300, 1300)


def instructions_alone(
    rt: Runtime, kind: str, workdir: Path, broker: tuple[str, int]
) -> int | None:
    """User-mode instructions per cycle of one program alone on its board (cpu_alone's run),
    counted by valgrind's callgrind; None without valgrind. It moves far less than CPU time with
    what the machine does, so a change's effect shows where runs of CPU time disagree (though
    runs of the same firmware differed by up to 7 %: the bench takes a median); it leaves out
    the system calls, which CPU time counts."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    totals = []
    for cycles in COUNTED_CYCLES:
        out = workdir / f"{rt.key}-callgrind-{kind}-{cycles}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        wrapper = out / "micropython"
        wrapper.write_text(
            f"#!/bin/sh\nexec {valgrind} -q --tool=callgrind "
            f'--callgrind-out-file={out}/callgrind.%p "{rt.micropython}" "$@"\n'
        )
        wrapper.chmod(0o755)
        ran = cpu_alone(dataclasses.replace(rt, micropython=wrapper), kind, workdir, broker, cycles)
        if ran.get("problem"):  # a dropped link or a lost reading: not the cycle's count
            raise RuntimeError(f"bench: {kind} under callgrind: {ran['problem']}")
        totals.append(callgrind_total(out))
    return round((totals[1] - totals[0]) / (COUNTED_CYCLES[1] - COUNTED_CYCLES[0]))


def median_count(counts: list[int | None]) -> int | None:
    """The median of instructions_alone()'s counts, or None when a run had no count."""
    if not counts or any(c is None for c in counts):
        return None
    return round(statistics.median(c for c in counts if c is not None))


def callgrind_total(out: Path) -> int:
    """The instructions counted in the largest callgrind file under out (the board's process)."""
    found = [
        int(line.split()[1])
        for f in out.glob("callgrind.*")
        for line in f.read_text(errors="replace").splitlines()
        if line.startswith(("summary:", "totals:"))
    ]
    if not found:
        raise RuntimeError(f"bench: callgrind wrote no totals under {out}")
    return max(found)


def _program_fs(
    kind: str,
    fs: Path,
    broker: tuple[str, int],
    script: str,
    cycles: int,
    mpy: str | None = None,
    mpy_options: tuple[str, ...] = (),
) -> str:
    """Lays out the program's board: its boot as main.py begins it, then `script` (formatted
    with kind, program: the booted object's name, and cycles); returns the board's uid."""
    if kind == "sensornode":
        tail = script.format(kind=kind, program="node", cycles=cycles)
        main = scripts.SENSORNODE_BOOT + tail
        sensornode_fs(fs, broker, main=main, mpy=mpy, mpy_options=mpy_options)
        return UID
    tail = script.format(kind=kind, program="bare", cycles=cycles)
    main = scripts.BARE_BOOT.format(**bare_params(broker)) + tail
    bare_fs(fs, main, mpy=mpy, mpy_options=mpy_options)
    return BARE_UID


def interpreter_heap(rt: Runtime) -> int:
    """The heap the interpreter itself holds when a script starts (no launcher, no board)."""
    code = "import gc; gc.collect(); print(gc.mem_alloc())"
    done = subprocess.run(
        [str(rt.micropython), "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    return int(done.stdout.strip())


def heap_baseline(rt: Runtime, kind: str, workdir: Path, broker: tuple[str, int]) -> dict:
    """What the virtual board holds that a real board does not: the heap in use when main.py
    starts on a board without boot.py (the interpreter, the launcher) and the board-support
    modules the program imports (Python here, C in a board's firmware)."""
    main = scripts.BASELINE.format(modules=BSP[kind])
    fs = workdir / f"{rt.key}-baseline-{kind}"
    if kind == "sensornode":
        sensornode_fs(fs, broker, main=main, boot_window=False)
    else:
        bare_fs(fs, main)
    out = _run(rt, fs, UID, f"{kind} baseline", 60)
    found = bench_line(out)
    found["qstr_pool_bytes"] = qstr_pool_bytes(out)
    found["interpreter"] = interpreter_heap(rt)
    if kind == "sensornode":
        # The same main.py after boot.py: what boot.py leaves behind (its button check imports
        # machine, which is the board support's either way).
        sensornode_fs(fs, broker, main=main)
        booted = bench_line(_run(rt, fs, UID, "boot.py", 60))
        found["boot_py"] = booted["before_main"] + booted["bsp"]
        found["boot_py"] -= found["before_main"] + found["bsp"]
    return found


def import_order(names: list[str], src: Path = ROOT / "firmware") -> list[str]:
    """names (modules a booted node holds) ordered dependencies first, from the firmware's own
    import statements (those inside functions too), so each import adds only its own module."""
    deps: dict[str, set[str]] = {}
    for name in names:
        deps[name] = set()
        if not name.startswith("firmware."):
            continue
        tree = ast.parse((src / (name.split(".", 1)[1] + ".py")).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps[name].update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                deps[name].add(node.module)
                deps[name].update(f"{node.module}.{a.name}" for a in node.names)
        deps[name] &= set(names) - {name}
    out: list[str] = []

    def visit(name: str, seen: frozenset[str]) -> None:
        if name in out or name in seen:
            return
        for dep in sorted(deps[name]):
            visit(dep, seen | {name})
        out.append(name)

    for name in sorted(names):
        visit(name, frozenset())
    return out


def breakdown(
    rt: Runtime, workdir: Path, broker: tuple[str, int], modules: list[str], code: str
) -> dict[str, Any]:
    """sensornode's heap by part: boot.py's leftovers, each module once imported (bytecode,
    constants, interned names), what reading the configuration leaves (validated.py, on a boot
    after the first), and the objects the running node holds."""
    fs = workdir / f"{rt.key}-breakdown-{code}"
    order = import_order(modules)
    main = scripts.BREAKDOWN.format(names=order, bsp=BSP["sensornode"])
    main += "import micropython\nmicropython.qstr_info()\n"
    sensornode_fs(fs, broker, main=main, mpy=rt.arch if code == "mpy" else None)
    boot_once(rt, fs, UID)
    out = _run(rt, fs, UID, "breakdown", 120)
    found = bench_line(out)
    pools = qstr_lines(out)  # before, after each module, after the configuration, at the end
    if len(pools) != len(order) + 3:
        raise RuntimeError(f"bench: the breakdown printed {len(pools)} qstr_info lines")
    steps = [
        {"names": pools[i + 1][0] - pools[i][0], "pool_bytes": pools[i + 1][1] - pools[i][1]}
        for i in range(len(order) + 2)
    ]
    return {
        "modules": dict(zip(order, found["sizes"], strict=True)),
        "module_names": {name: step for name, step in zip(order, steps, strict=False)},
        "config_read_names": steps[len(order)],
        "config_read": found["config_read"],
        "objects": found["objects"],
        "objects_names": steps[len(order) + 1],
        "qstr_pool_bytes": qstr_pool_bytes(out),
    }


def extras(
    rt: Runtime, workdir: Path, broker: tuple[str, int], rows: list[Extra]
) -> dict[str, Any]:
    """Each optional part's heap on top of the idle node (bench_extras.py), as .mpy."""
    results: dict[str, Any] = {}
    plain = _extra(rt, workdir / f"{rt.key}-extra-idle", broker, Extra("idle"))
    idle = plain.get("with")
    for i, row in enumerate(rows):
        got = _extra(rt, workdir / f"{rt.key}-extra-{i}", broker, row)
        if "error" in got or idle is None:
            results[row.name] = {"bytes": None, "error": got.get("error", plain.get("error"))}
        else:
            results[row.name] = {"bytes": got["with"] - idle, "idle": idle, "with": got["with"]}
    return results


def _extra(rt: Runtime, fs: Path, broker: tuple[str, int], row: Extra) -> dict[str, Any]:
    main = scripts.SENSORNODE_BOOT + scripts.EXTRA.format(code=scripts.indent(row.code))
    sensornode_fs(fs, broker, main=main, config=row.config, mpy=rt.arch)
    for name, data in row.files.items():
        (fs / name).write_bytes(data)
    boot_once(rt, fs, UID)
    finished, out = run_board(rt, fs, UID, timeout=120)
    try:
        return bench_line(out)
    except RuntimeError:
        last = out.strip().splitlines()[-1:] or ["no output"]
        return {"error": ("did not finish: " if not finished else "") + last[0]}


# -- the smallest heap ---------------------------------------------------------------------------


# What the firmware keeps for its next boots: removed before each try of the smallest heap, so
# every try is a first boot on files as flashed (config.py's checks run, the HA configs are
# built, then the board restarts once), which a board must survive after each provision, `set`
# or update.
KEPT_BETWEEN_BOOTS = ("validated.json", "restarted", "ha.txt", "ha.txt.tmp", "ha.txt.clear")


def endurance_ok(
    rt: Runtime, fs: Path, uid: str, heap: int, cycles: int, fresh: bool = True
) -> bool:
    """Boot and `cycles` readings at `heap` bytes; fresh: as the first boot on new files, else
    on what the last try left (a board that booted before)."""
    if fresh:
        for name in KEPT_BETWEEN_BOOTS:
            (fs / name).unlink(missing_ok=True)
    finished, out = run_board(rt, fs, uid, heap=heap, timeout=60 + cycles / 200)
    # Without the heap for it at a connect the node skips HA discovery and reads on: not a pass.
    # (A build the boot puts off to the next boot or the connect is not a skip.)
    skipped = "ha: not enough heap to announce" in out
    return finished and "bench: endurance ok" in out and not skipped


def smallest(passes: Callable[[int], bool], start_kb: int, confirm: int) -> dict[str, Any]:
    """The smallest size in KB for which passes(kb) holds `confirm` times in a row, found by
    bisecting from 0 (nothing below start_kb is assumed) and then confirming, 1 KB up per failed
    confirmation. The spread is how far above the smallest size that passed once it lies."""
    tried: list[tuple[int, bool]] = []

    def attempt(kb: int) -> bool:
        ok = passes(kb)
        tried.append((kb, ok))
        return ok

    lo, hi = 0, start_kb
    while not attempt(hi):
        if hi >= 64 * start_kb:
            return {"bytes": None, "tried_kb": tried}
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if attempt(mid):
            hi = mid
        else:
            lo = mid
    while not all(attempt(hi) for _ in range(confirm)):
        hi += 1
    passed_once = min(kb for kb, ok in tried if ok)
    return {
        "bytes": hi * 1024,
        "passed_once_bytes": passed_once * 1024,
        "spread_bytes": (hi - passed_once) * 1024,
        "confirm_runs": confirm,
        "tried_kb": tried,
    }


def min_heaps(
    rt: Runtime, workdir: Path, broker: tuple[str, int], cycles: int, confirm: int
) -> dict[str, dict[str, Any]]:
    """The smallest -X heapsize for boot plus `cycles` cycles, side by side (each board with its
    own client id): each program from source (umqtt.simple too) and as bytecode .mpy, each try a
    first boot on new files; and sensornode as .mpy on a board that booted before."""
    node = scripts.SENSORNODE_BOOT + scripts.SENSORNODE_ENDURE.format(cycles=cycles)
    bare = scripts.BARE_BOOT.format(**bare_params(broker))
    bare += scripts.BARE_ENDURE.format(cycles=cycles)
    tag = "1" if rt.key == "32-bit" else "0"
    cases: dict[str, tuple[Path, str]] = {
        "sensornode": (
            sensornode_fs(workdir / f"{rt.key}-endure-py", broker, main=node),
            f"e0d0e{tag}a1b2c1",
        ),
        "sensornode_mpy": (
            sensornode_fs(workdir / f"{rt.key}-endure-mpy", broker, main=node, mpy=rt.arch),
            f"e0d0e{tag}a1b2c2",
        ),
        "sensornode_mpy_booted": (
            sensornode_fs(workdir / f"{rt.key}-endure-booted", broker, main=node, mpy=rt.arch),
            f"e0d0e{tag}a1b2c5",
        ),
        "bare": (bare_fs(workdir / f"{rt.key}-endure-bare", bare), f"e0d0e{tag}a1b2c3"),
        "bare_mpy": (
            bare_fs(workdir / f"{rt.key}-endure-bare-mpy", bare, mpy=rt.arch),
            f"e0d0e{tag}a1b2c4",
        ),
    }
    results: dict[str, dict[str, Any]] = {}

    def one(name: str) -> None:
        fs, uid = cases[name]
        fresh = name != "sensornode_mpy_booted"  # it keeps what its first try (128 KB) left
        results[name] = smallest(
            lambda kb: endurance_ok(rt, fs, uid, kb * 1024, cycles, fresh), 128, confirm
        )

    threads = [threading.Thread(target=one, args=(name,)) for name in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
