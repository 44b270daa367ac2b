"""The board's timestamp: unix seconds in two small integers, read from the clock once an hour."""

import time

import pytest

from firmware import board

_gmtime = time.gmtime  # the real one: a test below replaces time.gmtime for the board


@pytest.mark.parametrize(
    "t",
    [0, 59, 86399, 86400, 951782400, 951868800, 1709164800, 1795424355, 4102444799, 4107542400],
)
def test_unix_parts_of_a_date_are_its_unix_seconds(t):
    hi, lo = board.unix_parts(time.gmtime(t))
    assert hi * 100000 + lo == t
    assert 0 <= lo < 100000
    assert max(hi, lo) < 2**30  # small integers on a board


def test_unix_parts_hold_on_every_day_of_four_centuries():
    for day in range(0, 146097 * 4, 97):  # leap years, centuries and 2000 included
        t = day * 86400 + (day * 7919) % 86400
        hi, lo = board.unix_parts(time.gmtime(t))
        assert hi * 100000 + lo == t, time.gmtime(t)


class _Clock:
    def __init__(self, t):
        self.t = t
        self.reads = 0

    def gmtime(self):
        self.reads += 1
        return _gmtime(self.t)


def test_unix_time_counts_ticks_between_reads_of_the_clock(monkeypatch, log):
    clock = _Clock(1795499990)
    monkeypatch.setattr(board.time, "gmtime", clock.gmtime, raising=False)
    monkeypatch.setattr(board.time, "ticks_diff", lambda a, b: a - b, raising=False)
    b = board.Board(log)
    assert b.unix_time(0) is None  # until NTP has set the clock
    b.time_set = True
    assert b.unix_time(1000) == [17954, 99990]
    assert b.unix_time(12500) == [17955, 1]  # 11.5 s later, carried into the high half
    assert clock.reads == 1
    clock.t += 3600
    assert b.unix_time(1000 + 3600000) == [17955, 3590]  # an hour on: read again
    assert clock.reads == 2
