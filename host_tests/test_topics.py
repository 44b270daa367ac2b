"""The MQTT topic contract (docs/topics.md) as the firmware hands it to umqtt (firmware/session.py's
Topics): bytes, built once."""

from firmware.session import Topics


def test_every_topic_follows_the_contract_under_base_and_device():
    t = Topics("home/sensors", "esp32-a1b2c3", False)
    got = (t.status, t.readings, t.heartbeat, t.cmd, t.event)
    assert got == tuple(
        b"home/sensors/esp32-a1b2c3/" + leaf
        for leaf in (b"status", b"readings", b"heartbeat", b"cmd", b"event")
    )


def test_the_device_stays_text_for_the_console_and_json():
    assert Topics("sensornode", "esp32-a1b2c3", False).device == "esp32-a1b2c3"


def test_the_update_topics_follow_the_contract_when_updates_are_on():
    t = Topics("sensornode", "esp32-a1b2c3", True)
    prefix = b"sensornode/esp32-a1b2c3/"
    assert (t.ota, t.ota_want) == (prefix + b"ota", prefix + b"ota/want")


def test_a_node_without_updates_keeps_no_update_topics():
    t = Topics("sensornode", "esp32-a1b2c3", False)
    assert (t.ota, t.ota_want) == (None, None)
