"""The setup access point: WPA2 with a password from secrets, open without, said on the console."""

import network
import pytest

from firmware.provision import AccessPoint


@pytest.fixture
def wlan_class():
    saved = {
        k: getattr(network.WLAN, k)
        for k in ("SEC_WPA2", "SEC_WPA_WPA2")
        if hasattr(network.WLAN, k)
    }
    yield network.WLAN
    for k in ("SEC_WPA2", "SEC_WPA_WPA2"):
        if hasattr(network.WLAN, k):
            delattr(network.WLAN, k)
    for k, v in saved.items():
        setattr(network.WLAN, k, v)


def ap_settings():
    return network.WLAN(network.AP_IF).settings


def test_open_access_point_without_a_password(log):
    AccessPoint("esp32-a1b2c3-setup", None, log).start()
    assert ap_settings() == {"essid": "esp32-a1b2c3-setup"} and "open" in log.text()


def test_esp32_style_port_gets_wpa2_as_security(log, wlan_class):
    wlan_class.SEC_WPA2 = 3
    AccessPoint("s", "setup-pass", log).start()
    assert ap_settings()["security"] == 3


def test_pico_w_style_port_gets_wpa_wpa2_mixed(log, wlan_class):
    wlan_class.SEC_WPA_WPA2 = 0x00400006
    AccessPoint("s", "setup-pass", log).start()
    assert ap_settings()["security"] == 0x00400006


def test_old_esp32_firmware_gets_authmode(log, wlan_class):
    AccessPoint("s", "setup-pass", log).start()
    assert ap_settings()["authmode"] == 3


def test_access_point_comes_up_and_says_where(log):
    AccessPoint("esp32-a1b2c3-setup", None, log).start()
    assert network.WLAN(network.AP_IF).active() and "192.168.4.1" in log.text()


def test_the_setup_password_is_never_printed(log):
    AccessPoint("s", "setup-pass", log).start()
    assert "setup-pass" not in log.text()


def test_stop_takes_the_access_point_down(log):
    ap = AccessPoint("s", None, log)
    ap.start()
    ap.stop()
    assert not network.WLAN(network.AP_IF).active()
