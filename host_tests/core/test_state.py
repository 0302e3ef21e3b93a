"""The checkpoint survives a reset whole, is written when due, and recovery is safe."""

from support import mechanics, raises

from pump.core.records import CorruptRecord
from pump.core.state import (
    ALARM_BOLUS_INTERRUPTED,
    ALARM_CHECK_SETTINGS,
    ALARM_SET_TIME,
    ALARM_SET_UP,
    ALARM_STATE_LOST,
    CORRUPT,
    HIGH,
    MAX_RECENT_BOLUSES,
    MISSING,
    OK,
    Checkpoint,
    CheckpointPolicy,
    decode_checkpoint,
    plan_recovery,
)

NU = mechanics().nu_per_step  # 1_472_500 nU = 1.4725 mU per step
NAMES = {1: "PWRON_RESET", 3: "WDT_RESET"}
T0 = 800_000_000  # wall-clock seconds at the last checkpoint


def _checkpoint():
    c = Checkpoint()
    c.t_ms = 3_600_000
    c.wall_s = T0
    c.reservoir_steps = 150_000
    c.odometer_steps = 2_000_000
    c.temp = {"kind": 0, "value": 50, "end_wall_s": T0 + 1800}
    c.add_bolus(T0 - 3600, 2_000)
    return c


def _bolus_running(c, delivered_steps, in_flight):
    c.bolus = {
        "kind": "normal",
        "requested_mu": 3_000,
        "steps": 2037,
        "delivered_steps": delivered_steps,
        "delivered_mu": delivered_steps * NU // 1_000_000,
        "start_wall_s": T0 - 30,
    }
    c.in_flight_steps = in_flight
    c.in_flight_kind = "bolus"
    return c


def _plan(c, settings=OK, reason=None, cause=3, rtc_lost=False, now=T0 + 60, status=OK):
    return plan_recovery(settings, reason, c, status, cause, NAMES, rtc_lost, now, NU)


def _codes(plan):
    return [a[1] for a in plan.alarms]


def _event(plan, etype):
    for name, fields in plan.events:
        if name == etype:
            return fields
    return None


def test_checkpoint_round_trip():
    c = _bolus_running(_checkpoint(), 500, 340)
    c.seq = 17
    c.suspended = False
    back = decode_checkpoint(c.encode())
    assert back.to_dict() == c.to_dict()
    assert back.recent_boluses == [(T0 - 3600, 2_000)]


