"""`make bench`: basal delivery exactness over moving windows, and simulation speed.

Everything runs the shipped configuration: the real firmware and board file on the host
fakes, with the plant model, the line test, the display and the load cell read through its
driver, on one core. For each basal rate the firmware runs 24 simulated hours. The steps
it booked are sampled every 30 s (as the scale of an IEC 60601-2-24 test would be) and
compared with the ideal: rate x time / volume of one step. For each window length the table
gives the worst deviation of any moving window, in steps and in percent of that window's
ideal amount, with the line test (as shipped) and without it (its effect: the basal steps
it holds back while it runs).
"""

import argparse
import os
import subprocess
import sys
import time
from fractions import Fraction

import scenario as runner
from sim.pump import SimPump

from pump.core import limits as lim
from pump.core.schedule import BasalProfile
from pump.core.therapy import BASAL, Settings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Up to 8 U/h: a whole day of it (192 U) stays under the pump's highest day limit (200 U).
RATES_U_H = (0.05, 0.1, 1.0, 5.0, 8.0)
WINDOWS_MIN = (2, 5, 11, 19, 31, 60)
SAMPLE_MS = 30_000
HOUR_MS = 3_600_000


def basal_settings(rate_u_h):
    """One rate all day; limits and auto-off out of the way of a 24-hour run."""
    s = Settings()
    rate_mu = round(rate_u_h * 1000)
    s.max_basal_mu_per_h = max(lim.MAX_BASAL_MU_PER_H, rate_mu)
    s.profiles = [BasalProfile("Bench", [(0, rate_mu)], s.max_basal_mu_per_h)]
    s.max_hour_mu = max(s.max_hour_mu, s.max_basal_mu_per_h, 2 * rate_mu)
    s.max_day_mu = lim.MAX_DAY_MAX_MU
    s.auto_off_h = 0
    return s


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


def bench_rate(rate_u_h, hours=24, line_test=True):
    """24 h (``hours``) of one basal rate; the booked steps against the ideal."""
    duration_ms = int(hours * HOUR_MS)
    started = time.perf_counter()
    cpu = time.process_time()
    sim = SimPump(settings=basal_settings(rate_u_h), line_test=line_test)
    t = 0
    while t < duration_ms:
        t = min(t + HOUR_MS, duration_ms)
        sim.run_until(t)
    sim.settle()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    mech = sim.mechanics
    rate_mu_h = round(rate_u_h * 1000)
    steps_per_ms = Fraction(rate_mu_h * 1_000_000, HOUR_MS * mech.nu_per_step)
    delivered = cumulative_steps(sim.deliveries, BASAL, duration_ms)
    lag = max(
        abs(d - int(steps_per_ms * i * SAMPLE_MS)) for i, d in enumerate(delivered)
    )
    return {
        "rate": rate_u_h,
        "line_test": line_test,
        "steps": delivered[-1],
        "ideal_steps": float(steps_per_ms * duration_ms),
        "motor_steps": sim.driver.position_steps,
        "booked_steps": sum(d[2] for d in sim.deliveries),
        "windows": window_deviations(delivered, steps_per_ms),
        "worst_cumulative_vs_floor": lag,
        "wall_s": wall,
        "cpu_s": cpu,
        "mu_per_step": mech.nu_per_step / 1e9,
        "nl_per_step": mech.pl_per_step / 1000,
    }


def timed(fn, *args):
    """(CPU s, wall s) of fn(*args): the CPU time is the run's own, whatever else the
    machine is doing; on an idle core the wall time is the same."""
    wall = time.perf_counter()
    cpu = time.process_time()
    fn(*args)
    return time.process_time() - cpu, time.perf_counter() - wall


def bench_scenario(path, label):
    scenario = runner.load(path)
    cpu, wall = timed(runner.run, scenario)
    return label, scenario.duration_ms / HOUR_MS, cpu, wall


def month_scenario(days=30):
    actions = []
    for day in range(days):
        for at_h, units in ((7.5, 4.0), (12.5, 5.5), (19.0, 6.0)):
            actions.append({"at_h": day * 24 + at_h, "bolus": units})
    return runner.Scenario(
        {
            "settings": {"basal": [["00:00", 0.8], ["06:30", 1.25], ["22:00", 0.9]],
                         "auto_off": 0},
            "run": {"duration_h": 24 * days},
            "actions": actions,
        },
        "month",
    )


# Wall-time targets for the shipped configuration on one core (seconds).
TARGETS_S = {"basal 1 U/h": 1.0, "basal 5 U/h": 3.0, "month": 30.0}


def cohort_speed(jobs_n=8, hours=12):
    """Throughput of the cohort runner: the same jobs on 1 process and on 2."""
    import cohort

    text = (
        "[settings]\nbasal = [[\"00:00\", 1.0]]\nauto_off = 0\n[run]\nduration_h = %g\n"
        "[[actions]]\nat_min = 30\nbolus = 2.0\n" % hours
    )
    jobs = [cohort.Job("speed.seed%d" % seed, "cohort:scenario_job",
                       {"toml_text": text, "name": "speed", "preset": "typical", "seed": seed})
            for seed in range(jobs_n)]
    walls = {}
    for processes in (1, 2):
        started = time.perf_counter()
        cohort.run_jobs(jobs, processes=processes, progress=False)
        walls[processes] = time.perf_counter() - started
    return jobs_n, hours, walls, os.getloadavg()[0]


