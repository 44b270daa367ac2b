"""The setup portal as a person uses it: a fresh virtual board (no network known, no broker)
opens its setup access point, and headless Chromium opens the page, sees the simulated
networks, and submits them. The tests run in order on one board: a field the rules refuse, a
wrong password, then the right network and broker, after which readings reach the broker, the
access point goes down and the board's secrets.json holds the network.

Screenshots go to build/portal*.png; the time from submit to the first reading is printed and
written to build/portal-browser.json. Skipped where Chromium is not installed (`make setup`
installs Debian's package when run as root)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from host_tests.browser import Browser, chromium
from host_tests.mqtt_helpers import VBOARD_MARKS, no_traceback
from tools.vboard import VirtualBoard, layout
from tools.watcher import Watcher

pytestmark = [
    *VBOARD_MARKS,
    pytest.mark.skipif(
        chromium() is None,
        reason="no Chromium: `make setup` installs Debian's chromium when run as root "
        "(apt-get install chromium)",
    ),
]

BUILD = layout.ROOT / "build"
WAIT_S = 30
AIR = [
    {"ssid": "vboard-net", "password": "vboard-pass", "rssi": -55},
    {"ssid": "greenhouse", "password": "greenhouse-pass", "rssi": -68},
    {"ssid": "neighbour", "password": "", "rssi": -84},
    {"ssid": "hidden-net", "password": "hidden-pass", "rssi": -60, "hidden": True},
]


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualBoard]:
    # A board fresh from the box: no network known, no broker, the setup AP after one round.
    b = VirtualBoard(
        secrets={"wifi": []},
        config={"wifi": {"rounds_before_ap": 1}},
        workdir=tmp_path_factory.mktemp("portal-board"),
    )
    b.set_air(AIR)
    with b:
        b.wait_for(r"^setup: portal at http://127\.0\.0\.1:\d+/", WAIT_S)
        yield b


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b


def secrets(board: VirtualBoard) -> dict:
    return json.loads((board.fs / "secrets.json").read_text())


def fill(browser: Browser, **fields: str) -> None:
    for name, value in fields.items():
        browser.type(f"#{name}", value)


def test_the_page_lists_the_networks_the_board_sees_strongest_first(board, browser):
    browser.open(board.portal_url)
    nets = browser.text("#nets")
    assert nets.index("vboard-net") < nets.index("greenhouse") < nets.index("neighbour")
    assert "-55 dBm" in nets and "hidden-net" not in nets
    browser.screenshot(BUILD / "portal.png")


def test_a_field_the_rules_refuse_is_named_on_the_page_and_nothing_is_written(board, browser):
    browser.open(board.portal_url)
    fill(browser, ssid="vboard-net", password="vboard-pass", host="127.0.0.1", port="99999")
    browser.click("button[type=submit]")
    browser.wait_loaded("/save")
    said = browser.text("#error")
    assert said.startswith("mqtt.port = 99999 is not a whole number from 1 to 65535"), said
    assert secrets(board)["wifi"] == []
    assert browser.eval("document.querySelector('#password').value") == ""


def test_a_wrong_password_is_on_the_page_after_the_failed_join_and_the_ap_stays(board, browser):
    browser.open(board.portal_url)
    browser.click("#nets button[value=greenhouse]")  # tapping the network fills its name
    assert browser.eval("document.querySelector('#ssid').value") == "greenhouse"
    fill(browser, password="not-the-password")
    mark = len(board.console)
    browser.click("button[type=submit]")
    browser.wait_loaded("/save")
    assert "joining 'greenhouse'" in browser.text("#note")
    board.wait_for(r"join 'greenhouse' failed \(wrong password\)", WAIT_S, since=mark)
    browser.open(board.portal_url)  # reloaded
    assert "Joining 'greenhouse' failed (wrong password)" in browser.text("#note")
    browser.screenshot(BUILD / "portal-failed.png")
    assert not any("access point" in line and "is down" in line for line in board.console)


def test_the_right_network_and_broker_bring_readings_and_take_the_ap_down(board, browser, broker):
    sub = Watcher(broker, "sensornode/#")
    try:
        browser.open(board.portal_url)
        fill(browser, ssid="vboard-net", password="vboard-pass")
        fill(browser, host=broker[0], port=str(broker[1]))
        mark = len(board.console)
        submitted = time.monotonic()
        browser.click("button[type=submit]")
        browser.wait_loaded("/save")
        assert "joining 'vboard-net'" in browser.text("#note")
        reading = sub.next(board.topic("readings"), timeout=WAIT_S).json()
        took = time.monotonic() - submitted
    finally:
        sub.close()
    board.wait_for(r"access point '.*-setup' is down", 1, since=mark)
    assert secrets(board)["wifi"][0] == {"ssid": "vboard-net", "password": "vboard-pass"}
    assert {"ssid": "greenhouse", "password": "not-the-password"} in secrets(board)["wifi"]
    config = json.loads((board.fs / "config.json").read_text())
    assert (config["mqtt"]["host"], config["mqtt"]["port"]) == broker
    assert "temperature" in reading
    no_traceback(board)
    BUILD.mkdir(exist_ok=True)
    (BUILD / "portal-browser.json").write_text(json.dumps({"submit_to_first_reading_s": took}))
    print(f"\nportal: submit to first reading at the broker: {took:.2f} s")
