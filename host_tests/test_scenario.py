"""Scenario files: validation names the key at fault; the runner writes its three outputs."""

import csv
import json
import os
import re
import subprocess
import sys

import pytest

import scenario
import simulate
from scenario import Scenario, ScenarioError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")


def base():
    return {
        "settings": {"basal": [["00:00", 0.8]], "max_bolus": 10.0},
        "run": {"duration_h": 2},
        "actions": [{"at_min": 10, "bolus": 2.0}, {"at_min": 20, "bolus": 1.0}],
    }


def error_for(data):
    with pytest.raises(ScenarioError) as info:
        Scenario(data)
    return str(info.value)


def test_unknown_settings_key_is_named():
    data = base()
    data["settings"]["bolus_size"] = 2
    assert "settings: unknown key 'bolus_size'" in error_for(data)


def test_unknown_action_key_is_named_with_its_index():
    data = base()
    data["actions"][1] = {"at_min": 20, "bolsu": 1.0}
    assert "actions[1]: unknown key 'bolsu'" in error_for(data)


def test_negative_rate_names_the_segment():
    data = base()
    data["settings"]["basal"] = [["00:00", -0.5]]
    message = error_for(data)
    assert message.startswith("settings.basal[0]")
    assert "below the minimum" in message


def test_time_out_of_range_names_the_key():
    data = base()
    data["settings"]["start_time"] = "25:00"
    assert error_for(data).startswith("settings.start_time: time '25:00'")
    data = base()
    data["settings"]["basal"] = [["00:00", 0.8], ["25:00", 1.0]]
    assert error_for(data).startswith("settings.basal[1]: time '25:00'")


def test_action_after_the_end_of_the_run_is_refused():
    data = base()
    data["actions"][0]["at_min"] = 121
    assert "actions[0]: at 121 min is after the end of the run" in error_for(data)


@pytest.mark.parametrize(
    "action", [{"at_min": 5, "at_h": 1, "bolus": 1.0}, {"bolus": 1.0}], ids=["both", "neither"]
)
def test_action_needs_exactly_one_of_at_min_or_at_h(action):
    data = base()
    data["actions"] = [action]
    assert "actions[0]: give exactly one of at_min or at_h" in error_for(data)


def test_dual_without_now_percent_is_refused():
    data = base()
    data["actions"] = [{"at_min": 5, "dual": {"units": 3.0, "minutes": 60}}]
    assert "actions[0].dual: missing key 'now_percent'" in error_for(data)


def test_temp_with_both_percent_and_rate_is_refused():
    data = base()
    data["actions"] = [{"at_min": 5, "temp_basal": {"percent": 50, "rate": 1.0, "minutes": 60}}]
    assert "actions[0].temp_basal: give exactly one of percent or rate" in error_for(data)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize(
    "where",
    ["run.duration_h", "actions[0].at_min", "actions[0].bolus", "settings.max_bolus",
     "settings.basal[0] rate"],
)
def test_nan_and_inf_are_refused_naming_the_key(bad, where):
    data = base()
    if where == "run.duration_h":
        data["run"]["duration_h"] = bad
    elif where == "actions[0].at_min":
        data["actions"][0]["at_min"] = bad
    elif where == "actions[0].bolus":
        data["actions"][0]["bolus"] = bad
    elif where == "settings.max_bolus":
        data["settings"]["max_bolus"] = bad
    else:
        data["settings"]["basal"] = [["00:00", bad]]
    message = error_for(data)
    assert message.startswith(where) and "finite number" in message, message


@pytest.mark.parametrize(
    "run, message",
    [
        ({"duration_min": 600_000}, "run.duration_min: 600000 is above the maximum"),
        ({"duration_h": 10_000}, "run.duration_h: 10000 is above the maximum"),
        ({"duration_h": -1}, "run.duration_h: -1 is below the minimum"),
    ],
)
def test_absurd_durations_are_refused(run, message):
    data = base()
    data["run"] = run
    data["actions"] = []
    assert message in error_for(data)


def test_absurd_amounts_are_refused():
    data = base()
    data["actions"][0]["bolus"] = 1e12
    assert error_for(data).startswith("actions[0].bolus: 1000000000000.0 is above the maximum")
    data = base()
    data["actions"][0] = {"at_min": 10, "temp_basal": {"rate": 5000.0, "minutes": 60}}
    assert error_for(data).startswith("actions[0].temp_basal.rate: 5000.0 is above")


