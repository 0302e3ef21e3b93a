"""The building blocks of every workflow: menus, value editors, confirm and message screens,
the home screen and the alarm screen."""

from micropython import const

from pump.core import keys
from pump.ui import text
from pump.ui import widgets as w

PRESS = keys.PRESS
REPEAT = keys.REPEAT
LONG = keys.LONG
UP = keys.UP
DOWN = keys.DOWN
OK = keys.OK
BACK = keys.BACK

_BOLUS_REFRESH_MS = const(1000)  # the progress bar moves while a bolus runs
BUSY_REFRESH_MS = const(500)  # a screen waiting for the motor looks again this often
CONFIRM_ROWS = const(5)  # text lines between a confirm screen's title and its bottom line


class Screen:
    """One screen: answers keys and draws itself. ``name`` is what screen_name() reports."""

    name = "screen"
    modal = False  # a question that stays until answered (Ui.show_confirm)
    settles: tuple = ()  # alarm codes this screen answers: it stays above their alarm screen

    def key(self, ui, kind, key, step):
        if kind == PRESS and key == BACK:
            ui.pop()

    def draw(self, ui, p, now):
        pass

    def refresh_at(self, ui, now):
        """When this screen must be drawn again by itself (absolute ms), or None."""
        return None


class Menu(Screen):
    """A list of (label, action(ui)) items; UP/DOWN move, OK runs the action, BACK leaves."""

    def __init__(self, name, title, items):
        self.name = name
        self.title = title
        self.labels = [item[0] for item in items]
        self.actions = [item[1] for item in items]
        self.selected = 0
        self.top = 0

    def key(self, ui, kind, key, step):
        if kind == PRESS or kind == REPEAT:
            if key == UP and self.selected > 0:
                self.selected -= 1
            elif key == DOWN and self.selected < len(self.labels) - 1:
                self.selected += 1
            elif key == OK and kind == PRESS:
                self.actions[self.selected](ui)
            elif key == BACK and kind == PRESS:
                ui.pop()
            self.top = w.scroll_top(self.selected, self.top)

    def draw(self, ui, p, now):
        p.title(self.title)
        p.list_rows(self.labels, self.selected, self.top)


class Editor(Screen):
    """Enter a number between ``lo`` and ``hi`` in ``step``s; it stops at a limit and says so.

    UP/DOWN change the value by ``step`` times the key's repeat multiplier (1, 10, 100).
    With ``choices`` the value is an index into them and ``fmt`` formats the choice.
    ``on_ok(ui, value)`` receives the value (or the choice).
    """

    def __init__(self, name, title, value, lo, hi, step, fmt, on_ok, choices=None, note=""):
        self.name = name
        self.title = title
        self.lo = lo
        self.hi = hi
        self.step = step
        self.fmt = fmt
        self.on_ok = on_ok
        self.choices = choices
        self.note = note
        self.limit = None  # why the value stopped, while it sits at a limit
        self.value = lo if value < lo else hi if value > hi else value

    def current(self):
        if self.choices is not None:
            return self.choices[self.value]
        return self.value

    def shown(self):
        return self.fmt(self.current())

    def change(self, direction, multiplier):
        value = self.value + direction * self.step * multiplier
        self.limit = None
        if value > self.hi:
            value = self.hi
            self.limit = "max " + self.fmt(self.choices[value] if self.choices else value)
        elif value < self.lo:
            value = self.lo
            self.limit = "min " + self.fmt(self.choices[value] if self.choices else value)
        self.value = value

    def key(self, ui, kind, key, step):
        if kind == PRESS or kind == REPEAT:
            if key == UP:
                self.change(1, step)
            elif key == DOWN:
                self.change(-1, step)
            elif key == OK and kind == PRESS:
                self.on_ok(ui, self.current())
            elif key == BACK and kind == PRESS:
                ui.pop()

    def draw(self, ui, p, now):
        p.title(self.title)
        shown = self.shown()
        if len(shown) * 16 <= w.WIDTH:
            p.center(shown, 22, 2)
        else:
            p.center(shown, 26)
        if self.note:
            p.center(self.note, 42)
        if self.limit is not None:
            p.text(self.limit, 1, 55, True)
        else:
            p.text("UP/DN  OK  BACK", 4, 55)


