"""The benchmark (tools/bench.py): what it computes on the host, and a smoke run with tiny counts
on the virtual board that checks build/bench.json's shape. No figure is held to a target here:
timings on a shared machine are not a test's business.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools import bench
from tools.vboard import layout
from tools.vboard.supervisor import MICROPYTHON

SENSORNODE_KEYS = {
    "resident_heap_bytes": int,
    "alloc_per_cycle_bytes": (int, float),
    "cpu_us_per_cycle": (int, float),
    "wire_bytes_per_reading": int,
    "first_reading_ms": int,
    "recover_s": (int, float),
    "lost_readings": int,
    "min_heapsize_bytes": int,
    "mpy_bytes": dict,
}
BARE_KEYS = {k: v for k, v in SENSORNODE_KEYS.items() if k not in ("recover_s", "lost_readings")}
FLEET_KEYS = {
    "boards": int,
    "rate_hz": (int, float),
    "seconds": (int, float),
    "sent": int,
    "received": int,
}


def test_publish_packet_counts_header_length_topic_packet_id_and_payload() -> None:
    # 0x32, remaining length 2 + 5 + 2 + 10 = 19 in one byte: 21 bytes in all
    assert bench.publish_packet_bytes(5, 10) == 21


def test_publish_packet_at_qos_0_has_no_packet_id() -> None:
    assert bench.publish_packet_bytes(5, 10, qos=0) == 19


def test_publish_packet_remaining_length_takes_two_bytes_from_128() -> None:
    assert bench.publish_packet_bytes(20, 104) == 1 + 2 + 128
    assert bench.publish_packet_bytes(20, 103) == 1 + 1 + 127


def test_bare_loop_publishes_at_sensornodes_default_qos() -> None:
    from firmware import config

    assert config.DEFAULTS["mqtt"]["qos"] == bench.QOS
    assert "publish(self.topic, self.reading(), False, 1)" in bench.BARE_LOOP.read_text()


def test_features_config_validates_without_problems(log: Any) -> None:
    from firmware import config

    cfg = layout.merge(layout.default_config(("127.0.0.1", 1883)), bench.FEATURES)
    out, problems = config.validate(cfg, log)
    assert problems == 0, log.text()
    assert out["ha_discovery"] is True
    assert out["sensors"][0]["filter"] == {"type": "median", "size": 5}


def check_section(section: dict[str, Any], keys: dict[str, Any]) -> None:
    for key, kind in keys.items():
        assert key in section, key
        assert isinstance(section[key], kind), (key, section[key])
        assert not isinstance(section[key], bool), key


@pytest.mark.skipif(not MICROPYTHON.exists(), reason="no .venv/bin/micropython (make setup)")
@pytest.mark.skipif(
    not (layout.UMQTT_DIR / "umqtt" / "simple.py").exists(), reason="no build/umqtt (make setup)"
)
def test_quick_run_writes_every_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results) >= {"sensornode", "bare", "fleet"}
    check_section(results["sensornode"], SENSORNODE_KEYS)
    check_section(results["bare"], BARE_KEYS)
    check_section(results["fleet"], FLEET_KEYS)
    for section in ("sensornode", "bare"):
        assert set(results[section]["mpy_bytes"]) == {"xtensawin", "armv6m"}
        assert all(n > 0 for n in results[section]["mpy_bytes"].values())
        assert results[section]["detail"]["problem"] is None
        for code in ("mpy", "romfs"):
            assert isinstance(results[section]["detail"][f"resident_heap_bytes_{code}"], int)
    assert results["fleet"]["boards"] == 3
    printed = capsys.readouterr().out
    assert "sensornode" in printed and "met?" in printed


@pytest.mark.skipif(not MICROPYTHON.exists(), reason="no .venv/bin/micropython (make setup)")
def test_packed_romfs_image_is_imported_from_on_the_runtime(tmp_path: Path) -> None:
    import subprocess

    fs = tmp_path / "fs"
    (fs / "pkg").mkdir(parents=True)
    (fs / "pkg" / "answer.py").write_text("VALUE = 6 * 7\n")
    bench.to_mpy(fs / "pkg" / "answer.py", "pkg/answer.py")
    bench.pack_romfs(fs, tmp_path / "staging")
    assert not list(fs.rglob("*.mpy")), "the .mpy files live in the image only"
    (fs / "main.py").write_text(bench._ROMFS + "import pkg.answer\nprint(pkg.answer.VALUE)\n")
    done = subprocess.run(
        [str(MICROPYTHON), "main.py"], cwd=fs, capture_output=True, text=True, timeout=30
    )
    assert done.stdout.strip() == "42", done.stdout + done.stderr
