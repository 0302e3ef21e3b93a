"""The confirm screen for a change sent over USB: says what it would do, in units a person
reads; OK carries it out, BACK rejects it. A long change (a setup) scrolls with UP/DOWN."""

from pump.core import keys
from pump.core.settings import profile_edits
from pump.ui import text
from pump.ui.screens import Confirm, Message, bolus_run_ms

SETUP_ALARMS = ("set_up", "check_settings", "set_time")  # what a setup answers (core.alarms)


class RemoteConfirm(Confirm):
    """One held change (pump/link.py): the seconds left count down on the bottom line.

    Either answer takes the screen away; so does the link when the change expires."""

    name = "remote_confirm"

    def __init__(self, link, change, ui):
        title, lines = describe(ui.app, change, link.draft)
        Confirm.__init__(self, "remote_confirm", title, lines, self._ok)
        self.link = link
        self.change = change
        if change.command == "setup":
            self.settles = SETUP_ALARMS
        elif change.command == "time_set":
            self.settles = SETUP_ALARMS[2:]

    def _ok(self, ui):
        return self.link.confirm(self.change, ui.app.now_ms())

    def key(self, ui, kind, key, step):
        self.scroll(kind, key)
        if kind != keys.PRESS:
            return
        if key == keys.OK:
            reason = self._ok(ui)
            ui.dismiss(self)
            if reason is not None:
                ui.push(Message("Not done", reason, "refused"))
            else:
                ui.flash("USB change done")
        elif key == keys.BACK:
            self.link.reject(self.change, ui.app.now_ms())
            ui.dismiss(self)
            ui.flash("USB change no")

    def draw(self, ui, p, now):
        left = (self.change.expires_ms - now + 999) // 1000
        self.ok_text = "OK=yes BACK %ds" % (left if left > 0 else 0)
        Confirm.draw(self, ui, p, now)

    def refresh_at(self, ui, now):
        return now + 1000 - (self.change.expires_ms - now) % 1000


def show(ui, link, change):
    """Put the confirm screen for ``change`` over any screen, as a modal question (it stays
    through the idle timeout and the keypad lock; an alarm stays above it); returns it."""
    return ui.show_modal(RemoteConfirm(link, change, ui))


def summary(app, change, draft=None):
    """The change on one line (for a host's prompt): 'bolus 2.50 U'."""
    title, lines = describe(app, change, draft)
    return title[5:-1] + ": " + ", ".join(" ".join(line.lstrip("!").split()) for line in lines)


