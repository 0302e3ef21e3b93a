"""Tests of the physical plant model: volumes, pressure, friction, load cell, end stop, stall."""

import math
import statistics

import pytest

from sim import hw

hw.install()

import vclock  # noqa: E402
from devices import StepperDriverModel  # noqa: E402
from machine import Pin  # noqa: E402
from plant import (  # noqa: E402
    LINE_DISCONNECTED,
    LINE_OCCLUDED,
    LINE_OPEN,
    LINE_PARTIAL,
    OutflowRecorder,
    Plant,
    PlantParams,
    poiseuille_kpa_s_per_ul,
)

S = vclock.NS_PER_S
MS = vclock.NS_PER_MS
PRESETS = ("typical", "hard", "easy")


class Rig:
    """STEP/DIR/EN pins toggled by hand, the plant listening to them."""

    def __init__(self, params=None, seed=1, switches=False, **kw):
        self.clock = hw.reset()
        if switches:
            # End stop to GND with the pull-up on; DIAG read as a plain input.
            kw["end_stop_pin"] = self.end_stop = Pin(5, Pin.IN, Pin.PULL_UP)
            kw["diag_pin"] = self.diag = Pin(14, Pin.IN)
        self.step_pin = Pin(2, Pin.OUT, value=0)
        self.step_pin.record = False
        self.dir_pin = Pin(3, Pin.OUT, value=1)
        self.en_pin = Pin(4, Pin.OUT, value=0)
        self.plant = Plant(
            self.clock,
            self.step_pin,
            self.dir_pin,
            self.en_pin,
            PlantParams.typical() if params is None else params,
            seed,
            **kw,
        )

    def pulses(self, n, interval_ns=MS, forward=True):
        """n step pulses, one every interval_ns, the clock advanced before each."""
        self.dir_pin.value(1 if forward else 0)
        for _ in range(n):
            self.clock.run_until(self.clock.now_ns + interval_ns)
            self.step_pin.value(1)
            self.step_pin.value(0)

    def wait_s(self, seconds):
        self.clock.run_until(self.clock.now_ns + int(seconds * S))


def balance_nl(plant):
    """Volume pushed minus where it went: zero when nothing is created or lost."""
    return (
        plant.pushed_nl()
        + plant.stored_at_start_nl
        - plant.delivered_nl()
        - plant.spilled_nl()
        - plant.stored_nl()
    )


def test_one_microstep_of_the_default_board_pushes_14_725_nl():
    from boards.pico_default import MECHANICS

    rig = Rig(mechanics=MECHANICS)
    assert rig.plant.um_per_step == 0.25
    assert rig.plant.step_nl == pytest.approx(14.725, abs=0.001)
    rig.pulses(100)
    assert rig.plant.pushed_nl() == pytest.approx(1472.5, abs=0.1)
    assert rig.plant.plunger_position_um() - rig.plant.stopper_position_um() == 0


def test_line_resistance_follows_hagen_poiseuille():
    # 0.38 mm bore, 60 cm, water-like insulin: 8 mu L / (pi r^4) = 1.17e12 Pa s/m^3.
    assert poiseuille_kpa_s_per_ul(380, 600, 1.0) == pytest.approx(1.172, rel=0.002)
    p = PlantParams.typical()
    assert p.line_resistance_kpa_s_per_ul > p.disconnect_resistance_kpa_s_per_ul
    longer = p.replace(tubing_length_mm=1200)
    assert longer.line_resistance_kpa_s_per_ul == pytest.approx(
        p.line_resistance_kpa_s_per_ul + p.disconnect_resistance_kpa_s_per_ul, rel=1e-9
    )


def test_hard_preset_is_the_worst_end_of_each_range():
    hard, typical, easy = PlantParams.hard(), PlantParams.typical(), PlantParams.easy()
    assert hard.sliding_friction_n == 1.5
    assert hard.friction_noise_n == 0.2
    assert hard.compliance_ul_per_kpa == 0.5
    assert hard.load_cell_noise_n == 0.01
    for name in ("sliding_friction_n", "friction_noise_n", "compliance_ul_per_kpa",
                 "load_cell_noise_n", "load_cell_drift_n_per_h", "load_cell_drift_span_n",
                 "breakaway_friction_n", "friction_jitter_n", "tissue_backpressure_kpa",
                 "line_resistance_kpa_s_per_ul", "stall_force_n"):
        assert getattr(hard, name) >= getattr(typical, name) >= getattr(easy, name), name
    # Shorter correlation length and faster stiction recovery are harder.
    assert hard.friction_knot_um <= typical.friction_knot_um <= easy.friction_knot_um
    assert hard.stiction_growth_s <= typical.stiction_growth_s <= easy.stiction_growth_s
    with pytest.raises(TypeError):
        PlantParams.typical(frction_noise_n=0.1)


