"""Byte formats of what the pump keeps on flash: checked text records and binary log records.

Pure code, shared by the storage layer and the host tools. Two formats:

* a *text record* (settings, therapy checkpoint): one header line
  ``<magic> <version> <payload length> <crc32 as 8 lowercase hex digits>\\n`` then a
  compact JSON payload. The CRC covers the header fields and the payload, and the
  header must read back exactly as it was written, so a flipped bit anywhere, a
  truncation, an empty file or a foreign file is refused with the reason.
* a *log record*: ``LOG_RECORD_SIZE`` bytes packed with struct, one per event, each
  with its own CRC32 (see ``encode_event``).
"""

import json

from pump.core.calc_segments import CalculatorSettings
from pump.core.crc import CorruptRecord, crc32, crc32_bitwise  # noqa: F401  (re-exported)
from pump.core.errors import Refused
from pump.core.iob import check_curve
from pump.core.limits import (
    INCREMENT_CHOICES_MU,
    MAX_BASAL_MU_PER_H,
    MAX_BOLUS_MU,
    MAX_PROFILES,
    SPEED_QUICK_MU_MIN,
    SPEED_STANDARD_MU_MIN,
)
from pump.core.schedule import BasalProfile
from pump.core.therapy import Settings

# ----- text records ------------------------------------------------------------------------

_MAX_HEADER = 64  # a header line is about 30 bytes; anything longer is not ours


def _header(magic, version, length):
    return "%s %d %d" % (magic, version, length)


def encode_record(magic, version, payload):
    """Header line + ``payload`` (bytes) as one checked text record."""
    head = _header(magic, version, len(payload))
    crc = crc32(payload, crc32(head.encode()))
    return ("%s %08x\n" % (head, crc)).encode() + payload


def decode_record(data, magic, max_version):
    """Check a text record; return (version, payload bytes) or raise CorruptRecord."""
    if not data:
        raise CorruptRecord("empty file")
    end = data.find(b"\n", 0, _MAX_HEADER)
    if end < 0:
        raise CorruptRecord("no header line")
    try:
        line = data[:end].decode()
        parts = line.split(" ")
        found_magic = parts[0]
        version = int(parts[1])
        length = int(parts[2])
        stored_crc = parts[3]
        exact = len(parts) == 4 and line == "%s %08x" % (
            _header(found_magic, version, length),
            int(stored_crc, 16),
        )
    except (ValueError, IndexError, UnicodeError):
        exact = False
    if not exact:
        raise CorruptRecord("damaged header")
    if found_magic != magic:
        raise CorruptRecord("not a %s record (%s)" % (magic, found_magic[:12]))
    if version < 1 or version > max_version:
        raise CorruptRecord("version %d, this firmware reads 1 to %d" % (version, max_version))
    payload = data[end + 1 :]
    if len(payload) < length:
        raise CorruptRecord("truncated: %d of %d payload bytes" % (len(payload), length))
    if len(payload) > length:
        raise CorruptRecord("%d bytes after the payload" % (len(payload) - length))
    crc = crc32(payload, crc32(_header(magic, version, length).encode()))
    if "%08x" % crc != stored_crc:
        raise CorruptRecord("CRC mismatch")
    return version, payload


def _compact_json(obj):
    try:
        return json.dumps(obj, separators=(",", ":"))
    except TypeError:  # a MicroPython without the separators argument
        return json.dumps(obj)


def encode_json_record(magic, version, obj):
    return encode_record(magic, version, _compact_json(obj).encode())


def decode_json_record(data, magic, max_version):
    """Check a text record holding a JSON object; return (version, dict)."""
    version, payload = decode_record(data, magic, max_version)
    try:
        obj = json.loads(payload)
    except ValueError:
        raise CorruptRecord("payload is not JSON")
    if type(obj) is not dict:
        raise CorruptRecord("payload is not an object")
    return version, obj


# ----- settings: a versioned record of named sections ----------------------------------------

SETTINGS_MAGIC = "PUMPSET"
SETTINGS_VERSION = 1


class SettingsFormat:
    """Settings as named sections, each with its own encoder and decoder.

    ``add_section(name, encode, decode)``: ``encode(obj)`` returns a dict of JSON
    values; ``decode(dict, unknown)`` returns the object, appends the names of keys
    it does not know to ``unknown`` and raises CorruptRecord (or Refused) for a bad
    value. A section without a decoder (written by newer firmware) is kept as its
    raw dict, reported in ``unknown`` and written back unchanged on the next save.
    """

    def __init__(self, version=SETTINGS_VERSION, magic=SETTINGS_MAGIC):
        self.version = version
        self.magic = magic
        self._sections = {}

    def add_section(self, name, encode, decode):
        self._sections[name] = (encode, decode)

    def encode(self, values):
        """``values``: section name -> object (or raw dict for a section we do not know)."""
        out = {}
        for name in values:
            codec = self._sections.get(name)
            obj = values[name]
            out[name] = obj if codec is None else codec[0](obj)
        return encode_json_record(self.magic, self.version, out)

    def decode(self, data):
        """Return (values, unknown) or raise CorruptRecord with the reason."""
        _, obj = decode_json_record(data, self.magic, self.version)
        values = {}
        unknown = []
        for name in obj:
            codec = self._sections.get(name)
            if codec is None:
                values[name] = obj[name]
                unknown.append(name)
                continue
            inner = []  # type: list[str]
            try:
                values[name] = codec[1](obj[name], inner)
            except (Refused, KeyError, TypeError, ValueError, IndexError) as err:
                raise CorruptRecord("section %s: %s" % (name, err))
            for key in inner:
                unknown.append(name + "." + key)
        return values, unknown


