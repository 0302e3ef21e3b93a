"""Charts of a run: the trumpet curve by hand, IOB from the firmware's curve, and the files."""

import csv
import json
import os

import pytest

import plot
from plot import HOUR_MS

MIN = 60_000
HOUR = 3_600_000


def _outflow(minutes, nl_per_sample=5, extra=None):
    """Cumulative outflow every 30 s; ``extra`` = {sample index: nL added in that interval}."""
    rows = [(0, 0)]
    total = 0
    for i in range(1, minutes * 2 + 1):
        total += nl_per_sample + (extra or {}).get(i, 0)
        rows.append((i * 30_000, total))
    return rows


def test_trumpet_of_an_exact_pump_is_flat_zero():
    result = plot.trumpet(_outflow(180), rate_nl_per_min=10)
    for minutes, ep_max, ep_min, n in result["windows"]:
        assert ep_max == 0 and ep_min == 0
        # windows starting at 60, 60.5, ... min and ending by 180 min
        assert n == (180 - 60 - minutes) * 2 + 1
    assert result["mean_error_percent"] == 0


def test_trumpet_of_one_extra_pulse_by_hand():
    # 10 nL/min; one extra 10 nL in the interval ending at 120 min (sample 240).
    result = plot.trumpet(_outflow(180, extra={240: 10}), 10, windows_min=(2, 5, 60))
    by_window = {w[0]: w[1:3] for w in result["windows"]}
    assert by_window[2] == (50.0, 0.0)  # 30 nL instead of 20 in any 2-min window holding it
    assert by_window[5] == (20.0, 0.0)  # 60 instead of 50
    assert by_window[60] == pytest.approx((10 / 600 * 100, 0.0))
    # 60..180 min: 1210 nL against 1200 nL programmed.
    assert result["mean_error_percent"] == pytest.approx(10 / 1200 * 100)


def test_trumpet_ignores_the_first_hour_and_short_data():
    # Nothing at all for the first hour (priming, compliance), exact afterwards.
    rows = [(t, 0 if t <= HOUR else (t - HOUR) // 6000) for t, _ in _outflow(100)]
    result = plot.trumpet(rows, 10, windows_min=(2, 31, 60))
    by_window = {w[0]: w[1:] for w in result["windows"]}
    assert by_window[2] == (0.0, 0.0, (100 - 60 - 2) * 2 + 1)
    assert by_window[60] == (None, None, 0)  # only 40 min after the first hour
    with pytest.raises(ValueError):
        plot.trumpet(rows, 0)


def test_trumpet_of_a_slow_pump():
    result = plot.trumpet(_outflow(180, nl_per_sample=4.5), 10, windows_min=(11,))
    (_m, ep_max, ep_min, _n) = result["windows"][0]
    assert ep_max == pytest.approx(-10.0) and ep_min == pytest.approx(-10.0)
    assert result["mean_error_percent"] == pytest.approx(-10.0)


def test_insulin_on_board_uses_the_firmware_curve():
    deliveries = [(HOUR, "bolus", 3396, 5000), (HOUR, "basal", 10, 14)]
    times, iob = plot.insulin_on_board(deliveries, 7 * HOUR, step_ms=HOUR)
    assert times[1] == HOUR and iob[0] == 0 and iob[1] == 5000  # whole dose at once
    assert 0 < iob[3] < iob[2] < 5000  # decaying, basal not counted
    assert iob[6] == 0 and iob[7] == 0  # gone after DIA 5 h


def test_per_hour_and_cumulative_split_by_kind():
    deliveries = [(10, "basal", 1, 2), (HOUR + 5, "bolus", 700, 1031), (HOUR + 9, "basal", 1, 1)]
    assert plot.per_hour(deliveries, 2) == {"basal": [0.002, 0.001], "bolus": [0.0, 1.031]}
    times, totals = plot.cumulative(deliveries)
    assert totals[-1] == pytest.approx(1.034)
    assert plot.cumulative(deliveries, "bolus")[1] == [0.0, 1.031]


def _write_folder(folder, outflow=True, pressure=True):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "deliveries.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("t_ms", "kind", "steps", "mu"))
        for i in range(1, 200):
            w.writerow((i * 18_000, "basal", 1, 1))
        w.writerow((2 * HOUR, "bolus", 680, 1001))
    with open(os.path.join(folder, "events.jsonl"), "w") as f:
        for record in (
            {"t_ms": 0, "type": "basal_rate", "seq": 1, "rate_mu_per_h": 200},
            {"t_ms": 0, "type": "boot", "seq": 2},
            {"t_ms": 2 * HOUR, "type": "alarm", "seq": 3, "code": "occlusion"},
        ):
            f.write(json.dumps(record) + "\n")
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump({"scenario": "small", "duration_h": 3.0, "mu_per_step": 1.4725,
                   "nl_per_step": 14.725}, f)
    if outflow:
        with open(os.path.join(folder, "outflow.csv"), "w") as f:
            f.write("t_ms,delivered_nl\n")
            for t, nl in _outflow(180, nl_per_sample=1000 / 60):
                f.write("%d,%d\n" % (t, nl))
    if pressure:
        with open(os.path.join(folder, "pressure.csv"), "w") as f:
            f.write("t_ms,pressure_kpa\n0,0.5\n60000,1.5\n")


def test_programmed_rate_comes_from_the_basal_events(tmp_path):
    _write_folder(str(tmp_path))
    run = plot.load_folder(str(tmp_path))
    # 0.2 U/h of U-100 = 2 uL/h = 33.3 nL/min.
    assert plot.programmed_rate_nl_per_min(run) == pytest.approx(2000 / 60)


@pytest.mark.slow
def test_cli_writes_every_chart_and_prints_the_files(tmp_path, capsys):
    folder = str(tmp_path / "run")
    _write_folder(folder)
    assert plot.main([folder, "--to", str(tmp_path / "png")]) == 0
    printed = capsys.readouterr().out.split()
    names = sorted(os.path.basename(p) for p in printed)
    assert names == ["cumulative.png", "delivery_per_hour.png", "events.png", "iob.png",
                     "pressure.png", "trumpet.png"]
    for path in printed:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_history_file_gives_deliveries_from_delivery_events(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(
        '{"t_ms": 1000, "type": "delivery", "seq": 1, "kind": "bolus", "steps": 680, "mu": 1001}\n'
        '{"t_ms": 500, "type": "bolus_started", "seq": 2}\n'
    )
    run = plot.load(str(path))
    assert run.deliveries == [(1000, "bolus", 680, 1001)]
    assert [e["type"] for e in run.events] == ["bolus_started"]
    csv_path = tmp_path / "history.csv"
    csv_path.write_text("t_ms,type,seq,kind,steps,mu\n1000,delivery,1,basal,1,1\n5,boot,2,,,\n")
    run = plot.load(str(csv_path))
    assert run.deliveries == [(1000, "basal", 1, 1)] and run.events[0]["type"] == "boot"


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda d: None, "no such folder or history file"),
        (lambda d: os.makedirs(d), "not a scenario output folder: deliveries.csv, events.jsonl"),
        (lambda d: (_write_folder(d), open(os.path.join(d, "deliveries.csv"), "w").write(
            "t,kind\n1,basal\n")), "deliveries.csv: header t,kind lacks t_ms, steps, mu"),
        (lambda d: (_write_folder(d), open(os.path.join(d, "deliveries.csv"), "a").write(
            "5,squirt,1,1\n")), "kind 'squirt' is not basal or bolus"),
        (lambda d: (_write_folder(d), open(os.path.join(d, "events.jsonl"), "a").write(
            "{oops\n")), "events.jsonl line 4: not JSON"),
        (lambda d: (_write_folder(d), open(os.path.join(d, "outflow.csv"), "w").write(
            "t_ms,nl\n")), "outflow.csv: needs a column delivered_nl"),
    ],
)
def test_missing_or_malformed_input_exits_2_and_says_why(tmp_path, capsys, setup, message):
    folder = str(tmp_path / "run")
    setup(folder)
    assert plot.main([folder, "--to", str(tmp_path / "png")]) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "png")


