"""The reservoir: insulin left, counted from the motor steps actually emitted.

Pure logic. The count is in steps, exact: every forward step the motor emitted
(therapy or priming) leaves the syringe; steps backed off return to it. Priming
(tubing and cannula fill) uses insulin from here but is never therapy.
"""

from pump.core.errors import Refused
from pump.core.fmt import fmt_units
from pump.core.limits import LOW_LEVEL_DEFAULT_MU, LOW_LEVEL_MAX_MU, LOW_LEVEL_MIN_MU

MIN_LOAD_MU = 10_000
TUBING_FILL_MAX_MU = 30_000  # an infusion set's tubing holds well under 30 U
CANNULA_FILL_MIN_MU = 100
CANNULA_FILL_MAX_MU = 1_000

OK = "ok"
LOW = "low"
EMPTY = "empty"

# The reservoir change, step by step.
IN_USE = "in_use"
REWOUND = "rewound"
LOADED = "loaded"
TUBING_FILLED = "tubing_filled"


class Reservoir:
    """Insulin left in the syringe, and where a reservoir change has got to."""

    def __init__(self, mech, capacity_mu, low_level_mu=LOW_LEVEL_DEFAULT_MU, loaded_mu=None):
        self.mech = mech
        self.capacity_mu = capacity_mu
        self.low_level_mu = LOW_LEVEL_DEFAULT_MU
        self.set_low_level(low_level_mu)
        if loaded_mu is None:
            loaded_mu = capacity_mu
        self.remaining_steps = mech.steps_for_mu(loaded_mu, 0)[0]
        self.change_step = IN_USE
        self.primed_mu = 0  # tubing and cannula fills since the last load

    # ----- figures ------------------------------------------------------------------------

    def remaining_mu(self):
        return self.mech.mu_for_steps(self.remaining_steps)

    def level(self):
        if self.remaining_steps <= 0:
            return EMPTY
        if self.remaining_mu() <= self.low_level_mu:
            return LOW
        return OK

    def steps_allowed(self, steps):
        """How many of ``steps`` forward steps the reservoir can still give."""
        left = self.remaining_steps
        if left <= 0:
            return 0
        return steps if steps <= left else left

    # ----- the motor's record --------------------------------------------------------------

    def took(self, steps):
        """``steps`` forward steps were emitted (therapy or priming)."""
        self.remaining_steps -= steps

    def gave_back(self, steps):
        """The plunger went back ``steps`` (an occlusion back-off)."""
        self.remaining_steps += steps

    # ----- settings ----------------------------------------------------------------------------

    def set_low_level(self, mu):
        if type(mu) is not int or not (LOW_LEVEL_MIN_MU <= mu <= LOW_LEVEL_MAX_MU):
            raise Refused(
                "low reservoir level is %s to %s"
                % (fmt_units(LOW_LEVEL_MIN_MU), fmt_units(LOW_LEVEL_MAX_MU))
            )
        self.low_level_mu = mu

    # ----- reservoir change ----------------------------------------------------------------------

    def rewound(self):
        """The plunger pusher is back at the end stop: the old reservoir is out."""
        self.change_step = REWOUND
        self.remaining_steps = 0
        self.primed_mu = 0

    def check_load(self, volume_mu):
        if self.change_step != REWOUND:
            raise Refused("rewind before loading a reservoir")
        if type(volume_mu) is not int or not (MIN_LOAD_MU <= volume_mu <= self.capacity_mu):
            raise Refused(
                "a reservoir holds %s to %s"
                % (fmt_units(MIN_LOAD_MU), fmt_units(self.capacity_mu))
            )

    def load(self, volume_mu):
        self.check_load(volume_mu)
        self.remaining_steps = self.mech.steps_for_mu(volume_mu, 0)[0]
        self.change_step = LOADED

    def check_fill(self, part, mu):
        """Refuse a tubing or cannula fill out of order or out of range."""
        if part == "tubing":
            if self.change_step not in (LOADED, TUBING_FILLED):
                raise Refused("load a reservoir before filling the tubing")
            if type(mu) is not int or not (0 < mu <= TUBING_FILL_MAX_MU):
                raise Refused("tubing fill is up to %s" % fmt_units(TUBING_FILL_MAX_MU))
        elif part == "cannula":
            if self.change_step != TUBING_FILLED:
                raise Refused("fill the tubing before the cannula")
            if type(mu) is not int or not (CANNULA_FILL_MIN_MU <= mu <= CANNULA_FILL_MAX_MU):
                raise Refused(
                    "cannula fill is %s to %s"
                    % (fmt_units(CANNULA_FILL_MIN_MU), fmt_units(CANNULA_FILL_MAX_MU))
                )
        else:
            raise Refused("fill the tubing or the cannula, not %r" % (part,))
        if self.mech.steps_for_mu(mu, 0)[0] > self.remaining_steps:
            raise Refused("not enough insulin left for that fill")

    def filled(self, part, steps):
        """A fill of ``steps`` was emitted (already counted by ``took``)."""
        self.primed_mu += self.mech.mu_for_steps(steps)
        self.change_step = TUBING_FILLED if part == "tubing" else IN_USE

    def in_use(self):
        return self.change_step == IN_USE