# Safety settings kept in Settings and checked by the modules that use them: stored
# as non-negative integers; the owning module validates its own range when applied.
_SAFETY_KEYS = ("max_hour_mu", "max_day_mu", "low_reservoir_mu", "auto_off_h")
# The bolus calculator and insulin action; absent in a file from before they existed.
_CALCULATOR_KEYS = ("calculator", "bg_mmol", "insulin", "dia_ms")
_THERAPY_KEYS = (
    "max_bolus_mu",
    "max_basal_mu_per_h",
    "increment_mu",
    "bolus_speed_mu_per_min",
    "profiles",
    "active_profile",
) + _SAFETY_KEYS + _CALCULATOR_KEYS


def encode_therapy(settings):
    """Therapy ``Settings`` as a dict of JSON values."""
    out = {
        "max_bolus_mu": settings.max_bolus_mu,
        "max_basal_mu_per_h": settings.max_basal_mu_per_h,
        "increment_mu": settings.increment_mu,
        "bolus_speed_mu_per_min": settings.bolus_speed_mu_per_min,
        "profiles": [[p.name, [list(seg) for seg in p.segments]] for p in settings.profiles],
        "active_profile": settings.active_profile,
    }
    for key in _SAFETY_KEYS:
        if hasattr(settings, key):
            out[key] = getattr(settings, key)
    calc = settings.calculator
    out["calculator"] = None if calc is None else {
        "icr": [list(seg) for seg in calc.icr],
        "isf": [list(seg) for seg in calc.isf],
        "targets": [list(seg) for seg in calc.targets],
    }
    out["bg_mmol"] = settings.bg_mmol
    out["insulin"] = settings.insulin
    out["dia_ms"] = settings.dia_ms
    return out


def _decode_calculator(d, s):
    """The calculator and insulin action, checked as their commands check them."""
    calc = d.get("calculator")
    if calc is not None:
        try:
            s.calculator = CalculatorSettings(
                [tuple(seg) for seg in calc["icr"]],
                [tuple(seg) for seg in calc["isf"]],
                [tuple(seg) for seg in calc["targets"]],
            )
        except (Refused, KeyError, TypeError, ValueError) as err:
            raise CorruptRecord("calculator: %s" % err)
    if "bg_mmol" in d:
        if d["bg_mmol"] is not True and d["bg_mmol"] is not False:
            raise CorruptRecord("bg_mmol not a boolean")
        s.bg_mmol = d["bg_mmol"]
    if "insulin" in d or "dia_ms" in d:
        insulin = d.get("insulin", s.insulin)
        dia_ms = d.get("dia_ms", s.dia_ms)
        try:
            check_curve(insulin, dia_ms)
        except (Refused, KeyError, TypeError) as err:
            raise CorruptRecord("insulin action: %s" % err)
        s.insulin = insulin
        s.dia_ms = dia_ms


def _int_in(d, key, low, high):
    value = d[key]
    if type(value) is not int or not (low <= value <= high):
        raise CorruptRecord("%s out of range" % key)
    return value


def decode_therapy(d, unknown):
    """Rebuild therapy ``Settings``, checking each value as the therapy commands do."""
    s = Settings()
    s.max_bolus_mu = _int_in(d, "max_bolus_mu", 1, MAX_BOLUS_MU)
    s.max_basal_mu_per_h = _int_in(d, "max_basal_mu_per_h", 1, MAX_BASAL_MU_PER_H)
    s.increment_mu = _int_in(d, "increment_mu", 1, 1000)
    if s.increment_mu not in INCREMENT_CHOICES_MU:
        raise CorruptRecord("increment_mu not a choice")
    s.bolus_speed_mu_per_min = _int_in(
        d, "bolus_speed_mu_per_min", SPEED_STANDARD_MU_MIN, SPEED_QUICK_MU_MIN
    )
    stored = d["profiles"]
    if type(stored) is not list or not (1 <= len(stored) <= MAX_PROFILES):
        raise CorruptRecord("profiles: 1 to %d expected" % MAX_PROFILES)
    profiles = []
    for name, segments in stored:
        profiles.append(
            BasalProfile(name, [(start, rate) for start, rate in segments], s.max_basal_mu_per_h)
        )
    s.profiles = profiles
    s.active_profile = _int_in(d, "active_profile", 0, len(profiles) - 1)
    for key in _SAFETY_KEYS:
        if key in d:  # absent in a file from before the key existed: the factory value
            setattr(s, key, _int_in(d, key, 0, 0x3FFFFFFF))
    _decode_calculator(d, s)
    for key in d:
        if key not in _THERAPY_KEYS:
            unknown.append(key)
    return s


def settings_format():
    """The settings format with the sections this firmware knows (others add theirs)."""
    fmt = SettingsFormat()
    fmt.add_section("therapy", encode_therapy, decode_therapy)
    return fmt


