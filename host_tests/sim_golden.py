"""A fixed set of whole-pump runs whose event streams are kept as golden files.

Each run is the shipped configuration (the plant, the line test, the display, the load cell
read through its driver) for a few simulated hours, with fixed seeds: basal at 0.1, 1 and
5 U/h, boluses of each kind, key presses, an occlusion and its alarm, a power cut. What a
run records (every event, every train booked, the motor's and the plant's final state) is
the evidence the simulator's speed-ups must leave unchanged: host_tests/test_sim_golden.py
compares it with the files in host_tests/golden/sim/.

    .venv/bin/python host_tests/sim_golden.py --record   # write the golden files anew
"""

import hashlib
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GOLDEN_DIR = os.path.join(HERE, "golden", "sim")

MIN = 60_000
HOUR = 3_600_000


def _settings(rate_mu_per_h):
    from pump.core.schedule import BasalProfile
    from pump.core.therapy import Settings

    s = Settings()
    s.max_basal_mu_per_h = 15_000
    s.profiles = [BasalProfile("Golden", [(0, rate_mu_per_h)], 15_000)]
    s.max_hour_mu = 40_000
    s.max_day_mu = 200_000
    return s


def _press(sim, at_ms, key, hold_ms=80):
    at_ns = sim._t0_ns + at_ms * 1_000_000
    sim.clock.call_at(at_ns, lambda: sim.hold_key(key))
    sim.clock.call_at(at_ns + hold_ms * 1_000_000, lambda: sim.hold_key(key, False))


def basal_low(SimPump, bolus, prepare):
    """0.1 U/h for 3 h, a 1 U bolus, the menu opened and left by keys."""
    sim = SimPump(settings=_settings(100), seed=11, prepare_board=prepare)
    sim.at(30 * MIN, lambda app: app.bolus(bolus.NORMAL, 1_000))
    _press(sim, 50 * MIN, "OK")
    _press(sim, 50 * MIN + 500, "DOWN")
    _press(sim, 50 * MIN + 1_000, "BACK")
    return sim, 3 * HOUR


def basal_one(SimPump, bolus, prepare):
    """1 U/h for 3 h: a normal, an extended and a dual-wave bolus."""
    sim = SimPump(settings=_settings(1_000), seed=12, prepare_board=prepare)
    sim.at(20 * MIN, lambda app: app.bolus(bolus.NORMAL, 2_000))
    sim.at(70 * MIN, lambda app: app.bolus(bolus.EXTENDED, 1_000, 0, 30 * MIN))
    sim.at(130 * MIN, lambda app: app.bolus(bolus.DUAL, 1_500, 50, 20 * MIN))
    return sim, 3 * HOUR


def basal_five_occlusion(SimPump, bolus, prepare):
    """5 U/h for 2 h on the typical plant: a bolus, then the line blocks; cleared, the alarm
    acknowledged, delivery resumed."""
    sim = SimPump(settings=_settings(5_000), seed=13, prepare_board=prepare)
    sim.at(10 * MIN, lambda app: app.bolus(bolus.NORMAL, 3_000))
    sim.at_plant(40 * MIN, lambda plant: plant.occlude())
    sim.at_plant(70 * MIN, lambda plant: plant.clear())
    sim.at(72 * MIN, lambda app: app.acknowledge())
    sim.at(73 * MIN, lambda app: app.resume())
    return sim, 2 * HOUR


def power_cut(SimPump, bolus, prepare):
    """1 U/h for 3 h on flash: a bolus, the power off for 10 min (the clock kept by its
    backup cell), a bolus after the boot."""
    from sim.hw.flashfs import FlashFS

    sim = SimPump(settings=_settings(1_000), seed=14, flash=FlashFS(), prepare_board=prepare)
    sim.clock_backup = True
    sim.at(30 * MIN, lambda app: app.bolus(bolus.NORMAL, 1_500))
    cuts = [(90 * MIN, 10 * MIN)]
    sim.at(110 * MIN, lambda app: app.bolus(bolus.NORMAL, 500))
    return sim, 3 * HOUR, cuts


