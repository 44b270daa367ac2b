"""Configuration on the board (firmware/config.py).

config.json and secrets.json are validated before anything runs. A wrong field gets one console
line naming the field and its value (never a secret's value) and is replaced by its default; a
missing or broken file means defaults. Whatever the files hold, loading them never raises.
"""

import copy
import json
import sys

import mpy_config_check as check
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from side_by_side import MICROPYTHON, run_check

from firmware import config
from firmware.config import DEFAULTS, SENSOR_TYPES
from firmware.payload import ReadingEncoder
from firmware.sensor_setup import keys_for

HOST = {"mqtt": {"host": "broker.local"}}  # the smallest config with nothing to complain about

# Every field of every sensor type, as validate() hands it on.
SENSOR_KEYS = {
    "sim": {"base", "amplitude", "period_s", "noise", "seed", "unit", "device_class"},
    "mcu": set(),
    "dht11": {"pin"},
    "dht22": {"pin"},
    "ds18b20": {"pin", "rom"},
    "bme280": {"i2c", "sda", "scl", "address"},
    "adc": {"pin", "scale", "offset", "unit", "device_class"},
}
COMMON_SENSOR_KEYS = {"type", "name", "filter", "delta", "max_silence_s"}
REQUIRED_PIN = ("dht11", "dht22", "ds18b20", "adc")

# Every key set to a good, non-default value: it must come back exactly as it went in.
GOOD = {
    "device_id": "greenhouse-1",
    "base_topic": "home/sensors",
    "hostname": "greenhouse-node",
    "mqtt": {
        "host": "broker.local",
        "port": 8883,
        "keepalive": 60,
        "qos": 0,
        "tls": True,
        "ca_file": "ca.pem",
    },
    "wifi": {"attempt_s": 20, "rounds_before_ap": 5},
    "interval_s": 2.5,
    "heartbeat_s": 120,
    "outbox_size": 50,
    "watchdog_s": 30,
    "ha_discovery": False,
    "ha_prefix": "ha-test",
    "console_readings": False,
    "sensors": [
        {
            "type": "sim",
            "name": "air",
            "base": 18.5,
            "amplitude": 2.0,
            "period_s": 300,
            "noise": 0.0,
            "seed": 7,
            "unit": "°C",
            "device_class": "temperature",
            "filter": None,
            "delta": 0.1,
            "max_silence_s": 600,
        },
        {"type": "mcu", "name": "cpu", "filter": None, "delta": None, "max_silence_s": 300},
        {
            "type": "dht22",
            "name": "room",
            "pin": 4,
            "filter": {"type": "median", "size": 3},
            "delta": 0.5,
            "max_silence_s": 900,
        },
        {
            "type": "ds18b20",
            "name": "water",
            "pin": 5,
            "rom": "28ff4a1b6c1604a2",
            "filter": None,
            "delta": None,
            "max_silence_s": 300,
        },
        {
            "type": "bme280",
            "name": "outside",
            "i2c": 1,
            "sda": 21,
            "scl": 22,
            "address": 0x77,
            "filter": {"type": "ema", "alpha": 0.5},
            "delta": None,
            "max_silence_s": 300,
        },
        {
            "type": "adc",
            "name": "soil",
            "pin": 34,
            "scale": -0.5,
            "offset": 100.0,
            "unit": "%",
            "device_class": None,
            "filter": None,
            "delta": 1,
            "max_silence_s": 60,
        },
    ],
}


def doc(**top):
    """HOST plus the given top-level keys."""
    out = copy.deepcopy(HOST)
    out.update(top)
    return out


def with_value(path, value):
    """HOST with the field at a dotted path ("mqtt.port") set to value."""
    out = copy.deepcopy(HOST)
    *sections, key = path.split(".")
    node = out
    for name in sections:
        node = node.setdefault(name, {})
    node[key] = value
    return out


def at(cfg, path):
    node = cfg
    for name in path.split("."):
        node = node[name]
    return node


def sensors_doc(*specs):
    return doc(sensors=list(specs))


def one_sensor(spec, log):
    cfg, _ = config.validate(sensors_doc(spec), log)
    (sensor,) = cfg["sensors"]
    return sensor


