"""tools/brokers.py: real brokers on 127.0.0.1 that start, answer MQTT, publish retained last
wills, come back after an outage, and leave no process behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tools import brokers
from tools.brokers import Broker, free_port, mqtt_ping
from tools.watcher import Watcher

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT_S = 10.0  # upper bound for anything to arrive; only there so a failure cannot hang

pytestmark = pytest.mark.slow  # every test here starts a broker

KINDS = [
    pytest.param(
        "mosquitto",
        marks=pytest.mark.skipif(
            brokers.mosquitto_path() is None, reason="mosquitto is not installed"
        ),
    ),
    "amqtt",
]


@pytest.fixture(params=KINDS)
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    with Broker(request.param) as b:
        yield b


def watch(broker: Broker, topic: str, client_id: str = "subscriber") -> Watcher:
    """A watcher subscribed to one filter (SUBACK seen) under a fixed client id."""
    return Watcher((broker.host, broker.port), topic, client_id=client_id, wait_s=WAIT_S)


def device_with_will(broker: Broker, client_id: str = "device") -> mqtt.Client:
    """A client whose will is a retained "offline" on its status topic, and which said "online"."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.will_set(f"sensornode/{client_id}/status", "offline", qos=1, retain=True)
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    info = client.publish(f"sensornode/{client_id}/status", "online", qos=1, retain=True)
    info.wait_for_publish(WAIT_S)
    assert info.is_published()
    return client


def cut_abruptly(client: mqtt.Client) -> None:
    """Drop the client's TCP connection with a reset: no DISCONNECT, as when power is lost."""
    client.loop_stop()
    sock = client.socket()
    assert isinstance(sock, socket.socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def silent_connection(broker: Broker, client_id: bytes, keepalive: int) -> socket.socket:
    """A raw MQTT 3.1.1 connection with a retained will "offline", which then says nothing more:
    to the broker it looks like a half-open link."""
    will_topic = b"sensornode/" + client_id + b"/status"

    def field(b: bytes) -> bytes:
        return len(b).to_bytes(2, "big") + b

    flags = 0x02 | 0x04 | 0x08 | 0x20  # clean session, will, will QoS 1, will retain
    body = b"\x00\x04MQTT\x04" + bytes([flags]) + keepalive.to_bytes(2, "big")
    body += field(client_id) + field(will_topic) + field(b"offline")
    sock = socket.create_connection((broker.host, broker.port), timeout=WAIT_S)
    sock.sendall(bytes([0x10, len(body)]) + body)
    assert sock.recv(4) == b"\x20\x02\x00\x00"
    return sock


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --- starting and stopping ------------------------------------------------------------------


def test_free_port_can_be_listened_on() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen(1)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="rabbitmq"):
        Broker("rabbitmq")


@pytest.mark.skipif(brokers.mosquitto_path() is None, reason="mosquitto is not installed")
def test_auto_picks_mosquitto_when_installed() -> None:
    assert Broker("auto").kind == "mosquitto"


def test_auto_picks_amqtt_without_mosquitto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(brokers, "mosquitto_path", lambda: None)
    assert Broker("auto").kind == "amqtt"


def test_started_broker_answers_mqtt_connect_on_loopback(broker: Broker) -> None:
    assert broker.host == "127.0.0.1"
    assert mqtt_ping(broker.host, broker.port)


def test_stop_ends_the_broker_process(broker: Broker) -> None:
    pid = broker.pid
    assert pid is not None
    broker.stop()
    assert process_gone(pid)
    assert not mqtt_ping(broker.host, broker.port)


def test_stop_twice_is_harmless(broker: Broker) -> None:
    broker.stop()
    broker.stop()
    assert not broker.running


def test_leaving_the_with_block_stops_the_broker() -> None:
    with Broker("amqtt") as b:
        pid = b.pid
    assert pid is not None and process_gone(pid)


def test_kill_takes_the_broker_down_at_once(broker: Broker) -> None:
    pid = broker.pid
    assert pid is not None
    broker.kill()
    assert process_gone(pid)
    assert not mqtt_ping(broker.host, broker.port)


def test_restart_after_kill_serves_the_same_port_again(broker: Broker) -> None:
    port = broker.port
    client = device_with_will(broker)  # a live connection, so the old port has TIME_WAIT sockets
    broker.kill()
    client.loop_stop()
    broker.restart()
    assert broker.port == port
    assert mqtt_ping(broker.host, port)


def test_start_refuses_a_port_in_use() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        with pytest.raises(RuntimeError, match="in use"):
            Broker("amqtt", port=s.getsockname()[1]).start()


