"""VirtualBoard: the unmodified firmware on the MicroPython unix port, supervised like a board.

    with VirtualBoard(broker=(broker.host, broker.port)) as board:
        board.wait_for(r"mqtt: connected to", 20)
        mark = len(board.console)
        board.wifi_drop()
        board.wait_for(r"wifi: joined", 20, since=mark)   # a line after the drop

The board process runs tools/vboard/bsp/launch.py, which runs the board's boot.py and main.py
with the board support (bsp/) in front of the port's own modules. The supervisor:
- captures the process's stdout+stderr as console lines (optionally echoed live);
- restarts the process when the firmware calls machine.reset() (it exits with RESET_EXIT) or
  when an armed watchdog goes unfed (the bsp reports WDT arm/feed as UDP datagrams; the
  supervisor kills the process when the time is up), telling the new process why it started;
- starts it again at once after a soft reset (it exits with SOFT_EXIT or SOFT_EXIT + 1);
- sets the switches the bsp reads (tools/vboard/switches.py) for the simulated Wi-Fi and board;
- with `serial`, is the board's USB serial port (tools/vboard/serialport.py): a pty whose slave
  a symlink at `serial` names, there from start() to stop() whatever resets the board goes
  through; Ctrl-C from the port interrupts running code (SIGINT), as a board's UART does.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from firmware import ident
from tools.started import Started
from tools.vboard import bspcode, layout
from tools.vboard.serialport import SerialPort
from tools.vboard.switches import Switches, check_air

MICROPYTHON = layout.ROOT / ".venv" / "bin" / "micropython"
LAUNCHER = Path(__file__).resolve().parent / "bsp" / "launch.py"
RESET_EXIT = 86  # the exit code of machine.reset() in the bsp (passed to it as VBOARD_RESET_EXIT)
SOFT_EXIT = 87  # a soft reset's exit code (+1: into the raw REPL), passed as VBOARD_SOFT_EXIT
POLL_S = 0.05  # how often the supervisor looks at the process and the watchdog's deadline
STOP_TIMEOUT_S = 3.0
TAIL_LINES = 40
# One Ctrl-C from the serial port, one SIGINT: further ones within this time are dropped, since
# a second SIGINT before the board has handled the first ends the unix port's process.
SIGINT_GAP_S = 0.25
CTRL_C = 0x03
_ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")  # VT100 sequences (line editing)
RAW_PASTE_REPLY = b"R\x01\x80\x00\x01"  # the board's yes to raw-paste mode, window 128: binary
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# The firmware's line when its setup page is up; the supervisor then says where the host finds it.
PORTAL_UP = re.compile(r"^setup: setup page at http://")

_running: set[VirtualBoard] = set()
PLATFORMS = {name: platform for platform, (name, _) in ident.BOARDS.items()}  # -> sys.platform
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when the thread that forked it ends


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that has the kernel SIGKILL the child when the thread that started it ends,
    so a board never outlives its supervisor however the supervisor dies (kill -9 included) and
    never fights a new board for its client id. Linux only (None elsewhere). The thread, not the
    process: the supervisor starts every board process from its monitor thread, which outlives
    each of them."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in the child
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return preexec


def board_env(
    board: str,
    uid: str,
    fs: Path,
    frozen: Path | None,
    control: Path,
    *,
    ussl: bool = layout.has_ussl(None),
    cause: str = "pwron",
    supervisor_port: int | None = None,
    boot: int = 0,
    events: str = "{}",
    serial: bool = False,
    soft: bool = False,
    repl: str = "friendly",
    portal: tuple[int, int] | None = None,
) -> dict[str, str]:
    """The environment bsp/launch.py runs in: who the board is, why it started, where things are.

    cause: pwron, reset or wdt (what machine.reset_cause() reports); supervisor_port: the UDP
    port for watchdog datagrams (None: nobody listens); boot: the start's number, which those
    datagrams carry; events: the switches' event counts already acted on (JSON). serial: stdin
    and stdout are the serial port (the REPL runs on them, the filesystem is mounted at /);
    soft: this start is a soft reset (cause stays the last hardware reset's); repl: the REPL
    mode the start is in, friendly (boot.py, main.py, then the REPL) or raw (main.py skipped).
    ussl: the board has `ussl`, as MicroPython 1.22 (with umqtt.simple 1.3.4) has; by default,
    as a board with the package index's umqtt.simple (1.3.4) does.
    portal: the 127.0.0.1 ports (HTTP, DNS) where the setup portal's 80 and 53 appear.
    """
    env = dict(os.environ)
    env.update(
        # No default module path: sys.path is the launcher's to set, and the port's default
        # (/usr/lib/micropython) would stay interned on the heap for the process's lifetime.
        MICROPYPATH="",
        VBOARD_BSP_DIR=str(bspcode.compiled()),
        VBOARD_BOARD=board,
        VBOARD_PLATFORM=PLATFORMS[board],
        VBOARD_UID=uid,
        VBOARD_CAUSE=cause,
        VBOARD_RESET_EXIT=str(RESET_EXIT),
        VBOARD_SOFT_EXIT=str(SOFT_EXIT),
        VBOARD_SOFT="1" if soft else "",
        VBOARD_SERIAL="1" if serial else "",
        VBOARD_REPL=repl,
        VBOARD_BOOT=str(boot),
        VBOARD_CONTROL=str(Path(control).resolve()),
        VBOARD_SUPERVISOR="" if supervisor_port is None else str(supervisor_port),
        VBOARD_EVENTS=events,
        VBOARD_FS=str(fs),
        VBOARD_FROZEN=str(frozen or ""),
        VBOARD_USSL="1" if ussl else "",
        VBOARD_PORTAL_HTTP=str(portal[0]) if portal else "",
        VBOARD_PORTAL_DNS=str(portal[1]) if portal else "",
    )
    return env


def free_port(kind: socket.SocketKind) -> int:
    """A port on 127.0.0.1 that nothing uses now (TCP or UDP), for the board to bind later."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VirtualBoard(Started):
    def __init__(
        self,
        fs: Path | None = None,
        board: str = "esp32",
        uid: str = "a1b2c3d4e5f6",
        broker: tuple[str, int] | None = None,
        heap: str | None = None,
        config: dict[str, Any] | None = None,
        secrets: dict[str, Any] | None = None,
        workdir: Path | None = None,
        *,
        echo: bool = False,
        prefix: bool = False,
        micropython: Path = MICROPYTHON,
        umqtt: str | None = None,
        serial: Path | None = None,
        files: dict[str, bytes] | None = None,
    ) -> None:
        """A board that is not yet powered; start() flashes it (when fs is None) and runs it.

        fs: a flashed board's filesystem, used as is; None lays one out in workdir/fs from
        the repo's firmware, `config` merged over layout.default_config(broker) and `secrets`
        over layout.DEFAULT_SECRETS. uid: machine.unique_id() in hex. heap: the MicroPython
        heap size (`-X heapsize=`, e.g. "200k"). echo: copy console lines to stdout as they
        come, prefixed with "[<device id>] " when prefix is set. serial: where the board's
        serial port appears (a symlink to a pty) from start() to stop(): the REPL runs on it,
        mpremote talks to it, and the board's filesystem is mounted at / (see
        tools/vboard/bsp/_repl.py); the console lines are then what the port carries.
        umqtt: the umqtt.simple version the board has (layout.UMQTT_VERSIONS, from ../shared),
        frozen on the ESP32 and in /lib on the Pico W; None: the package index's 1.3.4.
        files: more files for the laid-out filesystem's root (name: bytes), e.g. a CA file.
        """
        if board not in layout.BOARDS:
            raise ValueError(f"vboard: board must be one of {', '.join(layout.BOARDS)}")
        try:
            if len(bytes.fromhex(uid)) < 3:
                raise ValueError
        except ValueError:
            raise ValueError(f"vboard: uid must be hex digits, 3 bytes or more: {uid!r}") from None
        if not micropython.exists():
            raise FileNotFoundError(f"vboard: {micropython} is missing: run `make setup`")
        self.board = board
        self.uid = uid.lower()
        self.heap = heap
        self.echo = echo
        self.prefix = prefix
        self.micropython = micropython
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="vboard-")
            workdir = Path(self._tmp.name)
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        # What start() flashes when fs was not given (None: the board's filesystem is given).
        self._layout_config: dict[str, Any] | None = None
        self._layout_secrets = layout.merge(layout.DEFAULT_SECRETS, secrets or {})
        self._flashed = False
        self._files = files
        if fs is None:
            self.fs = workdir / "fs"
            self._layout_config = layout.merge(layout.default_config(broker), config or {})
        else:
            self.fs = fs.resolve()
        umqtt_dir = layout.umqtt_dir(umqtt)
        self.umqtt = umqtt
        self._frozen = layout.frozen_dir(board, umqtt_dir)
        self._umqtt_dir = umqtt_dir
        self.switches = Switches(workdir / "control.json", layout.DEFAULT_AIR)
        # The setup portal's ports on 127.0.0.1 (HTTP, DNS): the same for every start, so a page
        # open in a browser keeps working across the board's resets.
        self.portal_ports = (free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM))
        self.serial = None if serial is None else Path(serial).absolute()
        self._port: SerialPort | None = None

        self._cond = threading.Condition()  # guards everything below; notified on console lines
        self._lines: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._spawn_failed: BaseException | None = None
        self._reader: threading.Thread | None = None
        self._monitor: threading.Thread | None = None
        self._udp: socket.socket | None = None
        self._stopping = False
        self._boot = 0
        self._wdt_timeout: float | None = None
        self._wdt_deadline: float | None = None
        self._restarts = 0
        self._soft_resets = 0
        self._cause = "pwron"  # the last hardware reset's cause; a soft reset keeps it
        self._head = ""  # the echo's prefix
        # With a serial port: the board process's stdin (a pipe, non-blocking at both ends),
        # whether a Ctrl-C from the port interrupts (the board says so), when the last SIGINT
        # went, and the console's unfinished line.
        self._stdin_fd: int | None = None
        self._intr = False
        self._sigint_at = 0.0
        self._partial = b""

    # -- what the board is --------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The board's config.json as flashed (or to be flashed); {} when it has none."""
        if self._layout_config is not None:
            return self._layout_config
        try:
            found = json.loads((self.fs / "config.json").read_text())
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    @property
    def device_id(self) -> str:
        """The id in the board's topics, by the firmware's own rule (firmware/ident.py)."""
        return ident.device_id(self.board, bytes.fromhex(self.uid), self.config().get("device_id"))

    def topic(self, name: str) -> str:
        """<base>/<id>/<name>, e.g. topic("readings")."""
        base = self.config().get("base_topic") or "sensornode"
        return f"{base}/{self.device_id}/{name}"

    @property
    def portal_url(self) -> str:
        """Where the host reaches the setup page while the board's access point is up."""
        return f"http://127.0.0.1:{self.portal_ports[0]}/"

    @property
    def dns_address(self) -> tuple[str, int]:
        """Where the host reaches the setup access point's DNS responder (UDP)."""
        return ("127.0.0.1", self.portal_ports[1])

    @property
    def console(self) -> list[str]:
        """Every console line so far, across restarts (a copy)."""
        with self._cond:
            return list(self._lines)

    @property
    def restarts(self) -> int:
        """How many times a reset (machine.reset or the watchdog) restarted the board."""
        with self._cond:
            return self._restarts

    @property
    def soft_resets(self) -> int:
        """How many soft resets (Ctrl-D, machine.soft_reset, sys.exit at the REPL) there were."""
        with self._cond:
            return self._soft_resets

    @property
    def serial_device(self) -> str | None:
        """The pty behind the serial port's symlink (e.g. /dev/pts/3) while the port exists."""
        port = self._port
        return port.device if port is not None else None

    @property
    def pid(self) -> int | None:
        """The board process's pid while it runs."""
        with self._cond:
            proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    # -- power --------------------------------------------------------------------------------

    def start(self) -> None:
        """Power on: flash on the first start when fs was not given, then run the board."""
        if self._monitor is not None and self._monitor.is_alive():
            return
        self.stop()  # tidies up after a board whose process ended on its own
        if self._layout_config is not None and not self._flashed:
            # Once only: later starts are the same board powering up again, files and all.
            layout.flash(
                self.fs,
                self.board,
                self._layout_config,
                self._layout_secrets,
                self._umqtt_dir,
                self._files,
            )
            self._flashed = True
        self._head = f"[{self.device_id}] " if self.prefix else ""
        _running.add(self)  # from here on, the supervisor's exit stops the board
        if self.serial is not None:
            port = SerialPort(self.serial, self._from_port)
            port.open()
            self._port = port
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(POLL_S)
        with self._cond:
            self._udp = udp
            self._stopping = False
            self._proc = None
            self._spawn_failed = None
        # The monitor thread starts the process (and every restart): the kernel ties the
        # process's life to that thread's (die_with_parent), and it runs until the board stops.
        self._monitor = threading.Thread(target=self._supervise, name="vboard", daemon=True)
        self._monitor.start()
        with self._cond:
            self._cond.wait_for(lambda: self._proc is not None or self._spawn_failed is not None)
            failed = self._spawn_failed
        if failed is not None:
            self.stop()
            raise failed

    def stop(self) -> None:
        """Power off: SIGTERM, then SIGKILL after 3 s; no process is left and none restarts."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """A power cut: SIGKILL at once, no goodbye from the firmware, no restart."""
        if self.running:
            self._say("vboard: power cut")
        self._end(signal.SIGKILL)

    def interrupt(self) -> None:
        """Ctrl-C on the board's console (KeyboardInterrupt), e.g. in boot.py's safe-mode window."""
        with self._cond:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)

    def _end(self, sig: signal.Signals) -> None:
        with self._cond:
            self._stopping = True
            proc, monitor = self._proc, self._monitor
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        port, self._port = self._port, None
        if port is not None:
            # Unplugged: the host sees the port go, and the board's last output is not held up
            # by a host that has it open but does not read (it still reaches the console).
            port.close()
        if monitor is not None:
            monitor.join()
        with self._cond:
            reader, udp = self._reader, self._udp
            self._monitor = self._udp = None
        if reader is not None:
            reader.join()
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()
        if udp is not None:
            udp.close()
        self._close_stdin()
        _running.discard(self)

    def release(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- the console --------------------------------------------------------------------------

    def wait_for(self, pattern: str, timeout: float = 10.0, *, since: int = 0) -> re.Match[str]:
        """The first console line from index `since` on matching the regex `pattern`.

        Raises TimeoutError, with the console's last lines, when none comes within `timeout` s.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            i = since
            while True:
                while i < len(self._lines):
                    found = regex.search(self._lines[i])
                    i += 1
                    if found:
                        return found
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = "\n".join(self._lines[-TAIL_LINES:])
                    raise TimeoutError(
                        f"vboard: no console line matched {pattern!r} within {timeout} s; "
                        f"the last lines:\n{tail}"
                    )
                self._cond.wait(left)

    def _say(self, line: str) -> None:
        with self._cond:
            self._lines.append(line)
            self._cond.notify_all()
            if self.echo:
                print(self._head + line, flush=True)
        if PORTAL_UP.match(line):
            self._say(f"setup: portal at {self.portal_url} (DNS on udp {self.dns_address[1]})")

    def _read_console(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in stream:
                self._say(raw.decode(errors="replace").rstrip("\r\n"))

    # -- the serial port ----------------------------------------------------------------------

    def _read_serial(self, stream: IO[bytes], port: SerialPort) -> None:
        # The board's output, as it comes (a prompt has no newline): to the port, and as lines
        # to the console.
        fd = stream.fileno()
        with stream:
            while True:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                port.write(data)
                self._tee(data)
        if self._partial:
            self._tee(b"\n")  # the process is gone: its unfinished line is as finished as it gets

    def _tee(self, data: bytes) -> None:
        # Console lines from the serial stream: CRs, VT100 editing and control bytes (the raw
        # REPL's 0x04 markers, 0x01 credits) left out; a line is kept until its newline comes.
        data = data.replace(RAW_PASTE_REPLY, b"")
        *lines, self._partial = (self._partial + data).split(b"\n")
        for raw in lines:
            text = _ESCAPES.sub("", raw.decode(errors="replace"))
            self._say(_CONTROLS.sub("", text))

    def _from_port(self, data: bytes) -> None:
        # What the host sent to the port (the port's thread). While the board runs code, Ctrl-C
        # becomes SIGINT and the byte is consumed, as a board's UART interrupt does; otherwise it
        # reaches the REPL like any byte. Bytes the board has no room for, or that arrive while
        # it restarts, are lost, as on a board.
        with self._cond:
            proc, fd = self._proc, self._stdin_fd
            if proc is None or fd is None or proc.poll() is not None:
                return
            if not self._intr or CTRL_C not in data:
                _write_some(fd, data)
                return
            for chunk in data.split(bytes((CTRL_C,)))[:-1]:
                _write_some(fd, chunk)
                now = time.monotonic()
                if now - self._sigint_at >= SIGINT_GAP_S:
                    self._sigint_at = now
                    proc.send_signal(signal.SIGINT)
            _write_some(fd, data.rsplit(bytes((CTRL_C,)), 1)[1])

    def _close_stdin(self) -> None:
        with self._cond:
            fd, self._stdin_fd = self._stdin_fd, None
        if fd is not None:
            os.close(fd)

    # -- the switches -------------------------------------------------------------------------

    def set_air(self, networks: list[dict[str, Any]]) -> None:
        """The networks in range: dicts with ssid and optionally password ("" open), rssi,
        channel, hidden. A joined network that leaves the air takes the link down."""
        self.switches.set(air=check_air(networks))

    def wifi_drop(self) -> None:
        """The current Wi-Fi link goes down once; the next join may succeed."""
        self.switches.count("drop")

    def wifi_fail(self, on: bool = True) -> None:
        """While on, every Wi-Fi join fails (status STAT_CONNECT_FAIL)."""
        self.switches.set(fail=on)

    def wifi_delay(self, ms: int) -> None:
        """How long a Wi-Fi join takes before it succeeds or fails."""
        self.switches.set(delay_ms=int(ms))

    def stall(self) -> None:
        """The firmware's next call into the Wi-Fi driver never returns (until a reset)."""
        self.switches.count("stall")

    def button(self, held: bool = True) -> None:
        """Hold (or release) the BOOT button (ESP32 GPIO0) / BOOTSEL (Pico W)."""
        self.switches.set(button=held)

    def ntp_fail(self, on: bool = True) -> None:
        """While on, NTP queries time out."""
        self.switches.set(ntp_fail=on)

    def wire_sensors(self, on: bool = True) -> None:
        """Sensors answer: a DHT on any pin, a DS18B20 on any 1-Wire pin, a BME280 at 0x76."""
        self.switches.set(wired=on)

    def room(self, celsius: float, humidity: float) -> None:
        """What the wired DHT and DS18B20 measure."""
        self.switches.set(room_c=float(celsius), room_rh=float(humidity))

    def chip_temperature(self, celsius: float) -> None:
        """What the chip's own temperature sensor reads."""
        self.switches.set(mcu_c=float(celsius))

    # -- supervision --------------------------------------------------------------------------

    def _spawn(self, cause: str, *, soft: bool = False, repl: str = "friendly") -> None:
        # Called with self._cond held. cause: pwron, reset or wdt (machine.reset_cause()); soft:
        # a soft reset, which keeps the cause and the watchdog (a board's WDT runs on through
        # it); repl: the REPL mode the board is in after it.
        self._boot += 1
        if not soft:
            self._cause = cause
            self._wdt_timeout = self._wdt_deadline = None
        self._intr = False  # until the board says Ctrl-C may interrupt
        assert self._udp is not None
        env = board_env(
            self.board,
            self.uid,
            self.fs,
            self._frozen,
            self.switches.path,
            ussl=layout.has_ussl(self.umqtt),
            cause=self._cause,
            supervisor_port=self._udp.getsockname()[1],
            boot=self._boot,
            events=self.switches.events_seen(),
            serial=self._port is not None,
            soft=soft,
            repl=repl,
            portal=self.portal_ports,
        )
        cmd = [str(self.micropython)]
        if self.heap:
            cmd += ["-X", f"heapsize={self.heap}"]
        cmd.append(str(LAUNCHER))
        stdin: int = subprocess.PIPE
        if self._port is not None:
            # The board reads what has arrived and polls for more (bsp/_repl.py); the supervisor
            # never waits for room, it drops (see _from_port).
            stdin, self._stdin_fd = os.pipe()
            os.set_blocking(stdin, False)
            os.set_blocking(self._stdin_fd, False)
        # Its own session: a Ctrl-C at the terminal reaches the supervisor, which stops the board.
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=self.fs,
                env=env,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        finally:
            if self._port is not None:
                os.close(stdin)
        assert proc.stdout is not None
        self._proc = proc
        if self._port is not None:
            target: Any = self._read_serial
            args: tuple[Any, ...] = (proc.stdout, self._port)
        else:
            target, args = self._read_console, (proc.stdout,)
        self._reader = threading.Thread(
            target=target, args=args, name="vboard-console", daemon=True
        )
        self._reader.start()

    def _supervise(self) -> None:
        with self._cond:
            try:
                self._spawn("pwron")
            except BaseException as e:  # start() raises it in the caller's thread
                self._spawn_failed = e
                return
            finally:
                self._cond.notify_all()
        while True:
            self._receive()
            with self._cond:
                if self._stopping:
                    return
                proc, reader, deadline = self._proc, self._reader, self._wdt_deadline
            assert proc is not None and reader is not None
            code = proc.poll()
            if code is None and deadline is not None and time.monotonic() >= deadline:
                proc.kill()
                code = proc.wait()
                why = "watchdog"
            elif code == RESET_EXIT:
                why = "machine.reset"
            elif code in (SOFT_EXIT, SOFT_EXIT + 1):
                why = "soft"
            elif code is not None:
                why = ""
            else:
                continue
            reader.join()  # the old process's last words go before the supervisor's
            if proc.stdin is not None:
                proc.stdin.close()
            self._close_stdin()
            with self._cond:
                if self._stopping:
                    return
                if not why:
                    self._say(f"vboard: the board process ended (exit code {code}); not restarting")
                    return
                if why == "soft":  # the board said "MPY: soft reboot" itself
                    self._soft_resets += 1
                    repl = "raw" if code == SOFT_EXIT + 1 else "friendly"
                    self._spawn(self._cause, soft=True, repl=repl)
                    continue
                self._say(f"vboard: reset ({why})")
                self._restarts += 1
                self._spawn("wdt" if why == "watchdog" else "reset")

    def _receive(self) -> None:
        # One datagram, or a POLL_S timeout: watchdog "<boot> arm <ms>" or "<boot> feed"; serial
        # port "<boot> intr 1" (code runs: Ctrl-C interrupts) or "<boot> intr 0" (the REPL reads).
        udp = self._udp
        if udp is None:
            return
        try:
            words = udp.recv(64).decode(errors="replace").split()
        except OSError:  # a timeout, or the socket closed by stop()
            return
        with self._cond:
            if len(words) < 2 or words[0] != str(self._boot):
                return  # from a process that is gone
            if words[1] == "intr" and len(words) == 3:
                self._intr = words[2] == "1"
                return
            if words[1] == "arm" and len(words) == 3:
                self._wdt_timeout = int(words[2]) / 1000
            if self._wdt_timeout is not None:
                self._wdt_deadline = time.monotonic() + self._wdt_timeout


def _write_some(fd: int, data: bytes) -> None:
    # Into the board's non-blocking stdin: what does not fit is lost, as in a full UART buffer.
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:  # BlockingIOError (full), or the board has gone
        pass


@atexit.register
def _stop_all() -> None:
    for board in list(_running):
        board.stop()
