"""The benchmark (tools/bench*.py): what it computes on the host, fast. The figures themselves
come from `make bench`, a target of its own: no figure is held to a target here."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tools import bench, bench_boards, bench_live, bench_measure, bench_report, bench_scripts
from tools.bench_extras import EXTRAS, Extra, tls_extras
from tools.compile import NO_LINE_NUMBERS
from tools.vboard import layout
from tools.vboard.supervisor import MICROPYTHON


def test_publish_packet_counts_header_length_topic_packet_id_and_payload() -> None:
    # 0x32, remaining length 2 + 5 + 2 + 10 = 19 in one byte: 21 bytes in all
    assert bench_live.publish_packet_bytes(5, 10) == 21


def test_publish_packet_at_qos_0_has_no_packet_id() -> None:
    assert bench_live.publish_packet_bytes(5, 10, qos=0) == 19


def test_publish_packet_remaining_length_takes_two_bytes_from_128() -> None:
    assert bench_live.publish_packet_bytes(20, 104) == 1 + 2 + 128
    assert bench_live.publish_packet_bytes(20, 103) == 1 + 1 + 127


def test_bare_loop_publishes_at_sensornodes_default_qos() -> None:
    from firmware import config

    assert config.DEFAULTS["mqtt"]["qos"] == bench_boards.QOS
    assert "publish(self.topic, self.reading(), False, 1)" in bench_boards.BARE_LOOP.read_text()


def test_features_config_validates_without_problems(log: Any) -> None:
    from firmware import config

    cfg = layout.merge(layout.default_config(("127.0.0.1", 1883)), bench_boards.FEATURES)
    out, problems = config.validate(cfg, log)
    assert problems == 0, log.text()
    assert out["ha_discovery"] is True
    assert out["sensors"][0]["filter"] == {"type": "median", "size": 5}


def test_smallest_heap_is_bisected_from_zero_not_from_a_floor() -> None:
    got = bench_measure.smallest(lambda kb: kb >= 37, 128, 3)
    assert got["bytes"] == 37 * 1024
    assert any(kb < 37 and not ok for kb, ok in got["tried_kb"])
    assert got["tried_kb"][-3:] == [(37, True)] * 3  # confirmed three runs in a row
    assert got["spread_bytes"] == 0


def test_smallest_heap_moves_up_until_it_passes_every_confirmation() -> None:
    # 37 to 39 KB pass only on their first try (fragmentation); 40 KB always.
    runs: dict[int, int] = {}

    def passes(kb: int) -> bool:
        runs[kb] = runs.get(kb, 0) + 1
        return kb >= 40 or (kb >= 37 and runs[kb] == 1)

    got = bench_measure.smallest(passes, 128, 3)
    assert got["bytes"] == 40 * 1024
    assert got["passed_once_bytes"] == 37 * 1024
    assert got["spread_bytes"] == 3 * 1024


def test_smallest_heap_doubles_when_the_start_fails() -> None:
    got = bench_measure.smallest(lambda kb: kb >= 300, 128, 1)
    assert got["bytes"] == 300 * 1024
    assert got["tried_kb"][:3] == [(128, False), (256, False), (512, True)]


def test_import_order_puts_each_module_after_what_it_imports() -> None:
    names = [
        "firmware.wiring",
        "firmware.board",
        "firmware.version",
        "firmware.node",
        "umqtt.simple",
    ]
    order = bench_measure.import_order(names)
    assert sorted(order) == sorted(names)
    assert order.index("firmware.version") < order.index("firmware.board")
    assert order.index("firmware.node") < order.index("firmware.wiring")  # in _wire


def test_a_missing_32_bit_runtime_is_said_with_the_reason(tmp_path: Path) -> None:
    why = bench_boards.probe(tmp_path / "micropython")
    assert why is not None and "no 32-bit MicroPython" in why
    assert "32-bit: figures missing: " + why in bench_report.report({"32-bit": {"missing": why}})


@pytest.mark.skipif(not MICROPYTHON.exists(), reason="no .venv/bin/micropython (make setup)")
def test_the_wheels_runtime_is_not_taken_for_a_32_bit_one() -> None:
    why = bench_boards.probe(MICROPYTHON)
    assert why is not None and "not a 32-bit build" in why


def test_beside_repo_falls_back_to_the_main_checkout_of_a_worktree(tmp_path: Path) -> None:
    main, wt = tmp_path / "main", tmp_path / "wt" / "x"
    subprocess.run(["git", "init", "-q", str(main)], check=True)
    subprocess.run(["git", "-C", str(main), "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    subprocess.run(["git", "-C", str(main), "worktree", "add", "-q", str(wt)], check=True)
    (tmp_path / "shared").mkdir()
    assert bench_boards.beside_repo(Path("shared"), wt) == tmp_path / "shared"
    assert bench_boards.beside_repo(Path("elsewhere"), wt) == wt.parent / "elsewhere"


def test_qstr_pool_bytes_come_from_the_last_qstr_info_line() -> None:
    out = (
        "qstr pool: n_pool=1, n_qstr=2, n_str_data_bytes=24, n_total_bytes=200\n"
        "bench: {}\n"
        "qstr pool: n_pool=3, n_qstr=900, n_str_data_bytes=9000, n_total_bytes=12345\n"
    )
    assert bench_boards.qstr_pool_bytes(out) == 12345
    assert bench_boards.qstr_pool_bytes("no pools here") is None


def test_an_extras_code_becomes_the_body_of_its_try_block() -> None:
    main = bench_scripts.EXTRA.format(code=bench_scripts.indent("a = 1\nfor i in x:\n    b = i"))
    compile(main, "main.py", "exec")
    assert "\n    a = 1\n    for i in x:\n        b = i\n" in main
    empty = bench_scripts.EXTRA.format(code=bench_scripts.indent(Extra("idle").code))
    compile(empty, "main.py", "exec")
    rows = EXTRAS + tls_extras(8883, b"0\x82") + tls_extras(None, b"")
    for row in rows:  # every row's code compiles in its place
        compile(bench_scripts.EXTRA.format(code=bench_scripts.indent(row.code)), row.name, "exec")


def test_the_tls_rows_point_the_node_at_the_tls_listener_and_check_the_link_came_up() -> None:
    verified, unverified = tls_extras(8883, b"0\x82DER")
    assert verified.config == {"mqtt": {"tls": True, "port": 8883, "ca_file": "ca.der"}}
    assert verified.files == {"ca.der": b"0\x82DER"}
    assert unverified.config == {"mqtt": {"tls": True, "port": 8883}}
    for row, security in ((verified, "verified"), (unverified, "unverified")):
        assert f"node.session.transport.security == {security!r}" in row.code
        assert "raise OSError" in row.code


def _program(kind: str, resident: int, alloc: float, cpu: int) -> dict[str, Any]:
    m = {
        "kind": kind,
        "resident_heap_bytes": resident,
        "alloc_per_cycle_bytes": alloc,
        "alloc_per_cycle_median_bytes": alloc,
        "as_shipped_cycle_us": cpu,
        "profile": {},
        "problem": None,
        "qstr_pool_bytes": 1000,
    }
    base = {"before_main": 7000, "bsp": 10000, "interpreter": 600, "qstr_pool_bytes": 900}
    first = m | {"resident_heap_bytes": resident + 4000}  # config.py's names, at a first boot
    o3 = m | {"resident_heap_bytes": resident - 1400}  # no line numbers
    runs = {"py": m, "mpy": m, "romfs": m, "mpy_o3": o3, "mpy_first": first}
    return {"base": base | {"boot_py": 500}, **runs}


def _raw(net_sn: int, alloc_sn: float, smallest_kb: int) -> tuple[dict[str, Any], dict[str, Any]]:
    heap = {"bytes": smallest_kb * 1024, "passed_once_bytes": smallest_kb * 1024}
    got = {
        "sensornode": _program("sensornode", 17000 + net_sn, alloc_sn, 60),
        "bare": _program("bare", 17000 + 5000, 448, 80),
        "parts": {"modules": {"firmware.app": 7000}, "config_read": 600, "objects": 4000},
        "alone": [
            {
                "sensornode": {"cpu": {"median_us": 60, "mean_us": 61, "oncpu_us": 50.0}},
                "bare": {"cpu": {"median_us": 80, "mean_us": 81, "oncpu_us": 40.0}},
            }
        ],
        "instructions": {"sensornode": 150000, "bare": None},
        "instructions_runs": [{"sensornode": 150000, "bare": None}],
        "heaps": {k: heap for k in ("sensornode", "sensornode_mpy", "bare", "bare_mpy")},
        "extras": {"outbox full": {"bytes": 7936}, "TLS on": {"bytes": None, "error": "no ssl"}},
    }
    for kind in ("sensornode", "bare"):
        got["alone"][0][kind]["problem"] = None
    got["parts"]["qstr_pool_bytes"] = 9000
    fleet = {"boards": 3, "rate_hz": 1, "seconds": 5, "sent": 18, "received": 18}
    seen = {
        "firsts": {"sensornode": [1800], "nowindow": [300], "bare": [260]},
        "wires": {"sensornode": [100], "bare": [107]},
        "recovery": {"recover_s": 1.5, "lost_readings": 0, "detail": {}},
        "fleet": fleet | {"detail": {"taken": 18}},
    }
    return got, seen


def test_targets_are_judged_on_the_net_mpy_heap_and_the_confirmed_smallest_heap() -> None:
    sizes = ({"xtensawin": 30000, "armv6m": 30000}, {"xtensawin": 1000, "armv6m": 1000})
    got, seen = _raw(30 * 1024, 482, 89)
    res = bench.assemble(bench_boards.BOARD_SIZED, got, seen, sizes, 10000, "mosquitto")
    met = res["sensornode"]["targets"]
    assert res["sensornode"]["net_resident_heap_bytes"] == 30 * 1024
    assert res["sensornode"]["detail"]["net_resident_heap_bytes_first_boot"] == 30 * 1024 + 4000
    assert met == {
        "net_resident_heap_bytes": False,
        "alloc_per_cycle_bytes": False,
        "cpu_us_per_cycle": True,
        "min_heapsize_bytes": False,
        "lost_readings": True,
        "fleet": True,
    }
    got, seen = _raw(24 * 1024, 448, 64)
    res = bench.assemble(bench_boards.BOARD_SIZED, got, seen, sizes, 10000, "mosquitto")
    assert all(res["sensornode"]["targets"].values())
    assert "32-bit" in res["runtime"] and "-march=x86" in res["runtime"]


def test_the_cpu_target_is_judged_on_cpu_time_not_on_the_time_a_cycle_takes() -> None:
    # sensornode's cycle is quicker by the clock (60 vs 80 us) but takes more than 1.5 x the
    # bare loop's CPU: not met. Without a CPU time (no schedstat) it is not met either.
    sizes = ({"xtensawin": 30000, "armv6m": 30000}, {"xtensawin": 1000, "armv6m": 1000})
    got, seen = _raw(24 * 1024, 448, 64)
    got["alone"][0]["sensornode"]["cpu"]["oncpu_us"] = 61.0
    res = bench.assemble(bench_boards.BOARD_SIZED, got, seen, sizes, 10000, "mosquitto")
    assert res["sensornode"]["cpu_us_per_cycle"] == 61.0
    assert res["sensornode"]["detail"]["cycle_us_wall"] == 60
    assert res["sensornode"]["targets"]["cpu_us_per_cycle"] is False
    got["alone"][0]["sensornode"]["cpu"]["oncpu_us"] = 60.0
    res = bench.assemble(bench_boards.BOARD_SIZED, got, seen, sizes, 10000, "mosquitto")
    assert res["sensornode"]["targets"]["cpu_us_per_cycle"] is True
    got["alone"][0]["bare"]["cpu"]["oncpu_us"] = None
    res = bench.assemble(bench_boards.BOARD_SIZED, got, seen, sizes, 10000, "mosquitto")
    assert res["sensornode"]["targets"]["cpu_us_per_cycle"] is False


def test_report_prints_both_runtimes_with_targets_and_extras() -> None:
    sizes = ({"xtensawin": 30000, "armv6m": 30000}, {"xtensawin": 1000, "armv6m": 1000})
    got, seen = _raw(30 * 1024, 482, 89)
    results = {
        rt.key: bench.assemble(rt, got, seen, sizes, 10000, "mosquitto")
        for rt in (bench_boards.BOARD_SIZED, bench_boards.WHEEL)
    }
    text = bench_report.report(results)
    assert text.index("32-bit: ") < text.index("64-bit: ")
    assert "<= 24 KB" in text and "NO" in text
    assert "on top of the idle node: outbox full" in text
    assert "n/a: no ssl" in text
    assert "module firmware.app" in text
    first = "on a first boot (new files: checked, then restarted)"
    assert any(first in line and "34,720" in line for line in text.splitlines())
    counted = "user-mode instructions per cycle (callgrind, each alone)"
    assert any(
        counted in line and "150,000" in line and "n/a" in line for line in text.splitlines()
    )


def test_the_O3_measurement_lays_out_the_program_compiled_as_flash_nolines_does(
    tmp_path: Path, monkeypatch: Any
) -> None:
    laid_out: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def program_fs(*args: Any) -> str:
        laid_out["mpy"], laid_out["options"] = args[5:7]
        raise Stop  # the layout is what is asked here, not a board run

    monkeypatch.setattr(bench_measure, "_program_fs", program_fs)
    rt = bench_boards.BOARD_SIZED
    for code, options in (("mpy", ()), ("mpy-O3", (NO_LINE_NUMBERS,))):
        with pytest.raises(Stop):
            bench_measure.in_process(rt, "sensornode", tmp_path, ("127.0.0.1", 1), 100, code)
        assert laid_out == {"mpy": rt.arch, "options": options}


def test_the_instruction_count_is_the_median_of_its_runs_and_none_without_one() -> None:
    assert bench_measure.median_count([178792, 166452, 166530]) == 166530
    assert bench_measure.median_count([166452, 178792]) == 172622
    assert bench_measure.median_count([166452, None, 166530]) is None
    assert bench_measure.median_count([]) is None


def test_instructions_per_cycle_leave_the_boot_out(tmp_path: Path, monkeypatch: Any) -> None:
    # Two runs: 300 cycles for 1,000,000 + 300 * 2,000 instructions, 1,300 for 1,000,000 +
    # 1,300 * 2,000: 2,000 a cycle, whatever the boot cost.
    totals = iter([1_000_000 + 300 * 2_000, 1_000_000 + 1_300 * 2_000])
    ran: list[Path] = []

    def fake_run(rt: bench_boards.Runtime, kind: str, *args: Any) -> dict[str, Any]:
        ran.append(rt.micropython)
        out = rt.micropython.parent / "callgrind.1234"
        out.write_text(f"events: Ir\nfn=main\n1 5\nsummary: {next(totals)}\n")
        return {}

    monkeypatch.setattr(bench_measure.shutil, "which", lambda name: "/usr/bin/valgrind")
    monkeypatch.setattr(bench_measure, "cpu_alone", fake_run)
    rt = bench_boards.BOARD_SIZED
    assert bench_measure.instructions_alone(rt, "bare", tmp_path, ("127.0.0.1", 1)) == 2000
    assert len(ran) == 2 and "valgrind" in ran[0].read_text()
    monkeypatch.setattr(bench_measure.shutil, "which", lambda name: None)
    assert bench_measure.instructions_alone(rt, "bare", tmp_path, ("127.0.0.1", 1)) is None


def test_a_run_under_callgrind_with_a_problem_gives_no_count(
    tmp_path: Path, monkeypatch: Any
) -> None:
    def dropped(rt: bench_boards.Runtime, kind: str, *args: Any) -> dict[str, Any]:
        (rt.micropython.parent / "callgrind.1").write_text("summary: 1000\n")
        return {"problem": "the MQTT link dropped 1 time(s)"}

    monkeypatch.setattr(bench_measure.shutil, "which", lambda name: "/usr/bin/valgrind")
    monkeypatch.setattr(bench_measure, "cpu_alone", dropped)
    with pytest.raises(RuntimeError, match="link dropped"):
        bench_measure.instructions_alone(
            bench_boards.BOARD_SIZED, "bare", tmp_path, ("127.0.0.1", 1)
        )


def test_a_callgrind_run_without_totals_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "callgrind.1").write_text("events: Ir\n")
    with pytest.raises(RuntimeError, match="no totals"):
        bench_measure.callgrind_total(tmp_path)


@pytest.mark.skipif(not MICROPYTHON.exists(), reason="no .venv/bin/micropython (make setup)")
def test_packed_romfs_image_is_imported_from_on_the_runtime(tmp_path: Path) -> None:
    fs = tmp_path / "fs"
    (fs / "pkg").mkdir(parents=True)
    (fs / "pkg" / "answer.py").write_text("VALUE = 6 * 7\n")
    bench_boards.to_mpy(fs / "pkg" / "answer.py", "pkg/answer.py", bench_boards.WHEEL.arch)
    bench_boards.pack_romfs(fs, tmp_path / "staging")
    assert not list(fs.rglob("*.mpy")), "the .mpy files live in the image only"
    (fs / "main.py").write_text(
        bench_scripts.ROMFS + "import pkg.answer\nprint(pkg.answer.VALUE)\n"
    )
    done = subprocess.run(
        [str(MICROPYTHON), "main.py"], cwd=fs, capture_output=True, text=True, timeout=30
    )
    assert done.stdout.strip() == "42", done.stdout + done.stderr


@pytest.mark.skipif(not MICROPYTHON.exists(), reason="no .venv/bin/micropython (make setup)")
def test_the_O3_row_compiles_without_line_numbers(tmp_path: Path) -> None:
    # The row's point is what the line numbers cost: its .mpy must really lack them.
    lines = {}
    for options in ((), (NO_LINE_NUMBERS,)):
        fs = tmp_path / ("O3" if options else "O0")
        fs.mkdir()
        (fs / "fails.py").write_text("def f():\n    x = 1\n    return x // 0\n")
        bench_boards.to_mpy(fs / "fails.py", "fails.mpy", bench_boards.WHEEL.arch, options)
        (fs / "main.py").write_text(
            "import sys\nimport fails\ntry:\n    fails.f()\n"
            "except ZeroDivisionError as e:\n    sys.print_exception(e)\n"
        )
        done = subprocess.run(
            [str(MICROPYTHON), "main.py"], cwd=fs, capture_output=True, text=True, timeout=30
        )
        lines[options] = [ln for ln in done.stdout.splitlines() if "fails.mpy" in ln]
    assert lines[()] == ['  File "fails.mpy", line 3, in f'], lines
    assert lines[(NO_LINE_NUMBERS,)] == ['  File "fails.mpy", line 1, in f'], lines


def test_seen_sorts_readings_and_heartbeats_by_device_as_the_inbox_grows() -> None:
    from types import SimpleNamespace

    from tools.watcher import Inbox, Msg

    inbox = Inbox()
    seen = bench_live.Seen(SimpleNamespace(inbox=inbox))  # type: ignore[arg-type]

    def put(topic: str, payload: bytes) -> None:
        inbox.put(Msg(1.0, 1.0, topic, payload, False))

    put("sensornode/a/readings", b'{"seq": 1, "temperature": 20.5}')
    put("sensornode/b/readings", b"not json")
    put("sensornode/a/status", b"online")
    assert seen.count("a") == 1 and seen.count("b") == 0
    mark = inbox.mark()
    put("sensornode/a/heartbeat", b'{"sent": 1}')
    put("sensornode/a/readings", b'{"seq": 2, "temperature": 20.5}')
    assert [r[1] for r in seen.of("a")] == [1, 2]
    assert seen.of("a")[0][2] == bench_live.publish_packet_bytes(21, 31)
    assert seen.heartbeat("a", mark) == {"sent": 1}
    assert seen.heartbeat("a", inbox.mark()) is None  # none since


def test_report_as_markdown_for_the_readme() -> None:
    sizes = ({"xtensawin": 30000, "armv6m": 30000}, {"xtensawin": 1000, "armv6m": 1000})
    got, seen = _raw(30 * 1024, 482, 89)
    res = bench.assemble(bench_boards.BOARD_SIZED, got, seen, sizes, 10000, "mosquitto")
    text = bench_report.report({"32-bit": res}, markdown=True)
    assert "| resident heap, .mpy, net of the board | 30,720 | 5,000 |" in text
    assert "| … the virtual board's share | 17,000 |" in text
    assert "| … .mpy compiled -O3 (tracebacks say line 1), net | 29,320 | 3,600 |" in text


def test_each_runtimes_live_boards_have_devices_of_their_own() -> None:
    # The device id is the board name and the uid's last six hex digits: the tag must be there.
    runtimes = (bench_boards.WHEEL, bench_boards.BOARD_SIZED)
    for uid in (bench_measure.UID, bench_measure.BARE_UID, "4ec0e4c1c2c3", "f1eef1000031"):
        tagged = [bench_live.tagged(rt, uid) for rt in runtimes]
        assert all(len(t) == 12 and int(t, 16) >= 0 for t in tagged)
        devices = {bench_measure.device_of(t) for t in tagged}
        assert len(devices) == 2, (uid, tagged)
    fleet = {bench_live.tagged(rt, f"f1eef1{i:06x}")[-6:] for rt in runtimes for i in range(50)}
    assert len(fleet) == 100


@pytest.mark.skipif(not MICROPYTHON.exists(), reason="no MicroPython: run `make setup`")
def test_a_board_run_gives_the_same_console_through_a_file_as_through_a_pipe(
    tmp_path: Path,
) -> None:
    # The CPU runs send the console to a file; what comes back must be the console.
    main = "import bench_harness\nfor i in range(3):\n    print('line', i)\n"
    main += "bench_harness.report({'cpu': bench_harness.oncpu_ns() > 0})\n"
    rt = bench_boards.WHEEL
    outs = []
    for to_file in (False, True):
        fs = bench_boards.bare_fs(tmp_path / f"fs{to_file}", main)
        finished, out = bench_boards.run_board(rt, fs, bench_measure.UID, console_file=to_file)
        assert finished
        outs.append([line for line in out.splitlines() if line.startswith(("line", "bench"))])
    assert outs[0] == outs[1] == ["line 0", "line 1", "line 2", 'bench: {"cpu": true}']


def test_the_heap_report_judges_the_net_heap_and_lists_its_parts() -> None:
    sizes = ({"xtensawin": 30000, "armv6m": 30000}, {"xtensawin": 1000, "armv6m": 1000})

    def section(rt: bench_boards.Runtime, net: int) -> dict[str, Any]:
        return bench.assemble(rt, *_raw(net, 300, 60), sizes, 10000, "mosquitto")

    over = bench_report.heap_report({"64-bit": section(bench_boards.WHEEL, 30 * 1024)})
    lines = over.splitlines()
    assert "net resident heap, .mpy: 30,720 B (target <= 24 KB: NO)" in lines
    assert any(line.startswith("module firmware.app") and "7,000" in line for line in lines)
    at = bench_report.heap_report({"32-bit": section(bench_boards.BOARD_SIZED, 24 * 1024)})
    assert "net resident heap, .mpy: 24,576 B (target <= 24 KB: yes)" in at.splitlines()
    both = {
        "32-bit": {"missing": "no 32-bit MicroPython"},
        "64-bit": section(bench_boards.WHEEL, 1),
    }
    assert bench_report.heap_report(both).startswith(
        "32-bit: figures missing: no 32-bit MicroPython\n64-bit: "
    )


def test_bench_heap_prints_its_figures_and_leaves_bench_json_alone(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    got, seen = _raw(30 * 1024, 300, 60)
    sizes = ({"xtensawin": 1, "armv6m": 1}, {"xtensawin": 1, "armv6m": 1})
    section = bench.assemble(bench_boards.WHEEL, got, seen, sizes, 1, "mosquitto")
    monkeypatch.setattr(bench, "run_heap", lambda args: {"64-bit": section})
    out = tmp_path / "bench.json"
    assert bench.main(["--heap", "--out", str(out)]) == 0
    assert "net resident heap, .mpy: 30,720 B" in capsys.readouterr().out
    assert not out.exists()


def test_the_heap_figures_are_the_resident_heap_net_of_the_board_by_part(
    broker: Any, tmp_path: Path
) -> None:
    # One real measurement on the wheel's runtime: the figure and its parts come from the same
    # board runs the whole bench makes.
    res = bench.heap_figures(bench_boards.WHEEL, tmp_path, broker)
    measured = sorted(p.name for p in tmp_path.glob("*-measure-*/firmware/node.*"))
    assert measured == ["node.mpy"]  # the node as `make flash` leaves it, not its source
    sn = res["sensornode"]
    d = sn["detail"]
    board = d["board"]["before_main"] + d["board"]["bsp"]
    assert sn["net_resident_heap_bytes"] == d["resident_heap_bytes_mpy"] - board > 0
    modules = d["heap_parts"]["modules"]
    assert {"firmware.node", "firmware.transport", "umqtt.simple"} <= set(modules)
    assert "firmware.config" not in modules  # the boot's checks leave before the node runs
    assert sum(modules.values()) < sn["net_resident_heap_bytes"]
