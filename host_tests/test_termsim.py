"""The terminal simulator (tools/termsim.py) driven headless through textual's own Pilot."""

import argparse
import asyncio
import os
import sys

import pytest

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")
sys.path.insert(0, TOOLS)

import simulate  # noqa: E402
import termsim  # noqa: E402
from sim.pump import SimPump  # noqa: E402


class WallClock:
    """Wall time that moves only when the test says so (or by ``per_read`` on every look)."""

    def __init__(self, per_read=0.0):
        self.t = 100.0
        self.per_read = per_read

    def __call__(self):
        self.t += self.per_read
        return self.t


def session(speed=1, wall=None, pump=None):
    return termsim.SimSession(pump or SimPump(start_ms_of_day=7 * 3_600_000), speed,
                              wall or WallClock())


def drive(test, sim_session, size=termsim.SCREENSHOT_SIZE):
    """Run ``test(app, pilot)`` (a coroutine function) against the app, headless."""

    async def main():
        app = termsim.TermSim(sim_session, ticking=False)
        async with app.run_test(size=size) as pilot:
            await test(app, pilot)

    asyncio.run(main())


async def tick(app, pilot, wall_s):
    """Let ``wall_s`` of wall time pass, then one tick of the app."""
    app.session._wall.t += wall_s
    app.step()
    await pilot.pause()


def oled(app):
    return app.query_one("#oled", termsim.OledView).frame


def test_half_blocks_put_two_pixel_rows_in_each_character_cell():
    pixels = [[0, 1, 0, 1], [0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]]
    assert termsim.half_blocks(pixels) == " \u2580\u2584\u2588\n\u2580\u2580\u2580\u2580"


def test_the_oled_shows_the_home_screen_and_ok_opens_the_menu():
    async def test(app, pilot):
        await tick(app, pilot, 1.0)
        pump = app.session.pump
        frame = oled(app)
        lines = frame.split("\n")
        assert len(lines) == 32 and all(len(line) == 128 for line in lines)
        assert frame == termsim.half_blocks(pump.screen_pixels())
        assert "Delivering" in pump.screen_text()
        await pilot.press("enter")
        await tick(app, pilot, 0.5)
        assert "Menu" in pump.screen_text(), pump.screen_text()
        assert oled(app) != frame and oled(app) == termsim.half_blocks(pump.screen_pixels())
        await pilot.press("escape")
        await tick(app, pilot, 0.5)
        assert oled(app) == frame  # BACK: home again

    drive(test, session())


def test_arrow_keys_move_through_the_menu():
    async def test(app, pilot):
        await tick(app, pilot, 1.0)
        await pilot.press("enter")
        await tick(app, pilot, 0.5)
        first = oled(app)
        await pilot.press("down")
        await tick(app, pilot, 0.5)
        assert oled(app) != first
        await pilot.press("up")
        await tick(app, pilot, 0.5)
        assert oled(app) == first

    drive(test, session())


@pytest.mark.slow
def test_an_occlusion_shows_as_an_alarm_in_the_panel_and_on_the_oled():
    async def test(app, pilot):
        await tick(app, pilot, 1.0)
        await pilot.press("o")
        assert "Line occluded" in app.panel_text()
        await pilot.press("3")
        assert app.session.speed == 3600
        await tick(app, pilot, 0.6)  # 36 min of basal into a closed line
        panel = app.panel_text()
        assert "Alarm Occlusion: no delivery" in panel, panel
        assert "Basal suspended: occlusion" in panel, panel
        assert "ALARM (high) Occlusion" in app.events_text()
        assert "FAULT Occlusion" in app.events_text()
        assert "Occlusion" in app.session.pump.screen_text()
        await pilot.press("c")
        assert "Line open" in app.panel_text()

    drive(test, session())


