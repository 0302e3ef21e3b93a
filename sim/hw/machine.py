"""Stateful fakes of MicroPython's rp2 `machine` module, driven by the virtual clock."""

import errno

import irq as _irq
import vclock

_irq_state = _irq.state

NS_PER_MS = vclock.NS_PER_MS

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_NUM_GPIO = 30
_SYS_FREQ = 125000000
_WDT_MAX_MS = 8388  # the RP2040 watchdog counter limit
_HISTORY_LIMIT = 200000
# Marks a keyword argument the project requires callers to pass explicitly.
_REQUIRED = object()


class WatchdogReset(BaseException):
    """The watchdog was not fed in time: the chip resets (cannot be caught as Exception)."""


class SystemReset(BaseException):
    """machine.reset() or a deep sleep: the chip restarts."""


class SoftReset(SystemReset):
    """machine.soft_reset(): the interpreter restarts."""


class _State:
    def __init__(self):
        self.gpios = {}
        self.pins = {}
        self.i2c = {}
        self.adc = {}
        self.pwm = {}
        self.wdt = None
        self.reset_cause = PWRON_RESET
        self.watchdog_resets = []
        self.irq_disable_depth = 0
        self.irq_disable_max_depth = 0
        self.cpu_freq = _SYS_FREQ


_state = _State()


def reset_fakes():
    """Forget every pin, bus, watchdog and recorded reset (used by sim.hw.reset())."""
    _state.__init__()


# -- GPIO ----------------------------------------------------------------------


