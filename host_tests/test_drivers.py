"""Sensor drivers on stubbed hardware (firmware/sensor_*.py)."""

import math
import struct

import dht
import esp32
import machine
import onewire
import pytest
from conftest import TICKS_PERIOD as PERIOD
from conftest import Clock, validated_sensors

from firmware import config
from firmware.sensor_adc import ADCSensor
from firmware.sensor_bme280 import BME280
from firmware.sensor_dht import DHT
from firmware.sensor_ds18b20 import DS18B20
from firmware.sensor_mcu import McuTemperature
from firmware.sensor_setup import keys_for
from firmware.sensor_sim import SimSensor


def spec(**fields):
    """One sensor as config.validate hands it to the drivers, with every default filled in."""
    return validated_sensors(fields)[0]


# --- sim --------------------------------------------------------------------------------------


def sim_series(clock, n=50, step_ms=1000, **fields):
    s = SimSensor(spec(type="sim", name="t", **fields), clock.ticks_ms, clock.ticks_diff)
    out = []
    for _ in range(n):
        clock.advance(step_ms)
        out.append(s.read()[0])
    return out


def test_sim_same_seed_gives_the_same_series():
    assert sim_series(Clock(), seed=7) == sim_series(Clock(), seed=7)


def test_sim_different_seeds_give_different_series():
    assert sim_series(Clock(), seed=7) != sim_series(Clock(), seed=8)


def test_sim_stays_within_base_plus_minus_amplitude_plus_noise():
    out = sim_series(Clock(), n=2000, step_ms=777, base=20, amplitude=5, noise=0.5, period_s=60)
    assert 14.5 <= min(out) < 15.5 and 24.5 < max(out) <= 25.5


def test_sim_noise_spans_its_range_rather_than_sticking_to_one_side():
    out = sim_series(Clock(), n=500, base=0, amplitude=0, noise=1, seed=1)
    assert min(out) < -0.9 and max(out) > 0.9


def test_sim_without_noise_is_the_sine_wave_counted_from_construction():
    clock = Clock(1234)
    s = SimSensor(
        spec(type="sim", name="t", base=10, amplitude=2, noise=0, period_s=40),
        clock.ticks_ms,
        clock.ticks_diff,
    )
    clock.advance(10000)  # a quarter period: the crest
    assert s.read()[0] == pytest.approx(12.0)


def test_sim_keeps_its_phase_across_the_tick_wrap():
    fields = {"base": 0, "amplitude": 1, "noise": 0, "period_s": 7}
    plain = sim_series(Clock(0), n=10, step_ms=1300, **fields)
    wrapped = sim_series(Clock(PERIOD - 5000), n=10, step_ms=1300, **fields)
    assert wrapped == pytest.approx(plain)


def test_sim_reaches_its_crest_across_the_tick_wrap():
    clock = Clock(PERIOD - 2500)
    s = SimSensor(
        spec(type="sim", name="t", base=0, amplitude=1, noise=0, period_s=20),
        clock.ticks_ms,
        clock.ticks_diff,
    )
    clock.advance(5000)  # a quarter period, across the wrap
    assert s.read()[0] == pytest.approx(1.0)


def test_sim_noise_generator_is_a_32_bit_xorshift():
    def xorshift32(x):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        return x

    clock = Clock()
    s = SimSensor(spec(type="sim", name="t", seed=12345), clock.ticks_ms, clock.ticks_diff)
    x = (s._hi << 16) | s._lo
    for _ in range(100):
        x = xorshift32(x)
        assert s._step() == x >> 16


def test_sim_seed_0_still_gives_varying_noise():
    out = sim_series(Clock(), n=20, base=0, amplitude=0, noise=1, seed=0)
    assert len(set(out)) > 10


def test_sim_fills_one_key_named_for_the_sensor():
    clock = Clock()
    s = SimSensor(spec(type="sim", name="outdoor"), clock.ticks_ms, clock.ticks_diff)
    assert s.keys == ("outdoor",)


# --- mcu --------------------------------------------------------------------------------------


def test_mcu_on_rp2_converts_adc_channel_4_with_the_rp2040_formula():
    machine.ADC.level[4] = 14000
    volts = 14000 * 3.3 / 65535
    assert McuTemperature(spec(type="mcu", name="chip"), "rp2").read() == (
        pytest.approx(27 - (volts - 0.706) / 0.001721),
    )


def test_mcu_on_rp2_reads_27_degrees_at_0_706_volts():
    machine.ADC.level[4] = round(0.706 / 3.3 * 65535)
    (t,) = McuTemperature(spec(type="mcu", name="chip"), "rp2").read()
    assert t == pytest.approx(27.0, abs=0.05)


