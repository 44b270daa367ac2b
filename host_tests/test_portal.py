"""The setup portal under CPython: its DNS answers, its HTTP parsing and page, what a submitted
form writes, and its bounds, served over real sockets on 127.0.0.1 with a fake clock.

(host_tests/test_portal_vboard.py runs the same portal on the MicroPython runtime.)"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
from pathlib import Path

import pytest

from firmware import config, portal, portal_form
from host_tests.portal_helpers import crowd, query, status
from host_tests.side_by_side import MICROPYTHON, run_check

AP = "192.168.4.1"
AP_BYTES = bytes([192, 168, 4, 1])
AIR = [
    (b"weak", b"\x02" * 6, 1, -85, 3, False),
    (b"home", b"\x02" * 6, 6, -50, 3, False),
    (b"home", b"\x03" * 6, 11, -70, 3, False),  # the same network further away
    (b"", b"\x04" * 6, 1, -40, 3, True),  # hidden
    (b"cafe <free>", b"\x05" * 6, 3, -65, 0, False),
]


# -- DNS --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["connectivitycheck.gstatic.com", "captive.apple.com", "x"])
def test_dns_answers_every_name_with_the_access_points_address(name):
    reply = portal.dns_answer(query(name), AP_BYTES)
    assert reply is not None
    ident, flags, qd, an = struct.unpack(">HHHH", reply[:8])
    assert (ident, flags & 0x8000, qd, an) == (0x1234, 0x8000, 1, 1)
    assert reply.endswith(b"\x00\x04" + AP_BYTES)


def test_dns_answers_a_question_for_another_type_with_no_records():
    reply = portal.dns_answer(query("example.com", qtype=28), AP_BYTES)  # AAAA
    assert reply is not None and struct.unpack(">H", reply[6:8])[0] == 0
    assert AP_BYTES not in reply


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x12\x34",
        query("a.b")[:-3],  # cut short
        query("a.b")[:2] + b"\x81\x80" + query("a.b")[4:],  # a response, not a query
        query("a.b")[:4] + b"\x00\x02" + query("a.b")[6:],  # two questions
        query("a.b")[:12] + b"\x3f" + b"a" * 10,  # a label longer than the packet
        query("a.b")[:12] + b"\xc0\x0c\x00\x01\x00\x01",  # a compression pointer
        b"\x00" * 12 + b"\x01a" * 200 + b"\x00\x00\x01\x00\x01",  # a name over 255 bytes
        bytes(range(256)) * 3,  # longer than a UDP query can be
    ],
)
def test_dns_ignores_a_malformed_query(bad):
    assert portal.dns_answer(bad, AP_BYTES) is None


# -- HTTP parsing -------------------------------------------------------------------------------


def test_a_request_head_gives_method_path_and_length():
    head = b"POST /save?x=1 HTTP/1.1\r\nHost: a\r\ncontent-length: 12"
    assert portal.parse_head(head) == ("POST", "/save", 12)


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GARBAGE", 400),
        (b"GET /", 400),
        (b"GET noslash HTTP/1.1", 400),
        (b"GET / HTTP/1.1\r\nno colon here", 400),
        (b"DELETE / HTTP/1.1", 405),
        (b"POST / HTTP/1.1\r\nContent-Length: -5", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 1048576", 413),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999999", 413),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked", 400),
        (b"GET /\xff\xfe HTTP/1.1", 400),
    ],
)
def test_a_bad_request_head_gets_its_status(head, status):
    with pytest.raises(portal.HttpError) as e:
        portal.parse_head(head)
    assert e.value.args[0] == status


def test_a_form_body_is_decoded():
    body = b"ssid=caf%C3%A9+net&password=a%26b%3Dc&empty="
    assert portal_form.parse_form(body) == {"ssid": "café net", "password": "a&b=c", "empty": ""}


@pytest.mark.parametrize("body", [b"ssid=%zz", b"ssid=%4", b"ssid=%ff%fe"])
def test_a_malformed_form_body_is_refused(body):
    with pytest.raises((ValueError, UnicodeError)):
        portal_form.parse_form(body)


# -- the page -----------------------------------------------------------------------------------


def test_networks_are_listed_once_strongest_first_without_hidden_ones():
    nets = portal.visible_networks(AIR)
    assert nets == [("home", -50, False), ("cafe <free>", -65, True), ("weak", -85, False)]


def test_the_page_lists_the_networks_with_their_signal_and_escapes_their_names():
    html = portal.page("esp32-a1b2c3", portal.visible_networks(AIR), {}).decode()
    assert html.index("home") < html.index("cafe") < html.index("weak")
    assert "-50 dBm" in html and "cafe &lt;free&gt;" in html and "<free>" not in html


def test_the_page_shows_an_error_and_a_note():
    html = portal.page("d", [], {}, note="joining", error="mqtt.port = 'x' is not").decode()
    assert "id=error>mqtt.port = &#39;x&#39; is not" in html and "id=note>joining" in html


# -- what a submitted form changes --------------------------------------------------------------


def form(**fields: str) -> dict[str, str]:
    base = {"ssid": "home", "password": "home-pass", "host": "", "port": "", "user": ""}
    base.update(mqtt_password="", device="")
    base.update(fields)
    return base


def test_an_empty_optional_field_changes_nothing():
    assert portal_form.settings(form()) == {"wifi.ssid": "home", "wifi.password": "home-pass"}


def test_the_broker_port_defaults_to_1883_and_is_a_number():
    changes = portal_form.settings(form(host="10.0.0.5"))
    assert (changes["mqtt.host"], changes["mqtt.port"]) == ("10.0.0.5", 1883)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"password": "short"}, "wifi.password = (hidden) is not empty or 8 to 63 characters"),
        ({"ssid": ""}, "wifi.ssid = '' is not text of 1 to 32 characters"),
        ({"host": "b", "port": "abc"}, "mqtt.port = 'abc' is not a whole number from 1 to 65535"),
        ({"host": "b", "port": "99999"}, "mqtt.port = 99999 is not a whole number"),
        ({"device": "my shed"}, "device_id = 'my shed' is not text of 1 to 64 characters"),
    ],
)
def test_a_bad_field_is_named_as_the_console_names_it(fields, says):
    assert portal_form.problems(portal_form.settings(form(**fields)), config.check).startswith(says)


def test_a_new_network_goes_first_and_replaces_one_of_the_same_name():
    secrets = {
        "wifi": [{"ssid": "old", "password": ""}, {"ssid": "home", "password": "stale-pass"}]
    }
    portal_form.merge(portal_form.settings(form()), {}, secrets)
    assert secrets["wifi"] == [
        {"ssid": "home", "password": "home-pass"},
        {"ssid": "old", "password": ""},
    ]


def test_merging_keeps_what_the_form_does_not_touch():
    cfg = {"interval_s": 5, "mqtt": {"host": "a", "qos": 0}}
    secrets = {"mqtt": {"user": "u", "password": "p"}, "ap_password": "setup-pass"}
    changed = portal_form.merge(portal_form.settings(form(host="b", port="1884")), cfg, secrets)
    assert changed and cfg == {"interval_s": 5, "mqtt": {"host": "b", "qos": 0, "port": 1884}}
    assert (
        secrets["mqtt"] == {"user": "u", "password": "p"} and secrets["ap_password"] == "setup-pass"
    )


def test_a_wifi_only_form_leaves_config_json_unchanged():
    cfg = {"mqtt": {"host": "a"}}
    assert not portal_form.merge(portal_form.settings(form()), cfg, {})


# -- the server over real sockets ---------------------------------------------------------------


class Wifi:
    """The Wi-Fi manager as the portal sees it."""

    def __init__(self) -> None:
        self.asked: str | None = None
        self.asked_fail: str | None = None
        self.joined: list[dict[str, str]] = []

    def scan(self):
        return AIR

    def join_now(self, net):
        self.asked = net["ssid"]
        self.joined.append(net)


@pytest.fixture
def served(tmp_path: Path, monkeypatch, clock, log):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets.json").write_text(
        json.dumps(
            {"wifi": [{"ssid": "old", "password": "old-secret-pass"}], "ap_password": "ap-secret-1"}
        )
    )
    (tmp_path / "config.json").write_text(
        json.dumps({"mqtt": {"host": "broker.lan", "port": 1884}})
    )
    p = portal.Portal(
        AP, "esp32-a1b2c3", Wifi(), clock, log, http=0, dns=0, host="127.0.0.1", check=config.check
    )
    yield p
    p.close()


def connect(p: portal.Portal) -> socket.socket:
    s = socket.create_connection(p.listener.getsockname(), timeout=2)
    return s


def exchange(p: portal.Portal, request: bytes, polls: int = 50) -> bytes:
    """Sends a request, polls the portal until it has answered and closed, returns the answer."""
    s = connect(p)
    s.sendall(request)
    return read_answer(p, s, polls)


def read_answer(p: portal.Portal, s: socket.socket, polls: int = 50) -> bytes:
    s.setblocking(False)
    got = b""
    for _ in range(polls):
        p.poll(p.clock.ticks_ms())
        try:
            while chunk := s.recv(65536):
                got += chunk
            s.close()
            return got  # the portal closed it
        except BlockingIOError:
            continue
        except ConnectionResetError:
            s.close()
            return got
    s.close()
    raise AssertionError(f"no answer and no close after {polls} polls; got {got[:80]!r}")


def test_the_page_is_served(served):
    answer = exchange(served, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status(answer) == 200 and b"home" in answer and b"Connection: close" in answer


@pytest.mark.parametrize("path", portal.CHECK_PATHS + ("/anything/else",))
def test_connectivity_checks_and_unknown_paths_go_to_the_page(served, path):
    answer = exchange(served, b"GET %s HTTP/1.1\r\nHost: captive.apple.com\r\n\r\n" % path.encode())
    assert status(answer) == 302 and b"Location: /\r\n" in answer


def test_the_page_never_carries_a_stored_password(served):
    answer = exchange(served, b"GET / HTTP/1.1\r\n\r\n")
    assert b"old-secret-pass" not in answer and b"ap-secret-1" not in answer
    assert b"value='broker.lan'" in answer and b"value='1884'" in answer


def post(p: portal.Portal, body: bytes) -> bytes:
    head = b"POST /save HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    return exchange(p, head + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def test_a_good_form_is_written_and_the_network_joined(served, tmp_path):
    answer = post(served, b"ssid=home&password=home-pass&host=&port=&user=&mqtt_password=&device=")
    assert status(answer) == 200 and b"joining &#39;home&#39;" in answer
    secrets = json.loads((tmp_path / "secrets.json").read_text())
    assert secrets["wifi"][0] == {"ssid": "home", "password": "home-pass"}
    assert secrets["wifi"][1]["ssid"] == "old" and secrets["ap_password"] == "ap-secret-1"
    assert served.wifi.joined == [{"ssid": "home", "password": "home-pass"}]
    assert not served.restart and not (tmp_path / "secrets.json.tmp").exists()
    assert b"home-pass" not in answer


def test_a_new_broker_is_written_to_config_json_and_asks_for_a_restart(served, tmp_path):
    post(served, b"ssid=home&password=home-pass&host=10.1.2.3&port=1885&device=shed")
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg == {"mqtt": {"host": "10.1.2.3", "port": 1885}, "device_id": "shed"}
    assert served.restart


def test_a_bad_field_writes_nothing_and_the_page_names_it(served, tmp_path, log):
    before = (tmp_path / "secrets.json").read_text()
    answer = post(served, b"ssid=home&password=short&host=b&port=abc")
    assert status(answer) == 400
    assert b"wifi.password = (hidden) is not empty or 8 to 63 characters" in answer
    assert (tmp_path / "secrets.json").read_text() == before and served.wifi.joined == []
    assert b"short" not in answer and "short" not in log.text()


def test_a_failed_join_is_on_the_page_when_reloaded(served):
    post(served, b"ssid=home&password=wrong-pass")
    served.wifi.asked_fail = "wrong password"
    answer = exchange(served, b"GET / HTTP/1.1\r\n\r\n")
    assert b"Joining &#39;home&#39; failed (wrong password)" in answer


# -- bounds ------------------------------------------------------------------------------------


def test_a_client_sending_a_byte_a_second_is_cut_off_while_others_are_served(served, clock):
    slow = connect(served)
    slow.setblocking(False)
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    sent = 0
    for i in range(10):
        try:
            slow.send(request[i : i + 1])
        except OSError:
            break  # cut off
        sent += 1
        clock.advance(1000)
        served.poll(clock.ticks_ms())
        # Meanwhile another client gets the page at once.
        assert status(exchange(served, b"GET / HTTP/1.1\r\n\r\n")) == 200
    try:
        answer = read_answer(served, slow)
    except OSError:
        answer = b""
    assert sent <= 6 and status(answer) in (0, 408) and served.conns == []


def test_a_one_megabyte_body_is_refused_without_reading_it(served):
    s = connect(served)
    s.sendall(b"POST /save HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n")
    s.setblocking(False)
    with contextlib.suppress(OSError):
        s.send(b"x" * 1048576)  # what fits; the portal reads none of it
    assert status(read_answer(served, s)) in (0, 413)


def test_a_megabyte_without_a_blank_line_is_cut_at_the_header_limit(served):
    s = connect(served)
    s.setblocking(False)
    with contextlib.suppress(OSError):
        s.send(b"GET / HTTP/1.1\r\nX: " + b"a" * 1048576)
    assert status(read_answer(served, s)) in (0, 431)


@pytest.mark.parametrize(
    "request_",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"GET / FTP/1.0\r\n\r\n",
        b"\r\n\r\n",
    ],
)
def test_a_malformed_request_gets_400(served, request_):
    assert status(exchange(served, request_)) == 400


@pytest.mark.slow  # seconds of load on a loopback socket
def test_fifty_connections_at_once_are_answered_or_closed_and_the_page_still_served(served):
    step = lambda: served.poll(served.clock.ticks_ms())  # noqa: E731
    address = served.listener.getsockname()
    answers = crowd(address, [b"GET / HTTP/1.1\r\n\r\n"] * 50, 30, step)
    assert {status(a) for a in answers} <= {0, 200, 503} and len(served.conns) == 0
    assert status(exchange(served, b"GET / HTTP/1.1\r\n\r\n")) == 200


def test_the_portal_holds_no_more_connections_than_its_limit(served):
    socks = []
    for _ in range(20):
        socks.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        socks[-1].setblocking(False)
        socks[-1].connect_ex(served.listener.getsockname())
    for _ in range(10):
        served.poll(served.clock.ticks_ms())
    assert len(served.conns) <= 4
    for s in socks:
        s.close()


def test_dns_over_udp_answers_and_ignores_garbage(served):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(0.2)
    where = served.dns.getsockname()
    udp.sendto(b"\x01\x02garbage", where)
    udp.sendto(query("detectportal.firefox.com", ident=7), where)
    served.poll(served.clock.ticks_ms())
    reply, _ = udp.recvfrom(512)
    udp.close()
    assert reply[:2] == b"\x00\x07" and reply.endswith(AP_BYTES)


class Stuck:
    """A client's socket that takes nothing more: its reader never reads."""

    closed = False

    def send(self, data):
        raise BlockingIOError(11, "EAGAIN")

    def close(self):
        self.closed = True


