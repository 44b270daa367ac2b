"""A boot on unchanged files takes config.py's result and its messages from validated.json
instead of loading config.py (firmware/validated.py); any change checks again."""

import json
from pathlib import Path

import pytest

from firmware import config, validated


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A board's root: config.json, secrets.json and a firmware folder, as the working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "node.mpy").write_bytes(b"M\x06 bytecode")
    (tmp_path / "config.json").write_text(
        json.dumps({"mqtt": {"host": "10.0.0.5"}, "interval_s": 0, "colour": "red"})
    )
    (tmp_path / "secrets.json").write_text(
        json.dumps({"wifi": [{"ssid": "home", "password": "hunter22"}]})
    )
    return tmp_path


class Checks:
    """config.load as validated.load calls it, counting its runs."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, say):
        self.runs += 1
        return config.load(say)


def boot(check: Checks) -> tuple[tuple, list[tuple[str, str]]]:
    said: list[tuple[str, str]] = []
    found = validated.load(lambda tag, msg: said.append((tag, msg)), check)
    return found, said


def test_a_second_boot_on_the_same_files_says_and_returns_what_the_check_did(board: Path) -> None:
    check = Checks()
    first, said_first = boot(check)
    again, said_again = boot(check)
    assert check.runs == 1
    assert again == first
    assert said_again == said_first
    assert any("interval_s = 0" in msg for _, msg in said_first)  # a problem, said both times
    assert first[0]["mqtt"]["host"] == "10.0.0.5"
    assert first[1]["wifi"] == [{"ssid": "home", "password": "hunter22"}]
    assert first[2] >= 2  # interval_s and the unknown key


@pytest.mark.parametrize(
    "change",
    [
        lambda b: (b / "config.json").write_text('{"mqtt": {"host": "10.0.0.6"}}'),
        lambda b: (b / "secrets.json").unlink(),
        lambda b: (b / "firmware" / "node.mpy").write_bytes(b"M\x06 other bytecode"),
        lambda b: (b / "firmware" / "config.mpy").write_bytes(b"M\x06 new rules"),
        lambda b: (b / "validated.json").write_text('{"key": "cut sh'),
    ],
    ids=["config.json", "secrets.json gone", "firmware file", "new firmware file", "cut short"],
)
def test_any_change_of_the_files_or_the_firmware_checks_again(board: Path, change) -> None:
    check = Checks()
    boot(check)
    change(board)
    found, _ = boot(check)
    assert check.runs == 2
    assert boot(check)[0] == found  # and the new result is kept
    assert check.runs == 2


def test_files_that_cannot_be_kept_still_give_the_check_result(
    board: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(path, data):
        raise OSError(28)  # ENOSPC

    monkeypatch.setattr(validated.atomic, "write", full)
    check = Checks()
    assert boot(check)[0][0]["mqtt"]["host"] == "10.0.0.5"
    boot(check)
    assert check.runs == 2


def test_what_the_kept_result_says_again_names_no_secret(board: Path) -> None:
    password = "too-long-" * 8  # over Wi-Fi's 63 characters: refused, by name only
    (board / "secrets.json").write_text(json.dumps({"wifi": [{"ssid": "x", "password": password}]}))
    boot(Checks())
    _, said = boot(Checks())
    kept = json.loads((board / "validated.json").read_text())
    assert any("(hidden)" in msg for _, msg in said)
    assert password not in json.dumps(kept["said"])
    assert password not in json.dumps(said)
