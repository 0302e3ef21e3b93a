"""The workflows behind the menus: bolus, calculator, basal, suspend, reservoir, history and
settings. Each change is chosen on editors, then shown on a confirm screen before it is made."""

from pump.core import bolus as bolus_mod
from pump.core import calculator as calc
from pump.core import reservoir as res
from pump.core import safety, schedule
from pump.core.errors import Refused
from pump.ui import text
from pump.ui.screens import (
    BACK,
    BUSY_REFRESH_MS,
    LONG,
    OK,
    PRESS,
    Confirm,
    Editor,
    Menu,
    Message,
    Screen,
)

MIN_MS = 60_000
HOUR_MS = 3_600_000
HISTORY_LINES = 50


def _settings(ui):
    return ui.app.therapy.settings


def _pop(ui):
    ui.pop()


def _suspend(ui):
    return ui.app.suspend()


# ----- main menu ---------------------------------------------------------------------------


def main_menu(ui):
    therapy = ui.app.therapy
    items = [("Bolus", normal_bolus)]
    if ui.calculator is not None:
        items.append(("Calculator", calculator_carbs))
    items.append(("Ext/dual bolus", other_bolus_menu))
    items.append(("Temp basal", temp_menu))
    if therapy.suspended_at is None:
        items.append(("Suspend", offer_suspend))
    else:
        items.append(("Resume", offer_resume))
    items.append(("Basal profiles", profiles_menu))
    items.append(("Reservoir", reservoir_change))
    items.append(("History", history))
    items.append(("Settings", settings_menu))
    items.append(("Lock keys", lock_keys))
    ui.push(Menu("menu", "Menu", items))


def lock_keys(ui):
    ui.locked = True
    ui.home()
    ui.flash("Keys locked")


# ----- bolus ----------------------------------------------------------------------------------


def _amount_editor(ui, title, on_ok):
    s = _settings(ui)
    inc = s.increment_mu
    ui.push(Editor("bolus amount", title, inc, inc, s.max_bolus_mu, inc, text.units_u, on_ok))


def normal_bolus(ui):
    _amount_editor(ui, "Normal bolus", _confirm_normal)


def _confirm_normal(ui, mu):
    def start(ui):
        return ui.app.bolus(bolus_mod.NORMAL, mu)

    ui.push(Confirm("confirm bolus", "Normal bolus", ["Bolus " + text.units_u(mu), "now"], start))


def _duration_editor(ui, title, on_ok, start_ms=2 * HOUR_MS):
    ui.push(
        Editor(
            "duration",
            title,
            start_ms,
            bolus_mod.EXTENDED_MIN_MS,
            bolus_mod.EXTENDED_MAX_MS,
            bolus_mod.EXTENDED_STEP_MS,
            text.duration,
            on_ok,
        )
    )


def other_bolus_menu(ui):
    ui.push(Menu("bolus menu", "Bolus", [("Extended", extended_bolus), ("Dual wave", dual_bolus)]))


def extended_bolus(ui):
    def amount_ok(ui, mu):
        def duration_ok(ui, duration_ms):
            def start(ui):
                return ui.app.bolus(bolus_mod.EXTENDED, mu, 0, duration_ms)

            lines = ["Extended " + text.units_u(mu), "over " + text.duration(duration_ms)]
            ui.push(Confirm("confirm bolus", "Extended bolus", lines, start))

        _duration_editor(ui, "Extended over", duration_ok)

    _amount_editor(ui, "Extended bolus", amount_ok)


def dual_bolus(ui):
    def amount_ok(ui, mu):
        def percent_ok(ui, now_percent):
            def duration_ok(ui, duration_ms):
                def start(ui):
                    return ui.app.bolus(bolus_mod.DUAL, mu, now_percent, duration_ms)

                now_mu = mu * now_percent // 100
                lines = [
                    "Dual " + text.units_u(mu),
                    "now   " + text.units_u(now_mu),
                    "later " + text.units_u(mu - now_mu),
                    "over " + text.duration(duration_ms),
                ]
                ui.push(Confirm("confirm bolus", "Dual wave bolus", lines, start))

            _duration_editor(ui, "Dual: later over", duration_ok)

        ui.push(Editor("percent now", "Dual: part now", 50, 1, 99, 1, text.percent, percent_ok))

    _amount_editor(ui, "Dual wave bolus", amount_ok)


