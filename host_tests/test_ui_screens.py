"""Key presses, holds and screenshots in scenarios, and the screens gallery (make screens)."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import scenario as sc  # noqa: E402

GALLERY = os.path.join(ROOT, "tools", "scenarios", "screens", "gallery.toml")

BOLUS_BY_KEYS = """
[settings]
start_time = "08:00"

[run]
duration_min = 3

[[actions]]
at_min = 0.1
press = ["OK", "OK", "UP"]     # the menu, 'Bolus', 0.05 U + 0.05 U

[[actions]]
at_min = 0.15
hold = { key = "UP", ms = 3000 }

[[actions]]
at_min = 0.25
screenshot = "amount"

[[actions]]
at_min = 0.3
press = "OK"

[[actions]]
at_min = 0.32
screenshot = "confirm"

[[actions]]
at_min = 0.35
press = "OK"
"""


def load_text(text, name="keys"):
    import tomllib

    return sc.Scenario(tomllib.loads(text), name)


def test_a_bolus_entered_by_presses_and_a_hold_is_delivered_and_screenshotted(tmp_path):
    result = sc.run(load_text(BOLUS_BY_KEYS))
    result.write(str(tmp_path))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["screens"] == ["home", "menu", "bolus amount", "confirm bolus"]
    assert summary["screenshots"] == ["amount.png", "confirm.png"]
    assert summary["events"]["bolus_started"] == 1
    started = [f for _s, _t, e, f in result.events if e == "bolus_started"][0]
    # 0.10 U by presses, then 3 s of UP: a press at once, repeats after 0.5 s every 0.2 s,
    # every 0.1 s from 2 s: 1 + 8 + 9 = 18 more steps of 0.05 U.
    assert started["requested_mu"] == 100 + 18 * 50
    assert summary["delivered_mu"]["bolus"] > 900
    for name in ("amount.png", "confirm.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "action, message",
    [
        ('press = "LEFT"', "'LEFT' is not a key"),
        ("press = []", "at least one key"),
        ('hold = { key = "UP" }', "missing"),
        ('hold = { key = "UP", ms = 0 }', "below the minimum"),
        ('screenshot = "../x"', "a file name of letters"),
    ],
)
def test_bad_key_actions_are_refused_naming_the_key(action, message):
    text = "[run]\nduration_min = 1\n[[actions]]\nat_min = 0\n" + action + "\n"
    with pytest.raises(sc.ScenarioError) as err:
        load_text(text)
    assert "actions[0]" in str(err.value) and message in str(err.value)


def test_calculator_and_insulin_settings_in_a_scenario():
    s = load_text(
        "[settings]\n"
        'calculator = { icr = [["00:00", 12.5]], isf = [["00:00", 40], ["12:00", 60]],'
        ' targets = [["00:00", 100, 120]] }\n'
        'bg_unit = "mmol/L"\n'
        'insulin = { type = "ultra-rapid", hours = 5.5 }\n'
    ).settings
    assert s.calculator.icr == [(0, 125)] and s.calculator.isf == [(0, 40), (24, 60)]
    assert s.bg_mmol and s.insulin == "ultra-rapid" and s.dia_ms == 330 * 60_000
    with pytest.raises(sc.ScenarioError) as err:
        load_text('[settings]\ninsulin = { type = "rapid-acting", hours = 4 }\n')
    assert "at least 5 h" in str(err.value)


@pytest.mark.slow
def test_the_screens_gallery_walks_every_screen_and_saves_each(tmp_path):
    result = sc.run(sc.load(GALLERY))
    result.write(str(tmp_path))
    summary = json.loads((tmp_path / "summary.json").read_text())
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == sorted(summary["screenshots"]) and len(pngs) >= 40
    shown = set(summary["screens"])
    for screen in ("home", "menu", "bolus amount", "confirm bolus", "cancel bolus", "carbs",
                   "bg", "calculator result", "temp menu", "confirm temp", "confirm suspend",
                   "profiles", "segments", "reservoir", "history", "settings", "insulin",
                   "alarm"):
        assert screen in shown, screen
    # The walk changed therapy only where it confirmed: one bolus (cancelled), one temp
    # basal, one suspend and resume; the stuck key raised its alarm and it was acknowledged.
    events = summary["events"]
    assert events["bolus_started"] == events["bolus_cancelled"] == 1
    assert events["temp_basal_started"] == events["suspended"] == events["resumed"] == 1
    assert events["alarm_ack"] == 1
    assert "settings_changed" not in events
