"""What a Home Assistant user gets from a sensornode: one board with a sensor of every kind the
virtual board can answer for, seen through a real Home Assistant 2024.3.3 and Mosquitto.

The scenario runs once (module fixture); each test checks one thing it left behind:
HA's state machine, entity and device registries, its recorder database and its log.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from host_tests.mqtt_helpers import no_traceback
from tools import ha_install
from tools.brokers import Broker, mosquitto_path
from tools.homeassistant import HomeAssistant
from tools.vboard import VirtualBoard
from tools.watcher import Watcher

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "ha-test"  # not HA's default: proves ha_prefix and HA's discovery prefix meet
UID = "c0ffee5e0a01"
DEVICE = "esp32-5e0a01"
OBJ = DEVICE.replace("-", "_")  # how HA slugs the device name into entity ids
WAIT_S = 60.0

SENSORS: list[dict[str, Any]] = [
    {"type": "sim", "name": "temperature", "unit": "°C", "device_class": "temperature"},
    # report-on-change: most readings leave this key out
    {"type": "sim", "name": "2nd_floor", "delta": 0.5, "max_silence_s": 30, "period_s": 120},
    {"type": "mcu", "name": "chip"},
    {"type": "dht22", "name": "room", "pin": 4},
    {"type": "bme280", "name": "air"},
    {"type": "ds18b20", "name": "water", "pin": 5},
    {"type": "adc", "name": "soil", "pin": 34, "scale": 0.001, "unit": "%",
     "device_class": "moisture"},
]  # fmt: skip
REMOVED = "soil"  # taken out of config.json for the re-provision

# entity -> (unit, device_class, state_class), as HA must show each reading key.
READINGS = {
    f"sensor.{OBJ}_temperature": ("°C", "temperature", "measurement"),
    f"sensor.{OBJ}_2nd_floor": (None, None, "measurement"),
    f"sensor.{OBJ}_chip": ("°C", "temperature", "measurement"),
    f"sensor.{OBJ}_room_temperature": ("°C", "temperature", "measurement"),
    f"sensor.{OBJ}_room_humidity": ("%", "humidity", "measurement"),
    f"sensor.{OBJ}_air_temperature": ("°C", "temperature", "measurement"),
    f"sensor.{OBJ}_air_humidity": ("%", "humidity", "measurement"),
    f"sensor.{OBJ}_air_pressure": ("hPa", "pressure", "measurement"),
    f"sensor.{OBJ}_water": ("°C", "temperature", "measurement"),
    f"sensor.{OBJ}_soil": ("%", "moisture", "measurement"),
}
DIAGNOSTICS = {
    f"sensor.{OBJ}_signal_strength": ("dBm", "signal_strength", "measurement"),
    f"sensor.{OBJ}_free_heap": ("B", "data_size", "measurement"),
    f"sensor.{OBJ}_uptime": ("s", "duration", "total_increasing"),
    f"sensor.{OBJ}_reconnects": (None, None, "total_increasing"),
    f"sensor.{OBJ}_readings_dropped": (None, None, "total_increasing"),
    f"sensor.{OBJ}_errors": (None, None, "total_increasing"),
    f"sensor.{OBJ}_reset_cause": (None, None, None),
    f"sensor.{OBJ}_ip_address": (None, None, None),
    f"sensor.{OBJ}_firmware_version": (None, None, None),
    f"binary_sensor.{OBJ}_connectivity": (None, "connectivity", None),
}
NOT_A_VALUE = ("", "None", "unknown", "unavailable")


@dataclass
class Seen:
    """What the scenario found, phase by phase."""

    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=dict)
    unwired: dict[str, str] = field(default_factory=dict)  # states while sensors gave null
    readings: list[dict[str, Any]] = field(default_factory=list)
    recorded: dict[str, list[str]] = field(default_factory=dict)
    after_reprovision: set[str] = field(default_factory=set)
    after_power_cut: dict[str, str] = field(default_factory=dict)
    log: str = ""
    page: str | None = None  # the device page's text in HA's frontend, None without Chromium
    timings: dict[str, float] = field(default_factory=dict)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def until(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"home assistant: {what} not within {timeout:.0f} s")
        time.sleep(0.5)


def ours(states: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e: s for e, s in states.items() if e.split(".", 1)[1].startswith(OBJ + "_")}


def entity_table(states: dict[str, dict[str, Any]], entities: dict[str, dict[str, Any]]) -> str:
    rows = [("entity", "state", "unit", "device_class", "state_class", "category")]
    for entity_id in sorted(states):
        a = states[entity_id]["attributes"]
        category = entities.get(entity_id, {}).get("entity_category") or ""
        rows.append(
            (
                entity_id,
                states[entity_id]["state"],
                a.get("unit_of_measurement") or "",
                a.get("device_class") or "",
                a.get("state_class") or "",
                category,
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows
    )


def device_page(ha: HomeAssistant, device_id: str, png: Path) -> str | None:
    """HA's device page as a person sees it (headless Chromium): its text; a screenshot to png."""
    from host_tests.browser import Browser, chromium

    if chromium() is None:
        return None
    with Browser() as b:
        b.call("Emulation.setDeviceMetricsOverride", width=1000, height=1280, deviceScaleFactor=1,
               mobile=False)  # fmt: skip
        # The owner signs in from 127.0.0.1 without a password (trusted_networks): the login
        # page goes on by itself to the page asked for.
        b.open(f"{ha.url}/config/devices/device/{device_id}", timeout=60)
        until("the device page", lambda: DEVICE in deep_text(b), 60)
        time.sleep(2)  # the cards' last values and icons
        b.screenshot(png)
        return deep_text(b)


