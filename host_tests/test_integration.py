"""Integration: the unmodified firmware on virtual boards against real brokers on 127.0.0.1.

Every test that talks to a broker runs once against Mosquitto and once against amqtt (Mosquitto
is skipped where it is not installed). Subscribers are real clients: paho-mqtt, and mosquitto_sub
where it is installed. Boards run fast: a reading every 0.5 s, keepalive 5 s (the config's
minimum), a heartbeat every 3 s.

Outages that must be watched by a subscriber on the far side (a broker down at boot, a broker
killed and restarted) put a loopback relay (host_tests/relay.py) between the board and the
broker: the broker really is down, and the relay keeps refusing the board until the restarted
broker has the test's subscriber back, so the board cannot flush its outbox before anyone
listens. Half-open links are made by freezing the relay.

Timeouts on waits only turn a hang into a failure; every wait ends as soon as its event comes.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from firmware.commands import MAX_BYTES
from host_tests.mqtt_helpers import VBOARD_MARKS, no_traceback
from host_tests.relay import Relay
from tools.brokers import Broker, mosquitto_path
from tools.vboard import VirtualBoard, layout
from tools.watcher import Inbox, Msg, Watcher

pytestmark = VBOARD_MARKS

KEEPALIVE_S = 5
INTERVAL_S = 0.5
FAST: dict[str, Any] = {
    "interval_s": INTERVAL_S,
    "heartbeat_s": 3,
    "mqtt": {"keepalive": KEEPALIVE_S},
}
WAIT_S = 20.0  # the longest any single expected event may take before a test gives up
# a link lost: retried at once once it had lasted 30 s, else after the backoff
LOST = r"^mqtt: broker .* lost \(.*\); (reconnecting|retry in \d+ s)$"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or (
    "/usr/bin/mosquitto_sub" if Path("/usr/bin/mosquitto_sub").exists() else None
)


# -- brokers, boards, subscribers -------------------------------------------------------------


@pytest.fixture(scope="module", params=["mosquitto", "amqtt"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "mosquitto" and mosquitto_path() is None:
        pytest.skip("mosquitto is not installed")
    return request.param


@pytest.fixture(scope="module")
def broker(broker_kind: str) -> Iterator[Broker]:
    """One broker of the kind under test, shared by the module's tests (each board has its own
    id, so retained messages do not meet); tests that kill a broker start their own."""
    with Broker(broker_kind) as b:
        yield b


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    """Everything a test starts is stopped here, in reverse order, pass or fail."""
    with contextlib.ExitStack() as s:
        yield s


def subscribe(
    stack: contextlib.ExitStack, broker: Broker, topics: list[str], inbox: Inbox | None = None
) -> tuple[Inbox, Watcher]:
    sub = Watcher((broker.host, broker.port), topics, inbox, wait_s=WAIT_S)
    inbox = sub.inbox
    stack.callback(sub.close)
    return inbox, sub


def make_board(
    stack: contextlib.ExitStack,
    tmp_path: Path,
    uid: str,
    port: int,
    config: dict[str, Any] | None = None,
) -> VirtualBoard:
    """A board with the fast bench config, its broker at 127.0.0.1:port; started."""
    board = VirtualBoard(
        broker=("127.0.0.1", port),
        uid=uid,
        config=layout.merge(FAST, config or {}),
        workdir=tmp_path / uid,
    )
    stack.callback(board.stop)
    board.start()
    return board


def own_broker(stack: contextlib.ExitStack, kind: str, *, start: bool = True) -> Broker:
    """A broker for this test alone (for tests that kill it)."""
    b = Broker(kind)
    stack.callback(b.stop)
    if start:
        b.start()
    return b


def relay_to(stack: contextlib.ExitStack, broker: Broker, *, listening: bool = True) -> Relay:
    relay = Relay((broker.host, broker.port), listening=listening)
    stack.callback(relay.close)
    return relay


def readings(inbox: Inbox, board: VirtualBoard, since: int = 0) -> list[Msg]:
    return inbox.on(board.topic("readings"), since)


def seqs(msgs: list[Msg]) -> list[int]:
    return [m.json()["seq"] for m in msgs]


def first_copies(numbers: list[int]) -> list[int]:
    """The numbers in arrival order, repeats removed: QoS 1 is at-least-once, so a reading in
    flight when a link died may arrive twice; losing or reordering one is what counts."""
    return list(dict.fromkeys(numbers))


def wait_readings(inbox: Inbox, board: VirtualBoard, n: int, since: int = 0) -> list[Msg]:
    """Waits until `n` readings of the board arrived from index `since` on; returns them all."""
    topic = board.topic("readings")
    inbox.wait_until(
        lambda: len(inbox.on(topic, since)) >= n,
        WAIT_S + n * INTERVAL_S,
        f"{n} readings on {topic}",
    )
    return inbox.on(topic, since)


def wait_seq(inbox: Inbox, board: VirtualBoard, seq: int, since: int = 0) -> list[Msg]:
    """Waits until the reading with this seq arrived; returns the board's readings so far."""
    inbox.wait(board.topic("readings"), lambda m: m.json()["seq"] == seq, since=since)
    return readings(inbox, board, since)


