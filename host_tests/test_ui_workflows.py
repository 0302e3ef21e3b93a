"""Each workflow walked by key events against a SimPump: what the therapy did and what the
screen showed."""

import machine
import pytest

from pump.core import events as ev
from pump.core import iob, keys
from pump.core import reservoir as res
from pump.core.calculator import CalculatorSettings
from pump.core.schedule import TEMP_PERCENT
from test_ui import MIN, Rig

OK = keys.OK
BACK = keys.BACK
UP = keys.UP
DOWN = keys.DOWN


def calculator_settings():
    # 15 g/U, 50 mg/dL per U, target 100 to 120 mg/dL all day.
    return CalculatorSettings([(0, 150)], [(0, 50)], [(0, 100, 120)])


@pytest.mark.slow
def test_normal_bolus_takes_four_presses_plus_the_amount():
    rig = Rig()
    rig.press(OK)  # the menu, 'Bolus' first
    assert rig.shows("Bolus"), rig.dump()
    rig.press(OK)  # the amount
    rig.enter(UP, 49)  # 0.05 U + 49 x 0.05 U
    assert rig.shows("2.50 U", scale=2), rig.dump()
    rig.press(OK)  # the confirm screen shows the change
    assert rig.screen() == "confirm bolus" and rig.shows("Bolus 2.50 U"), rig.dump()
    assert rig.events(ev.BOLUS_STARTED) == []
    rig.press(OK)
    assert rig.presses <= 4
    ((_t, _e, started),) = rig.events(ev.BOLUS_STARTED)
    assert started["bolus"] == "normal" and started["requested_mu"] == 2500
    rig.run(5000)
    assert rig.screen() == "home" and rig.shows("/2.50"), rig.dump()  # 'Bolus x.xx/2.50'
    rig.run(3 * MIN)
    ((_t, _e, finished),) = rig.events(ev.BOLUS_FINISHED)
    assert finished["requested_mu"] == 2500
    assert rig.shows("Delivering")


@pytest.mark.slow
def test_extended_and_dual_wave_bolus():
    rig = Rig()
    rig.press(OK)
    rig.enter(DOWN)  # 'Ext/dual bolus'
    rig.press(OK)
    rig.press(OK)  # 'Extended'
    rig.enter(UP, 19)  # 1.00 U
    rig.press(OK)
    assert rig.shows("2:00 h", scale=2), rig.dump()
    rig.enter(DOWN, 3)  # 0:30 h
    rig.press(OK)
    assert rig.shows("Extended 1.00 U") and rig.shows("over 0:30 h"), rig.dump()
    rig.press(OK)
    ((_t, _e, started),) = rig.events(ev.BOLUS_STARTED)
    assert started["bolus"] == "extended" and started["extended_min"] == 30
    assert started["now_steps"] == 0 and started["requested_mu"] == 1000
    rig.run(31 * MIN)
    assert len(rig.events(ev.BOLUS_FINISHED)) == 1

    rig.press(OK)
    rig.enter(DOWN)
    rig.press(OK)
    rig.enter(DOWN)  # 'Dual wave'
    rig.press(OK)
    rig.enter(UP, 39)  # 2.00 U
    rig.press(OK)
    rig.enter(DOWN, 2, step=10)  # 50 % -> 30 %
    rig.press(OK)
    rig.press(OK)  # 2:00 h
    assert rig.shows("now   0.60 U") and rig.shows("later 1.40 U"), rig.dump()
    rig.press(OK)
    (_t, _e, dual) = rig.events(ev.BOLUS_STARTED)[-1]
    assert dual["bolus"] == "dual" and dual["extended_min"] == 120
    assert dual["now_steps"] == dual["steps"] * 30 // 100


