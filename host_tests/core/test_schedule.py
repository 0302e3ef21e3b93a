"""Basal profiles, temp basal rules and the interrupt-side basal accumulator."""

from support import mechanics, raises

from pump.core.errors import Refused
from pump.core.schedule import (
    DAY_MS,
    SLOT_MS,
    TEMP_ABSOLUTE,
    TEMP_PERCENT,
    BasalProfile,
    BasalTicker,
    TempBasal,
    check_temp,
    parse_hhmm,
)
from pump.core.units import basal_num

MAX_BASAL = 5000


def test_hhmm_parsing_accepts_only_half_hours():
    assert parse_hhmm("00:00") == 0
    assert parse_hhmm("06:30") == 13
    assert parse_hhmm("23:30") == 47
    for bad in ("24:00", "06:15", "6:30", "ab:cd", 630):
        raises(Refused, parse_hhmm, bad)


def test_profile_rate_follows_segments_by_time_of_day():
    p = BasalProfile("Weekday", [(0, 800), (13, 1250), (44, 600)], MAX_BASAL)
    assert p.rate_at(0) == 800
    assert p.rate_at(13 * SLOT_MS - 1) == 800
    assert p.rate_at(13 * SLOT_MS) == 1250
    assert p.rate_at(44 * SLOT_MS) == 600
    assert p.rate_at(DAY_MS - 1) == 600
    assert p.ms_to_next_boundary(0) == 13 * SLOT_MS
    assert p.ms_to_next_boundary(13 * SLOT_MS) == 31 * SLOT_MS
    assert p.ms_to_next_boundary(44 * SLOT_MS + 5) == 4 * SLOT_MS - 5  # midnight next


def test_profile_daily_total():
    p = BasalProfile("Flat", [(0, 1000)], MAX_BASAL)
    assert p.daily_total_mu() == 24_000
    p = BasalProfile("Two", [(0, 800), (13, 1250)], MAX_BASAL)
    assert p.daily_total_mu() == 800 * 13 // 2 + 1250 * 35 // 2


def test_profile_accepts_48_segments_and_refuses_49():
    segments = [(slot, 10 * slot) for slot in range(48)]
    assert len(BasalProfile("Full", segments, MAX_BASAL).segments) == 48
    raises(Refused, BasalProfile, "Full", segments + [(47, 10)], MAX_BASAL)


def test_profile_refuses_bad_segments_and_names():
    cases = [
        ("", [(0, 800)]),
        ("A name far too long", [(0, 800)]),
        ("P", []),
        ("P", [(1, 800)]),  # first segment not at midnight
        ("P", [(0, 800), (0, 900)]),  # not increasing
        ("P", [(0, 805)]),  # not 0.01 U/h
        ("P", [(0, -10)]),
        ("P", [(0, 5010)]),  # above max basal
        ("P", [(0, 800), (48, 800)]),
    ]
    for name, segments in cases:
        raises(Refused, BasalProfile, name, segments, MAX_BASAL)
    err = raises(Refused, BasalProfile, "P", [(0, 800), (12, 6000)], MAX_BASAL)
    assert "06:00" in str(err) and "max basal" in str(err)


def test_temp_basal_rates():
    assert TempBasal(TEMP_PERCENT, 150, 0, SLOT_MS).rate(800) == 1200
    assert TempBasal(TEMP_PERCENT, 0, 0, SLOT_MS).rate(800) == 0
    assert TempBasal(TEMP_ABSOLUTE, 350, 0, SLOT_MS).rate(800) == 350


