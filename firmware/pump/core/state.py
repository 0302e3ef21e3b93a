"""Therapy checkpoint: what must survive a reset, when to write it, and how to recover from it.

Pure code. The app fills a ``Checkpoint`` from its therapy state, the storage layer
writes it (``pump.hal.storage``), ``CheckpointPolicy`` says when a write is due, and
``plan_recovery`` (pump.core.recovery, boot only) turns what was found at boot into
a ``RecoveryPlan``.

In-flight rule: before the motor starts a pulse train that the last checkpoint does
not already cover, the app writes a checkpoint whose ``in_flight_steps`` reserves that
train (and, for a bolus, a bounded number of the steps that follow). After a reset
the whole reservation counts as delivered: insulin on board is never under-reported
(over-reported by at most the reservation) and the reservoir estimate errs low. The
recovery plan records the size of that uncertainty in the event log.
"""

from pump.core.records import CorruptRecord, decode_json_record, encode_json_record
from pump.core.wallclock import (  # noqa: F401  (re-exported: the wall clock's old home)
    CLOCK_VALID_FROM_S,
    DAY_S,
    clock_lost,
    date_from_days,
    days_from_date,
    rtc_tuple,
    wall_after_loss,
    wall_seconds,
)

CHECKPOINT_MAGIC = "PUMPCKP"
CHECKPOINT_VERSION = 1
MAX_RECENT_BOLUSES = 10  # insulin on board looks back 8 h: 6 boluses a day fit easily
IOB_WINDOW_S = 8 * 3600  # boluses older than this no longer count

# Alarm priorities and codes the recovery plan raises.
HIGH = 2
MEDIUM = 1
ALARM_CHECK_SETTINGS = "check_settings"
ALARM_SET_TIME = "set_time"
ALARM_STATE_LOST = "state_lost"
ALARM_SET_UP = "set_up"
ALARM_BOLUS_INTERRUPTED = "bolus_interrupted"


# Status of something loaded from flash.
OK = "ok"
MISSING = "missing"
CORRUPT = "corrupt"


class Checkpoint:
    """The therapy state that must survive a reset. Integers: steps, mU, ms, seconds.

    ``bolus``: None or dict with kind, requested_mu, steps (total), delivered_steps,
    delivered_mu, start_wall_s. ``temp``: None or dict with kind, value, end_wall_s.
    ``recent_boluses``: list of (wall_s, delivered_mu), oldest first, bounded.
    ``wall_s`` is None when the clock was not set.
    """

    def __init__(self):
        self.seq = 0  # set by the storage layer at each write
        self.t_ms = 0
        self.wall_s = None
        self.reservoir_steps = 0
        self.odometer_steps = 0
        self.in_flight_steps = 0
        self.in_flight_kind = None  # "basal" or "bolus"
        self.bolus = None
        self.temp = None
        self.suspended = False
        self.suspend_reason = None
        self.suspended_wall_s = None
        self.recent_boluses = []
        # The insulin limits' windows (DeliveryMonitor.snapshot), steps; None if not kept.
        self.limits = None
        # Settings were saved on this pump at some time: a missing settings file is then a
        # loss, not a new pump. Checkpoints without the field count as set up.
        self.set_up = True

    def add_bolus(self, wall_s, delivered_mu):
        """Remember a finished bolus for insulin on board, keeping the list bounded."""
        self.recent_boluses.append((wall_s, delivered_mu))
        while len(self.recent_boluses) > MAX_RECENT_BOLUSES:
            self.recent_boluses.pop(0)

    def to_dict(self):
        """The record's content, with short keys so it stays inline in littlefs (< 512 B)."""
        bolus = self.bolus
        temp = self.temp
        flat = []
        for b in self.recent_boluses:
            flat.append(b[0])
            flat.append(b[1])
        return {
            "q": self.seq,
            "t": self.t_ms,
            "w": self.wall_s,
            "r": self.reservoir_steps,
            "o": self.odometer_steps,
            "f": self.in_flight_steps,
            "fk": self.in_flight_kind,
            "b": None if bolus is None else [bolus[k] for k in _BOLUS_KEYS],
            "tb": None if temp is None else [temp[k] for k in _TEMP_KEYS],
            "s": self.suspended,
            "sr": self.suspend_reason,
            "sw": self.suspended_wall_s,
            "rb": flat,
            "l": self.limits,
            "u": self.set_up,
        }

    def encode(self):
        return encode_json_record(CHECKPOINT_MAGIC, CHECKPOINT_VERSION, self.to_dict())


_BOLUS_KEYS = ("kind", "requested_mu", "steps", "delivered_steps", "delivered_mu", "start_wall_s")
_TEMP_KEYS = ("kind", "value", "end_wall_s")


def _num(d, key, optional=False):
    value = d[key]
    if value is None and optional:
        return None
    if type(value) is not int or value < 0:
        raise CorruptRecord("%s is not a count" % key)
    return value


def _keyed(values, keys):
    if values is None:
        return None
    if len(values) != len(keys):
        raise CorruptRecord("wrong number of fields")
    out = {}
    for i in range(len(keys)):
        out[keys[i]] = values[i]
    return out


