"""Occlusion and disconnection, judged from the plunger force against the volume pushed.

Pure logic. The app hands in the force on the plunger (mN) with the pusher's position
in motor steps, at rest before each pulse train and after it. The force is the line
pressure times the plunger area plus the stopper's friction. Friction changes with
the position along the barrel and saws up and down as the stopper sticks and slips,
but it has a floor: each time the stopper slips, the force falls back to the sliding
friction plus the line pressure. In an open line that floor follows the barrel; in a
blocked line the pressure under it climbs with every step pushed (step volume over
the line's compliance). So the detector compares the floor of the force over the
newer half of a window of travel with the floor over the older half. Judging per
volume, not per time, makes one rule work at 0.05 U/h and during a quick bolus.

A force above ``ceiling_mn`` (no friction is that high) is an occlusion at once, and
a floor that falls by ``drop_mn`` during a bolus is a disconnected or leaking line.
"""

OCCLUDED = "occlusion"
DISCONNECTED = "disconnected"



class OcclusionDetector:
    """Floor of the force over a window of travel, older half against newer half.

    ``window_steps``: travel compared (steps); ``rise_mn``: floor rise that means a
    blocked line; ``ceiling_mn``: force that is an occlusion whatever came before;
    ``drop_mn``: floor fall during a bolus that means the line came off (0: off).
    """

    def __init__(self, window_steps, rise_mn, ceiling_mn, drop_mn=0):
        if window_steps < 4 or rise_mn <= 0 or ceiling_mn <= rise_mn:
            raise ValueError("occlusion detector: bad window or thresholds")
        self.window_steps = window_steps
        self.rise_mn = rise_mn
        self.ceiling_mn = ceiling_mn
        self.drop_mn = drop_mn
        self._max_samples = window_steps + 2  # one per position at most
        self._bolus = False
        self._start = 0
        # After a reset the force first climbs to the sliding friction as the stopper
        # takes the load (at boot, after a back-off, a bolus's start or end): that rise
        # is not an occlusion. Judge only after this much travel.
        self.warmup_steps = 2 * window_steps
        self._positions = []
        self._forces = []
        self.floor_old_mn = None  # the two floors of the last judgement (for the record)
        self.floor_new_mn = None
        self.floor_old_at = None  # position of the older floor (steps)

    def reset(self):
        """Forget the history (after a back-off, a resume or a reservoir change)."""
        self._positions = []
        self._forces = []
        self.floor_old_mn = None
        self.floor_new_mn = None
        self.floor_old_at = None

    def observe(self, position_steps, force_mn, bolus=False):
        """Take one sample; returns OCCLUDED, DISCONNECTED or None."""
        if force_mn >= self.ceiling_mn:
            return OCCLUDED
        if bolus != self._bolus:
            # Flow starts or stops: the line pressure steps to a new level. Compare like
            # with like: a bolus with itself, basal with basal.
            self.reset()
            self._bolus = bolus
        positions = self._positions
        forces = self._forces
        if positions and positions[-1] == position_steps:
            # Only the floor matters: keep the lowest force seen at each position.
            if force_mn < forces[-1]:
                forces[-1] = force_mn
        else:
            if not positions:
                self._start = position_steps
            positions.append(position_steps)
            forces.append(force_mn)
        oldest_needed = position_steps - self.window_steps
        # Keep one sample at or before the window's start, so the older half is full.
        while len(positions) > 2 and positions[1] <= oldest_needed:
            positions.pop(0)
            forces.pop(0)
        if len(positions) > self._max_samples:
            positions.pop(0)
            forces.pop(0)
        if positions[0] > oldest_needed or position_steps - self._start < self.warmup_steps:
            return None  # not yet a whole window of travel since the stopper took the load
        middle = position_steps - self.window_steps // 2
        floor_old = None
        floor_new = None
        floor_old_at = None
        for i in range(len(positions)):
            f = forces[i]
            if positions[i] <= middle:
                if floor_old is None or f < floor_old:
                    floor_old = f
                    floor_old_at = positions[i]
            elif floor_new is None or f < floor_new:
                floor_new = f
        if floor_old is None or floor_new is None:
            return None
        self.floor_old_mn = floor_old
        self.floor_new_mn = floor_new
        self.floor_old_at = floor_old_at
        if floor_new - floor_old >= self.rise_mn:
            return OCCLUDED
        if bolus and self.drop_mn and floor_old - floor_new >= self.drop_mn:
            return DISCONNECTED
        return None

    def relief_from_steps(self):
        """Where the force was last at its floor (steps): the line was open up to there, so
        backing off to it returns everything pushed since. None before a judgement."""
        return self.floor_old_at
