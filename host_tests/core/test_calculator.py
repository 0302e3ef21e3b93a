"""Bolus calculator: settings by time of day, their limits, and the Bolus Wizard's suggestion."""

from support import raises

from pump.core.calculator import (
    ABOVE_TARGET,
    BELOW_TARGET,
    CAPPED_AT_MAX,
    IOB_COVERED,
    LOW_BG,
    NO_BG,
    CalculatorSettings,
    fmt_bg,
    fmt_icr,
    fmt_mmol10,
    mgdl_to_mmol10,
    mmol10_to_mgdl,
    suggest,
)
from pump.core.errors import Refused
from pump.core.schedule import parse_hhmm

MIN = 60_000
HOUR = 3_600_000
NOON = 12 * HOUR


def settings():
    """Three segments each: from 00:00, from 12:00 and from 23:30."""
    return CalculatorSettings(
        icr=[(0, 120), (parse_hhmm("12:00"), 100), (parse_hhmm("23:30"), 150)],
        isf=[(0, 50), (24, 40), (47, 60)],
        targets=[(0, 90, 120), (24, 100, 140), (47, 110, 150)],
    )


def wizard(ms_of_day, carbs_g, bg, iob_mu=0, increment_mu=50, max_bolus_mu=10_000, s=None):
    return suggest(s or settings(), ms_of_day, carbs_g, bg, iob_mu, increment_mu, max_bolus_mu)


# ----- settings by time of day -------------------------------------------------------------


def test_each_segment_boundary():
    s = settings()
    assert s.at(0) == (120, 50, 90, 120)  # 00:00
    assert s.at(NOON - 1) == (120, 50, 90, 120)  # 11:59:59.999
    assert s.at(NOON) == (100, 40, 100, 140)  # 12:00
    assert s.at(23 * HOUR + 30 * MIN - 1) == (100, 40, 100, 140)  # 23:29:59.999
    assert s.at(23 * HOUR + 30 * MIN) == (150, 60, 110, 150)  # 23:30
    assert s.at(24 * HOUR - 1) == (150, 60, 110, 150)  # just before midnight
    assert s.at(24 * HOUR) == (120, 50, 90, 120)  # midnight again
    # 60 g: 60 / 12 = 5.00 U, 60 / 10 = 6.00 U, 60 / 15 = 4.00 U
    assert wizard(NOON - 1, 60, None).suggested_mu == 5000
    assert wizard(NOON, 60, None).suggested_mu == 6000
    assert wizard(24 * HOUR - 1, 60, None).suggested_mu == 4000


def test_every_value_is_checked_and_a_refusal_changes_nothing():
    s = settings()
    before = (list(s.icr), list(s.isf), list(s.targets))
    cases = (
        (s.set_icr, [(0, 9)], "ICR at 00:00 must be 1.0 to 150.0 g/U"),
        (s.set_icr, [(0, 1501)], "ICR at 00:00 must be 1.0 to 150.0 g/U"),
        (s.set_icr, [(0, 100), (6, 12.5)], "ICR at 03:00 must be"),
        (s.set_isf, [(0, 4)], "ISF at 00:00 must be 5 to 400 mg/dL per U"),
        (s.set_isf, [(0, 50), (12, 401)], "ISF at 06:00 must be 5 to 400"),
        (s.set_targets, [(0, 59, 120)], "target low at 00:00 must be 60 to 250 mg/dL"),
        (s.set_targets, [(0, 100, 251)], "target high at 00:00 must be 60 to 250 mg/dL"),
        (s.set_targets, [(0, 140, 120)], "low 140 mg/dL is above high 120 mg/dL"),
        (s.set_targets, [(0, 100)], "must be (start, low, high)"),
        (s.set_icr, [(1, 100)], "the first segment must start at 00:00"),
        (s.set_icr, [(0, 100), (12, 90), (12, 80)], "segment 06:00 is not after"),
        (s.set_isf, [(0, 50), (20, 40), (10, 45)], "segment 05:00 is not after"),
        (s.set_isf, [(0, 50), (48, 40)], "segment start 48 is not a half-hour"),
        (s.set_icr, [], "ICR has 1 to 8 segments"),
        (s.set_icr, [(i, 100) for i in range(9)], "ICR has 1 to 8 segments"),
    )
    for setter, segments, reason in cases:
        assert reason in str(raises(Refused, setter, segments)), (segments, reason)
        assert (s.icr, s.isf, s.targets) == before
    raises(Refused, CalculatorSettings, [(0, 100)], [(0, 50)], [(0, 130, 120)])