def test_a_history_from_the_pump_log_gives_basal_by_the_hour_and_boluses(tmp_path):
    # The pump logs no record per pulse train: basal comes from its hourly records.
    from pump.core import bolus as bolus_mod
    from sim.pump import SimPump

    sim = SimPump(start_ms_of_day=0, event_capacity=400)
    sim.at(90 * 60_000, lambda app: app.bolus(bolus_mod.NORMAL, 2000))
    sim.run_until(3 * 3_600_000 + 60_000)
    path = tmp_path / "history.jsonl"
    with open(path, "w") as f:
        for seq, t_ms, _wall_s, etype, fields in reversed(sim.app.history(400)):
            f.write(json.dumps(dict(fields, seq=seq, t_ms=t_ms, type=etype)) + "\n")
    run = plot.load(str(path))
    by_hour = plot.per_hour(run.deliveries, 4)
    given = plot.per_hour(sim.deliveries, 4)
    # The three whole hours, each to its rounding (one record vs one per train).
    assert by_hour["basal"][:3] == pytest.approx(given["basal"][:3], abs=0.0015)
    assert sum(by_hour["bolus"]) == pytest.approx(sum(given["bolus"]))
    assert sum(by_hour["bolus"]) == pytest.approx(2.0, abs=0.002)


def test_scenario_outputs_plot_against_the_time_of_day_with_the_pump_s_own_iob(tmp_path):
    import scenario as runner

    data = {
        "settings": {"basal": [["00:00", 1.0]], "start_time": "06:00"},
        "run": {"duration_h": 1},
        "actions": [{"at_min": 10, "bolus": 1.0}],
    }
    runner.run(runner.Scenario(data, "morning")).write(str(tmp_path / "out"))
    run = plot.load_folder(str(tmp_path / "out"))
    assert run.start_ms_of_day == 6 * HOUR_MS
    assert run.iob and max(v for _t, v in run.iob) > 900  # the 1 U bolus, as the pump counts
    fig, ax = plot._pyplot().subplots()
    plot._time_axis(ax, run)
    assert ax.get_xlabel() == "time of day"
    assert ax.xaxis.get_major_formatter()(0.5, 0) == "06:30"
    plot._pyplot().close(fig)
    written = plot.plot_all(run, str(tmp_path / "png"))
    assert {"iob.png", "pressure.png", "cumulative.png"} <= {os.path.basename(p)
                                                             for p in written}


@pytest.mark.parametrize("argv", [["--rate", "nan"], ["--rate", "inf"]])
def test_options_that_are_not_finite_exit_2_in_one_line(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as info:
        plot.main([str(tmp_path)] + argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--rate" in err
