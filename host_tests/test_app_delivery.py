"""The firmware App on the host fakes: what it records is what the motor driver saw.

The line test's pulls and pushes (pump/core/line_test.py) are off here, so that every
step the driver sees is therapy; test_app_occlusion.py bounds what the test holds back."""

import bisect

import machine
import pytest
import vclock

from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core.errors import ConfigError
from pump.core.schedule import TEMP_ABSOLUTE, TEMP_PERCENT, BasalProfile
from pump.core.therapy import BASAL, BOLUS, Settings
from pump.hal.stepper import SM_FREQ, delay_for_rate
from sim import pump as pumpsim
from sim.pump import SimPump

MIN = 60_000
HOUR = 3_600_000
NS_PER_MS = vclock.NS_PER_MS
NU_PER_MU = 1_000_000


# ----- helpers ----------------------------------------------------------------------------


def pump_settings(segments=((0, 1000),), max_bolus_mu=10_000, max_basal_mu_per_h=5000):
    """Settings with one profile of (start slot, mU/h) segments."""
    s = Settings()
    s.max_bolus_mu = max_bolus_mu
    s.max_basal_mu_per_h = max_basal_mu_per_h
    s.profiles = [BasalProfile("Test", list(segments), max_basal_mu_per_h)]
    return s


def ideal_flat_basal_steps(rate_mu_per_h, t_ms, mech):
    """floor(rate * t / (3.6e6 * nu_per_step / 1e6)): whole steps a flat rate owes by t."""
    return rate_mu_per_h * t_ms * NU_PER_MU // (HOUR * mech.nu_per_step)


def recorded_steps(sim, kind=None, until_ms=None):
    return sum(
        steps
        for t_ms, k, steps, _mu in sim.deliveries
        if (kind is None or k == kind) and (until_ms is None or t_ms <= until_ms)
    )


def events_of(sim, etype):
    return [fields for _seq, _t, e, fields in sim.events if e == etype]


def pin(sim, function):
    return machine.Pin.lookup(sim.board_module.PINS[function])


def enable_active_level(sim):
    return 0 if sim.board_module.MECHANICS["enable_active_low"] else 1


def enabled_intervals(sim):
    """Closed (on_ns, off_ns) intervals in which the EN pin enabled the driver."""
    active = enable_active_level(sim)
    intervals = []
    on_ns = None
    for t_ns, level in pin(sim, "enable").history:
        if level == active and on_ns is None:
            on_ns = t_ns
        elif level != active and on_ns is not None:
            intervals.append((on_ns, t_ns))
            on_ns = None
    return intervals


def pulses_per_train(sim):
    """Steps the driver model counted in each enable interval (one interval per train)."""
    times = [t_ns for t_ns, _direction in sim.driver.pulses]
    counts = []
    for on_ns, off_ns in enabled_intervals(sim):
        count = bisect.bisect_right(times, off_ns) - bisect.bisect_left(times, on_ns)
        if count:  # a train stopped before its first step leaves no record
            counts.append(count)
    return counts


def driver_steps_by_kind(sim):
    """The driver's step counts per train, labelled with the kind the firmware recorded."""
    counts = pulses_per_train(sim)
    assert counts == [steps for _t, _k, steps, _mu in sim.deliveries[: len(counts)]]
    totals = {BASAL: 0, BOLUS: 0}
    for count, (_t, kind, _steps, _mu) in zip(counts, sim.deliveries):
        totals[kind] += count
    return totals


def assert_driver_saw_exactly_the_record(sim):
    driver = sim.driver
    assert driver.steps_backward == 0
    assert driver.steps_while_disabled == 0
    assert driver.violations == []
    assert driver.steps_forward == recorded_steps(sim)
    assert pulses_per_train(sim) == [steps for _t, _k, steps, _mu in sim.deliveries]


def run_idle(sim, t_ms):
    """Run to ``t_ms``, then on until the train started at the end (if any) is done."""
    sim.run_until(t_ms)
    while sim.board.stepper.busy():
        sim.run_until(sim.now_ms() + 100)


# ----- the record is the truth ----------------------------------------------------------------


