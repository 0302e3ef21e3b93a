"""The wall clock as integers: seconds since 2000-01-01 (MicroPython's epoch on the rp2 port).

Pure code: dates to day numbers and back, RTC tuples, and whether the RTC can be trusted
after a reset (the Pico has no backup cell: a power cut restarts its RTC).
"""

DAY_S = 86_400
# After a power-on the rp2 port starts its RTC at 2021-01-01 00:00: a reading before the
# next day means the time was never set since the supply came back.
CLOCK_VALID_FROM_S = 7_672 * DAY_S  # 2021-01-02 00:00


def days_from_date(year, month, day):
    """Days from 2000-01-01 to a date (proleptic Gregorian, integers only)."""
    if month <= 2:
        year -= 1
        month += 9
    else:
        month -= 3
    era = year // 400
    yoe = year - era * 400
    doy = (153 * month + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 730_425


def date_from_days(days):
    """(year, month, day, weekday with Monday = 0) of a day number from ``days_from_date``."""
    z = days + 730_425
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day, (days + 5) % 7  # 2000-01-01 was a Saturday


def wall_seconds(dt):
    """Seconds since 2000-01-01 of an RTC datetime tuple (y, mo, d, wd, h, mi, s, sub)."""
    return days_from_date(dt[0], dt[1], dt[2]) * DAY_S + (dt[4] * 60 + dt[5]) * 60 + dt[6]


def rtc_tuple(wall_s):
    """The RTC datetime tuple for seconds since 2000-01-01."""
    days = wall_s // DAY_S
    secs = wall_s - days * DAY_S
    year, month, day, weekday = date_from_days(days)
    return (year, month, day, weekday, secs // 3600, secs // 60 % 60, secs % 60, 0)


def clock_lost(rtc_s, last_wall_s):
    """True when the RTC cannot be trusted: it reads the power-on default, or earlier than
    the last checkpoint (it went back)."""
    return rtc_s < CLOCK_VALID_FROM_S or (last_wall_s is not None and rtc_s < last_wall_s)


def wall_after_loss(last_wall_s, ms_of_day):
    """The wall clock to set when the person gives the time of day after the clock was lost:
    the first such moment not before the last one known (the date itself is not asked)."""
    base = CLOCK_VALID_FROM_S if last_wall_s is None else last_wall_s
    wall = base // DAY_S * DAY_S + ms_of_day // 1000
    if wall < base:
        wall += DAY_S
    return wall
