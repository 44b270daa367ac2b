"""The reading cycle's functions keep their frames off the heap (tools/mpy_frames.py).

A bytecode function whose frame passes 11 words is allocated on the heap at every call and freed
at its return; in the loop that is an allocation, a free and a share of the next collection per
call, and the node's cycle had 27 of them. These are the functions every reading runs through:
each must stay within the limit. Not listed, because they cannot: a function with
`except ... as e` holds two handler entries (6 words) besides its locals (sensors' read,
session's poll and publish, the transport's _wait). umqtt.simple's publish no longer runs:
the socket wrapper writes the node's PUBLISH packets itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.mpy_frames import Frame, compile_frames, read, static_names

ROOT = Path(__file__).resolve().parent.parent

CYCLE = {
    "node": ["step", "_take_reading", "_send", "_flush", "push", "peek", "pop"],
    "sensors": ["sample", "_sample", "_store", "_settle", "due", "_moved", "update"],
    "filter_median": ["update"],
    "payload": ["encode", "_values", "_raw", "_number", "_fixed"],
    "transport": [
        "expect",
        "ready",
        "flush",
        "read",
        "_start",
        "_length",
        "_recv",
        "write",
        "publish",
        "_head",
        "_acked",
        "_timeout",
    ],
    "wifi": ["poll", "due_in"],
}


@pytest.mark.parametrize("module", sorted(CYCLE))
def test_the_cycles_functions_keep_their_frames_off_the_heap(module: str) -> None:
    names = CYCLE[module]
    frames = compile_frames(ROOT / "firmware" / f"{module}.py", static_names(names))
    for name in names:
        found = [f for f in frames if f.name == name]  # every class's method of that name
        assert found, f"{module}.{name}: no such function"
        for f in found:
            assert not f.on_heap, (
                f"{module}.{name}: a {f.size}-byte frame ({f.n_state} words, {f.n_exc} "
                "handlers) goes on the heap at every call; keep it within 11 words (fewer "
                "locals, shallower expressions, the rare path in a method of its own)"
            )


def test_a_frame_past_11_words_is_found_on_the_heap(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "def small(a, b):\n    return a + b\n"
        "def large(a, b, c, d, e, f, g, h, i, j, k, l):\n    return a\n"
        "def handler(a):\n    try:\n        return a()\n    except Exception as e:\n"
        "        return e\n"
    )
    frames = {f.name: f for f in compile_frames(src)}
    assert not frames["small"].on_heap
    assert frames["large"].on_heap and frames["large"].n_state >= 12
    assert frames["handler"].n_exc == 2 and frames["handler"].on_heap


def test_static_names_are_resolved() -> None:
    # `read` and `update` are in MicroPython's own table of names: a .mpy gives their index
    table = static_names(["read", "update", "not_a_static_name"])
    assert sorted(table.values()) == ["read", "update"]


def test_only_mpy_v6_is_read() -> None:
    with pytest.raises(ValueError, match="v6"):
        read(b"M\x05\x00\x1f")
    assert Frame("f", 11, 0).size == 44 and not Frame("f", 11, 0).on_heap
