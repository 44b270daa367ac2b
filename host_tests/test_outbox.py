"""Outbox (firmware/node.py): bounded, oldest first out, overflow drops the oldest and counts it."""

from firmware.node import Outbox


def drain(box):
    out = []
    while box.count:
        out.append(box.peek())
        box.pop()
    return out


def test_readings_leave_in_the_order_they_were_taken():
    box = Outbox(5)
    for i in range(4):
        box.push(b"%d" % i)
    assert drain(box) == [b"0", b"1", b"2", b"3"]


def test_overflow_drops_the_oldest_and_counts_it():
    box = Outbox(3)
    for i in range(5):
        box.push(b"%d" % i)
    assert (drain(box), box.dropped) == ([b"2", b"3", b"4"], 2)


def test_peek_does_not_remove_until_pop():
    box = Outbox(2)
    box.push(b"a")
    assert box.peek() == b"a"
    assert box.count == 1
    assert (box.pop(), box.count, box.peek()) == (b"a", 0, None)


def test_ring_wraps_around_many_times_in_order():
    box = Outbox(3)
    seen = []
    for i in range(0, 20, 2):
        box.push(i)
        box.push(i + 1)
        seen += drain(box)
    assert (seen, box.dropped) == (list(range(20)), 0)


def test_popped_slots_release_their_payload():
    box = Outbox(2)
    box.push(b"x" * 100)
    box.pop()
    assert box.slots == [None, None]
