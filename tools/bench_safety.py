"""`make bench` (safety): occlusion, disconnection, false alarms, trumpet curve.

The real firmware runs on the fakes with the physical plant model
(sim/hw/plant.py) at a preset of its parameter ranges. For each basal rate
and for a 5 U bolus the line is occluded; the table gives the time to the alarm, the
insulin the record counts that never reached the body by then, the line pressure at
the alarm, and the volume that reaches the body in the 10 minutes after the line is
reopened (the post-occlusion bolus). Normal use with the line open counts false
occlusion alarms. The trumpet curve (IEC 60601-2-24) comes from the plant's outflow,
sampled every 30 s, from the second hour on.
"""

import argparse
import os
import platform
import sys
import time

from sim.pump import SimPump

from sim.hw.plant import PlantParams
import cohort
import plot

from pump.core import alarms as al
from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core import limits as lim
from pump.core.schedule import BasalProfile
from pump.core.therapy import Settings

MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
RATES_U_H = (0.1, 1.0, 5.0)
# Normal use runs as one reservoir and infusion set after another: a new syringe (a new
# friction profile, a new seed) every RESERVOIR_DAYS, as people change them every 2-3 days.
# It also keeps a 3 mL reservoir from running dry at 5 U/h plus 15 U of boluses a day.
RESERVOIR_DAYS = 2
OCCLUSION_SEEDS = (1, 2, 3)
# Moments into a 5 U bolus when the line comes off: spread over its sliding and its tests.
DISCONNECT_OFFSETS_S = tuple(range(15, 240, 15))
TRUMPET_WINDOWS_MIN = (2, 5, 11, 19, 31)
TARGETS = {
    "basal_1": "alarm within 5 min at 1 U/h",
    "basal_0.1": "alarm within 30 min at 0.1 U/h",
    "bolus": "alarm within 15 s during a bolus",
    "release": "at most 0.05 U released after reopening",
    "false": "zero false occlusion alarms in 30 days",
    "disconnect": "a disconnection during a bolus alerted where the pressure allows",
}


def settings(rate_u_h):
    s = Settings()
    s.max_basal_mu_per_h = lim.MAX_BASAL_MU_PER_H
    s.profiles = [BasalProfile("Bench", [(0, round(rate_u_h * 1000))], s.max_basal_mu_per_h)]
    s.auto_off_h = 0
    s.max_hour_mu = lim.MAX_HOUR_MAX_MU
    s.max_day_mu = lim.MAX_DAY_MAX_MU
    return s


class DirectLoadCell:
    """Reads the HX711 fake's conversion directly instead of bit-banging its pins.

    The same number the driver would shift out (the plant's force through the same
    scale, offset and rounding), always ready; only the 25 PD_SCK pulses per reading,
    which cost most of a simulated day's run time, are skipped. The pin protocol has its
    own tests (host_tests/test_hx711.py)."""

    def __init__(self):
        self.device = None

    def read_raw(self):
        return self.device.conversion_raw()


def make_sim(preset, rate_u_h, seed, event_capacity=10):
    """A pump on the plant preset, built for speed: no display, the load cell read direct."""
    cell = DirectLoadCell()

    def prepare(board):
        board.display = None
        board.force_sensor = cell

    sim = SimPump(settings=settings(rate_u_h), plant_params=getattr(PlantParams, preset)(),
                  seed=seed, event_capacity=event_capacity, prepare_board=prepare, start=False)
    cell.device = sim.load_cell
    sim.start()
    return sim


def _alarm_time(sim, code, after_ms):
    for _seq, t, etype, fields in sim.events:
        if etype == ev.ALARM and fields.get("code") == code and t >= after_ms:
            return t
    return None


