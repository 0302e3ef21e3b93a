"""Delivery properties over random therapy: basal is floor(ideal) and boluses are exact.

The line test is off in the full-stack runs (its pulls and pushes are not therapy, and
the basal it holds back is bounded in test_app_occlusion.py).

The ideal is worked out here, independently of the firmware: walk the profile's
half-hour segments and the temp basal intervals and integrate the scheduled rate with
exact fractions.
"""

import bisect
from fractions import Fraction

import machine
from hypothesis import given, settings
from hypothesis import strategies as st

from core.support import CoreLoop
from pump.core import events as ev
from pump.core.schedule import TEMP_ABSOLUTE, TEMP_PERCENT, BasalProfile
from pump.core.therapy import BASAL, BOLUS, Settings
from sim.pump import SimPump

MIN = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR
HALF_HOUR = 30 * MIN
MAX_BASAL = 15_000
NU_PER_MU = 1_000_000


# ----- the independent model ------------------------------------------------------------------


class IdealBasal:
    """The scheduled basal rate as a step function of ms since boot, and its integral."""

    def __init__(self, segments, start_ms_of_day, temps, end_ms, nu_per_step):
        # One step is (3.6e6 ms/h x nu_per_step / 1e6 mU) of mU/h x ms.
        self.step = Fraction(HOUR * nu_per_step, NU_PER_MU)
        cuts = {0, end_ms}
        first_midnight = -start_ms_of_day
        for day in range(end_ms // DAY + 2):
            for slot, _rate in segments:
                cut = first_midnight + day * DAY + slot * HALF_HOUR
                if 0 < cut < end_ms:
                    cuts.add(cut)
        active = []  # (start, end, kind, value) of each temp, the later one winning
        for start, kind, value, duration in temps:
            active = [(s, min(e, start), k, v) for s, e, k, v in active]
            active.append((start, start + duration, kind, value))
            cuts.update(t for t in (start, start + duration) if t < end_ms)
        self.temps = active
        self.segments = segments
        self.start_ms_of_day = start_ms_of_day
        self.cuts = sorted(cuts)
        self.rates = [self.rate_at(cut) for cut in self.cuts]  # from each cut to the next
        self.integral = [0]  # mU/h x ms from 0 to each cut: whole numbers
        for i in range(len(self.cuts) - 1):
            width = self.cuts[i + 1] - self.cuts[i]
            self.integral.append(self.integral[-1] + self.rates[i] * width)

    def profile_rate(self, t_ms):
        slot = (t_ms + self.start_ms_of_day) % DAY // HALF_HOUR
        rate = 0
        for start, seg_rate in self.segments:
            if start <= slot:
                rate = seg_rate
        return rate

    def rate_at(self, t_ms):
        rate = self.profile_rate(t_ms)
        for start, end, kind, value in self.temps:
            if start <= t_ms < end:
                rate = rate * value // 100 if kind == TEMP_PERCENT else value
        return rate

    def steps(self, t_ms):
        """floor(integral of the scheduled rate from 0 to t_ms / one step)."""
        i = bisect.bisect_right(self.cuts, t_ms) - 1
        area = self.integral[i] + self.rates[i] * (t_ms - self.cuts[i])
        # area // self.step, without building a Fraction per instant
        return area * self.step.denominator // self.step.numerator


# ----- random therapy ---------------------------------------------------------------------------

rates = st.integers(0, MAX_BASAL // 10).map(lambda r: r * 10)


@st.composite
def profiles(draw):
    slots = draw(st.sets(st.integers(1, 47), max_size=47))
    return [(slot, draw(rates)) for slot in [0] + sorted(slots)]


@st.composite
def temps(draw, segments, end_ms):
    """A few valid temp basals at random times: percent or absolute, 30-min multiples."""
    top = max(rate for _slot, rate in segments)
    out = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.integers(0, end_ms - 1))
        duration = draw(st.integers(1, 8)) * HALF_HOUR
        if draw(st.booleans()):
            highest = 250 if top == 0 else min(250, MAX_BASAL * 100 // top)
            while top * highest // 100 > MAX_BASAL:
                highest -= 1
            out.append((start, TEMP_PERCENT, draw(st.integers(0, highest)), duration))
        else:
            out.append((start, TEMP_ABSOLUTE, draw(rates), duration))
    return sorted(out, key=lambda temp: temp[0])


@st.composite
def boluses(draw, end_ms):
    """Boluses one after another (a second one while one runs would be refused)."""
    out = []
    t = draw(st.integers(0, HOUR))
    while len(out) < 3 and t < end_ms:
        kind = draw(st.sampled_from(["normal", "extended", "dual"]))
        mu = draw(st.integers(1, 200)) * 50  # 0.05 to 10 U in the default increment
        percent = 100 if kind == "normal" else 0 if kind == "extended" else draw(
            st.integers(1, 99)
        )
        duration = 0 if kind == "normal" else draw(st.integers(1, 3)) * HALF_HOUR
        out.append((t, kind, mu, percent, duration))
        # a normal bolus is over at once in the core loop; the motor needs longer
        t += duration + 15 * MIN + draw(st.integers(0, HOUR))
    return out


@st.composite
def therapies(draw, max_hours):
    end_ms = draw(st.integers(1, max_hours * 60)) * MIN + draw(st.integers(0, MIN - 1))
    segments = draw(profiles())
    return {
        "segments": segments,
        "start_ms_of_day": draw(st.integers(0, DAY - 1)),
        "end_ms": end_ms,
        "temps": draw(temps(segments, end_ms)),
        "boluses": draw(boluses(end_ms)),
    }


def pump_settings(therapy):
    s = Settings()
    s.max_basal_mu_per_h = MAX_BASAL
    s.profiles = [BasalProfile("Random", therapy["segments"], MAX_BASAL)]
    # Exactness is the property here: the insulin limits (their own tests) stay out of the way.
    s.max_hour_mu = 40_000
    s.max_day_mu = 200_000
    return s


def commands(therapy):
    """(t_ms, method, args) of the therapy commands, in time order."""
    out = [(t, "start_temp", (kind, value, d)) for t, kind, value, d in therapy["temps"]]
    out += [(t, "start_bolus", (kind, mu, pct, d)) for t, kind, mu, pct, d in therapy["boluses"]]
    return sorted(out, key=lambda command: command[0])


def assert_bolus_within_one_step(finished, nu_per_step):
    # steps * nu_per_step is within one step of the requested dose, either side.
    assert abs(finished["steps"] * nu_per_step - finished["requested_mu"] * NU_PER_MU) < nu_per_step


# ----- pure core --------------------------------------------------------------------------------


@given(therapy=therapies(max_hours=4), checks=st.lists(st.integers(0, 4 * HOUR), max_size=20))
def test_core_basal_is_floor_of_ideal_at_every_instant_and_boluses_are_exact(therapy, checks):
    end_ms = therapy["end_ms"]
    loop = CoreLoop(
        settings=pump_settings(therapy), ms_of_day=therapy["start_ms_of_day"], record=True
    )
    for t_ms, method, args in commands(therapy):
        loop.run_to(t_ms)
        assert loop.command(method, *args) is None
    last_bolus_end = max((t + d for t, _k, _m, _p, d in therapy["boluses"]), default=0)
    end_ms = max(end_ms, last_bolus_end)
    loop.run_to(end_ms)

    ideal = IdealBasal(
        therapy["segments"],
        therapy["start_ms_of_day"],
        therapy["temps"],
        end_ms,
        loop.mech.nu_per_step,
    )
    basal_times = []
    for t_ms, kind, steps in loop.deliveries:
        if kind == BASAL:
            basal_times.extend([t_ms] * steps)
    instants = set(basal_times) | {t for t in checks if t <= end_ms} | {end_ms}
    instants |= {t - 1 for t in basal_times if t > 0}  # just before: never late either
    for t_ms in sorted(instants):
        assert bisect.bisect_right(basal_times, t_ms) == ideal.steps(t_ms), t_ms

    finished = [e[3] for e in loop.events.recent() if e[2] == ev.BOLUS_FINISHED]
    assert len(finished) == len(therapy["boluses"])
    for bolus in finished:
        assert_bolus_within_one_step(bolus, loop.mech.nu_per_step)
    assert sum(s for _t, k, s in loop.deliveries if k == BOLUS) == sum(
        b["steps"] for b in finished
    )


# ----- full stack: the firmware App, the PIO emulator and the driver model -------------------


def driver_trains(sim):
    """(kind, rising-edge times in ns) of each train, as the STEP and EN pins show it.

    Each EN-enabled interval with steps in it is one train; its kind is the one the
    firmware recorded for the train in the same position.
    """
    pins = sim.board_module.PINS
    active = 0 if sim.board_module.MECHANICS["enable_active_low"] else 1
    rises = [t for t, _direction in sim.driver.pulses]
    trains = []
    on_ns = None
    for t_ns, level in machine.Pin.lookup(pins["enable"]).history:
        if level == active and on_ns is None:
            on_ns = t_ns
        elif level != active and on_ns is not None:
            inside = rises[bisect.bisect_left(rises, on_ns) : bisect.bisect_right(rises, t_ns)]
            if inside:
                trains.append((inside, t_ns))
            on_ns = None
    assert [len(inside) for inside, _off in trains] == [
        steps for _t, _k, steps, _mu in sim.deliveries[: len(trains)]
    ]
    kinds = [kind for _t, kind, _s, _mu in sim.deliveries]
    return [(kind, inside, off) for (inside, off), kind in zip(trains, kinds)]


@settings(max_examples=max(3, settings().max_examples // 20))
@given(therapy=therapies(max_hours=3))
def test_full_stack_driver_counts_stay_within_one_step_of_ideal(therapy):
    sim = SimPump(line_test=False, settings=pump_settings(therapy),
                  start_ms_of_day=therapy["start_ms_of_day"])
    # Commands are taken once the power-on self-test has passed.
    boot = sim.now_ms()
    replies = []
    for t_ms, method, args in commands(therapy):
        if method == "start_temp":
            sim.at(boot + t_ms, lambda app, args=args: replies.append(app.temp_basal(*args)))
        else:
            sim.at(boot + t_ms, lambda app, args=args: replies.append(app.bolus(*args)))
    last_bolus_end = max((t + d for t, _k, _m, _p, d in therapy["boluses"]), default=0)
    end_ms = max(therapy["end_ms"], last_bolus_end + 10 * MIN)  # 10 U takes 7.5 min
    sim.run_until(boot + end_ms)
    while sim.board.stepper.busy():
        sim.run_until(sim.now_ms() + 100)
    assert replies == [None] * len(replies)

    nu = sim.mechanics.nu_per_step
    # Basal is owed from power-on; the commands arrived from the end of the self-test.
    temps = [(boot + t, kind, value, d) for t, kind, value, d in therapy["temps"]]
    ideal = IdealBasal(therapy["segments"], therapy["start_ms_of_day"], temps, sim.now_ms(), nu)
    t0 = sim._t0_ns

    def ms(t_ns):
        return (t_ns - t0) // 1_000_000

    basal_count = 0
    bolus_steps = []
    for kind, rises, off_ns in driver_trains(sim):
        if kind == BOLUS:
            bolus_steps.append((rises[0], len(rises)))
            continue
        for t_ns in rises:
            basal_count += 1
            assert basal_count <= ideal.steps(ms(t_ns))  # never early
        assert basal_count >= ideal.steps(ms(off_ns)) - 1  # at most 1 behind
    assert sim.driver.steps_while_disabled == 0 and sim.driver.violations == []

    started = [(t, f) for _seq, t, e, f in sim.events if e == ev.BOLUS_STARTED]
    assert len(started) == len(therapy["boluses"])
    for i, (start_ms, fields) in enumerate(started):
        end = started[i + 1][0] if i + 1 < len(started) else None
        counted = sum(
            n for t_ns, n in bolus_steps if start_ms <= ms(t_ns) and (end is None or ms(t_ns) < end)
        )
        finished = dict(fields, steps=counted)
        assert_bolus_within_one_step(finished, nu)
