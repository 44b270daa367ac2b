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

    def write(self, s: str, n: int = -1) -> int:
        s = s if n < 0 else s[:n]
        if s == self.at:
            self.at = ""
            raise KeyboardInterrupt
        return super().write(s)


class Encoder:
    """The encoder as the echo sees it: its buffer starts with the last reading's console line
    (text here, bytes on a board), then whatever a longer reading left."""

    buf = 'reading: {"seq": 1}\n"uptime_ms":12}'
    head = len("reading: ")


class Writes(io.StringIO):
    """A console that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[str] = []

    def write(self, s: str, n: int = -1) -> int:  # as a board's stream: the first n only
        self.pieces.append(s if n < 0 else s[:n])
        return super().write(self.pieces[-1])


def test_a_reading_sent_is_written_as_the_encoders_line_in_one_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = Writes()
    monkeypatch.setattr(sys, "stdout", out)
    log.reading_echo(Encoder())('{"seq": 1}', False)
    log.end_line()
    assert out.pieces == ['reading: {"seq": 1}\n']


def test_a_reading_kept_says_so_on_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    log.reading_echo(Encoder())('{"seq": 1}', True)
    log.end_line()
    assert out.getvalue() == 'reading: {"seq": 1} (kept in the outbox until the broker is back)\n'


def test_a_line_cut_by_ctrl_c_is_ended_before_the_next_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = Interrupted('{"seq": 1}')
    monkeypatch.setattr(sys, "stdout", out)
    echo = log.reading_echo(Encoder())
    with pytest.raises(KeyboardInterrupt):
        echo('{"seq": 1}', True)  # a reading kept goes out in pieces
    log.end_line()
    print("boot: stopped by Ctrl-C")
    assert out.getvalue().splitlines() == ["reading: ", "boot: stopped by Ctrl-C"]
