"""Charts (PNG) of a scenario run or a downloaded pump history: delivery, IOB, events, trumpet.

    .venv/bin/python tools/plot.py OUTDIR [--to DIR] [--rate U_PER_H]
    .venv/bin/python tools/plot.py HISTORY.jsonl|.json|.csv [--to DIR]

OUTDIR is a folder written by tools/scenario.py (deliveries.csv, events.jsonl,
summary.json; outflow.csv and pressure.csv when present). A history file holds the
pump's events, deliveries among them (format in docs/protocol.md). Prints each file
written; exits with status 2, saying why, for a missing or malformed input.
"""

import csv
import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import pumptext

from pump.core.iob import FULL, HOUR_MS, RAPID_ACTING, InsulinCurve

MIN_MS = 60_000
TRUMPET_WINDOWS_MIN = (2, 5, 11, 19, 31, 60)  # IEC 60601-2-24 windows, plus 1 hour
IOB_DIA_MS = 5 * HOUR_MS
IOB_STEP_MS = 5 * MIN_MS
DELIVERY_KINDS = ("basal", "bolus")
KIND_COLOURS = {"basal": "tab:blue", "bolus": "tab:orange"}


class PlotError(ValueError):
    """A missing or malformed input; the message names the file and what is wrong."""


# ----- reading ---------------------------------------------------------------------------------


class Run:
    """What the charts need: deliveries (t_ms, kind, steps, mu), events (dicts), and
    the optional summary, outflow rows (t_ms, delivered_nl) and pressure rows
    (t_ms, value) with the pressure column's name."""

    def __init__(self, name, deliveries, events, summary=None, outflow=None, pressure=None,
                 pressure_name=None):
        self.name = name
        self.deliveries = deliveries
        self.events = events
        self.summary = summary or {}
        self.outflow = outflow
        self.pressure = pressure
        self.pressure_name = pressure_name
        self.start_ms_of_day = None  # time of day at t_ms 0, when known
        self.iob = None  # the firmware's own insulin on board: (t_ms, mU), when recorded

    def end_ms(self):
        times = [d[0] for d in self.deliveries] + [e["t_ms"] for e in self.events]
        if self.outflow:
            times.append(self.outflow[-1][0])
        if self.summary.get("duration_h"):
            times.append(round(self.summary["duration_h"] * HOUR_MS))
        return max(times) if times else 0


def _int_field(row, key, where):
    try:
        value = row[key]
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str):
            value = value.strip()
        number = float(value)
        if not math.isfinite(number) or number != int(number):
            raise ValueError
        return int(number)
    except (KeyError, TypeError, ValueError):
        raise PlotError("%s: %r is not a whole number (%r)" % (where, key, row.get(key))) from None


def _read_csv(path, columns):
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise PlotError(
                    "%s: header %s lacks %s" % (path, ",".join(header) or "(empty)",
                                                ", ".join(missing))
                )
            return list(reader), header
    except OSError as err:
        raise PlotError("%s: %s" % (path, err.strerror)) from None
    except (csv.Error, UnicodeDecodeError) as err:
        raise PlotError("%s: not a CSV file (%s)" % (path, err)) from None


def _deliveries_from_rows(rows, path):
    out = []
    for i, row in enumerate(rows, 2):
        where = "%s line %d" % (path, i)
        kind = (row.get("kind") or "").strip()
        if kind not in DELIVERY_KINDS:
            raise PlotError("%s: kind %r is not basal or bolus" % (where, kind))
        out.append((_int_field(row, "t_ms", where), kind, _int_field(row, "steps", where),
                    _int_field(row, "mu", where)))
    return out


# What the pump's own event log says was delivered, when it has no per-train records:
# basal one record per clock hour (placed at the middle of that hour), boluses when they end.
_BOLUS_ENDS = ("bolus_finished", "bolus_cancelled", "bolus_interrupted")


def _deliveries_from_log(events, path):
    out = []
    for i, e in enumerate(events):
        where = "%s record %d" % (path, i + 1)
        if e["type"] == "basal_hour":
            t_ms = e["t_ms"] - HOUR_MS // 2  # logged at the start of the next hour
            out.append((max(t_ms, 0), "basal", _int_field(e, "steps", where),
                        _int_field(e, "mu", where)))
        elif e["type"] in _BOLUS_ENDS and e.get("delivered_mu") not in (None, "", 0, "0"):
            steps = _int_field(e, "steps", where) if e.get("steps") not in (None, "") else 0
            out.append((e["t_ms"], "bolus", steps, _int_field(e, "delivered_mu", where)))
    return out


