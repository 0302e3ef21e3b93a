"""Gravimetric calibration: the arithmetic, the refusals, and the board file edit."""

import io
import math
import os
import shutil

import pytest

import calibrate
from calibrate import CalibrationError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARD = os.path.join(ROOT, "boards", "pico_default.py")
NOMINAL_PL = 14725  # pi * 8.66^2 / 4 mm^2 * 0.8 mm / 3200 steps


def test_water_density_from_the_table_and_between_rows():
    assert calibrate.water_density(20) == 0.99821
    assert calibrate.water_density(25) == 0.99705
    assert calibrate.water_density(22.5) == pytest.approx((0.99777 + 0.99754) / 2)
    with pytest.raises(CalibrationError, match="outside the table"):
        calibrate.water_density(35)
    assert calibrate.liquid_density("insulin") == 1.0
    with pytest.raises(CalibrationError, match="outside 0.95 to 1.05"):
        calibrate.liquid_density("water", density=1.2)


def test_step_volume_from_mass_steps_and_density():
    # 300 mg of a 1.000 g/mL liquid is 300 uL; over 20000 steps that is 15000 pL a step.
    assert calibrate.step_pl(300.0, 20_000, 1.0) == 15_000
    # 294.5 mg of water at 20 C: 294.5 / 0.99821 = 295.028 uL -> 14751.4 pL per step.
    assert calibrate.step_pl(294.5, 20_000, 0.99821) == 14_751
    assert calibrate.deviation_percent(15_000, NOMINAL_PL) == pytest.approx(1.8676, abs=1e-4)


def test_net_mass_from_tare_and_gross_or_net():
    assert calibrate.net_mass_mg(tare_mg=1000.0, gross_mg=1294.5) == pytest.approx(294.5)
    assert calibrate.net_mass_mg(net_mg=294.5) == 294.5
    for kwargs in (
        {"tare_mg": 1000.0, "gross_mg": 1000.0},  # nothing came out
        {"tare_mg": 1000.0, "gross_mg": 900.0},  # lighter
        {"net_mg": -5.0},
        {"net_mg": 0.0},
        {"net_mg": math.nan},
    ):
        with pytest.raises(CalibrationError, match="heavier|not a scale"):
            calibrate.net_mass_mg(**kwargs)
    with pytest.raises(CalibrationError, match="not a scale reading"):
        calibrate.net_mass_mg(tare_mg=-1.0, gross_mg=300.0)


def test_bad_step_counts_and_implausible_results_are_refused():
    for steps in (0, -20, 2.5):
        with pytest.raises(CalibrationError, match="steps"):
            calibrate.step_pl(300.0, steps, 1.0)
    assert calibrate.check_plausible(19_000, NOMINAL_PL) == pytest.approx(29.03, abs=0.01)
    with pytest.raises(CalibrationError, match=r"\+35.8 % off the nominal 14725"):
        calibrate.check_plausible(20_000, NOMINAL_PL)
    with pytest.raises(CalibrationError, match="-32.1 %"):
        calibrate.check_plausible(10_000, NOMINAL_PL)


def test_summary_of_several_runs():
    s = calibrate.summarize([14_700, 14_750, 14_800])
    assert s["mean_pl"] == 14_750 and s["result_pl"] == 14_750
    assert s["sd_pl"] == pytest.approx(50.0)  # sample SD (n - 1)
    assert s["spread_pl"] == 100
    assert s["cv_percent"] == pytest.approx(50 / 14_750 * 100)
    one = calibrate.summarize([14_801])
    assert one["sd_pl"] == 0 and one["spread_pl"] == 0 and one["result_pl"] == 14_801
    assert calibrate.summarize([14_700, 14_701])["result_pl"] == 14_701  # half up
    with pytest.raises(CalibrationError, match="at least one run"):
        calibrate.summarize([])


def test_nominal_step_volume_is_the_firmware_s_geometry():
    board = calibrate.load_board(BOARD)
    assert calibrate.nominal_step_pl(board.MECHANICS) == NOMINAL_PL


def test_board_edit_changes_only_the_calibrated_value():
    with open(BOARD, newline="") as f:
        text = f.read()
    new_text, old = calibrate.replace_calibrated(text, 15_076)
    assert old is None
    assert '"calibrated_step_pl": 15076,  # picolitres' in new_text
    before, after = text.split('"calibrated_step_pl": None')
    assert new_text == before + '"calibrated_step_pl": 15076' + after
    again, old = calibrate.replace_calibrated(new_text, 14_990)
    assert old == 15_076 and again == before + '"calibrated_step_pl": 14990' + after
    with pytest.raises(CalibrationError, match="found 0 lines"):
        calibrate.replace_calibrated(text.replace("calibrated_step_pl", "step_pl"), 15_000)
    with pytest.raises(CalibrationError, match="found 2 lines"):
        calibrate.replace_calibrated(text + text, 15_000)


