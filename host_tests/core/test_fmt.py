"""One way to write insulin for a person: exact to the milliunit, never rounded up."""

from support import raises

from pump.core.bolus import check_amount
from pump.core.errors import Refused
from pump.core.fmt import fmt_choices, fmt_rate, fmt_speed, fmt_units, fmt_units_down
from pump.core.limits import INCREMENT_CHOICES_MU
from pump.core.protocol_args import ArgError, parse_mu


def test_amounts_read_exactly_to_the_milliunit():
    assert fmt_units(2500) == "2.50 U"
    assert fmt_units(0) == "0.00 U"
    assert fmt_units(25) == "0.025 U"
    assert fmt_units(1999) == "1.999 U"  # not rounded down to 1.99, nor up to 2.00
    assert fmt_units(10_025) == "10.025 U"
    assert fmt_units(-1234) == "-1.234 U"
    assert fmt_units(-50) == "-0.05 U"
    assert fmt_rate(800) == "0.80 U/h"
    assert fmt_rate(15_000) == "15.00 U/h"
    assert fmt_rate(1_005) == "1.005 U/h"
    assert fmt_choices(INCREMENT_CHOICES_MU) == "0.01, 0.025, 0.05 or 0.10 U"
    assert fmt_speed(1500) == "1.5 U/min" and fmt_speed(15_000) == "15.0 U/min"


def test_the_core_and_the_protocol_write_an_amount_alike():
    refusal = raises(Refused, check_amount, 10_025, 25, 10_000)
    assert "10.025 U is above the max bolus 10.00 U" in str(refusal)
    wire = raises(ArgError, parse_mu, "25001", "bolus", 1, 25_000)
    assert str(wire) == "bolus must be from 0.001 U to 25.00 U, got 25.001 U"
    rate = raises(ArgError, parse_mu, "16000", "temp rate", 0, 15_000, "/h")
    assert str(rate) == "temp rate must be from 0.00 U/h to 15.00 U/h, got 16.00 U/h"


def test_the_screen_s_two_decimals_never_show_more_than_there_is():
    assert fmt_units_down(2500) == "2.50"
    assert fmt_units_down(2509) == "2.50"  # not 2.51
    assert fmt_units_down(9) == "0.00"
    assert fmt_units_down(-1234) == "-1.23"
