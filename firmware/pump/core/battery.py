"""Battery state from voltage readings: OK, LOW (alert) or DEPLETED (alarm, stop delivery)."""

from pump.core.errors import ConfigError

OK = 0
LOW = 1
DEPLETED = 2

STATE_NAMES = ("ok", "low", "depleted")

# Battery checked at least every 3 minutes (a safety requirement); read every
# minute so that one reading can be missed without breaking it.
MAX_INTERVAL_MS = 180_000
DEFAULT_INTERVAL_MS = 60_000
# While a change waits for confirmation, readings come this often, so a real
# low battery is confirmed within seconds and a single noisy one soon forgotten.
DEFAULT_CONFIRM_INTERVAL_MS = 5_000
DEFAULT_CONFIRM_READINGS = 3


# Thresholds at VSYS for the two usual supplies (board file key BATTERY):
# 3 x AA alkaline: 4.5-4.8 V new; 1.2 V a cell (3.6 V) leaves roughly a tenth of
# the charge at small loads, 1.1 V a cell (3.3 V) is the usual end of life.
ALKALINE_3AA = {"low_mv": 3600, "depleted_mv": 3300, "hysteresis_mv": 100}
# 1-cell LiPo: 4.2 V full, 3.7 V nominal; the discharge curve falls steeply below
# 3.5 V, and stopping at 3.3 V stays clear of the protection cut-off (2.5-3.0 V).
LIPO_1S = {"low_mv": 3500, "depleted_mv": 3300, "hysteresis_mv": 100}
_BOARD_KEYS = ("low_mv", "depleted_mv", "hysteresis_mv", "interval_ms")


def monitor_for_board(battery):
    """A BatteryMonitor from a board file's BATTERY dict; ConfigError names a bad key."""
    for key in battery:
        if key not in _BOARD_KEYS:
            raise ConfigError(
                "board BATTERY: unknown key %r (known: %s)" % (key, ", ".join(_BOARD_KEYS))
            )
    for key in ("low_mv", "depleted_mv"):
        if type(battery.get(key)) is not int:
            raise ConfigError("board BATTERY[%r] must be an int (mV)" % key)
    return BatteryMonitor(
        battery["low_mv"],
        battery["depleted_mv"],
        battery.get("hysteresis_mv", 100),
        interval_ms=battery.get("interval_ms", DEFAULT_INTERVAL_MS),
    )


class BatteryMonitor:
    """Turns battery readings (mV) into state changes, with hysteresis and confirmation.

    - OK -> LOW below ``low_mv``; LOW -> OK at ``low_mv + hysteresis_mv`` or more.
    - any -> DEPLETED below ``depleted_mv``. DEPLETED is left only for OK, at
      ``low_mv + hysteresis_mv`` or more (a fresh battery): a drained cell that
      recovers a little once the motor stops must not restart delivery.
    - A change needs ``confirm`` readings in a row that agree on it.
    """

    def __init__(
        self,
        low_mv,
        depleted_mv,
        hysteresis_mv=100,
        confirm=DEFAULT_CONFIRM_READINGS,
        interval_ms=DEFAULT_INTERVAL_MS,
        confirm_interval_ms=DEFAULT_CONFIRM_INTERVAL_MS,
    ):
        if not 0 < depleted_mv < low_mv:
            raise ConfigError(
                "battery: need 0 < depleted_mv < low_mv, got depleted_mv=%r low_mv=%r"
                % (depleted_mv, low_mv)
            )
        if hysteresis_mv < 0:
            raise ConfigError("battery: hysteresis_mv must be >= 0, got %r" % (hysteresis_mv,))
        if confirm < 1:
            raise ConfigError("battery: confirm must be at least 1 reading, got %r" % (confirm,))
        if not 0 < interval_ms <= MAX_INTERVAL_MS:
            raise ConfigError(
                "battery: interval_ms must be 1..%d (checked at least every 3 min), got %r"
                % (MAX_INTERVAL_MS, interval_ms)
            )
        if not 0 < confirm_interval_ms <= interval_ms:
            raise ConfigError(
                "battery: confirm_interval_ms must be 1..interval_ms, got %r"
                % (confirm_interval_ms,)
            )
        self.low_mv = low_mv
        self.depleted_mv = depleted_mv
        self.hysteresis_mv = hysteresis_mv
        self.confirm = confirm
        self.interval_ms = interval_ms
        self.confirm_interval_ms = confirm_interval_ms
        self.state = OK
        self.last_mv = None
        self.last_read_ms = None
        self._candidate = OK
        self._agree = 0

    def _level(self, mv):
        # The state this one reading points to, given where we are now (hysteresis).
        if mv < self.depleted_mv:
            return DEPLETED
        recovered = mv >= self.low_mv + self.hysteresis_mv
        state = self.state
        if state == DEPLETED:
            return OK if recovered else DEPLETED
        if state == LOW:
            return OK if recovered else LOW
        return LOW if mv < self.low_mv else OK

    def update(self, now_ms, mv):
        """Record a reading; return the new state when it changes, else None."""
        self.last_mv = mv
        self.last_read_ms = now_ms
        level = self._level(mv)
        if level == self.state:
            self._agree = 0
            return None
        if level != self._candidate or self._agree == 0:
            self._candidate = level
            self._agree = 1
        else:
            self._agree += 1
        if self._agree < self.confirm:
            return None
        self.state = level
        self._agree = 0
        return level

    def confirming(self):
        """True while a change has been seen but not yet confirmed."""
        return self._agree > 0

    def ms_until_due(self, now_ms):
        """Milliseconds until the next reading is needed (0: now)."""
        if self.last_read_ms is None:
            return 0
        wait = self.confirm_interval_ms if self._agree else self.interval_ms
        left = self.last_read_ms + wait - now_ms
        return left if left > 0 else 0

    def due(self, now_ms):
        """True when a reading is needed now."""
        return self.ms_until_due(now_ms) == 0

    def stops_delivery(self):
        return self.state == DEPLETED
