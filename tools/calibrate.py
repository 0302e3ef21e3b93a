"""Gravimetric calibration of the volume one motor microstep delivers, written to the board file.

    .venv/bin/python tools/calibrate.py --sim [--runs 3] [--steps 2000] [--board pico_default]
    .venv/bin/python tools/calibrate.py --manual --liquid water --temp 22 [--net] [--yes]

Weigh a container, let the pump push a known number of steps into it, weigh it again:
volume = net mass / density, and picolitres per step = volume / steps. The mean of the
runs goes into the board file's MECHANICS["calibrated_step_pl"] (after confirmation).
Exit status: 0 done (or nothing written on request), 2 a refused entry or option.
"""

import importlib.util
import math
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import pumptext

from pump.core.units import step_volume_pl

# Density of air-free pure water in g/mL at 101.325 kPa, by temperature in degrees C.
# Standard table values (e.g. 998.2071 kg/m3 at 20 C, 997.7735 at 22 C, 997.0479 at 25 C;
# https://experts123.com/q/what-is-the-density-of-pure-water.html; a 1-degree table at
# https://calculla.com/calculators/table/water_density). Between rows: linear.
WATER_DENSITY = (
    (15, 0.99910),
    (16, 0.99895),
    (17, 0.99878),
    (18, 0.99860),
    (19, 0.99841),
    (20, 0.99821),
    (21, 0.99799),
    (22, 0.99777),
    (23, 0.99754),
    (24, 0.99730),
    (25, 0.99705),
    (26, 0.99679),
    (27, 0.99652),
    (28, 0.99624),
    (29, 0.99595),
    (30, 0.99565),
)

# U-100 rapid-acting insulin: an aqueous solution with a few mg/mL of glycerol, phenol or
# m-cresol, salts and 3.5 mg/mL of insulin; its density is about 1.00 g/mL at room
# temperature (recalled, not confirmed from a primary source: prefer water, whose
# density is known, for a calibration; what matters is the mechanism's volume).
INSULIN_U100_DENSITY = 1.000

DENSITY_MIN = 0.95  # g/mL: anything outside is a typing error for these liquids
DENSITY_MAX = 1.05
PLAUSIBLE_DEVIATION = 0.30  # a result more than 30 % off the geometry is a slip, not a pump
MAX_STEPS = 1_000_000
MAX_MASS_MG = 1_000_000  # 1 kg: a scale entry in grams typed as milligrams is far below
SCALE_RESOLUTION_WARN_MG = 100  # below this net mass a 1 mg scale is already 1 % off

_CALIBRATED_LINE = re.compile(
    r'^[ \t]*["\']calibrated_step_pl["\'][ \t]*:[ \t]*(?P<value>None|\d+)[ \t]*,',
    re.MULTILINE,
)


class CalibrationError(ValueError):
    """A refused entry or option; the message says what and why."""


# ----- arithmetic ----------------------------------------------------------------------


def water_density(temp_c):
    """Density of pure water (g/mL) at ``temp_c`` degrees C, 15 to 30, interpolated."""
    low_t, high_t = WATER_DENSITY[0][0], WATER_DENSITY[-1][0]
    if not low_t <= temp_c <= high_t:
        raise CalibrationError(
            "temperature %.1f C is outside the table (%d to %d C)" % (temp_c, low_t, high_t)
        )
    for (t0, d0), (t1, d1) in zip(WATER_DENSITY, WATER_DENSITY[1:], strict=False):
        if t0 <= temp_c <= t1:
            return d0 + (d1 - d0) * (temp_c - t0) / (t1 - t0)
    return WATER_DENSITY[-1][1]


def liquid_density(liquid, temp_c=22.0, density=None):
    """Density in g/mL: an explicit ``density``, or the liquid's figure at ``temp_c``."""
    if density is not None:
        value = density
    elif liquid == "water":
        value = water_density(temp_c)
    elif liquid == "insulin":
        value = INSULIN_U100_DENSITY
    else:
        raise CalibrationError("liquid %r: use water or insulin, or give --density" % liquid)
    if not DENSITY_MIN <= value <= DENSITY_MAX:
        raise CalibrationError(
            "density %.4f g/mL is outside %.2f to %.2f g/mL" % (value, DENSITY_MIN, DENSITY_MAX)
        )
    return value


