"""Virtual clock and event queue that drive every hardware fake in host tests."""

import heapq

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
TICKS_HALFPERIOD = TICKS_PERIOD >> 1

# True: the models take no shortcut (every PD_SCK edge through the generic pins, every
# event wakes machine.idle()): the reference the fast paths are checked against
# (sim.hw.set_exact).
EXACT = False

NS_PER_US = 1000
NS_PER_MS = 1000000
NS_PER_S = 1000000000

# Ticks start this far below the wrap so that firmware comparing raw ticks
# (instead of using ticks_diff) fails within ten minutes of simulated time.
_WRAP_AFTER_MS = 10 * 60 * 1000
_DEFAULT_MS_ORIGIN = TICKS_PERIOD - _WRAP_AFTER_MS
_DEFAULT_US_ORIGIN = TICKS_PERIOD - _WRAP_AFTER_MS * 1000

# 2000-01-01 (the MicroPython epoch) was a Saturday; weekday 0 is Monday.
_EPOCH_WEEKDAY = 5
_DAYS_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


class ClockError(RuntimeError):
    """The simulation cannot continue as the firmware asked."""


class Stalled(ClockError):
    """The firmware waits for an event that can never come (it would hang)."""


def _is_leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_before_year(year):
    # Days from 2000-01-01 to January 1st of `year` (year >= 2000).
    y = year - 1
    return y * 365 + y // 4 - y // 100 + y // 400 - 730119


def mktime(t):
    """Seconds since 2000-01-01 for an 8-tuple (year, month, mday, h, m, s, wd, yd)."""
    year, month, mday, hour, minute, second = t[0], t[1], t[2], t[3], t[4], t[5]
    # Normalise the month so that out-of-range values roll over like MicroPython.
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    days = _days_before_year(year) + _DAYS_BEFORE_MONTH[month - 1] + mday - 1
    if month > 2 and _is_leap(year):
        days += 1
    return ((days * 24 + hour) * 60 + minute) * 60 + second


def gmtime(secs):
    """8-tuple (year, month, mday, hour, minute, second, weekday, yearday)."""
    days, rem = divmod(secs, 86400)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    weekday = (days + _EPOCH_WEEKDAY) % 7
    year = 2000 + days // 366
    while _days_before_year(year + 1) <= days:
        year += 1
    yday = days - _days_before_year(year)
    leap = 1 if _is_leap(year) else 0
    month = 12
    while month > 1:
        start = _DAYS_BEFORE_MONTH[month - 1] + (leap if month > 2 else 0)
        if yday >= start:
            break
        month -= 1
    start = _DAYS_BEFORE_MONTH[month - 1] + (leap if month > 2 else 0)
    return (year, month, yday - start + 1, hour, minute, second, weekday, yday + 1)


# A Pico's RTC reads 2021-01-01 00:00:00 after power-up.
RTC_POWER_ON_SECS = mktime((2021, 1, 1, 0, 0, 0, 0, 0))


class EventHandle:
    """Returned by call_at; cancel() stops the event from running."""

    def __init__(self, entry):
        self._entry = entry

    def cancel(self):
        self._entry[2] = None

    def cancelled(self):
        return self._entry[2] is None

    def due_ns(self):
        return self._entry[0]