def taken_at(msgs: list[Msg]) -> Callable[[Msg], float]:
    """Maps a reading to the host's monotonic time it was taken at. The board's ticks_ms and
    time.monotonic() are the same machine clock; the offset is the smallest arrival delay seen
    among readings that went out at once (they arrive a few ms after being taken)."""
    offset = min(m.at - m.json()["uptime_ms"] / 1000 for m in msgs)
    return lambda m: m.json()["uptime_ms"] / 1000 + offset


def wait_taken_after(
    inbox: Inbox, board: VirtualBoard, when: Callable[[Msg], float], t: float
) -> list[Msg]:
    """Waits for a reading taken after host time t (so every reading queued before it, which
    goes out first, has arrived); returns the board's readings so far."""
    inbox.wait(board.topic("readings"), lambda m: when(m) > t)
    return readings(inbox, board)


def console_at(board: VirtualBoard, pattern: str, since: int) -> tuple[int, float]:
    """Waits for a console line; (index just after it, host time it was seen)."""
    board.wait_for(pattern, WAIT_S, since=since)
    seen = time.monotonic()
    lines = board.console
    regex = re.compile(pattern)
    for i in range(since, len(lines)):
        if regex.search(lines[i]):
            return i + 1, seen
    raise AssertionError(pattern)  # pragma: no cover - wait_for found it


def quiet_moment(inbox: Inbox, board: VirtualBoard) -> None:
    """Returns just after a reading arrived: its PUBACK is out, the next one is INTERVAL_S away,
    so an outage made now catches no QoS 1 publish half-way."""
    inbox.wait(board.topic("readings"), since=inbox.mark())
    time.sleep(0.05)


def command(sub: Watcher, board: VirtualBoard, doc: Any) -> None:
    payload = doc if isinstance(doc, (bytes, str)) else json.dumps(doc)
    sub.publish(board.topic("cmd"), payload)


def late_status(broker: Broker, board: VirtualBoard) -> Msg:
    """What a subscriber that connects now gets on the board's status topic (the retained one)."""
    sub = Watcher((broker.host, broker.port), [board.topic("status")], wait_s=WAIT_S)
    try:
        return sub.inbox.wait(board.topic("status"), timeout=5)[1]
    finally:
        sub.close()


# -- 1. readings and the retained birth ------------------------------------------------------


