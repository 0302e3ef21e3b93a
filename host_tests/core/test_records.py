"""Stored records are checked: any damage is refused with a reason, good ones read back whole."""

from support import raises

from pump.core import logformat, records
from pump.core.calculator import CalculatorSettings
from pump.core.iob import ULTRA_RAPID
from pump.core.logformat import (
    EXTRA_CODE,
    LOG_RECORD_SIZE,
    NO_VALUE,
    decode_event,
    encode_event,
    merge,
)
from pump.core.records import (
    CorruptRecord,
    decode_record,
    encode_record,
    settings_format,
)
from pump.core.schedule import BasalProfile
from pump.core.therapy import Settings


def _settings():
    s = Settings()
    s.max_bolus_mu = 8_000
    s.increment_mu = 25
    s.profiles.append(BasalProfile("Sport", [(0, 500), (14, 650), (40, 300)], 3_000))
    s.active_profile = 1
    s.max_hour_mu = 9_000
    s.auto_off_h = 0
    return s


def test_crc32_is_the_standard_crc32_both_ways():
    assert records.crc32(b"123456789") == 0xCBF43926
    assert records.crc32_bitwise(b"123456789") == 0xCBF43926
    data = bytes(range(256))
    assert records.crc32_bitwise(data[100:], records.crc32_bitwise(data[:100])) == (
        records.crc32(data)
    )


def test_settings_round_trip_keeps_every_therapy_setting():
    fmt = settings_format()
    values, unknown = fmt.decode(fmt.encode({"therapy": _settings()}))
    s = values["therapy"]
    assert unknown == []
    assert (s.max_bolus_mu, s.max_basal_mu_per_h, s.increment_mu) == (8_000, 3_000, 25)
    assert s.bolus_speed_mu_per_min == 1_500
    assert [p.name for p in s.profiles] == ["Standard", "Sport"]
    assert s.profiles[1].segments == [(0, 500), (14, 650), (40, 300)]
    assert s.active_profile == 1
    assert (s.max_hour_mu, s.auto_off_h) == (9_000, 0)
    assert s.max_day_mu == Settings().max_day_mu


