"""The virtual board's serial port: a pty that behaves like a board's USB serial, so that the
real mpremote (and a terminal) work against it as against a board.

Each test runs a VirtualBoard with `serial=` on a small filesystem of its own and talks to it
with .venv/bin/mpremote as a subprocess, or opens the pty itself as a terminal program would.
Skipped when .venv/bin/micropython, .venv/bin/mpremote or umqtt.simple (build/umqtt) is missing.
Timeouts are generous and only there to turn a hang into a failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import termios
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tools.vboard import VirtualBoard, layout
from tools.vboard.serialport import make_raw
from tools.vboard.supervisor import MICROPYTHON

MPREMOTE = layout.ROOT / ".venv" / "bin" / "mpremote"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not MICROPYTHON.exists(), reason="no .venv/bin/micropython (make setup)"),
    pytest.mark.skipif(not MPREMOTE.exists(), reason="no .venv/bin/mpremote (make setup)"),
    pytest.mark.skipif(
        not (layout.UMQTT_DIR / "umqtt" / "simple.py").exists(),
        reason="no build/umqtt (python -m tools.fetch_umqtt --out build/umqtt)",
    ),
]

BOOT_S = 30  # the longest anything on a board may take before a test gives up
BANNER = b'Type "help()" for more information.\r\n'
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
LOOPING_MAIN = """\
    import time
    n = 0
    while True:
        n += 1
        print("tick", n)
        time.sleep_ms(50)
"""

Boards = Callable[..., VirtualBoard]


@pytest.fixture
def boards(tmp_path: Path) -> Iterator[Boards]:
    """make(files={"main.py": ...}, board="esp32"): a started board with its serial port."""
    started: list[VirtualBoard] = []

    def make(files: dict[str, str] | None = None, board: str = "esp32") -> VirtualBoard:
        n = len(started)
        fs = tmp_path / f"fs{n}"
        fs.mkdir()
        for name, text in (files or {}).items():
            (fs / name).parent.mkdir(parents=True, exist_ok=True)
            (fs / name).write_text(textwrap.dedent(text))
        vb = VirtualBoard(
            fs=fs, board=board, serial=tmp_path / f"ttyVB{n}", workdir=tmp_path / f"work{n}"
        )
        started.append(vb)
        vb.start()
        return vb

    yield make
    for vb in started:
        vb.stop()


def mpremote(vb: VirtualBoard, *args: str, cwd: Path | None = None) -> str:
    """`mpremote connect <port> args...`; its stdout, after checking it succeeded."""
    done = subprocess.run(
        [str(MPREMOTE), "connect", str(vb.serial), *args],
        capture_output=True,
        text=True,
        timeout=BOOT_S,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stdout + done.stderr + "\n".join(vb.console[-20:])
    return done.stdout


def eventually(condition: Callable[[], bool], timeout: float = BOOT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.02)


class Terminal:
    """A terminal's end of a pty (fd, non-blocking): sends keys, expects output."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.got = b""

    @classmethod
    def on_port(cls, path: Path) -> Terminal:
        """The host's end of the serial port, opened raw as a terminal program opens it."""
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        make_raw(fd)
        return cls(fd)

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def expect(self, wanted: bytes, timeout: float = BOOT_S) -> bytes:
        """Everything up to and including `wanted`, which must come within `timeout` s."""
        deadline = time.monotonic() + timeout
        while wanted not in self.got:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {wanted!r} from the port; got {self.got[-400:]!r}")
            select.select([self.fd], [], [], left)
            with contextlib.suppress(BlockingIOError):
                self.got += os.read(self.fd, 4096)
        end = self.got.index(wanted) + len(wanted)
        seen, self.got = self.got[:end], self.got[end:]
        return seen

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def terminals() -> Iterator[Callable[[VirtualBoard], Terminal]]:
    opened: list[Terminal] = []

    def open_on(vb: VirtualBoard) -> Terminal:
        assert vb.serial is not None
        opened.append(Terminal.on_port(vb.serial))
        return opened[-1]

    yield open_on
    for term in opened:
        term.close()


# -- mpremote -----------------------------------------------------------------------------------


