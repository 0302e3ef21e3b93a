"""A day's segments edited one by one: basal profiles and the calculator's settings."""

from pump.core import calculator as calc
from pump.core import schedule
from pump.ui import text
from pump.ui.screens import BACK, LONG, OK, PRESS, Confirm, Editor, Menu, Screen


class SegmentList(Screen):
    """Edit a day's segments one by one: OK on a segment edits its start then its value(s),
    'Add' appends one, LONG OK deletes one, 'Save' asks to confirm.

    ``fields``: per value of a segment, (title, lo, hi, step, fmt); ``label(segment)``
    gives the row text; ``save(ui, segments)`` returns None or a refusal.
    """

    name = "segments"

    def __init__(self, title, segments, fields, label, save, summary,
                 max_segments=calc.MAX_SEGMENTS, done=None):
        self.max_segments = max_segments
        self.done = done  # after the save is confirmed (default: home)
        self.title = title
        self.segments = [list(segment) for segment in segments]
        self.fields = fields
        self.label = label
        self.save = save
        self.summary = summary
        self.menu = Menu("segments", title, [])
        self._rebuild()

    def _rebuild(self):
        labels = [self.label(segment) for segment in self.segments]
        labels.append("+ Add")
        labels.append("Save")
        self.menu.labels = labels
        if self.menu.selected >= len(labels):
            self.menu.selected = len(labels) - 1

    def key(self, ui, kind, key, step):
        menu = self.menu
        n = len(self.segments)
        if kind == PRESS and key == OK:
            index = menu.selected
            if index < n:
                self._edit(ui, index)
            elif index == n:
                self._add(ui)
            else:
                self._confirm_save(ui)
        elif kind == LONG and key == OK and 0 < menu.selected < n:
            del self.segments[menu.selected]
            self._rebuild()
            ui.flash("Segment deleted")
        elif kind == PRESS and key == BACK:
            ui.pop()
        else:
            menu.key(ui, kind, key if key != OK else 0, step)

    def _add(self, ui):
        last = self.segments[-1]
        if last[0] >= schedule.SLOTS_PER_DAY - 1 or len(self.segments) >= self.max_segments:
            ui.flash("No more segments")
            return
        segment = list(last)
        segment[0] = last[0] + 1
        self.segments.append(segment)
        self._rebuild()
        self.menu.selected = len(self.segments) - 1
        self._edit(ui, len(self.segments) - 1)

    def _edit(self, ui, index):
        segment = self.segments[index]
        following = self.segments[index + 1][0] - 1 if index + 1 < len(self.segments) else 47

        def edit_value(ui, field):
            title, lo, hi, step, fmt = self.fields[field]

            def value_ok(ui, value):
                segment[1 + field] = value
                if field + 1 < len(self.fields):
                    edit_value(ui, field + 1)
                else:
                    self._rebuild()
                    ui.pop()

            ui.replace(Editor("segment value", title, segment[1 + field], lo, hi, step, fmt,
                              value_ok))

        def start_ok(ui, start):
            segment[0] = start
            self._rebuild()
            edit_value(ui, 0)

        if index == 0:
            ui.push(Screen())  # the first segment starts at 00:00: only its value is edited
            edit_value(ui, 0)
        else:
            previous = self.segments[index - 1][0] + 1
            ui.push(Editor("segment start", "Starts at", segment[0], previous, following, 1,
                           text.slot, start_ok))

    def _confirm_save(self, ui):
        segments = [tuple(segment) for segment in self.segments]

        def save(ui):
            return self.save(ui, segments)

        lines = self.summary(segments)
        ui.push(Confirm("confirm save", "Save " + self.title, lines, save, done=self.done))

    def draw(self, ui, p, now):
        self.menu.draw(ui, p, now)
