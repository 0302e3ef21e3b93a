"""Occlusion, judged from the plunger force against the volume pushed.

Pure logic. The app hands in the force on the plunger (mN) with the pusher's position
in motor steps, at rest before each pulse train and after it. The force is the line
pressure times the plunger area plus the stopper's friction. A blocked line adds the
same force with every step pushed (step volume over the line's compliance); the
friction does two other things, and the detector has one test for each:

- While the stopper slips on every step (a bolus, a smooth syringe) the friction is the
  sliding friction of the place on the barrel, which wanders slowly. The floor of the
  force over the newer half of a window of travel is compared with the older half's:
  a rise of ``rise_mn`` is a blocked line (the level test).
- While the stopper sticks between slips (slow basal on a sticky syringe) its rim
  shears and the force climbs by a fixed amount per step, much faster than a blocked
  line's pressure; then it slips back by up to a newton. Within the stretches between
  slips the climb per step is the rim's stiffness (plus the pressure's rise, if
  blocked), so the slope over the newer half is compared with the slope over the
  older half, each fitted within its stretches apart: a steeper climb by ``bend_mn``
  over the newer half is a blocked line (the bend test). Slips only split stretches.

Judging per volume, not per time, makes one rule work at 0.05 U/h and during a bolus.
A force above ``ceiling_mn`` (no friction is that high) is an occlusion at once.
A disconnected line is pump/core/disconnect.py's work.
"""

OCCLUDED = "occlusion"

# A fall of the force between neighbouring positions larger than this is a slip of the
# stopper: the slope fits start a new stretch there. Far above the load cell's noise.
SLIP_MN = 40
# After a slip the rubber's viscous part relaxes away for some tens of seconds: the force
# sags before the rim takes up the climb again. The fits skip the samples of this much
# travel and time after a slip.
SETTLE_STEPS = 3
SETTLE_MS = 15_000


