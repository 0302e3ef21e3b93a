"""Force and pressure from raw samples, and the sensor fault rules (no data, stuck, range)."""

from support import raises

from pump.core.pressure import (
    HX711_RAW_MAX,
    HX711_RAW_MIN,
    LOAD_CELL_5KG_COUNTS_PER_N,
    LOAD_CELL_5KG_RATED_MN,
    NO_DATA,
    RANGE,
    STUCK,
    LoadCellCalibration,
    PressureSensor,
    TableCalibration,
    muldiv,
    plunger_area_um2,
    pressure_pa,
)

CPN = LOAD_CELL_5KG_COUNTS_PER_N
OFFSET = 120_000
PERIOD_MS = 100  # HX711 at 10 samples/s


class Lcg:
    """Deterministic noise (MicroPython has no `random` here)."""

    def __init__(self, seed=7):
        self.state = seed

    def counts(self, amplitude):
        self.state = (1103515245 * self.state + 12345) & 0x7FFFFFFF
        return self.state % (2 * amplitude + 1) - amplitude


def raw_for(force_mn):
    return OFFSET + force_mn * CPN // 1000


def load_cell_sensor(**kw):
    cal = LoadCellCalibration(OFFSET, CPN)
    return PressureSensor.for_load_cell(cal, PERIOD_MS, LOAD_CELL_5KG_RATED_MN, **kw)


def feed(sensor, t_ms, raws):
    """One sample per period from t_ms; returns (next time, results)."""
    out = []
    for raw in raws:
        out.append(sensor.sample(t_ms, raw))
        t_ms += PERIOD_MS
    return t_ms, out


def noisy(force_mn, n, amplitude=60, seed=7):
    lcg = Lcg(seed)
    return [raw_for(force_mn) + lcg.counts(amplitude) for _ in range(n)]


