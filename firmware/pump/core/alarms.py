"""Alarms: priorities, latching until acknowledged, re-sounding, reminders and auto-off.

Pure logic. Causes raise an alarm and, when their condition goes away, clear it; the
alarm itself stays (latched) until a person acknowledges it. Acknowledging while the
cause is still there only silences it: it sounds again after ``RESOUND_MS``.

Which alarms stop delivery is part of the table below; the app's one fault path does
the stopping. This module decides what is shown and what the buzzer plays.
"""

from pump.core import events as ev
from pump.core.errors import Refused
from pump.core.limits import AUTO_OFF_DEFAULT_H, AUTO_OFF_MAX_H, AUTO_OFF_MIN_H

HIGH = 3
MEDIUM = 2
LOW = 1
PRIORITY_NAMES = {HIGH: "high", MEDIUM: "medium", LOW: "low"}

RESOUND_MS = 120_000  # a silenced alarm sounds again within 2 min while its cause remains
SUSPEND_REMINDER_MS = 15 * 60_000
_MS_PER_H = 3_600_000

# Alarm codes. Each: (priority, stops delivery, the text a person reads).
OCCLUSION = "occlusion"
RESERVOIR_EMPTY = "reservoir_empty"
RESERVOIR_LOW = "reservoir_low"
BATTERY_LOW = "battery_low"
BATTERY_DEPLETED = "battery_depleted"
SENSOR_NO_DATA = "sensor_no_data"
SENSOR_STUCK = "sensor_stuck"
SENSOR_RANGE = "sensor_range"
DISCONNECTED = "disconnected"
DELIVERY_MISMATCH = "delivery_mismatch"
LIMIT_HOUR = "limit_hour"
LIMIT_DAY = "limit_day"
OVER_LIMIT_REQUEST = "over_limit_request"
AUTO_OFF = "auto_off"
SUSPENDED = "suspended"
STUCK_KEY = "stuck_key"
DISPLAY = "display"
SELF_TEST = "self_test"
SETTINGS_CORRUPT = "settings_corrupt"
CLOCK_LOST = "clock_lost"
RESET = "reset"
INTERNAL = "internal"
# Recovery after a reset (pump.core.state.plan_recovery names them).
CHECK_SETTINGS = "check_settings"
SET_UP = "set_up"
SET_TIME = "set_time"
STATE_LOST = "state_lost"
BOLUS_INTERRUPTED = "bolus_interrupted"
STORAGE = "storage"

TABLE = {
    OCCLUSION: (HIGH, True, "Occlusion: no delivery. Check the line"),
    RESERVOIR_EMPTY: (HIGH, True, "Reservoir empty: delivery stopped"),
    RESERVOIR_LOW: (MEDIUM, False, "Reservoir low"),
    BATTERY_LOW: (MEDIUM, False, "Battery low: replace soon"),
    BATTERY_DEPLETED: (HIGH, True, "Battery depleted: delivery stopped"),
    SENSOR_NO_DATA: (HIGH, True, "Pressure sensor silent: delivery stopped"),
    SENSOR_STUCK: (HIGH, True, "Pressure sensor stuck: delivery stopped"),
    SENSOR_RANGE: (HIGH, True, "Pressure sensor out of range: delivery stopped"),
    DISCONNECTED: (MEDIUM, False, "Line disconnected or leaking? Check the site"),
    DELIVERY_MISMATCH: (HIGH, True, "Motor did not match the command: delivery stopped"),
    LIMIT_HOUR: (HIGH, True, "Hourly insulin limit reached: delivery stopped"),
    LIMIT_DAY: (HIGH, True, "Daily insulin limit reached: delivery stopped"),
    OVER_LIMIT_REQUEST: (MEDIUM, False, "Request above a limit was refused"),
    AUTO_OFF: (HIGH, True, "Auto-off: no button pressed. Delivery stopped"),
    SUSPENDED: (LOW, False, "Delivery suspended"),
    STUCK_KEY: (MEDIUM, False, "A key is stuck"),
    DISPLAY: (MEDIUM, False, "Display not responding"),
    SELF_TEST: (HIGH, True, "Self-test failed: no delivery"),
    SETTINGS_CORRUPT: (HIGH, True, "Settings lost: check settings"),
    CLOCK_LOST: (MEDIUM, False, "Clock lost: set the time"),
    RESET: (MEDIUM, False, "The pump restarted"),
    INTERNAL: (HIGH, True, "Internal error: delivery stopped"),
    CHECK_SETTINGS: (HIGH, True, "Settings damaged: no delivery. Check settings"),
    SET_UP: (HIGH, True, "Set up the pump: no settings yet"),
    SET_TIME: (HIGH, True, "Clock lost: set the time before basal resumes"),
    STATE_LOST: (HIGH, True, "Pump state lost: check reservoir and insulin on board"),
    BOLUS_INTERRUPTED: (HIGH, False, "Bolus stopped by a restart: see the amount given"),
    STORAGE: (HIGH, True, "Cannot save to flash: delivery stopped"),
}


