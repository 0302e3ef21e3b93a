"""The display on a real MicroPython: the fake framebuf against the real one, the driver's frame
and what a redraw allocates."""

import contextlib
import io

import pytest

from mpy.wasm import GUEST_PATHS, run_micropython

pytestmark = pytest.mark.micropython

# Drawn by both interpreters: text (clipped, outside ASCII, inverted), rects, lines that
# leave the frame, negative coordinates, pixels off the edge, scroll and blit with a key.
DRAWING = """
def draw(fb, w, h, framebuf):
    fb.fill(0)
    fb.text("Bolus 4.50 U", 2, 1, 1)
    fb.text("~{|}\\x7f\\x01\\xe9", -3, h - 6, 1)
    fb.text("edge", w - 13, -3, 1)
    fb.rect(0, 10, w, 12, 1)
    fb.fill_rect(4, 12, 20, 8, 1)
    fb.text("inv", 5, 12, 0)
    fb.rect(-5, -5, 12, 9, 1, True)
    fb.rect(w - 8, h - 5, 20, 20, 1)
    fb.fill_rect(w // 2, h // 2, 0, 5, 1)
    fb.fill_rect(-10, h - 3, w + 20, 2, 1)
    fb.hline(-4, 30 % h, w + 8, 1)
    fb.vline(w - 1, -3, h + 9, 1)
    fb.vline(7, 3, -4, 1)
    for x2, y2 in ((w - 1, h - 1), (0, h - 1), (w + 30, 5), (-20, -7), (3, 3), (40, h + 20)):
        fb.line(w // 2, h // 2, x2, y2, 1)
    fb.line(-10, 40, w + 10, 2, 1)
    fb.line(5, 5, 9, 60, 0)
    fb.pixel(1, 1, 1)
    fb.pixel(-1, 3, 1)
    fb.pixel(w, 3, 1)
    fb.pixel(2, 2, 7)
    probe = (fb.pixel(1, 1), fb.pixel(0, 0), fb.pixel(-1, 0), fb.pixel(w, h))
    fb.fill_rect(w - 20, 40 % h, 15, 13, 0)
    fb.scroll(3, -2)
    fb.scroll(-1, 1)
    sprite = framebuf.FrameBuffer(bytearray(10 * 2), 10, 10, framebuf.MONO_VLSB)
    sprite.fill(1)
    sprite.fill_rect(2, 2, 6, 6, 0)
    sprite.pixel(4, 4, 1)
    fb.blit(sprite, -3, h - 7, 0)
    fb.blit(sprite, w // 3, 2)
    return probe
"""

FORMATS = """
import binascii
import framebuf
CASES = (("MONO_VLSB", 128, 64, 0), ("MONO_VLSB", 37, 21, 41), ("MONO_HLSB", 30, 17, 0),
         ("MONO_HMSB", 29, 19, 33))
for name, w, h, stride in CASES:
    s = stride or w
    size = s * ((h + 7) // 8) if name == "MONO_VLSB" else ((s + 7) & ~7) * h // 8
    buf = bytearray(b"\\x5a" * size)
    fmt = getattr(framebuf, name)
    if stride:
        fb = framebuf.FrameBuffer(buf, w, h, fmt, stride)
    else:
        fb = framebuf.FrameBuffer(buf, w, h, fmt)
    probe = draw(fb, w, h, framebuf)
    print(name, w, h, stride, probe, binascii.hexlify(buf).decode())
"""

# The driver on the fake I2C bus and the fake SSD1306: run by both interpreters.
PANEL = """
import machine
import ssd1306 as fake_panel
from pump.hal.ssd1306 import SSD1306

machine.reset_fakes()
i2c = machine.I2C(0, scl=machine.Pin(9), sda=machine.Pin(8), freq=400000)
device = fake_panel.SSD1306Device()
i2c.attach(0x3C, device)
oled = SSD1306(i2c)
oled.init_display()
draw(oled, 128, 64, framebuf)
while not oled.show():
    pass
oled.fill_rect(0, 40, 128, 8, 1)
oled.text("page 5", 10, 40, 0)
oled.show(5, 5)
oled.invert(True)
rows = device.pixels()
print("frame=" + "".join(["".join([str(p) for p in row]) for row in rows]))
print("lit=%d" % sum([sum(row) for row in rows]))
"""