def test_every_flipped_bit_of_a_settings_header_is_refused():
    # The whole file, every bit, is in test_storage.py (CPython): 1600 decodes are
    # more garbage than the host MicroPython's heap takes without a collection.
    fmt = settings_format()
    data = fmt.encode({"therapy": Settings()})
    header = data.find(b"\n") + 1
    buf = bytearray(data)
    for i in list(range(header)) + [header + 7, len(data) // 2, len(data) - 1]:
        for bit in range(8):
            buf[i] ^= 1 << bit
            raises(CorruptRecord, fmt.decode, bytes(buf))
            buf[i] ^= 1 << bit


def test_settings_truncated_at_every_length_are_refused():
    fmt = settings_format()
    data = fmt.encode({"therapy": Settings()})
    for n in range(len(data)):
        err = raises(CorruptRecord, fmt.decode, data[:n])
        assert str(err)
    assert "empty" in str(raises(CorruptRecord, fmt.decode, b""))
    assert "truncated" in str(raises(CorruptRecord, fmt.decode, data[:-1]))


def test_wrong_version_or_magic_is_refused_with_the_reason():
    payload = b'{"therapy": {}}'
    newer = encode_record(records.SETTINGS_MAGIC, records.SETTINGS_VERSION + 1, payload)
    assert "version 2" in str(raises(CorruptRecord, settings_format().decode, newer))
    other = encode_record("PUMPCKP", 1, payload)
    assert "not a PUMPSET" in str(raises(CorruptRecord, settings_format().decode, other))
    assert "after the payload" in str(
        raises(CorruptRecord, decode_record, encode_record("X", 1, b"{}") + b"\n", "X", 1)
    )


def test_a_value_out_of_range_is_refused_even_with_a_good_crc():
    fmt = settings_format()
    fields = records.encode_therapy(Settings())
    fields["max_bolus_mu"] = 99_000_000
    data = records.encode_json_record(records.SETTINGS_MAGIC, 1, {"therapy": fields})
    assert "max_bolus_mu" in str(raises(CorruptRecord, fmt.decode, data))
    fields = records.encode_therapy(Settings())
    fields["profiles"] = [["Bad", [[0, 90_000]]]]
    data = records.encode_json_record(records.SETTINGS_MAGIC, 1, {"therapy": fields})
    assert "therapy" in str(raises(CorruptRecord, fmt.decode, data))


def test_settings_round_trip_keeps_the_calculator_bg_unit_and_insulin_action():
    s = _settings()
    s.calculator = CalculatorSettings(
        [(0, 100), (22, 120)], [(0, 50), (44, 40)], [(0, 100, 120), (14, 90, 110)]
    )
    s.bg_mmol = True
    s.insulin = ULTRA_RAPID
    s.dia_ms = 5 * 3_600_000
    fmt = settings_format()
    values, unknown = fmt.decode(fmt.encode({"therapy": s}))
    back = values["therapy"]
    assert unknown == []
    assert back.calculator.icr == [(0, 100), (22, 120)]
    assert back.calculator.isf == [(0, 50), (44, 40)]
    assert back.calculator.targets == [(0, 100, 120), (14, 90, 110)]
    assert (back.bg_mmol, back.insulin, back.dia_ms) == (True, ULTRA_RAPID, 5 * 3_600_000)


def test_a_calculator_or_insulin_action_out_of_range_is_refused_even_with_a_good_crc():
    fmt = settings_format()
    for key, value, reason in (
        ("calculator", {"icr": [[0, 0]], "isf": [[0, 50]], "targets": [[0, 100, 120]]}, "ICR"),
        ("calculator", {"icr": [[0, 100]]}, "calculator"),
        ("calculator", 7, "calculator"),
        ("bg_mmol", 1, "bg_mmol"),
        ("insulin", "regular", "insulin type"),
        ("dia_ms", 4 * 3_600_000, "at least 5 h"),
    ):
        d = records.encode_therapy(Settings())
        d[key] = value
        data = records.encode_json_record(records.SETTINGS_MAGIC, 1, {"therapy": d})
        assert reason in str(raises(CorruptRecord, fmt.decode, data))


def test_unknown_keys_from_newer_firmware_are_reported_and_kept():
    fields = records.encode_therapy(Settings())
    fields["night_mode"] = 1
    data = records.encode_json_record(
        records.SETTINGS_MAGIC, 1, {"therapy": fields, "calculator": {"isf": 50}}
    )
    fmt = settings_format()
    values, unknown = fmt.decode(data)
    assert sorted(unknown) == ["calculator", "therapy.night_mode"]
    assert values["calculator"] == {"isf": 50}
    # Saved again, the section this firmware does not know goes back unchanged.
    again, _ = fmt.decode(fmt.encode(values))
    assert again["calculator"] == {"isf": 50}


def test_other_modules_add_their_own_sections():
    fmt = settings_format()

    def decode_prefs(d, unknown):
        return {"beep": d["beep"] is True}

    fmt.add_section("prefs", lambda p: {"beep": p["beep"]}, decode_prefs)
    values, unknown = fmt.decode(fmt.encode({"therapy": Settings(), "prefs": {"beep": True}}))
    assert values["prefs"] == {"beep": True}
    assert unknown == []


def test_log_records_round_trip_for_every_event_type():
    for code, etype, names in logformat.EVENT_TABLE:
        fields = {}
        for i in range(len(names)):
            key = names[i]
            if key[0] == "$":
                fields[key[1:]] = logformat.WORDS[i]
            else:
                fields[key] = 1000 * i - 7
        data = encode_event(70_000 + code, 123_456, 789_000_000, etype, fields)
        assert len(data) == LOG_RECORD_SIZE
        assert decode_event(data) == (70_000 + code, 123_456, 789_000_000, etype, fields)


def read_back(data):
    """Decode an event's records and fold its extra records in, as the log reader does."""
    first = decode_event(data)
    chunks = []
    for offset in range(LOG_RECORD_SIZE, len(data), LOG_RECORD_SIZE):
        extra = decode_event(data, offset)
        assert extra[0] == first[0] and extra[3] == EXTRA_CODE
        chunks.append(extra[4])
    return merge(first, chunks)


def test_log_record_of_an_unknown_type_keeps_its_name_and_every_field():
    fields = {"b": 7, "a": -3, "note": "text", "flag": True, "none": None}
    data = encode_event(5, 10, 0, "occlusion_alarm", fields)
    assert len(data) > LOG_RECORD_SIZE and len(data) % LOG_RECORD_SIZE == 0
    assert read_back(data) == (5, 10, None, "occlusion_alarm", fields)


def test_log_record_text_outside_the_word_list_and_huge_numbers_are_kept():
    fields = {"bolus": "mystery", "steps": 2**40, "reason": "a reason of many words " * 3}
    data = encode_event(1, 0, 0, "bolus_cancelled", fields)
    assert decode_event(data)[4] == {}  # the first record alone holds none of them
    assert read_back(data)[4] == fields
    assert NO_VALUE == -(2**31)


def test_an_event_whose_fields_fit_takes_one_record():
    data = encode_event(3, 0, 0, "suspended", {"basal_steps_not_given": 3})
    assert len(data) == LOG_RECORD_SIZE


def test_damaged_log_records_are_refused():
    data = bytearray(encode_event(9, 1, 2, "suspended", {"basal_steps_not_given": 3}))
    for i in range(len(data)):
        data[i] ^= 0x10
        raises(CorruptRecord, decode_event, bytes(data))
        data[i] ^= 0x10
    assert "torn" in str(raises(CorruptRecord, decode_event, bytes(data[:-1])))