def test_firmware_record_equals_steps_counted_at_the_driver_over_a_busy_day():
    sim = SimPump(line_test=False, settings=pump_settings([(0, 800), (13, 1250), (44, 900)]))
    sim.at(30 * MIN, lambda app: app.bolus(bolus_mod.NORMAL, 4500))
    sim.at(2 * HOUR, lambda app: app.bolus(bolus_mod.DUAL, 6000, 60, 2 * HOUR))
    sim.at(3 * HOUR, lambda app: app.temp_basal(TEMP_PERCENT, 50, 2 * HOUR))
    sim.at(5 * HOUR, lambda app: app.bolus(bolus_mod.EXTENDED, 3000, 0, 90 * MIN))
    sim.at(5 * HOUR + 40 * MIN, lambda app: app.suspend())  # cancels the extended bolus
    sim.at(6 * HOUR + 20 * MIN, lambda app: app.resume())
    sim.at(6 * HOUR + 30 * MIN, lambda app: app.temp_basal(TEMP_ABSOLUTE, 2000, HOUR))
    sim.at(7 * HOUR, lambda app: app.bolus(bolus_mod.NORMAL, 2000))
    run_idle(sim, 9 * HOUR)

    kinds = {kind for _t, kind, _s, _mu in sim.deliveries}
    assert kinds == {BASAL, BOLUS}
    assert len(events_of(sim, ev.BOLUS_FINISHED)) == 3
    assert len(events_of(sim, ev.BOLUS_CANCELLED)) == 1
    assert events_of(sim, ev.REFUSED) == []
    assert_driver_saw_exactly_the_record(sim)


def test_driver_is_disabled_between_trains_and_dir_is_forward_at_every_step():
    sim = SimPump(line_test=False, settings=pump_settings([(0, 2000)]))
    sim.at(10 * MIN, lambda app: app.bolus(bolus_mod.NORMAL, 3000))
    sim.at(20 * MIN, lambda app: app.bolus(bolus_mod.EXTENDED, 1000, 0, 30 * MIN))
    stepper = sim.board.stepper
    en = pin(sim, "enable")
    inactive = 1 - enable_active_level(sim)
    samples = []

    def probe():
        if not stepper.busy():
            samples.append(en.value())

    for k in range(1, 60 * 60 * 4):  # every 250 ms for an hour
        sim.clock.call_at(k * 250 * NS_PER_MS, probe)
    sim.run_until(HOUR)

    assert len(samples) > 10_000
    assert set(samples) == {inactive}
    # Every step's rising edge saw DIR at the forward level and EN active.
    forward = sim.board_module.MECHANICS["dir_forward_level"]
    dir_history = pin(sim, "dir").history
    dir_times = [t for t, _level in dir_history]
    rises = [t for t, level in pin(sim, "step").history if level]
    assert len(rises) == sim.driver.steps_forward > 0
    for t in rises:
        assert dir_history[bisect.bisect_right(dir_times, t) - 1][1] == forward
    assert sim.driver.steps_while_disabled == 0


# ----- basal timing ---------------------------------------------------------------------------


def test_basal_at_1_u_per_h_equals_floor_of_ideal_at_every_half_minute_for_6_h():
    sim = SimPump(line_test=False, settings=pump_settings([(0, 1000)]))
    sim.run_until(6 * HOUR)
    assert {kind for _t, kind, _s, _mu in sim.deliveries} == {BASAL}
    times = sorted(t for t, _k, steps, _mu in sim.deliveries for _ in range(steps))
    for t_ms in range(0, 6 * HOUR + 1, 30_000):
        delivered = bisect.bisect_right(times, t_ms)
        assert delivered == ideal_flat_basal_steps(1000, t_ms, sim.mechanics), t_ms


def _basal_until_two_hours(latency_ms):
    # 3 U/h until 02:00, then 0 U/h: by 2 h + a margin every step that fell due
    # has gone out, however late the timer callbacks came.
    sim = SimPump(line_test=False, settings=pump_settings([(0, 3000), (4, 0)]))
    if latency_ms:
        sim.board.basal_timer.inject_own_latency_ms(latency_ms)
    run_idle(sim, 2 * HOUR + latency_ms + 5000)
    return sim