def shown(value):
    """How a wrong value appears on the console: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def run(src):
    """validate() with its own console: (config, problems, lines)."""
    lines = []
    cfg, problems = config.validate(src, lambda tag, msg: lines.append(tag + ": " + msg))
    return cfg, problems, lines


def run_secrets(src):
    lines = []
    out, problems = config.validate_secrets(src, lambda tag, msg: lines.append(tag + ": " + msg))
    return out, problems, lines


# --- a good config ---------------------------------------------------------------------------


def test_a_complete_good_config_comes_back_unchanged(log):
    cfg, _ = config.validate(copy.deepcopy(GOOD), log)
    assert cfg == GOOD


def test_a_complete_good_config_has_no_problems_and_says_nothing(log):
    _, problems = config.validate(copy.deepcopy(GOOD), log)
    assert (problems, log.lines) == (0, [])


def test_a_validated_config_survives_a_trip_through_json_unchanged(log):
    cfg, _ = config.validate(copy.deepcopy(GOOD), log)
    again, problems = config.validate(json.loads(json.dumps(cfg)), log)
    assert (again, problems) == (cfg, 0)


def test_validate_does_not_change_the_document_it_was_given(log):
    src = doc(interval_s="often", sensors=[{"type": "sim", "name": "t", "colour": "red"}])
    before = copy.deepcopy(src)
    config.validate(src, log)
    assert src == before


def test_the_config_returned_shares_no_lists_or_dicts_with_the_defaults(log):
    cfg, _ = config.validate({}, log)
    cfg["mqtt"]["port"] = 1
    cfg["wifi"]["attempt_s"] = 1
    cfg["sensors"][0]["name"] = "changed"
    assert config.validate({}, log)[0]["mqtt"]["port"] == 1883
    assert DEFAULTS["wifi"]["attempt_s"] == 15
    assert DEFAULTS["sensors"][0]["name"] == "temperature"


# --- defaults --------------------------------------------------------------------------------


def test_an_empty_config_gets_every_top_level_default(log):
    cfg, _ = config.validate({}, log)
    assert {k: v for k, v in cfg.items() if k != "sensors"} == {
        k: v for k, v in DEFAULTS.items() if k != "sensors"
    }


def test_a_missing_mqtt_host_is_the_one_missing_setting_the_console_hears_about(log):
    _, problems = config.validate({}, log)
    assert problems == 1
    assert log.lines == [
        "config: mqtt.host is not set: no broker to publish to; readings wait in the outbox"
    ]


def test_a_config_with_only_the_broker_host_has_no_problems(log):
    _, problems = config.validate(doc(), log)
    assert (problems, log.lines) == (0, [])


def test_a_partial_mqtt_section_keeps_the_defaults_of_the_keys_it_leaves_out(log):
    cfg, _ = config.validate({"mqtt": {"host": "10.0.0.5", "port": 1884}}, log)
    assert cfg["mqtt"] == dict(DEFAULTS["mqtt"], host="10.0.0.5", port=1884)


def test_a_partial_wifi_section_keeps_the_defaults_of_the_keys_it_leaves_out(log):
    cfg, _ = config.validate(doc(wifi={"attempt_s": 30}), log)
    assert cfg["wifi"] == {"attempt_s": 30, "rounds_before_ap": 3}


def test_a_config_without_sensors_gets_the_simulated_sensor_with_every_field_filled_in(log):
    cfg, _ = config.validate(doc(), log)
    spelled_out, _ = config.validate(doc(sensors=[{"type": "sim", "name": "temperature"}]), log)
    assert cfg["sensors"] == spelled_out["sensors"]


def test_sensors_that_is_not_a_list_falls_back_to_the_simulated_sensor(log):
    cfg, problems = config.validate(doc(sensors={"type": "sim", "name": "x"}), log)
    assert [(s["type"], s["name"]) for s in cfg["sensors"]] == [("sim", "temperature")]
    assert problems == 1
    assert "sensors = {" in log.text()
    assert "is not a list; using the simulated sensor" in log.text()


def test_an_empty_sensor_list_means_no_sensors(log):
    cfg, problems = config.validate(doc(sensors=[]), log)
    assert (cfg["sensors"], problems) == ([], 0)


# --- wrong values: named, shown, replaced by the default -------------------------------------

WRONG = [
    ("device_id", ""),
    ("device_id", "a/b"),
    ("device_id", "x" * 65),
    ("device_id", 123456),
    ("base_topic", ""),
    ("base_topic", "/home"),
    ("base_topic", "home/"),
    ("base_topic", "home//node"),
    ("base_topic", "home/+/x"),
    ("base_topic", "home/#"),
    ("base_topic", None),
    ("hostname", "has space"),
    ("hostname", "under_score"),
    ("hostname", "x" * 33),
    ("interval_s", 0.04),
    ("interval_s", 86401),
    ("interval_s", "10"),
    ("interval_s", None),
    ("interval_s", [10]),
    ("heartbeat_s", 0.5),
    ("heartbeat_s", 86400.5),
    ("outbox_size", 0),
    ("outbox_size", 1001),
    ("outbox_size", 10.0),
    ("watchdog_s", -1),
    ("watchdog_s", 3601),
    ("watchdog_s", 2.5),
    ("ha_discovery", "true"),
    ("ha_discovery", 1),
    ("ha_discovery", None),
    ("ha_prefix", ""),
    ("ha_prefix", "home/assistant"),
    ("ha_prefix", "ha#"),
    ("ha_prefix", None),
    ("mqtt.port", 0),
    ("mqtt.port", 65536),
    ("mqtt.port", "1883"),
    ("mqtt.port", 1883.0),
    ("mqtt.keepalive", 4),
    ("mqtt.keepalive", 65536),
    ("mqtt.qos", 2),
    ("mqtt.qos", -1),
    ("mqtt.qos", 1.0),
    ("mqtt.tls", "yes"),
    ("mqtt.tls", 1),
    ("mqtt.ca_file", ""),
    ("mqtt.ca_file", "x" * 65),
    ("mqtt.ca_file", False),
    ("wifi.attempt_s", 0.5),
    ("wifi.attempt_s", 121),
    ("wifi.rounds_before_ap", -1),
    ("wifi.rounds_before_ap", 1001),
    ("wifi.rounds_before_ap", 2.0),
]


@pytest.mark.parametrize(("path", "value"), WRONG)
def test_a_wrong_value_is_replaced_by_its_default(path, value, log):
    cfg, _ = config.validate(with_value(path, value), log)
    assert at(cfg, path) == at(DEFAULTS, path)


@pytest.mark.parametrize(("path", "value"), WRONG)
def test_a_wrong_value_is_one_problem_and_one_line_naming_the_field_and_the_value(path, value, log):
    _, problems = config.validate(with_value(path, value), log)
    assert problems == 1
    assert len(log.lines) == 1
    assert log.lines[0].startswith(f"config: {path} = {shown(value)} is not ")
    assert log.lines[0].endswith(f"; using {at(DEFAULTS, path)!r}")


def test_a_wrong_value_is_shown_shortened_when_it_is_long(log):
    config.validate(doc(base_topic="/" + "x" * 200), log)
    (line,) = log.lines
    assert line.startswith("config: base_topic = '/" + "x" * 35 + "... is not ")


def test_a_wrong_broker_host_is_named_and_the_broker_left_unset(log):
    cfg, problems = config.validate({"mqtt": {"host": ""}}, log)
    assert cfg["mqtt"]["host"] is None
    assert problems == 2
    assert log.lines[0].startswith("config: mqtt.host = '' is not text of 1 to 253 characters")
    assert "mqtt.host is not set" in log.lines[1]


EDGES = [
    ("interval_s", 0.05),
    ("interval_s", 86400),
    ("heartbeat_s", 1),
    ("heartbeat_s", 86400),
    ("outbox_size", 1),
    ("outbox_size", 1000),
    ("watchdog_s", 0),
    ("watchdog_s", 3600),
    ("mqtt.port", 1),
    ("mqtt.port", 65535),
    ("mqtt.keepalive", 5),
    ("mqtt.keepalive", 65535),
    ("mqtt.qos", 0),
    ("mqtt.ca_file", None),
    ("wifi.attempt_s", 1),
    ("wifi.attempt_s", 120),
    ("wifi.rounds_before_ap", 0),
    ("wifi.rounds_before_ap", 1000),
    ("device_id", "a"),
    ("device_id", "A-z_09" + "x" * 58),
    ("base_topic", "a/b/c"),
    ("base_topic", "x" * 64),
    ("hostname", "x" * 32),
]


@pytest.mark.parametrize(("path", "value"), EDGES)
def test_a_value_at_the_edge_of_its_range_is_accepted(path, value, log):
    cfg, problems = config.validate(with_value(path, value), log)
    assert (at(cfg, path), problems) == (value, 0)


# True == 1 and False == 0 in Python: each of these would pass a plain range check.
BOOL_FOR_NUMBER = [
    ("interval_s", True),
    ("heartbeat_s", True),
    ("outbox_size", True),
    ("watchdog_s", True),
    ("watchdog_s", False),
    ("mqtt.port", True),
    ("mqtt.qos", True),
    ("mqtt.qos", False),
    ("wifi.attempt_s", True),
    ("wifi.rounds_before_ap", True),
    ("wifi.rounds_before_ap", False),
]


@pytest.mark.parametrize(("path", "value"), BOOL_FOR_NUMBER)
def test_true_or_false_is_not_taken_for_a_number(path, value, log):
    cfg, problems = config.validate(with_value(path, value), log)
    got, default = at(cfg, path), at(DEFAULTS, path)
    assert (type(got), got) == (type(default), default)
    assert problems == 1
    assert f"{path} = {value!r} is not" in log.text()


def test_a_heartbeat_shorter_than_the_interval_is_kept_and_mentioned_but_no_problem(log):
    cfg, problems = config.validate(doc(interval_s=120, heartbeat_s=60), log)
    assert (cfg["interval_s"], cfg["heartbeat_s"], problems) == (120, 60, 0)
    assert log.lines == [
        "config: heartbeat_s is shorter than interval_s: heartbeats will outnumber readings"
    ]


@pytest.mark.parametrize(
    ("path", "value"),
    [("sensors[0].name", "température"), ("device_id", "café"), ("hostname", "müller")],
)
def test_a_non_ascii_letter_in_a_name_is_refused_as_on_the_board(path, value, log):
    if path.startswith("sensors"):
        src = sensors_doc({"type": "sim", "name": value})
    else:
        src = with_value(path, value)
    _, problems = config.validate(src, log)
    assert problems == 1


def test_a_deeply_nested_wrong_value_is_reported_without_raising(log):
    nested = []
    for _ in range(3000):
        nested = [nested]
    cfg, problems = config.validate(doc(interval_s=nested), log)
    assert (cfg["interval_s"], problems) == (10, 1)


# --- unknown keys and sections of the wrong type ---------------------------------------------


@pytest.mark.parametrize(
    ("src", "path"),
    [
        (doc(colour="red"), "colour"),
        ({"mqtt": {"host": "b", "hots": "b"}}, "mqtt.hots"),
        (doc(wifi={"ssid": "home"}), "wifi.ssid"),
        (sensors_doc({"type": "sim", "name": "t", "pinn": 4}), "sensors[0].pinn"),
        (
            sensors_doc({"type": "sim", "name": "t", "filter": {"type": "ema", "size": 3}}),
            "sensors[0].filter.size",
        ),
    ],
)
def test_an_unknown_key_is_named_and_ignored(src, path, log):
    cfg, problems = config.validate(src, log)
    assert problems == 1
    assert log.lines == [f"config: unknown key {path} ignored"]


def test_an_unknown_key_does_not_stop_the_keys_around_it_from_being_used(log):
    cfg, _ = config.validate(doc(colour="red", interval_s=30), log)
    assert cfg["interval_s"] == 30
    assert "colour" not in cfg


def test_an_unknown_key_is_shown_on_one_line_and_shortened(log):
    config.validate(doc(**{"bad\nkey" + "x" * 200: 1}), log)
    (line,) = log.lines
    assert "\n" not in line
    assert len(line) < 120


@pytest.mark.parametrize("section", ["mqtt", "wifi"])
@pytest.mark.parametrize("value", ["broker.local", ["broker.local"], None, 1883])
def test_a_section_that_is_not_an_object_gets_its_defaults_and_is_named(section, value, log):
    src = doc()
    src[section] = value
    cfg, _ = config.validate(src, log)
    assert cfg[section] == DEFAULTS[section]
    assert f"config: {section} = {value!r} is not an object; using defaults" in log.lines


@pytest.mark.parametrize("src", [[], ["mqtt"], "config", 42, 1.5, True, None])
def test_a_top_level_that_is_not_an_object_runs_on_defaults(src, log):
    cfg, problems = config.validate(src, log)
    assert cfg == config.validate({}, lambda tag, msg: None)[0]
    assert log.lines[0] == f"config: config = {src!r} is not an object; running on defaults"
    assert problems == 2  # that, and no broker host


# --- sensors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SENSOR_TYPES)
def test_every_sensor_type_is_kept_with_all_of_its_fields(kind, log):
    spec = {"type": kind, "name": "s"}
    if kind in REQUIRED_PIN:
        spec["pin"] = 4
    sensor = one_sensor(spec, log)
    assert set(sensor) == COMMON_SENSOR_KEYS | SENSOR_KEYS[kind]
    assert log.lines == []


def test_optional_sensor_fields_get_their_defaults(log):
    sensor = one_sensor({"type": "adc", "name": "soil", "pin": 34}, log)
    assert sensor == {
        "type": "adc",
        "name": "soil",
        "pin": 34,
        "scale": 1.0,
        "offset": 0.0,
        "unit": None,
        "device_class": None,
        "filter": None,
        "delta": None,
        "max_silence_s": 300,
    }


def test_sensors_keep_their_order(log):
    specs = [{"type": "sim", "name": n} for n in ("c", "a", "b")]
    cfg, _ = config.validate(sensors_doc(*specs), log)
    assert [s["name"] for s in cfg["sensors"]] == ["c", "a", "b"]


def sensor_names_after(specs, log):
    cfg, problems = config.validate(sensors_doc(*specs), log)
    return [s["name"] for s in cfg["sensors"]], problems


def test_a_sensor_of_unknown_type_is_skipped_and_the_others_kept(log):
    specs = [
        {"type": "sim", "name": "a"},
        {"type": "thermistor", "name": "b"},
        {"type": "mcu", "name": "c"},
    ]
    assert sensor_names_after(specs, log) == (["a", "c"], 1)
    assert log.lines[0].startswith("config: sensors[1].type = 'thermistor' is not one of sim, ")
    assert log.lines[0].endswith("; sensor skipped")


@pytest.mark.parametrize("spec", [{"name": "b"}, {"type": None, "name": "b"}, {"type": ["sim"]}])
def test_a_sensor_without_a_usable_type_is_skipped(spec, log):
    assert sensor_names_after([{"type": "sim", "name": "a"}, spec], log) == (["a"], 1)
    assert "sensors[1].type = " in log.text()


@pytest.mark.parametrize("name", ["", "x" * 33, "has space", "a-b", "a.b", 5, None, ["a"]])
def test_a_sensor_with_a_bad_name_is_skipped_and_the_others_kept(name, log):
    specs = [
        {"type": "sim", "name": "a"},
        {"type": "sim", "name": name},
        {"type": "mcu", "name": "c"},
    ]
    assert sensor_names_after(specs, log) == (["a", "c"], 1)
    assert f"config: sensors[1].name = {name!r} is not text of 1 to 32 characters" in log.text()


def test_a_sensor_without_a_name_is_skipped(log):
    assert sensor_names_after([{"type": "sim"}, {"type": "mcu", "name": "c"}], log) == (["c"], 1)
    assert "sensors[0].name = None is not" in log.text()


@pytest.mark.parametrize("name", ["seq", "uptime_ms", "ts"])
def test_a_sensor_named_like_a_payload_field_is_skipped(name, log):
    specs = [{"type": "sim", "name": name}, {"type": "sim", "name": "b"}]
    assert sensor_names_after(specs, log) == (["b"], 1)
    assert f"sensors[0].name = {name!r}" in log.text()
    assert "not seq, uptime_ms or ts; sensor skipped" in log.text()


def test_a_second_sensor_with_a_name_already_taken_is_skipped_and_the_first_kept(log):
    specs = [
        {"type": "sim", "name": "t", "seed": 1},
        {"type": "mcu", "name": "t"},
        {"type": "sim", "name": "u"},
    ]
    cfg, problems = config.validate(sensors_doc(*specs), log)
    assert [(s["type"], s["name"]) for s in cfg["sensors"]] == [("sim", "t"), ("sim", "u")]
    assert problems == 1
    assert log.lines == [
        "config: sensors[1].name = 't' is not a name whose keys no other sensor has; sensor skipped"
    ]


def test_a_sensor_whose_payload_key_another_sensor_fills_is_skipped(log):
    # A dht22 named "room" fills room_temperature and room_humidity.
    specs = [
        {"type": "dht22", "name": "room", "pin": 4},
        {"type": "sim", "name": "room_humidity"},
        {"type": "sim", "name": "room_pressure"},
    ]
    assert sensor_names_after(specs, log) == (["room", "room_pressure"], 1)
    assert "sensors[1].name = 'room_humidity' is not a name whose keys" in log.text()


def test_a_sensor_whose_payload_keys_include_one_already_taken_is_skipped(log):
    specs = [{"type": "sim", "name": "out_pressure"}, {"type": "bme280", "name": "out"}]
    assert sensor_names_after(specs, log) == (["out_pressure"], 1)
    assert "sensors[1].name = 'out' is not a name whose keys" in log.text()


def test_a_skipped_sensor_does_not_take_its_name_from_a_later_one(log):
    specs = [{"type": "dht22", "name": "t"}, {"type": "dht22", "name": "t", "pin": 4}]
    cfg, _ = config.validate(sensors_doc(*specs), log)
    assert [(s["name"], s["pin"]) for s in cfg["sensors"]] == [("t", 4)]


@pytest.mark.parametrize("kind", REQUIRED_PIN)
def test_a_sensor_missing_its_pin_is_skipped_and_the_others_kept(kind, log):
    specs = [{"type": kind, "name": "a"}, {"type": "sim", "name": "b"}]
    assert sensor_names_after(specs, log) == (["b"], 1)
    assert log.lines == ["config: sensors[0].pin is missing; sensor skipped"]


@pytest.mark.parametrize("pin", [-1, 49, "4", 4.0, True, None])
def test_a_sensor_with_an_unusable_pin_is_skipped(pin, log):
    specs = [{"type": "dht22", "name": "a", "pin": pin}, {"type": "sim", "name": "b"}]
    assert sensor_names_after(specs, log) == (["b"], 1)
    assert log.lines[0].startswith(f"config: sensors[0].pin = {pin!r} is not ")
    assert log.lines[0].endswith("; sensor skipped")


@pytest.mark.parametrize("spec", ["sim", 3, None, ["sim", "t"]])
def test_a_sensor_entry_that_is_not_an_object_is_skipped(spec, log):
    assert sensor_names_after([spec, {"type": "sim", "name": "b"}], log) == (["b"], 1)
    assert f"config: sensors[0] = {spec!r} is not an object; sensor skipped" in log.lines


@pytest.mark.parametrize(
    ("spec", "field", "default"),
    [
        ({"type": "sim", "base": "20"}, "base", 20.0),
        ({"type": "sim", "amplitude": -1}, "amplitude", 5.0),
        ({"type": "sim", "period_s": 0}, "period_s", 600),
        ({"type": "sim", "seed": -1}, "seed", 1),
        ({"type": "sim", "seed": 1.5}, "seed", 1),
        ({"type": "bme280", "address": 0x78}, "address", 0x76),
        ({"type": "bme280", "i2c": 2}, "i2c", 0),
        ({"type": "bme280", "sda": 49}, "sda", None),
        ({"type": "ds18b20", "pin": 4, "rom": "28ff"}, "rom", None),
        ({"type": "adc", "pin": 34, "scale": "x"}, "scale", 1.0),
        ({"type": "adc", "pin": 34, "offset": 1e10}, "offset", 0.0),
        ({"type": "mcu", "delta": -0.1}, "delta", None),
        ({"type": "mcu", "max_silence_s": 0}, "max_silence_s", 300),
        ({"type": "mcu", "max_silence_s": 86400 * 6 + 1}, "max_silence_s", 300),
    ],
)
def test_a_bad_optional_sensor_field_gets_its_default_and_the_sensor_stays(
    spec, field, default, log
):
    spec = dict(spec, name="s")
    sensor = one_sensor(spec, log)
    assert sensor[field] == default
    assert log.lines[0].startswith(f"config: sensors[0].{field} = {spec[field]!r} is not ")
    assert log.lines[0].endswith(f"; using {default!r}")


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("sim", "base", True),
        ("sim", "seed", True),
        ("bme280", "i2c", False),
        ("bme280", "sda", True),
        ("adc", "scale", True),
        ("mcu", "delta", False),
        ("mcu", "max_silence_s", True),
    ],
)
def test_true_or_false_is_not_taken_for_a_sensor_number(kind, field, value, log):
    spec = {"type": kind, "name": "s", field: value}
    if kind == "adc":
        spec["pin"] = 34
    sensor = one_sensor(spec, log)
    assert type(sensor[field]) is not bool
    assert f"sensors[0].{field} = {value!r} is not" in log.text()


@pytest.mark.parametrize("pins", [{"sda": 21}, {"scl": 22}])
def test_a_bme280_with_only_one_of_sda_and_scl_uses_the_bus_default_pins_and_says_so(pins, log):
    sensor = one_sensor(dict(pins, type="bme280", name="out"), log)
    assert (sensor["sda"], sensor["scl"]) == (None, None)
    assert log.lines == ["config: sensors[0].sda and scl go together; using the bus's default pins"]


def test_a_ds18b20_rom_that_is_not_hex_is_reported_and_the_first_device_used(log):
    sensor = one_sensor({"type": "ds18b20", "name": "w", "pin": 4, "rom": "zz" * 8}, log)
    assert sensor["rom"] is None
    assert "sensors[0].rom = 'zzzzzzzzzzzzzzzz' is not" in log.text()


# --- filters ---------------------------------------------------------------------------------


def sensor_filter(value, log):
    return one_sensor({"type": "sim", "name": "t", "filter": value}, log)["filter"]


@pytest.mark.parametrize("size", [3, 4, 15])
def test_a_median_filter_of_3_to_15_values_is_kept(size, log):
    assert sensor_filter({"type": "median", "size": size}, log) == {"type": "median", "size": size}
    assert log.lines == []


def test_a_median_filter_without_a_size_takes_5_values(log):
    assert sensor_filter({"type": "median"}, log) == {"type": "median", "size": 5}


@pytest.mark.parametrize("size", [2, 16, 5.0, "5", True, None])
def test_a_median_filter_of_a_bad_size_takes_5_values_and_says_so(size, log):
    assert sensor_filter({"type": "median", "size": size}, log) == {"type": "median", "size": 5}
    assert log.lines[0].startswith(f"config: sensors[0].filter.size = {size!r} is not ")
    assert log.lines[0].endswith("; using 5")


@pytest.mark.parametrize("alpha", [0.01, 0.5, 1])
def test_an_ema_filter_with_alpha_from_0_01_to_1_is_kept(alpha, log):
    assert sensor_filter({"type": "ema", "alpha": alpha}, log) == {"type": "ema", "alpha": alpha}
    assert log.lines == []


@pytest.mark.parametrize("alpha", [0, 0.009, 1.01, -0.5, "0.3", True])
def test_an_ema_filter_with_a_bad_alpha_takes_0_3_and_says_so(alpha, log):
    assert sensor_filter({"type": "ema", "alpha": alpha}, log) == {"type": "ema", "alpha": 0.3}
    assert log.lines[0].startswith(f"config: sensors[0].filter.alpha = {alpha!r} is not ")
    assert log.lines[0].endswith("; using 0.3")


def test_a_null_filter_is_no_filter_and_no_problem(log):
    assert sensor_filter(None, log) is None
    assert log.lines == []


@pytest.mark.parametrize(
    "value", [{"type": "mean"}, {"size": 5}, {"type": None}, "median", 5, ["median"]]
)
def test_a_filter_of_unknown_kind_means_no_filter_and_says_so(value, log):
    assert sensor_filter(value, log) is None
    assert log.lines == [
        f"config: sensors[0].filter = {value!r} is not null or an object with type median or ema; "
        "no filter"
    ]


@pytest.mark.parametrize("kind", [["median"], {"median": 5}])
def test_a_filter_type_that_is_a_list_or_object_means_no_filter(kind, log):
    assert sensor_filter({"type": kind}, log) is None


# --- files -----------------------------------------------------------------------------------

GOOD_SECRETS = {
    "wifi": [
        {"ssid": "home", "password": "correct horse battery"},
        {"ssid": "cafe", "password": ""},
        {"ssid": "office", "password": "x" * 63},
    ],
    "mqtt": {"user": "node-1", "password": "broker pass"},
    "ap_password": "setup-1234",
    "ota_key": "a key of sixteen or more",
}


def write(path, data):
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return str(path)


def test_read_json_returns_what_the_file_holds(tmp_path, log):
    path = write(tmp_path / "config.json", json.dumps(GOOD))
    assert config.read_json(path, log, "config") == GOOD
    assert log.lines == []


def test_a_missing_file_is_said_and_gives_nothing(tmp_path, log):
    path = str(tmp_path / "config.json")
    assert config.read_json(path, log, "config") is None
    assert log.lines == [f"config: {path} not found; running on defaults"]


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        '{"interval_s": 10,}',
        "{'interval_s': 10}",
        "interval_s = 10",
        '{"a": 1} {"b": 2}',
        b'{"base_topic": "caf\xe9"}',
        b"\xff\xfe{\x00}\x00",
    ],
)
def test_a_file_that_is_not_json_is_said_naming_the_file_and_gives_nothing(content, tmp_path, log):
    path = write(tmp_path / "config.json", content)
    assert config.read_json(path, log, "config") is None
    (line,) = log.lines
    assert line.startswith(f"config: {path} is not valid JSON (")
    assert line.endswith("); running on defaults")


def test_a_path_that_is_a_directory_is_said_and_gives_nothing(tmp_path, log):
    (tmp_path / "config.json").mkdir()
    assert config.read_json(str(tmp_path / "config.json"), log, "config") is None
    assert len(log.lines) == 1


def test_a_file_nested_deeper_than_the_parser_goes_is_said_and_gives_nothing(tmp_path, log):
    path = write(tmp_path / "config.json", "[" * 5000 + "]" * 5000)
    assert config.read_json(path, log, "config") is None


def test_load_reads_both_files_with_no_problems(tmp_path, log):
    cpath = write(tmp_path / "config.json", json.dumps(GOOD))
    spath = write(tmp_path / "secrets.json", json.dumps(GOOD_SECRETS))
    cfg, secrets, problems = config.load(log, cpath, spath)
    assert (cfg, secrets, problems) == (GOOD, GOOD_SECRETS, 0)
    assert log.lines == []


def test_load_reads_config_json_and_secrets_json_from_the_current_directory(
    tmp_path, monkeypatch, log
):
    write(tmp_path / "config.json", json.dumps(GOOD))
    write(tmp_path / "secrets.json", json.dumps(GOOD_SECRETS))
    monkeypatch.chdir(tmp_path)
    assert config.load(log) == (GOOD, GOOD_SECRETS, 0)


def test_load_without_config_json_says_so_and_runs_on_defaults(tmp_path, log):
    spath = write(tmp_path / "secrets.json", json.dumps(GOOD_SECRETS))
    cpath = str(tmp_path / "config.json")
    cfg, secrets, _ = config.load(log, cpath, spath)
    assert cfg == config.validate({}, lambda tag, msg: None)[0]
    assert secrets == GOOD_SECRETS
    assert log.lines[0] == f"config: {cpath} not found; running on defaults"


def test_load_with_broken_config_json_names_the_file_and_runs_on_defaults(tmp_path, log):
    cpath = write(tmp_path / "config.json", '{"interval_s": 5')
    spath = write(tmp_path / "secrets.json", json.dumps(GOOD_SECRETS))
    cfg, secrets, _ = config.load(log, cpath, spath)
    assert cfg == config.validate({}, lambda tag, msg: None)[0]
    assert secrets == GOOD_SECRETS
    assert log.lines[0].startswith(f"config: {cpath} is not valid JSON")


def test_load_without_secrets_json_says_so_and_knows_no_networks(tmp_path, log):
    cpath = write(tmp_path / "config.json", json.dumps(GOOD))
    spath = str(tmp_path / "secrets.json")
    cfg, secrets, _ = config.load(log, cpath, spath)
    assert cfg == GOOD
    assert secrets == {
        "wifi": [],
        "mqtt": {"user": None, "password": None},
        "ap_password": None,
        "ota_key": None,
    }
    assert log.lines == [f"secrets: {spath} not found; running on defaults"]


def test_load_with_broken_secrets_json_names_the_file_and_knows_no_networks(tmp_path, log):
    cpath = write(tmp_path / "config.json", json.dumps(GOOD))
    spath = write(tmp_path / "secrets.json", '{"wifi": [{"ssid": "home", "password": "hunter22"')
    _, secrets, _ = config.load(log, cpath, spath)
    assert secrets["wifi"] == []
    (line,) = log.lines
    assert line.startswith(f"secrets: {spath} is not valid JSON (")


def test_load_counts_the_problems_of_both_files(tmp_path, log):
    cpath = write(tmp_path / "config.json", json.dumps(doc(interval_s=0)))
    spath = write(tmp_path / "secrets.json", json.dumps({"wifi": [{"ssid": ""}]}))
    assert config.load(log, cpath, spath)[2] == 2


@pytest.mark.parametrize(
    "content",
    ["[]", '"config"', "null", "3", '{"mqtt": []}', '{"sensors": [1, [], {}]}', "\x00", ""],
)
def test_load_never_raises_whatever_the_files_hold(content, tmp_path, log):
    cpath = write(tmp_path / "config.json", content)
    spath = write(tmp_path / "secrets.json", content)
    cfg, secrets, problems = config.load(log, cpath, spath)
    assert set(cfg) == set(DEFAULTS)
    assert secrets["wifi"] == []
    assert problems >= 1


# --- secrets ---------------------------------------------------------------------------------


def test_good_secrets_come_back_unchanged_with_no_problems(log):
    out, problems = config.validate_secrets(copy.deepcopy(GOOD_SECRETS), log)
    assert (out, problems, log.lines) == (GOOD_SECRETS, 0, [])


def test_empty_secrets_mean_no_networks_and_no_login_without_a_problem(log):
    out, problems = config.validate_secrets({}, log)
    assert out == {
        "wifi": [],
        "mqtt": {"user": None, "password": None},
        "ap_password": None,
        "ota_key": None,
    }
    assert problems == 0


def test_networks_are_kept_in_the_order_the_file_lists_them(log):
    nets = [{"ssid": s, "password": "password-" + s} for s in ("c", "a", "b")]
    out, _ = config.validate_secrets({"wifi": nets}, log)
    assert [n["ssid"] for n in out["wifi"]] == ["c", "a", "b"]


def test_a_network_without_a_password_is_an_open_network(log):
    out, problems = config.validate_secrets({"wifi": [{"ssid": "cafe"}]}, log)
    assert (out["wifi"], problems) == ([{"ssid": "cafe", "password": ""}], 0)


BAD_NETWORKS = [
    "home",
    ["home", "hunter2222"],
    None,
    {"password": "hunter2222"},
    {"ssid": "", "password": "hunter2222"},
    {"ssid": "x" * 33, "password": "hunter2222"},
    {"ssid": 42, "password": "hunter2222"},
    {"ssid": "home", "password": "hunter2"},
    {"ssid": "home", "password": "h" * 64},
    {"ssid": "home", "password": 12345678},
]


@pytest.mark.parametrize("bad", BAD_NETWORKS)
def test_a_bad_network_is_skipped_and_the_others_kept(bad, log):
    nets = [{"ssid": "a", "password": ""}, bad, {"ssid": "c", "password": ""}]
    out, problems = config.validate_secrets({"wifi": nets}, log)
    assert [n["ssid"] for n in out["wifi"]] == ["a", "c"]
    assert problems == 1


@pytest.mark.parametrize("bad", BAD_NETWORKS)
def test_a_bad_network_is_named_by_its_place_in_the_list(bad, log):
    nets = [{"ssid": "a", "password": ""}, bad]
    config.validate_secrets({"wifi": nets}, log)
    (line,) = log.lines
    assert line.startswith("secrets: wifi[1]")
    assert line.endswith("network skipped")


def test_a_network_with_an_unknown_key_is_kept_and_the_key_named(log):
    out, _ = config.validate_secrets({"wifi": [{"ssid": "a", "hidden": True}]}, log)
    assert out["wifi"] == [{"ssid": "a", "password": ""}]
    assert log.lines == ["secrets: unknown key wifi[0].hidden ignored"]


@pytest.mark.parametrize("wifi", [{"ssid": "a", "password": ""}, "home", None])
def test_wifi_that_is_not_a_list_means_no_networks_and_says_so(wifi, log):
    out, problems = config.validate_secrets({"wifi": wifi}, log)
    assert (out["wifi"], problems) == ([], 1)
    assert log.lines == ["secrets: wifi is not a list of {ssid, password}; no Wi-Fi networks known"]


@pytest.mark.parametrize("src", [[], "secrets", None, 0])
def test_secrets_that_are_not_an_object_mean_no_networks_and_say_so(src, log):
    out, problems = config.validate_secrets(src, log)
    assert (out["wifi"], problems) == ([], 1)
    assert log.lines == ["secrets: secrets.json is not a JSON object; no Wi-Fi networks known"]


def test_an_unknown_secrets_key_is_named_and_ignored(log):
    out, problems = config.validate_secrets({"wlan": [{"ssid": "a"}]}, log)
    assert (out["wifi"], problems) == ([], 1)
    assert log.lines == ["secrets: unknown key wlan ignored"]


def test_a_wrong_mqtt_user_is_shown_and_left_empty(log):
    out, _ = config.validate_secrets({"mqtt": {"user": 42, "password": "p"}}, log)
    assert out["mqtt"] == {"user": None, "password": "p"}
    assert log.lines == ["secrets: mqtt.user = 42 is not text or null; left empty"]


@pytest.mark.parametrize("mqtt", [["node", "pass"], "node:pass", None])
def test_mqtt_login_that_is_not_an_object_means_no_login(mqtt, log):
    out, problems = config.validate_secrets({"mqtt": mqtt}, log)
    assert (out["mqtt"], problems) == ({"user": None, "password": None}, 1)
    assert "node" not in log.text()


def test_a_short_setup_ap_password_leaves_the_ap_open_and_says_so(log):
    out, problems = config.validate_secrets({"ap_password": "1234567"}, log)
    assert (out["ap_password"], problems) == (None, 1)
    assert log.lines == [
        "secrets: ap_password = (hidden) is not 8 to 63 characters; the setup AP will be open"
    ]


WRONG_PASSWORDS = [
    {"wifi": [{"ssid": "home", "password": "hunter2"}]},
    {"wifi": [{"ssid": "home", "password": "hunter2" * 10}]},
    {"mqtt": {"user": "node", "password": "hunter2" * 40}},
    {"mqtt": {"user": "node", "password": ["hunter2"]}},
    {"ap_password": "hunter2"},
    {"ap_password": {"pass": "hunter2"}},
]


@pytest.mark.parametrize("src", WRONG_PASSWORDS)
def test_a_wrong_password_is_reported_without_its_value(src, log):
    _, problems = config.validate_secrets(src, log)
    assert problems == 1
    assert "(hidden)" in log.text()
    assert "hunter" not in log.text()


@pytest.mark.parametrize(
    "net",
    [
        {"ssid": "ü" * 17, "password": ""},  # 17 characters, 34 bytes
        {"ssid": "home", "password": "ü" * 40},  # 40 characters, 80 bytes
    ],
)
def test_ssid_and_passphrase_limits_are_counted_in_bytes(net, log):
    out, _ = config.validate_secrets({"wifi": [net]}, log)
    assert out["wifi"] == []


# --- properties ------------------------------------------------------------------------------

NO_DEADLINE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Two sensors that collide, or a kept sensor with a filter, take a few hundred documents to turn up.
MORE = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
# MicroPython's json also reads {1: 2}, {null: 1} and {true: 1}: keys need not be text.
keys = st.text(max_size=8) | st.none() | st.booleans() | st.integers() | st.floats()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def near(*given):
    """A field's value: one of the given ones (good, and just wrong), or anything at all."""
    return st.sampled_from(given) | json_values