def markdown(rows, speed, machine, cohort_figures=None):
    out = []
    out.append("# Basal delivery exactness")
    out.append("")
    out.append(
        "Measured by `make bench` (`tools/bench.py`) on %s, in the shipped configuration: "
        "the real firmware and board file on the host fakes (PIO program emulated, hardware "
        "timers on the virtual clock) with the plant model, the line test every %s, the "
        "display and the load cell read through its driver. The firmware runs 24 simulated "
        "hours at each basal rate, with the line test (as shipped) and without it. The "
        "steps it books are sampled every 30 s and every moving window is compared with the "
        "ideal (rate x time / one step). One motor step is %.4f U (%.3f nL)."
        % (machine, _line_test_interval(), rows[0]["mu_per_step"], rows[0]["nl_per_step"])
    )
    out.append("")
    header = "| rate U/h | line test | steps in 24 h (ideal) |"
    rule = "|---|---|---|"
    for minutes in WINDOWS_MIN:
        header += " %d min: worst steps (%%) |" % minutes
        rule += "---|"
    out.append(header)
    out.append(rule)
    for row in rows:
        line = "| %g | %s | %d (%.2f) |" % (row["rate"], "on" if row["line_test"] else "off",
                                          row["steps"], row["ideal_steps"])
        for _minutes, _ideal, worst, pct in row["windows"]:
            line += " %.3f (%.2f %%) |" % (worst, pct)
        out.append(line)
    out.append("")
    out.append(
        "Target: every window within one motor step of ideal. The line test holds the basal "
        "steps that fall due while it runs and gives them when it ends: a window that ends "
        "inside a test can be that many steps short (the difference between the on and off "
        "rows). The worst deviation of the cumulative count from floor(ideal) at any sample "
        "instant was %s steps."
        % ", ".join("%d at %g U/h (line test %s)" % (
            r["worst_cumulative_vs_floor"], r["rate"], "on" if r["line_test"] else "off")
            for r in rows)
    )
    out.append("")
    out.append("## Simulation speed")
    out.append("")
    out.append(
        "Time of each run above and of longer ones, shipped configuration, one process: "
        "the CPU time of the run (what one idle core would take) and the wall time as it "
        "went on this machine. Targets, wall time on one core: %s." % "; ".join(
            "%s at most %g s" % (k if k != "month" else "30 days with 3 boluses a day", v)
            for k, v in TARGETS_S.items()))
    out.append("")
    out.append("| run | line test | simulated h | CPU s | wall s | simulated h per CPU s |")
    out.append("|---|---|---|---|---|---|")
    for label, line_test, hours, cpu, wall in speed:
        out.append("| %s | %s | %.0f | %.2f | %.2f | %.0f |" % (
            label, "on" if line_test else "off", hours, cpu, wall, hours / cpu))
    if cohort_figures is not None:
        jobs_n, hours, walls, load = cohort_figures
        out.append("")
        out.append(
            "Cohort runner (`tools/cohort.py`), %d jobs of %g simulated hours each, wall "
            "time: %.1f s on 1 process, %.1f s on a pool of 2 (%.2fx the throughput; target "
            "1.8x on 2 cores; %d cores here, load average %.1f when it ended)." % (
                jobs_n, hours, walls[1], walls[2], walls[1] / walls[2], os.cpu_count() or 1,
                load))
    out.append("")
    return "\n".join(out)


def _line_test_interval():
    from sim.pump import load_board_module

    seconds = load_board_module("pico_default").LINE_TEST["interval_s"]
    return "%d min" % (seconds // 60) if seconds % 60 == 0 else "%d s" % seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "bench"))
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--month-days", type=int, default=30, help="days of the long run")
    parser.add_argument("--no-link", action="store_true", help="leave out the link fuzz")
    args = parser.parse_args(argv)
    print("shipped configuration: plant, line test every %s, display, load cell through its "
          "driver; one process" % _line_test_interval())
    rows = []
    for line_test in (True, False):
        for rate in RATES_U_H:
            print("basal %g U/h, line test %s ..." % (rate, "on" if line_test else "off"),
                  end=" ", flush=True)
            row = bench_rate(rate, args.hours, line_test)
            rows.append(row)
            print("%.1f s" % row["cpu_s"])
            if row["motor_steps"] != row["booked_steps"]:
                print("MISMATCH: firmware booked %d steps, driver saw %d" % (
                    row["booked_steps"], row["motor_steps"]))
                return 1
    speed = [("basal %g U/h" % r["rate"], r["line_test"], args.hours, r["cpu_s"], r["wall_s"])
             for r in rows]
    print("demo day ...", end=" ", flush=True)
    label, hours, cpu, wall = bench_scenario(
        os.path.join(HERE, "scenarios", "demo_day.toml"), "demo day")
    speed.append((label, True, hours, cpu, wall))
    print("%.2f s" % cpu)
    days = args.month_days
    print("%d days with 3 boluses a day ..." % days, end=" ", flush=True)
    cpu, wall = timed(runner.run, month_scenario(days))
    speed.append(("%d days, %d boluses" % (days, 3 * days), True, 24 * days, cpu, wall))
    print("%.2f s" % cpu)
    print("cohort runner, 1 process and 2 ...", end=" ", flush=True)
    figures = cohort_speed()
    print("%.2fx" % (figures[2][1] / figures[2][2]))
    machine = "%s, Python %s" % (os.uname().machine, sys.version.split()[0])
    text = markdown(rows, speed, machine, figures)
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
    if args.no_link:
        return 0
    # The serial link's fuzz (LINK_FUZZ_EXAMPLES, 10,000 by default): the test suite's
    # fuzz at benchmark size, run as the script it is.
    print(flush=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "host_tests", "bench_link.py")],
                   check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
