"""The Wi-Fi manager: strongest known network first, timeouts, backoff, re-join, provisioning AP."""

import sys
from itertools import pairwise

import network
import pytest

from firmware import provision
from firmware.wifi import WifiManager
from firmware.wifi_join import order_networks

HOME = {"ssid": "home", "password": "home-pass"}
SHED = {"ssid": "shed", "password": "shed-pass"}
AP_ARGS = ("esp32-a1b2c3-setup", "ap-pass-1")
FAILS = {network.STAT_WRONG_PASSWORD: "wrong password", network.STAT_NO_AP_FOUND: "not found"}


class FakeBoard:
    # What the manager asks the board while the link is down (firmware/board_setup.py on a board).
    def __init__(self):
        self.asked = 0  # join_failures() calls

    def join_failures(self):
        self.asked += 1
        return dict(FAILS)

    def reset(self):
        pass


class FakeAp:
    def __init__(self):
        self.built = None  # what firmware/provision.py's AccessPoint was given
        self.starts = 0
        self.stops = 0
        self.polls = 0
        self.wifi = None

    def start(self, wifi):
        self.starts += 1
        self.wifi = wifi

    def stop(self):
        self.stops += 1

    def poll(self, now):
        self.polls += 1

    def due_in(self, now):
        return 20


def air(**nets):
    network.state["air"] = {ssid: tuple(v) for ssid, v in nets.items()}


@pytest.fixture
def ap(monkeypatch):
    fake = FakeAp()

    def build(*args):
        fake.built = args
        return fake

    monkeypatch.setattr(provision, "AccessPoint", build)
    # the manager imports the module this file patched (an earlier drop may have replaced it)
    monkeypatch.setitem(sys.modules, "firmware.provision", provision)
    return fake


@pytest.fixture
def board():
    return FakeBoard()


@pytest.fixture
def make(clock, log, ap, board):
    def make(networks, rounds_before_ap=3, attempt_ms=5000):
        sta = network.WLAN(network.STA_IF)
        backoff = (2000, 16000, lambda bits: 0xFFFF)
        return WifiManager(
            sta, networks, clock, backoff, log, attempt_ms, rounds_before_ap, AP_ARGS, board
        )

    return make


