"""Tests of the machine and micropython fakes: timers, watchdog, RTC, buses and pins."""

import errno

import pytest

from sim import hw

hw.install()

import machine  # noqa: E402
import micropython  # noqa: E402
import vclock  # noqa: E402
from machine import Pin, Timer  # noqa: E402

MS = vclock.NS_PER_MS


@pytest.fixture
def clock():
    return hw.reset()


def test_one_shot_timer_fires_once_and_disarms(clock):
    calls = []
    tim = Timer(
        -1, mode=Timer.ONE_SHOT, period=20, callback=lambda t: calls.append(clock.now_ns), hard=True
    )
    clock.run_until(100 * MS)
    assert calls == [20 * MS]
    tim.init(
        mode=Timer.ONE_SHOT, period=5, callback=lambda t: calls.append(clock.now_ns), hard=False
    )
    clock.run_until(200 * MS)
    assert calls == [20 * MS, 105 * MS]


def test_periodic_timer_does_not_drift(clock):
    calls = []
    Timer(mode=Timer.PERIODIC, period=10, callback=lambda t: calls.append(clock.now_ns), hard=True)
    clock.run_until(1000 * MS)
    assert calls == [10 * MS * k for k in range(1, 101)]


def test_timer_freq_and_deinit(clock):
    calls = []
    tim = Timer(freq=1000, callback=lambda t: calls.append(clock.now_ns), hard=True)
    clock.run_until(3 * MS)
    tim.deinit()
    clock.run_until(10 * MS)
    assert calls == [1 * MS, 2 * MS, 3 * MS]


def test_timer_reinit_inside_its_hard_handler(clock):
    calls = []

    def handler(t):
        calls.append(clock.now_ns)
        if len(calls) < 3:
            t.init(mode=Timer.ONE_SHOT, period=7, callback=handler, hard=True)

    Timer(mode=Timer.ONE_SHOT, period=7, callback=handler, hard=True)
    clock.run_until(100 * MS)
    assert calls == [7 * MS, 14 * MS, 21 * MS]


def test_late_timer_catches_up_on_schedule(clock):
    calls = []
    Timer.inject_latency_ms(35, count=1)
    Timer(mode=Timer.PERIODIC, period=10, callback=lambda t: calls.append(clock.now_ns), hard=True)
    clock.run_until(60 * MS)
    # The first callback is 35 ms late; the missed periods follow at once,
    # then the timer is back on its 10 ms grid.
    assert calls == [45 * MS, 45 * MS, 45 * MS, 45 * MS, 50 * MS, 60 * MS]


def test_per_timer_latency(clock):
    a, b = [], []
    ta = Timer(mode=Timer.PERIODIC, period=10, callback=lambda t: a.append(clock.now_ns), hard=True)
    Timer(mode=Timer.PERIODIC, period=10, callback=lambda t: b.append(clock.now_ns), hard=True)
    ta.inject_own_latency_ms(3, count=1)
    clock.run_until(1 * MS)  # let the clock look at the slots
    clock.run_until(30 * MS)
    assert b == [10 * MS, 20 * MS, 30 * MS]
    assert a[-2:] == [20 * MS, 30 * MS]


def test_hard_must_be_explicit_and_typos_fail(clock):
    with pytest.raises(TypeError):
        Timer(mode=Timer.PERIODIC, period=10, callback=lambda t: None)
    tim = Timer()
    with pytest.raises(TypeError):
        tim.init(period=10, callback=lambda t: None)
    with pytest.raises(TypeError):
        tim.init(period=10, calback=lambda t: None, hard=True)
    with pytest.raises(TypeError):
        Pin(3, Pin.OUT, valu=1)
    with pytest.raises(ValueError):
        Timer(0, period=10, callback=None, hard=True)


def test_watchdog_resets_when_not_fed(clock):
    wdt = machine.WDT(timeout=1000)
    for _ in range(5):
        clock.sleep_ms(900)
        wdt.feed()
    with pytest.raises(machine.WatchdogReset):
        clock.sleep_ms(2000)
    assert clock.now_ns == 5 * 900 * MS + 1000 * MS
    assert machine.watchdog_resets() == [clock.now_ns]
    assert machine.reset_cause() == machine.WDT_RESET


def test_watchdog_limits(clock):
    with pytest.raises(ValueError):
        machine.WDT(timeout=8389)
    machine.WDT(timeout=8388)
    with pytest.raises(RuntimeError):
        machine.WDT(timeout=100)


def test_rtc_advances_and_loses_power(clock):
    rtc = machine.RTC()
    assert rtc.datetime() == (2021, 1, 1, 4, 0, 0, 0, 0)
    rtc.datetime((2024, 3, 10, 6, 23, 59, 58, 0))
    clock.sleep(3)
    assert rtc.datetime() == (2024, 3, 11, 0, 0, 0, 1, 0)
    assert clock.localtime()[:6] == (2024, 3, 11, 0, 0, 1)
    rtc.lost_power()
    assert rtc.datetime()[:3] == (2021, 1, 1)


