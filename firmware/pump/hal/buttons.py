"""The four front-panel buttons: active-low inputs read as a key mask, edges wake the main loop.

Contact bounce makes interrupts the wrong tool for reading keys, so the pins are
polled by the main loop and debounced by ``pump.core.keys.Keypad``. The pin
interrupt exists only so that the loop can sleep while every key is up: any edge
sets the loop's wake flag, and the loop then polls until the keys settle.
"""

from pump.core.keys import BACK, DOWN, OK, UP


class Buttons:
    """UP, DOWN, OK and BACK on input Pins with pull-ups; a key down pulls its pin low.

    The board file builds the Pins: ``Pin(gpio, Pin.IN, Pin.PULL_UP)`` (the RP2040's
    internal pull-ups, about 50 kOhm, are enough for buttons to GND on short leads).
    """

    def __init__(self, up, down, ok, back):
        self._up = up
        self._down = down
        self._ok = ok
        self._back = back
        self.pins = (up, down, ok, back)

    def read_mask(self):
        """Keys down now, as pump.core.keys bits (UP | DOWN | OK | BACK); allocation-free."""
        mask = 0
        if not self._up.value():
            mask |= UP
        if not self._down.value():
            mask |= DOWN
        if not self._ok.value():
            mask |= OK
        if not self._back.value():
            mask |= BACK
        return mask

    def on_edge(self, callback):
        """Call callback(pin) as a hard interrupt on every edge of any key; None stops it.

        The callback must only set a flag (allocation-free, small ints only), for
        example the app's wake-timer handler.
        """
        for pin in self.pins:
            if callback is None:
                pin.irq(handler=None)
            else:
                pin.irq(handler=callback, trigger=pin.IRQ_FALLING | pin.IRQ_RISING, hard=True)

    def deinit(self):
        self.on_edge(None)

