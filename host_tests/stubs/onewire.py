"""CPython stand-in for MicroPython's onewire module: one simulated bus per pin.

bus(pin_id) returns that pin's Bus; bus.temps[rom_bytes] = degrees C puts a DS18x20 on it that
measures that temperature at its next conversion. bus.fault = an exception makes every reset()
(so every transaction) raise it.
"""


class OneWireError(Exception):
    pass


class Bus:
    def __init__(self):
        self.temps = {}  # rom -> temperature the next conversion measures
        self.scratch = {}  # rom -> result of the last conversion (85.0 before the first)
        self.fault = None
        self.crc_error = False  # the next scratchpad read fails its CRC
        self.conversions = 0


buses: dict = {}


def bus(pin_id):
    if pin_id not in buses:
        buses[pin_id] = Bus()
    return buses[pin_id]


def reset_stub():
    buses.clear()


class OneWire:
    SEARCH_ROM = 0xF0
    MATCH_ROM = 0x55
    SKIP_ROM = 0xCC

    def __init__(self, pin):
        self.pin = pin
        self.bus = bus(pin.id)

    def reset(self, required=False):
        if self.bus.fault is not None:
            raise self.bus.fault
        present = bool(self.bus.temps)
        if required and not present:
            raise OneWireError()
        return present

    def scan(self):
        if not self.reset():
            return []
        return [bytearray(rom) for rom in self.bus.temps]
