"""Buttons on fake pins, the SSD1306 driver on the fake I2C device, and the frame helpers."""

import errno

import framebuf
import machine
import pytest

from pump.core.keys import BACK, DOWN, OK, PRESS, REPEAT, UP, Keypad
from pump.hal.buttons import Buttons
from pump.hal.ssd1306 import SSD1306
from sim import hw
from sim.frames import fb_pixels, find_text, from_text, save_png, to_text
from sim.hw import vclock
from sim.hw.ssd1306 import SSD1306Device

ADDR = 0x3C
PINS = {"up": 10, "down": 11, "ok": 12, "back": 13, "sda": 8, "scl": 9}  # boards/pico_default


@pytest.fixture
def clock():
    return hw.reset()


def make_buttons():
    pins = [machine.Pin(PINS[k], machine.Pin.IN, machine.Pin.PULL_UP) for k in PINS if k[0] != "s"]
    return Buttons(*pins), pins


def make_display(device=None):
    i2c = machine.I2C(0, scl=machine.Pin(PINS["scl"]), sda=machine.Pin(PINS["sda"]), freq=400_000)
    device = device or SSD1306Device()
    i2c.attach(ADDR, device)
    return SSD1306(i2c), device


def show_whole(oled):
    """show() until the panel has the frame (a big change goes out in slices)."""
    calls = 1
    while not oled.show():
        calls += 1
    return calls


def draw_status(fb):
    fb.fill(0)
    fb.fill_rect(0, 0, 128, 10, 1)
    fb.text("BASAL", 1, 1, 0)
    fb.text("0.80 U/h", 8, 20, 1)
    fb.rect(0, 34, 128, 14, 1)
    fb.fill_rect(2, 36, 70, 10, 1)
    fb.line(0, 63, 127, 50, 1)
    fb.text("IOB 1.25", 60, 54, 1)


# ----- buttons ----------------------------------------------------------------------------


def test_buttons_read_active_low_pins_as_a_key_mask(clock):
    buttons, pins = make_buttons()
    assert buttons.read_mask() == 0  # pull-ups: all keys up
    pins[0].drive(0)
    pins[3].drive(0)
    assert buttons.read_mask() == UP | BACK
    pins[0].drive(None)
    pins[1].drive(0)
    pins[2].drive(0)
    assert buttons.read_mask() == DOWN | OK | BACK


def test_any_edge_of_any_key_calls_the_wake_handler_as_a_hard_interrupt(clock):
    buttons, pins = make_buttons()
    woken = []

    def wake(pin):
        woken.append((pin.gpio, hw.irq.in_hard_irq()))

    buttons.on_edge(wake)
    pins[2].drive(0)
    pins[2].drive(1)
    pins[1].drive(0)
    assert woken == [(12, True), (12, True), (11, True)]
    buttons.deinit()
    pins[1].drive(1)
    assert len(woken) == 3


def test_the_main_loop_sleeps_until_an_edge_and_polls_only_while_a_key_is_down(clock):
    """The wiring proposed for the app: sample on wake, poll at next_poll_ms, else sleep."""
    buttons, pins = make_buttons()
    keypad = Keypad()
    woken = [False]

    def wake(_pin):  # hard interrupt: sets a flag, nothing else
        woken[0] = True

    buttons.on_edge(wake)
    ok = pins[2]
    up = pins[0]
    ms = vclock.NS_PER_MS
    # A bouncing OK press at 10 s, released at 10.3 s; UP held 1.2 s from 40 min on.
    for t, level in ((10_000, 0), (10_002, 1), (10_004, 0), (10_300, 1)):
        clock.call_at(t * ms, lambda level=level: ok.drive(level))
    clock.call_at(2_400_000 * ms, lambda: up.drive(0))
    clock.call_at(2_401_200 * ms, lambda: up.drive(1))
    timer = machine.Timer(-1)
    events = []
    samples = 0
    end_ms = 3_600_000
    while clock.now_ns < end_ms * ms:
        now = clock.now_ns // ms
        samples += 1
        keypad.update(now, buttons.read_mask())
        event = keypad.pop()
        while event is not None:
            events.append((now, event))
            event = keypad.pop()
        due = keypad.next_poll_ms(now)
        wait = end_ms - now if due is None else due - now
        woken[0] = False
        if wait > 0:
            timer.init(mode=machine.Timer.ONE_SHOT, period=wait, callback=wake, hard=True)
            while not woken[0]:
                machine.idle()
            timer.deinit()
    kinds = [(e[0], e[1]) for _t, e in events]
    assert kinds[0] == (PRESS, OK) and 10_300 < events[0][0] < 10_350
    assert kinds[1:] == [(PRESS, UP)] + [(REPEAT, UP)] * 4, events
    # An hour of virtual time: about 20 + 80 samples for the two presses, not 240 000.
    assert samples < 150, samples


