"""The screens on a real MicroPython: a normal bolus from home gives the same frame bytes as on
CPython, and what one redraw allocates."""

import os
import sys

import pytest

from mpy.wasm import GUEST_PATHS, run_micropython

pytestmark = pytest.mark.micropython

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FAKES = os.path.join(ROOT, "sim", "hw")

# Run by both interpreters: the real firmware and board file on the host fakes, the screens
# on a framebuf, a normal bolus of 0.10 U walked from home by key events.
WORKFLOW = """
import binascii
import gc

import framebuf
import machine
from guest_pump import fresh_clock, run_for, without

clock = fresh_clock()

import pico_default
from pump.app import App
from pump.core import keys
from pump.ui.ui import Ui

board = pico_default.build()
# This run drives the motor, timers and screens only: no display, battery or watchdog
# devices are attached in the guest (they have their own tests).
without(board, ("display", "battery", "battery_monitor", "watchdog",
                "force_sensor", "pressure", "occlusion", "load_cell"))
machine.Pin.lookup(pico_default.PINS["step"]).record = False  # keep the 1 MB guest heap free
app = App(board, clock, ms_of_day=8 * 3_600_000)
app.start()
buf = bytearray(1024)
fb = framebuf.FrameBuffer(buf, 128, 64, framebuf.MONO_VLSB)
ui = Ui(app, fb)


def allocated():
    # No gc.collect() here: a collection in this run traps this WASI build; 1 MB is ample.
    if not hasattr(gc, "mem_alloc"):  # CPython
        ui.draw(app.now_ms())
        return 0
    before = gc.mem_alloc()
    ui.draw(app.now_ms())
    return gc.mem_alloc() - before


measured = {}
ui.draw(app.now_ms())
measured["home"] = allocated()
for key in (keys.OK, keys.OK, keys.UP, keys.OK, keys.OK):
    run_for(app, clock, 300)
    ui.handle((keys.PRESS, key, 1), app.now_ms())
    name = ui.screen_name()
    ui.draw(app.now_ms())
    if name not in measured:
        measured[name] = allocated()
run_for(app, clock, 1000)
measured["home bolus"] = allocated()
run_for(app, clock, 20_000)
ui.draw(app.now_ms())
print("screen=" + ui.screen_name())
print("started=%d" % len([e for e in app.events.recent() if e[2] == "bolus_started"]))
print("finished=%d" % len([e for e in app.events.recent() if e[2] == "bolus_finished"]))
for name in measured:
    print("alloc %s=%d" % (name, measured[name]))
print("frame=" + binascii.hexlify(buf).decode())
"""


def _parse(out):
    result = {}
    for line in out.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            result[key] = value
    return result


def _run_on_cpython():
    import contextlib
    import io

    guest_helpers = os.path.join(ROOT, "sim", "mpy")
    boards = os.path.join(ROOT, "boards")
    for folder in (FAKES, boards, guest_helpers):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(WORKFLOW, "workflow", "exec"), {})
    return _parse(out.getvalue())


def test_normal_bolus_from_home_draws_the_same_frame_as_cpython_and_allocates_little():
    guest = "try:\n" + "".join("    " + line + "\n" for line in WORKFLOW.splitlines()) + (
        "except Exception as err:\n    print('error=%r' % (err,))\n"
    )
    stdout, stderr = run_micropython(guest, ("/input/sim/hw",) + GUEST_PATHS)
    mpy = _parse(stdout)
    assert "error" not in mpy, stdout + stderr
    host = _run_on_cpython()
    assert mpy["started"] == "1" and mpy["finished"] == "1", stdout
    assert mpy["screen"] == host["screen"] == "home"
    assert mpy["frame"] == host["frame"]
    allocs = {k[len("alloc ") :]: int(v) for k, v in mpy.items() if k.startswith("alloc ")}
    print("bytes allocated per redraw on MicroPython:", allocs)
    assert set(allocs) >= {"home", "menu", "bolus amount", "confirm bolus", "home bolus"}
    assert max(allocs.values()) < 1024, allocs


@pytest.mark.slow
def test_every_redraw_of_the_walk_allocates_under_1_kb_and_waits_under_20_ms():
    """tools/bench_ui.py's walk: the figures docs/bench/ui.md reports, held to the targets."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import bench_ui

    rows = bench_ui.run_guest()
    screens = {row[1] for row in rows}
    assert {"home", "menu", "bolus amount", "confirm bolus", "cancel bolus", "carbs", "bg",
            "calculator result", "temp menu", "history", "settings", "alarm"} <= screens
    for label, screen, nbytes, _transfers, calls, longest, alloc in rows:
        where = "%s %s" % (screen, label)
        assert 0 <= alloc < bench_ui.TARGET_ALLOC, where
        assert longest * 1000 / bench_ui.I2C_HZ < bench_ui.TARGET_MS, where  # one wait
        assert nbytes <= 1034 + 3 * 8 and calls <= 3, where
    # Updates within a screen (a value, the clock, the progress bar) are small.
    assert [r[2] for r in rows if r[0] == "+0.05 U"][0] < 150
    assert [r[2] for r in rows if r[0] == "progress, 1 s"][0] < 150
    # The same walk on CPython sends the same bytes.
    host = bench_ui.run_host()
    assert [r[:5] for r in host] == [r[:5] for r in rows]


# The menus' RAM: each workflow's module is imported when its screen opens and let go at
# home. Run under MicroPython with top-level collections only (deeper ones trap this build).
MODULES_RAM = """
import gc
import sys