def net_mass_mg(tare_mg=None, gross_mg=None, net_mg=None):
    """The liquid's mass from a net reading, or from the container's tare and gross."""
    if net_mg is None:
        if tare_mg is None or gross_mg is None:
            raise CalibrationError("give the net mass, or the tare and gross masses")
        for name, value in (("tare", tare_mg), ("gross", gross_mg)):
            if not 0 <= value <= MAX_MASS_MG:
                raise CalibrationError("%s mass %r mg is not a scale reading" % (name, value))
        net_mg = gross_mg - tare_mg
    if not math.isfinite(net_mg) or net_mg <= 0:
        raise CalibrationError("net mass %r mg: the container must get heavier" % (net_mg,))
    if net_mg > MAX_MASS_MG:
        raise CalibrationError("net mass %r mg is more than 1 kg: enter milligrams" % (net_mg,))
    return net_mg


def step_pl(net_mg, steps, density_g_per_ml):
    """Picolitres per step (an integer): 1 mg of a 1 g/mL liquid is 1 uL = 1e6 pL."""
    if type(steps) is not int or steps <= 0:
        raise CalibrationError("steps must be a whole number above 0, got %r" % (steps,))
    if steps > MAX_STEPS:
        raise CalibrationError("%d steps is more than a reservoir holds" % steps)
    if not DENSITY_MIN <= density_g_per_ml <= DENSITY_MAX:
        raise CalibrationError("density %r g/mL is out of range" % (density_g_per_ml,))
    return round(net_mg * 1_000_000 / (density_g_per_ml * steps))


def deviation_percent(measured_pl, nominal_pl):
    """How far a measured step volume is from the nominal one, in percent (+ = more)."""
    return (measured_pl - nominal_pl) * 100.0 / nominal_pl


def check_plausible(measured_pl, nominal_pl, limit=PLAUSIBLE_DEVIATION):
    """Refuse a result too far from the geometry: a misread scale or a wrong step count."""
    dev = deviation_percent(measured_pl, nominal_pl)
    if abs(dev) > limit * 100:
        raise CalibrationError(
            "%d pL per step is %+.1f %% off the nominal %d pL (limit +/-%d %%): check the "
            "masses (in mg), the step count and for air or leaks"
            % (measured_pl, dev, nominal_pl, round(limit * 100))
        )
    return dev


def summarize(values):
    """Mean, sample standard deviation, spread (max - min) and CV (%) of the runs' pL/step."""
    n = len(values)
    if n < 1:
        raise CalibrationError("at least one run is needed")
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {
        "runs": n,
        "mean_pl": mean,
        "sd_pl": sd,
        "spread_pl": max(values) - min(values),
        "cv_percent": sd * 100.0 / mean if mean else 0.0,
        "result_pl": int(mean + 0.5),  # half up, not to even
    }


def nominal_step_pl(mechanics):
    """The step volume the board's geometry gives (MECHANICS dict), calibration ignored."""
    return step_volume_pl(
        mechanics["lead_um"],
        mechanics["full_steps_per_rev"],
        mechanics["microsteps"],
        mechanics["syringe_inner_diameter_um"],
    )


def replace_calibrated(text, new_pl):
    """Board file text with only the calibrated_step_pl value changed: (new_text, old).

    ``old`` is the previous value (None or an int). Refuses unless exactly one such
    line is found.
    """
    matches = list(_CALIBRATED_LINE.finditer(text))
    if len(matches) != 1:
        raise CalibrationError(
            'found %d lines like \'"calibrated_step_pl": None,\' in the board file; need 1'
            % len(matches)
        )
    m = matches[0]
    old_text = m.group("value")
    old = None if old_text == "None" else int(old_text)
    if type(new_pl) is not int or new_pl <= 0:
        raise CalibrationError("calibrated_step_pl must be a positive integer, got %r" % new_pl)
    return text[: m.start("value")] + str(new_pl) + text[m.end("value") :], old


