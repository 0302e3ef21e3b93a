"""Bolus calculator: carb ratio, sensitivity and target by time of day, and the suggestion.

The suggestion follows the Bolus Wizard rules (food = carbs / ICR):
- BG above the high target: total = food + max(0, (BG - high) / ISF - IOB); the insulin
  on board only ever cancels correction insulin, never the food part;
- BG below the low target: total = food + (BG - low) / ISF, a negative correction that
  reduces the food part (insulin on board is not used);
- BG in range, or no BG: total = food;
then rounded down to the bolus increment, capped at the max bolus, never below 0.

BG under 70 mg/dL sets LOW_BG and never adds correction insulin: the correction is
the negative one when BG is below the low target, otherwise none (this matters only
when the high target is under 70 mg/dL; the positive correction is then dropped).
The food part is still suggested, reduced by the negative correction; the screen
shows the warning and the person decides.

Doses in mU, BG in whole mg/dL, carbs in whole grams, ratios in 0.1 g/U. Everything is
worked out exactly on a common denominator (ICR x ISF), so 10 g at 15 g/U plus 20 mg/dL
at 60 mg/dL/U is exactly 1.00 U, not 0.99 U. The products exceed small ints: main
loop only.
"""

from pump.core.calc_segments import (  # noqa: F401  (re-exported: the calculator's settings)
    ICR_MAX_DG,
    ICR_MIN_DG,
    ISF_MAX,
    ISF_MIN,
    MAX_SEGMENTS,
    TARGET_MAX,
    TARGET_MIN,
    CalculatorSettings,
    check_icr,
    check_isf,
    check_targets,
)
from pump.core.errors import Refused
from pump.core.fmt import fmt_choices, fmt_units
from pump.core.limits import INCREMENT_CHOICES_MU, MAX_BOLUS_MU

CARBS_MAX_G = 300
BG_MIN = 20  # what a meter or sensor reports, mg/dL
BG_MAX = 600
LOW_BG_MGDL = 70  # below this: low-glucose warning, no correction insulin
MGDL_PER_MMOL_X1000 = 18_016  # 1 mmol/L of glucose = 18.016 mg/dL

# Suggestion flags (bits).
LOW_BG = 1  # BG under 70 mg/dL: warn; no correction insulin was added
BELOW_TARGET = 2  # BG under the low target: the negative correction reduced the food part
ABOVE_TARGET = 4  # BG over the high target: correction insulin considered
IOB_COVERED = 8  # the insulin on board covers the whole correction
CAPPED_AT_MAX = 16  # the rounded total was above the max bolus
NO_BG = 32  # no BG given: food only
FLAG_NAMES = (
    (LOW_BG, "low_bg"),
    (BELOW_TARGET, "below_target"),
    (ABOVE_TARGET, "above_target"),
    (IOB_COVERED, "iob_covered"),
    (CAPPED_AT_MAX, "capped_at_max"),
    (NO_BG, "no_bg"),
)


# ----- mg/dL and mmol/L ---------------------------------------------------------------------


