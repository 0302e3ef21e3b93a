"""Tests of the PIO fake: the assembler, cycle-exact timing and the FIFO/IRQ interface."""

import pytest

from sim import hw

hw.install()

import machine  # noqa: E402
import rp2  # noqa: E402
import vclock  # noqa: E402
from devices import StepperDriverModel  # noqa: E402
from machine import Pin  # noqa: E402

US = vclock.NS_PER_US


# The firmware's counted step train: per step 2*y + 7 cycles.
@rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW)
def step_train():
    pull(block).side(0)  # noqa: F821
    mov(x, osr)  # noqa: F821
    pull(block)  # noqa: F821
    jmp(not_x, "done")  # noqa: F821
    label("step")  # noqa: F821
    mov(y, osr)  # noqa: F821
    label("low")  # noqa: F821
    jmp(y_dec, "low")  # noqa: F821
    jmp(x_dec, "high").side(1)  # noqa: F821
    label("high")  # noqa: F821
    mov(y, osr)  # noqa: F821
    label("hold")  # noqa: F821
    jmp(y_dec, "hold")  # noqa: F821
    jmp(not_x, "done").side(0)  # noqa: F821
    jmp("step")  # noqa: F821
    label("done")  # noqa: F821
    irq(rel(0))  # noqa: F821


@pytest.fixture
def clock():
    yield hw.reset()
    rp2.FAST_FORWARD = True


def _make_sm(freq=1000000, handler=None):
    step = Pin(2, Pin.OUT, value=0)
    sm = rp2.StateMachine(0, step_train, freq=freq, sideset_base=step)
    if handler is not None:
        sm.irq(handler)
    sm.active(1)
    return sm, step


def _expected_edges(steps, delay, cycle_ns, start_ns=0):
    # Rising edge after pull, mov, pull, jmp, mov and the y+1 low loop; the
    # high phase lasts y+3 cycles and the period is 2*y+7.
    edges = []
    rise = start_ns + (5 + delay + 1) * cycle_ns
    for _ in range(steps):
        edges.append((rise, 1))
        edges.append((rise + (delay + 3) * cycle_ns, 0))
        rise += (2 * delay + 7) * cycle_ns
    return edges


def test_assembled_words():
    assert step_train.words[0] == 0x90A0  # pull block, optional side-set 0
    assert step_train.sideset_opt
    assert len(step_train) == 12
    assert step_train.labels == {"step": 4, "low": 5, "high": 7, "hold": 8, "done": 11}


def test_step_train_exact_edges(clock):
    done = []
    sm, step = _make_sm(handler=lambda s: done.append(clock.now_ns))
    sm.put(5)
    sm.put(10)
    clock.run_until(1000 * US)
    assert step.history == _expected_edges(5, 10, 1000)
    # The last step skips its final jmp("step"): irq right after the last fall.
    assert done == [(3 + 5 * 27) * 1000]
    assert sm.tx_fifo() == 0


@pytest.mark.parametrize("freq", [1000000, 125000000, 3000000, 1908])
def test_fast_forward_gives_the_same_timing(clock, freq):
    def run(fast):
        hw.reset()
        rp2.FAST_FORWARD = fast
        done = []
        sm, step = _make_sm(freq=freq, handler=lambda s: done.append(vclock.current().now_ns))
        sm.put(7)
        sm.put(33)
        sm.put(3)
        sm.put(2)
        vclock.current().run_until(10**9)
        return list(step.history), done, sm.registers()

    assert run(True) == run(False)
    history, done, _ = run(True)
    assert len(history) == 20 and len(done) == 2


def test_non_integer_cycle_time_stays_exact(clock):
    # 3 MHz: 41.666.. sys clocks per cycle, divider 41 + 170/256.
    sm, step = _make_sm(freq=3000000)
    sm.put(1000)
    sm.put(100)
    clock.run_until(10**9)
    rises = [t for t, level in step.history if level]
    cycle_q = 125000000 * 256 // 3000000  # cycle in 1/32 ns
    first = (6 + 100) * cycle_q
    assert rises[0] == first // 32
    assert rises[-1] == (first + 999 * 207 * cycle_q) // 32


def test_mid_train_exec_reads_x(clock):
    sm, step = _make_sm()
    sm.put(100)
    sm.put(10)
    clock.run_until(5 * 27 * US)  # five rising edges so far
    sm.exec("mov(isr, x)")
    sm.exec("push(noblock)")
    assert sm.get() == 95
    # Mid-loop reads are exact too: the 6th rise is at 151 us, the hold loop
    # starts at 153 us with y = 10 and has run four times by 157 us.
    clock.run_until(157 * US)
    regs = sm.registers()
    assert (regs["x"], regs["y"], regs["pc"]) == (94, 6, 8)
    clock.run_until(10**9)
    assert sum(1 for _, level in step.history if level) == 100


def test_irq_once_per_train_and_hard_handler(clock):
    done = []
    step = Pin(2, Pin.OUT)
    sm = rp2.StateMachine(0, step_train, freq=2000000, sideset_base=step)
    sm.irq(lambda s: done.append(s), hard=True)
    sm.active(1)
    for steps in (3, 0, 4):
        sm.put(steps)
        sm.put(5)
    clock.run_until(10**8)
    assert done == [sm, sm, sm]
    assert rp2.PIO(0).flags() == 0
    assert sum(1 for _, level in step.history if level) == 7


