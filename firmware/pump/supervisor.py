"""The safety supervisor: the one fault path, and the monitors that call it.

``fault`` is the only way to the safe state. It is not re-entrant: a fault found while
one is being handled (halting a train books it, and the booking may judge the line
occluded) is queued and handled right after, so every fault gets its full response
(the occlusion its back-off). It is idempotent: a second fault stops nothing twice,
and it is recorded again. The monitors (pulses counted against the record, the insulin
limits, the reservoir, the pressure sensor and the line, the battery, auto-off) run
from the main loop. Main loop only, apart from the stall interrupt.
"""

import machine

from pump.core import alarms as al
from pump.core import battery as bat
from pump.core import events as ev
from pump.core import reservoir as res
from pump.core.fmt import fmt_units
from pump.core.occlusion import OCCLUDED
from pump.core.safety import DeliveryMonitor

_SENSOR_CHECK_MS = 30_000  # the load cell is read at least this often, even when idle
_FULL_BATTERY_MV = 4500  # 3 x AA alkaline, new: the top of the battery gauge on screen
_ROOM_MU = 100  # a limit alarm's cause is gone once 0.1 U may go out again
_SENSOR_CODES = (al.SENSOR_NO_DATA, al.SENSOR_STUCK, al.SENSOR_RANGE)


