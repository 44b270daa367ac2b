"""Integration: the unmodified firmware on virtual boards against a broker that misbehaves.

Every scenario of host_tests/hostile_broker.py runs on a board of its own, all of them side by
side in one run (one per umqtt.simple version tested): the broker is hostile for HOSTILE_S, then
behaves. For each board: it never crashed, was never reset (by its watchdog or by a command),
kept its readings (every seq from 1 arrives once the broker behaves: the outbox held them), says
on its console what happened, and publishes again soon after the broker behaves. How often it
reconnected while the broker was hostile is measured and bounded: no input makes it reconnect
more than a few times a minute. HOSTILE_S can be raised from the environment
(SENSORNODE_HOSTILE_S=60) to measure the reconnect rate over a whole minute.

Two more run against the real Mosquitto and amqtt: a retained {"cmd": "reboot"} and a retained
40 KB message on the board's command topic. No boot loop, no reconnect storm, readings flow.

The byte-level cases (every umqtt.simple version, a fake clock) are in test_hostile_wire.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from host_tests.hostile_broker import SCENARIOS, HostileBroker
from host_tests.mqtt_helpers import no_traceback
from host_tests.test_integration import FAST, first_copies
from tools.brokers import Broker, mosquitto_path
from tools.vboard import VirtualBoard, layout
from tools.vboard.supervisor import MICROPYTHON
from tools.watcher import Watcher

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not MICROPYTHON.exists(), reason="no .venv/bin/micropython (make setup)"),
]

HOSTILE_S = float(os.environ.get("SENSORNODE_HOSTILE_S", "12"))
ENV_VERSIONS = "SENSORNODE_HOSTILE_UMQTT"
WATCHDOG_S = 5  # every blocking step has a deadline of 2 s at keepalive 5: never reached
# room for every reading of a minute's outage and the recovery (a reading every 0.5 s)
CONFIG: dict[str, Any] = layout.merge(
    FAST, {"watchdog_s": WATCHDOG_S, "ha_discovery": False, "outbox_size": 400}
)

# What each scenario must leave on the console while the broker is hostile.
SAYS = {
    "connack-never": r"unreachable \(ETIMEDOUT\); retry in",
    "connack-late": r"unreachable \(ETIMEDOUT\); retry in",
    "connack-malformed": r"unreachable \(.*\); retry in",
    "refuse-1": r"refused: unacceptable protocol version; retry in",
    "refuse-2": r"refused: client id rejected; retry in",
    "refuse-3": r"refused: server unavailable; retry in",
    "refuse-4": r"refused: bad username or password; retry in",
    "refuse-5": r"refused: not authorised; retry in",
    "length-200mb": r"skipped a message of 209715200 bytes on .*/cmd \(over the 2048 bytes",
    "qos2": r"skipped a message of \d+ bytes on .*/cmd \(QoS 2 is not supported\)",
    "big-command": r"skipped a message of 104\d{4} bytes on .*/cmd \(over the 2048 bytes",
    "retained-100kb": r"skipped a message of 1000\d\d bytes .*it is retained: clear it with "
    r"mosquitto_pub -r -n -t '.*/cmd'$",
    "retained-reboot": r"^cmd: ignored a retained command on .*/cmd \(clear it: mosquitto_pub "
    r"-r -n -t '.*/cmd'\)$",
    "burst": r"^cmd: ping$",
    "silent": r"lost \((ETIMEDOUT on publish|no answer to PINGREQ)",
    "drip": r"lost \(ETIMEDOUT( on publish)?\); retry in",  # whichever exchange runs
    "puback-never": r"lost \(ETIMEDOUT on publish\); retry in",
}
# Scenarios in which the link is never dropped: one connect for the whole run.
KEEPS_LINK = ("qos2", "big-command", "retained-100kb", "retained-reboot", "burst")


def versions() -> list[str | None]:
    """The default 1.3.4 (the package index's) and, where ../shared has it, the newest; every
    version ../shared has with SENSORNODE_HOSTILE_UMQTT=all (about 35 s each)."""
    wanted = layout.UMQTT_VERSIONS[1:] if os.environ.get(ENV_VERSIONS) == "all" else ("1.8.0",)
    out: list[str | None] = [None]
    for v in wanted:
        with contextlib.suppress(FileNotFoundError):
            layout.umqtt_dir(v)
            out.append(v)
    return out


def uid(version: str | None, n: int) -> str:
    minor = 0 if version is None else int(version.replace(".", ""))
    return f"000000{minor:04x}{n:02x}"


def seqs(payloads: list[bytes]) -> list[int]:
    import json

    return [json.loads(p)["seq"] for p in payloads]


def most_in_a_minute(times: list[float]) -> int:
    """The most connects seen in any 60 s window."""
    return max((sum(1 for t in times if s <= t < s + 60) for s in times), default=0)


def allowed(window_s: float) -> int:
    """The most connects the backoff lets through in window_s: the n-th wait after a failed
    link is at least half of min(1 s * 2**n, 60 s)."""
    n, at = 1, 0.0
    while True:
        at += min(2 ** (n - 1), 60) / 2
        if at > window_s:
            return n
        n += 1


def longest_wait(window_s: float) -> float:
    """The longest backoff wait in effect after window_s of failed links (1 s doubling, capped
    at 60 s)."""
    return float(min(2 ** (allowed(window_s) - 1), 60))


# Once the broker behaves, the board comes back after the backoff wait then in effect (16 s
# after 12 s of failed links), the connect itself and one reading interval.
RECOVER_S = longest_wait(HOSTILE_S) + 9.0


@pytest.fixture(scope="module", params=versions(), ids=lambda v: v or "1.3.4")
def run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Runs every scenario side by side; yields what each board and broker did."""
    version = request.param
    with contextlib.ExitStack() as stack:
        boards: dict[str, tuple[VirtualBoard, HostileBroker]] = {}
        for n, scenario in enumerate(SCENARIOS):
            device = "esp32-" + uid(version, n)[-6:]
            broker = HostileBroker(scenario, f"sensornode/{device}/cmd")
            stack.callback(broker.stop)
            board = VirtualBoard(
                broker=("127.0.0.1", broker.port),
                uid=uid(version, n),
                config=CONFIG,
                workdir=tmp_path_factory.mktemp(scenario),
                umqtt=version,
            )
            assert board.device_id == device
            stack.callback(board.stop)
            board.start()
            boards[scenario] = (board, broker)
        started = time.monotonic()
        time.sleep(HOSTILE_S)
        behaved = time.monotonic()
        for _, broker in boards.values():
            broker.behave()
        back: dict[str, str] = {}
        for scenario, (board, broker) in boards.items():
            topic = board.topic("readings")
            try:
                broker.wait(
                    lambda b=broker, t=topic: bool(b.on(t, since=behaved)),
                    RECOVER_S - (time.monotonic() - behaved),
                    "a reading after the broker behaved",
                )
                back[scenario] = ""
            except TimeoutError as e:
                back[scenario] = str(e)
        # one interval more: the outbox flushes at 10 a step
        time.sleep(2 * FAST["interval_s"])
        yield {
            "boards": boards,
            "back": back,
            "started": started,
            "behaved": behaved,
            "version": version,
        }


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_hostile_broker_leaves_the_board_running_with_its_readings(
    run: dict[str, Any], scenario: str
) -> None:
    board, broker = run["boards"][scenario]
    console = board.console
    no_traceback(board)
    assert board.restarts == 0, console[-20:]  # no watchdog reset, no reboot
    assert any(re.search(SAYS[scenario], line) for line in console), console[-30:]
    assert run["back"][scenario] == "", console[-20:]
    got = first_copies(seqs(broker.on(board.topic("readings"))))
    assert got == list(range(1, max(got) + 1)), got  # none lost: the outbox kept them
    hostile = [t for t in broker.connects if t < run["behaved"]]
    if scenario in KEEPS_LINK:
        assert len(broker.connects) == 1, broker.connects
    assert most_in_a_minute(hostile) <= allowed(min(60.0, HOSTILE_S)), (hostile, console[-20:])


def test_a_burst_of_1000_commands_is_answered_as_far_as_the_queue_goes(run: dict[str, Any]) -> None:
    board, broker = run["boards"]["burst"]
    pongs = broker.on(board.topic("event"))
    lost = [line for line in board.console if "commands at once; this one is dropped" in line]
    assert pongs and len(pongs) + len(lost) == 1000, (len(pongs), len(lost))


def test_the_worst_reconnect_rate_is_reported(
    run: dict[str, Any], record_property: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    counts = {
        s: most_in_a_minute([t for t in b.connects if t < run["behaved"]])
        for s, (_, b) in run["boards"].items()
    }
    worst = max(counts, key=lambda s: counts[s])
    with capsys.disabled():
        print(
            f"\nhostile (umqtt {run['version'] or '1.3.4'}, hostile for {HOSTILE_S:.0f} s): most "
            f"connects in a minute {counts[worst]} ({worst}); "
            + ", ".join(f"{s} {n}" for s, n in counts.items())
        )
    record_property("most_connects_in_a_minute", counts[worst])
    assert counts[worst] <= allowed(min(60.0, HOSTILE_S))


# -- real brokers: retained messages on the command topic ---------------------------------


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_retained_reboot_and_40_kb_cause_no_boot_loop_and_no_storm(
    tmp_path: Path, kind: str
) -> None:
    if kind == "mosquitto" and mosquitto_path() is None:
        pytest.skip("mosquitto is not installed")
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(Broker(kind))
        sub = Watcher((broker.host, broker.port), ["sensornode/#"])
        stack.callback(sub.close)
        inbox = sub.inbox
        boards = []
        for n, payload in enumerate((b'{"cmd": "reboot"}', b'{"cmd": "ping", "pad": "%s"}')):
            b = VirtualBoard(
                broker=("127.0.0.1", broker.port),
                uid=f"00000000ef{n:02x}",
                config=CONFIG,
                workdir=tmp_path / str(n),
            )
            body = payload.replace(b"%s", b"x" * 40_000)
            sub.client.publish(b.topic("cmd"), body, qos=1, retain=True).wait_for_publish(10)
            stack.callback(b.stop)
            b.start()
            boards.append(b)
        reboot, big = boards
        reboot.wait_for(r"^cmd: ignored a retained command on .*/cmd \(clear it", 30)
        big.wait_for(r"skipped a message of 400\d\d bytes on .*it is retained: clear it with", 30)
        time.sleep(10)
        for b in boards:
            got = first_copies([m.json()["seq"] for m in inbox.on(b.topic("readings"))])
            assert len(got) >= 10 and got == list(range(1, max(got) + 1)), got
            assert b.restarts == 0
            assert len([line for line in b.console if line.startswith("mqtt: connected")]) == 1
            no_traceback(b)