FILTERS = (
    st.none()
    | json_values
    | st.fixed_dictionaries(
        {"type": st.sampled_from(["median", "ema", "mean"])},
        optional={
            "size": near(3, 5, 15, 16),
            "alpha": near(0.01, 0.3, 1, 0),
            "colour": json_values,
        },
    )
)

SENSOR_FIELDS = {
    "delta": near(None, 0, 0.5),
    "max_silence_s": near(1, 300, 0),
    "base": near(20.0, -1e6),
    "amplitude": near(0, 5.0),
    "period_s": near(1, 600),
    "noise": near(0, 0.2),
    "seed": near(0, 1, 0x7FFFFFFF, 0x80000000),
    "rom": near(None, "28ff4a1b6c1604a2", "28ff"),
    "i2c": near(0, 1, 2),
    "sda": near(None, 21),
    "scl": near(None, 22),
    "address": near(0x76, 0x77, 0x78),
    "scale": near(1.0, -2),
    "offset": near(0.0, 3),
    "colour": json_values,
}
# Type and name are there in most: without them nothing else about a sensor is looked at.
SENSOR = st.fixed_dictionaries(
    {
        "type": st.sampled_from(SENSOR_TYPES + ("thermistor",)),
        "name": st.sampled_from(["t", "room", "room_humidity", "out", "t", "seq", "x" * 33, "a b"]),
        "pin": st.one_of(st.sampled_from([4, 5, 0, 48, 49]), json_values),
        "filter": FILTERS,
    },
    optional=SENSOR_FIELDS,
)
NOT_A_SENSOR = st.fixed_dictionaries({}, optional={"type": json_values, "name": json_values})
# Four in five look like a sensor: only those get past the type and name checks.
SENSORS = st.integers(0, 4).flatmap(lambda i: (NOT_A_SENSOR | json_values) if i == 4 else SENSOR)

