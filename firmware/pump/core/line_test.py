"""The line test: does the infusion line still take what the plunger pushes?

Every few minutes while the pump delivers, at the start of a bolus and now and then
during one, the pump pulls the plunger back a few steps, watches the force for a few
seconds, pushes it forward again and watches again: zero volume in all. In an open line
the pressure a move makes flows away within a second or two (the line's resistance
times its compliance), so the force climbs back after the pull and falls after the
push. A blocked line keeps it: the force stays where the move left it. The relief is
half the sum of the two (mN): about 30-90 mN for an open line on the plant model,
near 0 for a blocked one, whatever the basal rate.

Friction turns round with the motion and wanders along the barrel, the load cell
drifts, the stopper's rubber creeps: all of these change the force little within the
few seconds watched, and the pull and the push cancel them to first order. That is
why the test works at 0.05 U/h where a force that rises with the volume pushed is
lost in them.

Pure logic. The app starts a test when ``due``, makes each move ``move`` names and
calls ``moved`` when the motor finishes it, hands in a force reading at each
``next_sample_ms`` while a watch runs, and acts on the verdict ``sample`` returns.
The pull comes first: if a fault or a power cut stops a test between its moves, the
body has had less than the record says, never more (``owed`` steps go back first).
"""

OPEN = "open"
SUSPECT = "suspect"  # looked blocked once: test again at once
BLOCKED = "blocked"

_PULL = 0
_WATCH_PULL = 1
_PUSH = 2
_WATCH_PUSH = 3
_DONE = 4

# Samples averaged at each end of a watch: the first ones right after the move (the
# pressure it made still there), the last ones once an open line has let it go.
EARLY_SAMPLES = 3
LATE_SAMPLES = 12


