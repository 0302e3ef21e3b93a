"""SSD1306 OLED on I2C: a MONO_VLSB framebuf the UI draws on; show() sends only what changed.

The driver is a ``framebuf.FrameBuffer``: draw with ``fill``, ``text``, ``rect``...,
then ``show()``. Nothing is sent in the constructor: the app calls ``init_display()``,
so a missing or dead display is an alarm, not a pump that cannot boot. Every bus
error (no ACK) propagates as ``OSError``; the app raises its display alarm and
calls ``init_display()`` again later, which also re-sends the whole frame.

``show()`` keeps a copy of what the panel holds and sends, for each 8-row page that
changed, only the columns from the first to the last changed byte; neighbouring
changed pages share one address window when that is cheaper. Bus cost at 400 kHz,
9 clocks per byte (8 bits and the ACK), the I2C address byte counted:

- the whole frame (``show_all()``, or every page changed across its width): one
  address window of 8 bytes (address, control byte 0x00, 0x21 c0 c1, 0x22 p0 p1) and
  one transfer of 1026 bytes (address, control byte 0x40, 128 x 8 bytes of GDDRAM),
  1034 bytes: 9306 clocks, about 23.3 ms;
- a page with n changed columns: 8 + 2 + n bytes, 0.3 to 3.1 ms;
- nothing changed: nothing sent;
- more than ``slice_bytes`` changed: the pages go out over several ``show()`` calls.

``last_bytes`` and ``last_transfers`` say what the last ``show()`` put on the bus.
Allocation: none for whole pages; one small memoryview (16 bytes on the Pico) for each
partial page sent. The comparison with the copy runs at C speed page by page
(memoryview ==), and byte by byte only inside a changed page.
"""

import framebuf
from micropython import const

# Control byte, the first byte after the I2C address (datasheet 8.1.5.1):
# Co (bit 7) = 0: only data bytes follow; D/C# (bit 6) says commands (0) or GDDRAM data (1).
_CONTROL_COMMANDS = const(0x00)
_CONTROL_DATA = const(0x40)

# Commands (datasheet section 9, command table).
_SET_MEMORY_MODE = const(0x20)  # + 0x00 horizontal: across a page, then the next page
_SET_COLUMN_ADDR = const(0x21)  # + first, last column of the window
_SET_PAGE_ADDR = const(0x22)  # + first, last page of the window
_SET_START_LINE = const(0x40)  # | RAM row shown on the first COM line (0)
_SET_CONTRAST = const(0x81)  # + 0..255
_SET_CHARGE_PUMP = const(0x8D)  # + 0x14 on (panel powered from 3.3 V), 0x10 off
_SEG_REMAP_ON = const(0xA1)  # column 127 drives SEG0: with 0xC8, the usual module is upright
_DISPLAY_FOLLOWS_RAM = const(0xA4)  # (0xA5 would light every pixel)
_NORMAL_DISPLAY = const(0xA6)  # | 1: inverse, a 0 bit lights the pixel
_SET_MULTIPLEX = const(0xA8)  # + rows - 1
_DISPLAY_OFF = const(0xAE)  # sleep: panel dark, GDDRAM kept
_DISPLAY_ON = const(0xAF)
_COM_SCAN_REMAPPED = const(0xC8)  # scan from COM[N-1] down to COM0
_SET_DISPLAY_OFFSET = const(0xD3)  # + vertical shift (0)
_SET_CLOCK = const(0xD5)  # + 0x80: reset oscillator frequency, divide ratio 1
_SET_PRECHARGE = const(0xD9)  # + phase 2 << 4 | phase 1, in clocks
_SET_COM_PINS = const(0xDA)  # + 0x12 alternative (128x64), 0x02 sequential (128x32)
_SET_VCOMH = const(0xDB)  # + deselect level: 0x20 = 0.77 Vcc, 0x30 = 0.83 Vcc
_SCROLL_OFF = const(0x2E)

_CONTRAST_DEFAULT = const(0x7F)  # the chip's reset value


_WHOLE_FRAME_BYTES = const(1034)  # window and frame, I2C address bytes included