def offer_cancel_bolus(ui):
    therapy = ui.app.therapy
    bolus = therapy.bolus
    done_mu = therapy.mech.mu_for_steps(bolus.delivered_steps)
    lines = [
        "Given " + text.units_u(done_mu),
        "of    " + text.units_u(bolus.requested_mu),
        "Stop the rest?",
    ]

    def cancel(ui):
        return ui.app.cancel_bolus()

    ui.push(Confirm("cancel bolus", "Cancel bolus", lines, cancel))


# ----- calculator -----------------------------------------------------------------------------


def _line(label, value):
    """A label on the left and a value flush right on one 16-character line."""
    gap = text.COLUMNS - len(label) - len(value)
    return label + " " * (gap if gap > 0 else 1) + value


def calculator_carbs(ui):
    ui.push(Editor("carbs", "Carbs", 0, 0, calc.CARBS_MAX_G, 1, _grams, _carbs_ok))


def _grams(g):
    return "%d g" % g


def _carbs_ok(ui, carbs_g):
    ui.push(BgEditor(ui, lambda ui, bg: _calculator_result(ui, carbs_g, bg)))


class BgEditor(Editor):
    """The BG entry: starts at 'skip' (no BG); the first UP jumps to a usual value."""

    def __init__(self, ui, on_ok):
        self.mmol = ui.mmol
        if self.mmol:
            lo = calc.mgdl_to_mmol10(calc.BG_MIN)
            hi = calc.mgdl_to_mmol10(calc.BG_MAX)
        else:
            lo = calc.BG_MIN
            hi = calc.BG_MAX
        Editor.__init__(self, "bg", "BG (or skip)", lo - 1, lo - 1, hi, 1, self.fmt_bg, on_ok)
        self.skip = lo - 1
        self.usual = calc.mgdl_to_mmol10(120) if self.mmol else 120

    def fmt_bg(self, value):
        if value <= self.skip:
            return "skip"
        if self.mmol:
            return calc.fmt_mmol10(value)
        return "%d" % value

    def change(self, direction, multiplier):
        if self.value == self.skip and direction > 0:
            self.value = self.usual
            self.limit = None
            return
        Editor.change(self, direction, multiplier)

    def shown(self):
        return self.fmt_bg(self.value)

    def current(self):
        if self.value <= self.skip:
            return None
        return calc.mmol10_to_mgdl(self.value) if self.mmol else self.value

    def draw(self, ui, p, now):
        self.note = "" if self.value <= self.skip else ("mmol/L" if self.mmol else "mg/dL")
        Editor.draw(self, ui, p, now)


def _calculator_result(ui, carbs_g, bg_mgdl):
    app = ui.app
    therapy = app.therapy
    s = therapy.settings
    now = ui.now
    iob_mu = ui.iob.iob_mu(now) if ui.iob is not None else 0
    try:
        result = calc.suggest(
            ui.calculator,
            therapy.ms_of_day(now),
            carbs_g,
            bg_mgdl,
            iob_mu,
            s.increment_mu,
            s.max_bolus_mu,
        )
    except Refused as refusal:
        ui.push(Message("Not done", str(refusal), "refused"))
        return
    lines = [
        _line("Food", text.units_u(result.food_mu)),
        _line("Correct", text.units_u(result.correction_mu)),
        _line("IOB", text.units_u(-result.iob_mu)),
        _line("Total", text.units_u(result.suggested_mu)),
    ]
    if result.has(calc.LOW_BG):
        lines.append("!LOW BG: eat!")
    elif result.has(calc.CAPPED_AT_MAX):
        lines.append("!capped at max")
    mu = result.suggested_mu

    def start(ui):
        if mu <= 0:
            return "the calculator suggests no insulin"
        return ui.app.bolus(bolus_mod.NORMAL, mu)

    ui.push(Confirm("calculator result", "Give " + text.units_u(mu) + "?", lines, start))


# ----- temp basal -------------------------------------------------------------------------------


