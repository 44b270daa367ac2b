"""The setup access point: WPA2 with a password from secrets, open without, said on the console."""

import sys

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


# -- the setup portal comes and goes with the access point ---------------------------------------


class Wifi:
    asked = None
    asked_fail = None


@pytest.fixture
def loopback(monkeypatch):
    """The portal's ports 80 and 53 become free ports on 127.0.0.1, as on the virtual board."""
    import socket

    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a: real("127.0.0.1", 0, *a))


def test_the_portal_is_loaded_with_the_access_point_and_dropped_with_it(log, clock, loopback):
    sys.modules.pop("firmware.portal", None)
    ap = AccessPoint("esp32-a1b2c3-setup", None, log, clock)
    ap.start(Wifi())
    assert "firmware.portal" in sys.modules and "setup page at http://192.168.4.1/" in log.text()
    ap.stop()
    assert "firmware.portal" not in sys.modules and ap.portal is None


def test_a_portal_that_changed_the_config_restarts_the_board_once_joined(log, clock, loopback):
    resets = []
    ap = AccessPoint("s-setup", None, log, clock, lambda: resets.append(1))
    ap.start(Wifi())
    assert ap.portal is not None
    ap.portal.restart = True
    ap.stop()
    assert resets == [1] and "restarting to use the settings saved" in log.text()


def test_a_wifi_only_change_does_not_restart_the_board(log, clock, loopback):
    resets = []
    ap = AccessPoint("s-setup", None, log, clock, lambda: resets.append(1))
    ap.start(Wifi())
    ap.stop()
    assert resets == []


def test_no_memory_for_the_portal_leaves_the_access_point_up_and_says_so(
    log, clock, loopback, monkeypatch
):
    from firmware import portal

    def short(*_args, **_kw):
        raise MemoryError("memory allocation failed, allocating 2032 bytes")

    monkeypatch.setattr(portal, "Portal", short)
    ap = AccessPoint("s-setup", None, log, clock)
    ap.start(Wifi())
    assert ap.portal is None and network.WLAN(network.AP_IF).active()
    assert "no setup page (memory allocation failed" in log.text()
