"""For the tests that watch a virtual board from outside: a check that the firmware never
crashed. (The subscriber is tools/watcher.py's Watcher; conftest.py has the loopback broker and
subscriber fixtures.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.vboard import VirtualBoard


def no_traceback(board: VirtualBoard) -> None:
    """The firmware ran without an uncaught exception (which would leave it at the REPL)."""
    console = "\n".join(board.console)
    assert "Traceback" not in console, console
