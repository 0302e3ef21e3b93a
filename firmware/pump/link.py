"""The serial link: answers the protocol's requests and holds each therapy change for the person.

Read-only requests (status, settings, history, version, hash) are answered at once.
A request that changes therapy is never carried out from the wire: it is held, shown
on the pump's screen, and carried out only when the person presses OK there within
60 s; BACK rejects it, and one change waits at a time. Bad input is answered
with an error and changes nothing. Every request and every outcome is an event.
A change the pump would refuse (above the max bolus, a profile that does not exist, ...)
is refused at once with the reason, before anyone is asked (pump/link_change.py).
``setup_put`` stages settings for ``setup``, which applies them with the clock once
confirmed; a confirmed ``maintenance`` restarts the pump for one start in development
mode (pump/link_maint.py, ``lock_console``). The main loop calls ``service(now_ms)``; the
confirm screen calls ``confirm`` and ``reject`` (pump/ui/remote.py).
"""

import sys

from micropython import const

from pump import VERSION
from pump.core import events as ev
from pump.core import protocol as p

DEVICE = "pico-insulin-pump"  # the name the host's handshake expects
_PROTOCOL_VERSION = const(1)
_CONFIRM_MS = const(60_000)  # a held change expires unconfirmed after this
_READS_PER_PASS = const(4)  # port reads (64 bytes each) per main-loop pass: the loop stays quick
_KEPT_OUTCOMES = const(8)  # finished changes confirm_status can still report
_TOLD_RESTART_MS = const(300)  # a planned restart, once the host read its outcome

# What became of a held change.
HELD = "pending"
APPLIED = "applied"  # confirmed on the pump and carried out
REFUSED = "refused"  # confirmed, but the pump refused it (limits, alarms, ...)
REJECTED = "rejected"  # the person pressed BACK
EXPIRED = "expired"  # not confirmed within 60 s
CANCELLED = "cancelled"  # its screen went away unanswered


class HeldChange:
    """A therapy change waiting for the person: ``id``, the Request, and its fate.
    ``received_ms``: when it came (a clock sent with it is applied plus the wait);
    ``settings``: a setup's settings, built and checked when it came."""

    def __init__(self, ident, request, now):
        self.id = ident
        self.request = request
        self.command = request.command
        self.received_ms = now
        self.expires_ms = now + _CONFIRM_MS
        self.state = HELD
        self.reason = None
        self.settings = None


def _changes(command):
    """The module that checks and applies ``command``, loaded for one change and let go
    after (see _release): pump/link_maint for maintenance, else pump/link_change."""
    if command == "maintenance":
        from pump import link_maint

        return link_maint
    from pump import link_change

    return link_change


def forget(name):
    """Let module ``name`` go: out of sys.modules and off its package, so that once nothing
    else holds it the collector gives its RAM back (imported again when next needed)."""
    if sys.modules.pop(name, None) is None:
        return False
    dot = name.rfind(".")
    package = sys.modules.get(name[:dot])
    leaf = name[dot + 1 :]
    if package is not None and leaf in package.__dict__:
        delattr(package, leaf)
    return True


def _release():
    forget("pump.link_change")
    forget("pump.link_maint")
    forget("pump.core.setup")  # a setup's checks, imported by link_change


