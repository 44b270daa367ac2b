# machine for the virtual board: the calls the firmware makes, with the port's own constants and
# a board on which nothing is wired. Host-only; shadows the unix port's built-in machine module.
import time

import _vboard

_ESP32 = _vboard.PLATFORM == "esp32"

PWRON_RESET = 1
WDT_RESET = 3
if _ESP32:
    HARD_RESET = 2
    DEEPSLEEP_RESET = 4
    SOFT_RESET = 5
    _CAUSES = {"pwron": PWRON_RESET, "wdt": WDT_RESET, "reset": SOFT_RESET}
else:
    # The RP2040 knows only power-on and watchdog resets; its machine.reset() is a watchdog reboot.
    _CAUSES = {"pwron": PWRON_RESET, "wdt": WDT_RESET, "reset": WDT_RESET}
_freq = [160000000 if _ESP32 else 125000000]


def unique_id():
    import binascii

    return binascii.unhexlify(_vboard.UID)


def reset_cause():
    # After a soft reset (Ctrl-D, machine.soft_reset()) the ESP32 says SOFT_RESET; the RP2040 has
    # no such cause and keeps reporting what started the chip.
    if _vboard.SOFT and _ESP32:
        return SOFT_RESET
    return _CAUSES[_vboard.CAUSE]


def reset():
    # The supervisor sees this exit code and starts the board again. Unlike a real reset this
    # unwinds the stack: `finally` blocks run, and a bare `except:` would even stop it.
    raise SystemExit(_vboard.RESET_EXIT)


def soft_reset():
    # As on the boards: SystemExit, which the launcher turns into a soft reset.
    raise SystemExit(_vboard.SOFT_EXIT)


def freq(hz=None):
    if hz is None:
        return _freq[0]
    _freq[0] = hz


def idle():
    time.sleep_ms(1)


def __getattr__(name):
    # The peripherals come from modules of their own on first use, as a board has them in flash:
    # a program that never touches one does not carry its code on the heap.
    if name == "Pin":
        from _pin import Pin as found
    elif name in ("WDT", "ADC", "I2C", "SoftI2C"):
        import _machine_io

        found = getattr(_machine_io, name)
    else:
        raise AttributeError(name)
    globals()[name] = found  # looked up once
    return found
