# ruff: noqa: F821  (metadata, require and package are given by MicroPython's manifestfile.py)
# Freezes sensornode into a MicroPython image you build yourself (micropython-lib's manifest
# format). Frozen modules run from flash: their bytecode, constants and names take no heap. Put
# boot.py, main.py, config.json and secrets.json on the board's filesystem as usual.
#
# From your board's manifest, or a manifest of your own passed as FROZEN_MANIFEST:
#     include("$(BOARD_DIR)/manifest.py")      # what the stock image freezes (umqtt on ESP32)
#     include("/path/to/sensornode/manifest.py")
# then build the port, e.g. `make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=...`.
metadata(description="sensornode: an MQTT sensor node", version="0.1.0")

require("umqtt.simple")
package("firmware")
