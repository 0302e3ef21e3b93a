"""What a person reads: insulin in U, rates in U/h, times as hh:mm, and events in words.

Milliunits, milliseconds and raw codes stay in the machine formats (CSV, JSON, the
protocol); every line the tools print for a person goes through here. An amount given
as motor steps is shown as the nearest 0.001 U those steps make, so the amounts of a
day add up to its total.
"""

import argparse
import math

from pump.core.fmt import fmt_rate, fmt_units
from pump.core.wallclock import date_from_days

DAY_S = 86_400
HOUR_MS = 3_600_000
MIN_MS = 60_000

_RESET_CAUSES = {  # MicroPython's machine.reset_cause() codes on the rp2 port
    1: "power on",
    3: "watchdog",
    4: "deep sleep",
    5: "soft reset",
}


# ----- amounts ---------------------------------------------------------------------------


def mu_from_steps(steps, nu_per_step):
    """The insulin ``steps`` motor steps push, in mU rounded to the nearest one."""
    return (steps * nu_per_step + 500_000) // 1_000_000


def units(mu, places=3):
    """Milliunits as units: 4500 -> '4.500 U' (``places`` decimals)."""
    return "%.*f U" % (places, mu / 1000)


def step_units(nu_per_step):
    """The insulin of one motor step, exactly: 1472500 nU -> '0.0014725 U'."""
    whole, frac = divmod(nu_per_step, 1_000_000_000)
    digits = ("%09d" % frac).rstrip("0") or "0"
    return "%d.%s U" % (whole, digits)


def setting_units(mu):
    """A set amount as the pump writes it, exact (two decimals at least): 8000 -> '8.00 U',
    25 -> '0.025 U'."""
    return fmt_units(mu)


def rate(mu_per_h):
    """A basal rate as the pump writes it: 800 -> '0.80 U/h', 1005 -> '1.005 U/h'."""
    return fmt_rate(mu_per_h)


def speed(mu_per_min):
    """A bolus speed: 1500 -> '1.5 U/min'."""
    return ("%g" % (mu_per_min / 1000)) + " U/min"


def volts(mv):
    return "%.2f V" % (mv / 1000)


# ----- time --------------------------------------------------------------------------------


