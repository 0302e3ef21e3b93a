"""Key logic: debounce, short and long press, repeat with acceleration, lock chord, stuck key."""

from pump.core.keys import (
    BACK,
    DOWN,
    LOCK_TOGGLE,
    LONG,
    OK,
    PRESS,
    REPEAT,
    STUCK,
    STUCK_CLEARED,
    UP,
    Keypad,
    event_text,
)


def drive(pad, levels, until_ms, period_ms=15, start_ms=0):
    """Sample every period_ms from start_ms to until_ms (inclusive).

    levels: [(t_ms, mask)] in time order; the contacts show mask from t_ms on.
    Returns [(t_ms, event)] for every event popped after a sample.
    """
    out = []
    mask = 0
    i = 0
    t = start_ms
    while t <= until_ms:
        while i < len(levels) and levels[i][0] <= t:
            mask = levels[i][1]
            i += 1
        pad.update(t, mask)
        event = pad.pop()
        while event is not None:
            out.append((t, event))
            event = pad.pop()
        t += period_ms
    return out


def kinds(events):
    return [event_text(e) for _t, e in events]


def test_a_bouncing_contact_gives_one_press_and_a_glitch_gives_none():
    pad = Keypad()
    # Contact bounce on press (sampled every 5 ms), then held 200 ms, then bounce on release.
    bounce = [(0, UP), (5, 0), (10, UP), (15, 0), (20, UP), (200, 0), (205, UP), (210, 0)]
    events = drive(pad, bounce, 400, period_ms=5)
    assert kinds(events) == ["PRESS UP"], events
    # Pressed for good at 20 ms: counted once it held 30 ms.
    assert events[0][0] == 50
    # One sample of a closed contact (a spike under 30 ms) is no press at all.
    pad = Keypad()
    assert drive(pad, [(15, OK), (30, 0)], 2000) == []
    assert drive(Keypad(), [(15, DOWN), (30, 0)], 2000) == []


def test_ok_and_back_report_a_short_press_on_release():
    pad = Keypad()
    events = drive(pad, [(0, OK), (300, 0), (600, BACK), (700, 0)], 1500)
    assert kinds(events) == ["PRESS OK", "PRESS BACK"], events
    # On release, after the release too has held 30 ms.
    assert events[0][0] == 330
    assert events[1][0] == 735


def test_long_press_is_reported_once_while_held_and_no_press_follows():
    pad = Keypad()
    events = drive(pad, [(0, OK), (3000, 0)], 4000)
    assert kinds(events) == ["LONG OK"], events
    # Down from 30 ms (debounced), long after 1000 ms more; sampled every 15 ms.
    assert 1030 <= events[0][0] < 1045


def test_up_and_down_act_on_press_then_repeat_faster_with_a_growing_step():
    pad = Keypad()
    events = drive(pad, [(0, UP), (10_000, 0)], 10_500, period_ms=10)
    assert kinds(events[:1]) == ["PRESS UP"]
    pressed = events[0][0]
    assert pressed == 30
    repeats = [(t - pressed, e[2]) for t, e in events[1:]]
    assert all(e[0] == REPEAT and e[1] == UP for _t, e in events[1:]), events
    assert repeats[0] == (500, 1)
    times = [t for t, _s in repeats]
    gaps = [b - a for a, b in zip(times, times[1:])]
    slow = [g for t, g in zip(times[1:], gaps) if t <= 2000]
    fast = [g for t, g in zip(times[1:], gaps) if t > 2200]
    assert slow and set(slow) == {200}, gaps
    assert fast and set(fast) == {100}, gaps
    steps = dict(repeats)
    assert {s for t, s in repeats if t < 4000} == {1}
    assert {s for t, s in repeats if 4000 <= t < 8000} == {10}
    assert {s for t, s in repeats if t >= 8000} == {100}
    assert steps[repeats[-1][0]] == 100
    # Released: nothing more, and no PRESS on release for a value key.
    assert events[-1][0] <= 10_000


def test_a_late_sample_gives_one_repeat_not_a_burst():
    pad = Keypad()
    drive(pad, [(0, DOWN)], 600, period_ms=10)  # press at 30, first repeat at 530
    pad.update(2000, DOWN)  # the main loop was busy for 1.4 s
    assert pad.pop() == (REPEAT, DOWN, 1)
    assert pad.pop() is None
    assert pad.next_poll_ms(2000) == 2000 + Keypad.poll_ms


