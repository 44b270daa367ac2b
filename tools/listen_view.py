"""What `make listen` knows about each device, and the screen it draws from that: plain functions,
no I/O. The screen fits the terminal's width (80 columns included): a line per device with its
state, its readings with their units on the lines below it, its last event in full, and a legend
for the short column names.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Keys of a readings message that are not sensor values.
READING_META = ("seq", "uptime_ms", "ts")
NOTE_LINES = 4  # an event longer than this many lines (a `get` of the whole config) is cut
QUIT = "Ctrl-C to quit"
LEGEND = (
    "age: since the last reading · rssi: Wi-Fi signal, dBm · heap: free heap after "
    "gc.collect(), kB · buf: readings waiting on the board · drop: readings its full outbox "
    "dropped · lost: readings missing from seq, seen here · err: sensor and command errors · "
    "reconn: broker reconnects"
)


@dataclass
class DeviceRow:
    """What the listener knows about one device."""

    device: str
    status: str = "?"
    seq: int | None = None
    last_reading: float | None = None  # when the last readings message arrived (unix time)
    values: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)  # from Home Assistant discovery
    heartbeat: dict[str, Any] = field(default_factory=dict)
    readings: int = 0
    lost: int = 0  # readings missing from gaps in seq
    note: str = ""  # the last event, or what was wrong with the last malformed message


def sensor_values(payload: dict[str, Any]) -> dict[str, Any]:
    """The sensor keys of a readings message: everything but seq, uptime_ms and ts."""
    return {k: v for k, v in payload.items() if k not in READING_META}


def short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def whole(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


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
                row.note += f": {whole(detail)}"
        else:
            row.note = f"malformed event: {whole(payload)}"
    return row


TEMPLATE_KEY = re.compile(r"value_json(?:\.(\w+)|\['([^']+)'\])")


def discovered_unit(payload: Any) -> tuple[str, str, str] | None:
    """(device, key, unit) from a Home Assistant discovery config that names a unit, else None.
    The device and key come from its state topic (<base>/<id>/readings) and value template;
    keys in full or abbreviated (unit_of_meas, stat_t, val_tpl), as firmware/ha.py sends them."""
    if not isinstance(payload, dict):
        return None
    unit = payload.get("unit_of_measurement", payload.get("unit_of_meas"))
    state = payload.get("state_topic", payload.get("stat_t"))
    template = payload.get("value_template", payload.get("val_tpl"))
    if not (isinstance(unit, str) and isinstance(state, str) and isinstance(template, str)):
        return None
    parts = state.split("/")
    found = TEMPLATE_KEY.search(template)
    if len(parts) < 3 or parts[-1] != "readings" or not found:
        return None
    return parts[-2], found.group(1) or found.group(2), unit


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


def format_kb(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value / 1024:.1f}"
    return format_value(value)


# The state columns, most important first: (title, cell). Those that do not fit the width go to
# the lines below the device, as "title value".
COLUMNS: tuple[tuple[str, Any], ...] = (
    ("device", lambda r, now: r.device),
    ("status", lambda r, now: r.status),
    ("seq", lambda r, now: format_value(r.seq)),
    ("age", lambda r, now: format_age(None if r.last_reading is None else now - r.last_reading)),
    ("heap", lambda r, now: format_kb(r.heartbeat.get("free_heap"))),
    ("buf", lambda r, now: format_value(r.heartbeat.get("buffered"))),
    ("drop", lambda r, now: format_value(r.heartbeat.get("dropped"))),
    ("lost", lambda r, now: str(r.lost)),
    ("err", lambda r, now: format_value(r.heartbeat.get("errors"))),
    ("rssi", lambda r, now: format_value(r.heartbeat.get("rssi"))),
    ("reconn", lambda r, now: format_value(r.heartbeat.get("reconnects"))),
)
GAP = "  "


def title_line(address: str, state: str, devices: int, width: int) -> str:
    """The first line; "Ctrl-C to quit" stays visible however narrow the terminal."""
    left = f"listen {address}  {state}  {devices} device{'' if devices == 1 else 's'}"
    room = max(0, width - len(QUIT) - 2)
    if len(left) > room:
        left = left[: max(0, room - 1)] + "…"
    return f"{left}  {QUIT}" if left else QUIT[:width]


def fitting_columns(cells: list[list[str]], width: int) -> int:
    """How many leading columns fit in `width` (the first always counts)."""
    used = 0
    for i in range(len(COLUMNS)):
        w = max(len(line[i]) for line in cells)
        used += w + (len(GAP) if i else 0)
        if used > width and i:
            return i
    return len(COLUMNS)


def wrap_items(items: Iterable[str], width: int, indent: str = "  ") -> list[str]:
    """Items joined by ' · ' into lines of at most `width`, each line indented."""
    lines: list[str] = []
    current = ""
    for item in items:
        candidate = item if not current else f"{current} · {item}"
        if current and len(indent) + len(candidate) > width:
            lines.append(indent + current)
            candidate = item
        current = candidate
    if current:
        lines.append(indent + current)
    return [line if len(line) <= width else line[: width - 1] + "…" for line in lines]


def value_items(row: DeviceRow) -> list[str]:
    out = []
    for key in sorted(row.values):
        unit = row.units.get(key, "")
        out.append(f"{key} {format_value(row.values[key])}" + (f" {unit}" if unit else ""))
    return out


def note_lines(note: str, width: int) -> list[str]:
    if not note:
        return []
    lines = textwrap.wrap(note, max(10, width - 4), initial_indent="  ", subsequent_indent="    ")
    if len(lines) > NOTE_LINES:
        lines = lines[:NOTE_LINES]
        lines[-1] = lines[-1][: max(0, width - 1)] + "…"
    return lines


def render_table(rows: dict[str, DeviceRow], now: float, width: int = 80) -> list[str]:
    """The devices as text lines, none longer than `width`: a header, then per device (sorted by
    id) a line of state columns, its readings with units, the columns that did not fit, and its
    last event."""
    header = [title for title, _ in COLUMNS]
    table = [header] + [[cell(rows[d], now) for _, cell in COLUMNS] for d in sorted(rows)]
    n = fitting_columns(table, width)
    widths = [max(len(line[i]) for line in table) for i in range(n)]

    def line(cells: list[str]) -> str:
        text = GAP.join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ).rstrip()
        return text if len(text) <= width else text[: width - 1] + "…"

    out = [line(header)]
    for cells, device in zip(table[1:], sorted(rows), strict=True):
        row = rows[device]
        out.append(line(cells))
        rest = [f"{header[i]} {cells[i]}" for i in range(n, len(COLUMNS))]
        out += wrap_items(value_items(row) + rest, width)
        out += note_lines(row.note, width)
    return out


def render_screen(
    rows: dict[str, DeviceRow],
    now: float,
    width: int,
    *,
    address: str,
    state: str,
    footer: Iterable[str] = (),
) -> list[str]:
    """Everything on the terminal: the title, the table, the legend and the caller's footer."""
    lines = [title_line(address, state, len(rows), width), ""]
    lines += render_table(rows, now, width) if rows else ["(waiting for devices)"]
    lines.append("")
    lines += textwrap.wrap(LEGEND, width)
    for extra in footer:
        lines += textwrap.wrap(extra, width) or [""]
    return lines
