"""Settings, checkpoint and event log on the fake flash: round trips, damage, rotation, wear."""

import pytest

from pump.core.schedule import BasalProfile
from pump.core.state import CORRUPT, MISSING, OK, Checkpoint
from pump.core.therapy import Settings
from pump.hal.storage import EventStore, Storage, read_file
from sim.hw.flashfs import BLOCK, ENOENT, ENOSPC, FlashFS, PowerCut

RECORD = 48


def _settings(max_bolus_mu=10_000):
    s = Settings()
    s.max_bolus_mu = max_bolus_mu
    s.profiles.append(BasalProfile("Night", [(0, 600), (12, 900)], 3_000))
    return s


def _storage(fs=None, **kw):
    fs = fs or FlashFS()
    store = Storage(fs, **kw)
    store.boot()
    return fs, store


def _reboot(fs, **kw):
    fs.reboot()
    store = Storage(fs, **kw)
    loaded = store.boot()
    return store, loaded


# ----- the fake flash behaves like littlefs -------------------------------------------------


def test_fake_flash_loses_unflushed_data_and_keeps_committed_data():
    fs = FlashFS()
    f = fs.open("a", "wb")
    f.write(b"first")
    f.close()
    f = fs.open("a", "ab")
    f.write(b"-second")
    f.flush()
    f.write(b"-lost")
    fs.cut_at(1)
    with pytest.raises(PowerCut):
        fs.remove("a")
    fs.reboot()
    assert fs.files == {"a": b"first-second"}
    f.close()  # a handle from before the cut does nothing
    assert fs.files == {"a": b"first-second"}


def test_fake_flash_rewrite_keeps_old_content_until_close():
    fs = FlashFS()
    with fs.open("a", "wb") as f:
        f.write(b"old")
    fs.cut_at(2)  # the write, then the close
    with pytest.raises(PowerCut):
        with fs.open("a", "wb") as f:
            f.write(b"new")
    fs.reboot()
    assert read_file(fs, "a") == b"old"


def test_fake_flash_is_dead_after_a_cut_until_reboot():
    fs = FlashFS()
    fs.cut_at(1)
    with pytest.raises(PowerCut):
        fs.mkdir("d")
    with pytest.raises(PowerCut):
        fs.listdir("")
    fs.reboot()
    assert fs.listdir("") == []


def test_fake_flash_reports_missing_files_and_full_flash():
    fs = FlashFS(capacity=16 * BLOCK)
    with pytest.raises(OSError) as err:
        fs.open("nothing", "rb")
    assert err.value.args[0] == ENOENT
    f = fs.open("big", "wb")
    with pytest.raises(OSError) as err:
        for _ in range(20):
            f.write(bytes(BLOCK))
    assert err.value.args[0] == ENOSPC
    assert fs.statvfs("")[3] >= 0


def test_fake_flash_random_cuts_repeat_with_the_seed():
    def run(seed):
        fs = FlashFS()
        fs.cut_randomly(seed, 10)
        n = 0
        try:
            while True:
                with fs.open("f%d" % n, "wb") as f:
                    f.write(b"x")
                n += 1
        except PowerCut:
            return fs.ops

    assert run(1) == run(1)
    assert len({run(seed) for seed in range(8)}) > 1


def test_fake_flash_counts_copy_on_write_wear():
    fs = FlashFS()
    with fs.open("log", "wb") as f:
        f.write(bytes(3 * BLOCK))
    assert fs.erases == 3
    erased = fs.erases
    with fs.open("log", "ab") as f:
        f.write(bytes(48))
    # Appending after a commit copies the tail block to a fresh one: one erase.
    assert fs.erases - erased == 1
    assert sum(fs.block_erases) == fs.erases
    erased = fs.erases
    with fs.open("small", "wb") as f:
        f.write(bytes(300))  # inline in the directory's metadata log: no block of its own
    assert fs.erases == erased
    assert fs.used_blocks() == 2 + 4


# ----- settings -----------------------------------------------------------------------------


def test_settings_round_trip_through_flash():
    fs, store = _storage()
    assert store.settings.load().status == MISSING
    store.settings.save({"therapy": _settings(7_000)})
    store, (settings, _) = _reboot(fs)
    assert settings.status == OK
    assert settings.value["therapy"].max_bolus_mu == 7_000
    assert settings.value["therapy"].profiles[1].name == "Night"


