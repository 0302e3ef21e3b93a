"""A fake flash filesystem with littlefs semantics, power cuts on demand and a wear count.

``FlashFS`` offers the calls of MicroPython's ``os`` module (open, rename, remove,
listdir, stat, mkdir, statvfs) and the VFS protocol (mount, umount, ilistdir, chdir,
getcwd), so it can be injected into ``pump.hal.storage`` or mounted with
``os.mount(fs, "/flash")`` under a real MicroPython. It runs on both.

What it models:
* littlefs commits: a file's new content becomes durable at ``flush()`` or
  ``close()``; until then a power cut leaves the last committed content. Creating a
  file (open for write of a missing file), rename, remove and mkdir are atomic.
  ``atomic=False`` models a filesystem without that guarantee (FAT-like): writes go
  straight to flash and a cut in the middle of a write leaves half of it.
* power cuts: every mutating operation (create, write, flush, close, rename, remove,
  mkdir, rmdir) is counted; ``cut_at(n)`` raises ``PowerCut`` at the n-th from now and
  ``cut_randomly(seed, one_in)`` at random ones. After a cut every call raises
  PowerCut until ``reboot()``, which drops open files and keeps only durable state.
* capacity: ENOSPC once the blocks in use would exceed ``capacity``.
* wear: bytes programmed and 4 KB block erases, with littlefs's copy-on-write (a
  rewritten file goes to new blocks; an append after a commit copies the tail block),
  small files inline in the directory's metadata log, and allocation that moves
  round-robin over the partition (littlefs's wear levelling, simplified).
"""

ENOENT = 2
EBADF = 9
EEXIST = 17
EISDIR = 21
EINVAL = 22
ENOSPC = 28

_S_IFDIR = 0x4000
_S_IFREG = 0x8000

PICO_FS_BYTES = 848 * 1024  # the littlefs partition assumed for a 2 MB Pico
BLOCK = 4096
PROG = 256  # the rp2 port mounts littlefs with progsize=256 (its flash programs pages)
# Files up to this size live inline in the directory's metadata log: littlefs's
# default inline limit, min(cache 4 x 256, 1022, block / 8).
INLINE_MAX = 512
_ENTRY = 40  # metadata bytes one commit of one entry costs (tag, name, struct, CRC)


class PowerCut(Exception):
    """The supply dropped: nothing after this reaches flash."""


def _err(code):
    return OSError(code, "flashfs error %d" % code)


def _round_up(n, unit):
    return (n + unit - 1) // unit * unit


