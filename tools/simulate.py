"""`make sim`: the pump in the terminal, or (without one) the demo day, printed.

    .venv/bin/python tools/simulate.py [--board NAME] [--start HH:MM] [--speed 1|60|3600]
    .venv/bin/python tools/simulate.py [SCENARIO.toml] [--out DIR] [--headless]

With a terminal on stdin and stdout and no scenario named, it runs the interactive
simulator (tools/termsim.py; the options above go to it). Otherwise, as in CI or with
input from /dev/null, it runs the scenario (the bundled demo day by default) headless and
prints a report, so it never waits for keys nobody can press.
"""

import argparse
import os
import sys

import pumptext
import scenario as runner

from pump.core.therapy import BASAL, BOLUS

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "scenarios", "demo_day.toml")
HOUR_MS = 3_600_000
SPEEDS = (1, 60, 3600)


def describe(event, nu_per_step=None):
    """One readable line for an event (seq, t_ms, type, fields)."""
    return pumptext.describe(event[2], event[3], nu_per_step)


def _amounts(steps_by_row, nu_per_step):
    """Each row's insulin in mU from its steps, rounded so that the rows add up to the
    rounded total: a row shows what the running total gained in it."""
    shown = []
    total_steps = 0
    before = 0
    for steps in steps_by_row:
        total_steps += steps
        now = pumptext.mu_from_steps(total_steps, nu_per_step)
        shown.append(now - before)
        before = now
    return shown


def report(result, out=sys.stdout):
    scenario = result.scenario
    summary = result.summary()
    nu = result.sim.mechanics.nu_per_step
    start = scenario.start_ms_of_day
    hours = (scenario.duration_ms + HOUR_MS - 1) // HOUR_MS
    steps = {BASAL: [0] * hours, BOLUS: [0] * hours}
    for t_ms, kind, train_steps, _mu in result.deliveries:
        steps[kind][min(t_ms // HOUR_MS, hours - 1)] += train_steps
    basal = _amounts(steps[BASAL], nu)
    bolus = _amounts(steps[BOLUS], nu)
    print("Simulated pump: board %s, %s per motor step (%.3f nL)" % (
        summary["board"], pumptext.step_units(nu), summary["nl_per_step"]), file=out)
    print("", file=out)
    print("  hour     basal      bolus", file=out)
    for h in range(hours):
        bar = "#" * round((basal[h] + bolus[h]) / 250)
        print("  %s  %9s  %9s  %s" % (pumptext.clock(start + h * HOUR_MS),
                                      pumptext.units(basal[h]), pumptext.units(bolus[h]), bar),
              file=out)
    print("  total  %9s  %9s" % (pumptext.units(sum(basal)), pumptext.units(sum(bolus))),
          file=out)
    print("", file=out)
    print("Events:", file=out)
    for event in result.events:
        if event[2] in ("boot", "basal_hour"):
            continue  # the boot is the reset's line; the hours are the table above
        print("  %s  %s" % (pumptext.clock(start + event[1]), describe(event, nu)), file=out)
    print("", file=out)
    print(
        "%d pulse trains, %d motor steps counted at the driver; %d refused; "
        "%.1f simulated hours in %.2f s of wall time"
        % (
            summary["trains"],
            summary["motor_steps"],
            summary["refused"],
            summary["duration_h"],
            summary["wall_s"],
        ),
        file=out,
    )
    recorded = summary["delivered_steps"][BASAL] + summary["delivered_steps"][BOLUS]
    if recorded != summary["motor_steps"]:
        print("MISMATCH: the firmware recorded %d steps, the driver saw %d"
              % (recorded, summary["motor_steps"]), file=out)
        return 1
    return 0


def interactive(args, stdin=None, stdout=None):
    """True when the terminal simulator should run: a terminal both ways, no scenario named,
    no headless output asked for."""
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    if args.headless or args.scenario is not None or args.out is not None:
        return False
    try:
        return stdin.isatty() and stdout.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams are no terminal
        return False


def _board(name):
    if name not in runner.board_names():
        raise argparse.ArgumentTypeError(
            "no board file %r (known: %s)" % (name, ", ".join(runner.board_names())))
    return name


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None
    if value < 0:
        raise argparse.ArgumentTypeError("%r: the seed is 0 or more" % text)
    return value


def _speed(text):
    if text not in [str(speed) for speed in SPEEDS]:
        raise argparse.ArgumentTypeError(
            "%r: the speed is one of %s" % (text, ", ".join(str(s) for s in SPEEDS)))
    return int(text)


def build_parser():
    parser = pumptext.OneLineParser(prog="simulate.py", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", help="a scenario file (default: the demo day)")
    parser.add_argument("--out", help="where the headless run writes (default: out/demo)")
    parser.add_argument("--headless", action="store_true", help="never the terminal simulator")
    parser.add_argument("--board", type=_board,
                        help="board file in boards/ (default: the scenario's, or pico_default)")
    parser.add_argument("--start", type=pumptext.time_of_day, metavar="HH:MM",
                        help="time of day at boot (default: the scenario's, or 07:00 in the "
                        "terminal)")
    parser.add_argument("--seed", type=_seed, help="the plant's noise seed (default 0)")
    parser.add_argument("--speed", type=_speed, metavar="1|60|3600",
                        help="terminal simulator only: simulated seconds per second (default 1)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if interactive(args):
        import termsim

        forwarded = []
        if args.board is not None:
            forwarded += ["--board", args.board]
        if args.start is not None:
            forwarded += ["--start", pumptext.clock(args.start)]
        if args.seed is not None:
            forwarded += ["--seed", str(args.seed)]
        if args.speed is not None:
            forwarded += ["--speed", str(args.speed)]
        return termsim.main(forwarded)
    if args.speed is not None:
        parser.error("--speed is for the terminal simulator; a headless run goes as fast as "
                     "it can")
    args.scenario = args.scenario or DEMO
    args.out = args.out or os.path.join("out", "demo")
    try:
        scenario = runner.load(args.scenario)
        # The options a person gave on the command line win over the scenario's.
        if args.board is not None:
            scenario.board = args.board
        if args.start is not None:
            scenario.start_ms_of_day = args.start
        if args.seed is not None:
            scenario.plant_seed = args.seed
        result = runner.start(scenario)
        result.write(args.out)
    except runner.ScenarioError as err:
        print("scenario error: %s" % err, file=sys.stderr)
        return 2
    except OSError as err:
        print("simulate.py: cannot write %s: %s" % (args.out, err.strerror), file=sys.stderr)
        return 2
    status = report(result)
    print("Output written to %s/ (deliveries.csv, events.jsonl, iob.csv, pressure.csv, "
          "outflow.csv, summary.json)" % args.out)
    print("Not for use on a person: a bench prototype and teaching project.")
    return status


if __name__ == "__main__":
    sys.exit(pumptext.quiet_broken_pipe(main))