# Guest only: what one redraw allocates, on a bus stub that allocates nothing itself
# (the fake bus copies each transfer), then the same under heap_lock().
ALLOCATION = """
import gc
import micropython


class QuietBus:
    def __init__(self):
        self.sent = 0

    def writeto(self, addr, buf, stop=True):
        self.sent += len(buf)


def allocated(fn, n):
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(n):
        fn()
    return gc.mem_alloc() - before


def whole_change(oled):
    oled.fill(0 if oled.buffer[0] else 1)  # every byte changes: the whole frame goes out
    oled.show()


def sliced_change(oled):
    oled.fill(0 if oled.buffer[0] else 1)
    calls = 1
    while not oled.show():
        calls += 1
    assert calls == 2


def page_change(oled):
    oled.fill_rect(0, 24, 128, 16, 0 if oled.buffer[3 * 128] else 1)  # pages 3 and 4
    oled.show()


def column_change(oled):
    oled.fill_rect(20, 24, 8, 16, 0 if oled.buffer[3 * 128 + 20] else 1)  # part of 3 and 4
    oled.show()


def locked(oled):
    micropython.heap_lock()
    try:
        whole_change(oled)
        page_change(oled)
        oled.show(2, 4)
        oled.poweroff()
        oled.poweron()
        oled.contrast(200)
        oled.invert(False)
        ok = True
    except MemoryError:
        ok = False
    micropython.heap_unlock()
    return ok


def locked_call(fn):
    micropython.heap_lock()
    try:
        fn()
        ok = True
    except MemoryError:
        ok = False
    micropython.heap_unlock()
    return ok


def sample_keys(buttons, keypad):
    # OK held: debounced, no event yet (it is reported on release or after 1 s).
    for t in (1000, 1015, 1030, 1045):
        keypad.update(t, buttons.read_mask())


def measure():
    from pump.core.keys import OK, Keypad
    from pump.hal.buttons import Buttons

    pins = [machine.Pin(g, machine.Pin.IN, machine.Pin.PULL_UP) for g in (10, 11, 12, 13)]
    buttons = Buttons(*pins)
    keypad = Keypad()
    pins[2].drive(0)
    print("keys_locked_ok=%r" % locked_call(lambda: sample_keys(buttons, keypad)))
    print("keys_down=%d" % (keypad.down() == OK))
    bus = QuietBus()
    quiet = SSD1306(bus)
    quiet.init_display()
    bus.sent = 0
    quiet.slice_bytes = None
    print("alloc_show=%d" % allocated(lambda: whole_change(quiet), 10))
    print("sent_per_show=%d" % (bus.sent // 10))
    del quiet.slice_bytes  # back to the class's slices
    bus.sent = 0
    print("alloc_sliced=%d" % allocated(lambda: sliced_change(quiet), 10))
    print("sent_per_sliced=%d" % (bus.sent // 10))
    bus.sent = 0
    print("alloc_pages=%d" % allocated(lambda: page_change(quiet), 10))
    print("sent_per_pages=%d" % (bus.sent // 10))
    print("alloc_same=%d" % allocated(quiet.show, 10))
    print("alloc_columns=%d" % allocated(lambda: column_change(quiet), 10))
    print("locked_ok=%r" % locked(quiet))
    print("alloc_fake_bus=%d" % allocated(oled.show, 1))


# Not inside the try of guest(): a collection under it traps this WASI build.
try:
    measure()
except Exception as exc:
    print("error=%r" % (exc,))
"""


def guest(code, after="", paths=GUEST_PATHS):
    """Run code on MicroPython inside try/except (an exception prints error=...), then after."""
    wrapped = "try:\n" + "".join("    " + line + "\n" for line in code.splitlines()) + (
        "except Exception as exc:\n    print('error=%r' % (exc,))\n"
    )
    stdout, stderr = run_micropython(wrapped + after, paths)
    return stdout, stdout + stderr


def on_cpython(code):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<display>", "exec"), {"__name__": "display_case"})
    return out.getvalue()


def fields(stdout):
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


@pytest.mark.slow
def test_fake_framebuf_matches_the_real_one_byte_for_byte():
    real, out = guest(DRAWING + FORMATS, paths=())
    fake = on_cpython(DRAWING + FORMATS)
    real_lines = real.splitlines()
    assert len(real_lines) == 4, out
    for real_line, fake_line in zip(real_lines, fake.splitlines()):
        assert real_line.split()[:4] == fake_line.split()[:4]
        assert real_line == fake_line, "fake framebuf differs for %s" % " ".join(
            real_line.split()[:4]
        )
    # The drawing is not trivially empty or full.
    frame = bytes.fromhex(real_lines[0].split()[-1])
    assert 200 < sum(bin(b).count("1") for b in frame) < 4000


@pytest.mark.slow
def test_driver_with_the_real_framebuf_shows_the_frame_cpython_shows_and_allocates_little():
    """Also: reading the buttons and debouncing them allocates nothing."""
    setup = "import framebuf\n" + DRAWING + PANEL
    real, out = guest(setup, ALLOCATION, paths=("/input/sim/hw",) + GUEST_PATHS)
    result = fields(real)
    assert "error" not in result, out
    fake = fields(on_cpython(setup))
    assert len(result["frame"]) == 128 * 64
    assert result["frame"] == fake["frame"]
    assert 1000 < int(result["lit"]) < 7000
    # A whole new frame: the window (7 bytes) and the frame (1025 bytes), nothing allocated.
    assert int(result["sent_per_show"]) == 7 + 1025, out
    assert int(result["alloc_show"]) == 0, out
    # The same in two slices of four pages (the main loop runs in between): 2 x 528 bytes.
    assert int(result["sent_per_sliced"]) == 2 * (7 + 4 * 129), out
    assert int(result["alloc_sliced"]) == 0, out
    # Two whole pages: one window and a transfer per page, nothing allocated.
    assert int(result["sent_per_pages"]) == 7 + 2 * 129, out
    assert int(result["alloc_pages"]) == 0, out
    assert int(result["alloc_same"]) == 0, out  # nothing changed: nothing sent or made
    # Part of two pages: one small view of the frame per page sent.
    assert 0 < int(result["alloc_columns"]) <= 10 * 2 * 32, out
    assert result["locked_ok"] == "True", out
    # Sampling the buttons and debouncing them allocates nothing either.
    assert result["keys_locked_ok"] == "True", out
    assert result["keys_down"] == "1", out
    print("bytes allocated by one show() on the fake bus and device:", result["alloc_fake_bus"])
