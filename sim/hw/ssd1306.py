"""Fake SSD1306 OLED controller for the fake I2C bus: decodes commands, keeps GDDRAM, shows pixels.

Attach it with ``machine.I2C(0).attach(0x3C, SSD1306Device())``. Each I2C write
arrives as ``write(bytes)``: a control byte (Co bit 7: one byte follows and then
another control byte; D/C# bit 6: data or commands), then command or GDDRAM bytes.
A command's arguments may come in later transfers, as on the chip.

The panel is modelled as the common 128x64 module: columns wired so that segment
remap (0xA1) and reversed COM scan (0xC8) show the frame upright, rows wired for
the alternative COM pin configuration (0xDA 0x12); the sequential setting scrambles
the rows as it does on the bench. Segment remap applies to data written after it
(datasheet: GDDRAM already written is unchanged); everything else acts at once.
The display offset is modelled as a shift of the start line. Scrolling is recorded,
not animated. Works under CPython and MicroPython.
"""

import errno

WIDTH = 128
PAGES = 8
ROWS = 64

HORIZONTAL = 0
VERTICAL = 1
PAGE = 2

# Commands that take arguments, and how many.
_ARG_COUNTS = {
    0x20: 1,  # memory addressing mode
    0x21: 2,  # column address window
    0x22: 2,  # page address window
    0x26: 6,  # horizontal scroll set-up (right)
    0x27: 6,  # (left)
    0x29: 5,  # vertical and horizontal scroll set-up
    0x2A: 5,
    0x81: 1,  # contrast
    0x8D: 1,  # charge pump
    0xA3: 2,  # vertical scroll area
    0xA8: 1,  # multiplex ratio
    0xD3: 1,  # display offset
    0xD5: 1,  # clock divide / oscillator
    0xD9: 1,  # pre-charge period
    0xDA: 1,  # COM pins hardware configuration
    0xDB: 1,  # VCOMH deselect level
}


