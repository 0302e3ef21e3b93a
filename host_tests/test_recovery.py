"""After a reset or a power cut the whole firmware recovers from flash, and never loses or
repeats a delivery: a cut at every flash operation of a day, random cuts, damaged files."""

import functools
import os

import machine
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pump.core import alarms as al
from pump.core import bolus as bolus_mod
from pump.core.state import OK
from pump.hal.storage import Storage
from sim import recovery_day as rd
from sim.hw.flashfs import FlashFS
from sim.pump import SimPump

# `make bench` runs 1000 (tools/bench_recovery.py); CI a few dozen.
EXAMPLES = int(os.environ.get("PUMP_POWER_CUT_EXAMPLES", "30"))
CHUNKS = 8  # the exhaustive run is split so that test workers share it


@functools.lru_cache(maxsize=1)
def _day_ops():
    return rd.count_ops()[0]


def _codes(app):
    return [a.code for a in app.alarms.alarms]


def _types(events):
    return [e[2] for e in events]


# ----- the day on flash, without a cut ------------------------------------------------------


def test_the_day_keeps_settings_checkpoints_and_every_event_on_flash():
    ops, sim = rd.count_ops()
    app = sim.app
    store = Storage(sim.flash)
    loaded, checkpoint = store.boot()
    assert loaded.value["therapy"].max_bolus_mu == rd.NEW_MAX_BOLUS_MU
    assert checkpoint.status == OK
    # Basal since the last checkpoint is covered by its reservation.
    c = checkpoint.value
    assert c.odometer_steps <= sim.driver.position_steps <= c.odometer_steps + c.in_flight_steps
    assert checkpoint.value.bolus is None and checkpoint.value.temp is None
    on_flash = [e[3] for e in store.log.since(0)]
    assert on_flash[-len(sim.events) :] == _types(sim.events)
    # A bolus is reserved train by train, basal 5 min ahead: not a write per step.
    trains = len(sim.deliveries)
    assert 20 <= app.persistence.writes < trains
    assert ops < 120


def test_history_reads_the_log_on_flash_newest_first():
    _ops, sim = rd.count_ops()
    history = sim.app.history(3)
    assert [h[3] for h in history] == _types(sim.events[-3:])[::-1]
    assert history[0][2] is not None  # wall-clock seconds: the clock is set


# ----- a cut at every flash operation ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_a_cut_at_every_flash_operation_of_the_day_loses_and_repeats_nothing(chunk):
    total = _day_ops()
    for op in range(1 + chunk, total + 1, CHUNKS):
        # Half the cuts keep the clock (a watchdog reset, a backup cell), half lose it.
        sim = rd.cut_day(op, clock_backup=op % 2 == 0)
        assert sim.cuts, "op %d: no cut" % op
        assert rd.check(sim) == [], "cut at op %d" % op
        if op % 2 == 0 and sim.app.persistence.plan.deliver:
            assert sim.app.therapy.suspended_at is None  # basal resumed by itself


def test_no_cut_happens_past_the_last_operation():
    sim = rd.cut_day(_day_ops() + 1)
    assert sim.cuts == []


def test_a_cut_during_the_boot_after_a_cut_is_survived_too():
    probe = rd.cut_at_instant(rd.MIN_MS + 2_000, clock_backup=True)
    boot_ops = probe.flash.ops
    for k in range(1, 12):
        sim = rd.new_day()
        sim.clock_backup = True
        sim.run_until(rd.MIN_MS + 2_000)  # a bolus is running
        sim.flash.cut_at(k)  # the k-th operation from here: during the next boot
        sim.power_loss(rd.OFF_MS)
        sim.run_until(sim.now_ms() + rd.AFTER_MS)
        assert len(sim.cuts) == 2, k
        assert rd.check(sim) == [], "second cut at boot op %d" % k
    assert boot_ops > 0


# ----- random cuts (hypothesis) --------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None)
@given(
    where=st.floats(min_value=0.0, max_value=1.0),
    at_write=st.booleans(),
    off_min=st.integers(min_value=0, max_value=30),
    clock_backup=st.booleans(),
)
def test_a_cut_at_a_random_write_or_instant_loses_and_repeats_nothing(
    where, at_write, off_min, clock_backup
):
    if at_write:
        sim = rd.cut_day(1 + int(where * (_day_ops() - 1)), off_min * rd.MIN_MS, clock_backup)
    else:
        t_ms = int(where * rd.END_MS)
        sim = rd.cut_at_instant(t_ms, off_min * rd.MIN_MS, clock_backup)
    assert rd.check(sim) == []


