"""Resets the firmware makes itself: a note on flash before, read back at the next boot.

On the rp2 port ``machine.reset()`` restarts through the watchdog, so without a note a
crash or a deliberate restart would read back as a hung main loop. main.py calls
``record_crash`` in locked mode before its reset; a planned restart calls
``reset_deliberately``. Imported only around a reset and at boot.
"""

from pump.core.health import HARD_RESET, SOFT_RESET, WDT_RESET, reset_cause_name

_OWN_RESETS = (HARD_RESET, WDT_RESET, SOFT_RESET)  # what a reset the firmware made reads as


def reset_deliberately(storage, reason, detail=None):
    """Before a reset the firmware makes on purpose (an update, a remote restart): mark it,
    so the next boot records it as such and raises no alarm."""
    storage.mark_reset("deliberate", reason if detail is None else reason + ": " + detail)


def record_crash(storage, exc, t_ms=0):
    """An exception ended the main loop (main.py, locked mode): put the error on flash,
    in the log and in the mark the next boot reads, before the reset."""
    text = "%s: %s" % (type(exc).__name__, exc)
    text = text[:120]
    try:
        storage.log.append(t_ms, None, "crash", {"error": text})
    finally:
        storage.mark_reset("crash", text)


def reset_fields(cause, mark):
    """The reset's name and detail: (cause name, reason or None). A reset the firmware made
    itself (``mark``) reads back as hard, soft or the watchdog's: the mark names it."""
    name = reset_cause_name(cause)
    if mark is not None and cause in _OWN_RESETS:
        return mark[0], mark[1]
    return name, None
