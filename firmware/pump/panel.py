"""The front panel: keys polled into the screens, and the display kept drawn (or retried).

Main loop only, apart from the key-edge interrupt, which only sets a flag.
"""

import gc

from pump.core import alarms as al
from pump.core import events as ev
from pump.core import keys

DISPLAY_RETRY_MS = 30_000  # a display that stopped answering is tried again this often


class Panel:
    def __init__(self, app, board):
        self._app = app
        self.buttons = board.buttons
        self.keypad = keys.Keypad() if board.buttons is not None else None
        self.display = board.display
        self.display_ok = False
        self.retry_ms = None
        self._key_edge = False
        self._key_edge_cb = self._on_key_edge
        self._frame_unsent = False  # part of the frame drawn is still to go to the panel
        self.ui = None
        if self.display is not None:
            from pump.ui.ui import Ui  # the screens cost RAM: only on a board with a display

            self.ui = Ui(app, self.display, iob=app.therapy.iob, battery=app.battery_percent)

    def _on_key_edge(self, _pin):
        # Hard interrupt handler: allocation-free. A key changed: poll the keypad now.
        self._key_edge = True
        self._app.wake()

    def start(self):
        if self.buttons is not None:
            self.buttons.on_edge(self._key_edge_cb)

    def keys_down(self):
        """The keys held at boot (the self-test looks for a stuck one)."""
        mask = self.buttons.read_mask()
        return tuple(keys.KEY_NAMES[i] for i in range(4) if mask & keys.KEYS[i])

    def service_keys(self, now):
        keypad = self.keypad
        if keypad is None:
            return
        due = keypad.next_poll_ms(now)
        if not self._key_edge and (due is None or due > now):
            return
        self._key_edge = False
        keypad.update(now, self.buttons.read_mask())
        app = self._app
        event = keypad.pop()
        while event is not None:
            kind = event[0]
            if kind == keys.STUCK:
                app.alarms.raise_alarm(now, al.STUCK_KEY, key=keys.key_name(event[1]))
            elif kind == keys.STUCK_CLEARED:
                app.alarms.clear(now, al.STUCK_KEY)
            elif self.ui is not None and self.display_ok:
                self.ui.handle(event, app.now_ms())
            else:
                app.button_pressed()  # keys unseen on a dark screen do nothing else
            event = keypad.pop()

    def init_display(self):
        """(Re)start the display; True when it answered."""
        try:
            self.display.init_display()
        except OSError:
            self.display_ok = False
            return False
        self.display_ok = True
        self.retry_ms = None
        if self.ui is not None:
            self.ui.needs_redraw = True
        return True

    def redraw_due(self, now):
        ui = self.ui
        if ui is None:
            return None
        if self._frame_unsent:
            return now  # the rest of a frame sent in slices goes out on the next pass
        return ui.next_redraw_ms(now)

    def next_wake_ms(self, now):
        if self.ui is None:
            return None
        if self.display_ok:
            return self.redraw_due(now)
        return self.retry_ms

    def service_display(self, now):
        ui = self.ui
        if ui is None:
            return
        if ui.collect_due:
            # The workflow modules let go on the way home give their RAM back now, in the
            # main loop (never deep in a key handler).
            ui.collect_due = False
            gc.collect()
        app = self._app
        if not self.display_ok:
            retry = self.retry_ms
            if retry is None or now < retry:
                return
            if not self.init_display():
                self.retry_ms = now + DISPLAY_RETRY_MS
                return
            app.events.emit(now, ev.DISPLAY_BACK)
            app.alarms.clear(now, al.DISPLAY)
        due = self.redraw_due(now)
        if due is None or due > now:
            return
        if not self._frame_unsent:
            ui.draw(now)
        try:
            # show() sends at most a slice of the changes (the loop must not wait long).
            self._frame_unsent = self.display.show() is False
        except OSError:
            self._frame_unsent = False
            self.display_ok = False
            self.retry_ms = now + DISPLAY_RETRY_MS
            app.events.emit(now, ev.DISPLAY_LOST)
            app.alarms.raise_alarm(now, al.DISPLAY)
