"""Where a simulated day's time goes: cProfile of the whole firmware on the simulator.

    .venv/bin/python tools/profile_sim.py [--hours 2] [--rate 1.0] [--boluses] [--out FILE]
    .venv/bin/python tools/profile_sim.py --speed [--out FILE]

The shipped configuration (plant, line test, display, load cell through its driver), one
process. The profile report gives the time by file (firmware, simulator models) and the
functions that take the most; --speed instead times the runs `make bench` holds to its
targets, without the profiler. Both name the simulator they ran (the `sim` package's
folder), so the same tool measures an older tree's models against this one's firmware.
"""

import argparse
import cProfile
import io
import os
import pstats
import sys
import time

import sim
from bench import basal_settings  # one rate all day, limits and auto-off out of the way
from sim.pump import SimPump

from pump.core import bolus as bolus_mod

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
BOLUS_TIMES_H = ((7.5, 4000), (12.5, 5500), (19.0, 6000))


def run(hours, rate_u_h, boluses):
    """One simulated pump for ``hours``; three boluses a day when ``boluses``."""
    pump = SimPump(settings=basal_settings(rate_u_h))
    duration_ms = int(hours * HOUR_MS)
    if boluses:
        for day in range(int(hours // 24) + 1):
            for at_h, mu in BOLUS_TIMES_H:
                at = day * DAY_MS + int(at_h * HOUR_MS)
                if at < duration_ms:
                    pump.at(at, lambda app, mu=mu: app.bolus(bolus_mod.NORMAL, mu))
    t = 0
    while t < duration_ms:
        t = min(t + HOUR_MS, duration_ms)
        pump.run_until(t)
    return pump


def _group(path):
    for mark in ("/firmware/", "/sim/", "/boards/", "/tools/"):
        if mark in path:
            return mark.strip("/") + "/" + path.split(mark, 1)[1]
    return "python" if path == "~" else "python:" + os.path.basename(path)


def warm_up():
    """A short run first: what the firmware and the models import on first use is loaded
    before anything is measured."""
    run(0.25, 1.0, False)


def profile_report(hours, rate_u_h, boluses):
    warm_up()
    profiler = cProfile.Profile()
    started = time.process_time()
    profiler.enable()
    pump = run(hours, rate_u_h, boluses)
    profiler.disable()
    cpu = time.process_time() - started
    stats = pstats.Stats(profiler)
    by_file = {}
    for (path, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        key = _group(path)
        by_file[key] = by_file.get(key, 0.0) + tottime
    total = sum(by_file.values()) or 1.0
    by_part = {}
    for key, seconds in by_file.items():
        part = key.split("/")[0] if "/" in key else "python"
        if part == "sim" and "/hw/" not in "/" + key:
            part = "sim"
        by_part[part] = by_part.get(part, 0.0) + seconds
    out = io.StringIO()
    out.write("Profile: %g simulated h at %g U/h%s, shipped configuration, one process.\n" % (
        hours, rate_u_h, " with 3 boluses a day" if boluses else ""))
    out.write("Simulator: %s; Python %s.\n" % (os.path.dirname(sim.__file__),
                                               sys.version.split()[0]))
    out.write("CPU time under the profiler: %.2f s (the profiler slows small functions most); "
              "%d trains, %d load-cell reads, %d clock events.\n\n" % (
                  cpu, len(pump.deliveries), pump.load_cell.reads, pump.clock.events_run))
    out.write("Share of the time by part:\n")
    for part, seconds in sorted(by_part.items(), key=lambda kv: -kv[1]):
        out.write("  %-10s %5.1f %%\n" % (part, 100 * seconds / total))
    out.write("\nBy file (own time):\n")
    for key, seconds in sorted(by_file.items(), key=lambda kv: -kv[1])[:16]:
        out.write("  %6.2f s %5.1f %%  %s\n" % (seconds, 100 * seconds / total, key))
    out.write("\nFunctions, by own time:\n")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
    lines = text.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("ncalls"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(sim.__file__)))
    for line in lines[start:]:
        if line.strip():
            out.write("  " + line.replace(root + "/", "") + "\n")
    return out.getvalue()


SPEED_RUNS = (
    ("24 h at 1 U/h", 24, 1.0, False),
    ("24 h at 5 U/h", 24, 5.0, False),
    ("24 h at 1 U/h, 3 boluses", 24, 1.0, True),
)


def speed_report(month_days):
    out = io.StringIO()
    out.write("Speed: shipped configuration, one process, CPU time (wall time in brackets).\n")
    out.write("Simulator: %s.\n" % os.path.dirname(sim.__file__))
    warm_up()
    runs = list(SPEED_RUNS)
    if month_days:
        runs.append(("%d days at 1 U/h, 3 boluses a day" % month_days, 24 * month_days, 1.0,
                     True))
    for label, hours, rate, boluses in runs:
        wall = time.perf_counter()
        cpu = time.process_time()
        run(hours, rate, boluses)
        out.write("  %-36s %7.2f s  (%.2f s)\n" % (label, time.process_time() - cpu,
                                                  time.perf_counter() - wall))
        out.flush()
    return out.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=1.0, help="basal U/h")
    parser.add_argument("--boluses", action="store_true", help="3 boluses a day")
    parser.add_argument("--speed", action="store_true", help="time the target runs instead")
    parser.add_argument("--month-days", type=int, default=0,
                        help="with --speed: also this many days with boluses")
    parser.add_argument("--out", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if not 0 < args.hours <= 24 * 60 or not 0 <= args.rate <= 15:
        print("profile_sim error: --hours 0..1440 and --rate 0..15", file=sys.stderr)
        return 2
    if args.speed:
        text = speed_report(args.month_days)
    else:
        text = profile_report(args.hours, args.rate, args.boluses)
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
