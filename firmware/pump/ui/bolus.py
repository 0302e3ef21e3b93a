"""Bolus workflows: normal, extended and dual wave, and cancelling the one running."""

from micropython import const

from pump.core import bolus as bolus_mod
from pump.core import limits as lim
from pump.ui import text
from pump.ui.screens import Confirm, Editor, Menu, bolus_run_ms

_HOUR_MS = const(3_600_000)


def _settings(ui):
    return ui.app.therapy.settings


def _amount_editor(ui, title, on_ok):
    s = _settings(ui)
    inc = s.increment_mu
    ui.push(Editor("bolus amount", title, inc, inc, s.max_bolus_mu, inc, text.units_u, on_ok))


def normal_bolus(ui):
    _amount_editor(ui, "Normal bolus", _confirm_normal)


def _confirm_normal(ui, mu):
    def start(ui):
        return ui.app.bolus(bolus_mod.NORMAL, mu)

    app = ui.app
    seconds = (bolus_run_ms(app, app.therapy.mech.steps_for_mu(mu, 0)[0]) + 999) // 1000
    lines = ["Bolus " + text.units_u(mu), "now",
             "at " + text.speed(app.therapy.settings.bolus_speed_mu_per_min),
             "takes %d:%02d min" % (seconds // 60, seconds % 60)]
    ui.push(Confirm("confirm bolus", "Normal bolus", lines, start))


def _duration_editor(ui, title, on_ok, start_ms=2 * _HOUR_MS):
    ui.push(
        Editor(
            "duration",
            title,
            start_ms,
            lim.EXTENDED_MIN_MS,
            lim.EXTENDED_MAX_MS,
            lim.EXTENDED_STEP_MS,
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
