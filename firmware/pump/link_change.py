"""The link's therapy changes: each checked in full before it is held (a change the pump
would refuse is refused at once, with the reason), and carried out once confirmed.

Loaded by pump/link.py when a change arrives, and let go after: the pump keeps none of it
in RAM between changes.
"""

from pump.core import bolus as bolus_mod
from pump.core.errors import Refused
from pump.core.schedule import TEMP_ABSOLUTE, TEMP_PERCENT, check_temp
from pump.core.settings import profile_edits
from pump.core.state import DAY_S, days_from_date

_SETTINGS_GROUPS = ("options", "limits", "profiles", "select")


def check(link, change, now):
    """None when the pump would carry ``change`` out now, else the reason it would not.
    A setup's settings are built here and kept on the change (``change.settings``)."""
    app = link.app
    therapy = app.therapy
    command = change.command
    args = change.request.args
    if command == "bolus" or command == "extended" or command == "dual":
        return _check_bolus(therapy, command, args)
    if command == "suspend":
        return "delivery is already suspended" if therapy.suspended_at is not None else None
    if command == "resume":
        if therapy.suspended_at is None:
            return "delivery is not suspended"
        interlock = therapy.interlock
        return None if interlock is None else interlock("resume", 0, 0)
    if command == "cancel_bolus":
        return "no bolus is running" if therapy.bolus is None else None
    if command == "cancel_temp":
        return "no temp basal is running" if therapy.temp is None else None
    if command == "profile_delete":
        s = therapy.settings
        index = args[0]
        if index >= len(s.profiles):
            return "there is no profile %d" % index
        if index == s.active_profile:
            return "profile %s is the active one: select another first" % s.profiles[index].name
        return None
    if command == "temp":
        if therapy.suspended_at is not None:
            return "delivery is suspended; resume first"
        kind = TEMP_PERCENT if args[0] == "percent" else TEMP_ABSOLUTE
        try:
            check_temp(kind, args[1], args[2] * 60_000, therapy.profile(),
                       therapy.settings.max_basal_mu_per_h)
        except Refused as refusal:
            return str(refusal)
        return None
    if command == "settings_put":
        return _put_settings(app, args, dry=True)
    if command == "setup":
        from pump.core import setup

        reason = setup.check_state(therapy)
        if reason is None:
            reason, change.settings = setup.build(therapy.mech, link.draft or {}, now)
        return reason
    return None  # time_set: the parser checked it all


def bolus_parts(command, args):
    """(kind, mU, percent now, duration ms) of a bolus request."""
    if command == "extended":
        return bolus_mod.EXTENDED, args[0], 0, args[1] * 60_000
    if command == "dual":
        return bolus_mod.DUAL, args[0], args[1], args[2] * 60_000
    return bolus_mod.NORMAL, args[0], 100, 0


def _check_bolus(therapy, command, args):
    kind, mu, percent, duration_ms = bolus_parts(command, args)
    s = therapy.settings
    try:
        bolus_mod.check_amount(mu, s.increment_mu, s.max_bolus_mu)
        if kind != bolus_mod.NORMAL:
            bolus_mod.check_extended_ms(duration_ms)
    except Refused as refusal:
        return str(refusal)
    if therapy.suspended_at is not None:
        return "delivery is suspended; resume first"
    if therapy.bolus is not None:
        return "a bolus is already running; cancel it first"
    interlock = therapy.interlock  # alarms, the reservoir, the insulin per hour and day
    if interlock is None:
        return None
    return interlock(kind + " bolus", mu, bolus_mod.first_hour_mu(mu, percent, duration_ms))


