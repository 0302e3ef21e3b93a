"""The screens on their own: formatting, drawing helpers, the value editor's limits, the home
screen, redraw timing; and the rig the workflow tests drive the screens with."""

import framebuf

from pump.core import alarms as al
from pump.core import keys
from pump.core.schedule import BasalProfile
from pump.core.therapy import Settings
from pump.ui import text, widgets
from pump.ui import ui as ui_mod
from pump.ui.ui import Ui
from sim import frames
from sim.frames import find_big_text, read_lines
from sim.pump import SimPump

MIN = 60_000
HOUR = 3_600_000


def pump_settings(rate=800, **extra):
    s = Settings()
    s.profiles = [BasalProfile("Standard", [(0, rate)], s.max_basal_mu_per_h)]
    for key, value in extra.items():
        setattr(s, key, value)
    return s


def _without_pressure(board):
    # The screens are under test here, not the occlusion detector: no force readings.
    for name in ("force_sensor", "pressure", "occlusion", "load_cell"):
        if getattr(board, name, None) is not None:
            setattr(board, name, None)


class Rig:
    """A SimPump with the screens on a framebuf; keys pressed in virtual time.

    ``press`` counts as a press of the person's way through the menus; ``enter`` is value
    entry (not counted). After each key the frame is redrawn and read back as pixels.
    """

    def __init__(self, settings=None, calculator=None, iob=None, battery=None, ms_of_day=8 * HOUR):
        self.sim = SimPump(
            settings=settings or pump_settings(),
            start_ms_of_day=ms_of_day,
            prepare_board=_without_pressure,
        )
        self.buf = bytearray(128 * 64 // 8)
        self.fb = framebuf.FrameBuffer(self.buf, 128, 64, framebuf.MONO_VLSB)
        if calculator is not None:
            self.sim.app.therapy.settings.calculator = calculator
        self.ui = Ui(self.sim.app, self.fb, iob, battery)
        self.presses = 0
        self.redraw()

    @property
    def app(self):
        return self.sim.app

    def run(self, ms):
        self.sim.run_until(self.sim.now_ms() + ms)
        self.redraw()

    def key(self, key, kind=keys.PRESS, step=1, gap_ms=300):
        self.sim.run_until(self.sim.now_ms() + gap_ms)
        self.ui.handle((kind, key, step), self.sim.now_ms())
        self.redraw()

    def press(self, key, kind=keys.PRESS):
        self.presses += 1
        self.key(key, kind)

    def enter(self, key, times=1, step=1):
        """Value entry: ``times`` presses (step 1) or held repeats (step 10, 100)."""
        kind = keys.PRESS if step == 1 else keys.REPEAT
        for _ in range(times):
            self.key(key, kind, step, gap_ms=100)

    def redraw(self):
        self.ui.draw(self.sim.now_ms())
        self.pixels = frames.fb_pixels(self.fb, 128, 64)

    def shows(self, words, scale=1):
        if scale != 1:
            return bool(find_big_text(self.pixels, words, scale))
        return frames.has_text(self.pixels, words) or frames.has_text(self.pixels, words, True)

    def screen(self):
        return self.ui.screen_name()

    def dump(self):
        return "screen %r:\n%s" % (self.screen(), "\n".join(read_lines(self.pixels)))

    def events(self, etype=None):
        return [(t, e, f) for _seq, t, e, f in self.sim.events if etype is None or e == etype]

    def therapy_events(self):
        therapy = {
            "bolus_started", "bolus_cancelled", "temp_basal_started", "temp_basal_cancelled",
            "suspended", "resumed", "profile_selected", "profile_saved", "settings_changed",
            "clock_set", "reservoir_loaded", "primed",
        }
        return [e for _t, e, _f in self.events() if e in therapy]


# ----- tests -----


def test_text_formats_units_rates_times_and_wraps_at_spaces():
    assert text.units_u(2500) == "2.50 U"
    assert text.units(-350) == "-0.35"
    assert text.rate(800) == "0.80 U/h"
    assert text.hhmm(7 * HOUR + 5 * MIN + 59_999) == "07:05"
    assert text.duration(90 * MIN) == "1:30 h"
    assert text.speed(1500) == "1.5 U/min"
    lines = text.wrap("only 3200 mU left in the reservoir and a verylongwordthatdoesnotfit")
    assert all(len(line) <= 16 for line in lines)
    assert lines[0] == "only 3200 mU"
    assert "".join(lines).replace(" ", "").endswith("verylongwordthatdoesnotfit")


def test_big_text_is_the_font_scaled_with_filled_squares():
    fb = framebuf.FrameBuffer(bytearray(1024), 128, 64, framebuf.MONO_VLSB)
    painter = widgets.Painter(fb)
    painter.big("12:34", 3, 5, 2)
    pixels = frames.fb_pixels(fb, 128, 64)
    assert find_big_text(pixels, "12:34", 2) == [(3, 5)]
    assert sum(map(sum, pixels)) == 4 * sum(map(sum, frames.text_pixels("12:34")))


def test_progress_bar_fills_in_proportion():
    fb = framebuf.FrameBuffer(bytearray(1024), 128, 64, framebuf.MONO_VLSB)
    widgets.Painter(fb).progress(0, 50, 102, 6, 1, 4)
    row = frames.fb_pixels(fb, 128, 64)[52]
    assert sum(row[1:101]) == 25  # a quarter of the 100 inner columns


def test_home_shows_time_basal_reservoir_and_battery_dashes_until_wired():
    rig = Rig(ms_of_day=7 * HOUR + 5 * MIN)
    assert rig.screen() == "home"
    assert rig.shows("07:05", scale=2), rig.dump()
    assert rig.shows("--")
    assert rig.shows("Basal  0.80"), rig.dump()
    assert rig.shows("Delivering")
    assert rig.shows("IOB    --")
    assert rig.shows("Res    " + text.units(rig.app.reservoir.remaining_mu()))
    rig.ui.battery = lambda: 85
    rig.redraw()
    assert rig.shows("85%")


def test_home_redraws_at_the_next_minute_and_every_second_during_a_bolus():
    rig = Rig(ms_of_day=8 * HOUR + 59_000)
    now = rig.sim.now_ms()
    assert rig.ui.next_redraw_ms(now) == now + 1000  # 08:00:59 -> 08:01:00
    # Asked again later, the answer does not move with the asking (nor fall in the past
    # of the last draw): the minute comes when it comes.
    assert rig.ui.next_redraw_ms(now + 700) == now + 1000
    rig.app.bolus("normal", 1000)  # the pump records it: the screen must show it now
    assert rig.ui.next_redraw_ms(now) == now
    rig.redraw()
    assert rig.ui.next_redraw_ms(now) == now + 1000  # the progress bar, every second
    rig.ui.handle((keys.PRESS, keys.UP, 1), now)
    assert rig.ui.needs_redraw and rig.ui.next_redraw_ms(now) == now


def test_under_an_alarm_the_idle_timeout_sends_home_once_and_asks_for_nothing_more():
    rig = Rig()
    rig.press(keys.OK)  # the menu
    rig.app.alarms.raise_alarm(rig.sim.now_ms(), al.RESERVOIR_LOW, remaining_mu=19_000)
    rig.redraw()
    assert rig.screen() == "alarm"
    t = rig.sim.now_ms() + ui_mod.IDLE_HOME_MS
    assert rig.ui.next_redraw_ms(rig.sim.now_ms()) == t  # the menu under it times out
    rig.sim.run_until(t)
    rig.redraw()
    assert [type(s).__name__ for s in rig.ui.stack] == ["Home", "AlarmScreen"]
    due = rig.ui.next_redraw_ms(rig.sim.now_ms())
    assert due is None or due > rig.sim.now_ms()  # the old timeout is not asked for again


def test_editor_stops_at_the_max_bolus_and_says_why():
    rig = Rig(settings=pump_settings(max_bolus_mu=2000))
    rig.press(keys.OK)
    rig.press(keys.OK)
    assert rig.screen() == "bolus amount"
    rig.enter(keys.UP, 5, step=10)  # 0.05 + 25 x 0.05 U, far past 2 U
    assert rig.shows("2.00 U", scale=2), rig.dump()
    assert rig.shows("max 2.00 U"), rig.dump()
    rig.enter(keys.DOWN)
    assert rig.shows("1.95 U", scale=2) and not rig.shows("max 2.00 U")
    rig.enter(keys.DOWN, 3, step=100)
    assert rig.shows("min 0.05 U"), rig.dump()


def test_every_key_press_restarts_the_auto_off_timer():
    rig = Rig()
    rig.run(HOUR)
    rig.key(keys.UP)
    assert rig.app.alarms.last_interaction_ms == rig.sim.now_ms()


def test_an_alarm_appears_over_any_screen_and_the_key_that_meets_it_does_not_act():
    rig = Rig()
    rig.press(keys.OK)
    rig.press(keys.OK)  # the bolus editor
    rig.app.alarms.raise_alarm(rig.sim.now_ms(), al.RESERVOIR_LOW, remaining_mu=19_000)
    assert rig.ui.next_redraw_ms(rig.sim.now_ms()) == rig.sim.now_ms()
    rig.redraw()
    assert rig.screen() == "alarm"
    assert rig.shows("ALARM", scale=2) and rig.shows("Reservoir low"), rig.dump()
    rig.press(keys.OK)
    assert [f["code"] for _t, f in [(t, f) for t, _e, f in rig.events("alarm_ack")]] == [
        al.RESERVOIR_LOW
    ]
    assert rig.screen() == "bolus amount"  # back where the person was



def test_a_screen_whose_module_cannot_be_loaded_says_so_and_the_pump_goes_on(monkeypatch):
    import builtins

    rig = Rig()
    real_import = builtins.__import__

    def no_ram(name, *args, **kw):
        if name == "pump.ui.menu":
            raise MemoryError("memory allocation failed, allocating 1420 bytes")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ram)
    rig.press(keys.OK)
    assert rig.screen() == "home" and rig.shows("Low memory"), rig.dump()
    assert rig.ui.collect_due
    monkeypatch.setattr(builtins, "__import__", real_import)
    rig.press(keys.OK)
    assert rig.screen() == "menu"