class _Gpio:
    """One physical GPIO line, shared by every Pin object built for it."""

    def __init__(self, gpio_id):
        self.id = gpio_id
        self.mode = -1
        self.pull = 0
        self.latch = 0
        self.driven = None
        self.pio_owned = False
        self.pio_level = 0
        self.pio_dir = 0
        self.level = 0
        self.history = []
        self.record = True
        self.history_limit = _HISTORY_LIMIT
        self.listeners = []
        self.handle = None
        self.irq_handler = None
        self.irq_trigger = 0
        self.irq_hard = False
        self.irq_flags = 0
        # fn(gpio) on every level change, registered while something waits on this line.
        self.watchers = []
        # A device model's own handling of writes to this line (Pin.value(x)), equal in
        # effect to the generic path below and cheaper; it falls back to it when the line
        # has observers the device does not know of. None: the generic path.
        self.fast_write = None

    def _external(self):
        if self.driven is not None:
            return self.driven
        return 1 if self.pull == Pin.PULL_UP else 0

    def compute(self):
        if self.pio_owned:
            return self.pio_level if self.pio_dir else self._external()
        if self.mode == Pin.OUT:
            return self.latch
        if self.mode == Pin.OPEN_DRAIN and self.latch == 0:
            return 0
        return self._external()

    def update(self):
        # May run inside a hard handler (pin.value(x)): the bookkeeping below
        # belongs to the fake, so it runs with the heap unlocked. compute(), inlined:
        # this runs on every write to every pin.
        if self.pio_owned:
            level = self.pio_level if self.pio_dir else self._external()
        else:
            mode = self.mode
            if mode == 1:  # Pin.OUT
                level = self.latch
            elif mode == 2 and self.latch == 0:  # Pin.OPEN_DRAIN pulling low
                level = 0
            else:
                level = self.driven
                if level is None:
                    level = 1 if self.pull == 1 else 0  # Pin.PULL_UP
        if level == self.level:
            return
        if _irq_state.locks:
            token = _irq.pause_heap_lock()
            try:
                self._changed(level)
            finally:
                _irq.resume_heap_lock(token)
        else:
            self._changed(level)

    def _changed(self, level):
        self.level = level
        t_ns = vclock._clock[0].now_ns
        if self.record:
            history = self.history
            history.append((t_ns, level))
            if len(history) > self.history_limit:
                del history[: len(history) // 2]
        if self.listeners:
            pin = self.handle
            for fn in self.listeners:
                fn(pin, level, t_ns)
        if self.irq_handler is not None:
            edge = 8 if level else 4  # Pin.IRQ_RISING, Pin.IRQ_FALLING
            if self.irq_trigger & edge:
                self.irq_flags = edge
                handler = self.irq_handler
                pin = self.handle
                if self.irq_hard:
                    _irq.run_hard(handler, pin)
                else:
                    clock = vclock.current()
                    clock.call_at(clock.now_ns, lambda: handler(pin))
        if self.watchers:
            # Whoever waits on this line's level (a PIO state machine stalled on wait()).
            for hook in self.watchers:
                hook(self)


def _gpio_id(pin_id):
    if pin_id == "LED":
        return 25
    if not isinstance(pin_id, int) or isinstance(pin_id, bool):
        raise ValueError("invalid pin")
    if pin_id < 0 or pin_id >= _NUM_GPIO:
        raise ValueError("invalid pin")
    return pin_id


def gpio(gpio_id):
    """The shared line state of a GPIO (created on first use)."""
    g = _state.gpios.get(gpio_id)
    if g is None:
        g = _Gpio(gpio_id)
        _state.gpios[gpio_id] = g
    return g


class _PinIrq:
    def __init__(self, g):
        self._g = g

    def flags(self):
        return self._g.irq_flags

    def trigger(self, value=None):
        if value is not None:
            self._g.irq_trigger = value
        return self._g.irq_trigger


class Pin:
    """A GPIO; several Pin objects for one GPIO share its state, as on the rp2 port."""

    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_LEVEL_LOW = 1
    IRQ_LEVEL_HIGH = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=-1, alt=-1):
        gid = _gpio_id(id)
        self._g = gpio(gid)
        self._g.handle = self
        _state.pins[gid] = self
        if mode != -1 or pull != -1 or value is not None or drive != -1 or alt != -1:
            self.init(mode, pull, value=value, drive=drive, alt=alt)

    @staticmethod
    def lookup(id):
        """Test helper: the Pin built for a GPIO (KeyError if the firmware built none)."""
        return _state.pins[_gpio_id(id)]

    def init(self, mode=-1, pull=-1, *, value=None, drive=-1, alt=-1):
        g = self._g
        if value is not None:
            g.latch = 1 if value else 0
        if mode != -1:
            if mode not in (Pin.IN, Pin.OUT, Pin.OPEN_DRAIN, Pin.ALT):
                raise ValueError("invalid pin mode")
            g.mode = mode
            # Choosing a mode hands the pad back from the PIO to software.
            g.pio_owned = False
        # As on the rp2 port, the pull is set every time (omitted means none).
        g.pull = 0 if pull == -1 or pull is None else pull
        g.update()

    def value(self, x=None):
        # May be called from a hard interrupt handler.
        g = self._g
        if x is None:
            return g.level
        fast = g.fast_write
        if fast is not None:
            return fast(x)
        latch = 1 if x else 0
        g.latch = latch
        if g.mode == 1 and not g.pio_owned:  # an output: the level is the latch
            if latch != g.level:
                if _irq_state.locks:
                    g.update()
                else:
                    g._changed(latch)
            return None
        g.update()
        return None

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def high(self):
        self.value(1)

    def low(self):
        self.value(0)

    def toggle(self):
        self.value(0 if self._g.latch else 1)

    def mode(self, mode=None):
        if mode is None:
            return self._g.mode
        self.init(mode, self._g.pull)
        return None

    def pull(self, pull=None):
        if pull is None:
            return self._g.pull
        self._g.pull = pull
        self._g.update()
        return None

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False):
        g = self._g
        g.irq_handler = handler
        g.irq_trigger = trigger if handler is not None else 0
        g.irq_hard = hard
        return _PinIrq(g)

    def __repr__(self):
        return "Pin(GPIO{}, mode={}, pull={})".format(self._g.id, self._g.mode, self._g.pull)

    # -- test helpers --------------------------------------------------------

    @property
    def gpio(self):
        return self._g.id

    @property
    def history(self):
        """(t_ns, level) for every level change of the line."""
        return self._g.history

    @property
    def record(self):
        return self._g.record

    @record.setter
    def record(self, enabled):
        self._g.record = enabled

    def add_listener(self, fn):
        """fn(pin, level, t_ns) is called on every level change."""
        self._g.listeners.append(fn)

    def remove_listener(self, fn):
        self._g.listeners.remove(fn)

    def drive(self, level):
        """Drive the line from outside (a button, a sensor); None releases it."""
        g = self._g
        g.driven = None if level is None else (1 if level else 0)
        g.update()