def test_temp_basal_limits():
    p = BasalProfile("P", [(0, 1000), (20, 2500)], MAX_BASAL)
    check_temp(TEMP_PERCENT, 200, 2 * SLOT_MS, p, MAX_BASAL)
    check_temp(TEMP_ABSOLUTE, 0, 48 * SLOT_MS, p, MAX_BASAL)
    bad = [
        (TEMP_PERCENT, 251, SLOT_MS),
        (TEMP_PERCENT, -1, SLOT_MS),
        (TEMP_PERCENT, 210, SLOT_MS),  # 2.5 U/h x 210 % > 5 U/h max basal
        (TEMP_ABSOLUTE, 5010, SLOT_MS),
        (TEMP_ABSOLUTE, 15, SLOT_MS),
        (TEMP_PERCENT, 50, SLOT_MS - 60_000),
        (TEMP_PERCENT, 50, 49 * SLOT_MS),
        (TEMP_PERCENT, 50, SLOT_MS + 60_000),
        (7, 50, SLOT_MS),
    ]
    for kind, value, duration in bad:
        raises(Refused, check_temp, kind, value, duration, p, MAX_BASAL)


def ideal_steps(rate_mu_per_h, elapsed_ms, mech):
    """Exact whole steps of a constant rate over a time: floor(rate*t / step)."""
    return rate_mu_per_h * elapsed_ms * 1_000_000 // (3_600_000 * mech.nu_per_step)


def test_ticker_accrues_exactly_one_hour():
    m = mechanics()
    ticker = BasalTicker(m.basal_den())
    ticker.set_num(basal_num(1000))
    ticker.advance(3_600_000)
    assert ticker.take_due() == ideal_steps(1000, 3_600_000, m) == 679


def test_ticker_late_callbacks_catch_up_without_drift():
    m = mechanics()
    on_time = BasalTicker(m.basal_den())
    late = BasalTicker(m.basal_den())
    for t in (on_time, late):
        t.set_num(basal_num(1250))
    for _ in range(3600):
        on_time.advance(1000)
    elapsed = 0
    lateness = (37, 4000, 1, 250_000, 12)
    i = 0
    while elapsed < 3_600_000:
        chunk = lateness[i % len(lateness)]
        chunk = min(chunk, 3_600_000 - elapsed)
        late.advance(chunk)
        elapsed += chunk
        i += 1
    assert late.due == on_time.due == ideal_steps(1250, 3_600_000, m)
    assert late.acc == on_time.acc


def test_ticker_wakes_exactly_when_the_next_step_is_due():
    m = mechanics()
    ticker = BasalTicker(m.basal_den())
    ticker.set_num(basal_num(1000))
    wait = ticker.ms_until_next_event()  # 1 step at 1 U/h every 5301 ms
    ticker.advance(wait - 1)
    assert ticker.due == 0
    ticker.advance(1)
    assert ticker.due == 1
    assert wait == 5301


def test_ticker_applies_an_armed_change_on_its_exact_millisecond():
    m = mechanics()
    ticker = BasalTicker(m.basal_den())
    ticker.set_num(basal_num(1000))
    ticker.arm(1_800_000, basal_num(3000))
    ticker.advance(5_400_000)  # one late call spanning the change
    expected = (1000 * 1_800_000 + 3000 * 3_600_000) * 1_000_000 // (3_600_000 * m.nu_per_step)
    assert ticker.due == expected
    assert ticker.changes == 1
    assert ticker.num == basal_num(3000)


def test_ticker_zero_rate_sleeps_at_most_a_minute():
    m = mechanics()
    ticker = BasalTicker(m.basal_den())
    assert ticker.ms_until_next_event() == 60_000
    ticker.arm(1234, basal_num(500))
    assert ticker.ms_until_next_event() == 1234


def test_ticker_values_stay_small_ints_at_the_highest_rate():
    m = mechanics(pl=400_000)  # a coarse 10 mL syringe build
    ticker = BasalTicker(m.basal_den())
    ticker.set_num(basal_num(15_000))
    biggest = 0
    for elapsed in (1, 999, 1000, 1001, 60_000, 86_400_000):
        ticker.advance(elapsed)
        biggest = max(biggest, ticker.acc + 1000 * ticker.num, ticker.due)
    assert biggest < 2**30
