"""Check-ins of the pump's periodic jobs, judged for the watchdog; names of reset causes."""

from pump.core.errors import ConfigError

# Reset causes as machine.reset_cause() reports them (MicroPython's machine module).
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_RESET_NAMES = {
    PWRON_RESET: "power_on",
    HARD_RESET: "hard_reset",
    WDT_RESET: "watchdog",
    DEEPSLEEP_RESET: "deep_sleep",
    SOFT_RESET: "soft_reset",
}

# A job may be this late before it counts as hung: the main loop's own wake-up
# jitter (a pulse train in flight, a redraw) must not look like a hang.
DEFAULT_MARGIN_MS = 2000


def reset_cause_name(code):
    """'watchdog', 'power_on', ... for a machine.reset_cause() code; 'unknown_<n>' otherwise."""
    name = _RESET_NAMES.get(code)
    if name is None:
        return "unknown_%d" % code
    return name


def was_watchdog_reset(code):
    """True when the last reset was the watchdog's (a hung job or a hung main loop).

    On the rp2 port machine.reset() also restarts through the watchdog and reads
    back as WDT_RESET: mark a deliberate reset (in storage) before making it."""
    return code == WDT_RESET


class TaskMonitor:
    """Periodic jobs report in; the pump is healthy while every one reported within its period.

    ``healthy()`` runs on every pass of the main loop and allocates nothing;
    ``overdue()`` builds a list and is meant for the log and the alarm text.
    """

    def __init__(self, margin_ms=DEFAULT_MARGIN_MS):
        if margin_ms < 0:
            raise ConfigError("task monitor margin_ms must be >= 0, got %r" % (margin_ms,))
        self.margin_ms = margin_ms
        self._index = {}  # name -> position in the lists below
        self._names = []
        self._limits_ms = []  # period + margin
        self._last_ms = []  # when each job last reported

    def register(self, name, period_ms, now_ms):
        """Watch a job that must report at least every ``period_ms``; the first report is
        due ``period_ms`` after ``now_ms``. Registering a name again changes its period."""
        if type(period_ms) is not int or period_ms <= 0:
            raise ConfigError(
                "task %r: period_ms must be a positive int, got %r" % (name, period_ms)
            )
        limit = period_ms + self.margin_ms
        i = self._index.get(name)
        if i is None:
            self._index[name] = len(self._names)
            self._names.append(name)
            self._limits_ms.append(limit)
            self._last_ms.append(now_ms)
        else:
            self._limits_ms[i] = limit
            self._last_ms[i] = now_ms

    def unregister(self, name):
        """Stop watching a job (for example a sensor that is switched off)."""
        i = self._index.pop(name, None)
        if i is None:
            return
        del self._names[i]
        del self._limits_ms[i]
        del self._last_ms[i]
        for j in range(i, len(self._names)):
            self._index[self._names[j]] = j

    def report(self, name, now_ms):
        """The job ran at ``now_ms``. KeyError for a job never registered (a wiring bug)."""
        self._last_ms[self._index[name]] = now_ms

    def period_ms(self, name):
        return self._limits_ms[self._index[name]] - self.margin_ms

    def healthy(self, now_ms):
        """True when every registered job reported within its period plus the margin."""
        last = self._last_ms
        limits = self._limits_ms
        for i in range(len(last)):
            if now_ms - last[i] > limits[i]:
                return False
        return True

    def overdue(self, now_ms):
        """Names of the jobs that are late, in registration order."""
        return [
            self._names[i]
            for i in range(len(self._names))
            if now_ms - self._last_ms[i] > self._limits_ms[i]
        ]

    def ms_until_overdue(self, now_ms):
        """Milliseconds until the first job turns late (0 if one is late); None if none watched."""
        soonest = None
        for i in range(len(self._last_ms)):
            left = self._last_ms[i] + self._limits_ms[i] - now_ms
            if soonest is None or left < soonest:
                soonest = left
        if soonest is not None and soonest < 0:
            return 0
        return soonest

    def names(self):
        return list(self._names)
