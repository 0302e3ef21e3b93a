"""Therapy: what the pump is told to deliver, and the record of what it delivered.

Pure logic. The app tells it the time (monotonic milliseconds), hands it the basal
steps the timer accrued, asks it for the next pulse train, and reports every train
the motor emitted. Commands either change the therapy or raise ``Refused`` with a
reason, after recording the refusal; a refused command changes nothing.
"""

from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core.calculator import CalculatorSettings
from pump.core.errors import Refused, fmt_rate, fmt_units
from pump.core.iob import DEFAULT_DIA_MS, RAPID_ACTING, InsulinCurve, IobHistory
from pump.core.schedule import (
    DAY_MS,
    MAX_PROFILES,
    TEMP_ABSOLUTE,
    TEMP_PERCENT,
    BasalProfile,
    BasalTicker,
    TempBasal,
    check_rate,
    check_temp,
)
from pump.core.units import MS_PER_H, DoseCounter, basal_num

BASAL = "basal"
BOLUS = "bolus"
PART_NOW = 0
PART_EXTENDED = 1

MAX_BASAL_LIMIT_MU_H = 15_000
_TRAIN_S_DIVISOR = 2  # a bolus goes out in trains of about half a second each


class Settings:
    """The therapy settings a person chooses, with their factory values."""

    def __init__(self):
        self.max_bolus_mu = 10_000
        self.max_basal_mu_per_h = 3_000
        self.increment_mu = bolus_mod.DEFAULT_INCREMENT_MU
        self.bolus_speed_mu_per_min = bolus_mod.SPEED_STANDARD_MU_MIN
        self.profiles = [BasalProfile("Standard", [(0, 800)], self.max_basal_mu_per_h)]
        self.active_profile = 0
        # Safety settings (checked by the modules that use them).
        self.max_hour_mu = 15_000  # insulin in any rolling hour
        self.max_day_mu = 80_000  # insulin in any rolling day
        self.low_reservoir_mu = 20_000
        self.auto_off_h = 12  # 0 = off
        # Bolus calculator: a pump.core.calculator.CalculatorSettings, None until set up.
        self.calculator: CalculatorSettings | None = None
        self.bg_mmol = False  # screens show BG in mmol/L instead of mg/dL
        # Insulin action for insulin on board (pump.core.iob presets, 30-minute steps).
        self.insulin = RAPID_ACTING
        self.dia_ms = DEFAULT_DIA_MS


