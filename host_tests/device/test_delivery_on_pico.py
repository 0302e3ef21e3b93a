"""Delivery by the firmware on MicroPython's rp2 port (RPI_PICO image) in an emulated RP2040.

One pump for the module, from an erased flash: `make flash` to its USB port, boot,
`pumpctl setup` confirmed with OK on the pump; then basal, a bolus, an occlusion, each
counted at the STEP pin. Figures (steps, heap read from RAM) are printed for the record.
The emulator runs the pump at about half real time, so each test waits only as long as
the behaviour it checks needs (the durations are in each test's docstring). The other
module (test_recovery_and_screens_on_pico.py) runs on a second pump beside this one.
"""

import devicekit
import pytest

pytestmark = pytest.mark.device

# One basal step every 6.6 s at 0.8 U/h: three minutes hold 27 of them.
BASAL_MU_PER_H = 800
BASAL_WINDOW_MS = 180_000


@pytest.fixture(scope="module")
def pump():
    rig = devicekit.emu_rig.Rig()
    try:
        pump = devicekit.Pump(rig)
        pump.flash_code = pump.make_flash()
        pump.heap_at_boot = None
        yield pump
    finally:
        rig.close()


def test_make_flash_boots_the_firmware_with_its_self_test_passed(pump):
    """`make flash` over the pty from an erased flash; the pump answers and passes its
    self-test; `pumpctl setup` with OK on the pump starts basal with no alarm left
    but the reset that `make flash` made."""
    assert pump.flash_code == 0, pump.flash_output[-2000:]
    assert "verified" in pump.flash_output
    before = pump.status()
    assert before["suspended"] == 1  # a new pump: no settings yet
    alarms = pump.alarms()
    assert "self_test" not in alarms
    assert "set_up" in alarms
    code, out = pump.pumpctl("setup", confirm=True)
    assert code == 0, out
    status = pump.status()
    assert status["suspended"] == 0
    assert status["basal_mu_per_h"] == BASAL_MU_PER_H
    assert pump.alarms() <= {"reset"}, status
    heap = pump.rig.heap()
    pump.heap_at_boot = heap
    pump.report("after boot and setup", free=heap["free"], largest=heap["largest"],
           flash_s=round(pump.flash_s))
    assert not pump.tracebacks(), pump.tracebacks()


def test_basal_counted_at_the_step_pin_is_within_one_step_of_ideal(pump):
    """Three emulated minutes of 0.8 U/h (27 steps), counted on the STEP pin. A line test
    (33 steps back and forth every 3 minutes) falls in the window: its steps cancel."""
    rig = pump.rig
    if pump.status()["suspended"]:
        pytest.skip("the pump was not set up (see the first test)")
    t0, _ = pump.quiet_ns()
    rig.wait_ms(BASAL_WINDOW_MS)
    t1, log = pump.quiet_ns()  # the window ends with no line test half done
    delivery = [ns for ns in devicekit.split_steps(log)[0] if t0 <= ns <= t1]
    mech = devicekit.mechanics()
    ideal = BASAL_MU_PER_H * 1_000_000 / mech.nu_per_step * (t1 - t0) / 3.6e12
    pump.report("basal", steps=len(delivery), ideal=round(ideal, 2),
           window_s=round((t1 - t0) / 1e9, 1))
    runs = [(d, len(steps), round(steps[0] / 1e9, 1)) for d, steps in devicekit.step_runs(log)
            if steps[-1] >= t0]
    assert abs(len(delivery) - ideal) <= 1.0, runs


def test_a_half_unit_bolus_from_pumpctl_gives_340_steps_at_the_pin(pump):
    """`pumpctl bolus 0.5`, OK on the pump: 340 +/- 1 steps at the pin beyond basal, and
    the pump's record of the bolus equal to them."""
    rig = pump.rig
    if pump.status()["suspended"]:
        pytest.skip("the pump was not set up (see the first test)")
    t0, _ = pump.quiet_ns()
    code, out = pump.pumpctl("bolus", "0.5", confirm=True)
    assert code == 0, out
    # The pump answers status through the bolus (on the stock image it once ran out of
    # heap here: a few KB free, 752 B the largest block).
    done = pump.wait_for(lambda: pump.status()["bolus_mu"] == 0, 120_000, 2000)
    assert done
    t1, log = pump.quiet_ns()
    delivery = [ns for ns in devicekit.split_steps(log)[0] if t0 <= ns <= t1]
    mech = devicekit.mechanics()
    basal = BASAL_MU_PER_H * 1_000_000 / mech.nu_per_step * (t1 - t0) / 3.6e12
    events = [e for e in pump.history(30) if e.get("type") == "bolus_finished"]
    assert events, "no finished bolus in the pump's history"
    recorded = events[-1]
    heap = rig.heap()
    pump.report("bolus 0.5 U", pin_steps=len(delivery), basal_in_window=round(basal, 2),
           record=recorded, free=heap["free"], largest=heap["largest"])
    bolus_steps = len(delivery) - basal  # basal's own steps go on beside the bolus
    assert abs(bolus_steps - 340) <= 1.5
    # 0.5 U is 339.6 steps: the pump gives whole steps and carries the rest to the next.
    assert abs(int(recorded["steps"]) - 340) <= 1, recorded
    assert abs(int(recorded["steps"]) - bolus_steps) <= 1, (recorded, bolus_steps)
    assert not pump.tracebacks(), pump.tracebacks()


def test_an_occluded_line_raises_the_alarm_and_stops_the_motor(pump):
    """The plant's line closed, then a 2 U bolus: the force climbs about 9 mN a step and
    the pump must alarm (line test or the 8 N ceiling) before 2 U is pushed, and the motor
    must push no further (it may back off; five emulated seconds watched)."""
    rig = pump.rig
    if pump.status()["suspended"]:
        pytest.skip("the pump was not set up (see the first test)")
    rig.set_line("occluded")
    start = rig.steps()
    code, out = pump.pumpctl("bolus", "2", confirm=True)
    assert code == 0, out
    alarmed = pump.wait_for(lambda: "occlusion" in pump.alarms(), 180_000, 2000)
    assert alarmed, pump.status()
    moved = rig.steps()
    rig.wait_ms(5000)
    later = rig.steps()
    pushed = moved["forward"] - start["forward"]
    pump.report("occlusion", forward_steps_to_alarm=pushed,
                backed_off=later["backward"] - start["backward"],
                force_n=round(rig.plant.true_force_n(), 2))
    # Backing off to relieve the pressure is the pump's answer; pushing on is not.
    assert later["forward"] == moved["forward"], "the motor pushed on after the occlusion alarm"
    assert pushed < devicekit.mechanics().steps_for_mu(2000)[0]
    rig.set_line("open")