# ----- what the pump does after a reset ------------------------------------------------------


def _bolus_running_then_cut(clock_backup):
    sim = rd.new_day()
    sim.clock_backup = clock_backup
    sim.run_until(rd.MIN_MS + 1_200)  # 0.5 U bolus: two of its four trains out
    assert sim.app.therapy.bolus is not None
    cut = sim.power_loss(5 * rd.MIN_MS)
    return sim, cut


def test_an_interrupted_bolus_is_recorded_counted_in_iob_and_never_resumed():
    sim, cut = _bolus_running_then_cut(clock_backup=True)
    app = sim.app
    plan = app.persistence.plan
    given = sum(d[2] for d in sim.deliveries if d[1] == "bolus") + (
        cut["motor_steps"] - cut["reported_steps"]
    )
    recorded = plan.interrupted_bolus["delivered_steps"]
    assert given <= recorded <= given + rd.TRAIN_STEPS
    assert app.therapy.bolus is None
    assert al.BOLUS_INTERRUPTED in _codes(app)
    mech = sim.mechanics
    assert sum(mu for _t, mu in app.therapy.iob.entries()) == mech.mu_for_steps(recorded)
    after = sim.events[cut["events"] :]
    interrupted = [e for e in after if e[2] == "bolus_interrupted"][0]
    assert interrupted[3]["delivered_mu"] == mech.mu_for_steps(recorded)
    # The gap is a suspension record; basal resumes from the profile at once.
    gap = [e for e in after if e[2] == "no_delivery"][0]
    assert 300 <= gap[3]["seconds"] <= 302  # the 5 min off, plus the boot
    sim.run_until(sim.now_ms() + 2 * rd.MIN_MS)
    assert app.therapy.rate(app.now_ms()) == 1000
    assert not any(d[1] == "bolus" for d in sim.deliveries[cut["deliveries"] :])
    # A new bolus waits for the person to acknowledge the high-priority alarm.
    assert app.bolus(bolus_mod.NORMAL, 500) is not None
    app.acknowledge(al.BOLUS_INTERRUPTED)
    assert app.bolus(bolus_mod.NORMAL, 500) is None


def test_a_lost_clock_stops_basal_until_the_time_is_set():
    sim, cut = _bolus_running_then_cut(clock_backup=False)
    app = sim.app
    assert al.SET_TIME in _codes(app)
    assert app.therapy.suspended_at is not None
    sim.run_until(sim.now_ms() + 10 * rd.MIN_MS)
    assert sim.deliveries[cut["deliveries"] :] == []
    # Basal by time of day resumes once the person sets the time.
    assert app.set_time_of_day(8 * 3_600_000 + 20 * rd.MIN_MS) is None
    assert app.therapy.suspended_at is None
    assert al.SET_TIME not in _codes(app)
    sim.run_until(sim.now_ms() + 2 * rd.MIN_MS)
    assert any(d[1] == "basal" for d in sim.deliveries[cut["deliveries"] :])
    gap = [e for e in sim.events[cut["events"] :] if e[2] == "no_delivery"]
    assert gap and gap[0][3]["seconds"] > 0
    # And the RTC now holds a time after the last checkpoint: a later reset trusts it.
    sim.clock_backup = True
    sim.power_loss(1_000)
    assert al.SET_TIME not in _codes(sim.app)


def test_the_reset_cause_reservoir_temp_basal_and_suspension_are_restored():
    sim = rd.new_day()
    sim.clock_backup = True
    sim.run_until(2 * rd.MIN_MS + 30_000)  # the day's temp basal (150 %) runs
    before = sim.app.reservoir.remaining_steps
    sim.power_loss(0)
    app = sim.app
    assert app.reservoir.remaining_steps <= before
    assert before - app.reservoir.remaining_steps <= rd.BASAL_RESERVE_STEPS
    assert app.therapy.temp is not None and app.therapy.temp.value == 150
    assert app.therapy.rate(app.now_ms()) == 1500
    assert app.events.last("reset_cause")[3]["cause"] == "power_on"
    app.suspend()
    sim.run_until(sim.now_ms() + 1_000)
    sim.power_loss(60_000)
    assert sim.app.therapy.suspended_at is not None
    assert sim.app.therapy.suspend_reason == "person"


