"""A power cut at any flash operation leaves settings, checkpoint and log whole and usable.

A workload of settings saves, checkpoints and log appends is run with the power cut
at every mutating flash operation in turn; after each cut the flash is mounted again
and must hold: settings old or new (never damaged), the checkpoint old or new, and the
log a contiguous run of what was appended, ending at the last append that completed
or the one in progress, with numbering that continues. Both on littlefs semantics and
on a filesystem whose writes are not atomic (a torn write leaves half of it).
"""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pump.core.state import CORRUPT, OK, Checkpoint
from pump.core.therapy import Settings
from pump.hal.storage import Storage
from sim.hw.flashfs import FlashFS, PowerCut

SEGMENTS = 3
SEGMENT_BYTES = 4 * 48  # small segments, so rotation happens within the workload
# `make bench` may raise it (STORAGE_CUT_EXAMPLES=1000); CI keeps it modest.
EXAMPLES = int(os.environ.get("STORAGE_CUT_EXAMPLES", "200"))

SETTINGS = "settings"
CHECKPOINT = "checkpoint"
EVENT = "event"
DEFAULT_WORKLOAD = [SETTINGS, EVENT, CHECKPOINT, EVENT, EVENT, SETTINGS, CHECKPOINT] + [
    EVENT,
    CHECKPOINT,
    EVENT,
] * 4 + [SETTINGS, EVENT]


def _store(fs):
    return Storage(fs, segments=SEGMENTS, segment_bytes=SEGMENT_BYTES)


class Workload:
    """Runs storage operations and remembers what completed and what was in progress."""

    def __init__(self, fs):
        self.store = _store(fs)
        self.store.boot()
        self.settings = [100]  # max_bolus_mu of each completed save, oldest first
        self.checkpoints = [0]  # reservoir_steps of each completed checkpoint
        self.events = 0  # appends completed
        self.in_progress = None
        self.store.settings.save({"therapy": self._settings(100)})

    def _settings(self, max_bolus_mu):
        s = Settings()
        s.max_bolus_mu = max_bolus_mu
        return s

    def run(self, steps):
        for step in steps:
            self.in_progress = step
            if step == SETTINGS:
                value = self.settings[-1] + 50
                self.store.settings.save({"therapy": self._settings(value)})
                self.settings.append(value)
            elif step == CHECKPOINT:
                c = Checkpoint()
                c.reservoir_steps = self.checkpoints[-1] + 1
                self.store.checkpoint.save(c)
                self.checkpoints.append(c.reservoir_steps)
            else:
                n = self.events + 1
                self.store.log.append(n * 1000, None, "basal_rate", {"rate_mu_per_h": n})
                self.events = n
            self.in_progress = None


def _check_after_cut(fs, work, cut):
    """Mount again and check every store; return the rebooted storage."""
    fs.reboot()
    store = _store(fs)
    settings, checkpoint = store.boot()
    step = work.in_progress
    where = "cut during %s (%s)" % (step, cut)

    assert settings.status == OK, where + ": " + str(settings.reason)
    allowed = [work.settings[-1]]
    if step == SETTINGS:
        allowed.append(work.settings[-1] + 50)
    assert settings.value["therapy"].max_bolus_mu in allowed, where

    allowed = [work.checkpoints[-1]]  # 0: none written yet
    if step == CHECKPOINT:
        allowed.append(work.checkpoints[-1] + 1)
    found = checkpoint.value.reservoir_steps if checkpoint.value is not None else 0
    assert found in allowed, where
    assert checkpoint.status != CORRUPT or work.checkpoints[-1] == 0, where

    events = list(store.log.since(0))
    seqs = [e[0] for e in events]
    last = work.events + (1 if step == EVENT else 0)
    if seqs:
        assert seqs == list(range(seqs[0], seqs[-1] + 1)), where
        assert work.events <= seqs[-1] <= last, where
        appended = [e for e in events if e[3] != "boot"]  # boot: written after earlier cuts
        assert all(e[4] == {"rate_mu_per_h": e[0]} for e in appended), where
    else:
        assert work.events == 0, where
    assert store.log.last_seq == (seqs[-1] if seqs else 0), where

    # Life goes on: the next append is numbered on and readable.
    following = store.log.last_seq + 1
    assert store.log.append(0, None, "boot", {}) == following, where
    assert store.log.recent(1)[0][0] == following, where
    return store


def _cut_run(atomic, steps, cut):
    fs = FlashFS(atomic=atomic)
    work = Workload(fs)
    fs.cut_at(cut)
    try:
        work.run(steps)
    except PowerCut:
        _check_after_cut(fs, work, cut)
        return True
    return False


def _ops_of(atomic, steps):
    fs = FlashFS(atomic=atomic)
    work = Workload(fs)
    start = fs.ops
    work.run(steps)
    return fs.ops - start


@pytest.mark.parametrize("atomic", [True, False], ids=["littlefs", "torn-writes"])
def test_a_cut_at_every_flash_operation_leaves_everything_usable(atomic):
    total = _ops_of(atomic, DEFAULT_WORKLOAD)
    assert total > 50
    for cut in range(1, total + 1):
        assert _cut_run(atomic, DEFAULT_WORKLOAD, cut)
    assert not _cut_run(atomic, DEFAULT_WORKLOAD, total + 1)


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None)
@given(
    steps=st.lists(st.sampled_from([SETTINGS, CHECKPOINT, EVENT]), min_size=1, max_size=40),
    cut_fraction=st.floats(min_value=0.0, max_value=1.0),
    atomic=st.booleans(),
)
def test_random_workloads_survive_a_cut_anywhere(steps, cut_fraction, atomic):
    total = _ops_of(atomic, steps)
    cut = 1 + int(cut_fraction * (total - 1))
    assert _cut_run(atomic, steps, cut)


@settings(max_examples=EXAMPLES // 4, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**31 - 1))
def test_repeated_random_cuts_and_reboots_never_lose_committed_state(seed):
    fs = FlashFS()
    work = Workload(fs)
    for round_ in range(4):
        fs.cut_randomly(seed + round_, 25)
        try:
            work.run(DEFAULT_WORKLOAD)
            fs.cut_randomly(0, 0)
        except PowerCut:
            store = _check_after_cut(fs, work, "random %d" % seed)
            # Carry on from what the flash holds now, as the pump would after boot.
            work.store = store
            settings_now = store.settings.load().value["therapy"].max_bolus_mu
            work.settings.append(settings_now)
            c = store.checkpoint.load().value
            work.checkpoints.append(c.reservoir_steps if c is not None else 0)
            work.events = store.log.last_seq