TOP_FIELDS = {
    "device_id": near(None, "node-1", "a/b"),
    "base_topic": near("sensornode", "a/b", "/a", "a/#"),
    "hostname": near(None, "node", "a b"),
    "mqtt": st.fixed_dictionaries(
        {},
        optional={
            "host": near(None, "broker.local", ""),
            "port": near(1, 1883, 65535, 0),
            "keepalive": near(5, 30, 4),
            "qos": near(0, 1, 2),
            "tls": near(False, True, 1),
            "ca_file": near(None, "ca.pem", ""),
            "user": json_values,
        },
    )
    | json_values,
    "wifi": st.fixed_dictionaries(
        {},
        optional={
            "attempt_s": near(1, 15, 120, 0),
            "rounds_before_ap": near(0, 3, 1000, -1),
            "ssid": json_values,
        },
    )
    | json_values,
    "interval_s": near(0.05, 10, 86400, 0.04),
    "heartbeat_s": near(1, 60, 0.5),
    "outbox_size": near(1, 100, 1000, 0),
    "watchdog_s": near(0, 3600, -1),
    "ha_discovery": near(True, False, 0),
    "ha_prefix": near("homeassistant", "ha_1", "a/b", ""),
    "sensors": st.lists(SENSORS, max_size=5) | json_values,
    "colour": json_values,
}


