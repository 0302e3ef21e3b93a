"""The insulin limits hold: across a reboot and a crash, and before a train goes out, not after."""

import machine

from pump.core import alarms as al
from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core.limits import SPEED_QUICK_MU_MIN
from pump.core.schedule import BasalProfile
from pump.core.therapy import Settings
from sim.hw.flashfs import FlashFS
from sim.pump import SimPump

MIN = 60_000
HOUR = 3_600_000


def limit_settings(rate=1000, max_hour_mu=12_000, max_bolus_mu=10_000, max_day_mu=80_000):
    s = Settings()
    s.max_basal_mu_per_h = 5000
    s.max_bolus_mu = max_bolus_mu
    s.profiles = [BasalProfile("Test", [(0, rate)], 5000)]
    s.bolus_speed_mu_per_min = SPEED_QUICK_MU_MIN
    s.max_hour_mu = max_hour_mu
    s.max_day_mu = max_day_mu
    return s


def _no_display(board):
    board.display = None


def on_flash(settings, line_test=False):
    sim = SimPump(settings=settings, start_ms_of_day=8 * HOUR, flash=FlashFS(),
                  prepare_board=_no_display, line_test=line_test)
    sim.clock_backup = True
    return sim


def max_rolling_hour_mu(sim, mech):
    """The most therapy insulin the motor gave in any 60 minutes (exact, from the record)."""
    trains = sorted((t, steps) for t, kind, steps, _mu in sim.deliveries)
    most = 0
    for i, (t_end, _s) in enumerate(trains):
        steps = sum(s for t, s in trains[: i + 1] if t > t_end - HOUR)
        most = max(most, steps)
    return mech.mu_for_steps(most)


def bolus_given_mu(sim, since=0):
    return sum(mu for t, kind, _s, mu in sim.deliveries if kind == "bolus" and t >= since)


def test_the_hour_limit_survives_a_power_cut():
    sim = on_flash(limit_settings())
    sim.at(MIN, lambda app: app.bolus(bolus_mod.NORMAL, 10_000))
    sim.run_until(10 * MIN)
    assert bolus_given_mu(sim) > 9_900
    sim.power_loss(MIN)
    answer = sim.app.bolus(bolus_mod.NORMAL, 10_000)
    assert answer is not None and "limit" in answer
    sim.run_until(25 * MIN)
    assert bolus_given_mu(sim) < 10_100
    assert max_rolling_hour_mu(sim, sim.mechanics) <= 12_000


def test_the_hour_limit_survives_a_crash_and_its_reset():
    sim = on_flash(limit_settings())
    sim.at(MIN, lambda app: app.bolus(bolus_mod.NORMAL, 10_000))
    sim.run_until(10 * MIN)
    # A crash: main.py resets the chip (on the rp2 port a reset reads back as the watchdog's).
    sim._power_off()
    machine.set_reset_cause(machine.WDT_RESET)
    sim.clock.run_until(sim.clock.now_ns + 1_000_000)
    sim._boot()
    answer = sim.app.bolus(bolus_mod.NORMAL, 10_000)
    assert answer is not None and "limit" in answer
    sim.run_until(25 * MIN)
    assert bolus_given_mu(sim) < 10_100


def test_the_day_limit_survives_a_power_cut():
    sim = on_flash(limit_settings(max_hour_mu=11_000, max_day_mu=12_000))
    sim.at(MIN, lambda app: app.bolus(bolus_mod.NORMAL, 9_000))
    sim.run_until(2 * HOUR)
    sim.power_loss(MIN)
    answer = sim.app.bolus(bolus_mod.NORMAL, 5_000)
    assert answer is not None and "limit" in answer


def test_basal_after_a_bolus_stops_at_the_hour_limit_instead_of_passing_it():
    sim = on_flash(limit_settings(rate=2000, max_bolus_mu=12_000))
    sim.at(2 * MIN, lambda app: app.bolus(bolus_mod.NORMAL, 11_900))
    sim.run_until(40 * MIN)
    assert max_rolling_hour_mu(sim, sim.mechanics) <= 12_000
    assert sim.app.alarms.find(al.LIMIT_HOUR) is not None
    assert sim.app.therapy.suspended_at is not None


def test_an_extended_bolus_is_judged_by_what_it_gives_per_hour():
    s = limit_settings(rate=500, max_hour_mu=15_000, max_bolus_mu=25_000)
    sim = on_flash(s)
    answer = sim.app.bolus(bolus_mod.EXTENDED, 20_000, 0, 8 * HOUR)
    assert answer is None  # 2.5 U/h for 8 h, under 15 U/h
    # But one whose first hour alone breaks the hour limit is refused.
    sim.app.cancel_bolus()
    answer = sim.app.bolus(bolus_mod.DUAL, 20_000, 70, HOUR)
    assert answer is not None and "limit" in answer


def test_an_extended_bolus_never_passes_the_hour_limit():
    s = limit_settings(rate=500, max_hour_mu=15_000, max_bolus_mu=25_000)
    sim = on_flash(s)
    assert sim.app.bolus(bolus_mod.EXTENDED, 12_000, 0, 2 * HOUR) is None  # 6 U/h
    # Half an hour on, the person lowers the hour limit to 5 U: the trains stop at it.
    sim.at(30 * MIN, lambda app: app.set_insulin_limits(5_000, 80_000))
    sim.run_until(3 * HOUR)
    assert max_rolling_hour_mu(sim, sim.mechanics) <= 5_000
    assert sim.app.alarms.find(al.LIMIT_HOUR) is not None


def test_the_max_per_hour_is_never_below_the_max_basal():
    sim = SimPump(settings=limit_settings(), prepare_board=_no_display)
    app = sim.app
    assert app.set_limits(10_000, 3_000) is None
    answer = app.set_insulin_limits(2_000, 80_000)
    assert answer is not None and "basal" in answer
    assert app.therapy.settings.max_hour_mu == 12_000
    assert app.set_insulin_limits(3_000, 80_000) is None
    answer = app.set_limits(10_000, 4_000)
    assert answer is not None and "hour" in answer
    assert app.therapy.settings.max_basal_mu_per_h == 3_000
    refused = [f for _s, _t, e, f in sim.events if e == ev.REFUSED]
    assert len(refused) == 2


def test_the_hour_limit_survives_a_power_cut_that_loses_the_clock():
    sim = on_flash(limit_settings())
    sim.clock_backup = False  # the time in between is unknown: all of it counts as recent
    sim.at(MIN, lambda app: app.bolus(bolus_mod.NORMAL, 10_000))
    sim.run_until(10 * MIN)
    sim.power_loss(MIN)
    app = sim.app
    assert app.set_time_of_day(8 * HOUR + sim.now_ms()) is None
    answer = app.bolus(bolus_mod.NORMAL, 10_000)
    assert answer is not None and "limit" in answer
    sim.run_until(25 * MIN)
    assert max_rolling_hour_mu(sim, sim.mechanics) <= 12_000
