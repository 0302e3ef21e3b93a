"""Setup: a whole set of therapy settings built from the values a person chose, all checked.

The values are a dict with the protocol's settings keys in wire units (mU, mU/h, hours):
max_bolus, max_basal, increment, speed, active_profile, name0..3, basal0..3 (segments
as (half-hour, mU/h)), max_hour, max_day, low_reservoir, auto_off. A key left out keeps
its factory value. The setup screens and the ``setup`` request both build through
``build``; the App's ``set_up`` then applies the result with the clock in one command.
"""

from pump.core import alarms as al
from pump.core import events as ev
from pump.core import reservoir as res
from pump.core.errors import Refused
from pump.core.limits import MAX_BASAL_MU_PER_H
from pump.core.safety import check_limits
from pump.core.settings import profile_edits
from pump.core.therapy import Settings, Therapy


def build(mech, values, now_ms=0):
    """(None, Settings) when every value is acceptable together, else (reason, None)."""
    settings = Settings()
    factory_max_basal = settings.max_basal_mu_per_h
    scratch = Therapy(mech, settings, ev.EventLog(4), now_ms, 0)  # its refusals go nowhere
    get = values.get
    try:
        scratch.set_bolus_options(
            now_ms, get("increment", settings.increment_mu),
            get("speed", settings.bolus_speed_mu_per_min),
        )
        max_bolus = get("max_bolus", settings.max_bolus_mu)
        # Profiles first, under the highest max basal; the chosen max basal is checked
        # against all of them after.
        scratch.set_limits(now_ms, max_bolus, MAX_BASAL_MU_PER_H)
        for index, name, segments in profile_edits(values, settings.profiles):
            scratch.save_profile(now_ms, index, name, segments)
        if "active_profile" in values:
            scratch.select_profile(now_ms, values["active_profile"])
        hour = get("max_hour", settings.max_hour_mu)
        day = get("max_day", settings.max_day_mu)
        check_limits(hour, day)
        settings.max_hour_mu = hour
        settings.max_day_mu = day
        scratch.set_limits(now_ms, max_bolus, get("max_basal", factory_max_basal))
        low = get("low_reservoir", settings.low_reservoir_mu)
        res.Reservoir(mech, mech.reservoir_capacity_mu(), low)  # refuses a level out of range
        auto_off = get("auto_off", settings.auto_off_h)
        al.check_auto_off(auto_off)
    except Refused as refusal:
        return str(refusal), None
    settings.low_reservoir_mu = low
    settings.auto_off_h = auto_off
    return None, settings


def check_state(therapy):
    """Why the pump cannot take a new setup now, or None (a running bolus or temp basal
    was started under the settings being replaced)."""
    if therapy.bolus is not None:
        return "a bolus is running: cancel it before the setup"
    if therapy.temp is not None:
        return "a temp basal is running: cancel it before the setup"
    return None
