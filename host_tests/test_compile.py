"""tools/compile.py: which .mpy a board loads, and the firmware compiled for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import compile as fwcompile
from tools.compile import Unloadable, bytecode_option, mpy_of_version


def test_boards_that_load_what_mpy_cross_1_29_emits_need_no_option() -> None:
    assert bytecode_option(6 | 3 << 8 | 10 << 10, "1.24.1") == []


@pytest.mark.parametrize(("mpy", "option"), [(6 | 2 << 8, "6.2"), (6 | 1 << 8, "6.1"), (6, "6")])
def test_older_v6_boards_get_the_bytecode_version_they_load(mpy: int, option: str) -> None:
    assert bytecode_option(mpy, "1.20") == ["-b", option]


def test_a_board_without_sys_implementation_mpy_is_judged_by_its_release() -> None:
    assert bytecode_option(mpy_of_version((1, 22, 2)), "1.22.2") == ["-b", "6.2"]
    assert mpy_of_version((1, 18)) is None


@pytest.mark.parametrize(
    ("mpy", "version", "says"),
    [
        (5, "1.18", "older than 1.19 .* written for 1.22 or newer"),
        (None, "1.17", "older than 1.19"),
        (7 | 0 << 8, "2.0", "update mpy-cross"),
    ],
)
def test_boards_whose_mpy_cannot_be_made_are_refused(mpy: int | None, version: str, says: str):
    with pytest.raises(Unloadable, match=says):
        bytecode_option(mpy, version)


@pytest.mark.slow
@pytest.mark.parametrize("options", [[], ["-b", "6.2"]])
def test_the_firmware_is_bytecode_only_so_any_architecture_loads_it(
    tmp_path: Path, options: list[str]
) -> None:
    """Why flash checks no architecture or sub-version: no module has native code, so the header
    names neither (its third byte is zero) and any v6 board loads it."""
    files = fwcompile.compile_firmware("xtensawin", tmp_path, options=options)
    assert files
    for f in files:
        assert f.read_bytes()[:3] == b"M\x06\x00", f.name


@pytest.mark.slow
def test_without_line_numbers_every_module_is_smaller(tmp_path: Path) -> None:
    """make flash NOLINES=1: every module has functions, so every one loses its line table."""
    default = fwcompile.compile_firmware("armv6m", tmp_path / "default")
    lean = fwcompile.compile_firmware(
        "armv6m", tmp_path / "lean", options=[fwcompile.NO_LINE_NUMBERS]
    )
    sizes = {f.name: f.stat().st_size for f in default}
    assert sorted(f.name for f in lean) == sorted(sizes)
    assert all(f.stat().st_size < sizes[f.name] for f in lean)


def test_a_module_names_its_source_as_the_file_the_board_has(tmp_path: Path) -> None:
    """One interned name per module, not two: a traceback names firmware/x.mpy, which is also the
    module's __file__, with the source's line numbers."""
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    (src / "boom.py").write_text("\ndef go():\n    raise ValueError('boom')\n")
    fwcompile.compile_firmware("xtensawin", tmp_path / "board", src=src)
    code = (
        "import sys\nfrom firmware import boom\nprint(boom.__file__)\n"
        "try:\n    boom.go()\nexcept ValueError as e:\n    sys.print_exception(e)\n"
    )
    micropython = Path(sys.executable).parent / "micropython"
    done = subprocess.run(
        [str(micropython), "-c", code],
        cwd=tmp_path / "board",
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.splitlines()[0] == "firmware/boom.mpy"
    assert 'File "firmware/boom.mpy", line 3, in go' in done.stdout
