"""The event history: one short line per event, newest first; OK shows its fields."""

from pump.ui import text
from pump.ui.screens import Menu, Message

HISTORY_LINES = 50


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


def _mu(f, key):
    value = f.get(key)
    return "" if value is None else text.units(value)


_EVENT_TEXT = {
    "boot": "Start",
    "basal_rate": lambda f: "Rate " + _mu(f, "rate_mu_per_h"),
    "bolus_started": lambda f: "Bol " + _mu(f, "requested_mu"),
    "bolus_finished": lambda f: "Done " + _mu(f, "delivered_mu"),
    "bolus_cancelled": lambda f: "Stop " + _mu(f, "delivered_mu"),
    "temp_basal_started": lambda f: "Temp " + (
        "%d%%" % f["percent"] if "percent" in f else _mu(f, "rate_mu_per_h")),
    "temp_basal_cancelled": "Temp cancel",
    "temp_basal_expired": "Temp end",
    "suspended": "Suspend",
    "resumed": "Resume",
    "refused": lambda f: "No: " + str(f.get("command", "")),
    "settings_changed": "Settings",
    "clock_set": "Clock set",
    "profile_selected": lambda f: "Prof " + str(f.get("name", "")),
    "profile_saved": lambda f: "Saved " + str(f.get("name", "")),
    "alarm": lambda f: "! " + str(f.get("code", "")),
    "alarm_cleared": lambda f: "ok " + str(f.get("code", "")),
    "alarm_ack": lambda f: "ack " + str(f.get("code", "")),
    "fault": lambda f: "Stop " + str(f.get("code", "")),
    "reservoir_rewound": "Rewound",
    "reservoir_loaded": lambda f: "Load %d U" % (f.get("volume_mu", 0) // 1000),
    "primed": lambda f: "Fill " + str(f.get("part", "")),
    "basal_hour": lambda f: "Basal " + _mu(f, "mu"),
    "reset": "Reset",
    "reset_cause": lambda f: "Cause " + str(f.get("cause", "")),
    "self_test": lambda f: "Self-test " + ("ok" if f.get("passed") else "FAIL"),
    "no_delivery": lambda f: "Off %d min" % (f.get("seconds", 0) // 60),
    "delivery_uncertain": lambda f: "Unsure " + _mu(f, "mu"),
}


def history(ui):
    app = ui.app
    events = app.history(HISTORY_LINES)  # newest first, from flash when the pump has it
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
        parts = [event[3]]
        for key in sorted(fields):
            parts.append("%s=%s" % (key, fields[key]))
        ui.push(Message(event_line(app.therapy, event)[:text.COLUMNS], " ".join(parts),
                        "history detail"))

    menu = Menu("history", "History %d" % len(events), [(line, show_detail) for line in lines])
    ui.push(menu)
