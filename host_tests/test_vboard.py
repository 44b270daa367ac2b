"""The virtual board: its board support behaves like the boards' modules on the real MicroPython
unix port, and the unmodified firmware runs on it against a real broker.

The board-support tests run a short main.py through bsp/launch.py (stdin at EOF, so the process
ends at the "REPL"); the board tests run VirtualBoard with paho-mqtt as the subscriber. Skipped
when .venv/bin/micropython or umqtt.simple (build/umqtt) is missing. Timeouts are generous and
only there to turn a hang into a failure.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from host_tests.mqtt_helpers import VBOARD_MARKS, no_traceback
from tools.vboard import RESET_EXIT, VirtualBoard, layout
from tools.vboard.supervisor import LAUNCHER, MICROPYTHON, board_env
from tools.watcher import Watcher

pytestmark = VBOARD_MARKS

BOOT_S = 30  # the longest anything on a board may take before a test gives up
AIR = [{"ssid": "vboard-net", "password": "vboard-pass", "rssi": -55}]
UID = "a1b2c3d4e5f6"
ROOT = Path(__file__).resolve().parent.parent


# -- the board support, one short program at a time ------------------------------------------


def run_board(
    tmp_path: Path,
    main: str,
    *,
    board: str = "esp32",
    cause: str = "pwron",
    switches: dict[str, Any] | None = None,
    files: dict[str, str] | None = None,
    supervisor_port: int | None = None,
    events: str = "{}",
    ussl: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Runs main.py (and `files`) on a bare board filesystem through the launcher."""
    fs = tmp_path / "fs"
    fs.mkdir(exist_ok=True)
    (fs / "main.py").write_text(textwrap.dedent(main))
    for name, text in (files or {}).items():
        (fs / name).parent.mkdir(parents=True, exist_ok=True)
        (fs / name).write_text(textwrap.dedent(text))
    control = tmp_path / "control.json"
    control.write_text(json.dumps({"air": AIR, **(switches or {})}))
    env = board_env(
        board,
        UID,
        fs,
        layout.frozen_dir(board),
        control,
        cause=cause,
        supervisor_port=supervisor_port,
        events=events,
        ussl=ussl,
    )
    return subprocess.run(
        [str(MICROPYTHON), str(LAUNCHER)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BOOT_S,
    )


def says(tmp_path: Path, main: str, **kw: Any) -> list[str]:
    """The lines main.py printed; fails on a traceback."""
    done = run_board(tmp_path, main, **kw)
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    return out.splitlines()


@pytest.mark.parametrize(("board", "platform"), [("esp32", "esp32"), ("picow", "rp2")])
def test_boot_and_main_share_one_globals_dict_on_the_boards_platform(
    tmp_path: Path, board: str, platform: str
) -> None:
    lines = says(
        tmp_path,
        "import sys\nprint(sys.platform, SAFE_MODE)\n",
        board=board,
        files={"boot.py": "SAFE_MODE = 'from boot'\n"},
    )
    assert lines == [f"{platform} from boot"]


def test_board_path_is_bsp_then_fs_then_frozen_then_lib_and_cwd_is_the_fs(tmp_path: Path) -> None:
    # The fs entries are relative to the working directory, the board's root, as on a board:
    # a module's __file__ (an interned name, on the heap) is then as long as a board's.
    main = "import os, sys\nfrom pkg import mod\n"
    main += "print(sys.path)\nprint(os.getcwd())\nprint(mod.__file__)\n"
    lines = says(tmp_path, main, files={"pkg/__init__.py": "", "pkg/mod.py": "X = 1\n"})
    fs = str(tmp_path / "fs")
    assert ast.literal_eval(lines[0]) == [
        "/.bsp",  # the board support's compiled folder, mounted there (bsp/launch.py)
        "/.bsp/mpy122",  # ussl: the index's umqtt.simple is 1.22's 1.3.4
        "",
        ".frozen",
        str(layout.UMQTT_DIR),
        "lib",
    ]
    assert lines[1] == fs
    assert lines[2] == "pkg/mod.py"


def test_a_board_with_umqtt_1_3_4_has_ussl_as_micropython_1_22_has(tmp_path: Path) -> None:
    lines = says(tmp_path, "import ussl, ssl\nprint(ussl.wrap_socket is ssl.wrap_socket)\n")
    assert lines == ["True"]


def test_a_board_with_a_newer_umqtt_has_no_ussl(tmp_path: Path) -> None:
    out = run_board(tmp_path, "import ussl\n", ussl=False)
    assert "ImportError: no module named 'ussl'" in out.stdout + out.stderr


def test_umqtt_is_frozen_on_the_esp32(tmp_path: Path) -> None:
    lines = says(tmp_path, "import umqtt.simple\nprint(umqtt.simple.MQTTClient.__name__)\n")
    assert lines == ["MQTTClient"]


def test_umqtt_on_the_picow_comes_only_from_lib(tmp_path: Path) -> None:
    main = """\
        try:
            import umqtt.simple
            print("found")
        except ImportError:
            print("none")
    """
    assert says(tmp_path, main, board="picow") == ["none"]
    simple = layout.umqtt_source().read_text()
    lib = {"lib/umqtt/simple.py": simple}
    assert says(tmp_path, main, board="picow", files=lib) == ["found"]


@pytest.mark.parametrize(
    ("board", "cause", "code"),
    [("esp32", "pwron", 1), ("esp32", "reset", 5), ("esp32", "wdt", 3), ("picow", "reset", 3)],
)
def test_reset_cause_says_why_the_board_process_started(
    tmp_path: Path, board: str, cause: str, code: int
) -> None:
    main = "import machine\nprint(machine.reset_cause(), machine.unique_id().hex())\n"
    assert says(tmp_path, main, board=board, cause=cause) == [f"{code} {UID}"]


def test_esp32_reset_constants_are_the_esp32s(tmp_path: Path) -> None:
    main = """\
        import machine
        print(machine.PWRON_RESET, machine.HARD_RESET, machine.WDT_RESET,
              machine.DEEPSLEEP_RESET, machine.SOFT_RESET)
    """
    assert says(tmp_path, main) == ["1 2 3 4 5"]


def test_picow_knows_only_power_on_and_watchdog_resets(tmp_path: Path) -> None:
    main = """\
        import machine
        print(machine.PWRON_RESET, machine.WDT_RESET, hasattr(machine, "SOFT_RESET"))
    """
    assert says(tmp_path, main, board="picow") == ["1 3 False"]


def test_machine_reset_ends_the_process_with_the_reset_exit_code(tmp_path: Path) -> None:
    done = run_board(tmp_path, "import machine\nprint('before')\nmachine.reset()\nprint('after')\n")
    assert done.returncode == RESET_EXIT
    assert done.stdout.splitlines() == ["before"]


def test_watchdog_arm_and_feeds_reach_the_supervisor_as_datagrams(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(BOOT_S)
        main = """\
            import machine, time
            wdt = machine.WDT(timeout=1000)
            time.sleep_ms(100)
            wdt.feed()
        """
        says(tmp_path, main, supervisor_port=udp.getsockname()[1])
        assert udp.recv(64) == b"0 arm 1000"
        assert udp.recv(64) == b"0 feed"


def test_picow_watchdog_refuses_more_than_8388_ms(tmp_path: Path) -> None:
    main = """\
        import machine
        try:
            machine.WDT(timeout=9000)
        except ValueError as e:
            print("ValueError", e)
    """
    assert says(tmp_path, main, board="picow") == ["ValueError timeout exceeds maximum"]


def test_nothing_is_wired_to_the_board(tmp_path: Path) -> None:
    main = """\
        import machine, dht, onewire, ds18x20
        print(machine.Pin(0, machine.Pin.IN, machine.Pin.PULL_UP).value())
        led = machine.Pin(2, machine.Pin.OUT)
        led.value(1)
        print(led.value())
        i2c = machine.I2C(0)
        print(i2c.scan())
        try:
            i2c.readfrom_mem(0x76, 0xD0, 1)
        except OSError as e:
            print("i2c", e.args[0])
        try:
            dht.DHT22(machine.Pin(4)).measure()
        except OSError as e:
            print("dht", e.args[0])
        print(ds18x20.DS18X20(onewire.OneWire(machine.Pin(5))).scan())
        print(machine.freq())
    """
    assert says(tmp_path, main) == ["1", "1", "[]", "i2c 19", "dht 110", "[]", "160000000"]


def test_wired_sensors_answer_the_firmwares_drivers_with_the_rooms_values(tmp_path: Path) -> None:
    drivers = ("sensor_dht", "sensor_bme280", "sensor_ds18b20", "log")
    files = {f"firmware/{m}.py": (ROOT / "firmware" / f"{m}.py").read_text() for m in drivers}
    main = """\
        from firmware.sensor_dht import DHT
        from firmware.sensor_bme280 import BME280
        from firmware.sensor_ds18b20 import DS18B20
        print(DHT({"type": "dht22", "name": "r", "pin": 4}).read())
        air = {"name": "a", "i2c": 0, "sda": None, "scl": None, "address": 0x76}
        print([round(v, 2) for v in BME280(air).read()])
        water = DS18B20({"name": "w", "pin": 5, "rom": None})
        try:
            water.read()  # starts the first conversion
        except OSError:
            pass
        print(water.read())
    """
    switches = {"wired": True, "room_c": 19.25, "room_rh": 52.5}
    assert says(tmp_path, main, switches=switches, files=files) == [
        "(19.3, 52.5)",  # the DHT22's tenths
        "[25.08, 43.86, 1006.53]",  # Bosch's worked example
        "(19.25,)",  # the DS18B20's sixteenths
    ]


def test_picow_temperature_sensor_reads_a_plausible_chip_temperature(tmp_path: Path) -> None:
    lines = says(tmp_path, "import machine\nprint(machine.ADC(4).read_u16())\n", board="picow")
    volts = int(lines[0]) * 3.3 / 65535
    assert 25 < 27 - (volts - 0.706) / 0.001721 < 29


def test_esp32_has_the_generic_builds_fahrenheit_raw_temperature_only(tmp_path: Path) -> None:
    main = "import esp32\nprint(esp32.raw_temperature(), hasattr(esp32, 'mcu_temperature'))\n"
    assert says(tmp_path, main, switches={"mcu_c": 40.0}) == ["104 False"]


@pytest.mark.parametrize(
    ("board", "present", "absent"), [("esp32", "esp32", "rp2"), ("picow", "rp2", "esp32")]
)
def test_port_modules_exist_only_on_their_port(
    tmp_path: Path, board: str, present: str, absent: str
) -> None:
    main = f"""\
        import {present}
        try:
            import {absent}
            print("{absent} found")
        except ImportError:
            print("no {absent}")
    """
    assert says(tmp_path, main, board=board) == [f"no {absent}"]


def test_picow_bootsel_button_is_up_unless_held(tmp_path: Path) -> None:
    main = "import rp2\nprint(rp2.bootsel_button())\n"
    assert says(tmp_path, main, board="picow") == ["0"]
    assert says(tmp_path, main, board="picow", switches={"button": True}) == ["1"]


@pytest.mark.parametrize("board", ["esp32", "picow"])
def test_button_held_at_power_on_puts_the_firmware_in_safe_mode(tmp_path: Path, board: str) -> None:
    repo = layout.ROOT
    files = {"boot.py": (repo / "boot.py").read_text()}
    done = run_board(
        tmp_path,
        (repo / "main.py").read_text(),
        board=board,
        files=files,
        switches={"button": True},
    )
    assert "boot: safe mode" in done.stdout, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


# -- Wi-Fi ------------------------------------------------------------------------------------

JOIN = """\
import network, time
sta = network.WLAN(network.STA_IF)
sta.active(True)
def join(ssid, password):
    sta.connect(ssid, password)
    while sta.status() == network.STAT_CONNECTING:
        time.sleep_ms(20)
    return sta.status()
"""


def joining(code: str) -> str:
    """main.py: a station that can join(ssid, password) and returns its status(), then code."""
    return JOIN + textwrap.dedent(code)


def test_scan_lists_the_air_with_hidden_networks_nameless(tmp_path: Path) -> None:
    air = AIR + [{"ssid": "secret", "password": "", "rssi": -80, "hidden": True}]
    main = JOIN + "for row in sta.scan():\n    print(row[0], row[3], row[5])\n"
    assert says(tmp_path, main, switches={"air": air}) == [
        "b'vboard-net' -55 False",
        "b'' -80 True",
    ]


def test_join_succeeds_after_the_delay_with_the_right_password(tmp_path: Path) -> None:
    main = joining(
        """\
        t = time.ticks_ms()
        sta.connect("vboard-net", "vboard-pass")
        print(sta.status() == network.STAT_CONNECTING, sta.isconnected())
        while not sta.isconnected():
            time.sleep_ms(20)
        print(time.ticks_diff(time.ticks_ms(), t) >= 300, sta.status("rssi"), sta.ifconfig()[0])
    """
    )
    lines = says(tmp_path, main, switches={"delay_ms": 300})
    assert lines == ["True False", "True -55 192.168.50.248"]


@pytest.mark.parametrize(
    ("ssid", "password", "switches", "status"),
    [
        ("vboard-net", "wrong-pass", {}, "STAT_WRONG_PASSWORD"),
        ("elsewhere", "vboard-pass", {}, "STAT_NO_AP_FOUND"),
        ("vboard-net", "vboard-pass", {"fail": True}, "STAT_CONNECT_FAIL"),
        ("vboard-net", "vboard-pass", {}, "STAT_GOT_IP"),
    ],
)
def test_join_outcome(
    tmp_path: Path, ssid: str, password: str, switches: dict[str, Any], status: str
) -> None:
    main = JOIN + f"print(join({ssid!r}, {password!r}) == network.{status})\n"
    assert says(tmp_path, main, switches=switches) == ["True"]


def test_a_drop_takes_the_link_down_once_and_a_rejoin_works(tmp_path: Path) -> None:
    main = joining(
        """\
        import json, os
        print(join("vboard-net", "vboard-pass") == network.STAT_GOT_IP)
        path = os.getenv("VBOARD_CONTROL")
        with open(path) as f:
            switches = json.load(f)
        switches["events"] = {"drop": 1}
        with open(path, "w") as f:
            json.dump(switches, f)
        time.sleep_ms(300)
        print(sta.isconnected())
        print(join("vboard-net", "vboard-pass") == network.STAT_GOT_IP)
        time.sleep_ms(300)
        print(sta.isconnected())
    """
    )
    assert says(tmp_path, main) == ["True", "False", "True", "True"]


def test_drops_from_before_the_start_are_not_replayed(tmp_path: Path) -> None:
    main = JOIN + "join('vboard-net', 'vboard-pass')\ntime.sleep_ms(300)\n"
    main += "print(sta.isconnected())\n"
    switches = {"events": {"drop": 2}}
    assert says(tmp_path, main, switches=switches, events='{"drop": 2}') == ["True"]


def test_ntp_fails_while_wifi_is_down(tmp_path: Path) -> None:
    main = joining(
        """\
        import ntptime
        try:
            ntptime.settime()
        except OSError:
            print("no ntp")
        join("vboard-net", "vboard-pass")
        ntptime.settime()
        print("clock set")
    """
    )
    assert says(tmp_path, main) == ["no ntp", "clock set"]


def test_access_point_takes_its_config_and_comes_up(tmp_path: Path) -> None:
    main = """\
        import network
        ap = network.WLAN(network.AP_IF)
        ap.config(essid="node-setup", password="setup-pass", security=network.WLAN.SEC_WPA2)
        ap.active(True)
        print(ap.active(), ap.config("essid"), ap.config("security"), ap.ifconfig()[0])
        network.hostname("esp32-d4e5f6")
        print(network.hostname())
    """
    assert says(tmp_path, main) == ["True node-setup 3 192.168.4.1", "esp32-d4e5f6"]


@pytest.mark.parametrize(("board", "accepted"), [("esp32", "True"), ("picow", "unknown")])
def test_only_the_esp32_takes_the_old_authmode_name(
    tmp_path: Path, board: str, accepted: str
) -> None:
    main = """\
        import network
        try:
            network.WLAN(network.AP_IF).config(essid="node-setup", authmode=3)
            print(True)
        except ValueError as e:
            print(str(e).split()[0])
    """
    assert says(tmp_path, main, board=board) == [accepted]


# -- the supervisor ---------------------------------------------------------------------------


def fs_with(tmp_path: Path, main: str) -> Path:
    fs = tmp_path / "board"
    fs.mkdir()
    (fs / "main.py").write_text(textwrap.dedent(main))
    return fs


def test_machine_reset_restarts_the_board_with_the_new_reset_cause(tmp_path: Path) -> None:
    fs = fs_with(
        tmp_path,
        """\
        import machine
        print("cause", machine.reset_cause())
        if machine.reset_cause() == machine.PWRON_RESET:
            machine.reset()
        """,
    )
    with VirtualBoard(fs=fs, workdir=tmp_path / "work") as board:
        board.wait_for(r"^cause 1$", BOOT_S)
        board.wait_for(r"^vboard: reset \(machine\.reset\)$", BOOT_S)
        board.wait_for(r"^cause 5$", BOOT_S)
        assert board.restarts == 1


def test_an_unfed_watchdog_restarts_the_board_with_a_watchdog_cause(tmp_path: Path) -> None:
    fs = fs_with(
        tmp_path,
        """\
        import machine, time
        print("cause", machine.reset_cause())
        if machine.reset_cause() == machine.PWRON_RESET:
            machine.WDT(timeout=500)
            while True:
                time.sleep_ms(100)
        """,
    )
    with VirtualBoard(fs=fs, workdir=tmp_path / "work") as board:
        board.wait_for(r"^vboard: reset \(watchdog\)$", BOOT_S)
        board.wait_for(r"^cause 3$", BOOT_S)
        assert board.restarts == 1


def test_wait_for_times_out_with_the_console_tail(tmp_path: Path) -> None:
    fs = fs_with(tmp_path, "print('hello from the board')\n")
    with VirtualBoard(fs=fs, workdir=tmp_path / "work") as board:
        board.wait_for("hello", BOOT_S)
        with pytest.raises(TimeoutError, match="hello from the board"):
            board.wait_for("never said", 0.2)


def test_ctrl_c_in_the_boot_window_gives_safe_mode(tmp_path: Path) -> None:
    fs = fs_with(tmp_path, (layout.ROOT / "main.py").read_text())
    (fs / "boot.py").write_text((layout.ROOT / "boot.py").read_text())
    with VirtualBoard(fs=fs, workdir=tmp_path / "work") as board:
        board.wait_for(r"^boot: Ctrl-C within", BOOT_S)
        # boot.py prints its prompt just before its `try:`; a Ctrl-C in between escapes it.
        time.sleep(0.3)
        board.interrupt()
        board.wait_for(r"^boot: safe mode", BOOT_S)


@pytest.mark.parametrize("board_kind", ["esp32", "picow"])
def test_the_button_pressed_during_the_boot_window_gives_safe_mode(
    tmp_path: Path, board_kind: str
) -> None:
    # Held at reset, a real chip would start its ROM bootloader: the press comes after boot.py
    # has started, as a person would make it.
    fs = fs_with(tmp_path, (layout.ROOT / "main.py").read_text())
    (fs / "boot.py").write_text((layout.ROOT / "boot.py").read_text())
    with VirtualBoard(fs=fs, board=board_kind, workdir=tmp_path / "work") as board:
        board.wait_for(r"^boot: Ctrl-C within", BOOT_S)
        time.sleep(0.5)
        board.button(True)
        board.wait_for(r"^boot: safe mode", BOOT_S)


def test_heap_size_is_passed_to_micropython(tmp_path: Path) -> None:
    fs = fs_with(tmp_path, "import gc\nprint('heap', gc.mem_free() + gc.mem_alloc())\n")
    with VirtualBoard(fs=fs, heap="64k", workdir=tmp_path / "work") as board:
        heap = int(board.wait_for(r"^heap (\d+)$", BOOT_S)[1])
        assert heap <= 64 * 1024


def test_echo_prefixes_console_lines_with_the_device_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fs = fs_with(tmp_path, "print('hello')\n")
    with VirtualBoard(fs=fs, echo=True, prefix=True, workdir=tmp_path / "work") as board:
        board.wait_for("^hello$", BOOT_S)
    assert "[esp32-d4e5f6] hello\n" in capsys.readouterr().out


# -- the firmware on a virtual board, with a real broker --------------------------------------


def test_board_connects_and_publishes_online_and_readings(
    tmp_path: Path, broker: tuple[str, int], subscriber: Watcher
) -> None:
    with VirtualBoard(broker=broker, uid="0000000a0001", workdir=tmp_path) as board:
        board.wait_for(rf"^mqtt: connected to 127\.0\.0\.1:{broker[1]} as esp32-0a0001$", BOOT_S)
        subscriber.next(board.topic("status"), b"online")
        reading = json.loads(subscriber.next(board.topic("readings")).payload)
        assert reading["seq"] >= 1
        assert "temperature" in reading
        subscriber.next(board.topic("heartbeat"))
        no_traceback(board)


def test_picow_board_connects_with_umqtt_from_its_lib(
    tmp_path: Path, broker: tuple[str, int], subscriber: Watcher
) -> None:
    with VirtualBoard(broker=broker, board="picow", uid="e66038b7130f3e21", workdir=tmp_path) as b:
        b.wait_for(r"^boot: sensornode .* on picow, reset cause: power-on$", BOOT_S)
        b.wait_for(r"^mqtt: connected to .* as picow-0f3e21$", BOOT_S)
        assert (b.fs / "lib" / "umqtt" / "simple.py").exists()
        subscriber.next("sensornode/picow-0f3e21/status", b"online")
        no_traceback(b)


def test_reboot_command_restarts_the_board_with_a_soft_reset_cause(
    tmp_path: Path, broker: tuple[str, int], subscriber: Watcher
) -> None:
    with VirtualBoard(broker=broker, uid="0000000a0002", workdir=tmp_path) as board:
        board.wait_for(r"^mqtt: connected to", BOOT_S)
        subscriber.publish(board.topic("cmd"), json.dumps({"cmd": "reboot"}))
        board.wait_for(r"^vboard: reset \(machine\.reset\)$", BOOT_S)
        board.wait_for(r"reset cause: soft reset$", BOOT_S)
        mark = len(board.console)
        board.wait_for(r"^mqtt: connected to", BOOT_S, since=mark)
        assert board.restarts == 1
        no_traceback(board)


def test_stalled_firmware_is_reset_by_its_watchdog(tmp_path: Path, broker: tuple[str, int]) -> None:
    config = {"watchdog_s": 2}
    with VirtualBoard(broker=broker, uid="0000000a0003", config=config, workdir=tmp_path) as b:
        b.wait_for(r"^mqtt: connected to", BOOT_S)
        b.stall()
        b.wait_for(r"^vboard: reset \(watchdog\)$", BOOT_S)
        b.wait_for(r"reset cause: watchdog$", BOOT_S)
        assert b.restarts == 1
        no_traceback(b)


def test_wifi_drop_makes_the_firmware_rejoin_and_reconnect(
    tmp_path: Path, broker: tuple[str, int]
) -> None:
    with VirtualBoard(broker=broker, uid="0000000a0004", workdir=tmp_path) as board:
        board.wait_for(r"^mqtt: connected to", BOOT_S)
        mark = len(board.console)
        board.wifi_drop()
        board.wait_for(r"^wifi: link to 'vboard-net' lost", BOOT_S, since=mark)
        board.wait_for(r"^wifi: joined 'vboard-net'", BOOT_S, since=mark)
        board.wait_for(r"^mqtt: connected to", BOOT_S, since=mark)
        no_traceback(board)


def test_failing_wifi_keeps_the_firmware_trying_until_it_joins(
    tmp_path: Path, broker: tuple[str, int]
) -> None:
    with VirtualBoard(broker=broker, uid="0000000a0005", workdir=tmp_path) as board:
        board.wifi_fail(True)
        board.wait_for(r"^wifi: join 'vboard-net' failed \(connection failed\)", BOOT_S)
        board.wifi_fail(False)
        board.wait_for(r"^mqtt: connected to", 60)
        no_traceback(board)


def test_a_flashed_filesystem_with_compiled_firmware_boots_as_is(
    tmp_path: Path, broker: tuple[str, int]
) -> None:
    from tools.compile import compile_firmware, mpy_cross

    if not Path(mpy_cross()).exists():
        pytest.skip("no mpy-cross (make setup)")
    fs = tmp_path / "flashed"
    compile_firmware("xtensawin", fs)
    for name in ("boot.py", "main.py"):
        (fs / name).write_text((layout.ROOT / name).read_text())
    (fs / "config.json").write_text(json.dumps(layout.default_config(broker)))
    (fs / "secrets.json").write_text(json.dumps(layout.DEFAULT_SECRETS))
    assert not list((fs / "firmware").glob("*.py"))
    with VirtualBoard(fs=fs, uid="0000000a0007", workdir=tmp_path / "work") as board:
        board.wait_for(r"^mqtt: connected to .* as esp32-0a0007$", BOOT_S)


def test_kill_is_a_power_cut_and_the_broker_sends_the_last_will(
    tmp_path: Path, broker: tuple[str, int], subscriber: Watcher
) -> None:
    with VirtualBoard(broker=broker, uid="0000000a0006", workdir=tmp_path) as board:
        board.wait_for(r"^mqtt: connected to", BOOT_S)
        subscriber.next(board.topic("status"), b"online")
        board.kill()
        subscriber.next(board.topic("status"), b"offline")
        time.sleep(0.5)  # long enough for a restart to show, if the supervisor wrongly made one
        assert board.pid is None
        assert board.restarts == 0


def test_each_reading_is_one_console_line_unless_turned_off(
    tmp_path: Path, broker: tuple[str, int], subscriber: Watcher
) -> None:
    with VirtualBoard(broker=broker, uid="0000000a000c", workdir=tmp_path / "on") as board:
        sent = subscriber.next(board.topic("readings")).payload.decode()
        # The first is taken before Wi-Fi is up: it is kept, and the line says so.
        board.wait_for("^reading: " + re.escape(sent) + r"( \(kept in the outbox .*\))?$", BOOT_S)
    quiet = {"console_readings": False, "interval_s": 0.2}
    with VirtualBoard(
        broker=broker, uid="0000000a000d", workdir=tmp_path / "off", config=quiet
    ) as board:
        for _ in range(3):
            subscriber.next(board.topic("readings"))
        assert not [line for line in board.console if line.startswith("reading:")]


def test_ctrl_c_stops_the_firmware_with_one_line_and_no_traceback(
    tmp_path: Path, broker: tuple[str, int]
) -> None:
    with VirtualBoard(broker=broker, uid="0000000a000e", workdir=tmp_path) as board:
        board.wait_for(r"^boot: running", BOOT_S)
        mark = len(board.console)
        board.interrupt()
        board.wait_for(
            r"^boot: stopped by Ctrl-C; the REPL is yours, Ctrl-D restarts the board$",
            BOOT_S,
            since=mark,
        )
        time.sleep(0.3)  # anything printed after the line would be here by now
        after = board.console[mark:]
        assert not [line for line in after if "Traceback" in line or "KeyboardInterrupt" in line]
        assert board.running


def test_heartbeat_free_heap_is_taken_after_a_collection_and_holds_steady(
    tmp_path: Path, broker: tuple[str, int], subscriber: Watcher
) -> None:
    fast = {"interval_s": 0.1, "heartbeat_s": 1}
    with VirtualBoard(broker=broker, uid="0000000a000f", workdir=tmp_path, config=fast) as board:
        heap = [subscriber.next(board.topic("heartbeat")).json()["free_heap"] for _ in range(6)]
    # Ten readings between heartbeats leave ~10 KB of garbage on the 64-bit port: uncollected,
    # consecutive figures would fall by about that much.
    settled = heap[2:]
    assert max(settled) - min(settled) < 1024, heap


def test_stop_leaves_no_board_process(tmp_path: Path) -> None:
    fs = fs_with(tmp_path, "import time\nprint('up')\nwhile True:\n    time.sleep(1)\n")
    board = VirtualBoard(fs=fs, workdir=tmp_path / "work")
    board.start()
    board.wait_for("^up$", BOOT_S)
    pid = board.pid
    assert pid is not None
    board.stop()
    assert board.pid is None
    assert not Path(f"/proc/{pid}").exists()


# -- the command line -------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_cli_runs_a_board_until_ctrl_c_and_leaves_nothing_behind(broker: tuple[str, int]) -> None:
    cli = subprocess.Popen(
        [sys.executable, "-m", "tools.vboard", "--broker", f"{broker[0]}:{broker[1]}"],
        cwd=layout.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert cli.stdout is not None
    stream = cli.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    try:
        seen = ""
        deadline = time.monotonic() + BOOT_S
        while "mqtt: connected to" not in seen and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                seen += lines.get(timeout=0.5)
        assert "mqtt: connected to" in seen, seen
        assert f"make listen BROKER={broker[0]}:{broker[1]}\n" in seen
        board_pids = children(cli.pid)
        assert board_pids
        cli.send_signal(signal.SIGINT)
        assert cli.wait(BOOT_S) == 0
        assert not [p for p in board_pids if Path(f"/proc/{p}").exists()]
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()


def gone(pid: int) -> bool:
    """No such process, or one that has ended and waits to be reaped (reparented boards do)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[0] in ("Z", "X")


def test_a_board_dies_with_its_killed_supervisor_and_the_broker_says_offline(
    broker: tuple[str, int], subscriber: Watcher
) -> None:
    keepalive_s = layout.default_config(broker)["mqtt"]["keepalive"]
    cli = subprocess.Popen(
        [sys.executable, "-m", "tools.vboard", "--broker", f"{broker[0]}:{broker[1]}"]
        + ["--id", "0000000a0009"],
        cwd=layout.ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    status = "sensornode/esp32-0a0009/status"
    try:
        subscriber.next(status, b"online", timeout=BOOT_S)
        board_pids = children(cli.pid)
        assert board_pids
        cli.kill()  # SIGKILL: the supervisor gets no chance to stop its board
        killed = time.monotonic()
        cli.wait()
        offline = subscriber.next(status, b"offline", timeout=1.5 * keepalive_s)
        assert offline.at - killed <= 1.5 * keepalive_s
        deadline = time.monotonic() + 5
        while not all(gone(p) for p in board_pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(gone(p) for p in board_pids)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()


def test_the_cli_names_the_make_listen_for_its_broker() -> None:
    from tools.vboard.__main__ import listen_command

    assert listen_command(("127.0.0.1", 40001)) == "make listen BROKER=127.0.0.1:40001"
    assert listen_command(("::1", 40001)) == "make listen BROKER=[::1]:40001"
    assert listen_command(None) == ""


def test_the_cli_reads_a_broker_address_as_make_listen_does() -> None:
    from tools.vboard.__main__ import broker_address

    assert broker_address("[::1]:1884") == ("::1", 1884)
    assert broker_address("broker.local") == ("broker.local", 1883)
    with pytest.raises(argparse.ArgumentTypeError, match="not a number"):
        broker_address("host:99999")


def test_the_board_support_is_compiled_once_per_content_with_its_mount_as_source_name(
    tmp_path: Path,
) -> None:
    from tools.vboard import bspcode

    folder = bspcode.compiled(out=tmp_path)
    assert folder.parent == tmp_path
    assert bspcode.compiled(out=tmp_path) == folder  # reused, not compiled again
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    expected = {m.with_suffix(".mpy").as_posix() for m in bspcode.modules()}
    assert names == expected | set(bspcode.TABLES)
    assert b"/.bsp/network.mpy" in (folder / "network.mpy").read_bytes()


def test_the_board_support_interns_few_names_before_main(tmp_path: Path) -> None:
    # On a board machine and network are C: no interned names. The qstr pools grow by doubling
    # (a 640-name pool opens past 630), so what the board support interns before main.py, with
    # the modules sensornode's boot imports, is kept well under half of that.
    main = "import machine, network, ntptime\nfrom machine import Pin\n"
    main += "network.WLAN(network.STA_IF).active(True)\n"
    main += "import micropython\nmicropython.qstr_info()\n"
    out = "\n".join(says(tmp_path, main))
    n_qstr = int(re.search(r"n_qstr=(\d+)", out).group(1))  # type: ignore[union-attr]
    assert n_qstr <= 150, out


def test_network_and_wlan_index_an_interfaces_state_alike() -> None:
    # const() values are inlined in each module's bytecode: the two copies must agree.
    def consts(name: str) -> dict[str, int]:
        tree = ast.parse((LAUNCHER.parent / name).read_text())
        return {
            node.targets[0].id: node.value.args[0].value  # type: ignore[attr-defined]
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "const"
        }

    network = consts("network.py")
    for name, own in (("_join.py", {"_DELAY_MS"}), ("_wlan.py", set())):
        cold = consts(name)
        assert set(cold) - set(network) == own, name
        assert {k: cold[k] for k in network.keys() & cold.keys()} == {
            k: network[k] for k in network.keys() & cold.keys()
        }, name


def test_the_join_and_setup_calls_leave_the_heap_after_each_call(tmp_path: Path) -> None:
    main = """\
        import sys, network
        sta = network.WLAN(network.STA_IF)
        sta.active(True)
        print(len(sta.scan()), "_wlan" in sys.modules, "_join" in sys.modules)
        sta.connect("vboard-net", "vboard-pass")
        print(sta.ifconfig()[0], sta.config("mac") == network.WLAN(network.STA_IF).config("mac"))
        print("_wlan" in sys.modules, "_join" in sys.modules)
        """
    assert says(tmp_path, main) == ["1 False False", "0.0.0.0 True", "False False"]


def test_a_link_check_with_the_switches_unchanged_allocates_nothing(tmp_path: Path) -> None:
    # On a board isconnected() is C and allocates nothing. The switches are read again at most
    # every 0.2 s, so of three quick batches of calls at most one can include a read.
    main = """\
        import gc, network, time, _vboard
        sta = network.WLAN(network.STA_IF)
        sta.active(True)
        sta.connect("vboard-net", "vboard-pass")
        while not sta.isconnected():
            time.sleep_ms(10)
        v = _vboard.version()
        time.sleep_ms(250)
        print("same switches, same version:", _vboard.version() == v)
        gc.disable()
        used = []
        for _ in range(3):
            a = gc.mem_alloc()
            for _ in range(200):
                sta.isconnected()
            used.append(gc.mem_alloc() - a)
        print("least allocated:", min(used))
        """
    assert says(tmp_path, main) == ["same switches, same version: True", "least allocated: 0"]
