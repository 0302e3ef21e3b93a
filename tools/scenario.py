"""Headless scenario runner: the real firmware on the fakes, in virtual time, from a TOML file.

    .venv/bin/python tools/scenario.py SCENARIO.toml --out DIR

Writes DIR/deliveries.csv, DIR/events.jsonl, DIR/outflow.csv, DIR/iob.csv, DIR/pressure.csv
and DIR/summary.json (format in README.md). Times in them are milliseconds from the start of
the run (``t_ms``, on across power cuts) and the time of day (``time``, from the scenario's
start_time). A scenario with an invalid value stops before running, naming the key at fault
(exit status 2).
"""

import csv
import json
import math
import os
import random
import sys
import time
import tomllib

from sim.pump import SimPump

from sim.hw.flashfs import FlashFS
from sim.hw.plant import PlantParams

import pumptext

from pump.core import bolus as bolus_mod
from pump.core import limits as lim
from pump.core import safety as safety_mod
from pump.core.calculator import CalculatorSettings
from pump.core.errors import ConfigError, Refused
from pump.core.events import REFUSED
from pump.core.iob import check_curve
from pump.core.schedule import (
    TEMP_ABSOLUTE,
    TEMP_PERCENT,
    BasalProfile,
    parse_hhmm,
)
from pump.core.therapy import BASAL, BOLUS, Settings

MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MAX_RUN_DAYS = 366  # longest run a scenario may ask for
MAX_AMOUNT_U = 300  # no amount above a full 3 mL reservoir of U-100 makes sense
MAX_RATE_U_PER_H = 100  # far above any pump's max basal: the pump itself refuses above 15
SERIES_PERIOD_MS = 60_000  # iob.csv and pressure.csv: one row a minute
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ScenarioError(ValueError):
    """An invalid scenario; the message names the key (and value) at fault."""


# ----- parsing helpers ------------------------------------------------------------------


