"""Basal profiles, temporary basal rates, and the accumulator that turns time into steps."""

from pump.core import events as ev
from pump.core.errors import Refused
from pump.core.fmt import fmt_rate
from pump.core.limits import (
    MAX_NAME_LEN,
    RATE_STEP_MU_H,
    TEMP_MAX_MS,
    TEMP_MAX_PERCENT,
    TEMP_MIN_MS,
)

SLOT_MS = 1_800_000  # profiles change on 30-minute boundaries
SLOTS_PER_DAY = 48
DAY_MS = 86_400_000

TEMP_PERCENT = 0
TEMP_ABSOLUTE = 1

# Longest wait the accumulator reports; keeps every product in the interrupt small.
FAR_MS = 60_000
_NO_CHANGE_MS = 1 << 29  # "no change armed": about 6 days, still a small int
_CHUNK_MS = 1000  # elapsed time is folded in at most this much at a time


def slot_text(slot):
    """Half-hour slot index as HH:MM."""
    return "%02d:%02d" % (slot // 2, (slot % 2) * 30)


def parse_hhmm(text):
    """'06:30' -> slot 13. Raises Refused unless it is a 30-minute boundary of the day."""
    if type(text) is not str or len(text) != 5 or text[2] != ":":
        raise Refused("time %r is not HH:MM" % (text,))
    try:
        hours = int(text[:2])
        minutes = int(text[3:])
    except ValueError:
        raise Refused("time %r is not HH:MM" % (text,))
    if not (0 <= hours <= 23) or minutes not in (0, 30):
        raise Refused("time %r is not on a 30-minute boundary of the day" % (text,))
    return hours * 2 + minutes // 30


def check_rate(rate_mu_per_h, max_basal_mu_per_h, what="basal rate"):
    """Refuse a rate that is negative, off the 0.01 U/h grid, or above the max basal."""
    if type(rate_mu_per_h) is not int or rate_mu_per_h < 0:
        raise Refused("%s must be 0 U/h or more" % what)
    if rate_mu_per_h % RATE_STEP_MU_H:
        raise Refused("%s must be a multiple of %s" % (what, fmt_rate(RATE_STEP_MU_H)))
    if rate_mu_per_h > max_basal_mu_per_h:
        raise Refused(
            "%s %s is above the max basal %s"
            % (what, fmt_rate(rate_mu_per_h), fmt_rate(max_basal_mu_per_h))
        )


class BasalProfile:
    """A named 24-hour basal profile: segments (start slot, rate mU/h), first at 00:00."""

    def __init__(self, name, segments, max_basal_mu_per_h):
        if type(name) is not str or not (1 <= len(name) <= MAX_NAME_LEN):
            raise Refused("profile name must be 1 to %d characters" % MAX_NAME_LEN)
        if not segments or len(segments) > SLOTS_PER_DAY:
            raise Refused("a profile has 1 to %d segments" % SLOTS_PER_DAY)
        previous = -1
        for start, rate in segments:
            if type(start) is not int or not (0 <= start < SLOTS_PER_DAY):
                raise Refused("segment start %r is not a half-hour of the day" % (start,))
            if start <= previous:
                raise Refused("segment %s is not after the one before" % slot_text(start))
            if previous < 0 and start != 0:
                raise Refused("the first segment must start at 00:00")
            check_rate(rate, max_basal_mu_per_h, "rate at " + slot_text(start))
            previous = start
        self.name = name
        self.segments = [(start, rate) for start, rate in segments]

    def rate_at(self, ms_of_day):
        """The profile's rate (mU/h) at a time of day (ms since midnight)."""
        slot = (ms_of_day % DAY_MS) // SLOT_MS
        rate = self.segments[0][1]
        for start, seg_rate in self.segments:
            if start > slot:
                break
            rate = seg_rate
        return rate

    def ms_to_next_boundary(self, ms_of_day):
        """Milliseconds from ``ms_of_day`` to the next segment start (midnight counts)."""
        ms_of_day %= DAY_MS
        for start, _rate in self.segments:
            boundary = start * SLOT_MS
            if boundary > ms_of_day:
                return boundary - ms_of_day
        return DAY_MS - ms_of_day

    def max_rate(self):
        return max(rate for _start, rate in self.segments)

    def daily_total_mu(self):
        """Insulin the profile gives in a day, milliunits, rounded down."""
        total = 0
        for i, (start, rate) in enumerate(self.segments):
            end = self.segments[i + 1][0] if i + 1 < len(self.segments) else SLOTS_PER_DAY
            total += rate * (end - start)
        return total // 2


class TempBasal:
    """A temporary basal: a percentage of the profile or an absolute rate, for a while."""

    def __init__(self, kind, value, start_ms, duration_ms):
        self.kind = kind
        self.value = value  # percent, or mU/h
        self.start_ms = start_ms
        self.end_ms = start_ms + duration_ms

    def rate(self, profile_rate):
        if self.kind == TEMP_PERCENT:
            return profile_rate * self.value // 100
        return self.value

    def describe(self):
        if self.kind == TEMP_PERCENT:
            return "%d %%" % self.value
        return fmt_rate(self.value)


def check_temp(kind, value, duration_ms, profile, max_basal_mu_per_h):
    """Refuse a temp basal outside its ranges or one that would exceed the max basal."""
    if type(duration_ms) is not int or duration_ms % TEMP_MIN_MS or not (
        TEMP_MIN_MS <= duration_ms <= TEMP_MAX_MS
    ):
        raise Refused("temp basal lasts %d min to %d h in %d-minute steps" % (
            TEMP_MIN_MS // 60_000, TEMP_MAX_MS // 3_600_000, TEMP_MIN_MS // 60_000))
    if kind == TEMP_PERCENT:
        if type(value) is not int or not (0 <= value <= TEMP_MAX_PERCENT):
            raise Refused("temp basal percent must be 0 to %d %%" % TEMP_MAX_PERCENT)
        highest = profile.max_rate() * value // 100
        if highest > max_basal_mu_per_h:
            raise Refused(
                "temp basal %d %% reaches %s, above the max basal %s"
                % (value, fmt_rate(highest), fmt_rate(max_basal_mu_per_h))
            )
    elif kind == TEMP_ABSOLUTE:
        check_rate(value, max_basal_mu_per_h, "temp basal rate")
    else:
        raise Refused("unknown temp basal kind")


class BasalTicker:
    """Turns elapsed milliseconds into whole basal steps, exactly, with the remainder kept.

    ``advance`` runs in the basal timer's hard interrupt: it allocates nothing and keeps
    every value a small int. The main loop arms rate changes ahead of time
    (``arm``) so a change lands on its exact millisecond even if the interrupt is late,
    and takes the steps that fell due with ``take_due`` (with interrupts disabled).
    """

    def __init__(self, den):
        self.den = den  # one step, in accumulator units (Mechanics.basal_den)
        self.num = 0  # accumulator units per millisecond at the current rate
        self.acc = 0  # 0 <= acc < den: the part of a step accrued so far
        self.due = 0  # whole steps accrued and not yet taken
        self.change_in_ms = _NO_CHANGE_MS
        self.next_num = 0
        self.changes = 0  # rate changes applied by advance(), for the main loop to notice

    def advance(self, elapsed_ms):
        """Accrue ``elapsed_ms`` milliseconds. Interrupt-safe: no allocation."""
        while elapsed_ms > 0:
            chunk = elapsed_ms
            if chunk > self.change_in_ms:
                chunk = self.change_in_ms
            if chunk > _CHUNK_MS:
                chunk = _CHUNK_MS
            self.acc += chunk * self.num
            if self.acc >= self.den:
                self.due += self.acc // self.den
                self.acc %= self.den
            elapsed_ms -= chunk
            self.change_in_ms -= chunk
            if self.change_in_ms <= 0:
                self.num = self.next_num
                self.change_in_ms = _NO_CHANGE_MS
                self.changes += 1

    def ms_until_next_event(self):
        """Milliseconds until the next step falls due or the armed change, at most FAR_MS."""
        wait = FAR_MS
        if self.num > 0:
            need = (self.den - self.acc + self.num - 1) // self.num
            if need < wait:
                wait = need
        if self.change_in_ms < wait:
            wait = self.change_in_ms
        return wait if wait > 0 else 1

    def set_num(self, num):
        """Change the rate now (main loop, interrupts disabled, after catching up)."""
        self.num = num

    def arm(self, change_in_ms, next_num):
        """Switch to ``next_num`` after ``change_in_ms`` more milliseconds of accrual."""
        if change_in_ms >= _NO_CHANGE_MS:
            change_in_ms = _NO_CHANGE_MS
            next_num = self.num
        self.change_in_ms = change_in_ms
        self.next_num = next_num

    def take_due(self):
        """Return and clear the whole steps accrued (call with interrupts disabled)."""
        due = self.due
        self.due = 0
        return due


# ----- temp basal commands (Therapy.start_temp / cancel_temp) -------------------------------


def start_temp(therapy, now_ms, kind, value, duration_ms):
    command = "temp basal"
    if therapy.suspended_at is not None:
        raise therapy.refuse(now_ms, command, "delivery is suspended; resume first")
    therapy.check(
        now_ms,
        command,
        check_temp,
        kind,
        value,
        duration_ms,
        therapy.profile(),
        therapy.settings.max_basal_mu_per_h,
    )
    replaced = therapy.temp
    therapy.temp = TempBasal(kind, value, now_ms, duration_ms)
    fields = {"minutes": duration_ms // 60_000}
    if kind == TEMP_PERCENT:
        fields["percent"] = value
    else:
        fields["rate_mu_per_h"] = value
    if replaced is not None:
        fields["replaced"] = replaced.describe()
    therapy.events.emit(now_ms, ev.TEMP_STARTED, **fields)


def cancel_temp(therapy, now_ms):
    if therapy.temp is None:
        raise therapy.refuse(now_ms, "cancel temp basal", "no temp basal is running")
    temp = therapy.temp
    therapy.temp = None
    therapy.events.emit(
        now_ms,
        ev.TEMP_CANCELLED,
        temp=temp.describe(),
        ran_min=(now_ms - temp.start_ms) // 60_000,
    )