def test_mcu_on_esp32_uses_mcu_temperature_where_the_chip_has_it(monkeypatch):
    monkeypatch.setattr(esp32, "mcu_temperature", lambda: 41.5, raising=False)
    assert McuTemperature(spec(type="mcu", name="chip"), "esp32").read() == (41.5,)


def test_mcu_on_the_original_esp32_converts_raw_fahrenheit():
    esp32.state["raw_f"] = 131
    assert McuTemperature(spec(type="mcu", name="chip"), "esp32").read() == (pytest.approx(55.0),)


def test_mcu_on_another_platform_refuses_with_the_platform_named():
    with pytest.raises(OSError, match="linux"):
        McuTemperature(spec(type="mcu", name="chip"), "linux")


def test_mcu_picks_the_board_from_sys_platform(monkeypatch):
    monkeypatch.setattr("sys.platform", "rp2")
    machine.ADC.level[4] = 0
    (t,) = McuTemperature(spec(type="mcu", name="chip")).read()
    assert t == pytest.approx(27 + 0.706 / 0.001721)


# --- dht --------------------------------------------------------------------------------------


def test_dht22_reads_temperature_and_humidity_from_its_pin():
    dht.sensors[4] = {"temperature": 21.5, "humidity": 40.2}
    assert DHT(spec(type="dht22", name="room", pin=4)).read() == (21.5, 40.2)


def test_dht11_reads_through_the_dht11_class():
    dht.sensors[5] = {"temperature": 23, "humidity": 45}
    d = DHT(spec(type="dht11", name="room", pin=5))
    assert isinstance(d._dev, dht.DHT11) and d.read() == (23, 45)


def test_dht_fills_temperature_and_humidity_keys():
    assert DHT(spec(type="dht22", name="room", pin=4)).keys == (
        "room_temperature",
        "room_humidity",
    )


def test_dht_checksum_error_raises_oserror():
    dht.sensors[4] = {"temperature": 21.5, "humidity": 40.2}
    dht.faults[4] = OSError("checksum error")
    with pytest.raises(OSError):
        DHT(spec(type="dht22", name="room", pin=4)).read()


def test_dht_absent_raises_oserror_on_read_not_on_construction():
    d = DHT(spec(type="dht22", name="room", pin=4))
    with pytest.raises(OSError):
        d.read()


def test_dht22_read_within_2_s_returns_the_last_values_without_measuring():
    clock = Clock()
    dht.sensors[4] = {"temperature": 21.5, "humidity": 40.2}
    d = DHT(spec(type="dht22", name="room", pin=4), clock)
    d.read()
    dht.sensors[4] = {"temperature": 30.0, "humidity": 10.0}
    clock.advance(1999)
    assert (d.read(), dht.measures[4]) == ((21.5, 40.2), 1)


def test_dht22_measures_again_after_2_s():
    clock = Clock()
    dht.sensors[4] = {"temperature": 21.5, "humidity": 40.2}
    d = DHT(spec(type="dht22", name="room", pin=4), clock)
    d.read()
    dht.sensors[4] = {"temperature": 30.0, "humidity": 10.0}
    clock.advance(2000)
    assert d.read() == (30.0, 10.0)


def test_dht_read_too_soon_after_a_failure_fails_without_disturbing_the_sensor():
    clock = Clock()
    d = DHT(spec(type="dht22", name="room", pin=4), clock)
    with pytest.raises(OSError):
        d.read()
    dht.sensors[4] = {"temperature": 21.5, "humidity": 40.2}
    clock.advance(500)
    with pytest.raises(OSError):
        d.read()
    assert dht.measures[4] == 1


# --- ds18b20 ----------------------------------------------------------------------------------

ROM_A = bytes.fromhex("28ff641e0f0000a1")
ROM_B = bytes.fromhex("28aa01020304054c")


def ds(pin=6, clock=None, **fields):
    return DS18B20(spec(type="ds18b20", name="water", pin=pin, **fields), clock)


def test_ds18b20_first_read_starts_a_conversion_and_raises():
    onewire.bus(6).temps[ROM_A] = 19.5
    d = ds()
    with pytest.raises(OSError, match="conversion started"):
        d.read()
    assert onewire.bus(6).conversions == 1


def test_ds18b20_second_read_returns_the_temperature():
    onewire.bus(6).temps[ROM_A] = 19.5
    d = ds()
    with pytest.raises(OSError):
        d.read()
    assert d.read() == (19.5,)


