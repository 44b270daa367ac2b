"""The virtual board's filesystem, laid out as flashing a real board would leave it.

    flash(fs, board="esp32", config=default_config(("127.0.0.1", 1883)), secrets=DEFAULT_SECRETS)

writes boot.py, main.py and firmware/*.py (sources), config.json and secrets.json into an empty
`fs`; on the Pico W also lib/umqtt/simple.py (its firmware does not freeze umqtt, `mip` puts it
in /lib). On the ESP32 umqtt is part of the firmware, so the supervisor puts it on the board's
path as a frozen module instead (`frozen_dir`).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

from tools import fetch_umqtt

ROOT = Path(__file__).resolve().parents[2]
UMQTT_DIR = fetch_umqtt.DEFAULT_OUT  # where `python -m tools.fetch_umqtt` writes umqtt/simple.py
BOARDS = ("esp32", "picow")

# One network in the simulated air, and the board's secrets.json knowing it.
DEFAULT_SSID = "vboard-net"
DEFAULT_PASSWORD = "vboard-pass"
DEFAULT_AIR: list[dict[str, Any]] = [
    {"ssid": DEFAULT_SSID, "password": DEFAULT_PASSWORD, "rssi": -55}
]
DEFAULT_SECRETS: dict[str, Any] = {"wifi": [{"ssid": DEFAULT_SSID, "password": DEFAULT_PASSWORD}]}


def default_config(broker: tuple[str, int] | None) -> dict[str, Any]:
    """A config.json for a board on the bench: quick cycles, short keepalive, the sim sensor."""
    mqtt: dict[str, Any] = {"keepalive": 10}
    if broker is not None:
        mqtt["host"], mqtt["port"] = broker
    return {
        "mqtt": mqtt,
        "interval_s": 1,
        "heartbeat_s": 10,
        "sensors": [{"type": "sim", "name": "temperature"}],
    }


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, section by section (nested dicts merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def umqtt_source(umqtt_dir: Path = UMQTT_DIR) -> Path:
    """umqtt/simple.py as fetched at setup; FileNotFoundError saying how to get it."""
    source = umqtt_dir / "umqtt" / "simple.py"
    if not source.is_file():
        raise FileNotFoundError(
            f"vboard: {source} is missing: run `python -m tools.fetch_umqtt --out build/umqtt`"
            " (or `make setup`)"
        )
    return source


def frozen_dir(board: str, umqtt_dir: Path = UMQTT_DIR) -> Path | None:
    """The folder of modules frozen into the board's firmware (umqtt on the ESP32), or None."""
    if board != "esp32":
        return None
    umqtt_source(umqtt_dir)
    return umqtt_dir


def flash(
    fs: Path,
    board: str,
    config: dict[str, Any],
    secrets: dict[str, Any],
    umqtt_dir: Path = UMQTT_DIR,
) -> None:
    """Erase `fs` and write a freshly flashed board's files into it."""
    if board not in BOARDS:
        raise ValueError(f"vboard: board must be one of {', '.join(BOARDS)}, not {board!r}")
    if fs.exists():
        shutil.rmtree(fs)
    (fs / "firmware").mkdir(parents=True)
    for name in ("boot.py", "main.py"):
        shutil.copy2(ROOT / name, fs / name)
    for source in sorted((ROOT / "firmware").glob("*.py")):
        shutil.copy2(source, fs / "firmware" / source.name)
    (fs / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (fs / "secrets.json").write_text(json.dumps(secrets, indent=2) + "\n")
    if board == "picow":
        lib = fs / "lib" / "umqtt"
        lib.mkdir(parents=True)
        shutil.copy2(umqtt_source(umqtt_dir), lib / "simple.py")