def test_the_port_is_a_symlink_to_a_pty_that_goes_with_the_board(boards: Boards) -> None:
    vb = boards()
    assert vb.serial is not None and vb.serial.is_symlink()
    assert os.readlink(vb.serial) == vb.serial_device
    assert str(vb.serial_device).startswith("/dev/pts/")
    vb.stop()
    assert not vb.serial.is_symlink()


def test_mpremote_exec_runs_code_on_the_board(boards: Boards) -> None:
    vb = boards()
    assert mpremote(vb, "exec", "print(1+1)") == "2\n"


def test_exec_errors_come_back_as_a_board_prints_them(boards: Boards) -> None:
    vb = boards()
    done = subprocess.run(
        [str(MPREMOTE), "connect", str(vb.serial), "exec", "x = 1\ny = missing"],
        capture_output=True,
        text=True,
        timeout=BOOT_S,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "Traceback (most recent call last):",
        '  File "<stdin>", line 2, in <module>',
        "NameError: name 'missing' isn't defined",
    ]


@pytest.mark.parametrize(("board", "platform"), [("esp32", "esp32"), ("picow", "rp2")])
def test_sys_platform_over_the_port_is_the_boards(
    boards: Boards, board: str, platform: str
) -> None:
    vb = boards(board=board)
    out = mpremote(vb, "exec", "import sys, os; print(sys.platform, os.getcwd(), sys.path)")
    assert out == f"{platform} / ['', '.frozen', '/lib']\n"


def test_a_binary_file_copied_with_mpremote_arrives_byte_exact(
    boards: Boards, tmp_path: Path
) -> None:
    vb = boards()
    data = bytes(range(256)) * 24 + hashlib.sha256(b"x").digest()  # every byte value, 6 KB
    local = tmp_path / "blob.mpy"
    local.write_bytes(data)
    mpremote(vb, "fs", "cp", str(local), ":blob.mpy")
    assert (vb.fs / "blob.mpy").read_bytes() == data
    out = mpremote(vb, "fs", "sha256sum", ":blob.mpy")
    assert out.splitlines()[-1] == hashlib.sha256(data).hexdigest()
    mpremote(vb, "fs", "cp", ":blob.mpy", str(tmp_path / "back.mpy"))
    assert (tmp_path / "back.mpy").read_bytes() == data
    assert f"{len(data):12} blob.mpy" in mpremote(vb, "fs", "ls").splitlines()


def test_cp_skips_a_file_the_board_already_has(boards: Boards, tmp_path: Path) -> None:
    vb = boards()
    local = tmp_path / "config.json"
    local.write_text('{"interval_s": 5}\n')
    assert "Up to date" not in mpremote(vb, "fs", "cp", str(local), ":config.json")
    assert "Up to date: config.json" in mpremote(vb, "fs", "cp", str(local), ":config.json")


def test_fs_commands_work_on_the_boards_filesystem_mounted_at_root(
    boards: Boards, tmp_path: Path
) -> None:
    vb = boards()
    tree = tmp_path / "firmware"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.py").write_text("A = 1\n")
    (tree / "sub" / "b.py").write_text("B = 2\n")
    mpremote(vb, "fs", "mkdir", ":lib", "+", "fs", "cp", "-r", str(tree), ":/")
    mpremote(vb, "fs", "cp", str(tree / "a.py"), ":/lib/a.py")
    assert (vb.fs / "firmware" / "sub" / "b.py").read_text() == "B = 2\n"
    assert (vb.fs / "lib" / "a.py").read_text() == "A = 1\n"
    listing = mpremote(vb, "fs", "ls", ":/").splitlines()
    assert listing[0] == "ls :/"
    assert sorted(line.split()[-1] for line in listing[1:]) == ["firmware/", "lib/"]
    mpremote(vb, "fs", "rm", "-r", ":firmware", "+", "fs", "rm", ":/lib/a.py")
    assert sorted(p.name for p in vb.fs.iterdir()) == ["lib"]
    assert not list((vb.fs / "lib").iterdir())