class LineTest:
    """Pull, watch, push, watch; judge the relief. Times in ms, forces in mN.

    ``probe_steps``: steps of each move; ``watch_ms``: how long each watch lasts;
    ``open_mn``: a relief below this is suspect (a second test follows at once);
    ``blocked_mn``: a relief below this, or two suspect ones in a row, is a blocked
    line; ``interval_ms``: between tests while basal runs; ``bolus_interval_ms``:
    bolus time between tests during a bolus; ``settle_ms``: quiet time before a test
    during a bolus, so the flow's own pressure has gone; ``sample_ms``: the load
    cell's conversion period.
    """

    def __init__(self, probe_steps, watch_ms, open_mn, blocked_mn, interval_ms,
                 bolus_interval_ms, settle_ms, sample_ms):
        if probe_steps < 1 or sample_ms <= 0 or interval_ms <= 0 or bolus_interval_ms <= 0:
            raise ValueError("line test: bad steps or times")
        if watch_ms < (EARLY_SAMPLES + LATE_SAMPLES + 1) * sample_ms:
            raise ValueError("line test: the watch is too short for its samples")
        if not 0 < blocked_mn < open_mn or settle_ms < 0:
            raise ValueError("line test: need 0 < blocked_mn < open_mn")
        self.probe_steps = probe_steps
        self.watch_ms = watch_ms
        self.open_mn = open_mn
        self.blocked_mn = blocked_mn
        self.interval_ms = interval_ms
        self.bolus_interval_ms = bolus_interval_ms
        self.settle_ms = settle_ms
        self.sample_ms = sample_ms
        self._phase = _DONE
        self._next_ms = 0
        self._due_ms = 0  # when the next test is due: the first at once
        self._bolus_run_ms = 0  # bolus time since the last test
        self._window_ms = 0  # when the current watch began
        self._early_sum = self._early_n = 0
        self._late_sum = self._late_n = 0
        self._pull_fall = None  # fall of the force over the watch after the pull (mN)
        self.suspects = 0  # suspect verdicts in a row
        self.relief_mn = None  # of the last finished test
        self.open_at = None  # plunger position (steps) when the line last tested open
        self.owed = 0  # steps pulled and not pushed back (a test cut short)
        self.tests = 0  # finished tests, for the record

    # ----- when -------------------------------------------------------------------------

    def reset(self, now_ms, owed_too=False):
        """Forget what was learnt (after a back-off, a resume, a new reservoir): the line
        is tested afresh at once. ``owed`` stays unless ``owed_too`` (a back-off has
        taken the pull into its own account, or a new reservoir is in)."""
        self._phase = _DONE
        self.suspects = 0
        self.open_at = None
        if owed_too:
            self.owed = 0
        self._due_ms = now_ms
        self._bolus_run_ms = 0

    def bolus_started(self, now_ms):
        """A bolus begins: test the line before it goes out."""
        if self._phase == _DONE:
            self._due_ms = now_ms
            self._bolus_run_ms = 0

    def bolus_ran(self, ms):
        """The motor spent ``ms`` on a bolus train: a test falls due every
        ``bolus_interval_ms`` of it."""
        self._bolus_run_ms += ms

    def due(self, now_ms, bolus):
        """True when a test should start now (the motor idle, delivery running)."""
        if self._phase != _DONE:
            return False
        if bolus and self._bolus_run_ms >= self.bolus_interval_ms:
            return True
        return self._due_ms is not None and now_ms >= self._due_ms

    def next_due_ms(self):
        return self._due_ms if self._phase == _DONE else None

    def running(self):
        return self._phase != _DONE

    def bolus_wait_ms(self, now_ms, run_ms):
        """How much the tests add to a bolus that still needs ``run_ms`` of motor time: the
        test running or due now, and one every ``bolus_interval_ms`` of bolus time after
        (each waits ``settle_ms``, then two watches). For the finish time a person sees."""
        watch = self.watch_ms
        phase = self._phase
        if phase == _PULL:
            wait = max(self._next_ms - now_ms, 0) + 2 * watch
        elif phase == _WATCH_PULL:
            wait = max(self._window_ms + watch - now_ms, 0) + watch
        elif phase == _PUSH:
            wait = watch
        elif phase == _WATCH_PUSH:
            wait = max(self._window_ms + watch - now_ms, 0)
        elif self._due_ms is not None and now_ms >= self._due_ms:
            wait = (self.settle_ms if self._bolus_run_ms > 0 else 0) + 2 * watch
        else:
            wait = 0
        interval = self.bolus_interval_ms
        if interval > 0 and run_ms > 0:
            ran = self._bolus_run_ms if phase == _DONE and wait == 0 else 0
            wait += (ran + run_ms - 1) // interval * (self.settle_ms + 2 * watch)
        return wait

    # ----- the test ---------------------------------------------------------------------

    def start(self, now_ms):
        """Begin a test. In the middle of a bolus it waits ``settle_ms`` first, so that
        the pressure the flow itself makes has gone before the pull."""
        settle = self.settle_ms if self._bolus_run_ms > 0 else 0
        self._phase = _PULL
        self._bolus_run_ms = 0
        self._next_ms = now_ms + settle

    def move(self, now_ms):
        """Signed steps of the move to make now (negative: pull back), or 0 if none."""
        if self._phase == _PULL and now_ms >= self._next_ms:
            return -self.probe_steps
        if self._phase == _PUSH:
            return self.probe_steps
        return 0

    def moved(self, now_ms, steps):
        """The motor finished a move of ``steps`` (signed, as emitted) at ``now_ms``."""
        if self._phase == _PULL:
            self.owed = -steps
            self._phase = _WATCH_PULL
        elif self._phase == _PUSH:
            self.owed -= steps
            self._phase = _WATCH_PUSH
        else:
            return
        self._window_ms = now_ms
        self._next_ms = now_ms + self.sample_ms
        self._early_sum = self._early_n = self._late_sum = self._late_n = 0

    def next_wake_ms(self):
        """When the app must next act for the test (a move or a sample), or None."""
        if self._phase == _DONE:
            return None
        return self._next_ms

    def watching(self):
        return self._phase == _WATCH_PULL or self._phase == _WATCH_PUSH

    def sample(self, now_ms, force_mn, position_steps):
        """A force reading (None if the load cell gave none) during a watch. Returns the
        verdict (OPEN, SUSPECT or BLOCKED) when the test ends with this sample, else
        None. An inconclusive test (readings missing) ends with None and is retried at
        the next interval."""
        if not self.watching() or now_ms < self._next_ms:
            return None
        self._next_ms = now_ms + self.sample_ms
        if force_mn is not None:
            if self._early_n < EARLY_SAMPLES:
                self._early_sum += force_mn
                self._early_n += 1
            elif now_ms >= self._window_ms + self.watch_ms - LATE_SAMPLES * self.sample_ms:
                self._late_sum += force_mn
                self._late_n += 1
        if now_ms < self._window_ms + self.watch_ms:
            return None
        complete = self._early_n == EARLY_SAMPLES and self._late_n * 2 >= LATE_SAMPLES
        fall = 0
        if complete:
            fall = self._early_sum // self._early_n - self._late_sum // self._late_n
        if self._phase == _WATCH_PULL:
            self._pull_fall = fall if complete else None
            self._phase = _PUSH
            self._next_ms = now_ms  # the push goes at once
            return None
        self._phase = _DONE
        self._due_ms = now_ms + self.interval_ms
        if not complete or self._pull_fall is None:
            return None
        # After the pull the force climbs back (a negative fall); after the push it falls.
        relief = (fall - self._pull_fall) // 2
        self.relief_mn = relief
        self.tests += 1
        if relief >= self.open_mn:
            self.suspects = 0
            self.open_at = position_steps
            return OPEN
        self.suspects += 1
        if relief < self.blocked_mn or self.suspects >= 2:
            return BLOCKED
        self._due_ms = now_ms  # test again at once
        return SUSPECT

    def abort(self):
        """A fault stopped delivery mid-test: forget the test; ``owed`` keeps what the
        pull took and the push has not given back."""
        self._phase = _DONE