def test_readings_arrive_gap_free_with_the_contract_fields_and_online_is_retained(
    stack: contextlib.ExitStack, broker: Broker, tmp_path: Path
) -> None:
    inbox, _ = subscribe(stack, broker, ["sensornode/#"])
    board = make_board(stack, tmp_path, "00000000c101", broker.port)
    inbox.wait_payload(board.topic("status"), b"online")
    got = wait_readings(inbox, board, 6)

    assert seqs(got) == list(range(1, len(got) + 1))
    now = time.time()
    for m in got:
        r = m.json()
        assert set(r) == {"seq", "uptime_ms", "ts", "temperature"}, r
        assert type(r["uptime_ms"]) is int and r["uptime_ms"] >= 0
        # ts is null until NTP has set the clock (the first connect); then unix seconds
        assert r["ts"] is None or (type(r["ts"]) is int and abs(r["ts"] - now) < 60), r
        assert isinstance(r["temperature"], float)
    assert isinstance(got[-1].json()["ts"], int)
    uptimes = [m.json()["uptime_ms"] for m in got]
    assert uptimes == sorted(uptimes)

    late = late_status(broker, board)
    assert (late.payload, late.retain) == (b"online", True)
    if MOSQUITTO_SUB:
        out = subprocess.run(
            [MOSQUITTO_SUB, "-h", broker.host, "-p", str(broker.port)]
            + ["-t", board.topic("status"), "-C", "1", "-W", "10", "-F", "%r %p"],
            capture_output=True,
            text=True,
            timeout=15,
        )
        assert out.stdout.strip() == "1 online", out
    # The first boot on new files checked them, kept the result and restarted once; both boots
    # say the power-on that started the board.
    assert board.soft_resets == 1
    boots = [c for c in board.console if "reset cause:" in c]
    assert len(boots) == 2 and all(c.endswith("reset cause: power-on") for c in boots), boots
    windows = [c for c in board.console if c.startswith("boot: Ctrl-C within")]
    assert len(windows) == 1  # the restart skips boot.py's safe-mode window
    no_traceback(board)


# -- 2. power cut -------------------------------------------------------------------------------


def test_power_cut_gets_offline_published_within_one_and_a_half_keepalives(
    stack: contextlib.ExitStack, broker: Broker, tmp_path: Path
) -> None:
    inbox, _ = subscribe(stack, broker, ["sensornode/#"])
    board = make_board(stack, tmp_path, "00000000c201", broker.port)
    inbox.wait_payload(board.topic("status"), b"online")
    mark = inbox.mark()

    cut = time.monotonic()
    board.kill()
    _, will = inbox.wait_payload(board.topic("status"), b"offline", since=mark)

    allowance_s = 1.0  # the broker's own keepalive check runs at most about once a second
    assert will.at - cut <= 1.5 * KEEPALIVE_S + allowance_s
    assert board.pid is None and board.restarts == 0


# -- 3. reboot command ----------------------------------------------------------------------


def test_reboot_command_says_offline_then_online_and_the_board_comes_back_from_seq_1(
    stack: contextlib.ExitStack, broker: Broker, tmp_path: Path
) -> None:
    inbox, sub = subscribe(stack, broker, ["sensornode/#"])
    board = make_board(stack, tmp_path, "00000000c301", broker.port)
    status = board.topic("status")
    inbox.wait_payload(status, b"online")
    wait_readings(inbox, board, 3)
    mark = inbox.mark()

    command(sub, board, {"cmd": "reboot", "id": "r1"})
    _, ack = inbox.wait(board.topic("event"), since=mark)
    assert ack.json() == {"event": "reboot", "ok": True, "detail": "rebooting", "id": "r1"}
    i_off, _ = inbox.wait_payload(status, b"offline", since=mark)
    i_on, _ = inbox.wait_payload(status, b"online", since=i_off)
    after = wait_readings(inbox, board, 3, since=i_on)
    _, beat = inbox.wait(board.topic("heartbeat"), since=i_on)

    assert seqs(after)[:3] == [1, 2, 3]
    assert beat.json()["reset_cause"] in ("soft reset", "hard reset")
    assert board.restarts == 1
    assert board.soft_resets == 1  # the first boot's restart only: the files did not change
    no_traceback(board)


# -- 4. broker down at boot ----------------------------------------------------------------


