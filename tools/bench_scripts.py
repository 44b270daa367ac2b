"""The main.py files the benchmark writes onto its boards (board-side MicroPython, as text).

Each measurement's main.py is put together from these pieces: a boot of the program under test
as the board would boot it, then what is measured. Every result comes back on the console as one
line, `bench: <json>`, which tools/bench_boards.bench_line reads.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Boots sensornode as main.py does, with firmware.app.run() replaced by app.start() and steps
# of the node (with the app loop's short waits) until it is connected and its first reading is
# out: discovery and heartbeat have gone too.
_RUN = "    firmware.app.run()\n"
_STEP = """\
    board, node, wdt = firmware.app.start()
    _t = time.ticks_ms()
    while not node.sent and time.ticks_diff(time.ticks_ms(), _t) < 30000:
        node.step(time.ticks_ms())
        time.sleep_ms(5)
"""


def _as_main_py() -> str:
    main = (ROOT / "main.py").read_text()
    if main.count(_RUN) != 1:
        raise RuntimeError("bench: main.py no longer ends in one `firmware.app.run()` to step")
    return "import gc\nimport time\n\n" + main.replace(_RUN, _STEP)


SENSORNODE_BOOT = _as_main_py()
BARE_BOOT = """\
import gc
import time

import bare_loop

bare_loop.join({ssid!r}, {password!r})
bare = bare_loop.Bare({host!r}, {port}, {device!r})
bare.connect()
bare.cycle()
"""
# Resident heap is taken before the harness is imported: its code is not in the figure. The qstr
# pools' size is printed by qstr_info() on a line of its own.
MEASURE = """\
gc.collect()
_resident = gc.mem_alloc()
import micropython

micropython.qstr_info()
import bench_harness

bench_harness.measure({kind!r}, {program}, _resident, {cycles})
"""
# Code in flash: the program's .mpy files packed into a ROMFS image, which MicroPython imports in
# place (bytecode and constants stay in the image). A board maps the image from flash; here it is
# read into the heap first, so what it takes there is counted and left out of the resident figure.
# It goes before boot.py, as a board mounts its ROM partition before running anything.
ROMFS = """\
import gc
import sys
import vfs

gc.collect()
_a = gc.mem_alloc()
with open("rom.img", "rb") as _f:
    _img = _f.read()
gc.collect()
_IMAGE = gc.mem_alloc() - _a
vfs.mount(vfs.VfsRom(_img), "/rom")
sys.path.insert(0, "/rom")
"""
MEASURE_ROMFS = MEASURE.replace("= gc.mem_alloc()", "= gc.mem_alloc() - _IMAGE")

# What the virtual board holds before main.py (the interpreter, the launcher and its _vboard),
# and what the board-support modules a program imports add (C in a board's firmware, Python
# here). Run on a board without boot.py: boot.py is the firmware's.
BASELINE = """\
import gc

gc.collect()
_a = gc.mem_alloc()
import {modules}

network.WLAN(network.STA_IF).active(True)
gc.collect()
_b = gc.mem_alloc()
print('bench: {{"before_main": %d, "bsp": %d}}' % (_a, _b - _a))
import micropython

micropython.qstr_info()
"""
# The heap each module takes once imported (code, constants, its interned names), imported one
# by one, dependencies first; then the rest of the boot, whose objects (the node's parts, its
# buffers, the socket) are what remains. config.py is loaded and dropped as app.py does: what it
# leaves behind is names in the qstr pools. A qstr_info() line follows every step, so the pools'
# growth and the names each step adds can be told apart from the rest.
BREAKDOWN = (
    """\
import gc

import micropython
import {bsp}

gc.collect()
_start = gc.mem_alloc()
_at = _start
_names = {names!r}
_sizes = [0] * len(_names)
micropython.qstr_info()
for _i in range(len(_names)):
    __import__(_names[_i])
    gc.collect()
    _now = gc.mem_alloc()
    _sizes[_i] = _now - _at
    _at = _now
    micropython.qstr_info()
from firmware.unload import drop

# The boot's configuration as every boot after the first reads it (firmware/validated.py; the
# board was booted once before this run), what it returns left out.
from firmware import validated

validated.load(lambda tag, msg: None, None)
del validated
drop("validated", "atomic")
gc.collect()
_now = gc.mem_alloc()
_config = _now - _at
_at = _now
micropython.qstr_info()
"""
    + SENSORNODE_BOOT
    + """\
gc.collect()
_objects = gc.mem_alloc() - _at
print('bench: {{"main_start": %d, "config_read": %d, "objects": %d, "sizes": %s}}'
      % (_start, _config, _objects, _sizes))
"""
)
# An optional part on top of the idle node (tools/bench_extras.py): the node boots as in every
# measurement, then the part's code runs with `node` and `board` in scope.
EXTRA = """\
gc.collect()
_idle = gc.mem_alloc()
try:
{code}
    gc.collect()
    print('bench: {{"idle": %d, "with": %d}}' % (_idle, gc.mem_alloc()))
except Exception as _e:
    print('bench: {{"error": "%s: %s"}}' % (type(_e).__name__, str(_e).replace('"', "'")))
"""
# Endurance runs stay inline and small: at the smallest heaps even compiling the harness counts.
# TCP_NODELAY (Linux: level 6, option 1) only spares each cycle the broker's delayed ACK.
SENSORNODE_ENDURE = """\
_n = node.sent
_c = node.session.connects
_e = node.sensors.errors
if _n:
    node.session.transport.sock.raw.setsockopt(6, 1, 1)
    for _ in range({cycles}):
        _now = time.ticks_ms()
        node.next_reading = _now
        node.step(_now)
if _n and node.sent - _n == {cycles} and node.session.connects == _c and node.sensors.errors == _e:
    print("bench: endurance ok")
else:
    print("bench: endurance failed")
"""
BARE_ENDURE = """\
bare.client.sock.setsockopt(6, 1, 1)
for _ in range({cycles}):
    bare.cycle()
print("bench: endurance ok" if bare.seq == {cycles} + 1 else "bench: endurance failed")
"""
# One program's CPU figure, alone on its board, after its boot (SENSORNODE_BOOT: node; BARE_BOOT:
# bare).
ALONE = """\
import bench_harness

bench_harness.alone({kind!r}, {program}, {cycles})
"""
BARE_RUN = """\
import bare_loop

bare_loop.run({host!r}, {port}, {ssid!r}, {password!r}, {device!r}, {interval_ms})
"""


def indent(code: str, by: str = "    ") -> str:
    """code as the body of a block (EXTRA's try:); `pass` when there is none."""
    lines = [line for line in code.strip("\n").splitlines()] or ["pass"]
    return "\n".join(by + line if line.strip() else line for line in lines)