def test_the_limits_themselves_are_accepted():
    s = settings()
    s.set_icr([(0, 10), (2, 1500)])  # 1.0 and 150.0 g/U
    s.set_isf([(i * 6, 5 + i) for i in range(7)] + [(47, 400)])  # 8 segments
    s.set_targets([(0, 60, 60), (1, 250, 250), (2, 100, 100)])  # low == high is a single target
    assert s.at(30 * MIN) == (10, 5, 250, 250)
    assert s.at(23 * HOUR + 45 * MIN) == (1500, 400, 100, 100)


# ----- the suggestion, against hand computations -----------------------------------------
# From 12:00: ICR 10.0 g/U, ISF 40 mg/dL per U, target 100-140 mg/dL; increment 0.05 U.


def test_no_bg_is_food_only():
    s = wizard(NOON, 45, None, iob_mu=2000)  # 45 / 10 = 4.5 U; IOB not used
    assert (s.food_mu, s.correction_mu, s.iob_mu, s.total_mu, s.suggested_mu) == (
        4500, 0, 0, 4500, 4500
    )
    assert s.flags == NO_BG and s.iob_on_board_mu == 2000


def test_in_range_is_food_only_whatever_the_iob():
    for bg in (100, 120, 140):
        s = wizard(NOON, 45, bg, iob_mu=2000)
        assert (s.food_mu, s.correction_mu, s.iob_mu, s.suggested_mu, s.flags) == (
            4500, 0, 0, 4500, 0
        )


def test_high_bg_adds_the_correction_less_the_insulin_on_board():
    # (220 - 140) / 40 = 2.0 U correction
    s = wizard(NOON, 45, 220)
    assert (s.food_mu, s.correction_mu, s.iob_mu, s.suggested_mu) == (4500, 2000, 0, 6500)
    assert s.flags == ABOVE_TARGET
    # 4.5 + (2.0 - 0.8) = 5.7 U
    s = wizard(NOON, 45, 220, iob_mu=800)
    assert (s.correction_mu, s.iob_mu, s.total_mu, s.suggested_mu) == (2000, 800, 5700, 5700)
    # IOB 3.0 U covers the 2.0 U correction but never the food: 4.5 U
    s = wizard(NOON, 45, 220, iob_mu=3000)
    assert (s.correction_mu, s.iob_mu, s.total_mu, s.suggested_mu) == (2000, 2000, 4500, 4500)
    assert s.flags == ABOVE_TARGET | IOB_COVERED
    assert s.flag_names() == ["above_target", "iob_covered"]
    # Correction alone, no carbs: (300 - 140) / 40 = 4.0 U - 1.234 U = 2.766 -> 2.75 U
    s = wizard(NOON, 0, 300, iob_mu=1234)
    assert (s.total_mu, s.suggested_mu) == (2766, 2750)


def test_below_the_low_target_the_negative_correction_reduces_the_food():
    # (80 - 100) / 40 = -0.5 U; 4.5 - 0.5 = 4.0 U; IOB is not used
    s = wizard(NOON, 45, 80, iob_mu=2000)
    assert (s.food_mu, s.correction_mu, s.iob_mu, s.total_mu, s.suggested_mu) == (
        4500, -500, 0, 4000, 4000
    )
    assert s.flags == BELOW_TARGET


def test_bg_below_70_warns_and_never_adds_correction_insulin():
    # 60 mg/dL: (60 - 100) / 40 = -1.0 U; 4.5 - 1.0 = 3.5 U, with the warning
    s = wizard(NOON, 45, 60)
    assert (s.correction_mu, s.suggested_mu) == (-1000, 3500)
    assert s.flags == LOW_BG | BELOW_TARGET and s.has(LOW_BG)
    # No carbs: (55 - 100) / 40 = -1.125 U -> nothing to give, never below 0
    s = wizard(NOON, 0, 55)
    assert (s.total_mu, s.suggested_mu) == (-1125, 0)
    # A high target under 70: BG 68 is above it, but no correction insulin below 70.
    low_targets = settings()
    low_targets.set_targets([(0, 60, 65)])
    s = wizard(0, 30, 68, iob_mu=500, s=low_targets)  # 30 / 12 = 2.5 U, food only
    assert (s.correction_mu, s.iob_mu, s.suggested_mu, s.flags) == (0, 0, 2500, LOW_BG)
    # 69 is low, 70 is not: at 00:00 (target 90-120) BG 70 is below target, no warning.
    assert wizard(0, 30, 69).has(LOW_BG) and not wizard(0, 30, 70).has(LOW_BG)


