# What the board is asked once or at each connect, never in a reading cycle: its name and reset
# cause, the device id, the Wi-Fi station and its MAC, the watchdog, the join failure codes, the
# chip's unique id, the clock from NTP and how often the heap is collected. firmware/board.py
# loads this module for each such call and drops it (and firmware/ident.py) after.
import gc
import sys

import machine
import network
from micropython import const

from firmware import ident

_RESET_NAMES = const(
    (
        ("PWRON_RESET", "power-on"),
        ("HARD_RESET", "hard reset"),
        ("WDT_RESET", "watchdog"),
        ("DEEPSLEEP_RESET", "deep sleep"),
        ("SOFT_RESET", "soft reset"),
    )
)
_RP2_WDT_MAX_MS = const(8388)  # the RP2040's watchdog cannot count longer


def reset_cause_name(code):
    for attr, name in _RESET_NAMES:
        if getattr(machine, attr, None) == code:
            return name
    return "unknown (%s)" % code


def facts(board):
    # What the board says about itself in the boot line and every heartbeat.
    board.name = ident.board_name(sys.platform)
    board.mpy = getattr(sys.implementation, "_mpy", None)  # .mpy version and architecture
    board.reset_cause = reset_cause_name(machine.reset_cause())


def uid(board):
    # The chip's unique id in hex: what names the device to Home Assistant.
    return "".join(["%02x" % b for b in machine.unique_id()])


def mac(board):
    # The station's MAC as aa:bb:cc:dd:ee:ff, or None where the port will not say: for Home
    # Assistant's device block, made at a connect.
    try:
        raw = network.WLAN(network.STA_IF).config("mac")
    except (OSError, ValueError):
        return None
    if not raw:
        return None
    return ":".join(["%02x" % b for b in raw])


def device_id(board, configured):
    return ident.device_id(board.name, machine.unique_id(), configured)


def sync_time(board):
    if board.time_set:
        return
    try:
        import ntptime

        ntptime.settime()
        board.time_set = True
        board.log("time", "clock set from NTP")
    except Exception as e:
        board.log("time", "NTP failed (%r); ts stays null, trying again after the next connect" % e)


def collect_every(board, nbytes):
    # A collection each time nbytes have been allocated since the last, besides the one when
    # the heap is full. Without it, on a heap far larger than the loop's garbage (PSRAM, the
    # virtual board's 1 MB), a step's cost grew with the garbage left since the last
    # collection until it was more than the reading's own work.
    gc.threshold(nbytes)


def watchdog(board, seconds):
    # machine.WDT armed for watchdog_s, or None without it; its timeout goes to board.wdt_ms.
    if not seconds:
        return None
    ms = seconds * 1000
    if sys.platform == "rp2" and ms > _RP2_WDT_MAX_MS:
        board.log("board", "watchdog_s %d is over the RP2040's 8.3 s; using 8 s" % seconds)
        ms = 8000
    board.log("board", "watchdog armed: %d ms" % ms)
    board.wdt_ms = ms
    return machine.WDT(timeout=ms)


def station(board, hostname):
    if hasattr(network, "hostname"):
        try:
            network.hostname(hostname)
        except (OSError, ValueError) as e:
            board.log("wifi", "hostname %r not set (%s)" % (hostname, e))
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    return sta


def join_failures(board):
    # status() codes that end a join attempt at once, with words for the console.
    out = {}
    for attr, words in (
        ("STAT_WRONG_PASSWORD", "wrong password"),
        ("STAT_NO_AP_FOUND", "network not found"),
        ("STAT_CONNECT_FAIL", "connection failed"),
    ):
        code = getattr(network, attr, None)
        if code is not None:
            out[code] = words
    return out


def read_file(board, path):
    with open(path, "rb") as f:
        return f.read()
