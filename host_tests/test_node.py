"""The node's step: schedule, sequence numbers, outbox through outages, heartbeat, commands."""

import json
import os
import tempfile
from types import SimpleNamespace

import pytest
from conftest import validated_sensors

from firmware import config, report
from firmware.node import Node, Outbox
from firmware.payload import ReadingEncoder
from firmware.sensors import Slot
from firmware.session import Session, Topics
from firmware.transport import Transport

T = Topics("sensornode", "esp32-a1b2c3", True)  # with the update topics


class FakeWifi:
    def __init__(self):
        self.up = True

    def poll(self, now):
        pass

    def due_in(self, now):
        return 1000 if self.up else 5000

    def rssi(self):
        return -50 if self.up else None

    def ip(self):
        return "10.0.0.7" if self.up else None


class FakeSensors:
    def __init__(self):
        (spec,) = validated_sensors({"type": "sim", "name": "temperature"})
        self.slots = [Slot(spec, 0, 1, None, None)]
        self.keys = ["temperature"]
        self.values = [20.0]
        self.due = [True]
        self.errors = 0
        self.quiet = False  # True: report-on-change has nothing to say

    def sample(self, now):
        self.values[0] += 0.5
        return not self.quiet


class FakeStats:
    reset_cause = "power-on"
    version = "0.1.0"
    mpy = None
    name = "esp32"

    def uid(self):
        return "a1b2c3d4e5f6"

    def __init__(self):
        self.syncs = 0

    def free_heap(self):
        return 100000

    def mac(self):
        return "02:a1:b2:c3:d4:e6"

    def unix_time(self, now):
        return None

    def sync_time(self):
        self.syncs += 1


@pytest.fixture
def node(umqtt, clock, log):
    return make_node(umqtt, clock, log)


def make_node(umqtt, clock, log, qos=1):
    cfg, _ = config.validate(
        {
            "mqtt": {"host": "127.0.0.1", "qos": qos},
            "interval_s": 1,
            "heartbeat_s": 60,
            "outbox_size": 5,
            "ha_discovery": False,
        },
        log,
    )
    transport = Transport(umqtt, T.device, "127.0.0.1", 1883, None, None, 30, clock=clock, log=log)
    session = Session(transport, T, 30, clock, (1000, 1000, lambda b: 0xFFFF), log, "b")
    sensors = FakeSensors()
    node = Node(
        cfg,
        clock,
        FakeWifi(),
        session,
        sensors,
        Outbox(cfg["outbox_size"]),
        ReadingEncoder(sensors.keys, sensors.values, sensors.due),
        FakeStats(),
        log,
    )
    node.config_path = os.path.join(tempfile.mkdtemp(prefix="node-"), "config.json")
    return node


