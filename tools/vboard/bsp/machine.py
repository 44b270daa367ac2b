# machine for the virtual board: the calls the firmware makes, with the port's own constants and
# a board on which nothing is wired. Host-only; shadows the unix port's built-in machine module.
# The reset causes (PWRON_RESET...) come from constants.txt when asked for (network.py says why).
import time

import _vboard
from micropython import const

_PWRON_RESET = const(1)
_WDT_RESET = const(3)
_SOFT_RESET = const(5)  # the ESP32's; the RP2040 has none
_freq = [160000000 if _vboard.PLATFORM == "esp32" else 125000000]


def unique_id():
    import binascii

    return binascii.unhexlify(_vboard.UID)


def reset_cause():
    # After a soft reset (Ctrl-D, machine.soft_reset()) the ESP32 says SOFT_RESET; the RP2040 has
    # no such cause and keeps reporting what started the chip. The RP2040 knows only power-on and
    # watchdog resets; its machine.reset() is a watchdog reboot.
    esp32 = _vboard.PLATFORM == "esp32"
    if _vboard.SOFT and esp32:
        return _SOFT_RESET
    if _vboard.CAUSE == "pwron":
        return _PWRON_RESET
    if _vboard.CAUSE == "reset" and esp32:
        return _SOFT_RESET
    return _WDT_RESET


def reset():
    # The supervisor sees this exit code and starts the board again. Unlike a real reset this
    # unwinds the stack: `finally` blocks run, and a bare `except:` would even stop it.
    raise SystemExit(_vboard.RESET_EXIT)


def soft_reset():
    # As on the boards: SystemExit, which the launcher turns into a soft reset.
    raise SystemExit(_vboard.SOFT_EXIT)


def freq(value=None):
    if value is None:
        return _freq[0]
    _freq[0] = value


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
        found = _vboard.constant("machine", name)
        if found is None:
            raise AttributeError(name)
        return found  # (not kept: a name the program asks for is interned by its own code)
    globals()[name] = found  # looked up once
    return found
