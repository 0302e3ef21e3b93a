"""The serial protocol: checked frames, valid arguments only, replays refused, never a crash."""

from pump.core import protocol as p


def _frame(body):
    # Built by hand here, not with the codec, so the tests check the documented format.
    data = body.encode() + b" "
    return data + b"*" + ("%08x" % p.crc32_pure(data)).encode() + b"\n"


def _one(decoder, data):
    items = decoder.feed(data)
    assert len(items) == 1, items
    return items[0]


def _error_code(body, last_seq=0):
    decoder = p.Decoder()
    decoder.last_seq = last_seq
    item = _one(decoder, _frame(body))
    assert item.is_error, item
    return item.code


def test_crc32_matches_the_ieee_check_value():
    # The CRC-32 check value: crc32(b"123456789") == 0xCBF43926 for every implementation.
    assert p.crc32_pure(b"123456789") == 0xCBF43926
    assert p.crc32(b"123456789") == 0xCBF43926
    assert p.crc32_pure(b"") == 0
    assert p.crc32(b"1 status ") == p.crc32_pure(b"1 status ")


def test_request_frame_is_plain_text_with_the_crc_of_what_precedes_it():
    line = p.encode_request(7, "bolus", 2500)
    assert line == _frame("7 bolus 2500")
    assert line[:14] == b"7 bolus 2500 *"
    assert line[-1:] == b"\n" and len(line) == 14 + 8 + 1


def test_read_only_commands_parse_without_confirmation():
    d = p.Decoder()
    for seq, body in enumerate(("status", "settings", "version", "hash"), 1):
        req = _one(d, _frame("%d %s" % (seq, body)))
        assert not req.is_error and req.command == body and req.args == ()
        assert req.therapy is False
    req = _one(d, _frame("5 history"))
    assert req.args == (0, p.HISTORY_DEFAULT_COUNT)
    req = _one(d, _frame("6 history 120 50"))
    assert req.args == (120, 50) and not req.therapy
    req = _one(d, _frame("7 confirm_status 3"))
    assert req.args == (3,) and not req.therapy


def test_therapy_commands_parse_into_integers_and_are_marked_therapy():
    d = p.Decoder()
    req = _one(d, _frame("1 bolus 2500"))
    assert (req.command, req.args, req.therapy) == ("bolus", (2500,), True)
    req = _one(d, _frame("2 temp percent 150 120"))
    assert req.args == ("percent", 150, 120) and req.therapy
    req = _one(d, _frame("3 temp rate 1250 30"))
    assert req.args == ("rate", 1250, 30)
    req = _one(d, _frame("4 time_set 2026-02-28T23:59:07"))
    assert req.args == (2026, 2, 28, 23, 59, 7) and req.therapy
    req = _one(d, _frame('5 settings_put max_bolus=8000 speed=1500 name1="Sport day" '
                         "basal1=00:00/600,06:30/1000"))
    assert req.therapy
    assert req.args == {
        "max_bolus": 8000,
        "speed": 1500,
        "name1": "Sport day",
        "basal1": ((0, 600), (13, 1000)),
    }


def test_out_of_range_arguments_are_refused_with_a_reason():
    cases = (
        ("1 bolus 0", "bolus must be from 0.001 U to 25.00 U, got 0.00 U"),
        ("1 bolus 25001", "bolus must be from 0.001 U to 25.00 U, got 25.001 U"),
        ("1 bolus 2.5", "whole number"),
        ("1 bolus -100", "whole number"),
        ("1 bolus 1_000", "whole number"),
        ("1 bolus", "usage: bolus <mU>"),
        ("1 temp percent 251 60", "temp percent must be from 0 to 250"),
        ("1 temp rate 100 45", "multiple of 30"),
        ("1 temp rate 100 1470", "temp minutes must be from 30 to 1440"),
        ("1 temp fast 100 60", "usage: temp"),
        ("1 time_set 2026-02-29T10:00:00", "day must be from 1 to 28"),
        ("1 time_set 2026-13-01T10:00:00", "month"),
        ("1 time_set 10:00", "time_set: usage: YYYY-MM-DDTHH:MM:SS"),
        ("1 history 0 51", "count must be from 1 to 50"),
        ("1 status now", "takes no arguments"),
        ("1 settings_put", "usage: settings_put"),
        ("1 settings_put increment=30",
         "increment must be 0.01, 0.025, 0.05 or 0.10 U, got 0.03 U"),
        ("1 settings_put max_bolus=100 max_bolus=200", "given twice"),
        ("1 settings_put volume=3", "unknown setting"),
        ("1 settings_put basal0=06:00/800", "starts at 00:00"),
        ("1 settings_put basal0=00:00/800,00:00/900", "not after"),
        ("1 settings_put basal0=00:00/800,06:15/900", "half-hour"),
        ("1 settings_put basal0=00:00/16000",
         "basal rate at 00:00 must be from 0.00 U/h to 15.00 U/h, got 16.00 U/h"),
    )
    for body, reason in cases:
        item = _one(p.Decoder(), _frame(body))
        assert item.is_error and item.code == p.E_BAD_ARGS, (body, item)
        assert reason in item.message, (body, item.message)
        assert item.seq == 1  # intact frame: the answer names the request


def test_unknown_command_and_bad_sequence_numbers():
    assert _error_code("1 prime 200") == p.E_UNKNOWN
    assert _error_code("0 status") == p.E_BAD_SEQ
    assert _error_code("x status") == p.E_BAD_SEQ
    assert _error_code("1000000000 status") == p.E_BAD_SEQ
    assert _error_code("1") == p.E_BAD_ARGS
    assert _error_code('1 settings_put name0="open') == p.E_BAD_ARGS


