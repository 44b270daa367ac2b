"""Runs a check script (host_tests/mpy_config_check.py, mpy_portal_check.py) under a Python
runtime (CPython, or the real MicroPython unix port) and gathers what it prints, so a test can
hold the two to the same results."""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
SCRIPT = os.path.join(ROOT, "host_tests", "mpy_config_check.py")


def run_check(runtime, what, *args, script=SCRIPT):
    """{case: [result, ...]} from `runtime script what *args`; skips the test when the runtime
    is not installed."""
    if not os.path.exists(runtime):
        pytest.skip("no MicroPython runtime at " + runtime)
    done = subprocess.run(
        [runtime, script, what, *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr + done.stdout
    *lines, last = done.stdout.splitlines()
    assert last == "done\t" + what
    results = {}
    for line in lines:
        case, tab, result = line.partition("\t")
        assert tab, line
        results.setdefault(case, []).append(result)
    return results