def test_rounded_down_to_each_increment():
    # 00:00: 37 g / 12 g/U = 3.0833 U
    for increment, want in ((10, 3080), (25, 3075), (50, 3050), (100, 3000)):
        s = wizard(0, 37, None, increment_mu=increment)
        assert (s.total_mu, s.suggested_mu) == (3083, want), increment


def test_the_parts_are_added_exactly_before_rounding():
    # 23:30: ICR 15 g/U, ISF 60, target 110-150. 10 g / 15 = 0.6667 U and
    # (170 - 150) / 60 = 0.3333 U: exactly 1.00 U (whole-mU parts would give 0.999 -> 0.95).
    s = wizard(23 * HOUR + 45 * MIN, 10, 170)
    assert (s.food_mu, s.correction_mu, s.total_mu, s.suggested_mu) == (666, 333, 1000, 1000)


def test_capped_at_the_max_bolus():
    s = wizard(NOON, 150, None)  # 150 / 10 = 15 U, max 10 U
    assert (s.total_mu, s.suggested_mu) == (15_000, 10_000)
    assert s.flags == NO_BG | CAPPED_AT_MAX
    s = wizard(NOON, 300, 400, max_bolus_mu=25_000)  # 30 U + 6.5 U
    assert (s.total_mu, s.suggested_mu, s.has(CAPPED_AT_MAX)) == (36_500, 25_000, True)
    s = wizard(NOON, 100, None)  # exactly the max: not capped
    assert (s.suggested_mu, s.has(CAPPED_AT_MAX)) == (10_000, False)
    s = wizard(NOON, 100, 141, increment_mu=100)  # 10.025 U rounds down to 10.0 U: not capped
    assert (s.total_mu, s.suggested_mu, s.has(CAPPED_AT_MAX)) == (10_025, 10_000, False)


def test_inputs_out_of_range_are_refused():
    cases = (
        ((NOON, -1, None), "carbs must be 0 to 300 g"),
        ((NOON, 301, None), "carbs must be 0 to 300 g"),
        ((NOON, 4.5, None), "carbs must be 0 to 300 g"),
        ((NOON, 45, 19), "BG must be 20 to 600 mg/dL"),
        ((NOON, 45, 601), "BG must be 20 to 600 mg/dL"),
        ((NOON, 45, "120"), "BG must be 20 to 600 mg/dL"),
    )
    for args, reason in cases:
        assert reason in str(raises(Refused, wizard, *args)), args
    assert "insulin on board" in str(raises(Refused, wizard, NOON, 45, 120, -1))
    assert "increment" in str(raises(Refused, wizard, NOON, 45, 120, 0, 30))
    assert "max bolus" in str(raises(Refused, wizard, NOON, 45, 120, 0, 50, 0))
    assert "max bolus" in str(raises(Refused, wizard, NOON, 45, 120, 0, 50, 25_050))
    assert wizard(NOON, 0, 20).suggested_mu == 0 and wizard(NOON, 300, 600, 0, 50, 25_000)


def test_describe_reads_as_a_log_line():
    text = wizard(NOON, 45, 220, iob_mu=3000).describe()
    assert text == (
        "food 4.50 U, correction 2.00 U, IOB 2.00 U, total 4.50 U, suggested 4.50 U"
        " [above_target] [iob_covered]"
    )


# ----- mmol/L, for display -----------------------------------------------------------------