def run(node, clock, ms, step=100):
    for _ in range(ms // step):
        node.step(clock.advance(step))


def sent(umqtt, kind):
    return [json.loads(p[1]) for p in umqtt.broker.published if p[0].endswith("/" + kind)]


def seqs(umqtt):
    return [r["seq"] for r in sent(umqtt, "readings")]


def test_one_reading_per_interval_with_gap_free_seq(node, clock, umqtt):
    run(node, clock, 5000)
    assert seqs(umqtt) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("qos", [0, 1])
def test_readings_are_published_with_the_configured_qos(umqtt, clock, log, qos):
    node = make_node(umqtt, clock, log, qos)
    run(node, clock, 1000)
    assert {p[3] for p in umqtt.broker.published if p[0].endswith("/readings")} == {qos}


def test_readings_taken_while_the_broker_is_down_arrive_in_order(node, clock, umqtt):
    run(node, clock, 1000)
    umqtt.broker.check_error = OSError(-1)
    umqtt.broker.connect_error = OSError(111)
    run(node, clock, 3000)
    umqtt.broker.check_error = umqtt.broker.connect_error = None
    run(node, clock, 2000)
    assert seqs(umqtt) == list(range(1, 8))


def test_readings_taken_while_wifi_is_down_arrive_in_order(node, clock, umqtt, log):
    run(node, clock, 1000)
    node.wifi.up = False
    run(node, clock, 3000)
    node.wifi.up = True
    run(node, clock, 2000)
    assert seqs(umqtt) == list(range(1, 8)) and "Wi-Fi is down" in log.text()


def test_outbox_overflow_drops_the_oldest_and_the_heartbeat_counts_it(node, clock, umqtt):
    node.wifi.up = False
    run(node, clock, 7000)  # 8 readings into an outbox of 5
    node.wifi.up = True
    run(node, clock, 500)
    beats = sent(umqtt, "heartbeat")
    assert seqs(umqtt) == [4, 5, 6, 7, 8] and beats[-1]["dropped"] == 3


def test_a_broker_slow_with_every_puback_gets_about_a_second_of_flushing_per_step(
    node, clock, umqtt
):
    # each PUBACK comes late but within its deadline: ten in a row would keep the loop (and the
    # watchdog's feeding) away for ten deadlines
    node.wifi.up = False
    run(node, clock, 4000)  # 5 readings wait in the outbox
    node.wifi.up = True
    publish = node.session.transport.publish

    def slow(*args, **kw):
        publish(*args, **kw)
        clock.advance(900)

    node.session.transport.publish = slow
    node.step(clock.advance(100))  # 900 ms, then 1800 ms: past the second, stop
    assert seqs(umqtt) == [1, 2] and node.outbox.count == 3
    node.step(clock.advance(100))  # a reading fell due meanwhile and queues; two more go out
    assert seqs(umqtt) == [1, 2, 3, 4] and node.outbox.count == 2


def test_a_failed_publish_keeps_the_reading_for_later(node, clock, umqtt):
    run(node, clock, 100)
    umqtt.broker.publish_error = OSError(110)
    run(node, clock, 1000)
    umqtt.broker.publish_error = None
    run(node, clock, 2000)
    assert seqs(umqtt) == [1, 2, 3, 4]


def test_no_message_and_no_seq_when_nothing_changed(node, clock, umqtt):
    node.sensors.quiet = True
    run(node, clock, 3000)
    node.sensors.quiet = False
    run(node, clock, 1000)
    assert seqs(umqtt) == [1]


def test_heartbeat_after_connect_and_every_heartbeat_s(node, clock, umqtt):
    run(node, clock, 125000)
    beats = sent(umqtt, "heartbeat")
    assert len(beats) == 3 and beats[0]["reset_cause"] == "power-on"


def test_each_heartbeat_says_online_again_retained(node, clock, umqtt):
    run(node, clock, 61000)
    status = [p for p in umqtt.broker.published if p[0].endswith("/status")]
    assert status[-1][1:3] == (b"online", True) and len(status) == 3  # birth + 2 heartbeats


def test_heartbeat_counts_reconnects_sent_and_buffered(node, clock, umqtt):
    run(node, clock, 2000)
    node.session.drop(clock.now, "test")
    run(node, clock, 1000)
    beat = sent(umqtt, "heartbeat")[-1]
    assert (beat["reconnects"], beat["buffered"], beat["sent"] >= 3) == (1, 0, True)


def command(umqtt, raw):
    umqtt.broker.inbox.append((b"sensornode/esp32-a1b2c3/cmd", raw))


def test_interval_command_changes_the_rate_and_answers(node, clock, umqtt):
    run(node, clock, 100)
    command(umqtt, b'{"cmd": "interval", "value": 0.5, "id": 7}')
    run(node, clock, 100)
    before = len(seqs(umqtt))
    run(node, clock, 2000)
    assert len(seqs(umqtt)) - before == 4
    assert sent(umqtt, "event")[-1] == {
        "event": "interval",
        "ok": True,
        "detail": "interval_s is now 0.5: applied now and saved in config.json",
        "id": 7,
    }


def test_ping_command_answers_pong(node, clock, umqtt):
    run(node, clock, 100)
    command(umqtt, b'{"cmd": "ping"}')
    run(node, clock, 100)
    assert sent(umqtt, "event")[-1]["detail"] == "pong"


def test_heartbeat_command_sends_one_now(node, clock, umqtt):
    run(node, clock, 100)
    before = len(sent(umqtt, "heartbeat"))
    command(umqtt, b'{"cmd": "heartbeat"}')
    run(node, clock, 100)
    assert len(sent(umqtt, "heartbeat")) == before + 1


def test_reboot_command_answers_then_asks_for_a_reboot(node, clock, umqtt):
    run(node, clock, 100)
    command(umqtt, b'{"cmd": "reboot"}')
    run(node, clock, 100)
    assert node.reboot_requested and sent(umqtt, "event")[-1]["event"] == "reboot"


@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"cmd": "dance"}', b"[1]", b"x" * 300, b'{"cmd": "interval", "value": "fast"}'],
)
def test_bad_commands_get_an_error_event_and_the_node_goes_on(node, clock, umqtt, raw):
    run(node, clock, 100)
    command(umqtt, raw)
    run(node, clock, 2000)
    ev = sent(umqtt, "event")[-1]
    assert (ev["event"], ev["ok"], len(seqs(umqtt))) == ("error", False, 3)