def temp_menu(ui):
    ui.push(
        Menu(
            "temp menu",
            "Temp basal",
            [
                ("Percent", temp_percent),
                ("Absolute", temp_absolute),
                ("Cancel temp", offer_cancel_temp),
            ],
        )
    )


def _temp_duration(ui, title, on_ok):
    ui.push(
        Editor(
            "duration",
            title,
            HOUR_MS,
            schedule.TEMP_MIN_MS,
            schedule.TEMP_MAX_MS,
            schedule.TEMP_MIN_MS,
            text.duration,
            on_ok,
        )
    )


def _confirm_temp(ui, kind, value, duration_ms):
    shown = text.percent(value) if kind == schedule.TEMP_PERCENT else text.rate(value)

    def start(ui):
        return ui.app.temp_basal(kind, value, duration_ms)

    lines = ["Temp " + shown, "for " + text.duration(duration_ms)]
    ui.push(Confirm("confirm temp", "Temp basal", lines, start))


def temp_percent(ui):
    def value_ok(ui, value):
        _temp_duration(
            ui, "Temp for", lambda ui, d: _confirm_temp(ui, schedule.TEMP_PERCENT, value, d)
        )

    ui.push(
        Editor("temp percent", "Temp percent", 100, 0, schedule.TEMP_MAX_PERCENT, 10, text.percent,
               value_ok)
    )


def temp_absolute(ui):
    therapy = ui.app.therapy
    now_rate = therapy.profile().rate_at(therapy.ms_of_day(ui.now))

    def value_ok(ui, value):
        _temp_duration(
            ui, "Temp for", lambda ui, d: _confirm_temp(ui, schedule.TEMP_ABSOLUTE, value, d)
        )

    ui.push(
        Editor("temp rate", "Temp rate", now_rate, 0, therapy.settings.max_basal_mu_per_h,
               schedule.RATE_STEP_MU_H, text.rate, value_ok)
    )


def offer_cancel_temp(ui):
    temp = ui.app.therapy.temp
    if temp is None:
        ui.push(Message("Temp basal", "No temp basal is running."))
        return

    def cancel(ui):
        return ui.app.cancel_temp()

    lines = ["Temp " + temp.describe(), "Stop it now?"]
    ui.push(Confirm("cancel temp", "Cancel temp", lines, cancel))


# ----- suspend / resume ----------------------------------------------------------------------


def offer_suspend(ui):
    def suspend(ui):
        return ui.app.suspend()

    ui.push(Confirm("confirm suspend", "Suspend", ["Stop all insulin", "delivery?"], suspend))


def offer_resume(ui):
    def resume(ui):
        return ui.app.resume()

    ui.push(Confirm("confirm resume", "Resume", ["Start delivery", "again?"], resume))


# ----- segments by time of day (basal profiles, calculator settings) --------------------------