def test_mmol_conversions_round_to_the_nearest():
    # 100 / 18.016 = 5.551 -> 5.6; 70 / 18.016 = 3.885 -> 3.9; ISF 50 -> 2.775 -> 2.8
    assert (mgdl_to_mmol10(100), mgdl_to_mmol10(70), mgdl_to_mmol10(50)) == (56, 39, 28)
    # 5.5 * 18.016 = 99.09 -> 99; 10.0 * 18.016 = 180.16 -> 180; 3.9 -> 70.26 -> 70
    assert (mmol10_to_mgdl(55), mmol10_to_mgdl(100), mmol10_to_mgdl(39)) == (99, 180, 70)
    assert fmt_mmol10(56) == "5.6" and fmt_mmol10(3) == "0.3"
    assert fmt_bg(100) == "100 mg/dL" and fmt_bg(100, mmol=True) == "5.6 mmol/L"
    assert fmt_icr(125) == "12.5 g/U"


def test_an_mmol_value_entered_comes_back_unchanged():
    for mmol10 in range(3, 334):  # ISF 0.3 mmol/L per U up to BG 33.3 mmol/L
        assert mgdl_to_mmol10(mmol10_to_mgdl(mmol10)) == mmol10, mmol10
    for mgdl in range(5, 601):  # and mg/dL -> mmol/L moves by at most 0.9 mg/dL
        assert abs(mmol10_to_mgdl(mgdl_to_mmol10(mgdl)) - mgdl) <= 1, mgdl


# ----- a table worked out by hand: dose histories, each ratio segment, every BG case ------

# Dose histories as (minutes ago, mU) and their insulin on board with the rapid-acting
# curve over 6 h: none; 2 U just given (all of it on board); 3 U 7 h ago (gone); 1 U
# 2 h ago and 0.5 U 1.5 h ago (754 mU: the published formula gives 754.31 mU).
HISTORIES = {
    "none": ((), 0),
    "just given": (((0, 2000),), 2000),
    "expired": (((420, 3000),), 0),
    "two recent": (((120, 1000), (90, 500)), 754),
}

# time, carbs g, BG mg/dL (None: not entered), history, suggested mU, flags.
# Segments: 00:00 12.0 g/U, 50 mg/dL/U, 90-120; 12:00 10.0 g/U, 40, 100-140;
# 23:30 15.0 g/U, 60, 110-150. Increment 0.05 U, max bolus 10 U.
WIZARD_TABLE = (
    # food 60/12 = 5.00 U; correction (200 - 120) / 50 = 1.60 U.
    ("08:00", 60, 200, "none", 6600, ABOVE_TARGET),
    # the 2 U on board cover the 1.60 U correction, never the food.
    ("08:00", 60, 200, "just given", 5000, ABOVE_TARGET | IOB_COVERED),
    ("08:00", 60, 200, "expired", 6600, ABOVE_TARGET),
    # 12:00 segment: 45/10 = 4.50 U; BG in range: food only, IOB not used.
    ("13:00", 45, 120, "two recent", 4500, 0),
    # below the low target: (80 - 100) / 40 = -0.50 U.
    ("13:00", 45, 80, "none", 4000, BELOW_TARGET),
    # under 70: warned, (60 - 100) / 40 = -1.00 U, no correction insulin.
    ("13:00", 45, 60, "just given", 3500, BELOW_TARGET | LOW_BG),
    # 23:30 segment: 30/15 = 2.00 U; no BG: food only.
    ("23:30", 30, None, "just given", 2000, NO_BG),
    # (250 - 150) / 60 = 1.6667 U less 0.754 U on board: 2.9127 U, down to 2.90 U.
    ("23:30", 30, 250, "two recent", 2900, ABOVE_TARGET),
    # nothing to eat, in range: nothing.
    ("08:00", 0, 95, "none", 0, 0),
)


def test_suggestions_against_a_table_worked_out_by_hand():
    from pump.core.iob import RAPID_ACTING, InsulinCurve, IobHistory

    now = 10 * HOUR
    for at, carbs, bg, history, expected_mu, flags in WIZARD_TABLE:
        doses, on_board = HISTORIES[history]
        iob = IobHistory(InsulinCurve(RAPID_ACTING, 6 * HOUR))
        for minutes_ago, mu in doses:
            iob.add(now - minutes_ago * MIN, mu)
        assert iob.iob_mu(now) == on_board, history
        result = wizard(parse_hhmm(at) * 30 * MIN, carbs, bg, on_board)
        case = (at, carbs, bg, history)
        assert result.suggested_mu == expected_mu, (case, result.describe())
        assert result.flags == flags, (case, result.flag_names())