def test_calculator_in_six_presses_shows_the_breakdown_before_the_bolus():
    rig = Rig(calculator=calculator_settings())
    rig.press(OK)
    rig.press(DOWN)  # 'Calculator'
    rig.press(OK)
    rig.enter(UP, 3, step=10)  # 30 g
    rig.press(OK)
    assert rig.shows("skip", scale=2), rig.dump()
    rig.enter(UP)  # 120 mg/dL
    rig.enter(UP, 5, step=10)  # 170 mg/dL
    rig.press(OK)
    assert rig.screen() == "calculator result"
    for line in ("Food      2.00 U", "Correct   1.00 U", "IOB       0.00 U", "Total     3.00 U"):
        assert rig.shows(line), (line, rig.dump())
    assert rig.shows("Give 3.00 U?")
    rig.press(OK)
    assert rig.presses <= 6
    ((_t, _e, started),) = rig.events(ev.BOLUS_STARTED)
    assert started["requested_mu"] == 3000


def test_calculator_warns_of_low_glucose_and_skipping_bg_gives_food_only():
    rig = Rig(calculator=calculator_settings())
    rig.press(OK)
    rig.press(DOWN)
    rig.press(OK)
    rig.enter(UP, 3, step=10)
    rig.press(OK)
    rig.enter(UP)
    rig.enter(DOWN, 6, step=10)  # 60 mg/dL
    rig.press(OK)
    assert rig.shows("LOW BG: eat!"), rig.dump()
    assert rig.shows("Correct  -0.80 U"), rig.dump()  # (60 - 100) / 50
    rig.press(BACK)  # back to the BG entry
    rig.enter(DOWN, 1, step=100)  # down to 'skip'
    rig.enter(DOWN)
    rig.press(OK)
    assert rig.shows("Total     2.00 U") and not rig.shows("LOW BG: eat!"), rig.dump()
    assert rig.events(ev.BOLUS_STARTED) == []


def test_cancel_a_running_bolus_from_home():
    rig = Rig()
    rig.press(OK)
    rig.press(OK)
    rig.enter(UP, 9, step=10)  # 4.55 U
    rig.press(OK)
    rig.press(OK)
    rig.run(10_000)
    rig.press(BACK)
    assert rig.screen() == "cancel bolus" and rig.shows("of    4.55 U"), rig.dump()
    rig.press(OK)
    ((_t, _e, cancelled),) = rig.events(ev.BOLUS_CANCELLED)
    assert 0 < cancelled["delivered_mu"] < 4550
    assert rig.app.therapy.bolus is None and rig.screen() == "home"


def test_temp_basal_set_then_cancel():
    rig = Rig()
    rig.press(OK)
    rig.enter(DOWN, 2)  # 'Temp basal'
    rig.press(OK)
    rig.press(OK)  # 'Percent'
    rig.enter(UP, 5)  # 150 %
    rig.press(OK)
    rig.enter(UP)  # 1:30 h
    rig.press(OK)
    assert rig.shows("Temp 150 %") and rig.shows("for 1:30 h"), rig.dump()
    rig.press(OK)
    temp = rig.app.therapy.temp
    assert temp.kind == TEMP_PERCENT and temp.value == 150
    assert temp.end_ms - temp.start_ms == 90 * MIN
    assert rig.shows("Temp   1.20 U/h"), rig.dump()
    rig.press(OK)
    rig.enter(DOWN, 2)
    rig.press(OK)
    rig.enter(DOWN, 2)  # 'Cancel temp'
    rig.press(OK)
    assert rig.shows("Temp 150 %"), rig.dump()
    rig.press(OK)
    assert rig.app.therapy.temp is None and len(rig.events(ev.TEMP_CANCELLED)) == 1
    assert rig.shows("Basal  0.80 U/h"), rig.dump()


