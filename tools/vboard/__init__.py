"""The virtual board: sensornode's unmodified firmware on the real MicroPython unix port.

    from tools.vboard import VirtualBoard
    with VirtualBoard(broker=("127.0.0.1", 1883)) as board:
        board.wait_for(r"mqtt: connected to", 20)

    with VirtualBoard(fs=Path("erased"), serial=Path("/tmp/ttyVB0")) as board:
        subprocess.run([".venv/bin/mpremote", "connect", "/tmp/ttyVB0", "exec", "print(1+1)"])

    python -m tools.vboard [--broker host:port] [--id hex] [--board esp32|picow] [--fs dir]
                           [--heap size] [--serial path]

supervisor.py runs and restarts the board process; layout.py lays out its filesystem as
flashing would; switches.py is the host's side of the simulated Wi-Fi and board switches;
serialport.py is the board's USB serial port (a pty); bsp/ is the board support the process
runs with (MicroPython, host-only, never flashed), compiled to .mpy by bspcode.py, bsp/_repl.py
the REPL on the serial port.
"""

from tools.vboard.supervisor import RESET_EXIT, VirtualBoard

__all__ = ["RESET_EXIT", "VirtualBoard"]
