"""The line test pulls the plunger back and pushes it forward again, and judges the line by
how the force relaxes after each move."""

from support import raises

from pump.core.line_test import BLOCKED, OPEN, SUSPECT, LineTest

SAMPLE_MS = 100
WATCH_MS = 3000
STEPS = 33


def new_test(**kw):
    args = dict(probe_steps=STEPS, watch_ms=WATCH_MS, open_mn=22, blocked_mn=11,
                interval_ms=180_000, bolus_interval_ms=30_000, settle_ms=4000,
                sample_ms=SAMPLE_MS)
    args.update(kw)
    return LineTest(**args)


def line(tau_ms, step_mn=2, kept_percent=0, base_mn=1500):
    """Force after a move for a line with time constant tau_ms (None: blocked). The move
    leaves ``step_mn`` per step of fluid force; the line lets it go but ``kept_percent``."""

    def force(moved_steps, since_ms):
        fluid = moved_steps * step_mn
        kept = fluid * kept_percent // 100
        going = fluid - kept
        if tau_ms is not None:
            # A first-order fall, in integers: halves every 0.7 tau.
            halvings = since_ms * 10 // (7 * tau_ms)
            going = going >> halvings if going >= 0 else -((-going) >> halvings)
        return base_mn + kept + going

    return force


def run_test(test, now, force_of, position=1000, drop=()):
    """Drive one whole test the way the app does; returns (verdict, now, moves)."""
    moves = []
    test.start(now)
    while test.running():
        steps = test.move(now)
        if steps:
            moves.append(steps)
            now += 10  # the motor's few milliseconds
            test.moved(now, steps)
            moved_at, moved = now, steps
            continue
        now = test.next_wake_ms()
        if test.watching():
            reading = None if (now - moved_at) in drop else force_of(moved, now - moved_at)
            verdict = test.sample(now, reading, position)
            if not test.running():
                return verdict, now, moves
    return None, now, moves


def test_the_pull_comes_first_and_the_push_returns_every_step():
    verdict, _now, moves = run_test(new_test(), 0, line(500))
    assert moves == [-STEPS, STEPS]
    assert verdict == OPEN


def test_an_open_line_relieves_the_pressure_of_each_move():
    test = new_test()
    verdict, _now, _moves = run_test(test, 0, line(500), position=4321)
    assert verdict == OPEN
    # 66 mN made by each move, nearly all gone by the end of the watch.
    assert 50 <= test.relief_mn <= 66
    assert test.open_at == 4321 and test.suspects == 0


def test_a_blocked_line_keeps_the_pressure_and_is_blocked_at_once():
    test = new_test()
    verdict, _now, _moves = run_test(test, 0, line(None))
    assert verdict == BLOCKED
    assert test.relief_mn == 0
    assert test.open_at is None


def test_a_weak_relief_is_suspect_and_tested_again_at_once_then_blocked():
    test = new_test()
    weak = line(400, kept_percent=70)  # 66 mN made, a third of it let go
    verdict, now, _moves = run_test(test, 0, weak)
    assert verdict == SUSPECT and 11 <= test.relief_mn < 22
    assert test.due(now, False)  # again at once, not in 3 minutes
    verdict, now, _moves = run_test(test, now, weak)
    assert verdict == BLOCKED


def test_a_suspect_test_followed_by_an_open_one_starts_the_count_again():
    test = new_test()
    verdict, now, _ = run_test(test, 0, line(400, kept_percent=70))
    assert verdict == SUSPECT
    verdict, now, _ = run_test(test, now, line(300))
    assert verdict == OPEN and test.suspects == 0
    verdict, now, _ = run_test(test, test.next_due_ms(), line(400, kept_percent=70))
    assert verdict == SUSPECT


def test_tests_fall_due_every_interval_while_basal_runs():
    test = new_test()
    assert test.due(0, False)  # the first at once
    _verdict, now, _ = run_test(test, 0, line(500))
    assert test.next_due_ms() == now + 180_000
    assert not test.due(now + 179_999, False)
    assert test.due(now + 180_000, False)


def test_a_bolus_is_tested_before_it_goes_out_and_every_30_s_of_it_after_a_settle():
    test = new_test()
    _verdict, now, _ = run_test(test, 0, line(500))
    test.bolus_started(now + 1000)
    assert test.due(now + 1000, True)
    _verdict, now, _ = run_test(test, now + 1000, line(500))
    test.bolus_ran(29_000)
    assert not test.due(now, True)
    test.bolus_ran(1000)
    assert test.due(now, True)
    test.start(now)
    # The flow's own pressure goes first: no move for the settle time.
    assert test.move(now) == 0 and test.move(now + 3999) == 0
    assert test.next_wake_ms() == now + 4000
    assert test.move(now + 4000) == -STEPS


def test_missing_readings_make_the_test_inconclusive_and_it_waits_for_the_interval():
    test = new_test()
    early = (SAMPLE_MS, 2 * SAMPLE_MS, 3 * SAMPLE_MS, 4 * SAMPLE_MS)
    late = tuple(range(WATCH_MS - 1500, WATCH_MS + 1, SAMPLE_MS))
    verdict, now, _ = run_test(test, 0, line(None), drop=late)
    assert verdict is None and test.relief_mn is None and test.tests == 0
    assert test.next_due_ms() == now + 180_000
    # Early readings lost are taken from the next ones: still judged.
    verdict, _now, _ = run_test(test, now + 180_000, line(None), drop=early[:1])
    assert verdict == BLOCKED


def test_a_test_cut_short_after_its_pull_owes_the_steps_it_took():
    test = new_test()
    test.start(0)
    test.moved(10, test.move(0))
    test.abort()
    assert not test.running() and test.owed == STEPS
    test.reset(20)  # a resume: still owed
    assert test.owed == STEPS and test.due(20, False)
    test.reset(30, owed_too=True)  # a back-off or a new reservoir placed the plunger anew
    assert test.owed == 0


def test_back_off_to_where_the_line_last_tested_open():
    test = new_test()
    run_test(test, 0, line(500), position=1000)
    run_test(test, 200_000, line(None), position=1090)
    assert test.open_at == 1000


def test_bad_settings_are_refused():
    raises(ValueError, new_test, probe_steps=0)
    raises(ValueError, new_test, watch_ms=1000)  # too short for its samples
    raises(ValueError, new_test, open_mn=10, blocked_mn=11)
    raises(ValueError, new_test, blocked_mn=0)
    raises(ValueError, new_test, interval_ms=0)
    raises(ValueError, new_test, settle_ms=-1)
