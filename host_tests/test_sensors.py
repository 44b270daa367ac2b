"""The sensor set: drivers, filters and change gates behind flat keys/values/due lists."""

import os
import subprocess
import sys

import dht
import onewire
import pytest
from conftest import TICKS_PERIOD as PERIOD
from conftest import Clock
from conftest import validated_sensors as specs

from firmware import config
from firmware.sensor_setup import describe, driver_for, keys_for
from firmware.sensor_sim import SimSensor
from firmware.sensors import _RETRY_MS, SensorSet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")


class Scripted:
    """A driver that returns the values queued in `readings` (an exception there is raised)."""

    def __init__(self, spec, readings):
        self.keys = keys_for(spec)
        self.readings = readings
        self.reads = 0

    def read(self):
        self.reads += 1
        r = self.readings[0] if len(self.readings) == 1 else self.readings.pop(0)
        if isinstance(r, BaseException):
            raise r
        return r


class Factory:
    """make_driver for SensorSet: scripts per sensor name; names in `absent` fail to construct."""

    def __init__(self, **scripts):
        self.scripts = scripts
        self.absent: dict[str, Exception] = {}
        self.built: dict[str, Scripted] = {}
        self.attempts: dict[str, int] = {}

    def __call__(self, spec):
        name = spec["name"]
        self.attempts[name] = self.attempts.get(name, 0) + 1
        if name in self.absent:
            raise self.absent[name]
        self.built[name] = Scripted(spec, self.scripts[name])
        return self.built[name]


def sensor_lines(log):
    return [line for line in log.lines if line.startswith("sensor: ")]


# --- layout -----------------------------------------------------------------------------------


def test_keys_list_every_sensors_keys_in_config_order(log):
    make = Factory(a=[(1.0,)], room=[(20.0, 50.0)], air=[(20.0, 50.0, 1000.0)])
    s = SensorSet(
        specs(
            {"type": "sim", "name": "a"},
            {"type": "dht22", "name": "room", "pin": 4},
            {"type": "bme280", "name": "air"},
        ),
        log,
        Clock(),
        make,
    )
    assert s.keys == [
        "a",
        "room_temperature",
        "room_humidity",
        "air_temperature",
        "air_humidity",
        "air_pressure",
    ]


def test_values_and_due_are_parallel_to_keys_before_the_first_sample(log):
    make = Factory(a=[(1.0,)], room=[(20.0, 50.0)])
    s = SensorSet(
        specs({"type": "sim", "name": "a"}, {"type": "dht11", "name": "room", "pin": 4}),
        log,
        Clock(),
        make,
    )
    assert (s.values, s.due, s.keys) == (
        [None] * 3,
        [False] * 3,
        ["a", "room_temperature", "room_humidity"],
    )


def test_a_sensor_whose_keys_collide_with_an_earlier_one_is_skipped_and_logged(log):
    make = Factory(room_temperature=[(1.0,)], room=[(20.0, 50.0)])
    s = SensorSet(
        # each valid alone; config.validate refuses the pair, SensorSet must too
        specs({"type": "dht22", "name": "room", "pin": 4})
        + specs({"type": "sim", "name": "room_temperature"}),
        log,
        Clock(),
        make,
    )
    assert s.keys == ["room_temperature", "room_humidity"]
    assert "room_temperature" in log.text() and "skipped" in log.text()


# --- sampling ---------------------------------------------------------------------------------


def test_sample_stores_each_sensors_values_under_its_keys(log):
    make = Factory(a=[(1.5,)], room=[(21.0, 45.0)])
    s = SensorSet(
        specs({"type": "sim", "name": "a"}, {"type": "dht22", "name": "room", "pin": 4}),
        log,
        Clock(),
        make,
    )
    s.sample(0)
    assert s.values == [1.5, 21.0, 45.0]


def test_sample_says_due_when_a_sensor_without_delta_read(log):
    s = SensorSet(specs({"type": "sim", "name": "a"}), log, Clock(), Factory(a=[(1.0,)]))
    assert s.sample(0) is True and s.due == [True]


def test_a_sensor_without_delta_has_no_gate_and_reports_every_reading(log):
    s = SensorSet(specs({"type": "sim", "name": "a"}), log, Clock(), Factory(a=[(20.0,)] * 3))
    assert s.slots[0].gate is None
    assert [s.sample(t) for t in (0, 10, 20)] == [True, True, True]


def test_sample_says_not_due_when_no_value_moved_by_delta(log):
    clock = Clock()
    make = Factory(a=[(20.0,), (20.1,)])
    s = SensorSet(specs({"type": "sim", "name": "a", "delta": 0.5}), log, clock, make)
    s.sample(clock.now)
    assert (s.sample(clock.advance()), s.due) == (False, [False])


