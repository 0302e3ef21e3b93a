"""Bolus amounts, limits and the timing of the extended part."""

from support import raises

from pump.core.bolus import Bolus, check_amount, check_extended_ms
from pump.core.errors import Refused

HOUR = 3_600_000


def test_amount_rules():
    check_amount(2500, 50, 10_000)
    check_amount(10_000, 50, 10_000)
    assert "max bolus" in str(raises(Refused, check_amount, 10_050, 50, 10_000))
    assert "multiple" in str(raises(Refused, check_amount, 2510, 50, 10_000))
    assert "more than 0" in str(raises(Refused, check_amount, 0, 50, 10_000))
    raises(Refused, check_amount, -50, 50, 10_000)
    raises(Refused, check_amount, 2.5, 50, 10_000)
    check_amount(2510, 10, 10_000)  # 0.01 U increment allows it


def test_extended_duration_rules():
    check_extended_ms(HOUR // 2)
    check_extended_ms(8 * HOUR)
    for bad in (0, HOUR // 2 - 60_000, 8 * HOUR + HOUR // 2, HOUR + 60_000, 1.5):
        raises(Refused, check_extended_ms, bad)


def test_extended_part_falls_due_in_proportion_to_time():
    b = Bolus("extended", 3000, 0, 2037, 1000, 2 * HOUR)
    assert b.extended_due(1000) == 0
    assert b.extended_due(1000 + HOUR) == 2037 // 2
    assert b.extended_due(1000 + 2 * HOUR) == 2037
    assert b.extended_due(1000 + 5 * HOUR) == 2037


def test_next_extended_step_time_is_exact():
    b = Bolus("extended", 3000, 0, 7, 0, HOUR)
    t = b.next_extended_ms(0)
    assert b.extended_due(t) == 1 and b.extended_due(t - 1) == 0
    b.ext_done = 1
    t2 = b.next_extended_ms(t)
    assert b.extended_due(t2) == 1 and b.extended_due(t2 - 1) == 0
    b.ext_done = 7
    assert b.next_extended_ms(t2) is None
    assert b.finished()