class SSD1306Device:
    """A 128x64 SSD1306 on I2C; ``pixels()`` is what the panel shows."""

    def __init__(self, external_vcc=False):
        self.external_vcc = external_vcc  # a module with its own panel supply needs no pump
        self.unresponsive = False  # fault injection: every transfer fails like a missing ACK
        self.fail_after = -1  # fault injection: unresponsive after this many more transfers
        self.gddram = bytearray(WIDTH * PAGES)  # in segment order: [page * 128 + segment]
        self.transfers = 0
        self.bytes_received = 0  # after the I2C address byte, over all transfers
        self.data_bytes = 0
        self.commands = []  # (command, args tuple) in the order decoded
        self.unknown_commands = []
        self.bad_control_bytes = 0
        self.power_on_reset()

    def power_on_reset(self):
        """Registers back to the datasheet's reset values (as after a supply dropout)."""
        self.is_on = False
        self.contrast = 0x7F
        self.inverse = False
        self.entire_on = False
        self.addressing_mode = PAGE
        self.column_start = 0
        self.column_end = WIDTH - 1
        self.page_start = 0
        self.page_end = PAGES - 1
        self.page_mode_column = 0
        self.column = 0
        self.page = 0
        self.segment_remap = False
        self.com_reversed = False
        self.multiplex = ROWS
        self.display_offset = 0
        self.start_line = 0
        self.charge_pump = False
        self.com_pins = 0x12
        self.scrolling = False
        self.registers = {}  # timing settings (0xD5, 0xD9, 0xDB) and scroll set-ups
        self._command = None
        self._args = []

    # ----- the I2C device protocol ---------------------------------------------------------

    def write(self, data):
        if self.fail_after == 0:
            self.unresponsive = True
            self.fail_after = -1
        if self.unresponsive:
            raise OSError(errno.EIO, "EIO")
        if self.fail_after > 0:
            self.fail_after -= 1
        self.transfers += 1
        self.bytes_received += len(data)
        i = 0
        n = len(data)
        while i < n:
            control = data[i]
            i += 1
            if control & 0x3F:
                self.bad_control_bytes += 1
            is_data = control & 0x40
            if control & 0x80:  # Co: one byte, then another control byte
                if i < n:
                    self._byte(data[i], is_data)
                    i += 1
                continue
            while i < n:
                self._byte(data[i], is_data)
                i += 1

    def read(self, nbytes):
        if self.unresponsive:
            raise OSError(errno.EIO, "EIO")
        status = 0 if self.is_on else 0x40  # status byte: bit 6 set while the display is off
        return bytes([status] * nbytes)

    # ----- what the panel shows -----------------------------------------------------------

    @property
    def lit(self):
        """The panel shows something: display on and its supply (charge pump or external)."""
        return self.is_on and (self.charge_pump or self.external_vcc)

    def pixels(self):
        """64 rows of 128 ints, 1 for a lit pixel, top row first, as the panel shows them."""
        if not self.lit:
            return [[0] * WIDTH for _ in range(ROWS)]
        rows = []
        for y in range(ROWS):
            ram_row = self._ram_row(y)
            if ram_row < 0:
                rows.append([0] * WIDTH)
                continue
            base = (ram_row >> 3) * WIDTH
            bit = ram_row & 7
            row = []
            for x in range(WIDTH):
                on = (self.gddram[base + WIDTH - 1 - x] >> bit) & 1
                if self.entire_on:
                    on = 1
                elif self.inverse:
                    on ^= 1
                row.append(on)
            rows.append(row)
        return rows

    def _ram_row(self, y):
        # Physical row y is wired to COM pin slot 63 - y (the module is mounted so that
        # the reversed scan is upright); the COM pin setting decides which COM drives it.
        slot = ROWS - 1 - y
        alternative = self.com_pins & 0x10
        left_right = self.com_pins & 0x20
        if alternative:
            com = slot ^ 1 if left_right else slot
        elif (slot & 1) ^ (1 if left_right else 0):
            com = ROWS // 2 + slot // 2
        else:
            com = slot // 2
        if com >= self.multiplex:
            return -1
        scan = self.multiplex - 1 - com if self.com_reversed else com
        return (scan + self.start_line + self.display_offset) % ROWS

    # ----- decoding -----------------------------------------------------------------------

    def _byte(self, value, is_data):
        if is_data:
            self._write_ram(value)
            return
        if self._command is not None:
            self._args.append(value)
            if len(self._args) == _ARG_COUNTS[self._command]:
                command = self._command
                args = tuple(self._args)
                self._command = None
                self._args = []
                self._run(command, args)
            return
        if value in _ARG_COUNTS:
            self._command = value
            self._args = []
            return
        self._run(value, ())

    def _run(self, c, args):
        self.commands.append((c, args))
        if c == 0xAE or c == 0xAF:
            self.is_on = c == 0xAF
        elif c == 0x81:
            self.contrast = args[0]
        elif c == 0xA6 or c == 0xA7:
            self.inverse = c == 0xA7
        elif c == 0xA4 or c == 0xA5:
            self.entire_on = c == 0xA5
        elif c == 0x20:
            if args[0] & 3 != 3:
                self.addressing_mode = args[0] & 3
        elif c == 0x21:
            self.column_start = args[0] & 0x7F
            self.column_end = args[1] & 0x7F
            self.column = self.column_start
        elif c == 0x22:
            self.page_start = args[0] & 7
            self.page_end = args[1] & 7
            self.page = self.page_start
        elif c <= 0x0F:
            self.page_mode_column = (self.page_mode_column & 0x70) | c
            self.column = self.page_mode_column
        elif c <= 0x1F:
            self.page_mode_column = (self.page_mode_column & 0x0F) | ((c & 0x07) << 4)
            self.column = self.page_mode_column
        elif 0xB0 <= c <= 0xB7:
            self.page = c & 7
        elif 0x40 <= c <= 0x7F:
            self.start_line = c & 0x3F
        elif c == 0xA0 or c == 0xA1:
            self.segment_remap = c == 0xA1
        elif c == 0xC0 or c == 0xC8:
            self.com_reversed = c == 0xC8
        elif c == 0xA8:
            if args[0] & 0x3F >= 15:  # 16MUX..64MUX; smaller values are invalid
                self.multiplex = (args[0] & 0x3F) + 1
        elif c == 0xD3:
            self.display_offset = args[0] & 0x3F
        elif c == 0xDA:
            self.com_pins = args[0]
        elif c == 0x8D:
            self.charge_pump = bool(args[0] & 0x04)
        elif c == 0x2E or c == 0x2F:
            self.scrolling = c == 0x2F
        elif c in _ARG_COUNTS:
            self.registers[c] = args
        elif c != 0xE3:  # 0xE3 is NOP
            self.unknown_commands.append(c)

    def _write_ram(self, value):
        self.data_bytes += 1
        column = self.column
        segment = WIDTH - 1 - column if self.segment_remap else column
        self.gddram[self.page * WIDTH + segment] = value
        mode = self.addressing_mode
        if mode == HORIZONTAL:
            if column >= self.column_end:
                self.column = self.column_start
                self.page = self.page_start if self.page >= self.page_end else self.page + 1
            else:
                self.column = column + 1
        elif mode == VERTICAL:
            if self.page >= self.page_end:
                self.page = self.page_start
                self.column = self.column_start if column >= self.column_end else column + 1
            else:
                self.page += 1
        else:
            # Page mode: the column wraps to the start column; the page stays.
            self.column = self.page_mode_column if column >= WIDTH - 1 else column + 1