# ----- the SSD1306 driver on the fake device ----------------------------------------------


def test_init_configures_the_panel_and_sends_the_frame_before_lighting_it(clock):
    oled, device = make_display()
    assert device.transfers == 0  # nothing on the bus until the app asks
    oled.init_display()
    assert device.is_on and device.charge_pump and device.lit
    assert device.multiplex == 64 and device.com_pins == 0x12
    assert device.segment_remap and device.com_reversed
    assert device.addressing_mode == 0 and not device.inverse and not device.entire_on
    assert device.unknown_commands == [] and device.bad_control_bytes == 0
    commands = [c for c, _args in device.commands]
    assert commands[0] == 0xAE and commands[-1] == 0xAF
    assert device.data_bytes == 1024  # the whole frame went out while the panel was dark
    assert device.pixels() == [[0] * 128 for _ in range(64)]


def test_a_drawn_frame_arrives_pixel_exact(clock):
    oled, device = make_display()
    oled.init_display()
    draw_status(oled)
    assert show_whole(oled) == 2
    shown = device.pixels()
    assert shown == fb_pixels(oled, 128, 64)
    assert sum(map(sum, shown)) > 1000
    assert find_text(shown, "BASAL", inverted=True) == [(1, 1)]
    assert find_text(shown, "0.80 U/h") == [(8, 20)]
    # Drawn again after a change: the panel follows.
    oled.fill_rect(2, 36, 70, 10, 0)
    oled.show()
    assert device.pixels() == fb_pixels(oled, 128, 64)


def _wire(device, before):
    """Bytes on the wire since ``before`` (bytes, transfers): the device does not receive
    the I2C address byte that starts each transfer."""
    transfers = device.transfers - before[1]
    return device.bytes_received - before[0] + transfers, transfers


def test_a_full_redraw_costs_1034_bytes_on_the_bus(clock):
    oled, device = make_display()
    oled.init_display()
    before = device.bytes_received, device.transfers
    oled.show_all()
    wire, transfers = _wire(device, before)
    assert (transfers, wire) == (2, 1034)
    assert (oled.last_transfers, oled.last_bytes) == (2, 1034)
    bits = wire * 9  # 8 data bits and the ACK
    assert 23.0 < bits / 400_000 * 1000 < 23.6  # ms at 400 kHz, start/stop not counted
    # Every page changed across its width: without a slice limit, show() sends the same
    # single frame transfer.
    oled.slice_bytes = None
    oled.fill(1)
    before = device.bytes_received, device.transfers
    assert oled.show() is True
    assert _wire(device, before) == (1034, 2)


def test_a_whole_new_screen_goes_out_in_slices_the_main_loop_can_wait_for(clock):
    oled, device = make_display()
    oled.init_display()
    oled.fill(1)
    slices = []
    done = False
    while not done:
        before = device.bytes_received, device.transfers
        done = oled.show()
        slices.append(_wire(device, before)[0])
        assert device.pixels() != fb_pixels(oled, 128, 64) or done
    assert device.pixels() == fb_pixels(oled, 128, 64)
    assert len(slices) == 2 and max(slices) <= oled.slice_bytes
    assert max(slices) * 9 / 400_000 * 1000 < 15  # ms of bus time per call
    assert oled.show() is True and oled.last_bytes == 0  # nothing left


def test_show_sends_nothing_when_nothing_changed(clock):
    oled, device = make_display()
    draw_status(oled)
    oled.init_display()
    before = device.bytes_received, device.transfers
    oled.show()
    assert _wire(device, before) == (0, 0) and oled.last_bytes == 0


def test_show_sends_only_the_changed_columns_of_the_changed_page(clock):
    oled, device = make_display()
    draw_status(oled)
    oled.init_display()
    oled.text("1.30", 92, 40, 1)  # page 5, columns 92..123 (some already lit)
    before = device.bytes_received, device.transfers
    oled.show()
    wire, transfers = _wire(device, before)
    assert transfers == 2  # the window, then the columns
    assert wire < 8 + 2 + 32 + 1
    assert device.pixels() == fb_pixels(oled, 128, 64)
    assert (oled.last_bytes, oled.last_transfers) == (wire, transfers)