@pytest.mark.parametrize("latency_ms", [3, 250, 4000])  # 4 s: past two steps at 3 U/h
def test_late_basal_timer_callbacks_catch_up_nothing_lost_nothing_extra(latency_ms):
    on_time = _basal_until_two_hours(0)
    late = _basal_until_two_hours(latency_ms)
    expected = ideal_flat_basal_steps(3000, 2 * HOUR, late.mechanics)
    assert on_time.driver.steps_forward == expected
    assert late.driver.steps_forward == expected
    assert recorded_steps(late, BASAL) == expected
    assert_driver_saw_exactly_the_record(late)


def test_basal_stays_exact_across_ticks_wraparound():
    sim = SimPump(line_test=False, settings=pump_settings([(0, 1500)]))
    clock = sim.clock
    start_ms, start_us = clock.ticks_ms(), clock.ticks_us()
    sim.run_until(5 * HOUR)
    # ticks_ms wrapped 10 min in; ticks_us wraps every 2**30 us (about 18 min).
    assert clock.ticks_ms() < start_ms
    assert 5 * HOUR * 1000 > 10 * vclock.TICKS_PERIOD
    assert clock.ticks_us() != start_us
    expected = ideal_flat_basal_steps(1500, 5 * HOUR, sim.mechanics)
    assert recorded_steps(sim, BASAL, until_ms=5 * HOUR) == expected
    assert expected - 1 <= sim.driver.steps_forward <= expected
    assert sim.app.now_ms() == 5 * HOUR


# ----- stopping mid-train ----------------------------------------------------------------------


def test_cancel_mid_train_records_exactly_the_steps_the_driver_counted():
    # No basal: every step is bolus.
    sim = SimPump(line_test=False, settings=pump_settings([(0, 0)]))
    sim.at(MIN, lambda app: app.bolus(bolus_mod.NORMAL, 2000))  # about 85 s at 1.5 U/min
    sim.at(MIN + 30_321, lambda app: app.cancel_bolus())
    sim.run_until(MIN + 30_321)
    counted_at_cancel = sim.driver.steps_forward
    sim.run_until(20 * MIN)

    (cancelled,) = events_of(sim, ev.BOLUS_CANCELLED)
    (started,) = events_of(sim, ev.BOLUS_STARTED)
    assert 0 < cancelled["steps"] < started["steps"]
    assert cancelled["steps"] == counted_at_cancel == sim.driver.steps_forward
    assert cancelled["delivered_mu"] == sim.mechanics.mu_for_steps(cancelled["steps"])
    assert cancelled["not_delivered_mu"] == 2000 - cancelled["delivered_mu"]
    assert events_of(sim, ev.BOLUS_FINISHED) == []
    assert_driver_saw_exactly_the_record(sim)


def test_suspend_mid_bolus_stops_every_step_and_resume_restores_basal():
    rate = 1200
    bolus_at, suspend_at, resume_at = 10 * MIN, 10 * MIN + 20_500, 70 * MIN + 20_500
    sim = SimPump(line_test=False, settings=pump_settings([(0, rate)]))
    sim.at(bolus_at, lambda app: app.bolus(bolus_mod.NORMAL, 3000))
    sim.at(suspend_at, lambda app: app.suspend())
    sim.at(resume_at, lambda app: app.resume())
    sim.run_until(suspend_at)
    at_suspend = sim.driver.steps_forward
    sim.run_until(resume_at)
    assert sim.driver.steps_forward == at_suspend  # not one step while suspended
    run_idle(sim, 2 * HOUR)

    (cancelled,) = events_of(sim, ev.BOLUS_CANCELLED)
    assert cancelled["reason"] == "suspended"
    by_kind = driver_steps_by_kind(sim)
    assert cancelled["steps"] == by_kind[BOLUS] == recorded_steps(sim, BOLUS)
    assert recorded_steps(sim, until_ms=suspend_at) == at_suspend
    assert not any(suspend_at < t < resume_at for t, _k, _s, _mu in sim.deliveries)
    (resumed,) = events_of(sim, ev.RESUMED)
    assert resumed["suspended_ms"] == resume_at - suspend_at
    assert resumed["basal_not_given_mu"] == rate * (resume_at - suspend_at) // HOUR
    # After resuming, basal runs at the profile rate again: one step per 1/rate.
    after = [t for t, kind, _s, _mu in sim.deliveries if kind == BASAL and t > resume_at]
    step_ms = HOUR * sim.mechanics.nu_per_step / (rate * NU_PER_MU)
    assert len(after) >= (2 * HOUR - resume_at) // step_ms - 1
    assert sim.app.therapy.rate(sim.now_ms()) == rate
    assert_driver_saw_exactly_the_record(sim)