def clock(ms_of_day):
    """A time of day: 27_000_000 -> '07:30'."""
    minutes = ms_of_day // MIN_MS % (24 * 60)
    return "%02d:%02d" % (minutes // 60, minutes % 60)


def duration(ms):
    """A length of time as h:mm ('2:00'), with days when it has them ('1 d 3:00')."""
    minutes = ms // MIN_MS
    text = "%d:%02d" % (minutes // 60 % 24, minutes % 60)
    if minutes >= 24 * 60:
        return "%d d %s" % (minutes // (24 * 60), text)
    return text


def minutes_text(minutes):
    """90 -> '1:30 h'; under an hour '40 min'."""
    if minutes < 60:
        return "%d min" % minutes
    return "%s h" % duration(minutes * MIN_MS)


def wall_text(wall_s):
    """Seconds since 2000-01-01 (the pump's clock) as 'YYYY-MM-DD hh:mm'."""
    days, secs = divmod(int(wall_s), DAY_S)
    year, month, day, _weekday = date_from_days(days)  # the pump's own calendar
    return "%04d-%02d-%02d %02d:%02d" % (year, month, day, secs // 3600, secs // 60 % 60)


# ----- events ---------------------------------------------------------------------------------


def alarm_name(code):
    """An alarm code as the pump's own words ('Occlusion: no delivery. Check the line')."""
    try:
        from pump.core import alarms
    except ImportError:  # pumpctl without the firmware at hand
        return str(code).replace("_", " ")
    entry = alarms.TABLE.get(code)
    return entry[2] if entry else str(code).replace("_", " ")


def reset_cause_text(cause):
    if isinstance(cause, int) or (isinstance(cause, str) and cause.isdigit()):
        return _RESET_CAUSES.get(int(cause), "unknown (%s)" % cause)
    return str(cause).replace("_", " ")


def _amount(fields, nu_per_step, mu_key="delivered_mu", steps_key="steps"):
    """The amount an event gives, from its steps when the step size is known."""
    steps = fields.get(steps_key)
    if nu_per_step and isinstance(steps, int):
        return mu_from_steps(steps, nu_per_step)
    return fields.get(mu_key, 0) or 0


def _temp_text(fields):
    if "percent" in fields:
        return "%s %%" % fields["percent"]
    if "rate_mu_per_h" in fields:
        return rate(int(fields["rate_mu_per_h"]))
    return ""


def describe(etype, fields, nu_per_step=None):
    """One line a person reads for an event (``fields`` as the pump recorded them).

    ``nu_per_step``: the pump's step size (nU); amounts given in steps are then shown as
    the nearest 0.001 U of those steps."""
    f = fields
    amount = _amount(f, nu_per_step)
    if etype == "bolus_started":
        text = "%s bolus %s started" % (f.get("bolus"), setting_units(int(f["requested_mu"])))
        extended = int(f.get("extended_min") or 0)
        if extended:
            now_steps = int(f.get("now_steps") or 0)
            later_steps = int(f.get("extended_steps") or 0)
            if nu_per_step:
                text += " (%s now, %s over %s)" % (
                    units(mu_from_steps(now_steps, nu_per_step)),
                    units(mu_from_steps(later_steps, nu_per_step)), minutes_text(extended))
            else:
                text += " (extended over %s)" % minutes_text(extended)
        return text
    if etype == "bolus_finished":
        return "%s bolus finished: %s given" % (f.get("bolus"), units(amount))
    if etype == "bolus_cancelled":
        requested = int(f.get("requested_mu") or 0)
        return "%s bolus cancelled (%s): %s given, %s not given" % (
            f.get("bolus"), f.get("reason"), units(amount), units(max(0, requested - amount)))
    if etype == "bolus_interrupted":
        return "%s bolus stopped by the restart: %s of %s given" % (
            f.get("bolus"), units(amount), setting_units(int(f.get("requested_mu") or 0)))
    if etype == "delivery_uncertain":
        return "a pulse train was running at the restart: %s counted as given" % units(amount)
    if etype == "basal_rate":
        return "basal rate now %s" % rate(int(f["rate_mu_per_h"]))
    if etype == "basal_hour":
        hour = int(f.get("hour", 0))
        return "basal %02d:00-%02d:00: %s given" % (hour, (hour + 1) % 24, units(amount))
    if etype == "delivery":
        return "%s pulse train: %s" % (f.get("kind"), units(amount, 4))
    if etype == "temp_basal_started":
        if f.get("restored"):
            return "temp basal restored after the restart: %s left" % minutes_text(
                int(f.get("minutes", 0)))
        text = "temp basal %s for %s started" % (_temp_text(f), minutes_text(int(f["minutes"])))
        if f.get("replaced"):
            text += " (replaces %s)" % f["replaced"]
        return text
    if etype == "temp_basal_expired":
        return "temp basal %s ended" % f.get("temp", "")
    if etype == "temp_basal_cancelled":
        return "temp basal %s cancelled after %s" % (
            f.get("temp", ""), minutes_text(int(f.get("ran_min", 0))))
    if etype == "suspended":
        return "delivery suspended (%s)" % f.get("reason")
    if etype == "resumed":
        return "delivery resumed after %s; %s of basal not given" % (
            minutes_text(int(f.get("suspended_min", 0))),
            units(int(f.get("basal_not_given_mu", 0))))
    if etype == "refused":
        return "REFUSED %s: %s" % (f.get("command"), f.get("reason"))
    if etype == "alarm":
        return "ALARM (%s) %s" % (f.get("priority", "?"), f.get("message") or alarm_name(
            f.get("code")))
    if etype == "fault":
        return "FAULT %s; motor stopped, %s not given" % (
            alarm_name(f.get("code")), units(int(f.get("not_delivered_mu") or 0)))
    if etype == "alarm_cleared":
        code = f.get("code")
        if code == "occlusion":
            return ("occlusion: pressure relieved by backing off; the alarm stays until "
                    "acknowledged and the line is tested again before delivery")
        if code == "suspended":
            return "suspend reminder over: delivery runs again"
        return "%s: no longer detected (the alarm stays until acknowledged)" % alarm_name(code)
    if etype == "alarm_ack":
        return "alarm acknowledged: %s" % alarm_name(f.get("code"))
    if etype == "backoff":
        return "plunger backed off %.2f uL (%s not delivered) to relieve the pressure" % (
            int(f.get("nl", 0)) / 1000, units(int(f.get("not_delivered_mu") or 0)))
    if etype == "battery":
        return "battery %s (%s)" % (f.get("state"), volts(int(f.get("mv", 0))))
    if etype == "self_test":
        if f.get("passed") in (1, True, "1"):
            return "self-test passed"
        codes = f.get("codes") or ()
        if isinstance(codes, str):
            codes = codes.split(",")
        return "SELF-TEST FAILED: %s" % ", ".join(str(c).replace("_", " ") for c in codes)
    if etype == "reset_cause":
        return "restart: %s" % reset_cause_text(f.get("cause"))
    if etype == "reset":  # the recovery from flash at boot
        if f.get("rtc_lost") in (True, 1, "1"):
            return "state read back from flash; the clock lost the time"
        return "state read back from flash; the clock kept the time"
    if etype == "boot":
        return "firmware started"
    if etype == "no_delivery":
        return "no delivery from %s to %s (%s)" % (
            wall_text(int(f["from_wall_s"])), wall_text(int(f["to_wall_s"])),
            duration(int(f.get("seconds", 0)) * 1000))
    if etype == "clock_set":
        if "ms_of_day" in f:
            return "clock set to %s" % clock(int(f["ms_of_day"]))
        if "wall_s" in f:
            return "clock set to %s" % wall_text(int(f["wall_s"]))
    if etype == "profile_selected":
        return "basal profile %s selected" % f.get("name")
    if etype == "profile_saved":
        return "basal profile %s saved (%s a day)" % (
            f.get("name"), units(int(f.get("daily_mu", 0)), 2))
    if etype == "primed":
        return "%s filled: %s (not therapy)" % (f.get("part"), units(amount))
    if etype == "reservoir_loaded":
        return "reservoir loaded: %s" % units(int(f.get("volume_mu", 0)), 2)
    if etype == "reservoir_rewound":
        return "pusher rewound to the end stop"
    if etype == "reservoir_seated":
        return "pusher seated on the new stopper"
    if etype == "remote_request":
        text = "USB: %s %s" % (f.get("command"), {
            "ok": "answered", "pending": "held for OK on the pump", "err": "refused",
            "more": "answered"}.get(f.get("outcome"), str(f.get("outcome"))))
        if f.get("code") not in (None, "", "-"):
            text += " (%s)" % str(f.get("code")).replace("_", " ")
        count = int(f.get("count") or 1)
        return text + (" (%d times)" % count if count > 1 else "")
    if etype == "remote_outcome":
        text = "USB change %s (%s): %s" % (f.get("id"), f.get("command"), f.get("outcome"))
        if f.get("reason") not in (None, "", "-"):
            text += ": %s" % f.get("reason")
        return text
    if etype == "display_lost":
        return "the display stopped answering"
    if etype == "display_back":
        return "the display answers again"
    return "%s%s" % (etype.replace("_", " "), _fields_text(f))


def _fields_text(fields):
    parts = [field_text(k, v) for k, v in sorted(fields.items()) if v not in (None, "-")]
    return (": " + ", ".join(parts)) if parts else ""


def field_text(key, value):
    """One field in a person's terms, by the unit its name carries."""
    name = key
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if value is None or number is None or isinstance(value, bool):
        if isinstance(value, bool) or value in (0, 1):
            return "%s %s" % (key.replace("_", " "), "yes" if value else "no")
        return "%s %s" % (key.replace("_", " "), value)
    for suffix, show in (
        ("_mu_per_h", rate),
        ("_mu_per_min", speed),
        ("_mu", units),
        ("_wall_s", wall_text),
        ("_ms", duration),
        ("_min", lambda m: minutes_text(m)),
        ("_mv", volts),
        ("_mn", lambda mn: "%.2f N" % (mn / 1000)),
        ("_h", lambda h: "%d h" % h),
    ):
        if key.endswith(suffix):
            name = key[: -len(suffix)]
            return "%s %s" % (name.replace("_", " "), show(number))
    if key == "mu":
        return units(number)
    if key == "nl":
        return "%.2f uL" % (number / 1000)
    return "%s %s" % (key.replace("_", " "), value)


# ----- command lines --------------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """argparse with a usage error on one line (exit status 2), as every tool here says."""

    def error(self, message):
        self.exit(2, "%s: %s (see %s --help)\n" % (self.prog, message, self.prog))


def finite(text):
    """An argparse type: a finite decimal number (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("%r is not a finite number" % text)
    return value


def positive_int(text):
    """An argparse type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("%r: give 1 or more" % text)
    return value


def time_of_day(text):
    """An argparse type: 'HH:MM' from 00:00 to 23:59, as ms of the day."""
    hours, sep, minutes = text.partition(":")
    if not (sep and len(hours) == 2 and len(minutes) == 2 and hours.isdigit()
            and minutes.isdigit()):
        raise argparse.ArgumentTypeError("%r is not HH:MM" % text)
    if int(hours) > 23 or int(minutes) > 59:
        raise argparse.ArgumentTypeError("%r is not a time of day (00:00 to 23:59)" % text)
    return (int(hours) * 60 + int(minutes)) * MIN_MS


def quiet_broken_pipe(run):
    """Run ``run()`` (returns an exit status); a reader that went away (``| head``) ends
    the output quietly instead of with a traceback."""
    import os
    import sys

    try:
        status = run()
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that says nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
