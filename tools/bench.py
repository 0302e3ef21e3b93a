"""`make bench`: basal delivery exactness over moving windows, and simulation speed.

For each basal rate the real firmware runs 24 simulated hours on the fakes. The
steps it emitted are sampled every 30 s (as the scale of an IEC 60601-2-24 test
would be) and compared with the ideal: rate x time / volume of one step. For each
window length the table gives the worst deviation of any moving window, in steps
and in percent of that window's ideal amount.
"""

import argparse
import os
import subprocess
import sys
import time
from fractions import Fraction

import scenario as runner

from pump.core.therapy import BASAL

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RATES_U_H = (0.05, 0.1, 1.0, 5.0, 15.0)
WINDOWS_MIN = (2, 5, 11, 19, 31, 60)
SAMPLE_MS = 30_000
HOUR_MS = 3_600_000


def basal_scenario(rate_u_h, hours):
    return runner.Scenario(
        {
            "settings": {"basal": [["00:00", rate_u_h]], "max_basal": 15.0},
            "run": {"duration_h": hours},
        },
        "basal_%g" % rate_u_h,
    )


def cumulative_steps(deliveries, kind, duration_ms):
    """Steps delivered by each 30-s sample instant (a step at t_ms counts from t_ms on)."""
    samples = [0] * (duration_ms // SAMPLE_MS + 1)
    for t_ms, k, steps, _mu in deliveries:
        if k == kind:
            samples[(t_ms + SAMPLE_MS - 1) // SAMPLE_MS] += steps
    total = 0
    for i, n in enumerate(samples):
        total += n
        samples[i] = total
    return samples


def window_deviations(delivered, steps_per_ms):
    """Worst |delivered - ideal| over every moving window, per window length."""
    rows = []
    for minutes in WINDOWS_MIN:
        n = minutes * 60_000 // SAMPLE_MS
        ideal = steps_per_ms * minutes * 60_000
        worst = Fraction(0)
        for a in range(len(delivered) - n):
            dev = abs(delivered[a + n] - delivered[a] - ideal)
            if dev > worst:
                worst = dev
        pct = float(worst / ideal * 100) if ideal else 0.0
        rows.append((minutes, float(ideal), float(worst), pct))
    return rows


def bench_rate(rate_u_h, hours=24):
    scenario = basal_scenario(rate_u_h, hours)
    started = time.perf_counter()
    result = runner.run(scenario)
    wall = time.perf_counter() - started
    mech = result.sim.mechanics
    rate_mu_h = round(rate_u_h * 1000)
    steps_per_ms = Fraction(rate_mu_h * 1_000_000, HOUR_MS * mech.nu_per_step)
    delivered = cumulative_steps(result.deliveries, BASAL, scenario.duration_ms)
    lag = max(
        abs(d - int(steps_per_ms * i * SAMPLE_MS)) for i, d in enumerate(delivered)
    )
    return {
        "rate": rate_u_h,
        "steps": delivered[-1],
        "ideal_steps": float(steps_per_ms * scenario.duration_ms),
        "motor_steps": result.sim.driver.position_steps,
        "windows": window_deviations(delivered, steps_per_ms),
        "worst_cumulative_vs_floor": lag,
        "wall_s": wall,
        "mu_per_step": mech.nu_per_step / 1e9,
        "nl_per_step": mech.pl_per_step / 1000,
    }


def bench_scenario(path, label):
    scenario = runner.load(path)
    started = time.perf_counter()
    runner.run(scenario)
    wall = time.perf_counter() - started
    return label, scenario.duration_ms / HOUR_MS, wall


def month_scenario(days=30):
    actions = []
    for day in range(days):
        for at_h, units in ((7.5, 4.0), (12.5, 5.5), (19.0, 6.0)):
            actions.append({"at_h": day * 24 + at_h, "bolus": units})
    return runner.Scenario(
        {
            "settings": {"basal": [["00:00", 0.8], ["06:30", 1.25], ["22:00", 0.9]]},
            "run": {"duration_h": 24 * days},
            "actions": actions,
        },
        "month",
    )


def markdown(rows, speed, machine):
    out = []
    out.append("# Basal delivery exactness")
    out.append("")
    out.append(
        "Measured by `make bench` (`tools/bench.py`) on %s. The real firmware runs 24 "
        "simulated hours at each basal rate on the host fakes (PIO program emulated, "
        "hardware timer on the virtual clock). Delivered steps are sampled every 30 s and "
        "every moving window is compared with the ideal (rate x time / one step). "
        "One motor step is %.4f U (%.3f nL)." % (machine, rows[0]["mu_per_step"],
                                                 rows[0]["nl_per_step"])
    )
    out.append("")
    header = "| rate U/h | steps in 24 h (ideal) |"
    rule = "|---|---|"
    for minutes in WINDOWS_MIN:
        header += " %d min: worst steps (%%) |" % minutes
        rule += "---|"
    out.append(header)
    out.append(rule)
    for row in rows:
        line = "| %g | %d (%.2f) |" % (row["rate"], row["steps"], row["ideal_steps"])
        for _minutes, _ideal, worst, pct in row["windows"]:
            line += " %.3f (%.2f %%) |" % (worst, pct)
        out.append(line)
    out.append("")
    out.append(
        "Target: every window within one motor step of ideal. The worst deviation of the "
        "cumulative count from floor(ideal) at any sample instant was %s steps."
        % ", ".join("%d at %g U/h" % (r["worst_cumulative_vs_floor"], r["rate"]) for r in rows)
    )
    out.append("")
    out.append("## Simulation speed")
    out.append("")
    out.append("| run | simulated h | wall s | simulated h per wall s |")
    out.append("|---|---|---|---|")
    for label, hours, wall in speed:
        out.append("| %s | %.0f | %.2f | %.0f |" % (label, hours, wall, hours / wall))
    out.append("")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "bench"))
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--month-days", type=int, default=30, help="days of the long run")
    args = parser.parse_args(argv)
    rows = []
    for rate in RATES_U_H:
        print("basal %g U/h ..." % rate, end=" ", flush=True)
        row = bench_rate(rate, args.hours)
        rows.append(row)
        print("%.1f s" % row["wall_s"])
        if row["motor_steps"] != row["steps"]:
            print("MISMATCH: firmware recorded %d steps, driver saw %d" % (
                row["steps"], row["motor_steps"]))
            return 1
    speed = [("basal %g U/h" % r["rate"], args.hours, r["wall_s"]) for r in rows]
    print("demo day ...", end=" ", flush=True)
    speed.append(bench_scenario(os.path.join(HERE, "scenarios", "demo_day.toml"), "demo day"))
    print("%.2f s" % speed[-1][2])
    days = args.month_days
    print("%d days with 3 boluses a day ..." % days, end=" ", flush=True)
    month = month_scenario(days)
    started = time.perf_counter()
    runner.run(month)
    speed.append(("%d days, %d boluses" % (days, 3 * days), 24 * days,
                  time.perf_counter() - started))
    print("%.2f s" % speed[-1][2])
    machine = "%s, Python %s" % (os.uname().machine, sys.version.split()[0])
    text = markdown(rows, speed, machine)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "delivery_accuracy.md")
    with open(path, "w") as f:
        f.write(text + "\n")
    print()
    print(text)
    print()
    print("written to %s" % path)
    from bench_ui import bench_ui  # screen redraws: bytes, bus time, allocation

    print()
    print(bench_ui(args.out))
    print("written to %s" % os.path.join(args.out, "ui.md"))
    # The serial link's fuzz (LINK_FUZZ_EXAMPLES, 10,000 by default): the test suite's
    # fuzz at benchmark size, run as the script it is.
    print(flush=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "host_tests", "bench_link.py")],
                   check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