def test_profile_edited_segment_by_segment_then_selected_and_the_other_deleted():
    rig = Rig()
    rig.press(OK)
    rig.enter(DOWN, 4)  # 'Basal profiles'
    rig.press(OK)
    rig.enter(DOWN)  # '+ New profile'
    rig.press(OK)
    rig.press(OK)  # 'Edit'
    assert rig.shows("00:00 0.80U/h"), rig.dump()
    rig.press(OK)  # the first segment: its rate only
    rig.enter(DOWN, 3, step=10)  # 0.50 U/h
    rig.press(OK)
    rig.enter(DOWN)  # '+ Add'
    rig.press(OK)
    rig.enter(UP, 13)  # starts 07:00
    rig.press(OK)
    rig.enter(UP, 5, step=10)  # 1.00 U/h
    rig.press(OK)
    assert rig.shows("07:00 1.00U/h"), rig.dump()
    rig.enter(DOWN, 2)  # 'Save'
    rig.press(OK)
    assert rig.shows("2 segments") and rig.shows("20.50 U/day"), rig.dump()
    rig.press(OK)
    profiles = rig.app.therapy.settings.profiles
    assert profiles[1].segments == [(0, 500), (14, 1000)]
    assert rig.app.therapy.settings.active_profile == 0
    rig.press(OK)
    rig.enter(DOWN, 4)
    rig.press(OK)
    rig.enter(DOWN)  # ' Profile 2'
    rig.press(OK)
    rig.press(OK)  # 'Activate'
    assert rig.shows("Profile 2"), rig.dump()
    rig.press(OK)
    assert rig.app.therapy.settings.active_profile == 1
    assert [f["index"] for _t, _e, f in rig.events(ev.PROFILE_SELECTED)] == [1]
    assert rig.shows("Basal  1.00"), rig.dump()  # 08:00 falls in the 07:00 segment
    rig.press(OK)
    rig.enter(DOWN, 4)
    rig.press(OK)  # 'Basal profiles'
    rig.press(OK)  # ' Standard', no longer the active one
    assert rig.shows("Delete"), rig.dump()
    rig.enter(DOWN, 2)  # 'Delete'
    rig.press(OK)
    assert rig.screen() == "confirm delete" and rig.shows("Standard"), rig.dump()
    rig.press(OK)
    s = rig.app.therapy.settings
    assert [p.name for p in s.profiles] == ["Profile 2"] and s.active_profile == 0


def test_suspend_and_resume():
    rig = Rig()
    rig.press(OK)
    rig.enter(DOWN, 3)  # 'Suspend'
    rig.press(OK)
    rig.press(OK)
    assert rig.app.therapy.suspended_at is not None and rig.shows("SUSPENDED"), rig.dump()
    rig.press(OK)
    rig.enter(DOWN, 3)  # now 'Resume'
    assert rig.shows("Resume"), rig.dump()
    rig.press(OK)
    rig.press(OK)
    assert rig.app.therapy.suspended_at is None and len(rig.events(ev.RESUMED)) == 1


@pytest.mark.slow
def test_reservoir_change_walks_suspend_rewind_load_fill_and_resume():
    rig = Rig()
    end_stop = machine.Pin.lookup(rig.sim.board_module.PINS["end_stop"])
    rig.press(OK)
    rig.enter(DOWN, 5)  # 'Reservoir'
    rig.press(OK)
    assert rig.shows(">Suspend"), rig.dump()
    rig.press(OK)
    rig.press(OK)
    assert rig.shows(">Rewind"), rig.dump()
    rig.press(OK)
    rig.press(OK)
    assert rig.shows("Motor running.."), rig.dump()
    end_stop.drive(0)  # the pusher reaches the end stop
    rig.run(5000)  # (the plant's switch closes too once the pusher gets there)
    assert rig.app.reservoir.change_step == res.REWOUND
    end_stop.drive(None)
    assert rig.shows(">Load reservoir"), rig.dump()
    rig.press(OK)
    rig.enter(DOWN, 1, step=100)  # capacity - 100 U: stops at the 10 U minimum at most
    volume = rig.ui.top().current()
    rig.press(OK)
    rig.press(OK)
    assert rig.shows(">Fill tubing"), rig.dump()
    rig.press(OK)
    rig.enter(DOWN, 2, step=10)  # 5 U -> 3 U
    rig.press(OK)
    rig.press(OK)
    rig.run(30_000)
    assert rig.shows(">Fill cannula"), rig.dump()
    rig.press(OK)
    rig.press(OK)  # 0.30 U
    rig.press(OK)
    rig.run(10_000)
    assert rig.shows(">Resume"), rig.dump()
    rig.press(OK)
    rig.press(OK)
    assert rig.shows("Change done"), rig.dump()
    assert [f["volume_mu"] for _t, _e, f in rig.events(ev.RESERVOIR_LOADED)] == [volume]
    assert [f["part"] for _t, _e, f in rig.events(ev.PRIMED)] == ["tubing", "cannula"]
    assert rig.app.reservoir.in_use() and rig.app.therapy.suspended_at is None