def test_readings_taken_while_the_broker_is_down_at_boot_all_arrive_in_order(
    stack: contextlib.ExitStack, broker_kind: str, tmp_path: Path
) -> None:
    down_s = 10.0
    late = own_broker(stack, broker_kind, start=False)
    relay = relay_to(stack, late, listening=False)
    board = make_board(stack, tmp_path, "00000000c401", relay.port)
    booted = time.monotonic()
    board.wait_for(r"^mqtt: broker 127\.0\.0\.1:\d+ unreachable \(ECONNREFUSED\); retry in", WAIT_S)

    time.sleep(max(0.0, booted + down_s - time.monotonic()))  # the outage itself
    late.start()
    inbox, _ = subscribe(stack, late, ["sensornode/#"])
    relay.listen()  # only now can the board reach the broker: nothing it sends goes unheard
    _, back = console_at(board, r"^mqtt: connected to", 0)
    live = inbox.wait(board.topic("readings"), lambda m: m.at > back + 2 * INTERVAL_S)[1]
    got = readings(inbox, board)

    assert seqs(got) == list(range(1, len(got) + 1))  # from 1, in order, no gap, no repeat
    when = taken_at([live])  # a reading sent as it was taken: its delay is the clock offset
    offline = [m for m in got if when(m) < back]
    assert len(offline) >= (down_s - 3) / INTERVAL_S, len(offline)  # 3 s: boot and Wi-Fi
    # taken on schedule while the broker was away, not made up afterwards (only those: the
    # flush after the connect blocks the loop, and a reading due then is taken late)
    gaps = [
        (b.json()["seq"], b.json()["uptime_ms"] - a.json()["uptime_ms"])
        for a, b in pairwise(offline)
    ]
    assert all(abs(g - INTERVAL_S * 1000) < 150 for _, g in gaps), gaps
    no_traceback(board)


# -- 5. broker killed and restarted ---------------------------------------------------------


def broker_outage(
    stack: contextlib.ExitStack,
    broker: Broker,
    relay: Relay,
    board: VirtualBoard,
    inbox: Inbox,
    sub: Watcher,
    min_down_s: float,
) -> tuple[float, float, int]:
    """SIGKILLs the broker at a quiet moment, keeps it away from the board for at least
    min_down_s, restarts it, resubscribes, lets the board back in. Returns the times it was
    killed and the board reconnected, and the inbox's length at the kill."""
    quiet_moment(inbox, board)
    mark = len(board.console)
    received = inbox.mark()
    relay.refuse()
    killed = time.monotonic()
    broker.kill()
    sub.close()
    board.wait_for(LOST, WAIT_S, since=mark)
    board.wait_for(r"unreachable \(ECONNREFUSED\); retry in", WAIT_S, since=mark)
    time.sleep(max(0.0, killed + min_down_s - time.monotonic()))  # the outage itself
    broker.restart()
    subscribe(stack, broker, ["sensornode/#"], inbox)
    relay.listen()
    _, back = console_at(board, r"^mqtt: connected to", mark)
    return killed, back, received


def test_broker_restart_loses_no_reading_that_fits_in_the_outbox(
    stack: contextlib.ExitStack, broker_kind: str, tmp_path: Path
) -> None:
    outbox = 40  # 20 s of readings: more than the outage, however the backoff falls
    b = own_broker(stack, broker_kind)
    relay = relay_to(stack, b)
    inbox, sub = subscribe(stack, b, ["sensornode/#"])
    board = make_board(stack, tmp_path, "00000000c501", relay.port, {"outbox_size": outbox})
    when = taken_at(wait_readings(inbox, board, 3))

    killed, back, _ = broker_outage(stack, b, relay, board, inbox, sub, min_down_s=2.0)
    got = wait_taken_after(inbox, board, when, back + INTERVAL_S)
    _, beat = inbox.wait(board.topic("heartbeat"), lambda m: m.json()["reconnects"] >= 1)

    offline = first_copies([m.json()["seq"] for m in got if killed < when(m) < back])
    assert 3 <= len(offline) <= outbox, offline
    assert first_copies(seqs(got)) == list(range(1, max(seqs(got)) + 1))
    assert beat.json()["dropped"] == 0
    no_traceback(board)


