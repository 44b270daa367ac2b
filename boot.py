# Safe mode: a bad build must never lock out the REPL. Ctrl-C in this window, or the board's
# button (ESP32: BOOT/GPIO0, Pico W: BOOTSEL) pressed during it, skips main.py. Pressed during it,
# not held at reset: either chip starts its own ROM bootloader when the button is down at reset.
import os
import time


def _finish_update():
    # An update cut short by a reset is finished or undone before anything else runs
    # (firmware/otaboot.py); a failure here must not stop the board from starting.
    try:
        import machine

        from firmware import otaboot

        wdt = getattr(machine, "WDT_RESET", None)
        otaboot.boot(otaboot.say, "watchdog" if machine.reset_cause() == wdt else "reset")
    except Exception as e:
        print("boot: update check failed (%r); starting what is there" % e)
    import sys

    # Forgotten as firmware/unload.py forgets a module: the package holds each one as an
    # attribute too, and without that the update code stayed on the heap for good (5 KB).
    firmware = sys.modules.get("firmware")
    for name in ("otaboot", "atomic"):
        sys.modules.pop("firmware." + name, None)
        if firmware is not None and hasattr(firmware, name):
            delattr(firmware, name)


try:
    os.stat("ota")  # otaboot.DIR: without it no update was ever offered and none is to finish
    _has_updates = True
except OSError:
    _has_updates = False
if _has_updates:
    _finish_update()
del _finish_update, _has_updates  # runs once; main.py shares these globals
UPDATE_CHECKED = True
SAFE_MODE = False
WINDOW_MS = 1500
_LOOK_MS = 20  # how often the button is looked at during the window
try:
    # The firmware's own restart after it checked new files (firmware/validated.py): main.py
    # ran a moment ago, and a window now would only hold the first reading back.
    os.stat("restarted")
    WINDOW_MS = 0
except OSError:
    pass


def _button_held():
    try:
        import sys

        if sys.platform == "rp2":
            import rp2

            return rp2.bootsel_button() == 1
        if sys.platform == "esp32":
            from machine import Pin

            return Pin(0, Pin.IN, Pin.PULL_UP).value() == 0
    except Exception:
        pass  # no button on this board: the Ctrl-C window still works
    return False


try:
    # The prompt is inside the try: a Ctrl-C that lands right after it must still count.
    if WINDOW_MS:
        print("boot: Ctrl-C within %.1f s for safe mode (main.py skipped)" % (WINDOW_MS / 1000))
    for _ in range(WINDOW_MS // _LOOK_MS):
        if _button_held():
            SAFE_MODE = True
            break
        time.sleep_ms(_LOOK_MS)
except KeyboardInterrupt:
    SAFE_MODE = True
# main.py runs in these globals: the window's function would stay on the heap for good.
del _button_held
if SAFE_MODE:
    print("boot: safe mode: main.py will not run; the REPL is yours")