def test_history_lists_recent_events_newest_first():
    rig = Rig()
    rig.app.bolus("normal", 1000)
    rig.run(2 * MIN)
    rig.press(OK)
    rig.enter(DOWN, 6)  # 'History'
    rig.press(OK)
    assert rig.screen() == "history"
    assert rig.shows("08:00 End 0.99U"), rig.dump()  # whole steps: 0.99 U went in
    assert rig.shows("08:00 Bol 1.00U"), rig.dump()
    assert rig.shows("08:00 0.80 U/h"), rig.dump()  # the basal rate
    assert rig.shows("08:00 Start"), rig.dump()
    rig.press(OK)  # the details of the newest
    assert rig.screen() == "history detail" and rig.shows("bolus finished"), rig.dump()
    assert rig.shows("delivered 0.99 U") and rig.shows("requested 1.00 U"), rig.dump()


def test_a_refusal_from_the_pump_is_shown_as_a_message():
    rig = Rig()
    rig.app.suspend()
    rig.press(OK)
    rig.press(OK)
    rig.press(OK)
    rig.press(OK)
    assert rig.screen() == "refused" and rig.shows("Not done"), rig.dump()
    assert rig.shows("suspended;"), rig.dump()  # 'delivery is suspended; resume first'
    assert rig.events(ev.BOLUS_STARTED) == []
    rig.press(OK)
    assert rig.screen() == "bolus amount"


def test_back_always_leaves_without_changing_anything():
    rig = Rig(calculator=calculator_settings())
    before = rig.therapy_events()
    walks = (
        [OK, OK, UP, UP, OK],  # bolus up to its confirm screen
        [OK, DOWN, OK, UP, OK, OK],  # calculator up to its result
        [OK, DOWN, DOWN, DOWN, OK, OK, UP, OK, OK],  # temp basal up to its confirm
        [OK, DOWN, DOWN, DOWN, DOWN, OK],  # suspend confirm
        [OK] + [DOWN] * 8 + [OK, OK, UP, OK, OK, OK, OK],  # settings: the time, then its date
    )
    for walk in walks:
        for key in walk:
            rig.key(key)
        assert rig.screen().startswith("confirm") or rig.screen() == "calculator result", walk
        while rig.screen() != "home":
            rig.key(BACK)
    assert rig.therapy_events() == before
    assert rig.app.therapy.temp is None and rig.app.therapy.suspended_at is None


def test_keypad_lock_lets_only_home_and_alarms_respond():
    rig = Rig()
    rig.press(OK)
    rig.key(OK | BACK, keys.LOCK_TOGGLE)
    assert rig.screen() == "home" and rig.ui.locked
    rig.press(OK)
    assert rig.screen() == "home" and rig.shows("Locked: BACK+OK"), rig.dump()
    rig.app.alarms.raise_alarm(rig.sim.now_ms(), "reservoir_low", remaining_mu=19_000)
    rig.redraw()
    rig.press(OK)
    assert len(rig.events(ev.ALARM_ACK)) == 1 and rig.screen() == "home"
    rig.key(OK | BACK, keys.LOCK_TOGGLE)
    rig.press(OK)
    assert rig.screen() == "menu"


def test_settings_limits_change_after_confirm():
    rig = Rig()
    rig.press(OK)
    rig.enter(DOWN, 7)  # 'Settings'
    rig.press(OK)
    rig.enter(DOWN, 2)  # 'Max bolus/basal'
    rig.press(OK)
    rig.enter(DOWN, 10, step=10)  # 10.00 U -> 5.00 U
    rig.press(OK)
    rig.press(OK)  # max basal unchanged
    assert rig.shows("  5.00 U") and rig.shows("  3.00 U/h"), rig.dump()
    rig.press(OK)
    s = rig.app.therapy.settings
    assert s.max_bolus_mu == 5000 and s.max_basal_mu_per_h == 3000
    assert rig.screen() == "settings"


def _open_settings(rig, item):
    """From home: the menu, 'Settings', then down to ``item`` (not counted as presses)."""
    rig.key(OK)
    rig.enter(DOWN, 8 if rig.ui.calculator is not None else 7)
    rig.key(OK)
    assert rig.screen() == "settings", rig.dump()
    rig.enter(DOWN, item)


