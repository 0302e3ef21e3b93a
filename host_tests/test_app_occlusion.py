"""Occlusion on the plant at the hard end of its ranges: the line test finds a blocked line
in time at every rate, leaves the pump safe, and never cries wolf on an open line."""

import pytest

from pump.core import alarms as al
from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core.schedule import BasalProfile
from pump.core.therapy import Settings
from sim.hw.plant import PlantParams
from sim.pump import SimPump
from test_app_safety import assert_safe_state, events_of

SEC = 1000
MIN = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR


def hard_pump(rate_mu_per_h, seed=1):
    """The firmware on the hardest plant: most friction, softest line, noisiest load cell."""
    s = Settings()
    s.max_basal_mu_per_h = 15_000
    s.profiles = [BasalProfile("Test", [(0, rate_mu_per_h)], 15_000)]
    s.auto_off_h = 0
    s.max_day_mu = 200_000

    def no_display(board):  # the screens are tested elsewhere; this keeps a day quick
        board.display = None

    return SimPump(settings=s, plant_params=PlantParams.hard(), seed=seed,
                   prepare_board=no_display)


def occlusion_alarm(sim, after_ms):
    found = [(t, f) for t, f in events_of(sim, ev.ALARM)
             if f["code"] == al.OCCLUSION and t >= after_ms]
    return found[0] if found else (None, None)


def occlude_and_wait(sim, at_ms, limit_ms, bolus_mu=0):
    """Occlude the line at ``at_ms`` (starting a bolus then if asked) and run until the
    occlusion alarm or ``limit_ms`` after; returns (alarm time after occlusion, fields)."""
    sim.at_plant(at_ms, lambda plant: plant.occlude())
    if bolus_mu:
        sim.at(at_ms, lambda app: app.bolus(bolus_mod.NORMAL, bolus_mu))
    t = at_ms
    while t < at_ms + limit_ms:
        t += 5 * SEC
        sim.run_until(t)
        t_alarm, fields = occlusion_alarm(sim, at_ms)
        if t_alarm is not None:
            sim.run_until(t + 30 * SEC)  # the back-off that relieves the pressure ends
            return t_alarm - at_ms, fields
    return None, None


@pytest.mark.parametrize("rate_mu_per_h,limit_ms", [(1000, 5 * MIN), (100, 30 * MIN),
                                                    (5000, 5 * MIN)])
def test_a_blocked_line_is_found_in_time_at_every_basal_rate(rate_mu_per_h, limit_ms):
    sim = hard_pump(rate_mu_per_h)
    occluded_at = 40 * MIN
    after_ms, fields = occlude_and_wait(sim, occluded_at, limit_ms)
    assert after_ms is not None and after_ms <= limit_ms
    assert fields["source"] == "line test" and fields["relief_mn"] < 22
    assert_safe_state(sim, al.OCCLUSION, occluded_at + after_ms)


def test_a_bolus_into_a_blocked_line_is_stopped_within_15_s():
    sim = hard_pump(1000)
    occluded_at = 40 * MIN
    after_ms, _fields = occlude_and_wait(sim, occluded_at, 60 * SEC, bolus_mu=5000)
    assert after_ms is not None and after_ms <= 15 * SEC
    fault = assert_safe_state(sim, al.OCCLUSION, occluded_at + after_ms)
    (_t, cancelled), = events_of(sim, ev.BOLUS_CANCELLED)
    assert cancelled["reason"] == al.OCCLUSION
    # The line was tested before the bolus went out: none of it was pushed.
    assert fault["not_delivered_mu"] == cancelled["not_delivered_mu"] == 5000


def test_reopening_the_line_after_the_alarm_releases_at_most_0_05_u():
    sim = hard_pump(1000)
    occluded_at = 40 * MIN
    after_ms, _fields = occlude_and_wait(sim, occluded_at, 5 * MIN)
    assert after_ms is not None
    backed_off = events_of(sim, ev.BACKOFF)
    assert backed_off, "the plunger backs off to relieve the pressure"
    reopen_ms = occluded_at + after_ms + MIN
    sim.at_plant(reopen_ms, lambda plant: plant.clear())
    sim.run_until(reopen_ms)
    before_nl = sim.plant.delivered_nl()
    sim.run_until(reopen_ms + 10 * MIN)
    released_nl = sim.plant.delivered_nl() - before_nl
    assert released_nl <= 500  # 0.05 U of U-100
    # The back-off took back what went into the blocked line, and little more.
    assert released_nl >= -1000


def test_an_open_line_on_the_hard_plant_gives_no_occlusion_alarm_in_a_day_of_use():
    """Nor a disconnection alert during its boluses."""
    sim = hard_pump(1000, seed=7)
    for hour in (7, 12, 19):
        sim.at(hour * HOUR, lambda app: app.bolus(bolus_mod.NORMAL, 5000))
    sim.run_until(DAY)
    assert occlusion_alarm(sim, 0) == (None, None)
    assert [f for _t, f in events_of(sim, ev.ALARM) if f["code"] == al.DISCONNECTED] == []
    test = sim.app.line_test
    assert test.tests >= 400  # every 3 minutes, and during each bolus
    # The tests' pulls and pushes cancel: the body had what the record says, within the
    # basal steps held back while the last test ran.
    recorded = sum(steps for _t, _k, steps, _mu in sim.deliveries)
    plant = sim.plant
    assert plant.steps_forward - plant.steps_backward == recorded
    assert abs(plant.delivered_nl() - recorded * plant.step_nl) < 3 * plant.step_nl


def test_a_test_cut_short_by_a_suspend_gives_its_pull_back_on_resume():
    sim = hard_pump(1000)
    test = sim.app.line_test
    sim.run_until(10 * MIN)
    t = sim.now_ms()
    while not test.watching() or test.owed != test.probe_steps:
        t += 50
        sim.run_until(t)  # into the watch after a pull
    sim.app.suspend()
    sim.run_until(t + MIN)
    assert test.owed == test.probe_steps and not test.running()
    plant = sim.plant
    recorded = sum(steps for _t, _k, steps, _mu in sim.deliveries)
    assert plant.steps_forward - plant.steps_backward == recorded - test.probe_steps
    sim.app.resume()
    sim.run_until(t + 2 * MIN)
    recorded = sum(steps for _t, _k, steps, _mu in sim.deliveries)
    assert test.owed == 0
    assert plant.steps_forward - plant.steps_backward == recorded


def test_basal_held_back_during_a_line_test_is_at_most_one_test_long():
    rate = 5000  # the highest basal: a step every 1.06 s
    sim = hard_pump(rate)
    sim.at(30 * MIN, lambda app: app.bolus(bolus_mod.NORMAL, 3000))
    sim.run_until(2 * HOUR)
    nu = sim.mechanics.nu_per_step
    test = sim.app.line_test
    # Pull, watch, push, watch, and the settle before a test in the middle of a bolus.
    longest_ms = 2 * test.watch_ms + test.settle_ms + 100
    allowed = rate * longest_ms * 1_000_000 // (HOUR * nu) + 1
    given = 0
    worst = 0
    for t, kind, steps, _mu in sim.deliveries:
        if kind == "basal":
            owed = rate * t * 1_000_000 // (HOUR * nu)
            worst = max(worst, owed - given)
            given += steps
    assert 1 < worst <= allowed
