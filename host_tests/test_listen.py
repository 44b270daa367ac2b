"""tools/listen.py: the subscriber a user runs. The pure parts (topics, payloads, the row state,
the table, CSV rows) are tested as functions; the program itself against a real broker."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import queue
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tools.brokers import Broker
from tools.csvlog import CsvLog, csv_columns, csv_row, iso, read_csv
from tools.listen import (
    decode_payload,
    format_line,
    json_record,
    parse_broker,
    parse_topic,
    subscriptions,
)
from tools.listen_view import (
    DeviceRow,
    discovered_unit,
    format_age,
    render_screen,
    render_table,
    update_row,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT_S = 10.0  # upper bound for anything to arrive; only there so a failure cannot hang


def reading(seq: int, **values: Any) -> dict[str, Any]:
    return {"seq": seq, "uptime_ms": 1000 * seq, "ts": None, **values}


# --- broker addresses and topics -------------------------------------------------------------


def test_broker_address_splits_into_host_and_port() -> None:
    assert parse_broker("10.0.0.5:1884") == ("10.0.0.5", 1884)


def test_broker_address_without_port_uses_1883() -> None:
    assert parse_broker("broker.local") == ("broker.local", 1883)


def test_broker_address_in_brackets_is_ipv6() -> None:
    assert parse_broker("[::1]:1884") == ("::1", 1884)


@pytest.mark.parametrize("text", ["", ":1883", "host:port", "host:70000", "[::1"])
def test_bad_broker_address_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_broker(text)


def test_broker_address_with_empty_port_uses_1883() -> None:
    assert parse_broker("host:") == ("host", 1883)


def test_subscribes_to_the_four_device_topics_of_every_device() -> None:
    assert subscriptions("sensornode") == [
        "sensornode/+/status",
        "sensornode/+/readings",
        "sensornode/+/heartbeat",
        "sensornode/+/event",
    ]


def test_device_option_narrows_the_subscriptions_to_that_device() -> None:
    assert subscriptions("home", "esp32-a1b2c3") == [
        "home/esp32-a1b2c3/status",
        "home/esp32-a1b2c3/readings",
        "home/esp32-a1b2c3/heartbeat",
        "home/esp32-a1b2c3/event",
    ]


def test_topic_gives_device_and_kind() -> None:
    assert parse_topic("sensornode/picow-0f3e21/readings", "sensornode") == (
        "picow-0f3e21",
        "readings",
    )


def test_topic_under_a_base_with_slashes_gives_device_and_kind() -> None:
    assert parse_topic("site/a/esp32-1/status", "site/a") == ("esp32-1", "status")


def test_topic_of_another_device_is_dropped_when_one_device_is_asked_for() -> None:
    assert parse_topic("sensornode/esp32-2/status", "sensornode", "esp32-1") is None
    assert parse_topic("sensornode/esp32-1/status", "sensornode", "esp32-1") == (
        "esp32-1",
        "status",
    )


@pytest.mark.parametrize(
    "topic",
    [
        "other/esp32-1/readings",
        "sensornode/esp32-1/cmd",
        "sensornode/esp32-1/readings/extra",
        "sensornode//readings",
        "sensornodex/esp32-1/readings",
    ],
)
def test_topic_outside_the_contract_is_not_parsed(topic: str) -> None:
    assert parse_topic(topic, "sensornode") is None


# --- payloads --------------------------------------------------------------------------------


def test_json_payload_is_parsed() -> None:
    assert decode_payload(b'{"seq": 3, "t": 21.5}') == {"seq": 3, "t": 21.5}


def test_plain_text_payload_stays_text() -> None:
    assert decode_payload(b"online") == "online"


def test_undecodable_payload_becomes_text_instead_of_an_error() -> None:
    assert decode_payload(b"\xff\xfe{") == "\ufffd\ufffd{"


def test_json_record_has_topic_device_kind_payload_and_time() -> None:
    line = json_record("sensornode/d/readings", "d", "readings", {"seq": 1}, 1700000000.5)
    assert json.loads(line) == {
        "topic": "sensornode/d/readings",
        "device": "d",
        "kind": "readings",
        "payload": {"seq": 1},
        "received": 1700000000.5,
    }


# --- the row state ---------------------------------------------------------------------------


def test_status_message_sets_the_status() -> None:
    rows: dict[str, DeviceRow] = {}
    update_row(rows, "d", "status", "online", 1.0)
    update_row(rows, "d", "status", "offline", 2.0)
    assert rows["d"].status == "offline"


def test_cleared_retained_status_shows_unknown() -> None:
    rows: dict[str, DeviceRow] = {}
    update_row(rows, "d", "status", "online", 1.0)
    update_row(rows, "d", "status", "", 2.0)
    assert rows["d"].status == "?"


def test_reading_sets_seq_time_and_sensor_values_but_not_meta_keys() -> None:
    rows: dict[str, DeviceRow] = {}
    row = update_row(rows, "d", "readings", reading(7, temperature=21.5), 50.0)
    assert (row.seq, row.last_reading, row.values) == (7, 50.0, {"temperature": 21.5})


def test_a_reading_without_some_sensor_keeps_that_sensors_last_value() -> None:
    rows: dict[str, DeviceRow] = {}
    update_row(rows, "d", "readings", reading(1, temperature=21.5, humidity=40), 1.0)
    update_row(rows, "d", "readings", reading(2, temperature=22.0), 2.0)
    assert rows["d"].values == {"temperature": 22.0, "humidity": 40}


def test_gap_in_seq_counts_lost_readings() -> None:
    rows: dict[str, DeviceRow] = {}
    update_row(rows, "d", "readings", reading(1), 1.0)
    update_row(rows, "d", "readings", reading(5), 2.0)
    assert rows["d"].lost == 3


def test_seq_going_back_is_noted_as_a_restart() -> None:
    rows: dict[str, DeviceRow] = {}
    update_row(rows, "d", "readings", reading(40), 1.0)
    update_row(rows, "d", "readings", reading(0), 2.0)
    assert (rows["d"].seq, rows["d"].lost) == (0, 0)
    assert "restarted" in rows["d"].note


def test_malformed_reading_is_noted_and_keeps_the_last_good_state() -> None:
    rows: dict[str, DeviceRow] = {}
    update_row(rows, "d", "readings", reading(3, temperature=20.0), 1.0)
    update_row(rows, "d", "readings", "not json {", 2.0)
    assert (rows["d"].seq, rows["d"].last_reading) == (3, 1.0)
    assert rows["d"].note == "malformed readings: not json {"


def test_reading_without_an_integer_seq_is_malformed() -> None:
    rows: dict[str, DeviceRow] = {}
    update_row(rows, "d", "readings", {"seq": "7", "temperature": 1}, 1.0)
    assert rows["d"].seq is None
    assert rows["d"].note.startswith("malformed readings")


def test_heartbeat_is_kept_whole() -> None:
    rows: dict[str, DeviceRow] = {}
    beat = {"rssi": -61, "free_heap": 81234, "buffered": 2, "dropped": 0, "reconnects": 1}
    update_row(rows, "d", "heartbeat", beat, 1.0)
    assert rows["d"].heartbeat == beat


def test_malformed_heartbeat_is_noted() -> None:
    rows: dict[str, DeviceRow] = {}
    update_row(rows, "d", "heartbeat", [1, 2], 1.0)
    assert rows["d"].note == "malformed heartbeat: [1,2]"


def test_event_becomes_the_rows_note() -> None:
    rows: dict[str, DeviceRow] = {}
    event = {"event": "interval", "ok": False, "detail": "value must be 1..3600"}
    update_row(rows, "d", "event", event, 1.0)
    assert rows["d"].note == "event interval ok=false: value must be 1..3600"


# --- the table and the lines -----------------------------------------------------------------


def table_rows() -> dict[str, DeviceRow]:
    rows: dict[str, DeviceRow] = {}
    update_row(rows, "picow-2", "status", "offline", 0.0)
    update_row(rows, "esp32-1", "status", "online", 0.0)
    update_row(rows, "esp32-1", "readings", reading(12, temperature=21.456), 100.0)
    update_row(rows, "picow-2", "readings", reading(3, humidity=40), 30.0)
    beat = {"rssi": -58, "free_heap": 90112, "buffered": 0, "dropped": 1, "reconnects": 2}
    update_row(rows, "esp32-1", "heartbeat", {**beat, "errors": 0}, 100.0)
    return rows


def cells(line: str) -> list[str]:
    return line.split()


def test_table_header_has_the_state_columns_most_important_first() -> None:
    header = cells(render_table(table_rows(), now=105.0, width=120)[0])
    assert header == ["device", "status", "seq", "age", "heap", "buf", "drop", "lost", "err"] + [
        "rssi",
        "reconn",
    ]


def test_table_has_a_state_line_per_device_sorted_by_id_with_its_readings_below() -> None:
    lines = render_table(table_rows(), now=105.0, width=120)
    assert cells(lines[1])[:4] == ["esp32-1", "online", "12", "5s"]
    assert lines[2].strip() == "temperature 21.46"
    assert cells(lines[3])[:2] == ["picow-2", "offline"]
    assert lines[4].strip() == "humidity 40"


def test_table_row_shows_the_heartbeat_with_the_heap_in_kb() -> None:
    esp = cells(render_table(table_rows(), now=105.0, width=120)[1])
    assert esp[4:] == ["88.0", "0", "1", "0", "0", "-58", "2"]


def test_table_shows_a_dash_for_what_a_device_never_sent() -> None:
    picow = cells(render_table(table_rows(), now=105.0, width=120)[3])
    assert picow[4:] == ["-", "-", "-", "0", "-", "-", "-"]


def test_table_columns_line_up() -> None:
    lines = render_table(table_rows(), now=105.0, width=120)
    state = [lines[0], lines[1], lines[3]]
    ends = {tuple(m.end() for m in re.finditer(r"\S+", line))[2:] for line in state}
    assert len(ends) == 1


def busy_rows() -> dict[str, DeviceRow]:
    rows = table_rows()
    for key, value in (("air_pressure", 1013.25), ("air_humidity", 45.5), ("soil", 0.42)):
        update_row(rows, "esp32-1", "readings", reading(13, **{key: value}), 101.0)
    rows["esp32-a1b2c3d4"] = DeviceRow("esp32-a1b2c3d4", status="online")
    detail = "interval is now 30 s; " + "x" * 150 + " the end"
    update_row(rows, "esp32-1", "event", {"event": "interval", "ok": True, "detail": detail}, 1.0)
    return rows


def screen(width: int) -> list[str]:
    return render_screen(
        busy_rows(),
        105.0,
        width,
        address="127.0.0.1:41234",
        state="connected to 127.0.0.1:41234 at 21:40:12",
        footer=["board console: build/sim/console.log"],
    )


def test_at_80_columns_no_line_is_longer_and_ctrl_c_to_quit_shows() -> None:
    lines = screen(80)
    assert max(len(line) for line in lines) <= 80
    assert lines[0].endswith("Ctrl-C to quit")


def test_columns_that_do_not_fit_go_below_the_device_with_their_names() -> None:
    narrow = "\n".join(screen(50))
    assert "rssi -58" in narrow and "reconn 2" in narrow
    assert "rssi -58" not in "\n".join(screen(120))


def test_the_legend_says_what_buf_drop_lost_err_and_heap_are() -> None:
    text = " ".join(screen(80))
    for short_name in ("buf:", "drop:", "lost:", "err:", "heap:", "rssi:"):
        assert short_name in text
    assert "gc.collect()" in text and "kB" in text and "dBm" in text


def test_the_callers_footer_stays_on_the_screen() -> None:
    assert screen(80)[-1] == "board console: build/sim/console.log"


def test_an_event_is_shown_whole_over_several_lines() -> None:
    lines = screen(80)
    start = next(i for i, line in enumerate(lines) if "event interval" in line)
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("    "))
    text = " ".join(line.strip() for line in lines[start:end])
    assert "x" * 150 in text.replace(" ", "") and text.endswith("the end")


def test_units_from_discovery_follow_the_values() -> None:
    config = {
        "state_topic": "sensornode/esp32-1/readings",
        "value_template": "{{ value_json.temperature }}",
        "unit_of_measurement": "°C",
    }
    assert discovered_unit(config) == ("esp32-1", "temperature", "°C")
    rows = table_rows()
    rows["esp32-1"].units["temperature"] = "°C"
    assert render_table(rows, 105.0, 80)[2].strip() == "temperature 21.46 °C"


def test_units_come_from_the_abbreviated_discovery_the_firmware_sends() -> None:
    config = {
        "stat_t": "sensornode/esp32-1/readings",
        "val_tpl": "{{ value_json['air_pressure'] if 'air_pressure' in value_json else '' }}",
        "unit_of_meas": "hPa",
    }
    assert discovered_unit(config) == ("esp32-1", "air_pressure", "hPa")


def test_discovery_without_a_unit_or_for_another_topic_gives_none() -> None:
    assert discovered_unit({"state_topic": "a/b/readings", "value_template": "{{x}}"}) is None
    assert discovered_unit("online") is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.4, "0s"), (59, "59s"), (61, "1m01s"), (3600 + 120, "1h02m")],
)
def test_age_is_short_and_readable(seconds: float | None, text: str) -> None:
    assert format_age(seconds) == text


def test_line_for_a_reading_lists_its_fields() -> None:
    line = format_line("esp32-1", "readings", reading(4, temperature=21.5), 0.0)
    assert line.split(" ", 1)[1] == "esp32-1 readings seq=4 uptime_ms=4000 ts=- temperature=21.5"


def test_line_for_a_malformed_message_says_so() -> None:
    line = format_line("esp32-1", "heartbeat", "garbage", 0.0)
    assert line.split(" ", 1)[1] == "esp32-1 heartbeat malformed: garbage"


# --- CSV -------------------------------------------------------------------------------------


def test_csv_columns_are_the_fixed_ones_then_the_sensor_keys() -> None:
    columns = csv_columns(reading(1, temperature=1.0, humidity=2))
    assert columns == ["received", "device", "seq", "uptime_ms", "ts", "temperature", "humidity"]


def test_csv_row_follows_the_columns_and_leaves_missing_keys_empty() -> None:
    columns = ["received", "device", "seq", "uptime_ms", "ts", "temperature", "humidity"]
    row = csv_row(columns, "d", reading(2, humidity=40), 1700000000.25)
    assert row == [iso(1700000000.25), "d", "2", "2000", "", "", "40"]


def test_csv_times_are_iso_8601_with_the_offset() -> None:
    columns = ["received", "device", "seq", "uptime_ms", "ts"]
    row = csv_row(columns, "d", {"seq": 1, "uptime_ms": 5, "ts": 1700000000}, 1700000000.25)
    received, ts = datetime.fromisoformat(row[0]), datetime.fromisoformat(row[4])
    assert received.timestamp() == 1700000000.25 and received.utcoffset() is not None
    assert ts.timestamp() == 1700000000 and row[4].count(".") == 0


def test_csv_log_writes_the_header_once_for_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    log = CsvLog(path)
    log.add("d", reading(1, temperature=20.5), 10.0)
    log.add("d", reading(2, temperature=20.75), 11.0)
    assert path.read_text().splitlines() == [
        "received,device,seq,uptime_ms,ts,temperature",
        f"{iso(10.0)},d,1,1000,,20.5",
        f"{iso(11.0)},d,2,2000,,20.75",
    ]


def test_csv_log_appends_to_an_existing_file_under_its_header(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("received,device,seq,uptime_ms,ts,humidity,temperature\n")
    CsvLog(path).add("d", reading(1, temperature=20.5, humidity=41), 10.0)
    assert path.read_text().splitlines()[1:] == [f"{iso(10.0)},d,1,1000,,41,20.5"]


def test_csv_log_says_which_new_keys_have_no_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.csv"
    log = CsvLog(path)
    log.add("d", reading(1, temperature=20.5), 10.0)
    log.add("d", reading(2, temperature=20.5, pressure=1013), 11.0)
    assert "no column for pressure" in capsys.readouterr().err
    assert path.read_text().splitlines()[2] == f"{iso(11.0)},d,2,2000,,20.5"


def test_a_csv_reads_back_as_readings_with_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    log = CsvLog(path)
    log.add("a", reading(1, temperature=20.5, note="text"), 10.0)
    log.add("b", reading(1, temperature=None), 11.0)
    got = list(read_csv(path))
    assert [(r.device, r.received.timestamp(), r.values) for r in got] == [
        ("a", 10.0, {"temperature": 20.5}),
        ("b", 11.0, {}),
    ]


# --- the program against a real broker -------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with Broker("auto") as b:
        yield b


class Publisher:
    def __init__(self, broker: Broker) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{os.urandom(3).hex()}"
        )
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def send(self, topic: str, payload: Any, retain: bool = False) -> None:
        data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        info = self.client.publish(topic, data, qos=1, retain=retain)
        info.wait_for_publish(WAIT_S)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[Publisher]:
    p = Publisher(broker)
    yield p
    p.close()


class Listener:
    """`python -m tools.listen` as a child process; its stdout and stderr lines in queues."""

    def __init__(self, broker: Broker, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.listen", "--broker", broker.address, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        for stream, q in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, q), daemon=True).start()

    @staticmethod
    def _pump(stream: Any, q: queue.Queue[str]) -> None:
        for line in stream:
            q.put(line.rstrip("\n"))

    def line(self) -> str:
        return self.out.get(timeout=WAIT_S)

    def record(self, kind: str) -> dict[str, Any]:
        """The next --json record of this kind. Others are skipped: amqtt may deliver a retained
        status twice (once on connect, once on subscribe)."""
        while True:
            record = json.loads(self.line())
            if record["kind"] == kind:
                return record

    def reading_line(self) -> str:
        """The next line-mode line that is a reading."""
        while True:
            line = self.line()
            if " readings " in line:
                return line

    def err_until(self, text: str) -> str:
        while True:
            line = self.err.get(timeout=WAIT_S)
            if text in line:
                return line

    def wait(self) -> int:
        return self.proc.wait(WAIT_S)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    started: list[Listener] = []
    yield started
    for listener in started:
        listener.stop()


def start_listening(
    listeners: list[Listener], broker: Broker, publisher: Publisher, device: str, *args: str
) -> Listener:
    """Start a listener and return once it is subscribed: it has shown the device's retained
    status (with --json the first line; otherwise any line)."""
    publisher.send(f"sensornode/{device}/status", "online", retain=True)
    listener = Listener(broker, *args)
    listeners.append(listener)
    listener.line()
    return listener


def test_json_mode_prints_one_object_per_message(
    broker: Broker, publisher: Publisher, listeners: list[Listener]
) -> None:
    listener = start_listening(listeners, broker, publisher, "j1", "--json", "--device", "j1")
    publisher.send("sensornode/j1/readings", reading(1, temperature=21.5))
    record = listener.record("readings")
    assert record["topic"] == "sensornode/j1/readings"
    assert (record["device"], record["kind"]) == ("j1", "readings")
    assert record["payload"] == reading(1, temperature=21.5)
    assert isinstance(record["received"], float)


def test_json_mode_shows_the_retained_status(
    broker: Broker, publisher: Publisher, listeners: list[Listener]
) -> None:
    publisher.send("sensornode/j2/status", "offline", retain=True)
    listener = Listener(broker, "--json", "--device", "j2")
    listeners.append(listener)
    record = json.loads(listener.line())
    assert (record["kind"], record["payload"]) == ("status", "offline")


def test_count_exits_zero_after_that_many_readings(
    broker: Broker, publisher: Publisher, listeners: list[Listener]
) -> None:
    listener = start_listening(
        listeners, broker, publisher, "c1", "--json", "--device", "c1", "--count", "2"
    )
    for seq in (1, 2):
        publisher.send("sensornode/c1/readings", reading(seq))
    assert listener.wait() == 0
    assert [listener.record("readings")["payload"]["seq"] for _ in range(2)] == [1, 2]


def test_device_option_hides_other_devices(
    broker: Broker, publisher: Publisher, listeners: list[Listener]
) -> None:
    listener = start_listening(
        listeners, broker, publisher, "mine", "--json", "--device", "mine", "--count", "1"
    )
    publisher.send("sensornode/theirs/readings", reading(1))
    publisher.send("sensornode/mine/readings", reading(2))
    assert listener.wait() == 0
    assert listener.record("readings")["device"] == "mine"


def test_malformed_payload_is_shown_and_the_listener_goes_on(
    broker: Broker, publisher: Publisher, listeners: list[Listener]
) -> None:
    listener = start_listening(
        listeners, broker, publisher, "bad", "--json", "--device", "bad", "--count", "2"
    )
    publisher.send("sensornode/bad/readings", b"\xff not json")
    publisher.send("sensornode/bad/readings", reading(9))
    assert listener.wait() == 0
    payloads = [listener.record("readings")["payload"] for _ in range(2)]
    assert payloads == ["\ufffd not json", reading(9)]


def test_lines_not_a_table_when_stdout_is_not_a_terminal(
    broker: Broker, publisher: Publisher, listeners: list[Listener]
) -> None:
    listener = start_listening(listeners, broker, publisher, "p1", "--device", "p1")
    publisher.send("sensornode/p1/readings", reading(5, temperature=19.25))
    line = listener.reading_line()
    assert line.split(" ", 1)[1] == "p1 readings seq=5 uptime_ms=5000 ts=- temperature=19.25"


def test_csv_option_appends_each_reading(
    broker: Broker, publisher: Publisher, listeners: list[Listener], tmp_path: Path
) -> None:
    path = tmp_path / "readings.csv"
    listener = start_listening(
        listeners, broker, publisher, "v1", "--json", "--device", "v1", "--count", "2",
        "--csv", str(path),
    )  # fmt: skip
    publisher.send("sensornode/v1/readings", reading(1, temperature=20.5))
    publisher.send("sensornode/v1/readings", reading(2, temperature=21.0))
    assert listener.wait() == 0
    lines = path.read_text().splitlines()
    assert lines[0] == "received,device,seq,uptime_ms,ts,temperature"
    assert [line.split(",")[1:] for line in lines[1:]] == [
        ["v1", "1", "1000", "", "20.5"],
        ["v1", "2", "2000", "", "21.0"],
    ]


def test_plot_option_draws_the_csv_when_the_listener_ends(
    broker: Broker, publisher: Publisher, listeners: list[Listener], tmp_path: Path
) -> None:
    path = tmp_path / "readings.csv"
    listener = start_listening(
        listeners, broker, publisher, "p1", "--json", "--device", "p1", "--count", "3",
        "--csv", str(path), "--plot",
    )  # fmt: skip
    for seq in (1, 2, 3):
        publisher.send("sensornode/p1/readings", reading(seq, temperature=20 + seq, rh=40))
    assert listener.wait() == 0
    assert (tmp_path / "p1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_duration_exits_zero_when_it_is_over(broker: Broker, listeners: list[Listener]) -> None:
    listener = Listener(broker, "--duration", "0.5", "--device", "nobody")
    listeners.append(listener)
    assert listener.wait() == 0


def test_ctrl_c_exits_zero(broker: Broker, publisher: Publisher, listeners: list[Listener]) -> None:
    listener = start_listening(listeners, broker, publisher, "k1", "--json", "--device", "k1")
    listener.proc.send_signal(signal.SIGINT)
    assert listener.wait() == 0


def test_lost_broker_is_said_on_stderr_and_the_listener_reconnects(
    listeners: list[Listener],
) -> None:
    with Broker("auto") as own:
        pub = Publisher(own)
        listener = start_listening(listeners, own, pub, "r1", "--json", "--device", "r1")
        pub.close()
        listener.err_until("connected to")
        own.kill()
        assert "lost connection" in listener.err_until("lost connection")
        own.restart()
        listener.err_until("connected to")
        pub = Publisher(own)
        try:
            pub.send("sensornode/r1/status", "online", retain=True)  # gone with the old broker
            assert listener.record("status")["payload"] == "online"
        finally:
            pub.close()


def test_on_a_terminal_the_table_is_redrawn_in_place(broker: Broker, publisher: Publisher) -> None:
    publisher.send("sensornode/t1/status", "online", retain=True)
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.listen", "--broker", broker.address, "--device", "t1"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=subprocess.DEVNULL,
    )
    os.close(terminal)
    screen = b""
    try:
        while not (b"t1" in screen and b"online" in screen):
            ready, _, _ = select.select([controller], [], [], WAIT_S)
            assert ready, f"no table on the terminal: {screen!r}"
            screen += os.read(controller, 65536)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(WAIT_S)
        os.close(controller)
    assert b"\x1b[H" in screen  # cursor home: drawn over the previous table, not below it
    assert b"device" in screen and b"status" in screen
    frame = next(f for f in screen.split(b"\x1b[H")[1:] if b"\x1b[J" in f)
    drawn = re.split(rb"\x1b\[K|\r?\n", frame.split(b"\x1b[J")[0])
    assert max(len(line.decode()) for line in drawn) <= 80  # characters, not bytes
    assert b"Ctrl-C to quit" in screen and b"buf: readings waiting" in screen
