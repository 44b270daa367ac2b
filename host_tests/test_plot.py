"""tools/plot.py: a PNG per device, every key over time, from a CSV that make listen wrote."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tools import plot
from tools.csvlog import CsvLog, read_csv

pytestmark = pytest.mark.slow  # matplotlib takes seconds to draw


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def recorded(path: Path) -> Path:
    log = CsvLog(path)
    for i in range(20):
        log.add("esp32-a", {"seq": i, "uptime_ms": i, "ts": None, "t": 20 + i, "rh": 40}, 100.0 + i)
        log.add("picow-b", {"seq": i, "uptime_ms": i, "ts": None, "t": 10 - i}, 100.5 + i)
    return path


def test_every_device_gets_its_png_with_a_panel_per_key(tmp_path: Path) -> None:
    written = plot.plot_all(read_csv(recorded(tmp_path / "r.csv")), tmp_path / "out")
    assert [p.name for p in written] == ["esp32-a.png", "picow-b.png"]
    (w1, h1), (w2, h2) = png_size(written[0]), png_size(written[1])
    assert w1 == w2 and h1 > h2  # two keys (rh, t) stand taller than one


def test_series_keeps_each_keys_points_in_time_order(tmp_path: Path) -> None:
    readings = list(read_csv(recorded(tmp_path / "r.csv")))
    series = plot.series(plot.by_device(readings)["picow-b"])
    times, values = series["t"]
    assert list(series) == ["t"] and values == [10.0 - i for i in range(20)]
    assert times == sorted(times)


def test_the_cli_writes_next_to_the_csv_and_names_each_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plot.main([str(recorded(tmp_path / "r.csv"))]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"plot: wrote {tmp_path / 'esp32-a.png'}",
        f"plot: wrote {tmp_path / 'picow-b.png'}",
    ]


def test_a_missing_or_empty_csv_is_said_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plot.main([str(tmp_path / "none.csv")]) == 1
    (tmp_path / "empty.csv").write_text("received,device,seq,uptime_ms,ts\n")
    assert plot.main([str(tmp_path / "empty.csv")]) == 1
    assert "has no readings with numbers" in capsys.readouterr().err
