"""The delivery controller: the basal timer, the pulse trains, halting and booking them.

Concurrency, declared up front:
- The basal timer's hard interrupt (``on_basal_timer``) is the only code here that runs
  outside the main loop. It touches only the BasalTicker and ``_basal_last``.
- The main loop reads and changes the ticker only inside ``_ticker_section`` and
  ``_arm_section``: interrupts off around the ticker alone, allocation-free, and given
  back in a ``finally``. Rate bookkeeping and its events run before, interrupts on.
- Everything else (the motor, the record) is the main loop's.

Every train that moves insulin goes through ``start_therapy``: it fits the reservoir and
the insulin limits' headroom, the line is judged, and the recorder has it on flash first.
"""

import machine

from pump.core import alarms as al
from pump.core.therapy import BASAL, BOLUS

LINE_TEST = "line_test"  # a line test's pull or push (zero net volume), see pump.motions
_OVERRUN_MS = 1_000  # a train this late past its length has stalled: no progress


class Delivery:
    def __init__(self, app, board):
        self._app = app
        self._clock = app.clock
        self._ticks_ms = app.clock.ticks_ms
        self._ticks_diff = app.clock.ticks_diff
        self._stepper = board.stepper
        self._pulses = board.pulse_counter
        self._basal_timer = board.basal_timer
        self.ticker = app.therapy.ticker
        self._basal_last = self._ticks_ms()
        self._basal_cb = self.on_basal_timer  # bound once: interrupts must not allocate
        self.train = None  # (kind, part, steps, t_ms, forward, rate) of the train on the motor
        self.position_steps = 0  # the pusher's travel since boot (forward minus back)

    # ----- the basal timer ------------------------------------------------------------

    def on_basal_timer(self, _timer):
        # Hard interrupt handler: allocation-free, small ints only.
        self._advance_basal()
        self._arm_basal_timer()

    def _advance_basal(self):
        # Interrupt-safe (the handler, or the main loop with interrupts off): no allocation.
        now = self._ticks_ms()
        self.ticker.advance(self._ticks_diff(now, self._basal_last))
        self._basal_last = now

    def _arm_basal_timer(self):
        # Interrupt-safe: fire when the next step or armed rate change falls due.
        self._basal_timer.init(
            mode=machine.Timer.ONE_SHOT,
            period=self.ticker.ms_until_next_event(),
            callback=self._basal_cb,
            hard=True,
        )

    def _ticker_section(self):
        """Bring the accumulator up to now and take the steps that fell due."""
        state = machine.disable_irq()
        try:
            self._advance_basal()
            due = self.ticker.take_due()
        finally:
            machine.enable_irq(state)
        return due

    def _arm_section(self, plan):
        state = machine.disable_irq()
        try:
            self._advance_basal()
            self._app.therapy.arm_ticker(plan)
            self._arm_basal_timer()
        finally:
            machine.enable_irq(state)

    def sync_basal(self, now, at_ms=None):
        """Apply the therapy's current rate to the accumulator and re-arm the timer."""
        plan = self._app.therapy.rate_plan(now, at_ms)  # bookkeeping and events: irqs on
        self._arm_section(plan)

    def pump_basal(self, now):
        """Take the basal steps the timer accrued; re-arm when the rate schedule moved on."""
        therapy = self._app.therapy
        if therapy.service(now, self._ticker_section()):
            self.sync_basal(now, therapy.change_time())

    def basal_due(self):
        return self.ticker.due > 0 or self._app.therapy.rate_change_pending()

    # ----- trains ----------------------------------------------------------------------

    def start(self, now, kind, part, steps, rate, forward=True):
        """Put a train on the motor (non-therapy moves; therapy goes through start_therapy)."""
        self._stepper.start(steps, rate, forward)
        self.train = (kind, part, steps, now, forward, rate)

    def busy(self):
        return self.train is not None

    def finished(self):
        """A train is on the motor and the motor is done with it."""
        return self.train is not None and not self._stepper.busy()

    def progressing(self, now):
        """False when the train on the motor is well past its length (the motor hangs)."""
        train = self.train
        if train is None:
            return True
        length = train[2] * 1000 // train[5] + 1
        return now - train[3] <= length + _OVERRUN_MS

    def collect(self, now):
        train = self.train
        if train is not None and not self._stepper.busy():
            self.train = None
            self._book(train, self._stepper.finish(), now, train[2])

    def halt(self, now, only_kind=None):
        """Stop the motor mid-train and record exactly the steps that went out."""
        train = self.train
        if train is None or (only_kind is not None and train[0] != only_kind):
            return
        self.train = None
        self._book(train, self._stepper.stop(), now, 0)

    def _book(self, train, steps, now, expected):
        """Book a train the motor emitted (``steps`` of it) in every record that needs it.
        ``expected``: the steps it should have made (0: halted, short on purpose)."""
        app = self._app
        kind, part = train[0], train[1]
        self.position_steps += steps if train[4] else -steps
        monitor = app.supervisor.monitor
        monitor.reported(steps)
        monitor.counted(steps if self._pulses is None else self._pulses.take())
        test = app.line_test
        if test is not None:
            if kind == LINE_TEST:
                test.moved(now, steps if train[4] else -steps)
                return
            if kind == BOLUS:
                test.bolus_ran(now - train[3])
        if kind == BASAL or kind == BOLUS:
            if app.persistence is not None:
                app.persistence.train_done(steps)
            app.therapy.train_done(kind, part, steps, train[3])
            app.reservoir.took(steps)
            monitor.delivered(now, steps)
            app.supervisor.judge_line(now, app.therapy.bolus is not None)
            return
        app.motions.moved(kind, part, steps, expected, now)

    def start_therapy(self, now):
        """Send the next therapy train, if one is due and every gate lets it through."""
        app = self._app
        therapy = app.therapy
        train = therapy.next_train(now)
        if train is None:
            return
        kind, part, steps, rate = train
        supervisor = app.supervisor
        allowed = app.reservoir.steps_allowed(steps)
        if allowed <= 0:
            supervisor.fault(al.RESERVOIR_EMPTY, remaining_steps=app.reservoir.remaining_steps)
            return
        if not supervisor.within_limits(now, allowed):
            return  # the fault path ran: a limit would have been passed
        if supervisor.judge_line(now, therapy.bolus is not None):
            return  # the fault path ran: nothing more goes out
        recorder = app.persistence
        if recorder is not None and not recorder.before_train(now, kind, allowed):
            return  # not on flash: no insulin without a durable record
        self.start(now, kind, part, allowed, rate)

    def bolus_finish_ms(self, now):
        """When the running bolus will be over (ms since boot), line tests counted, or None:
        its part now at the train speed with the tests' pauses, and its extended part's end."""
        therapy = self._app.therapy
        bolus = therapy.bolus
        if bolus is None:
            return None
        rate = therapy.bolus_step_rate()
        run_ms = bolus.immediate_remaining() * 1000 // rate
        end = now + run_ms
        test = self._app.line_test
        if test is not None and therapy.suspended_at is None:
            end += test.bolus_wait_ms(now, run_ms)
        if bolus.ext_steps:
            end = max(end, bolus.start_ms + bolus.ext_duration_ms)
        return end
