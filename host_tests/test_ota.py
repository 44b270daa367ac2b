"""Updates over the air, the node's side under CPython: the signed manifest, pieces streamed to
flash with their hashes (firmware/ota.py), and the journaled switch, trial and rollback
(firmware/otaboot.py), including a power cut at every filesystem step of the switch."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pytest

from firmware import atomic, ota, otaboot
from tools import ota as host

ROOT = Path(__file__).resolve().parent.parent

KEY = b"a key of sixteen or more"
MPY = 0xB06


def files(version: str = "0.2.0") -> list[tuple[str, bytes]]:
    return [
        ("boot.py", b"# boot " + version.encode() + b"\n"),
        ("main.py", b"# main " + version.encode() + b"\n"),
        ("firmware/otaboot.mpy", b"M" + os.urandom(3000)),
        ("firmware/app.mpy", b"M" + version.encode() * 700),
    ]


def make(version: str = "0.2.0", counter: int = 10, *, key: bytes = KEY, force: bool = False):
    fs = files(version)
    text = host.manifest(fs, version, MPY, key, counter=counter, trial_s=30, force=force)
    return [text] + [d for _, d in fs], fs


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A board's filesystem with firmware 0.1.0 (sources, as flashed), as the cwd."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "firmware").mkdir()
    (tmp_path / "boot.py").write_text("# boot 0.1.0\n")
    (tmp_path / "main.py").write_text("# main 0.1.0\n")
    (tmp_path / "firmware" / "app.py").write_text("# app 0.1.0\n")
    (tmp_path / "firmware" / "otaboot.py").write_text("# otaboot 0.1.0\n")
    (tmp_path / "firmware" / "gone.py").write_text("# a module 0.2.0 no longer has\n")
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not str(p.relative_to(root)).startswith("ota")
    }


def download(blobs: list[bytes], *, running: str = "0.1.0", stop_after: int | None = None):
    """Runs an Update against these blobs as the host would answer; returns it."""
    up = ota.Update(KEY.decode(), running, MPY, lambda t, m: None)
    want = up.start(len(blobs[0]))
    served = 0
    while want is not None:
        if stop_after is not None and served == stop_after:
            return up
        answer = host.piece(blobs, want)
        assert answer is not None
        want = up.piece(answer)
        served += 1
    return up


def log_lines() -> tuple[list[str], object]:
    lines: list[str] = []
    return lines, lambda tag, msg: lines.append(f"{tag}: {msg}")


# -- HMAC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [b"k" * 16, b"k" * 64, b"k" * 65, b"\xff" * 128])
def test_the_streamed_hmac_is_hmac_sha256(key: bytes) -> None:
    data = os.urandom(3000)
    mac = ota.Hmac(key)
    for i in range(0, len(data), 700):
        mac.update(data[i : i + 700])
    assert mac.hexdigest() == hmac.new(key, data, hashlib.sha256).hexdigest()


# -- downloading --------------------------------------------------------------------------------


def test_a_good_update_is_staged_verified_and_left_ready_for_the_next_boot(board: Path) -> None:
    blobs, fs = make()
    up = download(blobs)
    assert up.done and otaboot.state() == ["ready"]
    for i, (_, data) in enumerate(fs, start=1):
        assert (board / "ota" / "new" / str(i)).read_bytes() == data
    assert atomic.read(ota.SEEN) == b"10"
    assert snapshot(board)["boot.py"] == b"# boot 0.1.0\n"  # nothing switched yet


def test_a_manifest_signed_with_another_key_is_refused(board: Path) -> None:
    blobs, _ = make(key=b"not the boards key!!")
    with pytest.raises(ota.UpdateError, match="HMAC is wrong"):
        download(blobs)
    assert otaboot.state() == []


def test_a_manifest_changed_after_signing_is_refused(board: Path) -> None:
    blobs, _ = make()
    blobs[0] = blobs[0].replace(b"version 0.2.0", b"version 9.2.0")
    with pytest.raises(ota.UpdateError, match="HMAC is wrong"):
        download(blobs)


def test_a_file_whose_hash_does_not_match_is_refused_and_dropped(board: Path) -> None:
    blobs, _ = make()
    blobs[3] = blobs[3][:-1] + b"X"
    with pytest.raises(ota.UpdateError, match=r"firmware/otaboot.mpy: sha256 .* is not the"):
        download(blobs)
    assert not (board / "ota" / "new" / "3").exists() and otaboot.state() == []


def test_a_truncated_piece_is_refused(board: Path) -> None:
    blobs, _ = make()
    up = ota.Update(KEY.decode(), "0.1.0", MPY, lambda t, m: None)
    want = up.start(len(blobs[0]))
    answer = host.piece(blobs, want)
    assert answer is not None
    asked = len(answer) - 6
    with pytest.raises(ota.UpdateError) as refused:
        up.piece(answer[:-10])
    assert str(refused.value) == (
        f"piece of file 0 at 0: {asked - 10} bytes where {asked} were asked for"
    )


def test_a_replayed_manifest_is_refused_even_forced(board: Path) -> None:
    blobs, _ = make(counter=10)
    download(blobs)
    os.remove(otaboot.STATE)  # as after the switch and the trial
    blobs, _ = make("0.3.0", counter=10, force=True)
    with pytest.raises(ota.UpdateError, match="counter 10 is not newer than this board's 10"):
        download(blobs, running="0.2.0")


def test_an_older_version_is_refused_unless_forced(board: Path) -> None:
    blobs, _ = make("0.0.9", counter=11)
    with pytest.raises(ota.UpdateError, match=r"version 0.0.9 is not newer than the running"):
        download(blobs)
    blobs, _ = make("0.0.9", counter=12, force=True)
    assert download(blobs).done


def test_a_manifest_for_another_mpy_is_refused(board: Path) -> None:
    fs = files()
    text = host.manifest(fs, "0.2.0", 0x2806, KEY, counter=5)
    with pytest.raises(ota.UpdateError, match="built for .mpy 10246, this board loads 2822"):
        download([text] + [d for _, d in fs])


def test_a_manifest_that_writes_outside_the_firmware_is_refused(board: Path) -> None:
    fs = [*files(), ("secrets.json", b"{}")]
    text = host.manifest(fs, "0.2.0", MPY, KEY, counter=5)
    with pytest.raises(ota.UpdateError, match="names 'secrets.json', which an update may not"):
        download([text] + [d for _, d in fs])


@pytest.mark.parametrize("counter", [10, 11])
def test_an_interrupted_download_resumes_from_what_it_has(board: Path, counter: int) -> None:
    blobs, fs = make()
    download(blobs, stop_after=5)  # the manifest, boot.py, main.py and 2 KB of file 3
    # the same manifest offered again, or the same files in a newer one (make ota run again)
    text = host.manifest(fs, "0.2.0", MPY, KEY, counter=counter, trial_s=30)
    blobs = [text] + blobs[1:]
    up = ota.Update(KEY.decode(), "0.1.0", MPY, lambda t, m: None)
    want = up.start(len(blobs[0]))
    asked = []
    while want is not None:
        asked.append(want)
        answer = host.piece(blobs, want)
        assert answer is not None
        want = up.piece(answer)
    files_asked = [tuple(int(w) for w in a.split()[:2]) for a in asked if not a.startswith(b"0 ")]
    assert files_asked[0] == (3, 2048)  # file 3 from where the cut left it
    assert up.done


# -- the switch, the trial and the rollback -------------------------------------------------------


def old_files() -> dict[str, bytes]:
    return {
        "boot.py": b"# boot 0.1.0\n",
        "main.py": b"# main 0.1.0\n",
        "firmware/app.py": b"# app 0.1.0\n",
        "firmware/otaboot.py": b"# otaboot 0.1.0\n",
        "firmware/gone.py": b"# a module 0.2.0 no longer has\n",
    }


def test_the_next_boot_switches_to_the_new_firmware_on_trial(board: Path) -> None:
    blobs, fs = make()
    download(blobs)
    lines, log = log_lines()
    assert otaboot.boot(log, "reset") == 30
    assert snapshot(board) == dict(fs)
    assert otaboot.state() == ["trial", "1", "30", "0.2.0"]
    assert lines[-1] == "update: switched to 0.2.0; on trial for 30 s"


def test_a_good_trial_makes_the_new_firmware_permanent(board: Path) -> None:
    blobs, fs = make()
    download(blobs)
    _, log = log_lines()
    otaboot.boot(log, "reset")
    assert otaboot.commit(log) == "0.2.0 passed its trial: it is permanent"
    assert otaboot.boot(log, "reset") is None
    assert snapshot(board) == dict(fs) and not (board / "ota" / "old").exists()


@pytest.mark.parametrize(
    ("why", "cause", "said"),
    [
        (
            "ImportError at start: boom",
            "reset",
            "0.2.0 failed on trial: ImportError at start: boom",
        ),
        (None, "watchdog", "0.2.0 hung on trial (watchdog reset)"),
        (None, "reset", "0.2.0 did not come online with readings on trial (reset: reset)"),
    ],
)
def test_a_second_boot_on_trial_restores_the_previous_firmware_and_says_why(
    board: Path, why: str | None, cause: str, said: str
) -> None:
    blobs, _ = make()
    download(blobs)
    lines, log = log_lines()
    otaboot.boot(log, "reset")
    if why:
        otaboot.note(why)
    assert otaboot.boot(log, cause) is None
    assert snapshot(board) == old_files()
    assert otaboot.result() == (False, said)
    assert otaboot.result() is None  # said once
    assert lines[-1] == "update: previous firmware restored: " + said


class PowerCut(Exception):
    pass


def cut_after(monkeypatch: pytest.MonkeyPatch, n: int) -> list[int]:
    """Every filesystem change (rename, remove, mkdir, rmdir, a write's open) counts one; the
    n-th never happens: the power is cut just before it."""
    count = [0]

    def counting(real):
        def step(*args, **kw):
            count[0] += 1
            if count[0] == n:
                raise PowerCut
            return real(*args, **kw)

        return step

    for name in ("rename", "remove", "mkdir", "rmdir"):
        monkeypatch.setattr(os, name, counting(getattr(os, name)))
    real_open = open

    def opening(path, mode="r", *args, **kw):
        if "w" in mode or "a" in mode:
            return counting(real_open)(path, mode, *args, **kw)
        return real_open(path, mode, *args, **kw)

    monkeypatch.setitem(otaboot.__dict__, "open", opening)
    monkeypatch.setitem(atomic.__dict__, "open", opening)
    return count


def steps_of(board: Path, monkeypatch: pytest.MonkeyPatch, action) -> int:
    with monkeypatch.context() as m:
        count = cut_after(m, 10**9)
        action()
    return count[0]


@pytest.mark.parametrize("trial_ok", [True, False])
def test_a_power_cut_at_any_step_of_switch_trial_or_rollback_leaves_old_or_new(
    board: Path, monkeypatch: pytest.MonkeyPatch, trial_ok: bool
) -> None:
    # The life of an update after its download, cut before each filesystem step in turn. After
    # each cut the board boots again and again (the trial passing or failing as the case says)
    # until nothing is left to do; whatever the firmware would run after a boot is one version.
    blobs, fs = make()
    new, old = dict(fs), old_files()
    _, log = log_lines()

    def power_on() -> None:
        otaboot.boot(log, "reset")
        assert snapshot(board) in (new, old), "a boot left a mix of versions"
        if otaboot.state()[:1] == ["trial"] and trial_ok:
            otaboot.commit(log)

    def fresh() -> None:
        for path in sorted(board.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        for path, data in old.items():
            (board / path).parent.mkdir(parents=True, exist_ok=True)
            (board / path).write_bytes(data)
        download(blobs)

    fresh()
    with monkeypatch.context() as m:
        count = cut_after(m, 10**9)
        power_on()
        power_on()
    total = count[0]
    assert total > 20
    outcomes: list[str] = []
    for n in range(1, total + 1):
        fresh()
        with monkeypatch.context() as m:
            cut_after(m, n)
            try:
                power_on()
                power_on()
            except PowerCut:
                pass
        for _ in range(3):
            power_on()
        assert otaboot.state() == []
        ended = snapshot(board)
        assert ended in (new, old), f"cut before step {n} of {total}"
        outcomes.append("new" if ended == new else "old")
    # A cut before the trial is over counts as a failed trial (a reset on trial), so a good
    # update cut early ends on the old firmware; cut after its commit, on the new.
    if trial_ok:
        assert outcomes[-1] == "new" and "old" in outcomes
    else:
        assert set(outcomes) == {"old"}


# -- the node's side of the command -------------------------------------------------------------


@pytest.mark.slow
def test_an_update_without_line_numbers_has_the_same_files_each_smaller() -> None:
    # make ota NOLINES=1: as make flash NOLINES=1 compiles; boot.py and main.py stay source.
    mpy = 6 | 3 << 8
    default = dict(host.build(ROOT, mpy))
    lean = dict(host.build(ROOT, mpy, no_line_numbers=True))
    assert lean.keys() == default.keys()
    for name in ("boot.py", "main.py"):
        assert lean.pop(name) == default.pop(name)
    assert all(len(lean[name]) < len(default[name]) for name in default)


def test_a_node_without_an_ota_key_refuses_every_update(umqtt, clock, log) -> None:
    from test_node import command, make_node, run, sent

    node = make_node(umqtt, clock, log)
    run(node, clock, 100)
    command(umqtt, b'{"cmd": "update", "value": 500, "id": "u1"}')
    run(node, clock, 100)
    assert sent(umqtt, "event")[-1] == {
        "event": "update",
        "ok": False,
        "detail": "updates are off: secrets.json has no ota_key",
        "id": "u1",
    }
    assert node.update is None and not [p for p in umqtt.broker.published if "/ota" in str(p[0])]


# -- the loop's side of a trial (firmware/trial.py) ---------------------------------------------


def test_a_board_never_offered_an_update_starts_its_loop_without_the_update_code(
    board: Path, monkeypatch: pytest.MonkeyPatch, umqtt, clock, log
) -> None:
    import sys

    from test_node import make_node

    import firmware
    from firmware import trial

    monkeypatch.delitem(sys.modules, "firmware.otaboot")
    monkeypatch.delattr(firmware, "otaboot")
    node = make_node(umqtt, clock, log)
    assert trial.begin(node, None) == (None, None)
    assert node.news is None
    assert "firmware.otaboot" not in sys.modules and "firmware.trial" not in sys.modules


def test_a_trial_ends_when_readings_went_out_and_the_update_says_it_is_permanent(
    board: Path, umqtt, clock, log
) -> None:
    import sys

    from test_node import make_node, run, sent

    from firmware import trial

    blobs, _ = make()
    download(blobs)
    otaboot.boot(log_lines()[1], "reset")
    node = make_node(umqtt, clock, log)
    deadline, _ = trial.begin(node, "watchdog")
    assert deadline is not None and "firmware.trial" in sys.modules
    run(node, clock, 100)  # online, a reading out
    assert trial.step(deadline, node, clock.now) is None
    assert sent(umqtt, "event")[-1] == {
        "event": "update",
        "ok": True,
        "detail": "0.2.0 passed its trial: it is permanent",
    }
    assert otaboot.state() == [] and "firmware.trial" not in sys.modules
