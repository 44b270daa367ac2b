"""Updates over the air on virtual boards: the unmodified firmware on the MicroPython runtime,
Mosquitto (or amqtt) on 127.0.0.1, and tools/ota.py as `make ota` runs it.

A good update (the heartbeat's version changes, readings go on, the outbox is flushed first, a
replay of its manifest is refused); a build that raises at import and one that hangs before
coming online, both rolled back by the board itself; a wrong HMAC, a file whose hash does not
match and a truncated piece, refused with an event. The power cuts at 20 points and the fleet of
ten are in test_ota_fleet.py (make test-ota).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from host_tests.mqtt_helpers import VBOARD_MARKS, no_traceback
from tools import ota
from tools.vboard import VirtualBoard, layout
from tools.vboard.supervisor import MICROPYTHON
from tools.watcher import Watcher

pytestmark = VBOARD_MARKS
KEY = "the fleet's own update key"
BOOT_S = 30
TRIAL_S = 8


def source(tmp: Path, version: str, app_head: str = "") -> Path:
    """A firmware tree like this repository's, at `version`, with `app_head` run at the top of
    firmware/app.py (a bug to ship)."""
    src = tmp / f"src-{version}"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(layout.ROOT / "firmware", src / "firmware")
    for name in ("boot.py", "main.py"):
        shutil.copy2(layout.ROOT / name, src / name)
    (src / "firmware" / "version.py").write_text(f'VERSION = "{version}"\n')
    app = src / "firmware" / "app.py"
    app.write_text(app_head + app.read_text())
    return src


def runtime_mpy() -> int:
    """sys.implementation._mpy of the board's runtime, as its heartbeat says it."""
    done = subprocess.run(
        [str(MICROPYTHON), "-c", "import sys; print(sys.implementation._mpy)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def make_board(tmp: Path, broker: tuple[str, int], uid: str, **kw: Any) -> VirtualBoard:
    return VirtualBoard(
        broker=broker,
        uid=uid,
        workdir=tmp / uid,
        secrets={"ota_key": KEY},
        config={"interval_s": 0.5},
        **kw,
    )


def firmware_files(fs: Path) -> dict[str, bytes]:
    names = ["boot.py", "main.py"] + [
        f"firmware/{p.name}" for p in sorted((fs / "firmware").iterdir())
    ]
    return {n: (fs / n).read_bytes() for n in names}


def update(broker: tuple[str, int], board: VirtualBoard, src: Path, **kw: Any) -> ota.Board:
    with open("/dev/null", "w") as quiet:
        [result] = ota.run(broker, board.device_id, KEY.encode(), src=src, out=quiet, **kw)
    return result


def serve(
    broker: tuple[str, int],
    device: str,
    blobs: list[bytes],
    tamper: Callable[[int, int, bytes], bytes] = lambda i, o, b: b,
) -> dict[str, Any]:
    """Offers `blobs` as make ota would and answers every request, through `tamper`; returns
    the node's update event that ends it (ok false: refused; ok true: downloaded)."""
    base = f"sensornode/{device}"
    w = Watcher(broker, [f"{base}/ota/want", f"{base}/event"])
    try:
        mark = w.inbox.mark()
        w.publish(f"{base}/cmd", json.dumps({"cmd": "update", "value": len(blobs[0])}))
        while True:
            i, msg = w.inbox.wait(None, lambda m: True, 30, mark)
            mark = i + 1
            if msg.topic.endswith("/ota/want"):
                answer = ota.piece(blobs, msg.payload)
                assert answer is not None
                index, offset = ota.HEADER.unpack_from(answer)
                body = tamper(index, offset, answer[ota.HEADER.size :])
                w.client.publish(f"{base}/ota", answer[: ota.HEADER.size] + body, qos=1)
            elif msg.json().get("event") == "update":
                doc = msg.json()
                if not doc["ok"] or "downloaded" in doc["detail"]:
                    return doc
    finally:
        w.close()


def test_an_update_changes_the_version_keeps_every_reading_and_refuses_its_replay(
    tmp_path: Path, broker: tuple[str, int]
) -> None:
    with make_board(tmp_path, broker, "0000000f0001") as board:
        board.wait_for(r"^mqtt: connected to", BOOT_S)
        watch = Watcher(broker, [board.topic("readings"), board.topic("heartbeat")])
        try:
            result = update(broker, board, source(tmp_path, "0.2.0"), trial_s=TRIAL_S)
            assert (result.state, result.old, result.new) == ("done", "0.1.0", "0.2.0")
            assert result.detail == "0.2.0 passed its trial: it is permanent"
            watch.inbox.wait(board.topic("heartbeat"), lambda m: m.json()["version"] == "0.2.0")
            mark = watch.inbox.mark()
            watch.inbox.wait(board.topic("readings"), since=mark)
            seqs = [m.json()["seq"] for m in watch.inbox.on(board.topic("readings"))]
        finally:
            watch.close()
        first_boot = seqs[: seqs.index(1, 1)]  # the update's reboot starts seq again at 1
        assert first_boot == list(range(1, len(first_boot) + 1))  # none lost in the switch
        assert board.restarts == 1
        assert not (board.fs / "ota").exists() or not (board.fs / "ota" / "state").exists()
        assert all(p.suffix == ".mpy" for p in (board.fs / "firmware").iterdir())
        board.wait_for(r"^update: 0\.2\.0 passed its trial: it is permanent$", BOOT_S)

        replay = serve(broker, board.device_id, result.blobs)
        assert replay["ok"] is False
        assert "is not newer than this board's" in replay["detail"]
        assert "(a replay?)" in replay["detail"]
        no_traceback(board)


def rolled_back(
    tmp: Path, broker: tuple[str, int], uid: str, bug: str, trial_s: int
) -> tuple[str, VirtualBoard]:
    tmp.mkdir()
    with make_board(tmp, broker, uid) as board:
        board.wait_for(r"^mqtt: connected to", BOOT_S)
        before = firmware_files(board.fs)
        mark = len(board.console)
        result = update(broker, board, source(tmp, "0.2.0", bug), trial_s=trial_s, timeout_s=90)
        assert result.state == "failed", "\n".join(board.console[mark:])
        restored = board.wait_for(r"^update: previous firmware restored", BOOT_S, since=mark)
        assert restored
        board.wait_for(r"^boot: sensornode 0\.1\.0 on esp32", BOOT_S, since=mark)
        assert firmware_files(board.fs) == before  # the old firmware, byte for byte
        assert not (board.fs / "ota" / "state").exists()
        return result.detail, board


def test_builds_that_raise_at_import_or_hang_before_online_are_rolled_back(
    tmp_path: Path, broker: tuple[str, int]
) -> None:
    # Two boards at once: the one waits out the crash handler's pause, the other its trial.
    raising = 'raise RuntimeError("broken build")\n'
    hanging = "import time\nwhile True:\n    time.sleep_ms(50)\n"
    with ThreadPoolExecutor(2) as pool:
        crash = pool.submit(rolled_back, tmp_path / "a", broker, "0000000f0002", raising, 8)
        hang = pool.submit(rolled_back, tmp_path / "b", broker, "0000000f0003", hanging, 4)
        (crash_said, crash_board), (hang_said, hang_board) = crash.result(), hang.result()

    assert crash_said == "0.2.0 failed on trial: RuntimeError at start: broken build"
    console = "\n".join(crash_board.console)
    assert "update: previous firmware restored: " + crash_said in console
    assert "update: " + crash_said in console  # said again at the next connect

    assert hang_said == "0.2.0 hung on trial (watchdog reset)"
    assert "vboard: reset (watchdog)" in hang_board.console


def test_a_wrong_key_a_bad_file_and_a_truncated_piece_are_refused_with_an_event(
    tmp_path: Path, broker: tuple[str, int]
) -> None:
    with make_board(tmp_path, broker, "0000000f0004") as board:
        board.wait_for(r"^mqtt: connected to", BOOT_S)
        mpy = runtime_mpy()
        files = ota.build(source(tmp_path, "0.2.0"), mpy)

        def blobs(key: str, counter: int) -> list[bytes]:
            text = ota.manifest(files, "0.2.0", mpy, key.encode(), counter=counter)
            return [text] + [d for _, d in files]

        dev = board.device_id
        wrong = serve(broker, dev, blobs("somebody else's key!", 1))
        assert wrong == {
            "event": "update",
            "ok": False,
            "detail": "refused: manifest refused: its HMAC is wrong (another ota_key?)",
        }

        def flip(index: int, offset: int, body: bytes) -> bytes:
            return body[:-1] + bytes([body[-1] ^ 1]) if index == 2 else body

        bad = serve(broker, dev, blobs(KEY, 2), flip)
        assert bad["ok"] is False and bad["detail"].startswith("refused: main.py: sha256 ")

        def cut(index: int, offset: int, body: bytes) -> bytes:
            return body[:-100] if index == 3 else body

        short = serve(broker, dev, blobs(KEY, 3), cut)
        assert short["ok"] is False
        assert short["detail"].startswith("refused: piece of file 3 at 0: ")
        assert short["detail"].endswith(" were asked for")
        assert firmware_files(board.fs)["main.py"] == (layout.ROOT / "main.py").read_bytes()
        no_traceback(board)
