"""The occlusion detector judges the floor and the slope of the plunger force against the
volume pushed."""

from support import raises

from pump.core.occlusion import OCCLUDED, OcclusionDetector


def sawtooth(position, base=1000, shear=12, cycle=40):
    """Stick-slip in an open line: the force climbs while the stopper sticks, then slips back."""
    return base + shear * (position % cycle)


def long_stick(position, base=2000, shear=5, cycle=250):
    """A sticky stopper at slow basal: a long climb of 5 mN a step, then a slip of 1.25 N."""
    return base + shear * (position % cycle)


def feed(detector, positions, force_of, bolus=False):
    for p in positions:
        verdict = detector.observe(p, force_of(p), bolus)
        if verdict is not None:
            return p, verdict
    return None, None


def basal_detector(**kw):
    return OcclusionDetector(window_steps=100, rise_mn=400, ceiling_mn=8000, bend_mn=60, **kw)


def test_stick_slip_in_an_open_line_is_not_an_occlusion():
    det = basal_detector()
    assert feed(det, range(0, 5000), sawtooth) == (None, None)
    det = basal_detector()
    assert feed(det, range(0, 5000), long_stick) == (None, None)


def test_a_blocked_line_is_found_from_the_rising_floor_within_a_window_after_warm_up():
    det = OcclusionDetector(window_steps=100, rise_mn=150, ceiling_mn=8000)
    onset = 1000
    per_step = 3  # mN of line pressure per step pushed into the blocked line

    def force(p):
        return sawtooth(p) + max(0, p - onset) * per_step

    at, verdict = feed(det, range(0, 5000), force)
    assert verdict == OCCLUDED
    # The newer half's floor must rise 150 mN over the older one: within a window of travel.
    assert onset < at <= onset + 100 + 150 // per_step
    # Backing off to where the older floor was returns all that was pushed since the onset.
    assert det.relief_from_steps() <= onset


def test_a_blocked_line_under_a_sticking_stopper_is_found_from_the_steeper_climb():
    # The rim climbs 5 mN a step and slips every 250 steps, far more than the line's
    # 1.7 mN a step: the floor test alone would wait for the slips.
    onset = 1130
    per_step = 1.7

    def force(p):
        return long_stick(p) + int(max(0, p - onset) * per_step)

    det = basal_detector()
    at, verdict = feed(det, range(0, 5000), force)
    assert verdict == OCCLUDED
    # 60 mN over the newer half of 50 steps needs 1.2 mN a step more: found within
    # about a window of travel after the onset, slips or not.
    assert onset < at <= onset + 100
    # The back-off reaches back to the onset, so reopening releases nothing stored.
    assert det.relief_from_steps() <= onset
    # The floor test alone, set above the rim's climb, needs far longer.
    det = OcclusionDetector(window_steps=100, rise_mn=400, ceiling_mn=8000)
    late, _ = feed(det, range(0, 5000), force)
    assert late is None or late > at + 50


def test_slips_split_the_fit_so_a_slip_is_never_a_bend():
    det = basal_detector()
    # Slips at random-looking places and heights.
    def force(p):
        return 2000 + 5 * ((p * 7) % 173) + (p // 173) * 3

    assert feed(det, range(0, 3000), force) == (None, None)


def test_a_force_no_friction_reaches_is_an_occlusion_at_once():
    det = OcclusionDetector(window_steps=100, rise_mn=150, ceiling_mn=8000)
    assert det.observe(0, 8000) == OCCLUDED


def test_the_climb_to_sliding_friction_after_a_reset_is_not_judged():
    det = basal_detector()
    # From no load to the sliding friction over the first 100 steps.
    assert feed(det, range(0, 400), lambda p: min(p, 100) * 7 + 100) == (None, None)


def test_bolus_and_basal_are_judged_apart():
    det = basal_detector()
    feed(det, range(0, 400), sawtooth)
    # A bolus's flow pressure lifts the whole force: a step, not a climb, so no alarm.
    assert feed(det, range(400, 900), lambda p: sawtooth(p) + 400, bolus=True) == (None, None)


def test_bad_settings_are_refused():
    raises(ValueError, OcclusionDetector, 3, 150, 8000)
    raises(ValueError, OcclusionDetector, 100, -1, 8000)
    raises(ValueError, OcclusionDetector, 100, 150, 100)
