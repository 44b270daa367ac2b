# rp2 for the virtual board: the BOOTSEL button the firmware's boot.py looks at. Host-only.
import _vboard

if _vboard.PLATFORM != "rp2":
    raise ImportError("no module named 'rp2'")


def bootsel_button():
    return 1 if _vboard.switch("button", False) else 0