# -- Timer ---------------------------------------------------------------------


class Timer:
    """A virtual timer, scanned by the clock as a timer slot.

    init() and deinit() only store into existing attributes, so a hard
    handler can re-arm its timer on MicroPython without allocating.
    """

    ONE_SHOT = 0
    PERIODIC = 1

    # Late delivery injected by tests: ms of delay and how many callbacks it
    # applies to (-1: until cleared).
    _latency_ms = 0
    _latency_count = -1

    def __init__(
        self,
        id=-1,
        *,
        mode=PERIODIC,
        period=-1,
        tick_hz=1000,
        freq=-1,
        callback=None,
        hard=_REQUIRED,
    ):
        if id != -1:
            raise ValueError("only virtual timers (id=-1) are supported")
        self._mode = mode
        self._period = period
        self._tick_hz = tick_hz
        self._freq = freq
        self._callback = callback
        self._hard = True
        self._period_ns = 0
        self._nominal_ns = 0
        self._own_latency_ms = -1
        self._own_latency_count = -1
        self.fired = 0
        self._slot_armed = False
        self._slot_active = False
        self._slot_armed_at_ns = 0
        self._slot_due_ns = 0
        self._slot_seq = 0
        self._clock = vclock.current()
        self._clock.add_slot(self)
        if callback is not None or period != -1 or freq != -1:
            self.init(
                mode=mode, period=period, tick_hz=tick_hz, freq=freq, callback=callback, hard=hard
            )

    def init(
        self, *, mode=PERIODIC, period=-1, tick_hz=1000, freq=-1, callback=None, hard=_REQUIRED
    ):
        # May be called from a hard interrupt handler: stores only.
        if hard is _REQUIRED:
            raise TypeError("Timer: pass hard= explicitly")
        if period <= 0 and freq <= 0:
            raise ValueError("Timer: period or freq must be positive")
        clock = vclock.current()
        if clock is not self._clock:
            self._clock = clock
            clock.add_slot(self)
        self._mode = mode
        self._period = period
        self._tick_hz = tick_hz
        self._freq = freq
        self._callback = callback
        self._hard = hard
        self._slot_armed_at_ns = clock.now_ns
        self._slot_armed = True
        self._slot_active = True

    def deinit(self):
        self._slot_armed = False
        self._slot_active = False

    @classmethod
    def inject_latency_ms(cls, ms, count=-1):
        """Delay the next `count` callbacks of every timer by ms (count -1: until cleared)."""
        cls._latency_ms = ms
        cls._latency_count = count

    def inject_own_latency_ms(self, ms, count=-1):
        """Like inject_latency_ms for this timer only (ms -1 falls back to the class value)."""
        self._own_latency_ms = ms
        self._own_latency_count = count

    @classmethod
    def clear_latency(cls):
        cls._latency_ms = 0
        cls._latency_count = -1

    def _take_latency_ns(self):
        if self._own_latency_ms >= 0:
            ms = self._own_latency_ms
            if self._own_latency_count > 0:
                self._own_latency_count -= 1
                if self._own_latency_count == 0:
                    self._own_latency_ms = -1
            return ms * NS_PER_MS
        ms = Timer._latency_ms
        if ms and Timer._latency_count > 0:
            Timer._latency_count -= 1
            if Timer._latency_count == 0:
                Timer._latency_ms = 0
        return ms * NS_PER_MS

    # -- timer slot protocol (called by the clock, never in an interrupt) -----

    def _slot_compute_due(self):
        if self._freq > 0:
            self._period_ns = vclock.NS_PER_S // self._freq
        else:
            self._period_ns = self._period * vclock.NS_PER_S // self._tick_hz
        if self._period_ns <= 0:
            raise ValueError("Timer: period too short")
        self._nominal_ns = self._slot_armed_at_ns + self._period_ns
        return self._nominal_ns + self._take_latency_ns()

    def _slot_fire(self):
        clock = self._clock
        if self._mode == Timer.PERIODIC:
            # Re-arm from the nominal due time, so late delivery never drifts.
            self._nominal_ns += self._period_ns
            self._slot_due_ns = self._nominal_ns + self._take_latency_ns()
            self._slot_seq = clock._next_seq()
        else:
            self._slot_active = False
        self.fired += 1
        callback = self._callback
        if callback is None:
            return
        if self._hard:
            _irq.run_hard(callback, self)
        else:
            clock.call_at(clock.now_ns, lambda: callback(self))


