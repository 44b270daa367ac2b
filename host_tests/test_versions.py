"""Every umqtt.simple a board can have, on the real MicroPython runtime against Mosquitto: the
integration tier's core scenarios, and TLS, on each version in ../shared/umqtt-simple.

So that `make test` stays short, each experiment runs every version at once: one virtual board
per version, side by side, each behind its own loopback relay (test_integration.py says why
relays). A module-scoped fixture runs the experiment once and records what each board did; the
tests, parametrized by version, each assert one scenario's outcome for one version. Without
../shared only the package index's 1.3.4 runs and the other versions skip, saying why.

The core broker requires a login and applies an ACL (the README's), and the base topic is not
ASCII: every version shows that login, text in topics and payloads, and access rules work.
The TLS experiment runs two TLS listeners with certificates from a CA made here (trustme): one
for 127.0.0.1, one for another host name."""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from host_tests.mqtt_helpers import no_traceback
from host_tests.relay import Relay
from host_tests.test_integration import (
    FAST,
    KEEPALIVE_S,
    LOST,
    WAIT_S,
    first_copies,
    relay_to,
    seqs,
)
from tools.brokers import Broker, TlsFiles, mosquitto_path
from tools.vboard import VirtualBoard, layout
from tools.vboard.supervisor import MICROPYTHON
from tools.watcher import Inbox, Watcher

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not MICROPYTHON.exists(), reason="no .venv/bin/micropython (make setup)"),
    pytest.mark.skipif(mosquitto_path() is None, reason="mosquitto is not installed"),
]

BASE = "capteurs-été"  # a base topic that is not ASCII: every topic and payload carries it
NODE = ("node", "node-Pw-4e1f9b")
OWNER = ("owner", "owner-Pw-77d2a0")
VIEWER = ("viewer", "viewer-Pw-0b63c5")
# The README's ACL for sensornode/ with this test's base topic: nodes publish their own topics
# and read commands; only the owner publishes commands; the viewer only reads.
ACL = f"""\
user node
topic write {BASE}/+/status
topic write {BASE}/+/readings
topic write {BASE}/+/heartbeat
topic write {BASE}/+/event
topic read {BASE}/+/cmd
topic write homeassistant/sensor/#

user owner
topic readwrite {BASE}/#
topic read homeassistant/#

user viewer
topic read {BASE}/#
"""
# The Pico W gets umqtt from mip (newest) into /lib; the ESP32 has it frozen.
PICOW = ("1.7.1", "1.8.0")


def runnable() -> dict[str, str | None]:
    """version: the umqtt argument for VirtualBoard, for each version that can run here."""
    found: dict[str, str | None] = {}
    for v in layout.UMQTT_VERSIONS:
        try:
            layout.umqtt_dir(v)
            found[v] = v
        except FileNotFoundError:
            pass
    if not found:
        found[layout.USSL_UMQTT] = None  # the package index's 1.3.4, fetched at setup
    return found


def skip_unless_runnable(version: str) -> None:
    if version not in runnable():
        try:
            layout.umqtt_dir(version)
        except FileNotFoundError as e:
            pytest.skip(str(e))


def uid(version: str, n: int) -> str:
    # the device id is the last three bytes: minor, patch, n
    return "e0" + "".join(f"{int(p):02x}" for p in version.split(".")) + f"{n:02x}"


class Outcomes:
    """What each version's board did in each scenario: "" when it did what it should."""

    def __init__(self, versions: list[str]) -> None:
        self.by: dict[str, dict[str, str]] = {v: {} for v in versions}

    def check(self, scenario: str, versions: list[str], each: Callable[[str], None]) -> None:
        for v in versions:
            try:
                each(v)
                self.by[v][scenario] = ""
            except Exception as e:  # a failure is this version's outcome, the rest go on
                self.by[v][scenario] = f"{type(e).__name__}: {e}"

    def assert_ok(self, version: str, scenario: str) -> None:
        skip_unless_runnable(version)
        got = self.by[version].get(scenario)
        assert got is not None, f"{scenario} did not run on {version}"
        assert got == "", f"umqtt.simple {version}, {scenario}: {got}"


