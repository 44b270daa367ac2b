"""Watch sensornode devices: a live table of every device's status, readings and heartbeat.

    python -m tools.listen --broker 127.0.0.1:1883 [--device esp32-a1b2c3] [--base sensornode]
                           [--json] [--csv FILE] [--duration S] [--count N]

Subscribes to <base>/<id>/status, readings, heartbeat and event (docs/topics.md).
On a terminal the table is redrawn in place; when stdout is a pipe or a file, one line per message.
--json prints one JSON object per message instead. --csv appends every reading to a file.
Connection trouble goes to stderr; paho reconnects by itself. Ctrl-C exits 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tools.watcher import Inbox, Watcher

KINDS = ("status", "readings", "heartbeat", "event")
# Keys of a readings message that are not sensor values.
READING_META = ("seq", "uptime_ms", "ts")
# Heartbeat fields shown in the table, with their column titles.
HEARTBEAT_COLUMNS = (
    ("rssi", "rssi"),
    ("free_heap", "heap"),
    ("buffered", "buf"),
    ("dropped", "drop"),
    ("reconnects", "reconn"),
    ("errors", "err"),
)
DEFAULT_BROKER = "127.0.0.1:1883"
DEFAULT_PORT = 1883
REDRAW_S = 1.0
KEEP = 10_000  # messages the listener's inbox holds; it reads them as they come


# ---------------------------------------------------------------------------------------------
# Pure parts: no I/O, everything they need comes in as arguments.


def parse_broker(text: str) -> tuple[str, int]:
    """Split host:port, host or [v6]:port into (host, port); ValueError names the bad part."""
    text = text.strip()
    if not text:
        raise ValueError("broker address is empty")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"broker address {text!r} is not [host]:port")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"broker address {text!r} has no host")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"broker port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def subscriptions(base: str, device: str | None = None) -> list[str]:
    """The topic filters to subscribe to: every device, or just `device`."""
    who = device if device else "+"
    return [f"{base}/{who}/{kind}" for kind in KINDS]


def parse_topic(topic: str, base: str, device: str | None = None) -> tuple[str, str] | None:
    """Split <base>/<id>/<kind> into (id, kind); None for any other topic, or another device's
    when `device` is given. (A broker may send what was not subscribed to: amqtt 0.12.1 sends a
    new client the retained messages that match other clients' subscriptions.)"""
    prefix = base + "/"
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix) :].split("/")
    if len(parts) != 2 or not parts[0] or parts[1] not in KINDS:
        return None
    if device is not None and parts[0] != device:
        return None
    return parts[0], parts[1]


def decode_payload(payload: bytes) -> Any:
    """The payload as JSON when it parses, else as text (undecodable bytes replaced)."""
    text = payload.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def json_record(topic: str, device: str, kind: str, payload: Any, received: float) -> str:
    """One line of --json output."""
    record = {
        "topic": topic,
        "device": device,
        "kind": kind,
        "payload": payload,
        "received": received,
    }
    return json.dumps(record, separators=(",", ":"))


def sensor_values(payload: dict[str, Any]) -> dict[str, Any]:
    """The sensor keys of a readings message: everything but seq, uptime_ms and ts."""
    return {k: v for k, v in payload.items() if k not in READING_META}


def short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class DeviceRow:
    """What the listener knows about one device."""

    device: str
    status: str = "?"
    seq: int | None = None
    last_reading: float | None = None  # when the last readings message arrived (unix time)
    values: dict[str, Any] = field(default_factory=dict)
    heartbeat: dict[str, Any] = field(default_factory=dict)
    readings: int = 0
    lost: int = 0  # readings missing from gaps in seq
    note: str = ""  # the last event, or what was wrong with the last malformed message


