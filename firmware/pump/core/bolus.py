"""Boluses: normal, extended (square wave) and dual wave, delivered in whole steps."""

from pump.core.errors import Refused
from pump.core.fmt import fmt_units
from pump.core.limits import EXTENDED_MAX_MS, EXTENDED_MIN_MS, EXTENDED_STEP_MS

NORMAL = "normal"
EXTENDED = "extended"
DUAL = "dual"

DEFAULT_INCREMENT_MU = 50


def check_amount(mu, increment_mu, max_bolus_mu, what="bolus"):
    """Refuse an amount that is not positive, off the increment, or above the max bolus."""
    if type(mu) is not int or mu <= 0:
        raise Refused("%s must be more than 0 U" % what)
    if mu % increment_mu:
        raise Refused("%s must be a multiple of %s" % (what, fmt_units(increment_mu)))
    if mu > max_bolus_mu:
        raise Refused(
            "%s %s is above the max bolus %s" % (what, fmt_units(mu), fmt_units(max_bolus_mu))
        )


def check_extended_ms(duration_ms):
    if type(duration_ms) is not int or duration_ms % EXTENDED_STEP_MS or not (
        EXTENDED_MIN_MS <= duration_ms <= EXTENDED_MAX_MS
    ):
        raise Refused("extended part lasts %d min to %d h in %d-minute steps" % (
            EXTENDED_MIN_MS // 60_000, EXTENDED_MAX_MS // 3_600_000, EXTENDED_STEP_MS // 60_000))


class Bolus:
    """One bolus being delivered: an immediate part and an extended (square-wave) part.

    Both parts are whole steps fixed at the start, so the total is exact; the
    extended part falls due in proportion to elapsed time, computed from the start,
    so late service never drifts.
    """

    def __init__(self, kind, requested_mu, now_steps, ext_steps, start_ms, ext_duration_ms):
        self.kind = kind
        self.requested_mu = requested_mu
        self.now_steps = now_steps
        self.ext_steps = ext_steps
        self.start_ms = start_ms
        self.ext_duration_ms = ext_duration_ms
        self.now_done = 0
        self.ext_done = 0

    @property
    def steps(self):
        return self.now_steps + self.ext_steps

    @property
    def delivered_steps(self):
        return self.now_done + self.ext_done

    def immediate_remaining(self):
        return self.now_steps - self.now_done

    def extended_due(self, now_ms):
        """Extended steps that are due by ``now_ms`` and not yet delivered."""
        if not self.ext_steps:
            return 0
        elapsed = now_ms - self.start_ms
        if elapsed >= self.ext_duration_ms:
            target = self.ext_steps
        elif elapsed <= 0:
            target = 0
        else:
            target = self.ext_steps * elapsed // self.ext_duration_ms
        return target - self.ext_done

    def next_extended_ms(self, now_ms):
        """When the next extended step falls due (absolute ms), or None when none is left."""
        if self.ext_done >= self.ext_steps:
            return None
        if self.extended_due(now_ms) > 0:
            return now_ms
        # smallest elapsed e with ext_steps * e // duration >= ext_done + 1
        need = self.ext_done + 1
        elapsed = (need * self.ext_duration_ms + self.ext_steps - 1) // self.ext_steps
        return self.start_ms + elapsed

    def finished(self):
        return self.now_done >= self.now_steps and self.ext_done >= self.ext_steps


_MS_PER_H = 3_600_000


def first_hour_mu(mu, now_percent, duration_ms):
    """The most of a bolus that goes out in any one hour: the part now and the extended
    part's first hour (it runs evenly over ``duration_ms``)."""
    now_mu = mu * now_percent // 100
    extended = mu - now_mu
    if duration_ms <= _MS_PER_H:
        return mu
    return now_mu + (extended * _MS_PER_H + duration_ms - 1) // duration_ms
