"""Physical plant of the pump for host tests: syringe, plunger friction, fluid line, load cell.

Host only (CPython, floats). The model is event driven: it changes state on each
step pulse and, between events, follows closed-form solutions, so a month of
simulated time costs only the steps in it. docs/plant_model.md gives the
equations and where every figure comes from.
"""

import math
import random

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000

# 1 kPa on 1 mm^2 is 1 mN.
N_PER_KPA_MM2 = 0.001

LINE_OPEN = "open"
LINE_PARTIAL = "partial"
LINE_OCCLUDED = "occluded"
LINE_DISCONNECTED = "disconnected"

# Steps closer together than this belong to one movement (one pulse train):
# the per-movement friction jitter is drawn again only after a longer pause.
MOVE_GAP_S = 1.0


def poiseuille_kpa_s_per_ul(inner_diameter_um, length_mm, viscosity_mpa_s):
    """Hagen-Poiseuille resistance R = 8 mu L / (pi r^4) of a round tube, in kPa*s/uL."""
    radius_m = inner_diameter_um * 0.5e-6
    pa_s_per_m3 = 8.0 * viscosity_mpa_s * 1e-3 * length_mm * 1e-3 / (math.pi * radius_m**4)
    # Pa -> kPa is 1e-3; per m^3 -> per uL is 1e-9.
    return pa_s_per_m3 * 1e-12


# Every parameter, with the value of each preset. The order is the order of the docs.
_TYPICAL = {
    # Drive train and syringe (the default board).
    "lead_um": 800,
    "microsteps_per_rev": 3200,
    "syringe_inner_diameter_um": 8660,
    "syringe_capacity_ul": 3000,
    "reservoir_ul": 2000,
    "end_stop_gap_um": 2000,
    "end_stop_overtravel_um": 500,
    # Stopper friction and contact.
    "sliding_friction_n": 1.0,
    "friction_noise_n": 0.1,
    "friction_knot_um": 250,
    "friction_jitter_n": 0.02,
    "breakaway_friction_n": 1.5,
    "stiction_growth_s": 600.0,
    "contact_stiffness_n_per_um": 0.05,
    "contact_relax_fraction": 0.9,
    "contact_relax_s": 30.0,
    "bottom_stiffness_n_per_um": 2.0,
    # Fluid path.
    "compliance_ul_per_kpa": 0.25,
    "viscosity_mpa_s": 1.0,
    "tubing_inner_diameter_um": 380,
    "tubing_length_mm": 600,
    "cannula_inner_diameter_um": 250,
    "cannula_length_mm": 6,
    "line_resistance_kpa_s_per_ul": None,
    "disconnect_resistance_kpa_s_per_ul": None,
    "tissue_backpressure_kpa": 2.0,
    # Load cell and HX711.
    "load_cell_noise_n": 0.005,
    "load_cell_drift_n_per_h": 0.02,
    "load_cell_drift_span_n": 0.1,
    "load_cell_drift_knot_s": 900.0,
    # Motor.
    "stall_force_n": 100.0,
}

_HARD = dict(
    _TYPICAL,
    sliding_friction_n=1.5,
    friction_noise_n=0.2,
    friction_knot_um=100,
    friction_jitter_n=0.05,
    breakaway_friction_n=2.5,
    stiction_growth_s=120.0,
    contact_stiffness_n_per_um=0.02,
    contact_relax_fraction=0.8,
    contact_relax_s=10.0,
    compliance_ul_per_kpa=0.5,
    tubing_length_mm=1100,
    cannula_inner_diameter_um=200,
    cannula_length_mm=9,
    tissue_backpressure_kpa=10.0,
    load_cell_noise_n=0.01,
    load_cell_drift_n_per_h=0.1,
    load_cell_drift_span_n=0.3,
    load_cell_drift_knot_s=600.0,
    stall_force_n=300.0,
)