class SegmentList(Screen):
    """Edit a day's segments one by one: OK on a segment edits its start then its value(s),
    'Add' appends one, LONG OK deletes one, 'Save' asks to confirm.

    ``fields``: per value of a segment, (title, lo, hi, step, fmt); ``label(segment)``
    gives the row text; ``save(ui, segments)`` returns None or a refusal.
    """

    name = "segments"

    def __init__(self, title, segments, fields, label, save, summary,
                 max_segments=calc.MAX_SEGMENTS, done=None):
        self.max_segments = max_segments
        self.done = done  # after the save is confirmed (default: home)
        self.title = title
        self.segments = [list(segment) for segment in segments]
        self.fields = fields
        self.label = label
        self.save = save
        self.summary = summary
        self.menu = Menu("segments", title, [])
        self._rebuild()

    def _rebuild(self):
        labels = [self.label(segment) for segment in self.segments]
        labels.append("+ Add")
        labels.append("Save")
        self.menu.labels = labels
        if self.menu.selected >= len(labels):
            self.menu.selected = len(labels) - 1

    def key(self, ui, kind, key, step):
        menu = self.menu
        n = len(self.segments)
        if kind == PRESS and key == OK:
            index = menu.selected
            if index < n:
                self._edit(ui, index)
            elif index == n:
                self._add(ui)
            else:
                self._confirm_save(ui)
        elif kind == LONG and key == OK and 0 < menu.selected < n:
            del self.segments[menu.selected]
            self._rebuild()
            ui.flash("Segment deleted")
        elif kind == PRESS and key == BACK:
            ui.pop()
        else:
            menu.key(ui, kind, key if key != OK else 0, step)

    def _add(self, ui):
        last = self.segments[-1]
        if last[0] >= schedule.SLOTS_PER_DAY - 1 or len(self.segments) >= self.max_segments:
            ui.flash("No more segments")
            return
        segment = list(last)
        segment[0] = last[0] + 1
        self.segments.append(segment)
        self._rebuild()
        self.menu.selected = len(self.segments) - 1
        self._edit(ui, len(self.segments) - 1)

    def _edit(self, ui, index):
        segment = self.segments[index]
        following = self.segments[index + 1][0] - 1 if index + 1 < len(self.segments) else 47

        def edit_value(ui, field):
            title, lo, hi, step, fmt = self.fields[field]

            def value_ok(ui, value):
                segment[1 + field] = value
                if field + 1 < len(self.fields):
                    edit_value(ui, field + 1)
                else:
                    self._rebuild()
                    ui.pop()

            ui.replace(Editor("segment value", title, segment[1 + field], lo, hi, step, fmt,
                              value_ok))

        def start_ok(ui, start):
            segment[0] = start
            self._rebuild()
            edit_value(ui, 0)

        if index == 0:
            ui.push(Screen())  # the first segment starts at 00:00: only its value is edited
            edit_value(ui, 0)
        else:
            previous = self.segments[index - 1][0] + 1
            ui.push(Editor("segment start", "Starts at", segment[0], previous, following, 1,
                           text.slot, start_ok))

    def _confirm_save(self, ui):
        segments = [tuple(segment) for segment in self.segments]

        def save(ui):
            return self.save(ui, segments)

        lines = self.summary(segments)
        ui.push(Confirm("confirm save", "Save " + self.title, lines, save, done=self.done))

    def draw(self, ui, p, now):
        self.menu.draw(ui, p, now)


def profiles_menu(ui):
    s = _settings(ui)
    items = []
    for index in range(len(s.profiles)):
        mark = "*" if index == s.active_profile else " "
        items.append((mark + s.profiles[index].name, _profile_actions(index)))
    if len(s.profiles) < schedule.MAX_PROFILES:
        items.append(("+ New profile", _profile_actions(len(s.profiles))))
    ui.push(Menu("profiles", "Basal profiles", items))


def _profile_actions(index):
    def open_profile(ui):
        s = _settings(ui)
        items = [("Edit", lambda ui: edit_profile(ui, index))]
        if index < len(s.profiles):
            items.insert(0, ("Activate", lambda ui: offer_select_profile(ui, index)))
        ui.push(Menu("profile", "Profile %d" % (index + 1), items))

    return open_profile


def offer_select_profile(ui, index):
    profile = _settings(ui).profiles[index]

    def select(ui):
        return ui.app.select_profile(index)

    lines = ["Use profile", profile.name, text.units_u(profile.daily_total_mu()) + "/day"]
    ui.push(Confirm("confirm profile", "Activate", lines, select))


def _rate_label(segment):
    return text.slot(segment[0]) + " " + text.units(segment[1]) + "U/h"


