"""The bolus calculator's settings by time of day: carb ratios, sensitivities, targets.

Kept apart from the suggestion (pump.core.calculator) so that the pump keeps only these
in RAM: the settings hold them, the suggestion is loaded with its screen.
"""

from pump.core.errors import Refused
from pump.core.schedule import DAY_MS, SLOT_MS, SLOTS_PER_DAY, slot_text

MAX_SEGMENTS = 8
ICR_MIN_DG = 10  # insulin-to-carb ratio in 0.1 g/U: 1.0 g/U
ICR_MAX_DG = 1500  # 150.0 g/U
ISF_MIN = 5  # insulin sensitivity, mg/dL per U
ISF_MAX = 400
TARGET_MIN = 60  # mg/dL
TARGET_MAX = 250


# ----- settings by time of day ---------------------------------------------------------------


def _check_starts(segments, what):
    """Refuse a segment list that is empty, too long, or whose starts are not ascending."""
    if type(segments) not in (list, tuple) or not (1 <= len(segments) <= MAX_SEGMENTS):
        raise Refused("%s has 1 to %d segments" % (what, MAX_SEGMENTS))
    previous = -1
    for segment in segments:
        if type(segment) not in (list, tuple) or not segment:
            raise Refused("%s segment %r is not (start, value)" % (what, segment))
        start = segment[0]
        if type(start) is not int or not (0 <= start < SLOTS_PER_DAY):
            raise Refused("%s segment start %r is not a half-hour of the day" % (what, start))
        if previous < 0 and start != 0:
            raise Refused("%s: the first segment must start at 00:00" % what)
        if start <= previous:
            raise Refused("%s segment %s is not after the one before" % (what, slot_text(start)))
        previous = start


def _int_in(value, low, high):
    return type(value) is int and low <= value <= high


def check_icr(segments):
    """Validate [(start slot, ratio in 0.1 g/U), ...]; return a copy. Raises Refused."""
    _check_starts(segments, "ICR")
    for segment in segments:
        if len(segment) != 2 or not _int_in(segment[1], ICR_MIN_DG, ICR_MAX_DG):
            raise Refused(
                "ICR at %s must be 1.0 to 150.0 g/U, in 0.1 g/U" % slot_text(segment[0])
            )
    return [(start, icr) for start, icr in segments]


def check_isf(segments):
    """Validate [(start slot, mg/dL per U), ...]; return a copy. Raises Refused."""
    _check_starts(segments, "ISF")
    for segment in segments:
        if len(segment) != 2 or not _int_in(segment[1], ISF_MIN, ISF_MAX):
            raise Refused(
                "ISF at %s must be %d to %d mg/dL per U" % (slot_text(segment[0]), ISF_MIN, ISF_MAX)
            )
    return [(start, isf) for start, isf in segments]


def check_targets(segments):
    """Validate [(start slot, low mg/dL, high mg/dL), ...]; return a copy. Raises Refused."""
    _check_starts(segments, "target")
    for segment in segments:
        at = slot_text(segment[0])
        if len(segment) != 3:
            raise Refused("target at %s must be (start, low, high)" % at)
        low = segment[1]
        high = segment[2]
        for name, value in (("low", low), ("high", high)):
            if not _int_in(value, TARGET_MIN, TARGET_MAX):
                raise Refused(
                    "target %s at %s must be %d to %d mg/dL" % (name, at, TARGET_MIN, TARGET_MAX)
                )
        if low > high:
            raise Refused("target at %s: low %d mg/dL is above high %d mg/dL" % (at, low, high))
    return [(start, low, high) for start, low, high in segments]


def _segment_at(segments, ms_of_day):
    slot = (ms_of_day % DAY_MS) // SLOT_MS
    found = segments[0]
    for segment in segments:
        if segment[0] > slot:
            break
        found = segment
    return found


class CalculatorSettings:
    """Carb ratios, sensitivities and target ranges, each up to 8 segments of the day.

    ``icr``: [(start slot, g/U x 10)], ``isf``: [(start slot, mg/dL per U)],
    ``targets``: [(start slot, low mg/dL, high mg/dL)]; slots are half-hours from 00:00
    (schedule.parse_hhmm turns 'HH:MM' into one). A refused value changes nothing.
    """

    def __init__(self, icr, isf, targets):
        icr = check_icr(icr)
        isf = check_isf(isf)
        targets = check_targets(targets)
        self.icr = icr
        self.isf = isf
        self.targets = targets

    def set_icr(self, segments):
        self.icr = check_icr(segments)

    def set_isf(self, segments):
        self.isf = check_isf(segments)

    def set_targets(self, segments):
        self.targets = check_targets(segments)

    def at(self, ms_of_day):
        """(ICR in 0.1 g/U, ISF mg/dL per U, low, high mg/dL) in force at a time of day."""
        target = _segment_at(self.targets, ms_of_day)
        return (
            _segment_at(self.icr, ms_of_day)[1],
            _segment_at(self.isf, ms_of_day)[1],
            target[1],
            target[2],
        )
