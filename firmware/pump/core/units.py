"""Insulin, volume and motor steps in integer arithmetic, the remainder always carried.

Units used across the firmware:
  mU   milliunits of insulin (1 U = 1000 mU); doses and rates (mU per hour)
  nU   nanounits (1 mU = 1_000_000 nU); the exact size of one motor step
  pL   picolitres (1 nL = 1000 pL); the volume one microstep pushes
One microstep delivers ``pl_per_step * units_per_ml`` nU, because
1 pL = 1e-9 mL and 1 U = 1e9 nU. Every conversion is exact; what does not divide
evenly is returned as a remainder for the caller to carry, never rounded away.
"""

NU_PER_MU = 1_000_000
PL_PER_NL = 1000
MS_PER_H = 3_600_000

# pi as 355/113: 8.5e-8 relative error, far below the tolerance of any syringe bore.
_PI_NUM = 355
_PI_DEN = 113


def earliest(a, b):
    """The earlier of two times (ms), either of which may be None (nothing planned)."""
    if a is None or (b is not None and b < a):
        return b
    return a


def step_volume_pl(lead_um, full_steps_per_rev, microsteps, inner_diameter_um):
    """Volume in picolitres pushed by one microstep, rounded to the nearest picolitre.

    Plunger area is pi*d^2/4 (um^2); one microstep advances it lead/steps um;
    1 um^3 = 1 fL = 0.001 pL.
    """
    num = _PI_NUM * inner_diameter_um * inner_diameter_um * lead_um
    den = _PI_DEN * 4 * full_steps_per_rev * microsteps * 1000
    return (num + den // 2) // den


class Mechanics:
    """What one motor microstep delivers, and conversions built on it."""

    def __init__(self, pl_per_step, units_per_ml, max_step_rate, reservoir_ul=3000):
        self.pl_per_step = pl_per_step
        self.reservoir_ul = reservoir_ul  # what a full syringe holds
        self.units_per_ml = units_per_ml
        self.max_step_rate = max_step_rate  # microsteps per second the build can run
        self.nu_per_step = pl_per_step * units_per_ml

    def reservoir_capacity_mu(self):
        """A full reservoir's insulin: microlitres x units per mL = milliunits."""
        return self.reservoir_ul * self.units_per_ml

    def steps_for_mu(self, mu, carry_nu=0):
        """Whole steps for a dose: returns (steps, carry_nu), the part of a step left over.

        Pass the returned carry into the next conversion so that, over many doses,
        nothing is lost: sum(steps) * nu_per_step + carry == sum(mu) * 1e6.
        """
        return divmod(mu * NU_PER_MU + carry_nu, self.nu_per_step)

    def mu_for_steps(self, steps):
        """Milliunits in ``steps`` steps, rounded down (use DoseCounter to carry)."""
        return steps * self.nu_per_step // NU_PER_MU

    def nl_for_steps(self, steps):
        """Nanolitres in ``steps`` steps, rounded down."""
        return steps * self.pl_per_step // PL_PER_NL

    def steps_per_s_for_mu_per_min(self, mu_per_min):
        """Step rate (steps/s, at least 1) that delivers ``mu_per_min`` milliunits a minute."""
        rate = mu_per_min * NU_PER_MU // (60 * self.nu_per_step)
        return rate if rate > 0 else 1

    def basal_den(self):
        """Denominator of the basal accumulator: one step equals this many units of
        (mU/h x ms) / 5, so that a rate of r mU/h adds 5*r per millisecond.

        A step is nu_per_step nU = nu_per_step/1e6 mU; at r mU/h it takes
        3.6e6 * nu_per_step / (1e6 * r) ms = 18 * nu_per_step / (5 * r) ms.
        """
        return 18 * self.nu_per_step


def basal_num(rate_mu_per_h):
    """Basal accumulator increment per millisecond for a rate in mU/h (see basal_den)."""
    return 5 * rate_mu_per_h


class DoseCounter:
    """Counts steps and reports whole milliunits with the remainder carried.

    The milliunits reported over any sequence of ``add`` calls sum to exactly
    floor(total_steps * nu_per_step / 1e6).
    """

    def __init__(self, mechanics):
        self._nu_per_step = mechanics.nu_per_step
        self.steps = 0
        self.mu = 0
        self._carry_nu = 0

    def add(self, steps):
        """Count ``steps`` more steps; return the whole milliunits they complete."""
        self.steps += steps
        total = steps * self._nu_per_step + self._carry_nu
        mu = total // NU_PER_MU
        self._carry_nu = total - mu * NU_PER_MU
        self.mu += mu
        return mu
