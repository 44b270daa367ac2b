"""Watch sensornode devices: a live table of every device's status, readings and heartbeat.

    python -m tools.listen --broker 127.0.0.1:1883 [--device esp32-a1b2c3] [--base sensornode]
                           [--json] [--csv FILE [--plot]] [--note TEXT] [--duration S] [--count N]

Subscribes to <base>/<id>/status, readings, heartbeat and event (docs/topics.md).
On a terminal the table is redrawn in place; when stdout is a pipe or a file, one line per message.
--json prints one JSON object per message instead. --csv appends every reading to a file
(tools/csvlog.py), --plot draws it at the end (tools/plot.py). Units come from the devices' Home
Assistant discovery messages; tools/listen_view.py draws the table.
Connection trouble goes to stderr; paho reconnects by itself. Ctrl-C exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tools.csvlog import CsvLog
from tools.listen_view import (
    DeviceRow,
    discovered_unit,
    format_value,
    render_screen,
    update_row,
    whole,
)
from tools.watcher import Inbox, Watcher

KINDS = ("status", "readings", "heartbeat", "event")
DISCOVERY = "homeassistant/sensor/+/config"  # read for the readings' units
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


def add_broker_options(parser: argparse.ArgumentParser) -> None:
    """--broker and --base, as every tool that talks to nodes takes them."""
    parser.add_argument("--broker", default=DEFAULT_BROKER, help="host:port (default %(default)s)")
    parser.add_argument("--base", default="sensornode", help="base topic (default %(default)s)")


def broker_option(parser: argparse.ArgumentParser, text: str) -> tuple[str, int]:
    """The parsed --broker, or the parser's usage error naming the bad part."""
    try:
        return parse_broker(text)
    except ValueError as e:
        parser.error(str(e))


def is_device_id(text: str) -> bool:
    """A single topic level: something, without / + or #."""
    return bool(text) and not set(text) & set("/+#")


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
        return f"{clock} {device} event {whole(payload)}"
    return f"{clock} {device} {kind} malformed: {whole(payload)}"


# ---------------------------------------------------------------------------------------------
# I/O: the CSV file, the screen, the MQTT client.


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


class Screen:
    """Redraws the whole screen in place with plain ANSI codes: home, each line cleared, the rest
    of the screen cleared. The title line shows the connection's state."""

    def __init__(self, out: TextIO, address: str, footer: list[str]) -> None:
        self.out = out
        self.address = address
        self.footer = footer
        self.state = "connecting"

    def draw(self, rows: dict[str, DeviceRow], now: float) -> None:
        width = shutil.get_terminal_size().columns
        lines = render_screen(
            rows, now, width, address=self.address, state=self.state, footer=self.footer
        )
        text = "".join("\x1b[K" + line + "\n" for line in lines)
        self.out.write("\x1b[H" + text + "\x1b[J")
        self.out.flush()


def run(args: argparse.Namespace) -> int:
    host, port = parse_broker(args.broker)
    address = f"{host}:{port}"
    inbox = Inbox(keep=KEEP)
    out = sys.stdout
    table = not args.json and out.isatty()
    screen = Screen(out, address, args.note) if table else None
    csv_log = CsvLog(Path(args.csv)) if args.csv else None
    rows: dict[str, DeviceRow] = {}
    readings = 0
    deadline = None if args.duration is None else time.monotonic() + args.duration
    next_draw = 0.0

    said = ""

    def say(state: str) -> None:
        # Called on the watcher's thread with every new state; said once, not at every retry.
        # On a terminal the table's title line shows it in a word (a line on the same terminal
        # would be wiped by the next redraw).
        nonlocal said
        text = state_text(state, address)
        if text == said:
            return
        said = text
        if screen is not None:
            screen.state = f"{state.split(':')[0]} {time.strftime('%H:%M:%S')}"
        if screen is None or not sys.stderr.isatty():
            print(f"listen: {text}", file=sys.stderr, flush=True)

    if screen is not None:
        out.write("\x1b[2J")
    topics = subscriptions(args.base, args.device) + ([] if args.json else [DISCOVERY])
    watcher = Watcher(
        (host, port),
        topics,
        inbox,
        client_id=f"sensornode-listen-{os.getpid()}-{os.urandom(2).hex()}",
        wait_s=None,
        on_state=say,
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
            for msg in messages:
                payload = decode_payload(msg.payload)
                unit = discovered_unit(payload) if msg.topic.startswith("homeassistant/") else None
                if unit is not None:
                    device, key, text = unit
                    if args.device in (None, device):
                        row = rows.setdefault(device, DeviceRow(device))
                        row.units[key] = text
                    continue
                parsed = parse_topic(msg.topic, args.base, args.device)
                if parsed is None:
                    continue
                device, kind = parsed
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
        if args.plot and args.csv:
            plot(Path(args.csv))
    return 0


def plot(path: Path) -> None:
    from tools import plot as plotting

    if not path.is_file():
        print(f"listen: no readings in {path} to plot", file=sys.stderr)
        return
    for png in plotting.plot_all(plotting.read_csv(path), path.parent):
        print(f"listen: plotted {png}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.listen",
        description="Show what sensornode devices publish: a live table, lines, JSON or CSV.",
    )
    add_broker_options(parser)
    parser.add_argument("--device", default=None, help="only this device id (default: all)")
    parser.add_argument("--json", action="store_true", help="one JSON object per message")
    parser.add_argument(
        "--csv", metavar="FILE", help="append every reading to this CSV file (ISO 8601 times)"
    )
    parser.add_argument(
        "--plot", action="store_true", help="at the end, a PNG per device from the CSV file"
    )
    parser.add_argument(
        "--note", action="append", default=[], help="a line kept under the table (repeatable)"
    )
    parser.add_argument("--duration", type=float, metavar="S", help="exit 0 after S seconds")
    parser.add_argument("--count", type=int, metavar="N", help="exit 0 after N readings")
    args = parser.parse_args(argv)
    broker_option(parser, args.broker)
    if args.count is not None and args.count < 1:
        parser.error("--count must be 1 or more")
    args.csv = args.csv or None  # `--csv ""` (an unset make variable) means none
    if args.plot and args.csv is None:
        parser.error("--plot plots the CSV file: give --csv FILE (make listen CSV=file PLOT=1)")
    args.device = args.device or None  # `--device ""` (an unset make variable) means all
    if args.device is not None and not is_device_id(args.device):
        parser.error(f"--device {args.device!r} must be a device id, without / + or #")
    # A SIGTERM (e.g. from `timeout`) ends the listener as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
