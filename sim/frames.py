"""Screen frames: pixels as text art, finding text on screen, PNG snapshots.

A frame is a list of rows, each a list of 0/1 ints, top row first: what the fake
SSD1306 shows (``SSD1306Device.pixels()``) or what a framebuf holds (``fb_pixels``).
"""

from sim import hw

hw.install()  # framebuf: the stand-in on CPython, the builtin under MicroPython

import framebuf

ON = "#"
OFF = "."


def fb_pixels(fb, width, height):
    """The frame a FrameBuffer holds, as rows of 0/1."""
    return [[fb.pixel(x, y) for x in range(width)] for y in range(height)]


def to_text(pixels, x=0, y=0, width=None, height=None, on=ON, off=OFF):
    """Text art, one line per row ('#' lit, '.' dark), optionally cropped to a box."""
    rows = pixels[y : None if height is None else y + height]
    end = None if width is None else x + width
    return "\n".join("".join(on if p else off for p in row[x:end]) for row in rows)


def from_text(art, on=ON):
    """The frame back from text art (surrounding blank lines and indentation ignored)."""
    lines = [line.strip() for line in art.strip().splitlines()]
    return [[1 if ch == on else 0 for ch in line] for line in lines]


def text_pixels(text, inverted=False):
    """How framebuf draws ``text`` (8 px per char, 8 rows), with its background."""
    width = 8 * len(text)
    fb = framebuf.FrameBuffer(bytearray(width), width, 8, framebuf.MONO_VLSB)
    fb.fill(1 if inverted else 0)
    fb.text(text, 0, 0, 0 if inverted else 1)
    return fb_pixels(fb, width, 8)


def _row_masks(rows):
    return [sum(1 << x for x, p in enumerate(row) if p) for row in rows]


def find_text(pixels, text, inverted=False):
    """Every (x, y) where ``text`` is drawn with its 8x8 cells intact, top-left first.

    ``inverted`` looks for dark text on a lit bar. Pixels in the cells must match
    exactly, so a partly covered or clipped string is not found.
    """
    if not text or not pixels:
        return []
    needle = _row_masks(text_pixels(text, inverted))
    width = 8 * len(text)
    cell = (1 << width) - 1
    screen = _row_masks(pixels)
    screen_width = len(pixels[0])
    found = []
    for y in range(len(pixels) - 7):
        for x in range(screen_width - width + 1):
            if all((screen[y + j] >> x) & cell == needle[j] for j in range(8)):
                found.append((x, y))
    return found


def has_text(pixels, text, inverted=False):
    return bool(find_text(pixels, text, inverted))


def save_png(pixels, path, scale=4, lit=(120, 200, 255), dark=(8, 10, 16)):
    """Write the frame as a PNG that looks like the OLED: light pixels on a dark panel."""
    from PIL import Image

    height = len(pixels)
    width = len(pixels[0]) if height else 0
    image = Image.new("RGB", (width, height), dark)
    image.putdata([lit if p else dark for row in pixels for p in row])
    if scale != 1:
        image = image.resize((width * scale, height * scale), Image.NEAREST)
    image.save(path, "PNG")
    return path


# ----- reading text back from the pixels -----


def _glyphs():
    table = {}
    for code in range(33, 127):
        for inverted in (False, True):
            rows = text_pixels(chr(code), inverted)
            table[tuple(sum(p << x for x, p in enumerate(row)) for row in rows)] = chr(code)
    return table


_GLYPHS = None


def read_lines(pixels):
    """The texts drawn at 8x8 (lit or on a lit bar), as 'x,y: text', by matching glyphs."""
    global _GLYPHS
    if _GLYPHS is None:
        _GLYPHS = _glyphs()
    masks = [sum(p << x for x, p in enumerate(row)) for row in pixels]
    width = len(pixels[0])
    found = []
    for y in range(len(pixels) - 7):
        x = 0
        while x <= width - 8:
            run = ""
            cx = x
            while cx <= width - 8:
                cell = tuple((masks[y + j] >> cx) & 0xFF for j in range(8))
                ch = _GLYPHS.get(cell)
                if ch is None:
                    if cell == (0,) * 8 or cell == (0xFF,) * 8:
                        ch = " "
                    else:
                        break
                if ch == " " and not run:
                    break
                run += ch
                cx += 8
            run = run.rstrip()
            if len(run) >= 2:
                found.append("%d,%d: %s" % (x, y, run))
                x = cx
            else:
                x += 1
    return found


def find_big_text(pixels, words, scale):
    """Where ``words`` is drawn at ``scale`` times the 8x8 font (dark background)."""
    small = text_pixels(words)
    big = [[p for p in row for _ in range(scale)] for row in small for _ in range(scale)]
    needle = [sum(p << x for x, p in enumerate(row)) for row in big]
    width = len(big[0])
    cell = (1 << width) - 1
    screen = [sum(p << x for x, p in enumerate(row)) for row in pixels]
    hits = []
    for y in range(len(pixels) - len(big) + 1):
        for x in range(len(pixels[0]) - width + 1):
            if all((screen[y + j] >> x) & cell == needle[j] for j in range(len(big))):
                hits.append((x, y))
    return hits
