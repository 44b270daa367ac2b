# The board: everything that differs between ports or touches the chip, in one small module.
# Nothing happens at import; the app asks for each thing when it needs it.
import gc
import sys
import time

import machine
import network

from firmware import ident
from firmware.version import VERSION

_RESET_NAMES = (
    ("PWRON_RESET", "power-on"),
    ("HARD_RESET", "hard reset"),
    ("WDT_RESET", "watchdog"),
    ("DEEPSLEEP_RESET", "deep sleep"),
    ("SOFT_RESET", "soft reset"),
)
_RP2_WDT_MAX_MS = 8388  # the RP2040's watchdog cannot count longer
# 2000-01-01 in unix seconds, for ports whose time.time() counts from 2000.
_EPOCH_2000 = 946684800


def reset_cause_name(code):
    for attr, name in _RESET_NAMES:
        if getattr(machine, attr, None) == code:
            return name
    return "unknown (%s)" % code


class Watchdog:
    # machine.WDT cannot tell its timeout; the loop needs it to feed often enough.
    def __init__(self, wdt, timeout_ms):
        self.wdt = wdt
        self.timeout_ms = timeout_ms

    def feed(self):
        self.wdt.feed()


class Board:
    def __init__(self, log):
        self.log = log
        self.name = ident.board_name(sys.platform)
        self.version = VERSION
        self.reset_cause = reset_cause_name(machine.reset_cause())
        self.time_set = False
        self.epoch_offset = _EPOCH_2000 if time.gmtime(0)[0] == 2000 else 0

    def device_id(self, configured):
        return ident.device_id(self.name, machine.unique_id(), configured)

    def free_heap(self):
        return gc.mem_free()

    def unix_time(self):
        # None until NTP has set the clock: a made-up timestamp is worse than none.
        return int(time.time()) + self.epoch_offset if self.time_set else None

    def sync_time(self):
        if self.time_set:
            return
        try:
            import ntptime

            ntptime.settime()
            self.time_set = True
            self.log("time", "clock set from NTP")
        except Exception as e:
            self.log(
                "time", "NTP failed (%r); ts stays null, trying again after the next connect" % e
            )

    def watchdog(self, seconds):
        if not seconds:
            return None
        ms = seconds * 1000
        if sys.platform == "rp2" and ms > _RP2_WDT_MAX_MS:
            self.log("board", "watchdog_s %d is over the RP2040's 8.3 s; using 8 s" % seconds)
            ms = 8000
        self.log("board", "watchdog armed: %d ms" % ms)
        return Watchdog(machine.WDT(timeout=ms), ms)

    def reset(self):
        machine.reset()

    def station(self, hostname):
        if hasattr(network, "hostname"):
            try:
                network.hostname(hostname)
            except (OSError, ValueError) as e:
                self.log("wifi", "hostname %r not set (%s)" % (hostname, e))
        sta = network.WLAN(network.STA_IF)
        sta.active(True)
        return sta

    def join_failures(self):
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

    def read_file(self, path):
        with open(path, "rb") as f:
            return f.read()