def deep_text(browser: Any) -> str:
    """The page's text, shadow roots included (HA's frontend is web components all the way);
    "" while the page is between two documents (the sign-in redirects)."""
    from host_tests.browser import BrowserError

    try:
        return browser.eval(
            "(function walk(n){if(!n)return '';let t='';for(const c of n.childNodes){"
            "t+=c.nodeType===3?c.data:walk(c)}if(n.shadowRoot)t+=walk(n.shadowRoot);return t})"
            "(document.body)"
        )
    except BrowserError:
        return ""


@pytest.fixture(scope="module")
def seen() -> Iterator[Seen]:
    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed (make setup installs it as root)")
    began = time.monotonic()
    hass = ha_install.install(ROOT / "build" / "ha")
    out = Seen()
    out.timings["install_s"] = time.monotonic() - began
    with (
        Broker("mosquitto") as broker,
        HomeAssistant(hass, (broker.host, broker.port), PREFIX) as ha,
    ):
        out.timings["hass_start_s"] = ha.started_in_s
        cfg = {"interval_s": 1, "heartbeat_s": 5, "ha_prefix": PREFIX, "sensors": SENSORS}
        sub = Watcher((broker.host, broker.port), f"sensornode/{DEVICE}/readings")
        with VirtualBoard(uid=UID, broker=(broker.host, broker.port), config=cfg) as board:
            board.wire_sensors()
            t0 = time.monotonic()
            board.wait_for(r"mqtt: connected", 30)
            expected = set(READINGS) | set(DIAGNOSTICS)

            def all_have_values() -> bool:
                found = ours(ha.states())
                return expected <= set(found) and all(
                    found[e]["state"] not in NOT_A_VALUE for e in expected
                )

            until("every entity with a value", all_have_values)
            out.timings["entities_s"] = time.monotonic() - t0
            time.sleep(10)  # report-on-change: let the delta sensor skip some readings
            out.states = ours(ha.states())
            out.entities = {e["entity_id"]: e for e in ha.ws("config/entity_registry/list")}
            devices = ha.ws("config/device_registry/list")
            out.device = next(
                d for d in devices if ["mqtt", f"sensornode_{UID}"] in d["identifiers"]
            )
            print("\n" + entity_table(out.states, out.entities), flush=True)
            out.page = device_page(ha, out.device["id"], ROOT / "build" / "ha-device.png")

            # A sensor that stops answering reports null: HA must say unknown, not "None".
            board.wire_sensors(False)
            key = f"sensor.{OBJ}_room_temperature"
            until("a null reading shown as unknown", lambda: ha.states()[key]["state"] == "unknown")
            out.unwired = {e: s["state"] for e, s in ours(ha.states()).items()}
            board.wire_sensors()
            until("the sensor back", lambda: ha.states()[key]["state"] not in NOT_A_VALUE)
            no_traceback(board)

            # Re-provision without one sensor: what make provision does, then a power cycle.
            board.stop()
            config_file = board.fs / "config.json"
            doc = json.loads(config_file.read_text())
            doc["sensors"] = [s for s in doc["sensors"] if s["name"] != REMOVED]
            config_file.write_text(json.dumps(doc))
            board.start()
            gone = f"sensor.{OBJ}_{REMOVED}"

            def registry_without_removed() -> set[str] | None:
                ids = {e["entity_id"] for e in ha.ws("config/entity_registry/list")}
                return ids if gone not in ids and f"sensor.{OBJ}_chip" in ids else None

            out.after_reprovision = until(
                "the removed sensor's entity gone", registry_without_removed
            )
            until(
                "values after the re-provision",
                lambda: ha.states()[key]["state"] not in NOT_A_VALUE,
            )

            # A power cut: no goodbye, only the broker's last will.
            t1 = time.monotonic()
            board.kill()

            def all_down() -> dict[str, str] | None:
                now = {e: s["state"] for e, s in ours(ha.states()).items()}
                down = all(v == "unavailable" for e, v in now.items() if "connectivity" not in e)
                return now if down else None

            out.after_power_cut = until("every entity unavailable", all_down, 30)
            out.timings["power_cut_s"] = time.monotonic() - t1
            out.readings = [m.json() for m in sub.inbox.since(0)]
            sub.close()
        time.sleep(2)  # the recorder commits every second
        out.recorded = ha.recorded_states(sorted(set(READINGS) | set(DIAGNOSTICS)))
        out.log = ha.log_text()
    out.timings["total_s"] = time.monotonic() - began
    print("timings: " + ", ".join(f"{k} {v:.1f}" for k, v in out.timings.items()), flush=True)
    yield out