class FlashFile:
    """An open file: reads from a snapshot, writes into a buffer committed at flush/close."""

    def __init__(self, fs, path, mode):
        self._fs = fs
        self.path = path
        self.binary = "b" in mode
        self.writing = "w" in mode or "a" in mode or "+" in mode
        self.appending = "a" in mode
        self.closed = False
        self.generation = fs.generation
        data = fs.files.get(path)
        if "w" in mode:
            data = b""
        self.buf = bytearray(data or b"")
        self.committed_len = len(fs.files.get(path, b""))
        self.pos = len(self.buf) if self.appending else 0
        self.dirty = "w" in mode  # a truncation is a change to commit

    def _live(self):
        if self.closed:
            raise _err(EBADF)
        self._fs.check_power()

    def write(self, data):
        self._live()
        if not self.writing:
            raise _err(EBADF)
        if type(data) is str:
            data = data.encode()
        if self.appending:
            self.pos = len(self.buf)
        end = self.pos + len(data)
        self._fs.reserve(self.path, end if end > len(self.buf) else len(self.buf))
        try:
            self._fs.op("write")
        except PowerCut:
            if not self._fs.atomic:
                # Written straight to flash, the cut leaves the first half of it.
                half = data[: len(data) // 2]
                self.buf[self.pos : self.pos + len(half)] = half
                self._fs.files[self.path] = bytes(self.buf)
            raise
        self.buf[self.pos : end] = data
        self.pos = end
        self.dirty = True
        if not self._fs.atomic:
            self._fs.commit(self)
        return len(data)

    def flush(self):
        self._live()
        if self.writing:
            self._fs.op("flush")
            if self.dirty:
                self._fs.commit(self)

    def close(self):
        if self.closed:
            return
        if self.generation != self._fs.generation or not self._fs.powered:
            self.closed = True  # a handle from before a cut: nothing left to do
            return
        if self.writing:
            self._fs.op("close")
            if self.dirty:
                self._fs.commit(self)
        self.closed = True
        self._fs.open_files.remove(self)

    def read(self, n=-1):
        self._live()
        if n is None or n < 0:
            n = len(self.buf) - self.pos
        data = bytes(self.buf[self.pos : self.pos + n])
        self.pos += len(data)
        return data if self.binary else data.decode()

    def readinto(self, buf):
        self._live()
        data = self.buf[self.pos : self.pos + len(buf)]
        buf[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def readline(self):
        self._live()
        end = bytes(self.buf).find(b"\n", self.pos)
        end = len(self.buf) if end < 0 else end + 1
        return self.read(end - self.pos)

    def seek(self, offset, whence=0):
        self._live()
        if whence == 1:
            offset += self.pos
        elif whence == 2:
            offset += len(self.buf)
        if offset < 0:
            raise _err(EINVAL)
        self.pos = offset
        return offset

    def tell(self):
        return self.pos

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self):
        line = self.readline()
        while line:
            yield line
            line = self.readline()


class FlashFS:
    """The fake partition. ``files`` and ``dirs`` are what is durable on flash."""

    def __init__(self, capacity=PICO_FS_BYTES, block=BLOCK, atomic=True):
        self.capacity = capacity
        self.block = block
        self.n_blocks = capacity // block
        self.atomic = atomic
        self.files = {}  # path -> bytes, durable
        self.dirs = {""}  # "" is the root
        self.open_files = []
        self.powered = True
        self.generation = 0
        self.cwd = ""
        # Fault injection.
        self.ops = 0  # mutating operations since creation
        self.op_log = []  # kind of each operation, when ``trace`` is on
        self.trace = False
        self._cut_at = None
        self._rng = 0
        self._one_in = 0
        # Wear.
        self.bytes_programmed = 0
        self.erases = 0
        self.block_erases = [0] * self.n_blocks
        self._next_block = 0
        self._meta_fill = {}  # directory -> bytes used in its metadata block

    # ----- fault injection ---------------------------------------------------------------

    def cut_at(self, n):
        """Cut the power at the n-th mutating operation from now (1 = the next one)."""
        self._cut_at = self.ops + n

    def cut_randomly(self, seed, one_in):
        """Cut at each mutating operation with probability 1/one_in (seeded, repeatable)."""
        self._rng = (seed * 2654435761 + 1) & 0x7FFFFFFF
        self._one_in = one_in

    def _random_hit(self):
        self._rng = (self._rng * 1103515245 + 12345) & 0x7FFFFFFF
        return (self._rng >> 8) % self._one_in == 0

    def check_power(self):
        if not self.powered:
            raise PowerCut("no power")

    def op(self, kind):
        """Count a mutating operation; cut the power here if asked."""
        self.check_power()
        self.ops += 1
        if self.trace:
            self.op_log.append(kind)
        if self.ops == self._cut_at or (self._one_in and self._random_hit()):
            self._cut_at = None
            self._one_in = 0
            self.powered = False
            raise PowerCut("power cut at operation %d (%s)" % (self.ops, kind))

    def reboot(self):
        """Power back on: open files are gone, flash holds what was committed."""
        self.powered = True
        self.generation += 1
        self.open_files = []
        self._cut_at = None
        self._one_in = 0

    # ----- durable state and wear ----------------------------------------------------------

    def _erase_next(self):
        block = self._next_block
        self._next_block = (block + 1) % self.n_blocks
        self.block_erases[block] += 1
        self.erases += 1

    def _program(self, nbytes):
        self.bytes_programmed += _round_up(nbytes, PROG)

    def _meta_commit(self, path, nbytes):
        """A commit to the metadata log of the directory holding ``path``."""
        folder = path.rsplit("/", 1)[0] if "/" in path else ""
        used = self._meta_fill.get(folder, 0) + _round_up(nbytes + _ENTRY, PROG)
        if used > self.block:
            # Compaction: the live entries are copied to the other block of the pair.
            self._erase_next()
            used = _round_up(nbytes + _ENTRY, PROG) + self._live_meta(folder)
            self._program(used)
        else:
            self._program(nbytes + _ENTRY)
        self._meta_fill[folder] = used

    def _live_meta(self, folder):
        total = 0
        for path in self.files:
            if (path.rsplit("/", 1)[0] if "/" in path else "") == folder:
                size = len(self.files[path])
                total += _ENTRY + (size if size <= INLINE_MAX else 0)
        return total

    def _blocks_of(self, size):
        return 0 if size <= INLINE_MAX else (size + self.block - 1) // self.block

    def used_blocks(self):
        """Blocks in use: two per directory for metadata, plus the data of big files."""
        used = 2 * len(self.dirs)
        for data in self.files.values():
            used += self._blocks_of(len(data))
        for f in self.open_files:
            if f.dirty:
                used += self._blocks_of(len(f.buf))
        return used

    def reserve(self, path, new_size):
        """Raise ENOSPC if growing an open file to ``new_size`` does not fit."""
        old = self._blocks_of(len(self.files.get(path, b"")))
        if self.used_blocks() - old + self._blocks_of(new_size) > self.n_blocks:
            raise _err(ENOSPC)

    def commit(self, f):
        """Make an open file's content durable, counting what littlefs would program."""
        data = bytes(f.buf)
        old = self.files.get(f.path, b"")
        size = len(data)
        if size <= INLINE_MAX:
            self._meta_commit(f.path, size)
        else:
            appended = len(old) > INLINE_MAX and data[: len(old)] == old
            if appended:
                # The tail block is copied to a fresh block, then the new bytes follow.
                start = len(old) - len(old) % self.block
            else:
                start = 0
            for _ in range((size - start + self.block - 1) // self.block):
                self._erase_next()
            self._program(size - start)
            self._meta_commit(f.path, 0)
        self.files[f.path] = data
        f.committed_len = size
        f.dirty = False

    # ----- path handling -------------------------------------------------------------------

    def _path(self, path):
        if not path.startswith("/"):
            path = (self.cwd + "/" + path) if self.cwd else path
        parts = [p for p in path.split("/") if p and p != "."]
        return "/".join(parts)

    def _parent_exists(self, path):
        folder = path.rsplit("/", 1)[0] if "/" in path else ""
        return folder in self.dirs

    # ----- os / VFS calls ------------------------------------------------------------------

    def mount(self, readonly, mkfs):
        pass

    def umount(self):
        pass

    def open(self, path, mode="r"):
        self.check_power()
        path = self._path(path)
        if path in self.dirs:
            raise _err(EISDIR)
        exists = path in self.files
        if not exists:
            if "r" in mode and "+" not in mode:
                raise _err(ENOENT)
            if not self._parent_exists(path):
                raise _err(ENOENT)
            self.op("create")
            self._meta_commit(path, 0)
            self.files[path] = b""
        f = FlashFile(self, path, mode)
        if not self.atomic and "w" in mode and exists and self.files[path]:
            self.files[path] = b""  # a truncation goes straight to flash
        self.open_files.append(f)
        return f

    def rename(self, old, new):
        self.check_power()
        old = self._path(old)
        new = self._path(new)
        if old not in self.files:
            raise _err(ENOENT)
        if new in self.dirs or not self._parent_exists(new):
            raise _err(EISDIR if new in self.dirs else ENOENT)
        self.op("rename")
        self._meta_commit(new, 2 * _ENTRY)
        self.files[new] = self.files.pop(old)

    def remove(self, path):
        self.check_power()
        path = self._path(path)
        if path not in self.files:
            raise _err(EISDIR if path in self.dirs else ENOENT)
        self.op("remove")
        self._meta_commit(path, 0)
        del self.files[path]

    def mkdir(self, path):
        self.check_power()
        path = self._path(path)
        if path in self.dirs or path in self.files:
            raise _err(EEXIST)
        if not self._parent_exists(path):
            raise _err(ENOENT)
        self.op("mkdir")
        self._meta_commit(path, 0)
        self.dirs.add(path)

    def rmdir(self, path):
        self.check_power()
        path = self._path(path)
        if path not in self.dirs or not path:
            raise _err(ENOENT)
        if self.listdir(path):
            raise _err(EINVAL)
        self.op("rmdir")
        self._meta_commit(path, 0)
        self.dirs.remove(path)

    def ilistdir(self, path=""):
        self.check_power()
        folder = self._path(path)
        if folder not in self.dirs:
            raise _err(ENOENT)
        prefix = folder + "/" if folder else ""
        entries = []
        for name in sorted(self.dirs):
            if name and name.startswith(prefix) and "/" not in name[len(prefix) :]:
                entries.append((name[len(prefix) :], _S_IFDIR, 0, 0))
        for name in sorted(self.files):
            if name.startswith(prefix) and "/" not in name[len(prefix) :]:
                entries.append((name[len(prefix) :], _S_IFREG, 0, len(self.files[name])))
        return iter(entries)

    def listdir(self, path=""):
        return [entry[0] for entry in self.ilistdir(path)]

    def stat(self, path):
        self.check_power()
        path = self._path(path)
        if path in self.dirs:
            return (_S_IFDIR, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        if path in self.files:
            return (_S_IFREG, 0, 0, 0, 0, 0, len(self.files[path]), 0, 0, 0)
        raise _err(ENOENT)

    def statvfs(self, path=""):
        free = self.n_blocks - self.used_blocks()
        return (self.block, self.block, self.n_blocks, free, free, 0, 0, 0, 0, 255)

    def chdir(self, path):
        path = self._path(path)
        if path not in self.dirs:
            raise _err(ENOENT)
        self.cwd = path

    def getcwd(self):
        return "/" + self.cwd
