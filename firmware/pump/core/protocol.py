"""The USB-serial protocol: checked one-line frames, command parsing, and the replay rule.

A frame is one line of printable ASCII (format in docs/protocol.md):

    <seq> <command> [<arg> ...] *<crc32>\\n        request (host -> pump)
    <seq> <status> [<key>=<value> ...] *<crc32>\\n  response (pump -> host)

The CRC32 (IEEE 802.3, as zlib and binascii compute it) covers every byte before
the ``*``, the space in front of it included, written as 8 lowercase hex digits.
This module only frames, checks and parses; it never acts on a command. The same
module serves the host (``encode_request``, ``ResponseDecoder``).
"""

MAX_REQUEST_LINE = 256  # bytes, newline included; longer lines are refused whole
MAX_RESPONSE_LINE = 1024
MAX_SEQ = 999_999_999  # nine digits: stays a small int on the RP2040
_CRC_LEN = 9  # "*" and 8 hex digits

# The command that opens a session: any seq is taken, and numbering goes on from it.
HELLO = "hello"

# Response statuses.
OK = "ok"  # done; the fields carry the answer
MORE = "more"  # one line of a listing; the last line of it is "ok"
PENDING = "pending"  # held until the person confirms it on the pump; fields give id=
ERR = "err"  # refused; fields give code= and msg=
STATUSES = (OK, MORE, PENDING, ERR)

# Error codes (field code= of an "err" response).
E_TOO_LONG = "too_long"
E_NOT_ASCII = "not_ascii"
E_NO_CRC = "no_crc"
E_BAD_CRC = "bad_crc"
E_BAD_SEQ = "bad_seq"
E_REPLAY = "replay"
E_UNKNOWN = "unknown_command"
E_BAD_ARGS = "bad_args"
E_INTERNAL = "internal"
# Refusals of the App's link (pump/link.py), after the frame itself was accepted.
E_BUSY = "busy"  # another change already waits for confirmation on the pump
E_CANNOT_CONFIRM = "cannot_confirm"  # no screen to confirm on: the change is not held
E_UNKNOWN_ID = "unknown_id"  # confirm_status for an id the pump does not know (any more)

# Limits of the therapy-changing arguments. They are the protocol's hard ceilings
# (the pump's own settings and safety checks then apply on top of them).
MAX_BOLUS_MU = 25_000
MAX_BASAL_MU_PER_H = 15_000
MAX_TEMP_PERCENT = 250
TEMP_MIN_MINUTES = 30
TEMP_MAX_MINUTES = 1440
HISTORY_MAX_COUNT = 50
HISTORY_DEFAULT_COUNT = 20
INCREMENT_CHOICES_MU = (10, 25, 50, 100)
MAX_PROFILES = 4
MAX_SEGMENTS = 48
TEMP_KINDS = ("percent", "rate")


# ----- CRC32 --------------------------------------------------------------------------------


def _make_crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = None


def crc32_pure(data, crc=0):
    """CRC32 (reflected, polynomial 0xEDB88320) in Python, for ports without binascii.crc32."""
    global _CRC_TABLE
    if _CRC_TABLE is None:
        _CRC_TABLE = _make_crc_table()
    table = _CRC_TABLE
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:
    import binascii

    _crc32_native = binascii.crc32
except (ImportError, AttributeError):  # a port built without it
    _crc32_native = None  # type: ignore[assignment]


def crc32(data):
    """CRC32 of ``data`` (bytes) as an unsigned integer."""
    if _crc32_native is not None:
        return _crc32_native(data) & 0xFFFFFFFF
    return crc32_pure(data)


def _hex8(value):
    return "%08x" % value


# ----- parsed frames ------------------------------------------------------------------------


class Request:
    """A checked request: ``seq``, ``command`` and its parsed ``args``.

    ``therapy`` is True for a command that changes therapy (the App holds it until the
    person confirms it on the pump). ``args`` is a tuple, or a dict for settings_put.
    """

    is_error = False

    def __init__(self, seq, command, args, therapy):
        self.seq = seq
        self.command = command
        self.args = args
        self.therapy = therapy

    def __repr__(self):
        return "Request(%d, %r, %r)" % (self.seq, self.command, self.args)


