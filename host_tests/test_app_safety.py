"""The app's protections on the fakes: every fault reaches the safe state, alarms, records."""

import machine
import pytest

from pump.core import alarms as al
from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core.schedule import BasalProfile
from pump.core.therapy import BASAL, BOLUS, Settings
from sim.pump import SimPump

MIN = 60_000
HOUR = 3_600_000


def pump_settings(rate=1000, **extra):
    s = Settings()
    s.max_basal_mu_per_h = 5000
    s.profiles = [BasalProfile("Test", [(0, rate)], 5000)]
    for key, value in extra.items():
        setattr(s, key, value)
    return s


def events_of(sim, etype):
    return [(t, fields) for _seq, t, e, fields in sim.events if e == etype]


def alarm_codes(sim):
    return [fields["code"] for _t, fields in events_of(sim, ev.ALARM)]


def driver_enabled(sim):
    return sim.driver.enabled()


def assert_safe_state(sim, code, detected_ms):
    """Motor off, delivery stopped, alarm latched and recorded, within 100 ms."""
    (t_fault, fault), = [(t, f) for t, f in events_of(sim, ev.FAULT) if f["code"] == code]
    assert 0 <= t_fault - detected_ms <= 100
    assert fault["motor_stopped"] == 1
    assert not sim.board.stepper.busy() and not driver_enabled(sim)
    assert sim.app.therapy.suspended_at is not None
    assert sim.app.therapy.suspend_reason == code
    assert sim.app.alarms.find(code) is not None
    assert sim.app.alarms.sound(sim.now_ms()) == al.HIGH
    return fault


# ----- reservoir -----