def config_docs(with_sensors=False):
    """Documents shaped like config.json: known keys with good, nearly good and wild values."""
    required = {"sensors": st.lists(SENSORS, max_size=5)} if with_sensors else {}
    optional = {k: v for k, v in TOP_FIELDS.items() if k not in required}
    return st.fixed_dictionaries(required, optional=optional)


def assert_complete(cfg):
    assert set(cfg) == set(DEFAULTS)
    assert set(cfg["mqtt"]) == set(DEFAULTS["mqtt"])
    assert set(cfg["wifi"]) == set(DEFAULTS["wifi"])
    assert isinstance(cfg["sensors"], list)


ANY_DOC = json_values | config_docs()


@NO_DEADLINE
@given(ANY_DOC)
def test_validate_never_raises_and_always_returns_every_key(src):
    cfg, problems, lines = run(src)
    assert_complete(cfg)
    assert isinstance(problems, int)


@NO_DEADLINE
@given(ANY_DOC)
def test_every_problem_is_one_console_line(src):
    _, problems, lines = run(src)
    notes = [line for line in lines if line.startswith("config: heartbeat_s is shorter")]
    assert problems == len(lines) - len(notes)


@MORE
@given(ANY_DOC)
def test_a_validated_config_passes_validation_again_with_no_problems(src):
    cfg, _, _ = run(src)
    _, problems, lines = run(copy.deepcopy(cfg))
    no_host = cfg["mqtt"]["host"] is None
    assert problems == (1 if no_host else 0), lines


