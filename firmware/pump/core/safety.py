"""The independent delivery monitor: pulses counted at the motor against the record, and
insulin limits per rolling hour and per day.

Pure logic, deliberately apart from the scheduler (therapy.py): it keeps its own
counts, from its own source. The app feeds it the step pulses a separate counter saw
on the STEP line and the trains the stepper reported; any disagreement, and any
limit breach, is a fault for the app's one fault path.
"""

from pump.core.errors import Refused
from pump.core.fmt import fmt_units
from pump.core.limits import (
    MAX_DAY_DEFAULT_MU,
    MAX_DAY_MAX_MU,
    MAX_DAY_MIN_MU,
    MAX_HOUR_DEFAULT_MU,
    MAX_HOUR_MAX_MU,
    MAX_HOUR_MIN_MU,
)

_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000
_MINUTES = 61  # the current minute and the 60 before it: the window never under-counts
_HOURS = 25  # the current hour and the 24 before it
_SNAP_MINUTES = 5  # minute buckets are saved in groups of 5 (restored into the newest)

MISMATCH = "delivery_mismatch"
LIMIT_HOUR = "limit_hour"
LIMIT_DAY = "limit_day"


def check_limits(max_hour_mu, max_day_mu, max_basal_mu_per_h=None):
    """Refuse insulin limits out of range or out of order (max per hour below the max
    basal would stop a basal the person is allowed to set)."""
    if type(max_hour_mu) is not int or not (MAX_HOUR_MIN_MU <= max_hour_mu <= MAX_HOUR_MAX_MU):
        raise Refused(
            "max per hour is %s to %s" % (fmt_units(MAX_HOUR_MIN_MU), fmt_units(MAX_HOUR_MAX_MU))
        )
    if type(max_day_mu) is not int or not (MAX_DAY_MIN_MU <= max_day_mu <= MAX_DAY_MAX_MU):
        raise Refused(
            "max per day is %s to %s" % (fmt_units(MAX_DAY_MIN_MU), fmt_units(MAX_DAY_MAX_MU))
        )
    if max_day_mu < max_hour_mu:
        raise Refused("max per day must be at least max per hour")
    if max_basal_mu_per_h is not None and max_hour_mu < max_basal_mu_per_h:
        raise Refused(
            "max per hour must be at least the max basal %s/h" % fmt_units(max_basal_mu_per_h)
        )