def priority_of(code):
    return TABLE[code][0]


def stops_delivery(code):
    return TABLE[code][1]


def message(code):
    return TABLE[code][2]



def check_auto_off(hours):
    """Refuse an auto-off time out of range (5 to 24 h, or 0 for off)."""
    if type(hours) is not int or not (hours == 0 or AUTO_OFF_MIN_H <= hours <= AUTO_OFF_MAX_H):
        raise Refused("auto-off is %d to %d h, or 0 for off" % (AUTO_OFF_MIN_H, AUTO_OFF_MAX_H))

class Alarm:
    """One latched alarm: its cause may have gone, but it stays until acknowledged."""

    def __init__(self, code, now_ms, fields):
        self.code = code
        self.priority = TABLE[code][0]
        self.raised_ms = now_ms
        self.fields = fields
        self.cause_present = True
        self.acknowledged = False
        self.silenced_until = None  # ms; sounds again then while the cause remains

    def sounding(self, now_ms):
        if self.silenced_until is None:
            return not self.acknowledged
        return now_ms >= self.silenced_until


class AlarmManager:
    """Every alarm the pump has raised and not yet seen dealt with.

    ``raise_alarm`` and ``clear`` come from the causes (detectors, monitors); ``acknowledge``
    from the person. ``tick(now_ms, suspended)`` runs the reminders and the auto-off timer.
    """

    def __init__(self, events, auto_off_h=AUTO_OFF_DEFAULT_H, now_ms=0):
        self.events = events
        self.alarms = []  # oldest first
        self.auto_off_h = 0
        self.set_auto_off(auto_off_h)
        self.last_interaction_ms = now_ms
        self._next_reminder_ms = None

    # ----- causes -------------------------------------------------------------------

    def raise_alarm(self, now_ms, code, **fields):
        """Raise ``code`` (or mark its cause present again). True if it is new."""
        if code not in TABLE:
            raise ValueError("unknown alarm %r" % (code,))
        alarm = self.find(code)
        if alarm is not None:
            if not alarm.cause_present:
                alarm.cause_present = True
            if alarm.acknowledged and alarm.silenced_until is None:
                alarm.silenced_until = now_ms + RESOUND_MS
            return False
        alarm = Alarm(code, now_ms, fields)
        self.alarms.append(alarm)
        self.events.emit(
            now_ms,
            ev.ALARM,
            code=code,
            priority=PRIORITY_NAMES[alarm.priority],
            message=message(code),
            **fields
        )
        return True

    def clear(self, now_ms, code):
        """The cause of ``code`` has gone; an acknowledged alarm then leaves the list."""
        alarm = self.find(code)
        if alarm is None or not alarm.cause_present:
            return
        alarm.cause_present = False
        self.events.emit(now_ms, ev.ALARM_CLEARED, code=code)
        if alarm.acknowledged:
            self.alarms.remove(alarm)

    # ----- the person ------------------------------------------------------------------

    def acknowledge(self, now_ms, code=None):
        """Acknowledge ``code`` (default: the alarm shown). Returns the code, or None."""
        self.interaction(now_ms)
        alarm = self.find(code) if code is not None else self.shown(now_ms)
        if alarm is None:
            return None
        alarm.acknowledged = True
        self.events.emit(now_ms, ev.ALARM_ACK, code=alarm.code)
        if alarm.cause_present:
            alarm.silenced_until = now_ms + RESOUND_MS
        else:
            self.alarms.remove(alarm)
        if alarm.code == SUSPENDED:
            self._next_reminder_ms = now_ms + SUSPEND_REMINDER_MS
        return alarm.code

    def interaction(self, now_ms):
        """A button was pressed: restart the auto-off timer."""
        self.last_interaction_ms = now_ms

    def set_auto_off(self, hours):
        """Auto-off after ``hours`` without a button press (5 to 24), or 0 for off."""
        check_auto_off(hours)
        self.auto_off_h = hours

    # ----- time ----------------------------------------------------------------------------

    def tick(self, now_ms, suspended_since):
        """Reminders and the auto-off timer; returns the codes that came due.

        The suspend reminder is raised here; AUTO_OFF stops delivery, so it is only
        returned, for the app's fault path to raise.

        ``suspended_since``: when delivery was suspended (ms), or None while delivering.
        """
        raised = []
        if suspended_since is not None:
            if self._next_reminder_ms is None:
                self._next_reminder_ms = suspended_since + SUSPEND_REMINDER_MS
            if now_ms >= self._next_reminder_ms:
                self._next_reminder_ms = now_ms + SUSPEND_REMINDER_MS
                alarm = self.find(SUSPENDED)
                if alarm is None:
                    self.raise_alarm(now_ms, SUSPENDED)
                    raised.append(SUSPENDED)
                else:
                    alarm.acknowledged = False
                    alarm.silenced_until = None
        else:
            self._next_reminder_ms = None
            reminder = self.find(SUSPENDED)
            if reminder is not None:  # resumed: the reminder has nothing left to say
                self.clear(now_ms, SUSPENDED)
                if reminder in self.alarms:
                    self.alarms.remove(reminder)
        deadline = self.auto_off_deadline()
        if deadline is not None and now_ms >= deadline and self.find(AUTO_OFF) is None:
            raised.append(AUTO_OFF)  # the caller's fault path raises it
        return raised

    def auto_off_deadline(self):
        if not self.auto_off_h:
            return None
        return self.last_interaction_ms + self.auto_off_h * _MS_PER_H

    def next_wake_ms(self, now_ms):
        """When ``tick`` or the sound next needs the main loop (absolute ms), or None."""
        wake = self._next_reminder_ms
        deadline = self.auto_off_deadline()
        if deadline is not None and self.find(AUTO_OFF) is not None:
            deadline = None  # already raised: nothing more to wait for
        if deadline is not None and (wake is None or deadline < wake):
            wake = deadline
        for alarm in self.alarms:
            until = alarm.silenced_until
            if until is not None and until > now_ms and (wake is None or until < wake):
                wake = until
        return wake

    # ----- what to show and sound ------------------------------------------------------------

    def find(self, code):
        for alarm in self.alarms:
            if alarm.code == code:
                return alarm
        return None

    def shown(self, now_ms):
        """The alarm to show: the highest priority, sounding before silenced, oldest first."""
        best = None
        for alarm in self.alarms:
            if alarm.acknowledged and not alarm.sounding(now_ms):
                continue
            if best is None or alarm.priority > best.priority:
                best = alarm
        return best

    def sound(self, now_ms):
        """The priority the buzzer must play now (0 for silence)."""
        level = 0
        for alarm in self.alarms:
            if alarm.priority > level and alarm.sounding(now_ms):
                level = alarm.priority
        return level

    def high_active(self):
        """True while a high-priority alarm is latched (acknowledged or not) with its cause,
        or not yet acknowledged."""
        for alarm in self.alarms:
            if alarm.priority == HIGH and (alarm.cause_present or not alarm.acknowledged):
                return True
        return False

    def blocking_delivery(self):
        """Codes of latched alarms that keep delivery stopped (unacknowledged or present)."""
        codes = []
        for alarm in self.alarms:
            if TABLE[alarm.code][1] and (alarm.cause_present or not alarm.acknowledged):
                codes.append(alarm.code)
        return codes