class OcclusionDetector:
    """Floor and slope of the force over a window of travel, older half against newer.

    ``window_steps``: travel compared (steps); ``rise_mn``: floor rise that means a
    blocked line (0: off, the ceiling alone); ``ceiling_mn``: force that is an occlusion
    whatever came before;
    ``bend_mn``: rise over the newer half beyond the older half's slope that means a
    blocked line (0: off); ``bend_bolus_mn``: the same during a bolus (0: off).
    """

    def __init__(self, window_steps, rise_mn, ceiling_mn, bend_mn=0, bend_bolus_mn=0):
        if window_steps < 4 or rise_mn < 0 or ceiling_mn <= rise_mn:
            raise ValueError("occlusion detector: bad window or thresholds")
        self.window_steps = window_steps
        self.rise_mn = rise_mn
        self.ceiling_mn = ceiling_mn
        self.bend_mn = bend_mn
        self.bend_bolus_mn = bend_bolus_mn
        self._max_samples = window_steps + 2  # one per position at most
        self._bolus = False
        self._start = 0
        # After a reset the force first climbs to the sliding friction as the stopper
        # takes the load (at boot, after a back-off, a bolus's start or end): that rise
        # is not an occlusion. Judge only after this much travel.
        self.warmup_steps = 2 * window_steps
        self._positions = []
        self._forces = []
        self._stretches = []  # where the stretch between slips of each sample began (steps)
        self._stretch = 0
        self._stretch_ms = None  # type: int | None  # when the current stretch began
        self.floor_old_mn = None  # the two floors of the last judgement (for the record)
        self.floor_new_mn = None
        self.floor_old_at = None  # position of the older floor (steps)
        self.bend_now_mn = None  # the bend of the last judgement (mN over the newer half)
        self._relief_at = None

    def reset(self):
        """Forget the history (after a back-off, a resume or a reservoir change)."""
        self._positions = []
        self._forces = []
        self._stretches = []
        self.floor_old_mn = None
        self.floor_new_mn = None
        self.floor_old_at = None
        self.bend_now_mn = None
        self._relief_at = None

    def observe(self, position_steps, force_mn, bolus=False, now_ms=None):
        """Take one sample; returns OCCLUDED or None. ``now_ms`` (optional)
        lets the slope fits wait for the rubber to settle after a slip."""
        if force_mn >= self.ceiling_mn:
            self._relief_at = self.floor_old_at
            return OCCLUDED
        if bolus != self._bolus:
            # Flow starts or stops: the line pressure steps to a new level. Compare like
            # with like: a bolus with itself, basal with basal.
            self.reset()
            self._bolus = bolus
        positions = self._positions
        forces = self._forces
        stretches = self._stretches
        if positions and positions[-1] == position_steps:
            # One sample per position, its lowest force: at rest, once the rubber has
            # relaxed, and the floor is what the level test wants.
            if force_mn < forces[-1]:
                forces[-1] = force_mn
        else:
            if not positions:
                self._start = position_steps
                self._stretch = position_steps - SETTLE_STEPS
                self._stretch_ms = None
            elif force_mn < forces[-1] - SLIP_MN:
                self._stretch = position_steps
                self._stretch_ms = now_ms
            settled = position_steps - self._stretch >= SETTLE_STEPS and (
                now_ms is None or self._stretch_ms is None
                or now_ms - self._stretch_ms >= SETTLE_MS)
            positions.append(position_steps)
            forces.append(force_mn)
            stretches.append(self._stretch if settled else -1)
        oldest_needed = position_steps - self.window_steps
        # Keep one sample at or before the window's start, so the older half is full.
        while len(positions) > 2 and positions[1] <= oldest_needed:
            positions.pop(0)
            forces.pop(0)
            stretches.pop(0)
        if len(positions) > self._max_samples:
            positions.pop(0)
            forces.pop(0)
            stretches.pop(0)
        if positions[0] > oldest_needed or position_steps - self._start < self.warmup_steps:
            return None  # not yet a whole window of travel since the stopper took the load
        middle = position_steps - self.window_steps // 2
        floors = self._judge_floors(middle)
        if floors is None:
            return None
        floor_old, floor_new = floors
        bend_limit = self.bend_bolus_mn if bolus else self.bend_mn
        if not bend_limit:
            # The floor test alone, as the floors are.
            if self.rise_mn and floor_new - floor_old >= self.rise_mn:
                self._relief_at = self.floor_old_at
                return OCCLUDED
            return None
        half = position_steps - middle
        split = 0
        while split < len(positions) and positions[split] <= middle:
            split += 1
        old_xy, old_xx = self._fit(0, split)
        # Floors right after slips are the sliding friction plus the line's pressure: if
        # the stopper slipped in both halves, compare them as they are. Otherwise a
        # sticking stopper lifts the newer floor by its climb: expect that much more, and
        # without enough settled samples for the older slope, do not judge the floors.
        climb = 0
        if not self._slipped_in_both(split):
            if old_xx * 384 < half * half * half:
                return None
            if old_xy > 0:
                climb = old_xy * half // old_xx
        if self.rise_mn and floor_new - floor_old >= self.rise_mn + climb:
            self._relief_at = self.floor_old_at
            return OCCLUDED
        bend = self._bend(old_xy, old_xx, split, half)
        self.bend_now_mn = bend
        if bend is not None and bend >= bend_limit:
            # The climb steepened about a half window ago: back off to there.
            self._relief_at = middle - half // 2
            return OCCLUDED
        return None

    def _slipped_in_both(self, split):
        forces = self._forces
        older = newer = False
        for i in range(1, len(forces)):
            if forces[i] < forces[i - 1] - SLIP_MN:
                if i < split:
                    older = True
                else:
                    newer = True
        return older and newer

    def _judge_floors(self, middle):
        positions = self._positions
        forces = self._forces
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
        return floor_old, floor_new

    def _bend(self, old_xy, old_xx, split, half_steps):
        """How much more the force climbed over the newer half than the older half's slope
        (mN over ``half_steps``), each slope fitted within its stretches; None if a half
        holds too few samples for a slope."""
        new_xy, new_xx = self._fit(split, len(self._positions))
        # A slope from a few samples close together is noise: each half must hold at
        # least a quarter of the spread of a whole half of single steps (h^3 / 12).
        least = half_steps * half_steps * half_steps // 48
        if old_xx < least or new_xx < least or old_xx <= 0 or new_xx <= 0:
            return None
        return (new_xy * old_xx - old_xy * new_xx) * half_steps // (new_xx * old_xx)

    def _fit(self, first, end):
        """Least-squares sums (Sxy, Sxx) of samples first..end-1, pooled over stretches."""
        positions = self._positions
        forces = self._forces
        stretches = self._stretches
        base_x = positions[0]
        base_f = forces[0]
        sxy = sxx = 0
        n = sx = sy = sxx_raw = sxy_raw = 0
        current = None
        for i in range(first, end + 1):
            s = stretches[i] if i < end else None
            if s != current:
                if n > 1:  # close the stretch: its sums about its own means
                    sxx += sxx_raw - sx * sx // n
                    sxy += sxy_raw - sx * sy // n
                n = sx = sy = sxx_raw = sxy_raw = 0
                current = s
            if s is None:
                break
            if s < 0:
                continue  # the rubber was still settling after a slip
            x = positions[i] - base_x
            y = forces[i] - base_f
            n += 1
            sx += x
            sy += y
            sxx_raw += x * x
            sxy_raw += x * y
        return sxy, sxx

    def relief_from_steps(self):
        """Where the line was last open (steps): backing off to it returns everything pushed
        into the blocked line since. None before an occlusion was judged."""
        if self._relief_at is not None:
            return self._relief_at
        return self.floor_old_at