def mgdl_to_mmol10(mgdl):
    """mg/dL (or mg/dL per U) to tenths of mmol/L, rounded to the nearest: 100 -> 56."""
    return (mgdl * 10_000 + MGDL_PER_MMOL_X1000 // 2) // MGDL_PER_MMOL_X1000


def mmol10_to_mgdl(mmol10):
    """Tenths of mmol/L to whole mg/dL, rounded to the nearest: 56 -> 101.

    Each 0.1 mmol/L step is 1.8 mg/dL, so mmol/L -> mg/dL -> mmol/L gives back the
    value entered.
    """
    return (mmol10 * MGDL_PER_MMOL_X1000 + 5_000) // 10_000


def fmt_mmol10(mmol10):
    """Tenths of mmol/L as text: 56 -> '5.6'."""
    return "%d.%d" % (mmol10 // 10, mmol10 % 10)


def fmt_bg(mgdl, mmol=False):
    """A BG for the screen in the unit the person chose: '101 mg/dL' or '5.6 mmol/L'."""
    if mmol:
        return fmt_mmol10(mgdl_to_mmol10(mgdl)) + " mmol/L"
    return "%d mg/dL" % mgdl


def fmt_icr(icr_dg):
    """A carb ratio as text: 125 -> '12.5 g/U'."""
    return "%d.%d g/U" % (icr_dg // 10, icr_dg % 10)


def _int_in(value, low, high):
    return type(value) is int and low <= value <= high


# ----- the suggestion --------------------------------------------------------------------


class Suggestion:
    """What the calculator worked out; every dose in mU.

    ``food_mu``: carbs / ICR; ``correction_mu``: (BG - target) / ISF, negative below the
    low target, 0 in range, without BG, or when none is allowed; ``iob_mu``: the insulin
    on board subtracted from the correction (0 unless BG is above the high target);
    ``iob_on_board_mu``: the insulin on board given; ``total_mu``: food + correction -
    IOB before rounding (can be negative); ``suggested_mu``: rounded down to the
    increment, capped, never negative. The parts drop their fraction of a mU (toward
    0); ``total_mu`` is the exact total rounded down. ``flags``: bits, see ``has``.
    """

    def __init__(self, food_mu, correction_mu, iob_mu, iob_on_board_mu, total_mu,
                 suggested_mu, flags, settings_used):
        self.food_mu = food_mu
        self.correction_mu = correction_mu
        self.iob_mu = iob_mu
        self.iob_on_board_mu = iob_on_board_mu
        self.total_mu = total_mu
        self.suggested_mu = suggested_mu
        self.flags = flags
        self.icr_dg, self.isf, self.target_low, self.target_high = settings_used

    def has(self, flag):
        return bool(self.flags & flag)

    def flag_names(self):
        return [name for bit, name in FLAG_NAMES if self.flags & bit]

    def describe(self):
        """One line for the event log and the serial console."""
        return "food %s, correction %s, IOB %s, total %s, suggested %s%s" % (
            fmt_units(self.food_mu),
            fmt_units(self.correction_mu),
            fmt_units(self.iob_mu),
            fmt_units(self.total_mu),
            fmt_units(self.suggested_mu),
            "".join(" [" + name + "]" for name in self.flag_names()),
        )


def _toward_zero(num, den):
    """num / den as a whole number, the fraction dropped (den > 0)."""
    return num // den if num >= 0 else -((-num) // den)


def suggest(settings, ms_of_day, carbs_g, bg_mgdl, iob_mu, increment_mu, max_bolus_mu):
    """The Bolus Wizard's suggestion (a Suggestion). Raises Refused for a bad input.

    ``bg_mgdl`` is None when no BG is entered; ``iob_mu`` the insulin on board now;
    ``increment_mu`` and ``max_bolus_mu`` come from the therapy settings.
    """
    if not _int_in(carbs_g, 0, CARBS_MAX_G):
        raise Refused("carbs must be 0 to %d g" % CARBS_MAX_G)
    if bg_mgdl is not None and not _int_in(bg_mgdl, BG_MIN, BG_MAX):
        raise Refused("BG must be %d to %d mg/dL" % (BG_MIN, BG_MAX))
    if type(iob_mu) is not int or iob_mu < 0:
        raise Refused("insulin on board must be 0 mU or more")
    if increment_mu not in INCREMENT_CHOICES_MU:
        raise Refused("bolus increment must be " + fmt_choices(INCREMENT_CHOICES_MU))
    if not _int_in(max_bolus_mu, 1, MAX_BOLUS_MU):
        raise Refused("max bolus must be above 0 and at most %s" % fmt_units(MAX_BOLUS_MU))
    used = settings.at(ms_of_day)
    icr_dg, isf, low, high = used
    # Every amount below is in mU times den, so the sum is exact.
    den = icr_dg * isf
    food = carbs_g * 10_000 * isf  # carbs / (icr_dg / 10) U, in mU
    correction = 0
    subtracted = 0
    flags = 0
    if bg_mgdl is None:
        flags |= NO_BG
    else:
        if bg_mgdl < LOW_BG_MGDL:
            flags |= LOW_BG
        if bg_mgdl < low:
            flags |= BELOW_TARGET
            correction = (bg_mgdl - low) * 1000 * icr_dg
        elif bg_mgdl > high and not flags & LOW_BG:
            flags |= ABOVE_TARGET
            correction = (bg_mgdl - high) * 1000 * icr_dg
            subtracted = iob_mu * den
            if subtracted >= correction:
                subtracted = correction
                flags |= IOB_COVERED
    total_mu = (food + correction - subtracted) // den
    suggested = total_mu // increment_mu * increment_mu if total_mu > 0 else 0
    if suggested > max_bolus_mu:
        suggested = max_bolus_mu // increment_mu * increment_mu
        flags |= CAPPED_AT_MAX
    return Suggestion(
        food // den,
        _toward_zero(correction, den),
        subtracted // den,
        iob_mu,
        total_mu,
        suggested,
        flags,
        used,
    )
