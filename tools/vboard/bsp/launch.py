# The virtual board's power-on, run by the supervisor as the MicroPython main script (host-only):
# makes the unix port look like the board, then does what the board's firmware does after a
# reset: boot.py, then main.py, in one globals dict (main.py reads boot.py's SAFE_MODE), then the
# REPL. Paths come from the environment:
#   VBOARD_FS      the board's filesystem root (becomes the working directory, as / on the board)
#   VBOARD_FROZEN  modules frozen into the firmware (umqtt on the ESP32), or empty
import os
import sys

import _vboard

_real_sys = sys


class _BoardSys:
    # `sys` as the firmware sees it: the real module, except for the port's name.
    platform = _vboard.PLATFORM

    def __getattr__(self, name):
        return getattr(_real_sys, name)


def setup():
    bsp = sys.path[0]  # this script's folder: the board support shadows the port's modules
    fs = os.getenv("VBOARD_FS") or os.getcwd()
    frozen = os.getenv("VBOARD_FROZEN")
    # The board's own order ('' then .frozen then /lib): frozen modules shadow /lib ones.
    path = [bsp, fs, ".frozen"]
    if frozen:
        path.append(frozen)
    path.append(fs + "/lib")
    sys.path[:] = path
    proxy = _BoardSys()
    sys.modules["sys"] = proxy
    sys.modules["usys"] = proxy
    os.chdir(fs)


def run_file(name, g):
    # Like the board: a missing file is skipped, an exception is printed and the next file runs.
    # SystemExit (machine.reset) is not caught: it ends the process with the supervisor's code.
    try:
        with open(name) as f:
            source = f.read()
    except OSError:
        return
    try:
        exec(compile(source, name, "exec"), g)
    except (Exception, KeyboardInterrupt) as e:
        sys.print_exception(e)


def repl(g):
    # Where the board's REPL runs once main.py is done. Until the raw REPL on a pty (--serial)
    # takes this place, the board idles here reading its console input; EOF means the serial
    # line is gone and the board process ends (a supervised board's input never ends).
    while True:
        try:
            if not sys.stdin.read(1):
                return
        except KeyboardInterrupt:
            pass  # Ctrl-C at the prompt: nothing to interrupt


def main():
    setup()
    g = {"__name__": "__main__"}
    run_file("boot.py", g)
    run_file("main.py", g)
    repl(g)


if __name__ == "__main__":
    main()
