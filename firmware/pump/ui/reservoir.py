"""The reservoir change: suspend, rewind, load, fill tubing, fill cannula, resume."""

from micropython import const

from pump.core import reservoir as res
from pump.ui import text
from pump.ui.screens import BACK, BUSY_REFRESH_MS, OK, PRESS, Confirm, Editor, Screen


def _pop(ui):
    ui.pop()


def _suspend(ui):
    return ui.app.suspend()


SUSPEND = const(1)
REWIND = const(2)
LOAD = const(3)
FILL_TUBING = const(4)
FILL_CANNULA = const(5)
RESUME = const(6)
DONE = const(7)
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