def _save_list(rig):
    """On a segment list: down to 'Save', OK, then OK on its confirm."""
    while rig.ui.top().menu.selected < len(rig.ui.top().menu.labels) - 1:
        rig.enter(DOWN)
    rig.key(OK)
    assert rig.screen() == "confirm save", rig.dump()
    rig.key(OK)


def test_calculator_set_up_from_the_settings_ratio_sensitivity_then_targets():
    rig = Rig()
    assert rig.app.therapy.settings.calculator is None
    rig.key(OK)
    assert not rig.shows("Calculator"), rig.dump()  # no calculator in the menu yet
    rig.key(BACK)
    _open_settings(rig, 1)  # 'Calculator'
    rig.key(OK)
    assert rig.screen() == "segments" and rig.shows("00:00 10.0 g/U"), rig.dump()
    rig.key(OK)  # the first segment's ratio
    rig.enter(UP, 5, step=10)  # 10.0 -> 15.0 g/U
    rig.key(OK)
    assert rig.shows("00:00 15.0 g/U"), rig.dump()
    _save_list(rig)
    assert rig.shows("Sensitivity") and rig.shows("00:00 50/U"), rig.dump()
    assert rig.events(ev.SETTINGS_CHANGED) == []  # nothing set until the last part
    _save_list(rig)
    assert rig.shows("00:00 100-120"), rig.dump()
    _save_list(rig)
    assert rig.screen() == "settings"
    c = rig.app.therapy.settings.calculator
    assert (c.icr, c.isf, c.targets) == ([(0, 150)], [(0, 50)], [(0, 100, 120)])
    ((_t, _e, changed),) = rig.events(ev.SETTINGS_CHANGED)
    assert changed == {"icr_segments": 1, "isf_segments": 1, "target_segments": 1}
    while rig.screen() != "home":
        rig.key(BACK)
    rig.key(OK)
    assert rig.shows("Calculator"), rig.dump()


def test_sensitivity_by_time_of_day_goes_through_the_app_and_its_checks():
    rig = Rig(calculator=calculator_settings())
    _open_settings(rig, 1)
    rig.key(OK)
    rig.enter(DOWN)  # 'Sensitivity'
    rig.key(OK)
    rig.enter(DOWN)  # '+ Add'
    rig.key(OK)
    rig.enter(UP, 11)  # starts 06:00
    rig.key(OK)
    rig.enter(DOWN, 1, step=10)  # 50 -> 40 mg/dL per U
    rig.key(OK)
    assert rig.shows("06:00 40/U"), rig.dump()
    _save_list(rig)
    assert rig.app.therapy.settings.calculator.isf == [(0, 50), (12, 40)]
    (_t, _e, changed) = rig.events(ev.SETTINGS_CHANGED)[-1]
    assert changed["isf_segments"] == 2
    # The targets: a high below the low is refused by the App, and the screen says why.
    assert rig.screen() == "settings"
    rig.key(OK)  # 'Calculator'
    rig.enter(DOWN, 2)  # 'Targets'
    rig.key(OK)
    rig.key(OK)
    rig.key(OK)  # low stays 100
    rig.enter(DOWN, 3, step=10)  # high 120 -> 90
    rig.key(OK)
    _save_list(rig)
    assert rig.screen() == "refused" and rig.shows("Not done"), rig.dump()
    assert rig.app.therapy.settings.calculator.targets == [(0, 100, 120)]
    assert rig.events(ev.REFUSED)[-1][2]["command"] == "calculator"