import framebuf
import machine
from guest_pump import fresh_clock, run_for, without

clock = fresh_clock()
import pico_default
from pump.app import App
from pump.core import keys
from pump.ui.ui import Ui

board = pico_default.build()
without(board, ("display", "battery", "battery_monitor", "watchdog",
                "force_sensor", "pressure", "occlusion", "load_cell"))
machine.Pin.lookup(pico_default.PINS["step"]).record = False
app = App(board, clock, ms_of_day=8 * 3_600_000)
app.start()
ui = Ui(app, framebuf.FrameBuffer(bytearray(1024), 128, 64, framebuf.MONO_VLSB))
ui.draw(app.now_ms())
OK, BACK, DOWN = keys.OK, keys.BACK, keys.DOWN


def keyseq(seq):
    for k in seq:
        run_for(app, clock, 300)
        ui.handle((keys.PRESS, k, 1), app.now_ms())
        ui.draw(app.now_ms())


def loaded():
    return ",".join(sorted(k[8:] for k in sys.modules if k[:8] == "pump.ui."))


gc.collect()
base = gc.mem_alloc()
keyseq([OK])
gc.collect()
print("menu=%d" % (gc.mem_alloc() - base))
keyseq([DOWN] * 7 + [OK, DOWN, DOWN, OK])
gc.collect()
print("settings=%d %s" % (gc.mem_alloc() - base, ui.screen_name()))
print("inside=" + loaded())
keyseq([BACK, BACK, BACK])
gc.collect()
print("home=%d %s" % (gc.mem_alloc() - base, ui.screen_name()))
print("after=" + loaded())
"""


def test_a_workflow_takes_ram_only_while_its_screens_are_open():
    stdout, stderr = run_micropython(MODULES_RAM, ("/input/sim/hw",) + GUEST_PATHS)
    got = _parse(stdout)
    assert "home" in got, stdout + stderr
    print("heap after a collection, above home's: ", got)
    assert got["inside"] == "menu,screens,settings,text,ui,widgets"
    assert got["after"] == "screens,text,ui,widgets"  # every workflow let go
    assert int(got["menu"]) < 6_000  # the whole menu tree took 24 KB resident before
    assert int(got["settings"].split()[0]) < 16_000
    assert int(got["home"].split()[0]) < 4_000


# The setup screens on MicroPython: the walk from the first step to the start, by keys.
SETUP_WALK = """
import framebuf
import machine
from guest_pump import fresh_clock, run_for, without

clock = fresh_clock()
import pico_default
from pump.app import App
from pump.core import keys
from pump.ui.ui import Ui

board = pico_default.build()
without(board, ("display", "battery", "battery_monitor", "watchdog",
                "force_sensor", "pressure", "occlusion", "load_cell"))
machine.Pin.lookup(pico_default.PINS["step"]).record = False
app = App(board, clock, ms_of_day=8 * 3_600_000)
app.start()
ui = Ui(app, framebuf.FrameBuffer(bytearray(1024), 128, 64, framebuf.MONO_VLSB))
ui.open("setup", "start")
seen = []
presses = [keys.OK] * 4 + [keys.OK] + [keys.DOWN] * 20 + [keys.OK] * 4 + [keys.OK]
for key in presses:
    run_for(app, clock, 200)
    ui.handle((keys.PRESS, key, 1), app.now_ms())
    ui.draw(app.now_ms())
    if ui.screen_name() not in seen:
        seen.append(ui.screen_name())
print("seen=" + ",".join(seen))
print("max_bolus=%d" % app.therapy.settings.max_bolus_mu)
print("steps=" + ",".join(e[3]["step"] for e in app.events.recent() if e[2] == "setup_step"))
"""


def test_the_setup_screens_walk_to_the_start_on_micropython():
    guest = "try:\n" + "".join("    " + line + "\n" for line in SETUP_WALK.splitlines()) + (
        "except Exception as err:\n    print('error=%r' % (err,))\n"
    )
    stdout, stderr = run_micropython(guest, ("/input/sim/hw",) + GUEST_PATHS)
    got = _parse(stdout)
    assert "error" not in got and "steps" in got, stdout + stderr
    assert got["seen"].split(",") == [
        "date time", "setup basal", "setup max bolus", "setup max basal", "setup max hour",
        "setup max day", "setup confirm", "home"]
    assert got["max_bolus"] == "9000"  # 10.00 U less 20 steps of 0.05 U
    assert got["steps"] == "clock,basal,max_bolus,max_basal,max_hour,max_day,done"