def test_volume_is_conserved_through_every_line_state():
    rig = Rig(PlantParams.hard())
    plant = rig.plant
    rig.pulses(300, interval_ns=MS)
    rig.wait_s(5)
    plant.occlude()
    rig.pulses(200, interval_ns=10 * MS)
    plant.partial_occlusion(80)
    rig.pulses(200, interval_ns=10 * MS)
    plant.disconnect()
    rig.pulses(100, interval_ns=MS)
    rig.wait_s(2)
    plant.clear()
    rig.pulses(50, interval_ns=MS, forward=False)
    rig.pulses(400, interval_ns=2 * S)
    rig.wait_s(60)
    assert plant.spilled_nl() > 100 * plant.step_nl
    assert plant.delivered_nl() > 300 * plant.step_nl
    assert balance_nl(plant) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("preset", PRESETS)
def test_occluded_pressure_rises_by_step_volume_over_compliance(preset):
    params = getattr(PlantParams, preset)()
    rig = Rig(params)
    plant = rig.plant
    plant.occlude()
    p0 = plant.pressure_kpa()
    rig.pulses(100, interval_ns=60 * S)  # slow: an open line would have drained meanwhile
    per_step_kpa = plant.step_nl / 1000.0 / params.compliance_ul_per_kpa
    assert plant.pressure_kpa() - p0 == pytest.approx(100 * per_step_kpa, rel=1e-9)
    assert plant.delivered_nl() == 0.0
    assert plant.occluded_force_per_step_n() == pytest.approx(per_step_kpa * plant.n_per_kpa)


@pytest.mark.parametrize("preset", PRESETS)
def test_open_line_relaxes_with_time_constant_r_times_c(preset):
    params = getattr(PlantParams, preset)()
    rig = Rig(params)
    plant = rig.plant
    plant.occlude()
    rig.pulses(400, interval_ns=MS)
    rest = params.tissue_backpressure_kpa
    excess0 = plant.pressure_kpa() - rest
    delivered0 = plant.delivered_nl()
    plant.clear()
    tau_s = params.line_resistance_kpa_s_per_ul * params.compliance_ul_per_kpa
    assert plant.time_constant_s() == pytest.approx(tau_s)
    rig.wait_s(tau_s)
    assert plant.pressure_kpa() - rest == pytest.approx(excess0 * math.exp(-1), rel=1e-6)
    rig.wait_s(4 * tau_s)
    assert plant.pressure_kpa() - rest == pytest.approx(excess0 * math.exp(-5), rel=1e-6)
    released = plant.delivered_nl() - delivered0
    expected = params.compliance_ul_per_kpa * excess0 * (1 - math.exp(-5)) * 1000
    assert released == pytest.approx(expected, rel=1e-6)


def test_partial_occlusion_of_80_percent_leaves_a_fifth_of_the_flow():
    params = PlantParams.typical()
    outflows = {}
    for percent in (0, 80):
        rig = Rig(params)
        plant = rig.plant
        plant.occlude()
        rig.pulses(400, interval_ns=MS)
        plant.partial_occlusion(percent)
        before = plant.delivered_nl()
        rig.wait_s(0.001)  # far below R*C: the flow is the initial one
        outflows[percent] = plant.delivered_nl() - before
        if percent:
            assert plant.line_state() == LINE_PARTIAL
            tau_s = params.line_resistance_kpa_s_per_ul * params.compliance_ul_per_kpa
            assert plant.time_constant_s() == pytest.approx(5 * tau_s)
        else:
            assert plant.line_state() == LINE_OPEN
    assert outflows[80] / outflows[0] == pytest.approx(0.2, rel=0.01)


