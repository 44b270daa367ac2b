"""The console's own helpers: a reading's line that a Ctrl-C cuts short is finished first."""

import io
import sys

import pytest

from firmware import log


class Interrupted(io.StringIO):
    """A console whose writer is interrupted (Ctrl-C) when it gets `at`."""

    def __init__(self, at: str) -> None:
        super().__init__()
        self.at = at

    def write(self, s: str) -> int:
        if s == self.at:
            self.at = ""
            raise KeyboardInterrupt
        return super().write(s)


def test_a_reading_line_is_written_whole() -> None:
    out = io.StringIO()
    sys.stdout, saved = out, sys.stdout
    try:
        log.reading_echo()('{"seq": 1}', False)
        log.end_line()
    finally:
        sys.stdout = saved
    assert out.getvalue() == 'reading: {"seq": 1}\n'


def test_a_line_cut_by_ctrl_c_is_ended_before_the_next_message() -> None:
    out = Interrupted('{"seq": 1}')
    sys.stdout, saved = out, sys.stdout
    try:
        echo = log.reading_echo()
        with pytest.raises(KeyboardInterrupt):
            echo('{"seq": 1}', False)
        log.end_line()
        print("boot: stopped by Ctrl-C")
    finally:
        sys.stdout = saved
    assert out.getvalue().splitlines() == ["reading: ", "boot: stopped by Ctrl-C"]
