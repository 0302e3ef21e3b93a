"""Temp basal (percent or absolute, for a time), cancelling it, suspend and resume."""

from micropython import const

from pump.core import limits as lim
from pump.core import schedule
from pump.ui import text
from pump.ui.screens import Confirm, Editor, Menu, Message

_HOUR_MS = const(3_600_000)


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
            _HOUR_MS,
            lim.TEMP_MIN_MS,
            lim.TEMP_MAX_MS,
            lim.TEMP_MIN_MS,
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
        Editor("temp percent", "Temp percent", 100, 0, lim.TEMP_MAX_PERCENT, 10, text.percent,
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
               lim.RATE_STEP_MU_H, text.rate, value_ok)
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