def test_wrong_or_missing_checksum_is_refused_and_not_attributed():
    good = _frame("4 bolus 2500")
    flipped = good[:8] + b"6" + good[9:]  # 2500 -> 2600, CRC left as it was
    item = _one(p.Decoder(), flipped)
    assert item.is_error and item.code == p.E_BAD_CRC and item.seq == 0
    assert _one(p.Decoder(), b"4 bolus 2500\n").code == p.E_NO_CRC
    assert _one(p.Decoder(), b"4 bolus 2500 *12345g78\n").code == p.E_NO_CRC
    upper = good[:-9] + good[-9:-1].upper() + b"\n"
    assert upper != good  # this frame's CRC has letters
    # Lowercase only, so that every single-bit error is caught.
    assert _one(p.Decoder(), upper).code == p.E_NO_CRC


def test_sequence_must_increase_within_a_session():
    d = p.Decoder()
    assert not _one(d, _frame("5 bolus 1000")).is_error
    replay = _one(d, _frame("5 bolus 1000"))
    assert replay.code == p.E_REPLAY and replay.seq == 5
    assert _one(d, _frame("3 status")).code == p.E_REPLAY
    assert not _one(d, _frame("9 status")).is_error  # gaps are fine
    assert d.last_seq == 9
    # A refused but intact frame uses up its number too.
    assert _one(d, _frame("10 bolus 0")).code == p.E_BAD_ARGS
    assert _one(d, _frame("10 bolus 100")).code == p.E_REPLAY
    d.new_session()
    assert not _one(d, _frame("1 status")).is_error


def test_hello_opens_a_session_with_any_seq_and_numbering_goes_on_from_it():
    d = p.Decoder()
    assert not _one(d, _frame("40 status")).is_error
    hello = _one(d, _frame("1 hello"))
    assert not hello.is_error and hello.command == p.HELLO and not hello.therapy
    assert d.last_seq == 1
    assert not _one(d, _frame("2 bolus 1000")).is_error
    assert _one(d, _frame("2 bolus 1000")).code == p.E_REPLAY  # within it, the rule holds
    assert _one(d, _frame("3 hello now")).code == p.E_BAD_ARGS


def test_bytes_arrive_in_pieces_and_lines_may_end_in_crlf():
    d = p.Decoder()
    data = _frame("1 status") + _frame("2 bolus 500")[:-1] + b"\r\n" + _frame("3 version")
    items = []
    for i in range(len(data)):
        items.extend(d.feed(data[i : i + 1]))
    assert [it.command for it in items] == ["status", "bolus", "version"]
    assert d.buffered() == 0
    assert d.feed(b"\n\r\n  \n") == []  # blank lines are ignored


def test_overlong_line_is_discarded_to_its_newline_and_answered_once():
    d = p.Decoder()
    items = []
    for _ in range(10):  # 1000 bytes without a newline, in pieces
        items.extend(d.feed(b"9" * 100))
        assert d.buffered() < p.MAX_REQUEST_LINE
    items.extend(d.feed(b"bolus 100 *00000000\n" + _frame("1 status")))
    assert [it.code for it in items if it.is_error] == [p.E_TOO_LONG]
    assert [it.command for it in items if not it.is_error] == ["status"]
    longest = _frame("1 history 0 %s" % ("0" * (p.MAX_REQUEST_LINE - 23)))
    assert len(longest) == p.MAX_REQUEST_LINE
    assert _one(p.Decoder(), longest).code == p.E_BAD_ARGS  # read whole; 0-padded too long
    assert _one(p.Decoder(), longest[:-1] + b"\r\n").code == p.E_TOO_LONG


def test_non_ascii_and_odd_input_never_raise():
    d = p.Decoder()
    assert _one(d, b"1 bolus \xff100 *00000000\n").code == p.E_NOT_ASCII
    assert _one(d, b"1 bolus\t100 *00000000\n").code == p.E_NOT_ASCII
    assert _one(d, None).code == p.E_INTERNAL
    assert _one(d, 12).is_error
    assert not _one(d, _frame("1 status").decode()).is_error  # a str is taken as ASCII


def test_response_round_trip_with_quoted_text():
    line = p.encode_response(12, p.ERR, (("code", "bad_args"), ("msg", 'bolus "x" * 2\\')))
    assert line.startswith(b'12 err code=bad_args msg="bolus \\"x\\" * 2\\\\" *')
    (resp,) = p.ResponseDecoder().feed(line)
    assert resp.seq == 12 and resp.status == p.ERR
    assert resp.fields == {"code": "bad_args", "msg": 'bolus "x" * 2\\'}
    line = p.encode_response(3, p.OK, {"reservoir_mu": 150000, "suspended": False, "alarm": None})
    assert line.startswith(b"3 ok alarm=- reservoir_mu=150000 suspended=0 *")
    (resp,) = p.ResponseDecoder().feed(line)
    assert resp.fields["reservoir_mu"] == "150000"


def test_frame_error_answers_in_the_protocol_itself():
    err = _one(p.Decoder(), b"1 status *00000000\n")
    (resp,) = p.ResponseDecoder().feed(err.response())
    assert resp.seq == 0 and resp.status == p.ERR and resp.fields["code"] == p.E_BAD_CRC


def test_damaged_response_is_reported_not_trusted():
    line = p.encode_response(3, p.PENDING, (("id", 4),))
    bad = line.replace(b"id=4", b"id=5")
    (item,) = p.ResponseDecoder().feed(bad)
    assert item.is_error and item.code == p.E_BAD_CRC