# Every document here has a sensors list: without one, validate() returns the default sensor
# unfilled (test_a_config_without_sensors_gets_the_simulated_sensor_with_every_field_filled_in).
@MORE
@given(config_docs(with_sensors=True))
def test_validating_a_validated_config_changes_nothing(src):
    cfg, _, _ = run(src)
    again, _, _ = run(copy.deepcopy(cfg))
    assert again == cfg


@NO_DEADLINE
@given(config_docs(with_sensors=True))
def test_every_sensor_kept_has_all_the_fields_of_its_type(src):
    cfg, _, _ = run(src)
    for sensor in cfg["sensors"]:
        assert set(sensor) == COMMON_SENSOR_KEYS | SENSOR_KEYS[sensor["type"]]


@MORE
@given(config_docs(with_sensors=True))
def test_no_two_sensors_kept_fill_the_same_payload_key(src):
    cfg, _, _ = run(src)
    keys = [k for s in cfg["sensors"] for k in config.sensor_keys(s["type"], s["name"])]
    assert len(keys) == len(set(keys))
    assert not set(keys) & {"seq", "uptime_ms", "ts"}


# Secrets: every string that is not a password comes from PLAIN, every password from SECRET;
# the two share no character, and no console message uses a SECRET character of its own.
PLAIN = "abcdefghijklmnopqrstuvwxyz0123456789 -_."
SECRET = "!$%&*?@^~|<>ÄÖÜßøæ§¤µ"
plain_text = st.text(alphabet=PLAIN, max_size=40)
plain_scalars = st.none() | st.booleans() | st.integers() | st.floats() | plain_text
plain_values = st.recursive(
    plain_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(plain_text, inner, max_size=3),
    max_leaves=8,
)
passwords = st.text(alphabet=SECRET, max_size=70)
# Text passwords come from SECRET's alphabet only, so that finding one on the console means it
# leaked: a plain one such as 'unkn' also stands inside 'unknown key'.
password_values = (
    passwords
    | st.lists(passwords, max_size=2)
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
)

