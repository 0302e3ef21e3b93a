"""The interactive simulator: the real firmware on the fakes, its OLED and keys in a terminal.

    .venv/bin/python tools/termsim.py [--board NAME] [--start HH:MM] [--speed 1|60|3600]
    .venv/bin/python tools/termsim.py --screenshot docs/sim.png --screenshot docs/sim.svg

The firmware runs in virtual time (sim/pump.py); every tick of the terminal app moves
the simulated clock on by the wall time since the last tick times the speed, within a
budget of wall time, so the keys stay answered whatever the firmware is doing. When the
host cannot keep up, the panel says so and shows the speed actually reached.
"""

import asyncio
import inspect
import os
import sys
import time
from collections import deque

import pumptext
from sim.pump import SimPump
from simulate import describe

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Static

from pump.core import events as ev

SPEEDS = (1, 60, 3600)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
TICK_S = 0.05  # the terminal app's tick: the simulated clock moves on this often
TICK_BUDGET_S = 0.03  # wall time the firmware may take per tick; the rest is the UI's
BEHIND_S = 0.5  # further behind than this much wall time: "cannot keep up"
MAX_LAG_S = 2.0  # a backlog beyond this much wall time is given up, not caught up later
SPEED_WINDOW_S = 2.0  # the speed reached is measured over this much wall time
CHUNK_WALL_S = 0.005  # aim for runs of the firmware this long between looks at the clock
KEY_HOLD_MS = 80  # a quick press
LONG_HOLD_MS = 1500  # held past the keypad's long-press time (1 s)
CHORD_HOLD_MS = 1300  # OK and BACK together past the keypad's chord time (1 s)
KEY_GAP_MS = 120  # between two presses, as a person's pace
# A terminal repeats a held key (after its own delay, then some 30 times a second): the
# same key again sooner than this is the key still held, and it stays down on the pump
# until no repeat has come for RELEASE_S.
AUTOREPEAT_S = 0.1
RELEASE_S = 0.15
LOG_DIR = os.path.join("out", "sim")
PARTIAL_OCCLUSION_PERCENT = 80.0
POWER_CUT_MS = 5000
FRESH_BATTERY_V = 4.5  # 3 x AA alkaline, new
SCREENSHOT_SIZE = (172, 46)

_HALF_BLOCKS = (" ", "\u2584", "\u2580", "\u2588")  # (top, bottom) lit: none, bottom, top, both
_ALARM_EVENTS = (ev.ALARM, ev.FAULT)
_ALARM_DONE_EVENTS = (ev.ALARM_CLEARED, ev.ALARM_ACK)
_QUIET_EVENTS = (ev.DELIVERY,)


def half_blocks(pixels):
    """Rows of 0/1 pixels as text: one character cell holds two pixel rows."""
    lines = []
    for y in range(0, len(pixels) - 1, 2):
        top = pixels[y]
        bottom = pixels[y + 1]
        lines.append("".join(_HALF_BLOCKS[2 * t + b] for t, b in zip(top, bottom, strict=True)))
    return "\n".join(lines)


def _clock_text(ms_of_day):
    s = ms_of_day // 1000
    return "%02d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)


def _units(mu):
    return "%.3f U" % (mu / 1000)


