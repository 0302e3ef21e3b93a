"""The motor moves that are not therapy: rewind, seat, fills, the back-off and the line test.

None of them is ever counted as delivered insulin. Each runs as small trains on the
delivery controller's motor, one move at a time; the line test (pump.core.line_test)
holds the motor between therapy trains while it runs. Main loop only.
"""

from pump.core import alarms as al
from pump.core import events as ev
from pump.core.errors import Refused
from pump.core.limits import SPEED_QUICK_MU_MIN
from pump.core.line_test import BLOCKED
from pump.delivery import LINE_TEST

PRIME = "prime"  # tubing or cannula fill
BACKOFF = "backoff"  # plunger back after an occlusion, to relieve the pressure
REWIND = "rewind"  # pusher back to the end stop for a reservoir change
SEAT = "seat"  # pusher forward onto a new reservoir's stopper (no insulin moves)
_SEATED_MN = 300  # force that says the pusher is on the stopper
_REWIND_CHUNK_S = 20  # a rewind train lasts 1/20 s, so it stops within 0.05 s of the end stop
_BACKOFF_MAX_UL = 40  # never back off more than this (a plunger's play plus the line's stretch)
_BACKOFF_CHUNK_NL = 200  # back off in small moves (14 steps), reading the force after each


class Motions:
    def __init__(self, app, board):
        self._app = app
        mech = board.mechanics
        self._mech = mech
        self._end_stop = board.end_stop
        self.motion = None  # [kind, part, steps left, steps/s, forward] of the move running
        self._moved = 0  # steps of the current move so far
        # Fills and back-offs run at the quick bolus speed (15 U/min) or the motor's limit.
        self._prime_sps = min(
            mech.steps_per_s_for_mu_per_min(SPEED_QUICK_MU_MIN), mech.max_step_rate
        )
        # A line test's moves go at the motor's top speed: over in a few ms, before an open
        # line has let any of their pressure go.
        self._test_sps = mech.max_step_rate

    def _start(self, kind, part, steps, rate, forward):
        self._moved = 0
        self.motion = [kind, part, steps, rate, forward]

    def cancel(self):
        """The fault path: drop the move running, unless it is the back-off (it only takes
        pressure off the line, and a later fault must not leave that pressure in)."""
        if self.motion is not None and self.motion[0] != BACKOFF:
            self.motion = None
            self._moved = 0

    def at_end_stop(self):
        return self._end_stop is not None and self._end_stop.value() == 0

    # ----- the motor --------------------------------------------------------------------

    def dispatch(self, now):
        """Put the next piece of the move on the motor; True while a move holds it."""
        motion = self.motion
        if motion is None:
            return False
        kind, part, left, rate, forward = motion
        if kind == REWIND or kind == SEAT:
            chunk = rate // _REWIND_CHUNK_S or 1
            if kind == REWIND and self.at_end_stop():
                self.motion = None
                self._done(kind, part, now)
                return True
            left = left if left < chunk else chunk
        elif kind == BACKOFF:
            chunk = _BACKOFF_CHUNK_NL * 1000 // self._mech.pl_per_step or 1
            left = left if left < chunk else chunk
        self._app.delivery.start(now, kind, part, left, rate, forward)
        return True

    def moved(self, kind, part, steps, requested, now):
        """The delivery controller booked a train of this move: ``steps`` of ``requested``
        (0: it was halted; the move goes on unless the fault path dropped it)."""
        app = self._app
        motion = self.motion
        self._moved += steps
        if kind == PRIME:
            app.reservoir.took(steps)
        elif kind == BACKOFF:
            app.reservoir.gave_back(steps)
        if motion is None or motion[0] != kind:
            return
        motion[2] -= steps
        if kind == REWIND and self.at_end_stop():
            motion[2] = 0
        if kind == SEAT:
            force = app.supervisor.read_force(now)
            if force is not None and force >= _SEATED_MN:
                motion[2] = 0
        if kind == BACKOFF:
            app.supervisor.read_force(now)  # for the record: the force as the pressure comes off
        if motion[2] <= 0 or steps < requested:  # a short train: the motor stopped it
            self.motion = None
            self._done(kind, part, now)

    def _done(self, kind, part, now):
        app = self._app
        moved = self._moved
        self._moved = 0
        mech = self._mech
        if kind == PRIME:
            app.reservoir.filled(part, moved)
            app.events.emit(now, ev.PRIMED, part=part, steps=moved, mu=mech.mu_for_steps(moved))
        elif kind == BACKOFF:
            app.events.emit(
                now, ev.BACKOFF, steps=moved, nl=mech.nl_for_steps(moved),
                not_delivered_mu=mech.mu_for_steps(moved), force_mn=app.supervisor.force_mn,
            )
            self.forget_line(now, moved=True)
            app.alarms.clear(now, al.OCCLUSION)
        elif kind == SEAT:
            app.events.emit(now, ev.RESERVOIR_SEATED, steps=moved,
                            force_mn=app.supervisor.force_mn)
            self.forget_line(now, moved=True)
        elif kind == REWIND:
            if self.at_end_stop():
                app.reservoir.rewound()
                app.events.emit(now, ev.RESERVOIR_REWOUND, steps=moved)
            else:
                app.supervisor.fault(al.INTERNAL,
                                     reason="end stop not reached after %d steps" % moved)

    # ----- the back-off ------------------------------------------------------------------

    def back_off(self, now, steps):
        """Move the plunger back ``steps`` to relieve pressure (the occlusion response)."""
        limit = _BACKOFF_MAX_UL * 1_000_000 // self._mech.pl_per_step
        steps = steps if steps < limit else limit
        if steps <= 0:
            self._app.alarms.clear(now, al.OCCLUSION)
            return
        self._start(BACKOFF, 0, steps, self._prime_sps, False)

    def relieve_pressure(self, now):
        """After an occlusion: back the plunger off by the travel since the force was last
        at its floor, so the volume pushed into the blocked line comes back and reopening
        the line releases no bolus. (Reading the force while backing off would stop too
        early: friction turns round with the motion and hides the pressure.)"""
        app = self._app
        detector = app.detector
        start = None if detector is None else detector.relief_from_steps()
        test = app.line_test
        if test is not None and test.open_at is not None:
            start = test.open_at  # where the line last took the push
        if start is None:
            app.alarms.clear(now, al.OCCLUSION)  # nothing measured to relieve
            return
        self.back_off(now, app.delivery.position_steps - start)

    # ----- reservoir change: commands (the command gate runs them) --------------------------

    def rewind(self, now):
        therapy = self._app.therapy
        if therapy.suspended_at is None:
            raise therapy.refuse(now, "rewind", "suspend delivery before changing the reservoir")
        if self._end_stop is None:
            raise therapy.refuse(now, "rewind", "this board has no end stop")
        if self.motion is not None:
            raise therapy.refuse(now, "rewind", "the motor is busy")
        mech = self._mech
        travel = mech.steps_for_mu(mech.reservoir_capacity_mu(), 0)[0] * 11 // 10
        self._start(REWIND, 0, travel, mech.max_step_rate, False)

    def seat(self):
        """Bring the pusher up to a new stopper: it stops where the force rises."""
        mech = self._mech
        travel = mech.steps_for_mu(mech.reservoir_capacity_mu(), 0)[0] * 11 // 10
        self._start(SEAT, 0, travel, mech.max_step_rate, True)

    def fill(self, now, part, mu):
        app = self._app
        if self.motion is not None:
            raise app.therapy.refuse(now, "fill", "the motor is busy")
        try:
            app.reservoir.check_fill(part, mu)
        except Refused as refusal:
            raise app.therapy.refuse(now, "fill " + str(part), str(refusal))
        steps = self._mech.steps_for_mu(mu, 0)[0]
        self._start(PRIME, part, steps, self._prime_sps, True)

    # ----- the line test ------------------------------------------------------------------

    def service_line_test(self, now):
        """Run the line test (pump/core/line_test.py): start it when due, make its moves,
        read the force while it watches, act on its verdict. True while it holds the
        motor, so no therapy train goes out in the middle of a test."""
        app = self._app
        test = app.line_test
        therapy = app.therapy
        if test is None or therapy.suspended_at is not None:
            return False
        bolus = therapy.bolus is not None
        if not test.running():
            if test.owed > 0:  # a test cut short: give back what its pull took first
                steps, test.owed = test.owed, 0
                app.delivery.start(now, LINE_TEST, 0, steps, self._test_sps)
                return True
            if not test.due(now, bolus):
                return False
            test.start(now)
        supervisor = app.supervisor
        if test.watching():
            if now < test.next_wake_ms():
                return True
            force = supervisor.read_force(now)
            verdict = test.sample(now, force, app.delivery.position_steps)
            if verdict == BLOCKED:
                supervisor.fault(
                    al.OCCLUSION,
                    source="line test",
                    relief_mn=test.relief_mn,
                    force_mn=supervisor.force_mn,
                    pressure_pa=app.board.pressure.pressure_pa(),
                )
                return True
            if test.watching() or not test.running():
                return test.running()
        steps = test.move(now)
        if steps:
            app.delivery.start(now, LINE_TEST, 0, abs(steps), self._test_sps, steps > 0)
        return True

    def forget_line(self, now, moved=False):
        """The line's history no longer holds (a back-off, a resume, a new reservoir).
        ``moved``: the plunger was placed anew, so a cut-short test's pull is not owed."""
        app = self._app
        if app.detector is not None:
            app.detector.reset()
        if app.line_test is not None:
            app.line_test.reset(now, owed_too=moved)
        if app.disconnection is not None:
            app.disconnection.reset()