def test_outage_longer_than_the_outbox_drops_and_counts_exactly_the_oldest(
    stack: contextlib.ExitStack, broker_kind: str, tmp_path: Path
) -> None:
    outbox = 3
    b = own_broker(stack, broker_kind)
    relay = relay_to(stack, b)
    inbox, sub = subscribe(stack, b, ["sensornode/#"])
    board = make_board(stack, tmp_path, "00000000c502", relay.port, {"outbox_size": outbox})
    wait_readings(inbox, board, 3)

    down_s = (outbox + 4) * INTERVAL_S
    _, _, received = broker_outage(stack, b, relay, board, inbox, sub, min_down_s=down_s)
    before = first_copies(seqs(inbox.on(board.topic("readings"), until=received)))
    _, beat = inbox.wait(board.topic("heartbeat"), lambda m: m.json()["reconnects"] >= 1)
    dropped = beat.json()["dropped"]
    first_after = before[-1] + dropped + 1
    got = first_copies(seqs(wait_seq(inbox, board, first_after + outbox + 1)))

    assert dropped >= 3
    assert before == list(range(1, before[-1] + 1))
    missing = sorted(set(range(1, max(got) + 1)) - set(got))
    assert missing == list(range(before[-1] + 1, before[-1] + dropped + 1))  # the oldest ones
    assert got[len(before) :][: outbox + 1] == list(range(first_after, first_after + outbox + 1))
    no_traceback(board)


# -- 6. Wi-Fi drop ----------------------------------------------------------------------------


def test_wifi_drop_is_rejoined_and_readings_continue_without_a_gap(
    stack: contextlib.ExitStack, broker: Broker, tmp_path: Path
) -> None:
    inbox, _ = subscribe(stack, broker, ["sensornode/#"])
    board = make_board(stack, tmp_path, "00000000c601", broker.port)
    when = taken_at(wait_readings(inbox, board, 3))
    board.wifi_delay(1500)  # the re-join takes a while: readings meanwhile go to the outbox
    quiet_moment(inbox, board)
    mark = len(board.console)

    dropped_at = time.monotonic()
    board.wifi_drop()
    board.wait_for(r"^wifi: link to 'vboard-net' lost; re-joining$", WAIT_S, since=mark)
    board.wait_for(r"^wifi: joined 'vboard-net'", WAIT_S, since=mark)
    _, back = console_at(board, r"^mqtt: connected to", mark)
    got = wait_taken_after(inbox, board, when, back + INTERVAL_S)

    assert len([m for m in got if dropped_at < when(m) < back]) >= 2  # the outbox was used
    assert seqs(got) == list(range(1, len(got) + 1))
    no_traceback(board)


# -- 7. half-open link ----------------------------------------------------------------------


def test_half_open_link_is_noticed_within_keepalive_and_the_board_reconnects(
    stack: contextlib.ExitStack, broker: Broker, tmp_path: Path
) -> None:
    relay = relay_to(stack, broker)
    inbox, _ = subscribe(stack, broker, ["sensornode/#"])
    board = make_board(stack, tmp_path, "00000000c701", relay.port)
    inbox.wait_payload(board.topic("status"), b"online")
    wait_readings(inbox, board, 2)
    mark = len(board.console)

    frozen = time.monotonic()
    relay.freeze()  # nothing moves on the board's connection any more; nothing is closed
    _, noticed = console_at(board, LOST, mark)
    # it comes back through the relay, which forwards new connections normally
    board.wait_for(r"^mqtt: connected to", WAIT_S, since=mark)
    wait_readings(inbox, board, len(readings(inbox, board)) + 2)

    assert noticed - frozen <= KEEPALIVE_S, board.console[mark:]
    assert relay.accepted == 2
    no_traceback(board)


