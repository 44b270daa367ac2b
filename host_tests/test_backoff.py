"""Backoff: exponential, capped, jittered, reset by success."""

from types import SimpleNamespace

from firmware.backoff import next_wait


def owner(base_ms, cap_ms, bits):
    # What the session and Wi-Fi hold: the policy and the failures so far.
    return SimpleNamespace(backoff=(base_ms, cap_ms, lambda n: bits), failures=0)


def test_waits_double_until_the_cap_with_no_jitter_at_the_top():
    o = owner(1000, 8000, 0xFFFF)
    assert [next_wait(o) for _ in range(6)] == [1000, 2000, 4000, 8000, 8000, 8000]
    assert o.failures == 6


def test_jitter_keeps_each_wait_between_half_and_all_of_its_ceiling():
    o = owner(1000, 60000, 0)
    assert [next_wait(o) for _ in range(4)] == [500, 1000, 2000, 4000]


def test_cap_holds_after_very_many_failures():
    o = owner(1000, 60000, 0xFFFF)
    waits = [next_wait(o) for _ in range(200)]
    assert max(waits) == 60000


def test_a_count_set_back_to_zero_starts_over_from_the_base():
    o = owner(1000, 60000, 0xFFFF)
    for _ in range(5):
        next_wait(o)
    o.failures = 0
    assert next_wait(o) == 1000


def test_two_boards_with_different_randomness_wait_differently():
    a = owner(1000, 60000, 0)
    b = owner(1000, 60000, 0xFFFF)
    assert [next_wait(a) for _ in range(3)] != [next_wait(b) for _ in range(3)]