def test_ds18b20_each_read_returns_the_conversion_the_previous_read_started():
    bus = onewire.bus(6)
    bus.temps[ROM_A] = 19.5
    d = ds()
    with pytest.raises(OSError):
        d.read()  # starts a conversion of 19.5
    bus.temps[ROM_A] = 22.0
    first = d.read()  # collects 19.5, starts one of 22.0
    bus.temps[ROM_A] = 25.0
    assert (first, d.read()) == ((19.5,), (22.0,))


def test_ds18b20_takes_the_first_device_found_without_a_rom():
    onewire.bus(6).temps.update({ROM_A: 19.5, ROM_B: 30.0})
    assert ds().rom == ROM_A


def test_ds18b20_chooses_the_device_by_rom_hex():
    onewire.bus(6).temps.update({ROM_A: 19.5, ROM_B: 30.0})
    d = ds(rom=ROM_B.hex())
    with pytest.raises(OSError):
        d.read()
    assert d.read() == (30.0,)


def test_ds18b20_unknown_rom_raises_naming_the_roms_found():
    onewire.bus(6).temps[ROM_A] = 19.5
    with pytest.raises(OSError, match=ROM_A.hex()):
        ds(rom=ROM_B.hex())


def test_ds18b20_rom_that_is_not_hex_raises_valueerror():
    onewire.bus(6).temps[ROM_A] = 19.5
    bad = dict(spec(type="ds18b20", name="water", pin=6), rom="28ff641e0f0000zz")
    with pytest.raises(ValueError, match="hex"):
        DS18B20(bad, None)


def test_config_refuses_a_ds18b20_rom_that_is_not_hex(log):
    config.validate({"sensors": [{"type": "ds18b20", "name": "w", "pin": 6, "rom": "zz" * 8}]}, log)
    assert "sensors[0].rom = 'zzzzzzzzzzzzzzzz' is not 16 hex digits" in log.text()


def test_ds18b20_no_device_on_the_pin_raises_naming_the_pin():
    with pytest.raises(OSError, match="pin 6"):
        ds()


def test_ds18b20_power_on_value_85_is_a_fault():
    onewire.bus(6).temps[ROM_A] = 85.0
    d = ds()
    with pytest.raises(OSError):
        d.read()
    with pytest.raises(OSError, match="85"):
        d.read()


def test_ds18b20_crc_error_fails_one_read_and_the_next_conversion_still_runs():
    bus = onewire.bus(6)
    bus.temps[ROM_A] = 19.5
    d = ds()
    with pytest.raises(OSError):
        d.read()
    bus.crc_error = True
    with pytest.raises(Exception, match="CRC"):
        d.read()
    assert d.read() == (19.5,)


def test_ds18b20_bus_gone_raises_onewire_error():
    bus = onewire.bus(6)
    bus.temps[ROM_A] = 19.5
    d = ds()
    with pytest.raises(OSError):
        d.read()
    bus.fault = onewire.OneWireError()
    with pytest.raises(onewire.OneWireError):
        d.read()


def test_ds18b20_read_before_750_ms_returns_the_previous_value_without_a_new_conversion():
    clock = Clock()
    bus = onewire.bus(6)
    bus.temps[ROM_A] = 19.5
    d = ds(clock=clock)
    with pytest.raises(OSError):
        d.read()
    clock.advance(750)
    d.read()
    bus.temps[ROM_A] = 22.0
    clock.advance(500)
    assert (d.read(), bus.conversions) == ((19.5,), 2)


def test_ds18b20_read_before_the_first_conversion_finished_raises():
    clock = Clock()
    onewire.bus(6).temps[ROM_A] = 19.5
    d = ds(clock=clock)
    with pytest.raises(OSError):
        d.read()
    clock.advance(100)
    with pytest.raises(OSError, match="still running"):
        d.read()


# --- bme280 -----------------------------------------------------------------------------------

# The worked example of Bosch's BMP280 datasheet (section 3.12), whose temperature and pressure
# compensation the BME280 shares: 25.08 degrees C and 100653.27 Pa.
DATASHEET_TP = {
    "T1": 27504, "T2": 26435, "T3": -1000,
    "P1": 36477, "P2": -10685, "P3": 3024, "P4": 2855, "P5": 140, "P6": -7,
    "P7": 15500, "P8": -14600, "P9": 6000,
}  # fmt: skip
ADC_T, ADC_P = 519888, 415148
# Humidity words of a typical BME280.
HUMIDITY = {"H1": 75, "H2": 362, "H3": 0, "H4": 313, "H5": 50, "H6": 30}
ADC_H = 30000