class Response:
    """A checked response (host side): ``seq``, ``status`` and ``fields`` (a dict of str)."""

    is_error = False

    def __init__(self, seq, status, fields):
        self.seq = seq
        self.status = status
        self.fields = fields

    def __repr__(self):
        return "Response(%d, %r, %r)" % (self.seq, self.status, self.fields)


class FrameError:
    """A line that was refused: ``code`` (E_*), a readable ``message``, and ``seq``.

    ``seq`` is the request's sequence number when the frame was intact (its CRC
    matched) and 0 when it was not, since a damaged frame's number cannot be trusted.
    """

    is_error = True

    def __init__(self, seq, code, message):
        self.seq = seq
        self.code = code
        self.message = message

    def response(self):
        """The error response line to send back (bytes)."""
        return encode_response(self.seq, ERR, (("code", self.code), ("msg", self.message)))

    def __repr__(self):
        return "FrameError(%d, %r, %r)" % (self.seq, self.code, self.message)


class ArgError(ValueError):
    """An argument that does not parse or is out of range; the message says which."""


# ----- tokens -------------------------------------------------------------------------------


def _is_printable(line):
    for byte in line:
        if byte < 0x20 or byte > 0x7E:
            return False
    return True


def split_tokens(text):
    """Split on spaces, as a shell would: a double-quoted part may hold spaces, and
    inside quotes a backslash escapes the next character (``msg="say \\"hi\\""``).

    Raises ArgError on an unterminated quote.
    """
    tokens = []
    current = []
    in_token = False
    in_quotes = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_quotes:
            if ch == "\\" and i + 1 < n:
                i += 1
                current.append(text[i])
            elif ch == '"':
                in_quotes = False
            else:
                current.append(ch)
        elif ch == " ":
            if in_token:
                tokens.append("".join(current))
                current = []
                in_token = False
        elif ch == '"':
            in_quotes = True
            in_token = True
        else:
            current.append(ch)
            in_token = True
        i += 1
    if in_quotes:
        raise ArgError("unterminated quoted string")
    if in_token:
        tokens.append("".join(current))
    return tokens


def _bare(text):
    """True if ``text`` can go on the wire without quotes."""
    if not text:
        return False
    for ch in text:
        if ch == " " or ch == '"' or ch == "\\" or ch == "*" or ord(ch) < 0x21 or ord(ch) > 0x7E:
            return False
    return True


def quote(text):
    """``text`` as one wire token: bare when safe, else quoted and escaped (ASCII only)."""
    if _bare(text):
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif code < 0x20 or code > 0x7E:
            out.append("?")  # frames are printable ASCII
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value_text(value):
    if value is True:
        return "1"
    if value is False:
        return "0"
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return quote(str(value))


# ----- framing --------------------------------------------------------------------------------


def frame(body):
    """Append the checksum to ``body`` (str, no newline): returns the full line as bytes."""
    data = (body + " ").encode()
    return data + b"*" + _hex8(crc32(data)).encode() + b"\n"


def _parse_decimal(text, what, low, high):
    if not text or len(text) > 9:
        raise ArgError("%s must be a whole number from %d to %d, got %r" % (what, low, high, text))
    for ch in text:
        if ch < "0" or ch > "9":
            raise ArgError(
                "%s must be a whole number from %d to %d, got %r" % (what, low, high, text)
            )
    value = int(text)
    if value < low or value > high:
        raise ArgError("%s must be from %d to %d, got %d" % (what, low, high, value))
    return value


def _hex_value(text):
    value = 0
    for ch in text:
        digit = "0123456789abcdef".find(ch)  # lowercase only: a case flip is an error too
        if digit < 0:
            return -1
        value = value * 16 + digit
    return value


def check_line(line):
    """Check one line (bytes, no newline): returns (body_text, None) or (None, (code, msg))."""
    if not _is_printable(line):
        return None, (E_NOT_ASCII, "a frame is printable ASCII only")
    n = len(line)
    if n < _CRC_LEN + 1 or line[n - _CRC_LEN] != 0x2A or line[n - _CRC_LEN - 1] != 0x20:
        return None, (E_NO_CRC, "a frame ends with ' *' and 8 hex digits of CRC32")
    stated = _hex_value(line[n - 8 :].decode())
    if stated < 0:
        return None, (E_NO_CRC, "the CRC32 is 8 lowercase hex digits")
    body = line[: n - _CRC_LEN]
    actual = crc32(body)
    if actual != stated:
        return None, (E_BAD_CRC, "CRC32 is %s, the frame says %s" % (_hex8(actual), _hex8(stated)))
    return body.decode(), None


