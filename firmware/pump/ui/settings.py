"""Settings: time of day, limits, insulin limits, low reservoir, auto-off, bolus options,
insulin action (the calculator's settings are in calc_settings)."""

from pump.core import limits as lim
from pump.ui import text
from pump.ui.menu import lock_keys
from pump.ui.screens import Confirm, Editor, Menu


def _settings(ui):
    return ui.app.therapy.settings


def settings_menu(ui):
    items = [
        ("Time of day", set_time),
        ("Calculator", _calculator),
        ("Max bolus/basal", set_limits),
        ("Max hour/day", set_insulin_limits),
        ("Insulin action", insulin_action),
        ("Low reservoir", set_low_reservoir),
        ("Auto-off", set_auto_off),
        ("Bolus options", bolus_options),
        ("Lock keys", lock_keys),
    ]
    ui.push(Menu("settings", "Settings", items))


def _calculator(ui):
    ui.open("calc_settings", "calculator_settings")


def set_time(ui):
    """The date and time of day, lit on the time (pump/ui/clock.py)."""
    from pump.ui.clock import set_time

    set_time(ui, done=settings_done)


def settings_done(ui):
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
                            done=settings_done))

        ui.push(Editor(name2, label2, value2, lo2, hi2, step2, fmt2, second_ok))

    ui.push(Editor(name1, label1, value1, lo1, hi1, step1, fmt1, first_ok))


def set_limits(ui):
    s = _settings(ui)
    inc = s.increment_mu
    _edit_pair(
        ui,
        ("max bolus", "Max bolus", s.max_bolus_mu, inc, lim.MAX_BOLUS_MU, inc, text.units_u),
        ("max basal", "Max basal", s.max_basal_mu_per_h, lim.RATE_STEP_MU_H,
         lim.MAX_BASAL_MU_PER_H, 50, text.rate),
        "Limits",
        lambda ui, max_bolus, max_basal: ui.app.set_limits(max_bolus, max_basal),
    )


def set_insulin_limits(ui):
    s = _settings(ui)
    _edit_pair(
        ui,
        ("max hour", "Max per hour", s.max_hour_mu, lim.MAX_HOUR_MIN_MU,
         lim.MAX_HOUR_MAX_MU, 500, text.units_u),
        ("max day", "Max per day", s.max_day_mu, lim.MAX_DAY_MIN_MU,
         lim.MAX_DAY_MAX_MU, 1000, text.units_u),
        "Insulin limits",
        lambda ui, max_hour, max_day: ui.app.set_insulin_limits(max_hour, max_day),
    )


def set_low_reservoir(ui):
    s = _settings(ui)

    def level_ok(ui, level):
        def apply(ui):
            return ui.app.set_safety_options(level, s.auto_off_h)

        ui.push(Confirm("confirm low reservoir", "Low reservoir", ["Warn at", text.units_u(level)],
                        apply, done=settings_done))

    ui.push(Editor("low reservoir", "Low reservoir", s.low_reservoir_mu, lim.LOW_LEVEL_MIN_MU,
                   lim.LOW_LEVEL_MAX_MU, 1000, text.units_u, level_ok))


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
        ui.push(Confirm("confirm auto-off", "Auto-off", lines, apply, done=settings_done))

    ui.push(Editor("auto-off", "Auto-off", start, 0, len(_AUTO_OFF_CHOICES) - 1, 1, _auto_off_text,
                   hours_ok, _AUTO_OFF_CHOICES))


def bolus_options(ui):
    s = _settings(ui)
    choices = lim.INCREMENT_CHOICES_MU
    start = choices.index(s.increment_mu) if s.increment_mu in choices else 0

    def increment_ok(ui, increment):
        def speed_ok(ui, speed):
            def apply(ui):
                return ui.app.set_bolus_options(increment, speed)

            lines = ["Step " + text.increment(increment), "Speed " + text.speed(speed)]
            ui.push(
                Confirm("confirm bolus options", "Bolus options", lines, apply,
                        done=settings_done)
            )

        ui.push(Editor("bolus speed", "Bolus speed", s.bolus_speed_mu_per_min,
                       lim.SPEED_STANDARD_MU_MIN, lim.SPEED_QUICK_MU_MIN, 500,
                       text.speed, speed_ok))

    ui.push(Editor("bolus step", "Bolus step", start, 0, len(choices) - 1, 1, text.increment,
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
                                done=settings_done))

            ui.push(Editor("insulin duration", "Acts for", s.dia_ms,
                           iob_mod.DIA_EXPONENTIAL_MIN_MS, iob_mod.DIA_MAX_MS, iob_mod.DIA_STEP_MS,
                           text.duration, dia_ok, note="5 to 8 h"))

        return pick

    items = []
    for insulin in (iob_mod.RAPID_ACTING, iob_mod.ULTRA_RAPID):
        mark = "*" if insulin == s.insulin else " "
        items.append((mark + insulin, preset_ok(insulin)))
    ui.push(Menu("insulin", "Insulin", items))