def _duration_text(ms):
    s = ms // 1000
    text = "%d:%02d:%02d" % (s // 3600 % 24, s // 60 % 60, s % 60)
    if s >= 86400:
        text = "%dd %s" % (s // 86400, text)
    return text


class SimSession:
    """A SimPump driven from the wall clock, with the keys and faults a person can use.

    ``advance()`` is called every tick; everything else schedules or injects at the current
    simulated time. ``wall_clock`` (seconds) is replaceable so tests can move time by hand.
    """

    def __init__(self, pump, speed=1, wall_clock=time.monotonic):
        self.pump = pump
        self._wall = wall_clock
        self.speed = speed
        self.paused = False
        self.behind = False  # more than BEHIND_S of wall time behind the speed asked for
        self.reached_speed = float(speed)
        self.gave_up_ms = 0  # simulated time given up because the host could not keep up
        self.error = None  # the firmware raised: the text, and the session stops
        self.notice = ""
        self.deliveries = deque(maxlen=8)  # (time of day, kind, steps, mu) as they happened
        self.log = deque(maxlen=12)  # (ms_of_day, text, style)
        self.history = []  # every line of the session, for the log written on exit
        self._held = None  # the key the terminal's auto-repeat holds down, or None
        self._held_wall = 0.0
        self._last_key = (None, 0.0)  # the last key event and its wall time
        self.battery_v = FRESH_BATTERY_V
        self._last_wall = wall_clock()
        self._target_ms = float(pump.now_ms())
        self._chunk_ms = 1000
        self._keys_free_ms = 0
        self._samples = deque([(self._last_wall, pump.now_ms())])
        self._collect()

    # ----- time -----------------------------------------------------------------------------

    def set_speed(self, speed):
        self.speed = speed
        self.paused = False
        self._target_ms = float(self.pump.now_ms())
        self._samples.clear()
        self.reached_speed = float(speed)
        self.behind = False
        self.notice = "speed %dx" % speed

    def toggle_pause(self):
        self.paused = not self.paused
        self._target_ms = float(self.pump.now_ms())
        self._samples.clear()
        self.notice = "paused" if self.paused else "running at %dx" % self.speed

    def advance(self, budget_s=TICK_BUDGET_S):
        """Move the firmware on by the wall time since the last call times the speed; stop
        after ``budget_s`` of wall time and carry the rest over (up to MAX_LAG_S)."""
        wall = self._wall()
        if self._held is not None and wall - self._held_wall > RELEASE_S:
            self.release_held()
        elapsed = wall - self._last_wall
        self._last_wall = wall
        pump = self.pump
        now = pump.now_ms()
        if self.error is not None:
            return
        if not self.paused:
            self._target_ms = max(self._target_ms, float(now)) + elapsed * 1000.0 * self.speed
        target = int(self._target_ms)
        deadline = wall + budget_s
        try:
            while now < target:
                step_to = min(target, now + self._chunk_ms)
                started = self._wall()
                pump.run_until(step_to)
                spent = self._wall() - started
                self._adapt_chunk(step_to - now, spent)
                now = pump.now_ms()
                if self._wall() >= deadline:
                    break
        except Exception as err:  # the firmware (or the plant) failed: show it, stop there
            self.error = "%s: %s" % (type(err).__name__, err)
            self.paused = True
        self._collect()
        self._judge_pace(wall, now)

    def _adapt_chunk(self, ran_ms, spent_s):
        # Long runs between looks at the clock are fast; short ones keep the budget honest.
        if spent_s <= 0:
            self._chunk_ms = min(self._chunk_ms * 2, 600_000)
            return
        ideal = int(ran_ms * CHUNK_WALL_S / spent_s)
        self._chunk_ms = max(20, min(600_000, ideal))

    def _judge_pace(self, wall, now):
        lag_ms = self._target_ms - now
        per_wall_s = 1000.0 * self.speed
        if self.paused:
            self.behind = False
            return
        if lag_ms > MAX_LAG_S * per_wall_s:
            given_up = lag_ms - MAX_LAG_S * per_wall_s
            self.gave_up_ms += int(given_up)
            self._target_ms -= given_up
        self.behind = lag_ms > BEHIND_S * per_wall_s
        samples = self._samples
        samples.append((wall, now))
        while len(samples) > 2 and wall - samples[1][0] >= SPEED_WINDOW_S:
            samples.popleft()
        span = wall - samples[0][0]
        if span >= 0.5:
            self.reached_speed = (now - samples[0][1]) / 1000.0 / span

    def run_for(self, ms):
        """Run the firmware ``ms`` of simulated time now, whatever the speed (scripts, tests)."""
        end = self.pump.now_ms() + ms
        self.pump.run_until(end)
        self._target_ms = float(self.pump.now_ms())
        self._collect()

    # ----- the person at the pump -------------------------------------------------------------

    def press(self, key, hold_ms=KEY_HOLD_MS):
        """Press ``key`` ('UP', 'DOWN', 'OK', 'BACK') for ``hold_ms`` of simulated time."""
        self.press_together((key,), hold_ms)

    def key_event(self, key):
        """A key event from the terminal: a press, or (the same key again within
        AUTOREPEAT_S, the terminal repeating a held key) the key held down on the pump until
        the repeats stop, so the firmware's own repeat and x10/x100 steps are reached."""
        wall = self._wall()
        last_key, last_wall = self._last_key
        self._last_key = (key, wall)
        repeating = key == last_key and wall - last_wall <= AUTOREPEAT_S and not self.paused
        if not repeating:
            if self._held is not None:
                self.release_held()
            self.press(key)
            return
        self._held_wall = wall
        if self._held == key:
            return
        if self._held is not None:
            self.release_held()
        pump = self.pump
        if self.speed > 1:
            self.set_speed(1)
            self.notice = "speed 1x while you use the keys"
        start = max(pump.now_ms() + 1, self._keys_free_ms)
        pump.at_plant(start, lambda _plant: pump.hold_key(key))
        self._held = key
        self._keys_free_ms = start + 1
        self.notice = "%s held" % key

    def release_held(self):
        """Let go of the key the terminal's repeats held down."""
        key, self._held = self._held, None
        if key is None:
            return
        pump = self.pump
        at = max(pump.now_ms() + 1, self._keys_free_ms)
        pump.at_plant(at, lambda _plant: pump.hold_key(key, False))
        self._keys_free_ms = at + KEY_GAP_MS
        self.notice = ""

    def press_together(self, keys, hold_ms):
        pump = self.pump
        if self.speed > 1 and not self.paused:
            # The menus give way to the home screen after 2 min without a key: at 3600x
            # that is 33 ms. Slow down while someone works the keys.
            self.set_speed(1)
            self.notice = "speed 1x while you use the keys"
        start = max(pump.now_ms() + 1, self._keys_free_ms)
        for key in keys:
            pump.at_plant(start, lambda _plant, k=key: pump.hold_key(k))
            pump.at_plant(start + hold_ms, lambda _plant, k=key: pump.hold_key(k, False))
        self._keys_free_ms = start + hold_ms + KEY_GAP_MS
        if self.paused:
            self.run_for(self._keys_free_ms - pump.now_ms())

    # ----- what happens to the pump -------------------------------------------------------------

    def occlude(self):
        self.pump.plant.occlude()
        self.notice = "line occluded"

    def partial_occlusion(self):
        self.pump.plant.partial_occlusion(PARTIAL_OCCLUSION_PERCENT)
        self.notice = "line %d %% occluded" % PARTIAL_OCCLUSION_PERCENT

    def disconnect(self):
        self.pump.plant.disconnect()
        self.notice = "line disconnected"

    def clear_line(self):
        self.pump.plant.clear()
        self.notice = "line open again"

    def battery_levels(self):
        """(name, volts) the battery key steps through: fresh, low, depleted."""
        battery = getattr(self.pump.board_module, "BATTERY", None) or {}
        low_v = (battery.get("low_mv", 3600) - 100) / 1000
        depleted_v = (battery.get("depleted_mv", 3300) - 100) / 1000
        return (("fresh", FRESH_BATTERY_V), ("low", low_v), ("depleted", depleted_v))

    def next_battery(self):
        """The battery steps on: fresh -> low -> depleted -> fresh."""
        if self.pump.battery_adc is None:
            self.notice = "this board has no battery sense"
            return
        levels = self.battery_levels()
        volts = [v for _name, v in levels]
        i = volts.index(self.battery_v) if self.battery_v in volts else 0
        name, self.battery_v = levels[(i + 1) % len(levels)]
        self.pump.set_battery_volts(self.battery_v)
        self.notice = "battery %s (%.2f V)" % (name, self.battery_v)

    def power_available(self):
        return callable(getattr(self.pump, "power_loss", None))

    def power_cut(self, off_ms=POWER_CUT_MS):
        """The supply drops for ``off_ms``; the firmware boots again afterwards."""
        if not self.power_available():
            self.notice = "power cut: not available"
            return
        self._collect()  # what the firmware said before the cut, on its own clock
        try:
            self.pump.power_loss(off_ms)
        except Exception as err:
            self.notice = "power cut failed: %s" % err
            return
        self._target_ms = max(self._target_ms, float(self.pump.now_ms()))
        self._keys_free_ms = 0
        self.notice = "power cut for %d s" % (off_ms // 1000)
        self._collect()

    # ----- what the panel shows -----------------------------------------------------------------

    def _collect(self):
        # Take what the firmware reported since the last look, keep the last few, and let the
        # pump's own lists go (a day at 3600x is thousands of pulse trains).
        pump = self.pump
        app = pump.app
        # Times are turned into the time of day now, by the firmware that made them: a
        # firmware booted after a power cut counts its time from its own boot.
        for t_ms, kind, steps, mu in pump.deliveries:
            self.deliveries.append((app.therapy.ms_of_day(t_ms), kind, steps, mu))
        del pump.deliveries[:]
        nu = pump.mechanics.nu_per_step
        for event in pump.events:
            if event[2] in _QUIET_EVENTS:
                continue
            style = ""
            if event[2] in _ALARM_EVENTS:
                style = "bold red"
            elif event[2] in _ALARM_DONE_EVENTS:
                style = "yellow"
            elif event[2] == ev.REFUSED:
                style = "magenta"
            line = (app.therapy.ms_of_day(event[1]), describe(event, nu), style)
            self.log.append(line)
            self.history.append(line)
        del pump.events[:]

    def write_log(self, folder=LOG_DIR, stamp=None):
        """Write every event of the session, in words, to a file in ``folder``; returns its
        path. ``stamp`` names the file (default: the wall-clock date and time)."""
        import datetime

        self._collect()
        stamp = stamp or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "session-%s.log" % stamp)
        pump = self.pump
        with open(path, "w") as f:
            f.write("Simulator session: board %s, %s simulated\n" % (
                pump.board_module.NAME if hasattr(pump.board_module, "NAME") else "?",
                _duration_text(pump.now_ms())))
            for ms_of_day, text, _style in self.history:
                f.write("%s  %s\n" % (_clock_text(ms_of_day), text))
        return path

    def ms_of_day(self):
        app = self.pump.app
        return app.therapy.ms_of_day(app.now_ms())

    def speed_text(self):
        if self.error is not None:
            return Text("stopped", style="bold red")
        if self.paused:
            return Text("paused", style="yellow")
        text = Text("%dx" % self.speed)
        if self.behind:
            text.append("  cannot keep up: %.0fx" % self.reached_speed, style="bold red")
        return text

    def status_rows(self):
        """(label, value) rows for the side panel; a value is a str or a rich Text."""
        pump = self.pump
        app = pump.app
        plant = pump.plant
        now = app.now_ms()
        status = app.therapy.status(now)
        rows = [
            ("Time", _clock_text(app.therapy.ms_of_day(now))),
            ("Running", _duration_text(pump.now_ms())),
            ("Speed", self.speed_text()),
        ]
        if self.gave_up_ms:
            rows.append(("Given up", _duration_text(self.gave_up_ms)))
        rows.append(("Plunger", "%.3f mm  (%d steps)" % (
            plant.plunger_position_um() / 1000, app.position_steps)))
        force = "--" if app.force_mn is None else "%.2f N" % (app.force_mn / 1000)
        rows.append(("Force", force))
        rows.append(("Pressure", "%.1f kPa" % plant.pressure_kpa()))
        line = plant.line_state()
        if line == "partial":
            line = "partial (%d %%)" % plant.occlusion_percent()
        rows.append(("Line", Text(line, style="" if line == "open" else "bold yellow")))
        rows.append(("Reservoir", "%.2f U  (%.0f uL)" % (
            app.reservoir.remaining_mu() / 1000, plant.reservoir_nl() / 1000)))
        basal = "%.2f U/h" % (status["rate_mu_per_h"] / 1000)
        if status["suspended"]:
            basal = Text("suspended: %s" % status["suspend_reason"], style="yellow")
        elif status["temp"] is not None:
            basal += "  (temp basal)"
        rows.append(("Basal", basal))
        if status["bolus_steps"]:
            nu = pump.mechanics.nu_per_step
            rows.append(("Bolus", "%s of %s given" % (
                pumptext.units(pumptext.mu_from_steps(status["bolus_done_steps"], nu)),
                pumptext.units(pumptext.mu_from_steps(status["bolus_steps"], nu)))))
        rows.append(("IOB", _units(app.therapy.iob.iob_mu(now))))
        nu = pump.mechanics.nu_per_step
        therapy = app.therapy
        rows.append(("Given", "basal %s, bolus %s" % (
            pumptext.units(pumptext.mu_from_steps(therapy.basal.steps, nu)),
            pumptext.units(pumptext.mu_from_steps(therapy.bolus_delivered.steps, nu)))))
        percent = app.battery_percent()
        battery = "%.2f V" % self.battery_v
        if percent is not None:
            battery += "  (%d %%)" % percent
        rows.append(("Battery", battery))
        shown = app.alarms.shown(now)
        if shown is not None:
            rows.append(("Alarm", Text(pumptext.alarm_name(shown.code), style="bold red")))
        if self.error is not None:
            rows.append(("Error", Text(self.error, style="bold red")))
        return rows

    def delivery_lines(self):
        lines = []
        nu = self.pump.mechanics.nu_per_step
        for ms_of_day, kind, steps, _mu in reversed(self.deliveries):
            lines.append("%s  %-5s %5d steps  %.4f U" % (
                _clock_text(ms_of_day), kind, steps, steps * nu / 1e9))
        return lines


# ----- the terminal app ---------------------------------------------------------------------

KEY_HELP = (
    "[b]Pump[/b]  \u2191 UP  \u2193 DOWN  Enter OK  Esc/Backspace BACK  "
    "l long OK  k long BACK  u OK+BACK (key lock)\n"
    "[b]Line[/b]  o occlusion  p partial occlusion  d disconnect  c clear  "
    "[b]Power[/b]  b battery fresh/low/depleted  x power cut\n"
    "[b]Time[/b]  1 1x  2 60x  3 3600x  space pause   q quit"
)


class OledView(Static):
    """The SSD1306 panel, two pixel rows per character cell."""

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.frame = ""
        self._stamp = None

    def show_panel(self, device):
        """Redraw from the fake controller's pixels when it received something new."""
        stamp = (device.transfers, device.lit)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        self.frame = half_blocks(device.pixels())
        self.update(self.frame)


class TermSim(App):
    """The pump's OLED, keys, a panel of what the plant and firmware are doing, and faults."""

    TITLE = "pico-insulin-pump simulator"
    CSS = """
    Screen { layout: vertical; background: $surface; }
    #top { height: 34; }
    OledView {
        width: 130; height: 34; border: round $accent; border-title-align: left;
        color: #8fd8ff; background: black; padding: 0;
    }
    #panel { width: 1fr; min-width: 36; height: 34; border: round $primary; padding: 0 1; }
    #bottom { height: 1fr; min-height: 6; }
    #deliveries { width: 50; border: round $primary; padding: 0 1; }
    #events { width: 1fr; border: round $primary; padding: 0 1; }
    #keys { height: 4; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("up", "key('UP')", "UP", priority=True),
        Binding("down", "key('DOWN')", "DOWN", priority=True),
        Binding("enter", "key('OK')", "OK", priority=True),
        Binding("escape", "key('BACK')", "BACK", priority=True),
        Binding("backspace", "key('BACK')", "BACK", priority=True),
        Binding("l", "long('OK')", "long OK", priority=True),
        Binding("k", "long('BACK')", "long BACK", priority=True),
        Binding("u", "chord", "OK+BACK", priority=True),
        Binding("o", "fault('occlude')", "occlusion", priority=True),
        Binding("p", "fault('partial_occlusion')", "partial", priority=True),
        Binding("d", "fault('disconnect')", "disconnect", priority=True),
        Binding("c", "fault('clear_line')", "clear", priority=True),
        Binding("b", "fault('next_battery')", "battery", priority=True),
        Binding("x", "fault('power_cut')", "power cut", priority=True),
        Binding("1", "speed(1)", "1x", priority=True),
        Binding("2", "speed(60)", "60x", priority=True),
        Binding("3", "speed(3600)", "3600x", priority=True),
        Binding("space", "pause", "pause", priority=True),
        Binding("q", "quit", "quit", priority=True),
    ]

    def __init__(self, session, ticking=True):
        super().__init__()
        self.session = session
        self.ticking = ticking  # False: nothing moves unless step() is called (tests, scripts)

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield OledView(id="oled")
            yield Static(id="panel")
        with Horizontal(id="bottom"):
            yield Static(id="deliveries")
            yield Static(id="events")
        yield Static(KEY_HELP, id="keys")

    def on_mount(self):
        self.query_one("#oled", OledView).border_title = "OLED 128x64"
        self.query_one("#panel").border_title = "Pump"
        self.query_one("#deliveries").border_title = "Last deliveries"
        self.query_one("#events").border_title = "Events and alarms"
        self.refresh_views()
        if self.ticking:
            self.set_interval(TICK_S, self.step)

    def step(self):
        """One tick: the firmware runs its share of wall time, then the views follow."""
        self.session.advance()
        self.refresh_views()

    def refresh_views(self):
        session = self.session
        display = session.pump.display
        if display is not None:
            self.query_one("#oled", OledView).show_panel(display)
        panel = Text()
        for label, value in session.status_rows():
            panel.append("%-10s" % label, style="bold")
            panel.append(value if isinstance(value, Text) else str(value))
            panel.append("\n")
        if session.notice:
            panel.append("\n" + session.notice, style="italic")
        self.query_one("#panel", Static).update(panel)
        self.query_one("#deliveries", Static).update("\n".join(session.delivery_lines()))
        events = Text()
        for ms_of_day, text, style in reversed(session.log):
            events.append(_clock_text(ms_of_day) + "  ")
            events.append(text + "\n", style=style)
        self.query_one("#events", Static).update(events)

    def panel_text(self):
        """What the side panel shows, as plain text."""
        return "\n".join("%s %s" % (label, value) for label, value in self.session.status_rows())

    def events_text(self):
        return "\n".join(text for _t, text, _style in self.session.log)

    # ----- actions ------------------------------------------------------------------------------

    def action_key(self, key):
        self.session.key_event(key)

    def action_long(self, key):
        self.session.press(key, LONG_HOLD_MS)

    def action_chord(self):
        self.session.press_together(("OK", "BACK"), CHORD_HOLD_MS)

    def action_fault(self, name):
        getattr(self.session, name)()
        self.refresh_views()

    def action_speed(self, speed):
        self.session.set_speed(speed)
        self.refresh_views()

    def action_pause(self):
        self.session.toggle_pause()
        self.refresh_views()


# ----- the screenshot for the README ----------------------------------------------------------


def screenshot_moment(session):
    """Drive the pump to a moment worth a picture: a 2 U bolus running into an occlusion."""
    session.run_for(20 * 60_000)
    session.paused = True  # each press runs at once, in simulated time
    session.press("OK")  # the menu, 'Bolus' first
    session.press("OK")  # the amount, from 0.05 U
    for _ in range(39):
        session.press("UP")  # 2.00 U
    session.press("OK")  # the confirm screen
    session.press("OK")  # started
    session.run_for(20_000)
    session.occlude()
    for _ in range(600):
        session.run_for(1000)
        if session.pump.app.alarms.shown(session.pump.app.now_ms()) is not None:
            break
    session.run_for(3000)
    session.paused = False
    session.notice = "line occluded during a 2 U bolus"


async def save_screenshot(paths, session, size=SCREENSHOT_SIZE):
    """Save the app at screenshot_moment() to each path: .svg (textual's) or .png."""
    app = TermSim(session, ticking=False)
    async with app.run_test(size=size) as pilot:
        screenshot_moment(session)
        app.refresh_views()
        await pilot.pause()
        for path in paths:
            if path.lower().endswith(".png"):
                save_png(app, path)
            else:
                folder, name = os.path.split(os.path.abspath(path))
                app.save_screenshot(filename=name, path=folder)


CELL_PX = (9, 18)  # a character cell in the PNG: width, height
_FONT_DIR = "/usr/share/fonts/truetype/dejavu"


def screen_cells(app):
    """The running app's screen as rows of (character, rgb, background rgb, bold)."""
    import io

    from rich.console import Console
    from rich.segment import Segment
    from rich.terminal_theme import DEFAULT_TERMINAL_THEME as theme

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True))
    rows = []
    for line in Segment.split_and_crop_lines(console._record_buffer, width, pad=False):
        row = []
        for text, style, _control in Segment.filter_control(line):
            fg = theme.foreground_color
            bg = theme.background_color
            bold = False
            if style is not None:
                if style.color is not None and not style.color.is_default:
                    fg = style.color.get_truecolor(theme)
                if style.bgcolor is not None and not style.bgcolor.is_default:
                    bg = style.bgcolor.get_truecolor(theme)
                if style.reverse:
                    fg, bg = bg, fg
                bold = bool(style.bold)
            for ch in text:
                row.append((ch, tuple(fg), tuple(bg), bold))
        rows.append(row[:width])
    return rows[:height]


def save_png(app, path):
    """A PNG of the app's screen: text in DejaVu Sans Mono, half blocks as exact pixels."""
    from PIL import Image, ImageDraw, ImageFont

    cw, ch = CELL_PX
    rows = screen_cells(app)
    width, height = app.size
    image = Image.new("RGB", (width * cw, height * ch), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    try:
        fonts = {
            False: ImageFont.truetype(os.path.join(_FONT_DIR, "DejaVuSansMono.ttf"), 15),
            True: ImageFont.truetype(os.path.join(_FONT_DIR, "DejaVuSansMono-Bold.ttf"), 15),
        }
    except OSError:
        fonts = {False: ImageFont.load_default(), True: ImageFont.load_default()}
    for y, row in enumerate(rows):
        for x, (char, fg, bg, bold) in enumerate(row):
            left, top = x * cw, y * ch
            draw.rectangle((left, top, left + cw - 1, top + ch - 1), fill=bg)
            if char in _HALF_BLOCKS[1:]:
                lit = _HALF_BLOCKS.index(char)
                if lit & 2:
                    draw.rectangle((left, top, left + cw - 1, top + ch // 2 - 1), fill=fg)
                if lit & 1:
                    draw.rectangle((left, top + ch // 2, left + cw - 1, top + ch - 1), fill=fg)
            elif char in "\u2500\u2502\u256d\u256e\u256f\u2570":
                _box(draw, char, left, top, fg)
            elif char != " ":
                draw.text((left, top + 1), char, font=fonts[bold], fill=fg)
    image.save(path, optimize=True)


def _box(draw, char, left, top, colour):
    # Rounded-border pieces drawn as lines, so borders join up whatever the font.
    cw, ch = CELL_PX
    mx, my = left + cw // 2, top + ch // 2
    right, bottom = left + cw - 1, top + ch - 1
    if char == "\u2500":
        draw.line((left, my, right, my), fill=colour)
    elif char == "\u2502":
        draw.line((mx, top, mx, bottom), fill=colour)
    else:
        # corners: which way the two arms go
        arms = {"\u256d": (right, bottom), "\u256e": (left, bottom),
                "\u256f": (left, top), "\u2570": (right, top)}[char]
        draw.line((mx, my, arms[0], my), fill=colour)
        draw.line((mx, my, mx, arms[1]), fill=colour)


def build_session(args, wall_clock=time.monotonic):
    """The SimPump and session the command line asks for (a flash that survives power cuts
    when the simulator has one)."""
    start_ms = args.start
    if isinstance(start_ms, str):
        start_ms = pumptext.time_of_day(start_ms)
    options = {}
    if "flash" in inspect.signature(SimPump).parameters:
        from sim.hw.flashfs import FlashFS

        options["flash"] = FlashFS()  # settings and records survive a power cut, as on a Pico
    pump = SimPump(board=args.board, start_ms_of_day=start_ms % DAY_MS, seed=args.seed,
                   **options)
    return SimSession(pump, speed=args.speed, wall_clock=wall_clock)


def main(argv=None):
    import simulate

    parser = pumptext.OneLineParser(prog="termsim.py", description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="pico_default", type=simulate._board)
    parser.add_argument("--start", default="07:00", type=pumptext.time_of_day, metavar="HH:MM",
                        help="time of day at boot (default 07:00)")
    parser.add_argument("--speed", type=simulate._speed, default=1, metavar="1|60|3600")
    parser.add_argument("--seed", type=simulate._seed, default=0, help="the plant's noise seed")
    parser.add_argument("--log-dir", default=LOG_DIR,
                        help="where the session's log is written on exit (default out/sim)")
    parser.add_argument("--screenshot", metavar="FILE", action="append",
                        help="run headless to an occlusion during a bolus and save the screen "
                        "to FILE (.svg or .png; may be given more than once)")
    args = parser.parse_args(argv)
    try:
        session = build_session(args)
    except ValueError as err:
        print("termsim: %s" % err, file=sys.stderr)
        return 2
    if args.screenshot:
        asyncio.run(save_screenshot(args.screenshot, session))
        print("Screenshot written to %s" % ", ".join(args.screenshot))
        return 0
    try:
        TermSim(session).run()
    finally:
        path = session.write_log(args.log_dir)
        print("Session log written to %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
