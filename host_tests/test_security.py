"""Login and access rules on Mosquitto (a password file and the README's ACL), and secrets: the
unmodified firmware on the virtual board (the package index's umqtt.simple 1.3.4; every other
version logs in through the same broker in test_versions.py).

The passwords here are distinctive; the last test greps everything the run produced for them:
every board's console and every MQTT message the broker carried. (`make flash` and `make
provision` output is grepped for the passwords of their own run by test_flash.py's run().)"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from host_tests.mqtt_helpers import no_traceback
from host_tests.test_integration import FAST, WAIT_S, seqs
from host_tests.test_versions import ACL, BASE, NODE, OWNER, VIEWER
from tools.brokers import Broker, mosquitto_path
from tools.vboard import VirtualBoard, layout
from tools.vboard.supervisor import MICROPYTHON
from tools.watcher import Inbox, Watcher

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not MICROPYTHON.exists(), reason="no .venv/bin/micropython (make setup)"),
    pytest.mark.skipif(mosquitto_path() is None, reason="mosquitto is not installed"),
]

WIFI_PASSWORD = "wifi-Pw-5a9e1c77"
WRONG_PASSWORD = "wrong-Pw-83b0d2"
NOCMD = ("nocmd", "nocmd-Pw-c41f06")  # may publish its topics, may not read commands
# the README's ACL, plus a node user without the command subscription
RULES = ACL + f"\nuser {NOCMD[0]}\ntopic write {BASE}/#\n"
PASSWORDS = (NODE[1], OWNER[1], VIEWER[1], NOCMD[1], WIFI_PASSWORD, WRONG_PASSWORD)


class Run:
    """The module's broker, an owner watching everything on it, and every board started."""

    def __init__(self, stack: contextlib.ExitStack, tmp: Path) -> None:
        self.stack = stack
        self.tmp = tmp
        self.broker = Broker("mosquitto", passwords=dict([NODE, OWNER, VIEWER, NOCMD]), acl=RULES)
        stack.callback(self.broker.stop)
        self.broker.start()
        self.address = (self.broker.host, self.broker.port)
        self.inbox = Inbox()
        self.owner = Watcher(self.address, ["#"], self.inbox, login=OWNER, wait_s=WAIT_S)
        stack.callback(self.owner.close)
        self.boards: list[VirtualBoard] = []

    def board(self, uid: str, login: tuple[str, str]) -> VirtualBoard:
        air = [{"ssid": "home", "password": WIFI_PASSWORD, "rssi": -50}]
        secrets: dict[str, Any] = {
            "wifi": [{"ssid": "home", "password": WIFI_PASSWORD}],
            "mqtt": {"user": login[0], "password": login[1]},
        }
        board = VirtualBoard(
            broker=(self.broker.host, self.broker.port),
            uid=uid,
            config=layout.merge(FAST, {"base_topic": BASE}),
            secrets=secrets,
            workdir=self.tmp / uid,
        )
        board.set_air(air)  # only this network, with its distinctive password
        self.stack.callback(board.stop)
        board.start()
        self.boards.append(board)
        return board


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with contextlib.ExitStack() as stack:
        yield Run(stack, tmp_path_factory.mktemp("security"))


def readings(run: Run, board: VirtualBoard, n: int) -> list[int]:
    topic = board.topic("readings")
    run.inbox.wait_until(lambda: len(run.inbox.on(topic)) >= n, WAIT_S, f"{n} readings")
    return seqs(run.inbox.on(topic))


def test_the_right_login_connects_and_readings_arrive(run: Run) -> None:
    board = run.board("00000000d101", NODE)
    board.wait_for(r"^mqtt: connected to", WAIT_S)
    got = readings(run, board, 3)
    assert got == list(range(1, len(got) + 1))
    no_traceback(board)


def test_a_wrong_login_is_refused_by_name_and_retried_with_backoff(run: Run) -> None:
    board = run.board("00000000d102", (NODE[0], WRONG_PASSWORD))
    line = (
        r"^mqtt: broker 127\.0\.0\.1:\d+ refused: (?:bad username or password|not authorised);"
        r" retry in (\d+) s$"
    )
    regex = re.compile(line)
    board.wait_for(line, WAIT_S)
    first = next(i for i, c in enumerate(board.console) if regex.search(c))
    board.wait_for(line, WAIT_S, since=first + 1)
    waits = [int(m.group(1)) for c in board.console if (m := regex.search(c))]
    assert len(waits) >= 2 and waits == sorted(waits), waits
    assert not any(c.startswith("mqtt: connected") for c in board.console)
    assert run.inbox.on(board.topic("readings")) == []
    no_traceback(board)