def scroll(screen, kind, key):
    """UP/DOWN move a screen's ``lines`` under its title, 5 at a time (``screen.top``)."""
    if kind == PRESS or kind == REPEAT:
        if key == DOWN and screen.top + CONFIRM_ROWS < len(screen.lines):
            screen.top += 1
        elif key == UP and screen.top > 0:
            screen.top -= 1


class Confirm(Screen):
    """The second step of every change: shows the change; OK does it, BACK leaves.

    ``lines``: texts, 5 shown at a time (UP/DOWN scroll more); one starting with '!' is
    a warning, drawn lit.
    ``action(ui)`` returns None or the App's refusal, shown as a message; then ``done(ui)``
    (default: home). BACK calls ``back(ui)`` if given, and leaves.
    """

    def __init__(self, name, title, lines, action, done=None, ok_text="OK=yes BACK=no",
                 back=None):
        self.name = name
        self.title = title
        self.lines = lines
        self.action = action
        self.done = done
        self.ok_text = ok_text
        self.back = back
        self.top = 0  # the first line shown

    def scroll(self, kind, key):
        scroll(self, kind, key)

    def key(self, ui, kind, key, step):
        self.scroll(kind, key)
        if kind != PRESS:
            return
        if key == OK:
            reason = self.action(ui)
            if reason is not None:
                ui.refused(reason)
            elif self.done is not None:
                self.done(ui)
            else:
                ui.home()
        elif key == BACK:
            ui.pop()
            if self.back is not None:
                self.back(ui)

    def draw(self, ui, p, now):
        p.title(self.title)
        y = 12
        lines = self.lines
        for line in lines[self.top : self.top + CONFIRM_ROWS]:
            if line and line[0] == "!":
                p.text(line[1:], 1, y, True)
            else:
                p.text(line, 0, y)
            y += 9
        if self.top + CONFIRM_ROWS < len(lines):
            p.right("v", 56)  # more below: DOWN scrolls
        p.text(self.ok_text, 0, 56)


class Message(Screen):
    """A text to read (a refusal, a result); OK or BACK goes back. ``lines``: the text's
    lines as given, instead of ``message`` wrapped; UP/DOWN scroll more than 5."""

    name = "message"

    def __init__(self, title, message, name="message", back_home=False, lines=None):
        self.name = name
        self.title = title
        self.lines = lines if lines is not None else text.wrap(message, text.COLUMNS, 5)
        self.back_home = back_home
        self.top = 0

    def key(self, ui, kind, key, step):
        scroll(self, kind, key)
        if kind == PRESS and (key == OK or key == BACK):
            if self.back_home:
                ui.home()
            else:
                ui.pop()

    def draw(self, ui, p, now):
        p.title(self.title)
        y = 12
        for line in self.lines[self.top : self.top + CONFIRM_ROWS]:
            p.text(line, 0, y)
            y += 9
        if self.top + CONFIRM_ROWS < len(self.lines):
            p.text("v", 0, 56)
        p.right("OK", 56)


def bolus_run_ms(app, steps):
    """How long ``steps`` of bolus take at the set speed, with the line tests' pauses."""
    rate = app.therapy.bolus_step_rate()
    run_ms = steps * 1000 // (rate if rate > 0 else 1)
    test = app.line_test
    if test is not None:
        run_ms += test.bolus_wait_ms(app.now_ms(), run_ms)
    return run_ms


def bolus_finish_ms(app, now):
    """When the running bolus will be over (absolute ms), line tests counted: the App's
    own answer (its delivery side knows the test under way)."""
    end = app.bolus_finish_ms(now)
    return now if end is None else end


