"""Payloads: readings per the topic contract, heartbeat and event JSON."""

import json

import pytest

from firmware.payload import READING_MAX, ReadingEncoder
from firmware.report import event, heartbeat


def encode(keys, values, due=None, seq=1, uptime=1000, ts=None):
    enc = ReadingEncoder(keys, values, due or [True] * len(keys))
    return json.loads(bytes(enc.encode(seq, uptime, ts)))


def test_reading_has_the_contract_fields_and_each_sensor_key():
    doc = encode(["temperature", "room_humidity"], [21.5, 40.25], seq=7, uptime=12345)
    assert doc == {
        "seq": 7,
        "uptime_ms": 12345,
        "ts": None,
        "temperature": 21.5,
        "room_humidity": 40.25,
    }


def test_ts_is_unix_seconds_once_the_clock_is_set():
    assert encode(["t"], [1.0], ts=1795424355)["ts"] == 1795424355


def test_failed_sensor_is_null():
    assert encode(["t"], [None])["t"] is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_values_json_cannot_carry_become_null(value):
    assert encode(["t"], [value])["t"] is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (21.5, "21.5"),
        (-3.25, "-3.25"),
        (0.0004, "0"),
        (1013.257, "1013.257"),
        (42, "42"),
        (-0.5, "-0.5"),
        (2.0, "2"),
        (99.9996, "100"),
        (-7, "-7"),
    ],
)
def test_numbers_are_written_with_up_to_three_decimals(value, text):
    enc = ReadingEncoder(["v"], [value], [True])
    raw = bytes(enc.encode(1, 0, None))
    assert raw == b'{"seq":1,"uptime_ms":0,"ts":null,"v":' + text.encode() + b"}"


def test_keys_not_due_are_left_out():
    doc = encode(["a", "b", "c"], [1, 2, 3], due=[True, False, True])
    assert ("a" in doc, "b" in doc, "c" in doc) == (True, False, True)


def test_a_shorter_reading_after_a_longer_one_has_no_leftovers():
    values = [1234.125]
    enc = ReadingEncoder(["t"], values, [True])
    enc.encode(123456, 987654321, 1795424355)
    values[0] = 3.5
    assert json.loads(bytes(enc.encode(3, 0, None))) == {
        "seq": 3,
        "uptime_ms": 0,
        "ts": None,
        "t": 3.5,
    }


def test_a_reading_longer_than_the_buffer_is_refused_not_truncated():
    keys = [f"k{i:02d}_" + "x" * 20 for i in range(30)]
    with pytest.raises(ValueError, match=str(READING_MAX)):
        ReadingEncoder(keys, [1.0] * 30, [True] * 30)


def test_large_floats_stay_valid_json():
    assert encode(["p"], [1.5e20])["p"] == pytest.approx(1.5e20)


def test_heartbeat_carries_every_contract_field():
    doc = json.loads(
        heartbeat(61, -55, 120000, "power-on", "0.1.0", "10.0.0.5", 6, 0, 0, 1, 2, "unverified")
    )
    assert sorted(doc) == sorted(
        [
            "uptime_s",
            "rssi",
            "free_heap",
            "reset_cause",
            "version",
            "ip",
            "sent",
            "buffered",
            "dropped",
            "reconnects",
            "errors",
            "tls",
            "mpy",
        ]
    )
    assert doc == {
        "uptime_s": 61,
        "rssi": -55,
        "free_heap": 120000,
        "reset_cause": "power-on",
        "version": "0.1.0",
        "ip": "10.0.0.5",
        "sent": 6,
        "buffered": 0,
        "dropped": 0,
        "reconnects": 1,
        "errors": 2,
        "tls": "unverified",
        "mpy": None,
    }


def test_event_echoes_the_request_id():
    assert json.loads(event("ping", True, "pong", "abc")) == {
        "event": "ping",
        "ok": True,
        "detail": "pong",
        "id": "abc",
    }


def test_event_without_id_has_no_id_field():
    assert "id" not in json.loads(event("error", False, "bad"))


def test_every_value_at_its_longest_fits_the_buffer_the_keys_get():
    keys = [f"k{i}" + "x" * 29 for i in range(8)]
    worst = [-999999999999999.9, -1.23456789e300, -(10**19), None, 1e-300, 2**63, -0.001, 0.5]
    enc = ReadingEncoder(keys, worst, [True] * 8)
    doc = json.loads(bytes(enc.encode(2**63, 2**62, 2**40)))
    assert doc["k1" + "x" * 29] == pytest.approx(-1.23457e300, rel=1e-5)
    assert doc["seq"] == 2**63 and len(json.dumps(doc)) <= enc.size


def test_the_buffer_is_as_long_as_the_keys_need_not_the_largest_allowed():
    one = ReadingEncoder(["temperature"], [None], [True])
    three = ReadingEncoder(["a", "b", "c"], [None] * 3, [True] * 3)
    assert one.size < three.size < READING_MAX


def test_the_console_line_is_the_head_the_message_and_a_newline_from_one_buffer():
    values = [None]
    plain = ReadingEncoder(["t"], values, [True])
    enc = ReadingEncoder(["t"], values, [True], b"reading: ")
    for seq, value in ((1, 21.5), (123456, 1013.257), (7, 2.0)):
        values[0] = value
        msg = bytes(enc.encode(seq, 1000, None))
        assert msg == bytes(plain.encode(seq, 1000, None))
        line = bytes(enc.buf[: enc.head + len(msg) + 1])
        assert line == b"reading: " + msg + b"\n"


def test_ts_as_the_boards_two_small_halves_is_written_whole():
    assert encode(["t"], [1.0], ts=[17954, 24355])["ts"] == 1795424355
    assert encode(["t"], [1.0], ts=[17954, 5])["ts"] == 1795400005  # the low half zero-padded
    assert encode(["t"], [1.0], ts=[0, 42])["ts"] == 42