def test_an_oversized_command_is_refused_by_its_real_size(node, clock, umqtt):
    run(node, clock, 100)
    command(umqtt, b"x" * 2000)
    run(node, clock, 100)
    assert sent(umqtt, "event")[-1]["detail"] == "command of 2000 bytes is over the 1024-byte limit"


def test_clock_is_synced_after_each_connect(node, clock, umqtt):
    run(node, clock, 100)
    node.session.drop(clock.now, "test")
    run(node, clock, 1500)
    assert node.stats.syncs == 2


def test_discovery_is_announced_retained_at_connect_when_enabled(
    umqtt, clock, log, node, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # where the node keeps its record of what it announced
    node.discovery = True
    run(node, clock, 100)
    disc = [p for p in umqtt.broker.published if p[0].startswith("homeassistant/")]
    assert ("homeassistant/sensor/esp32-a1b2c3_temperature/config", True, 0) in [
        (p[0], p[2], p[3]) for p in disc
    ]
    assert len(disc) == 1 + 10  # the reading and the heartbeat's facts with connectivity


def test_discovery_code_leaves_the_heap_after_the_announcement(
    umqtt, clock, log, node, tmp_path, monkeypatch
):
    import sys

    monkeypatch.chdir(tmp_path)
    node.discovery = True
    run(node, clock, 100)
    assert "firmware.ha" not in sys.modules


def test_the_announcement_runs_with_report_py_off_the_heap(
    umqtt, clock, log, node, tmp_path, monkeypatch
):
    # The connect's announcement sets the smallest heap: report.py must have left by then.
    import sys

    from firmware import ha

    loaded = []
    monkeypatch.setattr(ha, "announce", lambda *a: loaded.append("firmware.report" in sys.modules))
    monkeypatch.chdir(tmp_path)
    node.discovery = True
    run(node, clock, 100)
    assert loaded == [False]


def discovery_per_connect(node, clock, umqtt, monkeypatch, tmp_path, between=None):
    # Two connects; returns (ha.py builds, the discovery messages of each connect).
    import firmware.node
    from firmware import ha

    builds = []
    build = ha.came_online
    monkeypatch.setattr(ha, "came_online", lambda *a: builds.append(1) or build(*a))
    monkeypatch.setattr(firmware.node, "drop", lambda *names: None)  # so ha.py stays patched
    monkeypatch.chdir(tmp_path)
    node.discovery = True
    run(node, clock, 100)
    first = [p for p in umqtt.broker.published if p[0].startswith("homeassistant/")]
    node.session.drop(clock.now, "test")
    if between is not None:
        between(node)
    run(node, clock, 1500)
    both = [p for p in umqtt.broker.published if p[0].startswith("homeassistant/")]
    return len(builds), first, both[len(first) :]


def test_a_reconnect_replays_discovery_from_its_record(node, clock, umqtt, monkeypatch, tmp_path):
    builds, first, second = discovery_per_connect(node, clock, umqtt, monkeypatch, tmp_path)
    assert builds == 1
    assert second == first and len(first) == 1 + 10


def test_configs_built_at_boot_are_only_replayed_at_the_connects(
    node, clock, umqtt, monkeypatch, tmp_path
):
    from firmware import ha_record, wiring

    monkeypatch.chdir(tmp_path)
    cfg = dict(node.cfg, sensors=[s.spec for s in node.sensors.slots])
    wiring._ha_record(FakeStats(), cfg, T)  # what build() does before _wire()
    recorded = (tmp_path / ha_record.PATH).read_bytes()
    builds, first, second = discovery_per_connect(node, clock, umqtt, monkeypatch, tmp_path)
    assert builds == 0  # the connect found the boot's key: nothing built, the record replayed
    assert len(first) == 1 + 10 and second == first
    lines = b"".join(t.encode() + b"\n" + m + b"\n" for t, m, *_ in first)
    assert lines == recorded.split(b"\n", 1)[1]


def test_a_boot_without_the_heap_for_the_configs_leaves_them_to_the_next_boot_or_connect(
    node, monkeypatch, tmp_path, capsys
):
    import sys

    from firmware import ha, wiring

    def no_heap(*args):
        raise MemoryError("memory allocation failed, allocating 640 bytes")

    monkeypatch.setattr(ha, "announce", no_heap)
    monkeypatch.setattr("firmware.unload.drop", lambda *names: None)  # so ha.py stays patched
    monkeypatch.chdir(tmp_path)
    cfg = dict(node.cfg, sensors=[s.spec for s in node.sensors.slots])
    assert wiring._ha_record(FakeStats(), cfg, T) is None  # no key: the connect works it out
    out = capsys.readouterr().out
    assert "ha: not enough heap to build the announcement now; the next boot or connect will" in out
    assert not (tmp_path / "ha.txt").exists()
    sys.modules.pop("firmware.ha", None)


def test_a_connect_without_the_boots_record_builds_it_under_the_boots_key(
    node, clock, monkeypatch, tmp_path
):
    import firmware.node
    from firmware import ha

    keys = []
    monkeypatch.setattr(ha, "came_online", lambda node, now, uid, k, sensors: keys.append(k))
    monkeypatch.setattr(firmware.node, "drop", lambda *names: None)  # so ha.py stays patched
    monkeypatch.chdir(tmp_path)  # no ha.txt: the boot could not write it
    node.discovery = True
    node.ha_key = "the boot's key"
    run(node, clock, 100)
    assert keys == ["the boot's key"]


def test_a_new_interval_builds_discovery_again(node, clock, umqtt, monkeypatch, tmp_path):
    def faster(n):
        # The interval applies at once, and expire_after depends on it.
        from firmware import commands

        commands.run(n, b'{"cmd": "interval", "value": 0.5}', clock.now)
        assert n.interval_ms == 500

    node.ha_key = "as the boot found it"  # forgotten with the new interval
    builds, _, second = discovery_per_connect(node, clock, umqtt, monkeypatch, tmp_path, faster)
    assert builds == 2 and len(second) == 1 + 10


def test_the_record_key_holds_across_a_dict_order_and_follows_a_value(node):
    # config.py builds a spec in one order on a first boot; validated.json gives it back in
    # another on the next: the same sensor must keep its record.
    from firmware import ha_record

    def key(uid):
        sensors = [(s.spec, ["temperature"]) for s in node.sensors.slots]
        return ha_record.key("homeassistant", uid, "esp32", "1.0", None, 10000, T, sensors)

    slot = node.sensors.slots[0]
    before = key("a1b2c3")
    slot.spec = dict(reversed(list(slot.spec.items())))
    assert key("a1b2c3") == before
    slot.spec = dict(slot.spec, unit="K")
    assert key("a1b2c3") != before
    assert key("ffffff") != before


def test_an_announcement_without_the_heap_for_it_is_said_and_the_readings_go_on(
    umqtt, clock, log, node, tmp_path, monkeypatch
):
    import sys

    from firmware import ha_record

    def no_heap(node, now):
        raise MemoryError("memory allocation failed, allocating 528 bytes")

    monkeypatch.setattr(ha_record, "came_online", no_heap)
    monkeypatch.chdir(tmp_path)
    node.discovery = True
    run(node, clock, 3000)
    assert "ha: not enough heap to announce; trying again at the next connect" in log.lines
    assert node.sent >= 2 and "firmware.ha_record" not in sys.modules


def test_due_in_sleeps_until_the_next_reading(node, clock):
    node.step(clock.now)
    assert 0 < node.due_in(clock.now) <= 1000


def test_due_in_does_not_spin_on_a_reconnect_that_waits_for_wifi(node, clock, umqtt):
    node.step(clock.now)
    node.wifi.up = False
    node.step(clock.advance(100))  # the session drops; its next attempt is due at once
    assert node.due_in(clock.now) > 0


class BootFacts(FakeStats):
    """What the boot uses of the board before the node is wired."""

    def __init__(self) -> None:
        super().__init__()
        self.reset_cause = "power on"

    def device_id(self, configured):
        return configured or "esp32-a1b2c3"

    def station(self, hostname):
        return None  # the station: _wire() takes it (replaced here)

    def collect_every(self, nbytes):
        self.collect_bytes = nbytes


def boot(board, monkeypatch):
    # The boot as app.start() runs it, up to the node's wiring (replaced: (board, cfg)).
    from firmware import validated, wiring

    wired = lambda board, cfg, *rest: (board, SimpleNamespace(cfg=cfg), None)  # noqa: E731
    monkeypatch.setattr(wiring, "_wire", wired)
    board, node, _ = wiring.build(board, *validated.boot(board, print))
    return board, node.cfg


def test_a_boot_that_checked_the_config_restarts_once_and_runs_without_config_py(
    tmp_path, monkeypatch, capsys
):
    import sys

    import machine

    machine.reset_stub()
    monkeypatch.chdir(tmp_path)  # a board's root: validated.json is written there
    with pytest.raises(machine.Reset):
        boot(BootFacts(), monkeypatch)  # checks, keeps the result and the HA record, soft-resets
    assert machine.state["soft_resets"] == 1
    assert (tmp_path / "validated.json").exists() and (tmp_path / "ha.txt").exists()
    restarted = BootFacts()
    restarted.reset_cause = "soft reset"
    board, cfg = boot(restarted, monkeypatch)
    assert cfg["interval_s"] > 0
    assert board.reset_cause == "power on"  # the cause from before the restart
    assert "firmware.config" not in sys.modules
    assert "firmware.ha" not in sys.modules
    assert machine.state["soft_resets"] == 1
    out = capsys.readouterr().out
    assert out.count("reset cause: power on") == 2 and "reset cause: soft" not in out
    assert out.count("restarting once") == 1


def test_a_restarted_boot_that_must_check_again_does_not_restart_again(tmp_path, monkeypatch):
    import machine

    machine.reset_stub()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(machine.Reset):
        boot(BootFacts(), monkeypatch)
    (tmp_path / "validated.json").unlink()  # e.g. unreadable after the restart
    boot(BootFacts(), monkeypatch)  # checks again, and runs on
    assert machine.state["soft_resets"] == 1


def test_commands_dropped_by_a_full_queue_are_counted_in_the_heartbeat(node, clock, umqtt):
    run(node, clock, 100)
    for _ in range(6):
        command(umqtt, b'{"cmd": "ping"}')
    node.session.poll(clock.now)  # one poll reads 4: the queue holds 4
    for _ in range(2):
        node.session._on_message(b"sensornode/esp32-a1b2c3/cmd", b'{"cmd": "ping"}')
    report.send_heartbeat(node, clock.now)
    assert sent(umqtt, "heartbeat")[-1]["errors"] == 2


def test_start_leaves_no_boot_module_on_the_heap_once_the_node_is_built(tmp_path, monkeypatch):
    import sys

    import machine

    import firmware.board
    from firmware import app, wiring

    machine.reset_stub()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "validated.json").write_text("{}")  # unreadable: checked, not restarted twice
    (tmp_path / "restarted").write_text("power on")
    facts = BootFacts()
    monkeypatch.setattr(firmware.board, "Board", lambda log: facts)
    node = SimpleNamespace()
    monkeypatch.setattr(wiring, "_wire", lambda board, cfg, *rest: ("board", node, None))
    assert app.start() == ("board", node, None)
    assert facts.collect_bytes == 32768  # the heap is collected often enough (board_setup.py)
    assert node.ha_key is not None  # the HA record's key, as the boot built it
    boot_modules = ("wiring", "validated", "config", "atomic", "ha", "ha_record", "sensor_setup")
    assert [m for m in boot_modules if "firmware." + m in sys.modules] == []
    assert callable(app.loop) and callable(app.run)  # what the loop needs stays


def test_commands_module_leaves_the_heap_after_each_command(node, clock, umqtt):
    import sys

    run(node, clock, 100)
    command(umqtt, b'{"cmd": "ping"}')
    node.step(clock.advance(10))
    assert sent(umqtt, "event")[-1]["detail"] == "pong"
    assert "firmware.commands" not in sys.modules
    command(umqtt, b'{"cmd": "dance"}')  # a refusal drops it too
    node.step(clock.advance(10))
    assert sent(umqtt, "event")[-1]["ok"] is False
    assert "firmware.commands" not in sys.modules


def test_what_a_connect_and_a_heartbeat_say_leaves_the_heap_after_them(node, clock, umqtt):
    import sys

    run(node, clock, 100)  # connected, announced, first heartbeat sent
    assert sent(umqtt, "heartbeat")
    assert "firmware.report" not in sys.modules
    command(umqtt, b'{"cmd": "heartbeat"}')
    node.step(clock.advance(10))
    assert sent(umqtt, "event")[-1]["detail"] == "heartbeat sent"
    assert "firmware.report" not in sys.modules and "firmware.commands" not in sys.modules
