"""The event history: one short line per event, newest first; OK shows its fields."""

from micropython import const

from pump.ui import text
from pump.ui.screens import Menu, Message

_HISTORY_LINES = const(50)


def event_line(therapy, event):
    """One short line for an event: time of day and what happened.

    ``event``: (seq, t_ms, wall_s, type, fields) as ``App.history`` gives it; the wall
    clock (seconds) when the record has it, since t_ms of an event from before the last
    reset counts from another boot.
    """
    _seq, t_ms, wall_s, etype, f = event
    what = _EVENT_TEXT.get(etype)
    if what is None:
        what = etype.replace("_", " ")
    elif callable(what):
        what = what(f)
    if wall_s is None:
        ms_of_day = therapy.ms_of_day(t_ms)
    else:
        ms_of_day = (wall_s % 86_400) * 1000
    return text.hhmm(ms_of_day) + " " + what


def _u(f, key, unit="U"):
    """A field in mU (or mU/h) as units: '2.50U'."""
    value = f.get(key)
    return "" if value is None else text.units(value) + unit


def _fit(label, value):
    """Label and value in the 9 columns after the time: a space between when it fits."""
    return label + (" " if len(label) + len(value) < 9 else "") + value


_EVENT_TEXT = {
    "boot": "Start",
    "basal_rate": lambda f: text.rate(f.get("rate_mu_per_h", 0)),
    "bolus_started": lambda f: _fit("Bol", _u(f, "requested_mu")),
    "bolus_finished": lambda f: _fit("End", _u(f, "delivered_mu")),
    "bolus_cancelled": lambda f: _fit("Cut", _u(f, "delivered_mu")),
    "temp_basal_started": lambda f: _fit("Temp", (
        "%d%%" % f["percent"] if "percent" in f else _u(f, "rate_mu_per_h", "U/h"))),
    "temp_basal_cancelled": "Temp cancel",
    "temp_basal_expired": "Temp end",
    "suspended": "Suspend",
    "resumed": "Resume",
    "refused": lambda f: "No: " + str(f.get("command", "")),
    "settings_changed": "Settings",
    "clock_set": "Clock set",
    "setup_step": lambda f: "Setup " + str(f.get("step", "")),
    "profile_selected": lambda f: "Prof " + str(f.get("name", "")),
    "profile_saved": lambda f: "Saved " + str(f.get("name", "")),
    "alarm": lambda f: "! " + str(f.get("code", "")),
    "alarm_cleared": lambda f: "ok " + str(f.get("code", "")),
    "alarm_ack": lambda f: "ack " + str(f.get("code", "")),
    "fault": lambda f: "Stop " + str(f.get("code", "")),
    "reservoir_rewound": "Rewound",
    "reservoir_loaded": lambda f: "Load %d U" % (f.get("volume_mu", 0) // 1000),
    "primed": lambda f: "Fill " + str(f.get("part", "")),
    "basal_hour": lambda f: _fit("Bas", _u(f, "mu")),
    "reset": "Reset",
    "reset_cause": lambda f: "Cause " + str(f.get("cause", "")),
    "self_test": lambda f: "Self-test " + ("ok" if f.get("passed") else "FAIL"),
    "no_delivery": lambda f: "Off %d min" % (f.get("seconds", 0) // 60),
    "delivery_uncertain": lambda f: _fit("Unsure", _u(f, "mu")),
}


def field_text(key, value):
    """One event field as a person reads it: 'requested 2.50 U', 'rate 0.80 U/h'."""
    if type(value) is not int:
        return "%s %s" % (key, value)
    if key == "mu":
        return text.units_u(value)
    if key[-9:] == "_mu_per_h":
        return key[:-9] + " " + text.rate(value)
    if key[-3:] == "_mu":
        return key[:-3] + " " + text.units_u(value)
    if key[-3:] == "_ms":
        if value >= 60_000:
            return key[:-3] + " " + text.duration(value)
        return "%s %d.%d s" % (key[:-3], value // 1000, value % 1000 // 100)
    if key[-4:] == "_min":
        return "%s %d min" % (key[:-4], value)
    if key[-6:] == "wall_s":
        from pump.core.state import rtc_tuple

        dt = rtc_tuple(value)
        label = key[:-7] if len(key) > 6 else "at"
        return "%s %04d-%02d-%02d %02d:%02d" % ((label,) + dt[:3] + dt[4:6])
    return "%s %d" % (key, value)


def history(ui):
    app = ui.app
    events = app.history(_HISTORY_LINES)  # newest first, from flash when the pump has it
    lines = []
    details = []
    for event in events:
        lines.append(event_line(app.therapy, event)[: text.COLUMNS - 1])
        details.append(event)
    if not lines:
        lines.append("(no events)")
        details.append(None)

    def show_detail(ui):
        event = details[menu.selected]
        if event is None:
            return
        fields = event[4]
        lines = [event[3].replace("_", " ")[: text.COLUMNS]]
        for key in sorted(fields):
            lines.append(field_text(key, fields[key])[: text.COLUMNS])
        ui.push(Message(event_line(app.therapy, event)[:text.COLUMNS], "", "history detail",
                        lines=lines))

    menu = Menu("history", "History %d" % len(events), [(line, show_detail) for line in lines])
    ui.push(menu)
