"""The calculator's settings: carb ratio, sensitivity and targets by time of day, BG unit."""

from pump.core import calculator as calc
from pump.ui import text
from pump.ui.screens import Confirm, Menu
from pump.ui.segments import SegmentList
from pump.ui.settings import settings_done


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
                            next_list(part + 1) if part < 2 else settings_done)

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
    _push_calc_list(ui, 0, ui.calculator.icr, _calc_save(0), settings_done)


def _edit_isf(ui):
    _push_calc_list(ui, 1, ui.calculator.isf, _calc_save(1), settings_done)


def _edit_targets(ui):
    _push_calc_list(ui, 2, ui.calculator.targets, _calc_save(2), settings_done)


def _bg_unit(ui):
    def choose(mmol):
        def pick(ui):
            def apply(ui):
                return ui.app.set_bg_unit(mmol)

            unit = "mmol/L" if mmol else "mg/dL"
            ui.push(Confirm("confirm bg unit", "BG unit", ["Show BG in", unit], apply,
                            done=settings_done))

        return pick

    mark = ("*", " ") if not ui.mmol else (" ", "*")
    items = [(mark[0] + "mg/dL", choose(False)), (mark[1] + "mmol/L", choose(True))]
    ui.push(Menu("bg unit", "BG unit", items))
