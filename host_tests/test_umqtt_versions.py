"""The transport against every real umqtt.simple a board can have (../shared/umqtt-simple), run
under CPython with a scripted socket and a recording ssl module: which TLS call each version
makes and whether it verifies, where the timeouts go, and the exact bytes of each packet.

The virtual-board tier (test_versions.py) runs the same versions on the MicroPython runtime
against Mosquitto; this tier shows the decision for each version without a broker."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from firmware import linkup
from firmware.transport import Transport
from host_tests.conftest import Clock, Log
from tools.vboard import layout

VERSIONS = layout.UMQTT_VERSIONS
CONNACK = b"\x20\x02\x00\x00"
CA = b"0\x82\x00\x01x"  # stands for the CA's DER bytes: only passed along here


class Raw:
    """The TCP socket: records timeouts and writes, replays the broker's bytes."""

    def __init__(self, replies: bytes) -> None:
        self.timeouts: list[float | None] = []
        self.out = bytearray()
        self.replies = replies

    def settimeout(self, t: float | None) -> None:
        self.timeouts.append(t)

    def connect(self, addr: Any) -> None:
        pass

    def write(self, buf: Any, n: int = -1) -> int:
        data = bytes(buf if n < 0 else memoryview(buf)[:n])
        self.out += data
        return len(data)

    def read(self, n: int) -> bytes | None:
        if not self.replies:
            return None  # nothing has arrived (a closed link would read b"")
        data, self.replies = self.replies[:n], self.replies[n:]
        return data

    def setblocking(self, flag: bool) -> None:
        self.timeouts.append(None if flag else 0)

    def close(self) -> None:
        pass


class Tls:
    """A TLS socket as MicroPython's: no settimeout(); reads and writes go to the TCP socket."""

    def __init__(self, raw: Raw) -> None:
        self.raw = raw
        self.read = raw.read
        self.write = raw.write

    def setblocking(self, flag: bool) -> None:
        self.raw.setblocking(flag)

    def close(self) -> None:
        pass


class Recorder:
    """A module that stands for `socket`, `ssl` and `ussl` at once, recording every wrap."""

    CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED = 0, 1, 2
    PROTOCOL_TLS_CLIENT = 16

    def __init__(self, replies: bytes = CONNACK) -> None:
        self.replies = replies
        self.raw: Raw | None = None
        self.wraps: list[dict[str, Any]] = []
        recorder = self

        class SSLContext:
            def __init__(self, protocol: int) -> None:
                self.verify_mode = recorder.CERT_NONE
                self.cadata: bytes | None = None

            def load_verify_locations(self, cadata: bytes) -> None:
                self.cadata = cadata

            def wrap_socket(self, sock: Raw, server_hostname: str | None = None) -> Tls:
                return recorder._wrap(
                    sock, "context", self.verify_mode, self.cadata, server_hostname
                )

        self.SSLContext = SSLContext

    def socket(self, *args: Any) -> Raw:
        self.raw = Raw(self.replies)
        return self.raw

    def getaddrinfo(self, host: str, port: int) -> list[Any]:
        return [(2, 1, 0, "", (host, port))]

    def wrap_socket(
        self, sock: Raw, cert_reqs: int = 0, cadata: bytes | None = None, **kw: Any
    ) -> Tls:
        return self._wrap(sock, "wrap_socket", cert_reqs, cadata, kw.get("server_hostname"))

    def _wrap(self, sock: Raw, how: str, mode: int, cadata: Any, host: str | None) -> Tls:
        self.wraps.append({"how": how, "mode": mode, "cadata": cadata, "host": host})
        return Tls(sock)