def occlusion_run(preset, rate_u_h, bolus_mu=0, seed=1):
    """Occlude the line once delivery has settled; measure the response. Returns a dict."""
    sim = make_sim(preset, rate_u_h, seed, event_capacity=100)
    mech = sim.mechanics
    # Let the detector see a few windows of normal delivery first.
    warm_steps = 6 * sim.board.occlusion.window_steps
    warm_ms = max(HOUR_MS, warm_steps * mech.nu_per_step * 3600 // (rate_u_h * 1_000_000_000))
    t_occ = int(warm_ms)
    if bolus_mu:
        sim.at(t_occ, lambda app: app.bolus(bolus_mod.NORMAL, bolus_mu))
    sim.at_plant(t_occ, lambda plant: plant.occlude())
    sim.run_until(t_occ)
    delivered_at_occ = sim.plant.delivered_nl()
    limit_ms = t_occ + (15 * MIN_MS if bolus_mu else max(2 * HOUR_MS, int(20 * HOUR_MS / rate_u_h)))
    alarm_ms = None
    t = t_occ
    while t < limit_ms:
        t = min(t + 10_000 if bolus_mu else t + MIN_MS, limit_ms)
        sim.run_until(t)
        alarm_ms = _alarm_time(sim, al.OCCLUSION, t_occ)
        if alarm_ms is not None:
            break
    row = {"preset": preset, "rate_u_h": rate_u_h, "bolus_mu": bolus_mu, "seed": seed}
    if alarm_ms is None:
        row["alarm_s"] = None
        return row
    pressure_kpa = None
    for _seq, _t, etype, fields in sim.events:
        if etype == ev.ALARM and fields.get("code") == al.OCCLUSION:
            pressure_kpa = fields.get("pressure_pa", 0) / 1000
    row["alarm_s"] = (alarm_ms - t_occ) / 1000
    # Insulin the record counts as given between the occlusion and the alarm (none of it
    # reached the body); a line test's pull and push are not insulin.
    row["missed_mu"] = sum(mu for t, _kind, _steps, mu in sim.deliveries if t_occ <= t <= alarm_ms)
    row["pressure_kpa"] = pressure_kpa
    # Back-off has run; reopen the line a minute after the alarm and watch 10 minutes.
    reopen_ms = sim.now_ms() + MIN_MS
    sim.at_plant(reopen_ms, lambda plant: plant.clear())
    sim.run_until(reopen_ms)
    before = sim.plant.delivered_nl()
    sim.run_until(reopen_ms + 10 * MIN_MS)
    released_nl = sim.plant.delivered_nl() - before
    row["released_mu"] = released_nl * mech.units_per_ml / 1000
    row["backoff_steps"] = sum(
        f["steps"] for _s, _t, e, f in sim.events if e == ev.BACKOFF
    )
    row["delivered_since_occ_nl"] = sim.plant.delivered_nl() - delivered_at_occ
    return row


def disconnect_run(preset, offset_s, seed):
    """Take the line off the site ``offset_s`` into a 5 U bolus; measure the alert."""
    sim = make_sim(preset, 1.0, seed, event_capacity=100)
    t_bolus = HOUR_MS
    t_off = t_bolus + offset_s * 1000
    sim.at(t_bolus, lambda app: app.bolus(bolus_mod.NORMAL, 5000))
    sim.at_plant(t_off, lambda plant: plant.disconnect())
    sim.run_until(t_off + 5 * MIN_MS)
    alert_ms = _alarm_time(sim, al.DISCONNECTED, t_off)
    finished = [t for _s, t, e, _f in sim.events if e == ev.BOLUS_FINISHED and t >= t_bolus]
    return {"preset": preset, "offset_s": offset_s, "seed": seed,
            "alert_s": None if alert_ms is None else (alert_ms - t_off) / 1000,
            "in_bolus": bool(finished) and finished[0] > t_off,
            "occlusion": _alarm_time(sim, al.OCCLUSION, t_off) is not None}


def normal_use_run(preset, rate_u_h, days, seed=2):
    """Open line, basal plus three 5 U boluses a day on one reservoir: count occlusion
    alarms (after each, acknowledge and resume within the hour, so the count goes on)
    and disconnection alerts (acknowledged within the hour)."""
    sim = make_sim(preset, rate_u_h, seed)
    alarms = []
    alerts = []

    def listen(event):
        if event[2] == ev.ALARM and event[3].get("code") == al.OCCLUSION:
            alarms.append(event[1])
        if event[2] == ev.ALARM and event[3].get("code") == al.DISCONNECTED:
            alerts.append(event[1])

    sim.app.events.listener = listen
    for day in range(days):
        for hour in (7, 12, 19):
            sim.at(day * DAY_MS + hour * HOUR_MS, lambda app: app.bolus(bolus_mod.NORMAL, 5000))
        for hour in range(24):
            sim.at(day * DAY_MS + hour * HOUR_MS + 30 * MIN_MS, _recover)
    sim.run_until(days * DAY_MS)
    return {"preset": preset, "rate_u_h": rate_u_h, "days": days, "seed": seed,
            "false_alarms": len(alarms), "alarm_ms": alarms,
            "false_alerts": len(alerts), "alert_ms": alerts}


def _recover(app):
    if app.alarms.find(al.DISCONNECTED) is not None:
        app.acknowledge(al.DISCONNECTED)
    if app.therapy.suspended_at is not None:
        app.acknowledge()
        app.resume()


def trumpet_run(preset, rate_u_h, hours):
    sim = make_sim(preset, rate_u_h, 3)
    sim.run_until(hours * HOUR_MS)
    rows = sim.outflow.rows
    nl_per_min = rate_u_h * 1000 / sim.mechanics.units_per_ml * 1000 / 60
    result = dict(plot.trumpet(rows, nl_per_min, TRUMPET_WINDOWS_MIN, start_min=60))
    result["preset"] = preset
    result["rate_u_h"] = rate_u_h
    return result


def job(kind, args):
    """One run, in a cohort worker: (kind, its result)."""
    return kind, {"occlusion": occlusion_run, "normal": normal_use_run,
                  "disconnect": disconnect_run, "trumpet": trumpet_run}[kind](*args)


def run_jobs(jobs, processes, scheduler=None, out_dir=None):
    """The runs through the cohort runner (tools/cohort.py): a local pool of ``processes``
    or a Dask cluster at ``scheduler``; ``out_dir`` keeps each result, so a stopped bench
    started again skips what is done. Results in the order of ``jobs``."""
    work = [cohort.Job("%s-%s" % (kind, "-".join(str(a) for a in args)), "bench_safety:job",
                       {"kind": kind, "args": list(args)}, uploads=("plot",))
            for kind, args in jobs]
    return [tuple(r) for r in cohort.run_jobs(work, processes, scheduler, out_dir,
                                              progress=True)]


def plot_trumpets(results, out_dir):
    """docs/bench/trumpet_<preset>.png: Ep(max) and Ep(min) against the window, per rate."""
    written = []
    for preset in sorted({r["preset"] for r in results}):
        fig, ax = plot._pyplot().subplots(figsize=(8, 5))
        curves = [r for r in results if r["preset"] == preset]
        for i, r in enumerate(curves):
            colour = ("tab:red", "tab:blue", "tab:green")[i % 3]
            rows = [w for w in r["windows"] if w[3]]
            label = "%g U/h" % r["rate_u_h"]
            ax.plot([w[0] for w in rows], [w[1] for w in rows], "o-", color=colour,
                    label=label + " Ep(max)")
            ax.plot([w[0] for w in rows], [w[2] for w in rows], "s--", color=colour,
                    label=label + " Ep(min)")
        ax.axhline(0, color="gray", linewidth=0.5)
        ax.set_xlabel("observation window (min)")
        ax.set_ylabel("deviation from the programmed rate (%)")
        ax.set_title("Trumpet curve, %s plant, plant outflow from the 2nd hour" % preset)
        ax.legend()
        plot._save(fig, out_dir, "trumpet_%s.png" % preset, written)
    return written


def fmt(value, pattern="%.1f"):
    return "-" if value is None else pattern % value


def _when(seconds):
    return ("%.0f s" % seconds) if seconds < 120 else ("%.1f min" % (seconds / 60))


def occlusion_lines(rows):
    """One line per plant and case: the worst seed's figures and the range of the times."""
    lines = []
    cases = []
    for r in rows:
        key = (r["preset"], r["bolus_mu"], r["rate_u_h"])
        if key not in cases:
            cases.append(key)
    for preset, bolus_mu, rate in cases:
        runs = [r for r in rows if (r["preset"], r["bolus_mu"], r["rate_u_h"]) == (
            preset, bolus_mu, rate)]
        case = "5 U bolus (1.5 U/min)" if bolus_mu else "basal %g U/h" % rate
        found = [r for r in runs if r["alarm_s"] is not None]
        missed = len(runs) - len(found)
        if not found:
            lines.append("| %s | %s | no alarm in %d runs | - | - | - | - | - |" % (
                preset, case, len(runs)))
            continue
        worst = max(found, key=lambda r: r["alarm_s"])
        times = sorted(r["alarm_s"] for r in found)
        release = max(r["released_mu"] for r in found)
        lines.append("| %s | %s | %s (%s) | %.3f U | %s kPa | %.3f U | %d steps | %s |" % (
            preset, case, _when(worst["alarm_s"]),
            " / ".join(_when(t) for t in times) + (", %d missed" % missed if missed else ""),
            worst["missed_mu"] / 1000, fmt(worst["pressure_kpa"]), release / 1000,
            worst["backoff_steps"], len(runs)))
    return lines


def disconnect_lines(rows):
    lines = []
    for preset in sorted({r["preset"] for r in rows}, key=[r["preset"] for r in rows].index):
        runs = [r for r in rows if r["preset"] == preset and r["in_bolus"]]
        times = sorted(r["alert_s"] for r in runs if r["alert_s"] is not None)
        lines.append("| %s | %d | %d (%.0f %%) | %s | %d |" % (
            preset, len(runs), len(times), 100.0 * len(times) / max(1, len(runs)),
            ("%.1f s / %.1f s" % (times[len(times) // 2], times[-1])) if times else "-",
            sum(1 for r in runs if r["occlusion"])))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="typical,hard")
    parser.add_argument("--days", type=int, default=30, help="days of normal use per rate")
    parser.add_argument("--trumpet-hours", type=int, default=12)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--scheduler", default=None,
                        help="run on the Dask cluster at this address (tcp://host:port)")
    parser.add_argument("--resume-dir", default=None,
                        help="keep each run's result here; a run started again skips them")
    parser.add_argument("--skip", default="",
                        help="comma list of: occlusion,disconnect,normal,trumpet")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "docs", "bench"))
    args = parser.parse_args(argv)
    presets = args.presets.split(",")
    skip = args.skip.split(",")
    started = time.perf_counter()
    jobs = []
    if "occlusion" not in skip:
        for preset in presets:
            for rate, bolus_mu in [(r, 0) for r in RATES_U_H] + [(1.0, 5000)]:
                for seed in OCCLUSION_SEEDS:
                    jobs.append(("occlusion", (preset, rate, bolus_mu, seed)))
    if "disconnect" not in skip:
        for preset in presets:
            for seed in OCCLUSION_SEEDS:
                for offset_s in DISCONNECT_OFFSETS_S:
                    jobs.append(("disconnect", (preset, offset_s, seed)))
    if "normal" not in skip:
        for preset in presets:
            for rate in RATES_U_H:
                done = 0
                while done < args.days:
                    days = min(RESERVOIR_DAYS, args.days - done)
                    jobs.append(("normal", (preset, rate, days, 1000 + done)))
                    done += days
    if "trumpet" not in skip:
        for preset in presets:
            for rate in (1.0, 0.1):
                jobs.append(("trumpet", (preset, rate, args.trumpet_hours)))
    # Longest first, so the pool ends together.
    jobs.sort(key=lambda j: -(j[1][2] * (j[1][1] + 0.3) if j[0] == "normal" else 0))
    results = run_jobs(jobs, args.processes, args.scheduler, args.resume_dir)
    wall_s = time.perf_counter() - started
    by_kind = {"occlusion": [], "disconnect": [], "normal": [], "trumpet": []}
    for kind, result in results:
        by_kind[kind].append(result)

    lines = ["# Safety benchmark: occlusion, disconnection, false alarms, trumpet curve", ""]
    lines.append("Made by `make bench` (tools/bench_safety.py): the real firmware on the host "
                 "fakes with the plant model (docs/plant_model.md). Targets: " +
                 "; ".join(TARGETS.values()) + ".")
    lines += ["", "Run: `%s`, %s, Python %s, %d processes, wall time %.0f s." % (
        " ".join(["tools/bench_safety.py"] + list(argv if argv is not None else sys.argv[1:])),
        platform.machine(), platform.python_version(), args.processes, wall_s)]
    if by_kind["occlusion"]:
        lines += ["", "## Occlusion", "",
                  "Seeds %s (a different syringe each); the worst seed's figures, every "
                  "seed's time in brackets; release is the largest of the seeds." % (
                      ", ".join(str(s) for s in OCCLUSION_SEEDS)), "",
                  "| plant | case | time to alarm | insulin missed | pressure at alarm | "
                  "released in 10 min after reopening | backed off | runs |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += occlusion_lines(by_kind["occlusion"])
    if by_kind["disconnect"]:
        lines += ["", "## Disconnection during a bolus", "",
                  "The line comes off the site at %s s into a 5 U bolus (1.5 U/min, about "
                  "4 min with its line tests), seeds %s: a medium-priority alert is the "
                  "target; delivery goes on." % (
                      ", ".join(str(o) for o in DISCONNECT_OFFSETS_S),
                      ", ".join(str(s) for s in OCCLUSION_SEEDS)), "",
                  "| plant | disconnections in the bolus | alerted | time to alert: median / "
                  "max | raised an occlusion alarm |", "|---|---|---|---|---|"]
        lines += disconnect_lines(by_kind["disconnect"])
    if by_kind["normal"]:
        lines += ["", "## False occlusion alarms in normal use", "",
                  "Open line, the basal rate plus three 5 U boluses a day (7:00, 12:00, "
                  "19:00), %d days per rate, as %d-day reservoirs (a new syringe and seed "
                  "each)." % (args.days, RESERVOIR_DAYS), "",
                  "| plant | basal | days | false occlusion alarms | false disconnection "
                  "alerts |", "|---|---|---|---|---|"]
        for preset in presets:
            for rate in RATES_U_H:
                runs = [r for r in by_kind["normal"] if (r["preset"], r["rate_u_h"]) == (
                    preset, rate)]
                lines.append("| %s | %g U/h | %d | %d | %d |" % (
                    preset, rate, sum(r["days"] for r in runs),
                    sum(r["false_alarms"] for r in runs), sum(r["false_alerts"] for r in runs)))
    if by_kind["trumpet"]:
        lines += ["", "## Trumpet curve (plant outflow, second hour on, %d h)" % (
            args.trumpet_hours), "", "| plant | rate | window | Ep(max) | Ep(min) |",
            "|---|---|---|---|---|"]
        for result in by_kind["trumpet"]:
            for window, ep_max, ep_min, _n in result["windows"]:
                lines.append("| %s | %g U/h | %d min | %s | %s |" % (
                    result["preset"], result["rate_u_h"], window,
                    fmt(ep_max, "%+.1f %%"), fmt(ep_min, "%+.1f %%")))
            lines.append("| %s | %g U/h | mean error | %s | |" % (
                result["preset"], result["rate_u_h"],
                fmt(result["mean_error_percent"], "%+.2f %%")))
    print("\n".join(lines))
    os.makedirs(args.out, exist_ok=True)
    if by_kind["trumpet"]:
        for path in plot_trumpets(by_kind["trumpet"], args.out):
            print("written", path)
    path = os.path.join(args.out, "safety_results.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("written", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
