# An analog input: value = read_u16() * scale + offset, read_u16() being 0..65535 over the ADC's
# range (0..3.3 V on the Pico W; on the ESP32 the range depends on the pin's attenuation).


class ADCSensor:
    def __init__(self, spec):
        import machine

        self.keys = (spec["name"],)
        # Raises ValueError on a pin without an ADC: the caller logs it and reports null.
        self._adc = machine.ADC(machine.Pin(spec["pin"]))
        self.scale = spec["scale"]
        self.offset = spec["offset"]

    def read(self):
        return (self._adc.read_u16() * self.scale + self.offset,)


def make(spec, clock):
    # What sensor_setup.driver_for() calls, the same for every driver.
    return ADCSensor(spec)
