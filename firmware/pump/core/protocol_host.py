"""The protocol's host side: requests out, checked responses in (pumpctl, tests).

The pump never imports this module; ``pump.core.protocol`` hands its names out.
"""

from pump.core.protocol import (
    E_BAD_ARGS,
    E_BAD_SEQ,
    MAX_RESPONSE_LINE,
    MAX_SEQ,
    STATUSES,
    ArgError,
    FrameError,
    LineSplitter,
    check_line,
    frame,
    parse_decimal,
    split_tokens,
    value_text,
)


class Response:
    """A checked response (host side): ``seq``, ``status`` and ``fields`` (a dict of str)."""

    is_error = False

    def __init__(self, seq, status, fields):
        self.seq = seq
        self.status = status
        self.fields = fields

    def __repr__(self):
        return "Response(%d, %r, %r)" % (self.seq, self.status, self.fields)


def encode_request(seq, command, *args):
    """One request line (bytes) from a command and its arguments (ints or str)."""
    parts = ["%d" % seq, command]
    for arg in args:
        parts.append(value_text(arg))
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
        seq = parse_decimal(tokens[0], "seq", 0, MAX_SEQ)
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