def board_for(
    stack: contextlib.ExitStack,
    tmp: Path,
    version: str,
    arg: str | None,
    n: int,
    port: int,
    config: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    files: dict[str, bytes] | None = None,
) -> VirtualBoard:
    board = VirtualBoard(
        broker=("127.0.0.1", port),
        board="picow" if version in PICOW else "esp32",
        uid=uid(version, n),
        config=layout.merge(FAST, config or {}),
        secrets=secrets,
        workdir=tmp / f"{version}-{n}",
        umqtt=arg,
        files=files,
    )
    stack.callback(board.stop)
    board.start()
    return board


def first_seen(
    boards: dict[str, VirtualBoard], pattern: str, marks: dict[str, int]
) -> dict[str, float]:
    """When each board's console first showed a line matching `pattern` after its mark (host
    time, within 50 ms), looking at all boards at once; a board that never does is left out."""
    regex = re.compile(pattern)
    seen: dict[str, float] = {}
    deadline = time.monotonic() + WAIT_S
    while len(seen) < len(boards) and time.monotonic() < deadline:
        for v, board in boards.items():
            if v not in seen and any(regex.search(line) for line in board.console[marks[v] :]):
                seen[v] = time.monotonic()
        time.sleep(0.05)
    return seen


def freeze_all(
    boards: dict[str, VirtualBoard], relays: dict[str, Relay]
) -> tuple[dict[str, int], Callable[[str], None]]:
    """Freezes every board's relay at once (a half-open link: nothing moves, nothing is
    closed); (each console's length before, a check that a board noticed within keepalive)."""
    marks = {v: len(b.console) for v, b in boards.items()}
    frozen = time.monotonic()
    for v in boards:
        relays[v].freeze()
    seen = first_seen(boards, LOST, marks)

    def noticed(v: str) -> None:
        assert v in seen, boards[v].console[marks[v] :]
        assert seen[v] - frozen <= KEEPALIVE_S, boards[v].console[marks[v] :]

    return marks, noticed


# -- the core scenarios -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcomes]:
    versions = runnable()
    out = Outcomes(list(versions))
    tmp = tmp_path_factory.mktemp("core")
    with contextlib.ExitStack() as stack:
        broker = Broker("mosquitto", passwords=dict([NODE, OWNER, VIEWER]), acl=ACL)
        stack.callback(broker.stop)
        broker.start()
        inbox = Inbox()
        sub = Watcher((broker.host, broker.port), [f"{BASE}/#"], inbox, login=OWNER, wait_s=WAIT_S)
        stack.callback(lambda: sub.close())
        relays = {v: relay_to(stack, broker) for v in versions}
        boards = {
            v: board_for(
                stack, tmp, v, arg, 1, relays[v].port, {"base_topic": BASE}, {"mqtt": _login()}
            )
            for v, arg in versions.items()
        }
        names = list(versions)

        def topic(v: str, leaf: str) -> str:
            return boards[v].topic(leaf)

        def readings(v: str, since: int = 0) -> list[int]:
            return seqs(inbox.on(topic(v, "readings"), since))

        def gap_free(v: str) -> None:
            inbox.wait_payload(topic(v, "status"), b"online")
            inbox.wait_until(lambda: len(readings(v)) >= 4, WAIT_S, f"4 readings from {v}")
            got = readings(v)
            assert got == list(range(1, len(got) + 1)), got

        out.check("readings gap-free", names, gap_free)

        mark = inbox.mark()
        for v in names:
            sub.publish(topic(v, "cmd"), json.dumps({"cmd": "ping", "id": "é0 °C"}))

        def commands(v: str) -> None:
            _, ack = inbox.wait(topic(v, "event"), since=mark)
            assert ack.json() == {"event": "ping", "ok": True, "detail": "pong", "id": "é0 °C"}

        out.check("commands", names, commands)

        marks, noticed = freeze_all(boards, relays)

        def half_open(v: str) -> None:
            board = boards[v]
            noticed(v)
            board.wait_for(r"^mqtt: connected to", WAIT_S, since=marks[v])
            n = len(readings(v))
            inbox.wait_until(lambda: len(readings(v)) >= n + 2, WAIT_S, f"readings from {v}")

        out.check("half-open link", names, half_open)

        # The broker is killed with every board connected, stays away 2 s, comes back: the
        # relays refuse the boards until the subscriber is back, so nothing goes unheard.
        marks = {v: len(boards[v].console) for v in names}
        for v in names:
            relays[v].refuse()
        broker.kill()
        sub.close()
        killed = time.monotonic()
        first_seen(boards, r"unreachable \(ECONNREFUSED\); retry in", marks)
        time.sleep(max(0.0, killed + 2.0 - time.monotonic()))
        broker.restart()
        sub = Watcher((broker.host, broker.port), [f"{BASE}/#"], inbox, login=OWNER, wait_s=WAIT_S)
        for v in names:
            relays[v].listen()

        back = first_seen(boards, r"^mqtt: connected to", marks)

        def broker_restart(v: str) -> None:
            assert v in back, boards[v].console[marks[v] :]
            inbox.wait(topic(v, "readings"), lambda m: m.at > back[v] + 1.0)
            got = first_copies(readings(v))
            assert got == list(range(1, max(got) + 1)), got
            assert [m.payload for m in inbox.on(topic(v, "status"))][-1] == b"online"

        out.check("broker restart, nothing lost", names, broker_restart)

        mark = inbox.mark()
        cut = time.monotonic()
        for v in names:
            boards[v].kill()

        def power_cut(v: str) -> None:
            _, will = inbox.wait_payload(topic(v, "status"), b"offline", since=mark)
            assert will.at - cut <= 1.5 * KEEPALIVE_S + 1.0

        out.check("power cut -> offline", names, power_cut)

        def clean(v: str) -> None:
            no_traceback(boards[v])
            assert boards[v].restarts == 0

        out.check("no traceback, no reset", names, clean)
        yield out