def test_a_client_that_never_reads_its_answer_is_dropped_at_the_deadline(served, clock):
    stuck = Stuck()
    c = portal._Conn(stuck, clock.ticks_add(clock.ticks_ms(), 5000))
    c.out = memoryview(portal.response(200, b"x" * 10000))
    served.conns.append(c)
    served.poll(clock.ticks_ms())
    assert served.conns == [c]
    clock.advance(5000)
    served.poll(clock.ticks_ms())
    assert served.conns == [] and stuck.closed


# -- the same on the real MicroPython runtime ---------------------------------------------------
# mpy_portal_check.py feeds the portal's plain functions the same inputs under
# .venv/bin/micropython and under CPython: the board must behave as the tests above say.


def test_the_portal_decides_alike_on_micropython_and_cpython():
    script = str(Path(__file__).with_name("mpy_portal_check.py"))
    cpython = run_check(sys.executable, "portal", script=script)
    micropython = run_check(MICROPYTHON, "portal", script=script)
    assert len(cpython) > 25 and micropython == cpython


def test_a_head_request_gets_the_head_alone(served):
    answer = exchange(served, b"HEAD / HTTP/1.1\r\n\r\n")
    assert status(answer) == 200 and answer.endswith(b"\r\n\r\n") and b"<html" not in answer


def test_the_forms_code_is_dropped_after_a_save(served):
    post(served, b"ssid=home&password=home-pass")
    assert "firmware.portal_form" not in sys.modules
