"""Device identity: <board>-<last 6 hex of unique_id> unless configured."""

from firmware.ident import board_name, device_id


def test_esp32_platform_is_the_esp32_board():
    assert board_name("esp32") == "esp32"


def test_rp2_platform_is_the_pico_w():
    assert board_name("rp2") == "picow"


def test_id_is_board_and_last_three_bytes_of_unique_id_in_hex():
    assert device_id("esp32", b"\x01\x02\x03\xa1\xb2\xc3") == "esp32-a1b2c3"


def test_id_pads_small_bytes_with_zero():
    assert device_id("picow", b"\x00\x00\x00\x0f\x3e\x21") == "picow-0f3e21"


def test_configured_device_id_wins():
    assert device_id("esp32", b"\x01\x02\x03\xa1\xb2\xc3", "greenhouse") == "greenhouse"