def test_due_is_per_sensor(log):
    clock = Clock()
    make = Factory(a=[(20.0,), (20.1,)], b=[(5.0,), (9.0,)])
    s = SensorSet(
        specs({"type": "sim", "name": "a", "delta": 0.5}, {"type": "sim", "name": "b", "delta": 1}),
        log,
        clock,
        make,
    )
    s.sample(clock.now)
    s.sample(clock.advance())
    assert s.due == [False, True]


def test_a_gated_sensor_is_reported_again_after_max_silence(log):
    clock = Clock()
    make = Factory(a=[(20.0,)])
    s = SensorSet(
        specs({"type": "sim", "name": "a", "delta": 0.5, "max_silence_s": 60}),
        log,
        clock,
        make,
    )
    s.sample(clock.now)
    assert (s.sample(clock.advance(59000)), s.sample(clock.advance(1000))) == (False, True)


def test_all_keys_of_a_sensor_share_its_due_flag(log):
    clock = Clock()
    make = Factory(room=[(20.0, 50.0), (20.0, 55.0)])
    s = SensorSet(specs({"type": "dht22", "name": "room", "pin": 4, "delta": 1}), log, clock, make)
    s.sample(clock.now)
    s.sample(clock.advance())
    assert s.due == [True, True]


# --- failures ---------------------------------------------------------------------------------


def test_a_failing_read_gives_null_for_that_sensors_keys(log):
    make = Factory(room=[OSError(110)])
    s = SensorSet(specs({"type": "dht22", "name": "room", "pin": 4}), log, Clock(), make)
    s.sample(0)
    assert s.values == [None, None]


def test_a_failing_sensor_does_not_stop_the_others(log):
    make = Factory(room=[OSError(110)], a=[(3.0,)])
    s = SensorSet(
        specs({"type": "dht22", "name": "room", "pin": 4}, {"type": "sim", "name": "a"}),
        log,
        Clock(),
        make,
    )
    s.sample(0)
    assert s.values[2] == 3.0


def test_any_exception_from_a_driver_counts_as_a_failed_read(log):
    make = Factory(w=[Exception("CRC error")])  # what micropython-lib's ds18x20 raises
    s = SensorSet(specs({"type": "ds18b20", "name": "w", "pin": 5}), log, Clock(), make)
    s.sample(0)
    assert (s.values, s.errors) == ([None], 1)


def test_every_failed_read_counts_one_error(log):
    clock = Clock()
    make = Factory(room=[OSError(110)], a=[ValueError("bad")])
    s = SensorSet(
        specs({"type": "dht22", "name": "room", "pin": 4}, {"type": "sim", "name": "a"}),
        log,
        clock,
        make,
    )
    for _ in range(3):
        s.sample(clock.advance())
    assert s.errors == 6


def test_a_failing_sensor_is_logged_once_not_every_cycle(log):
    clock = Clock()
    s = SensorSet(specs({"type": "sim", "name": "a"}), log, clock, Factory(a=[OSError(110)]))
    for _ in range(5):
        s.sample(clock.advance())
    assert sensor_lines(log) == ["sensor: a read failed: 110; reporting null"]


def test_a_sensor_that_reads_again_is_logged_once(log):
    clock = Clock()
    make = Factory(a=[OSError(110), (1.0,), (1.0,), (1.0,)])
    s = SensorSet(specs({"type": "sim", "name": "a"}), log, clock, make)
    for _ in range(4):
        s.sample(clock.advance())
    assert sensor_lines(log) == [
        "sensor: a read failed: 110; reporting null",
        "sensor: a reads again",
    ]


def test_a_sensor_that_reads_from_the_start_logs_nothing(log):
    clock = Clock()
    s = SensorSet(specs({"type": "sim", "name": "a"}), log, clock, Factory(a=[(1.0,)]))
    s.sample(clock.advance())
    s.sample(clock.advance())
    assert sensor_lines(log) == []


def test_an_exception_without_text_is_logged_by_its_class_name(log):
    class OneWireError(Exception):
        pass

    s = SensorSet(specs({"type": "sim", "name": "a"}), log, Clock(), Factory(a=[OneWireError()]))
    s.sample(0)
    assert sensor_lines(log) == ["sensor: a read failed: OneWireError; reporting null"]


def test_a_driver_giving_the_wrong_number_of_values_is_a_failed_read(log):
    make = Factory(room=[(20.0,)])
    s = SensorSet(specs({"type": "dht22", "name": "room", "pin": 4}), log, Clock(), make)
    s.sample(0)
    assert (s.values, s.errors) == ([None, None], 1)