NETWORKS = (
    st.fixed_dictionaries(
        {},
        optional={
            "ssid": st.sampled_from(["home", "x" * 33, ""]) | plain_values,
            "password": password_values,
            "hidden": plain_values,
        },
    )
    | plain_values
)
SECRETS = (
    st.fixed_dictionaries(
        {},
        optional={
            "wifi": st.lists(NETWORKS, max_size=4) | plain_values,
            "mqtt": st.fixed_dictionaries(
                {},
                optional={
                    "user": plain_values,
                    "password": password_values,
                    "port": plain_values,
                },
            )
            | plain_values,
            "ap_password": password_values,
            "ota_key": password_values,
            "wlan": plain_values,
        },
    )
    | plain_values
)


def password_strings(src):
    found = []

    def collect(value):
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    if isinstance(src, dict):
        collect(src.get("ap_password"))
        collect(src.get("ota_key"))
        if isinstance(src.get("mqtt"), dict):
            collect(src["mqtt"].get("password"))
        if isinstance(src.get("wifi"), list):
            for net in src["wifi"]:
                if isinstance(net, dict):
                    collect(net.get("password"))
    return found


@NO_DEADLINE
@given(SECRETS)
def test_no_password_ever_reaches_the_console(src):
    _, _, lines = run_secrets(src)
    text = "\n".join(lines)
    for password in password_strings(src):
        if len(password) >= 4:
            assert password not in text
    assert not set(text) & set(SECRET), text  # not even a shortened piece of one


@NO_DEADLINE
@given(SECRETS | json_values)
def test_validate_secrets_never_raises_and_always_returns_every_key(src):
    out, problems, lines = run_secrets(src)
    assert set(out) == {"wifi", "mqtt", "ap_password", "ota_key"}
    assert set(out["mqtt"]) == {"user", "password"}
    assert all(set(net) == {"ssid", "password"} for net in out["wifi"])
    assert problems == len(lines)


@NO_DEADLINE
@given(SECRETS | json_values)
def test_validated_secrets_validate_again_to_themselves_with_no_problems(src):
    out, _, _ = run_secrets(src)
    again, problems, lines = run_secrets(copy.deepcopy(out))
    assert (again, problems) == (out, 0), lines


# --- the same on the real MicroPython runtime ------------------------------------------------
# mpy_config_check.py feeds the firmware the same inputs under .venv/bin/micropython and under
# CPython and prints one comparable line per result: the board must behave as the host tests say.


@pytest.fixture(scope="module")
def on_both(tmp_path_factory):
    """{"config"|"secrets"|"files": (cpython results, micropython results)}."""
    out = {}
    for what in ("config", "secrets", "files"):
        cpy_args, mpy_args = [what], [what]
        if what == "files":  # each runtime writes its files into a folder of its own
            cpy_args.append(str(tmp_path_factory.mktemp("cpython")))
            mpy_args.append(str(tmp_path_factory.mktemp("micropython")))
        out[what] = (run_check(sys.executable, *cpy_args), run_check(MICROPYTHON, *mpy_args))
    return out


def differ(reason):
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)


CONFIG_DIFFERENCES: dict = {}
FILE_DIFFERENCES = {
    "trailing-comma": differ(
        'runtime difference, not a firmware bug: MicroPython\'s json reads {"a": 5,} (it skips '
        "',' and ':' wherever they are); CPython's refuses it"
    ),
}


def cases(table, known):
    return [pytest.param(name, marks=known.get(name, ())) for name, _ in table]


@pytest.mark.parametrize("case", cases(check.CONFIG, CONFIG_DIFFERENCES))
def test_micropython_validates_the_config_as_cpython_does(case, on_both):
    cpy, mpy = on_both["config"]
    assert not mpy["config-" + case][0].startswith("CRASH")
    assert mpy["config-" + case] == cpy["config-" + case]


def test_micropython_validates_300_generated_configs_as_cpython_does(on_both):
    cpy, mpy = on_both["config"]
    assert len(mpy["fuzz-config"]) == 300
    assert not [r for r in mpy["fuzz-config"] if "CRASH" in r]
    assert mpy["fuzz-config"] == cpy["fuzz-config"]


@pytest.mark.parametrize("case", cases(check.SECRETS, {}))
def test_micropython_validates_secrets_as_cpython_does(case, on_both):
    cpy, mpy = on_both["secrets"]
    assert mpy["secrets-" + case] == cpy["secrets-" + case]


def test_micropython_validates_300_generated_secrets_as_cpython_does(on_both):
    cpy, mpy = on_both["secrets"]
    assert len(mpy["fuzz-secrets"]) == 300
    assert mpy["fuzz-secrets"] == cpy["fuzz-secrets"]


def test_micropython_never_shows_a_wrong_password(on_both):
    _, mpy = on_both["secrets"]
    shown = [r.split(" log=", 1)[1] for rs in mpy.values() for r in rs]
    assert "(hidden)" in " ".join(shown)
    assert not [s for s in shown if "hunter" in s]