def bme280_registers(chip_id=0x60, adc_t=ADC_T, adc_p=ADC_P, adc_h=ADC_H, **calib):
    c = dict(DATASHEET_TP, **HUMIDITY)
    c.update(calib)
    regs = bytearray(256)
    regs[0xD0] = chip_id
    words = [c[k] for k in ("T1", "T2", "T3", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9")]
    struct.pack_into("<HhhHhhhhhhhh", regs, 0x88, *words)
    regs[0xA1] = c["H1"]
    struct.pack_into("<hB", regs, 0xE1, c["H2"], c["H3"])
    h4, h5 = c["H4"] & 0xFFF, c["H5"] & 0xFFF  # 12-bit two's complement, nibbles shared at 0xE5
    regs[0xE4:0xE8] = bytes([h4 >> 4, (h4 & 0xF) | (h5 & 0xF) << 4, h5 >> 4, c["H6"] & 0xFF])
    for reg, value in ((0xF7, adc_p), (0xFA, adc_t)):
        regs[reg : reg + 3] = bytes([value >> 12, (value >> 4) & 0xFF, (value & 0xF) << 4])
    regs[0xFD:0xFF] = adc_h.to_bytes(2, "big")
    return regs


def humidity_per_datasheet_integer_formula(adc_h, t_fine, H1, H2, H3, H4, H5, H6):
    """bme280_compensate_H_int32 (BME280 datasheet 4.2.3): an independent fixed-point path."""
    v = t_fine - 76800
    v = ((((adc_h << 14) - (H4 << 20) - (H5 * v)) + 16384) >> 15) * (
        ((((((v * H6) >> 10) * (((v * H3) >> 11) + 32768)) >> 10) + 2097152) * H2 + 8192) >> 14
    )
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * H1) >> 4)
    v = max(0, min(v, 419430400))
    return (v >> 12) / 1024


def t_fine_per_datasheet_integer_formula(adc_t, T1, T2, T3):
    var1 = (((adc_t >> 3) - (T1 << 1)) * T2) >> 11
    var2 = (((((adc_t >> 4) - T1) * ((adc_t >> 4) - T1)) >> 12) * T3) >> 14
    return var1 + var2


def bme(address=0x76, **fields):
    return BME280(spec(type="bme280", name="air", address=address, **fields))


def test_bme280_temperature_matches_the_datasheet_example():
    machine.I2C.devices[0x76] = bme280_registers()
    assert bme().read()[0] == pytest.approx(25.08, abs=0.005)


def test_bme280_pressure_matches_the_datasheet_example_in_hpa():
    machine.I2C.devices[0x76] = bme280_registers()
    assert bme().read()[2] == pytest.approx(1006.5327, abs=0.0001)  # 100653.27 Pa


def test_bme280_humidity_agrees_with_the_datasheet_integer_formula():
    machine.I2C.devices[0x76] = bme280_registers()
    t_fine = t_fine_per_datasheet_integer_formula(ADC_T, 27504, 26435, -1000)
    expected = humidity_per_datasheet_integer_formula(ADC_H, t_fine, **HUMIDITY)
    assert 40 < expected < 70 and bme().read()[1] == pytest.approx(expected, abs=0.01)


def test_bme280_humidity_is_clipped_to_100():
    machine.I2C.devices[0x76] = bme280_registers(adc_h=60000)
    assert bme().read()[1] == 100.0


def test_bme280_reads_signed_12_bit_humidity_words():
    machine.I2C.devices[0x76] = bme280_registers(H4=-5, H5=-300)
    b = bme()
    assert (b.h4, b.h5) == (-5, -300)


def test_bme280_fills_temperature_humidity_and_pressure_keys():
    machine.I2C.devices[0x76] = bme280_registers()
    assert bme().keys == ("air_temperature", "air_humidity", "air_pressure")


def test_bme280_uses_the_configured_address():
    machine.I2C.devices[0x77] = bme280_registers(adc_t=ADC_T)
    assert bme(address=0x77).read()[0] == pytest.approx(25.08, abs=0.005)


def test_bme280_starts_normal_mode_with_x1_oversampling_and_1_s_standby():
    regs = machine.I2C.devices[0x76] = bme280_registers()
    bme()
    assert (regs[0xF2], regs[0xF4], regs[0xF5]) == (0x01, 0x27, 0xA0)


