"""Fuzzing the serial decoder: it never raises, and no damaged frame becomes a therapy command.

CI runs PROTOCOL_FUZZ_EXAMPLES examples per property (500 by default). The benchmark
calls ``run_fuzz(examples=10_000)``, which runs the same properties and a timed plain
random fuzz, and returns the figures.
"""

import os
import random
import re
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pump.core import protocol as p

EXAMPLES = int(os.environ.get("PROTOCOL_FUZZ_EXAMPLES", "500"))

VALID_BODIES = (
    "status",
    "settings",
    "version",
    "hash",
    "history 10 5",
    "confirm_status 2",
    "bolus 2500",
    "bolus 25000",
    "temp percent 150 120",
    "temp rate 800 30",
    "time_set 2026-11-21T08:30:00",
    "settings_put max_bolus=8000 increment=50",
    'settings_put name0="Work day" basal0=00:00/800,06:30/1250',
)


def _intact_lines(data):
    """Lines of ``data`` whose CRC32 checks out, by zlib: independent of the codec."""
    intact = []
    for line in bytes(data).split(b"\n"):
        line = line[:-1] if line.endswith(b"\r") else line
        if len(line) < 10 or line[-9:-8] != b"*" or line[-10:-9] != b" ":
            continue
        try:
            stated = int(line[-8:].decode("ascii"), 16)
        except ValueError:
            continue
        if zlib.crc32(line[:-9]) == stated:
            intact.append(line)
    return intact


def check_decoder(data, chunk):
    """The property itself: returns the items, after checking them."""
    decoder = p.Decoder()
    items = []
    for start in range(0, len(data), chunk):
        items.extend(decoder.feed(data[start : start + chunk]))
        assert decoder.buffered() < p.MAX_REQUEST_LINE
    therapy = [it for it in items if not it.is_error and it.therapy]
    intact = _intact_lines(data)
    assert len([it for it in items if not it.is_error]) <= len(intact)
    if therapy:
        # Each therapy request must come from an intact line that names it.
        texts = [line.decode("ascii", "replace") for line in intact]
        for req in therapy:
            head = "%d %s" % (req.seq, req.command)
            assert any(t.startswith(head + " ") for t in texts), (req, texts)
    seqs = [it.seq for it in items if not it.is_error]
    assert seqs == sorted(set(seqs))  # strictly increasing: no replay got through
    return items


def _mutate(frame, kind, pos, byte, length):
    n = len(frame)
    if n == 0:
        return bytes([byte])
    pos %= n
    if kind == "flip":
        out = bytearray(frame)
        out[pos] ^= 1 << (byte % 8)
        return bytes(out)
    if kind == "truncate":
        return frame[:pos]
    if kind == "insert":
        return frame[:pos] + bytes([byte]) * (1 + length % 4) + frame[pos:]
    if kind == "delete":
        return frame[:pos] + frame[pos + 1 + length % 8 :]
    if kind == "duplicate":
        end = min(n, pos + 1 + length)
        return frame[:end] + frame[pos:end] + frame[end:]
    return frame + frame  # "repeat": a replayed whole frame


MUTATIONS = ("flip", "truncate", "insert", "delete", "duplicate", "repeat")

mutated_frames = st.builds(
    lambda body, seq, muts: _apply(p.encode_request(seq, *_split(body)), muts),
    st.sampled_from(VALID_BODIES),
    st.integers(1, p.MAX_SEQ),
    st.lists(
        st.tuples(
            st.sampled_from(MUTATIONS),
            st.integers(0, 400),
            st.integers(0, 255),
            st.integers(0, 40),
        ),
        min_size=1,
        max_size=4,
    ),
)


def _split(body):
    command, _, rest = body.partition(" ")
    return (command,) + tuple(p.split_tokens(rest))


def _apply(frame, muts):
    for kind, pos, byte, length in muts:
        frame = _mutate(frame, kind, pos, byte, length)
    return frame


def _settings(examples):
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=False,
    )


def _random_bytes_property(examples):
    @_settings(examples)
    @given(st.binary(max_size=600), st.integers(1, 64))
    def prop(data, chunk):
        items = check_decoder(data, chunk)
        if not _intact_lines(data):
            assert not [it for it in items if not it.is_error]

    return prop


def _mutated_frames_property(examples):
    @_settings(examples)
    @given(st.lists(mutated_frames, min_size=1, max_size=4), st.integers(1, 300))
    def prop(frames, chunk):
        check_decoder(b"".join(frames), chunk)

    return prop


def test_random_bytes_never_raise_and_yield_no_therapy_command():
    _random_bytes_property(EXAMPLES)()


@pytest.mark.slow
def test_mutated_frames_never_raise_and_damaged_ones_are_refused():
    _mutated_frames_property(EXAMPLES)()


def test_a_single_bit_flip_anywhere_in_a_bolus_frame_is_caught():
    # CRC32 detects every single-bit error: exhaustive over every bit of the frame.
    frame = p.encode_request(41, "bolus", 2500)
    for i in range(len(frame) - 1):  # not the newline: that only splits the line
        for bit in range(8):
            out = bytearray(frame)
            out[i] ^= 1 << bit
            items = p.Decoder().feed(bytes(out) + b"\n")
            assert all(it.is_error for it in items), (i, bit, items)


def random_fuzz(frames, seed=1):
    """Plain random fuzz (no shrinking): mutated valid frames through one Decoder.

    Returns (frames fed, therapy requests accepted, seconds).
    """
    rng = random.Random(seed)
    templates = [p.encode_request(1, *_split(b)) for b in VALID_BODIES]
    decoder = p.Decoder()
    accepted = 0
    started = time.perf_counter()
    for _ in range(frames):
        frame = rng.choice(templates)
        muts = [
            (rng.choice(MUTATIONS[:-1]), rng.randrange(400), rng.randrange(256), rng.randrange(40))
            for _ in range(rng.randint(1, 3))
        ]
        data = _apply(frame, muts)
        for item in decoder.feed(data + b"\n"):
            if not item.is_error and item.therapy:
                if not _intact_lines(data):
                    raise AssertionError("therapy request from a damaged frame: %r" % data)
                accepted += 1
        decoder.new_session()
    return frames, accepted, time.perf_counter() - started


def run_fuzz(examples=10_000, frames=100_000):
    """Benchmark entry: the hypothesis properties at ``examples`` each, then the timed
    random fuzz. Returns a dict of figures (frames per second among them)."""
    started = time.perf_counter()
    _random_bytes_property(examples)()
    _mutated_frames_property(examples)()
    hypothesis_s = time.perf_counter() - started
    fed, accepted, seconds = random_fuzz(frames)
    return {
        "hypothesis_examples": 2 * examples,
        "hypothesis_s": round(hypothesis_s, 2),
        "random_frames": fed,
        "random_accepted_therapy": accepted,
        "random_frames_per_s": round(fed / seconds) if seconds else None,
    }


def test_random_fuzz_runs_and_reports_a_rate():
    fed, _accepted, seconds = random_fuzz(2000)
    assert fed == 2000 and seconds > 0


if __name__ == "__main__":
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(json.dumps(run_fuzz(n), indent=1))


def test_frames_quoted_in_the_protocol_document_carry_their_real_crc():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                        "protocol.md")
    with open(path) as f:
        text = f.read()
    frames = re.findall(r"^`?(\d+ [a-z_]+[^`\n]* \*[0-9a-f]{8})`?\.?$", text, re.MULTILINE)
    assert len(frames) >= 3
    for line in frames:
        assert _intact_lines(line.encode() + b"\n"), line
