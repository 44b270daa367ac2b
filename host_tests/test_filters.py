"""Smoothing filters (firmware/filter_median.py, firmware/filter_ema.py) and the report-on-change
gate (firmware/sensors.py)."""

import pytest
from conftest import TICKS_PERIOD as PERIOD
from conftest import FakeClock

from firmware.filter_ema import Ema
from firmware.filter_median import MovingMedian
from firmware.sensor_setup import make_filter
from firmware.sensors import ChangeGate

ticks_diff = FakeClock().ticks_diff  # time.ticks_diff, wrap-around at 2**30 included


def feed(f, xs):
    return [f.update(x) for x in xs]


# --- MovingMedian -----------------------------------------------------------------------------


def test_median_follows_the_middle_of_the_last_size_values():
    assert feed(MovingMedian(3), [5, 1, 9, 3, 100, 4]) == [5, 3, 5, 3, 9, 4]


def test_median_drops_a_single_spike():
    out = feed(MovingMedian(5), [20.0, 20.1, 19.9, 85.0, 20.2, 20.0])
    assert max(out) < 21


def test_median_of_an_even_count_during_warm_up_averages_the_middle_two():
    assert feed(MovingMedian(5), [4.0, 8.0]) == [4.0, 6.0]


def test_median_window_forgets_values_older_than_its_size():
    m = MovingMedian(3)
    feed(m, [100, 100, 100])
    assert feed(m, [1, 1]) == [100, 1]


def test_median_reset_starts_a_new_window():
    m = MovingMedian(3)
    feed(m, [100, 100, 100])
    m.reset()
    assert m.update(7) == 7


def test_median_keeps_its_storage_between_updates():
    m = MovingMedian(5)
    ring, scratch = m._ring, m._scratch
    feed(m, range(20))
    assert m._ring is ring and m._scratch is scratch and len(ring) == len(scratch) == 5


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 15])
def test_median_is_the_middle_of_the_window_over_a_long_run_with_repeats(size):
    import random
    import statistics

    rnd = random.Random(size)
    xs = [float(rnd.randint(0, 9)) for _ in range(300)]  # repeats: the oldest found by value
    m = MovingMedian(size)
    for i, x in enumerate(xs):
        assert m.update(x) == statistics.median(xs[max(0, i + 1 - size) : i + 1]), i


def test_median_passes_nan_on_and_keeps_its_window():
    m = MovingMedian(3)
    feed(m, [1.0, 2.0, 3.0])
    got = m.update(float("nan"))
    assert got != got  # NaN, as it came (the encoder reports null)
    assert m.update(4.0) == 3.0  # the window is 2, 3, 4: the NaN never entered it


def test_median_refuses_a_size_below_one():
    with pytest.raises(ValueError):
        MovingMedian(0)


# --- Ema --------------------------------------------------------------------------------------


def test_ema_passes_the_first_value_through():
    assert Ema(0.3).update(12.5) == 12.5


def test_ema_moves_alpha_of_the_way_to_each_new_value():
    assert feed(Ema(0.5), [10.0, 20.0, 20.0]) == [10.0, 15.0, 17.5]


def test_ema_with_alpha_one_is_no_smoothing():
    assert feed(Ema(1), [3.0, 9.0, -1.0]) == [3.0, 9.0, -1.0]


def test_ema_reset_forgets_the_average():
    e = Ema(0.1)
    feed(e, [100.0, 100.0])
    e.reset()
    assert e.update(5.0) == 5.0


def test_ema_refuses_alpha_outside_zero_to_one():
    with pytest.raises(ValueError):
        Ema(1.5)


# --- make_filter ------------------------------------------------------------------------------


def test_make_filter_without_a_spec_gives_none():
    assert make_filter(None) is None


def test_make_filter_builds_a_median_of_the_configured_size():
    f = make_filter({"type": "median", "size": 7})
    assert isinstance(f, MovingMedian) and f.size == 7


def test_make_filter_builds_an_ema_with_the_configured_alpha():
    f = make_filter({"type": "ema", "alpha": 0.25})
    assert isinstance(f, Ema) and f.alpha == 0.25


def test_make_filter_accepts_what_config_validation_produces(log):
    from firmware import config

    cfg, _ = config.validate(
        {"sensors": [{"type": "sim", "name": "t", "filter": {"type": "median"}}]}, log
    )
    f = make_filter(cfg["sensors"][0]["filter"])
    assert isinstance(f, MovingMedian) and f.size == config._FILTERS["median"][0][1]