def test_disconnected_line_spills_and_delivers_nothing():
    rig = Rig(PlantParams.typical())
    plant = rig.plant
    rig.pulses(50)
    rig.wait_s(10)
    delivered = plant.delivered_nl()
    stored = plant.stored_nl()  # back-pressure volume, lost too once open to the air
    plant.disconnect()
    assert plant.line_state() == LINE_DISCONNECTED
    rig.pulses(1000, interval_ns=MS)
    rig.wait_s(30)
    assert plant.delivered_nl() == delivered
    assert plant.spilled_nl() == pytest.approx(1000 * plant.step_nl + stored, rel=1e-6)
    assert plant.pressure_kpa() == pytest.approx(0.0, abs=1e-9)


def test_reopening_after_an_occlusion_releases_the_stored_volume():
    rig = Rig(PlantParams.hard())
    plant = rig.plant
    rig.wait_s(10)
    plant.occlude()
    assert plant.line_state() == LINE_OCCLUDED
    delivered = plant.delivered_nl()
    rig.pulses(500, interval_ns=MS)
    rig.wait_s(3600)
    assert plant.delivered_nl() == delivered  # held for an hour
    plant.clear()
    rig.wait_s(60)
    assert plant.delivered_nl() - delivered == pytest.approx(500 * plant.step_nl, rel=1e-6)


def test_backing_the_plunger_off_before_reopening_prevents_the_bolus():
    rig = Rig(PlantParams.hard())
    plant = rig.plant
    rig.wait_s(10)
    plant.occlude()
    delivered = plant.delivered_nl()
    rig.pulses(500, interval_ns=MS)
    rig.pulses(500, interval_ns=MS, forward=False)
    plant.clear()
    rig.wait_s(60)
    assert abs(plant.delivered_nl() - delivered) < 1e-6


def test_end_stop_pin_is_driven_low_when_the_pusher_is_fully_back():
    params = PlantParams.typical(end_stop_gap_um=100, reservoir_ul=3000)  # 400 steps back
    rig = Rig(params, switches=True)
    plant, end_stop, diag = rig.plant, rig.end_stop, rig.diag
    assert end_stop.value() == 1 and not plant.at_end_stop()
    rig.pulses(399, forward=False)
    assert end_stop.value() == 1
    assert not plant.engaged()  # the stopper stayed at the back of the barrel
    rig.pulses(1, forward=False)
    assert plant.at_end_stop() and end_stop.value() == 0
    # Past the switch to the frame (500 um of overtravel), then the motor stalls.
    rig.pulses(2000, forward=False)
    assert diag.value() == 0 and end_stop.value() == 0
    rig.pulses(1, forward=False)
    assert plant.stalled() and diag.value() == 1
    assert plant.position_steps() == -2000
    rig.pulses(2001)
    assert diag.value() == 0 and end_stop.value() == 1
    # Forward again until the pusher meets the stopper and takes it.
    rig.pulses(399)
    assert plant.engaged()


def test_motor_stalls_above_the_stall_force_and_raises_diag():
    clock = hw.reset()
    diag = Pin(14, Pin.IN)
    step = Pin(2, Pin.OUT, value=0)
    direction = Pin(3, Pin.OUT, value=1)
    params = PlantParams.typical(stall_force_n=5.0)
    plant = Plant(clock, step, direction, None, params, 3, diag_pin=diag)
    plant.occlude()

    def pulse():
        clock.run_until(clock.now_ns + MS)
        step.value(1)
        step.value(0)

    while not plant.stalled():
        pulse()
        assert plant.position_steps() < 200_000
    stalled_at = plant.position_steps()
    assert diag.value() == 1
    assert plant.true_force_n() <= 5.0
    assert plant.true_force_n() + plant.occluded_force_per_step_n() > 5.0 - 0.1
    for _ in range(10):
        pulse()
    assert plant.position_steps() == stalled_at  # the motor skips
    assert plant.steps_skipped == 11
    direction.value(0)
    pulse()
    assert not plant.stalled() and diag.value() == 0
    assert plant.position_steps() == stalled_at - 1


def test_plunger_bottoms_out_when_the_reservoir_is_empty():
    rig = Rig(PlantParams.typical(reservoir_ul=1))  # 68 steps of insulin
    plant = rig.plant
    rig.pulses(67)
    assert not plant.bottomed_out()
    rig.pulses(1)
    assert plant.bottomed_out() and plant.reservoir_nl() == 0
    pushed = plant.pushed_nl()
    rig.pulses(500)
    assert plant.pushed_nl() == pushed
    assert plant.stalled()  # the barrel's end holds the plunger: the motor skips
    rig.wait_s(10)
    assert plant.delivered_nl() == pytest.approx(pushed, rel=1e-6)


