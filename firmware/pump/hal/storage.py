"""Persistent storage on the flash filesystem: settings, therapy checkpoint and the event log.

Everything goes through an injected ``fs`` object with the semantics of MicroPython's
``os`` module plus ``open`` (on the Pico: ``OsFs(os, open, "/")`` over littlefs;
in host tests: the fake flash of ``sim/hw/flashfs.py``). Write rules:

* settings: written whole to ``<name>.new`` then renamed over ``<name>`` (a littlefs
  rename is atomic), so a power cut leaves the old file or the new one;
* checkpoint: two slots written in turn, each record carrying a sequence number and
  a CRC; the newest valid slot wins. A torn write can spoil only the slot being
  written, never the previous checkpoint, whatever the filesystem;
* event log: fixed-size records appended to segment files, the oldest segment
  removed when a new one starts; nothing is ever rewritten.
"""

from micropython import const

from pump.core.crc import CorruptRecord
from pump.core.logformat import EXTRA_CODE, LOG_RECORD_SIZE, decode_event, encode_event, merge
from pump.core.records import decode_json_record, encode_json_record, settings_format
from pump.core.state import CORRUPT, MISSING, OK, decode_checkpoint

_ENOENT = const(2)
_SEGMENTS = const(4)
_SEGMENT_BYTES = const(16384)
_RESET_MARK = "reset.rec"  # why the firmware reset the chip itself (read once at boot)
_RESET_MAGIC = "PUMPRST"
_NAME_DIGITS = const(6)  # ev000001.log: a segment a day for 2700 years


class OsFs:
    """The Pico's filesystem as a storage ``fs``: ``OsFs(os, open, "/")``.

    Paths given to it are relative to ``root`` (for example "/" or "/flash").
    """

    def __init__(self, os_module, open_fn, root="/"):
        self._os = os_module
        self._open = open_fn
        self._root = root if root.endswith("/") else root + "/"

    def open(self, path, mode="r"):
        return self._open(self._root + path, mode)

    def rename(self, old, new):
        self._os.rename(self._root + old, self._root + new)

    def remove(self, path):
        self._os.remove(self._root + path)

    def listdir(self, path=""):
        return self._os.listdir(self._root + path)

    def stat(self, path):
        return self._os.stat(self._root + path)


class Loaded:
    """What a load found: ``status`` OK / MISSING / CORRUPT, the value, and why not."""

    def __init__(self, status, value=None, reason=None, unknown=None):
        self.status = status
        self.value = value
        self.reason = reason
        self.unknown = unknown or []


def _missing(err):
    return err.args and err.args[0] == _ENOENT


def read_file(fs, path):
    """The bytes of a file, or None when there is no such file."""
    try:
        with fs.open(path, "rb") as f:
            return f.read()
    except OSError as err:
        if _missing(err):
            return None
        raise


def write_atomic(fs, path, data):
    """Replace ``path`` with ``data`` whole: write a new file, then rename it over."""
    temp = path + ".new"
    with fs.open(temp, "wb") as f:
        f.write(data)
    fs.rename(temp, path)


class SettingsStore:
    """The settings file: named sections (see ``records.SettingsFormat``)."""

    def __init__(self, fs, fmt=None, path="settings.rec"):
        self.fs = fs
        self.format = fmt or settings_format()
        self.path = path

    def load(self):
        """Loaded with value = {section: object}; unknown = keys this firmware does not know."""
        data = read_file(self.fs, self.path)
        if data is None:
            return Loaded(MISSING, reason="no settings file")
        try:
            values, unknown = self.format.decode(data)
        except CorruptRecord as err:
            return Loaded(CORRUPT, reason=str(err))
        return Loaded(OK, values, unknown=unknown)

    def save(self, values):
        """Write {section: object} atomically. Raises OSError (ENOSPC...) on failure."""
        write_atomic(self.fs, self.path, self.format.encode(values))


