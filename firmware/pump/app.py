"""The pump application: builds the parts from a board, and schedules them in the main loop.

Each invariant has one owner, and the App only wires them and decides when each runs:

- ``delivery`` (pump.delivery): the basal timer, the pulse trains, halting and booking;
- ``motions`` (pump.motions): moves that are not therapy, and the line test;
- ``supervisor`` (pump.supervisor): the one fault path and the monitors;
- ``persistence`` (pump.persistence): the recorder, flash before delivery, recovery;
- ``gate`` (pump.gate): the one entry for commands (keys, serial, scenarios);
- ``panel`` (pump.panel): keys and display.

Concurrency: hard interrupts (the basal timer, the wake timer, key edges, a driver stall)
set flags or feed the basal accumulator; everything else runs in the main loop.
"""

import machine

from pump.core import alarms as al
from pump.core import battery as bat
from pump.core import events as ev
from pump.core.alarms import AlarmManager
from pump.core.events import EventLog
from pump.core.health import TaskMonitor, was_watchdog_reset
from pump.core.reservoir import Reservoir
from pump.core.therapy import Settings, Therapy
from pump.core.units import earliest
from pump.delivery import Delivery
from pump.gate import CommandGate
from pump.motions import BACKOFF, LINE_TEST, PRIME, REWIND, SEAT, Motions  # noqa: F401  (re-exported)
from pump.panel import Panel
from pump.supervisor import Supervisor

_HOUSEKEEPING_MS = 60_000  # the main loop runs at least this often
_BATTERY_TASK = "battery"
_DELIVERY_TASK = "delivery"  # reports when no train on the motor is overdue
_SAFETY_TASK = "safety"  # reports when the monitors ran to the end


def _unload(*names):
    """Forget modules used only at boot, so that the collector frees their code."""
    import sys

    for name in names:
        sys.modules.pop(name, None)
        package, _, leaf = name.rpartition(".")
        if leaf in getattr(sys.modules.get(package), "__dict__", ()):
            delattr(sys.modules[package], leaf)