def classes(seen: Seen, entities: dict[str, Any]) -> dict[str, tuple[Any, Any, Any]]:
    """entity -> (unit, device_class, state_class), as HA's state attributes say."""
    out = {}
    for e in entities:
        a = seen.states[e]["attributes"]
        out[e] = (a.get("unit_of_measurement"), a.get("device_class"), a.get("state_class"))
    return out


def test_every_reading_key_is_a_numeric_sensor_with_unit_device_class_and_state_class(seen):
    assert classes(seen, READINGS) == READINGS
    # a number, which is what makes graphs and statistics
    assert [e for e in READINGS if not is_number(seen.states[e]["state"])] == []


def test_the_wired_sensors_answer_with_plausible_values(seen):
    def value(key):
        return float(seen.states[f"sensor.{OBJ}_{key}"]["state"])

    assert 15 < value("room_temperature") < 30 and 20 < value("room_humidity") < 80
    assert 900 < value("air_pressure") < 1100 and 15 < value("air_temperature") < 30
    assert 15 < value("water") < 30


def test_the_device_is_named_by_the_chip_with_maker_model_version_and_mac(seen):
    d = seen.device
    assert (d["name"], d["manufacturer"], d["model"], d["sw_version"]) == (
        DEVICE,
        "Espressif",
        "ESP32",
        json.loads((ROOT / "package.json").read_text())["version"],
    )
    assert [c[0] for c in d["connections"]] == ["mac"]