class _Register:
    def __init__(self):
        self.mem = bytearray(16)
        self.ptr = 0

    def write(self, data):
        self.ptr = data[0]
        for i, b in enumerate(data[1:]):
            self.mem[self.ptr + i] = b

    def read(self, n):
        return bytes(self.mem[self.ptr : self.ptr + n])


def test_i2c_devices_and_enodev(clock):
    bus = machine.I2C(0, scl=Pin(5), sda=Pin(4), freq=400000)
    dev = _Register()
    bus.attach(0x3C, dev)
    assert bus.scan() == [0x3C]
    bus.writeto_mem(0x3C, 2, b"\x11\x22")
    assert bus.readfrom_mem(0x3C, 2, 2) == b"\x11\x22"
    bus.writevto(0x3C, (b"\x05", b"\x99"))
    assert dev.mem[5] == 0x99
    assert machine.I2C.lookup(0) is bus
    with pytest.raises(OSError) as err:
        bus.writeto(0x50, b"\x00")
    assert err.value.errno == errno.ENODEV
    with pytest.raises(TypeError):
        machine.I2C(1, scl=Pin(7), sda=Pin(6), frequency=100000)


def test_pin_listeners_drive_and_pulls(clock):
    led = Pin(25, Pin.OUT, value=0)
    seen = []
    led.add_listener(lambda pin, level, t: seen.append((pin.gpio, level, t)))
    clock.sleep_ms(1)
    led.on()
    led.toggle()
    led(1)
    assert seen == [(25, 1, MS), (25, 0, MS), (25, 1, MS)]
    assert led.history[-1] == (MS, 1)
    assert Pin.lookup(25) is led
    button = Pin(10, Pin.IN, Pin.PULL_UP)
    assert button.value() == 1
    edges = []
    button.irq(lambda p: edges.append(clock.now_ns), trigger=Pin.IRQ_FALLING, hard=True)
    clock.sleep_ms(2)
    button.drive(0)
    assert button.value() == 0
    button.drive(None)
    assert button.value() == 1
    assert edges == [3 * MS]
    with pytest.raises(ValueError):
        Pin(30)
    led.record = False
    led.off()
    assert led.history[-1] == (MS, 1)


def test_idle_runs_the_next_event_or_reports_a_stall(clock):
    Timer(mode=Timer.ONE_SHOT, period=4, callback=lambda t: None, hard=True)
    machine.idle()
    assert clock.now_ns == 4 * MS
    with pytest.raises(vclock.Stalled):
        machine.idle()


def test_disable_irq_nests_and_freezes_time(clock):
    outer = machine.disable_irq()
    inner = machine.disable_irq()
    with pytest.raises(vclock.ClockError):
        clock.sleep_ms(1)
    machine.enable_irq(inner)
    assert clock.irq_disabled
    machine.enable_irq(outer)
    assert not clock.irq_disabled
    assert machine.irq_disable_depth() == (0, 2)


def test_adc_scales_12_bits_to_16(clock):
    adc = machine.ADC(Pin(29))
    machine.ADC.lookup(3).set_voltage(3.3)
    assert adc.read_u16() == 0xFFFF
    adc.set_voltage(0)
    assert adc.read_u16() == 0
    adc.set_source(lambda: 1.65)
    assert adc.read_u16() == (2048 << 4) | (2048 >> 8)


def test_pwm_records_changes(clock):
    pwm = machine.PWM(Pin(15), freq=2000, duty_u16=0)
    clock.sleep_ms(5)
    pwm.duty_u16(32768)
    pwm.deinit()
    assert machine.PWM.lookup(15) is pwm
    assert pwm.history == [(0, 2000, 0), (0, 2000, 0), (5 * MS, 2000, 32768), (5 * MS, 2000, 0)]


def test_reset_helpers(clock):
    with pytest.raises(machine.SystemReset):
        machine.reset()
    assert machine.reset_cause() == machine.HARD_RESET
    machine.set_reset_cause(machine.PWRON_RESET)
    assert machine.reset_cause() == machine.PWRON_RESET
    assert len(machine.unique_id()) == 8


def test_micropython_schedule_runs_after_the_handler_and_has_a_limit(clock):
    ran = []
    for i in range(8):
        micropython.schedule(ran.append, i)
    with pytest.raises(RuntimeError):
        micropython.schedule(ran.append, 99)
    assert ran == []
    clock.run_until(clock.now_ns)
    assert ran == list(range(8))
    assert micropython.const(7) == 7
    micropython.heap_lock()
    assert micropython.heap_locked()
    micropython.heap_unlock()
    assert not micropython.heap_locked()
