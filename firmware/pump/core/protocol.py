"""The USB-serial protocol: checked one-line frames, command parsing, and the replay rule.

A frame is one line of printable ASCII (format in docs/protocol.md):

    <seq> <command> [<arg> ...] *<crc32>\\n        request (host -> pump)
    <seq> <status> [<key>=<value> ...] *<crc32>\\n  response (pump -> host)

The CRC32 (IEEE 802.3, as zlib and binascii compute it) covers every byte before
the ``*``, the space in front of it included, written as 8 lowercase hex digits.
This module only frames, checks and parses; it never acts on a command. The same
module serves the host (``encode_request``, ``ResponseDecoder``).
"""

from pump.core.crc import crc32  # noqa: F401  (the CRC a frame carries; binascii's when there)
from pump.core.crc import crc32_bitwise as crc32_pure  # noqa: F401  (without binascii)
from pump.core.protocol_args import (  # noqa: F401  (the protocol's names, in one place)
    COMMANDS,
    HISTORY_DEFAULT_COUNT,
    HISTORY_MAX_COUNT,
    MAX_BASAL_MU_PER_H,
    MAX_BOLUS_MU,
    MAX_PROFILES,
    MAX_SEGMENTS,
    MAX_SEQ,
    ArgError,
    parse_decimal,
    split_tokens,
)

MAX_REQUEST_LINE = 256  # bytes, newline included; longer lines are refused whole
MAX_RESPONSE_LINE = 1024
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
E_REFUSED = "refused"  # the pump would refuse the change: said at once, nothing held


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


# ----- tokens -------------------------------------------------------------------------------


def _is_printable(line):
    for byte in line:
        if byte < 0x20 or byte > 0x7E:
            return False
    return True


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


def value_text(value):
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


def _parser(parse):
    """A COMMANDS entry's parser: a therapy change's is loaded now (the link lets it go)."""
    if type(parse) is str:
        from pump.core import change_args

        return getattr(change_args, parse)
    return parse


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
        seq = parse_decimal(tokens[0], "seq", 1, MAX_SEQ)
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
        parsed = _parser(entry[1])(args)
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
        parts.append("%s=%s" % (key, value_text(value)))
    return frame(" ".join(parts))


# ----- the host side (pump.core.protocol_host), loaded only when a host asks for it ---------

_HOST_NAMES = ("Response", "encode_request", "parse_response_line", "ResponseDecoder")


def __getattr__(name):
    if name in _HOST_NAMES:
        from pump.core import protocol_host

        return getattr(protocol_host, name)
    raise AttributeError(name)
