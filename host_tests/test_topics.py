"""The MQTT topic contract (docs/topics.md) as the firmware hands it to umqtt (firmware/session.py's
Topics): bytes, built once."""

from firmware.session import Topics


def test_every_topic_follows_the_contract_under_base_and_device():
    t = Topics("home/sensors", "esp32-a1b2c3")
    got = (t.status, t.readings, t.heartbeat, t.cmd, t.event)
    assert got == tuple(
        b"home/sensors/esp32-a1b2c3/" + leaf
        for leaf in (b"status", b"readings", b"heartbeat", b"cmd", b"event")
    )


def test_the_device_stays_text_for_the_console_and_json():
    assert Topics("sensornode", "esp32-a1b2c3").device == "esp32-a1b2c3"