def test_a_sensor_starting_to_fail_is_due_for_a_null_report(log):
    clock = Clock()
    make = Factory(a=[(20.0,), OSError(110)])
    s = SensorSet(specs({"type": "sim", "name": "a", "delta": 5}), log, clock, make)
    s.sample(clock.now)
    assert (s.sample(clock.advance()), s.values) == (True, [None])


# --- drivers that cannot start ----------------------------------------------------------------


def test_a_sensor_whose_driver_cannot_start_keeps_its_keys_with_null(log):
    make = Factory(a=[(1.0,)])
    make.absent["room"] = OSError(19)
    s = SensorSet(
        specs({"type": "dht22", "name": "room", "pin": 4}, {"type": "sim", "name": "a"}),
        log,
        Clock(),
        make,
    )
    s.sample(0)
    assert (s.keys, s.values) == (["room_temperature", "room_humidity", "a"], [None, None, 1.0])


def test_a_driver_that_cannot_start_is_logged_with_where_it_was_looked_for(log):
    make = Factory()
    make.absent["room"] = OSError("no answer")
    SensorSet(specs({"type": "dht22", "name": "room", "pin": 4}), log, Clock(), make)
    assert sensor_lines(log) == ["sensor: room (dht22 on pin 4): no answer; its keys report null"]


def test_a_sensor_without_driver_reports_null_once_then_stays_quiet(log):
    clock = Clock()
    make = Factory()
    make.absent["room"] = OSError(19)
    s = SensorSet(specs({"type": "dht22", "name": "room", "pin": 4, "delta": 1}), log, clock, make)
    assert [s.sample(clock.advance()) for _ in range(3)] == [True, False, False]
    assert s.values == [None, None]


def test_a_driver_that_cannot_start_is_not_counted_as_read_errors(log):
    clock = Clock()
    make = Factory()
    make.absent["room"] = OSError(19)
    s = SensorSet(specs({"type": "dht22", "name": "room", "pin": 4}), log, clock, make)
    for _ in range(3):
        s.sample(clock.advance())
    assert s.errors == 0


def test_a_driver_that_cannot_start_is_not_retried_within_a_minute(log):
    clock = Clock()
    make = Factory()
    make.absent["room"] = OSError(19)
    s = SensorSet(specs({"type": "dht22", "name": "room", "pin": 4}), log, clock, make)
    for _ in range(59):
        s.sample(clock.advance(1000))
    assert make.attempts["room"] == 1


def test_a_driver_that_cannot_start_is_retried_after_a_minute_and_then_read(log):
    clock = Clock()
    make = Factory(room=[(20.0, 50.0)])
    make.absent["room"] = OSError(19)
    s = SensorSet(specs({"type": "dht22", "name": "room", "pin": 4}), log, clock, make)
    del make.absent["room"]
    s.sample(clock.advance(_RETRY_MS))
    assert (make.attempts["room"], s.values) == (2, [20.0, 50.0])


def test_a_failed_retry_is_not_logged_again_and_a_late_start_is(log):
    clock = Clock()
    make = Factory(room=[(20.0, 50.0)])
    make.absent["room"] = OSError(19)
    s = SensorSet(specs({"type": "dht22", "name": "room", "pin": 4}), log, clock, make)
    s.sample(clock.advance(_RETRY_MS))
    del make.absent["room"]
    s.sample(clock.advance(_RETRY_MS))
    assert len(sensor_lines(log)) == 2 and "found" in sensor_lines(log)[1]


def test_retry_timing_counts_across_the_tick_wrap(log):
    clock = Clock(PERIOD - 30000)
    make = Factory(room=[(20.0, 50.0)])
    make.absent["room"] = OSError(19)
    s = SensorSet(specs({"type": "dht22", "name": "room", "pin": 4}), log, clock, make)
    del make.absent["room"]
    s.sample(clock.advance(_RETRY_MS - 1))
    first = make.attempts["room"]
    s.sample(clock.advance(1))
    assert (first, make.attempts["room"]) == (1, 2)


# --- filters ----------------------------------------------------------------------------------


def test_the_configured_filter_smooths_each_value(log):
    clock = Clock()
    make = Factory(a=[(20.0,), (20.0,), (90.0,)])
    s = SensorSet(
        specs({"type": "sim", "name": "a", "filter": {"type": "median", "size": 3}}),
        log,
        clock,
        make,
    )
    for _ in range(3):
        s.sample(clock.advance())
    assert s.values == [20.0]