def test_a_watchdog_reset_is_recorded_with_its_cause():
    sim = rd.new_day()
    sim.run_until(rd.MIN_MS)
    sim.clock_backup = True
    sim._power_off()
    machine.set_reset_cause(machine.WDT_RESET)
    sim.clock.run_until(sim.clock.now_ns + 1_000_000)
    sim._boot()
    assert sim.app.events.last("reset")[3]["cause"] == machine.WDT_RESET
    assert al.RESET in _codes(sim.app)
    store = Storage(sim.flash)
    store.boot()
    last = list(store.log.newest_first())
    assert any(e[3] == "reset_cause" and e[4].get("cause") == "watchdog" for e in last)


# ----- damaged files at boot ------------------------------------------------------------------


def _damaged(fn, path="settings.rec"):
    sim = rd.new_day()
    sim.clock_backup = True
    sim.run_until(30_000)
    flash = sim.flash
    flash.files[path] = fn(flash.files[path])
    sim.power_loss(1_000)
    return sim


def _flip(data):
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x10
    return bytes(damaged)


@pytest.mark.parametrize(
    "damage",
    [
        _flip,
        lambda d: d[: len(d) - 7],
        lambda d: b"",
        lambda d: d.replace(b"PUMPSET 1 ", b"PUMPSET 9 ", 1),
    ],
    ids=["flipped-bit", "truncated", "empty", "wrong-version"],
)
def test_damaged_settings_stop_delivery_until_factory_settings_are_accepted(damage):
    sim = _damaged(damage)
    app = sim.app
    assert al.CHECK_SETTINGS in _codes(app)
    assert app.persistence.plan.offer_factory_settings
    assert app.therapy.suspended_at is not None
    before = len(sim.deliveries)
    sim.run_until(sim.now_ms() + 5 * rd.MIN_MS)
    assert len(sim.deliveries) == before  # never the factory settings by themselves
    assert app.accept_factory_defaults() is None
    assert al.CHECK_SETTINGS not in _codes(app)
    assert app.therapy.suspended_at is None
    sim.run_until(sim.now_ms() + 2 * rd.MIN_MS)
    assert len(sim.deliveries) > before
    assert Storage(sim.flash).settings.load().status == OK
    assert app.accept_factory_defaults() is not None  # offered once, not again


@pytest.mark.parametrize("damage", [_flip, lambda d: d[:20], lambda d: b""])
def test_damaged_checkpoints_stop_delivery_until_the_person_checks(damage):
    sim = rd.new_day()
    sim.clock_backup = True
    sim.run_until(30_000)
    for slot in ("ckpt_a.rec", "ckpt_b.rec"):
        if slot in sim.flash.files:
            sim.flash.files[slot] = damage(sim.flash.files[slot])
    sim.power_loss(1_000)
    app = sim.app
    assert al.STATE_LOST in _codes(app)
    assert app.therapy.suspended_at is not None
    assert app.resume() is not None  # not before the alarm is acknowledged
    app.acknowledge(al.STATE_LOST)
    assert app.resume() is None


def test_one_damaged_checkpoint_slot_falls_back_to_the_other():
    sim = rd.new_day()
    sim.clock_backup = True
    sim.run_until(90_000)
    store = Storage(sim.flash)
    store.boot()
    newest = store.checkpoint.slots[store.checkpoint._current]
    sim.flash.files[newest] = _flip(sim.flash.files[newest])
    sim.power_loss(1_000)
    assert al.STATE_LOST not in _codes(sim.app)
    assert sim.app.persistence.checkpoint_loaded.status == OK


def test_a_new_pump_asks_to_be_set_up_and_delivers_nothing():
    flash = FlashFS()
    flash.files["placeholder"] = b""  # not empty: the simulator does not set it up
    sim = SimPump(flash=flash, prepare_board=rd._no_display)
    app = sim.app
    assert al.SET_UP in _codes(app)
    assert al.SET_TIME in _codes(app)  # the RTC reads its power-on default
    sim.run_until(10 * rd.MIN_MS)
    assert sim.deliveries == []
    assert app.accept_factory_defaults() is None
    assert app.set_time_of_day(9 * 3_600_000) is None
    assert app.therapy.suspended_at is None
    sim.run_until(20 * rd.MIN_MS)
    assert sim.deliveries


