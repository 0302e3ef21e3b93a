"""Key logic: debounce raw samples of the four buttons and turn them into key events.

Pure: the main loop samples the pins (``hal.buttons``) and feeds the mask with its
own time, ``Keypad.update(now_ms, down_mask)``, then takes the events with ``pop()``.

An event is a tuple ``(kind, key, step)``:

- ``PRESS``: UP and DOWN report it as soon as the press is debounced, so moving
  through a menu or changing a value answers at once; holding them then gives
  ``REPEAT``. OK and BACK report it on release, and only if the key was not held
  long enough for ``LONG``: the same key can confirm (short) or do something else
  (long) without both happening.
- ``LONG``: OK or BACK held ``long_ms``, reported once while still held.
- ``REPEAT``: UP or DOWN held, first after ``repeat_delay_ms``, then every
  ``repeat_ms``, every ``fast_repeat_ms`` after ``fast_after_ms``. ``step`` is the
  multiplier the value should change by: 1, then 10 after ``step10_after_ms``,
  then 100 after ``step100_after_ms``. A late sample gives one REPEAT, never a burst.
- ``LOCK_TOGGLE`` (key ``OK | BACK``): BACK and OK held together for ``combo_ms``.
  Keys that were part of such a chord give no PRESS or LONG for that press.
- ``STUCK``: a key held ``stuck_ms`` (the safety rule: stuck key alarm after 1 min).
  It is then ignored until it is released, which gives ``STUCK_CLEARED``.

``step`` is 1 for PRESS, the multiplier for REPEAT, 0 otherwise. Time is in ms and
must not go backwards (the app's growing ms since boot).
"""

UP = 1
DOWN = 2
OK = 4
BACK = 8
ALL_KEYS = UP | DOWN | OK | BACK
KEYS = (UP, DOWN, OK, BACK)  # index i holds the key with bit i
KEY_NAMES = ("UP", "DOWN", "OK", "BACK")

PRESS = 1
LONG = 2
REPEAT = 3
LOCK_TOGGLE = 4
STUCK = 5
STUCK_CLEARED = 6
EVENT_NAMES = ("", "PRESS", "LONG", "REPEAT", "LOCK_TOGGLE", "STUCK", "STUCK_CLEARED")

_VALUE_KEYS = UP | DOWN  # act on press and repeat while held
_COMBO = OK | BACK


def key_name(key):
    """'UP', 'OK', ... or 'OK+BACK' for a mask of several keys."""
    names = [KEY_NAMES[i] for i in range(4) if key & KEYS[i]]
    return "+".join(names)


def event_text(event):
    """A readable form of an event, for logs and test messages: 'REPEAT UP x10'."""
    kind, key, step = event
    text = EVENT_NAMES[kind] + " " + key_name(key)
    if kind == REPEAT:
        text += " x%d" % step
    return text


