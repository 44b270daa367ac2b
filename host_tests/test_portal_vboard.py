"""The setup portal on the MicroPython runtime (a virtual board with a board-sized heap), without a
browser: its DNS responder, the connectivity checks, and its bounds under abuse (a client that
sends a byte a second, a 1 MB body, malformed requests, 50 connections at once), while the node's
loop goes on taking readings into the outbox. Then a plain HTTP form post joins the network, and
every reading taken meanwhile reaches the broker, in order, without a gap."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from host_tests.mqtt_helpers import VBOARD_MARKS, no_traceback
from host_tests.portal_helpers import crowd, query, status
from tools.vboard import VirtualBoard
from tools.watcher import Watcher

pytestmark = VBOARD_MARKS

WAIT_S = 30
KEPT = 20  # readings at least, one a second, taken while the tests above ran
HEAP = "320k"  # sensornode from source on the 64-bit runtime, plus the portal and, at a save,
# config.py compiled on the board (a board runs .mpy: much less)


@pytest.fixture(scope="module")
def board(broker, tmp_path_factory) -> Iterator[VirtualBoard]:
    # Knows the broker but no network: the setup AP comes up after the first round.
    b = VirtualBoard(
        broker=broker,
        heap=HEAP,
        secrets={"wifi": []},
        config={"wifi": {"rounds_before_ap": 1}},
        workdir=tmp_path_factory.mktemp("portal-vboard"),
    )
    with b:
        b.wait_for(r"^setup: portal at http://127\.0\.0\.1:\d+/", WAIT_S)
        yield b


def address(board: VirtualBoard) -> tuple[str, int]:
    return ("127.0.0.1", board.portal_ports[0])


def get(board: VirtualBoard, path: str = "/") -> bytes:
    with socket.create_connection(address(board), timeout=10) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: captive.apple.com\r\n\r\n" % path.encode())
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    return got


def ask(board: VirtualBoard, packet: bytes, timeout: float = 2) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(timeout)
        udp.sendto(packet, board.dns_address)
        try:
            return udp.recv(512)
        except TimeoutError:
            return None


def test_dns_answers_any_name_with_the_access_points_address(board):
    reply = ask(board, query("connectivitycheck.gstatic.com", ident=0x4242))
    assert reply is not None and reply[:2] == b"\x42\x42"
    assert reply.endswith(bytes([192, 168, 4, 1]))


def test_dns_ignores_a_malformed_query_and_answers_the_next(board):
    assert ask(board, b"\x00\x01\xff\xff garbage", timeout=1) is None
    assert ask(board, query("example.com")) is not None


@pytest.mark.parametrize("path", ["/generate_204", "/hotspot-detect.html", "/connecttest.txt"])
def test_connectivity_checks_are_sent_to_the_page(board, path):
    answer = get(board, path)
    assert status(answer) == 302 and b"Location: /\r\n" in answer


def test_a_client_sending_a_byte_a_second_is_cut_off_while_others_are_served(board):
    cut = threading.Event()

    def slow() -> None:
        with socket.create_connection(address(board), timeout=10) as s:
            for byte in b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\n\r\n":
                try:
                    s.send(bytes([byte]))
                except OSError:
                    cut.set()  # the portal closed it
                    return
                time.sleep(1)

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    served = 0
    while t.is_alive():
        assert status(get(board)) == 200
        served += 1
        time.sleep(0.2)
    assert cut.is_set() and served > 5


def test_a_one_megabyte_body_is_refused(board):
    with socket.create_connection(address(board), timeout=10) as s:
        s.sendall(b"POST /save HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n")
        with contextlib.suppress(OSError):
            s.sendall(b"x" * 1048576)
        with contextlib.suppress(OSError):
            answer = s.recv(4096)
    assert status(answer) in (0, 413)


@pytest.mark.parametrize(
    "request_",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"GET / FTP/1.0\r\n\r\n",
        b"X" * 3000,
    ],
)
def test_a_malformed_request_gets_an_error_or_a_closed_socket(board, request_):
    answers = crowd(address(board), [request_], WAIT_S)
    assert status(answers[0]) in (0, 400, 431)


def test_fifty_connections_at_once_get_answers_or_closed_sockets(board):
    answers = crowd(address(board), [b"GET / HTTP/1.1\r\n\r\n"] * 50, WAIT_S)
    assert {status(a) for a in answers} <= {0, 200, 503}
    assert status(get(board)) == 200


def test_after_all_that_a_form_post_joins_and_every_reading_kept_meanwhile_arrives(board, broker):
    sub = Watcher(broker, "sensornode/#")
    try:
        form = urllib.parse.urlencode({"ssid": "vboard-net", "password": "vboard-pass"}).encode()
        with urllib.request.urlopen(board.portal_url + "save", form, timeout=10) as r:
            assert r.status == 200
        seqs: list[int] = []
        while not seqs or seqs[-1] < KEPT:
            seqs.append(sub.next(board.topic("readings"), timeout=WAIT_S).json()["seq"])
    finally:
        sub.close()
    assert seqs == list(range(1, KEPT + 1))
    board.wait_for(r"access point '.*-setup' is down", 1)
    console = "\n".join(board.console)
    assert "MemoryError" not in console and "vboard: reset" not in console
    no_traceback(board)
