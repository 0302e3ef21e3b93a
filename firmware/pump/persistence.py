"""The recorder: the running pump's flash. Recovery at boot, checkpoints, settings, event log.

The App owns one ``Persistence`` (the recorder) when it is given a
``pump.hal.storage.Storage``. It reads the flash when the App is built (the settings
decide how therapy is built), turns what it found into a recovery plan at ``start``
(``pump.core.state``): the therapy state, insulin on board and the insulin limits'
windows come back. Then:

* it appends every event to the log on flash (it listens on the App's EventLog), with
  the pump's own sequence numbers: the RAM ring and the flash log count alike;
* it saves the settings after every settings command;
* it writes a checkpoint after every therapy state change and, before a pulse train
  the last checkpoint does not cover, one that reserves it (``CheckpointPolicy``);
* no therapy train starts until its events and its reservation are on flash: a write
  that fails takes the fault path (a high alarm; delivery stops).
Main loop only: everything here allocates.
"""

try:
    from typing import Any  # noqa: F401  (type comments)
except ImportError:  # MicroPython: type comments only
    pass

from pump.core import alarms as al
from pump.core import events as ev
from pump.core import state as st
from pump.core.errors import Refused
from pump.core.health import reset_cause_name
from pump.core.schedule import TempBasal
from pump.core.therapy import Settings

RECOVERY = "recovery"  # the suspend reason while a recovery alarm keeps delivery stopped
_MS_PER_H = 3_600_000
_NO_DELIVERY = "no_delivery"  # the event plan_recovery records for the gap (records.py)
_MAX_UNWRITTEN = 200  # events kept for the log while the flash fails; older ones are lost

# Events after which the checkpoint on flash no longer matches the therapy state.
_STATE_EVENTS = (
    ev.BOLUS_STARTED,
    ev.BOLUS_FINISHED,
    ev.BOLUS_CANCELLED,
    ev.TEMP_STARTED,
    ev.TEMP_CANCELLED,
    ev.TEMP_EXPIRED,
    ev.SUSPENDED,
    ev.RESUMED,
    ev.CLOCK_SET,
    ev.RESERVOIR_LOADED,
    ev.RESERVOIR_REWOUND,
    ev.RESERVOIR_SEATED,
    ev.PRIMED,
    ev.BACKOFF,
)
# Events that say the settings changed: saved before the next pulse train.
_SETTINGS_EVENTS = (ev.SETTINGS_CHANGED, ev.PROFILE_SAVED, ev.PROFILE_SELECTED)
# Recovery alarms whose cause the person removes by a command (set the time, accept
# settings); the others are one-offs, latched until acknowledged.
_CAUSED = (al.CHECK_SETTINGS, al.SET_UP, al.SET_TIME)


def default_policy():
    """Checkpoints for this pump: a bolus is reserved one pulse train at a time, so after
    a reset its record is within one train of the motor; basal 5 min (at most 68 steps,
    0.1 U on the default board) ahead, so a day at 1 U/h costs about 300 writes."""
    return st.CheckpointPolicy(interval_ms=300_000, bolus_reserve_steps=0, basal_reserve_steps=68)


