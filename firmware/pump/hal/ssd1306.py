"""SSD1306 OLED on I2C: a MONO_VLSB framebuf the UI draws on, sent whole or by page range.

The driver is a ``framebuf.FrameBuffer``: draw with ``fill``, ``text``, ``rect``...,
then ``show()``. Nothing is sent in the constructor: the app calls ``init_display()``,
so a missing or dead display is an alarm, not a pump that cannot boot. Every bus
error (no ACK) propagates as ``OSError``; the app raises its display alarm and
calls ``init_display()`` again later, which also re-sends the frame.

``show()`` allocates nothing: the frame, the command buffers and the page views
are all made once here, and every transfer is one buffer passed to ``writeto``.

Cost of a full redraw at 400 kHz, 9 clocks per byte (8 bits and the ACK):
the address window is one transfer of 8 bytes (I2C address, control byte 0x00,
0x21 0 127, 0x22 0 7) and the frame one transfer of 1026 bytes (I2C address,
control byte 0x40, 128 x 8 pages of GDDRAM), 1034 bytes in all: 9306 clocks plus
two start/stop pairs, about 23.3 ms of bus time, during which the main loop waits
(the basal timer and the PIO step trains do not). One page, ``show(p, p)``, is
8 + 130 bytes (138 bytes, about 3.1 ms).
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


class SSD1306(framebuf.FrameBuffer):
    """A width x height SSD1306 at ``addr`` on an I2C bus built by the board file."""

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
        self._page_transfers = [
            whole[page * width : (page + 1) * width + 1] for page in range(self.pages)
        ]
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
        self.i2c.writeto(self.addr, self._init_sequence)
        self.show()
        self.poweron()

    def show(self, first_page=0, last_page=None):
        """Send pages first_page..last_page (default: all) of the frame; allocation-free."""
        last = self.pages - 1
        if last_page is None:
            last_page = last
        if not 0 <= first_page <= last_page <= last:
            raise ValueError("SSD1306.show: page range")
        window = self._window
        window[5] = first_page
        window[6] = last_page
        self.i2c.writeto(self.addr, window)
        if first_page == 0 and last_page == last:
            self.i2c.writeto(self.addr, self._transfer)
            return
        # The address pointer carries on across transfers inside the window.
        transfer = self._transfer
        for page in range(first_page, last_page + 1):
            at = page * self.width
            kept = transfer[at]  # the last byte of the page above (or the 0x40 itself)
            transfer[at] = _CONTROL_DATA
            try:
                self.i2c.writeto(self.addr, self._page_transfers[page])
            finally:
                transfer[at] = kept

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
