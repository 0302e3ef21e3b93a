"""Therapy events: what happened, when, with its figures; kept in a bounded ring in RAM."""

# Event types. Figures are integers: milliunits (mu), steps, milliseconds, mU/h.
BOOT = "boot"
DELIVERY = "delivery"  # one pulse train: kind, steps, mu
BASAL_HOUR = "basal_hour"  # basal given in a clock hour: hour (0-23), steps, mu
BASAL_RATE = "basal_rate"
PROFILE_SELECTED = "profile_selected"
PROFILE_SAVED = "profile_saved"
BOLUS_STARTED = "bolus_started"
BOLUS_FINISHED = "bolus_finished"
BOLUS_CANCELLED = "bolus_cancelled"
TEMP_STARTED = "temp_basal_started"
TEMP_CANCELLED = "temp_basal_cancelled"
TEMP_EXPIRED = "temp_basal_expired"
SUSPENDED = "suspended"
RESUMED = "resumed"
REFUSED = "refused"
SETTINGS_CHANGED = "settings_changed"
CLOCK_SET = "clock_set"
# Safety
ALARM = "alarm"  # code, priority, message, figures
ALARM_CLEARED = "alarm_cleared"  # the cause went away (the alarm stays until acknowledged)
ALARM_ACK = "alarm_ack"
FAULT = "fault"  # the one fault path ran: code, motor stopped, what was not delivered
BACKOFF = "backoff"  # plunger backed off after an occlusion: steps, pressure relieved
RESERVOIR_REWOUND = "reservoir_rewound"
RESERVOIR_LOADED = "reservoir_loaded"
RESERVOIR_SEATED = "reservoir_seated"  # pusher brought up to the new stopper: steps
PRIMED = "primed"  # tubing or cannula fill: never therapy, never insulin on board
SELF_TEST = "self_test"  # power-on self-test: passed, failure codes
RESET_CAUSE = "reset_cause"  # why the chip restarted: code, cause ('watchdog', 'power_on', ...)
BATTERY = "battery"  # the battery state changed: state ('ok', 'low', 'depleted'), mv
DISPLAY_LOST = "display_lost"  # the display stopped answering on I2C
DISPLAY_BACK = "display_back"  # the display answers again (re-initialised)
# The serial link (pump/link.py)
REMOTE_REQUEST = "remote_request"  # a request and its answer: req_seq, command, outcome, code
REMOTE_OUTCOME = "remote_outcome"  # a held change: id, command, outcome (applied, expired...)


class EventLog:
    """The most recent events, oldest first, with a sequence number each.

    ``listener`` (optional) is called with every event as it is recorded: the host
    tools write them out. ``recorder`` is the flash log's own hook (pump.persistence),
    called first, and apart so that a tool replacing the listener cannot cut it off.
    """

    def __init__(self, capacity=64, listener=None):
        self.capacity = capacity
        self.listener = listener
        self.recorder = None
        self._ring = []
        self.seq = 0

    def emit(self, t_ms, etype, **fields):
        self.seq += 1
        event = (self.seq, t_ms, etype, fields)
        self._ring.append(event)
        if len(self._ring) > self.capacity:
            self._ring.pop(0)
        if self.recorder is not None:
            self.recorder(event)
        if self.listener is not None:
            self.listener(event)
        return event

    def recent(self, n=None):
        """The last ``n`` events (all kept if n is None), oldest first."""
        if n is None or n >= len(self._ring):
            return list(self._ring)
        return self._ring[len(self._ring) - n :]

    def last(self, etype):
        """The most recent event of a type, or None."""
        for event in reversed(self._ring):
            if event[2] == etype:
                return event
        return None
