# DS18B20 through MicroPython's built-in onewire and ds18x20 modules. A conversion takes up to
# 750 ms; instead of waiting for it, reads are pipelined: each read() collects the result of the
# conversion the previous read() started and starts the next one. The first read() has nothing to
# collect and raises; the sensor reports from the second cycle on.
from micropython import const

_CONVERSION_MS = const(750)
_POWER_ON_C = 85.0  # the scratchpad's value before any conversion completed


class DS18B20:
    # spec["rom"]: the device's 64-bit ROM as 16 hex digits in bus order (family code 28 first, as
    # binascii.hexlify(rom) prints it); None takes the first device found on the pin.
    # clock: optional object with ticks_ms()/ticks_diff(); with it, a read sooner than 750 ms after
    # the conversion started returns the previous value instead of an unfinished one.
    def __init__(self, spec, clock=None):
        import binascii

        import ds18x20
        import machine
        import onewire

        pin = spec["pin"]
        self.keys = (spec["name"],)
        self._ds = ds18x20.DS18X20(onewire.OneWire(machine.Pin(pin)))
        roms = self._ds.scan()
        if not roms:
            raise OSError("no DS18B20 answers on pin %d (check wiring and the 4.7k pull-up)" % pin)
        want = spec.get("rom")
        if want is None:
            rom = roms[0]
        else:
            try:
                wanted = binascii.unhexlify(want)
            except ValueError:
                raise ValueError("rom %r is not 16 hex digits" % (want,)) from None
            rom = None
            for found in roms:
                if bytes(found) == wanted:
                    rom = found
            if rom is None:
                seen = ", ".join([binascii.hexlify(r).decode() for r in roms])
                raise OSError("no DS18B20 with rom %s on pin %d; found %s" % (want, pin, seen))
        self.rom = rom
        self._clock = clock
        self._converting = False  # a conversion was started and not yet collected
        self._started_at = 0
        self._last = None  # the last good result, returned while a conversion is still running

    def _too_soon(self, clock):
        return clock.ticks_diff(clock.ticks_ms(), self._started_at) < _CONVERSION_MS

    def read(self):
        clock = self._clock
        converting = self._converting
        if converting and clock is not None and self._too_soon(clock):
            if self._last is None:
                raise OSError("conversion still running")
            return self._last
        self._last = None
        self._converting = False
        value = None
        error = None
        if converting:
            try:
                value = self._ds.read_temp(self.rom)
            except Exception as e:  # OneWireError, or ds18x20's plain Exception("CRC error")
                error = e
        self._ds.convert_temp()  # raises OneWireError when nothing answers on the bus
        self._converting = True
        if clock is not None:
            self._started_at = clock.ticks_ms()
        if not converting:
            raise OSError("conversion started; the first value comes with the next read")
        if error is not None:
            raise error
        if value == _POWER_ON_C:
            raise OSError("read 85.0 C, the power-on value: the conversion did not run (power?)")
        self._last = (value,)
        return self._last


def make(spec, clock):
    # What sensor_setup.driver_for() calls, the same for every driver.
    return DS18B20(spec, clock)
