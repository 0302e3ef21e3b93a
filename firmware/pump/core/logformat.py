"""The event log's binary records: one fixed-size record per event, with its own CRC32.

Pure code, shared by the storage layer and the host tools. A record packs the event's
sequence number, times, a type code and up to six integer fields (``EVENT_TABLE`` says
which). Every other field (text, a flag, a field the table has no place for) follows in
*extra* records of the same size and sequence number, holding the rest as compact JSON:
every field of every event is kept.
"""

import json
import struct

from pump.core.crc import CorruptRecord, crc32

# seq u32, t_ms u32 (ms since boot, wraps after 49 days), wall_s u32 (0: clock not set),
# type code u8, value count u8, short name 6 bytes (generic type only), 6 values i32, crc32 u32.
LOG_FORMAT = "<IIIBB6s6i"
LOG_VALUES = 6
LOG_RECORD_SIZE = 48  # struct.calcsize(LOG_FORMAT) + 4 for the CRC
_LOG_BODY = LOG_RECORD_SIZE - 4
NO_VALUE = -0x80000000  # a field that was absent or could not be stored as a number
_I32_MAX = 0x7FFFFFFF
GENERIC_CODE = 255

# Words that event text fields take, stored by index (text outside the list is not kept).
WORDS = (
    "normal",
    "extended",
    "dual",
    "cancelled",
    "suspended",
    "basal",
    "bolus",
    "occlusion",
    "reservoir_empty",
    "battery",
    "button",
    "serial",
    "reset",
    "alarm",
    # Added later: appended only, so stored indexes keep their meaning.
    "high",
    "medium",
    "low",
    "person",
    "recovery",
    "power_on",
    "hard_reset",
    "watchdog",
    "deep_sleep",
    "soft_reset",
    "reservoir_low",
    "battery_low",
    "battery_depleted",
    "sensor_no_data",
    "sensor_stuck",
    "sensor_range",
    "disconnected",
    "delivery_mismatch",
    "limit_hour",
    "limit_day",
    "over_limit_request",
    "auto_off",
    "stuck_key",
    "display",
    "self_test",
    "internal",
    "check_settings",
    "set_up",
    "set_time",
    "state_lost",
    "bolus_interrupted",
    "storage",
    "tubing",
    "cannula",
    "crash",
    "deliberate",
)

# code, event type, fields in value order; "$name" is a word from WORDS.
EVENT_TABLE = (
    (1, "boot", ("nu_per_step", "reset_cause")),
    (2, "delivery", ("$kind", "steps", "mu")),
    (3, "basal_rate", ("rate_mu_per_h",)),
    (4, "profile_selected", ("index",)),
    (5, "profile_saved", ("index", "segments", "daily_mu")),
    (
        6,
        "bolus_started",
        ("$bolus", "requested_mu", "steps", "now_steps", "extended_steps", "extended_min"),
    ),
    (7, "bolus_finished", ("$bolus", "requested_mu", "steps", "delivered_mu")),
    (
        8,
        "bolus_cancelled",
        ("$bolus", "requested_mu", "steps", "delivered_mu", "not_delivered_mu", "$reason"),
    ),
    (9, "temp_basal_started", ("minutes", "percent", "rate_mu_per_h")),
    (10, "temp_basal_cancelled", ("ran_min",)),
    (11, "temp_basal_expired", ()),
    (12, "suspended", ("basal_steps_not_given",)),
    (13, "resumed", ("suspended_min", "suspended_ms", "basal_not_given_mu")),
    (14, "refused", ()),
    (
        15,
        "settings_changed",
        (
            "max_bolus_mu",
            "max_basal_mu_per_h",
            "increment_mu",
            "bolus_speed_mu_per_min",
        ),
    ),
    (16, "clock_set", ("ms_of_day",)),
    (17, "alarm", ("$code", "$priority")),
    (18, "alarm_ack", ("$code",)),
    (19, "alarm_cleared", ("$code",)),
    (20, "reset", ("cause", "rtc_lost")),
    (21, "bolus_interrupted", ("$bolus", "requested_mu", "steps", "delivered_mu", "uncertain_mu")),
    (22, "no_delivery", ("from_wall_s", "to_wall_s", "seconds")),
    (23, "delivery_uncertain", ("steps", "mu")),
    (24, "reset_cause", ("code", "$cause")),
    (25, "self_test", ("passed",)),
    (26, "fault", ("$code", "motor_stopped", "not_delivered_mu", "repeat")),
    (27, "backoff", ("steps", "nl", "not_delivered_mu", "force_mn")),
    (28, "reservoir_rewound", ("steps",)),
    (29, "reservoir_loaded", ("volume_mu",)),
    (30, "reservoir_seated", ("steps", "force_mn")),
    (31, "primed", ("$part", "steps", "mu")),
    (32, "battery", ("$state", "mv")),
    (33, "display_lost", ()),
    (34, "display_back", ()),
    (35, "basal_hour", ("hour", "steps", "mu")),
    (36, "crash", ()),
)

_BY_TYPE = {}
_BY_CODE = {}
for _entry in EVENT_TABLE:
    _BY_TYPE[_entry[1]] = _entry
    _BY_CODE[_entry[0]] = _entry


EXTRA_CODE = 254  # an extra record: the JSON of the fields the first one could not hold
# seq, t_ms, wall_s as in the first record, the code EXTRA_CODE u8, JSON bytes, crc32.
_EXTRA_FORMAT = "<IIIB"
_EXTRA_HEAD = 13
_EXTRA_CODE_AT = 12  # the type code's byte, in both kinds of record
_EXTRA_BYTES = _LOG_BODY - _EXTRA_HEAD  # 31 JSON bytes per extra record
_TYPE_KEY = "_t"  # in the extra JSON of a type outside the table: its full name


