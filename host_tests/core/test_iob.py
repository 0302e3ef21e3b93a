"""Insulin on board: the curve against its formula, and the history of delivered boluses.

Run as a script, it prints the curve tables of pump/core/iob.py:
``PYTHONPATH=firmware .venv/bin/python host_tests/core/test_iob.py``.
"""

import math

from support import raises

from pump.core.errors import Refused
from pump.core.iob import (
    DEFAULT_CAPACITY,
    FULL,
    MERGE_MS,
    PEAK_MIN,
    RAPID_ACTING,
    ULTRA_RAPID,
    InsulinCurve,
    IobHistory,
    check_curve,
    fmt_dia,
)

MIN = 60_000
HOUR = 3_600_000
DIAS_MIN = (300, 330, 360, 390, 420, 450, 480)


def formula(peak_min, dia_min):
    """The published exponential formula in float64: a function of minutes since the dose."""
    tp = peak_min
    td = dia_min
    tau = tp * (1 - tp / td) / (1 - 2 * tp / td)
    a = 2 * tau / td
    s = 1 / (1 - a + (1 + a) * math.exp(-td / tau))
    k = tau * td * (1 - a)
    c = s * (1 - a)

    def iob_fraction(t):
        if t <= 0:
            return 1.0
        if t >= td:
            return 0.0
        return 1 - c * ((t * t / k - t / tau - 1) * math.exp(-t / tau) + 1)

    return iob_fraction


def expected_table(peak_min, dia_min):
    """Every 5 minutes from 0 to td, in 1/10000, rounded to the nearest."""
    fraction = formula(peak_min, dia_min)
    return [int(fraction(5 * i) * FULL + 0.5) for i in range(dia_min // 5 + 1)]


def curves():
    for insulin in (RAPID_ACTING, ULTRA_RAPID):
        for dia in DIAS_MIN:
            yield InsulinCurve(insulin, dia * MIN)


# ----- the curve -------------------------------------------------------------------------


def test_every_table_entry_is_the_formula_rounded():
    for curve in curves():
        want = expected_table(curve.peak_ms // MIN, curve.dia_ms // MIN)
        got = [curve.node(i) for i in range(len(want) + 2)]
        assert got == want + [0, 0], (curve.insulin, curve.dia_ms)


def test_full_at_delivery_and_nothing_from_the_duration_of_action_on():
    for curve in curves():
        assert curve.remaining(0) == FULL
        assert curve.remaining(-MIN) == FULL  # a dose stamped a little ahead counts whole
        assert curve.remaining(curve.dia_ms) == 0
        assert curve.remaining(curve.dia_ms + 5 * HOUR) == 0
        assert 0 <= curve.remaining(curve.dia_ms - 1000) <= 1


def test_curve_never_rises():
    for curve in curves():
        previous = FULL
        for age_s in range(0, curve.dia_ms // 1000 + 1, 20):
            value = curve.remaining(age_s * 1000)
            assert value <= previous, (curve.insulin, curve.dia_ms, age_s)
            previous = value
        assert previous == 0


def test_activity_peaks_at_the_peak_time():
    for curve in curves():
        peak = curve.peak_ms // MIN

        def acting(m, curve=curve):  # 1/10000 of the dose acting in the 20 minutes around minute m
            return curve.remaining((m - 10) * MIN) - curve.remaining((m + 10) * MIN)

        most = max(acting(m) for m in range(10, 300))
        # The activity is flat at its top and the values are whole 1/10000: the peak
        # minute is within one of the most, and above its neighbours 5 minutes away.
        assert acting(peak) >= most - 1, (curve.insulin, curve.dia_ms)
        assert acting(peak - 5) < acting(peak) > acting(peak + 5), (curve.insulin, curve.dia_ms)
        assert acting(peak - 30) < acting(peak - 15) < acting(peak - 5)
        assert acting(peak + 5) > acting(peak + 15) > acting(peak + 30)


def test_within_a_milliunit_per_unit_of_the_float64_formula():
    worst = 0
    for curve in curves():
        peak = curve.peak_ms // MIN
        dia = curve.dia_ms // MIN
        fraction = formula(peak, dia)
        history = IobHistory(curve)
        history.add(0, 1000)  # 1 U
        for age_s in range(0, dia * 60 + 60, 293):
            got = history.iob_mu(age_s * 1000)
            want = 1000 * fraction(age_s / 60)
            worst = max(worst, abs(got - want))
    assert worst <= 1.0, worst


def test_doses_are_integer_arithmetic_only():
    # The curve on the device is a table of integers: no float and no true division
    # anywhere in the module, so the result in mU cannot depend on 32-bit floats.
    try:
        import ast
    except ImportError:  # MicroPython: the CPython run checks the source
        return
    import pump.core.iob as iob

    with open(iob.__file__) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.Constant) and type(node.value) is float), node.lineno
        assert not isinstance(node, ast.Div), node
        assert not (isinstance(node, ast.Name) and node.id == "float"), node.lineno
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None)]
            assert "math" not in names
    history = IobHistory(InsulinCurve(ULTRA_RAPID, 5 * HOUR))
    history.add(0, 7_350)
    assert type(history.iob_mu(47 * MIN + 13_000)) is int