def test_basal_keeps_accruing_during_a_long_slow_bolus():
    rate = 2000
    sim = SimPump(line_test=False, settings=pump_settings([(0, rate)], max_bolus_mu=25_000))
    sim.at(10 * MIN, lambda app: app.bolus(bolus_mod.NORMAL, 10_000))  # about 7.5 min
    sim.run_until(HOUR)

    (finished,) = events_of(sim, ev.BOLUS_FINISHED)
    bolus_times = [t for t, kind, _s, _mu in sim.deliveries if kind == BOLUS]
    assert bolus_times[-1] - bolus_times[0] > 6 * MIN
    during = [
        steps
        for t, kind, steps, _mu in sim.deliveries
        if kind == BASAL and bolus_times[0] <= t <= bolus_times[-1]
    ]
    ideal_during = rate * (bolus_times[-1] - bolus_times[0]) * NU_PER_MU
    ideal_during //= HOUR * sim.mechanics.nu_per_step
    assert sum(during) >= ideal_during - 1
    expected = ideal_flat_basal_steps(rate, HOUR, sim.mechanics)
    assert expected - 1 <= driver_steps_by_kind(sim)[BASAL] <= expected
    assert driver_steps_by_kind(sim)[BOLUS] == finished["steps"]


# ----- refusals ----------------------------------------------------------------------------------


