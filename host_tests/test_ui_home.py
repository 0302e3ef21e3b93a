"""The home screen in a person's units, and the bolus screen's finish time: the time the
bolus really ends, line tests and all, not the time its set speed alone would give."""

import re

from pump.core import events as ev
from sim.pump import SimPump

MIN_MS = 60_000


def booted(**kw):
    sim = SimPump(start_ms_of_day=8 * 3_600_000, **kw)
    sim.run_until(1000)
    return sim


def test_home_shows_every_figure_with_its_unit():
    sim = booted()
    screen = sim.screen_text()
    assert "Basal  0.80 U/h" in screen, screen
    assert re.search(r"Res +\d+\.\d\d U", screen), screen
    assert "IOB    0.00 U" in screen, screen
    assert sim.app.temp_basal(0, 50, 30 * MIN_MS) is None  # 50 % for 30 min
    sim.run_until(sim.now_ms() + 1000)
    assert "Temp   0.40 U/h" in sim.screen_text(), sim.screen_text()


def _shown_end(sim):
    match = re.search(r"Ends +(\d\d):(\d\d):(\d\d)", sim.screen_text())
    assert match, sim.screen_text()
    h, m, s = (int(g) for g in match.groups())
    return ((h * 60 + m) * 60 + s) * 1000


def _finished_at(sim, limit_ms):
    deadline = sim.now_ms() + limit_ms
    while sim.app.therapy.bolus is not None and sim.now_ms() < deadline:
        sim.run_until(sim.now_ms() + 500)
    done = [e for e in sim.events if e[2] == ev.BOLUS_FINISHED]
    assert done, "the bolus did not finish"
    return sim.app.therapy.ms_of_day(done[-1][1])


def test_the_bolus_screen_says_when_the_bolus_really_ends_with_the_line_tests():
    sim = booted()
    assert sim.app.line_test is not None  # the default board tests the line during a bolus
    assert sim.app.bolus("normal", 2000) is None  # 2 U at 1.5 U/min: 80 s at the set speed
    sim.run_until(sim.now_ms() + 1000)
    shown = _shown_end(sim)
    started = sim.app.therapy.ms_of_day(sim.app.now_ms())
    assert "Bolus" in sim.screen_text() and "/2.00U" in sim.screen_text()
    finished = _finished_at(sim, 10 * MIN_MS)
    assert finished - started > 85_000  # slower than the set speed alone
    assert abs(finished - shown) <= 10_000, (finished - started, shown - started)


def test_without_line_tests_the_bolus_ends_at_its_set_speed():
    sim = booted(line_test=False)
    assert sim.app.bolus("normal", 1000) is None  # 40 s at 1.5 U/min
    sim.run_until(sim.now_ms() + 1000)
    shown = _shown_end(sim)
    finished = _finished_at(sim, 5 * MIN_MS)
    assert abs(finished - shown) <= 3_000


def test_the_bolus_confirm_on_the_keys_says_how_long_it_takes():
    sim = booted()
    for key in ("OK", "OK"):
        sim.press(key)
    for _ in range(39):
        sim.press("UP")  # 0.05 U + 39 x 0.05 U = 2.00 U
    sim.press("OK")
    screen = sim.screen_text()
    assert "Bolus 2.00 U" in screen and "at 1.5 U/min" in screen, screen
    match = re.search(r"takes (\d+):(\d\d) min", screen)
    assert match, screen
    said_s = int(match.group(1)) * 60 + int(match.group(2))
    assert said_s > 80  # longer than 2 U at 1.5 U/min alone: the line tests' pauses
    sim.press("OK")
    started = sim.app.now_ms()
    while sim.app.therapy.bolus is not None:
        sim.run_until(sim.now_ms() + 500)
    took_s = (sim.app.now_ms() - started) / 1000
    assert abs(took_s - said_s) <= 10, (took_s, said_s)
