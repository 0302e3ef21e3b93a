"""Scenario files: validation names the key at fault; the runner writes its three outputs."""

import csv
import json
import os
import subprocess
import sys

import pytest

import scenario
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
    return subprocess.run(
        [sys.executable, os.path.join(TOOLS, script), *args],
        capture_output=True,
        text=True,
        timeout=60,
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
    assert rows[0] == ["t_ms", "kind", "steps", "mu"]
    basal = [row for row in rows[1:] if row[1] == "basal"]
    # One step each at these rates; up to 4 at 2 U/h after a line test held them back
    # (its 6 s, plus a 4 s settle in the middle of a bolus).
    assert basal and all(1 <= int(row[2]) <= 4 for row in basal)
    assert any(row[1] == "bolus" for row in rows[1:])

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
    for _t, kind, _steps, mu in rows[1:]:
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


def test_sim_runs_the_bundled_demo(tmp_path):
    out = tmp_path / "demo"
    result = run_tool("simulate.py", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MISMATCH" not in result.stdout
    for name in ("deliveries.csv", "events.jsonl", "summary.json"):
        assert (out / name).exists()