_EASY = dict(
    _TYPICAL,
    sliding_friction_n=0.5,
    friction_noise_n=0.05,
    friction_knot_um=500,
    friction_jitter_n=0.0,
    breakaway_friction_n=0.6,
    stiction_growth_s=1800.0,
    contact_stiffness_n_per_um=0.1,
    contact_relax_fraction=0.95,
    contact_relax_s=60.0,
    compliance_ul_per_kpa=0.1,
    tissue_backpressure_kpa=0.0,
    load_cell_noise_n=0.002,
    load_cell_drift_n_per_h=0.005,
    load_cell_drift_span_n=0.03,
    load_cell_drift_knot_s=1800.0,
    stall_force_n=40.0,
)


class PlantParams:
    """Every physical parameter of the plant; each name ends with its unit.

    PlantParams(**overrides) starts from typical(); unknown names raise TypeError.
    The two resistances, when None, follow from the tube dimensions (Hagen-Poiseuille).
    """

    FIELDS = tuple(_TYPICAL)

    def __init__(self, _base=None, **overrides):
        values = dict(_TYPICAL if _base is None else _base)
        for name, value in overrides.items():
            if name not in values:
                raise TypeError("PlantParams has no parameter %r" % (name,))
            values[name] = value
        for name, value in values.items():
            setattr(self, name, value)
        # Names computed below rather than given; replace() computes them again.
        self._derived = set()
        tubing = poiseuille_kpa_s_per_ul(
            self.tubing_inner_diameter_um, self.tubing_length_mm, self.viscosity_mpa_s
        )
        cannula = poiseuille_kpa_s_per_ul(
            self.cannula_inner_diameter_um, self.cannula_length_mm, self.viscosity_mpa_s
        )
        if self.line_resistance_kpa_s_per_ul is None:
            self.line_resistance_kpa_s_per_ul = tubing + cannula
            self._derived.add("line_resistance_kpa_s_per_ul")
        if self.disconnect_resistance_kpa_s_per_ul is None:
            # Disconnected at the site connector: the cannula stays in the body.
            self.disconnect_resistance_kpa_s_per_ul = tubing
            self._derived.add("disconnect_resistance_kpa_s_per_ul")
        self._check()

    def _check(self):
        if self.breakaway_friction_n < self.sliding_friction_n:
            raise ValueError("breakaway_friction_n must not be below sliding_friction_n")
        if not 0.0 < self.contact_relax_fraction <= 1.0:
            raise ValueError("contact_relax_fraction must be in (0, 1]")
        for name in ("compliance_ul_per_kpa", "line_resistance_kpa_s_per_ul",
                     "disconnect_resistance_kpa_s_per_ul", "friction_knot_um",
                     "load_cell_drift_knot_s", "contact_stiffness_n_per_um", "stall_force_n"):
            if getattr(self, name) <= 0:
                raise ValueError("%s must be positive" % name)
        if self.reservoir_ul > self.syringe_capacity_ul:
            raise ValueError("reservoir_ul is more than the syringe holds")

    @classmethod
    def typical(cls, **overrides):
        """A good bench build with a 60 cm infusion set."""
        return cls(_TYPICAL, **overrides)

    @classmethod
    def hard(cls, **overrides):
        """The worst end of every range, for tuning the occlusion detector."""
        return cls(_HARD, **overrides)

    @classmethod
    def easy(cls, **overrides):
        """The kind end of every range: smooth syringe, stiff line, quiet sensor."""
        return cls(_EASY, **overrides)

    def replace(self, **overrides):
        """A copy with some parameters changed (derived resistances recomputed if None)."""
        values = self.as_dict()
        for name in self._derived:
            values[name] = None
        values.update(overrides)
        return PlantParams(values)

    def as_dict(self):
        return {name: getattr(self, name) for name in self.FIELDS}

    def __repr__(self):
        return "PlantParams(%s)" % ", ".join(
            "%s=%r" % (name, getattr(self, name)) for name in self.FIELDS
        )


def _mechanics_value(mechanics, name):
    if mechanics is None:
        return None
    if isinstance(mechanics, dict):
        return mechanics.get(name)
    return getattr(mechanics, name, None)


