# The board: everything that differs between ports or touches the chip, in one small module.
# Nothing happens at import; the app asks for each thing when it needs it. Only what the reading
# loop and the heartbeat ask for often stays here; the rest (firmware/board_setup.py) is loaded
# for each call and dropped after.
import gc
import time

import machine
from micropython import const

from firmware.unload import drop

_REREAD_MS = const(3600000)  # the clock is read again this often; ticks_ms() counts in between


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


class Board:
    # What only the boot or a connect asks for is board_setup's function of the same name,
    # reached through __getattr__: device_id(configured), station(hostname), watchdog(seconds),
    # join_failures(), read_file(path), uid(), mac() and sync_time(). A method here, found first, is
    # what stays on the heap. wdt_ms: the armed watchdog's timeout, which machine.WDT cannot tell
    # and the loop needs to feed it often enough (set by watchdog() and by trial.py).
    def __init__(self, log):
        from firmware.version import VERSION  # the module leaves with the boot's code (app.py)

        self.log = log
        self.version = VERSION
        self.time_set = False
        self.ts = [0, 0]  # unix_time()'s answer, reused: [seconds // 100000, seconds % 100000]
        self._read_at = 0  # ticks_ms() when the clock was last read
        self._read = None  # unix_parts() of that reading
        self.facts()  # name, mpy, reset_cause

    def __getattr__(self, name):
        # Only for names that are not attributes: board_setup's function, with this board.
        from firmware import board_setup

        drop("board_setup", "ident")  # f holds what it needs until the call is over
        f = getattr(board_setup, name)  # AttributeError for a name that is neither
        return lambda *args: f(self, *args)

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

    def reset(self):
        machine.reset()
