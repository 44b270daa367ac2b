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
_REREAD_MS = 3600000  # the clock is read again this often; ticks_ms() counts in between


def unix_parts(tm):
    # Unix seconds of a gmtime() tuple as (seconds // 100000, seconds % 100000). A timestamp
    # (about 1.8e9) is past a board's small integers (2**30), so time.time() would make a big
    # integer on the heap; the date's fields and every step here stay small, on any port's epoch.
    y = tm[0] - (1 if tm[1] <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (tm[1] - 3 if tm[1] > 2 else tm[1] + 9) + 2) // 5 + tm[2] - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    s = tm[3] * 3600 + tm[4] * 60 + tm[5]
    b = days * 864 + s // 100  # (days * 86400 + s) // 100
    return b // 1000, b % 1000 * 100 + s % 100


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
        self.mpy = getattr(sys.implementation, "_mpy", None)  # .mpy version and architecture
        self.reset_cause = reset_cause_name(machine.reset_cause())
        self.time_set = False
        self.ts = [0, 0]  # unix_time()'s answer, reused: [seconds // 100000, seconds % 100000]
        self._read_at = 0  # ticks_ms() when the clock was last read
        self._read = None  # unix_parts() of that reading

    def uid(self):
        # The chip's unique id in hex: what names the device to Home Assistant.
        return "".join(["%02x" % b for b in machine.unique_id()])

    def device_id(self, configured):
        return ident.device_id(self.name, machine.unique_id(), configured)

    def free_heap(self):
        # After a collection: what the board could still allocate. Without it the figure falls
        # between collections by whatever garbage the loop left, which reads as a leak.
        gc.collect()
        return gc.mem_free()

    def unix_time(self, now):
        # Unix seconds at ticks_ms() `now` as self.ts, or None until NTP has set the clock (a
        # made-up timestamp is worse than none). The clock is read once an hour; ticks count the
        # seconds in between, so a reading costs no heap.
        if not self.time_set:
            return None
        since = time.ticks_diff(now, self._read_at)
        if self._read is None or since < 0 or since >= _REREAD_MS:
            self._read_at = now
            self._read = unix_parts(time.gmtime())
            since = 0
        low = self._read[1] + since // 1000
        ts = self.ts
        ts[0] = self._read[0] + low // 100000
        ts[1] = low % 100000
        return ts

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