def test_unknown_insulin_or_duration_is_refused_with_a_reason():
    assert "rapid-acting or ultra-rapid" in str(raises(Refused, check_curve, "regular", 6 * HOUR))
    assert "3 to 8 h" in str(raises(Refused, check_curve, RAPID_ACTING, 2 * HOUR))
    assert "3 to 8 h" in str(raises(Refused, check_curve, RAPID_ACTING, 9 * HOUR))
    assert "3 to 8 h" in str(raises(Refused, check_curve, RAPID_ACTING, 6.0 * HOUR))
    assert "30-minute steps" in str(raises(Refused, check_curve, RAPID_ACTING, 5 * HOUR + 15 * MIN))
    msg = str(raises(Refused, check_curve, ULTRA_RAPID, 4 * HOUR))
    assert "at least 5 h" in msg and "ultra-rapid" in msg
    raises(Refused, InsulinCurve, RAPID_ACTING, 3 * HOUR)
    check_curve(RAPID_ACTING, 5 * HOUR)
    check_curve(ULTRA_RAPID, 8 * HOUR)
    assert InsulinCurve().peak_ms == PEAK_MIN[RAPID_ACTING] * MIN == 75 * MIN
    assert InsulinCurve(ULTRA_RAPID).peak_ms == 55 * MIN
    assert fmt_dia(5 * HOUR + 30 * MIN) == "5:30 h"


# ----- the history, against hand computations -------------------------------------------
#
# Rapid-acting, td = 360 min, tp = 75 min:
#   tau = 75 * (1 - 75/360) / (1 - 150/360) = 75 * 0.791667 / 0.583333 = 101.7857
#   a   = 2 * 101.7857 / 360 = 0.565476
#   S   = 1 / (0.434524 + 1.565476 * exp(-3.536842)) = 1 / (0.434524 + 1.565476 * 0.029110)
#       = 2.082955;  S * (1 - a) = 0.905094;  tau * td * (1 - a) = 15922.1
#   t = 30:  (900/15922.1 - 0.294737 - 1) * exp(-0.294737)   = -1.238212 * 0.744728 = -0.922131
#            IOB = 1 - 0.905094 * (1 - 0.922131) = 0.929521
#   t = 60:  (0.226099 - 0.589474 - 1) * 0.554619 = -0.756150;  IOB = 0.779296
#   t = 90:  (0.508724 - 0.884211 - 1) * 0.413040 = -0.568086;  IOB = 0.609118
#   t = 120: (0.904398 - 1.178947 - 1) * 0.307602 = -0.392054;  IOB = 0.449752
#   t = 180: (2.034895 - 1.768421 - 1) * 0.170602 = -0.125141;  IOB = 0.208171
#   t = 300: (5.652487 - 2.947368 - 1) * 0.052478 =  0.089483;  IOB = 0.013918
# Ultra-rapid, td = 300 min, tp = 55 min: tau = 70.92105, a = 0.472807, S * (1 - a) = 0.960936
#   t = 30:  (0.080237 - 0.423006 - 1) * 0.655075 = -0.879599;  IOB = 0.884317
#   t = 75:  (0.501483 - 1.057514 - 1) * 0.347318 = -0.540436;  IOB = 0.558390
#   t = 180: (2.888544 - 2.538033 - 1) * 0.079022 = -0.051322;  IOB = 0.088383


def rapid_6h(capacity=DEFAULT_CAPACITY):
    return IobHistory(InsulinCurve(RAPID_ACTING, 6 * HOUR), capacity)


def test_one_bolus_at_various_ages():
    t0 = 10 * HOUR
    cases = (
        (0, 2000, 2000),
        (60, 2000, 1559),  # 2000 * 0.779296 = 1558.6
        (120, 3000, 1349),  # 3000 * 0.449752 = 1349.3
        (180, 2000, 416),  # 2000 * 0.208171 = 416.3
        (300, 2000, 28),  # 2000 * 0.013918 = 27.8
        (360, 2000, 0),  # at the duration of insulin action
    )
    for age_min, dose, want in cases:
        history = rapid_6h()
        history.add(t0, dose)
        assert history.iob_mu(t0 + age_min * MIN) == want, (age_min, dose)
    ultra = IobHistory(InsulinCurve(ULTRA_RAPID, 5 * HOUR))
    ultra.add(0, 1000)
    assert ultra.iob_mu(30 * MIN) == 884  # 1000 * 0.884317
    assert ultra.iob_mu(75 * MIN) == 558  # 1000 * 0.558390
    assert ultra.iob_mu(180 * MIN) == 88  # 1000 * 0.088383


