"""Settings over MQTT: `set` checks a value with config.py's own rules, writes config.json
atomically and answers whether it applies now or after a reboot; `get` answers the running
configuration (firmware/settings.py, firmware/node.py, firmware/atomic.py)."""

import json
import os

import pytest
from test_node import command, make_node, run, sent

from firmware import atomic, config, settings


@pytest.fixture
def node(umqtt, clock, log, tmp_path):
    n = make_node(umqtt, clock, log)
    n.config_path = str(tmp_path / "config.json")
    (tmp_path / "config.json").write_text(json.dumps({"mqtt": {"host": "10.0.0.5"}, "x_new": 1}))
    run(n, clock, 100)
    return n


def ask(node, clock, umqtt, **doc):
    command(umqtt, json.dumps(doc).encode())
    run(node, clock, 100)
    return sent(umqtt, "event")[-1]


def on_disk(node):
    with open(node.config_path) as f:
        return json.load(f)


def test_set_interval_applies_now_and_is_written_to_config_json(node, clock, umqtt):
    answer = ask(node, clock, umqtt, cmd="set", key="interval_s", value=0.5, id="a")
    assert answer == {
        "event": "set",
        "ok": True,
        "detail": "interval_s is now 0.5: applied now and saved in config.json",
        "id": "a",
    }
    assert on_disk(node) == {"mqtt": {"host": "10.0.0.5"}, "x_new": 1, "interval_s": 0.5}
    assert node.interval_ms == 500


def test_a_nested_key_is_saved_inside_its_section_and_applies_after_a_reboot(node, clock, umqtt):
    answer = ask(node, clock, umqtt, cmd="set", key="mqtt.port", value=1884)
    assert answer["ok"] is True
    assert answer["detail"] == (
        "mqtt.port = 1884 saved in config.json; applied after a reboot: "
        "the broker connection is set up at boot"
    )
    assert on_disk(node)["mqtt"] == {"host": "10.0.0.5", "port": 1884}
    assert node.cfg["mqtt"]["port"] == 1883  # the running node still uses what it booted with


def test_sensors_are_set_as_a_whole_list(node, clock, umqtt):
    sensors = [{"type": "sim", "name": "a"}, {"type": "sim", "name": "b", "base": 5}]
    answer = ask(node, clock, umqtt, cmd="set", key="sensors", value=sensors)
    assert answer["ok"] is True and "applied after a reboot: the sensors" in answer["detail"]
    assert on_disk(node)["sensors"] == sensors


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("mqtt.port", "abc"),
        ("interval_s", 0),
        ("interval_s", True),
        ("mqtt.qos", 2),
        ("sensors", [{"type": "sim", "name": "seq"}]),
        ("sensors", "sim"),
        ("base_topic", "a/#"),
    ],
)
def test_an_invalid_value_is_refused_with_the_validators_own_message(
    node, clock, umqtt, key, value
):
    before = on_disk(node)
    said: list[str] = []
    section, _, field = key.partition(".")
    config.validate(
        {section: {field: value}} if field else {key: value}, lambda t, m: said.append(m)
    )
    own = [m for m in said if m.startswith(key)][0]
    answer = ask(node, clock, umqtt, cmd="set", key=key, value=value)
    assert answer["ok"] is False
    assert own.startswith(answer["detail"]) and answer["detail"].startswith(key)
    assert on_disk(node) == before


@pytest.mark.parametrize("key", ["nope", "mqtt.nope", "interval_s.x", "mqtt", "a.b.c"])
def test_a_key_config_json_does_not_have_is_refused(node, clock, umqtt, key):
    answer = ask(node, clock, umqtt, cmd="set", key=key, value=1)
    assert answer["ok"] is False and key.split(".")[0] in answer["detail"]
    assert "nope" not in on_disk(node)