def load_umqtt(version: str, monkeypatch: pytest.MonkeyPatch, recorder: Recorder) -> Any:
    """That version's umqtt/simple.py as a fresh module, its socket and ssl the recorder."""
    path = umqtt_folder(version) / "umqtt" / "simple.py"
    for name in ("socket", "usocket", "ssl", "ussl"):
        monkeypatch.setitem(sys.modules, name, recorder)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "ustruct", struct)
    monkeypatch.setitem(sys.modules, "ubinascii", __import__("binascii"))
    spec = importlib.util.spec_from_file_location(f"umqtt_simple_{version}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def umqtt_folder(version: str) -> Path:
    """That version from ../shared; 1.3.4 without it: the package index's copy (make setup)."""
    try:
        return layout.umqtt_dir(version)
    except FileNotFoundError as e:
        if version == layout.USSL_UMQTT and (layout.UMQTT_DIR / "umqtt" / "simple.py").exists():
            return layout.UMQTT_DIR
        pytest.skip(str(e))


def open_transport(
    version: str, monkeypatch: pytest.MonkeyPatch, *, tls: bool, ca: bytes | None, replies: bytes
) -> tuple[Transport, Recorder]:
    umqtt_folder(version)
    recorder = Recorder(replies)
    umqtt = load_umqtt(version, monkeypatch, recorder)
    t = Transport(
        umqtt,
        "esp32-é1",
        "broker.lan",
        8883,
        "üser",
        "pässword",
        30,
        tls,
        ca,
        clock=Clock(),
        log=Log(),
    )
    linkup.open_client(t, b"base/esp32-\xc3\xa91/status", b"offline", lambda topic, msg: None)
    return t, recorder


@pytest.mark.parametrize("version", VERSIONS)
def test_tls_with_a_ca_verifies_the_broker_on_every_version(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, rec = open_transport(version, monkeypatch, tls=True, ca=CA, replies=CONNACK)
    assert len(rec.wraps) == 1, rec.wraps
    wrap = rec.wraps[0]
    assert (wrap["mode"], wrap["cadata"], wrap["host"]) == (rec.CERT_REQUIRED, CA, "broker.lan")
    # 1.3.4 has only the legacy call; every later version takes the SSLContext
    assert wrap["how"] == ("wrap_socket" if version == "1.3.4" else "context")


@pytest.mark.parametrize("version", VERSIONS)
def test_tls_without_a_ca_is_unverified_on_every_version_and_says_so(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    t, rec = open_transport(version, monkeypatch, tls=True, ca=None, replies=CONNACK)
    assert [w["mode"] for w in rec.wraps] == [rec.CERT_NONE]
    assert t.security == "unverified"


@pytest.mark.parametrize("version", VERSIONS)
def test_timeouts_go_to_the_tcp_socket_under_tls_on_every_version(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    t, rec = open_transport(version, monkeypatch, tls=True, ca=CA, replies=CONNACK)
    assert rec.raw is not None
    assert rec.raw.timeouts[0] == 5  # before the TCP connect and the handshake
    before = len(rec.raw.timeouts)
    assert t.client is not None
    assert t.client.check_msg() is None  # nothing has arrived: a non-blocking read
    t.flush()
    t.client.ping()
    t.flush()  # a write: the timeout again
    assert rec.raw.timeouts[before:] == [0, 5]
    assert t.sock is not None and isinstance(t.sock.sock, Tls)


def mqtt_string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def packets(wire: bytes) -> list[tuple[int, bytes]]:
    """Splits bytes into (first byte, body) by each packet's own remaining length."""
    out = []
    i = 0
    while i < len(wire):
        first = wire[i]
        size, shift, i = 0, 0, i + 1
        while True:
            b = wire[i]
            i += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append((first, wire[i : i + size]))
        i += size
    assert i == len(wire), "a remaining length that does not match the bytes sent"
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_non_ascii_ids_logins_topics_and_payloads_are_framed_right_on_every_version(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    puback = b"\x40\x02\x00\x01"
    t, rec = open_transport(version, monkeypatch, tls=False, ca=None, replies=CONNACK + puback)
    assert t.client is not None and rec.raw is not None
    topic = "bâse/esp32-é1/event".encode()
    payload = '{"detail": "21.5 °C"}'.encode()
    t.publish(topic, payload, False, 1)

    (connect, body), (publish, pub) = packets(bytes(rec.raw.out))
    assert connect == 0x10
    assert body.endswith(
        mqtt_string("esp32-é1")
        + mqtt_string("base/esp32-é1/status")
        + mqtt_string("offline")
        + mqtt_string("üser")
        + mqtt_string("pässword")
    )
    assert publish == 0x32
    assert pub == len(topic).to_bytes(2, "big") + topic + b"\x00\x01" + payload