def test_each_key_of_a_sensor_has_its_own_filter(log):
    clock = Clock()
    make = Factory(room=[(10.0, 50.0), (20.0, 70.0)])
    s = SensorSet(
        specs({"type": "dht22", "name": "room", "pin": 4, "filter": {"type": "ema", "alpha": 0.5}}),
        log,
        clock,
        make,
    )
    s.sample(clock.advance())
    s.sample(clock.advance())
    assert s.values == [15.0, 60.0]


def test_the_delta_gate_sees_the_filtered_value(log):
    clock = Clock()
    make = Factory(a=[(20.0,), (20.0,), (90.0,)])
    s = SensorSet(
        specs({"type": "sim", "name": "a", "delta": 1, "filter": {"type": "median", "size": 3}}),
        log,
        clock,
        make,
    )
    assert [s.sample(clock.advance()) for _ in range(3)] == [True, False, False]


def test_filters_start_afresh_after_an_outage(log):
    clock = Clock()
    make = Factory(a=[(10.0,), OSError(110), (30.0,)])
    s = SensorSet(
        specs({"type": "sim", "name": "a", "filter": {"type": "ema", "alpha": 0.1}}),
        log,
        clock,
        make,
    )
    for _ in range(3):
        s.sample(clock.advance())
    assert s.values == [30.0]


# --- the default driver factory ---------------------------------------------------------------


def test_describe_names_where_a_sensor_is_wired():
    dht22, bme, mcu = specs(
        {"type": "dht22", "name": "room", "pin": 4},
        {"type": "bme280", "name": "air", "address": 0x77, "i2c": 1},
        {"type": "mcu", "name": "chip"},
    )
    assert (describe(dht22), describe(bme), describe(mcu)) == (
        "room (dht22 on pin 4)",
        "air (bme280 at 0x77 on i2c 1)",
        "chip (mcu)",
    )


def test_driver_for_builds_a_sim_sensor_on_the_given_clock():
    (sim,) = specs({"type": "sim", "name": "t"})
    assert isinstance(driver_for(sim, Clock()), SimSensor)


DRIVER_MODULES = [
    ("sim", "sim"),
    ("mcu", "mcu"),
    ("dht11", "dht"),
    ("dht22", "dht"),
    ("ds18b20", "ds18b20"),
    ("bme280", "bme280"),
    ("adc", "adc"),
]


@pytest.mark.parametrize(("kind", "module"), DRIVER_MODULES)
def test_driver_for_asks_each_type_s_own_module(kind, module, monkeypatch):
    import importlib

    driver = importlib.import_module("firmware.sensor_" + module)
    monkeypatch.setattr(driver, "make", lambda spec, clock: (module, spec["type"], clock))
    clock = Clock()
    assert driver_for({"type": kind}, clock) == (module, kind, clock)


def test_every_sensor_type_has_a_driver_and_others_are_refused():
    assert {kind for kind, _ in DRIVER_MODULES} == set(config.SENSOR_TYPES)
    for kind in ("dht", "sim:sim", "", "temperature"):
        with pytest.raises(ValueError, match="unknown sensor type"):
            driver_for({"type": kind}, Clock())


def test_default_factory_imports_only_the_drivers_in_use(log, monkeypatch):
    for name in ("sim", "mcu", "dht", "ds18b20", "bme280", "adc"):
        monkeypatch.delitem(sys.modules, "firmware.sensor_" + name, raising=False)
    SensorSet(specs({"type": "sim", "name": "t"}), log, Clock())
    loaded = sorted(m for m in sys.modules if m.startswith("firmware.sensor_"))
    assert loaded == ["firmware.sensor_sim"]


def test_default_factory_reads_a_dht22_on_stubbed_hardware(log):
    dht.sensors[4] = {"temperature": 22.5, "humidity": 48.0}
    clock = Clock()
    s = SensorSet(specs({"type": "dht22", "name": "room", "pin": 4}), log, clock)
    s.sample(clock.now)
    assert s.values == [22.5, 48.0]


def test_default_factory_logs_an_absent_ds18b20_with_its_pin(log):
    SensorSet(specs({"type": "ds18b20", "name": "water", "pin": 5}), log, Clock())
    assert sensor_lines(log) == [
        "sensor: water (ds18b20 on pin 5): no DS18B20 answers on pin 5 "
        "(check wiring and the 4.7k pull-up); its keys report null"
    ]


def test_default_factory_pipelines_a_ds18b20_and_reports_from_the_second_cycle(log):
    onewire.bus(5).temps[bytes.fromhex("28ff641e0f0000a1")] = 18.25
    clock = Clock()
    s = SensorSet(specs({"type": "ds18b20", "name": "water", "pin": 5}), log, clock)
    s.sample(clock.advance(1000))
    first = list(s.values)
    s.sample(clock.advance(1000))
    assert (first, s.values) == ([None], [18.25])