class App:
    # main.py sets this when `make flash` marked the reset that started this boot: a
    # deliberate reset, not the "pump restarted" alarm of a real watchdog reset.
    reset_planned = False

    def __init__(self, board, clock, settings=None, ms_of_day=None, events=None,
                 firmware_root=None, storage=None):
        self.board = board
        self.clock = clock
        self.firmware_root = firmware_root  # "/" on a release image: its files are checked
        if ms_of_day is None:
            dt = board.rtc.datetime()  # (year, month, day, weekday, h, m, s, subseconds)
            ms_of_day = ((dt[4] * 60 + dt[5]) * 60 + dt[6]) * 1000
        self._ticks_ms = clock.ticks_ms
        self._ticks_diff = clock.ticks_diff
        # With a flash log (the history read from there) the RAM ring keeps the last few.
        self.events = events if events is not None else EventLog(8 if storage else 64)
        self._last_ticks = clock.ticks_ms()
        self._now_ms = 0  # ms since boot; grows past small ints, so main loop only
        self.persistence = None  # the recorder: settings, checkpoint and log on flash
        if storage is not None:
            from pump.persistence import Persistence

            self.persistence = Persistence(storage, board, self.events)
            settings = self.persistence.settings()  # the flash's, never the caller's
        self.therapy = Therapy(board.mechanics, settings or Settings(), self.events, 0, ms_of_day)
        s = self.therapy.settings
        mech = board.mechanics
        self.alarms = AlarmManager(self.events, s.auto_off_h, 0)
        self.reservoir = Reservoir(mech, mech.reservoir_capacity_mu(), s.low_reservoir_mu)
        self.detector = board.occlusion
        self.line_test = None  # core LineTest: it judges the line by the plunger force
        self.disconnection = None  # core DisconnectWatch: the line came off in a bolus?
        if board.force_sensor is not None and board.pressure is not None:
            self.line_test = getattr(board, "line_test", None)
            self.disconnection = getattr(board, "disconnection", None)
        self.supervisor = Supervisor(self, board, s)
        self.monitor = self.supervisor.monitor
        self.therapy.interlock = self.supervisor.interlock
        self.delivery = Delivery(self, board)
        self.motions = Motions(self, board)
        self.gate = CommandGate(self)
        self._wake_timer = board.wake_timer
        self._wake_cb = self._on_wake_timer
        self._woken = False
        self.running = False
        self.health = TaskMonitor()
        self.watchdog = board.watchdog
        self.battery, self.battery_monitor = board.battery, self.supervisor.battery_monitor
        self.self_test_failures = []
        panel = self.panel = Panel(self, board)
        self.ui, self.buttons, self.keypad, self.display = (panel.ui, panel.buttons,
                                                            panel.keypad, panel.display)
        self.link = None  # the serial protocol (pump/link.py), on a board with a port
        if getattr(board, "serial", None) is not None:
            from pump.link import Link

            self.link = Link(self, board.serial)

    # ----- state other parts read (kept for the tools, the UI and the tests) ---------------

    @property
    def position_steps(self):
        return self.delivery.position_steps

    @property
    def force_mn(self):
        return self.supervisor.force_mn

    @property
    def display_ok(self):
        return self.panel.display_ok

    @property
    def _train(self):
        return self.delivery.train

    # ----- interrupts and time -----------------------------------------------------------

    def _on_wake_timer(self, _timer):
        # Hard interrupt handler: allocation-free.
        self._woken = True

    def wake(self):
        """Interrupt-safe: the main loop has work (a key edge, a stall)."""
        self._woken = True

    def now_ms(self):
        """Milliseconds since boot, from ticks (which wrap) folded into a growing count."""
        t = self._ticks_ms()
        self._now_ms += self._ticks_diff(t, self._last_ticks)
        self._last_ticks = t
        return self._now_ms

    # ----- boot and the main loop ----------------------------------------------------------

    def start(self):
        """Boot: record why the chip restarted, run the self-test, recover from flash, then
        start delivery (or stay in the safe state) and the watchdog."""
        from pump import resets, selfcheck

        now = self.now_ms()
        cause = machine.reset_cause()
        mark = None if self.persistence is None else self.persistence.reset_mark
        if mark is None and self.reset_planned:
            mark = ("deliberate", "flash")
        name, reason = resets.reset_fields(cause, mark)
        self.events.emit(now, ev.BOOT, nu_per_step=self.board.mechanics.nu_per_step,
                         reset_cause=name)
        if reason is None:
            self.events.emit(now, ev.RESET_CAUSE, code=cause, cause=name)
        else:
            self.events.emit(now, ev.RESET_CAUSE, code=cause, cause=name, reason=reason)
        if name == "crash" or (reason is None and was_watchdog_reset(cause)):
            self.alarms.raise_alarm(now, al.RESET, cause=name)
        failures = selfcheck.run(self, self.board)
        self.self_test_failures = failures
        now = self.now_ms()
        if self.persistence is not None:
            self.persistence.recover(self, now, cause)
        self.delivery.sync_basal(now)
        self.running = True
        if failures:
            self.fault(al.SELF_TEST, failures=len(failures), first=failures[0][1])
        dog = self.watchdog
        period = _HOUSEKEEPING_MS if dog is None else dog.feed_interval_ms()
        self.health.register(_DELIVERY_TASK, period, now)
        self.health.register(_SAFETY_TASK, period, now)
        if self.battery_monitor is not None:
            self.health.register(_BATTERY_TASK, bat.MAX_INTERVAL_MS, now)
        self.panel.start()
        if dog is not None:
            dog.start()
            dog.feed_if(True)
        self.persist(now)
        self.supervisor.update_sound(now)
        _unload("pump.selfcheck", "pump.core.selftest", "pump.resets", "pump.core.recovery",
                "pump.core.board_spec", "pump.hal.firmware_files")  # boot only: free their code

    def self_test(self):
        """The power-on self-test (pump.selfcheck): the failures as (code, message)."""
        from pump import selfcheck

        self.self_test_failures = selfcheck.run(self, self.board)
        return self.self_test_failures

    def run(self):
        """The firmware's main loop (never returns on the board)."""
        self.start()
        while self.running:
            self.service()
            self.sleep()

    def service(self):
        """One pass of the main loop: the motor's record, safety, commands, the next train.
        Each task reports to the watchdog's monitor only when it made progress."""
        now = self.now_ms()
        delivery = self.delivery
        supervisor = self.supervisor
        delivery.collect(now)
        delivery.pump_basal(now)
        self.therapy.close_hour(now)
        supervisor.check(now)
        supervisor.service_battery(now)
        self.panel.service_keys(now)
        if self.link is not None:
            self.link.service(now)
        if self.gate.drain():
            now = self.now_ms()
            supervisor.check(now)
        self.persist(now)
        self.dispatch(now)
        supervisor.update_sound(now)
        self.panel.service_display(now)
        health = self.health
        if delivery.progressing(now):
            health.report(_DELIVERY_TASK, now)
        health.report(_SAFETY_TASK, now)
        if self.watchdog is not None:
            self.watchdog.feed_if(health.healthy(now))

    def dispatch(self, now):
        """Put the next train on an idle motor: a move, the line test, or therapy."""
        if self.delivery.busy():
            return
        if self.motions.dispatch(now) or self.motions.service_line_test(now):
            return
        self.delivery.start_therapy(now)

    def persist(self, now):
        if self.persistence is not None:
            self.persistence.persist(now, self.delivery.busy())

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
                if not self.delivery.busy():
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
        therapy = self.therapy
        if therapy.suspended_at is not None:
            test = None  # no line tests while delivery is suspended
        if test is not None and test.running():
            # Therapy waits for the test (its trains would be due now): wake for the test.
            wake = test.next_wake_ms()
        else:
            wake = therapy.next_wake_ms(now)
            if test is not None:
                wake = earliest(wake, test.next_due_ms())
        wake = earliest(wake, self.alarms.next_wake_ms(now))
        if self.motions.motion is not None and not self.delivery.busy():
            wake = now
        supervisor = self.supervisor
        wake = earliest(wake, supervisor.sensor_check_ms())
        if self.battery_monitor is not None:
            wake = earliest(wake, now + self.battery_monitor.ms_until_due(now))
        wake = earliest(wake, supervisor.sound_wake_ms)
        keypad = self.panel.keypad
        if keypad is not None:
            wake = earliest(wake, keypad.next_poll_ms(now))
        if self.link is not None:
            wake = earliest(wake, self.link.next_wake_ms())
        return earliest(wake, self.panel.next_wake_ms(now))

    def _has_work(self):
        return (
            self._woken
            or self.gate.pending()
            or self.delivery.basal_due()
            or self.delivery.finished()
            or (self.link is not None and self.link.has_input())
        )

    def train_running(self):
        """True while a pulse train is on the motor."""
        return self.delivery.busy()

    def post(self, action):
        """Queue ``action(app)`` for the main loop (from buttons, serial, a scenario)."""
        self.gate.post(action)

    # ----- safety ------------------------------------------------------------------------

    def fault(self, code, **fields):
        """The one fault path (pump.supervisor): motor off, delivery stopped, alarm, record."""
        self.supervisor.fault(code, **fields)

    def read_force(self, now):
        return self.supervisor.read_force(now)

    def back_off(self, steps):
        """Move the plunger back ``steps`` to relieve pressure (the occlusion response)."""
        self.motions.back_off(self.now_ms(), steps)

    def bolus_finish_ms(self, now):
        """When the running bolus will be over (ms since boot), line tests counted, or None."""
        return self.delivery.bolus_finish_ms(now)

    def battery_percent(self):
        return self.supervisor.battery_percent()

    def button_pressed(self):
        """Any key press: the person is there (restarts the auto-off timer)."""
        self.alarms.interaction(self.now_ms())

    # ----- commands: through the gate; each returns None or the refusal reason -------------

    def _command(self, fn, *args):
        return self.gate.run(fn, *args)

    def bolus(self, kind, mu, now_percent=100, duration_ms=0):
        return self.gate.run(self.gate.bolus, kind, mu, now_percent, duration_ms)

    def cancel_bolus(self):
        return self.gate.run(self.gate.cancel_bolus)

    def temp_basal(self, kind, value, duration_ms):
        return self.gate.run(self.therapy.start_temp, kind, value, duration_ms)

    def cancel_temp(self):
        return self.gate.run(self.therapy.cancel_temp)

    def suspend(self):
        return self.gate.run(self.gate.suspend)

    def resume(self):
        return self.gate.run(self.gate.resume)

    def acknowledge(self, code=None):
        """The person acknowledges the alarm shown (or ``code``); returns None or why not."""
        return self.gate.run(self.gate.acknowledge, code)

    def select_profile(self, index):
        return self.gate.run(self.therapy.select_profile, index)

    def save_profile(self, index, name, segments):
        return self.gate.run(self.therapy.save_profile, index, name, segments)

    def delete_profile(self, index):
        """Remove basal profile ``index`` (not the active one); those after it move up."""
        from pump.core.settings import delete_profile

        return self.gate.run(lambda now, i: delete_profile(self.therapy, now, i), index)

    def set_limits(self, max_bolus_mu, max_basal_mu_per_h):
        return self.gate.run(self.gate.set_limits, max_bolus_mu, max_basal_mu_per_h)

    def set_insulin_limits(self, max_hour_mu, max_day_mu):
        return self.gate.run(self.gate.set_insulin_limits, max_hour_mu, max_day_mu)

    def set_safety_options(self, low_reservoir_mu, auto_off_h):
        return self.gate.run(self.gate.set_safety_options, low_reservoir_mu, auto_off_h)

    def set_bolus_options(self, increment_mu, speed_mu_per_min):
        return self.gate.run(self.therapy.set_bolus_options, increment_mu, speed_mu_per_min)

    def set_calculator(self, icr, isf, targets):
        """The calculator's segments by time of day (pump.core.calculator), all three."""
        return self.gate.run(self.gate.set_calculator, icr, isf, targets)

    def set_bg_unit(self, mmol):
        """Show BG in mmol/L (True) or mg/dL (False)."""
        return self.gate.run(self.gate.set_bg_unit, mmol)

    def set_insulin_action(self, insulin, dia_ms):
        """The insulin (pump.core.iob preset) and its duration of action, for insulin on board."""
        return self.gate.run(self.gate.set_insulin_action, insulin, dia_ms)

    def set_time_of_day(self, ms_of_day):
        return self.gate.run(self.gate.set_time_of_day, ms_of_day)

    def accept_factory_defaults(self):
        """After the settings were lost: the person accepts the factory settings offered."""
        if self.persistence is None:
            return "this pump keeps no settings on flash"
        return self.gate.run(self.gate.accept_factory_defaults)

    def set_up(self, settings, wall_s):
        """Setup, on the keys or from the computer: run with ``settings`` (a whole Settings,
        checked by the caller) and set the clock to ``wall_s`` (seconds since 2000-01-01),
        in one command. The setup, settings and clock alarms settle; recovery's suspension
        ends (a person's own suspension stays)."""
        return self.gate.run(self.gate.set_up, settings, wall_s)

    def rewind(self):
        """Drive the pusher back to the end stop (delivery must be suspended)."""
        return self.gate.run(self.motions.rewind)

    def load_reservoir(self, volume_mu):
        """A new reservoir holding ``volume_mu`` is in place."""
        return self.gate.run(self.gate.load_reservoir, volume_mu)

    def fill(self, part, mu):
        """Fill the tubing or the cannula with ``mu``: insulin used, never therapy."""
        return self.gate.run(self.motions.fill, part, mu)

    def history(self, n=50, before=None, since=None):
        """Events as (seq, t_ms, wall_s, type, fields), from flash when the pump has
        storage, else from the RAM ring (one sequence number space for both): the last
        ``n`` newest first (``before``: the page below that sequence number), or with
        ``since`` the first ``n`` after it, oldest first."""
        return self.gate.history(n, before, since)