def test_setting_no_broker_is_refused_since_it_would_cut_the_node_off(node, clock, umqtt):
    answer = ask(node, clock, umqtt, cmd="set", key="mqtt.host", value=None)
    assert answer["ok"] is False
    assert answer["detail"].startswith("mqtt.host = None would leave the node without a broker")


def test_a_heartbeat_shorter_than_the_interval_is_advice_not_a_refusal(node, clock, umqtt):
    assert ask(node, clock, umqtt, cmd="set", key="heartbeat_s", value=1)["ok"] is True
    assert node.heartbeat_ms == 1000


def test_the_interval_command_persists_too(node, clock, umqtt):
    answer = ask(node, clock, umqtt, cmd="interval", value=2)
    assert answer["detail"] == "interval_s is now 2: applied now and saved in config.json"
    assert on_disk(node)["interval_s"] == 2


def test_a_broken_config_json_is_replaced_by_one_with_the_setting(node, clock, umqtt, log):
    with open(node.config_path, "w") as f:
        f.write("{not json")
    assert ask(node, clock, umqtt, cmd="set", key="outbox_size", value=50)["ok"] is True
    assert on_disk(node) == {"outbox_size": 50}
    assert "config.json is not valid JSON; writing a new one" in log.text()


def test_get_answers_the_running_configuration(node, clock, umqtt):
    ask(node, clock, umqtt, cmd="set", key="interval_s", value=3)
    ask(node, clock, umqtt, cmd="set", key="mqtt.port", value=1999)
    answer = ask(node, clock, umqtt, cmd="get", id=1)
    assert answer["ok"] is True and answer["id"] == 1
    assert answer["detail"]["interval_s"] == 3 and answer["detail"]["mqtt"]["port"] == 1883
    assert set(answer["detail"]) == set(config.DEFAULTS)


def test_get_with_a_key_answers_that_setting(node, clock, umqtt):
    assert ask(node, clock, umqtt, cmd="get", key="mqtt.host")["detail"] == "127.0.0.1"
    assert ask(node, clock, umqtt, cmd="get", key="mqtt.nope")["ok"] is False


def test_the_settings_code_leaves_the_heap_after_the_command(node, clock, umqtt):
    import sys

    ask(node, clock, umqtt, cmd="set", key="interval_s", value=3)
    assert "firmware.settings" not in sys.modules and "firmware.config" not in sys.modules


# -- atomic writes ------------------------------------------------------------------------------


def test_an_atomic_write_leaves_the_new_file_and_no_temporary(tmp_path):
    path = str(tmp_path / "f.json")
    atomic.write(path, b"old")
    atomic.write(path, b"new")
    assert os.listdir(tmp_path) == ["f.json"] and atomic.read(path) == b"new"


def test_a_cut_during_the_temporary_write_leaves_the_old_file(tmp_path):
    path = str(tmp_path / "f.json")
    atomic.write(path, b"old")
    (tmp_path / "f.json.tmp").write_bytes(b"ne")  # the cut came before the rename
    assert atomic.read(path) == b"old"


def test_a_filesystem_whose_rename_refuses_a_target_gets_remove_then_rename(tmp_path, monkeypatch):
    path = str(tmp_path / "f.json")
    atomic.write(path, b"old")
    real = os.rename

    def fat_rename(src, dst):
        if os.path.exists(dst):
            raise OSError(17, "EEXIST")
        real(src, dst)

    monkeypatch.setattr(os, "rename", fat_rename)
    atomic.write(path, b"new")
    assert atomic.read(path) == b"new"


def test_a_cut_between_fats_remove_and_rename_is_finished_on_read(tmp_path):
    path = str(tmp_path / "f.json")
    (tmp_path / "f.json.tmp").write_bytes(b"new")
    assert atomic.read(path) == b"new" and os.listdir(tmp_path) == ["f.json"]


def test_settings_check_names_the_first_problem_only_for_its_own_key():
    assert settings.check("interval_s", 5) is None
    assert settings.check("wifi.attempt_s", 500) == (
        "wifi.attempt_s = 500 is not a number from 1 to 120"
    )