# -- interrupts and power ------------------------------------------------------


def disable_irq():
    clock = vclock.current()
    was_disabled = clock.irq_disabled
    clock.irq_disabled = True
    _state.irq_disable_depth += 1
    if _state.irq_disable_depth > _state.irq_disable_max_depth:
        _state.irq_disable_max_depth = _state.irq_disable_depth
    return 0 if was_disabled else 1


def enable_irq(state=1):
    if _state.irq_disable_depth > 0:
        _state.irq_disable_depth -= 1
    if state:
        vclock.current().irq_disabled = False


def irq_disable_depth():
    """Test helper: current and deepest nesting of disable_irq()."""
    return _state.irq_disable_depth, _state.irq_disable_max_depth


def idle():
    """Wait for the next interrupt: run clock events up to one that would wake the CPU.

    A quiet event (a model's own progress, see VirtualClock.call_at) wakes nothing unless
    a hard interrupt handler ran in it. With vclock.EXACT, every event ends the wait."""
    clock = vclock.current()
    if clock.irq_disabled:
        raise vclock.Stalled("machine.idle() with interrupts disabled would never wake")
    runs = _irq_state.runs
    while True:
        if not clock.run_next():
            raise vclock.Stalled("machine.idle() with nothing scheduled would sleep forever")
        if not clock.last_quiet or _irq_state.runs != runs or vclock.EXACT:
            return


def lightsleep(time_ms=None):
    if time_ms is None:
        idle()
    else:
        vclock.current().sleep_ms(time_ms)


def deepsleep(time_ms=None):
    _state.reset_cause = DEEPSLEEP_RESET
    raise SystemReset("deepsleep")


def reset_cause():
    return _state.reset_cause


def set_reset_cause(cause):
    """Test helper: what reset_cause() reports on the next boot."""
    _state.reset_cause = cause


def watchdog_resets():
    """Test helper: times (ns) at which the watchdog reset the chip."""
    return _state.watchdog_resets


def unique_id():
    return b"\xe6\x60\x58\x38\x83\x2a\x5c\x2e"


def freq(hz=None):
    if hz is None:
        return _state.cpu_freq
    _state.cpu_freq = hz
    return None


def reset():
    _state.reset_cause = HARD_RESET
    raise SystemReset("machine.reset()")


def soft_reset():
    _state.reset_cause = SOFT_RESET
    raise SoftReset("machine.soft_reset()")


def bootloader(value=None):
    raise SystemReset("machine.bootloader()")


# -- I2C -----------------------------------------------------------------------