def test_default_factory_runs_the_sim_sensor_on_config_defaults(log):
    clock = Clock()
    (sim,) = specs(*config.DEFAULTS["sensors"])
    s = SensorSet([sim], log, clock)
    s.sample(clock.advance())
    assert s.keys == ["temperature"] and isinstance(s.values[0], float)


# --- the real MicroPython runtime -------------------------------------------------------------


@pytest.fixture(scope="module")
def mpy_check():
    if not os.path.exists(MICROPYTHON):
        pytest.skip("no MicroPython runtime at " + MICROPYTHON)
    script = os.path.join(ROOT, "host_tests", "mpy_sensors_check.py")
    done = subprocess.run(
        [MICROPYTHON, script], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert done.returncode == 0, done.stderr + done.stdout
    facts = {}
    for line in done.stdout.splitlines():
        if line.startswith("check "):
            name, _, value = line[len("check ") :].partition(": ")
            facts[name] = value
    return facts


def test_micropython_samples_the_sensor_set_with_its_keys(mpy_check):
    assert mpy_check["keys"] == "temperature,smooth,gated,broken"


def test_micropython_sim_values_are_floats_in_range(mpy_check):
    assert (mpy_check["numbers"], mpy_check["in_range"]) == ("True", "True")


def test_micropython_failing_sensor_reports_null_and_counts_errors(mpy_check):
    assert (mpy_check["broken_value"], mpy_check["errors"]) == ("None", "5")


def test_micropython_failing_sensor_is_logged_once(mpy_check):
    assert mpy_check["log_lines"] == "1"
    assert mpy_check["log"].startswith("sensor: broken read failed: ")


def test_micropython_due_flags_follow_delta_and_failures(mpy_check):
    # temperature and smooth always, gated only first, broken only when it starts failing.
    assert mpy_check["due"] == "1111 1101 1101 1101 1101"


def test_micropython_sim_series_equals_cpython_series(mpy_check):
    (sim,) = specs(
        {"type": "sim", "name": "temperature", "base": 20.0, "amplitude": 5.0, "period_s": 600}
    )
    clock = Clock(PERIOD - 2500)
    s = SensorSet([sim], lambda tag, msg: None, clock)
    s.sample(clock.advance(1000))
    assert float(mpy_check["deterministic"]) == pytest.approx(s.values[0], abs=1e-9)


def test_micropython_median_update_allocates_nothing(mpy_check):
    assert (mpy_check["median_alloc"], mpy_check["median"]) == ("0", "5.5")


def test_micropython_sampling_allocates_the_same_every_cycle(mpy_check):
    assert mpy_check["sample_alloc"].endswith("True")


def test_micropython_bme280_driver_computes_the_datasheet_example(mpy_check):
    assert mpy_check["bme280"] == "25.08 100653.27"


def test_micropython_ds18b20_driver_pipelines_its_conversions(mpy_check):
    assert (
        mpy_check["ds18b20"]
        == "conversion started; the first value comes with the next read | 18.5"
    )


def test_micropython_ds18b20_driver_refuses_a_rom_that_is_not_hex(mpy_check):
    assert mpy_check["ds18b20_bad_rom"] == "rom '28ff641e0f0000zz' is not 16 hex digits"


# --- what stays on the heap -------------------------------------------------------------------


def test_the_setup_code_leaves_once_the_set_is_built(log):
    SensorSet(specs({"type": "sim", "name": "t"}), log, Clock())
    assert "firmware.sensor_setup" not in sys.modules


def test_a_retry_loads_the_setup_code_and_drops_it_again(log):
    clock = Clock()
    f = Factory(t=[(1.0,)])
    f.absent["t"] = OSError(19)
    s = SensorSet(specs({"type": "sim", "name": "t"}), log, clock, f)
    del f.absent["t"]
    s.sample(clock.advance(_RETRY_MS))
    assert (f.attempts["t"], s.values) == (2, [1.0])
    assert "firmware.sensor_setup" not in sys.modules


def test_only_the_filter_in_use_is_loaded(log, monkeypatch):
    for name in ("median", "ema"):
        monkeypatch.delitem(sys.modules, "firmware.filter_" + name, raising=False)
    SensorSet(specs({"type": "sim", "name": "t", "filter": {"type": "ema"}}), log, Clock())
    loaded = sorted(m for m in sys.modules if m.startswith("firmware.filter_"))
    assert loaded == ["firmware.filter_ema"]