def test_a_new_pump_still_asks_to_be_set_up_after_a_power_cut_and_a_lost_file_is_a_loss():
    """A pump never set up has written a checkpoint (its reservoir, its log): after a power
    cut it is still a new pump, not one whose settings were lost. Once set up, a settings
    file gone missing is a loss ("check settings")."""
    flash = FlashFS()
    flash.files["placeholder"] = b""
    sim = SimPump(flash=flash, prepare_board=rd._no_display)
    sim.run_until(30_000)
    assert any(n.startswith("ckpt") for n in flash.files)
    sim.power_loss(2_000)
    assert al.SET_UP in _codes(sim.app) and al.CHECK_SETTINGS not in _codes(sim.app)
    assert sim.app.accept_factory_defaults() is None
    sim.run_until(sim.now_ms() + 30_000)
    del flash.files["settings.rec"]
    sim.power_loss(2_000)
    assert al.CHECK_SETTINGS in _codes(sim.app) and al.SET_UP not in _codes(sim.app)
    assert sim.app.therapy.suspended_at is not None


def test_a_checkpoint_written_before_the_set_up_field_counts_as_set_up():
    from pump.core import state

    c = state.Checkpoint()
    fields = c.to_dict()
    del fields["u"]
    data = state.encode_json_record(state.CHECKPOINT_MAGIC, state.CHECKPOINT_VERSION, fields)
    assert state.decode_checkpoint(data).set_up is True
    c.set_up = False
    assert state.decode_checkpoint(c.encode()).set_up is False


def test_a_corrupt_log_segment_is_read_past_and_reported():
    _ops, sim = rd.count_ops()
    name = sorted(n for n in sim.flash.files if n.startswith("ev"))[-1]
    sim.flash.files[name] = _flip(sim.flash.files[name])
    sim.clock_backup = True
    sim.power_loss(1_000)
    history = sim.app.history(100)
    assert history
    assert sim.app.persistence.storage.log.skipped + sim.app.persistence.storage.log.torn >= 1


# ----- scenario action ------------------------------------------------------------------------


def test_scenario_power_loss_cuts_restores_and_reports_the_cuts():
    import scenario as runner

    data = {
        "settings": {"basal": [["00:00", 1.0]], "bolus_speed": 15, "start_time": "08:00"},
        "run": {"duration_min": 60},
        "plant": {"seed": 3},
        "actions": [
            {"at_min": 5, "bolus": 1.0},
            {"at_min": 5.05, "power_loss": {"off_min": 5}},
            {"at_min": 20, "set_time": "08:30"},
            {"at_min": 30, "power_loss": {"off_min": 1, "random": True, "keep_clock": True}},
        ],
    }
    result = runner.run(runner.Scenario(data, "cuts"))
    summary = result.summary()
    cuts = summary["power_cuts"]
    assert [c["random"] for c in cuts] == [False, True]
    assert cuts[0]["t_ms"] == 5 * rd.MIN_MS + 3_000 and cuts[0]["off_ms"] == 5 * rd.MIN_MS
    assert summary["events"]["bolus_interrupted"] == 1
    assert summary["events"]["resumed"] == 1  # basal back once the time was set
    with pytest.raises(runner.ScenarioError, match="off_min"):
        runner.Scenario({"actions": [{"at_min": 1, "power_loss": {"off": 5}}]})


def test_the_history_screen_shows_events_from_before_a_power_cut_read_from_flash():
    sim = SimPump(flash=FlashFS(), start_ms_of_day=8 * 3_600_000)
    sim.clock_backup = True
    sim.settle()
    sim.app.bolus(bolus_mod.NORMAL, 1000)
    sim.run_until(sim.now_ms() + 120_000)
    sim.power_loss(5 * 60_000)
    sim.settle()
    sim.press("OK")  # the menu
    for _ in range(6):
        sim.press("DOWN")  # 'History'
    sim.press("OK")
    assert sim.app.ui.screen_name() == "history", sim.screen_text()
    shown = sim.screen_text()
    assert "08:07 Off 6 min" in shown, shown  # since the last checkpoint before the cut
    assert "08:07 Start" in shown, shown  # the boot after 5 min off
    for _ in range(7):
        sim.press("DOWN")
    shown = sim.screen_text()
    assert "08:00 End 0.99U" in shown, shown  # the bolus, from before the cut