def decode_checkpoint(data):
    """Rebuild a Checkpoint from its bytes, or raise CorruptRecord with the reason."""
    _, d = decode_json_record(data, CHECKPOINT_MAGIC, CHECKPOINT_VERSION)
    c = Checkpoint()
    try:
        c.seq = _num(d, "q")
        c.t_ms = _num(d, "t")
        c.wall_s = _num(d, "w", True)
        c.reservoir_steps = _num(d, "r")
        c.odometer_steps = _num(d, "o")
        c.in_flight_steps = _num(d, "f")
        c.in_flight_kind = d["fk"]
        c.bolus = _keyed(d["b"], _BOLUS_KEYS)
        if c.bolus is not None:
            for key in ("requested_mu", "steps", "delivered_steps", "delivered_mu"):
                _num(c.bolus, key)
        c.temp = _keyed(d["tb"], _TEMP_KEYS)
        c.suspended = d["s"] is True
        c.suspend_reason = d["sr"]
        c.suspended_wall_s = _num(d, "sw", True)
        flat = d["rb"]
        c.recent_boluses = [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat) - 1, 2)]
        c.set_up = d.get("u", True) is not False
        limits = d.get("l")
        if limits is not None:
            c.limits = [int(v) for v in limits]
    except (KeyError, TypeError, ValueError, IndexError):
        raise CorruptRecord("checkpoint fields missing or mistyped")
    return c


class CheckpointPolicy:
    """When the app must write a checkpoint.

    * after any state change (bolus started, finished or cancelled, temp basal,
      suspend, resume, reservoir change, clock set): at once (``changed()`` then
      ``due()``);
    * before a pulse train the last checkpoint does not cover (``before_train``):
      the returned reservation goes in the checkpoint as ``in_flight_steps``;
    * while delivering, at least every ``interval_ms`` so the odometer and the
      reservoir on flash stay close to the motor.
    ``bolus_reserve_steps`` bounds how far one bolus checkpoint reaches ahead: larger
    means fewer writes, and more insulin counted as delivered after a reset.
    """

    def __init__(self, interval_ms=300_000, bolus_reserve_steps=340, basal_reserve_steps=400):
        self.interval_ms = interval_ms
        self.bolus_reserve_steps = bolus_reserve_steps
        self.basal_reserve_steps = basal_reserve_steps
        self.covered_steps = 0  # steps the last checkpoint's reservation still covers
        self.covered_kind = None
        self.last_write_ms = None
        self._changed = True  # nothing written yet this boot

    def changed(self):
        """A state change happened: the next ``due`` says a write is needed."""
        self._changed = True

    def due(self, now_ms, delivering=False):
        """True when a checkpoint (with no reservation) must be written now."""
        if self._changed or self.last_write_ms is None:
            return True
        return delivering and now_ms - self.last_write_ms >= self.interval_ms

    def before_train(self, now_ms, kind, steps, more_steps=0):
        """Steps to reserve in a checkpoint written before this train, or 0 if none is due.

        ``more_steps``: steps of the same kind expected soon after: the rest of the
        bolus, or the basal steps the next ``interval_ms`` accrues at the current rate.
        The reservation takes as many of them as the kind's bound allows.
        """
        if (
            not self._changed
            and self.last_write_ms is not None
            and kind == self.covered_kind
            and steps <= self.covered_steps
            and now_ms - self.last_write_ms < self.interval_ms
        ):
            return 0
        bound = self.bolus_reserve_steps if kind == "bolus" else self.basal_reserve_steps
        extra = bound - steps
        if extra > more_steps:
            extra = more_steps
        return steps + (extra if extra > 0 else 0)

    def written(self, now_ms, in_flight_steps=0, kind=None):
        """The app wrote a checkpoint reserving ``in_flight_steps`` of ``kind``."""
        self.last_write_ms = now_ms
        self.covered_steps = in_flight_steps
        self.covered_kind = kind if in_flight_steps else None
        self._changed = False

    def train_done(self, steps):
        """The motor emitted ``steps`` of the covered kind."""
        self.covered_steps -= steps
        if self.covered_steps < 0:
            self.covered_steps = 0


class RecoveryPlan:
    """What the app does after a reset. Built by ``plan_recovery``.

    deliver: basal may run now. alarms: (priority, code, text). events: (type,
    fields) for the event log, in order. suspended / suspend_reason: the state to
    restore. temp: None or (kind, value, end_wall_s) still running. interrupted_bolus:
    None or the checkpoint's bolus dict with delivered amounts counted as delivered
    (never resumed). recent_boluses: (wall_s, mU) for insulin on board.
    reservoir_steps / odometer_steps: with the in-flight reservation counted.
    """

    def __init__(self):
        self.deliver = False
        self.alarms = []
        self.events = []
        self.use_factory_settings = False
        self.offer_factory_settings = False
        self.suspended = False
        self.suspend_reason = None
        self.temp = None
        self.interrupted_bolus = None
        self.recent_boluses = []
        self.reservoir_steps = None
        self.odometer_steps = 0
        self.no_delivery_s = None
        self.reset_cause = None
        # The insulin limits' windows to restore: the snapshot, how long ago it was taken
        # (0 when unknown) and the steps that may have gone out after it.
        self.limits = None
        self.limits_age_ms = 0
        self.limits_extra_steps = 0
        self.checkpoint_wall_s = None


def __getattr__(name):
    """``plan_recovery`` (pump.core.recovery), run at boot only: loaded when asked for."""
    if name == "plan_recovery":
        from pump.core import recovery

        return getattr(recovery, name)
    raise AttributeError(name)
