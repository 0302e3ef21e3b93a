"""Models of the plunger force sensors (HX711 load-cell ADC, FSR divider) on the fake pins."""

import math

import irq as _irq
import vclock

_RAW_MIN = -0x800000
_RAW_MAX = 0x7FFFFF
_WORD = 0x1000000
# HX711 datasheet: PD_SCK high time at most 50 us; over 60 us the chip powers down.
SCK_HIGH_MAX_NS = 50_000
POWER_DOWN_NS = 60_000
# Output settling after power-up, reset or a gain change: 4 conversion periods.
SETTLING_CONVERSIONS = 4
# Extra pulses after the 24 data bits -> gain of the next conversion (26: channel B).
_GAIN_FOR_PULSES = {25: 128, 26: 32, 27: 64}


class _Noise:
    """Deterministic noise without `random` (absent on MicroPython): a 31-bit LCG."""

    def __init__(self, seed):
        self._state = seed & 0x7FFFFFFF

    def next_unit(self):
        # Numerical Recipes constants, masked to 31 bits.
        self._state = (1103515245 * self._state + 12345) & 0x7FFFFFFF
        return self._state / 0x7FFFFFFF

    def triangular(self, amplitude):
        """Sum of two uniforms: -amplitude..amplitude, peaked at 0."""
        return amplitude * (self.next_unit() + self.next_unit() - 1.0)


