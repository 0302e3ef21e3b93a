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

from pump.core import alarms as al
from pump.core import battery as bat
from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core import keys, selftest
from pump.core import reservoir as res
from pump.core.alarms import AlarmManager
from pump.core.calculator import CalculatorSettings
from pump.core.errors import Refused
from pump.core.events import EventLog
from pump.core.health import TaskMonitor, reset_cause_name, was_watchdog_reset
from pump.core.iob import InsulinCurve
from pump.core.line_test import BLOCKED
from pump.core.occlusion import OCCLUDED
from pump.core.reservoir import Reservoir
from pump.core.safety import DeliveryMonitor
from pump.core.therapy import BASAL, BOLUS, Settings, Therapy
from pump.core.units import earliest

_HOUSEKEEPING_MS = 60_000  # the main loop runs at least this often

# Motor moves that are not therapy: never counted as delivered insulin.
PRIME = "prime"  # tubing or cannula fill
BACKOFF = "backoff"  # plunger back after an occlusion, to relieve the pressure
REWIND = "rewind"  # pusher back to the end stop for a reservoir change
SEAT = "seat"  # pusher forward onto a new reservoir's stopper (no insulin moves)
LINE_TEST = "line_test"  # a line test's pull or push (zero net volume)
_SEATED_MN = 300  # force that says the pusher is on the stopper
_REWIND_CHUNK_S = 20  # a rewind train lasts 1/20 s, so it stops within 0.05 s of the end stop
_BACKOFF_MAX_UL = 40  # never back off more than this (a plunger's play plus the line's stretch)
_BACKOFF_CHUNK_NL = 200  # back off in small moves (14 steps), reading the force after each
_SENSOR_CHECK_MS = 30_000  # the load cell is read at least this often, even when idle
_BASAL_JOB_MS = 60_000  # the main loop's delivery pass reports at least this often
_DISPLAY_RETRY_MS = 30_000  # a display that stopped answering is tried again this often
_FULL_BATTERY_MV = 4500  # 3 x AA alkaline, new: the top of the battery gauge on screen
_LOAD_CELL_READS = 4  # readings at rest the self-test judges
_SELF_TEST_POLL_MS = 10  # how often the self-test looks for the load cell's next sample