def test_neighbouring_changed_pages_share_one_window_and_far_ones_get_their_own(clock):
    oled, device = make_display()
    oled.init_display()
    oled.fill_rect(10, 12, 20, 12, 1)  # pages 1 and 2, columns 10..29
    before = device.bytes_received, device.transfers
    oled.show()
    assert _wire(device, before) == (8 + 2 * (2 + 20), 3)  # one window, a transfer a page
    oled.pixel(0, 0, 1)  # page 0, column 0
    oled.pixel(127, 63, 1)  # page 7, column 127
    before = device.bytes_received, device.transfers
    oled.show()
    assert _wire(device, before) == (2 * (8 + 2 + 1), 4)
    assert device.pixels() == fb_pixels(oled, 128, 64)


def test_after_a_bus_error_the_next_show_sends_the_whole_frame(clock):
    oled, device = make_display()
    oled.init_display()
    device.unresponsive = True
    oled.text("X", 0, 0, 1)
    with pytest.raises(OSError):
        oled.show()
    device.unresponsive = False
    before = device.bytes_received, device.transfers
    oled.show()
    assert _wire(device, before) == (1034, 2)
    assert device.pixels() == fb_pixels(oled, 128, 64)


def test_show_of_a_page_range_updates_only_those_pages(clock):
    oled, device = make_display()
    oled.init_display()
    oled.fill_rect(0, 24, 128, 8, 1)  # page 3
    oled.fill_rect(0, 48, 128, 8, 1)  # page 6
    oled.show(3, 3)
    shown = device.pixels()
    assert all(shown[y] == [1] * 128 for y in range(24, 32))
    assert all(shown[y] == [0] * 128 for y in range(48, 56))
    oled.show(5, 7)
    assert device.pixels() == fb_pixels(oled, 128, 64)
    with pytest.raises(ValueError):
        oled.show(4, 8)


def test_display_off_on_invert_and_contrast(clock):
    oled, device = make_display()
    oled.init_display()
    oled.fill_rect(0, 0, 64, 64, 1)
    oled.show()
    frame = device.pixels()
    oled.poweroff()
    assert not device.is_on and device.pixels() == [[0] * 128 for _ in range(64)]
    assert device.read(1) == b"\x40"  # status: display off
    oled.poweron()
    assert device.pixels() == frame
    oled.invert(True)
    assert device.pixels() == [[1 - p for p in row] for row in frame]
    oled.invert(False)
    oled.contrast(300)
    assert device.contrast == 300 & 0xFF and device.pixels() == frame


def test_an_unresponsive_display_raises_oserror_and_recovers_after_init(clock):
    oled, device = make_display()
    oled.init_display()
    draw_status(oled)
    frame = bytes(oled.buffer)
    device.unresponsive = True
    with pytest.raises(OSError) as failure:
        oled.show()
    assert failure.value.errno == errno.EIO
    device.unresponsive = False
    oled.show_all()
    oled.fill_rect(0, 16, 128, 24, 0)  # pages 2 to 4 change
    oled.fill_rect(3, 17, 100, 20, 1)
    frame = bytes(oled.buffer)
    device.fail_after = 2  # the window and page 2 go through, page 3 fails
    with pytest.raises(OSError):
        oled.show(2, 4)
    assert bytes(oled.buffer) == frame  # the control byte borrowed for page 3 was put back
    with pytest.raises(OSError):
        oled.init_display()
    # Its supply dropped out meanwhile: registers back to reset, panel dark.
    device.power_on_reset()
    device.unresponsive = False
    assert not device.lit
    oled.init_display()
    assert device.lit and device.pixels() == fb_pixels(oled, 128, 64)


def test_a_display_missing_from_the_bus_raises_oserror(clock):
    i2c = machine.I2C(0, scl=machine.Pin(9), sda=machine.Pin(8))
    oled = SSD1306(i2c)  # building it sends nothing, so the pump still boots
    with pytest.raises(OSError) as failure:
        oled.init_display()
    assert failure.value.errno == errno.ENODEV


# ----- the fake device on its own -----------------------------------------------------------


