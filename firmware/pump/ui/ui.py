"""The screen controller: a stack of screens, key events in, a whole frame out.

The workflows behind the menus are modules of their own (pump/ui/<name>.py), imported
when a screen of theirs opens (``open``) and let go once the person is back home, so
their code and tables take RAM only while they are on the screen.
"""

import sys

from micropython import const

from pump.core import keys
from pump.core.units import earliest
from pump.ui import screens
from pump.ui import widgets as w

_FLASH_MS = const(2000)  # a short note at the bottom of the screen stays this long
IDLE_HOME_MS = const(120_000)  # without a key press, menus give way to the home screen
# The modules open() imports, let go at home (pump/ui/<name>.py; "remote" the USB confirm).
WORKFLOWS = (
    "menu", "bolus", "calc", "temp", "segments", "profiles", "reservoir", "history",
    "settings", "calc_settings", "setup", "clock", "remote",
)


class Ui:
    """Runs the pump's screens on ``fb`` (a framebuf.FrameBuffer, 128x64).

    ``iob``: a core.iob.IobHistory (None: IOB shows '--'); ``battery``: a function
    returning the battery level in percent, or None while unknown. The calculator and
    the BG unit come from the therapy settings (``app.therapy.settings``).
    The main loop calls ``handle(event, now_ms)`` for each key event, and ``draw(now_ms)``
    then ``fb.show()`` once ``next_redraw_ms(now_ms)`` is not after now.
    """

    def __init__(self, app, fb, iob=None, battery=None):
        self.app = app
        self.fb = fb
        self.painter = w.Painter(fb)
        self.iob = iob
        self.battery = battery
        self.locked = False
        self.stack: list = [screens.Home()]
        self.needs_redraw = True
        self.now = 0
        self.last_key_ms = 0
        self._flash = None
        self._flash_until = 0
        self._due = None  # when the frame drawn last must be drawn again (set by draw)
        self._seq = -1  # the last event recorded when the frame was drawn
        self.collect_due = False  # workflow modules were let go (see _release)

    @property
    def calculator(self):
        """The bolus calculator's settings (core.calculator), None until set up."""
        return self.app.therapy.settings.calculator

    @property
    def mmol(self):
        """True when BG is shown in mmol/L."""
        return self.app.therapy.settings.bg_mmol

    # ----- the stack ----------------------------------------------------------------------

    def top(self):
        return self.stack[-1]

    def push(self, screen):
        self.stack.append(screen)
        self.needs_redraw = True

    def pop(self):
        if len(self.stack) > 1:
            self.stack.pop()
        self.needs_redraw = True
        self._release()

    def replace(self, screen):
        if len(self.stack) > 1:
            self.stack.pop()
        self.push(screen)

    def home(self):
        """Back to the home screen; an alarm and a modal confirm on top stay."""
        kept = [screen for screen in self.stack[1:] if _stays(screen)]
        del self.stack[1:]
        self.stack.extend(kept)
        self.needs_redraw = True
        self._release()

    def finish(self):
        """A setup or the time answered its alarm: home, with every screen above it gone."""
        del self.stack[1:]
        self.needs_redraw = True
        self._release()

    def open(self, module, function, *args):
        """Run ``function(ui, *args)`` of pump/ui/<module>.py, importing it now. Without
        the RAM to load it, the screen says so and the pump goes on as it was."""
        try:
            mod = __import__("pump.ui." + module, None, None, (function,))
        except MemoryError:
            _forget("pump.ui." + module)
            self.collect_due = True
            self.flash("Low memory")
            return
        getattr(mod, function)(self, *args)

    def _release(self):
        """Back home (alarms aside): let the workflows' modules go. ``collect_due`` then
        says a ``gc.collect()`` would give their RAM back: the main loop's to run, at the
        top of its stack (a collection deep in a key handler is no better on a Pico, and
        traps the WASI MicroPython the tests run on)."""
        for screen in self.stack[1:]:
            if not isinstance(screen, screens.AlarmScreen):
                return
        dropped = False
        for name in WORKFLOWS:
            dropped = _forget("pump.ui." + name) or dropped
        dropped = _forget("pump.core.setup") or dropped  # the setup's checks
        dropped = _forget("pump.core.calculator") or dropped  # the calculator's suggestion
        if dropped:
            self.collect_due = True

    def show_confirm(self, title, lines, on_ok, on_back=None, name="remote confirm"):
        """Put a modal yes/no question over any screen (an alarm stays above it).

        ``lines``: up to 5 texts (a leading '!' draws one lit); OK calls ``on_ok(ui)``,
        which returns None or a refusal to show; BACK calls ``on_back(ui)`` (if given).
        Either answer takes the screen away. It stays through the idle timeout and the
        keypad lock (locked, its keys only say so). Returns the screen, for ``dismiss``.
        """
        screen = screens.Confirm(name, title, lines, on_ok, done=_pop_screen, back=on_back)
        return self.show_modal(screen)

    def show_modal(self, screen):
        """Put any screen over the others as a modal one (see show_confirm); returns it.

        The screen takes itself away (``ui.pop()``) once answered.
        """
        screen.modal = True
        at = len(self.stack)
        top = self.stack[-1]
        if isinstance(top, screens.AlarmScreen) and top.alarm.code not in screen.settles:
            at -= 1
        self.stack.insert(at, screen)
        self.needs_redraw = True
        return screen

    def dismiss(self, screen):
        """Take ``screen`` off the stack wherever it is (a question that expired)."""
        if screen in self.stack[1:]:
            self.stack.remove(screen)
            self.needs_redraw = True

    def refused(self, reason):
        """The App refused a change: the confirm screen gives way to the reason."""
        self.replace(screens.Message("Not done", reason, "refused"))

    def flash(self, note):
        """A short note over the bottom line, for _FLASH_MS."""
        self._flash = note
        self._flash_until = self.now + _FLASH_MS
        self.needs_redraw = True

    def answering(self, code):
        """True while a screen open answers alarm ``code`` (its own screen then waits)."""
        for screen in self.stack:
            if code in screen.settles:
                return True
        return False

    def screen_name(self):
        return self.stack[-1].name

    # ----- keys -----------------------------------------------------------------------------

    def handle(self, event, now_ms):
        """One key event (kind, key, step) from core.keys."""
        kind, key, step = event
        if kind == keys.STUCK or kind == keys.STUCK_CLEARED:
            return  # the app raises the stuck-key alarm; a stuck key must not act
        self.now = now_ms
        self.last_key_ms = now_ms
        self.app.button_pressed()
        self.needs_redraw = True
        if self._show_alarm(now_ms):
            return  # the key that met a new alarm does not act on it unseen
        if kind == keys.LOCK_TOGGLE:
            self.locked = not self.locked
            if self.locked:
                self.home()
            self.flash("Keys locked" if self.locked else "Keys unlocked")
            return
        top = self.stack[-1]
        if self.locked and not isinstance(top, (screens.Home, screens.AlarmScreen)):
            if top.modal:
                self.flash("Locked: BACK+OK")
                return
            self.home()
            top = self.stack[-1]
        top.key(self, kind, key, step)

    def _show_alarm(self, now_ms):
        """Put the alarm to show on top (or take an acknowledged one away); True if new."""
        alarm = self.app.alarms.shown(now_ms)
        top = self.stack[-1]
        on_top = isinstance(top, screens.AlarmScreen)
        if alarm is not None and self.answering(alarm.code):
            return False  # a screen open answers this alarm (a setup, the time)
        if alarm is None:
            if on_top:
                self.stack.pop()
                self.needs_redraw = True
            return False
        if on_top and top.alarm is alarm:
            return False
        if on_top:
            self.stack.pop()
        self.stack.append(screens.AlarmScreen(alarm))
        self.needs_redraw = True
        return True

    # ----- drawing -------------------------------------------------------------------------

    def draw(self, now_ms):
        """Redraw the whole frame into fb (the caller shows it)."""
        self.now = now_ms
        self._show_alarm(now_ms)
        if self._in_menus() and now_ms - self.last_key_ms >= IDLE_HOME_MS:
            self.home()
        p = self.painter
        p.clear()
        top = self.stack[-1]
        top.draw(self, p, now_ms)
        due = top.refresh_at(self, now_ms)
        if self._flash is not None:
            if now_ms < self._flash_until:
                p.text(self._flash, 1, 56, True)
                due = earliest(due, self._flash_until)
            else:
                self._flash = None
        if self._in_menus():
            due = earliest(due, self.last_key_ms + IDLE_HOME_MS)
        self._due = due
        self._seq = self.app.events.seq
        self.needs_redraw = False

    def _in_menus(self):
        """True while a menu, editor or message is open (the idle timeout applies)."""
        for screen in self.stack[1:]:
            if not _stays(screen):
                return True
        return False

    def next_redraw_ms(self, now_ms):
        """When the frame must next be drawn (absolute ms), or None until a key or an alarm.

        Never earlier than the last draw: a time not after ``now_ms`` means draw now, and
        the draw then moves the answer on (or to None).
        """
        if self.needs_redraw or self.app.events.seq != self._seq:
            return now_ms  # a key, or the pump recorded something (a bolus, a setting...)
        alarm = self.app.alarms.shown(now_ms)
        top = self.stack[-1]
        if isinstance(top, screens.AlarmScreen):
            if alarm is not top.alarm:
                return now_ms
        elif alarm is not None and not self.answering(alarm.code):
            return now_ms
        return self._due


def _forget(name):
    """Module ``name`` out of sys.modules and off its package (see pump.link.forget)."""
    if sys.modules.pop(name, None) is None:
        return False
    dot = name.rfind(".")
    package = sys.modules.get(name[:dot])
    if package is not None and name[dot + 1 :] in package.__dict__:
        delattr(package, name[dot + 1 :])
    return True


def _stays(screen):
    """Alarms, modal questions and the screens that answer an alarm (a setup, the time)
    stay when the person is sent home, and through the idle timeout."""
    return screen.modal or isinstance(screen, screens.AlarmScreen) or bool(screen.settles)


def _pop_screen(ui):
    ui.pop()