class App:
    # main.py sets it when make flash marked the reset it made (a /reset_planned file): on
    # the rp2 port that reset reads back as the watchdog's, and is not the pump's fault.
    reset_planned = False

    def __init__(
        self,
        board,
        clock,
        settings=None,
        ms_of_day=None,
        events=None,
        firmware_root=None,
        storage=None,
    ):
        self.board = board
        self._clock = clock
        self.firmware_root = firmware_root  # "/" on a release image: its files are checked
        if ms_of_day is None:
            dt = board.rtc.datetime()  # (year, month, day, weekday, h, m, s, subseconds)
            ms_of_day = ((dt[4] * 60 + dt[5]) * 60 + dt[6]) * 1000
        self._ticks_ms = clock.ticks_ms
        self._ticks_diff = clock.ticks_diff
        self.events = events if events is not None else EventLog()
        self._last_ticks = clock.ticks_ms()
        self._now_ms = 0  # ms since boot; grows past small ints, so main loop only
        self.persistence = None  # settings, checkpoint and event log on flash (pump.persistence)
        if storage is not None:
            from pump.persistence import Persistence

            self.persistence = Persistence(storage, board, self.events)
            settings = self.persistence.settings()  # the flash's, never the caller's
        self.therapy = Therapy(
            board.mechanics, settings or Settings(), self.events, 0, ms_of_day
        )
        self._ticker = self.therapy.ticker
        s = self.therapy.settings
        mech = board.mechanics
        self.alarms = AlarmManager(self.events, s.auto_off_h, 0)
        self.reservoir = Reservoir(mech, mech.reservoir_capacity_mu(), s.low_reservoir_mu)
        self.monitor = DeliveryMonitor(mech, s.max_hour_mu, s.max_day_mu)
        self.therapy.interlock = self._interlock
        self._reservoir_level = self.reservoir.level()
        self._pulses = board.pulse_counter
        self._end_stop = board.end_stop
        self._diag = board.driver_diag
        self._buzzer = board.buzzer
        self._sounding = 0
        self._stalled = False
        self._motion = None  # [kind, part, steps left, steps/s, forward] of a non-therapy move
        self._moved = 0  # steps of the current non-therapy move so far
        self._force_sensor = board.force_sensor
        self._pressure = board.pressure
        self.detector = board.occlusion
        self.line_test = None  # core LineTest: it judges the line by the plunger force
        self.disconnection = None  # core DisconnectWatch: the line came off in a bolus?
        if board.force_sensor is not None and board.pressure is not None:
            self.line_test = getattr(board, "line_test", None)
            self.disconnection = getattr(board, "disconnection", None)
        self.position_steps = 0  # the pusher's travel since boot (forward minus back)
        self.force_mn = None  # last good plunger force
        self._force_read_ms = None
        self._stepper = board.stepper
        # Fills and back-offs run at the quick bolus speed (15 U/min) or the motor's limit.
        self._prime_sps = min(
            mech.steps_per_s_for_mu_per_min(bolus_mod.SPEED_QUICK_MU_MIN), mech.max_step_rate
        )
        # A line test's moves go at the motor's top speed: over in a few ms, before an open
        # line has let any of their pressure go.
        self._test_sps = mech.max_step_rate
        self._basal_timer = board.basal_timer
        self._wake_timer = board.wake_timer
        self._basal_last = self._last_ticks
        self._basal_cb = self._on_basal_timer  # bound once: interrupts must not allocate
        self._wake_cb = self._on_wake_timer
        self._woken = False
        self._train = None  # (kind, part, steps, t_ms) of the train on the motor
        self._stall_cb = self._on_stall
        if self._diag is not None:
            self._diag.irq(self._stall_cb, machine.Pin.IRQ_RISING, hard=True)
        self._inbox = []
        self.running = False
        self._init_health(board)
        self._init_ui(board, s)
        self.link = None  # the serial protocol (pump/link.py), on a board with a port
        if getattr(board, "serial", None) is not None:
            from pump.link import Link

            self.link = Link(self, board.serial)

    def _init_health(self, board):
        """Watchdog, battery and buzzer parts (each None on a board without it)."""
        self.health = TaskMonitor()
        self.watchdog = board.watchdog
        self.battery = board.battery
        self.battery_monitor = board.battery_monitor
        if self.battery is None:
            self.battery_monitor = None
        self._sound_wake_ms = None  # when the buzzer's pattern next changes
        self.self_test_failures = []

    def _init_ui(self, board, settings):
        """Buttons, keypad, display and screens."""
        self.buttons = board.buttons
        self.keypad = None
        self._key_edge = False
        self._key_edge_cb = self._on_key_edge
        if self.buttons is not None:
            self.keypad = keys.Keypad()
        self.display = board.display
        self.display_ok = False
        self._display_retry_ms = None
        self._frame_unsent = False  # part of the frame drawn is still to go to the panel
        self.ui = None
        if self.display is not None:
            from pump.ui.ui import Ui  # the screens cost RAM: only on a board with a display

            self.ui = Ui(self, self.display, iob=self.therapy.iob, battery=self.battery_percent)

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

    def _on_key_edge(self, _pin):
        # Hard interrupt handler: allocation-free. A key changed: poll the keypad now.
        self._key_edge = True
        self._woken = True

    def _on_stall(self, _pin):
        # Hard interrupt handler: allocation-free. The driver's DIAG line says the motor
        # stalled; the main loop takes the fault path at once.
        self._stalled = True
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
        """Boot: record why the chip restarted, run the self-test, then start delivery (or
        stay in the safe state if the self-test failed) and the watchdog."""
        now = self.now_ms()
        cause = machine.reset_cause()
        name = reset_cause_name(cause)
        self.events.emit(
            now, ev.BOOT, nu_per_step=self.board.mechanics.nu_per_step, reset_cause=name
        )
        self.events.emit(now, ev.RESET_CAUSE, code=cause, cause=name)
        if was_watchdog_reset(cause) and not self.reset_planned:
            self.alarms.raise_alarm(now, al.RESET, cause=name)
        failures = self.self_test()
        now = self.now_ms()
        if self.persistence is not None:
            self.persistence.recover(self, now, cause)
        self._sync_basal(now)
        self.running = True
        if failures:
            self.fault(al.SELF_TEST, failures=len(failures), first=failures[0][1])
        self.health.register("basal", _BASAL_JOB_MS, now)
        if self.battery_monitor is not None:
            self.health.register("battery", bat.MAX_INTERVAL_MS, now)
        if self.buttons is not None:
            self.buttons.on_edge(self._key_edge_cb)
        if self.watchdog is not None:
            self.watchdog.start()
            self.watchdog.feed_if(True)
        self._persist(now)
        self._update_sound(now)

    def self_test(self):
        """The power-on self-test: reads every part, judges them (pump.core.selftest) and
        records the result; returns the failures as (code, message), empty when it passed."""
        readings = selftest.BootReadings()
        if self.buttons is not None:
            mask = self.buttons.read_mask()
            down = [keys.KEY_NAMES[i] for i in range(4) if mask & keys.KEYS[i]]
            readings.keys_down = tuple(down)
        if self.display is not None:
            readings.display_found = self._init_display()
            if not self.display_ok:
                self._display_retry_ms = self.now_ms() + _DISPLAY_RETRY_MS
        if self._force_sensor is not None:
            self._read_load_cell_at_rest(readings)
        buzzer = self._buzzer
        if buzzer is not None:
            buzzer.self_test_tone()
            now = self.now_ms()
            self._sound_wake_ms = now + (buzzer.update(now) or 0)
            readings.buzzer_driven = buzzer.driven()
        if self.firmware_root is not None:
            from pump.hal.firmware_files import verify

            readings.firmware = verify(self.firmware_root)
        else:
            readings.release = False  # running from source: no image to check
        failures = selftest.judge(readings)
        self.self_test_failures = failures
        self.events.emit(
            self.now_ms(),
            ev.SELF_TEST,
            passed=0 if failures else 1,
            codes=selftest.codes(failures),
            firmware=selftest.firmware_status(readings.firmware, readings.release),
        )
        return failures

    def _read_load_cell_at_rest(self, readings):
        # The HX711 gives its first sample within 400 ms of power-up, then 10 a second.
        limits = selftest.LoadCellLimits()
        sensor = self._force_sensor
        start = self.now_ms()
        deadline = start + limits.ready_ms + _LOAD_CELL_READS * 200
        samples = []  # type: list[int]
        ready_ms = -1
        while len(samples) < _LOAD_CELL_READS:
            raw = sensor.read_raw()
            now = self.now_ms()
            if raw is not None:
                if ready_ms < 0:
                    ready_ms = now - start
                samples.append(raw)
            elif now >= deadline or (ready_ms < 0 and now - start > limits.ready_ms):
                break
            else:
                self._clock.sleep_ms(_SELF_TEST_POLL_MS)
        readings.load_cell_ready_ms = ready_ms
        readings.load_cell_samples = samples

    def run(self):
        """The firmware's main loop (never returns on the board)."""
        self.start()
        while self.running:
            self.service()
            self.sleep()

    def service(self):
        """One pass of the main loop: the motor's record, safety, commands, the next train."""
        now = self.now_ms()
        self._collect_train(now)
        self._pump_basal(now)
        self.therapy.close_hour(now)
        self.health.report("basal", now)
        self._check_safety(now)
        self._service_battery(now)
        self._service_keys(now)
        if self.link is not None:
            self.link.service(now)
        if self._inbox:
            while self._inbox:
                action = self._inbox.pop(0)
                action(self)
            now = self.now_ms()
            self._check_safety(now)
        self._persist(now)
        self._dispatch(now)
        self._update_sound(now)
        self._service_display(now)
        if self.watchdog is not None:
            self.watchdog.feed_if(self.health.healthy(now))

    def sleep(self):
        """Wait (in low power) until an interrupt brings work for the main loop."""
        now = self.now_ms()
        wake_at = self._next_wake_ms(now)
        wait = _HOUSEKEEPING_MS
        dog = self.watchdog
        if dog is not None and dog.started:
            wait = dog.feed_interval_ms()  # wake to feed it, or it resets the chip
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

    def _next_wake_ms(self, now):
        test = self.line_test
        if self.therapy.suspended_at is not None:
            test = None  # no line tests while delivery is suspended
        if test is not None and test.running():
            # Therapy waits for the test (its trains would be due now): wake for the test.
            wake = test.next_wake_ms()
        else:
            wake = self.therapy.next_wake_ms(now)
            if test is not None:
                wake = earliest(wake, test.next_due_ms())
        alarm_wake = self.alarms.next_wake_ms(now)
        if alarm_wake is not None and (wake is None or alarm_wake < wake):
            wake = alarm_wake
        if self._motion is not None and self._train is None:
            wake = now
        if self._force_read_ms is not None:
            check = self._force_read_ms + _SENSOR_CHECK_MS
            if wake is None or check < wake:
                wake = check
        if self.battery_monitor is not None:
            wake = earliest(wake, now + self.battery_monitor.ms_until_due(now))
        wake = earliest(wake, self._sound_wake_ms)
        if self.keypad is not None:
            wake = earliest(wake, self.keypad.next_poll_ms(now))
        if self.link is not None:
            wake = earliest(wake, self.link.next_wake_ms())
        if self.ui is not None:
            if self.display_ok:
                wake = earliest(wake, self._redraw_due(now))
            else:
                wake = earliest(wake, self._display_retry_ms)
        return wake

    def _has_work(self):
        return (
            self._woken
            or self._inbox
            or self._ticker.due > 0
            or self.therapy.rate_change_pending()
            or (self._train is not None and not self._stepper.busy())
            or (self.link is not None and self.link.has_input())
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

    # ----- the motor --------------------------------------------------------------------

    def _start_train(self, now, kind, part, steps, rate, forward=True):
        self._stepper.start(steps, rate, forward)
        self._train = (kind, part, steps, now, forward)

    def _collect_train(self, now):
        train = self._train
        if train is not None and not self._stepper.busy():
            self._train = None
            self._train_finished(train, self._stepper.finish(), now)

    def _halt_train(self, now, only_kind=None):
        """Stop the motor mid-train and record exactly the steps that went out."""
        train = self._train
        if train is None or (only_kind is not None and train[0] != only_kind):
            return
        self._train = None
        self._train_finished(train, self._stepper.stop(), now)

    def _train_finished(self, train, steps, now):
        """Book a train the motor emitted (``steps`` of it) in every record that needs it."""
        kind, part = train[0], train[1]
        self.position_steps += steps if train[4] else -steps
        self.monitor.reported(steps)
        counted = steps if self._pulses is None else self._pulses.take()
        self.monitor.counted(counted)
        test = self.line_test
        if test is not None:
            if kind == LINE_TEST:
                test.moved(now, steps if train[4] else -steps)
                return
            if kind == BOLUS:
                test.bolus_ran(now - train[3])
        if kind == BASAL or kind == BOLUS:
            if self.persistence is not None:
                self.persistence.train_done(steps)
            self.therapy.train_done(kind, part, steps, train[3])
            self.reservoir.took(steps)
            self.monitor.delivered(now, steps)
            self._judge_line(now, self.therapy.bolus is not None)
            return
        motion = self._motion
        self._moved += steps
        if kind == PRIME:
            self.reservoir.took(steps)
        elif kind == BACKOFF:
            self.reservoir.gave_back(steps)
        if motion is None:
            return
        motion[2] -= steps
        if kind == REWIND and self._at_end_stop():
            motion[2] = 0
        if kind == SEAT:
            force = self.read_force(now)
            if force is not None and force >= _SEATED_MN:
                motion[2] = 0
        if kind == BACKOFF:
            self.read_force(now)  # for the record: the force as the pressure comes off
        if motion[2] <= 0 or steps < train[2]:
            self._motion = None
            self._motion_done(kind, part, now)

    def _motion_done(self, kind, part, now):
        moved = self._moved
        self._moved = 0
        mech = self.board.mechanics
        if kind == PRIME:
            self.reservoir.filled(part, moved)
            self.events.emit(now, ev.PRIMED, part=part, steps=moved, mu=mech.mu_for_steps(moved))
        elif kind == BACKOFF:
            self.events.emit(
                now, ev.BACKOFF, steps=moved, nl=mech.nl_for_steps(moved),
                not_delivered_mu=mech.mu_for_steps(moved), force_mn=self.force_mn,
            )
            self._forget_line(now, moved=True)
            self.alarms.clear(now, al.OCCLUSION)
        elif kind == SEAT:
            self.events.emit(now, ev.RESERVOIR_SEATED, steps=moved, force_mn=self.force_mn)
            self._forget_line(now, moved=True)
        elif kind == REWIND:
            if self._at_end_stop():
                self.reservoir.rewound()
                self.events.emit(now, ev.RESERVOIR_REWOUND, steps=moved)
            else:
                self.fault(al.INTERNAL, reason="end stop not reached after %d steps" % moved)

    def _at_end_stop(self):
        return self._end_stop is not None and self._end_stop.value() == 0

    def _dispatch(self, now):
        if self._train is not None:
            return
        motion = self._motion
        if motion is not None:
            kind, part, left, rate, forward = motion
            if kind == REWIND or kind == SEAT:
                chunk = rate // _REWIND_CHUNK_S or 1
                if kind == REWIND and self._at_end_stop():
                    self._motion = None
                    self._motion_done(kind, part, now)
                    return
                left = left if left < chunk else chunk
            elif kind == BACKOFF:
                chunk = _BACKOFF_CHUNK_NL * 1000 // self.board.mechanics.pl_per_step or 1
                left = left if left < chunk else chunk
            self._start_train(now, kind, part, left, rate, forward)
            return
        if self._service_line_test(now):
            return  # a line test holds the motor
        train = self.therapy.next_train(now)
        if train is None:
            return
        kind, part, steps, rate = train
        allowed = self.reservoir.steps_allowed(steps)
        if allowed <= 0:
            self.fault(al.RESERVOIR_EMPTY, remaining_steps=self.reservoir.remaining_steps)
            return
        if self._judge_line(now, self.therapy.bolus is not None):
            return  # the fault path ran: nothing more goes out
        if self.persistence is not None:
            self.persistence.before_train(now, kind, allowed)  # on flash before it moves
        self._start_train(now, kind, part, allowed, rate)

    # ----- safety: the one fault path ----------------------------------------------------

    def fault(self, code, **fields):
        """Take the pump to its safe state: motor off at once, delivery stopped (for alarms
        that stop it), alarm latched, everything recorded. Runs in the main loop."""
        now = self.now_ms()
        self._halt_train(now)
        self._motion = None
        self._moved = 0
        if self.line_test is not None:
            self.line_test.abort()
        not_delivered = 0
        if al.stops_delivery(code):
            not_delivered = self.therapy.stop(now, code)
            self._sync_basal(now)
        if self.alarms.raise_alarm(now, code, **fields):
            self.events.emit(
                now, ev.FAULT, code=code, motor_stopped=1, not_delivered_mu=not_delivered
            )
        if code in (al.DELIVERY_MISMATCH, al.AUTO_OFF):
            self.alarms.clear(now, code)  # a one-off: latched until acknowledged
        if code == al.OCCLUSION:
            self._relieve_pressure(now)
        self._update_sound(now)

    def _relieve_pressure(self, now):
        """After an occlusion: back the plunger off by the travel since the force was last
        at its floor, so the volume pushed into the blocked line comes back and reopening
        the line releases no bolus. (Reading the force while backing off would stop too
        early: friction turns round with the motion and hides the pressure.)"""
        detector = self.detector
        start = None if detector is None else detector.relief_from_steps()
        if self.line_test is not None and self.line_test.open_at is not None:
            start = self.line_test.open_at  # where the line last took the push
        if start is None:
            self.alarms.clear(now, al.OCCLUSION)  # nothing measured to relieve
            return
        self.back_off(self.position_steps - start)

    # ----- the line: force on the plunger ---------------------------------------------

    def read_force(self, now):
        """Read the load cell: the force in mN, or None (no sensor, no data, a fault)."""
        sensor = self._force_sensor
        if sensor is None or self._pressure is None:
            return None
        self._force_read_ms = now
        raw = sensor.read_raw()
        pressure = self._pressure
        if raw is None:
            pressure.no_data(now)
            force = None
        else:
            force = pressure.sample(now, raw)
        code = pressure.fault
        if code is not None:
            alarm = self.alarms.find(code)
            if alarm is None or not alarm.cause_present:
                self.fault(code, raw=pressure.raw)
            return None
        self._clear_sensor_alarms(now)
        self.force_mn = force
        return force

    def _clear_sensor_alarms(self, now):
        for code in (al.SENSOR_NO_DATA, al.SENSOR_STUCK, al.SENSOR_RANGE):
            alarm = self.alarms.find(code)
            if alarm is not None and alarm.cause_present:
                self.alarms.clear(now, code)

    def _judge_line(self, now, bolus):
        """Read the force and let the detector judge the line; True if a fault ran."""
        force = self.read_force(now)
        if force is None:
            return self._pressure is not None and self._pressure.fault is not None
        if self.therapy.suspended_at is not None:
            return False
        watch = self.disconnection
        if watch is not None and watch.observe(now, self.position_steps, force, bolus):
            if self.alarms.find(al.DISCONNECTED) is None:
                # Delivery goes on (the person checks the site); the pump cannot see the
                # line put back, so the alert is a one-off, latched until acknowledged.
                self.alarms.raise_alarm(now, al.DISCONNECTED, force_mn=force,
                                        drop_mn=watch.drop_now_mn)
                self.alarms.clear(now, al.DISCONNECTED)
        detector = self.detector
        if detector is None:
            return False
        verdict = detector.observe(self.position_steps, force, bolus)
        if verdict == OCCLUDED:
            self.fault(
                al.OCCLUSION,
                force_mn=force,
                pressure_pa=self._pressure.pressure_pa(),
                floor_mn=detector.floor_old_mn,
            )
            return True
        return False

    def _service_line_test(self, now):
        """Run the line test (pump/core/line_test.py): start it when due, make its moves,
        read the force while it watches, act on its verdict. True while it holds the
        motor, so no therapy train goes out in the middle of a test."""
        test = self.line_test
        if test is None or self.therapy.suspended_at is not None:
            return False
        bolus = self.therapy.bolus is not None
        if not test.running():
            if test.owed > 0:  # a test cut short: give back what its pull took first
                steps, test.owed = test.owed, 0
                self._start_train(now, LINE_TEST, 0, steps, self._test_sps)
                return True
            if not test.due(now, bolus):
                return False
            test.start(now)
        if test.watching():
            if now < test.next_wake_ms():
                return True
            verdict = test.sample(now, self.read_force(now), self.position_steps)
            if verdict == BLOCKED:
                self.fault(
                    al.OCCLUSION,
                    source="line test",
                    relief_mn=test.relief_mn,
                    force_mn=self.force_mn,
                    pressure_pa=self._pressure.pressure_pa(),
                )
                return True
            if test.watching() or not test.running():
                return test.running()
        steps = test.move(now)
        if steps:
            self._start_train(now, LINE_TEST, 0, abs(steps), self._test_sps, steps > 0)
        return True

    def _forget_line(self, now, moved=False):
        """The line's history no longer holds (a back-off, a resume, a new reservoir).
        ``moved``: the plunger was placed anew, so a cut-short test's pull is not owed."""
        if self.detector is not None:
            self.detector.reset()
        if self.line_test is not None:
            self.line_test.reset(now, owed_too=moved)
        if self.disconnection is not None:
            self.disconnection.reset()

    def _check_safety(self, now):
        if self._stalled:
            self._stalled = False
            self.fault(al.OCCLUSION, source="motor stall")
            return
        self._check_monitor(now)
        self._check_reservoir(now)
        if self._force_sensor is not None and self._train is None and (
            self._force_read_ms is None or now - self._force_read_ms >= _SENSOR_CHECK_MS
        ):
            self.read_force(now)
        for code in self.alarms.tick(now, self.therapy.suspended_at):
            if code == al.AUTO_OFF:
                self.fault(code, hours=self.alarms.auto_off_h)

    def _check_monitor(self, now):
        monitor = self.monitor
        mismatch = monitor.mismatch()
        if mismatch:
            monitor.counted_steps = monitor.reported_steps  # judged once, then start afresh
            self.fault(al.DELIVERY_MISMATCH, steps_off=mismatch)
        hour_mu = monitor.hour_mu(now)
        day_mu = monitor.day_mu(now)
        for code, over in (
            (al.LIMIT_HOUR, hour_mu > monitor.max_hour_mu),
            (al.LIMIT_DAY, day_mu > monitor.max_day_mu),
        ):
            latched = self.alarms.find(code)
            if over and latched is None:
                self.fault(code, hour_mu=hour_mu, day_mu=day_mu)
            elif not over and latched is not None:
                self.alarms.clear(now, code)

    def _check_reservoir(self, now):
        level = self.reservoir.level()
        if level == self._reservoir_level or not self.reservoir.in_use():
            return
        self._reservoir_level = level
        remaining = self.reservoir.remaining_mu()
        if level == res.EMPTY:
            self.fault(al.RESERVOIR_EMPTY, remaining_mu=remaining)
            return
        self.alarms.clear(now, al.RESERVOIR_EMPTY)
        if level == res.LOW:
            self.alarms.raise_alarm(now, al.RESERVOIR_LOW, remaining_mu=remaining)
        else:
            self.alarms.clear(now, al.RESERVOIR_LOW)

    def _interlock(self, command, mu):
        """Therapy asks before a bolus or a resume: None, or why not now."""
        now = self._now_ms
        if command == "resume":
            blocking = self.alarms.blocking_delivery()
            if blocking:
                return "alarm '%s' is active: acknowledge it and fix its cause" % blocking[0]
            if not self.reservoir.in_use():
                return "finish the reservoir change first"
            if self.reservoir.level() == res.EMPTY:
                return "the reservoir is empty"
            return None
        if self.alarms.high_active():
            return "a high-priority alarm is active: acknowledge it first"
        if not self.reservoir.in_use():
            return "finish the reservoir change first"
        if mu > self.reservoir.remaining_mu():
            return "only %d mU left in the reservoir" % self.reservoir.remaining_mu()
        headroom = self.monitor.headroom_mu(now)
        if mu > headroom:
            self.alarms.raise_alarm(now, al.OVER_LIMIT_REQUEST, requested_mu=mu)
            self.alarms.clear(now, al.OVER_LIMIT_REQUEST)
            return "above the insulin limit per hour or day: %d mU allowed now" % max(headroom, 0)
        return None

    def _update_sound(self, now):
        level = self.alarms.sound(now)
        self._sounding = level
        buzzer = self._buzzer
        if buzzer is None:
            return
        buzzer.follow(level)
        wait = buzzer.update(now)
        self._sound_wake_ms = None if wait is None else now + wait

    # ----- health: battery, watchdog ---------------------------------------------------

    def _service_battery(self, now):
        monitor = self.battery_monitor
        if monitor is None or not monitor.due(now):
            return
        mv = self.battery.read_mv()
        self.health.report("battery", now)
        state = monitor.update(now, mv)
        if state is None:
            return
        self.events.emit(now, ev.BATTERY, state=bat.STATE_NAMES[state], mv=mv)
        if state == bat.DEPLETED:
            self.fault(al.BATTERY_DEPLETED, mv=mv)
            return
        self.alarms.clear(now, al.BATTERY_DEPLETED)
        if state == bat.LOW:
            self.alarms.raise_alarm(now, al.BATTERY_LOW, mv=mv)
        else:
            self.alarms.clear(now, al.BATTERY_LOW)

    def battery_percent(self):
        """The battery gauge for the screen, 0-100 %, or None before the first reading."""
        monitor = self.battery_monitor
        if monitor is None or monitor.last_mv is None:
            return None
        span = _FULL_BATTERY_MV - monitor.depleted_mv
        percent = (monitor.last_mv - monitor.depleted_mv) * 100 // span
        return 0 if percent < 0 else (100 if percent > 100 else percent)

    # ----- keys and screen -----------------------------------------------------------------

    def _service_keys(self, now):
        keypad = self.keypad
        if keypad is None:
            return
        due = keypad.next_poll_ms(now)
        if not self._key_edge and (due is None or due > now):
            return
        self._key_edge = False
        keypad.update(now, self.buttons.read_mask())
        event = keypad.pop()
        while event is not None:
            kind = event[0]
            if kind == keys.STUCK:
                self.alarms.raise_alarm(now, al.STUCK_KEY, key=keys.key_name(event[1]))
            elif kind == keys.STUCK_CLEARED:
                self.alarms.clear(now, al.STUCK_KEY)
            elif self.ui is not None and self.display_ok:
                self.ui.handle(event, self.now_ms())
            else:
                self.button_pressed()  # keys unseen on a dark screen do nothing else
            event = keypad.pop()

    def _init_display(self):
        """(Re)start the display; True when it answered."""
        try:
            self.display.init_display()
        except OSError:
            self.display_ok = False
            return False
        self.display_ok = True
        self._display_retry_ms = None
        if self.ui is not None:
            self.ui.needs_redraw = True
        return True

    def _redraw_due(self, now):
        ui = self.ui
        if ui is None:
            return None
        if self._frame_unsent:
            return now  # the rest of a frame sent in slices goes out on the next pass
        return ui.next_redraw_ms(now)

    def _service_display(self, now):
        ui = self.ui
        if ui is None:
            return
        if not self.display_ok:
            retry = self._display_retry_ms
            if retry is None or now < retry:
                return
            if not self._init_display():
                self._display_retry_ms = now + _DISPLAY_RETRY_MS
                return
            self.events.emit(now, ev.DISPLAY_BACK)
            self.alarms.clear(now, al.DISPLAY)
        due = self._redraw_due(now)
        if due is None or due > now:
            return
        if not self._frame_unsent:
            ui.draw(now)
        try:
            # show() sends at most a slice of the changes (the loop must not wait long).
            self._frame_unsent = self.display.show() is False
        except OSError:
            self._frame_unsent = False
            self.display_ok = False
            self._display_retry_ms = now + _DISPLAY_RETRY_MS
            self.events.emit(now, ev.DISPLAY_LOST)
            self.alarms.raise_alarm(now, al.DISPLAY)

    # ----- commands: run by the main loop; each returns None or the refusal reason ----

    def _command(self, fn, *args):
        now = self.now_ms()
        self._collect_train(now)
        self._pump_basal(now)
        self.alarms.interaction(now)
        try:
            fn(now, *args)
        except Refused as refusal:
            return str(refusal)
        finally:
            self._sync_basal(now)
            self._persist(now)
            self._dispatch(now)
            self._update_sound(now)
        return None

    def bolus(self, kind, mu, now_percent=100, duration_ms=0):
        return self._command(self._bolus, kind, mu, now_percent, duration_ms)

    def _bolus(self, now, kind, mu, now_percent, duration_ms):
        result = self.therapy.start_bolus(now, kind, mu, now_percent, duration_ms)
        if self.line_test is not None:
            self.line_test.bolus_started(now)  # the line is tested before it goes out
        return result

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
            if self.line_test is not None:
                self.line_test.abort()
        self.therapy.suspend(now)

    def resume(self):
        return self._command(self._resume)

    def _resume(self, now):
        self.therapy.resume(now)
        self._forget_line(now)

    def acknowledge(self, code=None):
        """The person acknowledges the alarm shown (or ``code``); returns None or why not."""
        return self._command(self._acknowledge, code)

    def _acknowledge(self, now, code):
        if self.alarms.acknowledge(now, code) is None:
            raise self.therapy.refuse(now, "acknowledge", "no alarm to acknowledge")

    def button_pressed(self):
        """Any key press: the person is there (restarts the auto-off timer)."""
        self.alarms.interaction(self.now_ms())

    def select_profile(self, index):
        return self._command(self.therapy.select_profile, index)

    def save_profile(self, index, name, segments):
        return self._command(self.therapy.save_profile, index, name, segments)

    def set_limits(self, max_bolus_mu, max_basal_mu_per_h):
        return self._command(self.therapy.set_limits, max_bolus_mu, max_basal_mu_per_h)

    def set_insulin_limits(self, max_hour_mu, max_day_mu):
        return self._command(self._set_insulin_limits, max_hour_mu, max_day_mu)

    def _set_insulin_limits(self, now, max_hour_mu, max_day_mu):
        try:
            self.monitor.set_limits(max_hour_mu, max_day_mu)
        except Refused as refusal:
            raise self.therapy.refuse(now, "insulin limits", str(refusal))
        s = self.therapy.settings
        s.max_hour_mu = max_hour_mu
        s.max_day_mu = max_day_mu
        self.events.emit(
            now, ev.SETTINGS_CHANGED, max_hour_mu=max_hour_mu, max_day_mu=max_day_mu
        )

    def set_safety_options(self, low_reservoir_mu, auto_off_h):
        return self._command(self._set_safety_options, low_reservoir_mu, auto_off_h)

    def _set_safety_options(self, now, low_reservoir_mu, auto_off_h):
        reservoir = self.reservoir
        old_low = reservoir.low_level_mu
        try:
            reservoir.set_low_level(low_reservoir_mu)
            self.alarms.set_auto_off(auto_off_h)
        except (Refused, ValueError) as refusal:
            reservoir.low_level_mu = old_low
            raise self.therapy.refuse(now, "safety options", str(refusal))
        s = self.therapy.settings
        s.low_reservoir_mu = low_reservoir_mu
        s.auto_off_h = auto_off_h
        self.events.emit(
            now, ev.SETTINGS_CHANGED, low_reservoir_mu=low_reservoir_mu, auto_off_h=auto_off_h
        )

    def set_bolus_options(self, increment_mu, speed_mu_per_min):
        return self._command(self.therapy.set_bolus_options, increment_mu, speed_mu_per_min)

    def set_calculator(self, icr, isf, targets):
        """The calculator's segments by time of day (pump.core.calculator), all three."""
        return self._command(self._set_calculator, icr, isf, targets)

    def _set_calculator(self, now, icr, isf, targets):
        try:
            calculator = CalculatorSettings(icr, isf, targets)
        except Refused as refusal:
            raise self.therapy.refuse(now, "calculator", str(refusal))
        self.therapy.settings.calculator = calculator
        self.events.emit(
            now, ev.SETTINGS_CHANGED, icr_segments=len(icr), isf_segments=len(isf),
            target_segments=len(targets),
        )

    def set_bg_unit(self, mmol):
        """Show BG in mmol/L (True) or mg/dL (False)."""
        return self._command(self._set_bg_unit, mmol)

    def _set_bg_unit(self, now, mmol):
        if mmol is not True and mmol is not False:
            raise self.therapy.refuse(now, "BG unit", "the BG unit is mg/dL or mmol/L")
        self.therapy.settings.bg_mmol = mmol
        self.events.emit(now, ev.SETTINGS_CHANGED, bg_unit="mmol/L" if mmol else "mg/dL")

    def set_insulin_action(self, insulin, dia_ms):
        """The insulin (pump.core.iob preset) and its duration of action, for insulin on board."""
        return self._command(self._set_insulin_action, insulin, dia_ms)

    def _set_insulin_action(self, now, insulin, dia_ms):
        try:
            curve = InsulinCurve(insulin, dia_ms)
        except Refused as refusal:
            raise self.therapy.refuse(now, "insulin action", str(refusal))
        self.therapy.iob.set_curve(curve)
        s = self.therapy.settings
        s.insulin = insulin
        s.dia_ms = dia_ms
        self.events.emit(now, ev.SETTINGS_CHANGED, insulin=insulin, dia_min=dia_ms // 60_000)

    def set_time_of_day(self, ms_of_day):
        return self._command(self._set_time_of_day, ms_of_day)

    def _set_time_of_day(self, now, ms_of_day):
        self.therapy.set_clock(now, ms_of_day)
        if self.persistence is not None:
            self.persistence.clock_set(now, ms_of_day)

    # ----- persistence: settings, checkpoint and event log on flash ------------------------

    def _persist(self, now):
        if self.persistence is not None:
            self.persistence.persist(now, self._train is not None)

    def accept_factory_defaults(self):
        """After the settings were lost: the person accepts the factory settings offered."""
        if self.persistence is None:
            return "this pump keeps no settings on flash"
        return self._command(self.persistence.accept_factory_defaults)

    def set_up(self, settings, wall_s):
        """Setup, on the keys or from the computer: run with ``settings`` (a whole Settings,
        checked by the caller) and set the clock to ``wall_s`` (seconds since 2000-01-01),
        in one command. The setup, settings and clock alarms settle; recovery's suspension
        ends (a person's own suspension stays)."""
        return self._command(self._set_up, settings, wall_s)

    def _set_up(self, now, settings, wall_s):
        from pump.core.state import DAY_S, rtc_tuple

        therapy = self.therapy
        self.monitor.set_limits(settings.max_hour_mu, settings.max_day_mu)
        self.reservoir.set_low_level(settings.low_reservoir_mu)
        self.alarms.set_auto_off(settings.auto_off_h)
        therapy.settings = settings
        therapy._bolus_sps = therapy._train_rate(settings.bolus_speed_mu_per_min)
        therapy.iob.set_curve(InsulinCurve(settings.insulin, settings.dia_ms))
        self.events.emit(now, ev.SETTINGS_CHANGED, setup=1, wall_s=wall_s)
        therapy.set_clock(now, wall_s % DAY_S * 1000)
        if self.board.rtc is not None:
            self.board.rtc.datetime(rtc_tuple(wall_s))
        persistence = self.persistence
        if persistence is not None:
            persistence.settings_ok = True
            persistence.settings_dirty = True
            persistence.clock_ok = True
            persistence.last_wall_s = wall_s
        for code in (al.CHECK_SETTINGS, al.SET_UP, al.SET_TIME):
            if self.alarms.find(code) is not None:
                self.alarms.clear(now, code)
                self.alarms.acknowledge(now, code)
        if persistence is not None:
            persistence.resume_if_recovered(now)

    def _apply_settings(self, now, settings):
        """Run with ``settings`` from now on (every module that holds a part of them)."""
        therapy = self.therapy
        therapy.settings = settings
        therapy._bolus_sps = therapy._train_rate(settings.bolus_speed_mu_per_min)
        self.monitor.set_limits(settings.max_hour_mu, settings.max_day_mu)
        self.reservoir.set_low_level(settings.low_reservoir_mu)
        self.alarms.set_auto_off(settings.auto_off_h)
        self.events.emit(now, ev.SETTINGS_CHANGED, factory=1)

    def history(self, n=50):
        """The last ``n`` events, newest first, as (seq, t_ms, wall_s, type, fields): from
        flash when the pump has storage, else from the events kept in RAM."""
        if self.persistence is not None:
            return self.persistence.history(n)
        return [(e[0], e[1], None, e[2], e[3]) for e in reversed(self.events.recent(n))]

    # ----- reservoir change ----------------------------------------------------------------

    def rewind(self):
        """Drive the pusher back to the end stop (delivery must be suspended)."""
        return self._command(self._rewind)

    def _rewind(self, now):
        therapy = self.therapy
        if therapy.suspended_at is None:
            raise therapy.refuse(now, "rewind", "suspend delivery before changing the reservoir")
        if self._end_stop is None:
            raise therapy.refuse(now, "rewind", "this board has no end stop")
        if self._motion is not None:
            raise therapy.refuse(now, "rewind", "the motor is busy")
        mech = self.board.mechanics
        travel = mech.steps_for_mu(mech.reservoir_capacity_mu(), 0)[0] * 11 // 10
        self._moved = 0
        self._motion = [REWIND, 0, travel, mech.max_step_rate, False]

    def load_reservoir(self, volume_mu):
        """A new reservoir holding ``volume_mu`` is in place."""
        return self._command(self._load_reservoir, volume_mu)

    def _load_reservoir(self, now, volume_mu):
        try:
            self.reservoir.load(volume_mu)
        except Refused as refusal:
            raise self.therapy.refuse(now, "load reservoir", str(refusal))
        self._reservoir_level = self.reservoir.level()
        self.alarms.clear(now, al.RESERVOIR_EMPTY)
        self.alarms.clear(now, al.RESERVOIR_LOW)
        self.events.emit(now, ev.RESERVOIR_LOADED, volume_mu=volume_mu)
        if self._force_sensor is not None:
            # Bring the pusher up to the new stopper: it stops where the force rises.
            mech = self.board.mechanics
            travel = mech.steps_for_mu(mech.reservoir_capacity_mu(), 0)[0] * 11 // 10
            self._moved = 0
            self._motion = [SEAT, 0, travel, mech.max_step_rate, True]

    def fill(self, part, mu):
        """Fill the tubing or the cannula with ``mu``: insulin used, never therapy."""
        return self._command(self._fill, part, mu)

    def _fill(self, now, part, mu):
        if self._motion is not None:
            raise self.therapy.refuse(now, "fill", "the motor is busy")
        try:
            self.reservoir.check_fill(part, mu)
        except Refused as refusal:
            raise self.therapy.refuse(now, "fill " + str(part), str(refusal))
        if self._motion is not None:
            raise self.therapy.refuse(now, "fill", "the motor is busy")
        steps = self.board.mechanics.steps_for_mu(mu, 0)[0]
        self._moved = 0
        self._motion = [PRIME, part, steps, self._prime_sps, True]

    def back_off(self, steps):
        """Move the plunger back ``steps`` to relieve pressure (the occlusion response)."""
        mech = self.board.mechanics
        limit = _BACKOFF_MAX_UL * 1_000_000 // mech.pl_per_step
        steps = steps if steps < limit else limit
        if steps <= 0:
            self.alarms.clear(self._now_ms, al.OCCLUSION)
            return
        self._moved = 0
        self._motion = [BACKOFF, 0, steps, self._prime_sps, False]