def test_fake_device_decodes_single_byte_commands_and_page_and_vertical_modes(clock):
    device = SSD1306Device()
    # One command per transfer with the Co bit, arguments in later transfers.
    for byte in (0x8D, 0x14, 0xA1, 0xC8, 0xAF, 0x20, 0x02, 0xB2, 0x05, 0x10):
        device.write(bytes((0x80, byte)))
    device.write(b"\x40\xff\x81")  # page mode, page 2, column 5: two columns
    assert device.is_on and device.addressing_mode == 2
    art = to_text(device.pixels(), x=3, y=16, width=5, height=8)
    assert art.splitlines()[0] == "..##."
    assert art.splitlines()[7] == "..##."
    assert art.splitlines()[3] == "..#.."
    # Vertical mode in a 2-column, 2-page window: fills down, then across.
    device.write(b"\x00\x20\x01\x21\x00\x01\x22\x00\x01")
    device.write(b"\x40\x01\x02\x04\x08")
    assert [device.gddram[127], device.gddram[255], device.gddram[126], device.gddram[254]] == [
        1,
        2,
        4,
        8,
    ]
    assert device.unknown_commands == []


def test_fake_device_models_remap_scan_direction_and_com_pin_wiring(clock):
    oled, device = make_display()
    oled.init_display()
    oled.fill(0)
    oled.fill_rect(0, 0, 4, 2, 1)  # top-left corner
    oled.show()
    upright = to_text(device.pixels(), width=6, height=3)
    assert upright == "####..\n####..\n......"
    device.write(b"\x00\xc0")  # normal COM scan: upside down at once
    assert to_text(device.pixels(), y=61, width=6) == "......\n####..\n####.."
    device.write(b"\x00\xc8\xa0")  # segment remap off: affects only new data
    assert to_text(device.pixels(), width=6, height=3) == upright
    oled.show_all()
    assert to_text(device.pixels(), x=122, width=6, height=2) == "..####\n..####"
    device.write(b"\x00\xa1\xda\x02")  # sequential COM pins on an alternative-wired panel
    oled.show()
    rows = [y for y, row in enumerate(device.pixels()) if any(row)]
    assert rows != [0, 1]


# ----- framebuf fake and frame helpers ----------------------------------------------------


def test_fake_framebuf_draws_and_clips_like_micropython(clock):
    buf = bytearray(16 * 2)
    fb = framebuf.FrameBuffer(buf, 16, 16, framebuf.MONO_VLSB)
    fb.rect(-2, -2, 6, 6, 1)
    fb.line(15, 15, 9, 12, 1)
    fb.pixel(16, 0, 1)  # off the frame: ignored
    assert fb.pixel(16, 0) is None
    assert to_text(fb_pixels(fb, 16, 16), width=5, height=5) == (
        "...#.\n...#.\n...#.\n####.\n....."
    )
    assert buf[0] == 0b1000 and buf[3] == 0b1111
    assert to_text(fb_pixels(fb, 16, 16), x=8, y=11) == "\n".join(
        # MicroPython's Bresenham steps y on the first pixel already.
        ["........", ".##.....", "...##...", ".....##.", ".......#"]
    )
    with pytest.raises(ValueError):
        framebuf.FrameBuffer(bytearray(31), 16, 16, framebuf.MONO_VLSB)


def test_text_art_round_trips_and_find_text_locates_strings(clock, tmp_path):
    fb = framebuf.FrameBuffer(bytearray(128 * 8), 128, 64, framebuf.MONO_VLSB)
    fb.text("Hi", 3, 5, 1)
    fb.fill_rect(40, 30, 50, 10, 1)
    fb.text("OK", 44, 31, 0)
    pixels = fb_pixels(fb, 128, 64)
    assert from_text(to_text(pixels)) == pixels
    assert find_text(pixels, "Hi") == [(3, 5)]
    assert find_text(pixels, "OK", inverted=True) == [(44, 31)]
    assert find_text(pixels, "OK") == []
    path = save_png(pixels, str(tmp_path / "frame.png"), scale=3)
    from PIL import Image

    with Image.open(path) as image:
        assert image.size == (384, 192)
        y, x = next((y, x) for y, row in enumerate(pixels) for x, p in enumerate(row) if p)
        assert image.getpixel((3 * x + 1, 3 * y + 1)) == (120, 200, 255)
        assert image.getpixel((0, 0)) == (8, 10, 16)