def load_board(path):
    """Import a board file by path; returns the module (for MECHANICS)."""
    if not os.path.exists(path):
        raise CalibrationError("no board file %s" % path)
    spec = importlib.util.spec_from_file_location("calibrate_board", path)
    if spec is None or spec.loader is None:
        raise CalibrationError("cannot read board file %s" % path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not isinstance(getattr(module, "MECHANICS", None), dict):
        raise CalibrationError("%s has no MECHANICS dict" % path)
    return module


# ----- dispensing ---------------------------------------------------------------------------


class SimDispenser:
    """Dispenses in the simulator: the firmware's board on the fakes, therapy suspended,
    the motor driven for ``steps`` steps; returns the steps the driver model counted.

    The dispenser takes the motor from the firmware as a calibration jig would, and stands
    in for its main loop meanwhile: it runs the motor in trains of at most one second and
    feeds the watchdog after each, as the loop does after each of its passes, so the
    watchdog (8 s) never runs out however many steps a run asks for."""

    def __init__(self, board="pico_default", steps_per_s=2000):
        from sim.pump import SimPump  # installs the hardware fakes: only when asked for

        self.sim = SimPump(board=board)
        booted = self.sim.now_ms()  # after the power-on self-test
        self.sim.at(booted, lambda app: app.suspend())
        self.sim.run_until(booted + 10)
        if self.sim.app.therapy.suspended_at is None or self.sim.board.stepper.busy():
            raise CalibrationError("the simulated pump did not suspend delivery")
        self.steps_per_s = steps_per_s
        self.trains = 0
        self.feeds = 0

    def __call__(self, steps):
        sim = self.sim
        stepper = sim.board.stepper
        watchdog = sim.app.watchdog
        before = sim.driver.position_steps
        left = steps
        while left > 0:
            chunk = min(left, self.steps_per_s)  # one second of steps
            stepper.start(chunk, self.steps_per_s)
            while stepper.busy():
                sim.clock.run_for_ns(10_000_000)
            stepper.finish()
            self.trains += 1
            if watchdog is not None and watchdog.feed_if(True):
                self.feeds += 1
            left -= chunk
        return sim.driver.position_steps - before


class SimScale:
    """A scale for the simulator: the mass ``steps`` steps of ``true_pl`` make, in mg."""

    def __init__(self, true_pl, density):
        self.true_pl = true_pl
        self.density = density

    def net_mg(self, steps):
        return round(steps * self.true_pl * self.density / 1_000_000, 1)


def _number(text, what):
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        raise CalibrationError("%s: %r is not a number" % (what, text.strip())) from None
    if not math.isfinite(value):
        raise CalibrationError("%s: %r is not a number" % (what, text.strip()))
    return value


def _whole(text, what):
    value = _number(text, what)
    if value != int(value):
        raise CalibrationError("%s: %r is not a whole number" % (what, text.strip()))
    return int(value)


# ----- the guided session ----------------------------------------------------------------------


def run_session(dispense, ask, say, runs, steps, density, nominal_pl, net=False, scale=None):
    """The guided calibration: returns (per-run pL list, summary dict).

    ``dispense(steps)`` moves the motor (or asks the person) and returns the steps
    delivered; ``ask(prompt)`` returns a typed line; ``say(text)`` shows a line;
    ``scale`` (a SimScale) replaces the typed masses in the simulator.
    """
    if type(runs) is not int or runs < 1:
        raise CalibrationError("--runs must be 1 or more, got %r" % (runs,))
    if type(steps) is not int or not 0 < steps <= MAX_STEPS:
        raise CalibrationError("--steps must be 1 to %d, got %r" % (MAX_STEPS, steps))
    say(
        "Calibration: %d run(s) of %d steps; density %.5f g/mL; nominal %d pL per step "
        "(%.1f mg expected per run)." % (runs, steps, density, nominal_pl,
                                          steps * nominal_pl * density / 1e6)
    )
    values = []
    for run in range(1, runs + 1):
        say("Run %d of %d: put a weighed container under the cannula (prime the line first)."
            % (run, runs))
        tare = None
        if scale is None and not net:
            tare = _number(ask("  empty container mass (mg): "), "tare mass")
        done = dispense(steps)
        if type(done) is not int or done <= 0:
            raise CalibrationError("run %d: steps dispensed must be above 0, got %r" % (run, done))
        if done != steps:
            say("  %d steps were dispensed (asked for %d)." % (done, steps))
        if scale is not None:
            net_mg = scale.net_mg(done)
            say("  the scale reads %.1f mg net" % net_mg)
        elif net:
            net_mg = net_mass_mg(net_mg=_number(ask("  net mass (mg): "), "net mass"))
        else:
            gross = _number(ask("  container with liquid (mg): "), "gross mass")
            net_mg = net_mass_mg(tare_mg=tare, gross_mg=gross)
        if net_mg < SCALE_RESOLUTION_WARN_MG:
            say("  note: %.1f mg is little liquid; dispense more steps for a 1 mg scale" % net_mg)
        pl = step_pl(net_mg, done, density)
        dev = check_plausible(pl, nominal_pl)
        values.append(pl)
        say("  run %d: %d steps, %.1f mg -> %d pL per step (%+.2f %% from nominal)"
            % (run, done, net_mg, pl, dev))
    summary = summarize(values)
    summary["nominal_pl"] = nominal_pl
    summary["deviation_percent"] = deviation_percent(summary["result_pl"], nominal_pl)
    say(
        "Result: mean %.1f pL per step, SD %.1f pL, spread %d pL, CV %.2f %% over %d run(s); "
        "%d pL is %+.2f %% from the nominal %d pL."
        % (summary["mean_pl"], summary["sd_pl"], summary["spread_pl"], summary["cv_percent"],
           summary["runs"], summary["result_pl"], summary["deviation_percent"], nominal_pl)
    )
    return values, summary


def write_board(path, new_pl, ask, say, assume_yes=False):
    """Write ``new_pl`` into the board file after showing old and new; True if written."""
    with open(path, newline="") as f:
        text = f.read()
    new_text, old = replace_calibrated(text, new_pl)
    say('%s: MECHANICS["calibrated_step_pl"] %s -> %d' % (path, old, new_pl))
    if not assume_yes:
        answer = ask("Write it? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            say("Nothing written.")
            return False
    with open(path, "w", newline="") as f:
        f.write(new_text)
    say("Written.")
    return True


def _reader(stream):
    def ask(prompt):
        print(prompt, end="", flush=True)
        line = stream.readline()
        if not line:
            raise CalibrationError("input ended before the calibration was complete")
        if not stream.isatty():
            print(line.rstrip("\n"))  # echo piped answers so the transcript reads well
        return line

    return ask


def main(argv=None, stdin=None):
    parser = pumptext.OneLineParser(prog="calibrate.py", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--sim", action="store_true", help="dispense in the simulator")
    mode.add_argument("--manual", action="store_true",
                      help="you dispense (e.g. from the pump's menu) and type the step count")
    parser.add_argument("--board", default="pico_default", help="board name (boards/NAME.py)")
    parser.add_argument("--board-file",
                        help="board file to write (default boards/BOARD.py; --sim still "
                             "simulates boards/BOARD.py)")
    parser.add_argument("--runs", type=int, default=3, help="number of runs (default 3)")
    parser.add_argument("--steps", type=int, default=20_000, help="steps per run (default 20000)")
    parser.add_argument("--liquid", default="water", choices=("water", "insulin"))
    parser.add_argument("--temp", type=pumptext.finite, default=22.0,
                        help="liquid temperature, C")
    parser.add_argument("--density", type=pumptext.finite,
                        help="density in g/mL (overrides --liquid)")
    parser.add_argument("--net", action="store_true", help="type net masses (scale tared)")
    parser.add_argument("--sim-true-pl", type=int,
                        help="with --sim: a simulated scale for a pump of this many pL per step")
    parser.add_argument("--yes", action="store_true", help="write without asking")
    parser.add_argument("--dry-run", action="store_true", help="never write the board file")
    args = parser.parse_args(argv)
    ask = _reader(stdin if stdin is not None else sys.stdin)

    def say(text):
        print(text, flush=True)

    path = args.board_file or os.path.join(ROOT, "boards", args.board + ".py")
    try:
        board = load_board(path)
        nominal = nominal_step_pl(board.MECHANICS)
        density = liquid_density(args.liquid, args.temp, args.density)
        scale = None
        if args.sim:
            dispense = SimDispenser(args.board)
            if args.sim_true_pl is not None:
                scale = SimScale(args.sim_true_pl, density)
        else:
            if args.sim_true_pl is not None:
                raise CalibrationError("--sim-true-pl needs --sim")

            def dispense(steps):
                say("  dispense %d steps now (pump menu), then type the count it shows." % steps)
                return _whole(ask("  steps dispensed: "), "steps dispensed")

        _values, summary = run_session(
            dispense, ask, say, args.runs, args.steps, density, nominal, args.net, scale
        )
        if args.dry_run:
            say("Dry run: the board file is not changed.")
            return 0
        write_board(path, summary["result_pl"], ask, say, args.yes)
    except CalibrationError as err:
        print("calibration error: %s" % err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
