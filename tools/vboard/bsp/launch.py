# The virtual board's power-on, run by the supervisor as the MicroPython main script (host-only):
# makes the unix port look like the board, then does what the board's firmware does after a
# reset: boot.py, then main.py, in one globals dict (main.py reads boot.py's SAFE_MODE), then the
# REPL. Paths come from the environment:
#   VBOARD_FS      the board's filesystem root (becomes the working directory, as / on the board)
#   VBOARD_FROZEN  modules frozen into the firmware (umqtt on the ESP32), or empty
#   VBOARD_USSL    "1": the board is a MicroPython 1.22 one and has `ussl` (bsp/mpy122/)
#   VBOARD_SERIAL  "1": stdin/stdout are the board's serial port (bsp/_repl.py runs the REPL on
#                  it) and the board's filesystem is mounted at /, as on a board, so nothing that
#                  comes in over the port reaches the host's files
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
    mpy122 = [bsp + "/mpy122"] if os.getenv("VBOARD_USSL") else []
    proxy = _BoardSys()
    if _vboard.SERIAL:
        import _serial  # the filesystem at /, and what a board with a serial port needs

        _serial.setup(bsp, fs, frozen, mpy122)
    else:
        # The board's own order ('' then .frozen then /lib): frozen modules shadow /lib ones.
        # Relative to the board's root, the working directory, as on a board: a module's
        # __file__ is then "firmware/node.mpy", interned as on a board, not a host path.
        path = [bsp] + mpy122 + ["", ".frozen"]
        if frozen:
            path.append(frozen)
        path.append("lib")
        sys.path[:] = path
        os.chdir(fs)
    sys.modules["sys"] = proxy
    sys.modules["usys"] = proxy


def soft_reboot(mode):
    # As a board's main loop after a soft reset: say so, then start again (a new process, so the
    # heap, the modules and the sockets are as fresh as after a real soft reset).
    sys.stdout.write("MPY: soft reboot\r\n")
    raise SystemExit(_vboard.SOFT_EXIT + (1 if mode == "raw" else 0))


def run_file(name, g, mode="friendly"):
    # Like the board: a missing file is skipped, an exception is printed and the next file runs.
    # SystemExit: machine.reset() ends the process with the supervisor's code; machine.soft_reset()
    # (and, with the serial port's REPL, any SystemExit) is a soft reset.
    try:
        with open(name) as f:
            source = f.read()
    except OSError:
        return
    try:
        exec(compile(source, name, "exec"), g)
    except SystemExit as e:
        code = e.args[0] if e.args else None
        if code == _vboard.RESET_EXIT or not (_vboard.SERIAL or code == _vboard.SOFT_EXIT):
            raise
        soft_reboot(mode)
    except (Exception, KeyboardInterrupt) as e:
        if _vboard.SERIAL:
            import _repl

            _repl.print_exception(e)  # without the launcher's frame, as a board prints it
        else:
            sys.print_exception(e)


def idle():
    # Where the REPL would run, on a board without its serial port (no --serial): the board
    # idles here reading its console input; EOF means the serial line is gone and the board
    # process ends (a supervised board's input never ends).
    while True:
        try:
            if not sys.stdin.read(1):
                return
        except KeyboardInterrupt:
            pass  # Ctrl-C at the prompt: nothing to interrupt


def main():
    setup()
    g = {"__name__": "__main__"}
    if not _vboard.SERIAL:
        run_file("boot.py", g)
        run_file("main.py", g)
        idle()
        return
    import _repl

    _repl.hide(__file__)
    mode = _vboard.REPL
    _vboard.tell("intr 1")  # Ctrl-C on the port interrupts boot.py and main.py
    run_file("boot.py", g, mode)
    if mode == "friendly":  # after a soft reset into the raw REPL, main.py does not run
        run_file("main.py", g, mode)
    mode = _repl.run(g, mode)
    if mode is not None:
        soft_reboot(mode)


if __name__ == "__main__":
    main()