REFUSALS = {
    "bolus above max bolus": lambda app: app.bolus(bolus_mod.NORMAL, 10_050),
    "temp above max basal": lambda app: app.temp_basal(TEMP_ABSOLUTE, 5010, 60 * MIN),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refused_command_changes_nothing_and_is_recorded(name):
    command = REFUSALS[name]
    reference = SimPump(line_test=False, settings=pump_settings([(0, 800)]))
    reference.run_until(HOUR)

    sim = SimPump(line_test=False, settings=pump_settings([(0, 800)]))
    seen = {}

    def refused_command(app):
        seen["before"] = app.therapy.status(app.now_ms())
        seen["reply"] = command(app)
        seen["after"] = app.therapy.status(app.now_ms())

    sim.at(20 * MIN + 7, refused_command)
    sim.run_until(HOUR)

    assert "above the max" in seen["reply"]
    assert seen["after"] == seen["before"]
    (refused,) = events_of(sim, ev.REFUSED)
    assert refused["reason"] == seen["reply"]
    assert sim.app.therapy.bolus is None and sim.app.therapy.temp is None
    assert sim.deliveries == reference.deliveries
    assert sim.driver.steps_forward == reference.driver.steps_forward


# ----- the stepper and its PIO program ---------------------------------------------------------


@pytest.mark.parametrize(
    "rate, message",
    [
        (0, "must be a positive number of steps/s, got 0"),
        (-5, "must be a positive number of steps/s, got -5"),
        (200_000, "beyond what the PIO step program can produce (max 142857)"),
    ],
)
def test_delay_for_rate_rejects_rates_the_pio_program_cannot_produce(rate, message):
    with pytest.raises(ValueError) as info:
        delay_for_rate(rate)
    assert message in str(info.value)


@pytest.fixture
def bench_board():
    """The default board file built on fresh fakes, with a driver model on its pins."""
    pumpsim.hw.reset()
    module = pumpsim.load_board_module("pico_default")
    board = module.build()
    pins = module.PINS
    driver = pumpsim.StepperDriverModel(
        machine.Pin.lookup(pins["step"]),
        machine.Pin.lookup(pins["dir"]),
        machine.Pin.lookup(pins["enable"]),
    )
    return board, driver, vclock.current()


def test_stepper_refuses_a_rate_above_the_board_max_and_a_second_train_while_busy(bench_board):
    board, driver, clock = bench_board
    stepper = board.stepper
    with pytest.raises(ValueError, match="max_step_rate 4000"):
        stepper.start(10, board.mechanics.max_step_rate + 1)
    assert not stepper.busy()

    stepper.start(10, 100)
    with pytest.raises(RuntimeError, match="already running"):
        stepper.start(5, 100)
    clock.run_until(clock.now_ns + 200 * NS_PER_MS)
    assert not stepper.busy()
    assert stepper.finish() == 10
    assert driver.steps_forward == 10  # the refused train added nothing


@pytest.mark.parametrize("rate", [16, 169, 1000, 4000])
def test_step_train_rising_edges_are_spaced_at_the_requested_rate(bench_board, rate):
    board, driver, clock = bench_board
    board.stepper.start(50, rate)
    clock.run_until(clock.now_ns + (50 * 1_000_000_000 // rate) + 10 * NS_PER_MS)
    rises = [t for t, _direction in driver.pulses]
    assert len(rises) == 50
    spacings = {b - a for a, b in zip(rises, rises[1:])}
    assert len(spacings) == 1
    (spacing,) = spacings
    # The PIO period is a whole number of 1 us cycles of parity set by the program,
    # so it is at most two cycles shorter than 1e9/rate ns.
    cycle_ns = 1_000_000_000 // SM_FREQ
    assert 0 <= 1_000_000_000 / rate - spacing < 2 * cycle_ns
    assert driver.violations == []


_BAD_BOARDS = [
    ("MECHANICS", "lead_um", 0, "MECHANICS['lead_um']"),
    ("MECHANICS", "max_step_rate", 200_000, "MECHANICS['max_step_rate']"),
    ("MECHANICS", "units_per_ml", None, "MECHANICS['units_per_ml']"),
    ("MECHANICS", "microstep", 16, "unknown field 'microstep'"),
    ("PINS", "step", 23, "PINS['step']"),
    ("PINS", "dir", 2, "PINS['dir'] uses GP2, already used by 'step'"),
    ("PINS", "enable", None, "PINS['enable'] is missing"),
]


@pytest.mark.parametrize("table, field, value, named", _BAD_BOARDS)
def test_bad_board_file_fails_at_build_naming_the_field(monkeypatch, table, field, value, named):
    pumpsim.hw.reset()
    module = pumpsim.load_board_module("pico_default")
    bad = dict(getattr(module, table))
    if value is None:
        del bad[field]
    else:
        bad[field] = value
    monkeypatch.setattr(module, table, bad)
    with pytest.raises(ConfigError) as info:
        module.build()
    assert named in str(info.value)
    with pytest.raises(KeyError):  # it failed before building any pin
        machine.Pin.lookup(module.PINS.get("step", 2))


@pytest.mark.parametrize("speed_mu_per_min,mu", [(1_500, 1_000), (3_000, 4_000), (15_000, 2_000)])
def test_the_pump_says_when_a_bolus_ends_with_its_line_tests(speed_mu_per_min, mu):
    s = pump_settings()
    s.bolus_speed_mu_per_min = speed_mu_per_min
    sim = SimPump(settings=s)
    sim.run_until(10 * 60_000)
    app = sim.app
    assert app.bolus_finish_ms(app.now_ms()) is None
    assert app.bolus(bolus_mod.NORMAL, mu) is None
    start = app.now_ms()
    said = app.bolus_finish_ms(start)
    sim.run_until(sim.now_ms() + 20 * 60_000)
    (_seq, finished, _e, _f), = [e for e in sim.events if e[2] == ev.BOLUS_FINISHED]
    # The line tests' pauses are in it: longer than the set speed alone says.
    assert said - start > mu * 60_000 // speed_mu_per_min
    assert abs(finished - said) <= 2_000
