"""The disconnect watch raises its verdict when, during a bolus, the force falls below its
steady sliding trend, and not for the stick-slip of the stopper or friction's slope."""

from support import raises

from pump.core.disconnect import DisconnectWatch

TRAIN_STEPS = 8
TRAIN_MS = 500


def new_watch(**kw):
    args = dict(drop_mn=65, fit_samples=10, slope_mn_per_100=250, scatter_mn=25, gap_ms=1500)
    args.update(kw)
    return DisconnectWatch(**args)


def noise(seed):
    """Deterministic noise of about +-10 mN (a small LCG, the same on every interpreter)."""
    state = [seed]

    def next_mn():
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] % 21 - 10

    return next_mn


def bolus(watch, force_of, trains, start_ms=0, start_pos=0, reads=2, bolus_flag=True):
    """Feed ``trains`` bolus trains the way the app reads them (before and after each);
    returns the train at which the watch first said disconnected, or None."""
    for k in range(trains):
        t = start_ms + k * TRAIN_MS
        pos = start_pos + k * TRAIN_STEPS
        for _ in range(reads):
            if watch.observe(t, pos, force_of(k, pos), bolus_flag):
                return k
    return None


def sliding(slope_mn_per_100=80, seed=1, base_mn=1500):
    jitter = noise(seed)
    return lambda k, pos: base_mn + pos * slope_mn_per_100 // 100 + jitter()


def test_steady_sliding_with_a_wandering_friction_is_no_disconnection():
    for seed, slope in ((1, -150), (2, -60), (3, 0), (4, 60), (5, 150)):
        assert bolus(new_watch(), sliding(slope, seed), 300) is None


def test_back_pressure_gone_in_the_middle_of_a_bolus_is_found_within_two_trains():
    base = sliding(-60, seed=3)

    def force(k, pos):
        gone = 0 if k < 40 else 118 - 118 * (k == 40) // 2  # half of it within the train
        return base(k, pos) - gone

    assert bolus(new_watch(), force, 200) in (40, 41)


def test_a_smaller_fall_than_the_threshold_is_not_a_disconnection():
    base = sliding(0, seed=4)
    assert bolus(new_watch(), lambda k, pos: base(k, pos) - (40 if k >= 40 else 0), 200) is None


def test_the_slip_after_the_stoppers_climb_is_not_a_disconnection():
    jitter = noise(5)

    def stick_slip(k, pos):
        # After a rest the rim shears: 5 mN a step for 25 trains, then slips back 1 N.
        climb = pos * 5 if k < 25 else 0
        return 1500 + climb + jitter()

    assert bolus(new_watch(), stick_slip, 120) is None


def test_a_fall_over_a_pause_is_not_judged():
    watch = new_watch()
    base = sliding(0, seed=6)
    assert bolus(watch, base, 30) is None
    # A line test's rest (10 s): the force after it is lower, but the stopper stuck.
    assert bolus(watch, lambda k, pos: base(k, pos) - 300, 5, start_ms=25_000,
                 start_pos=30 * TRAIN_STEPS) is None


def test_a_move_back_starts_a_new_run():
    watch = new_watch()
    base = sliding(0, seed=7)
    assert bolus(watch, base, 30) is None
    assert bolus(watch, lambda k, pos: base(k, pos) - 300, 5, start_ms=15_000,
                 start_pos=29 * TRAIN_STEPS - 33) is None


def test_nothing_is_judged_outside_a_bolus():
    base = sliding(0, seed=8)
    force = lambda k, pos: base(k, pos) - (300 if k >= 40 else 0)  # noqa: E731
    assert bolus(new_watch(), force, 100, bolus_flag=False) is None


def test_the_lower_of_two_reads_at_one_position_is_judged():
    watch = new_watch()
    base = sliding(0, seed=9)
    assert bolus(watch, base, 20, reads=1) is None
    pos = 20 * TRAIN_STEPS
    assert watch.observe(10_000, pos, 1500, True) is False
    assert watch.observe(10_010, pos, 1400, True) is True
    assert watch.drop_now_mn >= 65


def test_reset_forgets_the_run():
    watch = new_watch()
    base = sliding(0, seed=10)
    assert bolus(watch, base, 20) is None
    watch.reset()
    assert watch.drop_now_mn is None
    assert watch.observe(10_000, 20 * TRAIN_STEPS, 1200, True) is False


def test_bad_settings_are_refused():
    for kw in (dict(drop_mn=0), dict(fit_samples=2), dict(slope_mn_per_100=0),
               dict(scatter_mn=0), dict(gap_ms=0)):
        raises(ValueError, new_watch, **kw)