# ----- request arguments --------------------------------------------------------------------


def _no_args(args):
    if args:
        raise ArgError("takes no arguments")
    return ()


def _history_args(args):
    if len(args) > 2:
        raise ArgError("usage: history [since_seq] [count]")
    since = _parse_decimal(args[0], "since_seq", 0, MAX_SEQ) if args else 0
    count = HISTORY_DEFAULT_COUNT
    if len(args) > 1:
        count = _parse_decimal(args[1], "count", 1, HISTORY_MAX_COUNT)
    return (since, count)


def _bolus_args(args):
    if len(args) != 1:
        raise ArgError("usage: bolus <mU>")
    return (_parse_decimal(args[0], "bolus mU", 1, MAX_BOLUS_MU),)


def _temp_args(args):
    if len(args) != 3 or args[0] not in TEMP_KINDS:
        raise ArgError("usage: temp percent|rate <value> <minutes>")
    kind = args[0]
    if kind == "percent":
        value = _parse_decimal(args[1], "temp percent", 0, MAX_TEMP_PERCENT)
    else:
        value = _parse_decimal(args[1], "temp rate mU/h", 0, MAX_BASAL_MU_PER_H)
    minutes = _parse_decimal(args[2], "temp minutes", TEMP_MIN_MINUTES, TEMP_MAX_MINUTES)
    if minutes % 30:
        raise ArgError("temp minutes must be a multiple of 30, got %d" % minutes)
    return (kind, value, minutes)


def _days_in_month(year, month):
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _time_args(args):
    # time_set YYYY-MM-DDTHH:MM:SS
    if len(args) != 1 or len(args[0]) != 19:
        raise ArgError("usage: time_set YYYY-MM-DDTHH:MM:SS")
    text = args[0]
    if text[4] != "-" or text[7] != "-" or text[10] != "T" or text[13] != ":" or text[16] != ":":
        raise ArgError("usage: time_set YYYY-MM-DDTHH:MM:SS")
    year = _parse_decimal(text[0:4], "year", 2020, 2099)
    month = _parse_decimal(text[5:7], "month", 1, 12)
    day = _parse_decimal(text[8:10], "day", 1, _days_in_month(year, month))
    hour = _parse_decimal(text[11:13], "hour", 0, 23)
    minute = _parse_decimal(text[14:16], "minute", 0, 59)
    second = _parse_decimal(text[17:19], "second", 0, 59)
    return (year, month, day, hour, minute, second)


def _confirm_args(args):
    if len(args) != 1:
        raise ArgError("usage: confirm_status <id>")
    return (_parse_decimal(args[0], "id", 1, MAX_SEQ),)


def _parse_segments(text):
    """'HH:MM/mU_per_h,...' -> ((half_hour, mU/h), ...), starting at 00:00, times rising."""
    parts = text.split(",")
    if len(parts) > MAX_SEGMENTS:
        raise ArgError("a profile has at most %d segments" % MAX_SEGMENTS)
    segments = []
    last = -1
    for part in parts:
        slash = part.find("/")
        if slash != 5 or part[2] != ":":
            raise ArgError("basal segment %r is not HH:MM/mU_per_h" % part)
        hour = _parse_decimal(part[0:2], "segment hour", 0, 23)
        minute = _parse_decimal(part[3:5], "segment minute", 0, 59)
        if minute % 30:
            raise ArgError("basal segment %r does not start on a half-hour" % part)
        half_hour = hour * 2 + minute // 30
        if half_hour <= last:
            raise ArgError("basal segment %r is not after the one before it" % part)
        if last < 0 and half_hour != 0:
            raise ArgError("a basal profile starts at 00:00")
        last = half_hour
        rate = _parse_decimal(part[6:], "basal rate mU/h", 0, MAX_BASAL_MU_PER_H)
        segments.append((half_hour, rate))
    return tuple(segments)


