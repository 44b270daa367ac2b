"""CPython stand-in for MicroPython's esp32 module: the chip's temperature sensor.

raw_temperature() returns state["raw_f"] (degrees F, as on the original ESP32). The newer chips'
mcu_temperature() is absent here, as on an original ESP32 build; a test adds it with
monkeypatch.setattr(esp32, "mcu_temperature", ..., raising=False).
"""

state = {"raw_f": 122}


def reset_stub():
    state.clear()
    state["raw_f"] = 122


def raw_temperature():
    return state["raw_f"]