def test_corrupt_settings_file_is_reported_with_the_reason():
    fs, store = _storage()
    store.settings.save({"therapy": _settings()})
    data = bytearray(fs.files["settings.rec"])
    data[-3] ^= 1
    fs.files["settings.rec"] = bytes(data)
    loaded = store.settings.load()
    assert (loaded.status, loaded.reason) == (CORRUPT, "CRC mismatch")
    fs.files["settings.rec"] = b""
    assert store.settings.load().reason == "empty file"


def test_every_flipped_bit_of_a_settings_file_is_refused():
    fs, store = _storage()
    store.settings.save({"therapy": Settings()})
    data = fs.files["settings.rec"]
    assert len(data) < 400
    buf = bytearray(data)
    for i in range(len(buf)):
        for bit in range(8):
            buf[i] ^= 1 << bit
            fs.files["settings.rec"] = bytes(buf)
            loaded = store.settings.load()
            assert loaded.status == CORRUPT and loaded.reason, (i, bit)
            buf[i] ^= 1 << bit


def test_settings_save_replaces_the_file_by_rename():
    fs, store = _storage()
    store.settings.save({"therapy": _settings()})
    fs.trace = True
    store.settings.save({"therapy": _settings(5_000)})
    assert fs.op_log == ["create", "write", "close", "rename"]
    assert sorted(fs.files) == ["settings.rec"]


# ----- checkpoint ---------------------------------------------------------------------------


def _checkpoint(reservoir):
    c = Checkpoint()
    c.reservoir_steps = reservoir
    c.wall_s = 1_000
    return c


def test_checkpoint_alternates_slots_and_the_newest_wins():
    fs, store = _storage()
    assert store.checkpoint.load().status == MISSING
    for reservoir in (300, 200, 100):
        store.checkpoint.save(_checkpoint(reservoir))
    assert sorted(fs.files) == ["ckpt_a.rec", "ckpt_b.rec"]
    store, (_, loaded) = _reboot(fs)
    assert (loaded.status, loaded.value.seq, loaded.value.reservoir_steps) == (OK, 3, 100)
    store.checkpoint.save(_checkpoint(50))  # the next goes into the older slot
    assert Storage(fs).boot()[1].value.reservoir_steps == 50


def test_a_spoiled_checkpoint_slot_falls_back_to_the_other():
    fs, store = _storage()
    store.checkpoint.save(_checkpoint(300))
    store.checkpoint.save(_checkpoint(200))
    fs.files["ckpt_b.rec"] = fs.files["ckpt_b.rec"][:50]
    store, (_, loaded) = _reboot(fs)
    assert (loaded.status, loaded.value.reservoir_steps) == (OK, 300)
    assert "ckpt_b.rec: truncated" in loaded.reason
    fs.files["ckpt_a.rec"] = b"junk"
    assert Storage(fs).boot()[1].status == CORRUPT


# ----- event log ----------------------------------------------------------------------------


def _append(log, n, first_t=0):
    for i in range(n):
        log.append(first_t + i, 1_700_000_000 + i, "basal_rate", {"rate_mu_per_h": i})


def test_log_appends_read_back_newest_first_and_since_a_sequence_number():
    fs, store = _storage()
    _append(store.log, 10)
    assert [e[0] for e in store.log.recent(3)] == [10, 9, 8]
    assert [e[0] for e in store.log.since(7)] == [8, 9, 10]
    assert store.log.recent(1)[0] == (10, 9, 1_700_000_009, "basal_rate", {"rate_mu_per_h": 9})


def test_log_numbering_continues_after_a_reboot():
    fs, store = _storage()
    _append(store.log, 5)
    store, _ = _reboot(fs)
    assert store.log.last_seq == 5
    assert store.log.append(0, None, "boot", {"nu_per_step": 1}) == 6
    assert [e[0] for e in store.log.newest_first()] == [6, 5, 4, 3, 2, 1]


def test_log_skips_a_torn_last_record_and_continues_numbering():
    fs, store = _storage()
    _append(store.log, 5)
    name = store.log.segment_names()[-1]
    fs.files[name] = fs.files[name] + fs.files[name][:20]  # half a sixth record
    store, _ = _reboot(fs)
    assert store.log.last_seq == 5
    assert store.log.torn == 1
    assert store.log.append(0, None, "boot", {}) == 6
    # The new record goes into a new segment, never behind the torn bytes.
    assert len(store.log.segment_names()) == 2
    assert [e[0] for e in store.log.since(0)] == [1, 2, 3, 4, 5, 6]


