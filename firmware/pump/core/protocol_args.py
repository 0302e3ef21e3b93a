"""The protocol's commands and their arguments: each request's words checked and parsed.

Numbers on the wire are whole decimals (insulin in mU, rates in mU/h, durations in
minutes); a refusal says what was wrong in units a person reads (U, U/h, hh:mm). The
parsers of the requests that change therapy are in pump.core.change_args, loaded only
for such a request: ``COMMANDS`` names them.
"""

from pump.core.fmt import fmt_units
from pump.core.limits import MAX_BASAL_MU_PER_H, MAX_BOLUS_MU, MAX_PROFILES  # noqa: F401  (the protocol's)
from pump.core.schedule import SLOTS_PER_DAY

# The therapy-changing arguments take the ranges of the settings (pump.core.limits); the
# pump's own settings and safety checks then apply on top of them.
MAX_SEQ = 999_999_999  # nine digits: stays a small int on the RP2040
HISTORY_MAX_COUNT = 50
HISTORY_DEFAULT_COUNT = 20
MAX_SEGMENTS = SLOTS_PER_DAY  # a profile changes on the half-hours only
TEMP_KINDS = ("percent", "rate")


class ArgError(ValueError):
    """An argument that does not parse or is out of range; the message says which."""


def split_tokens(text):
    """Split on spaces, as a shell would: a double-quoted part may hold spaces, and
    inside quotes a backslash escapes the next character (``msg="say \\"hi\\""``).

    Raises ArgError on an unterminated quote.
    """
    tokens = []
    current = []
    in_token = False
    in_quotes = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_quotes:
            if ch == "\\" and i + 1 < n:
                i += 1
                current.append(text[i])
            elif ch == '"':
                in_quotes = False
            else:
                current.append(ch)
        elif ch == " ":
            if in_token:
                tokens.append("".join(current))
                current = []
                in_token = False
        elif ch == '"':
            in_quotes = True
            in_token = True
        else:
            current.append(ch)
            in_token = True
        i += 1
    if in_quotes:
        raise ArgError("unterminated quoted string")
    if in_token:
        tokens.append("".join(current))
    return tokens


def parse_decimal(text, what, low, high):
    if not text or len(text) > 9:
        raise ArgError("%s must be a whole number from %d to %d, got %r" % (what, low, high, text))
    for ch in text:
        if ch < "0" or ch > "9":
            raise ArgError(
                "%s must be a whole number from %d to %d, got %r" % (what, low, high, text)
            )
    value = int(text)
    if value < low or value > high:
        raise ArgError("%s must be from %d to %d, got %d" % (what, low, high, value))
    return value


def parse_mu(text, what, low, high, per=""):
    """Milliunits (or mU``per``) on the wire; refusals in U (``per``: '/h', '/min')."""
    try:
        return parse_decimal(text, what, low, high)
    except ArgError:
        pass
    if text and len(text) <= 9 and text.isdigit():
        raise ArgError("%s must be from %s%s to %s%s, got %s%s" % (
            what, fmt_units(low), per, fmt_units(high), per, fmt_units(int(text)), per))
    raise ArgError("%s must be a whole number of mU%s, got %r" % (what, per, text))


def no_args(args):
    if args:
        raise ArgError("takes no arguments")
    return ()


def _history_args(args):
    if len(args) > 2:
        raise ArgError("usage: history [since_seq] [count]")
    since = parse_decimal(args[0], "since_seq", 0, MAX_SEQ) if args else 0
    count = HISTORY_DEFAULT_COUNT
    if len(args) > 1:
        count = parse_decimal(args[1], "count", 1, HISTORY_MAX_COUNT)
    return (since, count)


def _confirm_args(args):
    if len(args) != 1:
        raise ArgError("usage: confirm_status <id>")
    return (parse_decimal(args[0], "id", 1, MAX_SEQ),)


# name: (changes therapy, argument parser: a function here, or the name of one in
# pump.core.change_args)
COMMANDS = {
    "hello": (False, no_args),
    "status": (False, no_args),
    "settings": (False, no_args),
    "history": (False, _history_args),
    "version": (False, no_args),
    "hash": (False, no_args),
    "confirm_status": (False, _confirm_args),
    "setup_put": (False, "setup_put_args"),  # stages settings for setup; changes nothing
    "setup": (True, "time_args"),
    "settings_put": (True, "settings_args"),
    "time_set": (True, "time_args"),
    "bolus": (True, "bolus_args"),
    "extended": (True, "extended_args"),
    "dual": (True, "dual_args"),
    "temp": (True, "temp_args"),
    "suspend": (True, no_args),
    "resume": (True, no_args),
    "cancel_bolus": (True, no_args),
    "cancel_temp": (True, no_args),
    "profile_delete": (True, "profile_args"),
    "maintenance": (True, no_args),  # restart once in development mode (pump/link_maint.py)
}