def update_row(
    rows: dict[str, DeviceRow], device: str, kind: str, payload: Any, received: float
) -> DeviceRow:
    """Fold one message into the device's row (created on first sight) and return the row."""
    row = rows.get(device)
    if row is None:
        row = rows[device] = DeviceRow(device)
    if kind == "status":
        if payload == "":
            row.status = "?"  # the retained status was cleared
        elif isinstance(payload, str):
            row.status = payload
        else:
            row.note = f"malformed status: {short(payload)}"
    elif kind == "readings":
        seq = payload.get("seq") if isinstance(payload, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool):
            row.note = f"malformed readings: {short(payload)}"
            return row
        if row.seq is not None and seq > row.seq + 1:
            row.lost += seq - row.seq - 1
        elif row.seq is not None and seq < row.seq:
            row.note = f"seq went back from {row.seq} to {seq}: device restarted"
        row.seq = seq
        row.last_reading = received
        row.readings += 1
        row.values.update(sensor_values(payload))
    elif kind == "heartbeat":
        if isinstance(payload, dict):
            row.heartbeat = payload
        else:
            row.note = f"malformed heartbeat: {short(payload)}"
    elif kind == "event":
        if isinstance(payload, dict) and "event" in payload:
            ok = payload.get("ok")
            detail = payload.get("detail")
            row.note = f"event {payload['event']}" + (
                "" if ok is None else f" ok={format_value(ok)}"
            )
            if detail not in (None, ""):
                row.note += f": {short(detail)}"
        else:
            row.note = f"malformed event: {short(payload)}"
    return row


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.01:
            return f"{value:.3g}"
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int | str):
        return str(value)
    return short(value, 20)


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def sensor_keys(rows: Iterable[DeviceRow]) -> list[str]:
    """Every sensor key seen on any device, sorted: the table's value columns."""
    keys: set[str] = set()
    for row in rows:
        keys.update(row.values)
    return sorted(keys)


def render_table(rows: dict[str, DeviceRow], now: float) -> list[str]:
    """The table as text lines: a header, then one line per device sorted by id."""
    keys = sensor_keys(rows.values())
    header = ["device", "status", "seq", "age", *keys]
    header += [title for _, title in HEARTBEAT_COLUMNS] + ["lost", "note"]
    table = [header]
    for device in sorted(rows):
        row = rows[device]
        age = None if row.last_reading is None else now - row.last_reading
        cells = [row.device, row.status, format_value(row.seq), format_age(age)]
        cells += [format_value(row.values.get(k)) for k in keys]
        cells += [format_value(row.heartbeat.get(k)) for k, _ in HEARTBEAT_COLUMNS]
        cells += [str(row.lost), row.note]
        table.append(cells)
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]


def format_line(device: str, kind: str, payload: Any, received: float) -> str:
    """One line per message, for a pipe or a log file."""
    clock = time.strftime("%H:%M:%S", time.localtime(received))
    if kind == "readings" and isinstance(payload, dict):
        fields = " ".join(f"{k}={format_value(v)}" for k, v in payload.items())
        return f"{clock} {device} readings {fields}"
    if kind == "heartbeat" and isinstance(payload, dict):
        fields = " ".join(f"{k}={format_value(v)}" for k, v in payload.items())
        return f"{clock} {device} heartbeat {fields}"
    if kind == "status" and isinstance(payload, str):
        return f"{clock} {device} status {payload or '(cleared)'}"
    if kind == "event" and isinstance(payload, dict):
        return f"{clock} {device} event {short(payload, 200)}"
    return f"{clock} {device} {kind} malformed: {short(payload, 200)}"


def csv_columns(keys: Iterable[str]) -> list[str]:
    """The CSV header: received, device, seq, uptime_ms, ts, then the sensor keys in order."""
    return ["received", "device", *READING_META, *(k for k in keys if k not in READING_META)]


def csv_row(columns: list[str], device: str, payload: dict[str, Any], received: float) -> list[str]:
    """One CSV line for a readings message; a key missing from this message is left empty."""
    known = {"received": f"{received:.3f}", "device": device}
    cells = []
    for column in columns:
        if column in known:
            cells.append(known[column])
        else:
            value = payload.get(column)
            cells.append("" if value is None else str(value))
    return cells


# ---------------------------------------------------------------------------------------------
# I/O: the CSV file, the screen, the MQTT client.


class CsvLog:
    """Appends readings to a CSV file. A new file gets a header from the first reading's keys;
    an existing file keeps its header, and keys it lacks are left out (said once on stderr)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] | None = None
        if path.exists() and path.stat().st_size > 0:
            with open(path, newline="") as f:
                self.columns = next(csv.reader(f), None)
        self.warned: set[str] = set()

    def add(self, device: str, payload: dict[str, Any], received: float) -> None:
        new_file = self.columns is None
        if self.columns is None:
            self.columns = csv_columns(payload)
        missing = set(sensor_values(payload)) - set(self.columns) - self.warned
        if missing:
            self.warned |= missing
            names = ", ".join(sorted(missing))
            print(f"listen: {self.path} has no column for {names}; not written", file=sys.stderr)
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            if new_file:
                writer.writerow(self.columns)
            writer.writerow(csv_row(self.columns, device, payload, received))


class Screen:
    """Redraws the table in place with plain ANSI codes: home, each line cleared, rest cleared."""

    def __init__(self, out: TextIO, title: str) -> None:
        self.out = out
        self.title = title
        self.state = "connecting"

    def draw(self, rows: dict[str, DeviceRow], now: float) -> None:
        width = shutil.get_terminal_size().columns
        lines = [f"{self.title}  [{self.state}]  {len(rows)} device(s)  Ctrl-C to quit", ""]
        lines += render_table(rows, now) if rows else ["(waiting for devices)"]
        text = "".join("\x1b[K" + line[:width] + "\n" for line in lines)
        self.out.write("\x1b[H" + text + "\x1b[J")
        self.out.flush()


def state_text(state: str, address: str) -> str:
    """What the listener says about its watcher's state (tools/watcher.py)."""
    if state == "connected":
        return f"connected to {address}"
    if state.startswith("refused: "):
        return f"broker {address} refused the connection: {state[9:]}; retrying"
    if state == "unreachable":
        return f"cannot reach broker {address}; retrying"
    if state.startswith("lost: "):
        return f"lost connection to {address} ({state[6:]}); reconnecting"
    return f"{state} {address}"