class Home(Screen):
    """Time, state, basal rate, insulin on board, reservoir and battery at a glance; during
    a bolus, its progress and when it will be over."""

    name = "home"

    def key(self, ui, kind, key, step):
        if kind != PRESS:
            return
        if key == BACK and ui.app.therapy.bolus is not None:
            ui.open("bolus", "offer_cancel_bolus")
        elif ui.locked:
            ui.flash("Locked: BACK+OK")
        elif key == OK:
            ui.open("menu", "main_menu")

    def draw(self, ui, p, now):
        app = ui.app
        therapy = app.therapy
        p.big(text.hhmm(therapy.ms_of_day(now)), 0, 0, 2)
        level = ui.battery() if ui.battery is not None else None
        p.right("--" if level is None else "%d%%" % level, 0)
        if ui.locked:
            p.right("key", 8)
        bolus = therapy.bolus
        shown_alarm = app.alarms.shown(now)
        if shown_alarm is not None:
            p.text("ALARM", 1, 19, True)
        elif therapy.suspended_at is not None:
            p.text("SUSPENDED", 1, 19, True)
        elif bolus is not None:
            steps = bolus.steps
            done = bolus.delivered_steps
            mech = therapy.mech
            p.text("Bolus " + text.units(mech.mu_for_steps(done)) + "/" + text.units(
                bolus.requested_mu) + "U", 0, 19)
            p.progress(0, 57, w.WIDTH, 7, done, steps)
        else:
            p.text("Delivering", 0, 19)
        temp = therapy.temp
        label = "Temp   " if temp is not None and therapy.suspended_at is None else "Basal  "
        p.text(label + text.rate(therapy.rate(now)), 0, 28)
        if ui.iob is not None:
            p.text("IOB    " + text.units_u(ui.iob.iob_mu(now)), 0, 37)
        else:
            p.text("IOB    --", 0, 37)
        if bolus is not None:
            end_ms = therapy.ms_of_day(bolus_finish_ms(app, now))
            seconds = end_ms // 1000
            p.text("Ends   %02d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60),
                   0, 46)
        else:
            p.text("Res    " + text.units_u(app.reservoir.remaining_mu()), 0, 46)
        if bolus is None:
            p.text("OK=menu" if not ui.locked else "locked", 0, 56)

    def refresh_at(self, ui, now):
        if ui.app.therapy.bolus is not None:
            return now + _BOLUS_REFRESH_MS
        # The clock: the next minute of the time of day.
        return now + 60_000 - ui.app.therapy.ms_of_day(now) % 60_000


# Alarms whose OK leads to the screens that answer them: (code, module, function, OK text).
_LEADS = (
    ("set_up", "setup", "start", "OK=set up"),
    ("check_settings", "setup", "start", "OK=set up"),
    ("set_time", "clock", "set_time_after_loss", "OK=set time"),
)


def _lead(code):
    for lead in _LEADS:
        if lead[0] == code:
            return lead
    return None


class AlarmScreen(Screen):
    """An alarm over any screen, in large letters; OK acknowledges it. The set-up, damaged
    settings and clock alarms then lead on to the screens that answer them."""

    name = "alarm"

    def __init__(self, alarm):
        self.alarm = alarm
        self.lines = text.wrap(alarm_message(alarm.code), text.COLUMNS, 3)
        self.lead = _lead(alarm.code)

    def key(self, ui, kind, key, step):
        if kind == PRESS and key == OK:
            code = self.alarm.code
            ui.app.acknowledge(code)
            ui.pop()
            lead = self.lead
            if lead is not None and not ui.answering(code):
                ui.open(lead[1], lead[2])

    def draw(self, ui, p, now):
        p.center("ALARM", 0, 2)
        y = 20
        for line in self.lines:
            p.text(line, 0, y)
            y += 9
        p.text("OK=acknowledge" if self.lead is None else self.lead[3], 0, 56, True)


def alarm_message(code):
    from pump.core import alarms

    return alarms.message(code)