def test_load_cell_counts_become_milli_newtons_rounded():
    cal = LoadCellCalibration(OFFSET, CPN)
    assert cal.force_mn(OFFSET) == 0
    assert cal.force_mn(OFFSET + CPN) == 1000
    assert cal.force_mn(OFFSET - CPN) == -1000
    assert cal.force_mn(OFFSET + 10 * CPN + CPN // 2 + 1) == 10_500
    # Half a milli-newton is 21.9 counts: 21 rounds down, 22 up, on both sides of zero.
    assert cal.force_mn(OFFSET + 21) == 0 and cal.force_mn(OFFSET + 22) == 1
    assert cal.force_mn(OFFSET - 22) == -1 and cal.force_mn(OFFSET - 21) == 0
    # Full scale of the converter stays exact (no float, no overflow).
    assert cal.force_mn(HX711_RAW_MAX) == round((HX711_RAW_MAX - OFFSET) * 1000 / CPN)
    # A bridge wired the other way round: a negative scale.
    assert LoadCellCalibration(0, -CPN).force_mn(-2 * CPN) == 2000
    raises(ValueError, LoadCellCalibration, 0, 0)


def test_tare_moves_the_zero():
    cal = LoadCellCalibration(0, CPN)
    cal.tare(OFFSET)
    assert cal.force_mn(OFFSET + 3 * CPN) == 3000


def test_muldiv_is_exact_floor():
    for a, b, c in ((7, 1000, 3), (-7, 1000, 3), (8_388_607, 1000, 43_797), (0, 5, 9)):
        assert muldiv(a, b, c) == (a * b) // c


def test_plunger_area_and_pressure():
    area = plunger_area_um2(8660)  # the default 3 mL syringe: 58.90 mm^2
    assert area == 58_901_412
    assert pressure_pa(1000, area) == 16_977  # 1 N on 58.9 mm^2
    assert pressure_pa(0, area) == 0
    # 1 N on exactly 1 mm^2 is 1 MPa.
    assert pressure_pa(1000, 1_000_000) == 1_000_000


def test_table_calibration_interpolates_and_clamps():
    cal = TableCalibration(((1000, 0), (2000, 1000), (4000, 5000)), 500, 60_000)
    assert cal.force_mn(1000) == 0
    assert cal.force_mn(1500) == 500
    assert cal.force_mn(3000) == 3000
    assert cal.force_mn(800) == 0
    assert cal.force_mn(9000) == 5000
    raises(ValueError, TableCalibration, ((1, 0), (1, 5)), 0, 10)
    raises(ValueError, TableCalibration, ((1, 0),), 0, 10)


def test_noisy_live_data_gives_force_and_no_fault():
    sensor = load_cell_sensor(area_um2=plunger_area_um2(8660))
    t, forces = feed(sensor, 0, noisy(2500, 600))
    assert sensor.fault is None and sensor.faults_raised == 0
    assert None not in forces
    # 60 counts of noise is under 1.5 mN at 43.8 counts/mN.
    assert min(forces) >= 2498 and max(forces) <= 2502
    assert sensor.force_mn == forces[-1]
    assert 42_400 <= sensor.pressure_pa() <= 42_500  # 2.5 N on 58.9 mm^2


def test_low_noise_data_with_short_repeats_is_not_stuck():
    # Quantised noise of +-2 counts repeats often; seven in a row is still live.
    sensor = load_cell_sensor()
    raws = []
    for i in range(40):
        raws += [raw_for(1000) + i % 3] * 7
    feed(sensor, 0, raws)
    assert sensor.fault is None


def test_eight_equal_readings_in_a_row_are_stuck():
    sensor = load_cell_sensor()
    t, forces = feed(sensor, 0, noisy(1000, 20))
    t, forces = feed(sensor, t, [raw_for(1000)] * 8)
    assert forces[:7] == [1000] * 7
    assert forces[7] is None
    assert sensor.fault == STUCK


def test_stuck_clears_only_after_a_run_of_good_samples():
    sensor = load_cell_sensor(clear_samples=10)
    t, _ = feed(sensor, 0, [raw_for(500)] * 12)
    assert sensor.fault == STUCK
    t, forces = feed(sensor, t, noisy(500, 9))
    assert forces == [None] * 9 and sensor.fault == STUCK
    t, forces = feed(sensor, t, noisy(500, 1, seed=99))
    assert sensor.fault is None and forces[0] is not None
    assert sensor.faults_raised == 1


def test_saturation_codes_are_range_faults():
    for code in (HX711_RAW_MAX, HX711_RAW_MIN):
        sensor = load_cell_sensor()
        t, _ = feed(sensor, 0, noisy(1000, 5))
        assert sensor.sample(t, code) is None
        assert sensor.fault == RANGE


def test_force_beyond_the_cell_is_a_range_fault():
    sensor = load_cell_sensor()
    assert sensor.sample(0, raw_for(LOAD_CELL_5KG_RATED_MN)) == LOAD_CELL_5KG_RATED_MN
    assert sensor.sample(100, raw_for(LOAD_CELL_5KG_RATED_MN + 50)) is None
    assert sensor.fault == RANGE
    # Below -10 % of the rating (-4.9 N) the zero has drifted or the bridge is miswired.
    sensor = load_cell_sensor()
    assert sensor.sample(0, raw_for(-4900)) == -4900
    assert sensor.sample(100, raw_for(-4950)) is None
    assert sensor.fault == RANGE


def test_a_range_fault_recovers_after_good_samples():
    sensor = load_cell_sensor(clear_samples=5)
    t, _ = feed(sensor, 0, [HX711_RAW_MAX] * 30)
    assert sensor.fault == RANGE and sensor.faults_raised == 1  # saturated, not also stuck
    t, forces = feed(sensor, t, noisy(800, 5))
    assert forces[:4] == [None] * 4 and forces[4] is not None
    assert sensor.fault is None


def test_no_data_for_three_periods_is_a_fault():
    sensor = load_cell_sensor()
    t, _ = feed(sensor, 0, noisy(1000, 5))
    last = t - PERIOD_MS
    sensor.no_data(last + 3 * PERIOD_MS)
    assert sensor.fault is None  # exactly 3 periods: a late conversion, still fine
    sensor.no_data(last + 3 * PERIOD_MS + 1)
    assert sensor.fault == NO_DATA


def test_no_data_recovers_when_samples_come_back():
    sensor = load_cell_sensor(clear_samples=3)
    sensor.no_data(0)  # the first call starts the watch
    sensor.no_data(250)
    assert sensor.fault is None
    sensor.no_data(301)
    assert sensor.fault == NO_DATA
    t, forces = feed(sensor, 400, noisy(300, 3))
    assert forces == [None, None, forces[2]] and forces[2] is not None
    assert sensor.fault is None


def test_settling_after_power_up_is_not_no_data():
    sensor = load_cell_sensor()
    sensor.reset(1000, settle_ms=400)  # 4 conversions at 10 samples/s
    sensor.no_data(1000 + 400 + 3 * PERIOD_MS)
    assert sensor.fault is None
    sensor.no_data(1000 + 400 + 3 * PERIOD_MS + 1)
    assert sensor.fault == NO_DATA


def test_a_new_kind_of_fault_replaces_the_old_one():
    sensor = load_cell_sensor()
    sensor.no_data(0)
    sensor.no_data(1000)
    assert sensor.fault == NO_DATA
    sensor.sample(1100, HX711_RAW_MIN)
    assert sensor.fault == RANGE
    assert sensor.faults_raised == 2


def test_fsr_sensor_has_no_stuck_rule_and_judges_raw_range():
    cal = TableCalibration(((649, 0), (41_051, 1000), (59_583, 10_000)), 300, 64_000)
    sensor = PressureSensor.for_fsr(cal, 20, 10_000)
    t = 0
    for _ in range(200):  # an unloaded FSR reads the same value forever
        assert sensor.sample(t, 649) == 0
        t += 20
    assert sensor.fault is None
    assert sensor.sample(t, 41_051) == 1000
    assert sensor.sample(t + 20, 0) is None and sensor.fault == RANGE  # lead open
    sensor = PressureSensor.for_fsr(cal, 20, 10_000)
    assert sensor.sample(0, 65_535) is None and sensor.fault == RANGE  # shorted


def test_bad_settings_are_refused():
    cal = LoadCellCalibration(0, CPN)
    raises(ValueError, PressureSensor, cal, 0, -1000, 1000)
    raises(ValueError, PressureSensor, cal, 100, 1000, 1000)
    raises(ValueError, PressureSensor, cal, 100, -1000, 1000, 8, 0)
