"""Home Assistant discovery: what each reading key and heartbeat fact is announced as."""

import json

import pytest
from conftest import validated_sensors
from jinja2.sandbox import ImmutableSandboxedEnvironment
from test_umqtt_versions import CONNACK, VERSIONS, open_transport, packets

from firmware import ha, ha_record
from firmware.sensor_setup import keys_for
from firmware.session import Topics

T = Topics("sensornode", "esp32-a1b2c3", False)
UID = "a1b2c3d4e5f6"
MAC = "02:a1:b2:c3:d4:e6"


def device(prefix="homeassistant", board="esp32", mac=MAC):
    return ha.Device(T, prefix, UID, board, mac)


def described(*sensors):
    # What report.py hands to announce(): each sensor kept, with the JSON keys it fills.
    return [(spec, keys_for(spec)) for spec in validated_sensors(*sensors)]


def readings(*sensors, interval_s=10):
    specs = described(*sensors)
    return {t: json.loads(text) for t, text in ha.reading_configs(device(), specs, interval_s)}


def diagnostics(dev=None):
    return {t: json.loads(text) for t, text in ha.diagnostic_configs(dev or device())}


def render(template, doc):
    # As Home Assistant's MQTT value templates are rendered: Jinja in a sandbox, str() of it.
    return str(ImmutableSandboxedEnvironment().from_string(template).render(value_json=doc))


class Broker:
    """publish(topic, msg, qos) for announce(): records what was sent; fails from the nth on."""

    def __init__(self, fail_at=None):
        self.sent: list[tuple[bytes, bytes]] = []
        self.qos: list[int] = []
        self.fail_at = fail_at

    def __call__(self, topic, msg, qos):
        if self.fail_at is not None and len(self.sent) >= self.fail_at:
            return False
        self.sent.append((topic, msg))
        self.qos.append(qos)
        return True


@pytest.mark.parametrize(
    ("sensor", "key", "unit", "device_class", "precision"),
    [
        ({"type": "dht22", "name": "room", "pin": 4}, "room_temperature", "°C", "temperature", 1),
        ({"type": "dht22", "name": "room", "pin": 4}, "room_humidity", "%", "humidity", 1),
        ({"type": "dht11", "name": "room", "pin": 4}, "room_temperature", "°C", "temperature", 0),
        ({"type": "bme280", "name": "air"}, "air_temperature", "°C", "temperature", 1),
        ({"type": "bme280", "name": "air"}, "air_humidity", "%", "humidity", 1),
        ({"type": "bme280", "name": "air"}, "air_pressure", "hPa", "pressure", 1),
        ({"type": "ds18b20", "name": "water", "pin": 5}, "water", "°C", "temperature", 1),
        ({"type": "mcu", "name": "chip"}, "chip", "°C", "temperature", 1),
    ],
)
def test_every_driver_key_is_a_measurement_with_its_unit_and_class(
    sensor, key, unit, device_class, precision
):
    doc = readings(sensor)[f"homeassistant/sensor/esp32-a1b2c3_{key}/config"]
    assert (doc["unit_of_meas"], doc["dev_cla"], doc["stat_cla"], doc["sug_dsp_prc"]) == (
        unit,
        device_class,
        "measurement",
        precision,
    )


@pytest.mark.parametrize("kind", ["sim", "adc"])
def test_sim_and_adc_without_unit_get_a_state_class_only(kind):
    sensor = {"type": kind, "name": "level"} | ({"pin": 26} if kind == "adc" else {})
    (doc,) = readings(sensor).values()
    assert (doc["stat_cla"], "unit_of_meas" in doc, "dev_cla" in doc) == (
        "measurement",
        False,
        False,
    )


@pytest.mark.parametrize("kind", ["sim", "adc"])
def test_sim_and_adc_take_unit_and_device_class_from_the_config(kind):
    sensor = {"type": kind, "name": "v", "unit": "mV", "device_class": "voltage"}
    sensor |= {"pin": 26} if kind == "adc" else {}
    (doc,) = readings(sensor).values()
    assert (doc["unit_of_meas"], doc["dev_cla"]) == ("mV", "voltage")