class DeliveryMonitor:
    """Counts what reached the motor and judges it.

    Rolling windows are kept as step counts in minute buckets (the last hour) and hour
    buckets (the last day). The day window spans the current hour plus the 24 before
    it (24 to 25 h), so it can only over-count: a breach is never found late.
    """

    def __init__(self, mech, max_hour_mu=MAX_HOUR_DEFAULT_MU, max_day_mu=MAX_DAY_DEFAULT_MU):
        self.mech = mech
        check_limits(max_hour_mu, max_day_mu)
        self.max_hour_mu = max_hour_mu
        self.max_day_mu = max_day_mu
        self.reported_steps = 0  # by the stepper, train by train (both directions)
        self.counted_steps = 0  # by the independent pulse counter
        self._minutes = [0] * _MINUTES
        self._hours = [0] * _HOURS
        self._minute = 0  # index of the current minute since start (absolute)
        self._hour = 0

    def set_limits(self, max_hour_mu, max_day_mu, max_basal_mu_per_h=None):
        check_limits(max_hour_mu, max_day_mu, max_basal_mu_per_h)
        self.max_hour_mu = max_hour_mu
        self.max_day_mu = max_day_mu

    # ----- pulses ---------------------------------------------------------------------

    def reported(self, steps):
        """The stepper says a train emitted ``steps`` steps."""
        self.reported_steps += steps

    def counted(self, steps):
        """The pulse counter saw ``steps`` more rising edges on STEP."""
        self.counted_steps += steps

    def mismatch(self):
        """Steps counted minus steps reported; 0 when the motor did what was recorded."""
        return self.counted_steps - self.reported_steps

    # ----- insulin into the body --------------------------------------------------------

    def _roll(self, now_ms):
        minute = now_ms // _MINUTE_MS
        if minute != self._minute:
            gap = minute - self._minute
            if gap >= _MINUTES:
                for i in range(_MINUTES):
                    self._minutes[i] = 0
            else:
                for m in range(self._minute + 1, minute + 1):
                    self._minutes[m % _MINUTES] = 0
            self._minute = minute
        hour = now_ms // _HOUR_MS
        if hour != self._hour:
            gap = hour - self._hour
            if gap >= _HOURS:
                for i in range(_HOURS):
                    self._hours[i] = 0
            else:
                for h in range(self._hour + 1, hour + 1):
                    self._hours[h % _HOURS] = 0
            self._hour = hour

    def delivered(self, now_ms, steps):
        """``steps`` forward steps of therapy (basal or bolus) went to the body."""
        self._roll(now_ms)
        self._minutes[self._minute % _MINUTES] += steps
        self._hours[self._hour % _HOURS] += steps

    def hour_mu(self, now_ms):
        self._roll(now_ms)
        return self.mech.mu_for_steps(sum(self._minutes))

    def day_mu(self, now_ms):
        self._roll(now_ms)
        return self.mech.mu_for_steps(sum(self._hours))

    def headroom_mu(self, now_ms):
        """Insulin that may still go out now without breaking a limit."""
        hour_left = self.max_hour_mu - self.hour_mu(now_ms)
        day_left = self.max_day_mu - self.day_mu(now_ms)
        return hour_left if hour_left < day_left else day_left

    def headroom_steps(self, now_ms):
        """Steps that may still go out now without breaking a limit (0 when none)."""
        mu = self.headroom_mu(now_ms)
        if mu <= 0:
            return 0
        return mu * 1_000_000 // self.mech.nu_per_step

    def limit_reached(self, now_ms):
        """LIMIT_HOUR or LIMIT_DAY: the limit with the least headroom now."""
        hour_left = self.max_hour_mu - self.hour_mu(now_ms)
        day_left = self.max_day_mu - self.day_mu(now_ms)
        return LIMIT_HOUR if hour_left <= day_left else LIMIT_DAY

    # ----- across a reset ----------------------------------------------------------------

    def snapshot(self, now_ms):
        """The windows for a checkpoint: [5-min groups newest first] + [hours newest first]."""
        self._roll(now_ms)
        out = []
        for g in range((_MINUTES + _SNAP_MINUTES - 1) // _SNAP_MINUTES):
            total = 0
            for k in range(g * _SNAP_MINUTES, (g + 1) * _SNAP_MINUTES):
                if k < _MINUTES:
                    total += self._minutes[(self._minute - k) % _MINUTES]
            out.append(total)
        for k in range(_HOURS):
            out.append(self._hours[(self._hour - k) % _HOURS])
        return out

    def restore(self, now_ms, elapsed_ms, snap, extra_steps=0):
        """Put a snapshot taken ``elapsed_ms`` ago back into the windows (0 when the time
        in between is unknown: everything counts as recent). Each amount lands in the
        newest bucket it could belong to, so the windows over-count, never under-count.
        ``extra_steps``: steps that may have gone out after it (counted as given now)."""
        self._roll(now_ms)
        groups = (_MINUTES + _SNAP_MINUTES - 1) // _SNAP_MINUTES
        if len(snap) != groups + _HOURS:
            return
        then = now_ms - elapsed_ms
        for g in range(groups):
            minute = then // _MINUTE_MS - g * _SNAP_MINUTES
            if snap[g] and self._minute - minute < _MINUTES:
                self._minutes[minute % _MINUTES] += snap[g]
        for k in range(_HOURS):
            hour = then // _HOUR_MS - k
            if snap[groups + k] and self._hour - hour < _HOURS:
                self._hours[hour % _HOURS] += snap[groups + k]
        if extra_steps > 0:
            self.delivered(now_ms, extra_steps)

    def breach(self, now_ms):
        """The fault code of a broken limit or a pulse mismatch, or None."""
        if self.counted_steps != self.reported_steps:
            return MISMATCH
        if self.hour_mu(now_ms) > self.max_hour_mu:
            return LIMIT_HOUR
        if self.day_mu(now_ms) > self.max_day_mu:
            return LIMIT_DAY
        return None
