"""Which of a module's functions allocate their frame on the heap at every call.

MicroPython's VM keeps a bytecode function's frame (its locals, its value stack and its
exception handlers) on the C stack when it fits in 11 machine words, and otherwise allocates it
on the heap at each call and frees it at the return (py/objfun.c). On a loop that runs every
cycle that is an allocation, a free and a share of the next collection per call. The sizes are
read from the bytecode prelude of the .mpy that mpy-cross makes, for a 32-bit board.

    python -m tools.mpy_frames firmware/payload.py ...   # every function, "heap" where it is
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tools.compile import mpy_cross

WORD = 4  # a 32-bit board
ON_STACK_MAX = 11 * WORD  # the VM's VM_MAX_STATE_ON_STACK
HANDLER = 3 * WORD  # one exception handler's entry (mp_exc_stack_t)


@dataclass(frozen=True)
class Frame:
    name: str
    n_state: int  # locals and value stack, in words
    n_exc: int  # exception handlers open at once

    @property
    def size(self) -> int:
        return self.n_state * WORD + self.n_exc * HANDLER

    @property
    def on_heap(self) -> bool:
        return self.size > ON_STACK_MAX


def _uint(b: bytes, i: int) -> tuple[int, int]:
    v = 0
    while True:
        x = b[i]
        i += 1
        v = (v << 7) | (x & 0x7F)
        if not x & 0x80:
            return v, i


def _skip_obj(b: bytes, i: int) -> int:
    kind = b[i]
    i += 1
    if kind <= 4:  # None, False, True, Ellipsis, and the like: no payload
        return i
    n, i = _uint(b, i)
    if kind == 10:  # a tuple of constants
        for _ in range(n):
            i = _skip_obj(b, i)
        return i
    return i + n + (1 if kind in (5, 6) else 0)  # str and bytes end with a NUL


def _signature(prelude: bytes) -> tuple[int, int, int]:
    """(n_state, n_exc, the simple name's index) from a bytecode prelude (py/bc.h's encoding)."""
    z = prelude[0]
    n_state, n_exc = (z >> 3) & 0xF, (z >> 2) & 1
    i, n = 1, 0
    while z & 0x80:
        z = prelude[i]
        i += 1
        n_state |= (z & 0x30) << (2 * n)
        n_exc |= (z & 0x02) << n
        n += 1
    while prelude[i] & 0x80:  # the prelude's size (n_info, n_cell)
        i += 1
    name, _ = _uint(prelude, i + 1)
    return n_state + 1, n_exc, name


def _raw_code(b: bytes, i: int, names: list[str], out: list[Frame]) -> int:
    head, i = _uint(b, i)
    kind, children, size = head & 3, head & 4, head >> 3
    if kind == 0:  # bytecode (native code has no such prelude)
        n_state, n_exc, name = _signature(b[i : i + size])
        out.append(Frame(names[name] if name < len(names) else f"?{name}", n_state, n_exc))
    i += size
    if children:
        count, i = _uint(b, i)
        for _ in range(count):
            i = _raw_code(b, i, names, out)
    return i


def read(mpy: bytes, static: dict[int, str] | None = None) -> list[Frame]:
    """Every bytecode function of a .mpy v6, module first, in the order they are defined.
    static: names of MicroPython's static qstrs by index (static_names()); others are shown
    as "static<index>"."""
    if mpy[:2] != b"M\x06":
        raise ValueError("not a .mpy v6 file")
    n_qstr, i = _uint(mpy, 4)
    n_obj, i = _uint(mpy, i)
    names: list[str] = []
    for _ in range(n_qstr):
        length, i = _uint(mpy, i)
        if length & 1:
            index = length >> 1
            names.append((static or {}).get(index, f"static{index}"))
        else:
            length >>= 1
            names.append(mpy[i : i + length].decode())
            i += length + 1
    for _ in range(n_obj):
        i = _skip_obj(mpy, i)
    out: list[Frame] = []
    _raw_code(mpy, i, names, out)
    module = out[0]  # the module's own code comes first
    return [Frame("<module>", module.n_state, module.n_exc), *out[1:]]


def compile_frames(py: Path, static: dict[int, str] | None = None) -> list[Frame]:
    """py compiled by mpy-cross (bytecode, as the firmware is built), its functions' frames."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.mpy"
        subprocess.run([mpy_cross(), "-march=xtensawin", "-o", str(out), str(py)], check=True)
        return read(out.read_bytes(), static)


def static_names(candidates: list[str]) -> dict[int, str]:
    """Which of these names mpy-cross stores as static qstrs, by index: a .mpy names a function
    called `read` or `update` by its index in MicroPython's own table, not by its text."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.py"
        probe.write_text("".join(f"def {name}():\n    pass\n" for name in candidates))
        found = compile_frames(probe)[1:]  # after the module itself
    return {
        int(f.name.removeprefix("static")): name
        for f, name in zip(found, candidates, strict=True)
        if f.name.startswith("static")
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mpy_frames", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for py in args.files:
        defined = sorted(set(re.findall(r"^\s*def (\w+)\(", py.read_text(), re.MULTILINE)))
        for f in compile_frames(py, static_names(defined)):
            where = "heap" if f.on_heap else "stack"
            print(f"{py}:{f.name} {f.size} bytes ({f.n_state} words, {f.n_exc} handlers): {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