def run(wifi, clock, ms, step=100):
    for _ in range(ms // step):
        wifi.poll(clock.advance(step))


def test_order_puts_the_strongest_known_network_first():
    scan = [
        (b"shed", b"", 1, -80, 3, 0),
        (b"home", b"", 6, -40, 3, 0),
        (b"cafe", b"", 1, -30, 0, 0),
    ]
    assert [n["ssid"] for n in order_networks([SHED, HOME], scan)] == ["home", "shed"]


def test_order_tries_known_networks_missing_from_the_scan_last():
    scan = [(b"shed", b"", 1, -80, 3, 0)]
    assert [n["ssid"] for n in order_networks([HOME, SHED], scan)] == ["shed", "home"]


def test_order_skips_ssids_that_are_not_text():
    scan = [(b"\xff\xfe", b"", 1, -10, 3, 0), (b"home", b"", 1, -50, 3, 0)]
    assert [n["ssid"] for n in order_networks([HOME], scan)] == ["home"]


def test_joins_the_strongest_known_network(make, clock):
    air(home=("home-pass", -40), shed=("shed-pass", -70))
    wifi = make([SHED, HOME])
    run(wifi, clock, 500)
    assert (wifi.up, wifi.sta.connects) == (True, ["home"])


def test_a_wrong_password_moves_on_to_the_next_network_at_once(make, clock, log):
    air(home=("other", -40), shed=("shed-pass", -70))
    wifi = make([HOME, SHED])
    run(wifi, clock, 300)
    assert (wifi.up, wifi.sta.connects) == (True, ["home", "shed"])
    assert "join 'home' failed (wrong password)" in log.text()


def test_an_attempt_that_never_answers_times_out(make, clock, log):
    air(home=("home-pass", -40))
    network.state["join_polls"] = 10**9
    wifi = make([HOME], attempt_ms=5000)
    run(wifi, clock, 4900)
    assert "no answer in 5 s" not in log.text()
    run(wifi, clock, 200)
    assert "join 'home' failed (no answer in 5 s)" in log.text()


def test_failed_rounds_back_off_before_scanning_again(make, clock, log):
    air()
    wifi = make([HOME], rounds_before_ap=0)
    run(wifi, clock, 100)
    assert "retry in 2 s" in log.text()
    run(wifi, clock, 2100)
    assert "retry in 4 s" in log.text()


def test_access_point_starts_after_the_configured_rounds(make, clock, ap):
    air()
    wifi = make([HOME], rounds_before_ap=2)
    run(wifi, clock, 1000)
    assert ap.starts == 0
    run(wifi, clock, 60000)
    assert ap.starts == 1


def test_access_point_never_starts_when_rounds_before_ap_is_zero(make, clock, ap):
    air()
    wifi = make([HOME], rounds_before_ap=0)
    run(wifi, clock, 120000)
    assert ap.starts == 0


def test_no_networks_at_all_goes_to_the_access_point(make, clock, ap, log):
    wifi = make([], rounds_before_ap=1)
    run(wifi, clock, 200)
    assert ap.starts == 1 and "no Wi-Fi networks in secrets.json" in log.text()


def test_joining_later_closes_the_access_point(make, clock, ap):
    air()
    wifi = make([HOME], rounds_before_ap=1)
    run(wifi, clock, 200)
    air(home=("home-pass", -50))
    run(wifi, clock, 20000)
    assert (wifi.up, ap.starts, ap.stops) == (True, 1, 1)


def test_a_lost_link_is_noticed_and_rejoined(make, clock, log):
    air(home=("home-pass", -40))
    wifi = make([HOME])
    run(wifi, clock, 300)
    air()  # the access point goes away
    run(wifi, clock, 1000)  # one link check
    assert not wifi.up and "link to 'home' lost" in log.text()
    air(home=("home-pass", -40))
    run(wifi, clock, 20000)
    assert wifi.up and wifi.sta.connects.count("home") >= 2


def test_the_failure_codes_are_asked_of_the_board_once_per_outage_and_not_held(make, clock, board):
    air(home=("home-pass", -40))
    wifi = make([HOME])
    run(wifi, clock, 300)
    assert (wifi.up, board.asked, wifi.join) == (True, 1, None)
    air()
    run(wifi, clock, 1000)  # the link is lost: a new round of joins asks again
    assert (wifi.up, board.asked) == (False, 2)
    run(wifi, clock, 5000)
    assert board.asked == 2  # once for the whole outage, not per attempt


def test_join_reports_rssi_and_ip(make, clock, log):
    air(home=("home-pass", -47))
    wifi = make([HOME])
    run(wifi, clock, 300)
    assert "joined 'home' (rssi -47 dBm, ip 10.1.2.3)" in log.text()


def test_due_in_waits_out_the_backoff_instead_of_spinning(make, clock):
    air()
    wifi = make([HOME], rounds_before_ap=0)
    wifi.poll(clock.now)
    assert 1000 <= wifi.due_in(clock.now) <= 2000


def test_due_in_checks_a_working_link_about_once_a_second(make, clock):
    air(home=("home-pass", -40))
    wifi = make([HOME])
    run(wifi, clock, 300)
    first = wifi.due_in(clock.now)
    assert 0 < first <= 1000
    assert wifi.due_in(clock.advance(400)) == first - 400


def test_a_working_link_is_looked_at_once_a_second_not_every_poll(make, clock):
    # isconnected() is not free on every port; the loop may poll many times a second.
    air(home=("home-pass", -40))
    wifi = make([HOME])
    run(wifi, clock, 300)
    looks = []
    real = wifi.sta.isconnected
    wifi.sta.isconnected = lambda: looks.append(clock.now) or real()
    run(wifi, clock, 5000, step=10)
    gaps = [clock.ticks_diff(b, a) for a, b in pairwise(looks)]
    assert len(looks) == 5 and gaps == [1000] * 4


def test_passwords_never_reach_the_console(make, clock, log):
    air(home=("other", -40))
    wifi = make([HOME, SHED])
    run(wifi, clock, 30000)
    assert "home-pass" not in log.text() and "shed-pass" not in log.text()


# -- the setup page's side --------------------------------------------------------------------


def test_the_access_point_is_built_when_needed_given_the_join_and_polled_while_up(
    make, clock, ap, log, board
):
    air()
    wifi = make([HOME], rounds_before_ap=1)
    run(wifi, clock, 1000)
    assert ap.built == ("esp32-a1b2c3-setup", "ap-pass-1", log, clock, board.reset)
    assert ap.wifi is wifi.join and ap.polls > 1 and wifi.due_in(clock.now) <= 20


def test_joining_code_is_loaded_only_while_the_link_is_down(make, clock, ap):
    air()
    wifi = make([HOME], rounds_before_ap=1)
    run(wifi, clock, 200)
    assert "firmware.wifi_join" in sys.modules and wifi.join is not None
    air(home=("home-pass", -50))
    run(wifi, clock, 20000)
    assert wifi.up and wifi.join is None
    assert "firmware.wifi_join" not in sys.modules and "firmware.provision" not in sys.modules


def test_a_network_from_the_setup_page_is_tried_first_and_at_once(make, clock, ap, log):
    air(shed=("shed-pass", -40))
    wifi = make([HOME], rounds_before_ap=1)
    run(wifi, clock, 200)  # home is not there: the round fails and the access point comes up
    wifi.join.join_now(SHED)
    run(wifi, clock, 200)  # well within the backoff wait
    assert wifi.up and wifi.current == "shed" and wifi.networks == [SHED, HOME]


def test_a_network_from_the_setup_page_replaces_a_known_one_of_the_same_name(make, clock):
    wifi = make([HOME, SHED])
    wifi.poll(clock.now)
    wifi.join.join_now({"ssid": "home", "password": "new-pass"})
    assert wifi.networks == [{"ssid": "home", "password": "new-pass"}, SHED]


def test_why_the_setup_pages_network_failed_is_kept_for_the_page(make, clock, ap):
    air(shed=("shed-pass", -40))
    wifi = make([], rounds_before_ap=1)
    run(wifi, clock, 200)
    wifi.join.join_now({"ssid": "shed", "password": "wrong-pass"})
    run(wifi, clock, 200)
    join = wifi.join
    assert (join.asked, join.asked_fail, wifi.up, ap.stops) == ("shed", "wrong password", False, 0)


def test_another_networks_failure_is_not_blamed_on_the_setup_pages_one(make, clock, log):
    air(shed=("shed-pass", -40))
    wifi = make([HOME], rounds_before_ap=1)
    run(wifi, clock, 200)
    wifi.join.join_now({"ssid": "shed", "password": "wrong-pass"})
    run(wifi, clock, 400)
    assert "join 'home' failed (not found)" in log.text()
    assert wifi.join.asked_fail == "wrong password"