def test_mip_install_copies_a_package_into_lib(boards: Boards, tmp_path: Path) -> None:
    vb = boards(board="picow")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "hello.py").write_text("GREETING = 'hi'\n")
    (pkg / "package.json").write_text(json.dumps({"urls": [["hello.py", "hello.py"]]}))
    out = mpremote(vb, "mip", "install", str(pkg / "package.json"))
    assert "Installing: /lib/hello.py" in out
    assert (vb.fs / "lib" / "hello.py").read_text() == "GREETING = 'hi'\n"
    assert mpremote(vb, "exec", "import hello; print(hello.GREETING)") == "hi\n"


def test_ctrl_c_interrupts_a_running_main_py_and_mpremote_can_then_exec(boards: Boards) -> None:
    vb = boards({"main.py": LOOPING_MAIN})
    vb.wait_for(r"^tick 3$", BOOT_S)
    assert mpremote(vb, "exec", "print('at the repl')") == "at the repl\n"
    vb.wait_for(r"^KeyboardInterrupt: $", BOOT_S)
    assert vb.running and vb.restarts == 0


def test_kbd_intr_off_keeps_ctrl_c_from_interrupting(
    boards: Boards, terminals: Callable[[VirtualBoard], Terminal]
) -> None:
    main = """\
        import micropython, time
        micropython.kbd_intr(-1)
        for i in range(20):
            print("tick", i)
            time.sleep_ms(50)
        print("done")
    """
    vb = boards({"main.py": main})
    term = terminals(vb)
    vb.wait_for(r"^tick 2$", BOOT_S)
    term.send(b"\x03")  # a byte like any other now: main.py carries on
    vb.wait_for(r"^done$", BOOT_S)
    assert vb.running and not any("KeyboardInterrupt" in line for line in vb.console)


def test_a_board_that_prints_with_nobody_on_the_port_is_not_held_up(boards: Boards) -> None:
    main = "for i in range(2000):\n    print('line', i, 'x' * 60)\nprint('done')\n"
    vb = boards({"main.py": main})
    vb.wait_for(r"^done$", BOOT_S)


def test_a_host_that_opens_the_port_but_never_reads_neither_stops_nor_delays_a_stop(
    boards: Boards, terminals: Callable[[VirtualBoard], Terminal]
) -> None:
    main = "n = 0\nwhile True:\n    n += 1\n    print('line', n, 'x' * 60)\n"
    vb = boards({"main.py": main})
    terminals(vb)  # open, never read: the pty's buffer fills, the board waits once, then drops
    vb.wait_for(r"^line 20000 ", BOOT_S)
    started = time.monotonic()
    vb.stop()
    assert time.monotonic() - started < 5


# -- resets -------------------------------------------------------------------------------------

BOOT_AND_MAIN = {
    "boot.py": "import machine\nprint('boot ran, cause', machine.reset_cause())\n",
    "main.py": "print('main ran')\n",
}


def test_ctrl_d_at_the_prompt_soft_resets_and_reruns_boot_and_main(
    boards: Boards, terminals: Callable[[VirtualBoard], Terminal]
) -> None:
    vb = boards(BOOT_AND_MAIN)
    vb.wait_for(r"^main ran$", BOOT_S)
    term = terminals(vb)
    term.send(b"\r")
    term.expect(b">>> ")
    mark = len(vb.console)
    term.send(b"\x04")
    seen = term.expect(BANNER + b">>> ")
    assert b"\r\nMPY: soft reboot\r\nboot ran, cause 5\r\nmain ran\r\nMicroPython " in seen
    vb.wait_for(r"^MPY: soft reboot$", BOOT_S, since=mark)
    vb.wait_for(r"^boot ran, cause 5$", BOOT_S, since=mark)  # machine.SOFT_RESET on the ESP32
    vb.wait_for(r"^main ran$", BOOT_S, since=mark)
    assert vb.soft_resets == 1 and vb.restarts == 0


def test_a_picow_soft_reset_keeps_the_hardware_reset_cause(
    boards: Boards, terminals: Callable[[VirtualBoard], Terminal]
) -> None:
    vb = boards(BOOT_AND_MAIN, board="picow")
    vb.wait_for(r"^main ran$", BOOT_S)
    term = terminals(vb)
    term.send(b"\x04")
    term.expect(b"MPY: soft reboot\r\nboot ran, cause 1\r\nmain ran\r\n")


