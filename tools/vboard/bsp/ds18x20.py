# ds18x20 for the virtual board: micropython-lib's driver's calls. Unwired (the default) the bus
# has nothing on it; with the supervisor's `wired` switch on, one DS18B20 answers on every pin,
# at the room's temperature (switch room_c) to the sensor's 1/16 degree. Host-only.
import _vboard

ROM = bytearray(b"\x28\xff\x4c\x6a\x71\x16\x04\x5e")


class DS18X20:
    def __init__(self, onewire):
        self.ow = onewire

    def scan(self):
        if _vboard.switch("wired", False):
            return [ROM]
        return [rom for rom in self.ow.scan() if rom[0] in (0x10, 0x22, 0x28)]

    def convert_temp(self):
        if not _vboard.switch("wired", False):
            self.ow.reset(True)

    def read_scratch(self, rom):
        self.ow.select_rom(rom)

    def read_temp(self, rom):
        if _vboard.switch("wired", False) and bytes(rom) == bytes(ROM):
            return int(_vboard.switch("room_c", 21.5) * 16 + 0.5) / 16
        self.read_scratch(rom)
