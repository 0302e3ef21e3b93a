"""Helpers for the core tests; they run under CPython (pytest) and MicroPython alike."""

from pump.core.events import EventLog
from pump.core.therapy import BASAL, Settings, Therapy
from pump.core.units import Mechanics, step_volume_pl

# The default board: 14730 pL per microstep of U-100 -> 1.473 mU per step.
DEFAULT_PL = step_volume_pl(800, 200, 16, 8660)


def mechanics(pl=DEFAULT_PL, units_per_ml=100, max_step_rate=4000):
    return Mechanics(pl, units_per_ml, max_step_rate)


def raises(exc_type, fn, *args, **kwargs):
    """Call fn and return the exception it raised; fail unless it is ``exc_type``."""
    try:
        fn(*args, **kwargs)
    except exc_type as exc:
        return exc
    raise AssertionError("%s not raised" % exc_type.__name__)


class CoreLoop:
    """Drives Therapy the way the app does, in exact virtual milliseconds.

    The basal interrupt fires exactly when the accumulator says a step or a change is
    due; every train completes at once. Deliveries are kept as (t_ms, kind, steps).
    """

    def __init__(self, therapy=None, settings=None, ms_of_day=0, mech=None, record=False):
        self.events = EventLog(capacity=200)
        self.mech = mech or mechanics()
        self.therapy = therapy or Therapy(
            self.mech, settings or Settings(), self.events, 0, ms_of_day
        )
        self.now = 0
        self.totals = {}
        # (t_ms, kind, steps) of every train when ``record``; off by default, as a
        # long run would not fit a microcontroller-sized heap.
        self.deliveries = [] if record else None
        self.therapy.delivery_listener = self._record

    def _record(self, t_ms, kind, steps, mu):
        self.totals[kind] = self.totals.get(kind, 0) + steps
        if self.deliveries is not None:
            self.deliveries.append((t_ms, kind, steps))

    def steps(self, kind=None):
        if kind is None:
            return sum(self.totals.values())
        return self.totals.get(kind, 0)

    def _service(self):
        therapy = self.therapy
        if therapy.service(self.now, therapy.ticker.take_due()):
            therapy.apply_rate(self.now, therapy.change_time())
        while True:
            train = therapy.next_train(self.now)
            if train is None:
                break
            kind, part, steps, _rate = train
            therapy.train_done(kind, part, steps, self.now)
        therapy.close_hour(self.now)  # as the app does on every pass

    def run_to(self, t_ms):
        therapy = self.therapy
        self._service()
        while self.now < t_ms:
            step = therapy.ticker.ms_until_next_event()
            wake = therapy.next_wake_ms(self.now)
            target = self.now + step
            if wake is not None and self.now < wake < target:
                target = wake
            if target > t_ms:
                target = t_ms
            therapy.ticker.advance(target - self.now)
            self.now = target
            self._service()

    def command(self, name, *args):
        """Run a therapy command at the current time as the app does; return the refusal."""
        self._service()
        try:
            getattr(self.therapy, name)(self.now, *args)
        except ValueError as refusal:
            return str(refusal)
        finally:
            self.therapy.apply_rate(self.now)
            self._service()
        return None

    def of_type(self, etype):
        return [e for e in self.events.recent() if e[2] == etype]


__all__ = ("BASAL", "CoreLoop", "mechanics", "raises", "DEFAULT_PL")
