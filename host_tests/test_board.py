"""The board's facts and boot-time calls: what firmware/board_setup.py answers through Board."""

import sys

import machine
import network
import pytest

from firmware import board
from firmware.version import VERSION


@pytest.fixture
def b(log):
    return board.Board(log)


def test_the_board_knows_its_name_reset_cause_and_version(b):
    machine.state["cause"] = machine.WDT_RESET
    assert (b.name, b.reset_cause, b.version) == (sys.platform, "power-on", VERSION)
    assert board.Board(b.log).reset_cause == "watchdog"


def test_an_unknown_reset_cause_is_said_with_its_code(log):
    machine.state["cause"] = 99
    assert board.Board(log).reset_cause == "unknown (99)"


def test_the_device_id_follows_the_id_rule_unless_configured(b):
    assert b.device_id(None) == sys.platform + "-efa1b2"
    assert b.device_id("greenhouse") == "greenhouse"


def test_uid_is_the_chips_unique_id_in_hex(b):
    assert b.uid() == "deadbeefa1b2"


def test_the_station_gets_the_hostname_and_is_active(b):
    sta = b.station("greenhouse-1")
    assert network.hostname() == "greenhouse-1" and sta.active()


def test_join_failures_name_the_ports_status_codes(b):
    assert b.join_failures() == {
        network.STAT_WRONG_PASSWORD: "wrong password",
        network.STAT_NO_AP_FOUND: "network not found",
        network.STAT_CONNECT_FAIL: "connection failed",
    }


def test_the_stations_mac_is_said_in_colon_hex(b):
    network.WLAN(network.STA_IF).config(mac=b"\x02\xa1\xb2\xc3\xd4\xe6")
    assert b.mac() == "02:a1:b2:c3:d4:e6"


def test_a_port_that_will_not_say_its_mac_has_none(b):
    assert b.mac() is None


def test_no_watchdog_without_watchdog_s(b):
    assert b.watchdog(0) is None and machine.state["wdt"] is None


def test_the_watchdog_is_armed_and_says_so(b, log):
    wdt = b.watchdog(5)
    assert wdt is machine.state["wdt"] and (b.wdt_ms, wdt.timeout) == (5000, 5000)
    assert "watchdog armed: 5000 ms" in log.text()


def test_the_rp2s_watchdog_is_held_to_8_s(b, log, monkeypatch):
    monkeypatch.setattr(sys, "platform", "rp2")
    assert (b.watchdog(30).timeout, b.wdt_ms) == (8000, 8000)
    assert "watchdog_s 30 is over the RP2040's 8.3 s; using 8 s" in log.text()


def test_ntp_failing_keeps_ts_null_and_says_so(b, log, monkeypatch):
    class Ntp:
        @staticmethod
        def settime():
            raise OSError(110)

    monkeypatch.setitem(sys.modules, "ntptime", Ntp)
    b.sync_time()
    assert not b.time_set and "NTP failed (OSError(110)" in log.text()


def test_ntp_sets_the_clock_once(b, log, monkeypatch):
    calls = []

    class Ntp:
        @staticmethod
        def settime():
            calls.append(1)

    monkeypatch.setitem(sys.modules, "ntptime", Ntp)
    b.sync_time()
    b.sync_time()
    assert (b.time_set, calls) == (True, [1]) and "clock set from NTP" in log.text()


def test_read_file_gives_the_files_bytes(b, tmp_path):
    (tmp_path / "ca.der").write_bytes(b"\x30\x82")
    assert b.read_file(str(tmp_path / "ca.der")) == b"\x30\x82"


def test_the_boot_time_code_leaves_after_each_call(b):
    b.device_id(None)
    assert "firmware.board_setup" not in sys.modules and "firmware.ident" not in sys.modules


def test_a_name_the_board_does_not_have_is_an_attribute_error(b):
    with pytest.raises(AttributeError):
        b.no_such_thing  # noqa: B018
    assert "firmware.board_setup" not in sys.modules