def _settings_value(key, text):
    if key == "max_bolus":
        return _parse_decimal(text, key + " mU", 1, MAX_BOLUS_MU)
    if key == "max_basal":
        return _parse_decimal(text, key + " mU/h", 10, MAX_BASAL_MU_PER_H)
    if key == "increment":
        value = _parse_decimal(text, key + " mU", 1, 100)
        if value not in INCREMENT_CHOICES_MU:
            raise ArgError("increment must be 10, 25, 50 or 100 mU, got %d" % value)
        return value
    if key == "speed":
        return _parse_decimal(text, key + " mU/min", 1500, 15_000)
    if key == "active_profile":
        return _parse_decimal(text, key, 0, MAX_PROFILES - 1)
    if len(key) == 6 and key[:5] == "basal" and "0" <= key[5] <= "3":
        return _parse_segments(text)
    if len(key) == 5 and key[:4] == "name" and "0" <= key[4] <= "3":
        if not 1 <= len(text) <= 12:
            raise ArgError("a profile name has 1 to 12 characters")
        return text
    raise ArgError(
        "unknown setting %r (known: max_bolus, max_basal, increment, speed, active_profile, "
        "basal0..basal3, name0..name3)" % key
    )


def _settings_args(args):
    if not args:
        raise ArgError("usage: settings_put <key>=<value> ...")
    values = {}
    for token in args:
        eq = token.find("=")
        if eq <= 0:
            raise ArgError("settings_put takes key=value pairs, got %r" % token)
        key = token[:eq]
        if key in values:
            raise ArgError("setting %r given twice" % key)
        values[key] = _settings_value(key, token[eq + 1 :])
    return values


# name: (changes therapy, argument parser)
COMMANDS = {
    HELLO: (False, _no_args),
    "status": (False, _no_args),
    "settings": (False, _no_args),
    "history": (False, _history_args),
    "version": (False, _no_args),
    "hash": (False, _no_args),
    "confirm_status": (False, _confirm_args),
    "settings_put": (True, _settings_args),
    "time_set": (True, _time_args),
    "bolus": (True, _bolus_args),
    "temp": (True, _temp_args),
}


def parse_request_body(body, last_seq=0):
    """Parse a checked body (str, CRC already verified): returns a Request or FrameError.

    A sequence number not above ``last_seq`` is refused as a replay, except on ``hello``,
    which opens a new session.
    """
    try:
        tokens = split_tokens(body)
    except ArgError as err:
        return FrameError(0, E_BAD_ARGS, str(err))
    if len(tokens) < 2:
        return FrameError(0, E_BAD_ARGS, "a request is <seq> <command> [args] *<crc32>")
    try:
        seq = _parse_decimal(tokens[0], "seq", 1, MAX_SEQ)
    except ArgError as err:
        return FrameError(0, E_BAD_SEQ, str(err))
    command = tokens[1]
    if seq <= last_seq and command != HELLO:
        return FrameError(
            seq, E_REPLAY, "seq %d is not above the last one accepted (%d)" % (seq, last_seq)
        )
    entry = COMMANDS.get(command)
    if entry is None:
        return FrameError(seq, E_UNKNOWN, "unknown command %s" % quote(command))
    args = tokens[2:]
    try:
        parsed = entry[1](args)
    except ArgError as err:
        return FrameError(seq, E_BAD_ARGS, "%s: %s" % (command, err))
    return Request(seq, command, parsed, entry[0])


# ----- the pump side ------------------------------------------------------------------------


class LineSplitter:
    """Collects bytes into lines of at most ``max_line`` bytes (newline included).

    ``feed`` returns a list of complete lines (bytes, without CR/LF) and of
    FrameError(E_TOO_LONG) for each line that was too long: such a line is
    discarded up to its newline and reported once. The buffer never holds more
    than ``max_line`` bytes.
    """

    def __init__(self, max_line):
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False

    def buffered(self):
        """Bytes held waiting for a newline."""
        return len(self._buf)

    def reset(self):
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data):
        out = []  # type: list
        start = 0
        n = len(data)
        while start < n:
            nl = data.find(b"\n", start)
            end = n if nl < 0 else nl
            if self._discarding:
                if nl >= 0:
                    self._discarding = False
            else:
                room = self.max_line - 1 - len(self._buf)  # keep a byte for the newline
                if end - start > room:
                    self._buf = bytearray()
                    out.append(
                        FrameError(0, E_TOO_LONG, "line longer than %d bytes" % self.max_line)
                    )
                    self._discarding = nl < 0
                else:
                    self._buf.extend(data[start:end])
                    if nl >= 0:
                        line = bytes(self._buf)
                        self._buf = bytearray()
                        if line[-1:] == b"\r":
                            line = line[:-1]
                        if line.strip():
                            out.append(line)
            if nl < 0:
                break
            start = nl + 1
        return out