@pytest.mark.parametrize("case", cases(check.FILES, FILE_DIFFERENCES))
def test_micropython_reads_a_config_file_as_cpython_does(case, on_both):
    cpy, mpy = on_both["files"]
    assert mpy["file-" + case] == cpy["file-" + case]


def test_sensors_whose_readings_could_overflow_the_buffer_are_skipped_and_said(log):
    # Five BME280s with long names: each adds three long keys to every reading.
    specs = [{"type": "bme280", "name": f"n{i}_" + "x" * 29} for i in range(5)]
    cfg, problems = config.validate({"sensors": specs}, log)
    kept = [s["name"] for s in cfg["sensors"]]
    skipped = [line for line in log.lines if "could pass 1024 bytes; sensor skipped" in line]
    assert 0 < len(kept) < 5 and len(skipped) == 5 - len(kept) and problems >= len(skipped)
    keys = [k for s in cfg["sensors"] for k in keys_for(s)]
    ReadingEncoder(keys, [None] * len(keys), [True] * len(keys))  # they fit: no ValueError


def test_interval_s_takes_the_same_range_as_the_interval_command(log):
    from firmware.commands import INTERVAL_MAX_S, INTERVAL_MIN_S

    def kept(value):
        return config.validate(doc(interval_s=value), log)[0]["interval_s"] == value

    assert kept(INTERVAL_MIN_S) and kept(INTERVAL_MAX_S)
    assert not kept(INTERVAL_MIN_S * 0.99) and not kept(INTERVAL_MAX_S + 1)


# -- one setting at a time (the setup page; settings changed while the board runs) -------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("mqtt.host", "broker.local"),
        ("mqtt.port", 8883),
        ("device_id", "shed"),
        ("interval_s", 0.05),
        ("wifi.attempt_s", 30),
        ("wifi.ssid", "home"),
        ("wifi.password", ""),
        ("wifi.password", "12345678"),
        ("mqtt.user", None),
        ("ap_password", "setup-pass"),
    ],
)
def test_check_passes_a_good_setting(path, value):
    assert config.check(path, value) is None


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        ("mqtt.port", "abc", "mqtt.port = 'abc' is not a whole number from 1 to 65535"),
        ("mqtt.port", 0, "mqtt.port = 0 is not a whole number from 1 to 65535"),
        ("device_id", "my shed", "device_id = 'my shed' is not text of 1 to 64 characters"),
        ("wifi.ssid", "", "wifi.ssid = '' is not text of 1 to 32 characters"),
        ("interval_s", True, "interval_s = True is not a number from 0.05 to 86400"),
    ],
)
def test_check_names_a_bad_setting_as_the_console_does(path, value, says):
    assert config.check(path, value).startswith(says)


def test_check_words_a_bad_setting_as_validate_does(log):
    config.validate({"mqtt": {"host": "h", "port": 70000}}, log)
    assert log.lines[0].startswith("config: " + config.check("mqtt.port", 70000) + ";")


def test_check_hides_a_bad_password():
    said = config.check("wifi.password", "short")
    assert said == "wifi.password = (hidden) is not empty or 8 to 63 characters"


def test_check_names_an_unknown_setting():
    assert config.check("mqtt.colour", 1) == "unknown key mqtt.colour"


# --- control characters, lone surrogates, a byte-order mark --------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value", "code"),
    [
        (None, "base_topic", "home\u0000x", 0),
        (None, "device_id", "node\u0007", 7),
        (None, "hostname", "n\t1", 9),
        ("mqtt", "host", "broker\n", 10),
        ("mqtt", "ca_file", "\u007fca.der", 0x7F),
    ],
)
def test_a_control_character_in_a_text_field_is_refused_by_name_and_code(section, key, value, code):
    src = {key: value} if section is None else {section: {key: value}}
    cfg, _, lines = run(src)
    field = key if section is None else f"{section}.{key}"
    assert lines[0].startswith(f"config: {field} contains a control character (U+{code:04X}); ")
    got, default = (cfg, DEFAULTS) if section is None else (cfg[section], DEFAULTS[section])
    assert got[key] == default[key]


def test_a_lone_surrogate_is_refused_by_name_and_the_default_kept(log):
    cfg, _, lines = run({"base_topic": "a\ud800", "mqtt": {"host": "broker.local"}})
    assert lines == ["config: base_topic contains a lone surrogate (U+D800); using 'sensornode'"]
    assert cfg["base_topic"] == "sensornode"


def test_a_control_character_in_a_secret_is_named_without_showing_any_of_it():
    _, _, lines = run_secrets({"mqtt": {"user": "node", "password": "hunter\u00002"}})
    assert lines == ["secrets: mqtt.password contains a control character; left empty"]


def test_a_byte_order_mark_before_config_and_secrets_is_tolerated(tmp_path, log):
    cpath = write(tmp_path / "config.json", b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    spath = write(tmp_path / "secrets.json", b"\xef\xbb\xbf" + json.dumps(GOOD_SECRETS).encode())
    cfg, secrets, problems = config.load(log, cpath, spath)
    assert (cfg, problems, log.lines) == (GOOD, 0, [])
    assert secrets["mqtt"] == GOOD_SECRETS["mqtt"]


# --- Home Assistant: what a sim or adc value is ------------------------------------------------


def sim_doc(**fields):
    return {"sensors": [{"type": "sim", "name": "t", **fields}]}


@pytest.mark.parametrize("device_class", ["temprature", "enum", "energy", "", 7])
def test_a_device_class_home_assistant_would_refuse_is_dropped_by_name(device_class, log):
    cfg, _ = config.validate(sim_doc(device_class=device_class), log)
    assert cfg["sensors"][0]["device_class"] is None
    assert [line for line in log.lines if "sensors[0]" in line] == [
        f"config: sensors[0].device_class = {device_class!r} is not a Home Assistant sensor "
        "device class, or null; using None"
    ]


def test_a_unit_that_does_not_fit_the_device_class_keeps_the_unit_and_drops_the_class(log):
    cfg, _ = config.validate(sim_doc(unit="C", device_class="temperature"), log)
    assert (cfg["sensors"][0]["unit"], cfg["sensors"][0]["device_class"]) == ("C", None)
    assert [line for line in log.lines if "sensors[0]" in line] == [
        "config: sensors[0].unit = 'C' is not what Home Assistant takes for temperature "
        "('K' or '°C' or '°F'); device_class ignored"
    ]


@pytest.mark.parametrize(
    ("unit", "device_class"),
    [("°C", "temperature"), ("µg/m³", "pm25"), (None, "aqi"), (None, "power_factor"), ("x", None)],
)
def test_units_home_assistant_takes_for_the_class_pass(unit, device_class, log):
    cfg, _ = config.validate(sim_doc(unit=unit, device_class=device_class), log)
    assert (cfg["sensors"][0]["unit"], cfg["sensors"][0]["device_class"]) == (unit, device_class)
    assert [line for line in log.lines if "sensors[0]" in line] == []


def test_a_unit_is_at_most_16_bytes(log):
    cfg, _ = config.validate(sim_doc(unit="µ" * 9), log)
    assert cfg["sensors"][0]["unit"] is None


def test_an_ota_key_shorter_than_16_characters_turns_updates_off_without_showing_it(log):
    out, problems = config.validate_secrets({"ota_key": "short-key"}, log)
    assert (out["ota_key"], problems) == (None, 1)
    assert log.lines == [
        "secrets: ota_key = (hidden) is not text of 16 to 128 characters, or null; "
        "updates over the air are off"
    ]