def test_make_filter_refuses_an_unknown_type():
    with pytest.raises(ValueError):
        make_filter({"type": "kalman"})


# --- ChangeGate -------------------------------------------------------------------------------


def test_gate_reports_the_first_reading():
    assert ChangeGate(0.5, 60000).due((20.0,), 0, ticks_diff)


def test_gate_holds_back_a_change_smaller_than_delta():
    g = ChangeGate(0.5, 60000)
    g.due((20.0,), 0, ticks_diff)
    assert not g.due((20.4,), 1000, ticks_diff)


def test_gate_reports_a_change_of_exactly_delta():
    g = ChangeGate(0.5, 60000)
    g.due((20.0,), 0, ticks_diff)
    assert g.due((20.5,), 1000, ticks_diff)


def test_gate_reports_a_fall_as_well_as_a_rise():
    g = ChangeGate(0.5, 60000)
    g.due((20.0,), 0, ticks_diff)
    assert g.due((19.0,), 1000, ticks_diff)


def test_gate_measures_change_from_the_last_reported_value_so_slow_drift_is_reported():
    g = ChangeGate(1.0, 60000)
    g.due((0.0,), 0, ticks_diff)
    assert [g.due((v,), 1000, ticks_diff) for v in (0.4, 0.8, 1.2)] == [False, False, True]


def test_gate_reports_when_any_one_of_several_values_moves():
    g = ChangeGate(1.0, 60000)
    g.due((20.0, 50.0, 1000.0), 0, ticks_diff)
    assert g.due((20.0, 50.0, 1001.5), 1000, ticks_diff)


def test_gate_keeps_a_copy_of_what_it_reported_not_the_callers_list():
    g = ChangeGate(1.0, 60000)
    buf = [20.0]
    g.due(buf, 0, ticks_diff)
    buf[0] = 25.0  # the caller reuses its buffer
    assert g.due(buf, 1000, ticks_diff)


def test_gate_reports_after_max_silence_without_change():
    g = ChangeGate(1.0, 60000)
    g.due((20.0,), 0, ticks_diff)
    assert (g.due((20.0,), 59999, ticks_diff), g.due((20.0,), 60000, ticks_diff)) == (False, True)


def test_gate_counts_max_silence_from_the_last_report():
    g = ChangeGate(1.0, 60000)
    g.due((20.0,), 0, ticks_diff)
    g.due((25.0,), 30000, ticks_diff)  # a change: reported, silence starts again
    assert not g.due((25.0,), 60000, ticks_diff)


def test_gate_reports_when_the_sensor_starts_failing():
    g = ChangeGate(1.0, 60000)
    g.due((20.0,), 0, ticks_diff)
    assert g.due(None, 1000, ticks_diff)


def test_gate_reports_a_continuing_failure_only_once():
    g = ChangeGate(1.0, 60000)
    g.due((20.0,), 0, ticks_diff)
    g.due(None, 1000, ticks_diff)
    assert not g.due(None, 2000, ticks_diff)


def test_gate_repeats_a_continuing_failure_after_max_silence():
    g = ChangeGate(1.0, 60000)
    g.due(None, 0, ticks_diff)
    assert g.due(None, 60000, ticks_diff)


def test_gate_reports_when_the_sensor_recovers_even_at_the_old_value():
    g = ChangeGate(1.0, 60000)
    g.due((20.0,), 0, ticks_diff)
    g.due(None, 1000, ticks_diff)
    assert g.due((20.0,), 2000, ticks_diff)


def test_gate_reports_a_first_reading_that_is_a_failure():
    assert ChangeGate(1.0, 60000).due(None, 0, ticks_diff)


def test_gate_max_silence_counts_across_the_tick_wrap():
    g = ChangeGate(1.0, 2000)
    g.due((20.0,), PERIOD - 1000, ticks_diff)
    assert (g.due((20.0,), 500, ticks_diff), g.due((20.0,), 1000, ticks_diff)) == (False, True)


def test_gate_treats_a_gap_beyond_half_the_tick_period_as_max_silence_elapsed():
    # max_silence_s may be up to 7 days; ticks_diff turns negative after 2**29 ms (6.2 days).
    g = ChangeGate(1.0, 7 * 86400 * 1000)
    g.due((20.0,), 0, ticks_diff)
    assert g.due((20.0,), PERIOD // 2 + 1000, ticks_diff)
