"""First-run setup on the pump's keys: a new pump, or one whose settings are damaged.

Date and time, the basal profile (the factory 0.80 U/h or edited), max bolus, max basal,
the insulin limits per hour and per day, then one screen with all of it: only its OK
runs the pump with these settings (the App's ``set_up``) and starts basal. Every step
is recorded (``setup_step`` events). BACK goes back a step; the screens stay through the
idle timeout, and the set-up alarm waits under them.
"""

from micropython import const

from pump.core import limits as lim
from pump.core import schedule
from pump.core.therapy import Settings
from pump.ui import text
from pump.ui.clock import DATE_FIRST, DateTimeEditor, guess_wall_s
from pump.ui.screens import Confirm, Editor, Menu

STEP = "setup_step"  # the event each step records
ANSWERS = ("set_up", "check_settings", "set_time")  # the alarms a setup settles
_STEPS = const(6)


def start(ui):
    """The set-up alarm's OK (or the menu's 'Set up pump'): the first step. The alarms
    the setup answers fall silent while it is on the screen."""
    app = ui.app
    for code in ANSWERS:
        alarm = app.alarms.find(code)
        if alarm is not None and not alarm.acknowledged:
            app.acknowledge(code)
    Setup(ui).date_time(ui)


class Setup:
    """The values chosen so far, in the protocol's keys and units (pump.core.setup)."""

    def __init__(self, ui):
        self.values = {}
        self.wall_s = None
        self.wall_at_ms = 0  # when the date and time were chosen (the clock runs on)
        factory = Settings()
        self.factory_segments = factory.profiles[0].segments
        self.segments = self.factory_segments
        self.profile_name = factory.profiles[0].name
        self.max_bolus = factory.max_bolus_mu
        self.increment = factory.increment_mu
        self.max_basal = factory.max_basal_mu_per_h
        self.max_hour = factory.max_hour_mu
        self.max_day = factory.max_day_mu

    def _push(self, ui, screen):
        screen.settles = ANSWERS  # the alarm waits while its answer is on the screen
        ui.push(screen)

    def _record(self, ui, step, **fields):
        ui.app.events.emit(ui.app.now_ms(), STEP, step=step, **fields)

    # ----- the steps ------------------------------------------------------------------

    def date_time(self, ui):
        self._push(ui, DateTimeEditor("Setup 1/%d date" % _STEPS, guess_wall_s(ui.app),
                                      self._date_time_ok, DATE_FIRST))

    def _date_time_ok(self, ui, wall_s):
        self.wall_s = wall_s
        self.wall_at_ms = ui.app.now_ms()
        self._record(ui, "clock", wall_s=wall_s)
        self.basal(ui)

    def basal(self, ui):
        factory = self.factory_segments
        label = "Factory " + text.units(factory[0][1]) + "U/h"
        items = [(label, self._factory_basal), ("Edit profile", self._edit_basal)]
        self._push(ui, Menu("setup basal", "Setup 2/%d basal" % _STEPS, items))

    def _factory_basal(self, ui):
        self.segments = self.factory_segments
        self._basal_chosen(ui, "factory")

    def _edit_basal(self, ui):
        from pump.ui.segments import SegmentList

        fields = [("Rate", 0, lim.MAX_BASAL_MU_PER_H, lim.RATE_STEP_MU_H, text.rate)]

        def keep(ui, segments):
            self.segments = [tuple(segment) for segment in segments]
            return None

        def done(ui):
            ui.pop()  # the confirm of the profile
            ui.pop()  # and its list
            self._basal_chosen(ui, "edited")

        def label(segment):
            return text.slot(segment[0]) + " " + text.units(segment[1]) + "U/h"

        def summary(segments):
            return [self.profile_name, "%d segments" % len(segments),
                    text.units_u(_daily_mu(segments)) + "/day"]

        ui.push(SegmentList("Profile", self.segments, fields, label, keep, summary,
                            schedule.SLOTS_PER_DAY, done=done))

    def _basal_chosen(self, ui, how):
        segments = self.segments
        self._record(ui, "basal", how=how, segments=len(segments), daily_mu=_daily_mu(segments))
        self._push(ui, Editor("setup max bolus", "Setup 3/%d bolus" % _STEPS, self.max_bolus,
                              self.increment, lim.MAX_BOLUS_MU, self.increment, text.units_u,
                              self._max_bolus_ok, note="max bolus"))

    def _max_bolus_ok(self, ui, mu):
        self.max_bolus = mu
        self._record(ui, "max_bolus", mu=mu)
        highest = _highest(self.segments)
        low = highest if highest > 50 else 50
        start = self.max_basal if self.max_basal > low else low
        self._push(ui, Editor("setup max basal", "Setup 4/%d basal" % _STEPS, start,
                              low, lim.MAX_BASAL_MU_PER_H, 50, text.rate, self._max_basal_ok,
                              note="max basal"))

    def _max_basal_ok(self, ui, mu_per_h):
        self.max_basal = mu_per_h
        self._record(ui, "max_basal", mu_per_h=mu_per_h)
        low = lim.MAX_HOUR_MIN_MU
        if low < mu_per_h:
            low = (mu_per_h + 499) // 500 * 500  # an hour of the max basal, at least
        start = self.max_hour if self.max_hour > low else low
        self._push(ui, Editor("setup max hour", "Setup 5/%d hour" % _STEPS, start, low,
                              lim.MAX_HOUR_MAX_MU, 500, text.units_u, self._max_hour_ok,
                              note="most in 1 hour"))

    def _max_hour_ok(self, ui, mu):
        self.max_hour = mu
        self._record(ui, "max_hour", mu=mu)
        low = mu if mu > lim.MAX_DAY_MIN_MU else lim.MAX_DAY_MIN_MU
        low = (low + 999) // 1000 * 1000
        start = self.max_day if self.max_day > low else low
        self._push(ui, Editor("setup max day", "Setup 6/%d day" % _STEPS, start, low,
                              lim.MAX_DAY_MAX_MU, 1000, text.units_u, self._max_day_ok,
                              note="most in 1 day"))

    def _max_day_ok(self, ui, mu):
        self.max_day = mu
        self._record(ui, "max_day", mu=mu)
        self.confirm(ui)

    # ----- the last screen: everything chosen, and OK to start -------------------------------

    def chosen(self):
        """The values for pump.core.setup.build."""
        return {
            "name0": self.profile_name, "basal0": self.segments, "max_bolus": self.max_bolus,
            "max_basal": self.max_basal, "max_hour": self.max_hour, "max_day": self.max_day,
        }

    def now_wall_s(self, ui):
        return self.wall_s + (ui.app.now_ms() - self.wall_at_ms) // 1000

    def confirm(self, ui):
        from pump.core import setup as core_setup
        from pump.ui import remote

        reason, settings = core_setup.build(ui.app.therapy.mech, self.chosen())
        if reason is not None:
            ui.refused(reason)  # cannot happen with the ranges above; said if it does
            return
        dt = _wall_args(self.now_wall_s(ui))
        lines = remote.setup_lines(settings, dt)
        self._push(ui, Confirm("setup confirm", "Start the pump?", lines, self._apply,
                               done=_finish, ok_text="OK=start BACK"))

    def _apply(self, ui):
        from pump.core import setup as core_setup

        app = ui.app
        reason = core_setup.check_state(app.therapy)
        settings = None
        if reason is None:
            reason, settings = core_setup.build(app.therapy.mech, self.chosen())
        if reason is None:
            reason = app.set_up(settings, self.now_wall_s(ui))
        if reason is None:
            self._record(ui, "done")
        return reason


def _finish(ui):
    ui.finish()
    ui.flash("Pump set up")


def _daily_mu(segments):
    total = 0
    for i in range(len(segments)):
        start, rate = segments[i][0], segments[i][1]
        end = segments[i + 1][0] if i + 1 < len(segments) else schedule.SLOTS_PER_DAY
        total += rate * (end - start)
    return total // 2


def _highest(segments):
    highest = 0
    for segment in segments:
        if segment[1] > highest:
            highest = segment[1]
    return highest


def _wall_args(wall_s):
    from pump.core.state import rtc_tuple

    dt = rtc_tuple(wall_s)
    return (dt[0], dt[1], dt[2], dt[4], dt[5], dt[6])