def _as_value(value, word):
    """The i32 a field is stored as, or NO_VALUE when it cannot be kept exactly."""
    if word:
        if type(value) is not str:
            return NO_VALUE
        for i in range(len(WORDS)):
            if WORDS[i] == value:
                return i
        return NO_VALUE
    if type(value) is not int or value > _I32_MAX or value <= NO_VALUE:
        return NO_VALUE
    return value


def _json(obj):
    try:
        return json.dumps(obj, separators=(",", ":"))
    except TypeError:  # a MicroPython without the separators argument
        return json.dumps(obj)


def encode_event(seq, t_ms, wall_s, etype, fields):
    """The log records for an event: ``LOG_RECORD_SIZE`` bytes, or a multiple of it when
    fields follow in extra records.

    Known types keep the fields of their row in EVENT_TABLE in the first record; an
    unknown type is stored with GENERIC_CODE and the first 6 bytes of its name. Fields
    the first record cannot hold exactly go, as JSON, into the extra records.
    """
    values = [NO_VALUE] * LOG_VALUES
    extra = {}
    entry = _BY_TYPE.get(etype)
    if entry is not None:
        code = entry[0]
        name = b""
        names = entry[2]
        count = len(names)
        for key in fields:
            slot = -1
            for i in range(count):
                if names[i] == key or (names[i][0] == "$" and names[i][1:] == key):
                    slot = i
            value = NO_VALUE
            if slot >= 0:
                value = _as_value(fields[key], names[slot][0] == "$")
            if value == NO_VALUE:
                extra[key] = fields[key]
            else:
                values[slot] = value
    else:
        code = GENERIC_CODE
        name = etype.encode()[:6]
        count = 0
        extra = dict(fields)
        extra[_TYPE_KEY] = etype
    body = struct.pack(
        LOG_FORMAT,
        seq & 0xFFFFFFFF,
        t_ms & 0xFFFFFFFF,
        (wall_s or 0) & 0xFFFFFFFF,
        code,
        count,
        name,
        values[0],
        values[1],
        values[2],
        values[3],
        values[4],
        values[5],
    )
    out = body + struct.pack("<I", crc32(body))
    if not extra:
        return out
    text = _json(extra).encode()
    for start in range(0, len(text), _EXTRA_BYTES):
        chunk = text[start : start + _EXTRA_BYTES]
        body = struct.pack(
            _EXTRA_FORMAT, seq & 0xFFFFFFFF, t_ms & 0xFFFFFFFF, (wall_s or 0) & 0xFFFFFFFF,
            EXTRA_CODE,
        ) + chunk
        body += bytes(_LOG_BODY - len(body))
        out += body + struct.pack("<I", crc32(body))
    return out


def records_in(etype, fields):
    """How many log records an event takes (1 plus its extra records)."""
    return len(encode_event(0, 0, 0, etype, fields)) // LOG_RECORD_SIZE


def decode_event(data, offset=0):
    """Read one log record: (seq, t_ms, wall_s or None, etype, fields); raise CorruptRecord.

    An extra record reads as (seq, None, None, EXTRA_CODE, its JSON bytes): ``merge``
    folds it into its event."""
    if len(data) - offset < LOG_RECORD_SIZE:
        raise CorruptRecord("torn record")
    body = data[offset : offset + _LOG_BODY]
    (stored,) = struct.unpack_from("<I", data, offset + _LOG_BODY)
    if crc32(body) != stored:
        raise CorruptRecord("CRC mismatch")
    if body[_EXTRA_CODE_AT] == EXTRA_CODE:
        seq = struct.unpack_from("<I", body, 0)[0]
        return seq, None, None, EXTRA_CODE, bytes(body[_EXTRA_HEAD:]).rstrip(b"\0")
    unpacked = struct.unpack(LOG_FORMAT, body)
    seq, t_ms, wall_s, code, count, name = unpacked[:6]
    values = unpacked[6:]
    fields = {}
    entry = _BY_CODE.get(code)
    if entry is None:
        if code != GENERIC_CODE or count > LOG_VALUES:
            raise CorruptRecord("unknown type code %d" % code)
        etype = name.rstrip(b"\0").decode()
        for i in range(count):
            fields["v%d" % i] = values[i]
    else:
        etype = entry[1]
        names = entry[2]
        for i in range(len(names)):
            value = values[i]
            if value == NO_VALUE:
                continue
            key = names[i]
            if key[0] == "$":
                fields[key[1:]] = WORDS[value] if 0 <= value < len(WORDS) else "?"
            else:
                fields[key] = value
    return seq, t_ms, wall_s if wall_s else None, etype, fields


def merge(event, chunks):
    """``event`` with the fields its extra records hold (``chunks``: their JSON bytes, in
    order). Damaged JSON keeps the event as the first record has it."""
    if not chunks:
        return event
    try:
        extra = json.loads(b"".join(chunks))
    except ValueError:
        return event
    fields = event[4]
    etype = event[3]
    for key in extra:
        if key == _TYPE_KEY and event[3] and extra[key][:6] == event[3]:
            etype = extra[key]
        elif key != _TYPE_KEY:
            fields[key] = extra[key]
    if etype != event[3]:
        for key in list(fields):
            if key[0] == "v" and key[1:].isdigit():
                del fields[key]
    return (event[0], event[1], event[2], etype, fields)