def test_mpremote_soft_reset_reruns_boot_py_and_leaves_main_py_for_a_reset(
    boards: Boards,
) -> None:
    vb = boards(BOOT_AND_MAIN)
    vb.wait_for(r"^main ran$", BOOT_S)
    mark = len(vb.console)
    mpremote(vb, "soft-reset")
    vb.wait_for(r"^MPY: soft reboot$", BOOT_S, since=mark)
    vb.wait_for(r"^boot ran, cause 5$", BOOT_S, since=mark)
    # As on a board: a soft reset into the raw REPL does not run main.py; mpremote leaves
    # with Ctrl-B, and the friendly REPL's banner follows.
    vb.wait_for(r"^Type \"help\(\)\" for more information\.$", BOOT_S, since=mark)
    assert not any(line == "main ran" for line in vb.console[mark:])


def test_mpremote_reset_restarts_the_board_on_the_same_port(boards: Boards) -> None:
    vb = boards(BOOT_AND_MAIN)
    vb.wait_for(r"^main ran$", BOOT_S)
    device = vb.serial_device
    mark = len(vb.console)
    mpremote(vb, "reset")
    vb.wait_for(r"^vboard: reset \(machine\.reset\)$", BOOT_S, since=mark)
    vb.wait_for(r"^main ran$", BOOT_S, since=mark)
    assert vb.restarts == 1
    assert vb.serial_device == device and os.readlink(str(vb.serial)) == device
    assert mpremote(vb, "exec", "print('back')") == "back\n"


def test_sys_exit_at_the_repl_is_a_soft_reset(boards: Boards) -> None:
    vb = boards(BOOT_AND_MAIN)
    vb.wait_for(r"^main ran$", BOOT_S)
    mpremote(vb, "exec", "import sys; sys.exit()")  # after mpremote's own soft reset
    eventually(lambda: vb.soft_resets == 2)
    second = [i for i, line in enumerate(vb.console) if line.endswith("MPY: soft reboot")][1]
    vb.wait_for(r"^boot ran, cause 5$", BOOT_S, since=second)
    assert vb.restarts == 0 and vb.running


def test_a_watchdog_armed_before_a_soft_reset_still_resets_the_board(boards: Boards) -> None:
    main = """\
        import machine, time
        print("cause", machine.reset_cause())
        if machine.reset_cause() == machine.PWRON_RESET:
            wdt = machine.WDT(timeout=800)
            while True:
                wdt.feed()
                time.sleep_ms(50)
    """
    vb = boards({"main.py": main})
    vb.wait_for(r"^cause 1$", BOOT_S)
    mpremote(vb, "soft-reset")  # main.py does not run in the raw REPL: nothing feeds the WDT
    vb.wait_for(r"^vboard: reset \(watchdog\)$", BOOT_S)
    vb.wait_for(r"^cause 3$", BOOT_S)


# -- the REPL as a terminal sees it -------------------------------------------------------------


def test_an_empty_filesystem_is_an_erased_board_at_the_repl(
    boards: Boards, terminals: Callable[[VirtualBoard], Terminal]
) -> None:
    vb = boards()
    vb.wait_for(r"^MicroPython .*; Generic ESP32 module with ESP32$", BOOT_S)
    term = terminals(vb)
    term.send(b"\x02")  # Ctrl-B: the banner again
    term.expect(b"; Generic ESP32 module with ESP32\r\n" + BANNER + b">>> ")
    assert mpremote(vb, "fs", "ls").splitlines() == ["ls :"]


def test_the_friendly_repl_answers_an_expression(
    boards: Boards, terminals: Callable[[VirtualBoard], Terminal]
) -> None:
    vb = boards(board="picow")
    term = terminals(vb)
    term.send(b"1+1\r")
    assert term.expect(b"2\r\n>>> ").endswith(b">>> 1+1\r\n2\r\n>>> ")