@pytest.fixture
def board_copy(tmp_path):
    path = tmp_path / "board.py"
    shutil.copyfile(BOARD, path)
    return str(path)


def _run(args, answers):
    return calibrate.main(args, stdin=io.StringIO("".join(a + "\n" for a in answers)))


def test_manual_session_writes_the_mean_after_confirmation(board_copy, capsys):
    answers = ["1000", "20000", "1300.5", "1500", "20000", "1801.2", "y"]
    assert _run(["--manual", "--runs", "2", "--board-file", board_copy], answers) == 0
    out = capsys.readouterr().out
    # 300.5 mg and 301.2 mg of water at 22 C (0.99777 g/mL) over 20000 steps each.
    assert "run 1: 20000 steps, 300.5 mg -> 15059 pL per step (+2.27 % from nominal)" in out
    assert "run 2: 20000 steps, 301.2 mg -> 15094 pL per step" in out
    assert "SD 24.7 pL, spread 35 pL, CV 0.16 %" in out
    assert 'MECHANICS["calibrated_step_pl"] None -> 15077' in out
    with open(board_copy) as f:
        assert '"calibrated_step_pl": 15077,' in f.read()


def test_declining_leaves_the_board_file_byte_identical(board_copy, capsys):
    answers = ["300.5", "n"]
    args = ["--manual", "--runs", "1", "--net", "--steps", "20000", "--board-file", board_copy]
    answers = ["20000"] + answers
    assert _run(args, answers) == 0
    assert "Nothing written." in capsys.readouterr().out
    with open(BOARD, "rb") as a, open(board_copy, "rb") as b:
        assert a.read() == b.read()


@pytest.mark.parametrize(
    "args,answers,message",
    [
        (["--runs", "0"], [], "--runs must be 1 or more"),
        (["--steps", "0"], [], "--steps must be 1 to"),
        (["--density", "1.3"], [], "density 1.3000 g/mL is outside"),
        (["--temp", "40"], [], "temperature 40.0 C is outside"),
        ([], ["1000", "20000", "990"], "net mass -10.0 mg: the container must get heavier"),
        ([], ["1000", "0"], "steps dispensed must be above 0"),
        ([], ["1000", "twenty"], "steps dispensed: 'twenty' is not a number"),
        ([], ["1.0000", "20000", "1.2945"], "off the nominal"),  # grams, not mg
        ([], ["1000"], "input ended"),
    ],
)
def test_bad_entries_stop_with_status_2_and_a_reason(board_copy, capsys, args, answers, message):
    base = ["--manual", "--runs", "1", "--board-file", board_copy]
    assert _run(base + args, answers) == 2
    assert message in capsys.readouterr().err
    with open(BOARD, "rb") as a, open(board_copy, "rb") as b:
        assert a.read() == b.read()


def test_simulated_session_dispenses_on_the_firmware_s_motor(board_copy, capsys):
    dispense = calibrate.SimDispenser("pico_default")
    assert dispense(3000) == 3000  # counted by the driver model on the STEP pin
    args = ["--sim", "--sim-true-pl", "15100", "--runs", "2", "--steps", "3000",
            "--board-file", board_copy, "--yes"]
    assert _run(args, []) == 0
    out = capsys.readouterr().out
    assert "the scale reads 45.2 mg net" in out  # 3000 x 15100 pL x 0.99777 g/mL
    with open(board_copy) as f:
        text = f.read()
    assert '"calibrated_step_pl": 15100,' in text  # 45.2e6 / 0.99777 / 3000 = 15100.3


def test_the_readme_s_simulated_calibration_runs_at_its_defaults(board_copy, capsys):
    # `tools/calibrate.py --sim --dry-run`: 3 runs of 20,000 steps, masses typed in mg.
    answers = ["1000", "1294.5"] * 3
    assert _run(["--sim", "--dry-run", "--board-file", board_copy], answers) == 0
    out = capsys.readouterr().out
    assert out.count("20000 steps, 294.5 mg -> 14758 pL per step") == 3
    assert "Dry run: the board file is not changed." in out


def test_the_simulated_dispenser_feeds_the_watchdog_between_trains():
    dispense = calibrate.SimDispenser("pico_default")
    # 30 s of motor time with no main loop running: the 8 s watchdog must not run out.
    assert dispense(60_000) == 60_000
    assert dispense.trains == 30 and dispense.feeds == 30
    dispense.sim.clock.run_for_ns(7_000_000_000)  # and it is still fed up to the last train


@pytest.mark.parametrize("option", [["--temp", "nan"], ["--density", "inf"], ["--runs", "x"]])
def test_nan_inf_and_words_in_options_exit_2_in_one_line(board_copy, capsys, option):
    with pytest.raises(SystemExit) as info:
        calibrate.main(["--manual", "--board-file", board_copy] + option, io.StringIO(""))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option[0] in err, err
