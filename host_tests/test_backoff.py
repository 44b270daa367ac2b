"""Backoff: exponential, capped, jittered, reset by success."""

from firmware.backoff import Backoff


def fixed(value):
    return lambda bits: value


def test_waits_double_until_the_cap_with_no_jitter_at_the_top():
    b = Backoff(1000, 8000, fixed(0xFFFF))
    assert [b.next_ms() for _ in range(6)] == [1000, 2000, 4000, 8000, 8000, 8000]


def test_jitter_keeps_each_wait_between_half_and_all_of_its_ceiling():
    b = Backoff(1000, 60000, fixed(0))
    assert [b.next_ms() for _ in range(4)] == [500, 1000, 2000, 4000]


def test_cap_holds_after_very_many_failures():
    b = Backoff(1000, 60000, fixed(0xFFFF))
    waits = [b.next_ms() for _ in range(200)]
    assert max(waits) == 60000


def test_reset_starts_over_from_the_base():
    b = Backoff(1000, 60000, fixed(0xFFFF))
    for _ in range(5):
        b.next_ms()
    b.reset()
    assert b.next_ms() == 1000


def test_two_boards_with_different_randomness_wait_differently():
    a = Backoff(1000, 60000, fixed(0))
    b = Backoff(1000, 60000, fixed(0xFFFF))
    assert [a.next_ms() for _ in range(3)] != [b.next_ms() for _ in range(3)]
