"""Short texts for a 16-character screen line: units, rates, times, durations, wrapping."""

from micropython import const

from pump.core.fmt import fmt_speed as speed  # noqa: F401  (the screens' speeds)
from pump.core.fmt import fmt_units
from pump.core.fmt import fmt_units_down as units  # noqa: F401  (the screens' amounts)
from pump.core.schedule import slot_text as slot  # noqa: F401  (a half-hour as HH:MM)

COLUMNS = const(16)  # 8x8 font on 128 pixels


def units_u(mu):
    """Milliunits with the unit: 2500 -> '2.50 U'."""
    return units(mu) + " U"


def rate(mu_per_h):
    """A rate in mU/h: 800 -> '0.80 U/h'."""
    return units(mu_per_h) + " U/h"


def hhmm(ms_of_day):
    """Time of day from ms since midnight: '07:05'."""
    minutes = (ms_of_day // 60_000) % 1440
    return "%02d:%02d" % (minutes // 60, minutes % 60)


def duration(ms):
    """A duration in hours and minutes: 5_400_000 -> '1:30 h'."""
    minutes = ms // 60_000
    return "%d:%02d h" % (minutes // 60, minutes % 60)


def percent(value):
    return "%d %%" % value




def increment(mu):
    """A bolus step, to the mU: 50 -> '0.05 U', 25 -> '0.025 U'."""
    return fmt_units(mu)


def wrap(text, width=COLUMNS, max_lines=6):
    """Split ``text`` into lines of at most ``width`` characters at spaces."""
    lines: list = []
    for word in text.split(" "):
        while len(word) > width:
            if lines and len(lines[-1]) + 1 < width:
                room = width - len(lines[-1]) - 1
                lines[-1] = lines[-1] + " " + word[:room]
                word = word[room:]
            else:
                lines.append(word[:width])
                word = word[width:]
        if not word:
            continue
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] = lines[-1] + " " + word
        else:
            lines.append(word)
    return lines[:max_lines]