def _event(record, where):
    if not isinstance(record, dict) or "type" not in record:
        raise PlotError("%s: an event is an object with t_ms and type" % where)
    record = dict(record)
    record["t_ms"] = _int_field(record, "t_ms", where)
    return record


def _read_jsonl(path):
    events = []
    try:
        with open(path) as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as err:
                    raise PlotError("%s line %d: not JSON (%s)" % (path, i, err)) from None
                events.append(_event(record, "%s line %d" % (path, i)))
    except OSError as err:
        raise PlotError("%s: %s" % (path, err.strerror)) from None
    except UnicodeDecodeError:
        raise PlotError("%s: not a text file" % path) from None
    return events


def _series(path, value_names):
    """Rows (t_ms, value) of a two-column CSV; returns (rows, the value column used)."""
    rows, header = _read_csv(path, ("t_ms",))
    name = next((n for n in value_names if n in header), None)
    if name is None:
        raise PlotError("%s: needs a column %s" % (path, " or ".join(value_names)))
    out = []
    for i, row in enumerate(rows, 2):
        where = "%s line %d" % (path, i)
        try:
            value = float(row[name])
        except (TypeError, ValueError):
            raise PlotError("%s: %r is not a number" % (where, row.get(name))) from None
        out.append((_int_field(row, "t_ms", where), value))
    return out, name


def load_folder(folder):
    """Read a scenario output folder into a Run."""
    if not os.path.isdir(folder):
        raise PlotError("%s: no such folder" % folder)
    needed = ("deliveries.csv", "events.jsonl", "summary.json")
    missing = [n for n in needed if not os.path.exists(os.path.join(folder, n))]
    if missing:
        raise PlotError(
            "%s is not a scenario output folder: %s missing" % (folder, ", ".join(missing))
        )
    path = os.path.join(folder, "deliveries.csv")
    rows, _ = _read_csv(path, ("t_ms", "kind", "steps", "mu"))
    deliveries = _deliveries_from_rows(rows, path)
    events = _read_jsonl(os.path.join(folder, "events.jsonl"))
    path = os.path.join(folder, "summary.json")
    try:
        with open(path) as f:
            summary = json.load(f)
    except ValueError as err:
        raise PlotError("%s: not JSON (%s)" % (path, err)) from None
    if not isinstance(summary, dict):
        raise PlotError("%s: expected a JSON object" % path)
    outflow = pressure = pressure_name = None
    path = os.path.join(folder, "outflow.csv")
    if os.path.exists(path):
        series, _ = _series(path, ("delivered_nl",))
        outflow = [(t, int(v)) for t, v in series]
    path = os.path.join(folder, "pressure.csv")
    if os.path.exists(path):
        pressure, pressure_name = _series(path, ("pressure_kpa", "force_mn"))
    name = summary.get("scenario") or os.path.basename(os.path.normpath(folder))
    run = Run(name, deliveries, events, summary, outflow, pressure, pressure_name)
    run.start_ms_of_day = _start_of(summary, events)
    path = os.path.join(folder, "iob.csv")
    if os.path.exists(path):
        rows, _ = _read_csv(path, ("t_ms", "iob_mu"))
        run.iob = [(int(r["t_ms"]), int(r["iob_mu"])) for r in rows if r["iob_mu"] != ""]
    return run


def _start_of(summary, events):
    """The time of day the run started (ms), from summary.json's start_time or the first
    event's time column; None when neither says."""
    text = summary.get("start_time")
    if not text:
        for event in events:
            if isinstance(event.get("time"), str) and len(event["time"]) >= 5:
                t = event["time"]
                ms = (int(t[:2]) * 60 + int(t[3:5])) * MIN_MS
                ms += int(t[6:8]) * 1000 if len(t) >= 8 else 0
                return (ms - int(event["t_ms"])) % (24 * HOUR_MS)
        return None
    return (int(text[:2]) * 60 + int(text[3:5])) * MIN_MS


