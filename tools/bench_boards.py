"""The benchmark's boards: which MicroPython runs them, what their filesystem holds, one run.

A Runtime is one MicroPython unix port: the PyPI wheel's (64-bit, always there after
`make setup`) or a 32-bit (i386) build at `<repo>/../shared/micropython-i386/micropython`, whose
objects, heap blocks and small integers are a board's size. Board filesystems are laid out as
flashing leaves them (tools/vboard/layout.py), with another main.py for the measurement, and
optionally the firmware and umqtt.simple as bytecode .mpy for that runtime, or those .mpy packed
into a ROMFS image.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import compile as fwcompile
from tools.flash import mpremote_path
from tools.vboard import layout
from tools.vboard.supervisor import LAUNCHER, MICROPYTHON, SOFT_EXIT, board_env, free_port
from tools.vboard.switches import Switches

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(__file__).resolve().parent
HARNESS = TOOLS / "bench_harness.py"
BARE_LOOP = TOOLS / "bare_loop.py"
I386 = Path("shared") / "micropython-i386" / "micropython"  # beside the repository
BOARD = "esp32"  # umqtt.simple frozen, as on the ESP32; the Pico W's /lib copy is the same code
# Soft resets run_board() starts the board again after: the firmware's one restart after a
# configuration check, and one more (a check that could not keep its result runs on instead).
SOFT_RESETS_FOLLOWED = 2
QOS = 1  # sensornode's default (mqtt.qos); the bare loop publishes at the same QoS

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
    "keepalive pings, NTP, a console line per reading; watchdog off (unix port)"
)


@dataclass(frozen=True)
class Runtime:
    """One MicroPython to run boards on. key: "32-bit" or "64-bit"; arch: mpy-cross -march for
    its .mpy files; what: how bench.json and the table describe it."""

    key: str
    micropython: Path
    arch: str
    what: str


WHEEL = Runtime(
    "64-bit",
    MICROPYTHON,
    "x64",
    "the PyPI wheel's MicroPython unix port (x86-64): objects and heap blocks twice a board's "
    "size, small integers up to 2**62",
)


def beside_repo(relative: Path, root: Path = ROOT) -> Path:
    """<repo>/../relative; for a linked git worktree, beside the main checkout when it is not
    beside this one."""
    here = root.parent / relative
    if here.exists():
        return here
    try:
        common = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--path-format=absolute", "--git-common-dir"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return here
    main = Path(common).parent.parent / relative if common else here
    return main if main.exists() else here


BOARD_SIZED = Runtime(
    "32-bit",
    beside_repo(I386),
    "x86",
    "MicroPython unix port built for i386: 32-bit objects, 16-byte heap blocks and small "
    "integers up to 2**30, as on the ESP32 and the RP2040",
)


def probe(micropython: Path) -> str | None:
    """None when this MicroPython runs and is 32-bit; else why its figures are missing."""
    if not micropython.exists():
        return (
            f"no 32-bit MicroPython at <repo>/../{I386} (an i386 build of the unix port, "
            "which only the project's own machines have); the board-sized columns need one"
        )
    try:
        done = subprocess.run(
            [str(micropython), "-c", "import sys; print(sys.maxsize)"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{micropython.name} beside the repository does not run here ({e})"
    if done.stdout.strip() != str(2**31 - 1):
        return f"{micropython} is not a 32-bit build (sys.maxsize {done.stdout.strip()!r})"
    return None


def runtimes() -> tuple[list[Runtime], str | None]:
    """The runtimes to measure on (the wheel's first) and why the 32-bit one is missing, if so."""
    missing = probe(BOARD_SIZED.micropython)
    return ([WHEEL] if missing else [WHEEL, BOARD_SIZED]), missing


# -- board filesystems ---------------------------------------------------------------------------


def features_config(broker: tuple[str, int], config: dict[str, Any] | None = None) -> dict:
    return layout.merge(layout.merge(layout.default_config(broker), FEATURES), config or {})


def sensornode_fs(
    fs: Path,
    broker: tuple[str, int],
    *,
    main: str | None = None,
    config: dict[str, Any] | None = None,
    boot_window: bool = True,
    mpy: str | None = None,
    mpy_options: tuple[str, ...] = (),
) -> Path:
    """sensornode flashed as layout.flash does, optionally with another main.py (plus the
    harness), without boot.py, or with the firmware as bytecode .mpy for the mpy arch (as
    `make flash` leaves a board; mpy_options: more mpy-cross options for the firmware, such
    as -O3, which `make flash NOLINES=1` adds; umqtt.simple stays as the board has it)."""
    layout.flash(fs, BOARD, features_config(broker, config), layout.DEFAULT_SECRETS)
    if main is not None:
        (fs / "main.py").write_text(main)
        shutil.copy2(HARNESS, fs / HARNESS.name)
    if not boot_window:
        (fs / "boot.py").unlink()
    if mpy:
        for py in sorted((fs / "firmware").glob("*.py")):
            to_mpy(py, fwcompile.source_name(py), mpy, mpy_options)  # as `make flash` does
        umqtt_mpy(fs, mpy)
    return fs


def to_mpy(py: Path, name: str, arch: str, options: tuple[str, ...] = ()) -> None:
    """Replaces py with its bytecode .mpy for arch (mpy-cross; no native code in it)."""
    out = str(py.with_suffix(".mpy"))
    cmd = [fwcompile.mpy_cross(), *options, f"-march={arch}", "-s", name, "-o", out, str(py)]
    subprocess.run(cmd, check=True)
    py.unlink()


def umqtt_mpy(fs: Path, arch: str) -> None:
    """umqtt.simple as a board has it: frozen (ESP32) or installed by mip (Pico W), never source
    that the board compiles at boot. fs/umqtt/ comes before the frozen folder on the path."""
    (fs / "umqtt").mkdir(exist_ok=True)
    shutil.copy2(layout.umqtt_source(), fs / "umqtt" / "simple.py")
    to_mpy(fs / "umqtt" / "simple.py", "umqtt/simple.py", arch)


def bare_fs(
    fs: Path, main: str, *, mpy: str | None = None, mpy_options: tuple[str, ...] = ()
) -> Path:
    """The bare loop's board: main.py and bare_loop.py, nothing else (no boot.py, no config);
    with mpy, bare_loop and umqtt.simple as bytecode .mpy for that arch."""
    if fs.exists():
        shutil.rmtree(fs)
    fs.mkdir(parents=True)
    shutil.copy2(BARE_LOOP, fs / BARE_LOOP.name)
    shutil.copy2(HARNESS, fs / HARNESS.name)
    (fs / "main.py").write_text(main)
    if mpy:
        to_mpy(fs / BARE_LOOP.name, f"{BARE_LOOP.stem}.mpy", mpy, mpy_options)  # as firmware/
        umqtt_mpy(fs, mpy)
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
    for folder in sorted((p for p in fs.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()  # emptied: a package folder left here would shadow the image's
    image = fs / "rom.img"
    cmd = [mpremote_path(), "romfs", "--no-mpy", "-o", str(image), "build", str(staging)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


# -- one run -------------------------------------------------------------------------------------


def run_board(
    runtime: Runtime,
    fs: Path,
    uid: str,
    heap: int | None = None,
    timeout: float = 120.0,
    console_file: bool = False,
) -> tuple[bool, str]:
    """Runs a board's boot.py and main.py through the launcher (stdin closed, so it ends at the
    REPL), again after each soft reset, as a board does (the firmware restarts once after it
    checked new configuration files); returns (finished in time, console output).
    console_file: the console goes to a file, read when the board is done, instead of a pipe
    the bench reads as it comes (for CPU figures: see bench_measure.cpu_alone)."""
    control = fs.parent / f"{fs.name}-control.json"
    switches = Switches(control, layout.DEFAULT_AIR)
    # The setup portal's ports on 127.0.0.1, for the rows that bring it up (bench_extras.py).
    portal = (free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM))
    cmd = [str(runtime.micropython)]
    if heap is not None:
        cmd += ["-X", f"heapsize={heap}"]
    cmd.append(str(LAUNCHER))
    deadline = time.monotonic() + timeout
    out = ""
    for start in range(SOFT_RESETS_FOLLOWED + 1):
        env = board_env(
            BOARD, uid, fs, layout.frozen_dir(BOARD), switches.path, portal=portal, soft=start > 0
        )
        console = fs.parent / f"{fs.name}-console.txt"
        with contextlib.ExitStack() as stack:
            sink = stack.enter_context(console.open("wb")) if console_file else subprocess.PIPE
            try:
                done = subprocess.run(
                    cmd,
                    cwd=fs,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    timeout=max(deadline - time.monotonic(), 0.1),
                )
            except subprocess.TimeoutExpired as e:
                got = console.read_bytes() if console_file else e.output or b""
                return False, out + got.decode(errors="replace")
        got = console.read_bytes() if console_file else done.stdout
        out += got.decode(errors="replace")
        if done.returncode != SOFT_EXIT:
            break
    return True, out


# Boots the firmware as far as its configuration (boot.py runs before it, as on every boot).
_FIRST_BOOT = "import firmware.app\n\nfirmware.app.start()\n"


def boot_once(runtime: Runtime, fs: Path, uid: str) -> None:
    """Boots a freshly laid-out board once, so that the run measured after it is not the first
    boot on its files: that one checks config.json and secrets.json with firmware/config.py and
    keeps the result in validated.json (firmware/validated.py), which every later boot on the
    same files takes instead. A deployed node boots so, except after a change."""
    main = fs / "main.py"
    measured = main.read_text()
    main.write_text(_FIRST_BOOT)
    try:
        finished, out = run_board(runtime, fs, uid, timeout=60)
    finally:
        main.write_text(measured)
    if not finished or not (fs / "validated.json").exists():
        tail = "\n".join(out.splitlines()[-15:])
        raise RuntimeError(f"bench: the first boot kept no validated.json; its last lines:\n{tail}")


def bench_line(output: str, tag: str = "bench") -> dict[str, Any]:
    """The JSON a board printed as `<tag>: {...}` (the last such line)."""
    found = None
    for line in output.splitlines():
        if line.startswith(tag + ": {"):
            found = line[len(tag) + 2 :]
    if found is None:
        tail = "\n".join(output.splitlines()[-15:])
        raise RuntimeError(f"bench: the board printed no result; its last lines:\n{tail}")
    return json.loads(found)


def qstr_lines(output: str) -> list[tuple[int, int]]:
    """(n_qstr, n_total_bytes) of every `micropython.qstr_info()` line the board printed: how
    many interned names (qstrs) there were and the heap their pools took."""
    found = []
    for line in output.splitlines():
        if line.startswith("qstr pool:") and "n_total_bytes=" in line:
            fields = dict(f.strip().split("=") for f in line.split(":", 1)[1].split(","))
            found.append((int(fields["n_qstr"]), int(fields["n_total_bytes"])))
    return found


def qstr_pool_bytes(output: str) -> int | None:
    """n_total_bytes from the last `micropython.qstr_info()` line the board printed: the heap
    its pools of interned names (qstrs) take."""
    found = qstr_lines(output)
    return found[-1][1] if found else None