def test_steps_while_the_driver_is_disabled_do_not_move_the_plunger():
    rig = Rig()
    rig.en_pin.value(1)
    rig.pulses(10)
    assert rig.plant.position_steps() == rig.plant._stopper
    assert rig.plant.steps_while_disabled == 10
    assert rig.plant.pushed_nl() == 0


def test_friction_profile_varies_along_the_barrel_with_the_documented_rms():
    params = PlantParams.hard()
    plant = Rig(params, seed=7).plant
    start = plant.position_steps()
    values = [plant.sliding_friction_at_n(start + i * 40) for i in range(4000)]
    assert statistics.fmean(values) == pytest.approx(params.sliding_friction_n, abs=0.03)
    assert statistics.pstdev(values) == pytest.approx(params.friction_noise_n, rel=0.2)
    # Spatially correlated: neighbouring microsteps differ far less than distant ones.
    near = [abs(plant.sliding_friction_at_n(start + i * 1000 + 10) -
                plant.sliding_friction_at_n(start + i * 1000)) for i in range(150)]
    far = [abs(plant.sliding_friction_at_n(start + i * 1000 + 1000) -
               plant.sliding_friction_at_n(start + i * 1000)) for i in range(150)]
    assert statistics.fmean(near) < 0.1 * statistics.fmean(far)


def test_force_while_sliding_is_pressure_times_area_plus_friction():
    rig = Rig(PlantParams.typical())
    plant = rig.plant
    rig.pulses(2000, interval_ns=MS)  # a bolus at 1000 steps/s
    expected = plant.pressure_kpa() * plant.n_per_kpa + plant.sliding_friction_at_n(
        plant.position_steps()
    )
    assert plant.true_force_n() == pytest.approx(expected, abs=3 * plant.params.friction_jitter_n)


def test_breakaway_after_a_long_rest_then_sliding():
    params = PlantParams.hard(friction_jitter_n=0.0)
    rig = Rig(params)
    plant = rig.plant
    rig.wait_s(3600)
    forces = []
    for _ in range(600):
        rig.pulses(1, interval_ns=MS)
        forces.append(plant.friction_n())
    sliding = plant.sliding_friction_at_n(plant.position_steps())
    assert max(forces) > sliding + 0.9 * (params.breakaway_friction_n - params.sliding_friction_n)
    assert forces[-1] == pytest.approx(sliding, abs=1e-9)


def test_reading_at_rest_in_an_open_line_settles_to_a_stationary_value():
    rig = Rig(PlantParams.hard())
    plant = rig.plant
    rig.pulses(1000, interval_ns=MS)
    rig.wait_s(600)
    settled = plant.true_force_n()
    rig.wait_s(600)
    assert plant.true_force_n() == pytest.approx(settled, abs=1e-9)
    r = plant.params.contact_relax_fraction
    sliding = plant.sliding_friction_at_n(plant.position_steps())
    expected = plant.params.tissue_backpressure_kpa * plant.n_per_kpa + r * sliding
    assert settled == pytest.approx(expected, abs=0.2)


@pytest.mark.parametrize("preset", PRESETS)
def test_load_cell_noise_rms_matches_its_parameter(preset):
    params = getattr(PlantParams, preset)()
    plant = Rig(params).plant
    true = plant.true_force_n() + plant.load_cell_drift_n()
    readings = [plant.load_cell_force_n() - true for _ in range(4000)]
    rms = math.sqrt(statistics.fmean(r * r for r in readings))
    assert rms == pytest.approx(params.load_cell_noise_n, rel=0.05)
    assert len(set(readings)) == len(readings)  # fresh noise on every call


@pytest.mark.parametrize("preset", PRESETS)
def test_load_cell_drift_stays_within_its_rate_and_span(preset):
    params = getattr(PlantParams, preset)()
    rig = Rig(params)
    plant = rig.plant
    drift = []
    for _ in range(3 * 24 * 60):
        rig.wait_s(60)
        drift.append(plant.load_cell_drift_n())
    rate_per_30_min = params.load_cell_drift_n_per_h / 2
    changes = [abs(drift[i + 30] - drift[i]) for i in range(len(drift) - 30)]
    assert max(changes) <= rate_per_30_min + 1e-12
    assert max(changes) > 0.3 * rate_per_30_min  # it does drift
    assert max(abs(d) for d in drift) <= params.load_cell_drift_span_n + 1e-12


