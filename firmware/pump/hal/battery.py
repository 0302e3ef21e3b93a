"""Battery voltage from an ADC input behind a resistor divider (VSYS/3 on GP29 on a Pico)."""

from micropython import const

_ADC_FULL = const(4095)  # read_u16() is a 12-bit conversion scaled to 16 bits
_SMALL_INT = const(0x3FFFFFFF)  # keep every product a small int: reading allocates nothing


class BatteryGauge:
    """Averages ``samples`` conversions and returns the battery voltage in whole mV.

    ``divider_num / divider_den`` is the divider ratio (3/1 for the Pico's VSYS/3).
    The arithmetic stays in small ints, so ``read_mv()`` allocates nothing.
    """

    def __init__(self, adc, divider_num=3, divider_den=1, vref_mv=3300, samples=8):
        if samples < 1 or divider_num < 1 or divider_den < 1 or vref_mv < 1:
            raise ValueError("BatteryGauge: samples, divider and vref_mv must be positive")
        self._mul = vref_mv * divider_num
        self._div = _ADC_FULL * samples * divider_den
        if _ADC_FULL * samples * self._mul + self._div > _SMALL_INT:
            raise ValueError("BatteryGauge: too many samples for small-int arithmetic")
        self._read = adc.read_u16  # bound once
        self.samples = samples
        self.full_scale_mv = self._mul // divider_den  # the ADC at its reference
        self.last_mv = 0

    def read_mv(self):
        """Battery voltage in mV, averaged over the samples (allocation-free)."""
        read = self._read
        total = 0
        for _ in range(self.samples):
            total += read() >> 4  # back to the 12 bits the converter really has
        mv = (total * self._mul + self._div // 2) // self._div
        self.last_mv = mv
        return mv

