# The virtual board's power-on, run by the supervisor as the MicroPython main script (host-only).
# MicroPython compiles a main script on the board, interning every name in it for the process's
# lifetime, so this one only mounts the board support's compiled folder (VBOARD_BSP_DIR, from
# tools/vboard/bspcode.py) at /.bsp, puts that first on the path and hands over to _launch.py.
# Mounted there, the modules' __file__ (interned as well) is short, "/.bsp/machine.mpy", not a
# long host path.
import os
import sys

os.mount(os.VfsPosix(os.getenv("VBOARD_BSP_DIR")), "/.bsp")
sys.path[0] = "/.bsp"
import _launch  # noqa: E402

_launch.main()
