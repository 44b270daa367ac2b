# The microcontroller's own temperature sensor. It measures the chip, which runs warmer than the
# room (and on the original ESP32 by a wide, chip-specific margin): good for spotting overheating.
from micropython import const

_RP2 = const(1)
_ESP32_CELSIUS = const(2)
_ESP32_FAHRENHEIT = const(3)
_RP2_SENSOR_CHANNEL = const(4)  # ADC input 4 is the RP2040's temperature sensor


def rp2_celsius(raw_u16):
    # RP2040 datasheet 4.9.5: 0.706 V at 27 degrees C, -1.721 mV per degree; ADC reference 3.3 V.
    volts = raw_u16 * 3.3 / 65535
    return 27 - (volts - 0.706) / 0.001721


def esp32_celsius(raw_fahrenheit):
    # esp32.raw_temperature() answers in degrees Fahrenheit.
    return (raw_fahrenheit - 32) / 1.8


class McuTemperature:
    # platform: sys.platform unless given ("rp2" or "esp32"; anything else has no known sensor).
    def __init__(self, spec, platform=None):
        self.keys = (spec["name"],)
        if platform is None:
            import sys

            platform = sys.platform
        if platform == "rp2":
            import machine

            self._source = machine.ADC(_RP2_SENSOR_CHANNEL).read_u16
            self._mode = _RP2
        elif platform == "esp32":
            # Only reached on an ESP32; the Pico W's stubs rightly have no esp32 module.
            import esp32  # pyright: ignore[reportMissingImports]

            # ESP32-S2/S3/C3/C6 builds have mcu_temperature() in Celsius; the original ESP32 only
            # raw_temperature() in Fahrenheit.
            celsius = getattr(esp32, "mcu_temperature", None)
            if celsius is not None:
                self._source = celsius
                self._mode = _ESP32_CELSIUS
            else:
                self._source = esp32.raw_temperature
                self._mode = _ESP32_FAHRENHEIT
        else:
            raise OSError(
                "no chip temperature sensor known on platform %r (only rp2 and esp32)" % platform
            )

    def read(self):
        raw = self._source()
        mode = self._mode
        if mode == _RP2:
            return (rp2_celsius(raw),)
        if mode == _ESP32_CELSIUS:
            return (raw,)
        return (esp32_celsius(raw),)


def make(spec, clock):
    # What sensor_setup.driver_for() calls, the same for every driver.
    return McuTemperature(spec)
