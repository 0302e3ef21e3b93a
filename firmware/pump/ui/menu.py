"""The main menu: each item opens its workflow's module (pump/ui/<module>.py) when chosen."""

from pump.ui.screens import Menu


def _go(module, function):
    def go(ui):
        ui.open(module, function)

    return go


def main_menu(ui):
    app = ui.app
    therapy = app.therapy
    items = [("Bolus", _go("bolus", "normal_bolus"))]
    alarms = app.alarms
    if alarms.find("set_up") is not None or alarms.find("check_settings") is not None:
        items.insert(0, ("Set up pump", _go("setup", "start")))
    if ui.calculator is not None:
        items.append(("Calculator", _go("calc", "calculator_carbs")))
    items.append(("Ext/dual bolus", _go("bolus", "other_bolus_menu")))
    items.append(("Temp basal", _go("temp", "temp_menu")))
    if therapy.suspended_at is None:
        items.append(("Suspend", _go("temp", "offer_suspend")))
    else:
        items.append(("Resume", _go("temp", "offer_resume")))
    items.append(("Basal profiles", _go("profiles", "profiles_menu")))
    items.append(("Reservoir", _go("reservoir", "reservoir_change")))
    items.append(("History", _go("history", "history")))
    items.append(("Settings", _go("settings", "settings_menu")))
    items.append(("Lock keys", lock_keys))
    ui.push(Menu("menu", "Menu", items))


def lock_keys(ui):
    ui.locked = True
    ui.home()
    ui.flash("Keys locked")
