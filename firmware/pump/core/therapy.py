"""Therapy: what the pump is told to deliver, and the record of what it delivered.

Pure logic. The app tells it the time (monotonic milliseconds), hands it the basal
steps the timer accrued, asks it for the next pulse train, and reports every train
the motor emitted. Commands either change the therapy or raise ``Refused`` with a
reason, after recording the refusal; a refused command changes nothing.
"""

from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core import schedule
from pump.core import settings as settings_mod
from pump.core.errors import Refused
from pump.core.iob import InsulinCurve, IobHistory
from pump.core.limits import SPEED_STANDARD_MU_MIN
from pump.core.schedule import DAY_MS, TEMP_ABSOLUTE, TEMP_PERCENT, BasalTicker, check_rate
from pump.core.settings import Settings  # noqa: F401  (re-exported)
from pump.core.units import MS_PER_H, DoseCounter, basal_num

BASAL = "basal"
BOLUS = "bolus"
PART_NOW = 0
PART_EXTENDED = 1

_TRAIN_S_DIVISOR = 2  # a bolus goes out in trains of about half a second each


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
        # interlock(command, mu, first_hour_mu) -> None, or the reason a bolus or resume
        # must not go ahead now (alarms, insulin limits). The app sets it; the therapy
        # records the refusal.
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
        self._basal_sps = self._train_rate(SPEED_STANDARD_MU_MIN)
        self._bolus_sps = self._train_rate(settings.bolus_speed_mu_per_min)
        self.apply_rate(now_ms)

    # ----- time and rates -------------------------------------------------------------

    def use_settings(self, settings):
        """Run with ``settings`` from now on (factory settings accepted after a loss)."""
        self.settings = settings
        self._bolus_sps = self._train_rate(settings.bolus_speed_mu_per_min)
        self.iob.set_curve(InsulinCurve(settings.insulin, settings.dia_ms))

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
        """Set the accumulator to the rate at ``at_ms`` and arm the next change (for a
        caller that owns the ticker alone: the tests' drivers). The app splits this in two:
        ``rate_plan`` with interrupts on, then ``arm_ticker`` with them off."""
        self.arm_ticker(self.rate_plan(now_ms, at_ms))

    def rate_plan(self, now_ms, at_ms=None):
        """The accumulator settings for the rate at ``at_ms`` (default: now) and the next
        change, as (numerator, ms until the change, numerator after it). Records the rate
        change; allocates, so it runs with interrupts on.

        ``at_ms`` is when the rate took effect: the timer interrupt applies an armed
        change on its exact millisecond, and the main loop calls this a little later to
        arm the one after.
        """
        if at_ms is None:
            at_ms = now_ms
        self._account_missed(at_ms)
        rate = self.rate(at_ms)
        change_at = at_ms + self._next_change_ms(at_ms)
        wait = change_at - now_ms
        self._change_at = change_at
        if rate != self._rate:
            self._rate = rate
            self.events.emit(at_ms, ev.BASAL_RATE, rate_mu_per_h=rate)
        return (basal_num(rate), wait if wait > 0 else 1, basal_num(self.rate(change_at)))

    def arm_ticker(self, plan):
        """Apply a ``rate_plan`` to the accumulator. Interrupt-safe: no allocation; the
        caller has brought the accumulator up to now and holds interrupts off."""
        ticker = self.ticker
        ticker.set_num(plan[0])
        ticker.arm(plan[1], plan[2])
        self._changes_seen = ticker.changes

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

    def bolus_step_rate(self):
        """The speed of a bolus train in steps/s (the set bolus speed, within the motor's)."""
        return self._bolus_sps

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

    def check(self, now_ms, command, check, *args):
        """Run ``check(*args)``; a Refused it raises is recorded and raised again."""
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
        self.check(now_ms, command, bolus_mod.check_amount, mu, s.increment_mu, s.max_bolus_mu)
        if kind == bolus_mod.NORMAL:
            now_percent = 100
            duration_ms = 0
        elif kind == bolus_mod.EXTENDED:
            now_percent = 0
        elif type(now_percent) is not int or not (1 <= now_percent <= 99):
            raise self._refuse(now_ms, command, "dual wave gives 1 to 99 % now")
        if kind != bolus_mod.NORMAL:
            self.check(now_ms, command, bolus_mod.check_extended_ms, duration_ms)
        self._interlock(now_ms, command, mu, bolus_mod.first_hour_mu(mu, now_percent, duration_ms))
        if self.suspended_at is not None:
            raise self._refuse(now_ms, command, "delivery is suspended; resume first")
        if self.bolus is not None:
            raise self._refuse(now_ms, command, "a bolus is already running; cancel it first")
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

    def _interlock(self, now_ms, command, mu, hour_mu=0):
        if self.interlock is not None:
            reason = self.interlock(command, mu, hour_mu)
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
        """Start (or replace) a temp basal (pump.core.schedule.start_temp)."""
        schedule.start_temp(self, now_ms, kind, value, duration_ms)

    def cancel_temp(self, now_ms):
        schedule.cancel_temp(self, now_ms)

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
        self._interlock(now_ms, "resume", 0, 0)
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

    # ----- settings commands (pump.core.settings) -------------------------------------------

    def select_profile(self, now_ms, index):
        settings_mod.select_profile(self, now_ms, index)

    def save_profile(self, now_ms, index, name, segments):
        """Create or replace profile ``index`` (0..3) with (start slot, mU/h) segments."""
        settings_mod.save_profile(self, now_ms, index, name, segments)

    def set_limits(self, now_ms, max_bolus_mu, max_basal_mu_per_h):
        settings_mod.set_limits(self, now_ms, max_bolus_mu, max_basal_mu_per_h)

    def set_bolus_options(self, now_ms, increment_mu, speed_mu_per_min):
        settings_mod.set_bolus_options(self, now_ms, increment_mu, speed_mu_per_min)

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
