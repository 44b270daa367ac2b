"""Updates over the air across many boots and boards: a power cut at 20 points spread over the
download, the switch and the first boot, each time followed by a power-on that must come back
running one whole version (the heavy part: make test-ota, which .ci/run runs too); and ten boards
updated by one `make ota DEVICE=all` (in make test)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from host_tests.mqtt_helpers import VBOARD_MARKS, no_traceback
from host_tests.test_ota_vboard import KEY, firmware_files, make_board, runtime_mpy, source
from tools import ota
from tools.vboard import VirtualBoard, layout
from tools.watcher import Watcher

pytestmark = VBOARD_MARKS
BOOT_S = 30
TRIAL_S = 8

# Where the power is cut: after the n-th piece of the download; a few milliseconds after the
# switch's first console line (the copy of the old firmware and the renames take about that
# long); at console lines of the first boot on the new firmware, from the switch to the commit.
DOWNLOAD = [1, 3, 6, 12, 20, 30, 45, 60]
SWITCH_MS = [0, 2, 5, 10, 20, 40]
FIRST_BOOT = [
    r"^update: switched to",
    r"^boot: sensornode 1\.0\.\d+ on",
    r"^update: 1\.0\.\d+ on trial",
    r"^wifi: joined",
    r"^mqtt: connected to",
    r"passed its trial",
]
POINTS = (
    [("download", n) for n in DOWNLOAD]
    + [("switch", ms) for ms in SWITCH_MS]
    + [("first boot", p) for p in FIRST_BOOT]
)


def offer(w: Watcher, device: str, blobs: list[bytes], board: VirtualBoard, stop: int | None):
    """Serves the update; cuts the power after `stop` pieces. Returns when the node has it all
    (or the power is cut)."""
    base = f"sensornode/{device}"
    mark = w.inbox.mark()
    w.publish(f"{base}/cmd", json.dumps({"cmd": "update", "value": len(blobs[0])}))
    served = 0
    while True:
        i, msg = w.inbox.wait(None, lambda m: True, 30, mark)
        mark = i + 1
        if msg.topic == f"{base}/ota/want":
            if served == stop:
                board.kill()
                return
            answer = ota.piece(blobs, msg.payload)
            assert answer is not None
            w.client.publish(f"{base}/ota", answer, qos=1)
            served += 1
        elif msg.topic == f"{base}/event" and msg.json().get("event") == "update":
            assert msg.json()["ok"], msg.json()
            if "downloaded" in msg.json()["detail"]:
                return


def settle(board: VirtualBoard, since: int) -> None:
    """Powered on again: up, online, and nothing left of an update on trial or half done."""
    board.start()
    board.wait_for(r"^mqtt: connected to", BOOT_S, since=since)
    deadline = time.monotonic() + TRIAL_S + BOOT_S
    while (board.fs / "ota" / "state").exists():
        assert time.monotonic() < deadline, "an update still pending after its trial"
        time.sleep(0.2)


@pytest.mark.fleet
def test_a_power_cut_at_20_points_of_an_update_leaves_a_board_running_one_whole_version(
    tmp_path: Path, broker: tuple[str, int]
) -> None:
    assert len(POINTS) == 20
    mpy = runtime_mpy()
    outcomes = []
    with make_board(tmp_path, broker, "0000000f1001") as board:
        board.wait_for(r"^mqtt: connected to", BOOT_S)
        w = Watcher(broker, [board.topic("ota/want"), board.topic("event")])
        try:
            for n, (phase, where) in enumerate(POINTS):
                version = f"1.0.{n}"
                files = ota.build(source(tmp_path, version), mpy)
                text = ota.manifest(
                    files, version, mpy, KEY.encode(), counter=n + 1, trial_s=TRIAL_S, force=True
                )
                new = dict(files)
                old = firmware_files(board.fs)
                mark = len(board.console)
                if phase == "download":
                    offer(w, board.device_id, [text, *new.values()], board, int(where))
                else:
                    offer(w, board.device_id, [text, *new.values()], board, None)
                    if phase == "switch":
                        board.wait_for(r"^update: verified update waiting", BOOT_S, since=mark)
                        time.sleep(int(where) / 1000)
                    else:
                        board.wait_for(str(where), BOOT_S + TRIAL_S, since=mark)
                    board.kill()
                settle(board, len(board.console))
                now = firmware_files(board.fs)
                assert now in (old, new), f"{phase} {where}: a mix of two versions"
                ran = [m for m in board.console[mark:] if m.startswith("boot: sensornode ")]
                shown = ran[-1].split()[2]
                assert (now == new) == (shown == version), (phase, where, shown)
                outcomes.append(f"{phase} {where}: {'new' if now == new else 'old'}")
        finally:
            w.close()
        no_traceback(board)
    print("\n".join(outcomes))
    assert any(o.endswith("new") for o in outcomes) and any(o.endswith("old") for o in outcomes)


# -- a fleet --------------------------------------------------------------------------------------


@contextlib.contextmanager
def fleet(tmp: Path, broker: tuple[str, int], n: int) -> Iterator[list[VirtualBoard]]:
    boards = [make_board(tmp, broker, f"0000000f2{i:03d}") for i in range(n)]
    with contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda b: stack.enter_context(b), boards))
        for b in boards:
            b.wait_for(r"^mqtt: connected to", 60)
        yield boards


def test_ten_boards_are_updated_by_one_make_ota_device_all(
    tmp_path: Path, broker: tuple[str, int]
) -> None:
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"ota_key": KEY}))
    src = source(tmp_path, "0.2.0")
    with fleet(tmp_path, broker, 10) as boards:
        started = time.monotonic()
        done = subprocess.run(
            ["make", "--no-print-directory", "ota", "DEVICE=all", f"BROKER=127.0.0.1:{broker[1]}"]
            + [f"SECRETS={secrets}", f"TRIAL={TRIAL_S}", f"OTA_SRC={src}"],
            cwd=layout.ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "MAKEFLAGS": ""},
        )
        took = time.monotonic() - started
        print(done.stdout[-3000:], done.stderr[-2000:], f"took {took:.1f} s", file=sys.stderr)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip().splitlines()[-1] == "10 of 10 boards updated"
        for b in boards:
            b.wait_for(r"^update: 0\.2\.0 passed its trial", 5)
            assert f"{b.device_id}  0.1.0  0.2.0" in done.stdout
            no_traceback(b)