class CheckpointStore:
    """The therapy checkpoint in two alternating slots."""

    def __init__(self, fs, slots=("ckpt_a.rec", "ckpt_b.rec")):
        self.fs = fs
        self.slots = slots
        self.seq = 0  # sequence number of the newest valid checkpoint
        self._current = 1  # slot holding it; the next write goes to the other one

    def load(self):
        """Loaded with the newest valid Checkpoint; reason names any spoiled slot."""
        best = None
        best_slot = 1
        reasons = []
        found = 0
        for i in range(2):
            data = read_file(self.fs, self.slots[i])
            if data is None:
                continue
            found += 1
            try:
                checkpoint = decode_checkpoint(data)
            except CorruptRecord as err:
                reasons.append("%s: %s" % (self.slots[i], err))
                continue
            if best is None or checkpoint.seq > best.seq:
                best = checkpoint
                best_slot = i
        reason = "; ".join(reasons) if reasons else None
        if best is None:
            return Loaded(CORRUPT if found else MISSING, reason=reason or "no checkpoint")
        self.seq = best.seq
        self._current = best_slot
        return Loaded(OK, best, reason=reason)

    def save(self, checkpoint):
        """Write ``checkpoint`` (its ``seq`` is set here) into the older slot."""
        checkpoint.seq = self.seq + 1
        slot = 1 - self._current
        with self.fs.open(self.slots[slot], "wb") as f:
            f.write(checkpoint.encode())
        self.seq = checkpoint.seq
        self._current = slot


class EventStore:
    """The event log on flash: append-only segments of fixed-size records.

    ``open()`` finds the last good sequence number; ``append`` adds a record;
    ``newest_first()``, ``since(seq)`` and ``recent(n)`` read back. ``torn`` and
    ``skipped`` count damaged records found at open and while reading.
    """

    def __init__(self, fs, segments=_SEGMENTS, segment_bytes=_SEGMENT_BYTES, prefix="ev"):
        self.fs = fs
        self.max_segments = segments
        self.per_segment = segment_bytes // LOG_RECORD_SIZE
        self.prefix = prefix
        self.last_seq = 0
        self.torn = 0
        self.skipped = 0
        self._numbers = []  # segment numbers on flash, oldest first
        self._count = 0  # records (whole or not) in the newest segment
        self._fresh = True  # the next append starts a new segment
        self._buf = bytearray(LOG_RECORD_SIZE)

    def _name(self, number):
        return "%s%06d.log" % (self.prefix, number)

    def _size(self, number):
        try:
            return self.fs.stat(self._name(number))[6]
        except OSError as err:
            if _missing(err):
                return 0
            raise

    def open(self):
        """Scan the segment names and the tail of the log; return the last good seq."""
        numbers = []
        plen = len(self.prefix)
        for name in self.fs.listdir(""):
            digits = name[plen : plen + _NAME_DIGITS]
            if (
                name[:plen] == self.prefix
                and name[plen + _NAME_DIGITS :] == ".log"
                and len(digits) == _NAME_DIGITS
                and digits.isdigit()
            ):
                numbers.append(int(digits))
        numbers.sort()
        self._numbers = numbers
        self.last_seq = 0
        self._fresh = True
        if not numbers:
            return 0
        size = self._size(numbers[-1])
        self._count = size // LOG_RECORD_SIZE
        damaged = size % LOG_RECORD_SIZE != 0
        if damaged:
            self.torn += 1
        for number in reversed(numbers):
            found = self._last_good(number)
            if found is None:
                damaged = True
                continue
            if found[1]:
                damaged = True
            self.last_seq = found[0]
            break
        # Append after damage would leave it in the middle of the log: start afresh.
        self._fresh = damaged or self._count >= self.per_segment
        return self.last_seq

    def _last_good(self, number):
        """(seq of the last valid record, whether any record after it failed) or None."""
        n = self._size(number) // LOG_RECORD_SIZE
        bad = False
        with self.fs.open(self._name(number), "rb") as f:
            for i in range(n - 1, -1, -1):
                f.seek(i * LOG_RECORD_SIZE)
                f.readinto(self._buf)
                try:
                    return decode_event(self._buf)[0], bad
                except CorruptRecord:
                    self.torn += 1
                    bad = True
        return None

    def append(self, t_ms, wall_s, etype, fields, seq=None):
        """Add one event to the log (its records stay in one segment); return its sequence
        number: ``seq``, the pump's own, or the next one. OSError on failure."""
        if seq is None:
            seq = self.last_seq + 1
        record = encode_event(seq, t_ms, wall_s, etype, fields)
        n = len(record) // LOG_RECORD_SIZE
        if self._fresh or self._count + n > self.per_segment or not self._numbers:
            self._new_segment()
        with self.fs.open(self._name(self._numbers[-1]), "ab") as f:
            f.write(record)
        self._count += n
        self.last_seq = seq
        return seq

    def append_event(self, event, wall_s=None):
        """Add an ``EventLog`` event tuple (seq, t_ms, type, fields)."""
        return self.append(event[1], wall_s, event[2], event[3])

    def _new_segment(self):
        numbers = self._numbers
        while len(numbers) >= self.max_segments:
            try:
                self.fs.remove(self._name(numbers[0]))
            except OSError as err:
                if not _missing(err):
                    raise
            numbers.pop(0)
        numbers.append(numbers[-1] + 1 if numbers else 1)
        self._count = 0
        self._fresh = False

    def _records(self, number, newest_first):
        n = self._size(number) // LOG_RECORD_SIZE
        buf = bytearray(LOG_RECORD_SIZE)
        try:
            f = self.fs.open(self._name(number), "rb")
        except OSError as err:
            if _missing(err):
                return
            raise
        try:
            for j in range(n):
                i = n - 1 - j if newest_first else j
                f.seek(i * LOG_RECORD_SIZE)
                f.readinto(buf)
                try:
                    yield decode_event(buf)
                except CorruptRecord:
                    self.skipped += 1
        finally:
            f.close()

    def _read_segment(self, number, newest_first):
        """The segment's events, each with the fields of its extra records."""
        held = None  # oldest first: the event whose extra records may follow
        chunks = []  # type: list[bytes]
        chunk_seq = -1
        for record in self._records(number, newest_first):
            if record[3] == EXTRA_CODE:
                if newest_first:
                    if chunks and chunk_seq != record[0]:
                        chunks = []  # extras whose first record is lost
                    chunk_seq = record[0]
                    chunks.insert(0, record[4])
                elif held is not None and held[0] == record[0]:
                    chunks.append(record[4])
                continue
            if newest_first:
                yield merge(record, chunks if chunk_seq == record[0] else None)
                chunks = []
                continue
            if held is not None:
                yield merge(held, chunks)
            held = record
            chunks = []
        if held is not None:
            yield merge(held, chunks)

    def newest_first(self):
        """Iterate events (seq, t_ms, wall_s, type, fields), newest first."""
        for number in reversed(list(self._numbers)):
            yield from self._read_segment(number, True)

    def since(self, seq):
        """Iterate events with a sequence number above ``seq``, oldest first."""
        for number in list(self._numbers):
            for event in self._read_segment(number, False):
                if event[0] > seq:
                    yield event

    def recent(self, n=50, before=None):
        """The last ``n`` events, newest first (for the history screen); ``before``: only
        those with a lower sequence number (the next page)."""
        out = []
        events = self.newest_first()
        for event in events:
            if before is not None and event[0] >= before:
                continue
            out.append(event)
            if len(out) >= n:
                break
        events.close()
        return out

    def segment_names(self):
        return [self._name(number) for number in self._numbers]