class I2C:
    """A hardware I2C bus; device models attach at an address (write(bytes), read(n))."""

    def __init__(self, id=-1, *, scl=None, sda=None, freq=400000, timeout=50000):
        if id not in (0, 1):
            raise ValueError("I2C({}) doesn't exist".format(id))
        self.id = id
        self.scl = scl
        self.sda = sda
        self.freq = freq
        self.timeout = timeout
        self.transactions = 0
        self._devices = {}
        old = _state.i2c.get(id)
        if old is not None:
            # Rebuilding the bus keeps the devices wired to it.
            self._devices = old._devices
        _state.i2c[id] = self

    @staticmethod
    def lookup(id):
        """Test helper: the bus built for a controller id."""
        return _state.i2c[id]

    def attach(self, addr, device):
        self._devices[addr] = device

    def detach(self, addr):
        self._devices.pop(addr, None)

    def _device(self, addr):
        self.transactions += 1
        device = self._devices.get(addr)
        if device is None:
            # Two arguments so that .errno is set on CPython as on MicroPython.
            raise OSError(errno.ENODEV, "ENODEV")
        return device

    def scan(self):
        return sorted(self._devices)

    def writeto(self, addr, buf, stop=True):
        self._device(addr).write(bytes(buf))
        return len(buf)

    def writevto(self, addr, vector, stop=True):
        data = b"".join([bytes(b) for b in vector])
        self._device(addr).write(data)
        return len(data)

    def readfrom(self, addr, nbytes, stop=True):
        return bytes(self._device(addr).read(nbytes))

    def readfrom_into(self, addr, buf, stop=True):
        data = self._device(addr).read(len(buf))
        buf[: len(data)] = data

    @staticmethod
    def _mem(memaddr, addrsize):
        n = addrsize // 8
        return bytes([(memaddr >> (8 * (n - 1 - i))) & 0xFF for i in range(n)])

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self._device(addr).write(self._mem(memaddr, addrsize) + bytes(buf))

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        device = self._device(addr)
        device.write(self._mem(memaddr, addrsize))
        return bytes(device.read(nbytes))

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        data = self.readfrom_mem(addr, memaddr, len(buf), addrsize=addrsize)
        buf[: len(data)] = data


# -- ADC -----------------------------------------------------------------------


class _AdcChannel:
    def __init__(self, volts):
        self.volts = volts
        self.source = None


class ADC:
    """12-bit ADC with a 3.3 V reference; read_u16 scales to 16 bits like the port."""

    CORE_TEMP = 4
    VREF = 3.3

    def __init__(self, pin):
        if isinstance(pin, Pin):
            gid = pin.gpio
            if not 26 <= gid <= 29:
                raise ValueError("Pin doesn't have ADC capabilities")
            ch = gid - 26
        elif isinstance(pin, int) and 26 <= pin <= 29:
            ch = pin - 26
        elif isinstance(pin, int) and 0 <= pin <= 4:
            ch = pin
        else:
            raise ValueError("invalid ADC channel")
        self.channel = ch
        chan = _state.adc.get(ch)
        if chan is None:
            # The temperature sensor reads 0.706 V at 27 degrees C.
            chan = _AdcChannel(0.706 if ch == 4 else 0.0)
            _state.adc[ch] = chan
        self._chan = chan

    @staticmethod
    def lookup(channel):
        """Test helper: an ADC for channel 0..4 (or GPIO 26..29) to set inputs on."""
        return ADC(channel)

    def set_voltage(self, volts):
        self._chan.volts = volts
        self._chan.source = None

    def set_source(self, fn):
        """fn() returns volts, called at each read."""
        self._chan.source = fn

    def read_u16(self):
        # The float model allocates; it belongs to the fake, so it runs with the heap
        # unlocked when the code under test holds it locked (see irq.run_hard).
        token = _irq.pause_heap_lock()
        try:
            chan = self._chan
            volts = chan.source() if chan.source is not None else chan.volts
            raw = int(volts * 4095 / self.VREF + 0.5)
        finally:
            _irq.resume_heap_lock(token)
        raw = 0 if raw < 0 else (4095 if raw > 4095 else raw)
        return (raw << 4) | (raw >> 8)


# -- PWM -----------------------------------------------------------------------


