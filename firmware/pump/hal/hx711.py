"""HX711 24-bit load-cell ADC, bit-banged on a DOUT input and a PD_SCK output pin.

Timing (Avia HX711 datasheet): DOUT goes low when a conversion is ready. Each PD_SCK
pulse shifts out one bit, MSB first, 24 bits of two's complement; 1 to 3 more pulses
choose the channel and gain of the next conversion. PD_SCK high for more than 60 us
powers the chip down, so a read runs with interrupts disabled: nothing can stretch a
high phase that long. A read allocates nothing, so it may run with the heap locked.
"""

import machine
from micropython import const

_DATA_BITS = const(24)  # bits shifted out per conversion, MSB first
_SIGN_BIT = const(0x800000)  # two's complement sign of the 24-bit word
_WORD = const(0x1000000)  # 2**24: subtracted from a negative word
# Extra PD_SCK pulses after the data bits select the next conversion:
_PULSES_A128 = const(1)  # 25 pulses: channel A, gain 128 (also the power-up default)
_PULSES_B32 = const(2)  # 26 pulses: channel B, gain 32
_PULSES_A64 = const(3)  # 27 pulses: channel A, gain 64

# Codes the chip clamps to when the input is beyond full scale (+-0.5 * AVDD / gain).
RAW_MIN = const(-0x800000)
RAW_MAX = const(0x7FFFFF)

# Output settling after power-up, reset or a gain change: 4 conversions, which is
# 400 ms at 10 samples/s (RATE low) and 50 ms at 80 samples/s (RATE high).
SETTLING_CONVERSIONS = const(4)


def _extra_pulses(gain):
    if gain == 128:
        return _PULSES_A128
    if gain == 64:
        return _PULSES_A64
    if gain == 32:
        return _PULSES_B32
    raise ValueError("HX711 gain must be 128, 64 (channel A) or 32 (channel B), got %r" % (gain,))


class HX711:
    """One HX711: `read_raw()` returns the signed 24-bit conversion, or None when not ready.

    None (DOUT still high) is the not-ready marker: no conversion has finished since
    the last read. Tell the sensor logic (`PressureSensor.no_data`) so that a silent
    chip is noticed. The gain set here applies from the conversion after the next read.
    """

    def __init__(self, dout, sck, gain=128):
        self._dout = dout
        self._sck = sck
        self._extra = _extra_pulses(gain)
        self.gain = gain
        sck.value(0)  # PD_SCK low: normal operation

    def ready(self):
        """True when a conversion is waiting (DOUT low)."""
        return self._dout.value() == 0

    def read_raw(self):
        """Shift out one conversion: a signed int in RAW_MIN..RAW_MAX, or None if not ready.

        Allocation-free: only small ints, no objects made. Interrupts are off for the
        25 to 27 pulses (tens of microseconds on an RP2040 at 125 MHz).
        """
        dout = self._dout
        if dout.value():
            return None
        sck = self._sck
        value = 0
        state = machine.disable_irq()
        # for-in-range compiles to a counted loop on MicroPython (no range object made).
        for _ in range(_DATA_BITS):
            sck.value(1)
            # DOUT is valid 0.1 us after the rising edge; read it while PD_SCK is high.
            value = (value << 1) | dout.value()
            sck.value(0)
        for _ in range(self._extra):
            sck.value(1)
            sck.value(0)
        machine.enable_irq(state)
        if value & _SIGN_BIT:
            value -= _WORD
        return value

    def power_down(self):
        """PD_SCK high: the chip (and the bridge on its regulator) sleeps after 60 us."""
        self._sck.value(1)

    def power_up(self):
        """PD_SCK low: the chip resets to channel A, gain 128, and settles for 4 conversions.

        The gain chosen in the constructor comes back after the first read.
        """
        self._sck.value(0)

    def deinit(self):
        self.power_down()
