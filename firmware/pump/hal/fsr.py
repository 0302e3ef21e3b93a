"""Force-sensing resistor under the plunger, read through a voltage divider on an ADC pin.

Wiring: 3V3 -> FSR (with a 1 MOhm bleeder across it, at the sensor) -> ADC pin -> 10 kOhm
-> GND. More force, less resistance, higher voltage. The bleeder makes an unloaded FSR
read about 1 % of full scale, so a broken lead (0 V) and a short (3V3) both fall outside
the readings a working sensor gives and show as a range fault.
"""

from micropython import const

_DEFAULT_SAMPLES = const(8)  # ADC reads averaged per sample: the RP2040 ADC has ~9 ENOB
_FULL_SCALE = const(65535)  # read_u16 full scale

# The divider above with an Interlink FSR 402, from the resistance-force curve of its
# datasheet (about 30 kOhm at 0.2 N, 6 kOhm at 1 N, 1 kOhm at 10 N, 250 Ohm at 100 N):
# (averaged read_u16, milli-newtons), rising. Good to about +-10 %, as FSRs are.
FSR402_10K_TABLE = (
    (649, 0),
    (9840, 100),
    (16750, 200),
    (29983, 500),
    (41051, 1000),
    (48593, 2000),
    (55955, 5000),
    (59583, 10000),
    (61487, 20000),
    (63140, 50000),
)
# Readings a working sensor gives: below, a lead is open; above, the divider is shorted.
FSR402_10K_RAW_MIN = const(300)
FSR402_10K_RAW_MAX = const(64000)


class ForceResistor:
    """An FSR divider on an ADC: `read_raw()` is the mean of `samples` read_u16 readings.

    Same shape as the HX711 driver, so one PressureSensor serves both boards: `ready()`
    is always True (the ADC converts on demand) and `read_raw()` never returns None.
    """

    def __init__(self, adc, samples=_DEFAULT_SAMPLES):
        if samples < 1 or samples * _FULL_SCALE >= 1 << 30:
            raise ValueError("ForceResistor samples must be 1..16383, got %r" % (samples,))
        self._adc = adc
        self._samples = samples

    def ready(self):
        return True

    def read_raw(self):
        """Mean ADC reading, 0..65535; small ints only, nothing allocated."""
        adc = self._adc
        total = 0
        n = self._samples
        while n:
            total += adc.read_u16()
            n -= 1
        return total // self._samples

    def power_down(self):
        pass

    def power_up(self):
        pass

    def deinit(self):
        pass
