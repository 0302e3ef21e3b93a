"""The safety supervisor: one fault path that holds when faults nest, short critical sections,
an independent pulse count that interrupts cannot miss, a watchdog fed per task."""

import machine
import pytest

from pump.core import alarms as al
from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core.schedule import BasalProfile
from pump.core.therapy import Settings
from sim.hw import vclock
from sim.pump import SimPump

MIN = 60_000
HOUR = 3_600_000


def pump_settings(segments=((0, 1000),)):
    s = Settings()
    s.max_basal_mu_per_h = 5000
    s.profiles = [BasalProfile("Test", list(segments), 5000)]
    return s


def _no_display(board):
    board.display = None


def events_of(sim, etype):
    return [f for _s, _t, e, f in sim.events if e == etype]


def test_a_fault_raised_inside_a_fault_still_backs_off():
    sim = SimPump(settings=pump_settings(), prepare_board=_no_display, line_test=False)
    sim.run_until(MIN)
    sim.at_plant(MIN + 10, lambda plant: plant.occlude())
    sim.at(MIN + 20, lambda app: app.bolus(bolus_mod.NORMAL, 2_000))
    # With a train on the motor and the force past 4 N, another fault arrives. The
    # detector's ceiling is lowered to 4 N just then: halting that train books it, and the
    # booking finds the occlusion, a fault inside the fault.
    while sim.now_ms() < 10 * MIN:
        sim.run_until(sim.now_ms() + 5)
        if sim.app.train_running() and sim.plant.true_force_n() > 4.5:
            break
    assert sim.app.train_running()
    sim.board.occlusion.ceiling_mn = 4_000
    force_at_fault = sim.plant.true_force_n()
    sim.app.fault(al.BATTERY_DEPLETED, mv=3_200)
    sim.run_until(sim.now_ms() + MIN)
    codes = [f["code"] for f in events_of(sim, ev.FAULT)]
    assert al.BATTERY_DEPLETED in codes and al.OCCLUSION in codes
    assert len(events_of(sim, ev.BACKOFF)) == 1  # the pressure came off the line
    assert sim.plant.true_force_n() < force_at_fault * 0.6


def test_the_fault_path_is_idempotent():
    sim = SimPump(settings=pump_settings(), prepare_board=_no_display, line_test=False)
    sim.run_until(MIN)
    app = sim.app
    app.fault(al.INTERNAL, reason="one")
    app.fault(al.INTERNAL, reason="two")
    assert app.therapy.suspend_reason == al.INTERNAL
    assert [e for e in events_of(sim, ev.SUSPENDED)] == events_of(sim, ev.SUSPENDED)[:1]


def test_no_event_is_emitted_with_interrupts_disabled():
    # Rate changes every 30 min, a temp basal and a bolus: every path that touches the ticker.
    segments = [(i, 500 + 100 * (i % 3)) for i in range(0, 48)]
    sim = SimPump(settings=pump_settings(segments), prepare_board=_no_display,
                  start_ms_of_day=20 * MIN)
    seen = []
    log = sim.app.events
    downstream = log.listener

    def listener(event):
        seen.append((event[2], vclock.current().irq_disabled))
        downstream(event)

    log.listener = listener
    sim.at(5 * MIN, lambda app: app.temp_basal("percent", 150, HOUR))
    sim.at(10 * MIN, lambda app: app.bolus(bolus_mod.NORMAL, 500))
    sim.at(40 * MIN, lambda app: app.suspend())
    sim.at(45 * MIN, lambda app: app.resume())
    sim.run_until(2 * HOUR)
    assert ("basal_rate", False) in seen
    assert [e for e in seen if e[1]] == []


def test_interrupts_come_back_on_when_a_critical_section_fails():
    sim = SimPump(settings=pump_settings(), prepare_board=_no_display)
    sim.run_until(MIN)
    ticker = sim.app.therapy.ticker

    def broken(*_args):
        raise RuntimeError("broken accumulator")

    ticker.take_due = broken
    with pytest.raises(RuntimeError):
        sim.app.service()
    assert not vclock.current().irq_disabled
    ticker.advance = broken
    with pytest.raises(RuntimeError):
        sim.app.set_time_of_day(10 * HOUR)
    assert not vclock.current().irq_disabled


def test_step_pulses_are_counted_without_an_interrupt_per_edge():
    sim = SimPump(settings=pump_settings(), prepare_board=_no_display, line_test=False)
    step = machine.gpio(sim.board_module.PINS["step"])
    assert step.irq_handler is None  # no hard IRQ on STEP: a PIO state machine counts
    sim.at(MIN, lambda app: app.bolus(bolus_mod.NORMAL, 3_000))
    sim.run_until(10 * MIN)
    assert sim.app.alarms.find(al.DELIVERY_MISMATCH) is None
    counted = sim.board.pulse_counter.total()
    assert counted == sim.driver.position_steps


def test_the_watchdog_runs_out_when_the_motor_task_stops_making_progress():
    sim = SimPump(settings=pump_settings(), prepare_board=_no_display, line_test=False)
    sim.at(MIN, lambda app: app.bolus(bolus_mod.NORMAL, 3_000))
    sim.run_until(MIN + 1_000)
    assert sim.app.train_running()
    # The train hangs: the state machine stops where it is, the main loop runs on.
    sim.board.stepper._sm.active(0)
    with pytest.raises(machine.WatchdogReset):
        sim.run_until(MIN + 60_000)
