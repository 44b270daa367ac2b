# onewire for the virtual board: a bus with nothing on it, so no device answers a reset with a
# presence pulse, as micropython-lib's driver reports it. Host-only.


class OneWireError(Exception):
    pass


class OneWire:
    SEARCH_ROM = 0xF0
    MATCH_ROM = 0x55
    SKIP_ROM = 0xCC

    def __init__(self, pin):
        self.pin = pin

    def reset(self, required=False):
        if required:
            raise OneWireError
        return False

    def readbit(self):
        return 1

    def readbyte(self):
        return 0xFF

    def readinto(self, buf):
        for i in range(len(buf)):
            buf[i] = 0xFF

    def writebit(self, value):
        pass

    def writebyte(self, value):
        pass

    def write(self, buf):
        pass

    def select_rom(self, rom):
        self.reset(True)

    def scan(self):
        return []
