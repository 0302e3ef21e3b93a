"""Insulin amounts and rates as a person reads them in the core's messages.

Exact to the milliunit: two decimals, three when the thousandths are not 0. So a
delivered amount reads as its nearest 0.001 U, and a limit or an amount left is never
shown larger than it is (nor smaller). The 16-column screen has room for two decimals
only: ``fmt_units_down`` cuts the third off, so what it shows is never more than there is.
"""


def fmt_units(mu):
    """Milliunits as U: 2500 -> '2.50 U', 25 -> '0.025 U', -1234 -> '-1.234 U'."""
    sign = ""
    if mu < 0:
        sign = "-"
        mu = -mu
    if mu % 10:
        return "%s%d.%03d U" % (sign, mu // 1000, mu % 1000)
    return "%s%d.%02d U" % (sign, mu // 1000, mu % 1000 // 10)


def fmt_choices(mus):
    """Amounts to choose from, as one phrase: (10, 25, 50, 100) -> '0.01, 0.025, 0.05 or
    0.10 U'."""
    texts = [fmt_units(mu)[:-2] for mu in mus]
    return ", ".join(texts[:-1]) + " or " + texts[-1] + " U"


def fmt_rate(mu_per_h):
    """A rate in mU/h as U/h, as exact as ``fmt_units``: 800 -> '0.80 U/h'."""
    return fmt_units(mu_per_h) + "/h"


def fmt_speed(mu_per_min):
    """A bolus speed in mU/min as U/min to 0.1 U (speeds are set in 0.5 U/min): 1500 ->
    '1.5 U/min'."""
    return "%d.%d U/min" % (mu_per_min // 1000, mu_per_min % 1000 // 100)


def fmt_units_down(mu):
    """Milliunits as U with two decimals, cut toward 0, no unit: 2509 -> '2.50'."""
    sign = ""
    if mu < 0:
        sign = "-"
        mu = -mu
    return "%s%d.%02d" % (sign, mu // 1000, mu % 1000 // 10)