def test_unknown_board_is_a_scenario_error_naming_the_known_ones():
    data = base()
    data["board"] = {"name": "nosuch"}
    assert error_for(data) == "board.name: no board file 'nosuch' (known: %s)" % ", ".join(
        scenario.board_names())


@pytest.mark.parametrize(
    "text, message",
    [
        ("25:61", "the hour must be 00 to 23"),
        ("23:61", "the minutes must be 00 to 59"),
        ("7:30", 'is not "HH:MM"'),
    ],
)
def test_set_time_says_what_is_wrong_with_the_time(text, message):
    data = base()
    data["actions"][0] = {"at_min": 10, "set_time": text}
    assert message in error_for(data)


def test_set_time_takes_any_minute():
    data = base()
    data["actions"][0] = {"at_min": 10, "set_time": "14:10"}
    assert Scenario(data).actions[0][1] == "set_time"


def test_every_safety_setting_is_taken_and_checked():
    data = base()
    data["settings"].update(max_hour=20, max_day=200, low_reservoir=30, auto_off=0)
    s = Scenario(data).settings
    assert (s.max_hour_mu, s.max_day_mu, s.low_reservoir_mu, s.auto_off_h) == (
        20_000, 200_000, 30_000, 0)
    data["settings"]["auto_off"] = 24
    assert Scenario(data).settings.auto_off_h == 24
    for key, value, message in [
        ("auto_off", 3, "settings.auto_off: 3 h: auto-off is 5 to 24 h"),
        ("low_reservoir", 5, "settings.low_reservoir: the low-reservoir alert is at 10.00 U"),
        ("max_day", 10, "max per day must be at least max per hour"),
        ("max_hour", 0.5, "max per hour is"),
    ]:
        bad = base()
        bad["settings"][key] = value
        assert message in error_for(bad), (key, error_for(bad))


DAY_AT_7_U_PER_H = """\
[settings]
basal = [["00:00", 7.0]]
max_basal = 7.0
max_day = 200        # 7 U/h for 13 h is 91 U: above the factory 80 U
auto_off = 0         # nobody presses a key in a scenario: no auto-off after 12 h

[run]
duration_h = 13
"""


@pytest.mark.slow
def test_7_u_per_h_runs_past_the_day_limit_and_auto_off_once_they_are_raised(tmp_path):
    path = tmp_path / "seven.toml"
    path.write_text(DAY_AT_7_U_PER_H)
    result = scenario.run(scenario.load(str(path)))
    summary = result.summary()
    stops = [e for e in result.events if e[2] in ("alarm", "fault")]
    assert not stops, stops
    assert summary["delivered_mu"]["basal"] >= 90_900  # 13 h x 7 U/h, within a step


POWER_CUT = """\
[settings]
basal = [["00:00", 1.0]]
start_time = "06:00"

[run]
duration_h = 2

[[actions]]
at_min = 20
bolus = 1.0

[[actions]]
at_min = 60
power_loss = { off_min = 5, keep_clock = true }   # a backup cell: basal resumes
"""