def test_an_acl_that_denies_the_node_its_command_topic_leaves_readings_flowing(run: Run) -> None:
    """Mosquitto grants the subscription and delivers nothing (a broker that answers SUBACK
    0x80 instead gets a console line and the same outcome: test_session.py)."""
    board = run.board("00000000d103", NOCMD)
    board.wait_for(r"^mqtt: connected to", WAIT_S)
    readings(run, board, 2)
    mark = run.inbox.mark()
    run.owner.publish(board.topic("cmd"), json.dumps({"cmd": "ping", "id": "nocmd"}))
    got = readings(run, board, len(readings(run, board, 1)) + 4)

    assert got == list(range(1, len(got) + 1))
    assert run.inbox.on(board.topic("event"), mark) == []
    assert sum(c.startswith("mqtt: connected") for c in board.console) == 1
    no_traceback(board)


def test_a_client_the_acl_does_not_let_publish_commands_cannot_command_the_node(
    run: Run,
) -> None:
    board = run.board("00000000d104", NODE)
    board.wait_for(r"^mqtt: connected to", WAIT_S)
    readings(run, board, 2)
    viewer = Watcher(run.address, [f"{BASE}/#"], login=VIEWER, wait_s=WAIT_S)
    try:
        mark = run.inbox.mark()
        viewer.publish(board.topic("cmd"), json.dumps({"cmd": "reboot", "id": "viewer"}))
        run.owner.publish(board.topic("cmd"), json.dumps({"cmd": "ping", "id": "owner"}))
        _, answer = run.inbox.wait(board.topic("event"), since=mark)
    finally:
        viewer.close()
    time.sleep(1.0)  # time enough for a reboot the viewer's command would have caused

    assert answer.json() == {"event": "ping", "ok": True, "detail": "pong", "id": "owner"}
    assert [m.json()["id"] for m in run.inbox.on(board.topic("event"), mark)] == ["owner"]
    assert not any("rebooting on command" in c for c in board.console)
    assert board.restarts == 0


def test_no_password_appears_on_any_console_or_in_any_mqtt_message(run: Run) -> None:
    board = run.board("00000000d105", NODE)
    board.wait_for(r"^mqtt: connected to", WAIT_S)
    mark = run.inbox.mark()
    for doc in ({"cmd": "heartbeat"}, {"cmd": "ping"}, {"cmd": "dance"}, "not json"):
        run.owner.publish(board.topic("cmd"), doc if isinstance(doc, str) else json.dumps(doc))
    run.inbox.wait(board.topic("heartbeat"), since=mark)
    run.inbox.wait_until(
        lambda: len(run.inbox.on(board.topic("event"), mark)) >= 3, WAIT_S, "3 events"
    )

    def carried() -> list:
        return [m for m in run.inbox.since(0) if m.topic != board.topic("cmd")]

    # Enough traffic to look through: how many readings came meanwhile depends on the timing.
    run.inbox.wait_until(lambda: len(carried()) > 20, WAIT_S, "more than 20 messages")
    seen = "\n".join(line for b in run.boards for line in b.console)
    assert len(run.boards) >= 1
    for secret in PASSWORDS:
        assert secret not in seen, f"a console shows {secret!r}"
        for m in carried():
            assert secret.encode() not in m.payload, (m.topic, m.payload)
            assert secret not in m.topic, m.topic


@pytest.mark.parametrize(
    ("files", "problem"),
    [({}, "not found on the board"), ({"ca.pem": b"my notes\n"}, "not a certificate")],
)
def test_a_ca_file_that_cannot_be_used_keeps_the_node_from_connecting_at_all(
    tmp_path: Path, files: dict[str, bytes], problem: str
) -> None:
    """Rather than trust any server: no TLS connection, not even an unverified one."""
    with contextlib.ExitStack() as stack:
        broker = Broker("mosquitto")
        stack.callback(broker.stop)
        broker.start()
        board = VirtualBoard(
            broker=(broker.host, broker.port),
            uid="00000000d106",
            config=layout.merge(FAST, {"mqtt": {"tls": True, "ca_file": "ca.pem"}}),
            workdir=tmp_path,
            files=files,
        )
        stack.callback(board.stop)
        board.start()
        board.wait_for(
            rf"^mqtt: ca_file 'ca\.pem': {problem}.*; not connecting until it is fixed "
            r"\(make provision\)$",
            WAIT_S,
        )
        board.wait_for(r"^boot: running", WAIT_S)
        time.sleep(3 * FAST["interval_s"])
        assert not any(c.startswith("mqtt: ") and "ca_file" not in c for c in board.console)
        assert f" as {board.device_id} " not in broker.stderr_tail(10**6)
        no_traceback(board)