def test_same_seed_same_plant_other_seed_other_plant():
    def run(seed):
        rig = Rig(PlantParams.hard(), seed=seed)
        out = []
        for _ in range(20):
            rig.pulses(50, interval_ns=10 * MS)
            rig.wait_s(120)
            out.append(rig.plant.load_cell_force_n())
        return out

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_reading_the_load_cell_does_not_change_the_physics():
    def run(extra_reads):
        rig = Rig(PlantParams.hard(), seed=9)
        for _ in range(20):
            rig.pulses(50, interval_ns=10 * MS)
            for _ in range(extra_reads):
                rig.plant.load_cell_force_n()
        return rig.plant.true_force_n(), rig.plant.load_cell_drift_n()

    assert run(0) == run(7)


def test_attaches_to_a_stepper_driver_model():
    clock = hw.reset()
    step = Pin(2, Pin.OUT, value=0)
    direction = Pin(3, Pin.OUT, value=0)
    en = Pin(4, Pin.OUT, value=0)
    driver = StepperDriverModel(step, direction, en, dir_forward_level=0)
    plant = Plant.on_driver(driver, clock, PlantParams.easy(), seed=2)
    start = plant.position_steps()
    for _ in range(25):
        clock.run_until(clock.now_ns + MS)
        step.value(1)
        step.value(0)
    assert driver.position_steps == 25
    assert plant.position_steps() - start == 25
    plant.detach()
    step.value(1)
    assert driver.position_steps == 26 and plant.position_steps() - start == 25


def test_a_new_reservoir_needs_the_pusher_rewound_and_is_found_by_touch():
    rig = Rig(PlantParams.typical(end_stop_gap_um=100, reservoir_ul=3000))
    plant = rig.plant
    with pytest.raises(ValueError):
        plant.change_reservoir(3000)  # its stopper would sit where the pusher is
    rig.pulses(600, forward=False)
    plant.change_reservoir(2999.9)  # the stopper sits a little in front of the full mark
    assert not plant.engaged()
    assert plant.true_force_n() == 0.0
    gap_steps = (plant.stopper_position_um() - plant.plunger_position_um()) / plant.um_per_step
    assert gap_steps == 600 + round(100 / plant.step_nl)
    steps = 0
    while not plant.engaged():
        rig.pulses(1)
        steps += 1
    assert steps == gap_steps
    assert plant.true_force_n() == pytest.approx(0.0, abs=1e-12)
    rig.pulses(20)
    assert plant.true_force_n() > 0.0


def test_outflow_recorder_samples_every_30_s(tmp_path):
    rig = Rig(PlantParams.typical())
    recorder = OutflowRecorder(rig.plant, rig.clock)
    for _ in range(10):
        rig.pulses(20, interval_ns=MS)
        rig.wait_s(18)
    recorder.stop()
    rig.wait_s(60)
    times = [t for t, _ in recorder.rows]
    assert times == list(range(0, times[-1] + 1, 30_000))
    assert times[-1] == 180_000
    assert all(isinstance(nl, int) for _, nl in recorder.rows)
    amounts = [nl for _, nl in recorder.rows]
    assert amounts == sorted(amounts) and amounts[-1] > 0
    path = tmp_path / "outflow.csv"
    recorder.write_csv(str(path))
    lines = path.read_text().splitlines()
    assert lines[0] == "t_ms,delivered_nl"
    assert lines[1:] == ["%d,%d" % row for row in recorder.rows]


@pytest.mark.slow
def test_a_week_of_basal_is_fast_and_delivers_what_was_pushed():
    # 1 U/h on the default board: 679 steps an hour, as 34-step trains every 3 minutes.
    rig = Rig(PlantParams.hard())
    plant = rig.plant
    clock = rig.clock
    for _ in range(7 * 24 * 20):
        t = clock.now_ns
        for i in range(34):
            clock.run_until(t + i * 2 * MS)
            plant.step(1)
        clock.run_until(t + 180 * S)
    assert plant.pushed_nl() == pytest.approx(7 * 24 * 20 * 34 * plant.step_nl)
    assert balance_nl(plant) == pytest.approx(0.0, abs=1e-3)  # float rounding over 2.4 mL
    assert plant.delivered_nl() == pytest.approx(plant.pushed_nl(), rel=1e-4)
