"""The pump application: wires therapy to the motor, runs the main loop and the basal timer.

Concurrency, declared up front:
- The basal timer's hard interrupt (``_on_basal_timer``) is the only code that runs
  outside the main loop. It touches only the BasalTicker and ``_basal_last``.
- The main loop reads and changes the ticker only with interrupts disabled
  (``_catch_up``), and owns everything else: the motor, therapy, events, commands.
- Commands (buttons, serial, scenario actions) are posted to an inbox and run by the
  main loop, never from an interrupt.
"""

import machine

from pump.core import events as ev
from pump.core.errors import Refused
from pump.core.events import EventLog
from pump.core.therapy import BOLUS, Settings, Therapy

_HOUSEKEEPING_MS = 60_000  # the main loop runs at least this often


class App:
    def __init__(self, board, clock, settings=None, ms_of_day=None, events=None):
        self.board = board
        if ms_of_day is None:
            dt = board.rtc.datetime()  # (year, month, day, weekday, h, m, s, subseconds)
            ms_of_day = ((dt[4] * 60 + dt[5]) * 60 + dt[6]) * 1000
        self._ticks_ms = clock.ticks_ms
        self._ticks_diff = clock.ticks_diff
        self.events = events if events is not None else EventLog()
        self._last_ticks = clock.ticks_ms()
        self._now_ms = 0  # ms since boot; grows past small ints, so main loop only
        self.therapy = Therapy(
            board.mechanics, settings or Settings(), self.events, 0, ms_of_day
        )
        self._ticker = self.therapy.ticker
        self._stepper = board.stepper
        self._basal_timer = board.basal_timer
        self._wake_timer = board.wake_timer
        self._basal_last = self._last_ticks
        self._basal_cb = self._on_basal_timer  # bound once: interrupts must not allocate
        self._wake_cb = self._on_wake_timer
        self._woken = False
        self._train = None  # (kind, part, steps, t_ms) of the train on the motor
        self._inbox = []
        self.running = False

    # ----- interrupts ---------------------------------------------------------------

    def _on_basal_timer(self, _timer):
        # Hard interrupt handler: allocation-free, small ints only.
        self._advance_basal()
        self._arm_basal_timer()

    def _advance_basal(self):
        # Interrupt-safe (the handler, or the main loop with interrupts off): no allocation.
        now = self._ticks_ms()
        self._ticker.advance(self._ticks_diff(now, self._basal_last))
        self._basal_last = now

    def _arm_basal_timer(self):
        # Interrupt-safe: fire when the next step or armed rate change falls due.
        self._basal_timer.init(
            mode=machine.Timer.ONE_SHOT,
            period=self._ticker.ms_until_next_event(),
            callback=self._basal_cb,
            hard=True,
        )

    def _on_wake_timer(self, _timer):
        # Hard interrupt handler: allocation-free.
        self._woken = True

    # ----- time -----------------------------------------------------------------------

    def now_ms(self):
        """Milliseconds since boot, from ticks (which wrap) folded into a growing count."""
        t = self._ticks_ms()
        self._now_ms += self._ticks_diff(t, self._last_ticks)
        self._last_ticks = t
        return self._now_ms

    def _catch_up(self):
        """Bring the basal accumulator up to now and take the steps that fell due."""
        state = machine.disable_irq()
        self._advance_basal()
        due = self._ticker.take_due()
        machine.enable_irq(state)
        return due

    def _sync_basal(self, now, at_ms=None):
        """Apply the therapy's current rate to the accumulator and re-arm the timer."""
        state = machine.disable_irq()
        self._advance_basal()
        self.therapy.apply_rate(now, at_ms)
        self._arm_basal_timer()
        machine.enable_irq(state)

    # ----- main loop --------------------------------------------------------------------

    def start(self):
        now = self.now_ms()
        self.events.emit(now, ev.BOOT, nu_per_step=self.board.mechanics.nu_per_step)
        self._sync_basal(now)
        self.running = True

    def run(self):
        """The firmware's main loop (never returns on the board)."""
        self.start()
        while self.running:
            self.service()
            self.sleep()

    def service(self):
        """One pass of the main loop: commands, finished trains, basal, the next train."""
        now = self.now_ms()
        self._collect_train(now)
        self._pump_basal(now)
        while self._inbox:
            action = self._inbox.pop(0)
            action(self)
            now = self.now_ms()
        self._dispatch(now)

    def sleep(self):
        """Wait (in low power) until an interrupt brings work for the main loop."""
        now = self.now_ms()
        wake_at = self.therapy.next_wake_ms(now)
        wait = _HOUSEKEEPING_MS
        if wake_at is not None and wake_at < now + wait:
            if wake_at <= now:
                if self._train is None:
                    return  # work is due now
                # due, but the motor is busy: wait for the train to finish
            else:
                wait = wake_at - now
        self._woken = False
        self._wake_timer.init(
            mode=machine.Timer.ONE_SHOT, period=wait, callback=self._wake_cb, hard=True
        )
        while not self._has_work():
            machine.idle()
        self._wake_timer.deinit()

    def _has_work(self):
        return (
            self._woken
            or self._inbox
            or self._ticker.due > 0
            or self.therapy.rate_change_pending()
            or (self._train is not None and not self._stepper.busy())
        )

    def train_running(self):
        """True while a pulse train is on the motor."""
        return self._train is not None

    def post(self, action):
        """Queue ``action(app)`` for the main loop (from buttons, serial, a scenario)."""
        self._inbox.append(action)

    def _pump_basal(self, now):
        due = self._catch_up()
        if self.therapy.service(now, due):
            self._sync_basal(now, self.therapy.change_time())

    def _collect_train(self, now):
        train = self._train
        if train is not None and not self._stepper.busy():
            self._train = None
            steps = self._stepper.finish()
            self.therapy.train_done(train[0], train[1], steps, train[3])

    def _dispatch(self, now):
        if self._train is not None:
            return
        train = self.therapy.next_train(now)
        if train is None:
            return
        kind, part, steps, rate = train
        self._stepper.start(steps, rate)
        self._train = (kind, part, steps, now)

    def _halt_train(self, now, only_kind=None):
        """Stop the motor mid-train and record exactly the steps that went out."""
        train = self._train
        if train is None or (only_kind is not None and train[0] != only_kind):
            return
        self._train = None
        emitted = self._stepper.stop()
        self.therapy.train_done(train[0], train[1], emitted, train[3])

    # ----- commands: run by the main loop; each returns None or the refusal reason ----

    def _command(self, fn, *args):
        now = self.now_ms()
        self._collect_train(now)
        self._pump_basal(now)
        try:
            fn(now, *args)
        except Refused as refusal:
            return str(refusal)
        finally:
            self._sync_basal(now)
            self._dispatch(now)
        return None

    def bolus(self, kind, mu, now_percent=100, duration_ms=0):
        return self._command(self.therapy.start_bolus, kind, mu, now_percent, duration_ms)

    def cancel_bolus(self):
        return self._command(self._cancel_bolus)

    def _cancel_bolus(self, now):
        if self.therapy.bolus is not None:
            self._halt_train(now, BOLUS)
        self.therapy.cancel_bolus(now)

    def temp_basal(self, kind, value, duration_ms):
        return self._command(self.therapy.start_temp, kind, value, duration_ms)

    def cancel_temp(self):
        return self._command(self.therapy.cancel_temp)

    def suspend(self):
        return self._command(self._suspend)

    def _suspend(self, now):
        if self.therapy.suspended_at is None:
            self._halt_train(now)
        self.therapy.suspend(now)

    def resume(self):
        return self._command(self.therapy.resume)

    def select_profile(self, index):
        return self._command(self.therapy.select_profile, index)

    def save_profile(self, index, name, segments):
        return self._command(self.therapy.save_profile, index, name, segments)

    def set_limits(self, max_bolus_mu, max_basal_mu_per_h):
        return self._command(self.therapy.set_limits, max_bolus_mu, max_basal_mu_per_h)

    def set_bolus_options(self, increment_mu, speed_mu_per_min):
        return self._command(self.therapy.set_bolus_options, increment_mu, speed_mu_per_min)

    def set_time_of_day(self, ms_of_day):
        return self._command(self.therapy.set_clock, ms_of_day)
