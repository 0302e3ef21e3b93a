"""The delivery monitor: pulses counted against pulses reported; rolling hour and day limits."""

from support import mechanics, raises

from pump.core import safety
from pump.core.errors import Refused
from pump.core.safety import DeliveryMonitor

MIN = 60_000
HOUR = 3_600_000


def monitor(hour_mu=10_000, day_mu=40_000):
    mech = mechanics()
    return DeliveryMonitor(mech, hour_mu, day_mu), mech


def test_pulses_counted_must_equal_pulses_reported():
    m, _mech = monitor()
    m.reported(100)
    m.counted(100)
    assert m.breach(0) is None
    m.reported(50)
    m.counted(51)  # one pulse more at the motor than the record says
    assert m.mismatch() == 1
    assert m.breach(0) == safety.MISMATCH


def test_hourly_limit_counts_a_rolling_hour():
    m, mech = monitor(hour_mu=10_000)
    steps_5u = mech.steps_for_mu(5_000, 0)[0]
    m.delivered(0, steps_5u)
    m.delivered(30 * MIN, steps_5u)
    assert m.breach(30 * MIN) is None
    assert m.headroom_mu(30 * MIN) < 5
    m.delivered(59 * MIN, 10)
    assert m.breach(59 * MIN) == safety.LIMIT_HOUR
    # An hour after the first 5 U it has left the window.
    assert m.breach(61 * MIN) is None
    assert 4_900 < m.headroom_mu(61 * MIN) <= 5_000


def test_daily_limit_never_counts_less_than_the_last_24_hours():
    m, mech = monitor(hour_mu=10_000, day_mu=40_000)
    for h in range(0, 9):
        m.delivered(h * HOUR + 10 * MIN, mech.steps_for_mu(5_000, 0)[0])
    assert m.breach(8 * HOUR + 11 * MIN) == safety.LIMIT_DAY
    # 24 h after the first dose its insulin may drop out, not before.
    assert m.day_mu(24 * HOUR + 9 * MIN) > 40_000
    assert m.day_mu(25 * HOUR + 11 * MIN) <= 40_000


def test_limits_are_checked_and_a_refusal_changes_nothing():
    m, _mech = monitor()
    for hour, day in ((999, 40_000), (40_001, 80_000), (10_000, 4_999), (20_000, 10_000)):
        raises(Refused, m.set_limits, hour, day)
    assert (m.max_hour_mu, m.max_day_mu) == (10_000, 40_000)
    m.set_limits(12_000, 60_000)
    assert (m.max_hour_mu, m.max_day_mu) == (12_000, 60_000)


def test_a_long_gap_empties_the_windows():
    m, mech = monitor()
    m.delivered(0, mech.steps_for_mu(9_000, 0)[0])
    assert m.hour_mu(3 * 24 * HOUR) == 0
    assert m.day_mu(3 * 24 * HOUR) == 0