@pytest.mark.parametrize(
    ("reading", "shown"),
    [
        ({"seq": 1, "2nd_floor": 21.5}, "21.5"),
        ({"seq": 2}, ""),  # not due (report-on-change): HA keeps the last state
        ({"seq": 3, "2nd_floor": None}, "None"),  # a failed sensor: HA's state becomes unknown
        ({"seq": 4, "2nd_floor": 0}, "0"),
    ],
)
def test_the_value_template_takes_any_valid_key_and_an_absent_or_null_value(reading, shown):
    (doc,) = readings({"type": "sim", "name": "2nd_floor"}).values()
    assert render(doc["val_tpl"], reading) == shown


def test_expire_after_only_where_report_on_change_promises_a_report():
    docs = readings(
        {"type": "sim", "name": "every"},
        {"type": "sim", "name": "changes", "delta": 0.5, "max_silence_s": 120},
        interval_s=10,
    )
    expiry = {d["name"]: d.get("exp_aft") for d in docs.values()}
    assert expiry == {"every": None, "changes": 140}


def test_the_device_is_named_by_the_chip_not_the_device_id():
    (doc,) = readings({"type": "sim", "name": "t"}).values()
    assert (doc["uniq_id"], doc["dev"], doc["o"]["name"]) == (
        "sensornode_a1b2c3d4e5f6_t",
        {
            "ids": ["sensornode_a1b2c3d4e5f6"],
            "name": "esp32-a1b2c3",
            "mf": "Espressif",
            "mdl": "ESP32",
            "sw": ha.VERSION,
            "cns": [["mac", MAC]],
        },
        "sensornode",
    )


def test_a_pico_w_without_a_mac_is_said_as_such():
    dev = json.loads(device(board="picow", mac=None).block)
    assert (dev["mf"], dev["mdl"], "cns" in dev) == ("Raspberry Pi", "Pico W", False)


def test_readings_follow_the_readings_topic_and_the_status_topic_for_availability():
    (doc,) = readings({"type": "sim", "name": "t"}).values()
    assert (doc["stat_t"], doc["avty_t"]) == (
        "sensornode/esp32-a1b2c3/readings",
        "sensornode/esp32-a1b2c3/status",
    )


def test_heartbeat_facts_are_diagnostic_entities_of_the_same_device():
    docs = diagnostics()
    sensors = {t: d for t, d in docs.items() if "/sensor/" in t}
    fields = {d["val_tpl"].split("'")[1] for d in sensors.values()}
    assert fields == {
        "rssi", "free_heap", "uptime_s", "reconnects", "dropped", "errors",
        "reset_cause", "ip", "version",
    }  # fmt: skip
    assert {(d["ent_cat"], d["stat_t"]) for d in docs.values()} == {
        ("diagnostic", "sensornode/esp32-a1b2c3/heartbeat"),
        ("diagnostic", "sensornode/esp32-a1b2c3/status"),
    }


def test_signal_strength_is_in_dbm():
    docs = diagnostics()
    doc = docs["homeassistant/sensor/esp32-a1b2c3_diag-rssi/config"]
    assert (doc["unit_of_meas"], doc["dev_cla"], doc["stat_cla"]) == (
        "dBm",
        "signal_strength",
        "measurement",
    )


def test_connectivity_follows_the_status_topic_without_availability():
    docs = diagnostics()
    doc = docs["homeassistant/binary_sensor/esp32-a1b2c3_diag-status/config"]
    assert (doc["dev_cla"], doc["pl_on"], doc["pl_off"], "avty_t" in doc) == (
        "connectivity",
        "online",
        "offline",
        False,
    )


def test_a_sensor_named_like_a_heartbeat_fact_gets_its_own_topic():
    topics = set(readings({"type": "sim", "name": "rssi"})) | set(diagnostics())
    assert len(topics) == 1 + 10


def test_the_prefix_is_the_configured_one():
    topic, _ = next(ha.diagnostic_configs(device(prefix="ha-test")))
    assert topic.startswith("ha-test/sensor/esp32-a1b2c3_")


def test_announce_sends_bytes_with_the_degree_sign_as_utf8(tmp_path):
    broker = Broker()
    specs = described({"type": "mcu", "name": "chip"})
    assert ha.announce(broker, device(), specs, 10, "k1", str(tmp_path / "ha.txt"))
    topic, msg = broker.sent[0]
    assert (type(topic), type(msg)) == (bytes, bytes)
    assert json.loads(msg)["unit_of_meas"].encode() == b"\xc2\xb0C"