class Storage:
    """Settings, checkpoint and event log on one filesystem."""

    def __init__(self, fs, settings_fmt=None, segments=_SEGMENTS, segment_bytes=_SEGMENT_BYTES):
        self.fs = fs
        self.settings = SettingsStore(fs, settings_fmt)
        self.checkpoint = CheckpointStore(fs)
        self.log = EventStore(fs, segments, segment_bytes)

    def mark_reset(self, reason, error=None):
        """Before the firmware resets the chip itself: say why, for the next boot (on the
        rp2 port such a reset reads back as the watchdog's)."""
        mark = encode_json_record(_RESET_MAGIC, 1, {"r": reason, "e": error})
        write_atomic(self.fs, _RESET_MARK, mark)

    def take_reset_mark(self):
        """(reason, error) of a reset the firmware made itself, or None; used once."""
        data = read_file(self.fs, _RESET_MARK)
        if data is None:
            return None
        try:
            self.fs.remove(_RESET_MARK)
        except OSError:
            pass
        try:
            mark = decode_json_record(data, _RESET_MAGIC, 1)[1]
            reason, error = mark["r"], mark["e"]
        except (CorruptRecord, KeyError):
            return ("unknown", None)
        return (str(reason), None if error is None else str(error))

    def boot(self):
        """Read what is on flash: (settings Loaded, checkpoint Loaded); opens the log."""
        settings = self.settings.load()
        checkpoint = self.checkpoint.load()
        self.log.open()
        return settings, checkpoint
