# What the virtual board runs after launch.py (host-only): makes the unix port look like the board
# (_setup.py, dropped after), then does what the board's firmware does after a reset: boot.py,
# then main.py, in one globals dict (main.py reads boot.py's SAFE_MODE), then the REPL. This
# module stays on the heap for the board's lifetime (its frames run boot.py and main.py), so it
# holds only that. Paths come from the environment:
#   VBOARD_BSP_DIR the board support's folder (compiled; tools/vboard/bspcode.py), at /.bsp
#   VBOARD_FS      the board's filesystem root (becomes the working directory, as / on the board)
#   VBOARD_FROZEN  modules frozen into the firmware (umqtt on the ESP32), or empty
#   VBOARD_USSL    "1": the board is a MicroPython 1.22 one and has `ussl` (bsp/mpy122/)
#   VBOARD_SERIAL  "1": stdin/stdout are the board's serial port (bsp/_repl.py runs the REPL on
#                  it) and the board's filesystem is mounted at /, as on a board, so nothing that
#                  comes in over the port reaches the host's files
import sys

import _vboard


class BoardSys:
    # `sys` as the firmware sees it: the real module (this module's `sys`, imported before
    # _setup.py put this in its place), except for the port's name.
    platform = _vboard.PLATFORM

    def __getattr__(self, name):
        return getattr(sys, name)


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
    import _setup

    _setup.setup()
    del sys.modules["_setup"]  # runs once: its code leaves the heap
    g = {"__name__": "__main__"}
    if _vboard.SERIAL:
        import _repl

        _repl.main(g)  # boot.py and main.py as the REPL's mode says, then the REPL
        return
    run_file("boot.py", g)
    run_file("main.py", g)
    idle()