def test_retained_status_is_online_after_reconnecting_from_a_half_open_link(
    stack: contextlib.ExitStack, broker: Broker, tmp_path: Path
) -> None:
    """The broker learns of the dead link only from the new CONNECT with the same client id
    (Mosquitto: the old will goes out before the new CONNACK) or from its own keepalive check
    later (amqtt 0.12.1: the old will comes after the new `online`); either way the last word
    on the status topic must be `online`, which every heartbeat says again (retained)."""
    relay = relay_to(stack, broker)
    inbox, _ = subscribe(stack, broker, ["sensornode/#"])
    board = make_board(stack, tmp_path, "00000000c702", relay.port)
    status = board.topic("status")
    inbox.wait_payload(status, b"online")
    wait_readings(inbox, board, 2)
    mark = len(board.console)
    received = inbox.mark()

    frozen = time.monotonic()
    relay.freeze()
    board.wait_for(r"^mqtt: connected to", WAIT_S, since=mark)
    i_back, _ = inbox.wait_payload(status, b"online", since=received)
    # the old connection's will, if the broker still sends it, is due 1.5 x keepalive after
    # the last packet it saw (and amqtt rounds the half up)
    with contextlib.suppress(TimeoutError):
        inbox.wait(status, since=i_back + 1, timeout=frozen + 2 * KEEPALIVE_S - time.monotonic())

    after = [m.payload for m in inbox.on(status, since=i_back + 1)]
    if b"offline" in after:  # amqtt's late will: the next heartbeat says online again
        i_will = i_back + 1 + after.index(b"offline")
        inbox.wait_payload(status, b"online", since=i_will + 1)
    assert late_status(broker, board).payload == b"online"


# -- 8. broken configuration -----------------------------------------------------------------


def test_config_that_is_not_json_is_named_and_the_board_runs_on_defaults(tmp_path: Path) -> None:
    """No broker is involved: without config.json there is no broker host to publish to, so
    the board only says so and keeps running (it still re-joins a dropped Wi-Fi link)."""
    fs = tmp_path / "fs"
    layout.flash(fs, "esp32", layout.default_config(None), layout.DEFAULT_SECRETS)
    (fs / "config.json").write_text('{"mqtt": {"host": "127.0.0.1", "port": 18')
    with VirtualBoard(fs=fs, uid="00000000c801", workdir=tmp_path / "work") as board:
        board.wait_for(
            r"^config: config\.json is not valid JSON \(.*\); running on defaults$", WAIT_S
        )
        board.wait_for(r"^config: mqtt\.host is not set: no broker to publish to", WAIT_S)
        board.wait_for(r"^boot: running", WAIT_S)
        board.wait_for(r"^wifi: joined 'vboard-net'", WAIT_S)
        mark = len(board.console)
        board.wifi_drop()  # proof of life: the loop notices and re-joins
        board.wait_for(r"^wifi: joined 'vboard-net'", WAIT_S, since=mark)
        assert board.running and board.restarts == 0
        no_traceback(board)


def test_config_fields_of_the_wrong_type_are_named_and_readings_still_arrive(
    stack: contextlib.ExitStack, broker: Broker, tmp_path: Path
) -> None:
    inbox, _ = subscribe(stack, broker, ["sensornode/#"])
    wrong = {
        "heartbeat_s": "often",
        "outbox_size": 2.5,
        "ha_discovery": "yes",
        "mqtt": {"qos": "1"},
        "sensors": [{"type": "sim", "name": "temperature", "base": "warm"}],
    }
    board = make_board(stack, tmp_path, "00000000c802", broker.port, wrong)
    for line in (
        r"^config: heartbeat_s = 'often' is not a number .*; using 60$",
        r"^config: outbox_size = 2\.5 is not a whole number .*; using 100$",
        r"^config: ha_discovery = 'yes' is not true or false; using True$",
        r"^config: mqtt\.qos = '1' is not one of 0, 1; using 1$",
        r"^config: sensors\[0\]\.base = 'warm' is not a number .*; using 20\.0$",
        r"^config: 5 problem\(s\) above; running with defaults in their place$",
    ):
        board.wait_for(line, WAIT_S)
    got = wait_readings(inbox, board, 3)

    assert seqs(got) == [1, 2, 3]
    assert all(isinstance(m.json()["temperature"], float) for m in got)
    no_traceback(board)


# -- 9. interval command --------------------------------------------------------------------