class PWM:
    """A PWM output; history records (t_ns, freq, duty_u16) on every change."""

    def __init__(self, dest, *, freq=-1, duty_u16=-1, duty_ns=-1, invert=False):
        self.pin = dest
        self.gpio = dest.gpio if isinstance(dest, Pin) else _gpio_id(dest)
        self._freq = 0
        self._duty = 0
        self.invert = invert
        self.active = True
        self.history = []
        _state.pwm[self.gpio] = self
        self.init(freq=freq, duty_u16=duty_u16, duty_ns=duty_ns)

    @staticmethod
    def lookup(gpio_id):
        return _state.pwm[gpio_id]

    def init(self, *, freq=-1, duty_u16=-1, duty_ns=-1, invert=False):
        self.active = True
        if freq != -1:
            self.freq(freq)
        if duty_u16 != -1:
            self.duty_u16(duty_u16)
        if duty_ns != -1:
            self.duty_ns(duty_ns)

    def _record(self):
        # The history belongs to the fake: kept with the heap unlocked (see irq.run_hard).
        token = _irq.pause_heap_lock()
        try:
            self.history.append((vclock.current().now_ns, self._freq, self._duty))
        finally:
            _irq.resume_heap_lock(token)

    def freq(self, value=None):
        if value is None:
            return self._freq
        if value < 8 or value > _SYS_FREQ // 2:
            raise ValueError("freq out of range")
        self._freq = value
        self._record()
        return None

    def duty_u16(self, value=None):
        if value is None:
            return self._duty if self.active else 0
        if value < 0 or value > 65535:
            raise ValueError("duty_u16 out of range")
        self._duty = value
        self._record()
        return None

    def duty_ns(self, value=None):
        if value is None:
            if not self._freq:
                return 0
            return self._duty * vclock.NS_PER_S // (65535 * self._freq)
        self.duty_u16(min(65535, value * self._freq * 65535 // vclock.NS_PER_S))
        return None

    def deinit(self):
        self.active = False
        self._duty = 0
        self._record()


# -- watchdog ------------------------------------------------------------------


class WDT:
    """The watchdog: a timer slot that resets the chip when not fed in time."""

    def __init__(self, id=0, timeout=5000):
        if _state.wdt is not None:
            raise RuntimeError("only one WDT can be created")
        if timeout < 1 or timeout > _WDT_MAX_MS:
            raise ValueError("WDT timeout too long")
        self.timeout_ms = timeout
        self._slot_armed = False
        self._slot_active = False
        self._slot_armed_at_ns = 0
        self._slot_due_ns = 0
        self._slot_seq = 0
        self._clock = vclock.current()
        self._clock.add_slot(self)
        _state.wdt = self
        self.feed()

    @staticmethod
    def lookup():
        """Test helper: the watchdog the firmware started, or None."""
        return _state.wdt

    def feed(self):
        # Stores only, so feeding from anywhere allocates nothing.
        self._slot_armed_at_ns = self._clock.now_ns
        self._slot_armed = True
        self._slot_active = True

    def _slot_compute_due(self):
        return self._slot_armed_at_ns + self.timeout_ms * NS_PER_MS

    def _slot_fire(self):
        self._slot_active = False
        _state.watchdog_resets.append(self._clock.now_ns)
        _state.reset_cause = WDT_RESET
        raise WatchdogReset("watchdog not fed for {} ms".format(self.timeout_ms))


# -- RTC -----------------------------------------------------------------------


class RTC:
    """Wall clock: (year, month, day, weekday, hours, minutes, seconds, subseconds)."""

    def __init__(self, id=0):
        pass

    def datetime(self, datetimetuple=None):
        clock = vclock.current()
        if datetimetuple is None:
            t = vclock.gmtime(clock.time())
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        y, mo, d, _wd, h, mi, s = datetimetuple[:7]
        clock.set_wall_secs(vclock.mktime((y, mo, d, h, mi, s, 0, 0)))
        return None

    def lost_power(self):
        """Test helper: back to 2021-01-01 00:00:00, as after a power loss."""
        vclock.current().set_wall_secs(vclock.RTC_POWER_ON_SECS)