def _time_axis(ax, run):
    """x in hours from the start, labelled with the time of day when the run has one."""
    start = getattr(run, "start_ms_of_day", None)
    if start is None:
        ax.set_xlabel("time from the start (h)")
        return
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    def label(hours, _pos):
        minutes = round((start + hours * HOUR_MS) / MIN_MS) % (24 * 60)
        return "%02d:%02d" % (minutes // 60, minutes % 60)

    span_h = max(run.end_ms() / HOUR_MS, 1.0)
    ax.xaxis.set_major_locator(MultipleLocator(max(1, round(span_h / 12))))
    ax.xaxis.set_major_formatter(FuncFormatter(label))
    ax.set_xlabel("time of day")


def load_history(path):
    """Read a downloaded history (JSON Lines, a JSON array, or CSV) into a Run.

    Every record is an event with t_ms and type; those of type "delivery" carry
    kind (basal or bolus), steps and mu, and give the deliveries.
    """
    if not os.path.isfile(path):
        raise PlotError("%s: no such file" % path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csv":
        rows, _ = _read_csv(path, ("t_ms", "type"))
        events = [_event({k: v for k, v in row.items() if v not in (None, "")},
                         "%s line %d" % (path, i)) for i, row in enumerate(rows, 2)]
    elif ext == ".json":
        try:
            with open(path) as f:
                data = json.load(f)
        except (ValueError, UnicodeDecodeError) as err:
            raise PlotError("%s: not JSON (%s)" % (path, err)) from None
        if isinstance(data, dict):
            data = data.get("events")
        if not isinstance(data, list):
            raise PlotError('%s: expected a list of events or {"events": [...]}' % path)
        events = [_event(r, "%s event %d" % (path, i)) for i, r in enumerate(data)]
    elif ext == ".jsonl":
        events = _read_jsonl(path)
    else:
        raise PlotError("%s: a history is .jsonl, .json or .csv" % path)
    deliveries = []
    others = []
    for i, e in enumerate(events):
        if e["type"] == "delivery":
            deliveries.extend(_deliveries_from_rows([e], "%s record %d" % (path, i + 1)))
        else:
            others.append(e)
    if not deliveries:
        deliveries = _deliveries_from_log(others, path)
    deliveries.sort()
    return Run(os.path.splitext(os.path.basename(path))[0], deliveries, others)


def load(path):
    """A Run from a scenario output folder or a history file."""
    if not os.path.exists(path):
        raise PlotError("%s: no such folder or history file" % path)
    return load_folder(path) if os.path.isdir(path) else load_history(path)


# ----- arithmetic ----------------------------------------------------------------------------


def per_hour(deliveries, hours):
    """Units delivered in each whole hour, by kind: {kind: [U for hour 0, 1, ...]}."""
    out = {kind: [0.0] * hours for kind in DELIVERY_KINDS}
    for t_ms, kind, _steps, mu in deliveries:
        hour = min(t_ms // HOUR_MS, hours - 1)
        out[kind][hour] += mu / 1000
    return out


def cumulative(deliveries, kind=None):
    """(times in h, cumulative U) of the deliveries of ``kind`` (all when None)."""
    times, totals = [0.0], [0.0]
    total = 0
    for t_ms, k, _steps, mu in deliveries:
        if kind is None or k == kind:
            total += mu
            times.append(t_ms / HOUR_MS)
            totals.append(total / 1000)
    return times, totals


def insulin_on_board(deliveries, end_ms, step_ms=IOB_STEP_MS, dia_ms=IOB_DIA_MS):
    """(times in ms, IOB in mU) of the bolus deliveries, with the firmware's curve
    (rapid-acting, exponential, the given duration of insulin action)."""
    curve = InsulinCurve(RAPID_ACTING, dia_ms)
    doses = [(t, mu) for t, kind, _s, mu in deliveries if kind == "bolus" and mu > 0]
    times = list(range(0, end_ms + 1, step_ms))
    iob = []
    for now in times:
        total = 0
        for t, mu in doses:
            if t <= now:
                total += mu * curve.remaining(now - t)
        iob.append(total / FULL)
    return times, iob


def trumpet(rows, rate_nl_per_min, windows_min=TRUMPET_WINDOWS_MIN, start_min=60):
    """IEC 60601-2-24 trumpet curve from cumulative outflow samples.

    ``rows`` are (t_ms, delivered_nl) with delivered_nl cumulative (sampled every 30 s
    in the standard). For each window of P minutes, every moving window that starts at
    or after ``start_min`` and ends at a sample is compared with the programmed rate:
    error = (delivered - rate * P) / (rate * P) * 100. Returns a dict: ``windows`` is a
    list of (P, Ep(max) %, Ep(min) %, number of windows) (None, None, 0 when the data
    is too short), ``mean_error_percent`` the error of everything from start_min to
    the last sample (None when there is none).
    """
    if rate_nl_per_min <= 0:
        raise ValueError("the programmed rate must be above 0 nL/min")
    at = {}
    for t_ms, nl in rows:
        at[int(t_ms)] = nl
    start_ms = start_min * MIN_MS
    starts = sorted(t for t in at if t >= start_ms)
    windows = []
    for minutes in windows_min:
        span = round(minutes * MIN_MS)
        expected = rate_nl_per_min * minutes
        errors = [
            (at[t + span] - at[t] - expected) * 100.0 / expected for t in starts if t + span in at
        ]
        if errors:
            windows.append((minutes, max(errors), min(errors), len(errors)))
        else:
            windows.append((minutes, None, None, 0))
    mean = None
    if len(starts) >= 2:
        first, last = starts[0], starts[-1]
        expected = rate_nl_per_min * (last - first) / MIN_MS
        mean = (at[last] - at[first] - expected) * 100.0 / expected
    return {"windows": windows, "mean_error_percent": mean}


def programmed_rate_nl_per_min(run, start_min=60):
    """The basal rate programmed during the trumpet period, from the run's basal_rate
    events and its step size; None when the rate changed in that period or is unknown."""
    mu_per_step = run.summary.get("mu_per_step")
    nl_per_step = run.summary.get("nl_per_step")
    if not mu_per_step or not nl_per_step:
        return None
    rates = [(e["t_ms"], e.get("rate_mu_per_h")) for e in run.events if e["type"] == "basal_rate"]
    before = [r for t, r in rates if t <= start_min * MIN_MS]
    after = {r for t, r in rates if t > start_min * MIN_MS}
    current = before[-1] if before else None
    if current is None or after - {current}:
        return None
    return current * (nl_per_step / mu_per_step) / 60


# ----- charts ----------------------------------------------------------------------------------


def _pyplot():
    """matplotlib's pyplot on the Agg backend (no display), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def _save(fig, out_dir, name, written):
    path = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    written.append(path)


def plot_delivery_per_hour(run, out_dir, written):
    hours = max(1, math.ceil(run.end_ms() / HOUR_MS))
    data = per_hour(run.deliveries, hours)
    fig, ax = _pyplot().subplots(figsize=(10, 4))
    bottom = [0.0] * hours
    for kind in DELIVERY_KINDS:
        ax.bar(range(hours), data[kind], bottom=bottom, label=kind, color=KIND_COLOURS[kind],
               align="edge", width=0.9)
        bottom = [b + v for b, v in zip(bottom, data[kind], strict=True)]
    _time_axis(ax, run)
    ax.set_ylabel("insulin delivered (U)")
    ax.set_title("%s: delivery per hour" % run.name)
    ax.legend()
    _save(fig, out_dir, "delivery_per_hour.png", written)


def plot_cumulative(run, out_dir, written):
    fig, ax = _pyplot().subplots(figsize=(10, 4))
    for kind, colour in (("basal", KIND_COLOURS["basal"]), ("bolus", KIND_COLOURS["bolus"]),
                         (None, "black")):
        times, totals = cumulative(run.deliveries, kind)
        ax.step(times, totals, where="post", label=kind or "total", color=colour)
    _time_axis(ax, run)
    ax.set_ylabel("cumulative insulin (U)")
    ax.set_title("%s: cumulative insulin" % run.name)
    ax.legend()
    _save(fig, out_dir, "cumulative.png", written)


def plot_iob(run, out_dir, written):
    if run.iob:
        times, iob = [t for t, _v in run.iob], [v for _t, v in run.iob]
        title = "%s: insulin on board, as the pump counts it" % run.name
    else:
        times, iob = insulin_on_board(run.deliveries, run.end_ms())
        title = "%s: bolus insulin on board (rapid-acting, DIA 5 h)" % run.name
    fig, ax = _pyplot().subplots(figsize=(10, 4))
    ax.plot([t / HOUR_MS for t in times], [v / 1000 for v in iob], color="tab:green")
    _time_axis(ax, run)
    ax.set_ylabel("insulin on board (U)")
    ax.set_title(title)
    _save(fig, out_dir, "iob.png", written)


def plot_pressure(run, out_dir, written):
    if not run.pressure:
        return
    fig, ax = _pyplot().subplots(figsize=(10, 4))
    ax.plot([t / HOUR_MS for t, _v in run.pressure], [v for _t, v in run.pressure])
    _time_axis(ax, run)
    unit = {"pressure_kpa": "line pressure (kPa)", "force_mn": "plunger force (mN)"}
    ax.set_ylabel(unit.get(run.pressure_name or "", run.pressure_name))
    ax.set_title("%s: pressure" % run.name)
    _save(fig, out_dir, "pressure.png", written)


def plot_events(run, out_dir, written):
    types = sorted({e["type"] for e in run.events})
    fig, ax = _pyplot().subplots(figsize=(10, 1.2 + 0.35 * max(1, len(types))))
    for row, etype in enumerate(types):
        times = [e["t_ms"] / HOUR_MS for e in run.events if e["type"] == etype]
        alarm = "alarm" in etype or etype in ("refused", "occlusion", "fault")
        ax.scatter(times, [row] * len(times), marker="|" if not alarm else "x", s=120,
                   color="tab:red" if alarm else "tab:gray")
    ax.set_yticks(range(len(types)))
    ax.set_yticklabels([etype.replace("_", " ") for etype in types])
    ax.set_xlim(-0.02 * max(run.end_ms() / HOUR_MS, 1e-3), max(run.end_ms() / HOUR_MS, 1e-3))
    _time_axis(ax, run)
    ax.set_title("%s: events (alarms and refusals in red)" % run.name)
    _save(fig, out_dir, "events.png", written)


def plot_trumpet(run, out_dir, written, rate_nl_per_min=None):
    if not run.outflow:
        return None
    rate = rate_nl_per_min or programmed_rate_nl_per_min(run)
    if rate is None:
        print("trumpet: no single programmed basal rate after the first hour; give --rate",
              file=sys.stderr)
        return None
    result = trumpet(run.outflow, rate)
    rows = [w for w in result["windows"] if w[3]]
    fig, ax = _pyplot().subplots(figsize=(8, 5))
    if rows:
        ax.plot([w[0] for w in rows], [w[1] for w in rows], "o-", color="tab:red",
                label="Ep(max)")
        ax.plot([w[0] for w in rows], [w[2] for w in rows], "o-", color="tab:blue",
                label="Ep(min)")
    if result["mean_error_percent"] is not None:
        ax.axhline(result["mean_error_percent"], color="black", linestyle="--",
                   label="mean error %.2f %%" % result["mean_error_percent"])
    ax.axhline(0, color="gray", linewidth=0.5)
    ax.set_xlabel("observation window (min)")
    ax.set_ylabel("deviation from the programmed rate (%)")
    ax.set_title("%s: trumpet curve at %.2f nL/min, from the 2nd hour" % (run.name, rate))
    if ax.get_legend_handles_labels()[0]:  # a run too short for any window has no lines
        ax.legend()
    _save(fig, out_dir, "trumpet.png", written)
    return result


def plot_all(run, out_dir, rate_nl_per_min=None):
    """Write every chart the run has data for; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    plot_delivery_per_hour(run, out_dir, written)
    plot_cumulative(run, out_dir, written)
    plot_iob(run, out_dir, written)
    plot_pressure(run, out_dir, written)
    plot_events(run, out_dir, written)
    plot_trumpet(run, out_dir, written, rate_nl_per_min)
    return written


def main(argv=None):
    parser = pumptext.OneLineParser(prog="plot.py", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="scenario output folder, or a history file")
    parser.add_argument("--to", help="folder for the PNG files (default: next to the input)")
    parser.add_argument("--rate", type=pumptext.finite,
                        help="programmed basal rate in U/h for the trumpet curve (U-100)")
    args = parser.parse_args(argv)
    try:
        run = load(args.source)
        out_dir = args.to or (args.source if os.path.isdir(args.source)
                              else os.path.dirname(os.path.abspath(args.source)))
        rate = None
        if args.rate is not None:
            if args.rate <= 0:
                raise PlotError("--rate must be above 0 U/h")
            nl_per_mu = 10.0  # U-100: 1 mU is 10 nL
            if run.summary.get("mu_per_step") and run.summary.get("nl_per_step"):
                nl_per_mu = run.summary["nl_per_step"] / run.summary["mu_per_step"]
            rate = args.rate * 1000 * nl_per_mu / 60
        written = plot_all(run, out_dir, rate)
    except PlotError as err:
        print("plot error: %s" % err, file=sys.stderr)
        return 2
    except OSError as err:
        print("plot error: cannot write %s: %s" % (err.filename or out_dir, err.strerror),
              file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