def test_damaged_checkpoint_is_refused():
    data = bytearray(_checkpoint().encode())
    data[len(data) // 2] ^= 4
    assert "CRC" in str(raises(CorruptRecord, decode_checkpoint, bytes(data)))
    raises(CorruptRecord, decode_checkpoint, bytes(data[:40]))


def test_recent_boluses_stay_bounded():
    c = Checkpoint()
    for i in range(MAX_RECENT_BOLUSES + 5):
        c.add_bolus(i, 100 + i)
    assert len(c.recent_boluses) == MAX_RECENT_BOLUSES
    assert c.recent_boluses[-1] == (MAX_RECENT_BOLUSES + 4, 100 + MAX_RECENT_BOLUSES + 4)


def test_policy_writes_at_boot_and_after_each_state_change():
    policy = CheckpointPolicy()
    assert policy.due(0)
    policy.written(0)
    assert not policy.due(1000, delivering=True)
    policy.changed()
    assert policy.due(1000)


def test_policy_writes_every_interval_only_while_delivering():
    policy = CheckpointPolicy(interval_ms=300_000)
    policy.written(0)
    assert not policy.due(299_999, delivering=True)
    assert policy.due(300_000, delivering=True)
    assert not policy.due(10_000_000, delivering=False)


def test_policy_reserves_a_bounded_run_of_bolus_trains():
    policy = CheckpointPolicy(bolus_reserve_steps=340)
    policy.written(0)
    # First bolus train: not covered, reserve it and up to 340 steps in all.
    reserve = policy.before_train(100, "bolus", 8, more_steps=2000)
    assert reserve == 340
    policy.written(100, reserve, "bolus")
    writes = 1
    emitted = 8
    policy.train_done(8)
    while emitted < 2008:
        reserve = policy.before_train(100, "bolus", 8, more_steps=2000 - emitted)
        if reserve:
            # A checkpoint always covers the train about to run, never less.
            assert 8 <= reserve <= 340
            policy.written(100, reserve, "bolus")
            writes += 1
        policy.train_done(8)
        emitted += 8
    assert writes == 6  # 2008 steps / 340 per checkpoint, not one per train
    # The reservation never reaches past the end of the bolus.
    policy.written(0)
    assert policy.before_train(0, "bolus", 8, more_steps=20) == 28


def test_policy_a_train_of_another_kind_needs_its_own_checkpoint():
    policy = CheckpointPolicy(basal_reserve_steps=400)
    policy.written(0, 340, "bolus")
    # Basal reserves what the next 5 minutes accrue (170 steps at 3 U/h), within its bound.
    assert policy.before_train(0, "basal", 3, more_steps=170) == 173
    assert policy.before_train(0, "basal", 3, more_steps=5000) == 400
    assert policy.before_train(0, "bolus", 8) == 0


def test_a_full_checkpoint_fits_inline_in_littlefs_metadata():
    c = _bolus_running(_checkpoint(), 99_999, 340)
    c.seq = 10**6
    c.odometer_steps = 10**9
    c.suspend_reason = "occlusion"
    c.suspended_wall_s = T0
    for i in range(MAX_RECENT_BOLUSES):
        c.add_bolus(T0 + i, 25_000)
    assert len(c.encode()) <= 512


def test_recovery_resumes_basal_and_records_the_gap_and_the_cause():
    plan = _plan(_checkpoint(), now=T0 + 600)
    assert plan.deliver
    assert plan.alarms == []
    assert plan.reset_cause == "WDT_RESET"
    assert _event(plan, "reset") == {"cause": 3, "rtc_lost": False}
    assert _event(plan, "no_delivery") == {"from_wall_s": T0, "to_wall_s": T0 + 600, "seconds": 600}
    assert plan.temp == (0, 50, T0 + 1800)
    assert plan.recent_boluses == [(T0 - 3600, 2_000)]
    assert plan.reservoir_steps == 150_000


def test_recovery_drops_a_temp_basal_that_ended_meanwhile():
    assert _plan(_checkpoint(), now=T0 + 1800).temp is None


def test_interrupted_bolus_is_not_resumed_and_counts_its_train_in_flight():
    plan = _plan(_bolus_running(_checkpoint(), 500, 340))
    bolus = plan.interrupted_bolus
    assert bolus["delivered_steps"] == 840  # 500 done + the 340 reserved: never fewer
    assert bolus["delivered_mu"] == 840 * NU // 1_000_000
    assert plan.recent_boluses[-1] == (T0 - 30, 1236)
    assert ALARM_BOLUS_INTERRUPTED in _codes(plan)
    assert plan.deliver  # basal resumes; the bolus does not
    assert _event(plan, "bolus_interrupted")["uncertain_mu"] == 340 * NU // 1_000_000
    assert _event(plan, "delivery_uncertain") == {"steps": 340, "mu": 500}
    assert plan.odometer_steps == 2_000_340
    assert plan.reservoir_steps == 150_000 - 340


def test_in_flight_reservation_never_exceeds_what_the_bolus_had_left():
    plan = _plan(_bolus_running(_checkpoint(), 2000, 340))
    assert plan.interrupted_bolus["delivered_steps"] == 2037


def test_corrupt_settings_stop_delivery_and_offer_factory_settings():
    plan = _plan(_checkpoint(), settings=CORRUPT, reason="CRC mismatch")
    assert not plan.deliver
    assert plan.offer_factory_settings and not plan.use_factory_settings
    assert (HIGH, ALARM_CHECK_SETTINGS, "Check settings: CRC mismatch") in plan.alarms


def test_a_new_pump_asks_to_be_set_up():
    plan = plan_recovery(MISSING, None, None, MISSING, 1, NAMES, True, None, NU)
    assert not plan.deliver
    assert ALARM_SET_UP in _codes(plan)
    assert plan.reset_cause == "PWRON_RESET"


def test_a_lost_clock_holds_basal_until_the_time_is_set():
    plan = _plan(_checkpoint(), rtc_lost=True, now=None)
    assert not plan.deliver
    assert ALARM_SET_TIME in _codes(plan)
    assert plan.no_delivery_s is None


def test_a_lost_checkpoint_stops_delivery_with_an_alarm():
    plan = _plan(None, status=CORRUPT)
    assert not plan.deliver
    assert ALARM_STATE_LOST in _codes(plan)


def test_suspended_pump_stays_suspended_after_a_reset():
    c = _checkpoint()
    c.suspended = True
    c.suspend_reason = "occlusion"
    plan = _plan(c)
    assert not plan.deliver
    assert plan.suspended and plan.suspend_reason == "occlusion"


def test_old_boluses_leave_insulin_on_board_after_eight_hours():
    plan = _plan(_checkpoint(), now=T0 + 8 * 3600)
    assert plan.recent_boluses == []
