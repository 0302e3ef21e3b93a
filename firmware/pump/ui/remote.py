"""The confirm screen for a change sent over USB: shows it, OK carries it out, BACK rejects."""

from pump.core import keys
from pump.ui import text
from pump.ui.screens import Confirm, Message

_SETTING_LABELS = (
    ("max_bolus", "Max bol "),
    ("max_basal", "Max bas "),
    ("increment", "Step    "),
    ("speed", "Speed "),
    ("active_profile", "Profile "),
)


class RemoteConfirm(Confirm):
    """One held change (pump/link.py): the seconds left count down on the bottom line.

    Either answer takes the screen away; so does the link when the change expires."""

    name = "remote_confirm"

    def __init__(self, link, change):
        title, lines = describe(change.request)
        Confirm.__init__(self, "remote_confirm", title, lines, self._ok)
        self.link = link
        self.change = change

    def _ok(self, ui):
        return self.link.confirm(self.change, ui.app.now_ms())

    def key(self, ui, kind, key, step):
        if kind != keys.PRESS:
            return
        if key == keys.OK:
            reason = self._ok(ui)
            if reason is not None:
                ui.dismiss(self)
                ui.push(Message("Not done", reason, "refused"))
            else:
                ui.dismiss(self)
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
    return ui.show_modal(RemoteConfirm(link, change))


def describe(req):
    """(title, up to 5 lines) saying what a held request would change."""
    args = req.args
    command = req.command
    if command == "bolus":
        return "USB: bolus?", ["Normal bolus", "  " + text.units_u(args[0])]
    if command == "temp":
        shown = text.percent(args[1]) if args[0] == "percent" else text.rate(args[1])
        return "USB: temp?", ["Temp basal", "  " + shown, "for " + text.duration(args[2] * 60_000)]
    if command == "time_set":
        y, mo, d, h, mi, s = args
        return "USB: time?", ["Set the clock", "%04d-%02d-%02d" % (y, mo, d),
                              "%02d:%02d:%02d" % (h, mi, s)]
    if command == "settings_put":
        return "USB: settings?", _settings_lines(args)
    return "USB: " + command, [command]


def _settings_lines(values):
    lines = []
    for key, label in _SETTING_LABELS:
        if key in values:
            value = values[key]
            if key == "speed":
                shown = text.speed(value)
            elif key == "active_profile":
                shown = str(value + 1)
            else:
                shown = text.units(value)
            lines.append(label + shown)
    for index in range(4):
        name = values.get("name%d" % index)
        segments = values.get("basal%d" % index)
        if name is not None:
            lines.append(("P%d " % (index + 1)) + name)
        if segments is not None:
            lines.append("P%d basal %d seg" % (index + 1, len(segments)))
    if len(lines) > 5:
        more = len(lines) - 4
        lines = lines[:4] + ["+%d more" % more]
    return [line[: text.COLUMNS] for line in lines]