def test_log_skips_a_record_failing_its_crc_and_reports_it():
    fs, store = _storage()
    _append(store.log, 5)
    name = store.log.segment_names()[-1]
    data = bytearray(fs.files[name])
    data[2 * RECORD + 10] ^= 0x40  # record 3
    data[5 * RECORD - 1] ^= 0x01  # record 5, the last
    fs.files[name] = bytes(data)
    store, _ = _reboot(fs)
    assert store.log.last_seq == 4
    assert [e[0] for e in store.log.newest_first()] == [4, 2, 1]
    assert store.log.skipped == 2
    assert store.log.append(0, None, "boot", {}) == 5  # 5 was never trusted: reused


def test_log_rotation_keeps_the_total_bounded():
    fs = FlashFS()
    log = EventStore(fs, segments=4, segment_bytes=10 * RECORD)
    log.open()
    _append(log, 95)
    assert len(log.segment_names()) == 4
    total = sum(len(fs.files[name]) for name in log.segment_names())
    assert total <= 4 * 10 * RECORD
    seqs = [e[0] for e in log.since(0)]
    assert seqs == list(range(61, 96))  # the oldest segments went, whole
    assert sorted(fs.files) == log.segment_names()


def test_log_appends_never_rewrite_a_segment():
    fs, store = _storage()
    _append(store.log, 200)  # 9600 bytes: a segment of three blocks
    fs.trace = True
    before = fs.bytes_programmed
    _append(store.log, 1)
    assert fs.op_log == ["write", "close"]
    # littlefs copies only the tail block (copy-on-write), plus one metadata commit.
    assert fs.bytes_programmed - before <= 4096 + 256


def test_history_of_the_last_fifty_events_spans_segments():
    fs = FlashFS()
    log = EventStore(fs, segments=4, segment_bytes=20 * RECORD)
    log.open()
    _append(log, 70)
    recent = log.recent(50)
    assert [e[0] for e in recent] == list(range(70, 20, -1))


def test_a_default_log_holds_over_a_thousand_events_in_64_kb():
    fs, store = _storage()
    _append(store.log, 1500)
    total = sum(len(fs.files[name]) for name in store.log.segment_names())
    assert total <= 64 * 1024
    assert len(list(store.log.since(0))) > 1000


def test_full_flash_raises_enospc_to_the_caller():
    fs = FlashFS(capacity=12 * BLOCK)
    store = Storage(fs)
    store.boot()
    with pytest.raises(OSError) as err:
        _append(store.log, 2000)
    assert err.value.args[0] == ENOSPC
    # What was written before stays readable.
    assert Storage(fs).boot() and store.log.recent(1)[0][0] == store.log.last_seq


# ----- wear ---------------------------------------------------------------------------------


def _typical_day(store, wall0):
    """A day: 1 settings save, a checkpoint every 5 min, 6 boluses (start, 10 reservations,
    end), 2 temp basals (start, end), 200 events. Returns the checkpoints written."""
    store.settings.save({"therapy": Settings()})
    c = Checkpoint()
    c.bolus = {
        "kind": "normal",
        "requested_mu": 5000,
        "steps": 3395,
        "delivered_steps": 1000,
        "delivered_mu": 1472,
        "start_wall_s": wall0,
    }
    for i in range(6):
        c.add_bolus(wall0 + i, 4000)
    written = 0
    for minute in range(1440):
        c.wall_s = wall0 + minute * 60
        saves = 1 if minute % 5 == 0 else 0
        saves += 12 if minute in (420, 600, 780, 900, 1080, 1260) else 0
        saves += 2 if minute in (300, 1000) else 0
        for _ in range(saves):
            store.checkpoint.save(c)
        written += saves
        if minute % 7 == 0 and minute // 7 < 200:
            store.log.append(minute * 60_000, c.wall_s, "basal_rate", {"rate_mu_per_h": 800})
    return written


def test_a_typical_day_wears_the_flash_far_less_than_ten_years_allow():
    fs = FlashFS()  # 848 KB, 212 blocks of 4 KB
    with fs.open("firmware.mpy", "wb") as f:
        f.write(bytes(200 * 1024))  # the firmware's own files share the partition
    store = Storage(fs)
    store.boot()
    _typical_day(store, 800_000_000)  # settle: the log is in its steady state
    erases, programmed = fs.erases, fs.bytes_programmed
    assert _typical_day(store, 800_086_400) == 364
    erases = fs.erases - erases
    programmed = fs.bytes_programmed - programmed
    free_blocks = fs.n_blocks - fs.used_blocks()
    # Checkpoints stay inline in the metadata log; each log append copies a tail block.
    assert erases < 400
    assert programmed < 1_000_000
    years = 100_000 * free_blocks // (erases * 365)
    assert years > 10 * 10  # ten times the ten years asked for
