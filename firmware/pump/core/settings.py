"""The therapy settings a person chooses, and the commands that change them.

Pure logic. Each command checks everything first and either changes the settings and
records it, or raises ``Refused`` (recorded by the therapy) and changes nothing. The
commands act on a ``pump.core.therapy.Therapy`` through its public calls.
"""

from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core.calc_segments import CalculatorSettings
from pump.core.fmt import fmt_choices, fmt_rate, fmt_speed, fmt_units
from pump.core.iob import DEFAULT_DIA_MS, RAPID_ACTING
from pump.core.limits import (
    AUTO_OFF_DEFAULT_H,
    INCREMENT_CHOICES_MU,
    LOW_LEVEL_DEFAULT_MU,
    MAX_BASAL_MU_PER_H,
    MAX_BOLUS_MU,
    MAX_DAY_DEFAULT_MU,
    MAX_HOUR_DEFAULT_MU,
    MAX_PROFILES,
    RATE_STEP_MU_H,
    SPEED_QUICK_MU_MIN,
    SPEED_STANDARD_MU_MIN,
)
from pump.core.schedule import BasalProfile


class Settings:
    """The therapy settings a person chooses, with their factory values."""

    def __init__(self):
        self.max_bolus_mu = 10_000
        self.max_basal_mu_per_h = 3_000
        self.increment_mu = bolus_mod.DEFAULT_INCREMENT_MU
        self.bolus_speed_mu_per_min = SPEED_STANDARD_MU_MIN
        self.profiles = [BasalProfile("Standard", [(0, 800)], self.max_basal_mu_per_h)]
        self.active_profile = 0
        # Safety settings (checked by the modules that use them).
        self.max_hour_mu = MAX_HOUR_DEFAULT_MU  # insulin in any rolling hour
        self.max_day_mu = MAX_DAY_DEFAULT_MU  # insulin in any rolling day
        self.low_reservoir_mu = LOW_LEVEL_DEFAULT_MU
        self.auto_off_h = AUTO_OFF_DEFAULT_H  # 0 = off
        # Bolus calculator: a pump.core.calculator.CalculatorSettings, None until set up.
        self.calculator: CalculatorSettings | None = None
        self.bg_mmol = False  # screens show BG in mmol/L instead of mg/dL
        # Insulin action for insulin on board (pump.core.iob presets, 30-minute steps).
        self.insulin = RAPID_ACTING
        self.dia_ms = DEFAULT_DIA_MS



def profile_edits(values, profiles):
    """(index, name, segments) for each profile ``values`` names or gives segments
    (protocol keys name0.., basal0..); a part left out stays as in ``profiles``, and a new
    profile without a name is called 'Profile N'."""
    edits = []
    for index in range(MAX_PROFILES):
        name = values.get("name%d" % index)
        segments = values.get("basal%d" % index)
        if name is None and segments is None:
            continue
        old = profiles[index] if index < len(profiles) else None
        if name is None:
            name = old.name if old is not None else "Profile %d" % (index + 1)
        if segments is None:
            segments = old.segments if old is not None else ()
        edits.append((index, name, list(segments)))
    return edits


def select_profile(therapy, now_ms, index):
    s = therapy.settings
    if type(index) is not int or not (0 <= index < len(s.profiles)):
        raise therapy.refuse(now_ms, "select profile", "there is no profile %r" % (index,))
    profile = s.profiles[index]
    if profile.max_rate() > s.max_basal_mu_per_h:
        raise therapy.refuse(now_ms, "select profile", "profile exceeds the max basal")
    s.active_profile = index
    therapy.events.emit(now_ms, ev.PROFILE_SELECTED, index=index, name=profile.name)

def save_profile(therapy, now_ms, index, name, segments):
    """Create or replace profile ``index`` (0..3) with (start slot, mU/h) segments."""
    s = therapy.settings
    if type(index) is not int or not (0 <= index < MAX_PROFILES):
        raise therapy.refuse(
            now_ms,
            "save profile",
            "profiles are numbered 1 to %d" % MAX_PROFILES,
        )
    if index > len(s.profiles):
        raise therapy.refuse(now_ms, "save profile", "fill the profiles in order")
    profile = therapy.check(
        now_ms, "save profile", BasalProfile, name, segments, s.max_basal_mu_per_h
    )
    if index == len(s.profiles):
        s.profiles.append(profile)
    else:
        s.profiles[index] = profile
    therapy.events.emit(
        now_ms,
        ev.PROFILE_SAVED,
        index=index,
        name=name,
        segments=len(segments),
        daily_mu=profile.daily_total_mu(),
    )

