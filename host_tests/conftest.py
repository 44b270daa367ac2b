"""Host test setup: firmware/ runs under CPython with the board's modules replaced by stubs.

host_tests/stubs/ holds stand-ins for micropython, machine, network, umqtt.simple and the sensor
modules; they record calls and let a test inject faults. Putting that folder first on sys.path
is all the firmware needs: it imports these names exactly as on a board.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "stubs"))
sys.path.insert(0, ROOT)

import dht  # noqa: E402  (the stubs, from the path set above)
import esp32  # noqa: E402
import machine  # noqa: E402
import network  # noqa: E402
import onewire  # noqa: E402

# Tests that start a process (a broker, the MicroPython runtime, a virtual board, a browser,
# mpremote, mpy-cross) or run for seconds are `slow`; `make test-fast` leaves them out. A test
# is slow when its module or itself says so, or when it uses one of these fixtures (each starts
# a process).
PROCESS_FIXTURES = {
    "broker",  # a broker on 127.0.0.1
    "subscriber",
    "mqtt_broker",
    "publisher",
    "listeners",  # tools.listen subprocesses
    "on_both",  # the same checks under CPython and MicroPython
    "mpy_check",
    "fetched",  # a real fetch of umqtt.simple
}


def pytest_collection_modifyitems(items):
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def fresh_stubs():
    """Every test starts from a board that has just powered on, with no sensor attached."""
    for stub in (machine, network, dht, onewire, esp32):
        stub.reset_stub()
    yield


def validated_sensors(*sensors):
    """Sensor dicts exactly as config.validate hands them over, every default filled in."""
    from firmware import config

    problems: list[str] = []
    cfg, _ = config.validate({"sensors": list(sensors)}, lambda tag, msg: problems.append(msg))
    assert [p for p in problems if "sensors" in p] == []
    return cfg["sensors"]


class Log:
    """Collects console lines: log(tag, msg) as the firmware calls it."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, tag: str, msg: str) -> None:
        self.lines.append(tag + ": " + msg)

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def log() -> Log:
    return Log()


TICKS_PERIOD = 1 << 30  # the boards' ticks_ms() wraps at 2**30


class FakeClock:
    """time.ticks_* with MicroPython's wrap-around, advanced by the test.

    It starts a few seconds before the wrap so every test crosses it."""

    def __init__(self, start: int = TICKS_PERIOD - 3000) -> None:
        self.now = start % TICKS_PERIOD
        self.slept = 0

    def ticks_ms(self) -> int:
        return self.now

    def ticks_add(self, t: int, delta: int) -> int:
        return (t + delta) % TICKS_PERIOD

    def ticks_diff(self, a: int, b: int) -> int:
        half = TICKS_PERIOD // 2
        return ((a - b + half) % TICKS_PERIOD) - half

    def advance(self, ms: int = 1000) -> int:
        self.now = (self.now + ms) % TICKS_PERIOD
        return self.now

    def sleep_ms(self, ms: int) -> None:
        self.slept += ms
        self.advance(ms)


def Clock(now: int = 0) -> FakeClock:  # noqa: N802  (reads as the class it stands for)
    """The fake clock started at `now` (0 unless a test wants the wrap)."""
    return FakeClock(now)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def umqtt():
    """The stub umqtt.simple module with a fresh scripted broker."""
    import umqtt.simple as simple

    simple.broker = simple.Broker()
    return simple


@pytest.fixture(scope="module")
def broker():
    """A broker on 127.0.0.1 (Mosquitto, else amqtt) for the module, as (host, port). Modules
    that need the Broker object itself (or both kinds) define their own."""
    from tools.brokers import Broker

    with Broker("auto") as b:
        yield b.host, b.port


@pytest.fixture
def subscriber(broker):
    """A paho subscriber to sensornode/# on the module's broker."""
    from tools.watcher import Watcher

    sub = Watcher(broker, "sensornode/#")
    yield sub
    sub.close()