def test_speed_keys_set_1x_60x_3600x_and_space_pauses():
    async def test(app, pilot):
        pump = app.session.pump
        await pilot.press("2")
        assert "Speed 60x" in app.panel_text()
        start = pump.now_ms()
        await tick(app, pilot, 1.0)
        assert pump.now_ms() - start == 60_000
        await pilot.press("3")
        await tick(app, pilot, 0.125)
        assert pump.now_ms() - start == 60_000 + 450_000
        await pilot.press("space")
        assert "Speed paused" in app.panel_text()
        stopped = pump.now_ms()
        await tick(app, pilot, 1.0)
        assert pump.now_ms() == stopped
        await pilot.press("1")
        await tick(app, pilot, 1.0)
        assert pump.now_ms() == stopped + 1000

    drive(test, session())


def test_a_pump_key_at_3600x_slows_time_to_1x_so_menus_stay_open():
    async def test(app, pilot):
        await pilot.press("3")
        await tick(app, pilot, 0.1)
        await pilot.press("enter")
        assert app.session.speed == 1
        await tick(app, pilot, 1.0)
        assert "Menu" in app.session.pump.screen_text()

    drive(test, session())


def test_a_host_that_cannot_keep_up_is_shown_not_hidden():
    # Every look at the wall clock costs 20 ms: a slow host. 3600x cannot be reached.
    wall = WallClock(per_read=0.02)
    slow = session(speed=3600, wall=wall)
    for _ in range(60):
        slow.advance()
    assert slow.behind
    assert slow.reached_speed < 3600 * 0.9
    text = str(slow.speed_text())
    assert "cannot keep up" in text and "3600x" in text
    assert slow.gave_up_ms > 0  # the backlog is given up, not run at full speed later


def test_a_host_that_keeps_up_shows_no_warning():
    steady = session(speed=60)
    for _ in range(20):
        steady._wall.t += 0.05
        steady.advance()
    assert not steady.behind and "cannot" not in str(steady.speed_text())
    assert steady.reached_speed == pytest.approx(60, rel=0.01)


def test_low_battery_key_reaches_the_firmware():
    async def test(app, pilot):
        await tick(app, pilot, 1.0)
        await pilot.press("b")
        assert "Battery 3.50 V" in app.panel_text()
        await pilot.press("2")
        await tick(app, pilot, 2.0)  # two minutes: the battery is read at least once a minute
        assert "battery low" in app.events_text(), app.events_text()
        await pilot.press("b")
        await tick(app, pilot, 2.0)
        assert "battery depleted" in app.events_text()
        assert "FAULT Battery depleted" in app.events_text()

    drive(test, session())


class PumpWithoutPower(SimPump):
    power_loss = None


def test_power_cut_says_not_available_without_the_simulators_power_loss():
    async def test(app, pilot):
        await pilot.press("x")
        assert "power cut: not available" in app.query_one("#panel").render().plain

    drive(test, session(pump=PumpWithoutPower()))


@pytest.mark.skipif(not hasattr(SimPump, "power_loss"), reason="SimPump.power_loss not there")
def test_power_cut_restarts_the_firmware_as_the_command_line_builds_it():
    args = argparse.Namespace(board="pico_default", start="07:00", speed=1, seed=0)

    async def test(app, pilot):
        await tick(app, pilot, 1.0)
        booted = app.session.pump.app
        await pilot.press("x")
        await tick(app, pilot, 1.0)
        assert app.session.pump.app is not booted
        assert "power cut for 5 s" in app.session.notice
        assert "restart: power on" in app.events_text()
        assert "cause=" not in app.events_text() and "wall_s" not in app.events_text()
        assert "Running 0:00:07" in app.panel_text()  # 1 s, 5 s without power, 1 s

    drive(test, termsim.build_session(args, WallClock()))


