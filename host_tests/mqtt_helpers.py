"""For the tests that watch a virtual board from outside: a check that the firmware never
crashed. (The subscriber is tools/watcher.py's Watcher; conftest.py has the loopback broker and
subscriber fixtures.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tools.vboard import layout
from tools.vboard.supervisor import MICROPYTHON

if TYPE_CHECKING:
    from tools.vboard import VirtualBoard

# The marks of a test module that runs virtual boards: slow, and skipped with the reason when
# the MicroPython runtime or umqtt.simple is missing.
VBOARD_MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(not MICROPYTHON.exists(), reason="no .venv/bin/micropython (make setup)"),
    pytest.mark.skipif(
        not (layout.UMQTT_DIR / "umqtt" / "simple.py").exists(),
        reason="no build/umqtt (python -m tools.fetch_umqtt --out build/umqtt)",
    ),
]


def no_traceback(board: VirtualBoard) -> None:
    """The firmware ran without an uncaught exception (which would leave it at the REPL)."""
    console = "\n".join(board.console)
    assert "Traceback" not in console, console