def edit_profile(ui, index):
    s = _settings(ui)
    if index < len(s.profiles):
        profile = s.profiles[index]
        name = profile.name
        segments = profile.segments
    else:
        name = "Profile %d" % (index + 1)
        segments = [(0, s.profiles[s.active_profile].rate_at(0))]
    fields = [("Rate", 0, s.max_basal_mu_per_h, schedule.RATE_STEP_MU_H, text.rate)]

    def save(ui, new_segments):
        return ui.app.save_profile(index, name, new_segments)

    def summary(new_segments):
        total = 0
        for i in range(len(new_segments)):
            start, value = new_segments[i]
            end = new_segments[i + 1][0] if i + 1 < len(new_segments) else schedule.SLOTS_PER_DAY
            total += value * (end - start)
        return [name, "%d segments" % len(new_segments), text.units_u(total // 2) + "/day"]

    ui.push(SegmentList("Profile", segments, fields, _rate_label, save, summary,
                        schedule.SLOTS_PER_DAY))


# ----- reservoir change ------------------------------------------------------------------------

SUSPEND = 1
REWIND = 2
LOAD = 3
FILL_TUBING = 4
FILL_CANNULA = 5
RESUME = 6
DONE = 7
_STEP_TEXT = (
    "",
    "Suspend",
    "Rewind",
    "Load reservoir",
    "Fill tubing",
    "Fill cannula",
    "Resume",
    "Change done",
)


class ReservoirChange(Screen):
    """Suspend, rewind, load, fill tubing, fill cannula, resume: OK does the next step
    (each through an editor or a confirm); the screen follows the pump's own state."""

    name = "reservoir"

    def __init__(self):
        self.waiting_for = None  # the change step the motor is working towards
        self.started = False
        self.cannula_done = False

    def step(self, app):
        change = app.reservoir.change_step
        if change == res.REWOUND:
            return LOAD
        if change == res.LOADED:
            return FILL_TUBING
        if change == res.TUBING_FILLED:
            return FILL_CANNULA
        suspended = app.therapy.suspended_at is not None
        if self.cannula_done:
            return RESUME if suspended else DONE
        return REWIND if suspended else SUSPEND

    def busy(self, app):
        if self.waiting_for is None:
            return False
        if app.reservoir.change_step == self.waiting_for:
            if self.waiting_for == res.IN_USE:
                self.cannula_done = True
            self.waiting_for = None
            return False
        if not app.train_running() and app.alarms.shown(app.now_ms()) is not None:
            self.waiting_for = None  # the move ended in a fault: the alarm says why
            return False
        return True

    def key(self, ui, kind, key, step):
        if kind != PRESS:
            return
        if key == BACK:
            ui.pop()
            return
        if key != OK or self.busy(ui.app):
            return
        self._next(ui, self.step(ui.app))

    def _next(self, ui, step):
        app = ui.app
        title = "Reservoir %d/6" % step if step < DONE else "Reservoir"
        if step == SUSPEND:
            lines = ["Suspend delivery", "to change the", "reservoir?"]
            ui.push(Confirm("confirm suspend", title, lines, _suspend, done=_pop))
        elif step == REWIND:
            def rewind(ui):
                reason = ui.app.rewind()
                if reason is None:
                    self.waiting_for = res.REWOUND
                return reason

            lines = ["Take the old", "reservoir out.", "Rewind now?"]
            ui.push(Confirm("confirm rewind", title, lines, rewind, done=_pop))
        elif step == LOAD:
            def load_ok(ui, volume_mu):
                def load(ui):
                    return ui.app.load_reservoir(volume_mu)

                lines = ["New reservoir", text.units_u(volume_mu)]
                ui.replace(Confirm("confirm load", title, lines, load, done=_pop))

            capacity = app.reservoir.capacity_mu
            ui.push(
                Editor("load volume", "Volume loaded", capacity, res.MIN_LOAD_MU, capacity,
                       1000, text.units_u, load_ok)
            )
        elif step == FILL_TUBING:
            self._fill(ui, title, "tubing", 5000, 100, res.TUBING_FILL_MAX_MU, 100,
                       res.TUBING_FILLED)
        elif step == FILL_CANNULA:
            self._fill(ui, title, "cannula", 300, res.CANNULA_FILL_MIN_MU, res.CANNULA_FILL_MAX_MU,
                       100, res.IN_USE)
        elif step == RESUME:
            def resume(ui):
                return ui.app.resume()

            ui.push(Confirm("confirm resume", title, ["Resume delivery?"], resume, done=_pop))
        else:
            ui.pop()

    def _fill(self, ui, title, part, start, lo, hi, step, reaches):
        def amount_ok(ui, mu):
            def fill(ui):
                reason = ui.app.fill(part, mu)
                if reason is None:
                    self.waiting_for = reaches
                return reason

            ui.replace(Confirm("confirm fill", title, ["Fill " + part, text.units_u(mu)], fill,
                               done=_pop))

        ui.push(
            Editor("fill " + part, "Fill " + part, start, lo, hi, step, text.units_u, amount_ok)
        )

    def draw(self, ui, p, now):
        app = ui.app
        busy = self.busy(app)
        step = self.step(app)
        if busy:
            p.title("Motor running..")
        elif step == DONE:
            p.title(_STEP_TEXT[DONE])
        else:
            p.title("Reservoir %d/6" % step)
        for i in range(1, DONE):
            mark = ">" if i == step else ("+" if i < step else " ")
            p.text(mark + _STEP_TEXT[i], 0, 10 + (i - 1) * 9)

    def refresh_at(self, ui, now):
        if self.waiting_for is not None:
            return now + BUSY_REFRESH_MS
        return None


def reservoir_change(ui):
    ui.push(ReservoirChange())


# ----- history --------------------------------------------------------------------------------


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


# ----- settings ---------------------------------------------------------------------------------


def settings_menu(ui):
    items = [
        ("Time of day", set_time),
        ("Calculator", calculator_settings),
        ("Max bolus/basal", set_limits),
        ("Max hour/day", set_insulin_limits),
        ("Insulin action", insulin_action),
        ("Low reservoir", set_low_reservoir),
        ("Auto-off", set_auto_off),
        ("Bolus options", bolus_options),
        ("Lock keys", lock_keys),
    ]
    ui.push(Menu("settings", "Settings", items))


def _minutes_text(minutes):
    return "%02d:%02d" % (minutes // 60, minutes % 60)


def set_time(ui):
    therapy = ui.app.therapy
    now_min = therapy.ms_of_day(ui.now) // MIN_MS

    def minutes_ok(ui, minutes):
        def apply(ui):
            return ui.app.set_time_of_day(minutes * MIN_MS)

        lines = ["Set the clock", "to " + _minutes_text(minutes)]
        ui.push(Confirm("confirm time", "Time of day", lines, apply))

    ui.push(Editor("time", "Time of day", now_min, 0, 1439, 1, _minutes_text, minutes_ok))


def _settings_done(ui):
    """After a settings change: back to the settings menu."""
    while len(ui.stack) > 1 and ui.top().name != "settings":
        ui.pop()


def _edit_pair(ui, first, second, title, apply):
    """Edit two settings one after the other, then confirm both on one screen.

    ``first`` and ``second``: (name, label, value, lo, hi, step, fmt) for each Editor;
    ``apply(ui, a, b)`` makes the change once confirmed.
    """

    name1, label1, value1, lo1, hi1, step1, fmt1 = first
    name2, label2, value2, lo2, hi2, step2, fmt2 = second

    def first_ok(ui, a):
        def second_ok(ui, b):
            lines = [label1, "  " + fmt1(a), label2, "  " + fmt2(b)]
            ui.push(Confirm("confirm limits", title, lines, lambda ui: apply(ui, a, b),
                            done=_settings_done))

        ui.push(Editor(name2, label2, value2, lo2, hi2, step2, fmt2, second_ok))

    ui.push(Editor(name1, label1, value1, lo1, hi1, step1, fmt1, first_ok))


def set_limits(ui):
    s = _settings(ui)
    inc = s.increment_mu
    _edit_pair(
        ui,
        ("max bolus", "Max bolus", s.max_bolus_mu, inc, bolus_mod.MAX_BOLUS_LIMIT_MU, inc,
         text.units_u),
        ("max basal", "Max basal", s.max_basal_mu_per_h, schedule.RATE_STEP_MU_H, 15_000, 50,
         text.rate),
        "Limits",
        lambda ui, max_bolus, max_basal: ui.app.set_limits(max_bolus, max_basal),
    )


def set_insulin_limits(ui):
    s = _settings(ui)
    _edit_pair(
        ui,
        ("max hour", "Max per hour", s.max_hour_mu, safety.MAX_HOUR_MIN_MU,
         safety.MAX_HOUR_MAX_MU, 500, text.units_u),
        ("max day", "Max per day", s.max_day_mu, safety.MAX_DAY_MIN_MU,
         safety.MAX_DAY_MAX_MU, 1000, text.units_u),
        "Insulin limits",
        lambda ui, max_hour, max_day: ui.app.set_insulin_limits(max_hour, max_day),
    )


def set_low_reservoir(ui):
    s = _settings(ui)

    def level_ok(ui, level):
        def apply(ui):
            return ui.app.set_safety_options(level, s.auto_off_h)

        ui.push(Confirm("confirm low reservoir", "Low reservoir", ["Warn at", text.units_u(level)],
                        apply, done=_settings_done))

    ui.push(Editor("low reservoir", "Low reservoir", s.low_reservoir_mu, res.LOW_LEVEL_MIN_MU,
                   res.LOW_LEVEL_MAX_MU, 1000, text.units_u, level_ok))


_AUTO_OFF_CHOICES = (0, 5, 6, 8, 10, 12, 16, 20, 24)


def _auto_off_text(hours):
    return "off" if hours == 0 else "%d h" % hours


def set_auto_off(ui):
    s = _settings(ui)
    start = _AUTO_OFF_CHOICES.index(s.auto_off_h) if s.auto_off_h in _AUTO_OFF_CHOICES else 0

    def hours_ok(ui, hours):
        def apply(ui):
            return ui.app.set_safety_options(s.low_reservoir_mu, hours)

        lines = ["No key pressed", "for " + _auto_off_text(hours)]
        ui.push(Confirm("confirm auto-off", "Auto-off", lines, apply, done=_settings_done))

    ui.push(Editor("auto-off", "Auto-off", start, 0, len(_AUTO_OFF_CHOICES) - 1, 1, _auto_off_text,
                   hours_ok, _AUTO_OFF_CHOICES))


def _increment_text(mu):
    return "%d.%03d U" % (mu // 1000, mu % 1000)


def bolus_options(ui):
    s = _settings(ui)
    choices = bolus_mod.INCREMENT_CHOICES_MU
    start = choices.index(s.increment_mu) if s.increment_mu in choices else 0

    def increment_ok(ui, increment):
        def speed_ok(ui, speed):
            def apply(ui):
                return ui.app.set_bolus_options(increment, speed)

            lines = ["Step " + _increment_text(increment), "Speed " + text.speed(speed)]
            ui.push(
                Confirm("confirm bolus options", "Bolus options", lines, apply,
                        done=_settings_done)
            )

        ui.push(Editor("bolus speed", "Bolus speed", s.bolus_speed_mu_per_min,
                       bolus_mod.SPEED_STANDARD_MU_MIN, bolus_mod.SPEED_QUICK_MU_MIN, 500,
                       text.speed, speed_ok))

    ui.push(Editor("bolus step", "Bolus step", start, 0, len(choices) - 1, 1, _increment_text,
                   increment_ok, choices))


def insulin_action(ui):
    from pump.core import iob as iob_mod

    s = _settings(ui)

    def preset_ok(insulin):
        def pick(ui):
            def dia_ok(ui, dia_ms):
                def apply(ui):
                    return ui.app.set_insulin_action(insulin, dia_ms)

                lines = [insulin, "acts " + text.duration(dia_ms)]
                ui.push(Confirm("confirm insulin", "Insulin action", lines, apply,
                                done=_settings_done))

            ui.push(Editor("insulin duration", "Acts for", s.dia_ms,
                           iob_mod.DIA_EXPONENTIAL_MIN_MS, iob_mod.DIA_MAX_MS, iob_mod.DIA_STEP_MS,
                           text.duration, dia_ok, note="5 to 8 h"))

        return pick

    items = []
    for insulin in (iob_mod.RAPID_ACTING, iob_mod.ULTRA_RAPID):
        mark = "*" if insulin == s.insulin else " "
        items.append((mark + insulin, preset_ok(insulin)))
    ui.push(Menu("insulin", "Insulin", items))


def calculator_settings(ui):
    if ui.calculator is None:
        setup_calculator(ui)
        return
    items = [
        ("Carb ratio", _edit_icr),
        ("Sensitivity", _edit_isf),
        ("Targets", _edit_targets),
        ("BG unit", _bg_unit),
    ]
    ui.push(Menu("calculator settings", "Calculator", items))


# Proposed when the calculator is first set up; the person edits each before saving.
_SETUP_ICR = [(0, 100)]  # 10.0 g/U
_SETUP_ISF = [(0, 50)]  # mg/dL per U
_SETUP_TARGETS = [(0, 100, 120)]  # mg/dL


def setup_calculator(ui):
    """First use: carb ratio, sensitivity and targets in turn, then one command for all."""
    chosen: list = [None, None, None]  # the parts kept so far

    def keep(part):
        def save(ui, segments):
            chosen[part] = [tuple(segment) for segment in segments]
            return None

        return save

    def next_list(part):
        def done(ui):
            ui.pop()  # the confirm of the part just kept
            ui.pop()  # and its list
            _push_calc_list(ui, part, [_SETUP_ICR, _SETUP_ISF, _SETUP_TARGETS][part],
                            keep(part) if part < 2 else save_all,
                            next_list(part + 1) if part < 2 else _settings_done)

        return done

    def save_all(ui, segments):
        chosen[2] = [tuple(segment) for segment in segments]
        return ui.app.set_calculator(chosen[0], chosen[1], chosen[2])

    _push_calc_list(ui, 0, _SETUP_ICR, keep(0), next_list(1))


def _icr_text(icr_dg):
    return calc.fmt_icr(icr_dg)


def _bg_text(ui):
    def fmt(mgdl):
        if ui.mmol:
            return calc.fmt_mmol10(calc.mgdl_to_mmol10(mgdl))
        return "%d" % mgdl

    return fmt


def _calc_save(part):
    """Save one part (0 carb ratio, 1 sensitivity, 2 targets) with the other two as they are."""

    def save(ui, segments):
        c = ui.calculator
        parts = [c.icr, c.isf, c.targets]
        parts[part] = [tuple(segment) for segment in segments]
        return ui.app.set_calculator(parts[0], parts[1], parts[2])

    return save


def _count_summary(segments):
    return ["%d segments" % len(segments)]


def _push_calc_list(ui, part, segments, save, done):
    """The segment list of one calculator part: 0 carb ratio, 1 sensitivity, 2 targets."""
    fmt = _bg_text(ui)
    if part == 0:
        fields = [("Carb ratio", calc.ICR_MIN_DG, calc.ICR_MAX_DG, 1, _icr_text)]

        def label(segment):
            return text.slot(segment[0]) + " " + calc.fmt_icr(segment[1])

        title = "Carb ratio"
    elif part == 1:
        fields = [("Sensitivity /U", calc.ISF_MIN, calc.ISF_MAX, 1, fmt)]

        def label(segment):
            return text.slot(segment[0]) + " " + fmt(segment[1]) + "/U"

        title = "Sensitivity"
    else:
        fields = [
            ("Target low", calc.TARGET_MIN, calc.TARGET_MAX, 1, fmt),
            ("Target high", calc.TARGET_MIN, calc.TARGET_MAX, 1, fmt),
        ]

        def label(segment):
            return text.slot(segment[0]) + " " + fmt(segment[1]) + "-" + fmt(segment[2])

        title = "Targets"
    ui.push(SegmentList(title, segments, fields, label, save, _count_summary, done=done))


def _edit_icr(ui):
    _push_calc_list(ui, 0, ui.calculator.icr, _calc_save(0), _settings_done)


def _edit_isf(ui):
    _push_calc_list(ui, 1, ui.calculator.isf, _calc_save(1), _settings_done)


def _edit_targets(ui):
    _push_calc_list(ui, 2, ui.calculator.targets, _calc_save(2), _settings_done)


def _bg_unit(ui):
    def choose(mmol):
        def pick(ui):
            def apply(ui):
                return ui.app.set_bg_unit(mmol)

            unit = "mmol/L" if mmol else "mg/dL"
            ui.push(Confirm("confirm bg unit", "BG unit", ["Show BG in", unit], apply,
                            done=_settings_done))

        return pick

    mark = ("*", " ") if not ui.mmol else (" ", "*")
    items = [(mark[0] + "mg/dL", choose(False)), (mark[1] + "mmol/L", choose(True))]
    ui.push(Menu("bg unit", "BG unit", items))