def test_deliveries_keep_the_time_they_were_given_across_a_power_cut():
    args = argparse.Namespace(board="pico_default", start="07:00", speed=1, seed=0)
    live = termsim.build_session(args, WallClock())
    live.run_for(10 * 60_000)
    before = list(live.deliveries)
    assert before and all(7 * 3_600_000 <= t < 7 * 3_600_000 + 10 * 60_000
                          for t, _k, _s, _mu in before)
    live.power_cut()
    live.run_for(60_000)
    after = list(live.deliveries)
    # The rows from before the cut still carry their own times, not the rebooted pump's.
    for row in before[-3:]:
        assert row in after
    shown = "\n".join(live.delivery_lines())
    assert "1 steps  0.0015 U" in shown, shown  # one step is 1.4725 mU


def test_a_held_key_repeats_up_to_the_firmware_s_x10_and_x100_steps():
    wall = WallClock()
    held = session(wall=wall)
    held.run_for(2000)
    held.paused = True
    held.press("OK")  # the menu, 'Bolus' first
    held.press("OK")  # the amount editor, from 0.05 U
    held.paused = False
    held._last_key = (None, 0.0)
    # The terminal sends UP, then after its delay 30 repeats a second, for 9 s.
    held.key_event("UP")
    wall.t += 0.5
    held.advance()
    for _ in range(int(9 / 0.033)):
        held.key_event("UP")
        wall.t += 0.033
        held.advance()
    wall.t += 0.5
    held.advance()
    assert held._held is None  # let go once the repeats stopped
    editor = held.pump.app.ui.top()
    # Held for 9 s, the firmware's own repeat (5 a second, then 10, then x10 after 4 s and
    # x100 after 8 s) takes the amount from 0.05 U to the 10 U max bolus: 200 steps of
    # 0.05 U that single steps at its repeat rate could not reach in 9 s.
    assert editor.value == 10_000, editor.value


def test_separate_presses_stay_single_steps():
    wall = WallClock()
    taps = session(wall=wall)
    taps.run_for(2000)
    taps.paused = True
    taps.press("OK")
    taps.press("OK")
    taps.paused = False
    for _ in range(3):
        taps.key_event("UP")
        wall.t += 0.4  # a person's pace: slower than a terminal's repeat
        taps.advance()
    wall.t += 1.0
    taps.advance()
    assert taps.pump.app.ui.top().value == 200  # 0.05 U and three steps of 0.05 U


def test_the_session_log_is_written_in_words(tmp_path):
    live = session()
    live.run_for(60_000)
    live.occlude()
    live.run_for(5 * 60_000)
    path = live.write_log(str(tmp_path), stamp="test")
    text = open(path).read()
    assert path.endswith("session-test.log")
    assert "self-test passed" in text
    assert "basal rate now 0.80 U/h" in text
    assert "_mu" not in text and "cause=" not in text


def test_command_line_values_are_checked_with_one_line_and_status_2(capsys):
    for argv in (["--start", "25:00"], ["--board", "nosuch"], ["--speed", "7"],
                 ["--seed", "abc"]):
        with pytest.raises(SystemExit) as info:
            termsim.main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and argv[0] in err, err


@pytest.mark.slow
def test_the_screenshot_shows_an_occlusion_during_a_bolus(tmp_path):
    path = tmp_path / "sim.svg"
    asyncio.run(termsim.save_screenshot([str(path)], session()))
    svg = path.read_text()
    assert svg.startswith("<svg") and "occlusion" in svg and "Last&#160;deliveries" in svg


def test_make_sim_runs_the_terminal_only_on_a_terminal():
    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    def args(*argv):
        parsed = argparse.Namespace(scenario=None, out=None, headless=False)
        for name in argv:
            setattr(parsed, name, True if name == "headless" else "x")
        return parsed

    tty, pipe = Stream(True), Stream(False)
    assert simulate.interactive(args(), tty, tty)
    assert not simulate.interactive(args(), pipe, tty)  # make sim </dev/null
    assert not simulate.interactive(args(), tty, pipe)  # make sim | less, CI logs
    assert not simulate.interactive(args("scenario"), tty, tty)  # make sim ARGS=day.toml
    assert not simulate.interactive(args("out"), tty, tty)
    assert not simulate.interactive(args("headless"), tty, tty)