class VirtualClock:
    """Simulated time in integer nanoseconds, with events and MicroPython's time API."""

    def __init__(self, start_ns=0, ticks_ms_origin=None, ticks_us_origin=None, wall_secs=None):
        self._ms_origin = _DEFAULT_MS_ORIGIN if ticks_ms_origin is None else ticks_ms_origin
        self._us_origin = _DEFAULT_US_ORIGIN if ticks_us_origin is None else ticks_us_origin
        self._heap = []
        self._seq = 0
        # Timer slots: objects with the slot protocol (see Timer in machine.py).
        self._slots = []
        self.irq_disabled = False
        self.now_ns = 0
        self._ticks_ms = 0
        self._ticks_us = 0
        self._set_now(start_ns)
        self._wall_secs = RTC_POWER_ON_SECS if wall_secs is None else wall_secs
        self._wall_ns = start_ns
        self.events_run = 0
        # Called once before time next moves (see at_instant_end).
        self._deferred = []
        self.last_quiet = False  # whether the last event run was a quiet one

    # -- time keeping ------------------------------------------------------

    def _set_now(self, t_ns):
        # ticks are cached as small ints so reading them allocates nothing.
        self.now_ns = t_ns
        self._ticks_ms = (t_ns // NS_PER_MS + self._ms_origin) & TICKS_MAX
        self._ticks_us = (t_ns // NS_PER_US + self._us_origin) & TICKS_MAX

    def _next_seq(self):
        self._seq += 1
        return self._seq

    # -- events ------------------------------------------------------------

    def call_at(self, due_ns, fn, quiet=False):
        """Run fn() when the clock reaches due_ns; same-time events run in order.

        quiet: the event is a model's own progress (a PIO state machine's next
        instruction, a converter finishing), which on the chip wakes no CPU: it does
        not end machine.idle() unless it raises an interrupt."""
        self._seq += 1
        entry = [due_ns, self._seq, fn, quiet]
        heapq.heappush(self._heap, entry)
        return EventHandle(entry)

    def call_later_ns(self, delay_ns, fn):
        return self.call_at(self.now_ns + delay_ns, fn)

    def add_slot(self, slot):
        if slot not in self._slots:
            self._slots.append(slot)

    def remove_slot(self, slot):
        if slot in self._slots:
            self._slots.remove(slot)

    def _settle_slots(self):
        # Slots armed since the last look get their due time here, outside any
        # interrupt handler, so arming one needs no arithmetic. The earliest active
        # slot (due, then arming order) and its due time; (None, 0) if none is.
        best = None
        best_due = best_seq = 0
        for slot in self._slots:
            if slot._slot_armed:
                slot._slot_armed = False
                slot._slot_due_ns = slot._slot_compute_due()
                self._seq += 1
                slot._slot_seq = self._seq
            if slot._slot_active:
                due = slot._slot_due_ns
                if best is None or due < best_due or (
                        due == best_due and slot._slot_seq < best_seq):
                    best = slot
                    best_due = due
                    best_seq = slot._slot_seq
        return best, best_due

    def at_instant_end(self, fn):
        """Call fn() once, before the clock next looks for an event to run (so before
        time moves on): a model that needs a timed event only if a state outlasts the
        current instant schedules it from there."""
        self._deferred.append(fn)

    def _peek(self):
        if self._deferred:
            deferred = self._deferred
            self._deferred = []
            for fn in deferred:
                fn()
        heap = self._heap
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
        slot, slot_due = self._settle_slots()
        if heap:
            top = heap[0]
            if slot is None:
                return top[0], top, None
            due = top[0]
            if due < slot_due or (due == slot_due and top[1] < slot._slot_seq):
                return due, top, None
        if slot is not None:
            return slot_due, None, slot
        return None, None, None

    def next_due_ns(self):
        return self._peek()[0]

    def _run_one(self, entry, slot, due):
        # Late events (interrupts held off) run at the current time: time never goes back.
        if due > self.now_ns:
            self._set_now(due)
        self.events_run += 1
        if entry is not None:
            heapq.heappop(self._heap)
            fn = entry[2]
            entry[2] = None
            self.last_quiet = entry[3]
            fn()
        else:
            self.last_quiet = False
            slot._slot_fire()

    def run_next(self):
        """Run the next event, advancing time to it; False if there is none."""
        due, entry, slot = self._peek()
        if due is None:
            return False
        if due > self.now_ns:
            if self.irq_disabled:
                raise ClockError("clock advanced while interrupts are disabled")
            self._set_now(due)
        # _run_one, inlined: machine.idle() runs most events through here.
        self.events_run += 1
        if entry is not None:
            heapq.heappop(self._heap)
            fn = entry[2]
            entry[2] = None
            self.last_quiet = entry[3]
            fn()
        else:
            self.last_quiet = False
            slot._slot_fire()
        return True

    def run_until(self, t_ns):
        """Run every event due at or before t_ns in time order, then set now to t_ns."""
        if self.irq_disabled and t_ns > self.now_ns:
            raise ClockError("clock advanced while interrupts are disabled")
        while True:
            due, entry, slot = self._peek()
            if due is None or due > t_ns:
                break
            self._run_one(entry, slot, due)
        if t_ns > self.now_ns:
            self._set_now(t_ns)

    def run_for_ns(self, delta_ns):
        self.run_until(self.now_ns + delta_ns)

    def pending(self):
        """Number of scheduled heap events plus active timer slots."""
        self._settle_slots()
        n = 0
        for entry in self._heap:
            if entry[2] is not None:
                n += 1
        for slot in self._slots:
            if slot._slot_active:
                n += 1
        return n

    # -- MicroPython time API ------------------------------------------------
    # ticks_ms/ticks_us/ticks_diff/ticks_add may be called in hard interrupt
    # handlers: they only read cached attributes and do small-int arithmetic.

    def ticks_ms(self):
        return self._ticks_ms

    def ticks_us(self):
        return self._ticks_us

    def ticks_cpu(self):
        return self._ticks_us

    def ticks_diff(self, a, b):
        d = a - b
        # Written to stay inside the 31-bit small-int range of MicroPython.
        if d >= TICKS_HALFPERIOD:
            d = d - TICKS_MAX - 1
        elif d < -TICKS_HALFPERIOD:
            d = d + TICKS_MAX + 1
        return d

    def ticks_add(self, t, delta):
        if delta >= TICKS_HALFPERIOD or delta < -TICKS_HALFPERIOD:
            raise OverflowError("ticks interval overflow")
        if delta >= 0:
            if t > TICKS_MAX - delta:
                return t - (TICKS_MAX - delta) - 1
            return t + delta
        if t < -delta:
            return t + delta + TICKS_MAX + 1
        return t + delta

    def sleep_ns(self, n):
        self.run_until(self.now_ns + n)

    def sleep_ms(self, n):
        self.run_until(self.now_ns + n * NS_PER_MS)

    def sleep_us(self, n):
        self.run_until(self.now_ns + n * NS_PER_US)

    def sleep(self, s):
        self.run_until(self.now_ns + int(s * NS_PER_S))

    # -- wall clock (the RTC) -----------------------------------------------

    def set_wall_secs(self, secs):
        """Set the wall clock (seconds since 2000-01-01) as of now."""
        self._wall_secs = secs
        self._wall_ns = self.now_ns

    def time_ns(self):
        return self._wall_secs * NS_PER_S + self.now_ns - self._wall_ns

    def time(self):
        return self.time_ns() // NS_PER_S

    def gmtime(self, secs=None):
        return gmtime(self.time() if secs is None else int(secs))

    def localtime(self, secs=None):
        return self.gmtime(secs)

    def mktime(self, t):
        return mktime(t)


_clock = [VirtualClock()]


def current():
    """The clock the fakes use now (looked up at call time so reset() works)."""
    return _clock[0]


def reset(**kw):
    """Replace the current clock with a new VirtualClock(**kw) and return it."""
    clock = VirtualClock(**kw)
    _clock[0] = clock
    return clock
