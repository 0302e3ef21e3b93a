"""Disconnection: the line comes off the site (or leaks) during a bolus.

Pure logic. While a bolus runs the stopper slides on every step, and the force on the
plunger is the sliding friction of its place on the barrel plus the line's pressure:
the tissue's back-pressure and the flow's. When the tubing comes off the site, the
back-pressure goes within the line's time constant (R*C, 0.3-1.2 s on the plant model):
the force falls by the back-pressure times the plunger's area, about 120 mN for 2 kPa
on the default 8.66 mm syringe and 590 mN for 10 kPa, within a train or two. Friction
changes along the barrel by a few mN per train.

So the watch fits a straight line to the force against the position over the last
``fit_samples`` positions of the bolus and raises its verdict when the force at the
next position lies ``drop_mn`` or more below that line. It judges only from a stretch
of steady sliding:

- one run of trains with no pause longer than ``gap_ms`` and no move backwards (a line
  test, a back-off) in it: after a rest the rubber rim of the stopper sticks, the force
  climbs for up to a couple of hundred steps and then slips back by up to a newton;
- a fitted slope no steeper than ``slope_mn_per_100`` mN per 100 steps (that climb is
  several mN a step, sliding friction's slope a fraction of one);
- a scatter about the fit of at most ``scatter_mn`` RMS (a fit across a slip is far off).

Where the tissue holds little back-pressure there is nothing to see: the alert comes
only where the pressure signal allows (docs/bench/safety.md). Between boluses the
stopper sticks and slips and the flow is a few steps an hour: no judgement is made.
"""

DISCONNECTED = "disconnected"


class DisconnectWatch:
    """A sudden fall of the force below its steady trend during a bolus. Forces in mN."""

    def __init__(self, drop_mn, fit_samples, slope_mn_per_100, scatter_mn, gap_ms):
        if drop_mn <= 0 or fit_samples < 3 or slope_mn_per_100 <= 0 or scatter_mn <= 0:
            raise ValueError("disconnect watch: need drop, slope, scatter > 0, fit >= 3")
        if gap_ms <= 0:
            raise ValueError("disconnect watch: gap_ms must be positive")
        self.drop_mn = drop_mn
        self.fit_samples = fit_samples
        self.slope_mn_per_100 = slope_mn_per_100
        self.scatter_mn = scatter_mn
        self.gap_ms = gap_ms
        # The fit's samples and the one judged, oldest first: one per position, its
        # lowest force (the app reads before and after each train).
        self._positions = [0] * (fit_samples + 1)
        self._forces = [0] * (fit_samples + 1)
        self._count = 0
        self._last_ms = 0
        self.drop_now_mn = None  # how far the last judged force lay below the trend

    def reset(self):
        """Forget the run (a bolus ends, a back-off, a resume, a new reservoir)."""
        self._count = 0
        self.drop_now_mn = None

    def observe(self, now_ms, position_steps, force_mn, bolus):
        """Take the force after (or before) a train; True if the line looks disconnected."""
        if not bolus:
            self._count = 0
            return False
        n = self._count
        positions = self._positions
        forces = self._forces
        if n and position_steps == positions[n - 1] and now_ms - self._last_ms <= self.gap_ms:
            self._last_ms = now_ms
            if force_mn >= forces[n - 1]:
                return False
            forces[n - 1] = force_mn
            return self._judge()
        if n and (position_steps < positions[n - 1] or now_ms - self._last_ms > self.gap_ms):
            n = 0  # a rest or a move back: the stopper sticks again
        self._last_ms = now_ms
        if n == len(positions):
            for i in range(1, n):
                positions[i - 1] = positions[i]
                forces[i - 1] = forces[i]
            n -= 1
        positions[n] = position_steps
        forces[n] = force_mn
        self._count = n + 1
        return self._judge()

    def _judge(self):
        n = self.fit_samples
        if self._count <= n:
            return False
        positions = self._positions
        forces = self._forces
        x0 = positions[0]
        y0 = forces[0]
        sx = sy = sxx = sxy = syy = 0
        for i in range(n):
            x = positions[i] - x0
            y = forces[i] - y0
            sx += x
            sy += y
            sxx += x * x
            sxy += x * y
            syy += y * y
        vxx = n * sxx - sx * sx  # n^2 times the variances and covariance
        vxy = n * sxy - sx * sy
        vyy = n * syy - sy * sy
        if vxx <= 0:
            return False
        if abs(vxy) * 100 > self.slope_mn_per_100 * vxx:
            return False  # climbing or falling too steeply: not steady sliding
        # n^2 * (RMS about the fit)^2 = vyy - vxy^2 / vxx
        if (vyy * vxx - vxy * vxy) > n * n * self.scatter_mn * self.scatter_mn * vxx:
            return False
        # The trend at the judged position, times n * vxx, against the force there.
        x = positions[n] - x0
        trend = sy * vxx + vxy * (n * x - sx)
        drop = (trend - (forces[n] - y0) * n * vxx) // (n * vxx)
        self.drop_now_mn = drop
        return drop >= self.drop_mn