def test_broker_that_exits_at_start_raises_with_its_output() -> None:
    class Failing(Broker):
        def command(self, config):
            return [sys.executable, "-c", "import sys; sys.exit('bad config line 3')"]

    failing = Failing("amqtt")
    with pytest.raises(RuntimeError, match="bad config line 3"):
        failing.start()
    assert failing._dir is None, "its temporary folder is removed, the output being in the error"


def test_cli_prints_the_address_and_stops_the_broker_on_ctrl_c() -> None:
    cli = subprocess.Popen(
        [sys.executable, "-m", "tools.brokers", "--kind", "amqtt"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert cli.stdout is not None
        line = cli.stdout.readline()
        found = re.fullmatch(r"broker: amqtt on 127\.0\.0\.1:(\d+)\n", line)
        assert found, line
        port = int(found.group(1))
        assert mqtt_ping("127.0.0.1", port)
        cli.send_signal(signal.SIGINT)
        assert cli.wait(WAIT_S) == 0
        assert not mqtt_ping("127.0.0.1", port)
    finally:
        cli.kill()
        cli.wait()


# --- what the firmware relies on: retained messages and the last will ------------------------


def test_retained_message_reaches_a_later_subscriber(broker: Broker) -> None:
    device = device_with_will(broker, "retainer")
    sub = watch(broker, "sensornode/retainer/status")
    try:
        message = sub.next()
        assert (message.payload, message.retain) == (b"online", True)
    finally:
        sub.close()
        device.disconnect()
        device.loop_stop()


def test_last_will_reaches_a_live_subscriber_when_the_link_is_cut(broker: Broker) -> None:
    device = device_with_will(broker, "cut1")
    sub = watch(broker, "sensornode/+/status")
    try:
        assert sub.next().payload == b"online"  # the retained birth message
        cut_abruptly(device)
        assert sub.next().payload == b"offline"
    finally:
        sub.close()


def test_last_will_is_retained_for_a_later_subscriber(broker: Broker) -> None:
    device = device_with_will(broker, "cut2")
    watcher = watch(broker, "sensornode/cut2/status", client_id="watcher")
    try:
        assert watcher.next().payload == b"online"
        cut_abruptly(device)
        assert watcher.next().payload == b"offline"  # the will was published...
        late = watch(broker, "sensornode/cut2/status", client_id="late")
        try:
            message = late.next()  # ...and retained
            assert (message.payload, message.retain) == (b"offline", True)
        finally:
            late.close()
    finally:
        watcher.close()


def test_clean_disconnect_publishes_no_will(broker: Broker) -> None:
    device = device_with_will(broker, "polite")
    device.disconnect()
    device.loop_stop()
    # Had the will fired, the retained status would now be "offline".
    late = watch(broker, "sensornode/polite/status")
    try:
        assert late.next().payload == b"online"
    finally:
        late.close()


def test_silent_client_is_dropped_after_its_keepalive_and_its_will_published(
    broker: Broker,
) -> None:
    sub = watch(broker, "sensornode/+/status")
    link = silent_connection(broker, b"halfopen", keepalive=1)
    try:
        message = sub.next()
        assert (message.topic, message.payload) == ("sensornode/halfopen/status", b"offline")
    finally:
        link.close()
        sub.close()


# --- amqtt 0.12.1 as it is upstream: why tools/brokers.py patches it --------------------------


def test_unpatched_amqtt_never_drops_a_silent_client() -> None:
    """Upstream bug worked around by amqtt_keepalive_fix. When this fails, amqtt has fixed it
    and the fix in tools/brokers.py can go."""
    with Broker("amqtt", amqtt_keepalive_fix=False) as b:
        sub = watch(b, "sensornode/+/status")
        link = silent_connection(b, b"halfopen", keepalive=1)
        try:
            with pytest.raises(TimeoutError):
                sub.next(timeout=4.0)  # 2.6 x the 1.5 s after which it must be dropped
        finally:
            link.close()
            sub.close()


def test_amqtt_sends_a_connecting_client_retained_messages_it_did_not_subscribe_to() -> None:
    """amqtt 0.12.1 quirk: on every CONNECT it publishes to the new client each retained message
    matching ANY client's subscription. A device must ignore topics it did not subscribe to
    (and umqtt.simple needs its callback set before it reads anything)."""
    with Broker("amqtt") as b:
        watcher = watch(b, "sensornode/+/status", client_id="watcher")
        device = device_with_will(b, "other")
        bystander = watch(b, "unrelated/topic", client_id="bystander")
        try:
            message = bystander.next()
            assert (message.topic, message.payload) == ("sensornode/other/status", b"online")
        finally:
            bystander.close()
            watcher.close()
            device.disconnect()
            device.loop_stop()
