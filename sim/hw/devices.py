"""Device models that observe the firmware's outputs through the Pin fakes."""

import vclock

# A4988 timing: STEP high and low each at least 1 us.
A4988_MIN_PULSE_NS = 1000


class StepperDriverModel:
    """STEP/DIR/EN stepper driver: counts microsteps as the physical ground truth."""

    def __init__(
        self,
        step_pin,
        dir_pin,
        en_pin,
        *,
        en_active_low=True,
        dir_forward_level=1,
        min_high_ns=A4988_MIN_PULSE_NS,
        min_low_ns=A4988_MIN_PULSE_NS,
        record=True,
    ):
        self.step_pin = step_pin
        self.dir_pin = dir_pin
        self.en_pin = en_pin
        self.en_active_low = en_active_low
        self.dir_forward_level = dir_forward_level
        self.min_high_ns = min_high_ns
        self.min_low_ns = min_low_ns
        self.record = record
        self.position_steps = 0
        self.steps_forward = 0
        self.steps_backward = 0
        self.steps_while_disabled = 0
        # (t_ns, +1 or -1) for each counted step when record is True.
        self.pulses = []
        # (t_ns, "high" or "low", width_ns) for each pulse shorter than allowed.
        self.violations = []
        self._step_level = step_pin.value()
        self._last_rise_ns = None
        self._last_fall_ns = None
        step_pin.add_listener(self._on_step)

    def enabled(self):
        if self.en_pin is None:
            return True
        level = self.en_pin.value()
        return level == 0 if self.en_active_low else level == 1

    def direction(self):
        return 1 if self.dir_pin.value() == self.dir_forward_level else -1

    def _on_step(self, pin, level, t_ns):
        if level == self._step_level:
            return
        self._step_level = level
        if level:
            if self._last_fall_ns is not None and t_ns - self._last_fall_ns < self.min_low_ns:
                self.violations.append((t_ns, "low", t_ns - self._last_fall_ns))
            self._last_rise_ns = t_ns
            if not self.enabled():
                self.steps_while_disabled += 1
                return
            d = self.direction()
            self.position_steps += d
            if d > 0:
                self.steps_forward += 1
            else:
                self.steps_backward += 1
            if self.record:
                self.pulses.append((t_ns, d))
        else:
            if self._last_rise_ns is not None and t_ns - self._last_rise_ns < self.min_high_ns:
                self.violations.append((t_ns, "high", t_ns - self._last_rise_ns))
            self._last_fall_ns = t_ns

    def steps(self):
        """Counted steps in either direction."""
        return self.steps_forward + self.steps_backward

    def now_ns(self):
        return vclock.current().now_ns
