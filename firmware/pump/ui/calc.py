"""The bolus calculator: carbs, then BG (or skip), then the suggestion and its breakdown."""

from pump.core import bolus as bolus_mod
from pump.core import calculator as calc
from pump.core.errors import Refused
from pump.ui import text
from pump.ui.screens import Confirm, Editor, Message


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
