"""`make bench` (safety): occlusion response, false alarms and the trumpet curve on the plant.

The real firmware runs on the fakes with the physical plant model
(host_tests/fakes/plant.py) at a preset of its parameter ranges. For each basal rate
and for a 5 U bolus the line is occluded; the table gives the time to the alarm, the
insulin the record counts that never reached the body by then, the line pressure at
the alarm, and the volume that reaches the body in the 10 minutes after the line is
reopened (the post-occlusion bolus). Normal use with the line open counts false
occlusion alarms. The trumpet curve (IEC 60601-2-24) comes from the plant's outflow,
sampled every 30 s, from the second hour on.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pumpsim import SimPump  # puts firmware/ and the fakes on sys.path

from fakes.plant import PlantParams
import plot

from pump.core import alarms as al
from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core.schedule import BasalProfile
from pump.core.therapy import Settings

MIN_MS = 60_000
HOUR_MS = 3_600_000
RATES_U_H = (0.1, 1.0, 5.0)
TRUMPET_WINDOWS_MIN = (2, 5, 11, 19, 31)
TARGETS = {
    "basal_1": "alarm within 5 min at 1 U/h",
    "basal_0.1": "alarm within 30 min at 0.1 U/h",
    "bolus": "alarm within 15 s during a bolus",
    "release": "at most 0.05 U released after reopening",
    "false": "zero false occlusion alarms in 30 days",
}


def settings(rate_u_h):
    s = Settings()
    s.max_basal_mu_per_h = 15_000
    s.profiles = [BasalProfile("Bench", [(0, round(rate_u_h * 1000))], 15_000)]
    s.auto_off_h = 0
    s.max_hour_mu = 40_000
    s.max_day_mu = 200_000
    return s


def _alarm_time(sim, code, after_ms):
    for _seq, t, etype, fields in sim.events:
        if etype == ev.ALARM and fields.get("code") == code and t >= after_ms:
            return t
    return None


def occlusion_run(preset, rate_u_h, bolus_mu=0, seed=1):
    """Occlude the line once delivery has settled; measure the response. Returns a dict."""
    params = getattr(PlantParams, preset)()
    sim = SimPump(settings=settings(rate_u_h), plant_params=params, seed=seed, event_capacity=100)
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
    steps_at_occ = sim.driver.steps_forward
    limit_ms = t_occ + (15 * MIN_MS if bolus_mu else max(2 * HOUR_MS, int(20 * HOUR_MS / rate_u_h)))
    alarm_ms = None
    t = t_occ
    while t < limit_ms:
        t = min(t + 10_000 if bolus_mu else t + MIN_MS, limit_ms)
        sim.run_until(t)
        alarm_ms = _alarm_time(sim, al.OCCLUSION, t_occ)
        if alarm_ms is not None:
            break
    row = {"preset": preset, "rate_u_h": rate_u_h, "bolus_mu": bolus_mu}
    if alarm_ms is None:
        row["alarm_s"] = None
        return row
    pressure_kpa = None
    for _seq, _t, etype, fields in sim.events:
        if etype == ev.ALARM and fields.get("code") == al.OCCLUSION:
            pressure_kpa = fields.get("pressure_pa", 0) / 1000
    pushed_steps = sim.driver.steps_forward - steps_at_occ
    row["alarm_s"] = (alarm_ms - t_occ) / 1000
    row["missed_mu"] = mech.mu_for_steps(pushed_steps)
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


def normal_use_run(preset, rate_u_h, days, seed=2):
    """Open line, basal plus three 5 U boluses a day: count occlusion alarms."""
    sim = SimPump(settings=settings(rate_u_h), plant_params=getattr(PlantParams, preset)(),
                  seed=seed, event_capacity=10)
    alarms = []

    def listen(event):
        if event[2] == ev.ALARM and event[3].get("code") == al.OCCLUSION:
            alarms.append(event[1])

    sim.app.events.listener = listen
    for day in range(days):
        for hour in (7, 12, 19):
            t = day * 24 * HOUR_MS + hour * HOUR_MS
            sim.at(t, lambda app: app.bolus(bolus_mod.NORMAL, 5000))
    # Acknowledge and resume after any alarm, so the count goes on.
    for day in range(days):
        for hour in range(0, 24, 1):
            t = day * 24 * HOUR_MS + hour * HOUR_MS + 30 * MIN_MS
            sim.at(t, _recover)
    sim.run_until(days * 24 * HOUR_MS)
    return {"preset": preset, "rate_u_h": rate_u_h, "days": days, "false_alarms": len(alarms)}


def _recover(app):
    if app.therapy.suspended_at is not None:
        app.acknowledge()
        app.resume()


def trumpet_run(preset, rate_u_h, hours):
    sim = SimPump(settings=settings(rate_u_h), plant_params=getattr(PlantParams, preset)(),
                  seed=3, event_capacity=10)
    sim.run_until(hours * HOUR_MS)
    rows = sim.outflow.rows
    nl_per_min = rate_u_h * 1000 / sim.mechanics.units_per_ml * 1000 / 60
    return plot.trumpet(rows, nl_per_min, TRUMPET_WINDOWS_MIN, start_min=60)


def fmt(value, pattern="%.1f"):
    return "-" if value is None else pattern % value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="typical,hard")
    parser.add_argument("--days", type=int, default=30, help="days of normal use per rate")
    parser.add_argument("--trumpet-hours", type=int, default=12)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "docs", "bench"))
    args = parser.parse_args(argv)
    presets = args.presets.split(",")
    started = time.perf_counter()
    lines = ["# Safety benchmark: occlusion, false alarms, trumpet curve", ""]
    lines.append("Made by `make bench` (tools/bench_safety.py): the real firmware on the host "
                 "fakes with the plant model (docs/plant_model.md). Targets: " +
                 "; ".join(TARGETS.values()) + ".")
    lines += ["", "## Occlusion", "",
              "| plant | case | time to alarm | insulin missed | pressure at alarm | "
              "released in 10 min after reopening | backed off |",
              "|---|---|---|---|---|---|---|"]
    for preset in presets:
        cases = [(r, 0) for r in RATES_U_H] + [(1.0, 5000)]
        for rate, bolus_mu in cases:
            row = occlusion_run(preset, rate, bolus_mu)
            case = "5 U bolus (1.5 U/min)" if bolus_mu else "basal %g U/h" % rate
            if row["alarm_s"] is None:
                lines.append("| %s | %s | no alarm in the run | - | - | - | - |" % (preset, case))
            else:
                lines.append("| %s | %s | %s | %.3f U | %s kPa | %.3f U | %d steps |" % (
                    preset, case,
                    ("%.0f s" % row["alarm_s"]) if row["alarm_s"] < 120
                    else ("%.1f min" % (row["alarm_s"] / 60)),
                    row["missed_mu"] / 1000, fmt(row["pressure_kpa"]),
                    row["released_mu"] / 1000, row["backoff_steps"]))
            print(lines[-1], flush=True)
    lines += ["", "## False occlusion alarms in normal use", "",
              "Open line, the basal rate plus three 5 U boluses a day, %d days each." % args.days,
              "", "| plant | basal | days | false alarms |", "|---|---|---|---|"]
    for preset in presets:
        for rate in RATES_U_H:
            row = normal_use_run(preset, rate, args.days)
            lines.append("| %s | %g U/h | %d | %d |" % (preset, rate, row["days"],
                                                       row["false_alarms"]))
            print(lines[-1], flush=True)
    lines += ["", "## Trumpet curve (plant outflow, second hour on, %d h)" % args.trumpet_hours,
              "", "| plant | rate | window | Ep(max) | Ep(min) |", "|---|---|---|---|---|"]
    for preset in presets:
        for rate in (1.0, 0.1):
            result = trumpet_run(preset, rate, args.trumpet_hours)
            for window, ep_max, ep_min, _n in result["windows"]:
                lines.append("| %s | %g U/h | %d min | %+.1f %% | %+.1f %% |" % (
                    preset, rate, window, ep_max, ep_min))
            lines.append("| %s | %g U/h | mean error | %+.2f %% | |" % (
                preset, rate, result["mean_error_percent"]))
            print(lines[-3:], flush=True)
    lines += ["", "Wall time: %.0f s." % (time.perf_counter() - started), ""]
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "safety.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print("written", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