class Keypad:
    """Debounces UP/DOWN/OK/BACK and yields PRESS, LONG, REPEAT, LOCK_TOGGLE, STUCK events."""

    poll_ms = 15  # sample period while a key is down or settling
    debounce_ms = 30  # a level must hold this long to count
    long_ms = 1000
    repeat_delay_ms = 500
    repeat_ms = 200
    fast_after_ms = 2000
    fast_repeat_ms = 100
    step10_after_ms = 4000
    step100_after_ms = 8000
    combo_ms = 1000
    stuck_ms = 60_000
    stuck_poll_ms = 500  # only stuck keys down: their release need not be seen quickly
    queue_size = 8

    def __init__(self):
        self._raw = 0  # mask of the last sample
        self._stable = 0  # debounced mask
        self._stuck = 0  # keys reported STUCK and not yet released
        self._consumed = 0  # keys whose press gave LONG or was part of a chord
        self._combo_done = False
        self._combo_since = 0
        self._changed_at = [0, 0, 0, 0]  # per key: time of the last raw change
        self._down_at = [0, 0, 0, 0]  # per key: time the press was debounced
        self._next_repeat = [0, 0, 0, 0]
        self._last_ms = None
        self._queue: list = [None] * self.queue_size
        self._head = 0
        self._count = 0
        self.dropped = 0  # events lost to a full queue (the main loop fell behind)

    # ----- input ------------------------------------------------------------------------

    def update(self, now_ms, down_mask):
        """Feed one sample (bit set = key down); returns how many events are waiting."""
        down_mask &= ALL_KEYS
        self._last_ms = now_ms
        changed = down_mask ^ self._raw
        if changed:
            for i in range(4):
                if changed & KEYS[i]:
                    self._changed_at[i] = now_ms
            self._raw = down_mask
        settling = self._raw ^ self._stable
        if settling:
            for i in range(4):
                key = KEYS[i]
                if settling & key and now_ms - self._changed_at[i] >= self.debounce_ms:
                    if self._raw & key:
                        self._pressed(i, key, now_ms)
                    else:
                        self._released(i, key)
        held = self._stable & ~self._stuck
        if held:
            self._held(held, now_ms)
        return self._count

    def next_poll_ms(self, now_ms):
        """When the next sample is needed, or None: all keys up and settled, wait for an edge."""
        if self._count:
            return now_ms
        if self._raw != self._stable or self._stable & ~self._stuck:
            period = self.poll_ms
        elif self._stable:
            period = self.stuck_poll_ms
        else:
            return None
        if self._last_ms is None:
            return now_ms
        due = self._last_ms + period
        return due if due > now_ms else now_ms

    # ----- output -----------------------------------------------------------------------

    def pop(self):
        """The oldest waiting event (kind, key, step), or None."""
        if not self._count:
            return None
        event = self._queue[self._head]
        self._queue[self._head] = None
        self._head = (self._head + 1) % self.queue_size
        self._count -= 1
        return event

    def down(self):
        """Mask of the keys debounced as down (stuck ones included)."""
        return self._stable

    def stuck(self):
        """Mask of the keys reported STUCK and not yet released."""
        return self._stuck

    # ----- internals --------------------------------------------------------------------

    def _emit(self, kind, key, step):
        if self._count == self.queue_size:
            self.dropped += 1
            return
        self._queue[(self._head + self._count) % self.queue_size] = (kind, key, step)
        self._count += 1

    def _pressed(self, i, key, now_ms):
        self._stable |= key
        self._down_at[i] = now_ms
        self._consumed &= ~key
        if key & _VALUE_KEYS:
            self._emit(PRESS, key, 1)
            self._next_repeat[i] = now_ms + self.repeat_delay_ms
        elif self._stable & ~self._stuck & _COMBO == _COMBO:
            # A chord: neither key gives PRESS or LONG for this press.
            self._consumed |= _COMBO
            self._combo_since = now_ms
            self._combo_done = False

    def _released(self, i, key):
        self._stable &= ~key
        if self._stuck & key:
            self._stuck &= ~key
            self._emit(STUCK_CLEARED, key, 0)
            return
        if key & _COMBO and not self._consumed & key:
            self._emit(PRESS, key, 1)
        self._consumed &= ~key

    def _held(self, held, now_ms):
        for i in range(4):
            key = KEYS[i]
            if not held & key:
                continue
            held_ms = now_ms - self._down_at[i]
            if held_ms >= self.stuck_ms:
                self._stuck |= key
                self._consumed |= key
                self._emit(STUCK, key, 0)
            elif key & _VALUE_KEYS:
                if now_ms >= self._next_repeat[i]:
                    self._repeat(i, key, now_ms, held_ms)
            elif not self._consumed & key and held_ms >= self.long_ms:
                self._consumed |= key
                self._emit(LONG, key, 0)
        held &= ~self._stuck
        if held & _COMBO == _COMBO and not self._combo_done:
            if now_ms - self._combo_since >= self.combo_ms:
                self._combo_done = True
                self._emit(LOCK_TOGGLE, _COMBO, 0)

    def _repeat(self, i, key, now_ms, held_ms):
        if held_ms >= self.step100_after_ms:
            step = 100
        elif held_ms >= self.step10_after_ms:
            step = 10
        else:
            step = 1
        self._emit(REPEAT, key, step)
        period = self.fast_repeat_ms if held_ms >= self.fast_after_ms else self.repeat_ms
        due = self._next_repeat[i] + period
        # Late samples give one repeat, not a burst that would jump the value.
        self._next_repeat[i] = due if due > now_ms else now_ms + period
