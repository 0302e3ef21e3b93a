"""Drawing helpers on a 128x64 framebuf: title bar, lines, big text, progress bar, lists."""

import framebuf
from micropython import const

WIDTH = const(128)
HEIGHT = const(64)
CHAR = const(8)  # the builtin font is 8x8
TITLE_H = const(9)  # a lit bar with dark text, and a row of space under it
LIST_ROWS = const(6)  # list rows under the title bar
LIST_TOP = const(11)
ROW_H = const(9)


class Painter:
    """Draws on ``fb``; holds the one scratch line the big text is rendered through."""

    def __init__(self, fb):
        self.fb = fb
        # One text line (16 chars) drawn at 8x8 and read back column by column.
        self._line_buf = bytearray(WIDTH)
        self._line = framebuf.FrameBuffer(self._line_buf, WIDTH, CHAR, framebuf.MONO_VLSB)

    def clear(self):
        self.fb.fill(0)

    def title(self, text):
        """A lit bar across the top with the title in dark letters."""
        fb = self.fb
        fb.fill_rect(0, 0, WIDTH, TITLE_H, 1)
        fb.text(text, 1, 1, 0)

    def text(self, text, x, y, inverted=False):
        if inverted:
            self.fb.fill_rect(x - 1, y - 1, len(text) * CHAR + 2, CHAR + 2, 1)
            self.fb.text(text, x, y, 0)
        else:
            self.fb.text(text, x, y, 1)

    def right(self, text, y):
        """Text flush with the right edge."""
        self.fb.text(text, WIDTH - len(text) * CHAR, y, 1)

    def center(self, text, y, scale=1):
        width = len(text) * CHAR * scale
        x = (WIDTH - width) // 2
        if scale == 1:
            self.fb.text(text, x if x > 0 else 0, y, 1)
        else:
            self.big(text, x if x > 0 else 0, y, scale)

    def big(self, text, x, y, scale=2):
        """Text at ``scale`` times the 8x8 font, each lit font pixel a filled square."""
        line = self._line
        buf = self._line_buf
        line.fill(0)
        line.text(text, 0, 0, 1)
        fill_rect = self.fb.fill_rect
        columns = len(text) * CHAR
        if columns > WIDTH:
            columns = WIDTH
        for col in range(columns):
            bits = buf[col]
            row = 0
            while bits:
                if bits & 1:
                    # A vertical run of lit pixels becomes one rectangle.
                    start = row
                    while bits & 1:
                        bits >>= 1
                        row += 1
                    fill_rect(x + col * scale, y + start * scale, scale, (row - start) * scale, 1)
                else:
                    bits >>= 1
                    row += 1

    def progress(self, x, y, width, height, done, total):
        """An outlined bar filled in proportion to done / total."""
        fb = self.fb
        fb.rect(x, y, width, height, 1)
        if total > 0:
            inner = (width - 2) * done // total
            if inner > width - 2:
                inner = width - 2
            if inner > 0:
                fb.fill_rect(x + 1, y + 1, inner, height - 2, 1)

    def list_rows(self, labels, selected, top):
        """Rows ``top``.. of ``labels`` under the title; the selected one lit."""
        n = len(labels)
        for i in range(LIST_ROWS):
            index = top + i
            if index >= n:
                break
            y = LIST_TOP + i * ROW_H
            if index == selected:
                self.fb.fill_rect(0, y - 1, WIDTH - 3, CHAR + 1, 1)
                self.fb.text(labels[index], 1, y, 0)
            else:
                self.fb.text(labels[index], 1, y, 1)
        if n > LIST_ROWS:
            # A scroll mark: where the rows shown sit in the whole list.
            span = HEIGHT - LIST_TOP
            bar = span * LIST_ROWS // n
            self.fb.fill_rect(WIDTH - 2, LIST_TOP + span * top // n, 2, bar if bar > 2 else 2, 1)


def scroll_top(selected, top, rows=LIST_ROWS):
    """The first row to show so that ``selected`` stays visible."""
    if selected < top:
        return selected
    if selected >= top + rows:
        return selected - rows + 1
    return top
