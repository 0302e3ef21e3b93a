"""The command gate: the one way in for every command (keys, the serial link, scenarios).

Actions posted from outside the main loop wait in the inbox until the loop drains it;
the keys and the serial link run inside the loop and come through ``run`` directly.
``run`` brings delivery up to now, runs the command, and then, refused or not, re-arms
the basal timer, saves what changed and sends the next train. A command returns None or
the reason it was refused (recorded as a ``refused`` event; it changed nothing).
"""

from pump.core import events as ev
from pump.core.calc_segments import CalculatorSettings
from pump.core.errors import Refused
from pump.core.iob import InsulinCurve
from pump.core.therapy import BOLUS


class CommandGate:
    def __init__(self, app):
        self._app = app
        self._inbox = []

    def post(self, action):
        """Queue ``action(app)`` for the main loop (from buttons, serial, a scenario)."""
        self._inbox.append(action)

    def pending(self):
        return len(self._inbox) > 0

    def drain(self):
        """Run the actions posted since the last pass, oldest first; True if any ran."""
        inbox = self._inbox
        if not inbox:
            return False
        app = self._app
        while inbox:
            inbox.pop(0)(app)
        return True

    def run(self, fn, *args):
        app = self._app
        now = app.now_ms()
        app.delivery.collect(now)
        app.delivery.pump_basal(now)
        app.alarms.interaction(now)
        try:
            fn(now, *args)
        except Refused as refusal:
            return str(refusal)
        finally:
            app.delivery.sync_basal(now)
            app.persist(now)
            app.dispatch(now)
            app.supervisor.update_sound(now)
        return None

    def _refuse(self, now, command, reason):
        return self._app.therapy.refuse(now, command, reason)

    # ----- therapy --------------------------------------------------------------------

    def bolus(self, now, kind, mu, now_percent, duration_ms):
        app = self._app
        app.therapy.start_bolus(now, kind, mu, now_percent, duration_ms)
        if app.line_test is not None:
            app.line_test.bolus_started(now)  # the line is tested before it goes out

    def cancel_bolus(self, now):
        app = self._app
        if app.therapy.bolus is not None:
            app.delivery.halt(now, BOLUS)
        app.therapy.cancel_bolus(now)

    def suspend(self, now):
        app = self._app
        if app.therapy.suspended_at is None:
            app.delivery.halt(now)
            if app.line_test is not None:
                app.line_test.abort()
        app.therapy.suspend(now)

    def resume(self, now):
        app = self._app
        app.therapy.resume(now)
        app.motions.forget_line(now)

    def acknowledge(self, now, code):
        if self._app.alarms.acknowledge(now, code) is None:
            raise self._refuse(now, "acknowledge", "no alarm to acknowledge")

    # ----- settings -------------------------------------------------------------------

    def set_limits(self, now, max_bolus_mu, max_basal_mu_per_h):
        self._app.therapy.set_limits(now, max_bolus_mu, max_basal_mu_per_h)

    def set_insulin_limits(self, now, max_hour_mu, max_day_mu):
        app = self._app
        s = app.therapy.settings
        try:
            app.supervisor.monitor.set_limits(max_hour_mu, max_day_mu, s.max_basal_mu_per_h)
        except Refused as refusal:
            raise self._refuse(now, "insulin limits", str(refusal))
        s.max_hour_mu = max_hour_mu
        s.max_day_mu = max_day_mu
        app.events.emit(now, ev.SETTINGS_CHANGED, max_hour_mu=max_hour_mu, max_day_mu=max_day_mu)

    def set_safety_options(self, now, low_reservoir_mu, auto_off_h):
        app = self._app
        reservoir = app.reservoir
        old_low = reservoir.low_level_mu
        try:
            reservoir.set_low_level(low_reservoir_mu)
            app.alarms.set_auto_off(auto_off_h)
        except (Refused, ValueError) as refusal:
            reservoir.set_low_level(old_low)
            raise self._refuse(now, "safety options", str(refusal))
        s = app.therapy.settings
        s.low_reservoir_mu = low_reservoir_mu
        s.auto_off_h = auto_off_h
        app.events.emit(
            now, ev.SETTINGS_CHANGED, low_reservoir_mu=low_reservoir_mu, auto_off_h=auto_off_h
        )

    def set_calculator(self, now, icr, isf, targets):
        try:
            calculator = CalculatorSettings(icr, isf, targets)
        except Refused as refusal:
            raise self._refuse(now, "calculator", str(refusal))
        self._app.therapy.settings.calculator = calculator
        self._app.events.emit(
            now, ev.SETTINGS_CHANGED, icr_segments=len(icr), isf_segments=len(isf),
            target_segments=len(targets),
        )

    def set_bg_unit(self, now, mmol):
        if mmol is not True and mmol is not False:
            raise self._refuse(now, "BG unit", "the BG unit is mg/dL or mmol/L")
        self._app.therapy.settings.bg_mmol = mmol
        self._app.events.emit(now, ev.SETTINGS_CHANGED, bg_unit="mmol/L" if mmol else "mg/dL")

    def set_insulin_action(self, now, insulin, dia_ms):
        app = self._app
        try:
            curve = InsulinCurve(insulin, dia_ms)
        except Refused as refusal:
            raise self._refuse(now, "insulin action", str(refusal))
        app.therapy.iob.set_curve(curve)
        s = app.therapy.settings
        s.insulin = insulin
        s.dia_ms = dia_ms
        app.events.emit(now, ev.SETTINGS_CHANGED, insulin=insulin, dia_min=dia_ms // 60_000)

    def set_time_of_day(self, now, ms_of_day):
        app = self._app
        app.therapy.set_clock(now, ms_of_day)
        if app.persistence is not None:
            app.persistence.clock_set(now, ms_of_day)

    def accept_factory_defaults(self, now):
        self._app.persistence.accept_factory_defaults(now)

    # ----- the reservoir ------------------------------------------------------------------

    def load_reservoir(self, now, volume_mu):
        app = self._app
        try:
            app.reservoir.load(volume_mu)
        except Refused as refusal:
            raise self._refuse(now, "load reservoir", str(refusal))
        app.supervisor.reservoir_changed(now)
        app.events.emit(now, ev.RESERVOIR_LOADED, volume_mu=volume_mu)
        if app.board.force_sensor is not None:
            app.motions.seat()

    def use_settings(self, now, settings, **fields):
        """Run with ``settings`` from now on (every module that holds a part of them)."""
        app = self._app
        app.supervisor.monitor.set_limits(settings.max_hour_mu, settings.max_day_mu)
        app.reservoir.set_low_level(settings.low_reservoir_mu)
        app.alarms.set_auto_off(settings.auto_off_h)
        app.therapy.use_settings(settings)
        app.events.emit(now, ev.SETTINGS_CHANGED, **(fields or {"factory": 1}))

    def set_up(self, now, settings, wall_s):
        """The whole settings (checked by the caller) and the clock, in one command."""
        app = self._app
        self.use_settings(now, settings, setup=1, wall_s=wall_s)
        app.therapy.set_clock(now, wall_s % 86_400 * 1000)
        recorder = app.persistence
        if recorder is not None:
            recorder.set_up(now, wall_s)  # the RTC, the settings on flash, the alarms
        elif app.board.rtc is not None:
            from pump.core.wallclock import rtc_tuple

            app.board.rtc.datetime(rtc_tuple(wall_s))

    # ----- reads ----------------------------------------------------------------------------

    def history(self, n, before, since):
        """See App.history: the recorder's flash log, or the RAM ring."""
        app = self._app
        if app.persistence is not None:
            return app.persistence.history(n, before, since)
        rows = [(e[0], e[1], None, e[2], e[3]) for e in app.events.recent()]
        if since is not None:
            return [r for r in rows if r[0] > since][:n]
        rows.reverse()
        if before is not None:
            rows = [r for r in rows if r[0] < before]
        return rows[:n]