def test_back_and_ok_together_toggle_the_lock_once_without_press_or_long():
    pad = Keypad()
    # BACK first, OK 400 ms later; both held 3 s; released one after the other.
    events = drive(pad, [(0, BACK), (400, BACK | OK), (3400, OK), (3600, 0)], 5000)
    assert kinds(events) == ["LOCK_TOGGLE OK+BACK"], events
    assert events[0][1] == (LOCK_TOGGLE, OK | BACK, 0)
    # OK debounced at 430: the chord counts 1 s from there.
    assert 1430 <= events[0][0] < 1445
    # A chord released early is neither a lock toggle nor a press.
    pad = Keypad()
    assert drive(pad, [(0, OK | BACK), (500, 0)], 2000) == []
    # After the chord, a plain OK press works again.
    events = drive(pad, [(2100, OK), (2300, 0)], 3000, start_ms=2010)
    assert kinds(events) == ["PRESS OK"]


def test_a_key_held_a_minute_is_stuck_then_ignored_until_released():
    pad = Keypad()
    events = drive(pad, [(0, UP), (150_000, 0)], 151_000, period_ms=15)
    stuck = [(t, e) for t, e in events if e[0] == STUCK]
    assert len(stuck) == 1, kinds(events)
    assert 60_030 <= stuck[0][0] < 60_045
    after = [e for t, e in events if t > stuck[0][0]]
    assert after == [(STUCK_CLEARED, UP, 0)], after
    assert pad.stuck() == 0 and pad.down() == 0
    # Another key keeps working while one is stuck.
    pad = Keypad()
    events = drive(pad, [(0, BACK), (61_000, BACK | OK), (61_300, BACK)], 62_000)
    assert kinds(events) == ["LONG BACK", "STUCK BACK", "PRESS OK"], events
    assert pad.stuck() == BACK


def test_polling_is_needed_only_while_a_key_is_down_or_settling():
    pad = Keypad()
    assert pad.next_poll_ms(0) is None  # all up: sleep until a pin edge
    pad.update(1000, OK)  # woken by the edge
    assert pad.next_poll_ms(1000) == 1015
    assert pad.next_poll_ms(1020) == 1020  # overdue: sample now
    pad.update(1015, OK)
    pad.update(1030, OK)
    assert pad.down() == OK
    assert pad.next_poll_ms(1030) == 1045
    pad.update(1045, 0)
    assert pad.next_poll_ms(1045) == 1060  # the release is settling
    pad.update(1075, 0)
    assert pad.next_poll_ms(1075) == 1075  # a PRESS waits to be taken
    assert pad.pop() == (PRESS, OK, 1)
    assert pad.next_poll_ms(1075) is None
    # A stuck key alone is checked slowly, for its release.
    drive(pad, [(2000, DOWN)], 63_000, start_ms=2000)
    assert pad.stuck() == DOWN
    pad.update(63_000, DOWN)
    assert pad.next_poll_ms(63_000) == 63_000 + Keypad.stuck_poll_ms


def test_an_idle_day_needs_no_samples_and_a_full_queue_counts_what_it_drops():
    pad = Keypad()
    polls = 0
    t = 0
    while t is not None and t < 86_400_000:
        polls += 1
        pad.update(t, 0)
        t = pad.next_poll_ms(t)
    assert polls == 1
    # Nobody takes the events: the queue keeps the first ones and counts the rest.
    pad = Keypad()
    t = 0
    for _ in range(6):
        for mask in (UP, UP, UP, 0, 0, 0):
            pad.update(t, mask)
            t += 15
    assert pad.dropped == 0
    for _ in range(6):
        for mask in (UP, UP, UP, 0, 0, 0):
            pad.update(t, mask)
            t += 15
    assert pad.dropped == 12 - Keypad.queue_size
    assert pad.pop() == (PRESS, UP, 1)


def test_long_is_only_for_ok_and_back():
    pad = Keypad()
    events = drive(pad, [(0, BACK), (1500, 0), (2000, DOWN), (3200, 0)], 4000)
    names = kinds(events)
    assert names[0] == "LONG BACK"
    assert "LONG DOWN" not in names and names[1] == "PRESS DOWN"
    assert events[0][1] == (LONG, BACK, 0)
