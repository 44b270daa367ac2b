"""Settings over MQTT on a virtual board, driven by `python -m tools.remote` as a user would:
set, reboot, still set; a bad value refused with the validator's own message; a power cut
during the write leaves the old or the new config.json on the real MicroPython runtime."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from host_tests.mqtt_helpers import VBOARD_MARKS, no_traceback
from tools.vboard import VirtualBoard, layout
from tools.vboard.supervisor import MICROPYTHON

pytestmark = VBOARD_MARKS
BOOT_S = 30


def remote(broker: tuple[str, int], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.remote", *args, "--broker", f"{broker[0]}:{broker[1]}"],
        cwd=layout.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_set_reboot_still_set_and_a_bad_value_is_refused_by_the_validator(
    tmp_path: Path, broker: tuple[str, int]
) -> None:
    with VirtualBoard(broker=broker, uid="0000000d0001", workdir=tmp_path) as board:
        board.wait_for(r"^mqtt: connected to", BOOT_S)
        dev = board.device_id
        done = remote(broker, "set", dev, "interval_s", "0.5")
        assert (done.returncode, done.stdout.strip()) == (
            0,
            "interval_s is now 0.5: applied now and saved in config.json",
        ), done.stderr
        done = remote(broker, "set", dev, "mqtt.keepalive", "12")
        assert done.returncode == 0 and "applied after a reboot" in done.stdout, done.stderr

        bad = remote(broker, "set", dev, "mqtt.port", '"abc"')
        assert bad.returncode == 1
        assert bad.stderr.strip() == (
            f"remote: {dev} refused: mqtt.port = 'abc' is not a whole number from 1 to 65535"
        )

        mark = len(board.console)
        assert remote(broker, "set", dev, "sensors", "[]").returncode == 0
        board.kill()  # a power cut, then power on again
        board.start()
        board.wait_for(r"^mqtt: connected to", BOOT_S, since=mark)
        got = remote(broker, "get", dev)
        assert got.returncode == 0, got.stderr
        running = json.loads(got.stdout)
        assert running["interval_s"] == 0.5
        assert running["mqtt"]["keepalive"] == 12 and running["mqtt"]["port"] == broker[1]
        assert running["sensors"] == []
        assert "password" not in got.stdout and "vboard-pass" not in got.stdout
        one = remote(broker, "get", dev, "mqtt.keepalive")
        assert one.stdout.strip() == "12"
        no_traceback(board)


def test_no_answer_from_a_device_that_is_not_there_says_so(broker: tuple[str, int]) -> None:
    done = remote(broker, "get", "esp32-nobody", "--timeout", "1")
    assert done.returncode == 2
    assert "no answer from esp32-nobody within 1 s" in done.stderr


# settings.store over and over on the real runtime, killed at a random instant each time.
WRITER = """\
import sys
sys.path.insert(0, %(root)r)
from firmware import settings
i = 0
print("ready")
while True:
    i += 1
    settings.store("outbox_size", 1 + i %% 900, lambda t, m: None, %(path)r)
"""


def test_a_power_cut_during_a_settings_write_leaves_the_old_or_the_new_config(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"mqtt": {"host": "10.0.0.5"}, "outbox_size": 1}))
    script = tmp_path / "writer.py"
    script.write_text(WRITER % {"root": str(layout.ROOT), "path": str(path)})
    rng = random.Random(13)
    seen = set()
    for _ in range(20):
        proc = subprocess.Popen(
            [str(MICROPYTHON), str(script)], stdout=subprocess.PIPE, cwd=tmp_path, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.005, 0.1))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        doc = json.loads(path.read_text())  # never half a file
        assert doc["mqtt"] == {"host": "10.0.0.5"}
        assert 1 <= doc["outbox_size"] <= 900
        seen.add(doc["outbox_size"])
    assert len(seen) > 1  # the writer did write between the cuts
