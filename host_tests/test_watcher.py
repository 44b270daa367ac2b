"""tools/watcher.py: the inbox every watcher of boards waits on, and the paho client feeding it."""

from __future__ import annotations

import threading

import pytest

from tools.brokers import Broker
from tools.watcher import Inbox, Msg, Watcher


def msg(topic: str, payload: bytes = b"x") -> Msg:
    return Msg(0.0, 0.0, topic, payload, False)


def test_messages_keep_their_arrival_order_and_index() -> None:
    inbox = Inbox()
    for t in ("a", "b", "a"):
        inbox.put(msg(t))
    assert [m.topic for m in inbox.since(0)] == ["a", "b", "a"]
    assert inbox.wait("a", since=1, timeout=0)[0] == 2
    assert inbox.mark() == 3


def test_a_bounded_inbox_drops_the_oldest_and_keeps_indices() -> None:
    inbox = Inbox(keep=2)
    for p in (b"1", b"2", b"3"):
        inbox.put(msg("t", p))
    assert [m.payload for m in inbox.since(0)] == [b"2", b"3"]
    assert inbox.wait("t", since=0, timeout=0) == (1, inbox.since(1)[0])
    assert inbox.mark() == 3


def test_next_takes_each_matching_message_once_in_order() -> None:
    inbox = Inbox()
    for p in (b"online", b"x", b"offline", b"online"):
        inbox.put(msg("s", p))
    assert inbox.next("s", b"online", timeout=0).payload == b"online"
    assert inbox.next("s", b"online", timeout=0).payload == b"online"
    with pytest.raises(TimeoutError):
        inbox.next("s", b"offline", timeout=0)  # it came before the second online


def test_wait_names_what_it_saw_when_nothing_matches() -> None:
    inbox = Inbox()
    inbox.put(msg("other", b"hello"))
    with pytest.raises(TimeoutError, match="hello"):
        inbox.wait("mine", timeout=0.01)


def test_wait_returns_when_another_thread_puts_the_message() -> None:
    inbox = Inbox()
    threading.Timer(0.05, lambda: inbox.put(msg("late"))).start()
    assert inbox.wait("late", timeout=10)[1].topic == "late"


def test_wait_new_returns_what_came_since_and_the_next_index() -> None:
    inbox = Inbox()
    inbox.put(msg("a"))
    cursor, got = inbox.wait_new(0, timeout=0)
    assert (cursor, [m.topic for m in got]) == (1, ["a"])
    assert inbox.wait_new(cursor, timeout=0) == (1, [])


@pytest.fixture(scope="module")
def mqtt_broker():
    with Broker("auto") as b:
        yield b


def test_watcher_gets_what_it_subscribed_to_and_publishes(mqtt_broker: Broker) -> None:
    address = (mqtt_broker.host, mqtt_broker.port)
    watcher = Watcher(address, "w/#")
    try:
        watcher.publish("w/one", b"1")
        watcher.publish("elsewhere", b"2")
        watcher.publish("w/two", b"3")
        assert watcher.next("w/two").payload == b"3"
        assert [m.topic for m in watcher.inbox.since(0)] == ["w/one", "w/two"]
        assert watcher.state == "connected"
    finally:
        watcher.close()


@pytest.mark.slow
def test_watcher_started_before_its_broker_connects_when_it_comes() -> None:
    broker = Broker("auto")
    watcher = Watcher((broker.host, broker.port), "w/#", wait_s=None)
    try:
        broker.start()
        watcher.inbox.wait_until(lambda: bool(watcher.subscribed_at), 30, "SUBACK")
        assert watcher.state == "connected"
    finally:
        watcher.close()
        broker.stop()


@pytest.mark.slow
def test_watcher_resubscribes_after_the_broker_comes_back() -> None:
    with Broker("auto") as broker:
        watcher = Watcher((broker.host, broker.port), "w/#")
        try:
            broker.kill()
            broker.start()
            watcher.inbox.wait_until(lambda: len(watcher.subscribed_at) == 2, 30, "2nd SUBACK")
            watcher.publish("w/back", b"1")
            assert watcher.next("w/back").payload == b"1"
        finally:
            watcher.close()
