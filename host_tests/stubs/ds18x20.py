"""CPython stand-in for MicroPython's ds18x20 module, on the simulated buses of the onewire stub.

Behaves as micropython-lib's driver does: convert_temp() starts a conversion on every device
(SKIP_ROM), read_temp(rom) returns the last conversion's result, 85.0 before any conversion,
and raises a plain Exception("CRC error") when the scratchpad does not check out.
"""


class DS18X20:
    def __init__(self, onewire):
        self.ow = onewire
        self.buf = bytearray(9)

    def scan(self):
        return [rom for rom in self.ow.scan() if rom[0] in (0x10, 0x22, 0x28)]

    def convert_temp(self):
        self.ow.reset(True)
        bus = self.ow.bus
        bus.conversions += 1
        bus.scratch.update(bus.temps)

    def read_temp(self, rom):
        self.ow.reset(True)
        bus = self.ow.bus
        rom = bytes(rom)
        if bus.crc_error or rom not in bus.temps:
            bus.crc_error = False
            raise Exception("CRC error")
        return bus.scratch.get(rom, 85.0)