class Plant:
    """Syringe, plunger, fluid line and load cell driven by the STEP/DIR/EN pins.

    Positions count microsteps of the pusher from the end-stop switch (0, growing
    forward). The pusher holds the stopper once it reaches it (a reservoir that
    clips to the drive), so backing off pulls the stopper back too.
    """

    def __init__(
        self,
        clock,
        step_pin,
        dir_pin,
        en_pin,
        params=None,
        seed=0,
        mechanics=None,
        *,
        en_active_low=True,
        dir_forward_level=1,
        end_stop_pin=None,
        end_stop_open_level=None,
        diag_pin=None,
        diag_active_level=1,
        engaged=True,
    ):
        p = PlantParams.typical() if params is None else params
        lead = _mechanics_value(mechanics, "lead_um")
        full_steps = _mechanics_value(mechanics, "full_steps_per_rev")
        microsteps = _mechanics_value(mechanics, "microsteps")
        diameter = _mechanics_value(mechanics, "syringe_inner_diameter_um")
        overrides = {}
        if lead is not None:
            overrides["lead_um"] = lead
        if full_steps is not None and microsteps is not None:
            overrides["microsteps_per_rev"] = full_steps * microsteps
        if diameter is not None:
            overrides["syringe_inner_diameter_um"] = diameter
        if overrides:
            p = p.replace(**overrides)
        self.params = p
        self.clock = clock
        self.seed = seed
        self.step_pin = step_pin
        self.dir_pin = dir_pin
        self.en_pin = en_pin
        self.en_active_low = en_active_low
        self.dir_forward_level = dir_forward_level
        self.end_stop_pin = end_stop_pin
        self.end_stop_open_level = end_stop_open_level
        self.diag_pin = diag_pin
        self.diag_active_level = diag_active_level

        # Geometry.
        self.um_per_step = p.lead_um / p.microsteps_per_rev
        radius_mm = p.syringe_inner_diameter_um * 0.5e-3
        self.area_mm2 = math.pi * radius_mm * radius_mm
        # mm^2 x um = 1e-3 mm^3 = 1 nL.
        self.step_nl = self.area_mm2 * self.um_per_step
        self.n_per_kpa = self.area_mm2 * N_PER_KPA_MM2
        self._full = round(p.end_stop_gap_um / self.um_per_step)
        self._bottom = self._full + round(p.syringe_capacity_ul * 1000.0 / self.step_nl)
        self._hard_stop = -round(p.end_stop_overtravel_um / self.um_per_step)
        self._stopper = self._bottom - round(p.reservoir_ul * 1000.0 / self.step_nl)

        # Each random stream has its own generator, so reading the load cell
        # more often never changes the friction the plunger meets.
        self._rng_friction = random.Random("%s:friction" % (seed,))
        self._rng_jitter = random.Random("%s:jitter" % (seed,))
        self._rng_noise = random.Random("%s:noise" % (seed,))
        self._rng_drift = random.Random("%s:drift" % (seed,))
        self._friction_knots = self._make_friction_profile()

        # Fluid state.
        self._t_ns = clock.now_ns
        self._t0_ns = clock.now_ns
        self._line = LINE_OPEN
        self._occlusion_percent = 0.0
        self._pressure_kpa = p.tissue_backpressure_kpa
        self.stored_at_start_nl = self.stored_nl()
        self._pushed_nl = 0.0
        self._delivered_nl = 0.0
        self._spilled_nl = 0.0

        # Contact between pusher and stopper.
        self._engaged = engaged
        self._pusher = self._stopper if engaged else 0
        # The stopper rim is a standard linear solid: an elastic part that holds
        # and a viscous part that relaxes away at rest (see the docs).
        self._rim_elastic_n = 0.0
        self._rim_viscous_n = 0.0
        # Long at rest before the start: the first movement breaks loose.
        self._last_move_ns = clock.now_ns - 3600 * NS_PER_S
        self._last_slip_ns = self._last_move_ns
        self._jitter_n = 0.0

        # Motor.
        self._stalled = False
        self.steps_forward = 0
        self.steps_backward = 0
        self.steps_skipped = 0
        self.steps_while_disabled = 0

        # Load-cell drift: piecewise linear between knots, starting from the tare.
        self._drift_knots = [0.0]

        self._step_level = step_pin.value()
        step_pin.add_listener(self._on_step_edge)
        self._update_end_stop()
        if diag_pin is not None:
            diag_pin.drive(1 - diag_active_level)

    @classmethod
    def on_driver(cls, driver, clock, params=None, seed=0, mechanics=None, **kw):
        """A plant on the same pins and polarities as a StepperDriverModel."""
        return cls(
            clock,
            driver.step_pin,
            driver.dir_pin,
            driver.en_pin,
            params,
            seed,
            mechanics,
            en_active_low=driver.en_active_low,
            dir_forward_level=driver.dir_forward_level,
            **kw,
        )

    def detach(self):
        """Stop listening to the step pin."""
        self.step_pin.remove_listener(self._on_step_edge)

    # -- friction profile ----------------------------------------------------

    def _make_friction_profile(self):
        p = self.params
        # Linear interpolation between independent knots averages them: the mean
        # square between two knots is 2/3 of a knot's, so the knots are widened
        # by sqrt(3/2) to give friction_noise_n as the RMS along the barrel.
        sigma = p.friction_noise_n * math.sqrt(1.5)
        travel_um = (self._bottom - self._full) * self.um_per_step
        count = int(travel_um / p.friction_knot_um) + 3
        floor = 0.1 * p.sliding_friction_n
        rng = self._rng_friction
        return [max(floor, p.sliding_friction_n + rng.gauss(0.0, sigma)) for _ in range(count)]

    def sliding_friction_at_n(self, stopper_steps):
        """Sliding friction (N) of the stopper at a position (microsteps from the end stop)."""
        knots = self._friction_knots
        x = (stopper_steps - self._full) * self.um_per_step / self.params.friction_knot_um
        if x <= 0.0:
            return knots[0]
        i = int(x)
        if i >= len(knots) - 1:
            return knots[-1]
        frac = x - i
        return knots[i] + (knots[i + 1] - knots[i]) * frac

    # -- continuous evolution between events -----------------------------------

    def _resistance(self):
        p = self.params
        if self._line == LINE_DISCONNECTED:
            return p.disconnect_resistance_kpa_s_per_ul
        if self._line == LINE_PARTIAL:
            return p.line_resistance_kpa_s_per_ul / (1.0 - self._occlusion_percent / 100.0)
        return p.line_resistance_kpa_s_per_ul

    def _advance(self, now_ns):
        dt_ns = now_ns - self._t_ns
        if dt_ns <= 0:
            return
        self._t_ns = now_ns
        dt_s = dt_ns / NS_PER_S
        p = self.params
        if self._line != LINE_OCCLUDED:
            tau_s = self._resistance() * p.compliance_ul_per_kpa
            if self._line == LINE_DISCONNECTED:
                rest_kpa = 0.0
            else:
                rest_kpa = p.tissue_backpressure_kpa
            old = self._pressure_kpa
            new = rest_kpa + (old - rest_kpa) * math.exp(-dt_s / tau_s)
            self._pressure_kpa = new
            out_nl = p.compliance_ul_per_kpa * (old - new) * 1000.0
            if self._line == LINE_DISCONNECTED:
                self._spilled_nl += out_nl
            else:
                self._delivered_nl += out_nl
        self._rim_viscous_n *= math.exp(-dt_s / p.contact_relax_s)

    # -- steps ---------------------------------------------------------------

    def _enabled(self):
        if self.en_pin is None:
            return True
        level = self.en_pin.value()
        return level == 0 if self.en_active_low else level == 1

    def _on_step_edge(self, pin, level, t_ns):
        if level == self._step_level:
            return
        self._step_level = level
        if not level:
            return
        if not self._enabled():
            self.steps_while_disabled += 1
            return
        forward = self.dir_pin.value() == self.dir_forward_level
        self.step(1 if forward else -1, t_ns)

    def step(self, direction, t_ns=None):
        """One microstep of the motor (+1 forward, -1 back); False if the motor stalled."""
        if t_ns is None:
            t_ns = self.clock.now_ns
        self._advance(t_ns)
        if direction > 0:
            moved = self._step_forward(t_ns)
        else:
            moved = self._step_backward(t_ns)
        if moved:
            if direction > 0:
                self.steps_forward += 1
            else:
                self.steps_backward += 1
            if self._stalled:
                self._set_stalled(False)
            self._update_end_stop()
        else:
            self.steps_skipped += 1
            if not self._stalled:
                self._set_stalled(True)
        return moved

    def _friction_limit_n(self, stopper_steps, t_ns):
        # The friction the contact can hold before the stopper slips: sliding
        # friction here, plus stiction that grows back while the rim has not slipped.
        p = self.params
        if (t_ns - self._last_move_ns) / NS_PER_S > MOVE_GAP_S:
            self._jitter_n = self._rng_jitter.gauss(0.0, p.friction_jitter_n)
        sliding = max(0.0, self.sliding_friction_at_n(stopper_steps) + self._jitter_n)
        stuck_s = (t_ns - self._last_slip_ns) / NS_PER_S
        extra = p.breakaway_friction_n - p.sliding_friction_n
        return sliding, sliding + extra * (1.0 - math.exp(-stuck_s / p.stiction_growth_s))

    def _step_forward(self, t_ns):
        p = self.params
        new_pusher = self._pusher + 1
        if not self._engaged:
            self._pusher = new_pusher
            if new_pusher >= self._stopper:
                # First touch: the stopper was held by friction alone.
                self._engaged = True
                self._rim_elastic_n = -self._pressure_kpa * self.n_per_kpa
                self._rim_viscous_n = 0.0
            return True
        if new_pusher > self._bottom:
            # Stopper against the end of the barrel: only the rubber compresses.
            squeeze = (new_pusher - self._bottom) * self.um_per_step
            force = self._fluid_force_n() + self._rim_elastic_n + self._rim_viscous_n
            force += p.bottom_stiffness_n_per_um * squeeze
            if force > p.stall_force_n:
                return False
            self._pusher = new_pusher
            self._last_move_ns = t_ns
            return True
        sliding, limit = self._friction_limit_n(new_pusher, t_ns)
        shear_n = p.contact_stiffness_n_per_um * self.um_per_step
        r = p.contact_relax_fraction
        elastic = self._rim_elastic_n + r * shear_n
        viscous = self._rim_viscous_n + (1.0 - r) * shear_n
        slipped = elastic + viscous > limit
        if slipped:
            # The rim slips and is left carrying the sliding friction.
            elastic, viscous = r * sliding, (1.0 - r) * sliding
        pressure = self._pressure_kpa + self.step_nl / 1000.0 / p.compliance_ul_per_kpa
        if pressure * self.n_per_kpa + elastic + viscous > p.stall_force_n:
            return False
        self._commit_move(new_pusher, pressure, elastic, viscous, t_ns, self.step_nl, slipped)
        return True

    def _step_backward(self, t_ns):
        p = self.params
        new_pusher = self._pusher - 1
        if not self._engaged:
            if new_pusher < self._hard_stop:
                return False  # against the frame
            self._pusher = new_pusher
            return True
        if self._pusher > self._bottom:
            self._pusher = new_pusher
            self._last_move_ns = t_ns
            return True
        if new_pusher < self._full:
            # The stopper is at the back of the barrel: the pusher lets go of it.
            self._engaged = False
            self._pusher = new_pusher
            self._rim_elastic_n = self._rim_viscous_n = 0.0
            return True
        sliding, limit = self._friction_limit_n(new_pusher, t_ns)
        shear_n = p.contact_stiffness_n_per_um * self.um_per_step
        r = p.contact_relax_fraction
        elastic = self._rim_elastic_n - r * shear_n
        viscous = self._rim_viscous_n - (1.0 - r) * shear_n
        slipped = elastic + viscous < -limit
        if slipped:
            elastic, viscous = -r * sliding, -(1.0 - r) * sliding
        pressure = self._pressure_kpa - self.step_nl / 1000.0 / p.compliance_ul_per_kpa
        if -(pressure * self.n_per_kpa + elastic + viscous) > p.stall_force_n:
            return False
        self._commit_move(new_pusher, pressure, elastic, viscous, t_ns, -self.step_nl, slipped)
        return True

    def _commit_move(self, new_pusher, pressure, elastic, viscous, t_ns, volume_nl, slipped):
        self._pusher = new_pusher
        self._stopper = new_pusher
        self._pressure_kpa = pressure
        self._rim_elastic_n = elastic
        self._rim_viscous_n = viscous
        self._pushed_nl += volume_nl
        self._last_move_ns = t_ns
        if slipped:
            self._last_slip_ns = t_ns

    def _set_stalled(self, stalled):
        self._stalled = stalled
        if self.diag_pin is not None:
            active = self.diag_active_level
            self.diag_pin.drive(active if stalled else 1 - active)

    def _update_end_stop(self):
        if self.end_stop_pin is None:
            return
        if self.at_end_stop():
            self.end_stop_pin.drive(0)
        else:
            self.end_stop_pin.drive(self.end_stop_open_level)

    # -- line events -----------------------------------------------------------

    def _set_line(self, state, percent=0.0):
        self._advance(self.clock.now_ns)
        self._line = state
        self._occlusion_percent = percent

    def occlude(self):
        """Close the line completely (kinked tubing, blocked cannula): no outflow."""
        self._set_line(LINE_OCCLUDED, 100.0)

    def partial_occlusion(self, percent):
        """Cut the line's conductance by percent: at 80, a pressure pushes 20 % of the flow."""
        if not 0.0 <= percent <= 100.0:
            raise ValueError("percent must be within 0..100")
        if percent >= 100.0:
            self.occlude()
        elif percent == 0.0:
            self.clear()
        else:
            self._set_line(LINE_PARTIAL, float(percent))

    def disconnect(self):
        """Tubing off the site: the line drains to the air at 0 kPa; nothing reaches the body."""
        self._set_line(LINE_DISCONNECTED)

    def clear(self):
        """Reopen the line: stored pressure drains into the body (the post-occlusion bolus)."""
        self._set_line(LINE_OPEN)

    def line_state(self):
        """'open', 'partial', 'occluded' or 'disconnected'."""
        return self._line

    def occlusion_percent(self):
        return self._occlusion_percent

    def change_reservoir(self, volume_ul):
        """A freshly filled syringe goes in; the pusher must be back behind its stopper."""
        self._advance(self.clock.now_ns)
        stopper = self._bottom - round(volume_ul * 1000.0 / self.step_nl)
        if volume_ul > self.params.syringe_capacity_ul or volume_ul < 0:
            raise ValueError("the syringe holds 0..%s uL" % self.params.syringe_capacity_ul)
        if self._pusher >= stopper:
            raise ValueError("rewind the pusher before changing the reservoir")
        self._stopper = stopper
        self._engaged = False
        self._rim_elastic_n = self._rim_viscous_n = 0.0

    # -- readings ------------------------------------------------------------

    def _fluid_force_n(self):
        return self._pressure_kpa * self.n_per_kpa

    def true_force_n(self):
        """Force on the load cell now, without sensor noise or drift (N)."""
        self._advance(self.clock.now_ns)
        if not self._engaged:
            return 0.0
        force = self._fluid_force_n() + self._rim_elastic_n + self._rim_viscous_n
        if self._pusher > self._bottom:
            squeeze = (self._pusher - self._bottom) * self.um_per_step
            force += self.params.bottom_stiffness_n_per_um * squeeze
        return force

    def load_cell_drift_n(self):
        """The load cell's zero drift since the start (N)."""
        p = self.params
        knot_ns = p.load_cell_drift_knot_s * NS_PER_S
        x = (self.clock.now_ns - self._t0_ns) / knot_ns
        if x < 0.0:
            x = 0.0
        i = int(x)
        knots = self._drift_knots
        step_n = p.load_cell_drift_n_per_h * p.load_cell_drift_knot_s / 3600.0
        span = p.load_cell_drift_span_n
        while len(knots) < i + 2:
            value = knots[-1] + self._rng_drift.uniform(-step_n, step_n)
            knots.append(min(span, max(-span, value)))
        return knots[i] + (knots[i + 1] - knots[i]) * (x - i)

    def load_cell_force_n(self):
        """What the load cell measures now (N): true force + drift + fresh white noise."""
        noise = self._rng_noise.gauss(0.0, self.params.load_cell_noise_n)
        return self.true_force_n() + self.load_cell_drift_n() + noise

    def pressure_kpa(self):
        """Gauge pressure in the syringe and tubing (kPa)."""
        self._advance(self.clock.now_ns)
        return self._pressure_kpa

    def friction_n(self):
        """Friction the stopper's contact carries now (N, positive resists forward motion)."""
        self._advance(self.clock.now_ns)
        if not self._engaged:
            return 0.0
        return self._rim_elastic_n + self._rim_viscous_n

    def plunger_position_um(self):
        """Pusher position from the end-stop switch (um, growing forward)."""
        return self._pusher * self.um_per_step

    def stopper_position_um(self):
        return self._stopper * self.um_per_step

    def position_steps(self):
        """Pusher position in microsteps from the end-stop switch."""
        return self._pusher

    def delivered_nl(self):
        """Volume that has reached the body through the cannula (nL, net of any backflow)."""
        self._advance(self.clock.now_ns)
        return self._delivered_nl

    def spilled_nl(self):
        """Volume lost through a disconnection (nL)."""
        self._advance(self.clock.now_ns)
        return self._spilled_nl

    def pushed_nl(self):
        """Net volume the stopper has displaced since the start (nL)."""
        return self._pushed_nl

    def stored_nl(self):
        """Volume held in the compliance above atmospheric pressure (nL)."""
        self._advance(self.clock.now_ns)
        return self.params.compliance_ul_per_kpa * self._pressure_kpa * 1000.0

    def reservoir_nl(self):
        """Insulin left in the syringe (nL)."""
        return (self._bottom - self._stopper) * self.step_nl

    def at_end_stop(self):
        """The pusher is fully back: the end-stop switch is closed."""
        return self._pusher <= 0

    def bottomed_out(self):
        """The stopper has reached the end of the barrel: the reservoir is empty."""
        return self._engaged and self._stopper >= self._bottom

    def engaged(self):
        """The pusher holds the stopper."""
        return self._engaged

    def stalled(self):
        """The last step was skipped: the load was above the motor's stall force."""
        return self._stalled

    def occluded_force_per_step_n(self):
        """Load-cell force added by one forward microstep into a closed line (N)."""
        return self.step_nl / 1000.0 / self.params.compliance_ul_per_kpa * self.n_per_kpa

    def time_constant_s(self):
        """Pressure relaxation time constant R*C of the line as it is now (s); None if closed."""
        if self._line == LINE_OCCLUDED:
            return None
        return self._resistance() * self.params.compliance_ul_per_kpa


class OutflowRecorder:
    """Samples delivered volume every period (a scale under the cannula, IEC 60601-2-24)."""

    def __init__(self, plant, clock, period_ms=30_000):
        self.plant = plant
        self.clock = clock
        self.period_ms = period_ms
        self.rows = []  # (t_ms from the start, delivered nL as an int)
        self._t0_ns = clock.now_ns
        self._count = 0
        self._handle = None
        self._sample()

    def _sample(self):
        t_ms = (self.clock.now_ns - self._t0_ns) // NS_PER_MS
        self.rows.append((t_ms, int(round(self.plant.delivered_nl()))))
        self._count += 1
        due = self._t0_ns + self._count * self.period_ms * NS_PER_MS
        self._handle = self.clock.call_at(due, self._sample, True)

    def stop(self):
        """Take no more samples."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def write_csv(self, path):
        with open(path, "w") as f:
            f.write("t_ms,delivered_nl\n")
            for t_ms, nl in self.rows:
                f.write("%d,%d\n" % (t_ms, nl))
