"""Readings as CSV: one row per reading, times in ISO 8601, a column per sensor key.

    received,device,seq,uptime_ms,ts,temperature
    2026-12-01T21:40:12.250+00:00,esp32-a1b2c3,12,120034,2026-12-01T21:40:12+00:00,21.5

`received` is when this host got the reading, `ts` when the board took it (empty until its clock
is set from NTP), both with their UTC offset; `uptime_ms` is the board's own clock.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

READING_META = ("seq", "uptime_ms", "ts")


def iso(seconds: float, *, ms: bool = True) -> str:
    """Unix time as ISO 8601 in this host's time zone, with its offset."""
    return (
        datetime.fromtimestamp(seconds)
        .astimezone()
        .isoformat("T", "milliseconds" if ms else "seconds")
    )


def csv_columns(keys: Iterable[str]) -> list[str]:
    """The CSV header: received, device, seq, uptime_ms, ts, then the sensor keys in order."""
    return ["received", "device", *READING_META, *(k for k in keys if k not in READING_META)]


def cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "ts" and isinstance(value, int | float) and not isinstance(value, bool):
        return iso(value, ms=False)
    return str(value)


def csv_row(columns: list[str], device: str, payload: dict[str, Any], received: float) -> list[str]:
    """One CSV line for a readings message; a key missing from this message is left empty."""
    known = {"received": iso(received), "device": device}
    return [known[c] if c in known else cell(c, payload.get(c)) for c in columns]


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
        missing = {k for k in payload if k not in READING_META} - set(self.columns) - self.warned
        if missing:
            self.warned |= missing
            names = ", ".join(sorted(missing))
            print(f"listen: {self.path} has no column for {names}; not written", file=sys.stderr)
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            if new_file:
                writer.writerow(self.columns)
            writer.writerow(csv_row(self.columns, device, payload, received))


@dataclass
class Reading:
    device: str
    received: datetime
    values: dict[str, float]  # every numeric sensor value of the reading


def number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_csv(path: Path) -> Iterator[Reading]:
    """The readings of a CSV file written by CsvLog, with their numeric sensor values. Rows
    whose time does not parse are skipped (a file cut short, or edited by hand)."""
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                received = datetime.fromisoformat(row.get("received") or "")
            except ValueError:
                continue
            values = {}
            for key, text in row.items():
                if key in ("received", "device", *READING_META) or not text:
                    continue
                value = number(text)
                if value is not None:
                    values[key] = value
            yield Reading(row.get("device") or "?", received, values)