class Therapy:
    def __init__(self, mechanics, settings, events, now_ms=0, ms_of_day=0):
        self.mech = mechanics
        self.settings = settings
        self.events = events
        self.ticker = BasalTicker(mechanics.basal_den())
        self.delivery_listener = None  # called (t_ms, kind, steps, mu) for every train
        self.basal = DoseCounter(mechanics)
        self.bolus_delivered = DoseCounter(mechanics)
        # Boluses delivered, for insulin on board.
        self.iob = IobHistory(InsulinCurve(settings.insulin, settings.dia_ms))
        self.temp = None
        self.bolus = None
        self.basal_pending = 0  # accrued basal steps not yet sent to the motor
        self.suspended_at = None
        self.suspend_reason = None
        # interlock(command, mu) -> None, or the reason a bolus or resume must not go ahead
        # now (alarms, insulin limits). The app sets it; the therapy records the refusal.
        self.interlock = None
        self._wall_offset_ms = ms_of_day - now_ms
        self._bolus_carry_nu = 0
        self._rate = -1
        self._changes_seen = 0
        self._change_at = now_ms
        self._missed_acc = 0  # mU/h x ms of basal not given while suspended
        # Basal given in the current clock hour, logged when the hour ends (one record an
        # hour keeps what was delivered on flash without a write per pulse train).
        self._hour = None
        self._hour_steps = 0
        self._missed_from = 0
        self._missed_rate = 0
        # Train speeds, worked out once (the arithmetic needs big ints on the Pico).
        self._basal_sps = self._train_rate(bolus_mod.SPEED_STANDARD_MU_MIN)
        self._bolus_sps = self._train_rate(settings.bolus_speed_mu_per_min)
        self.apply_rate(now_ms)

    # ----- time and rates -------------------------------------------------------------

    def ms_of_day(self, now_ms):
        return (now_ms + self._wall_offset_ms) % DAY_MS

    def profile(self):
        return self.settings.profiles[self.settings.active_profile]

    def scheduled_rate(self, now_ms):
        """The rate the profile and any temp basal call for, ignoring suspension."""
        rate = self.profile().rate_at(self.ms_of_day(now_ms))
        temp = self.temp
        if temp is not None and temp.start_ms <= now_ms < temp.end_ms:
            rate = temp.rate(rate)
        return rate

    def rate(self, now_ms):
        """The basal rate being delivered now (0 while suspended), mU/h."""
        if self.suspended_at is not None:
            return 0
        return self.scheduled_rate(now_ms)

    def _next_change_ms(self, now_ms):
        """Milliseconds from now to the next moment the rate may change."""
        wait = self.profile().ms_to_next_boundary(self.ms_of_day(now_ms))
        if self.temp is not None and self.temp.end_ms - now_ms < wait:
            wait = self.temp.end_ms - now_ms
        return wait if wait > 0 else 1

    def apply_rate(self, now_ms, at_ms=None):
        """Set the accumulator to the rate at ``at_ms`` and arm the next change.

        ``at_ms`` (default: now) is when the rate took effect: the timer interrupt
        applies an armed change on its exact millisecond, and the main loop calls this
        a little later to arm the one after. The caller (the app) has brought the
        accumulator up to ``now_ms`` first and holds interrupts off while this runs.
        """
        if at_ms is None:
            at_ms = now_ms
        self._account_missed(at_ms)
        rate = self.rate(at_ms)
        ticker = self.ticker
        ticker.set_num(basal_num(rate))
        change_at = at_ms + self._next_change_ms(at_ms)
        wait = change_at - now_ms
        ticker.arm(wait if wait > 0 else 1, basal_num(self.rate(change_at)))
        self._changes_seen = ticker.changes
        self._change_at = change_at
        if rate != self._rate:
            self._rate = rate
            self.events.emit(at_ms, ev.BASAL_RATE, rate_mu_per_h=rate)

    def _account_missed(self, at_ms):
        if self.suspended_at is None:
            return
        self._missed_acc += self._missed_rate * (at_ms - self._missed_from)
        self._missed_from = at_ms
        self._missed_rate = self.scheduled_rate(at_ms)

    # ----- the main loop's side ---------------------------------------------------------

    def service(self, now_ms, due_steps):
        """Take the basal steps the timer accrued and act on changes that came due.

        Returns True when the rate schedule moved on and the app must call
        ``apply_rate`` again (with the accumulator caught up).
        """
        if self.suspended_at is None:
            self.basal_pending += due_steps
        temp = self.temp
        expired = False
        if temp is not None and now_ms >= temp.end_ms:
            expired = True
            self.temp = None
            self.events.emit(temp.end_ms, ev.TEMP_EXPIRED, temp=temp.describe())
        return expired or self.ticker.changes != self._changes_seen

    def rate_change_pending(self):
        """True once the timer interrupt has applied the armed rate change."""
        return self.ticker.changes != self._changes_seen

    def change_time(self):
        """Absolute ms of the armed rate change (for apply_rate after it fired)."""
        return self._change_at

    def basal_step_rate(self):
        return self._basal_sps

    def _train_rate(self, mu_per_min):
        rate = self.mech.steps_per_s_for_mu_per_min(mu_per_min)
        return rate if rate <= self.mech.max_step_rate else self.mech.max_step_rate

    def next_train(self, now_ms):
        """The next pulse train to emit, as (kind, part, steps, steps_per_s), or None."""
        if self.basal_pending > 0:
            return (BASAL, PART_NOW, self.basal_pending, self.basal_step_rate())
        bolus = self.bolus
        if bolus is None:
            return None
        rate = self._bolus_sps
        chunk = rate // _TRAIN_S_DIVISOR
        if chunk < 1:
            chunk = 1
        remaining = bolus.immediate_remaining()
        if remaining > 0:
            return (BOLUS, PART_NOW, remaining if remaining < chunk else chunk, rate)
        due = bolus.extended_due(now_ms)
        if due > 0:
            return (BOLUS, PART_EXTENDED, due if due < chunk else chunk, rate)
        return None

    def next_wake_ms(self, now_ms):
        """Absolute ms at which the main loop must run for therapy, or None."""
        wake = None
        if self.bolus is not None:
            wake = self.bolus.next_extended_ms(now_ms)
        if self.temp is not None and (wake is None or self.temp.end_ms < wake):
            wake = self.temp.end_ms
        return wake

    def train_done(self, kind, part, steps, t_ms):
        """Record a pulse train the motor emitted (possibly cut short: ``steps`` emitted)."""
        if kind == BASAL:
            self.basal_pending -= steps
            self._hour_steps += steps
            mu = self.basal.add(steps)
        else:
            mu = self.bolus_delivered.add(steps)
            self.iob.add(t_ms, mu)
            bolus = self.bolus
            if bolus is not None:
                if part == PART_NOW:
                    bolus.now_done += steps
                else:
                    bolus.ext_done += steps
        if self.delivery_listener is not None and steps:
            self.delivery_listener(t_ms, kind, steps, mu)
        bolus = self.bolus
        if kind == BOLUS and bolus is not None and bolus.finished():
            self.bolus = None
            self.events.emit(
                t_ms,
                ev.BOLUS_FINISHED,
                bolus=bolus.kind,
                requested_mu=bolus.requested_mu,
                steps=bolus.delivered_steps,
                delivered_mu=self.mech.mu_for_steps(bolus.delivered_steps),
            )

    def close_hour(self, now_ms):
        """At the first call in a new clock hour, log the basal steps given in the last one
        (event basal_hour: the hour 0-23, steps, mU). Called on every main-loop pass."""
        hour = self.ms_of_day(now_ms) // MS_PER_H
        if hour == self._hour:
            return
        if self._hour is not None and self._hour_steps:
            steps = self._hour_steps
            self.events.emit(
                now_ms, ev.BASAL_HOUR, hour=self._hour, steps=steps,
                mu=self.mech.mu_for_steps(steps),
            )
        self._hour = hour
        self._hour_steps = 0

    # ----- commands -----------------------------------------------------------------------

    def _refuse(self, now_ms, command, reason):
        """Record a refusal; return the exception for the caller to raise."""
        self.events.emit(now_ms, ev.REFUSED, command=command, reason=reason)
        return Refused(reason)

    def refuse(self, now_ms, command, reason):
        """Record a refusal of a command outside therapy (the app's own commands)."""
        return self._refuse(now_ms, command, reason)

    def _check(self, now_ms, command, check, *args):
        try:
            return check(*args)
        except Refused as refusal:
            raise self._refuse(now_ms, command, str(refusal))

    def start_bolus(self, now_ms, kind, mu, now_percent=100, duration_ms=0):
        """Start a normal, extended or dual-wave bolus of ``mu`` milliunits."""
        s = self.settings
        command = kind + " bolus"
        if kind not in (bolus_mod.NORMAL, bolus_mod.EXTENDED, bolus_mod.DUAL):
            raise self._refuse(now_ms, "bolus", "unknown bolus kind %r" % (kind,))
        self._interlock(now_ms, command, mu)
        if self.suspended_at is not None:
            raise self._refuse(now_ms, command, "delivery is suspended; resume first")
        if self.bolus is not None:
            raise self._refuse(now_ms, command, "a bolus is already running; cancel it first")
        self._check(now_ms, command, bolus_mod.check_amount, mu, s.increment_mu, s.max_bolus_mu)
        if kind == bolus_mod.NORMAL:
            now_percent = 100
            duration_ms = 0
        elif kind == bolus_mod.EXTENDED:
            now_percent = 0
        elif type(now_percent) is not int or not (1 <= now_percent <= 99):
            raise self._refuse(now_ms, command, "dual wave gives 1 to 99 % now")
        if kind != bolus_mod.NORMAL:
            self._check(now_ms, command, bolus_mod.check_extended_ms, duration_ms)
        steps, self._bolus_carry_nu = self.mech.steps_for_mu(mu, self._bolus_carry_nu)
        now_steps = steps * now_percent // 100
        self.bolus = bolus_mod.Bolus(
            kind, mu, now_steps, steps - now_steps, now_ms, duration_ms
        )
        self.events.emit(
            now_ms,
            ev.BOLUS_STARTED,
            bolus=kind,
            requested_mu=mu,
            steps=steps,
            now_steps=now_steps,
            extended_steps=steps - now_steps,
            extended_min=duration_ms // 60_000,
        )

    def _interlock(self, now_ms, command, mu):
        if self.interlock is not None:
            reason = self.interlock(command, mu)
            if reason is not None:
                raise self._refuse(now_ms, command, reason)

    def cancel_bolus(self, now_ms, reason="cancelled"):
        """Stop the running bolus; the app has already stopped the motor and reported it."""
        bolus = self.bolus
        if bolus is None:
            raise self._refuse(now_ms, "cancel bolus", "no bolus is running")
        self.bolus = None
        delivered = bolus.delivered_steps
        delivered_mu = self.mech.mu_for_steps(delivered)
        self.events.emit(
            now_ms,
            ev.BOLUS_CANCELLED,
            bolus=bolus.kind,
            requested_mu=bolus.requested_mu,
            steps=delivered,
            delivered_mu=delivered_mu,
            not_delivered_mu=bolus.requested_mu - delivered_mu,
            reason=reason,
        )

    def start_temp(self, now_ms, kind, value, duration_ms):
        command = "temp basal"
        if self.suspended_at is not None:
            raise self._refuse(now_ms, command, "delivery is suspended; resume first")
        self._check(
            now_ms,
            command,
            check_temp,
            kind,
            value,
            duration_ms,
            self.profile(),
            self.settings.max_basal_mu_per_h,
        )
        replaced = self.temp
        self.temp = TempBasal(kind, value, now_ms, duration_ms)
        fields = {"minutes": duration_ms // 60_000}
        if kind == TEMP_PERCENT:
            fields["percent"] = value
        else:
            fields["rate_mu_per_h"] = value
        if replaced is not None:
            fields["replaced"] = replaced.describe()
        self.events.emit(now_ms, ev.TEMP_STARTED, **fields)

    def cancel_temp(self, now_ms):
        if self.temp is None:
            raise self._refuse(now_ms, "cancel temp basal", "no temp basal is running")
        temp = self.temp
        self.temp = None
        self.events.emit(
            now_ms,
            ev.TEMP_CANCELLED,
            temp=temp.describe(),
            ran_min=(now_ms - temp.start_ms) // 60_000,
        )

    def suspend(self, now_ms, reason="person"):
        """Stop all delivery; the app has already stopped the motor and reported it."""
        if self.suspended_at is not None:
            raise self._refuse(now_ms, "suspend", "delivery is already suspended")
        if self.bolus is not None:
            self.cancel_bolus(now_ms, reason="suspended" if reason == "person" else reason)
        # Steps accrued but not yet emitted are not given once the person suspends.
        dropped = self.basal_pending
        self.basal_pending = 0
        self.suspended_at = now_ms
        self.suspend_reason = reason
        self._missed_acc = 0
        self._missed_from = now_ms
        self._missed_rate = self.scheduled_rate(now_ms)
        self.events.emit(now_ms, ev.SUSPENDED, reason=reason, basal_steps_not_given=dropped)

    def stop(self, now_ms, reason):
        """The fault path's therapy side: end the bolus and suspend, whatever the state.

        The motor is already stopped and its last train reported. Returns the insulin the
        cancelled bolus did not deliver, in mU (0 if none was running).
        """
        not_delivered = 0
        bolus = self.bolus
        if bolus is not None:
            not_delivered = bolus.requested_mu - self.mech.mu_for_steps(bolus.delivered_steps)
            self.cancel_bolus(now_ms, reason=reason)
        if self.suspended_at is None:
            self.suspend(now_ms, reason)
        else:
            self.suspend_reason = reason
        return not_delivered

    def resume(self, now_ms):
        if self.suspended_at is None:
            raise self._refuse(now_ms, "resume", "delivery is not suspended")
        self._interlock(now_ms, "resume", 0)
        self._account_missed(now_ms)
        missed_mu = self._missed_acc // MS_PER_H
        suspended_ms = now_ms - self.suspended_at
        self.suspended_at = None
        self.suspend_reason = None
        self.events.emit(
            now_ms,
            ev.RESUMED,
            suspended_min=suspended_ms // 60_000,
            suspended_ms=suspended_ms,
            basal_not_given_mu=missed_mu,
        )

    def select_profile(self, now_ms, index):
        s = self.settings
        if type(index) is not int or not (0 <= index < len(s.profiles)):
            raise self._refuse(now_ms, "select profile", "there is no profile %r" % (index,))
        profile = s.profiles[index]
        if profile.max_rate() > s.max_basal_mu_per_h:
            raise self._refuse(now_ms, "select profile", "profile exceeds the max basal")
        s.active_profile = index
        self.events.emit(now_ms, ev.PROFILE_SELECTED, index=index, name=profile.name)

    def save_profile(self, now_ms, index, name, segments):
        """Create or replace profile ``index`` (0..3) with (start slot, mU/h) segments."""
        s = self.settings
        if type(index) is not int or not (0 <= index < MAX_PROFILES):
            raise self._refuse(
                now_ms,
                "save profile",
                "profiles are numbered 1 to %d" % MAX_PROFILES,
            )
        if index > len(s.profiles):
            raise self._refuse(now_ms, "save profile", "fill the profiles in order")
        profile = self._check(
            now_ms, "save profile", BasalProfile, name, segments, s.max_basal_mu_per_h
        )
        if index == len(s.profiles):
            s.profiles.append(profile)
        else:
            s.profiles[index] = profile
        self.events.emit(
            now_ms,
            ev.PROFILE_SAVED,
            index=index,
            name=name,
            segments=len(segments),
            daily_mu=profile.daily_total_mu(),
        )

    def set_limits(self, now_ms, max_bolus_mu, max_basal_mu_per_h):
        s = self.settings
        command = "limits"
        if type(max_bolus_mu) is not int or not (0 < max_bolus_mu <= bolus_mod.MAX_BOLUS_LIMIT_MU):
            raise self._refuse(
                now_ms,
                command,
                "max bolus must be above 0 and at most %s"
                % fmt_units(bolus_mod.MAX_BOLUS_LIMIT_MU),
            )
        if max_bolus_mu % s.increment_mu:
            raise self._refuse(
                now_ms,
                command,
                "max bolus must be a multiple of the bolus increment",
            )
        if type(max_basal_mu_per_h) is not int or not (
            0 < max_basal_mu_per_h <= MAX_BASAL_LIMIT_MU_H
        ) or max_basal_mu_per_h % 10:
            raise self._refuse(
                now_ms,
                command,
                "max basal must be above 0 and at most %s in 0.01 U/h"
                % fmt_rate(MAX_BASAL_LIMIT_MU_H),
            )
        for profile in s.profiles:
            if profile.max_rate() > max_basal_mu_per_h:
                raise self._refuse(
                    now_ms,
                    command,
                    "profile %s has %s, above that max basal"
                    % (profile.name, fmt_rate(profile.max_rate())),
                )
        if self.temp is not None and self.scheduled_rate(now_ms) > max_basal_mu_per_h:
            raise self._refuse(now_ms, command, "the running temp basal is above that max basal")
        s.max_bolus_mu = max_bolus_mu
        s.max_basal_mu_per_h = max_basal_mu_per_h
        self.events.emit(
            now_ms,
            ev.SETTINGS_CHANGED,
            max_bolus_mu=max_bolus_mu,
            max_basal_mu_per_h=max_basal_mu_per_h,
        )

    def set_bolus_options(self, now_ms, increment_mu, speed_mu_per_min):
        s = self.settings
        command = "bolus options"
        if increment_mu not in bolus_mod.INCREMENT_CHOICES_MU:
            raise self._refuse(
                now_ms,
                command,
                "bolus increment must be 0.01, 0.025, 0.05 or 0.1 U",
            )
        if s.max_bolus_mu % increment_mu:
            raise self._refuse(now_ms, command, "the max bolus is not a multiple of that increment")
        if type(speed_mu_per_min) is not int or not (
            bolus_mod.SPEED_STANDARD_MU_MIN <= speed_mu_per_min <= bolus_mod.SPEED_QUICK_MU_MIN
        ):
            raise self._refuse(now_ms, command, "bolus speed must be 1.5 to 15 U/min")
        if self.mech.steps_per_s_for_mu_per_min(speed_mu_per_min) > self.mech.max_step_rate:
            raise self._refuse(now_ms, command, "this board's motor cannot run that fast")
        s.increment_mu = increment_mu
        s.bolus_speed_mu_per_min = speed_mu_per_min
        self._bolus_sps = self._train_rate(speed_mu_per_min)
        self.events.emit(
            now_ms,
            ev.SETTINGS_CHANGED,
            increment_mu=increment_mu,
            bolus_speed_mu_per_min=speed_mu_per_min,
        )

    def set_clock(self, now_ms, ms_of_day):
        if type(ms_of_day) is not int or not (0 <= ms_of_day < DAY_MS):
            raise self._refuse(now_ms, "set time", "time of day out of range")
        self._wall_offset_ms = ms_of_day - now_ms
        self.events.emit(now_ms, ev.CLOCK_SET, ms_of_day=ms_of_day)

    def status(self, now_ms):
        """A snapshot for screens and the serial status command."""
        bolus = self.bolus
        return {
            "rate_mu_per_h": self.rate(now_ms),
            "profile": self.profile().name,
            "temp": None if self.temp is None else self.temp.describe(),
            "suspended": self.suspended_at is not None,
            "suspend_reason": self.suspend_reason,
            "bolus_steps": 0 if bolus is None else bolus.steps,
            "bolus_done_steps": 0 if bolus is None else bolus.delivered_steps,
            "basal_mu": self.basal.mu,
            "bolus_mu": self.bolus_delivered.mu,
        }


__all__ = ("Therapy", "Settings", "BASAL", "BOLUS", "TEMP_PERCENT", "TEMP_ABSOLUTE", "check_rate")
