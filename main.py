# Starts the node unless boot.py's safe-mode window was used (then the REPL is yours). Firmware
# that cannot even be imported is caught here: the board resets, and an update on trial is
# rolled back by the next boot (firmware/otaboot.py).
if not globals().get("SAFE_MODE"):
    try:
        import os

        try:
            # No ota folder (otaboot.DIR): no update was ever offered, so there is nothing to
            # arm, and the update code stays unloaded (its names would stay interned for good).
            os.stat("ota")
            updates = True
        except OSError:
            updates = False
        if updates:
            from firmware import otaboot

            if not globals().get("UPDATE_CHECKED"):  # boot.py failed before its check
                otaboot.boot(otaboot.say, "reset")
            otaboot.arm()
            del otaboot
            from firmware.unload import drop

            drop("otaboot", "atomic")  # app.py loads it again when the loop needs it
        import firmware.app
    except Exception as e:
        import sys
        import time

        import machine

        sys.print_exception(e)
        try:
            from firmware import otaboot

            otaboot.note("%s at start: %s" % (e.__class__.__name__, e))
        except Exception:
            pass
        print("boot: the firmware failed to start; resetting in 10 s (Ctrl-C for the REPL)")
        time.sleep_ms(10000)
        machine.reset()
    firmware.app.run()