def test_times_run_on_across_a_power_cut_and_the_series_are_written(tmp_path):
    path = tmp_path / "cut.toml"
    path.write_text(POWER_CUT)
    out = tmp_path / "out"
    result = run_tool("scenario.py", str(path), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    times = [e["t_ms"] for e in events]
    assert times == sorted(times)
    boots = [e["t_ms"] for e in events if e["type"] == "boot"]
    assert boots[0] == 0 and boots[1] >= 65 * 60_000  # the cut at 60 min, 5 min off
    started = [e for e in events if e["type"] == "bolus_started"]
    assert started[0]["t_ms"] == 20 * 60_000 and started[0]["time"] == "06:20:00"
    with open(out / "deliveries.csv", newline="") as f:
        deliveries = list(csv.DictReader(f))
    assert [int(d["t_ms"]) for d in deliveries] == sorted(int(d["t_ms"]) for d in deliveries)
    assert int(deliveries[-1]["t_ms"]) > 65 * 60_000
    with open(out / "iob.csv", newline="") as f:
        iob = list(csv.DictReader(f))
    assert iob[0].keys() == {"t_ms", "time", "iob_mu"}
    after_bolus = [int(r["iob_mu"]) for r in iob if 22 * 60_000 <= int(r["t_ms"]) < 60 * 60_000]
    assert after_bolus and max(after_bolus) > 800  # most of the 1 U bolus on board
    off = [r for r in iob if 60 * 60_000 < int(r["t_ms"]) < 65 * 60_000]
    assert off and all(r["iob_mu"] == "" for r in off)  # no firmware running: no IOB
    with open(out / "pressure.csv", newline="") as f:
        pressure = list(csv.DictReader(f))
    assert pressure[0].keys() == {"t_ms", "time", "pressure_kpa", "force_mn"}
    assert len(pressure) >= 119 and all(float(r["pressure_kpa"]) >= 0 for r in pressure)


def test_bad_toml_syntax_is_a_scenario_error(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[settings\nbasal = 1\n")
    with pytest.raises(ScenarioError) as info:
        scenario.load(str(path))
    assert str(path) in str(info.value)


def test_valid_file_loads(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(SCENARIO)
    loaded = scenario.load(str(path))
    assert loaded.name == "ok"
    assert loaded.duration_ms == 3 * 3_600_000
    assert [kind for _at, kind, _action in loaded.actions] == [
        "bolus",
        "dual",
        "temp_basal",
        "bolus",
    ]


SCENARIO = """\
[settings]
basal = [["00:00", 0.8], ["01:00", 1.2]]
max_bolus = 5.0
max_basal = 3.0

[run]
duration_h = 3

[[actions]]
at_min = 10
bolus = 2.5

[[actions]]
at_min = 40
dual = { units = 3.0, now_percent = 50, minutes = 60 }

[[actions]]
at_h = 1.5
temp_basal = { rate = 2.0, minutes = 30 }

[[actions]]
at_min = 150
bolus = 6.0      # above max_bolus: refused
"""


def run_tool(script, *args):
    # No time limit: a slow or busy machine takes longer, and the run ends by itself.
    return subprocess.run(
        [sys.executable, os.path.join(TOOLS, script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_runner_writes_deliveries_events_and_summary(tmp_path):
    path = tmp_path / "day.toml"
    path.write_text(SCENARIO)
    out = tmp_path / "out"
    result = run_tool("scenario.py", str(path), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr

    with open(out / "deliveries.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["t_ms", "time", "kind", "steps", "mu"]
    assert all(row[1] == "%02d:%02d:%02d" % (int(row[0]) // 3_600_000,
                                              int(row[0]) // 60_000 % 60,
                                              int(row[0]) // 1000 % 60) for row in rows[1:])
    basal = [row[:1] + row[2:] for row in rows[1:] if row[2] == "basal"]
    # One step each at these rates; up to 4 at 2 U/h after a line test held them back
    # (its 6 s, plus a 4 s settle in the middle of a bolus).
    assert basal and all(1 <= int(row[2]) <= 4 for row in basal)
    assert any(row[2] == "bolus" for row in rows[1:])

    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert all("t_ms" in e and "type" in e for e in events)
    started = [e for e in events if e["type"] == "bolus_started"]
    finished = [e for e in events if e["type"] == "bolus_finished"]
    assert [e["requested_mu"] for e in started] == [2500, 3000]
    assert [e["requested_mu"] for e in finished] == [2500, 3000]
    assert all(e["delivered_mu"] > 0 and e["steps"] > 0 for e in finished)
    (refused,) = [e for e in events if e["type"] == "refused"]
    assert "above the max bolus" in refused["reason"]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["mu_per_step"] == 1.4725
    delivered = {"basal": 0, "bolus": 0}
    for _t, _time, kind, _steps, mu in rows[1:]:
        delivered[kind] += int(mu)
    assert summary["delivered_mu"] == delivered
    assert summary["refused"] == 1
    assert summary["wall_s"] >= 0


def test_runner_exits_2_naming_the_key_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(SCENARIO.replace("max_bolus = 5.0", "bolus_size = 5.0"))
    out = tmp_path / "out"
    result = run_tool("scenario.py", str(path), "--out", str(out))
    assert result.returncode == 2
    assert "settings: unknown key 'bolus_size'" in result.stderr
    assert not out.exists()


def test_sim_runs_the_bundled_demo_and_reports_in_units_that_add_up(tmp_path):
    # The whole demo day, as `make sim </dev/null` runs it (no time limit: see run_tool).
    out = tmp_path / "demo"
    result = run_tool("simulate.py", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.stdout
    assert "MISMATCH" not in report
    for name in ("deliveries.csv", "events.jsonl", "summary.json", "iob.csv", "pressure.csv",
                 "outflow.csv"):
        assert (out / name).exists()
    assert "0.0014725 U per motor step (14.725 nL)" in report
    lines = report.splitlines()
    (total,) = [line for line in lines if line.strip().startswith("total")]
    basal_total, bolus_total = [float(x) for x in re.findall(r"([0-9.]+) U", total)]
    rows = [line for line in lines if re.match(r"  \d\d:00 +[0-9.]+ U", line)]
    assert len(rows) == 24
    per_hour = [[float(x) for x in re.findall(r"([0-9.]+) U", row)] for row in rows]
    # The table's rows add up to its totals, to the 0.001 U shown.
    assert round(sum(b for b, _ in per_hour), 3) == basal_total
    assert round(sum(b for _, b in per_hour), 3) == bolus_total
    # The boluses the events say were given add up to the table's bolus total.
    given = [float(x) for x in re.findall(r"finished: ([0-9.]+) U given", report)]
    given += [float(x) for x in re.findall(r"cancelled .*: ([0-9.]+) U given", report)]
    assert len(given) == 3 and round(sum(given), 3) == bolus_total
    # A person's units only: no milliunits, no raw field names, no raw codes.
    events = report[report.index("Events:"):]
    for raw in ("_mu", "mu=", "steps=", "cause=", "wall_s", "code="):
        assert raw not in events, raw
    summary = json.loads((out / "summary.json").read_text())
    steps = summary["delivered_steps"]["bolus"]
    assert round(steps * summary["mu_per_step"]) / 1000 == bolus_total


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--headless", "--board", "nosuch"], "no board file 'nosuch'"),
        (["--speed", "7"], "the speed is one of 1, 60, 3600"),
        (["--seed", "abc"], "'abc' is not a whole number"),
        (["--start", "25:00"], "not a time of day"),
        (["--speed", "60", "--headless"], "--speed is for the terminal simulator"),
    ],
)
def test_make_sim_refuses_bad_options_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        simulate.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


FUZZ_VALUES = [
    None, True, 0, -1, 2.5, 1e300, float("nan"), float("inf"), "x", "07:30", "25:61", "",
    [], [1], [["00:00", 0.8]], [["x", "y"]], {}, {"a": 1}, {"units": 1, "minutes": 30},
    {"rate": float("nan"), "minutes": 60}, {"off_min": 1, "random": 1}, ["UP", "OK"],
    {"key": [], "ms": 1}, {"Std": [["00:00", 0.8]]}, {"Std": 1}, 10**30,
    {"icr": [["00:00", float("nan")]], "isf": 1, "targets": []},
]


def test_any_value_anywhere_is_a_scenario_error_never_a_traceback():
    import random

    rng = random.Random(7)
    settings_keys = ["basal", "profiles", "active_profile", "max_bolus", "max_basal",
                     "bolus_increment", "bolus_speed", "start_time", "calculator", "bg_unit",
                     "insulin", "max_hour", "max_day", "low_reservoir", "auto_off"]
    kinds = ["bolus", "extended", "dual", "temp_basal", "cancel_bolus", "select_profile",
             "set_time", "partial_occlusion", "press", "hold", "screenshot", "power_loss"]
    for _ in range(3000):
        data = {"settings": {}, "run": {"duration_h": rng.choice([1, rng.choice(FUZZ_VALUES)])},
                "actions": []}
        for _ in range(rng.randint(0, 3)):
            data["settings"][rng.choice(settings_keys)] = rng.choice(FUZZ_VALUES)
        for _ in range(rng.randint(0, 2)):
            data["actions"].append({"at_min": rng.choice([1, rng.choice(FUZZ_VALUES)]),
                                    rng.choice(kinds): rng.choice(FUZZ_VALUES)})
        if rng.random() < 0.1:
            data["board"] = {"name": rng.choice(FUZZ_VALUES)}
        try:
            Scenario(data)
        except ScenarioError:
            pass