def test_mpremote_repl_is_the_friendly_repl(boards: Boards) -> None:
    vb = boards()
    # mpremote's repl wants a terminal of its own: it gets a pty, driven like a Terminal
    controller, tty = os.openpty()
    repl = subprocess.Popen(
        [str(MPREMOTE), "connect", str(vb.serial), "repl"], stdin=tty, stdout=tty, stderr=tty
    )
    os.close(tty)
    os.set_blocking(controller, False)
    user = Terminal(controller)
    try:
        user.expect(b"Use Ctrl-] or Ctrl-x to exit this shell\r\n")
        # mpremote prints that line before it puts its terminal in raw mode: keys sent earlier
        # are echoed by the pty itself and reach the board as "1+1\n", which is not Enter.
        eventually(lambda: not termios.tcgetattr(controller)[3] & termios.ECHO)
        user.send(b"1+1\r")
        assert user.expect(b"2\r\n>>> ").endswith(b"1+1\r\n2\r\n>>> ")
        user.send(b"\x1d")  # Ctrl-]: mpremote leaves
        assert repl.wait(BOOT_S) == 0
    finally:
        if repl.poll() is None:
            repl.kill()
            repl.wait()
        user.close()


def test_the_friendly_repl_continues_a_compound_statement(
    boards: Boards, terminals: Callable[[VirtualBoard], Terminal]
) -> None:
    vb = boards()
    term = terminals(vb)
    term.send(b"\r")
    term.expect(b">>> ")
    term.send(b"for i in range(2):\r")
    term.expect(b"...     ")  # auto-indent, as MicroPython's readline does
    term.send(b"print(i * 10)\r\r\r\r")
    assert term.expect(b">>> ").endswith(b"0\r\n10\r\n>>> ")


def test_raw_repl_and_raw_paste_speak_pyboard_protocol(
    boards: Boards, terminals: Callable[[VirtualBoard], Terminal]
) -> None:
    vb = boards()
    term = terminals(vb)
    term.send(b"\r\x03\r\x01")
    term.expect(RAW_BANNER)
    term.send(b"print('raw')\x04")
    assert term.expect(b">") == b"OKraw\r\n\x04\x04>"
    term.send(b"\x05A\x01")
    assert term.expect(b"R\x01", 5) == b"R\x01"
    assert term.expect(b"\x01", 5) == b"\x80\x00\x01"  # window 128, and a first credit
    code = b"x = '" + b"y" * 300 + b"'\nprint(len(x))\n"  # more than two windows
    sent = 256
    term.send(code[:sent])
    while sent < len(code):
        term.expect(b"\x01", 5)  # another window's worth may go
        term.send(code[sent : sent + 128])
        sent += 128
    term.send(b"\x04")
    assert term.expect(b">").endswith(b"\x04300\r\n\x04\x04>")
    term.send(b"\x02")
    term.expect(BANNER + b">>> ")


def test_ctrl_c_over_the_port_in_the_boot_window_gives_safe_mode(
    boards: Boards, terminals: Callable[[VirtualBoard], Terminal]
) -> None:
    vb = boards(
        {
            "boot.py": (layout.ROOT / "boot.py").read_text(),
            "main.py": (layout.ROOT / "main.py").read_text(),
        }
    )
    term = terminals(vb)
    term.expect(b"boot: Ctrl-C within")
    time.sleep(0.3)  # boot.py prints its prompt just before its `try:`
    term.send(b"\x03")
    term.expect(b"boot: safe mode")
    term.expect(BANNER + b">>> ")


# -- the command line ---------------------------------------------------------------------------


def test_cli_serial_gives_an_erased_board_a_port_until_ctrl_c(tmp_path: Path) -> None:
    port = tmp_path / "ttyVB"
    fs = tmp_path / "erased"
    cli = subprocess.Popen(
        [sys.executable, "-m", "tools.vboard", "--serial", str(port), "--fs", str(fs)],
        cwd=layout.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + BOOT_S
        while not port.is_symlink() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert port.is_symlink()
        done = subprocess.run(
            [str(MPREMOTE), "connect", str(port), "exec", "import sys; print(sys.platform)"],
            capture_output=True,
            text=True,
            timeout=BOOT_S,
        )
        assert done.stdout == "esp32\n", done.stdout + done.stderr
        cli.send_signal(signal.SIGINT)
        assert cli.wait(BOOT_S) == 0
        assert not port.is_symlink()
        assert fs.is_dir()
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
