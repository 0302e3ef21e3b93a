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

import scenario as runner

from pump.core.therapy import BASAL, BOLUS

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "scenarios", "demo_day.toml")
HOUR_MS = 3_600_000
# Passed on to tools/termsim.py: option -> help.
TERMINAL_OPTIONS = {
    "--board": "board file in boards/ (default pico_default)",
    "--start": "time of day at boot, HH:MM (default 07:00)",
    "--speed": "1, 60 or 3600 (default 1)",
    "--seed": "the plant's noise seed (default 0)",
}


def _units(mu):
    return "%.3f" % (mu / 1000)


def _clock(t_ms, start_ms_of_day):
    t = (t_ms + start_ms_of_day) % (24 * HOUR_MS)
    return "%02d:%02d" % (t // HOUR_MS, t % HOUR_MS // 60_000)


def describe(event):
    """One readable line for an event."""
    _seq, _t, etype, f = event
    if etype == "bolus_started":
        text = "%s bolus %s U started" % (f["bolus"], _units(f["requested_mu"]))
        if f.get("extended_min"):
            text += " (%d steps now, %d over %d min)" % (
                f["now_steps"],
                f["extended_steps"],
                f["extended_min"],
            )
        return text
    if etype == "bolus_finished":
        return "%s bolus finished: %s U in %d steps" % (
            f["bolus"],
            _units(f["delivered_mu"]),
            f["steps"],
        )
    if etype == "bolus_cancelled":
        return "%s bolus cancelled (%s): %s U given, %s U not given" % (
            f["bolus"],
            f["reason"],
            _units(f["delivered_mu"]),
            _units(f["not_delivered_mu"]),
        )
    if etype == "basal_rate":
        return "basal rate now %s U/h" % _units(f["rate_mu_per_h"])
    if etype == "refused":
        return "REFUSED %s: %s" % (f["command"], f["reason"])
    if etype == "resumed":
        return "resumed after %d min; %s U of basal not given" % (
            f["suspended_min"],
            _units(f["basal_not_given_mu"]),
        )
    if etype == "alarm":
        return "ALARM (%s) %s" % (f.get("priority", "?"), f.get("message", f.get("code")))
    if etype == "fault":
        return "FAULT %s: motor stopped, %s U not given" % (
            f["code"], _units(f.get("not_delivered_mu", 0)))
    if etype == "alarm_cleared":
        return "alarm cause gone: %s" % f["code"]
    if etype == "alarm_ack":
        return "alarm acknowledged: %s" % f["code"]
    if etype == "backoff":
        return "plunger backed off %d steps (%.2f uL)" % (f["steps"], f["nl"] / 1000)
    if etype == "suspended":
        return "delivery suspended (%s)" % f["reason"]
    if etype == "battery":
        return "battery %s (%d mV)" % (f["state"], f["mv"])
    if etype == "self_test":
        if f.get("passed"):
            return "self-test passed"
        return "SELF-TEST FAILED: %s" % ", ".join(str(c) for c in f.get("codes", ()))
    details = ", ".join("%s=%s" % (k, v) for k, v in sorted(f.items()))
    return etype.replace("_", " ") + (": " + details if details else "")


def report(result, out=sys.stdout):
    scenario = result.scenario
    summary = result.summary()
    start = scenario.start_ms_of_day
    hours = (scenario.duration_ms + HOUR_MS - 1) // HOUR_MS
    per_hour = [[0, 0] for _ in range(hours)]
    for t_ms, kind, _steps, mu in result.deliveries:
        per_hour[min(t_ms // HOUR_MS, hours - 1)][0 if kind == BASAL else 1] += mu
    print("Simulated pump: board %s, %.4f U per motor step (%.3f nL)" % (
        summary["board"], summary["mu_per_step"] / 1000, summary["nl_per_step"]), file=out)
    print("", file=out)
    print("  hour   basal U   bolus U", file=out)
    for h, (basal, bolus) in enumerate(per_hour):
        bar = "#" * round((basal + bolus) / 250)
        print("  %s  %8s  %8s  %s" % (_clock(h * HOUR_MS, start), _units(basal), _units(bolus),
                                       bar), file=out)
    print("  total  %8s  %8s" % (_units(summary["delivered_mu"][BASAL]),
                                  _units(summary["delivered_mu"][BOLUS])), file=out)
    print("", file=out)
    print("Events:", file=out)
    for event in result.events:
        if event[2] in ("boot",):
            continue
        print("  %s  %s" % (_clock(event[1], start), describe(event)), file=out)
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
    steps = summary["delivered_steps"][BASAL] + summary["delivered_steps"][BOLUS]
    if steps != summary["motor_steps"]:
        print("MISMATCH: the firmware recorded %d steps, the driver saw %d"
              % (steps, summary["motor_steps"]), file=out)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", help="a scenario file (default: the demo day)")
    parser.add_argument("--out", help="where the headless run writes (default: out/demo)")
    parser.add_argument("--headless", action="store_true", help="never the terminal simulator")
    terminal = parser.add_argument_group("terminal simulator only")
    for option, text in TERMINAL_OPTIONS.items():
        terminal.add_argument(option, help=text)
    args = parser.parse_args(argv)
    if interactive(args):
        import termsim

        forwarded = []
        for option in TERMINAL_OPTIONS:
            value = getattr(args, option[2:])
            if value is not None:
                forwarded += [option, value]
        return termsim.main(forwarded)
    args.scenario = args.scenario or DEMO
    args.out = args.out or os.path.join("out", "demo")
    try:
        scenario = runner.load(args.scenario)
    except runner.ScenarioError as err:
        print("scenario error: %s" % err, file=sys.stderr)
        return 2
    result = runner.run(scenario)
    result.write(args.out)
    status = report(result)
    print("Output written to %s/ (deliveries.csv, events.jsonl, summary.json)" % args.out)
    print("Not for use on a person: a bench prototype and teaching project.")
    return status


if __name__ == "__main__":
    sys.exit(main())
