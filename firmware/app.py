# The node's life on the board: the boot (the configuration, then the node built by wiring.py,
# both loaded only for it) and the loop that steps the node, feeds the watchdog and sleeps until
# the next thing is due.
import select
import sys
import time

import machine
from micropython import const

from firmware.log import end_line, log

_IDLE_MAX_MS = const(1000)  # the loop looks at the Wi-Fi link at least this often


def _sleep(poller, watched, wrapped, ms):
    # Sleeps ms, waking early when the broker sends something on wrapped (the link's
    # WatchedSocket, None without a link); returns the socket the poller now watches, which is
    # registered again after each reconnect.
    if wrapped is None:
        time.sleep_ms(ms)
        return watched
    if wrapped is not watched:
        if watched is not None:
            try:
                poller.unregister(watched.sock)
            except (OSError, ValueError, KeyError):
                pass
        poller.register(wrapped.sock, select.POLLIN)
    for _ in poller.ipoll(ms):  # ipoll: no result list allocated per wake
        break
    return wrapped


_CRASH_RESET_MS = const(10000)
# The heap is collected each time this much has been allocated (board_setup.collect_every):
# about a plain ESP32's free heap, so a larger heap (PSRAM, the virtual board's) no longer lets
# the garbage pile up (README, "What it costs a board").
_GC_EVERY = const(32768)


def start():
    # The boot: the configuration (validated.py; config.py's checks on new files), then the
    # node built (wiring.py). Their modules leave the heap once it is built: their bytecode and
    # strings would otherwise stay for the board's lifetime. Returns (board, node, wdt).
    from firmware.board import Board
    from firmware.unload import drop

    board = Board(log)
    board.collect_every(_GC_EVERY)
    from firmware import validated

    found = validated.boot(board, log)
    del validated
    drop("config", "validated", "atomic")
    from firmware import wiring

    parts = wiring.build(board, *found)
    del wiring
    drop("wiring", "version")  # Board keeps the text; ha.py loads it again for an announcement
    return parts


def run():
    try:
        try:
            loop(*start())
        except Exception as e:
            # A bug must not leave a board nobody can reach dead: say what happened, then start
            # over. Ctrl-C (not an Exception) still stops to the REPL, here and during the pause.
            sys.print_exception(e)
            try:
                from firmware import trial

                trial.crashed(e)
            except Exception:
                pass  # the reset below is what matters
            log(
                "boot",
                "unexpected error; resetting in %d s (Ctrl-C for the REPL)"
                % (_CRASH_RESET_MS // 1000),
            )
            time.sleep_ms(_CRASH_RESET_MS)
            machine.reset()
    except KeyboardInterrupt:
        # A person asking for the prompt, not an error: one line instead of a traceback.
        end_line()
        log("boot", "stopped by Ctrl-C; the REPL is yours, Ctrl-D restarts the board")


def loop(board, node, wdt):
    from firmware import trial

    deadline, wdt = trial.begin(node, wdt)
    del trial
    transport = node.session.transport
    poller = select.poll()
    watched = None
    # Fed at least twice per watchdog period however idle the node is.
    longest = _IDLE_MAX_MS if wdt is None else min(_IDLE_MAX_MS, board.wdt_ms // 2)
    log("boot", "running; Ctrl-C stops to the REPL")
    while True:
        now = time.ticks_ms()
        node.step(now)
        if node.reboot_requested:
            log("boot", "rebooting on command")
            node.session.close(now)
            board.reset()
        if deadline is not None:  # new firmware on trial (firmware/trial.py)
            from firmware import trial

            deadline = trial.step(deadline, node, now)
        if wdt is not None:
            wdt.feed()
        ms = min(node.due_in(time.ticks_ms()), longest)
        watched = _sleep(poller, watched, transport.sock, ms)