def apply(link, change, now):
    """Carry a confirmed change out: None, or the App's refusal."""
    app = link.app
    args = change.request.args
    command = change.command
    if command == "bolus" or command == "extended" or command == "dual":
        kind, mu, percent, duration_ms = bolus_parts(command, args)
        return app.bolus(kind, mu, percent, duration_ms)
    if command == "suspend":
        return app.suspend()
    if command == "resume":
        return app.resume()
    if command == "cancel_bolus":
        return app.cancel_bolus()
    if command == "cancel_temp":
        return app.cancel_temp()
    if command == "profile_delete":
        return app.delete_profile(args[0])
    if command == "temp":
        kind = TEMP_PERCENT if args[0] == "percent" else TEMP_ABSOLUTE
        return app.temp_basal(kind, args[1], args[2] * 60_000)
    if command == "settings_put":
        return _put_settings(app, args)
    # The clock sent, plus the time the person took to confirm it.
    wall_s = wall_seconds(args) + (now - change.received_ms + 500) // 1000
    if command == "time_set":
        reason = app.set_time_of_day(wall_s % DAY_S * 1000)
        rtc = app.board.rtc
        if reason is None and rtc is not None:
            from pump.core.state import rtc_tuple

            rtc.datetime(rtc_tuple(wall_s))
        return reason
    if command == "setup":
        from pump.core import setup

        # The settings shown when it came; the pump may have moved on while it waited.
        reason = setup.check_state(app.therapy)
        if reason is None:
            reason = app.set_up(change.settings, wall_s)
        return reason
    return "unknown change %s" % command


def wall_seconds(args):
    """Seconds since 2000-01-01 of (year, month, day, hour, minute, second)."""
    year, month, day, hour, minute, second = args
    return days_from_date(year, month, day) * DAY_S + (hour * 60 + minute) * 60 + second


# ----- settings_put: all of it or nothing ------------------------------------------------


def _put_settings(app, values, dry=False):
    """Try the groups of changes in each order on a scratch copy of the therapy; apply them
    to the pump (unless ``dry``) in the first order that passes, so a valid upload never
    fails half-way for the order its parts were made in. None, or the first refusal."""
    groups = [g for g in _SETTINGS_GROUPS if _steps(g, values, app.therapy.settings)]
    first_reason = None
    for order in _orders(groups):
        reason = _dry_run(app, order, values)
        if reason is None:
            return None if dry else _run_steps(app, order, values)
        if first_reason is None:
            first_reason = reason
    return first_reason


def _dry_run(app, order, values):
    from pump.core.events import EventLog
    from pump.core.therapy import Settings, Therapy

    real = app.therapy
    now = app.now_ms()
    settings = Settings()
    s = real.settings
    for name in (
        "max_bolus_mu", "max_basal_mu_per_h", "increment_mu", "bolus_speed_mu_per_min",
        "active_profile",
    ):
        setattr(settings, name, getattr(s, name))
    settings.profiles = list(s.profiles)
    scratch = Therapy(real.mech, settings, EventLog(4), now, real.ms_of_day(now))
    scratch.temp = real.temp
    try:
        for group in order:
            for name, args in _steps(group, values, settings):
                getattr(scratch, name)(now, *args)
    except Refused as refusal:
        return str(refusal)
    return None


def _run_steps(app, order, values):
    for group in order:
        for name, args in _steps(group, values, app.therapy.settings):
            reason = getattr(app, name)(*args)
            if reason is not None:
                return reason
    return None


def _steps(group, values, s):
    """The (method, args) calls one group of a settings upload makes, against settings ``s``;
    the same names exist on Therapy (with now_ms first) and on the App."""
    get = values.get
    if group == "options":
        if "increment" in values or "speed" in values:
            return [("set_bolus_options",
                     (get("increment", s.increment_mu), get("speed", s.bolus_speed_mu_per_min)))]
    elif group == "limits":
        if "max_bolus" in values or "max_basal" in values:
            return [("set_limits",
                     (get("max_bolus", s.max_bolus_mu), get("max_basal", s.max_basal_mu_per_h)))]
    elif group == "profiles":
        return [("save_profile", edit) for edit in profile_edits(values, s.profiles)]
    elif group == "select":
        if "active_profile" in values:
            return [("select_profile", (values["active_profile"],))]
    return []


def _orders(groups):
    """Every order of ``groups`` (at most 4! = 24), the given order first."""
    if len(groups) <= 1:
        return [list(groups)]
    out = []
    for i in range(len(groups)):
        rest = groups[:i] + groups[i + 1 :]
        for tail in _orders(rest):
            out.append([groups[i]] + tail)
    return out
