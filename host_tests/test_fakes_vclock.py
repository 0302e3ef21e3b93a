"""Tests of the virtual clock: event order, ticks wrap-around, calendar functions."""

import sys

import pytest

from sim import hw

hw.install()

import vclock  # noqa: E402

MS = vclock.NS_PER_MS


@pytest.fixture
def clock():
    return hw.reset()


def test_events_run_in_time_then_scheduling_order(clock):
    ran = []
    clock.call_at(5 * MS, lambda: ran.append(("b", clock.now_ns)))
    clock.call_at(2 * MS, lambda: ran.append(("a", clock.now_ns)))
    clock.call_at(5 * MS, lambda: ran.append(("c", clock.now_ns)))
    handle = clock.call_later_ns(3 * MS, lambda: ran.append(("x", clock.now_ns)))
    handle.cancel()
    assert clock.next_due_ns() == 2 * MS
    clock.run_until(10 * MS)
    assert ran == [("a", 2 * MS), ("b", 5 * MS), ("c", 5 * MS)]
    assert clock.now_ns == 10 * MS
    assert clock.next_due_ns() is None
    assert clock.run_next() is False


def test_run_next_advances_to_the_event(clock):
    clock.call_at(7, lambda: None)
    assert clock.run_next() is True
    assert clock.now_ns == 7


def test_ticks_ms_wraps_ten_minutes_after_start(clock):
    start = clock.ticks_ms()
    assert start > vclock.TICKS_PERIOD - 700000
    clock.sleep_ms(11 * 60 * 1000)
    after = clock.ticks_ms()
    assert after < start  # raw comparison is wrong across the wrap...
    assert clock.ticks_diff(after, start) == 11 * 60 * 1000  # ...ticks_diff is right
    assert clock.ticks_diff(start, after) == -11 * 60 * 1000


def test_ticks_us_wraps_too(clock):
    start = clock.ticks_us()
    clock.sleep(700)
    assert clock.ticks_us() < start
    assert clock.ticks_diff(clock.ticks_us(), start) == 700 * 1000000 - vclock.TICKS_PERIOD


@pytest.mark.parametrize(
    "a,b,expected",
    [
        (5, 3, 2),
        (3, 5, -2),
        (0, vclock.TICKS_MAX, 1),
        (vclock.TICKS_MAX, 0, -1),
        (vclock.TICKS_HALFPERIOD - 1, 0, vclock.TICKS_HALFPERIOD - 1),
        (vclock.TICKS_HALFPERIOD, 0, -vclock.TICKS_HALFPERIOD),
    ],
)
def test_ticks_diff_matches_micropython(clock, a, b, expected):
    assert clock.ticks_diff(a, b) == expected


def test_ticks_add_wraps_and_rejects_overflow(clock):
    assert clock.ticks_add(vclock.TICKS_MAX, 1) == 0
    assert clock.ticks_add(0, -1) == vclock.TICKS_MAX
    assert clock.ticks_add(100, 50) == 150
    for t in (0, 1, vclock.TICKS_HALFPERIOD, vclock.TICKS_MAX):
        for d in (-vclock.TICKS_HALFPERIOD, -7, 0, 7, vclock.TICKS_HALFPERIOD - 1):
            assert clock.ticks_add(t, d) == (t + d) % vclock.TICKS_PERIOD
    with pytest.raises(OverflowError):
        clock.ticks_add(0, vclock.TICKS_HALFPERIOD)


def test_ticks_are_cached_not_recomputed(clock):
    clock.now_ns = 10**15  # bypassing _set_now must not change ticks
    assert clock.ticks_ms() == vclock.VirtualClock().ticks_ms()


def test_calendar_round_trip():
    assert vclock.gmtime(0) == (2000, 1, 1, 0, 0, 0, 5, 1)
    assert vclock.gmtime(vclock.RTC_POWER_ON_SECS)[:3] == (2021, 1, 1)
    t = (2024, 2, 29, 13, 45, 7, 3, 60)
    secs = vclock.mktime(t)
    assert vclock.gmtime(secs) == t
    for secs in range(0, 40 * 366 * 86400, 86400 * 37 + 3601):
        assert vclock.mktime(vclock.gmtime(secs)) == secs


def test_time_follows_the_wall_clock(clock):
    clock.set_wall_secs(1000)
    clock.sleep(2.5)
    assert clock.time() == 1002
    assert clock.localtime()[:6] == (2000, 1, 1, 0, 16, 42)


def test_install_refuses_a_module_imported_from_elsewhere(monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "rp2", types.ModuleType("rp2"))
    with pytest.raises(ImportError):
        hw.install()
    monkeypatch.undo()
    hw.install()
    assert hw.rp2.__file__.startswith(hw.DIR)
