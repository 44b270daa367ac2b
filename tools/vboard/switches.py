"""The host's side of the board's switches: one JSON file that the board support reads.

The supervisor writes the whole file on every change (a temporary file renamed over it, so the
board never reads half a file); the board reads it at most five times a second, so a switch
takes effect within about 0.2 s. Two kinds of entries:

- states, which hold until changed: `air` (the networks in range), `fail` (Wi-Fi joins never
  succeed), `delay_ms` (how long a join takes), `button` (the board's BOOT/BOOTSEL button is
  held), `ntp_fail` (the NTP server does not answer), `mcu_c` (the chip's temperature),
  `wired` (a DHT on every pin, a DS18B20 on every 1-Wire pin and a BME280 at 0x76 answer),
  `room_c` and `room_rh` (what the wired DHT and DS18B20 measure);
- events, counted under `events`: `drop` (the Wi-Fi link goes down once) and `stall` (the Wi-Fi
  driver's next call never returns). A board process acts on the counts that grew after it
  started (`events_seen()` goes to it at start), so a reset does not replay old events.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from pathlib import Path
from typing import Any

NETWORK_KEYS = {"ssid", "password", "rssi", "channel", "hidden"}
EVENTS = ("drop", "stall")


def check_air(networks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The networks as the board reads them; ValueError on a typo rather than a silent default."""
    out = []
    for net in networks:
        unknown = set(net) - NETWORK_KEYS
        if unknown or not isinstance(net.get("ssid"), str):
            raise ValueError(
                f"vboard: a network is a dict with ssid (str) and optionally "
                f"{', '.join(sorted(NETWORK_KEYS - {'ssid'}))}; got {net!r}"
            )
        out.append(dict(net))
    return out


class Switches:
    def __init__(self, path: Path, air: list[dict[str, Any]]) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {
            "air": check_air(air),
            "fail": False,
            "delay_ms": 200,
            "button": False,
            "ntp_fail": False,
            "mcu_c": 27.0,
            "wired": False,
            "room_c": 21.5,
            "room_rh": 45.0,
            "events": {name: 0 for name in EVENTS},
        }
        self._write()

    def set(self, **states: Any) -> None:
        with self._lock:
            for name in states:
                if name == "events" or name not in self._state:
                    raise ValueError(f"vboard: no switch named {name!r}")
            self._state.update(states)
            self._write()

    def count(self, event: str) -> None:
        with self._lock:
            self._state["events"][event] += 1
            self._write()

    def get(self, name: str) -> Any:
        with self._lock:
            return copy.deepcopy(self._state[name])

    def events_seen(self) -> str:
        """The event counts so far, as the board process takes them at start (JSON)."""
        with self._lock:
            return json.dumps(self._state["events"])

    def _write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self._state))
        os.replace(tmp, self.path)
