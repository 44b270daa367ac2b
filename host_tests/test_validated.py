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
    assert again[:3] == first[:3]
    assert (first[3], again[3]) == (True, False)  # checked and kept, then taken as kept
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
    assert check.runs == 2 and found[3] is True
    assert boot(check)[0][:3] == found[:3]  # and the new result is kept
    assert check.runs == 2


def test_files_that_cannot_be_kept_still_give_the_check_result(
    board: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(path, data):
        raise OSError(28)  # ENOSPC

    monkeypatch.setattr(validated.atomic, "write", full)
    check = Checks()
    found = boot(check)[0]
    assert found[0]["mqtt"]["host"] == "10.0.0.5"
    assert found[3] is False  # not kept: a restart would only check again
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


class Board:
    """What validated.restart() and restarted() use of firmware/board.py's Board."""

    def __init__(self, cause: str) -> None:
        self.reset_cause = cause


def test_a_restart_after_the_check_keeps_the_reset_cause_for_the_boot_after_it(
    board: Path,
) -> None:
    import machine

    machine.reset_stub()
    said: list[tuple[str, str]] = []
    with pytest.raises(machine.Reset):
        validated.restart(Board("watchdog"), lambda tag, msg: said.append((tag, msg)))
    assert machine.state["soft_resets"] == 1
    assert said == [
        ("boot", "configuration checked and kept; restarting once to run without the checks")
    ]
    after = Board("soft")
    assert validated.restarted(after) is True
    assert after.reset_cause == "watchdog"
    assert validated.restarted(Board("soft")) is False  # the mark is taken once
    assert not (board / validated.RESTARTED).exists()


def test_no_restart_while_an_update_is_on_trial_or_the_cause_cannot_be_kept(
    board: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import machine

    machine.reset_stub()
    (board / "ota").mkdir()
    (board / "ota" / "state").write_text("trial 0 60 1.2.0")
    validated.restart(Board("power on"), lambda tag, msg: None)  # returns: otaboot would roll back
    (board / "ota" / "state").unlink()

    def full(path, data):
        raise OSError(28)  # ENOSPC

    monkeypatch.setattr(validated.atomic, "write", full)
    validated.restart(Board("power on"), lambda tag, msg: None)
    assert machine.state["soft_resets"] == 0
