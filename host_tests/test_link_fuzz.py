"""Fuzzing the pump's link (decoder and dispatcher together): random and mutated frames never
raise out of the main loop's service() and never change therapy without OK on the pump.

CI runs LINK_FUZZ_EXAMPLES examples per property (150 by default); tools/bench_link.py
runs 10,000 and reports the rate.
"""

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pump.core import protocol as p
from test_link import therapy_snapshot
from test_link_rig import LinkRig
from test_protocol_fuzz import mutated_frames

EXAMPLES = int(os.environ.get("LINK_FUZZ_EXAMPLES", "150"))


class Target:
    """One simulated pump whose link takes the fuzz; the main loop is not run between frames,
    so each example costs only the link's own work."""

    def __init__(self):
        self.rig = LinkRig()
        self.app = self.rig.app
        self.link = self.rig.link
        self.before = therapy_snapshot(self.app)
        self.frames = 0
        self.held = 0

    def feed(self, data):
        link = self.link
        link.decoder.new_session()
        self.rig.pipe.send(data)
        now = self.app.now_ms()
        while self.rig.pipe.pending():
            link.service(now)  # must never raise
        answer = self.rig.pipe.receive()
        if not _only_blank(data):
            assert answer  # every line is answered, if only with an error
        for line in answer.split(b"\n")[:-1]:
            assert not p.parse_response_line(line).is_error  # every answer is a sound frame
        held = link.held
        if held is not None:  # a valid change was held: the person says no
            self.held += 1
            link.reject(held, now)
            self.app.ui.dismiss(link.screen)
        assert therapy_snapshot(self.app) == self.before
        self.frames += 1


def _only_blank(data):
    return all(not line.strip() for line in data.split(b"\n")[:-1])


def _settings(examples):
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def random_property(target, examples):
    @_settings(examples)
    @given(st.binary(max_size=400))
    def prop(data):
        target.feed(data + b"\n")

    return prop


def mutated_property(target, examples):
    @_settings(examples)
    @given(st.lists(mutated_frames, min_size=1, max_size=4))
    def prop(frames):
        target.feed(b"".join(frames) + b"\n")

    return prop


def test_random_bytes_through_the_link_never_raise_and_never_change_therapy():
    target = Target()
    random_property(target, EXAMPLES)()
    assert target.frames >= EXAMPLES


@pytest.mark.slow
def test_mutated_frames_through_the_link_never_raise_and_never_change_therapy():
    target = Target()
    mutated_property(target, EXAMPLES)()
    assert target.frames >= EXAMPLES


def run_fuzz(examples=10_000):
    """For the benchmark: both properties at ``examples`` each; returns the figures."""
    target = Target()
    started = time.perf_counter()
    random_property(target, examples)()
    mutated_property(target, examples)()
    seconds = time.perf_counter() - started
    return {
        "frames": target.frames,
        "held_then_rejected": target.held,
        "seconds": seconds,
        "frames_per_s": target.frames / seconds if seconds else 0.0,
    }