class SSD1306(framebuf.FrameBuffer):
    """A width x height SSD1306 at ``addr`` on an I2C bus built by the board file."""

    slice_bytes = 640  # bus bytes per show() call at most (about 14.5 ms); None: no limit

    def __init__(self, i2c, width=128, height=64, addr=0x3C, external_vcc=False):
        if height % 8 or not 0 < height <= 64 or not 0 < width <= 128:
            raise ValueError("SSD1306: up to 128 x 64 pixels, height a multiple of 8")
        self.i2c = i2c
        self.addr = addr
        self.width = width
        self.height = height
        self.pages = height // 8
        self.external_vcc = external_vcc
        # One buffer for the control byte 0x40 and the frame behind it, so a redraw is a
        # single-buffer writeto(): the rp2 port copies the parts of a writevto() into a
        # temporary heap buffer first (mp_machine_i2c_transfer_adaptor).
        size = self.pages * width
        self._transfer = bytearray(1 + size)
        self._transfer[0] = _CONTROL_DATA
        whole = memoryview(self._transfer)
        self.buffer = whole[1:]
        super().__init__(self.buffer, width, height, framebuf.MONO_VLSB)
        self._command = bytearray(2)  # control byte, command
        self._command[0] = _CONTROL_COMMANDS
        self._command_arg = bytearray(3)  # control byte, command, argument
        self._command_arg[0] = _CONTROL_COMMANDS
        self._window = bytearray(
            (_CONTROL_COMMANDS, _SET_COLUMN_ADDR, 0, width - 1, _SET_PAGE_ADDR, 0, self.pages - 1)
        )
        # Page p goes out from the byte before it, which holds 0x40 during the transfer.
        self._whole = whole
        self._page_transfers = [
            whole[page * width : (page + 1) * width + 1] for page in range(self.pages)
        ]
        # What the panel's GDDRAM holds (valid once a whole frame went out), page by page.
        self._sent = bytearray(size)
        sent = memoryview(self._sent)
        self._sent_pages = [sent[page * width : (page + 1) * width] for page in range(self.pages)]
        self._frame_pages = [
            self.buffer[page * width : (page + 1) * width] for page in range(self.pages)
        ]
        self._sent_valid = False
        self._dirty = bytearray(2 * self.pages)  # per page: first, last changed column
        self.last_bytes = 0  # on the bus in the last show(), I2C address bytes included
        self.last_transfers = 0
        self._init_sequence = bytes(
            (
                _CONTROL_COMMANDS,
                _DISPLAY_OFF,
                _SET_CLOCK,
                0x80,
                _SET_MULTIPLEX,
                height - 1,
                _SET_DISPLAY_OFFSET,
                0,
                _SET_START_LINE | 0,
                _SET_CHARGE_PUMP,
                0x10 if external_vcc else 0x14,
                _SET_MEMORY_MODE,
                0x00,
                _SEG_REMAP_ON,
                _COM_SCAN_REMAPPED,
                _SET_COM_PINS,
                0x02 if width > 2 * height else 0x12,
                _SET_CONTRAST,
                _CONTRAST_DEFAULT,
                _SET_PRECHARGE,
                0x22 if external_vcc else 0xF1,
                _SET_VCOMH,
                0x30,
                _DISPLAY_FOLLOWS_RAM,
                _NORMAL_DISPLAY,
                _SCROLL_OFF,
            )
        )

    def init_display(self):
        """Configure the controller, send the current frame, then light the panel.

        The frame goes out before the panel is switched on, so whatever the GDDRAM
        held at power-up is never shown. Raises OSError if the display does not answer.
        """
        self._sent_valid = False
        self.i2c.writeto(self.addr, self._init_sequence)
        self.show_all()
        self.poweron()

    def show_all(self):
        """Send the whole frame (1034 bytes on the bus); allocation-free."""
        self._sent_valid = False
        self.last_bytes = 0
        self.last_transfers = 0
        self._send_window(0, self.pages - 1, 0, self.width - 1)
        self._send(self._transfer)
        self._sent[:] = self.buffer
        self._sent_valid = True

    def show(self, first_page=0, last_page=None):
        """Send what changed in pages first_page..last_page (default: all) since last sent.

        At most about ``slice_bytes`` go out per call (whole pages at a time, at least one):
        returns True once the panel shows the frame, False if more is left for the next
        call. A redraw that changes most of the screen thus goes out in two calls of
        about 13 ms each instead of one of 23 ms, and the main loop runs in between.
        """
        last = self.pages - 1
        if last_page is None:
            last_page = last
        if not 0 <= first_page <= last_page <= last:
            raise ValueError("SSD1306.show: page range")
        if not self._sent_valid:
            self.show_all()
            return True
        self.last_bytes = 0
        self.last_transfers = 0
        dirty = self._dirty
        width = self.width
        budget = self.slice_bytes
        count = 0
        full = 0
        for page in range(first_page, last_page + 1):
            if self._frame_pages[page] == self._sent_pages[page]:
                dirty[2 * page] = 1
                dirty[2 * page + 1] = 0  # first > last: clean
                continue
            self._changed_columns(page)
            count += 1
            if dirty[2 * page] == 0 and dirty[2 * page + 1] == width - 1:
                full += 1
        if count == 0:
            return True
        if full == self.pages and (budget is None or budget >= _WHOLE_FRAME_BYTES):
            self.show_all()
            return True
        # Runs of changed pages: one window each, or one per page where that costs less.
        spent = 0
        page = first_page
        while page <= last_page:
            c0 = dirty[2 * page]
            c1 = dirty[2 * page + 1]
            if c0 > c1:
                page += 1
                continue
            end = page
            cost = 8 + 3 + c1 - c0
            while end < last_page:
                n0 = dirty[2 * end + 2]
                n1 = dirty[2 * end + 3]
                if n0 > n1:
                    break
                u0 = c0 if c0 < n0 else n0
                u1 = c1 if c1 > n1 else n1
                pages = end - page + 1
                joined = 8 + (pages + 1) * (3 + u1 - u0)
                apart = cost + 11 + n1 - n0
                if joined > apart or (budget is not None and joined > budget):
                    break
                c0 = u0
                c1 = u1
                cost = joined
                end += 1
            if budget is not None and spent and spent + cost > budget:
                return False  # the rest on the next call
            self._send_columns(page, end, c0, c1)
            spent += cost
            page = end + 1
        return True

    def _changed_columns(self, page):
        """Record the first and last column where a page differs from what was sent."""
        width = self.width
        frame = self._frame_pages[page]
        sent = self._sent_pages[page]
        first = 0
        while frame[first] == sent[first]:
            first += 1
        last = width - 1
        while frame[last] == sent[last]:
            last -= 1
        self._dirty[2 * page] = first
        self._dirty[2 * page + 1] = last

    def _send_columns(self, first_page, last_page, c0, c1):
        """Columns c0..c1 of pages first_page..last_page, through one address window."""
        self._send_window(first_page, last_page, c0, c1)
        width = self.width
        transfer = self._transfer
        for page in range(first_page, last_page + 1):
            at = page * width + c0
            if c0 == 0 and c1 == width - 1:
                data = self._page_transfers[page]
            else:
                data = self._whole[at : page * width + c1 + 2]  # allocates a small view
            kept = transfer[at]  # the byte before column c0 (or the 0x40 itself)
            transfer[at] = _CONTROL_DATA
            try:
                self._send(data)
            finally:
                transfer[at] = kept
            self._sent_pages[page][:] = self._frame_pages[page]

    def _send_window(self, first_page, last_page, first_column, last_column):
        window = self._window
        window[2] = first_column
        window[3] = last_column
        window[5] = first_page
        window[6] = last_page
        self._send(window)

    def _send(self, buf):
        try:
            self.i2c.writeto(self.addr, buf)
        except OSError:
            self._sent_valid = False  # the panel may hold part of it: send all next time
            raise
        self.last_bytes += len(buf) + 1
        self.last_transfers += 1

    def poweroff(self):
        """Panel dark (sleep mode, about 10 uA); the GDDRAM keeps the frame."""
        self._write_command(_DISPLAY_OFF)

    def poweron(self):
        self._write_command(_DISPLAY_ON)

    def contrast(self, level):
        """Brightness 0..255 (segment current in 256 steps)."""
        cmd = self._command_arg
        cmd[1] = _SET_CONTRAST
        cmd[2] = level & 0xFF
        self.i2c.writeto(self.addr, cmd)

    def invert(self, inverted):
        """Light the pixels that are 0 in the frame (True) or the ones that are 1 (False)."""
        self._write_command(_NORMAL_DISPLAY | (1 if inverted else 0))

    def _write_command(self, command):
        cmd = self._command
        cmd[1] = command
        self.i2c.writeto(self.addr, cmd)