class Link:
    """The protocol's far end on the pump: ``port`` is a hal UsbSerial (or its fake)."""

    def __init__(self, app, port):
        self.app = app
        self.port = port
        self.decoder = p.Decoder()
        self.held = None  # type: HeldChange | None  # the change waiting for confirmation
        self.finished = []  # recent HeldChanges, oldest first
        self.screen = None  # the confirm screen while it is shown
        self.draft = None  # settings staged by setup_put for the next setup, or None
        self.restart_at = None  # ms: a confirmed maintenance restarts the chip then
        self._next_id = 1

    # ----- main loop ----------------------------------------------------------------

    def has_input(self):
        """True when bytes wait on the port (the main loop then has work)."""
        return self.port.any()

    def next_wake_ms(self):
        """When the held change expires or a planned restart is due, or None."""
        held = self.held
        wake = None if held is None else held.expires_ms
        restart = self.restart_at
        if restart is not None and (wake is None or restart < wake):
            wake = restart
        return wake

    def service(self, now):
        """Expire a change left unconfirmed, then read and answer what came in; restart
        when a confirmed maintenance is due."""
        if self.restart_at is not None and now >= self.restart_at:
            _changes("maintenance").restart(self, now)  # does not return on the chip
        self._check_held(now)
        for _ in range(_READS_PER_PASS):
            data = self.port.read()
            if not data:
                break
            for item in self.decoder.feed(bytes(data)):
                self._answer(item, now)
            forget("pump.core.change_args")  # a therapy change's parsers, if one came

    def _answer(self, item, now):
        try:
            if item.is_error:
                self._send(item.response(), now, "-", p.ERR, item.code, item.seq)
            elif item.therapy:
                self._hold(item, now)
            else:
                self._read_only(item, now)
        except Exception as exc:  # a fault here must never take the pump down
            err = p.FrameError(
                getattr(item, "seq", 0), p.E_INTERNAL, "failed: %s" % type(exc).__name__
            )
            self._send(err.response(), now, "-", p.ERR, p.E_INTERNAL, err.seq)

    def _send(self, line, now, command, outcome, code=None, seq=0):
        self.port.write(line)
        self._record(now, command, outcome, code, seq)

    def _record(self, now, command, outcome, code, seq):
        """One event per request; a run of identical answers bumps the last one's count."""
        events = self.app.events
        last = events.recent(1)
        if outcome != p.PENDING and last and last[0][2] == ev.REMOTE_REQUEST:
            fields = last[0][3]
            if (
                fields.get("command") == command
                and fields.get("outcome") == outcome
                and fields.get("code") == code
            ):
                fields["count"] = fields.get("count", 1) + 1
                fields["last_req_seq"] = seq
                return
        events.emit(
            now, ev.REMOTE_REQUEST, req_seq=seq, command=command, outcome=outcome, code=code
        )

    def answer_ok(self, seq, fields, now, command):
        """Send an ok answer with its fields and record the request (the listings use it too)."""
        self._send(p.encode_response(seq, p.OK, fields), now, command, p.OK, None, seq)

    def _err(self, seq, code, message, now, command):
        line = p.encode_response(seq, p.ERR, (("code", code), ("msg", message)))
        self._send(line, now, command, p.ERR, code, seq)

    # ----- read-only requests -------------------------------------------------------------

    def _read_only(self, req, now):
        command = req.command
        if command == p.HELLO or command == "version":
            if command == p.HELLO:
                self.draft = None  # a new session stages its own setup
            self.answer_ok(req.seq, self.version_fields(), now, command)
        elif command == "setup_put":
            self._stage(req, now)
        elif command == "status":
            self.answer_ok(req.seq, self.status_fields(now), now, command)
        elif command == "settings" or command == "history" or command == "hash":
            from pump import link_read  # listings: loaded for the answer, let go after

            try:
                link_read.answer(self, req, now)
            finally:
                forget("pump.link_read")
        elif command == "confirm_status":
            self._confirm_status(req.seq, req.args[0], now)
        else:
            self._err(req.seq, p.E_UNKNOWN, "no handler for %s" % command, now, command)

    def version_fields(self):
        board = self.app.board
        return (
            ("device", DEVICE),
            ("firmware", VERSION),
            ("protocol", _PROTOCOL_VERSION),
            ("board", board.name),
        )

    def status_fields(self, now):
        app = self.app
        therapy = app.therapy
        state = therapy.status(now)
        mech = therapy.mech
        bolus = therapy.bolus
        alarms = [alarm.code for alarm in app.alarms.alarms]
        held = self.held
        ms = therapy.ms_of_day(now)
        seconds = ms // 1000
        return (
            ("time", "%02d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)),
            ("uptime_ms", now),
            ("basal_mu_per_h", state["rate_mu_per_h"]),
            ("profile", state["profile"]),
            ("temp", state["temp"]),
            ("suspended", state["suspended"]),
            ("suspend_reason", state["suspend_reason"]),
            ("bolus_mu", 0 if bolus is None else bolus.requested_mu),
            ("bolus_done_mu", mech.mu_for_steps(state["bolus_done_steps"])),
            ("basal_total_mu", state["basal_mu"]),
            ("bolus_total_mu", state["bolus_mu"]),
            ("iob_mu", therapy.iob.iob_mu(now)),
            ("reservoir_mu", app.reservoir.remaining_mu()),
            ("battery_pct", app.battery_percent()),
            ("alarms", ",".join(alarms) if alarms else None),
            ("held", 0 if held is None else held.id),
        )

    def _confirm_status(self, seq, ident, now):
        change = self.find(ident)
        if change is None:
            self._err(seq, p.E_UNKNOWN_ID, "no change %d on record" % ident, now, "confirm_status")
            return
        fields = [("id", change.id), ("command", change.command), ("state", change.state)]
        if change.state == HELD:
            fields.append(("expires_in_ms", change.expires_ms - now))
        if change.reason is not None:
            fields.append(("reason", change.reason))
        told = change.command == "maintenance" and change.state == APPLIED
        if told:
            fields.append(("uptime_ms", now))  # lower after the restart: how a host tells
        self.answer_ok(seq, fields, now, "confirm_status")
        restart = self.restart_at
        if told and restart is not None and restart > now + _TOLD_RESTART_MS:
            self.restart_at = now + _TOLD_RESTART_MS  # the host knows: restart once it is out

    def describe(self, change):
        """What ``change`` would do, on one line in a person's units (a host's prompt)."""
        from pump.ui import remote

        return remote.summary(self.app, change, self.draft)

    def find(self, ident):
        """The held or recently finished change with this id, or None."""
        if self.held is not None and self.held.id == ident:
            return self.held
        for change in self.finished:
            if change.id == ident:
                return change
        return None

    def _stage(self, req, now):
        """setup_put: settings for the next setup, checked as a whole only by setup. A
        profile's segments may come over several requests: a basalN whose first segment
        is after 00:00 goes on from the one staged."""
        draft = dict(self.draft or {})
        for key, value in req.args.items():
            if key[:5] == "basal" and value[0][0] != 0:
                staged = draft.get(key)
                if staged is None or staged[-1][0] >= value[0][0]:
                    self._err(req.seq, p.E_BAD_ARGS, "%s does not go on from a profile staged "
                              "before it" % key, now, "setup_put")
                    return
                value = staged + value
                if len(value) > p.MAX_SEGMENTS:  # per profile, over all setup_put requests
                    self._err(req.seq, p.E_BAD_ARGS, "a profile has at most %d segments"
                              % p.MAX_SEGMENTS, now, "setup_put")
                    return
            draft[key] = value
        self.draft = draft
        self.answer_ok(req.seq, (("staged", len(draft)),), now, "setup_put")

    # ----- therapy changes: held for the person ---------------------------------------

    def _hold(self, req, now):
        command = req.command
        if self.held is not None:
            self._err(
                req.seq, p.E_BUSY,
                "change %d waits for confirmation on the pump" % self.held.id, now, command,
            )
            return
        ui = self.app.ui
        if ui is None or not self.app.display_ok:
            self._err(
                req.seq, p.E_CANNOT_CONFIRM, "no screen to confirm on: nothing changed", now,
                command,
            )
            return
        change = HeldChange(self._next_id, req, now)
        try:
            reason = _changes(command).check(self, change, now)
        finally:
            _release()
        if reason is not None:
            self.app.therapy.refuse(now, command, reason)  # recorded, as on the keys
            self._err(req.seq, p.E_REFUSED, reason, now, command)
            return
        self._next_id += 1
        self.held = change
        from pump.ui import remote

        self.screen = remote.show(ui, self, change)
        line = p.encode_response(
            req.seq, p.PENDING, (("id", change.id), ("expires_in_ms", _CONFIRM_MS))
        )
        self._send(line, now, command, p.PENDING, None, req.seq)

    def _finish(self, change, state, reason, now):
        change.state = state
        change.reason = reason
        change.settings = None
        if change.command == "setup":
            self.draft = None  # staged for this setup: used, or to be sent again
        if self.held is change:
            self.held = None
        self.screen = None
        self.finished.append(change)
        if len(self.finished) > _KEPT_OUTCOMES:
            self.finished.pop(0)
        self.app.events.emit(
            now, ev.REMOTE_OUTCOME, id=change.id, command=change.command, outcome=state,
            reason=reason,
        )

    def _check_held(self, now):
        change = self.held
        if change is None:
            return
        if now >= change.expires_ms:
            ui = self.app.ui
            self._take_down_screen(ui)
            self._finish(change, EXPIRED, "not confirmed within %d s" % (_CONFIRM_MS // 1000), now)
            if ui is not None:
                ui.flash("USB change expired")
        elif self.screen is not None and self.app.ui is not None:
            if self.screen not in self.app.ui.stack:
                self._finish(change, CANCELLED, "its screen was closed", now)

    def _take_down_screen(self, ui):
        if ui is not None and self.screen is not None:
            ui.dismiss(self.screen)

    def reject(self, change, now):
        """BACK on the confirm screen."""
        if change is self.held:
            self._finish(change, REJECTED, "rejected on the pump", now)

    def confirm(self, change, now):
        """OK on the confirm screen: carry the change out. Returns None or the refusal."""
        held = self.held
        if held is None or change is not held:
            return "this change is no longer waiting"
        change = held
        if now >= change.expires_ms:
            self._finish(change, EXPIRED, "confirmed too late", now)
            return "too late: the change expired"
        try:
            reason = _changes(change.command).apply(self, change, now)
        except Exception as exc:  # a fault in applying must not leave it pending
            reason = "failed: %s" % type(exc).__name__
        finally:
            _release()
        if reason is None:
            self._finish(change, APPLIED, None, now)
        else:
            self._finish(change, REFUSED, reason, now)
        return reason


# ----- locked mode ----------------------------------------------------------------------

DEV_KEYS = 1 | 8  # UP | BACK (pump.core.keys): held at power-up, they unlock the console
_DEV_RELEASE_WAIT_MS = const(5000)  # let go of them within this, or the self-test sees stuck keys
_CTRL_C = const(3)


def lock_console(buttons, micropython_module, clock, fs=None):
    """Locked mode unless UP and BACK are both held as the pump starts, or a confirmed
    maintenance left its mark on ``fs`` (used up here). Locked: Ctrl-C is an ordinary
    byte (``kbd_intr(-1)``), so only the protocol answers on USB. Development mode: Ctrl-C
    stops the firmware and gives the REPL (mpremote works). Returns True when locked. In
    development mode it waits for the keys to be let go before the self-test."""
    held = buttons is not None and buttons.read_mask() & DEV_KEYS == DEV_KEYS
    maintenance = False
    if fs is not None:
        try:
            maintenance = _changes("maintenance").take_mark(fs)
        except Exception:  # whatever the flash holds, the pump starts (locked)
            maintenance = False
        forget("pump.link_maint")
    if maintenance and not held:
        micropython_module.kbd_intr(_CTRL_C)
        print("development mode for maintenance, this start only: Ctrl-C gives the REPL")
        return False
    micropython_module.kbd_intr(_CTRL_C if held else -1)
    if held:
        start = clock.ticks_ms()
        while buttons.read_mask() & DEV_KEYS:
            if clock.ticks_diff(clock.ticks_ms(), start) >= _DEV_RELEASE_WAIT_MS:
                break
            clock.sleep_ms(20)
    return not held
