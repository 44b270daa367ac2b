# esp32 for the virtual board: what ESP32_GENERIC has for the firmware. That build has only
# raw_temperature() (degrees Fahrenheit); mcu_temperature() exists on the S2/S3/C3/C6 builds,
# so it is left out here to keep the firmware on the original ESP32's code path. Host-only.
import _vboard

if _vboard.PLATFORM != "esp32":
    raise ImportError("no module named 'esp32'")


def raw_temperature():
    # The die runs warm; the supervisor's chip temperature switch (degrees C) sets it.
    return int(_vboard.switch("mcu_c", 27.0) * 9 / 5 + 32 + 0.5)