class Supervisor:
    def __init__(self, app, board, settings):
        self._app = app
        self.monitor = DeliveryMonitor(board.mechanics, settings.max_hour_mu, settings.max_day_mu)
        self._force_sensor = board.force_sensor
        self._pressure = board.pressure
        self._buzzer = board.buzzer
        self.battery = board.battery
        self.battery_monitor = board.battery_monitor if board.battery is not None else None
        self.force_mn = None  # last good plunger force
        self.force_read_ms = None
        self.sound_wake_ms = None  # when the buzzer's pattern next changes
        self._reservoir_level = app.reservoir.level()
        self._in_fault = False
        self._queued = []  # faults found while one was being handled: (code, fields)
        self._stalled = False
        self._stall_cb = self._on_stall
        if board.driver_diag is not None:
            board.driver_diag.irq(self._stall_cb, machine.Pin.IRQ_RISING, hard=True)

    def _on_stall(self, _pin):
        # Hard interrupt handler: allocation-free. The driver's DIAG line says the motor
        # stalled; the main loop takes the fault path at once.
        self._stalled = True
        self._app.wake()

    def stall_pending(self):
        return self._stalled

    # ----- the one fault path -------------------------------------------------------------

    def fault(self, code, **fields):
        """Take the pump to its safe state: motor off at once, delivery stopped (for alarms
        that stop it), alarm latched, everything recorded. Runs in the main loop."""
        if self._in_fault:
            self._queued.append((code, fields))
            return
        self._in_fault = True
        try:
            self._safe_state(code, fields)
            while self._queued:
                queued = self._queued.pop(0)
                self._safe_state(queued[0], queued[1])
        finally:
            self._in_fault = False
            self._queued = []
        self.update_sound(self._app.now_ms())

    def _safe_state(self, code, fields):
        app = self._app
        now = app.now_ms()
        app.motions.cancel()
        app.delivery.halt(now)  # books the train: may queue a fault of its own
        if app.line_test is not None:
            app.line_test.abort()
        not_delivered = 0
        if al.stops_delivery(code):
            not_delivered = app.therapy.stop(now, code)
            app.delivery.sync_basal(now)
        latched = app.alarms.find(code) is not None
        app.alarms.raise_alarm(now, code, **fields)
        app.events.emit(
            now, ev.FAULT, code=code, motor_stopped=1, not_delivered_mu=not_delivered,
            repeat=1 if latched else 0, **fields
        )
        if code in (al.DELIVERY_MISMATCH, al.AUTO_OFF):
            app.alarms.clear(now, code)  # a one-off: latched until acknowledged
        if code == al.OCCLUSION:
            app.motions.relieve_pressure(now)

    # ----- gates before a train -------------------------------------------------------------

    def within_limits(self, now, steps):
        """True when ``steps`` more therapy steps keep every insulin limit; else the fault
        path runs (delivery stops before the limit, never after)."""
        monitor = self.monitor
        if steps <= monitor.headroom_steps(now):
            return True
        self.fault(monitor.limit_reached(now), hour_mu=monitor.hour_mu(now),
                   day_mu=monitor.day_mu(now))
        return False

    def interlock(self, command, mu, hour_mu):
        """Therapy asks before a bolus or a resume: None, or why not now. ``hour_mu``: the
        most of the bolus that goes out in any hour (an extended part spreads)."""
        app = self._app
        now = app.now_ms()
        alarms = app.alarms
        reservoir = app.reservoir
        if command == "resume":
            blocking = alarms.blocking_delivery()
            if blocking:
                return "alarm '%s' is active: acknowledge it and fix its cause" % blocking[0]
            if not reservoir.in_use():
                return "finish the reservoir change first"
            if reservoir.level() == res.EMPTY:
                return "the reservoir is empty"
            return None
        if alarms.high_active():
            return "a high-priority alarm is active: acknowledge it first"
        if not reservoir.in_use():
            return "finish the reservoir change first"
        if mu > reservoir.remaining_mu():
            return "only %s left in the reservoir" % fmt_units(reservoir.remaining_mu())
        monitor = self.monitor
        hour_left = monitor.max_hour_mu - monitor.hour_mu(now)
        day_left = monitor.max_day_mu - monitor.day_mu(now)
        if hour_mu > hour_left or mu > day_left:
            alarms.raise_alarm(now, al.OVER_LIMIT_REQUEST, requested_mu=mu)
            alarms.clear(now, al.OVER_LIMIT_REQUEST)
            left = hour_left if hour_left < day_left else day_left
            allowed = fmt_units(max(left, 0))
            return "above the insulin limit per hour or day: %s allowed now" % allowed
        return None

    # ----- the line: force on the plunger -----------------------------------------------

    def read_force(self, now):
        """Read the load cell: the force in mN, or None (no sensor, no data, a fault)."""
        sensor = self._force_sensor
        pressure = self._pressure
        if sensor is None or pressure is None:
            return None
        self.force_read_ms = now
        raw = sensor.read_raw()
        if raw is None:
            pressure.no_data(now)
            force = None
        else:
            force = pressure.sample(now, raw)
        code = pressure.fault
        alarms = self._app.alarms
        if code is not None:
            alarm = alarms.find(code)
            if alarm is None or not alarm.cause_present:
                self.fault(code, raw=pressure.raw)
            return None
        for code in _SENSOR_CODES:
            alarm = alarms.find(code)
            if alarm is not None and alarm.cause_present:
                alarms.clear(now, code)
        self.force_mn = force
        return force

    def judge_line(self, now, bolus):
        """Read the force and let the detectors judge the line; True if a fault ran."""
        app = self._app
        force = self.read_force(now)
        if force is None:
            return self._pressure is not None and self._pressure.fault is not None
        if app.therapy.suspended_at is not None:
            return False
        position = app.delivery.position_steps
        watch = app.disconnection
        if watch is not None and watch.observe(now, position, force, bolus):
            alarms = app.alarms
            if alarms.find(al.DISCONNECTED) is None:
                # Delivery goes on (the person checks the site); the pump cannot see the
                # line put back, so the alert is a one-off, latched until acknowledged.
                alarms.raise_alarm(now, al.DISCONNECTED, force_mn=force,
                                   drop_mn=watch.drop_now_mn)
                alarms.clear(now, al.DISCONNECTED)
        detector = app.detector
        if detector is None:
            return False
        if detector.observe(position, force, bolus) == OCCLUDED:
            self.fault(al.OCCLUSION, force_mn=force, pressure_pa=self._pressure.pressure_pa(),
                       floor_mn=detector.floor_old_mn)
            return True
        return False

    def sensor_check_ms(self):
        """When the load cell is next read even if nothing moves, or None."""
        if self.force_read_ms is None:
            return None
        return self.force_read_ms + _SENSOR_CHECK_MS

    # ----- the monitors ---------------------------------------------------------------------

    def check(self, now):
        """Every monitor, once per pass of the main loop."""
        app = self._app
        if self._stalled:
            self._stalled = False
            self.fault(al.OCCLUSION, source="motor stall")
            return
        self._check_monitor(now)
        self._check_reservoir(now)
        if self._force_sensor is not None and not app.delivery.busy() and (
            self.force_read_ms is None or now - self.force_read_ms >= _SENSOR_CHECK_MS
        ):
            self.read_force(now)
        alarms = app.alarms
        for code in alarms.tick(now, app.therapy.suspended_at):
            if code == al.AUTO_OFF:
                self.fault(code, hours=alarms.auto_off_h)

    def _check_monitor(self, now):
        monitor = self.monitor
        mismatch = monitor.mismatch()
        if mismatch:
            monitor.counted_steps = monitor.reported_steps  # judged once, then start afresh
            self.fault(al.DELIVERY_MISMATCH, steps_off=mismatch)
        alarms = self._app.alarms
        hour_mu = monitor.hour_mu(now)
        day_mu = monitor.day_mu(now)
        # Trains are held to the headroom (within_limits): a breach here means the record
        # restored at boot, or a limit lowered, is already past it.
        room = monitor.headroom_mu(now) >= _ROOM_MU
        for code, over in (
            (al.LIMIT_HOUR, hour_mu > monitor.max_hour_mu),
            (al.LIMIT_DAY, day_mu > monitor.max_day_mu),
        ):
            latched = alarms.find(code)
            if over and latched is None:
                self.fault(code, hour_mu=hour_mu, day_mu=day_mu)
            elif room and not over and latched is not None and latched.cause_present:
                alarms.clear(now, code)

    def _check_reservoir(self, now):
        reservoir = self._app.reservoir
        level = reservoir.level()
        if level == self._reservoir_level or not reservoir.in_use():
            return
        self._reservoir_level = level
        self._two_levels(now, level == res.EMPTY, level == res.LOW, al.RESERVOIR_EMPTY,
                         al.RESERVOIR_LOW, remaining_mu=reservoir.remaining_mu())

    def _two_levels(self, now, out, low, out_code, low_code, **fields):
        """A supply that runs out: the fault when it is out, else the low alarm raised or
        cleared (the reservoir, the battery)."""
        if out:
            self.fault(out_code, **fields)
            return
        alarms = self._app.alarms
        alarms.clear(now, out_code)
        if low:
            alarms.raise_alarm(now, low_code, **fields)
        else:
            alarms.clear(now, low_code)

    def watch_reservoir(self):
        """The reservoir's level was restored (at boot): watch it from there."""
        self._reservoir_level = self._app.reservoir.level()

    def reservoir_changed(self, now):
        """A new reservoir: its level is the one to watch from now on."""
        self._reservoir_level = self._app.reservoir.level()
        self._app.alarms.clear(now, al.RESERVOIR_EMPTY)
        self._app.alarms.clear(now, al.RESERVOIR_LOW)

    def storage_failed(self, what, err):
        """A write to flash failed: no insulin goes out without a durable record."""
        errno = err.args[0] if err.args else 0
        self.fault(al.STORAGE, what=what, errno=errno)

    def storage_ok(self, now):
        alarm = self._app.alarms.find(al.STORAGE)
        if alarm is not None and alarm.cause_present:
            self._app.alarms.clear(now, al.STORAGE)

    # ----- battery and buzzer -------------------------------------------------------------

    def service_battery(self, now):
        monitor = self.battery_monitor
        if monitor is None or not monitor.due(now):
            return
        app = self._app
        mv = self.battery.read_mv()
        app.health.report("battery", now)
        state = monitor.update(now, mv)
        if state is None:
            return
        app.events.emit(now, ev.BATTERY, state=bat.STATE_NAMES[state], mv=mv)
        self._two_levels(now, state == bat.DEPLETED, state == bat.LOW, al.BATTERY_DEPLETED,
                         al.BATTERY_LOW, mv=mv)

    def battery_percent(self):
        """The battery gauge for the screen, 0-100 %, or None before the first reading."""
        monitor = self.battery_monitor
        if monitor is None or monitor.last_mv is None:
            return None
        span = _FULL_BATTERY_MV - monitor.depleted_mv
        percent = (monitor.last_mv - monitor.depleted_mv) * 100 // span
        return 0 if percent < 0 else (100 if percent > 100 else percent)

    def update_sound(self, now):
        level = self._app.alarms.sound(now)
        buzzer = self._buzzer
        if buzzer is None:
            return
        buzzer.follow(level)
        wait = buzzer.update(now)
        self.sound_wake_ms = None if wait is None else now + wait
