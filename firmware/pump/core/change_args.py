"""The arguments of the requests that change therapy, checked and parsed.

Loaded for a request that needs it and let go after (pump/link.py), so that the pump
keeps only the framing and the read-only requests' parsers (pump.core.protocol_args)
in RAM. Numbers on the wire are whole decimals (insulin in mU, rates in mU/h,
durations in minutes); a refusal says what was wrong in units a person reads.
"""

from pump.core import limits as lim
from pump.core.fmt import fmt_choices, fmt_units
from pump.core.limits import INCREMENT_CHOICES_MU, MAX_BASAL_MU_PER_H, MAX_BOLUS_MU, MAX_PROFILES
from pump.core.protocol_args import MAX_SEGMENTS, TEMP_KINDS, ArgError, parse_decimal, parse_mu

_MINUTE_MS = 60_000

# Settings keys beyond settings_put's, taken by setup_put: (low, high) in wire units.
_SETUP_ONLY = {
    "max_hour": (lim.MAX_HOUR_MIN_MU, lim.MAX_HOUR_MAX_MU),  # mU in any hour
    "max_day": (lim.MAX_DAY_MIN_MU, lim.MAX_DAY_MAX_MU),  # mU in any day
    "low_reservoir": (lim.LOW_LEVEL_MIN_MU, lim.LOW_LEVEL_MAX_MU),  # mU left: low alarm
    "auto_off": (0, lim.AUTO_OFF_MAX_H),  # hours without a key press; 0 = off
}



def bolus_args(args):
    if len(args) != 1:
        raise ArgError("usage: bolus <mU>")
    return (parse_mu(args[0], "bolus", 1, MAX_BOLUS_MU),)


def _minutes_arg(text, what, low, high):
    minutes = parse_decimal(text, what, low, high)
    if minutes % 30:
        raise ArgError("%s must be a multiple of 30, got %d" % (what, minutes))
    return minutes