def test_overlapping_boluses_add_up():
    history = rapid_6h()
    history.add(0, 3000)
    history.add(90 * MIN, 1500)
    # 3000 * 0.449752 (120 min) + 1500 * 0.929521 (30 min) = 1349.26 + 1394.28 = 2743.5
    assert history.iob_mu(120 * MIN) == 2744
    assert len(history) == 2


def test_a_cancelled_bolus_counts_what_was_delivered():
    # 4 U asked for, cancelled after 80 trains of 15 mU, one every 0.5 s: 1.2 U went in.
    history = rapid_6h()
    for k in range(80):
        history.add(k * 500, 15)
    assert history.entries() == [(19_750, 1200)]  # one entry at the mean time of the trains
    # 1200 * 0.779296 = 935.2, an hour after the mean time
    assert history.iob_mu(19_750 + 60 * MIN) == 935


def test_entries_older_than_the_duration_of_action_drop_off():
    history = rapid_6h()
    history.add(0, 5000)
    history.add(5 * HOUR, 1000)
    assert history.iob_mu(6 * HOUR + 30 * MIN) == 609  # only 1000 * 0.609118 (90 min) is left
    assert history.entries() == [(5 * HOUR, 1000)]
    assert history.iob_mu(11 * HOUR) == 0
    assert len(history) == 0


def test_bolus_trains_merge_and_the_total_is_kept():
    history = rapid_6h()
    total = 0
    for k in range(400):  # a 6 U bolus at 1.5 U/min in 0.5 s trains of 15 mU
        history.add(k * 500, 15)
        total += 15
    assert len(history) <= 4
    assert sum(mu for _t, mu in history.entries()) == total == 6000
    history.add(400 * 500, 0)  # a train that completed no whole milliunit
    assert sum(mu for _t, mu in history.entries()) == 6000
    raises(ValueError, history.add, 0, -5)


def test_an_extended_bolus_stays_bounded_and_accurate():
    # 3 U over 4 h, as single motor steps of 1.4725 mU (the carried remainder makes
    # each train 1 or 2 mU), and a 4 U bolus in the middle. The history keeps 48
    # entries of the 2038 trains; its IOB is within 2 mU of the sum over every train
    # on the same curve (the curve itself is checked against the formula above).
    curve = InsulinCurve(RAPID_ACTING, 6 * HOUR)
    history = IobHistory(curve)
    steps = 2037
    given = 0
    for k in range(steps):
        t = k * 7070  # ms: 2037 steps in 4 h
        mu = (k + 1) * 14725 // 10000 - k * 14725 // 10000
        history.add(t, mu)
        given += mu
        if k == steps // 2:
            history.add(t, 4000)
            given += 4000
        assert len(history) <= DEFAULT_CAPACITY
    assert sum(mu for _t, mu in history.entries()) == given == 2999 + 4000
    for now in (2 * HOUR + 5 * MIN, 4 * HOUR, 5 * HOUR + 17 * MIN, 9 * HOUR):
        exact = 0
        for k in range(steps):
            t = k * 7070
            mu = (k + 1) * 14725 // 10000 - k * 14725 // 10000
            exact += mu * curve.remaining(now - t)
            if k == steps // 2:
                exact += 4000 * curve.remaining(now - t)
        want = (exact + FULL // 2) // FULL
        got = history.iob_mu(now)
        assert abs(got - want) <= 2, (now, got, want)


def test_when_full_the_smallest_closest_neighbours_are_merged():
    history = rapid_6h(capacity=3)
    history.add(0, 5000)
    history.add(30 * MIN, 100)
    history.add(32 * MIN, 100)
    history.add(120 * MIN, 4000)
    assert history.entries() == [(0, 5000), (31 * MIN, 200), (120 * MIN, 4000)]


def test_an_entry_out_of_order_is_kept_in_time_order():
    history = rapid_6h()
    history.add(60 * MIN, 1000)
    history.add(10 * MIN, 500)
    assert history.entries() == [(10 * MIN, 500), (60 * MIN, 1000)]
    assert MERGE_MS == MIN


def test_changing_the_insulin_changes_the_curve_not_the_doses():
    history = rapid_6h()
    history.add(0, 1000)
    assert history.iob_mu(75 * MIN) == 694  # 1000 * IOB(75) = 0.694263 (rapid, 6 h)
    history.set_curve(InsulinCurve(ULTRA_RAPID, 5 * HOUR))
    assert history.iob_mu(75 * MIN) == 558
    assert history.iob_mu(5 * HOUR) == 0 and len(history) == 0


if __name__ == "__main__":
    for peak in (75, 55):
        for dia in DIAS_MIN:
            raw = b"".join(bytes((v >> 8, v & 255)) for v in expected_table(peak, dia))
            print("    (%d, %d): (" % (peak, dia))
            for k in range(0, len(raw), 16):
                print('        b"' + "".join("\\x%02x" % c for c in raw[k : k + 16]) + '"')
            print("    ),")