SCENARIOS = {
    "basal_0.1_keys": basal_low,
    "basal_1_boluses": basal_one,
    "basal_5_occlusion": basal_five_occlusion,
    "basal_1_power_cut": power_cut,
}


def run(name):
    """Run one scenario; returns its record (a JSON-ready dict)."""
    from pump.core import bolus
    from sim import hw
    from sim.pump import SimPump

    # The fakes installed before the clock module is looked up: `from sim.hw import vclock`
    # in a fresh process would load a second copy whose clock never moves (every reading
    # recorded at instant 0).
    hw.install()
    vclock = hw.vclock

    readings = hashlib.sha256()
    count = [0]

    def prepare(board):
        # Every conversion the firmware's HX711 driver shifts out, with its instant.
        cell = getattr(board, "force_sensor", None)
        if cell is None:
            return
        read_raw = cell.read_raw

        def recorded():
            value = read_raw()
            readings.update(b"%d %r;" % (vclock.current().now_ns, value))
            count[0] += 1
            return value

        cell.read_raw = recorded

    built = SCENARIOS[name](SimPump, bolus, prepare)
    sim, duration_ms = built[0], built[1]
    screens = []  # (t_ms, name) at each change, until a reboot makes a new App
    ui = sim.app.ui
    if ui is not None:
        draw = ui.draw

        def draw_and_note(now_ms):
            draw(now_ms)
            shown = ui.screen_name()
            if not screens or screens[-1][1] != shown:
                screens.append([now_ms, shown])

        ui.draw = draw_and_note
    cuts = list(built[2]) if len(built) > 2 else []
    t = 0
    while t < duration_ms:
        t = min(t + HOUR, duration_ms)
        while cuts and cuts[0][0] <= t:
            at_ms, off_ms = cuts.pop(0)
            sim.run_until(at_ms)
            sim.power_loss(off_ms)
        sim.run_until(t)
    sim.settle()
    record = {
        "scenario": name,
        "events": [[seq, t_ms, etype, fields] for seq, t_ms, etype, fields in sim.events],
        "deliveries": [list(d) for d in sim.deliveries],
        "motor_steps": sim.driver.position_steps,
        "delivered_nl": round(sim.plant.delivered_nl(), 3),
        "line": sim.plant.line_state(),
        "cuts": [[c["t_ms"], c["off_ms"], c["motor_steps"]] for c in sim.cuts],
        "end_ms": sim.now_ms(),
        "load_cell_reads": count[0],
        "load_cell_sha256": readings.hexdigest(),
        "screens": screens,
        "frame_sha256": None if sim.display is None else hashlib.sha256(
            repr(sim.screen_pixels()).encode()).hexdigest(),
    }
    return json.loads(json.dumps(record, sort_keys=True))


def firmware_digest():
    """sha256 over the firmware and board sources: what the golden files were recorded on."""
    digest = hashlib.sha256()
    for top in ("firmware", "boards"):
        for folder, subfolders, names in os.walk(os.path.join(ROOT, top)):
            subfolders.sort()
            for name in sorted(names):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    digest.update(os.path.relpath(path, ROOT).encode() + b"\0")
                    with open(path, "rb") as f:
                        digest.update(f.read())
    return digest.hexdigest()


def golden_path(name):
    return os.path.join(GOLDEN_DIR, name + ".json")


def load(name):
    with open(golden_path(name)) as f:
        return json.load(f)


def record_all():
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    firmware = firmware_digest()
    for name in SCENARIOS:
        started = time.perf_counter()
        record = run(name)
        record["firmware_sha256"] = firmware
        with open(golden_path(name), "w") as f:
            json.dump(record, f, sort_keys=True, separators=(",", ":"))
            f.write("\n")
        print("%s: %d events, %d trains, %.1f s" % (
            name, len(record["events"]), len(record["deliveries"]),
            time.perf_counter() - started))


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: sim_golden.py --record")
    record_all()