def delete_profile(therapy, now_ms, index):
    """Remove profile ``index``; the ones after it move up. The active one stays (and with
    it the last one left)."""
    s = therapy.settings
    command = "delete profile"
    if type(index) is not int or not (0 <= index < len(s.profiles)):
        raise therapy.refuse(now_ms, command, "there is no profile %r" % (index,))
    name = s.profiles[index].name
    if index == s.active_profile:
        raise therapy.refuse(now_ms, command, "profile %s is the active one: select another "
                             "first" % name)
    s.profiles.pop(index)
    if s.active_profile > index:
        s.active_profile -= 1
    therapy.events.emit(now_ms, ev.SETTINGS_CHANGED, profile_deleted=name, index=index)

def set_limits(therapy, now_ms, max_bolus_mu, max_basal_mu_per_h):
    s = therapy.settings
    command = "limits"
    if type(max_bolus_mu) is not int or not (0 < max_bolus_mu <= MAX_BOLUS_MU):
        raise therapy.refuse(
            now_ms,
            command,
            "max bolus must be above 0 and at most %s"
            % fmt_units(MAX_BOLUS_MU),
        )
    if max_bolus_mu % s.increment_mu:
        raise therapy.refuse(
            now_ms,
            command,
            "max bolus must be a multiple of the bolus increment",
        )
    if type(max_basal_mu_per_h) is not int or not (
        0 < max_basal_mu_per_h <= MAX_BASAL_MU_PER_H
    ) or max_basal_mu_per_h % RATE_STEP_MU_H:
        raise therapy.refuse(
            now_ms,
            command,
            "max basal must be above 0 and at most %s in 0.01 U/h"
            % fmt_rate(MAX_BASAL_MU_PER_H),
        )
    for profile in s.profiles:
        if profile.max_rate() > max_basal_mu_per_h:
            raise therapy.refuse(
                now_ms,
                command,
                "profile %s has %s, above that max basal"
                % (profile.name, fmt_rate(profile.max_rate())),
            )
    if max_basal_mu_per_h > s.max_hour_mu:
        raise therapy.refuse(
            now_ms, command,
            "max basal must not be above the max per hour %s" % fmt_units(s.max_hour_mu),
        )
    if therapy.temp is not None and therapy.scheduled_rate(now_ms) > max_basal_mu_per_h:
        raise therapy.refuse(now_ms, command, "the running temp basal is above that max basal")
    s.max_bolus_mu = max_bolus_mu
    s.max_basal_mu_per_h = max_basal_mu_per_h
    therapy.events.emit(
        now_ms,
        ev.SETTINGS_CHANGED,
        max_bolus_mu=max_bolus_mu,
        max_basal_mu_per_h=max_basal_mu_per_h,
    )

def set_bolus_options(therapy, now_ms, increment_mu, speed_mu_per_min):
    s = therapy.settings
    command = "bolus options"
    if increment_mu not in INCREMENT_CHOICES_MU:
        raise therapy.refuse(
            now_ms,
            command,
            "bolus increment must be " + fmt_choices(INCREMENT_CHOICES_MU),
        )
    if s.max_bolus_mu % increment_mu:
        raise therapy.refuse(now_ms, command, "the max bolus is not a multiple of that increment")
    if type(speed_mu_per_min) is not int or not (
        SPEED_STANDARD_MU_MIN <= speed_mu_per_min <= SPEED_QUICK_MU_MIN
    ):
        raise therapy.refuse(now_ms, command, "bolus speed must be %s to %s" % (
            fmt_speed(SPEED_STANDARD_MU_MIN), fmt_speed(SPEED_QUICK_MU_MIN)))
    if therapy.mech.steps_per_s_for_mu_per_min(speed_mu_per_min) > therapy.mech.max_step_rate:
        raise therapy.refuse(now_ms, command, "this board's motor cannot run that fast")
    s.increment_mu = increment_mu
    s.bolus_speed_mu_per_min = speed_mu_per_min
    therapy.use_settings(s)
    therapy.events.emit(
        now_ms,
        ev.SETTINGS_CHANGED,
        increment_mu=increment_mu,
        bolus_speed_mu_per_min=speed_mu_per_min,
    )
