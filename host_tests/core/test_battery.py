"""Battery state follows the voltage with hysteresis and confirmation, read at least every 3 min."""

from support import raises

from pump.core.battery import (
    ALKALINE_3AA,
    DEPLETED,
    LIPO_1S,
    LOW,
    MAX_INTERVAL_MS,
    OK,
    STATE_NAMES,
    BatteryMonitor,
    monitor_for_board,
)
from pump.core.errors import ConfigError

# 3 x AA alkaline on VSYS (see the board file's BATTERY).
LOW_MV = 3600
DEPLETED_MV = 3300


def monitor(**kw):
    return BatteryMonitor(LOW_MV, DEPLETED_MV, hysteresis_mv=100, **kw)


def feed(m, readings, t=0, step=5_000):
    """Readings at ``step`` ms apart; the list of (t, change) for each change."""
    changes = []
    for mv in readings:
        change = m.update(t, mv)
        if change is not None:
            changes.append((t, change))
        t += step
    return changes


def test_low_needs_three_readings_in_a_row():
    m = monitor()
    assert feed(m, [4500, 3590, 3590]) == []
    assert m.state == OK
    assert m.confirming()
    assert feed(m, [3590], t=15_000) == [(15_000, LOW)]
    assert m.state == LOW
    assert not m.confirming()


def test_a_single_noisy_reading_does_not_flap():
    m = monitor()
    assert feed(m, [3650, 3500, 3650, 3200, 3650, 3590, 3650] * 5) == []
    assert m.state == OK


def test_low_clears_only_above_the_hysteresis_band():
    m = monitor()
    feed(m, [3550] * 3)
    assert m.state == LOW
    assert feed(m, [3650] * 10) == []  # above low_mv but inside the 100 mV band
    assert m.state == LOW
    assert feed(m, [3700] * 3) == [(10_000, OK)]


def test_depleted_stops_delivery_and_stays_until_a_fresh_battery():
    m = monitor()
    assert feed(m, [3500, 3500, 3500, 3250, 3250, 3250]) == [(10_000, LOW), (25_000, DEPLETED)]
    assert m.stops_delivery()
    # The drained cells recover a little with the motor stopped: still depleted.
    assert feed(m, [3450] * 5 + [3650] * 5) == []
    assert m.state == DEPLETED
    assert feed(m, [4600] * 3) == [(10_000, OK)]
    assert not m.stops_delivery()


def test_a_sudden_drop_goes_straight_to_depleted():
    m = monitor()
    assert feed(m, [3100, 3100, 3100]) == [(10_000, DEPLETED)]


def test_mixed_low_and_depleted_readings_must_agree_before_a_change():
    m = monitor()
    assert feed(m, [3500, 3250, 3500, 3250]) == []
    assert m.state == OK


def test_read_every_minute_and_every_5_s_while_confirming():
    m = monitor()
    assert m.due(0)  # never read yet
    m.update(0, 4500)
    assert not m.due(59_999)
    assert m.ms_until_due(30_000) == 30_000
    assert m.due(60_000)
    m.update(60_000, 3500)  # a change to confirm: read again soon
    assert m.ms_until_due(60_000) == 5_000
    m.update(65_000, 4500)  # the noise is forgotten
    assert m.ms_until_due(65_000) == 60_000


def test_a_day_of_readings_keeps_the_3_minute_cadence():
    m = monitor()
    t = 0
    last = None
    longest = 0
    while t < 24 * 3_600_000:
        if m.due(t):
            if last is not None and t - last > longest:
                longest = t - last
            m.update(t, 4400 - t // 100_000)  # slow discharge, crosses low near 22 h
            last = t
        t += 5_000
    assert longest <= MAX_INTERVAL_MS
    assert longest == 60_000
    assert m.state == LOW


def test_settings_are_checked():
    raises(ConfigError, BatteryMonitor, 3300, 3600)  # depleted above low
    raises(ConfigError, BatteryMonitor, 3600, 3300, -1)
    raises(ConfigError, BatteryMonitor, 3600, 3300, 100, 0)
    raises(ConfigError, BatteryMonitor, 3600, 3300, 100, 3, MAX_INTERVAL_MS + 1)
    raises(ConfigError, BatteryMonitor, 3600, 3300, 100, 3, 60_000, 70_000)
    assert STATE_NAMES[DEPLETED] == "depleted"


def test_monitor_from_the_board_file():
    m = monitor_for_board(ALKALINE_3AA)
    assert (m.low_mv, m.depleted_mv, m.hysteresis_mv) == (3600, 3300, 100)
    assert monitor_for_board(LIPO_1S).low_mv == 3500
    m = monitor_for_board({"low_mv": 3500, "depleted_mv": 3200, "interval_ms": 30_000})
    assert m.interval_ms == 30_000 and m.hysteresis_mv == 100
    err = raises(ConfigError, monitor_for_board, {"low_mv": 3600, "depleted": 3300})
    assert "'depleted'" in str(err)
    raises(ConfigError, monitor_for_board, {"low_mv": 3.6, "depleted_mv": 3300})
    raises(ConfigError, monitor_for_board, {"low_mv": 3600, "depleted_mv": 3300,
                                            "interval_ms": 600_000})