def run(args: argparse.Namespace) -> int:
    host, port = parse_broker(args.broker)
    address = f"{host}:{port}"
    inbox = Inbox(keep=KEEP)
    out = sys.stdout
    table = not args.json and out.isatty()
    screen = Screen(out, f"sensornode listen  {address}  base {args.base}") if table else None
    csv_log = CsvLog(Path(args.csv)) if args.csv else None
    rows: dict[str, DeviceRow] = {}
    readings = 0
    deadline = None if args.duration is None else time.monotonic() + args.duration
    next_draw = 0.0

    said = ""

    def say(text: str) -> None:
        # Said once, not at every retry. On a terminal the table's title line shows it: a line on
        # the same terminal would be wiped by the next redraw.
        nonlocal said
        if text == said:
            return
        said = text
        if screen is not None:
            screen.state = f"{text} at {time.strftime('%H:%M:%S')}"
        if screen is None or not sys.stderr.isatty():
            print(f"listen: {text}", file=sys.stderr, flush=True)

    if screen is not None:
        out.write("\x1b[2J")
    watcher = Watcher(
        (host, port),
        subscriptions(args.base, args.device),
        inbox,
        client_id=f"sensornode-listen-{os.getpid()}-{os.urandom(2).hex()}",
        wait_s=None,
    )
    cursor = 0
    try:
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if screen is not None and now >= next_draw:
                screen.draw(rows, time.time())
                next_draw = now + REDRAW_S
            timeout = REDRAW_S if deadline is None else max(0.0, min(REDRAW_S, deadline - now))
            cursor, messages = inbox.wait_new(cursor, timeout)
            if watcher.state != "connecting":
                say(state_text(watcher.state, address))
            for msg in messages:
                parsed = parse_topic(msg.topic, args.base, args.device)
                if parsed is None:
                    continue
                device, kind = parsed
                payload = decode_payload(msg.payload)
                update_row(rows, device, kind, payload, msg.wall)
                if args.json:
                    print(json_record(msg.topic, device, kind, payload, msg.wall), flush=True)
                elif screen is None:
                    print(format_line(device, kind, payload, msg.wall), flush=True)
                else:
                    next_draw = min(next_draw, now + 0.1)  # soon, at most 10 times a second
                if kind == "readings":
                    if csv_log is not None and isinstance(payload, dict):
                        csv_log.add(device, payload, msg.wall)
                    readings += 1
                    if args.count is not None and readings >= args.count:
                        return 0
    except KeyboardInterrupt:
        pass
    finally:
        if screen is not None:
            screen.draw(rows, time.time())
        watcher.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.listen",
        description="Show what sensornode devices publish: a live table, lines, JSON or CSV.",
    )
    parser.add_argument(
        "--broker", default=DEFAULT_BROKER, help="host:port of the broker (default %(default)s)"
    )
    parser.add_argument("--device", default=None, help="only this device id (default: all)")
    parser.add_argument("--base", default="sensornode", help="base topic (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="one JSON object per message")
    parser.add_argument("--csv", metavar="FILE", help="append every reading to this CSV file")
    parser.add_argument("--duration", type=float, metavar="S", help="exit 0 after S seconds")
    parser.add_argument("--count", type=int, metavar="N", help="exit 0 after N readings")
    args = parser.parse_args(argv)
    try:
        parse_broker(args.broker)
    except ValueError as exc:
        parser.error(str(exc))
    if args.count is not None and args.count < 1:
        parser.error("--count must be 1 or more")
    args.device = args.device or None  # `--device ""` (an unset make variable) means all
    if args.device is not None and set(args.device) & set("/+#"):
        parser.error(f"--device {args.device!r} must be a device id, without / + or #")
    # A SIGTERM (e.g. from `timeout`) ends the listener as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