def describe(app, change, draft=None):
    """(title, lines of at most 16 characters) saying what a held change would do."""
    req = change.request
    args = req.args
    command = req.command
    s = app.therapy.settings
    if command == "bolus":
        steps = app.therapy.mech.steps_for_mu(args[0], 0)[0]
        seconds = (bolus_run_ms(app, steps) + 999) // 1000
        return "USB: bolus?", ["Normal bolus", "  " + text.units_u(args[0]),
                               "at " + text.speed(s.bolus_speed_mu_per_min),
                               "takes %d:%02d min" % (seconds // 60, seconds % 60)]
    if command == "extended" or command == "dual":
        mu = args[0]
        percent = args[1] if command == "dual" else 0
        duration_ms = args[-1] * 60_000
        now_mu = mu * percent // 100
        lines = [("Extended " if command == "extended" else "Dual wave ") + text.units_u(mu)]
        if command == "dual":
            lines.append("now   " + text.units_u(now_mu))
            lines.append("later " + text.units_u(mu - now_mu))
        lines.append("over " + text.duration(duration_ms))
        return "USB: " + command + "?", lines
    therapy = app.therapy
    if command == "suspend":
        lines = ["Stop all insulin", "delivery"]
        if therapy.bolus is not None:
            lines.append("and the bolus")
        return "USB: suspend?", lines
    if command == "resume":
        return "USB: resume?", ["Start delivery", "again at", "  " + text.rate(
            therapy.scheduled_rate(app.now_ms()))]
    if command == "cancel_bolus":
        bolus = therapy.bolus
        given = 0 if bolus is None else therapy.mech.mu_for_steps(bolus.delivered_steps)
        of = 0 if bolus is None else bolus.requested_mu
        return "USB: end bolus?", ["Stop the bolus", "given " + text.units_u(given),
                                    "of    " + text.units_u(of)]
    if command == "cancel_temp":
        temp = therapy.temp
        return "USB: end temp?", ["Stop the temp", "basal " + (
            temp.describe() if temp is not None else "")]
    if command == "profile_delete":
        profiles = therapy.settings.profiles
        profile = profiles[args[0]] if args[0] < len(profiles) else None
        lines = ["Delete profile"]
        if profile is not None:
            lines.append("  " + profile.name[: text.COLUMNS - 2])
            lines.append("  " + text.units_u(profile.daily_total_mu()) + "/day")
        return "USB: delete?", lines
    if command == "temp":
        if args[0] == "percent":
            shown = text.percent(args[1])
        else:
            shown = text.rate(args[1])
        return "USB: temp?", ["Temp basal", "  " + shown,
                                    "for " + text.duration(args[2] * 60_000)]
    if command == "time_set":
        y, mo, d, h, mi, sec = args
        return "USB: set clock?", ["Set the clock to", "%04d-%02d-%02d" % (y, mo, d),
                                   "%02d:%02d:%02d" % (h, mi, sec), "+ the time until OK"]
    if command == "settings_put":
        return "USB: settings?", settings_lines(args, s.profiles)
    if command == "setup":
        lines = setup_lines(change.settings, args)
        alarms = app.alarms
        if alarms.find("set_up") is None and alarms.find("check_settings") is None:
            lines.insert(0, "!Replaces all")  # a pump already set up: every setting goes
        return "USB: set up?", lines
    if command == "maintenance":  # pump/link_maint.py
        return "USB: restart?", ["Restart for", "maintenance?", "!Delivery stops", "until resumed"]
    return "USB: " + command + "?", [command]


def _pair(label, value):
    """A label on the left and a value flush right on one 16-character line."""
    gap = text.COLUMNS - len(label) - len(value)
    return (label + " " * (gap if gap > 0 else 1) + value)[: text.COLUMNS]


def _rate(mu_per_h):
    return text.units(mu_per_h) + "U/h"


def _limit_lines(values, out):
    for key, label, fmt in (
        ("max_bolus", "Max bol", text.units_u),
        ("max_basal", "Max bas", _rate),
        ("increment", "Step", text.increment),
        ("speed", "Speed", text.speed),
        ("max_hour", "Max/hour", text.units_u),
        ("max_day", "Max/day", text.units_u),
        ("low_reservoir", "Low res", text.units_u),
    ):
        if key in values:
            out.append(_pair(label, fmt(values[key])))
    if "auto_off" in values:
        hours = values["auto_off"]
        out.append(_pair("Auto-off", "off" if hours == 0 else "%d h" % hours))


def _profile_lines(name, segments, out):
    out.append(name[: text.COLUMNS])
    for start, rate in segments:
        out.append(" " + text.slot(start) + " " + text.rate(rate))


def settings_lines(values, profiles):
    """A settings_put's changes, one per line, profiles by name."""
    out: list = []
    _limit_lines(values, out)
    for index, name, segments in profile_edits(values, profiles):
        if values.get("basal%d" % index) is None:  # a new name only
            out.append(name[: text.COLUMNS])
        else:
            _profile_lines(name, segments, out)
    if "active_profile" in values:
        index = values["active_profile"]
        name = values.get("name%d" % index)
        if name is None and index < len(profiles):
            name = profiles[index].name
        out.append("Use " + (name or "profile %d" % (index + 1)))
    return out


def setup_lines(settings, args):
    """What a setup would set: the date and time, the basal profile, the limits."""
    y, mo, d, h, mi, _sec = args
    out = ["%04d-%02d-%02d %02d:%02d" % (y, mo, d, h, mi)]
    profile = settings.profiles[settings.active_profile]
    _profile_lines(profile.name, profile.segments, out)
    out.append(_pair("per day", text.units_u(profile.daily_total_mu())))
    values = {
        "max_bolus": settings.max_bolus_mu, "max_basal": settings.max_basal_mu_per_h,
        "max_hour": settings.max_hour_mu, "max_day": settings.max_day_mu,
        "increment": settings.increment_mu, "speed": settings.bolus_speed_mu_per_min,
        "low_reservoir": settings.low_reservoir_mu, "auto_off": settings.auto_off_h,
    }
    _limit_lines(values, out)
    others = len(settings.profiles) - 1
    if others:
        out.append("+%d profile%s" % (others, "s" if others > 1 else ""))
    return out