def test_interval_command_changes_the_rate_and_answers_on_the_event_topic(
    stack: contextlib.ExitStack, broker: Broker, tmp_path: Path
) -> None:
    inbox, sub = subscribe(stack, broker, ["sensornode/#"])
    board = make_board(stack, tmp_path, "00000000c901", broker.port)
    before = wait_readings(inbox, board, 3)
    mark = inbox.mark()

    command(sub, board, {"cmd": "interval", "value": 1, "id": "i1"})
    i_ack, ack = inbox.wait(board.topic("event"), since=mark)
    after = wait_readings(inbox, board, 3, since=i_ack)

    assert ack.json() == {
        "event": "interval",
        "ok": True,
        "detail": "interval_s is now 1: applied now and saved in config.json",
        "id": "i1",
    }

    def gaps(msgs: list[Msg]) -> list[int]:
        return [b.json()["uptime_ms"] - a.json()["uptime_ms"] for a, b in pairwise(msgs)]

    assert all(abs(g - 500) < 200 for g in gaps(before)), gaps(before)
    assert all(abs(g - 1000) < 200 for g in gaps(after)), gaps(after)
    no_traceback(board)


# -- 10. malformed commands -----------------------------------------------------------------


def test_malformed_commands_each_get_an_error_event_and_the_board_goes_on(
    stack: contextlib.ExitStack, broker: Broker, tmp_path: Path
) -> None:
    inbox, sub = subscribe(stack, broker, ["sensornode/#"])
    board = make_board(stack, tmp_path, "00000000ca01", broker.port)
    event = board.topic("event")
    wait_readings(inbox, board, 2)
    oversized = json.dumps({"cmd": "ping", "pad": "x" * (MAX_BYTES + 50)})

    for payload, detail in (
        ("this is not json", "command is not valid JSON"),
        ('{"cmd": "dance"}', "unknown command 'dance'"),
        (oversized, f"command of {len(oversized)} bytes is over the {MAX_BYTES}-byte limit"),
        ('{"cmd": "interval", "value": "fast"}', "interval needs a value in seconds"),
    ):
        mark = inbox.mark()
        command(sub, board, payload)
        _, answer = inbox.wait(event, since=mark)
        assert answer.json()["event"] == "error" and answer.json()["ok"] is False, answer
        assert detail in answer.json()["detail"], answer

    mark = inbox.mark()
    command(sub, board, {"cmd": "heartbeat", "id": "h1"})
    _, ack = inbox.wait(event, since=mark)
    _, beat = inbox.wait(board.topic("heartbeat"), since=mark)
    got = wait_readings(inbox, board, len(readings(inbox, board)) + 2)

    assert ack.json() == {"event": "heartbeat", "ok": True, "detail": "heartbeat sent", "id": "h1"}
    assert beat.json()["errors"] == 4
    assert seqs(got) == list(range(1, len(got) + 1))
    assert board.restarts == 0
    no_traceback(board)


# -- 11. two boards -------------------------------------------------------------------------


def test_two_boards_on_one_broker_do_not_disturb_each_other(
    stack: contextlib.ExitStack, broker: Broker, tmp_path: Path
) -> None:
    inbox, _ = subscribe(stack, broker, ["sensornode/#"])
    one = make_board(stack, tmp_path, "00000000cb01", broker.port)
    two = make_board(stack, tmp_path, "00000000cb02", broker.port)
    assert one.device_id != two.device_id
    for b in (one, two):
        inbox.wait_payload(b.topic("status"), b"online")
        wait_readings(inbox, b, 4)
    mark = inbox.mark()

    one.kill()
    inbox.wait_payload(one.topic("status"), b"offline", since=mark)
    n = len(readings(inbox, two))
    wait_readings(inbox, two, n + 3)

    for b in (one, two):
        assert seqs(readings(inbox, b)) == list(range(1, len(readings(inbox, b)) + 1))
        assert len([line for line in b.console if line.startswith("mqtt: connected")]) == 1
    # only ever online (the birth, then once more with every heartbeat)
    assert {m.payload for m in inbox.on(two.topic("status"))} == {b"online"}
    assert late_status(broker, two).payload == b"online"
    assert late_status(broker, one).payload == b"offline"
    no_traceback(two)