def test_a_key_no_longer_configured_has_its_retained_config_cleared(tmp_path):
    path = str(tmp_path / "ha.txt")
    before = described({"type": "sim", "name": "a"}, {"type": "sim", "name": "b"})
    ha.announce(Broker(), device(), before, 10, "k1", path)
    broker = Broker()
    ha.announce(broker, device(), before[:1], 10, "k1", path)
    cleared = [(t, q) for (t, m), q in zip(broker.sent, broker.qos, strict=True) if m == b""]
    assert cleared == [(b"homeassistant/sensor/esp32-a1b2c3_b/config", 1)]


def test_configs_go_at_qos_0_since_every_connect_sends_them_again(tmp_path):
    broker = Broker()
    specs = described({"type": "sim", "name": "a"})
    ha.announce(broker, device(), specs, 10, "k1", str(tmp_path / "ha.txt"))
    assert set(broker.qos) == {0}


class Session:
    """publish(topic, msg, retain, qos, now) as session.py has it: records as bytes."""

    def __init__(self, fail_at=None):
        self.sent: list[tuple[bytes, bytes, bool, int]] = []
        self.fail_at = fail_at

    def publish(self, topic, msg, retain, qos, now):
        if self.fail_at is not None and len(self.sent) >= self.fail_at:
            return False
        self.sent.append((bytes(topic), bytes(msg), retain, qos))
        return True


def test_a_reconnect_replays_the_record_word_for_word(tmp_path):
    path = str(tmp_path / "ha.txt")
    broker = Broker()
    ha.announce(
        broker, device(), described({"type": "dht22", "name": "room", "pin": 4}), 10, "k1", path
    )
    session = Session()
    assert ha_record.replay(session, 0, "k1", path) is True
    assert [(t, m) for t, m, _, _ in session.sent] == broker.sent
    assert {(r, q) for _, _, r, q in session.sent} == {(True, 0)}  # retained, as announced


def test_a_record_of_other_inputs_is_not_replayed(tmp_path):
    path = str(tmp_path / "ha.txt")
    ha.announce(Broker(), device(), described({"type": "sim", "name": "a"}), 10, "k1", path)
    session = Session()
    assert ha_record.replay(session, 0, "k2", path) is None
    assert ha_record.replay(session, 0, "k1", str(tmp_path / "none.txt")) is None
    assert session.sent == []


def test_a_record_cut_short_is_built_again(tmp_path):
    memory = tmp_path / "ha.txt"
    ha.announce(Broker(), device(), described({"type": "sim", "name": "a"}), 10, "k1", str(memory))
    memory.write_bytes(memory.read_bytes()[:-20])
    assert ha_record.replay(Session(), 0, "k1", str(memory)) is None


def test_a_link_lost_during_a_replay_stops_it(tmp_path):
    path = str(tmp_path / "ha.txt")
    ha.announce(Broker(), device(), described({"type": "sim", "name": "a"}), 10, "k1", path)
    session = Session(fail_at=2)
    assert ha_record.replay(session, 0, "k1", path) is False
    assert len(session.sent) == 2


def test_a_record_from_before_keys_still_has_its_topics_cleared(tmp_path):
    memory = tmp_path / "ha.txt"  # what the firmware wrote before: topics alone, one a line
    memory.write_text("homeassistant/sensor/esp32-a1b2c3_gone/config\n")
    broker = Broker()
    ha.announce(broker, device(), described({"type": "sim", "name": "a"}), 10, "k1", str(memory))
    assert (b"homeassistant/sensor/esp32-a1b2c3_gone/config", b"") in broker.sent
    assert memory.read_text().startswith("k1\n")


def test_a_renamed_device_clears_the_old_names_configs(tmp_path):
    path = str(tmp_path / "ha.txt")
    specs = described({"type": "sim", "name": "a"})
    ha.announce(Broker(), device(), specs, 10, "k1", path)
    renamed = ha.Device(Topics("sensornode", "kitchen", False), "homeassistant", UID, "esp32", MAC)
    broker = Broker()
    ha.announce(broker, renamed, specs, 10, "k1", path)
    assert b"homeassistant/sensor/esp32-a1b2c3_a/config" in [t for t, m in broker.sent if m == b""]