def test_put_blocks_until_room_when_running(clock):
    sm, step = _make_sm()
    for _ in range(3):
        sm.put(2)
        sm.put(1000)
    # Six words do not fit the 4-deep FIFO: the puts waited for the SM.
    assert clock.now_ns > 0
    clock.run_until(10**9)
    assert sum(1 for _, level in step.history if level) == 6


def test_put_into_full_fifo_of_stopped_machine_raises(clock):
    step = Pin(2, Pin.OUT)
    sm = rp2.StateMachine(0, step_train, freq=1000000, sideset_base=step)
    for i in range(4):
        sm.put(i)
    assert sm.tx_fifo() == 4
    with pytest.raises(rp2.Deadlock):
        sm.put(5)
    with pytest.raises(rp2.Deadlock):
        sm.get()


def test_stepper_model_counts_the_pulses(clock):
    en = Pin(4, Pin.OUT, value=0)
    direction = Pin(3, Pin.OUT, value=1)
    sm, step = _make_sm()
    driver = StepperDriverModel(step, direction, en)
    sm.put(10)
    sm.put(10)
    clock.run_until(10**7)
    direction.value(0)
    sm.put(4)
    sm.put(10)
    clock.run_until(2 * 10**7)
    en.value(1)
    sm.put(3)
    sm.put(10)
    clock.run_until(3 * 10**7)
    assert driver.position_steps == 6
    assert driver.steps_while_disabled == 3
    assert driver.violations == []
    assert driver.pulses[0] == (16 * US, 1)


def test_stepper_model_flags_short_pulses(clock):
    step = Pin(2, Pin.OUT)
    sm = rp2.StateMachine(0, step_train, freq=125000000, sideset_base=step)
    driver = StepperDriverModel(step, Pin(3, Pin.OUT), None)
    sm.active(1)
    sm.put(2)
    sm.put(10)  # high for 13 cycles of 8 ns: far below 1 us
    clock.run_until(10**6)
    assert driver.steps() == 2
    assert [kind for _, kind, _ in driver.violations] == ["high", "low", "high"]


def test_set_pins_and_side_set_through_exec(clock):
    @rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
    def blink():
        set(pins, 1)[3]  # noqa: F821
        set(pins, 0)  # noqa: F821

    led = Pin(6, Pin.OUT)
    sm = rp2.StateMachine(1, blink, freq=1000000, set_base=led)
    sm.active(1)
    clock.run_until(10 * US)
    assert led.history[:4] == [(0, 1), (4 * US, 0), (5 * US, 1), (9 * US, 0)]
    sm.active(0)
    sm.exec("set(pins, 1)")
    assert led.value() == 1


def test_out_in_and_autopush(clock):
    @rp2.asm_pio(
        out_shiftdir=rp2.PIO.SHIFT_RIGHT,
        in_shiftdir=rp2.PIO.SHIFT_LEFT,
        autopush=True,
        push_thresh=8,
    )
    def nibbles():
        pull()  # noqa: F821
        out(x, 4)  # noqa: F821
        out(y, 4)  # noqa: F821
        in_(x, 4)  # noqa: F821
        in_(y, 4)  # noqa: F821

    sm = rp2.StateMachine(2, nibbles)
    sm.active(1)
    # Nibbles leave low first and enter shifting left: they come back swapped.
    sm.put(0x5A)
    assert sm.get() == 0xA5
    sm.put(0x3C)
    assert sm.get() == 0xC3


def test_assembler_rejects_bad_programs():
    with pytest.raises(rp2.PIOASMError):

        @rp2.asm_pio()
        def undefined_label():
            jmp("nowhere")  # noqa: F821

    with pytest.raises(rp2.PIOASMError):

        @rp2.asm_pio()
        def too_long():
            for _ in range(33):
                nop()  # noqa: F821

    with pytest.raises(rp2.PIOASMError):

        @rp2.asm_pio(sideset_init=(rp2.PIO.OUT_LOW, rp2.PIO.OUT_LOW))
        def delay_too_large():
            nop().side(0)[8]  # noqa: F821

    with pytest.raises(TypeError):
        rp2.asm_pio(sideset_inti=rp2.PIO.OUT_LOW)

    # The module's globals are restored after assembling.
    assert rp2.PIO.OUT_LOW == 2 and callable(_make_sm)


def test_frequency_limits(clock):
    step = Pin(2, Pin.OUT)
    with pytest.raises(ValueError):
        rp2.StateMachine(0, step_train, freq=1907, sideset_base=step)
    rp2.StateMachine(0, step_train, freq=1908, sideset_base=step)
    with pytest.raises(ValueError):
        rp2.StateMachine(0, step_train, freq=126000000, sideset_base=step)


def test_a_simulated_day_is_fast(clock):
    # One 20-step train every 3 minutes for a day, pulse period 2*500+7 us.
    step = Pin(2, Pin.OUT)
    sm = rp2.StateMachine(0, step_train, freq=1000000, sideset_base=step)
    step.record = False
    driver = StepperDriverModel(step, Pin(3, Pin.OUT, value=1), None, record=False)
    sm.active(1)

    def train(t):
        sm.put(20)
        sm.put(500)

    machine.Timer(mode=machine.Timer.PERIODIC, period=180000, callback=train, hard=True)
    clock.run_until(24 * 3600 * 10**9)
    # 480 trains start; the last one starts at the very end of the day.
    assert driver.position_steps == 479 * 20
