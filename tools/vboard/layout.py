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

from firmware import ident
from tools import fetch_umqtt

ROOT = Path(__file__).resolve().parents[2]
UMQTT_DIR = fetch_umqtt.DEFAULT_OUT  # where `python -m tools.fetch_umqtt` writes umqtt/simple.py
# Every umqtt.simple a board can have, as micropython-lib published them, beside the repository
# when it is checked out with its shared folder (never copied into it).
SHARED_UMQTT = ROOT.parent / "shared" / "umqtt-simple"
UMQTT_VERSIONS = ("1.3.4", "1.4.0", "1.5.0", "1.6.0", "1.7.0", "1.7.1", "1.8.0")
# MicroPython 1.22, the last to freeze umqtt.simple 1.3.4, is also the last whose ssl module can
# be imported as `ussl`, which that umqtt needs for TLS.
USSL_UMQTT = "1.3.4"
BOARDS = tuple(name for name, _ in ident.BOARDS.values())  # esp32, picow

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


def umqtt_dir(version: str | None) -> Path:
    """Where that umqtt.simple version's umqtt/ folder is: None is the package index's 1.3.4
    (build/umqtt); any other version comes from ../shared. FileNotFoundError saying why not."""
    if version is None:
        return UMQTT_DIR
    if version not in UMQTT_VERSIONS:
        raise ValueError(
            f"vboard: umqtt.simple {version!r} is not one a board can have: "
            + ", ".join(UMQTT_VERSIONS)
        )
    found = SHARED_UMQTT / version
    if not (found / "umqtt" / "simple.py").is_file():
        raise FileNotFoundError(
            f"vboard: umqtt.simple {version} needs {found}/umqtt/simple.py, a folder beside this"
            " repository that a plain clone does not have; without it only the package index's"
            f" {fetch_umqtt.VERSION} (the default) runs"
        )
    return found


def has_ussl(version: str | None) -> bool:
    """Whether a board with this umqtt.simple (None: the index's) has `ussl` (MicroPython 1.22)."""
    return (version or fetch_umqtt.VERSION) == USSL_UMQTT


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
    files: dict[str, bytes] | None = None,
) -> None:
    """Erase `fs` and write a freshly flashed board's files into it, and `files` (name: bytes,
    e.g. the CA certificate config.json names) at its root."""
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
    for name, data in (files or {}).items():
        (fs / name).write_bytes(data)
    if board == "picow":
        lib = fs / "lib" / "umqtt"
        lib.mkdir(parents=True)
        shutil.copy2(umqtt_source(umqtt_dir), lib / "simple.py")