def test_bme280_with_sda_and_scl_builds_the_bus_on_those_pins():
    machine.I2C.devices[0x76] = bme280_registers()
    bus = bme(i2c=1, sda=21, scl=22)._i2c
    assert (bus.id, bus.sda.id, bus.scl.id) == (1, 21, 22)


def test_bme280_without_pins_uses_the_bus_defaults():
    machine.I2C.devices[0x76] = bme280_registers()
    bus = bme(i2c=1)._i2c
    assert (bus.id, bus.sda, bus.scl) == (1, None, None)


def test_bme280_with_only_one_of_sda_and_scl_refuses():
    machine.I2C.devices[0x76] = bme280_registers()
    one_pin = dict(spec(type="bme280", name="air"), sda=21)  # config.validate refuses this
    with pytest.raises(ValueError, match="sda and scl"):
        BME280(one_pin)


def test_bme280_other_chip_id_is_named_in_the_error():
    machine.I2C.devices[0x76] = bme280_registers(chip_id=0x58)
    with pytest.raises(OSError, match="0x58.*BMP280"):
        bme()


def test_bme280_absent_names_the_address_and_the_devices_found():
    machine.I2C.devices[0x3C] = bytearray(256)
    with pytest.raises(OSError, match="0x76.*0x3c"):
        bme()


def test_bme280_before_its_first_measurement_raises():
    machine.I2C.devices[0x76] = bme280_registers(adc_t=0x80000, adc_p=0x80000, adc_h=0x8000)
    with pytest.raises(OSError, match="no measurement"):
        bme().read()


def test_bme280_bus_fault_on_read_raises_oserror():
    machine.I2C.devices[0x76] = bme280_registers()
    b = bme()
    machine.I2C.fault[0x76] = OSError(116)
    with pytest.raises(OSError):
        b.read()


def test_bme280_reads_into_the_same_buffer_every_time():
    machine.I2C.devices[0x76] = bme280_registers()
    b = bme()
    buf = b._buf
    b.read()
    b.read()
    assert b._buf is buf and len(buf) == 8


# --- adc --------------------------------------------------------------------------------------


def test_adc_applies_scale_and_offset_to_read_u16():
    machine.ADC.level[26] = 1000
    assert ADCSensor(spec(type="adc", name="light", pin=26, scale=0.01, offset=-5)).read() == (
        pytest.approx(5.0),
    )


def test_adc_fault_raises():
    machine.ADC.fault[26] = OSError(5)
    with pytest.raises(OSError):
        ADCSensor(spec(type="adc", name="light", pin=26)).read()


# --- the keys every driver fills, as the sensor set expects them ------------------------------


def test_every_driver_fills_the_keys_the_sensor_set_reserves_for_it():
    dht.sensors[4] = {"temperature": 20, "humidity": 50}
    onewire.bus(6).temps[ROM_A] = 19.5
    machine.I2C.devices[0x76] = bme280_registers()
    built = [
        (SimSensor, spec(type="sim", name="a"), (Clock().ticks_ms, Clock().ticks_diff)),
        (McuTemperature, spec(type="mcu", name="b"), ("rp2",)),
        (DHT, spec(type="dht11", name="c", pin=4), ()),
        (DHT, spec(type="dht22", name="d", pin=4), ()),
        (DS18B20, spec(type="ds18b20", name="e", pin=6), ()),
        (BME280, spec(type="bme280", name="f"), ()),
        (ADCSensor, spec(type="adc", name="g", pin=26), ()),
    ]
    assert sorted({s["type"] for _, s, _ in built}) == sorted(config.SENSOR_TYPES)
    for cls, s, args in built:
        assert cls(s, *args).keys == keys_for(s), s["type"]


def test_no_driver_module_imports_a_hardware_module_at_import(monkeypatch):
    import importlib
    import sys

    drivers = ["firmware.sensor_" + n for n in ("sim", "mcu", "dht", "ds18b20", "bme280", "adc")]
    hardware = ("dht", "onewire", "ds18x20", "esp32")
    for name in drivers + list(hardware):
        monkeypatch.delitem(sys.modules, name, raising=False)  # restored after the test
    for name in drivers:
        importlib.import_module(name)
    assert [m for m in hardware if m in sys.modules] == []


def test_sim_wave_math_matches_the_documented_formula():
    clock = Clock()
    s = SimSensor(
        spec(type="sim", name="t", base=3, amplitude=4, noise=0, period_s=100),
        clock.ticks_ms,
        clock.ticks_diff,
    )
    clock.advance(37000)
    assert s.read()[0] == pytest.approx(3 + 4 * math.sin(2 * math.pi * 37 / 100))
