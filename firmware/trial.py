# New firmware on trial (firmware/otaboot.py switched to it at this boot) as the loop sees it:
# begin() at the loop's start, step() each cycle while the trial runs, crashed() when the loop
# dies. Loaded only for these; begin() and step() drop it (and otaboot.py) once there is no trial.
import sys

import machine

from firmware.log import log
from firmware.unload import drop


def _offered():
    # No ota folder (otaboot.DIR): no update was ever offered, so there is no trial and no news,
    # and otaboot.py stays unloaded (its names would stay interned for good).
    import os

    try:
        os.stat("ota")
        return True
    except OSError:
        return False


def begin(node, wdt):
    # (trial deadline, watchdog) when this boot runs new firmware on trial, else (None, wdt). The
    # update's result from an earlier boot is said at the next connect (firmware/report.py).
    if not _offered():
        drop("trial")
        return None, wdt
    from firmware import otaboot

    node.news = otaboot.result()
    st = otaboot.state()
    deadline = None
    if st and st[0] == "trial":
        seconds = int(st[2])
        deadline = node.clock.ticks_add(node.boot, seconds * 1000)
        if wdt is None:
            ms = otaboot.watchdog_ms(seconds, sys.platform)
            wdt = machine.WDT(timeout=ms)
            node.stats.wdt_ms = ms  # for the loop's feeding (board.py)
        log("update", "%s on trial: online with readings within %d s, or back" % (st[3], seconds))
    del otaboot
    drop("otaboot", "atomic")
    if deadline is None:
        drop("trial")
    return deadline, wdt


def step(deadline, node, now):
    # None once the trial is over: readings went out since this boot, so the update stays.
    if node.sent and node.session.online:
        from firmware import otaboot

        detail = otaboot.commit(log)
        del otaboot
        drop("otaboot", "atomic")
        if detail:
            from firmware import report

            report.send_event(node, "update", True, detail, None, now)
        drop("report", "trial")
        return None
    if node.clock.ticks_diff(now, deadline) >= 0:
        from firmware import otaboot

        otaboot.note("not online with readings within the trial")
        log("update", "trial over without readings; resetting to restore the previous firmware")
        machine.reset()
    return deadline


def crashed(e):
    # New firmware on trial is rolled back by the next boot, with this as the reason.
    if not _offered():
        return
    from firmware import otaboot
    from firmware.log import why

    otaboot.note(why(e))