def _login() -> dict[str, str]:
    return {"user": NODE[0], "password": NODE[1]}


CORE = [
    "readings gap-free",
    "commands",
    "half-open link",
    "broker restart, nothing lost",
    "power cut -> offline",
    "no traceback, no reset",
]


# -- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcomes]:
    versions = runnable()
    out = Outcomes(list(versions))
    tmp = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    other_ca = trustme.CA()
    ca_pem = ca.cert_pem.bytes()
    ca_der = ssl.PEM_cert_to_DER_cert(ca_pem.decode())
    other_der = ssl.PEM_cert_to_DER_cert(other_ca.cert_pem.bytes().decode())
    (tmp / "ca.pem").write_bytes(ca_pem)

    def server(name: str, *hosts: str) -> TlsFiles:
        cert = ca.issue_cert(*hosts)
        files = TlsFiles(tmp / f"{name}.crt", tmp / f"{name}.key")
        cert.cert_chain_pems[0].write_to_path(files.certfile)
        cert.private_key_pem.write_to_path(files.keyfile)
        return files

    with contextlib.ExitStack() as stack:
        good = Broker("mosquitto", tls=server("good", "127.0.0.1"))
        misnamed = Broker("mosquitto", tls=server("misnamed", "broker.example"))
        for b in (good, misnamed):
            stack.callback(b.stop)
            b.start()
        inbox = Inbox()
        sub = Watcher(
            (good.host, good.port), ["sensornode/#"], inbox, ca=str(tmp / "ca.pem"), wait_s=WAIT_S
        )
        stack.callback(lambda: sub.close())

        relays = {v: relay_to(stack, good) for v in versions}
        # kind: (port, or None for the version's relay; config's mqtt; files on the board)
        kinds: dict[str, tuple[int | None, dict[str, Any], dict[str, bytes]]] = {
            "pem": (None, {"tls": True, "ca_file": "ca.pem"}, {"ca.pem": ca_pem}),
            "der": (good.port, {"tls": True, "ca_file": "ca.der"}, {"ca.der": ca_der}),
            "other": (good.port, {"tls": True, "ca_file": "other.der"}, {"other.der": other_der}),
            "misnamed": (misnamed.port, {"tls": True, "ca_file": "ca.pem"}, {"ca.pem": ca_pem}),
            "none": (good.port, {"tls": True}, {}),
        }
        boards: dict[tuple[str, str], VirtualBoard] = {}
        for v, arg in versions.items():
            for n, (kind, (port, mqtt, files)) in enumerate(kinds.items(), start=1):
                to = relays[v].port if port is None else port
                boards[v, kind] = board_for(stack, tmp, v, arg, n, to, {"mqtt": mqtt}, files=files)
        names = list(versions)

        def readings(board: VirtualBoard) -> list[int]:
            return seqs(inbox.on(board.topic("readings")))

        def verified(kind: str) -> Callable[[str], None]:
            def each(v: str) -> None:
                board = boards[v, kind]
                board.wait_for(r"^mqtt: connected to .* over TLS, certificate verified$", WAIT_S)
                inbox.wait_until(lambda: len(readings(board)) >= 3, WAIT_S, "3 readings")
                _, beat = inbox.wait(board.topic("heartbeat"))
                assert beat.json()["tls"] == "verified"

            return each

        out.check("TLS, PEM CA: readings", names, verified("pem"))
        out.check("TLS, DER CA: readings", names, verified("der"))

        def unverified(v: str) -> None:
            board = boards[v, "none"]
            board.wait_for(r"^mqtt: connected to .* over TLS, unverified", WAIT_S)
            _, beat = inbox.wait(board.topic("heartbeat"))
            assert beat.json()["tls"] == "unverified"

        out.check("TLS without CA: unverified", names, unverified)

        def refused(kind: str, port: int, why: str) -> Callable[[str], None]:
            def each(v: str) -> None:
                board = boards[v, kind]
                line = (
                    rf"^mqtt: broker 127\.0\.0\.1:{port} TLS: certificate not trusted "
                    rf"\(.*{why}.*\); retry in (\d+) s$"
                )
                board.wait_for(line, WAIT_S)
                regex = re.compile(line)
                board.wait_for(
                    line,
                    WAIT_S,
                    since=next(i + 1 for i, c in enumerate(board.console) if regex.search(c)),
                )
                waits = [int(m.group(1)) for c in board.console if (m := regex.search(c))]
                assert waits == sorted(waits) and waits[0] >= 1, waits  # backing off
                assert not any("mqtt: connected" in c for c in board.console), board.console
                assert inbox.on(board.topic("readings")) == []
                # the broker never had it as a client (Mosquitto logs every client it accepts)
                log = good.stderr_tail(10**6) + misnamed.stderr_tail(10**6)
                assert f" as {board.device_id} " not in log
                no_traceback(board)

            return each

        out.check("TLS, other CA: refused", names, refused("other", good.port, "signed"))
        out.check(
            "TLS, wrong host name: refused",
            names,
            refused("misnamed", misnamed.port, "(?:CN|name)"),
        )

        pem = {v: boards[v, "pem"] for v in names}
        marks, noticed = freeze_all(pem, relays)

        def half_open(v: str) -> None:
            board = pem[v]
            noticed(v)
            board.wait_for(r"over TLS, certificate verified$", WAIT_S, since=marks[v])
            n = len(readings(board))
            inbox.wait_until(lambda: len(readings(board)) >= n + 2, WAIT_S, "readings")
            got = first_copies(readings(board))
            assert got == list(range(1, max(got) + 1)), got
            no_traceback(board)

        out.check("TLS half-open link", names, half_open)
        yield out


TLS = [
    "TLS, PEM CA: readings",
    "TLS, DER CA: readings",
    "TLS without CA: unverified",
    "TLS, other CA: refused",
    "TLS, wrong host name: refused",
    "TLS half-open link",
]


# -- what each version did --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("experiment", "scenario"), [("core", s) for s in CORE] + [("tls", s) for s in TLS]
)
@pytest.mark.parametrize("version", layout.UMQTT_VERSIONS)
def test_scenario_on_umqtt_version(
    request: pytest.FixtureRequest, experiment: str, version: str, scenario: str
) -> None:
    outcomes: Outcomes = request.getfixturevalue(experiment)
    outcomes.assert_ok(version, scenario)
