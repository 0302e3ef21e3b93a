"""The occlusion detector judges the floor of the plunger force against the volume pushed."""

from support import raises

from pump.core.occlusion import DISCONNECTED, OCCLUDED, OcclusionDetector


def sawtooth(position, base=1000, shear=12, cycle=40):
    """Stick-slip in an open line: the force climbs while the stopper sticks, then slips back."""
    return base + shear * (position % cycle)


def feed(detector, positions, force_of, bolus=False):
    for p in positions:
        verdict = detector.observe(p, force_of(p), bolus)
        if verdict is not None:
            return p, verdict
    return None, None


def test_stick_slip_in_an_open_line_is_not_an_occlusion():
    det = OcclusionDetector(window_steps=100, rise_mn=150, ceiling_mn=8000)
    assert feed(det, range(0, 5000), sawtooth) == (None, None)


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


def test_a_force_no_friction_reaches_is_an_occlusion_at_once():
    det = OcclusionDetector(window_steps=100, rise_mn=150, ceiling_mn=8000)
    assert det.observe(0, 8000) == OCCLUDED


def test_the_climb_to_sliding_friction_after_a_reset_is_not_judged():
    det = OcclusionDetector(window_steps=100, rise_mn=150, ceiling_mn=8000)
    # From no load to the sliding friction over the first 100 steps.
    assert feed(det, range(0, 400), lambda p: min(p, 100) * 7 + 100) == (None, None)


def test_bolus_and_basal_are_judged_apart():
    det = OcclusionDetector(window_steps=100, rise_mn=150, ceiling_mn=8000)
    feed(det, range(0, 400), sawtooth)
    # A bolus's flow pressure lifts the whole force: a step, not a climb, so no alarm.
    assert feed(det, range(400, 900), lambda p: sawtooth(p) + 400, bolus=True) == (None, None)


def test_a_floor_that_falls_during_a_bolus_is_a_disconnection_when_enabled():
    det = OcclusionDetector(window_steps=100, rise_mn=150, ceiling_mn=8000, drop_mn=200)

    def force(p):
        return sawtooth(p) + (500 if p < 700 else 0)  # the line's back-pressure is gone

    at, verdict = feed(det, range(0, 2000), force, bolus=True)
    assert verdict == DISCONNECTED and 700 <= at <= 800


def test_bad_settings_are_refused():
    raises(ValueError, OcclusionDetector, 3, 150, 8000)
    raises(ValueError, OcclusionDetector, 100, 0, 8000)
    raises(ValueError, OcclusionDetector, 100, 150, 100)
