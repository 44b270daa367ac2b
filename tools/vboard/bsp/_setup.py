# The virtual board's setup (host-only), run once by _launch.py and dropped after: the board
# support shadows the port's modules, `sys` answers with the board's platform, and the working
# directory is the board's filesystem (with the serial port: mounted at /, by _serial.py).
import os
import sys

import _vboard


def setup():
    bsp = sys.path[0]  # the board support's folder (launch.py put it there)
    fs = os.getenv("VBOARD_FS") or os.getcwd()
    frozen = os.getenv("VBOARD_FROZEN")
    mpy122 = [bsp + "/mpy122"] if os.getenv("VBOARD_USSL") else []
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
    from _launch import BoardSys

    sys.modules["sys"] = sys.modules["usys"] = BoardSys()