class Persistence:
    def __init__(self, storage, board, events, policy=None):
        self.storage = storage
        self.rtc = board.rtc
        self.mech = board.mechanics
        self.policy = policy or default_policy()
        self.app = None  # type: Any  # the App, from recover() on
        self.settings_loaded, self.checkpoint_loaded = storage.boot()
        self.values = {}  # the settings sections as loaded (unknown ones are written back)
        loaded = self.settings_loaded
        if loaded.status == st.OK:
            self.values = dict(loaded.value)
        last = self.checkpoint_loaded.value
        self.last_wall_s = None if last is None else last.wall_s
        self.clock_ok = not st.clock_lost(self.wall_s(), self.last_wall_s)
        self.settings_ok = loaded.status == st.OK
        # A pump never set up keeps saying so after a reset, where its checkpoint is.
        self.was_set_up = loaded.status != st.MISSING or (last is not None and last.set_up)
        self.settings_dirty = False
        self.plan = None
        self.odometer_base = 0
        self.recent = []  # (wall_s, mU) of finished boluses, for insulin on board
        self.bolus_start_wall_s = None
        self.log_failures = 0  # events lost because the flash failed for too long
        self._unwritten = []  # events not yet on flash, oldest first
        self.writes = 0  # checkpoints written this boot
        self.failing = None  # what failed to write ("log", "checkpoint", "settings"), or None
        self.reset_mark = storage.take_reset_mark()  # (reason, detail) of our own reset
        self._restored_iob = []  # (wall_s, mU) of boluses restored with the clock lost
        # One sequence number space: the events of this boot follow the log's last one.
        if events.seq < storage.log.last_seq:
            events.seq = storage.log.last_seq
        events.recorder = self._on_event

    def settings(self):
        """The therapy settings to run with: the file's, or the factory ones (not saved) when
        the file is missing or damaged: delivery then waits for the person."""
        if self.settings_ok:
            return self.settings_loaded.value["therapy"]
        return Settings()

    def wall_s(self):
        return st.wall_seconds(self.rtc.datetime())

    def _wall_or_none(self):
        return self.wall_s() if self.clock_ok else None

    # ----- the event log -------------------------------------------------------------

    def _on_event(self, event):
        etype = event[2]
        if etype in _STATE_EVENTS:
            self.policy.changed()
        if etype in _SETTINGS_EVENTS:
            self.settings_dirty = True
        wall = self._wall_or_none()
        if etype == ev.BOLUS_STARTED:
            self.bolus_start_wall_s = wall
        elif etype == ev.BOLUS_FINISHED or etype == ev.BOLUS_CANCELLED:
            mu = event[3].get("delivered_mu", 0)
            if mu > 0:
                self._add_recent(wall or self.bolus_start_wall_s or 0, mu)
        # Written by ``persist``, before the next pulse train: an event may be emitted with
        # interrupts off (a rate change), and a flash write must not run there.
        unwritten = self._unwritten
        unwritten.append((event[0], event[1], wall, etype, event[3]))
        if len(unwritten) > _MAX_UNWRITTEN:
            unwritten.pop(0)
            self.log_failures += 1

    def _write_log(self):
        """Append the events not yet on flash; False (the fault path taken) on a failure."""
        unwritten = self._unwritten
        log = self.storage.log
        while unwritten:
            seq, t_ms, wall, etype, fields = unwritten[0]
            try:
                log.append(t_ms, wall, etype, fields, seq)
            except OSError as err:
                self._failed("log", err)
                return False
            unwritten.pop(0)
        return True

    def _failed(self, what, err):
        if self.failing is None and self.app is not None:
            self.failing = what
            self.app.supervisor.storage_failed(what, err)

    def _succeeded(self, now):
        if self.failing is not None and not self._unwritten:
            self.failing = None
            self.app.supervisor.storage_ok(now)

    def _add_recent(self, wall_s, mu):
        self.recent.append((wall_s, mu))
        while len(self.recent) > st.MAX_RECENT_BOLUSES:
            self.recent.pop(0)

    def history(self, n, before=None, since=None):
        """Events from flash as (seq, t_ms, wall_s, type, fields): the last ``n`` newest
        first (``before``: below that sequence number, the next page), or with ``since``
        the first ``n`` after that sequence number, oldest first."""
        self._write_log()
        log = self.storage.log
        if since is None:
            return log.recent(n, before)
        out = []
        events = log.since(since)
        for event in events:
            out.append(event)
            if len(out) >= n:
                break
        events.close()
        return out

    # ----- boot --------------------------------------------------------------------------

    def recover(self, app, now, cause):
        """Apply the recovery plan: restore the therapy state, raise what the person must
        know, and keep delivery stopped when it cannot safely run."""
        self.app = app
        therapy = app.therapy
        loaded = self.settings_loaded
        ckpt = self.checkpoint_loaded
        now_wall = self._wall_or_none()
        plan = st.plan_recovery(
            loaded.status,
            loaded.reason,
            ckpt.value,
            ckpt.status,
            cause,
            {cause: reset_cause_name(cause)},
            not self.clock_ok,
            now_wall,
            self.mech.nu_per_step,
        )
        self.plan = plan
        for etype, fields in plan.events:
            app.events.emit(now, etype, **fields)
        if plan.reservoir_steps is not None:
            app.reservoir.remaining_steps = plan.reservoir_steps
            app.supervisor.watch_reservoir()
        if plan.limits is not None:
            app.supervisor.monitor.restore(
                now, plan.limits_age_ms, plan.limits, plan.limits_extra_steps
            )
        self.odometer_base = plan.odometer_steps
        for wall_s, mu in plan.recent_boluses:
            self._add_recent(wall_s, mu)
            if now_wall is not None:
                age_ms = (now_wall - wall_s) * 1000
            else:
                # The clock lost: at least as old as at the last checkpoint (set right
                # when the time is set again).
                last = plan.checkpoint_wall_s
                age_ms = 0 if last is None or last < wall_s else (last - wall_s) * 1000
                self._restored_iob.append((wall_s, mu))
            therapy.iob.add(now - age_ms, mu)
        if plan.temp is not None:
            kind, value, end_wall_s = plan.temp
            therapy.temp = TempBasal(kind, value, now, (end_wall_s - now_wall) * 1000)
            app.events.emit(now, ev.TEMP_STARTED, restored=1, minutes=(end_wall_s - now_wall) // 60)
        for _priority, code, text in plan.alarms:
            app.alarms.raise_alarm(now, code, detail=text)
            if code not in _CAUSED:
                app.alarms.clear(now, code)  # a one-off: latched until acknowledged
        if plan.suspended:
            therapy.suspend(now, plan.suspend_reason or "person")
        elif not plan.deliver:
            therapy.suspend(now, RECOVERY)
        self.policy.changed()

    # ----- the person's answers to the recovery alarms ----------------------------------------

    def accept_factory_defaults(self, now):
        """The person accepts the factory settings offered after a settings loss."""
        app = self.app
        if self.settings_ok:
            raise app.therapy.refuse(now, "factory settings", "the settings are whole")
        self.settings_ok = True
        app.gate.use_settings(now, Settings())
        self.settings_dirty = True
        for code in (al.CHECK_SETTINGS, al.SET_UP):
            self._settle(now, code)
        self.resume_if_recovered(now)

    def clock_set(self, now, ms_of_day):
        """The person set the time of day: set the RTC to match (keeping its date, or
        after a loss the first such moment after the last checkpoint)."""
        if self.clock_ok:
            wall = self.wall_s() // st.DAY_S * st.DAY_S + ms_of_day // 1000
        else:
            wall = st.wall_after_loss(self.last_wall_s, ms_of_day)
            last = self.checkpoint_loaded.value
            if last is not None and last.wall_s is not None and self.plan is not None:
                # The gap before this boot, now that the time is known again (its date is
                # a guess: the first such time after the last checkpoint).
                booted = wall - now // 1000
                if booted > last.wall_s:
                    self.app.events.emit(
                        now, _NO_DELIVERY,
                        from_wall_s=last.wall_s, to_wall_s=booted, seconds=booted - last.wall_s,
                    )
        self.rtc.datetime(st.rtc_tuple(wall))
        if not self.clock_ok and self._restored_iob:
            self._reage_iob(now, wall - now // 1000)
        self.clock_ok = True
        self.last_wall_s = wall
        self._settle(now, al.SET_TIME)
        self.resume_if_recovered(now)

    def set_up(self, now, wall_s):
        """Setup gave whole settings and the clock (``wall_s``): save them, set the RTC,
        settle the setup, settings and clock alarms, and let basal start."""
        if not self.clock_ok and self._restored_iob:
            self._reage_iob(now, wall_s - now // 1000)
        self.rtc.datetime(st.rtc_tuple(wall_s))
        self.settings_ok = True
        self.settings_dirty = True
        self.clock_ok = True
        self.last_wall_s = wall_s
        for code in (al.CHECK_SETTINGS, al.SET_UP, al.SET_TIME):
            self._settle(now, code)
        self.resume_if_recovered(now)

    def _reage_iob(self, now, booted_wall_s):
        """The time is known again: the boluses restored at boot get their true age."""
        iob = self.app.therapy.iob
        restored = self._restored_iob
        self._restored_iob = []
        if len(iob.entries()) > len(restored):
            return  # a bolus since boot (none can start while the time is unset)
        iob.clear()
        for wall_s, mu in restored:
            iob.add((wall_s - booted_wall_s) * 1000, mu)

    def _settle(self, now, code):
        alarms = self.app.alarms
        if alarms.find(code) is not None:
            alarms.clear(now, code)
            alarms.acknowledge(now, code)

    def resume_if_recovered(self, now):
        """Basal resumes by itself once nothing keeps the recovery suspension in place."""
        therapy = self.app.therapy
        if therapy.suspend_reason != RECOVERY or self.app.alarms.blocking_delivery():
            return
        try:
            therapy.resume(now)
        except Refused:
            pass  # recorded; the person resumes by hand once the cause is gone

    # ----- writes -------------------------------------------------------------------------

    def _checkpoint(self, now, in_flight, kind):
        app = self.app
        therapy = app.therapy
        c = st.Checkpoint()
        c.t_ms = now
        wall = self._wall_or_none()
        c.wall_s = wall
        remaining = app.reservoir.remaining_steps
        c.reservoir_steps = remaining if remaining > 0 else 0
        c.odometer_steps = self.odometer_base + therapy.basal.steps + therapy.bolus_delivered.steps
        c.in_flight_steps = in_flight
        c.in_flight_kind = kind if in_flight else None
        c.set_up = self.was_set_up
        bolus = therapy.bolus
        if bolus is not None:
            done = bolus.delivered_steps
            c.bolus = {
                "kind": bolus.kind,
                "requested_mu": bolus.requested_mu,
                "steps": bolus.steps,
                "delivered_steps": done,
                "delivered_mu": self.mech.mu_for_steps(done),
                "start_wall_s": self.bolus_start_wall_s or wall or 0,
            }
        temp = therapy.temp
        if temp is not None:
            end = 0 if wall is None else wall + (temp.end_ms - now) // 1000
            c.temp = {"kind": temp.kind, "value": temp.value, "end_wall_s": end}
        if therapy.suspended_at is not None:
            c.suspended = True
            c.suspend_reason = therapy.suspend_reason
            c.suspended_wall_s = wall
        if wall is not None:  # boluses past insulin on board's window: no longer needed
            self.recent = [b for b in self.recent if wall - b[0] < st.IOB_WINDOW_S]
        c.recent_boluses = list(self.recent)
        c.limits = app.supervisor.monitor.snapshot(now)
        try:
            self.storage.checkpoint.save(c)
        except OSError as err:
            self._failed("checkpoint", err)
            return False
        self.writes += 1
        if wall is not None:
            self.last_wall_s = wall
        self.policy.written(now, in_flight, kind)
        return True

    def persist(self, now, train_running):
        """Save what changed: the settings, then a checkpoint if a state change is unsaved.
        A train on the motor stays covered by the reservation made before it."""
        if not self._write_log():
            return
        if self.settings_dirty and self.settings_ok:
            values = self.values
            values["therapy"] = self.app.therapy.settings
            try:
                self.storage.settings.save(values)
            except OSError as err:
                self._failed("settings", err)
                return
            self.settings_dirty = False
            if not self.was_set_up:  # the checkpoint says so too, from now on
                self.was_set_up = True
                self.policy.changed()
        policy = self.policy
        if policy.due(now):
            if train_running:
                written = self._checkpoint(now, policy.covered_steps, policy.covered_kind)
            else:
                written = self._checkpoint(now, 0, None)
            if not written:
                return
        self._succeeded(now)

    def before_train(self, now, kind, steps):
        """Before the motor starts a therapy train: the events so far and a reservation of
        the train on flash (unless the last checkpoint covers it). False when that failed:
        the train must not start."""
        if self.failing is not None or not self._write_log():
            return False
        therapy = self.app.therapy
        if kind == "bolus":
            bolus = therapy.bolus
            more = 0 if bolus is None else bolus.steps - bolus.delivered_steps - steps
        else:
            mu = therapy.rate(now) * self.policy.interval_ms // _MS_PER_H
            more = mu * 1_000_000 // self.mech.nu_per_step
        reserve = self.policy.before_train(now, kind, steps, more if more > 0 else 0)
        if reserve:
            return self._checkpoint(now, reserve, kind)
        return True

    def train_done(self, steps):
        self.policy.train_done(steps)