def test_bg_unit_mmol_changes_what_the_calculator_shows():
    rig = Rig(calculator=calculator_settings())
    _open_settings(rig, 1)
    rig.key(OK)
    rig.enter(DOWN, 3)  # 'BG unit'
    rig.key(OK)
    rig.enter(DOWN)  # 'mmol/L'
    rig.key(OK)
    assert rig.screen() == "confirm bg unit" and rig.shows("mmol/L"), rig.dump()
    rig.key(OK)
    assert rig.app.therapy.settings.bg_mmol is True
    assert rig.events(ev.SETTINGS_CHANGED)[-1][2] == {"bg_unit": "mmol/L"}
    assert rig.screen() == "settings"
    rig.key(OK)  # 'Calculator' again
    rig.enter(DOWN)
    rig.key(OK)  # 'Sensitivity'
    assert rig.shows("00:00 2.8/U"), rig.dump()  # 50 mg/dL per U
    while rig.screen() != "home":
        rig.key(BACK)
    rig.key(OK)
    rig.key(DOWN)
    rig.key(OK)  # the calculator
    rig.key(OK)  # 0 g
    rig.enter(UP)  # the usual BG: 6.7 mmol/L
    assert rig.shows("6.7", scale=2) and rig.shows("mmol/L"), rig.dump()


def test_insulin_action_preset_and_duration_within_limits():
    rig = Rig()
    _open_settings(rig, 4)  # 'Insulin action'
    rig.key(OK)
    assert rig.shows("*rapid-acting"), rig.dump()
    rig.enter(DOWN)
    rig.key(OK)  # ultra-rapid
    assert rig.shows("6:00 h", scale=2), rig.dump()
    rig.enter(DOWN, 3)  # 5:00 h is the shortest the curve allows
    assert rig.shows("5:00 h", scale=2) and rig.shows("min 5:00 h"), rig.dump()
    rig.key(OK)
    assert rig.shows("ultra-rapid") and rig.shows("acts 5:00 h"), rig.dump()
    assert rig.events(ev.SETTINGS_CHANGED) == []
    rig.key(OK)
    s = rig.app.therapy.settings
    assert (s.insulin, s.dia_ms) == (iob.ULTRA_RAPID, 5 * 60 * MIN)
    assert rig.app.therapy.iob.curve.insulin == iob.ULTRA_RAPID
    assert rig.events(ev.SETTINGS_CHANGED)[-1][2] == {"insulin": "ultra-rapid", "dia_min": 300}
    assert rig.app.set_insulin_action(iob.RAPID_ACTING, 4 * 60 * MIN) is not None  # < 5 h
    assert rig.app.therapy.iob.curve.dia_ms == 5 * 60 * MIN


def test_bolus_speed_is_set_with_the_bolus_step():
    rig = Rig()
    _open_settings(rig, 7)  # 'Bolus options'
    rig.key(OK)
    rig.key(OK)  # the step stays 0.050 U
    rig.enter(UP, 3)  # 1.5 -> 3.0 U/min
    rig.key(OK)
    assert rig.shows("Speed 3.0 U/min"), rig.dump()
    rig.key(OK)
    assert rig.app.therapy.settings.bolus_speed_mu_per_min == 3000
    assert rig.events(ev.SETTINGS_CHANGED)[-1][2]["bolus_speed_mu_per_min"] == 3000


def test_a_modal_question_waits_over_the_menus_the_lock_and_the_idle_timeout():
    rig = Rig()
    answers = []
    rig.key(OK)  # the menu is open underneath
    rig.ui.show_confirm("USB: bolus?", ["Normal bolus", "  1.00 U"],
                        lambda ui: answers.append("yes"), lambda ui: answers.append("no"))
    rig.redraw()
    assert rig.screen() == "remote confirm" and rig.shows("USB: bolus?"), rig.dump()
    rig.key(OK | BACK, keys.LOCK_TOGGLE)  # locked: the question stays, its keys do nothing
    rig.key(OK)
    assert answers == [] and rig.screen() == "remote confirm", rig.dump()
    rig.run(3 * 60 * MIN)  # long past the idle timeout: the menu went, the question stayed
    assert [s.name for s in rig.ui.stack] == ["home", "remote confirm"]
    rig.key(OK | BACK, keys.LOCK_TOGGLE)
    rig.key(BACK)
    assert answers == ["no"] and rig.screen() == "home"
    screen = rig.ui.show_confirm("USB: temp?", ["Temp 120 %"], lambda ui: answers.append("yes"))
    rig.ui.dismiss(screen)  # it expired on the other side
    assert rig.screen() == "home"
    rig.ui.show_confirm("USB: temp?", ["Temp 120 %"], lambda ui: answers.append("yes"))
    rig.key(OK)
    assert answers == ["no", "yes"] and rig.screen() == "home"