def test_every_entity_belongs_to_the_one_device(seen):
    assert {seen.entities[e]["device_id"] for e in seen.states} == {seen.device["id"]}


def test_diagnostic_entities_exist_with_values(seen):
    assert classes(seen, DIAGNOSTICS) == DIAGNOSTICS
    assert {seen.entities[e]["entity_category"] for e in DIAGNOSTICS} == {"diagnostic"}
    assert [e for e in DIAGNOSTICS if seen.states[e]["state"] in NOT_A_VALUE] == []
    assert seen.states[f"binary_sensor.{OBJ}_connectivity"]["state"] == "on"


def test_report_on_change_left_the_key_out_and_the_entity_kept_its_state(seen):
    assert [r for r in seen.readings if "2nd_floor" not in r], "no reading without the key"
    states = seen.recorded[f"sensor.{OBJ}_2nd_floor"]
    first = next(i for i, s in enumerate(states) if is_number(s))  # before it: unknown is right
    assert [s for s in states[first:] if not is_number(s) and s != "unavailable"] == [], states


def test_a_null_reading_is_unknown_in_home_assistant(seen):
    assert seen.unwired[f"sensor.{OBJ}_room_temperature"] == "unknown"
    assert seen.unwired[f"sensor.{OBJ}_air_pressure"] == "unknown"


def test_no_state_was_ever_empty_or_none(seen):
    bad = {e: s for e, states in seen.recorded.items() for s in states if s in ("", "None")}
    assert bad == {}
    assert all(seen.recorded[e] for e in READINGS)  # the recorder did record them


def test_a_removed_sensor_entity_is_gone_after_a_reprovision(seen):
    assert f"sensor.{OBJ}_{REMOVED}" not in seen.after_reprovision
    assert f"sensor.{OBJ}_water" in seen.after_reprovision


def test_home_assistant_logged_no_template_or_discovery_warning(seen):
    pattern = re.compile(r" (WARNING|ERROR) .*(template|mqtt|discovery|sensor)", re.IGNORECASE)
    assert [line for line in seen.log.splitlines() if pattern.search(line)] == []


def test_a_power_cut_makes_every_entity_unavailable_and_connectivity_off(seen):
    states = seen.after_power_cut
    assert states.pop(f"binary_sensor.{OBJ}_connectivity") == "off"
    assert set(states.values()) == {"unavailable"}


def test_the_device_page_shows_the_device_with_its_maker_and_readings(seen):
    if seen.page is None:
        pytest.skip("no chromium (make setup installs Debian's package when run as root)")
    for words in (DEVICE, "Espressif", "ESP32", "room_temperature", "Signal strength"):
        assert words in seen.page


# Run with Home Assistant's Python: its sensor device classes that take state_class measurement,
# each with the units it accepts ("" for none), as JSON.
_HA_TABLE = """
import json
from homeassistant.components.sensor.const import (
    DEVICE_CLASS_STATE_CLASSES, DEVICE_CLASS_UNITS, SensorDeviceClass, SensorStateClass)
m = SensorStateClass.MEASUREMENT
print(json.dumps({d.value: sorted("" if u is None else str(u) for u in DEVICE_CLASS_UNITS[d])
                  for d in SensorDeviceClass if m in DEVICE_CLASS_STATE_CLASSES.get(d, {m})}))
"""


def test_the_firmware_knows_home_assistants_device_classes_and_units():
    import subprocess

    from firmware import config

    python = ha_install.install(ROOT / "build" / "ha").with_name("python")
    ha_table = json.loads(subprocess.run([python, "-c", _HA_TABLE], check=True,
                                         capture_output=True, text=True).stdout)  # fmt: skip
    ours = {cls: sorted(config.ha_units(cls) or []) for cls in ha_table}
    assert ours == ha_table
    assert config.ha_units("enum") is None and config.ha_units("energy") is None