class HX711Device:
    """An HX711 with a load cell: conversions every 1/rate s, data out on PD_SCK pulses.

    `force_source()` gives the force on the cell in newtons; it is read when a read
    starts (the first PD_SCK pulse), which is within one conversion of when the chip
    sampled it. Conversions are phase-locked to the device's start; the DOUT falling
    edge is an event on the virtual clock, only scheduled when the last data was read.
    """

    def __init__(
        self,
        dout_pin,
        sck_pin,
        force_source,
        counts_per_n,
        offset_counts,
        rate_sps=80,
        *,
        noise_counts=0,
        seed=12345,
        settled=True,
    ):
        self.clock = vclock.current()
        self.dout_pin = dout_pin
        self.sck_pin = sck_pin
        self.force_source = force_source
        self.counts_per_n = counts_per_n
        self.offset_counts = offset_counts
        self.channel_b_counts = 0  # what channel B (gain 32) reads; nothing wired by default
        self.noise_counts = noise_counts
        self.period_ns = vclock.NS_PER_S // rate_sps
        self.gain = 128  # of the conversion in progress
        self._gain_before = 128
        self.powered = True
        self.fault = None  # None, "unplug", "stuck", "saturate"
        self._stuck_raw = 0
        self._noise = _Noise(seed)
        self._t0_ns = self.clock.now_ns
        self._ready = False
        self._pulses = 0
        self._word = 0
        self._ready_event = None
        self._pd_event = None
        self._pd_deferred = False
        self._burst_t = None
        self._sck_rise_ns = None
        # Observations for tests.
        self.reads = 0
        self.last_raw = None
        self.power_downs = 0
        self.power_ups = 0
        self.comm_errors = 0  # more than 27 pulses in one cycle
        self.stray_pulses = 0  # pulses while no data was waiting
        self.violations = []  # (t_ns, "sck_high", width_ns) beyond the 50 us maximum
        dout_pin.drive(1)
        sck_pin.add_listener(self._on_sck)
        self._sck_g = sck_pin._g
        self._dout_g = dout_pin._g
        # Bound once: a write from a hard handler (heap locked on MicroPython) must not
        # allocate a bound method.
        self._sck_write_fn = self._sck_write
        self._burst_fn = self._burst
        self._leave_burst_fn = self._leave_burst
        if not vclock.EXACT:
            self._sck_g.fast_write = self._sck_write_fn
            # The Pin object the driver holds calls the device directly (one call a write).
            sck_pin.value = self._sck_write_fn
        first = self.period_ns * (1 if settled else SETTLING_CONVERSIONS)
        self._schedule_ready(self._t0_ns + first)

    # -- conversions ---------------------------------------------------------

    def conversion_raw(self):
        """The signed reading the chip would give now (saturated at the 24-bit limits)."""
        if self.fault == "stuck":
            return self._stuck_raw
        if self.fault == "saturate":
            return _RAW_MAX
        if self.gain == 32:
            counts = float(self.channel_b_counts)
        else:
            scale = self.gain / 128
            counts = (self.offset_counts + self.force_source() * self.counts_per_n) * scale
        if self.noise_counts:
            counts += self._noise.triangular(self.noise_counts)
        raw = int(math.floor(counts + 0.5))
        if raw < _RAW_MIN:
            return _RAW_MIN
        if raw > _RAW_MAX:
            return _RAW_MAX
        return raw

    def _schedule_ready(self, t_ns):
        if self._ready_event is not None:
            self._ready_event.cancel()
        self._ready_event = self.clock.call_at(t_ns, self._on_ready, True)

    def _next_boundary_ns(self, after_ns, conversions=1):
        k = (after_ns - self._t0_ns) // self.period_ns + conversions
        return self._t0_ns + k * self.period_ns

    def _on_ready(self):
        self._ready_event = None
        if not self.powered or self.fault == "unplug":
            return
        self._ready = True
        self._pulses = 0
        self.dout_pin.drive(0)

    # -- PD_SCK ----------------------------------------------------------------

    def _on_sck(self, pin, level, t_ns):
        if level:
            self._sck_rise_ns = t_ns
            if self.powered and self._pd_event is None:
                self._pd_event = self.clock.call_at(
                    t_ns + POWER_DOWN_NS + 1, self._check_power, True)
            if self.powered and self.fault != "unplug":
                self._pulse(t_ns)
            return
        self._sck_fell(t_ns)

    def _sck_fell(self, t_ns):
        rise = self._sck_rise_ns
        self._sck_rise_ns = None
        if rise is None:
            return
        width = t_ns - rise
        if width > SCK_HIGH_MAX_NS:
            self.violations.append((t_ns, "sck_high", width))
        if width > POWER_DOWN_NS and self.powered:
            # The event may not have run yet (time jumped): power down happened anyway.
            self._power_down()
        if not self.powered:
            self._power_up(t_ns)

    def _sck_write(self, x=None):
        """Pin.value(x) on PD_SCK, as the generic path would do it: the level, this
        device's response (DOUT's next bit) and the power-down watch, without the
        per-edge listener machinery. Anything else watching the line: the generic path."""
        g = self._sck_g
        if x is None:
            return g.level
        level = 1 if x else 0
        if (g.mode != 1 or g.pio_owned or g.irq_handler is not None
                or g.watchers or len(g.listeners) != 1 or _irq.state.locks):
            g.fast_write = None
            try:
                type(self.sck_pin).value(self.sck_pin, x)  # the generic path
            finally:
                g.fast_write = self._sck_write_fn
            return None
        g.latch = level
        if level == g.level:
            return None
        g.level = level
        t_ns = self.clock.now_ns
        if g.record:
            g.history.append((t_ns, level))
            if len(g.history) > g.history_limit:
                del g.history[: len(g.history) // 2]
        if level:
            self._sck_rise_ns = t_ns
            if self.powered:
                if self._pd_event is None and not self._pd_deferred:
                    # The power-down watch, only if PD_SCK is still high when time moves.
                    self._pd_deferred = True
                    self.clock.at_instant_end(self._arm_power_watch)
                if self.fault != "unplug":
                    n = self._pulses
                    if 0 < n < 24:  # a data bit: DOUT shows the next one
                        self._pulses = n + 1
                        bit = (self._word >> (23 - n)) & 1
                        d = self._dout_g
                        if d.level == bit:
                            d.driven = bit
                        elif (d.mode == 0 and not d.pio_owned and not d.listeners
                                and d.irq_handler is None and not d.watchers):
                            d.driven = bit
                            d.level = bit
                            if d.record:
                                d.history.append((t_ns, bit))
                                if len(d.history) > d.history_limit:
                                    del d.history[: len(d.history) // 2]
                        else:
                            self.dout_pin.drive(bit)
                    else:
                        self._pulse(t_ns)
                        if self._pulses == 1 and not g.record and self._plain_dout():
                            self._enter_burst(t_ns)
            return None
        self._sck_fell(t_ns)
        return None

    # A read's data pulses come in one instant (the driver holds interrupts off): from the
    # first one on, while the clock stays there and nothing else watches PD_SCK or DOUT,
    # each write needs only the levels and DOUT's next bit. The burst ends before time
    # next moves (the clock calls _leave_burst first) or at the 25th pulse.

    def _plain_dout(self):
        d = self._dout_g
        return (d.mode == 0 and not d.pio_owned and not d.listeners and not d.record
                and d.irq_handler is None and not d.watchers)

    def _enter_burst(self, t_ns):
        self._burst_t = t_ns
        self._sck_g.fast_write = self._burst_fn
        self.sck_pin.value = self._burst_fn
        self.clock.at_instant_end(self._leave_burst_fn)

    def _leave_burst(self):
        self._sck_g.fast_write = self._sck_write_fn
        self.sck_pin.value = self._sck_write_fn

    def _burst(self, x=None):
        # Within the burst the power-down watch is already armed or deferred (by the
        # first pulse, in this instant), so a rising edge needs only the levels.
        g = self._sck_g
        if x:
            if g.level:
                g.latch = 1
                return None
            n = self._pulses
            if n >= 24:
                self._leave_burst()
                return self._sck_write(x)
            g.latch = g.level = 1
            self._sck_rise_ns = self._burst_t
            self._pulses = n + 1
            d = self._dout_g
            d.driven = d.level = (self._word >> (23 - n)) & 1
            return None
        if x is None:
            return g.level
        g.latch = 0
        if g.level:
            g.level = 0
            self._sck_rise_ns = None
        return None

    def _arm_power_watch(self):
        self._pd_deferred = False
        rise = self._sck_rise_ns
        if rise is not None and self.powered and self._pd_event is None:
            self._pd_event = self.clock.call_at(
                rise + POWER_DOWN_NS + 1, self._check_power, True)

    def _pulse(self, t_ns):
        if not self._ready and self._pulses == 0:
            self.stray_pulses += 1
            return
        self._pulses += 1
        n = self._pulses
        if n == 1:
            self._gain_before = self.gain
            raw = self.conversion_raw()
            self.last_raw = raw
            self._word = raw & (_WORD - 1)
        if n <= 24:
            self.dout_pin.drive((self._word >> (24 - n)) & 1)
            return
        if n == 25:
            self._ready = False
            self.reads += 1
            self.dout_pin.drive(1)
        if n <= 27:
            # The pulse count sets the gain of the next conversion; a change must settle.
            gain = _GAIN_FOR_PULSES[n]
            settle = 1 if gain == self._gain_before else SETTLING_CONVERSIONS
            self.gain = gain
            self._schedule_ready(self._next_boundary_ns(t_ns, settle))
            return
        self.comm_errors += 1

    def _check_power(self):
        self._pd_event = None
        rise = self._sck_rise_ns
        if rise is None or not self.powered:
            return
        now = self.clock.now_ns
        if now - rise > POWER_DOWN_NS:
            self._power_down()
        else:
            self._pd_event = self.clock.call_at(
                rise + POWER_DOWN_NS + 1, self._check_power, True)

    def _power_down(self):
        self.powered = False
        self.power_downs += 1
        self._ready = False
        self._pulses = 0
        if self._ready_event is not None:
            self._ready_event.cancel()
            self._ready_event = None
        self.dout_pin.drive(1)

    def _power_up(self, t_ns):
        # PD_SCK back low: the chip resets to channel A, gain 128, and settles.
        self.powered = True
        self.power_ups += 1
        self.gain = 128
        self._t0_ns = t_ns
        self._schedule_ready(t_ns + SETTLING_CONVERSIONS * self.period_ns)

    # -- fault injection ---------------------------------------------------------

    def unplug(self):
        """DOUT disconnected and pulled high: no conversion ever looks ready."""
        self.fault = "unplug"
        self._ready = False
        self._pulses = 0
        if self._ready_event is not None:
            self._ready_event.cancel()
            self._ready_event = None
        self.dout_pin.drive(1)

    def stuck_at(self, raw):
        """Every conversion reads `raw` (a frozen converter or a shorted bridge)."""
        self.fault = "stuck"
        self._stuck_raw = raw

    def saturate(self):
        """Every conversion reads the positive saturation code (bridge lead broken)."""
        self.fault = "saturate"

    def restore(self):
        """Back to a working device; after an unplug, data comes with the next conversion."""
        was_unplugged = self.fault == "unplug"
        self.fault = None
        if was_unplugged and self.powered:
            self._schedule_ready(self._next_boundary_ns(self.clock.now_ns))


# -- FSR ---------------------------------------------------------------------------

# Interlink FSR 402 resistance against force (read off the datasheet's log-log curve):
# (newtons, ohms). Interpolated log-log between points, extrapolated at both ends.
FSR402_CURVE = ((0.2, 30_000.0), (1.0, 6_000.0), (10.0, 1_000.0), (100.0, 250.0))


def fsr402_ohms(force_n):
    """FSR 402 resistance at a force; None (open, megaohms and up) at no force."""
    if force_n <= 0:
        return None
    curve = FSR402_CURVE
    i = 0
    while i < len(curve) - 2 and force_n > curve[i + 1][0]:
        i += 1
    (f0, r0), (f1, r1) = curve[i], curve[i + 1]
    slope = (math.log(r1) - math.log(r0)) / (math.log(f1) - math.log(f0))
    return r0 * math.exp(slope * (math.log(force_n) - math.log(f0)))


class FsrDevice:
    """An FSR 402 in a divider (3V3 -> FSR || bleeder -> ADC -> divider -> GND) on a fake ADC."""

    def __init__(
        self,
        adc,
        force_source,
        *,
        divider_ohm=10_000,
        bleeder_ohm=1_000_000,
        vcc=3.3,
        noise_v=0.0,
        seed=4242,
    ):
        self.adc = adc
        self.force_source = force_source
        self.divider_ohm = divider_ohm
        self.bleeder_ohm = bleeder_ohm
        self.vcc = vcc
        self.noise_v = noise_v
        self.fault = None  # None, "open", "short"
        self._noise = _Noise(seed)
        adc.set_source(self.volts)

    def volts(self):
        """Voltage at the ADC pin now."""
        if self.fault == "open":
            return 0.0
        if self.fault == "short":
            return self.vcc
        r = fsr402_ohms(self.force_source())
        top = self.bleeder_ohm if r is None else r * self.bleeder_ohm / (r + self.bleeder_ohm)
        v = self.vcc * self.divider_ohm / (self.divider_ohm + top)
        if self.noise_v:
            v += self._noise.triangular(self.noise_v)
        return v

    def open_circuit(self):
        """A lead to the sensor is broken: the divider pulls the pin to 0 V."""
        self.fault = "open"

    def short(self):
        """The sensor leads touch: the pin sits at the supply."""
        self.fault = "short"

    def restore(self):
        self.fault = None
