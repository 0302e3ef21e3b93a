"""The screen controller: a stack of screens, key events in, a whole frame out."""

from pump.core import keys
from pump.ui import screens
from pump.ui import widgets as w

FLASH_MS = 2000  # a short note at the bottom of the screen stays this long
IDLE_HOME_MS = 120_000  # without a key press, menus give way to the home screen


class Ui:
    """Runs the pump's screens on ``fb`` (a framebuf.FrameBuffer, 128x64).

    ``calculator``: a core.calculator.CalculatorSettings (None: no calculator menu);
    ``iob``: a core.iob.IobHistory (None: IOB shows '--'); ``battery``: a function
    returning the battery level in percent, or None while unknown.
    The main loop calls ``handle(event, now_ms)`` for each key event, and ``draw(now_ms)``
    then ``fb.show()`` when ``next_redraw_ms(now_ms)`` has come.
    """

    def __init__(self, app, fb, calculator=None, iob=None, battery=None):
        self.app = app
        self.fb = fb
        self.painter = w.Painter(fb)
        self.calculator = calculator
        self.iob = iob
        self.battery = battery
        self.mmol = False  # show BG in mmol/L instead of mg/dL
        self.locked = False
        self.stack: list = [screens.Home()]
        self.needs_redraw = True
        self.now = 0
        self.last_key_ms = 0
        self._flash = None
        self._flash_until = 0

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

    def replace(self, screen):
        if len(self.stack) > 1:
            self.stack.pop()
        self.push(screen)

    def home(self):
        """Back to the home screen (an alarm on top stays)."""
        alarm = self.stack[-1] if isinstance(self.stack[-1], screens.AlarmScreen) else None
        del self.stack[1:]
        if alarm is not None:
            self.stack.append(alarm)
        self.needs_redraw = True

    def refused(self, reason):
        """The App refused a change: the confirm screen gives way to the reason."""
        self.replace(screens.Message("Not done", reason, "refused"))

    def flash(self, note):
        """A short note over the bottom line, for FLASH_MS."""
        self._flash = note
        self._flash_until = self.now + FLASH_MS
        self.needs_redraw = True

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
            self.home()
            top = self.stack[-1]
        top.key(self, kind, key, step)

    def _show_alarm(self, now_ms):
        """Put the alarm to show on top (or take an acknowledged one away); True if new."""
        alarm = self.app.alarms.shown(now_ms)
        top = self.stack[-1]
        on_top = isinstance(top, screens.AlarmScreen)
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
        if len(self.stack) > 1 and now_ms - self.last_key_ms >= IDLE_HOME_MS:
            self.home()
        p = self.painter
        p.clear()
        self.stack[-1].draw(self, p, now_ms)
        if self._flash is not None:
            if now_ms < self._flash_until:
                p.text(self._flash, 1, 56, True)
            else:
                self._flash = None
        self.needs_redraw = False

    def next_redraw_ms(self, now_ms):
        """When the frame must next be drawn (absolute ms), or None until a key or an alarm."""
        if self.needs_redraw:
            return now_ms
        alarm = self.app.alarms.shown(now_ms)
        top = self.stack[-1]
        if isinstance(top, screens.AlarmScreen):
            if alarm is not top.alarm:
                return now_ms
        elif alarm is not None:
            return now_ms
        due = top.refresh_at(self, now_ms)
        if self._flash is not None and (due is None or self._flash_until < due):
            due = self._flash_until
        if len(self.stack) > 1:
            idle = self.last_key_ms + IDLE_HOME_MS
            if due is None or idle < due:
                due = idle
        return due