def _number(value, key, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError("%s: expected a number, got %r" % (key, value))
    if not math.isfinite(value):
        raise ScenarioError("%s: expected a finite number, got %r" % (key, value))
    if low is not None and value < low:
        raise ScenarioError("%s: %r is below the minimum %r" % (key, value, low))
    if high is not None and value > high:
        raise ScenarioError("%s: %r is above the maximum %r" % (key, value, high))
    return value


def _milli(value, key, low=0, high=None):
    """Units (U or U/h, as a decimal) to integer milli-units, refusing sub-milliunit values."""
    value = _number(value, key, low, high)
    milli = round(value * 1000)
    if abs(milli - value * 1000) > 1e-6:
        raise ScenarioError("%s: %r has more than three decimals" % (key, value))
    return milli


def _u(mu):
    """The firmware's milliunits as the units a scenario gives: 25000 -> 25, 1500 -> 1.5."""
    return mu // 1000 if mu % 1000 == 0 else mu / 1000


def _int(value, key, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError("%s: expected a whole number, got %r" % (key, value))
    return _number(value, key, low, high)


def _table(value, key, allowed, required=()):
    if not isinstance(value, dict):
        raise ScenarioError("%s: expected a table, got %r" % (key, value))
    for name in value:
        if name not in allowed:
            raise ScenarioError(
                "%s: unknown key %r (known: %s)" % (key, name, ", ".join(sorted(allowed)))
            )
    for name in required:
        if name not in value:
            raise ScenarioError("%s: missing key %r" % (key, name))
    return value


def _clock_ms(text, key):
    """Any time of day "HH:MM" (00:00 to 23:59) as ms of the day."""
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":" or not (
        text[:2].isdigit() and text[3:].isdigit()
    ):
        raise ScenarioError('%s: time %r is not "HH:MM"' % (key, text))
    hours, minutes = int(text[:2]), int(text[3:])
    if hours > 23:
        raise ScenarioError("%s: time %r: the hour must be 00 to 23" % (key, text))
    if minutes > 59:
        raise ScenarioError("%s: time %r: the minutes must be 00 to 59" % (key, text))
    return (hours * 60 + minutes) * MIN_MS


def _hhmm_ms(text, key):
    """A time of day on a half-hour ("06:30") as ms of the day."""
    _clock_ms(text, key)  # says what is wrong with the hour or the minutes first
    try:
        return parse_hhmm(text) * 30 * MIN_MS
    except Refused as err:
        raise ScenarioError("%s: %s" % (key, err)) from None


# ----- scenario model ----------------------------------------------------------------------


class Scenario:
    """A parsed, validated scenario: board, settings, duration and timed actions."""

    def __init__(self, data, name="scenario"):
        self.name = name
        _table(data, "scenario", ("board", "settings", "run", "actions", "plant"))
        plant = _table(data.get("plant", {}), "plant", ("preset", "seed"))
        self.plant_preset = plant.get("preset", "typical")
        if self.plant_preset not in ("typical", "hard", "easy"):
            raise ScenarioError(
                "plant.preset: %r is not one of typical, hard, easy" % (self.plant_preset,)
            )
        self.plant_seed = _int(plant.get("seed", 0), "plant.seed", 0, 2**63 - 1)
        board = _table(data.get("board", {}), "board", ("name",))
        self.board = check_board_name(board.get("name", "pico_default"), "board.name")
        self.settings, self.start_ms_of_day = self._settings(data.get("settings", {}))
        run = _table(data.get("run", {}), "run", ("duration_h", "duration_min"))
        if "duration_h" in run and "duration_min" in run:
            raise ScenarioError("run: give duration_h or duration_min, not both")
        if "duration_min" in run:
            minutes = _number(run["duration_min"], "run.duration_min", 0, MAX_RUN_DAYS * 24 * 60)
            self.duration_ms = round(minutes * MIN_MS)
        else:
            hours = _number(run.get("duration_h", 24), "run.duration_h", 0, MAX_RUN_DAYS * 24)
            self.duration_ms = round(hours * HOUR_MS)
        if self.duration_ms <= 0:
            raise ScenarioError("run: the duration must be more than 0")
        actions = data.get("actions", [])
        if not isinstance(actions, list):
            raise ScenarioError("actions: expected an array of tables [[actions]]")
        self.actions = [self._action(a, "actions[%d]" % i) for i, a in enumerate(actions)]

    def _settings(self, raw):
        allowed = (
            "basal",
            "profiles",
            "active_profile",
            "max_bolus",
            "max_basal",
            "bolus_increment",
            "bolus_speed",
            "start_time",
            "calculator",
            "bg_unit",
            "insulin",
            "max_hour",
            "max_day",
            "low_reservoir",
            "auto_off",
        )
        _table(raw, "settings", allowed)
        s = Settings()
        _calculator_settings(raw, s)
        _safety_settings(raw, s)
        if "max_bolus" in raw:
            s.max_bolus_mu = _milli(raw["max_bolus"], "settings.max_bolus", 0.001,
                                    _u(lim.MAX_BOLUS_MU))
        if "max_basal" in raw:
            s.max_basal_mu_per_h = _milli(raw["max_basal"], "settings.max_basal",
                                          _u(lim.RATE_STEP_MU_H), _u(lim.MAX_BASAL_MU_PER_H))
        if "bolus_increment" in raw:
            choices = lim.INCREMENT_CHOICES_MU
            s.increment_mu = _milli(raw["bolus_increment"], "settings.bolus_increment",
                                    _u(choices[0]), _u(choices[-1]))
            if s.increment_mu not in choices:
                raise ScenarioError("settings.bolus_increment: use 0.01, 0.025, 0.05 or 0.1")
        if "bolus_speed" in raw:
            s.bolus_speed_mu_per_min = _milli(raw["bolus_speed"], "settings.bolus_speed",
                                              _u(lim.SPEED_STANDARD_MU_MIN),
                                              _u(lim.SPEED_QUICK_MU_MIN))
        profiles = []
        if "basal" in raw:
            if "profiles" in raw:
                raise ScenarioError("settings: give basal or profiles, not both")
            profiles.append(self._profile("Standard", raw["basal"], "settings.basal", s))
        elif "profiles" in raw:
            if not isinstance(raw["profiles"], dict):
                raise ScenarioError('settings.profiles: expected a table, Name = [["HH:MM", '
                                    'U/h], ...]')
            table = raw["profiles"]
            if not 1 <= len(table) <= 4:
                raise ScenarioError("settings.profiles: 1 to 4 profiles")
            for name, segments in table.items():
                profiles.append(
                    self._profile(name, segments, "settings.profiles.%s" % name, s)
                )
        if profiles:
            s.profiles = profiles
        _check_limits(raw, s)
        if "active_profile" in raw:
            names = [p.name for p in s.profiles]
            if raw["active_profile"] not in names:
                raise ScenarioError(
                    "settings.active_profile: %r is not one of %s" % (raw["active_profile"], names)
                )
            s.active_profile = names.index(raw["active_profile"])
        start = _hhmm_ms(raw.get("start_time", "00:00"), "settings.start_time")
        return s, start

    def _profile(self, name, segments, key, s):
        if not isinstance(segments, list) or not segments:
            raise ScenarioError('%s: expected [["HH:MM", U/h], ...]' % key)
        parsed = []
        for i, seg in enumerate(segments):
            k = "%s[%d]" % (key, i)
            if not isinstance(seg, list) or len(seg) != 2:
                raise ScenarioError('%s: expected ["HH:MM", U/h], got %r' % (k, seg))
            start = _hhmm_ms(seg[0], k) // (30 * MIN_MS)
            parsed.append((start, _milli(seg[1], k + " rate", 0, MAX_RATE_U_PER_H)))
        try:
            return BasalProfile(name, parsed, s.max_basal_mu_per_h)
        except Refused as err:
            raise ScenarioError("%s: %s" % (key, err)) from None

    def _action(self, raw, key):
        kinds = (
            "bolus",
            "extended",
            "dual",
            "temp_basal",
            "cancel_bolus",
            "cancel_temp",
            "suspend",
            "resume",
            "select_profile",
            "set_time",
            "acknowledge",
            "occlude",
            "partial_occlusion",
            "disconnect",
            "clear_occlusion",
            "press",
            "hold",
            "screenshot",
            "power_loss",
        )
        _table(raw, key, ("at_min", "at_h") + kinds)
        if ("at_min" in raw) == ("at_h" in raw):
            raise ScenarioError("%s: give exactly one of at_min or at_h" % key)
        if "at_min" in raw:
            at_ms = round(_number(raw["at_min"], key + ".at_min", 0) * MIN_MS)
        else:
            at_ms = round(_number(raw["at_h"], key + ".at_h", 0) * HOUR_MS)
        if at_ms > self.duration_ms:
            raise ScenarioError(
                "%s: at %d min is after the end of the run" % (key, at_ms // MIN_MS)
            )
        present = [k for k in kinds if k in raw]
        if len(present) != 1:
            raise ScenarioError("%s: give exactly one action (one of %s)" % (key, ", ".join(kinds)))
        kind = present[0]
        value = raw[kind]
        k = key + "." + kind
        if kind == "bolus":
            mu = _milli(value, k, 0.001, MAX_AMOUNT_U)
            return at_ms, kind, lambda app: app.bolus(bolus_mod.NORMAL, mu)
        if kind == "extended":
            _table(value, k, ("units", "minutes"), ("units", "minutes"))
            mu = _milli(value["units"], k + ".units", 0.001, MAX_AMOUNT_U)
            ms = _int(value["minutes"], k + ".minutes", 1, 7 * 24 * 60) * MIN_MS
            return at_ms, kind, lambda app: app.bolus(bolus_mod.EXTENDED, mu, 0, ms)
        if kind == "dual":
            fields = ("units", "now_percent", "minutes")
            _table(value, k, fields, fields)
            mu = _milli(value["units"], k + ".units", 0.001, MAX_AMOUNT_U)
            pct = _int(value["now_percent"], k + ".now_percent", 0, 100)
            ms = _int(value["minutes"], k + ".minutes", 1, 7 * 24 * 60) * MIN_MS
            return at_ms, kind, lambda app: app.bolus(bolus_mod.DUAL, mu, pct, ms)
        if kind == "temp_basal":
            _table(value, k, ("percent", "rate", "minutes"), ("minutes",))
            ms = _int(value["minutes"], k + ".minutes", 1, 7 * 24 * 60) * MIN_MS
            if ("percent" in value) == ("rate" in value):
                raise ScenarioError("%s: give exactly one of percent or rate" % k)
            if "percent" in value:
                pct = _int(value["percent"], k + ".percent", 0, 1000)
                return at_ms, kind, lambda app: app.temp_basal(TEMP_PERCENT, pct, ms)
            rate = _milli(value["rate"], k + ".rate", 0, MAX_RATE_U_PER_H)
            return at_ms, kind, lambda app: app.temp_basal(TEMP_ABSOLUTE, rate, ms)
        if kind == "select_profile":
            names = [p.name for p in self.settings.profiles]
            if value not in names:
                raise ScenarioError("%s: %r is not one of %s" % (k, value, names))
            index = names.index(value)
            return at_ms, kind, lambda app: app.select_profile(index)
        if kind == "set_time":
            ms_of_day = _clock_ms(value, k)  # any minute: a clock is set to the minute
            return at_ms, kind, lambda app: app.set_time_of_day(ms_of_day)
        if kind in ("press", "hold", "screenshot"):
            return at_ms, kind, _person_action(kind, value, k)
        if kind == "power_loss":
            _table(value, k, ("off_min", "random", "keep_clock"), ("off_min",))
            off_ms = round(_number(value["off_min"], k + ".off_min", 0, 7 * 24 * 60) * MIN_MS)
            for flag in ("random", "keep_clock"):
                if not isinstance(value.get(flag, False), bool):
                    raise ScenarioError("%s.%s: expected true or false" % (k, flag))
            return at_ms, kind, _PowerLoss(
                off_ms, value.get("random", False), value.get("keep_clock", False)
            )
        if kind == "partial_occlusion":
            _table(value, k, ("percent",), ("percent",))
            pct = _number(value["percent"], k + ".percent", 1, 99)
            return at_ms, kind, _PlantAction(lambda plant: plant.partial_occlusion(pct))
        if value is not True:
            raise ScenarioError("%s: expected true, got %r" % (k, value))
        plant_events = {
            "occlude": lambda plant: plant.occlude(),
            "disconnect": lambda plant: plant.disconnect(),
            "clear_occlusion": lambda plant: plant.clear(),
        }
        if kind in plant_events:
            return at_ms, kind, _PlantAction(plant_events[kind])
        method = {
            "acknowledge": "acknowledge",
            "cancel_bolus": "cancel_bolus",
            "cancel_temp": "cancel_temp",
            "suspend": "suspend",
            "resume": "resume",
        }[kind]
        return at_ms, kind, lambda app: getattr(app, method)()


class _PlantAction:
    """A scenario action on the physical plant (the line), not on the firmware."""

    def __init__(self, fn):
        self.fn = fn


# ----- the person at the pump: keys and screenshots --------------------------------------

KEY_NAMES = ("UP", "DOWN", "OK", "BACK")
PRESS_MS = 80  # a key press: held this long
PRESS_GAP_MS = 120  # then let go this long before the next key of a press list


class _KeyAction:
    """Keys held down at ``at`` ms after the action's time and let go at ``at + ms``:
    ``steps`` is a list of (offset ms, key names, held ms)."""

    def __init__(self, steps):
        self.steps = steps


class _Screenshot:
    def __init__(self, name):
        self.name = name


def _key_names(value, key):
    names = value if isinstance(value, list) else [value]
    if not names:
        raise ScenarioError("%s: give at least one key" % key)
    for name in names:
        if name not in KEY_NAMES:
            known = ", ".join(KEY_NAMES)
            raise ScenarioError("%s: %r is not a key (keys: %s)" % (key, name, known))
    return names


def _person_action(kind, value, key):
    if kind == "press":
        names = _key_names(value, key)
        step = PRESS_MS + PRESS_GAP_MS
        return _KeyAction([(i * step, [name], PRESS_MS) for i, name in enumerate(names)])
    if kind == "hold":
        _table(value, key, ("key", "ms"), ("key", "ms"))
        names = _key_names(value["key"], key + ".key")  # several keys: held together
        ms = _int(value["ms"], key + ".ms", 1, 10 * MIN_MS)
        return _KeyAction([(0, names, ms)])
    if not isinstance(value, str) or not value or not all(
        c.isalnum() or c in "-_" for c in value
    ):
        raise ScenarioError("%s: a file name of letters, digits, '-' and '_'" % key)
    return _Screenshot(value)


def board_names():
    """The board files in boards/, by name."""
    folder = os.path.join(ROOT, "boards")
    return sorted(f[:-3] for f in os.listdir(folder) if f.endswith(".py") and f[0] != "_")


def check_board_name(name, key):
    """A board name that has a file in boards/, or a ScenarioError naming the known ones."""
    known = board_names()
    if not isinstance(name, str) or name not in known:
        raise ScenarioError("%s: no board file %r (known: %s)" % (key, name, ", ".join(known)))
    return name


def _safety_settings(raw, s):
    """The limits and alarm options of [settings]: max_hour, max_day (U), low_reservoir (U),
    auto_off (h, 0 = off), each checked by the firmware's own rules."""
    if "max_hour" in raw:
        s.max_hour_mu = _milli(raw["max_hour"], "settings.max_hour", 0.001, MAX_AMOUNT_U)
    if "max_day" in raw:
        s.max_day_mu = _milli(raw["max_day"], "settings.max_day", 0.001, 10 * MAX_AMOUNT_U)
    if "low_reservoir" in raw:
        key = "settings.low_reservoir"
        s.low_reservoir_mu = _milli(raw["low_reservoir"], key, 0.001, MAX_AMOUNT_U)
        low, high = lim.LOW_LEVEL_MIN_MU, lim.LOW_LEVEL_MAX_MU
        if not low <= s.low_reservoir_mu <= high:
            raise ScenarioError("%s: the low-reservoir alert is at %s to %s" % (
                key, pumptext.setting_units(low), pumptext.setting_units(high)))
    if "auto_off" in raw:
        hours = _int(raw["auto_off"], "settings.auto_off", 0, 1000)
        low, high = lim.AUTO_OFF_MIN_H, lim.AUTO_OFF_MAX_H
        if hours and not low <= hours <= high:
            raise ScenarioError(
                "settings.auto_off: %d h: auto-off is %d to %d h without a key press, or 0 "
                "for off" % (hours, low, high))
        s.auto_off_h = hours


def _check_limits(raw, s):
    """The hour and day limits against each other and the max basal, as the pump checks
    them; names the keys the scenario gave (or the factory value it kept)."""
    try:
        try:
            safety_mod.check_limits(s.max_hour_mu, s.max_day_mu, s.max_basal_mu_per_h)
        except TypeError:  # a firmware whose check does not take the max basal
            safety_mod.check_limits(s.max_hour_mu, s.max_day_mu)
    except Refused as err:
        given = [k for k in ("max_hour", "max_day", "max_basal") if k in raw]
        keys = ", ".join("settings." + k for k in given) or "settings"
        raise ScenarioError("%s: %s (max_hour %s, max_day %s, max_basal %s)" % (
            keys, err, pumptext.setting_units(s.max_hour_mu),
            pumptext.setting_units(s.max_day_mu),
            pumptext.rate(s.max_basal_mu_per_h))) from None


def _calculator_settings(raw, s):
    """The calculator, BG unit and insulin action keys of [settings]."""
    if "calculator" in raw:
        k = "settings.calculator"
        table = _table(raw["calculator"], k, ("icr", "isf", "targets"), ("icr", "isf", "targets"))
        parts = []
        for name, width, scale in (("icr", 1, 10), ("isf", 1, 1), ("targets", 2, 1)):
            rows = table[name]
            if not isinstance(rows, list) or not rows:
                raise ScenarioError('%s.%s: expected [["HH:MM", value...], ...]' % (k, name))
            segments = []
            for i, row in enumerate(rows):
                rk = "%s.%s[%d]" % (k, name, i)
                if not isinstance(row, list) or len(row) != 1 + width:
                    raise ScenarioError("%s: expected [\"HH:MM\", %s]" % (
                        rk, ", ".join(["value"] * width)))
                start = _hhmm_ms(row[0], rk) // (30 * MIN_MS)
                values = [round(_number(v, rk) * scale) for v in row[1:]]
                segments.append(tuple([start] + values))
            parts.append(segments)
        try:
            s.calculator = CalculatorSettings(parts[0], parts[1], parts[2])
        except Refused as err:
            raise ScenarioError("%s: %s" % (k, err)) from None
    if "bg_unit" in raw:
        if raw["bg_unit"] not in ("mg/dL", "mmol/L"):
            raise ScenarioError("settings.bg_unit: 'mg/dL' or 'mmol/L'")
        s.bg_mmol = raw["bg_unit"] == "mmol/L"
    if "insulin" in raw:
        k = "settings.insulin"
        table = _table(raw["insulin"], k, ("type", "hours"), ("type", "hours"))
        dia_ms = round(_number(table["hours"], k + ".hours", 3, 8) * HOUR_MS)
        try:
            check_curve(table["type"], dia_ms)
        except Refused as err:
            raise ScenarioError("%s: %s" % (k, err)) from None
        s.insulin = table["type"]
        s.dia_ms = dia_ms


class _PowerLoss:
    """A power cut: at the action's instant, or (random) at a random instant or flash write
    soon after it, drawn from the plant seed; the pump boots again after ``off_ms``."""

    def __init__(self, off_ms, at_random, keep_clock):
        self.off_ms = off_ms
        self.at_random = at_random
        self.keep_clock = keep_clock

    def cut(self, sim, rng):
        sim.clock_backup = self.keep_clock
        if not self.at_random:
            record = sim.power_loss(self.off_ms)
        elif rng.random() < 0.5:
            sim.run_until(sim.now_ms() + rng.randrange(60_000))
            record = sim.power_loss(self.off_ms)
        else:
            record = sim.power_loss(self.off_ms, sim.flash.ops + rng.randint(1, 8))
        record["random"] = self.at_random
        return record


def load(path):
    """Read and validate a scenario file; ScenarioError names the key at fault."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError("%s: %s" % (path, err)) from None
    except OSError as err:
        raise ScenarioError("%s: %s" % (path, err.strerror)) from None
    return Scenario(data, os.path.splitext(os.path.basename(path))[0])


# ----- running -------------------------------------------------------------------------------


class Result:
    def __init__(self, scenario, sim, wall_s):
        self.scenario = scenario
        self.sim = sim
        self.wall_s = wall_s
        self.deliveries = sim.deliveries
        self.events = sim.events
        self.screens = []  # screen names, in order of first appearance
        self.screenshots = []  # (name, pixels)
        self.series = []  # (t_ms, iob_mu or None, pressure_kPa, force_mN or None)

    def summary(self):
        sim = self.sim
        mech = sim.mechanics
        delivered_mu = {BASAL: 0, BOLUS: 0}
        delivered_steps = {BASAL: 0, BOLUS: 0}
        for _t, kind, steps, mu in self.deliveries:
            delivered_mu[kind] += mu
            delivered_steps[kind] += steps
        counts = {}
        for event in self.events:
            counts[event[2]] = counts.get(event[2], 0) + 1
        hours = self.scenario.duration_ms / HOUR_MS
        return {
            "scenario": self.scenario.name,
            "board": self.scenario.board,
            "duration_h": hours,
            "start_time": self.time_of_day(0)[:5],
            "mu_per_step": mech.nu_per_step / 1_000_000,
            "nl_per_step": mech.pl_per_step / 1000,
            "delivered_mu": delivered_mu,
            "delivered_steps": delivered_steps,
            "motor_steps": sim.driver.position_steps,
            "trains": len(self.deliveries),
            "refused": counts.get(REFUSED, 0),
            "plant": {
                "preset": self.scenario.plant_preset,
                "delivered_nl": round(sim.plant.delivered_nl()),
                "spilled_nl": round(sim.plant.spilled_nl()),
                "line": sim.plant.line_state(),
            },
            "events": counts,
            "power_cuts": [
                {
                    "t_ms": cut["t_ms"],
                    "flash_op": cut["op"],
                    "off_ms": cut["off_ms"],
                    "random": cut.get("random", False),
                    "motor_steps": cut["motor_steps"],
                }
                for cut in sim.cuts
            ],
            "screens": list(self.screens),
            "screenshots": [name + ".png" for name, _pixels in self.screenshots],
            "wall_s": round(self.wall_s, 3),
            "sim_hours_per_wall_s": round(hours / self.wall_s, 1) if self.wall_s else None,
        }

    def time_of_day(self, t_ms):
        """The time of day ``t_ms`` into the run (the run's clock, from its start_time)."""
        seconds = (self.scenario.start_ms_of_day + t_ms) // 1000 % (DAY_MS // 1000)
        return "%02d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)

    def write(self, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        clock = self.time_of_day
        with open(os.path.join(out_dir, "deliveries.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("t_ms", "time", "kind", "steps", "mu"))
            for t_ms, kind, steps, mu in self.deliveries:
                writer.writerow((t_ms, clock(t_ms), kind, steps, mu))
        with open(os.path.join(out_dir, "events.jsonl"), "w") as f:
            for seq, t_ms, etype, fields in self.events:
                record = {"t_ms": t_ms, "time": clock(t_ms), "type": etype, "seq": seq}
                record.update(fields)
                f.write(json.dumps(record) + "\n")
        with open(os.path.join(out_dir, "outflow.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("t_ms", "time", "delivered_nl"))
            for t_ms, nl in self.sim.outflow.rows:
                writer.writerow((t_ms, clock(t_ms), nl))
        with open(os.path.join(out_dir, "iob.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("t_ms", "time", "iob_mu"))
            for t_ms, iob_mu, _kpa, _mn in self.series:
                writer.writerow((t_ms, clock(t_ms), "" if iob_mu is None else iob_mu))
        with open(os.path.join(out_dir, "pressure.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("t_ms", "time", "pressure_kpa", "force_mn"))
            for t_ms, _iob, kpa, force_mn in self.series:
                writer.writerow((t_ms, clock(t_ms), kpa, "" if force_mn is None else force_mn))
        if self.screenshots:
            from sim import frames

            for name, pixels in self.screenshots:
                frames.save_png(pixels, os.path.join(out_dir, name + ".png"), scale=4)
        with open(os.path.join(out_dir, "summary.json"), "w") as f:
            json.dump(self.summary(), f, indent=2)
            f.write("\n")


def _follow_boots(sim):
    """Note where each boot of the firmware after a power cut starts in the event and
    delivery lists, and when (each boot counts its time from 0); returns the list of
    (first event, first delivery, run ms at the boot) that _run_time() applies."""
    boots = []
    boot = sim._boot

    def boot_and_note():
        # The new App's clock starts when it is built: now, in the run's time.
        boots.append((len(sim.events), len(sim.deliveries), sim.now_ms()))
        boot()

    sim._boot = boot_and_note
    return boots


def _run_time(items, time_index, boots, list_index):
    """``items`` with their times moved from the firmware's clock (from its last boot) to the
    run's (from the start, on across power cuts)."""
    out = []
    starts = [(b[list_index], b[2]) for b in boots]
    offset = 0
    for i, item in enumerate(items):
        while starts and starts[0][0] <= i:
            offset = starts.pop(0)[1]
        if offset:
            item = list(item)
            item[time_index] += offset
            item = tuple(item)
        out.append(item)
    return out


def _sample_series(sim, rows):
    """Every SERIES_PERIOD_MS: insulin on board as the firmware counts it (None while the
    power is off), the line pressure and the force the firmware last read."""
    start_ns = sim._t0_ns

    def sample(count):
        app = sim.app
        iob = force = None
        if app.running:
            now = app.now_ms()
            iob = app.therapy.iob.iob_mu(now)
            force = app.force_mn
        rows.append((sim.now_ms(), iob, round(sim.plant.pressure_kpa(), 2), force))
        due = start_ns + (count + 1) * SERIES_PERIOD_MS * 1_000_000
        sim.clock.call_at(due, lambda: sample(count + 1))

    sample(0)


def run(scenario, progress=None):
    """Run a validated scenario; returns a Result. ``progress(t_ms, total_ms)`` is optional."""
    started = time.perf_counter()
    cuts = [(at, a) for at, _k, a in scenario.actions if isinstance(a, _PowerLoss)]
    cuts.sort(key=lambda cut: cut[0])
    sim = SimPump(
        board=scenario.board,
        settings=scenario.settings,
        start_ms_of_day=scenario.start_ms_of_day,
        plant_params=getattr(PlantParams, scenario.plant_preset)(),
        seed=scenario.plant_seed,
        flash=FlashFS() if cuts else None,  # a pump that is cut keeps its state on flash
    )
    boots = _follow_boots(sim)
    series = []
    _sample_series(sim, series)
    screenshots = []  # (name, pixels)
    screens = _watch_screens(sim)
    for at_ms, _kind, action in scenario.actions:
        if isinstance(action, _PlantAction):
            sim.at_plant(at_ms, action.fn)
        elif isinstance(action, _KeyAction):
            _schedule_keys(sim, at_ms, action)
        elif isinstance(action, _Screenshot):
            _schedule_screenshot(sim, at_ms, action.name, screenshots)
        elif not isinstance(action, _PowerLoss):
            sim.at(at_ms, action)
    rng = random.Random(scenario.plant_seed)
    step = HOUR_MS
    t = 0
    while t < scenario.duration_ms:
        t = min(t + step, scenario.duration_ms)
        while cuts and cuts[0][0] <= t:
            at_ms, cut = cuts.pop(0)
            if sim.now_ms() < at_ms:
                sim.run_until(at_ms)
            cut.cut(sim, rng)
        if sim.now_ms() < t:
            sim.run_until(t)
        if progress is not None:
            progress(t, scenario.duration_ms)
    sim.settle()  # a train started before the end is recorded when it finishes
    sim.events[:] = _run_time(sim.events, 1, boots, 0)
    sim.deliveries[:] = _run_time(sim.deliveries, 0, boots, 1)
    result = Result(scenario, sim, time.perf_counter() - started)
    result.screens = screens
    result.screenshots = screenshots
    result.series = series
    return result


def _at_ns(sim, t_ms):
    return sim._t0_ns + t_ms * 1_000_000


def _schedule_keys(sim, at_ms, action):
    for offset, names, held_ms in action.steps:
        for name in names:
            sim.clock.call_at(_at_ns(sim, at_ms + offset), lambda n=name: sim.hold_key(n))
            sim.clock.call_at(
                _at_ns(sim, at_ms + offset + held_ms), lambda n=name: sim.hold_key(n, False)
            )


def _schedule_screenshot(sim, at_ms, name, screenshots):
    def take():
        if sim.display is None:
            raise ScenarioError("screenshot %r: this board has no display" % name)
        screenshots.append((name, sim.screen_pixels()))

    sim.clock.call_at(_at_ns(sim, at_ms), take)


def _watch_screens(sim):
    """The names of the screens drawn, each once, in order of first appearance."""
    shown = []
    ui = sim.app.ui
    if ui is None:
        return shown
    draw = ui.draw

    def draw_and_note(now_ms):
        draw(now_ms)
        name = ui.screen_name()
        if name not in shown:
            shown.append(name)

    ui.draw = draw_and_note
    return shown


def start(scenario, progress=None):
    """run(), with a board file that does not build reported as a ScenarioError."""
    try:
        return run(scenario, progress)
    except ConfigError as err:
        raise ScenarioError("board %s: %s" % (scenario.board, err)) from None


def main(argv=None):
    parser = pumptext.OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", help="scenario file (TOML)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)

    def progress(t_ms, total_ms):
        if not args.quiet and sys.stderr.isatty():
            text = "\r%5.1f / %.1f h" % (t_ms / HOUR_MS, total_ms / HOUR_MS)
            print(text, end="", file=sys.stderr)

    try:
        scenario = load(args.scenario)
        result = start(scenario, progress)
    except ScenarioError as err:
        print("scenario error: %s" % err, file=sys.stderr)
        return 2
    if not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    try:
        result.write(args.out)
    except OSError as err:
        print("scenario error: cannot write %s: %s" % (args.out, err.strerror), file=sys.stderr)
        return 2
    summary = result.summary()
    print(
        "%s: %.1f h simulated in %.2f s; basal %s, bolus %s, %d refused -> %s"
        % (
            scenario.name,
            summary["duration_h"],
            summary["wall_s"],
            pumptext.units(summary["delivered_mu"][BASAL]),
            pumptext.units(summary["delivered_mu"][BOLUS]),
            summary["refused"],
            args.out,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(pumptext.quiet_broken_pipe(main))
