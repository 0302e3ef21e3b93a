"""Date and time on the keys: the first step of the setup, the time after a power cut, and
the settings' time of day. UP/DOWN change the field lit; held, the time moves 10 then
100 minutes a step; OK goes to the next field, BACK to the one before."""

from micropython import const

from pump.core import keys
from pump.core.state import CLOCK_VALID_FROM_S, DAY_S, days_from_date, rtc_tuple, wall_seconds
from pump.ui.screens import Confirm, Screen

YEAR = const(0)
MONTH = const(1)
DAY = const(2)
TIME = const(3)  # minutes of the day
_FIRST_YEAR = const(2024)
_LAST_YEAR = const(2099)


def _days_in_month(year, month):
    if month == 12:
        return 31
    return days_from_date(year, month + 1, 1) - days_from_date(year, month, 1)


DATE_FIRST = (YEAR, MONTH, DAY, TIME)  # a new pump: the date, then the time
TIME_FIRST = (TIME, DAY, MONTH, YEAR)  # the clock after a power cut, the settings


class DateTimeEditor(Screen):
    """Year, month, day and time of day, one field lit at a time in ``order``: OK goes on
    to the next, and after the last calls ``on_ok(ui, wall_s)`` (seconds since 2000-01-01);
    BACK goes back one, and from the first leaves."""

    name = "date time"

    def __init__(self, title, wall_s, on_ok, order=DATE_FIRST):
        dt = rtc_tuple(wall_s)
        year = dt[0]
        if year < _FIRST_YEAR or year > _LAST_YEAR:
            year = _FIRST_YEAR
        self.values = [year, dt[1], dt[2], dt[4] * 60 + dt[5]]
        self.title = title
        self.on_ok = on_ok
        self.order = order
        self.at = 0  # the position in ``order`` of the field lit
        self.field = order[0]

    def wall_s(self):
        year, month, day, minutes = self.values
        return days_from_date(year, month, day) * DAY_S + minutes * 60

    def change(self, direction, step):
        v = self.values
        field = self.field
        if field == TIME:
            v[TIME] = (v[TIME] + direction * step) % 1440
        elif field == YEAR:
            year = v[YEAR] + direction
            if _FIRST_YEAR <= year <= _LAST_YEAR:
                v[YEAR] = year
        elif field == MONTH:
            v[MONTH] = (v[MONTH] - 1 + direction) % 12 + 1
        else:
            days = _days_in_month(v[YEAR], v[MONTH])
            v[DAY] = (v[DAY] - 1 + direction * (step if step < 10 else 10)) % days + 1
        days = _days_in_month(v[YEAR], v[MONTH])
        if v[DAY] > days:
            v[DAY] = days

    def key(self, ui, kind, key, step):
        if kind != keys.PRESS and kind != keys.REPEAT:
            return
        if key == keys.UP:
            self.change(1, step)
        elif key == keys.DOWN:
            self.change(-1, step)
        elif kind != keys.PRESS:
            return
        elif key == keys.OK:
            if self.at + 1 == len(self.order):
                self.on_ok(ui, self.wall_s())
            else:
                self.at += 1
                self.field = self.order[self.at]
        elif key == keys.BACK:
            if self.at == 0:
                ui.pop()
            else:
                self.at -= 1
                self.field = self.order[self.at]

    def draw(self, ui, p, now):
        p.title(self.title)
        year, month, day, minutes = self.values
        shown = "%02d:%02d" % (minutes // 60, minutes % 60)
        p.center(shown, 13, 2)
        date = "%04d-%02d-%02d" % (year, month, day)
        x = (128 - len(date) * 8) // 2
        p.text(date, x, 35)
        if self.field == TIME:
            p.fb.fill_rect(24, 30, 80, 2, 1)  # under the time
        else:
            start, width = ((0, 4), (5, 2), (8, 2))[self.field]
            p.text(date[start : start + width], x + start * 8, 35, True)
        p.text(("time" if self.field == TIME else ("year", "month", "day")[self.field])
               + ": UP/DN", 0, 47)
        last = self.at + 1 == len(self.order)
        p.text(("OK=set" if last else "OK=next") + (" BACK=out" if self.at == 0 else
                                                  " BACK=<"), 0, 56)  # '<': the field before


def guess_wall_s(app):
    """Where the editor starts: while the clock can be trusted, the RTC's date and the
    time of day the pump shows; after a loss, the last time the pump knew plus the time
    since it started; else the first valid date at noon."""
    persistence = app.persistence
    rtc = app.board.rtc
    if persistence is None or persistence.clock_ok:
        day = CLOCK_VALID_FROM_S // DAY_S
        if rtc is not None:
            wall = wall_seconds(rtc.datetime())
            if wall >= CLOCK_VALID_FROM_S:
                day = wall // DAY_S
        return day * DAY_S + app.therapy.ms_of_day(app.now_ms()) // 1000
    last = persistence.last_wall_s
    if last is not None:
        return last + app.now_ms() // 1000
    return CLOCK_VALID_FROM_S + 12 * 3600


def set_clock(app, wall_s):
    """Set the pump's time of day and the RTC's date and time; None or the refusal."""
    reason = app.set_time_of_day(wall_s % DAY_S * 1000)
    rtc = app.board.rtc
    if reason is None and rtc is not None:
        rtc.datetime(rtc_tuple(wall_s))
    return reason


def _stamp(wall_s):
    dt = rtc_tuple(wall_s)
    return "%04d-%02d-%02d" % dt[:3], "%02d:%02d" % (dt[4], dt[5])


def set_time(ui, settles=(), done=None):
    """The date and time, then a confirm; lit on the time (the date is usually right).
    ``settles``: the alarms this answers (the clock lost after a power cut); ``done(ui)``
    after the clock is set (default: home)."""
    app = ui.app

    def time_ok(ui, wall_s):
        date, hhmm = _stamp(wall_s)

        def apply(ui):
            reason = set_clock(ui.app, wall_s)
            if reason is None:
                ui.app.events.emit(ui.app.now_ms(), "setup_step", step="clock", wall_s=wall_s)
            return reason

        confirm = Confirm("confirm time", "Set the clock", ["Date " + date, "Time " + hhmm],
                          apply, done=done or _finish)
        confirm.settles = settles
        ui.replace(confirm)

    editor = DateTimeEditor("Date and time", guess_wall_s(app), time_ok, TIME_FIRST)
    editor.settles = settles
    ui.push(editor)


def _finish(ui):
    ui.finish()


def set_time_after_loss(ui):
    """The clock-lost alarm's OK: straight to the time screen (to the setup when the
    pump has no settings either: it sets the clock too)."""
    alarms = ui.app.alarms
    if alarms.find("set_up") is not None or alarms.find("check_settings") is not None:
        ui.open("setup", "start")
        return
    set_time(ui, ("set_time",))

