"""Maintenance over USB: restart once in development mode, so that a locked pump can be
flashed without unplugging it, and only with the person's OK on the pump.

``maintenance`` is held like any change (pump/link.py): the pump shows "Restart for
maintenance? Delivery stops". Refused at once, with the reason, while a bolus runs, while
the keys are locked, or on a pump that keeps nothing on flash. On OK: delivery is
suspended (the events of a suspend), the state and the log are saved, a one-shot mark
goes on flash and the restart is marked as planned (pump/resets.py: no "The pump
restarted" alarm); the chip restarts a moment later, once the host has read the outcome.
At the next start ``lock_console`` finds the mark (``take_mark``), removes it and starts
in development mode; the start after that is locked again.

Loaded by pump/link.py for one change, a restart or a start, and let go after.
"""

from micropython import const

MARK_FILE = "maintenance.once"
# Only this exact content counts: a damaged or foreign file never unlocks the console.
MARK_TEXT = b"pico-insulin-pump: development mode for one start\n"
_RESTART_MS = const(3000)  # after OK, at the latest: the host reads the outcome first


def check(link, change, now):
    """None when the pump can restart for maintenance now, else the reason it cannot."""
    app = link.app
    if app.persistence is None:
        return "this pump keeps nothing on flash: restart it by hand"
    if app.therapy.bolus is not None:
        return "a bolus is running: let it finish or cancel it first"
    ui = app.ui
    if ui is not None and ui.locked:
        return "the keys are locked: unlock them on the pump first"
    if link.restart_at is not None:
        return "the pump is already restarting"
    return None


def apply(link, change, now):
    """OK on the pump: suspend, save, mark, and plan the restart. None, or why not."""
    reason = check(link, change, now)
    if reason is not None:
        return reason
    app = link.app
    if app.therapy.suspended_at is None:
        reason = app.suspend()  # recorded as a person's suspend; stays after the restart
        if reason is not None:
            return reason
    persistence = app.persistence
    app.persist(app.now_ms())
    if persistence.failing is not None:
        return "the %s could not be saved: not restarted" % persistence.failing
    from pump import resets
    from pump.hal.storage import write_atomic

    storage = persistence.storage
    try:
        write_atomic(storage.fs, MARK_FILE, MARK_TEXT)
        resets.reset_deliberately(storage, "maintenance")
    except OSError:
        _remove_mark(storage.fs)
        return "the flash failed: not restarted"
    link.restart_at = now + _RESTART_MS
    ui = app.ui
    if ui is not None:
        from pump.ui.screens import Message

        ui.push(Message("Maintenance", "", lines=["Restarting for", "maintenance.",
                                                  "Delivery is", "suspended."]))
    return None


def restart(link, now):
    """The planned restart: what happened since OK on flash, then reset the chip."""
    link.restart_at = None
    link.app.persist(now)
    import machine

    machine.reset()


def take_mark(fs):
    """At a start: True when the maintenance mark is on ``fs`` with exactly MARK_TEXT. Any
    mark is removed first; one that cannot be removed does not count (it would unlock
    every start)."""
    try:
        with fs.open(MARK_FILE, "rb") as f:
            data = f.read(len(MARK_TEXT) + 1)
    except OSError:
        return False  # none
    try:
        fs.remove(MARK_FILE)
    except OSError:
        return False
    return data == MARK_TEXT


def _remove_mark(fs):
    for name in (MARK_FILE, MARK_FILE + ".new"):
        try:
            fs.remove(name)
        except OSError:
            pass
