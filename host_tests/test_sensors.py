"""The HX711 and FSR drivers against device models on the fake pins, with the fault rules."""

import math

import machine
import pytest
import sensors

from pump.core.pressure import (
    LOAD_CELL_5KG_COUNTS_PER_N,
    LOAD_CELL_5KG_RATED_MN,
    NO_DATA,
    RANGE,
    STUCK,
    LoadCellCalibration,
    PressureSensor,
    TableCalibration,
)
from pump.hal.fsr import (
    FSR402_10K_RAW_MAX,
    FSR402_10K_RAW_MIN,
    FSR402_10K_TABLE,
    ForceResistor,
)
from pump.hal.hx711 import HX711, RAW_MAX, RAW_MIN
from sim import hw

CPN = LOAD_CELL_5KG_COUNTS_PER_N
OFFSET = 120_000
MS = 1_000_000
PERIOD_NS = 12_500_000  # 80 samples/s


class Rig:
    """HX711 on GP6 (DOUT, pulled up) and GP7 (PD_SCK) with a load cell, as the board wires it."""

    def __init__(self, force_n=0.0, gain=128, rate_sps=80, **device_kw):
        self.clock = hw.reset()
        self.force_n = force_n
        self.dout = machine.Pin(6, machine.Pin.IN, machine.Pin.PULL_UP)
        self.sck = machine.Pin(7, machine.Pin.OUT, value=0)
        self.device = sensors.HX711Device(
            self.dout, self.sck, lambda: self.force_n, CPN, OFFSET, rate_sps, **device_kw
        )
        self.hx = HX711(self.dout, self.sck, gain=gain)
        self.rising = 0
        self.sck.add_listener(self._count)

    def _count(self, pin, level, t_ns):
        if level:
            self.rising += 1

    def wait_ms(self, ms):
        self.clock.run_for_ns(ms * MS)

    def now_ms(self):
        return self.clock.now_ns // MS

    def next_raw(self):
        """Wait for the next conversion and read it."""
        for _ in range(1000):
            if self.hx.ready():
                return self.hx.read_raw()
            self.clock.run_for_ns(MS // 2)
        raise AssertionError("no conversion came")

    def poll(self, sensor, ms, step_ms=5):
        """The main loop's job: read when ready, else report no data."""
        results = []
        for _ in range(ms // step_ms):
            self.wait_ms(step_ms)
            raw = self.hx.read_raw()
            if raw is None:
                sensor.no_data(self.now_ms())
            else:
                results.append(sensor.sample(self.now_ms(), raw))
        return results

    def sensor(self, **kw):
        cal = LoadCellCalibration(OFFSET, CPN)
        return PressureSensor.for_load_cell(cal, 13, LOAD_CELL_5KG_RATED_MN, **kw)


def test_nothing_is_ready_until_a_conversion_completes():
    rig = Rig(force_n=1.0)
    assert not rig.hx.ready()
    assert rig.hx.read_raw() is None
    assert rig.rising == 0  # not ready: no pulse sent
    rig.clock.run_for_ns(PERIOD_NS - 1)
    assert rig.hx.read_raw() is None
    rig.clock.run_for_ns(1)
    assert rig.hx.ready()
    assert rig.hx.read_raw() == OFFSET + CPN
    assert not rig.hx.ready()  # the 25th pulse set DOUT high
    assert rig.hx.read_raw() is None
    rig.clock.run_for_ns(PERIOD_NS)
    assert rig.hx.read_raw() == OFFSET + CPN
    assert rig.device.reads == 2


def test_values_follow_force_with_sign():
    rig = Rig()
    for force_n in (0.0, 2.5, 10.0, -1.0, -3.0):
        rig.force_n = force_n
        assert rig.next_raw() == math.floor(OFFSET + force_n * CPN + 0.5)
    rig.device.offset_counts = 0
    rig.force_n = -1.0
    assert rig.next_raw() == -CPN  # two's complement decoded


def test_beyond_full_scale_the_chip_saturates():
    rig = Rig(force_n=1000.0)
    assert rig.next_raw() == RAW_MAX == 0x7FFFFF
    rig.force_n = -1000.0
    assert rig.next_raw() == RAW_MIN == -0x800000


def test_pulse_count_selects_gain_and_a_change_settles():
    rig = Rig(force_n=2.0, gain=64)
    first = rig.next_raw()
    assert first == OFFSET + 2 * CPN  # the chip starts at A/128; 64 applies next
    assert rig.rising == 27
    t_read = rig.clock.now_ns
    second = rig.next_raw()
    assert rig.clock.now_ns - t_read >= 3 * PERIOD_NS  # 4 conversions to settle
    assert second == (OFFSET + 2 * CPN) // 2
    assert rig.device.gain == 64 and rig.device.comm_errors == 0


def test_channel_b_at_gain_32():
    rig = Rig(gain=32)
    rig.device.channel_b_counts = -4321
    rig.next_raw()
    rig.rising = 0
    assert rig.next_raw() == -4321
    assert rig.rising == 26


def test_default_read_is_25_pulses_with_interrupts_off_and_no_power_down():
    rig = Rig(force_n=0.5)
    for _ in range(20):
        rig.next_raw()
    assert rig.rising == 20 * 25
    assert rig.device.violations == []
    assert rig.device.power_downs == 0 and rig.device.stray_pulses == 0
    depth, deepest = machine.irq_disable_depth()
    assert depth == 0 and deepest == 1


def test_bad_gain_is_refused():
    rig = Rig()
    with pytest.raises(ValueError, match="gain"):
        HX711(rig.dout, rig.sck, gain=100)


def test_power_down_and_up_resets_the_chip():
    rig = Rig(force_n=1.0, gain=64)
    rig.next_raw()
    rig.hx.power_down()
    rig.clock.run_for_ns(60_000)
    assert rig.device.powered  # 60 us exactly: still on
    rig.clock.run_for_ns(1)
    assert not rig.device.powered and rig.device.power_downs == 1
    rig.wait_ms(500)
    assert not rig.hx.ready()
    rig.hx.power_up()
    t_up = rig.clock.now_ns
    assert rig.device.powered and rig.device.gain == 128
    raw = rig.next_raw()
    assert rig.clock.now_ns - t_up == 4 * PERIOD_NS  # 50 ms settling at 80 samples/s
    assert raw == OFFSET + CPN  # gain 128 after a reset


def test_live_noisy_load_cell_never_faults():
    rig = Rig(force_n=3.0, noise_counts=80)
    sensor = rig.sensor()
    results = rig.poll(sensor, 20_000)
    assert len(results) >= 1500
    assert sensor.fault is None and sensor.faults_raised == 0
    assert all(2995 <= f <= 3005 for f in results)


def test_unplugged_dout_is_no_data_and_recovers():
    rig = Rig(force_n=1.0, noise_counts=50)
    sensor = rig.sensor(clear_samples=10)
    rig.poll(sensor, 200)
    rig.device.unplug()
    t_unplug = rig.now_ms()
    rig.poll(sensor, 35)
    assert sensor.fault is None  # under 3 conversions (39 ms) of silence
    rig.poll(sensor, 20)
    assert sensor.fault == NO_DATA
    assert rig.now_ms() - t_unplug <= 55
    rig.device.restore()
    results = rig.poll(sensor, 100)  # 8 conversions
    assert sensor.fault == NO_DATA and None in results  # not yet 10 good samples
    rig.poll(sensor, 60)
    assert sensor.fault is None


def test_stuck_converter_is_detected():
    rig = Rig(force_n=1.0, noise_counts=50)
    sensor = rig.sensor()
    rig.poll(sensor, 200)
    rig.device.stuck_at(OFFSET + 1000)
    rig.poll(sensor, 150)  # 12 conversions
    assert sensor.fault == STUCK


def test_saturated_converter_is_a_range_fault():
    rig = Rig(force_n=1.0, noise_counts=50)
    sensor = rig.sensor()
    rig.poll(sensor, 100)
    rig.device.saturate()
    rig.poll(sensor, 20)
    assert sensor.fault == RANGE
    rig.device.restore()
    rig.poll(sensor, 300)
    assert sensor.fault is None


def test_overload_is_a_range_fault():
    rig = Rig(force_n=10.0, noise_counts=50)
    sensor = rig.sensor()
    rig.poll(sensor, 100)
    assert sensor.fault is None
    rig.force_n = 55.0  # over the 49 N rating of a 5 kg cell
    rig.poll(sensor, 20)
    assert sensor.fault == RANGE


# -- FSR ---------------------------------------------------------------------------


class FsrRig:
    def __init__(self, force_n=0.0, noise_v=0.0):
        hw.reset()
        self.force_n = force_n
        adc = machine.ADC(machine.Pin(26))
        self.device = sensors.FsrDevice(adc, lambda: self.force_n, noise_v=noise_v)
        self.fsr = ForceResistor(adc)
        cal = TableCalibration(FSR402_10K_TABLE, FSR402_10K_RAW_MIN, FSR402_10K_RAW_MAX)
        self.sensor = PressureSensor.for_fsr(cal, 20, 20_000)

    def read(self, t_ms):
        assert self.fsr.ready()
        return self.sensor.sample(t_ms, self.fsr.read_raw())


def test_fsr_model_follows_the_datasheet_curve():
    assert sensors.fsr402_ohms(0.0) is None
    assert sensors.fsr402_ohms(1.0) == pytest.approx(6000)
    assert sensors.fsr402_ohms(10.0) == pytest.approx(1000)
    assert 1000 < sensors.fsr402_ohms(5.0) < 6000


@pytest.mark.parametrize("force_n", [0.5, 1.0, 2.0, 5.0, 10.0, 15.0])
def test_fsr_reads_force_within_ten_percent(force_n):
    rig = FsrRig(force_n)
    force_mn = rig.read(0)
    assert abs(force_mn - force_n * 1000) <= force_n * 100, force_mn


def test_fsr_unloaded_reads_zero_and_never_false_alarms():
    rig = FsrRig(0.0, noise_v=0.002)
    for i in range(500):
        assert rig.read(i * 20) is not None
    assert rig.sensor.fault is None
    assert 0 <= rig.sensor.force_mn < 50


def test_fsr_open_and_short_are_range_faults():
    rig = FsrRig(2.0)
    assert rig.read(0) is not None
    rig.device.open_circuit()
    assert rig.read(20) is None and rig.sensor.fault == RANGE
    rig.device.restore()
    for i in range(10):
        rig.read(40 + 20 * i)
    assert rig.sensor.fault is None
    rig.device.short()
    assert rig.read(400) is None and rig.sensor.fault == RANGE
    assert rig.sensor.faults_raised == 2