def _extended_minutes(text, what):
    return _minutes_arg(text, what, lim.EXTENDED_MIN_MS // _MINUTE_MS,
                        lim.EXTENDED_MAX_MS // _MINUTE_MS)


def extended_args(args):
    if len(args) != 2:
        raise ArgError("usage: extended <mU> <minutes>")
    mu = parse_mu(args[0], "extended bolus", 1, MAX_BOLUS_MU)
    return (mu, _extended_minutes(args[1], "extended minutes"))


def dual_args(args):
    if len(args) != 3:
        raise ArgError("usage: dual <mU> <percent now> <minutes>")
    mu = parse_mu(args[0], "dual bolus", 1, MAX_BOLUS_MU)
    percent = parse_decimal(args[1], "dual percent now", 1, 99)
    return (mu, percent, _extended_minutes(args[2], "dual minutes"))


def temp_args(args):
    if len(args) != 3 or args[0] not in TEMP_KINDS:
        raise ArgError("usage: temp percent|rate <value> <minutes>")
    kind = args[0]
    if kind == "percent":
        value = parse_decimal(args[1], "temp percent", 0, lim.TEMP_MAX_PERCENT)
    else:
        value = parse_mu(args[1], "temp rate", 0, MAX_BASAL_MU_PER_H, "/h")
    minutes = _minutes_arg(args[2], "temp minutes", lim.TEMP_MIN_MS // _MINUTE_MS,
                           lim.TEMP_MAX_MS // _MINUTE_MS)
    return (kind, value, minutes)


def days_in_month(year, month):
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def time_args(args):
    # time_set YYYY-MM-DDTHH:MM:SS (setup takes the same)
    if len(args) != 1 or len(args[0]) != 19:
        raise ArgError("usage: YYYY-MM-DDTHH:MM:SS")
    text = args[0]
    if text[4] != "-" or text[7] != "-" or text[10] != "T" or text[13] != ":" or text[16] != ":":
        raise ArgError("usage: YYYY-MM-DDTHH:MM:SS")
    year = parse_decimal(text[0:4], "year", 2020, 2099)
    month = parse_decimal(text[5:7], "month", 1, 12)
    day = parse_decimal(text[8:10], "day", 1, days_in_month(year, month))
    hour = parse_decimal(text[11:13], "hour", 0, 23)
    minute = parse_decimal(text[14:16], "minute", 0, 59)
    second = parse_decimal(text[17:19], "second", 0, 59)
    return (year, month, day, hour, minute, second)


def parse_segments(text, continued=False):
    """'HH:MM/mU_per_h,...' -> ((half_hour, mU/h), ...), times rising. The first starts at
    00:00 unless ``continued`` (more segments of a profile begun in an earlier request)."""
    parts = text.split(",")
    if len(parts) > MAX_SEGMENTS:
        raise ArgError("a profile has at most %d segments" % MAX_SEGMENTS)
    segments = []
    last = -1
    for part in parts:
        slash = part.find("/")
        if slash != 5 or part[2] != ":":
            raise ArgError("basal segment %r is not HH:MM/mU_per_h" % part)
        hour = parse_decimal(part[0:2], "segment hour", 0, 23)
        minute = parse_decimal(part[3:5], "segment minute", 0, 59)
        if minute % 30:
            raise ArgError("basal segment %s does not start on a half-hour" % part[:5])
        half_hour = hour * 2 + minute // 30
        if half_hour <= last:
            raise ArgError("basal segment %s is not after the one before it" % part[:5])
        if last < 0 and half_hour != 0 and not continued:
            raise ArgError("a basal profile starts at 00:00")
        last = half_hour
        rate = parse_mu(part[6:], "basal rate at " + part[:5], 0, MAX_BASAL_MU_PER_H, "/h")
        segments.append((half_hour, rate))
    return tuple(segments)


def _profile_digit(ch):
    return "0" <= ch <= "9" and int(ch) < MAX_PROFILES


def settings_value(key, text, setup=False):
    """One settings key's value in wire units; ``setup``: setup_put's keys and rules."""
    if key == "max_bolus":
        return parse_mu(text, key, 1, MAX_BOLUS_MU)
    if key == "max_basal":
        return parse_mu(text, key, lim.RATE_STEP_MU_H, MAX_BASAL_MU_PER_H, "/h")
    if key == "increment":
        value = parse_mu(text, key, 1, INCREMENT_CHOICES_MU[-1])
        if value not in INCREMENT_CHOICES_MU:
            raise ArgError("increment must be %s, got %s" % (fmt_choices(INCREMENT_CHOICES_MU),
                                                            fmt_units(value)))
        return value
    if key == "speed":
        return parse_mu(text, key, lim.SPEED_STANDARD_MU_MIN, lim.SPEED_QUICK_MU_MIN, "/min")
    if key == "active_profile":
        return parse_decimal(text, key, 0, MAX_PROFILES - 1)
    if len(key) == 6 and key[:5] == "basal" and _profile_digit(key[5]):
        return parse_segments(text, setup)
    if len(key) == 5 and key[:4] == "name" and _profile_digit(key[4]):
        if not 1 <= len(text) <= lim.MAX_NAME_LEN:
            raise ArgError("a profile name has 1 to %d characters" % lim.MAX_NAME_LEN)
        return text
    if setup and key in _SETUP_ONLY:
        low, high = _SETUP_ONLY[key]
        if key == "auto_off":
            return parse_decimal(text, "auto_off hours", low, high)
        return parse_mu(text, key, low, high)
    extra = ", max_hour, max_day, low_reservoir, auto_off" if setup else ""
    raise ArgError(
        "unknown setting %r (known: max_bolus, max_basal, increment, speed, active_profile, "
        "basal0..basal3, name0..name3%s)" % (key, extra)
    )


def _pairs(args, usage, setup):
    if not args:
        raise ArgError(usage)
    values = {}
    for token in args:
        eq = token.find("=")
        if eq <= 0:
            raise ArgError("takes key=value pairs, got %r" % token)
        key = token[:eq]
        if key in values:
            raise ArgError("setting %r given twice" % key)
        values[key] = settings_value(key, token[eq + 1 :], setup)
    return values


def profile_args(args):
    if len(args) != 1:
        raise ArgError("usage: profile_delete <index>")
    return (parse_decimal(args[0], "profile index", 0, MAX_PROFILES - 1),)


def settings_args(args):
    return _pairs(args, "usage: settings_put <key>=<value> ...", False)


def setup_put_args(args):
    return _pairs(args, "usage: setup_put <key>=<value> ...", True)