def change_reservoir(sim, at_ms, volume_mu=200_000, tubing_mu=10_000, cannula_mu=300,
                     extra_ul=0):
    sim.at(at_ms, lambda app: app.suspend())
    sim.at(at_ms + 1000, lambda app: app.rewind())
    sim.at(at_ms + 3 * MIN,
           lambda app: sim.plant.change_reservoir(volume_mu // 100 + extra_ul))
    sim.at(at_ms + 4 * MIN, lambda app: app.load_reservoir(volume_mu))
    sim.at(at_ms + 5 * MIN, lambda app: app.fill("tubing", tubing_mu))
    sim.at(at_ms + 7 * MIN, lambda app: app.fill("cannula", cannula_mu))
    sim.at(at_ms + 8 * MIN, lambda app: app.resume())


def test_reservoir_change_primes_apart_from_therapy_and_counts_the_new_volume():
    sim = SimPump(settings=pump_settings(rate=2000))
    change_reservoir(sim, 30 * MIN)
    sim.run_until(HOUR)
    app = sim.app
    assert len(events_of(sim, ev.RESERVOIR_REWOUND)) == 1
    (_t, loaded), = events_of(sim, ev.RESERVOIR_LOADED)
    assert loaded["volume_mu"] == 200_000
    primed = [f for _t, f in events_of(sim, ev.PRIMED)]
    assert [p["part"] for p in primed] == ["tubing", "cannula"]
    primed_steps = sum(p["steps"] for p in primed)
    mech = sim.mechanics
    # Priming is never therapy: the delivery record holds basal only.
    assert {kind for _t, kind, _s, _mu in sim.deliveries} == {BASAL}
    therapy_after = sum(s for t, _k, s, _mu in sim.deliveries if t > 38 * MIN)
    expected_left = mech.steps_for_mu(200_000, 0)[0] - primed_steps - therapy_after
    assert app.reservoir.remaining_steps == expected_left
    assert app.reservoir.in_use() and app.therapy.suspended_at is None
    # The driver saw the rewind, the pusher brought up to the new stopper and every step
    # the records hold (the line tests' pulls and pushes cancel out).
    (_t, rewound), = events_of(sim, ev.RESERVOIR_REWOUND)
    (_t, seated), = events_of(sim, ev.RESERVOIR_SEATED)
    assert seated["steps"] > 0 and seated["force_mn"] >= 300
    net = sim.driver.steps_forward - sim.driver.steps_backward
    given = sum(s for _t, _k, s, _mu in sim.deliveries)
    assert net == seated["steps"] + primed_steps + given - rewound["steps"]


def test_reservoir_change_steps_are_refused_out_of_order_and_change_nothing():
    sim = SimPump(settings=pump_settings())
    replies = []
    sim.at(MIN, lambda app: replies.append(app.rewind()))  # not suspended
    sim.at(2 * MIN, lambda app: replies.append(app.load_reservoir(100_000)))  # not rewound
    sim.at(3 * MIN, lambda app: replies.append(app.fill("tubing", 5_000)))
    sim.run_until(5 * MIN)
    assert "suspend" in replies[0]
    assert "rewind" in replies[1]
    assert "load a reservoir" in replies[2]
    assert not events_of(sim, ev.RESERVOIR_REWOUND)
    # Nothing moved but therapy (the line tests' pulls and pushes cancel out).
    net = sim.driver.steps_forward - sim.driver.steps_backward
    assert net == sum(s for _t, _k, s, _mu in sim.deliveries)
    assert sim.app.reservoir.in_use()
    assert len(events_of(sim, ev.REFUSED)) == 3


def test_low_reservoir_alerts_at_the_set_level_and_empty_stops_delivery():
    sim = SimPump(settings=pump_settings(rate=5000, low_reservoir_mu=10_000))
    # Seating pushes a little before the force shows the stopper is reached (up to one
    # seat move, 200 steps): the syringe holds 1 U more than loaded, so that the count
    # runs out before the stopper reaches the end of the barrel.
    change_reservoir(sim, MIN, volume_mu=20_000, tubing_mu=5_000, cannula_mu=1_000,
                     extra_ul=10)
    sim.run_until(2 * HOUR)
    low = [t for t, f in events_of(sim, ev.ALARM) if f["code"] == al.RESERVOIR_LOW]
    assert len(low) == 1
    sim.run_until(4 * HOUR)
    (t_empty, _f), = [(t, f) for t, f in events_of(sim, ev.ALARM)
                      if f["code"] == al.RESERVOIR_EMPTY]
    assert_safe_state(sim, al.RESERVOIR_EMPTY, t_empty)
    assert sim.app.reservoir.remaining_steps == 0
    # Nothing left the syringe that was not in it: every step is accounted for.
    mech = sim.mechanics
    primed = sum(f["steps"] for _t, f in events_of(sim, ev.PRIMED))
    given = sum(s for t, _k, s, _mu in sim.deliveries if t > 9 * MIN)
    assert primed + given == mech.steps_for_mu(20_000, 0)[0]
    # Basal stops and stays stopped; resume is refused while it is empty.
    steps_then = sim.driver.steps_forward
    sim.at(sim.now_ms() + MIN, lambda app: app.acknowledge())
    replies = []
    sim.at(sim.now_ms() + 2 * MIN, lambda app: replies.append(app.resume()))
    sim.run_until(sim.now_ms() + HOUR)
    assert replies and "empty" in replies[0]
    assert sim.driver.steps_forward == steps_then


# ----- alarms interlock -----


def test_no_bolus_starts_while_a_high_priority_alarm_is_active():
    sim = SimPump(settings=pump_settings(auto_off_h=5))
    replies = []
    sim.at(5 * HOUR + MIN, lambda app: replies.append(app.resume()))  # not acknowledged yet
    sim.at(5 * HOUR + 2 * MIN, lambda app: replies.append(app.bolus(bolus_mod.NORMAL, 1000)))
    sim.run_until(5 * HOUR + 3 * MIN)
    assert "acknowledge" in replies[0]
    assert "high-priority alarm" in replies[1]
    assert events_of(sim, ev.BOLUS_STARTED) == []
    assert [f["command"] for _t, f in events_of(sim, ev.REFUSED)] == ["resume", "normal bolus"]


def test_auto_off_stops_delivery_after_hours_without_a_key_press():
    sim = SimPump(settings=pump_settings(rate=1000, auto_off_h=5))
    sim.at(2 * HOUR, lambda app: app.button_pressed())
    sim.run_until(8 * HOUR)
    (t_alarm, alarm), = [(t, f) for t, f in events_of(sim, ev.ALARM) if f["code"] == al.AUTO_OFF]
    assert t_alarm == 7 * HOUR
    assert_safe_state(sim, al.AUTO_OFF, t_alarm)
    assert all(t <= 7 * HOUR for t, _k, _s, _mu in sim.deliveries)
    # Acknowledge, then resume: delivery goes on.
    sim.at(8 * HOUR + 1000, lambda app: app.acknowledge())
    sim.at(8 * HOUR + 2000, lambda app: app.resume())
    sim.run_until(9 * HOUR)
    assert sim.app.therapy.suspended_at is None
    assert any(t > 8 * HOUR for t, _k, _s, _mu in sim.deliveries)


def test_suspended_pump_reminds_every_15_minutes_until_resumed():
    sim = SimPump(settings=pump_settings(auto_off_h=0))
    sim.at(10 * MIN, lambda app: app.suspend())
    sim.at(26 * MIN, lambda app: app.acknowledge())
    sim.at(55 * MIN, lambda app: app.resume())
    sim.run_until(HOUR)
    reminders = [t for t, f in events_of(sim, ev.ALARM) if f["code"] == al.SUSPENDED]
    assert reminders == [25 * MIN]
    # Acknowledged at 26 min: it sounds again 15 min later (41 min), gone after resume.
    sim2 = SimPump(settings=pump_settings(auto_off_h=0))
    sim2.at(10 * MIN, lambda app: app.suspend())
    sim2.at(26 * MIN, lambda app: app.acknowledge())
    sim2.run_until(27 * MIN)
    assert sim2.app.alarms.sound(sim2.now_ms()) == 0
    sim2.run_until(41 * MIN + 1000)
    assert sim2.app.alarms.sound(sim2.now_ms()) == al.LOW
    assert sim.app.alarms.alarms == []


# ----- the independent monitor -----


def test_hourly_limit_breach_by_the_scheduler_is_caught_by_the_monitor():
    # Settings that contradict each other (3 U/h basal, 1 U per hour allowed) stand in
    # for a scheduler fault: the monitor, counting on its own, stops the pump.
    sim = SimPump(settings=pump_settings(rate=3000, max_hour_mu=1_000))
    sim.run_until(HOUR)
    (t_alarm, fields), = [(t, f) for t, f in events_of(sim, ev.ALARM)
                          if f["code"] == al.LIMIT_HOUR]
    assert_safe_state(sim, al.LIMIT_HOUR, t_alarm)
    mech = sim.mechanics
    given = sum(s for _t, _k, s, _mu in sim.deliveries)
    assert mech.mu_for_steps(given) <= 1_000 + 2  # stopped at the first step past the limit
    assert 19 * MIN < t_alarm < 21 * MIN


def test_a_bolus_above_the_hourly_limit_is_refused_with_an_alert():
    sim = SimPump(settings=pump_settings(rate=1000, max_hour_mu=5_000))
    replies = []
    sim.at(10 * MIN, lambda app: replies.append(app.bolus(bolus_mod.NORMAL, 4_900)))
    sim.run_until(20 * MIN)
    assert "limit" in replies[0]
    assert al.OVER_LIMIT_REQUEST in alarm_codes(sim)
    assert events_of(sim, ev.BOLUS_STARTED) == []


def test_a_step_count_the_motor_did_not_make_is_a_fault():
    sim = SimPump(settings=pump_settings(rate=1000))
    stepper = sim.board.stepper
    real_finish = stepper.finish

    def finish_that_under_reports():  # a corrupted count, as a firmware bug would give
        steps = real_finish()
        return steps - 1 if steps > 1 else steps

    sim.at(30 * MIN, lambda app: app.bolus(bolus_mod.NORMAL, 2_000))
    sim.run_until(30 * MIN)
    stepper.finish = finish_that_under_reports
    sim.run_until(31 * MIN)
    (t_alarm, fields), = [(t, f) for t, f in events_of(sim, ev.ALARM)
                          if f["code"] == al.DELIVERY_MISMATCH]
    fault = assert_safe_state(sim, al.DELIVERY_MISMATCH, t_alarm)
    assert fields["steps_off"] == 1
    assert fault["not_delivered_mu"] > 0  # the bolus was cut short
    (_t, cancelled), = events_of(sim, ev.BOLUS_CANCELLED)
    assert cancelled["reason"] == al.DELIVERY_MISMATCH


def test_driver_stall_is_an_occlusion_and_stops_the_motor_mid_train():
    diag_gpio = 14

    def wire_diag(board):
        board.driver_diag = machine.Pin(diag_gpio, machine.Pin.IN, machine.Pin.PULL_DOWN)

    # No line test: every step the driver counts is the bolus or basal under test.
    sim = SimPump(settings=pump_settings(rate=1000), prepare_board=wire_diag, line_test=False)
    sim.at(10 * MIN, lambda app: app.bolus(bolus_mod.NORMAL, 3_000))
    sim.run_until(10 * MIN + 500)
    assert sim.board.stepper.busy()
    stall_ms = sim.now_ms()
    machine.Pin.lookup(diag_gpio).drive(1)
    sim.run_until(stall_ms + 200)
    fault = assert_safe_state(sim, al.OCCLUSION, stall_ms)
    (_t, cancelled), = events_of(sim, ev.BOLUS_CANCELLED)
    assert cancelled["reason"] == al.OCCLUSION
    assert fault["not_delivered_mu"] == cancelled["not_delivered_mu"] > 0
    given = sum(s for _t, k, s, _mu in sim.deliveries if k == BOLUS)
    assert given == cancelled["steps"]
    assert sim.driver.steps_forward == sum(s for _t, _k, s, _mu in sim.deliveries)


@pytest.mark.parametrize("hours,day", [(999, 40_000), (15_000, 10_000)])
def test_insulin_limits_out_of_range_are_refused(hours, day):
    sim = SimPump(settings=pump_settings())
    replies = []
    sim.at(MIN, lambda app: replies.append(app.set_insulin_limits(hours, day)))
    sim.run_until(2 * MIN)
    assert replies[0] is not None
    assert sim.app.monitor.max_hour_mu == 15_000