def test_a_link_lost_midway_stops_and_keeps_the_old_record(tmp_path):
    memory = tmp_path / "ha.txt"
    memory.write_text("homeassistant/sensor/esp32-a1b2c3_gone/config")
    specs = described({"type": "sim", "name": "a"})
    assert not ha.announce(Broker(fail_at=3), device(), specs, 10, "k1", str(memory))
    assert memory.read_text() == "homeassistant/sensor/esp32-a1b2c3_gone/config"
    assert not (tmp_path / "ha.txt.tmp").exists()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_degree_sign_reaches_the_wire_intact_on_every_umqtt_version(
    version, monkeypatch, tmp_path
):
    t, rec = open_transport(version, monkeypatch, tls=False, ca=None, replies=CONNACK)
    assert t.client is not None and rec.raw is not None
    specs = described({"type": "mcu", "name": "chip"})
    first = []

    def publish(topic, msg, qos):
        if not first:
            first.append((topic, msg))
            t.publish(topic, msg, True, qos)  # as session.publish does
        return True

    ha.announce(publish, device(), specs, 10, "k1", str(tmp_path / "ha.txt"))
    (_, _), (kind, body) = packets(bytes(rec.raw.out))
    topic, msg = first[0]
    assert (kind, body) == (0x31, len(topic).to_bytes(2, "big") + topic + msg)
    assert json.loads(body[2 + len(topic) :])["unit_of_meas"] == "°C"


def test_every_config_is_valid_json_whatever_the_topics_hold():
    odd = ha.Device(Topics('say "hi"\\now', "esp32-a1b2c3", False), "home", UID, "esp32", MAC)
    specs = described({"type": "dht22", "name": "room", "pin": 4})
    texts = [text for _, text in ha.reading_configs(odd, specs, 10)]
    texts += [text for _, text in ha.diagnostic_configs(odd)]
    docs = [json.loads(text) for text in texts]
    assert len(docs) == 2 + 10
    assert {d["stat_t"] for d in docs} >= {'say "hi"\\now/esp32-a1b2c3/readings'}
    assert all(d["o"] == {"name": "sensornode", "sw": ha.VERSION} for d in docs)


def test_a_build_at_boot_sends_nothing_and_leaves_the_clears_to_the_next_connect(tmp_path):
    path = str(tmp_path / "ha.txt")
    before = described({"type": "sim", "name": "a"}, {"type": "sim", "name": "b"})
    ha.announce(Broker(), device(), before, 10, "k1", path)
    assert ha.announce(None, device(), before[:1], 10, "k2", path)  # at boot: b is gone
    gone = b"homeassistant/sensor/esp32-a1b2c3_b/config"
    assert (tmp_path / "ha.txt.clear").read_bytes() == gone + b"\n"
    session = Session()
    assert ha_record.replay(session, 0, "k2", path) is True
    assert session.sent[-1] == (gone, b"", True, 1)  # cleared after the configs, at QoS 1
    assert gone not in [t for t, m, _, _ in session.sent[:-1]]
    assert not (tmp_path / "ha.txt.clear").exists()  # cleared once: the next replay has none
    again = Session()
    assert ha_record.replay(again, 0, "k2", path) is True
    assert [t for t, m, _, _ in again.sent if m == b""] == []


def test_clears_left_by_a_boot_wait_for_a_connect_that_gets_them_out(tmp_path):
    path = str(tmp_path / "ha.txt")
    specs = described({"type": "sim", "name": "a"}, {"type": "sim", "name": "b"})
    ha.announce(None, device(), specs, 10, "k1", path)
    ha.announce(None, device(), specs[1:], 10, "k2", path)  # a gone, no connect in between
    ha.announce(None, device(), specs[:1], 10, "k3", path)  # b gone, a back
    listed = (tmp_path / "ha.txt.clear").read_bytes().split()
    assert listed == [b"homeassistant/sensor/esp32-a1b2c3_b/config"]
    n = 1 + 10  # a's config and the diagnostics
    assert ha_record.replay(Session(fail_at=n), 0, "k3", path) is False  # lost at the clear
    assert (tmp_path / "ha.txt.clear").read_bytes().split() == listed
