"""`make sim`: with no setup, a broker, a virtual board and live readings; nothing left behind."""

import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tools.brokers import port_is_free

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (ROOT / "build" / "umqtt" / "umqtt" / "simple.py").exists(),
        reason="run make setup first",
    ),
]


def board_processes():
    """Processes running the sim's virtual board (its filesystem is in their environment)."""
    workdir = str(ROOT / "build" / "sim")
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("VBOARD_FS", "").startswith(workdir):
                found.append(p)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def test_board_processes_finds_a_running_sim_board():
    sim = subprocess.Popen(
        [sys.executable, "-m", "tools.sim", "--duration", "30"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for line in sim.stdout:
            if "readings seq=" in line:
                break
        assert board_processes() != []
    finally:
        sim.terminate()
        sim.wait(timeout=30)


def test_sim_shows_live_readings_and_exits_cleanly():
    out = subprocess.run(
        [sys.executable, "-m", "tools.sim", "--duration", "8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stderr
    seqs = [int(s) for s in re.findall(r"readings seq=(\d+)", out.stdout)]
    assert len(seqs) >= 3 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert re.search(r"status online", out.stdout)
    port = int(re.search(r"broker on 127\.0\.0\.1:(\d+)", out.stdout).group(1))
    assert (board_processes(), port_is_free(port)) == ([], True)