class Decoder:
    """Pump side: bytes in, checked Requests and FrameErrors out; never raises.

    ``feed(data)`` returns a list, in arrival order, of Request objects (CRC right,
    sequence number above the last one, command and arguments valid) and FrameError
    objects (answer each with ``err.response()``). ``new_session()`` is called when
    the host (re)connects: sequence numbers then start again from 1.
    """

    def __init__(self, max_line=MAX_REQUEST_LINE):
        self._lines = LineSplitter(max_line)
        self.last_seq = 0
        self.accepted = 0
        self.refused = 0

    def new_session(self):
        self._lines.reset()
        self.last_seq = 0

    def buffered(self):
        return self._lines.buffered()

    def feed(self, data):
        try:
            if isinstance(data, str):
                data = data.encode()
            elif isinstance(data, memoryview):
                data = bytes(data)
            elif not isinstance(data, (bytes, bytearray)):
                raise TypeError()
            items = self._lines.feed(data)
        except Exception as exc:  # a non-bytes argument: refuse, never raise
            self._lines.reset()
            self.refused += 1
            return [FrameError(0, E_INTERNAL, "cannot read input: %s" % type(exc).__name__)]
        out = []
        for item in items:
            if not isinstance(item, bytes):
                self.refused += 1
                out.append(item)
                continue
            try:
                result = self._parse(item)
            except Exception as exc:  # a bug here must not take the link down
                result = FrameError(0, E_INTERNAL, "parser failed: %s" % type(exc).__name__)
            if result.is_error:
                self.refused += 1
            else:
                self.accepted += 1
            out.append(result)
        return out

    def _parse(self, line):
        body, problem = check_line(line)
        if problem is not None:
            return FrameError(0, problem[0], problem[1])
        result = parse_request_body(body, self.last_seq)
        if result.is_error:
            if result.seq > self.last_seq:  # intact frame: its number is used up
                self.last_seq = result.seq
        else:
            self.last_seq = result.seq
        return result


def encode_response(seq, status, fields=()):
    """One response line (bytes): ``fields`` is a sequence of (key, value) pairs or a
    dict (keys sorted); values are int, bool, None or str (quoted when needed)."""
    if isinstance(fields, dict):
        fields = sorted(fields.items())
    parts = ["%d" % seq, status]
    for key, value in fields:
        parts.append("%s=%s" % (key, _value_text(value)))
    return frame(" ".join(parts))


# ----- the host side ------------------------------------------------------------------------


def encode_request(seq, command, *args):
    """One request line (bytes) from a command and its arguments (ints or str)."""
    parts = ["%d" % seq, command]
    for arg in args:
        parts.append(_value_text(arg))
    return frame(" ".join(parts))


def parse_response_line(line):
    """Check and parse one response line (bytes, no newline): Response or FrameError."""
    body, problem = check_line(line)
    if problem is not None:
        return FrameError(0, problem[0], problem[1])
    try:
        tokens = split_tokens(body)
    except ArgError as err:
        return FrameError(0, E_BAD_ARGS, str(err))
    if len(tokens) < 2 or tokens[1] not in STATUSES:
        return FrameError(0, E_BAD_ARGS, "a response is <seq> <status> [key=value ...]")
    try:
        seq = _parse_decimal(tokens[0], "seq", 0, MAX_SEQ)
    except ArgError as err:
        return FrameError(0, E_BAD_SEQ, str(err))
    fields = {}
    for token in tokens[2:]:
        eq = token.find("=")
        if eq <= 0:
            return FrameError(seq, E_BAD_ARGS, "response field %r is not key=value" % token)
        fields[token[:eq]] = token[eq + 1 :]
    return Response(seq, tokens[1], fields)


class ResponseDecoder:
    """Host side: bytes from the pump in, Response and FrameError objects out."""

    def __init__(self, max_line=MAX_RESPONSE_LINE):
        self._lines = LineSplitter(max_line)

    def feed(self, data):
        out = []
        for item in self._lines.feed(data):
            out.append(item if not isinstance(item, bytes) else parse_response_line(item))
        return out
