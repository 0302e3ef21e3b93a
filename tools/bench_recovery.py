"""`make bench`: flash writes of a typical day, flash life, boot to basal, and power cuts.

Runs the firmware on the fake flash (sim/hw/flashfs.py, littlefs semantics and
wear count) and writes docs/bench/recovery.md:

* a typical day (1 U/h basal, 6 boluses of 4 U at 1.5 U/min, 2 temp basals, a settings
  change): flash operations, checkpoints, block erases, bytes programmed;
* flash life: erases a day spread over the free blocks, against 100,000 cycles;
* boot to basal: the virtual time from power-on to the first basal train, plus the flash
  reads at boot at the RP2040's read speed;
* the short test day cut at every flash operation, then ``--cuts`` (default 1000) random
  cuts (at a write or an instant, 0-30 min off, clock kept or lost), each judged by
  ``host_tests/recovery_day.check``.
"""

import os
import random
import sys
import time

import pumptext
from sim.pump import SimPump

from sim import recovery_day as rd
from sim.hw.flashfs import FlashFS

from pump.core import bolus as bolus_mod
from pump.core.schedule import TEMP_PERCENT

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOUR_MS = 3_600_000
CYCLES = 100_000  # W25Q16JV: minimum erase/program cycles per sector
FREE_BLOCKS = 150  # of the 212-block partition, after the firmware's own files (docs/storage.md)
XIP_READ_BYTES_PER_S = 5_000_000  # scattered reads through the XIP cache (docs/storage.md)
MOUNT_READ_BYTES = 8 * 1024 + 40 * 1024  # superblock, root pair, lookahead scan (estimate)


def typical_day():
    sim = SimPump(start_ms_of_day=0, prepare_board=rd._no_display, flash=FlashFS())
    for hour in (7, 10, 13, 16, 19, 22):
        sim.at(hour * HOUR_MS, lambda app: app.bolus(bolus_mod.NORMAL, 4_000))
    for hour in (3, 15):
        sim.at(hour * HOUR_MS, lambda app: app.temp_basal(TEMP_PERCENT, 150, 60 * 60_000))
    sim.at(12 * HOUR_MS, lambda app: app.set_limits(9_000, 3_000))
    flash = sim.flash
    ops0, erases0, bytes0 = flash.ops, flash.erases, flash.bytes_programmed
    writes0 = sim.app.persistence.writes
    started = time.perf_counter()
    sim.run_until(24 * HOUR_MS)
    wall = time.perf_counter() - started
    return {
        "ops": flash.ops - ops0,
        "checkpoints": sim.app.persistence.writes - writes0,
        "events": sim.app.persistence.storage.log.last_seq,
        "erases": flash.erases - erases0,
        "bytes": flash.bytes_programmed - bytes0,
        "trains": len(sim.deliveries),
        "wall_s": wall,
    }


def boot_to_basal():
    """Virtual ms from power-on to the first basal train, and the bytes read at boot."""
    sim = SimPump(start_ms_of_day=0, prepare_board=rd._no_display, flash=FlashFS())
    sim.run_until(10 * 60_000)
    sim.clock_backup = True
    files = sim.flash.files
    read = sum(len(files[n]) for n in ("settings.rec", "ckpt_a.rec", "ckpt_b.rec") if n in files)
    read += 2 * 48
    sim.power_loss(0)
    booted = sim.now_ms()
    before = len(sim.deliveries)
    while len(sim.deliveries) == before:
        sim.run_until(sim.now_ms() + 100)
    # A basal train starts when the first step falls due (1 step = 5.3 s at 0.8 U/h): the
    # pump is ready for basal as soon as start() returns and the timer is armed.
    ready_ms = sim.app.events.last("self_test")[1]
    return ready_ms, read, sim.deliveries[before][0] - 0, booted


def exhaustive():
    total = rd.count_ops()[0]
    failed = []
    for op in range(1, total + 1):
        sim = rd.cut_day(op, clock_backup=op % 2 == 0)
        if not sim.cuts or rd.check(sim):
            failed.append(op)
    return total, failed


def random_cuts(n, seed=1):
    rng = random.Random(seed)
    total = rd.count_ops()[0]
    failed = []
    for i in range(n):
        off_ms = rng.randrange(31) * 60_000
        backup = rng.random() < 0.5
        if rng.random() < 0.5:
            sim = rd.cut_day(rng.randint(1, total), off_ms, backup)
        else:
            sim = rd.cut_at_instant(rng.randrange(rd.END_MS), off_ms, backup)
        problems = rd.check(sim)
        if problems:
            failed.append((i, problems))
    return failed


def main(argv=None):
    parser = pumptext.OneLineParser(prog="bench_recovery.py",
                                    description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "bench"))
    parser.add_argument("--cuts", type=pumptext.positive_int, default=1000)
    args = parser.parse_args(argv)
    print("typical day on flash ...", end=" ", flush=True)
    day = typical_day()
    print("%.1f s" % day["wall_s"])
    per_block = day["erases"] / FREE_BLOCKS
    years = CYCLES / per_block / 365 if per_block else float("inf")
    ready_ms, boot_bytes, _first, _booted = boot_to_basal()
    read_ms = (boot_bytes + MOUNT_READ_BYTES) * 1000 / XIP_READ_BYTES_PER_S
    print("cut at every flash operation of the test day ...", end=" ", flush=True)
    started = time.perf_counter()
    total, failed_ops = exhaustive()
    print("%d cuts, %d failed, %.1f s" % (total, len(failed_ops), time.perf_counter() - started))
    print("%d random cuts ..." % args.cuts, end=" ", flush=True)
    started = time.perf_counter()
    failed_random = random_cuts(args.cuts)
    print("%d failed, %.1f s" % (len(failed_random), time.perf_counter() - started))
    lines = [
        "# Recovery benchmark",
        "",
        "Measured by `tools/bench_recovery.py` (`make bench`) on the fake flash.",
        "",
        "| Figure | Value |",
        "|---|---|",
        "| typical day: flash operations | %d |" % day["ops"],
        "| typical day: checkpoints written | %d (for %d pulse trains) |"
        % (day["checkpoints"], day["trains"]),
        "| typical day: events logged | %d |" % day["events"],
        "| typical day: 4 KB block erases | %d |" % day["erases"],
        "| typical day: bytes programmed | %d |" % day["bytes"],
        "| erases per block per day (%d free blocks) | %.2f |" % (FREE_BLOCKS, per_block),
        "| flash life at %d cycles | %.0f years |" % (CYCLES, years),
        "| boot: self-test done, basal armed (virtual) | %d ms |" % ready_ms,
        "| boot: flash reads (files %d B + mount ~%d KB) at %d MB/s | %.1f ms |"
        % (boot_bytes, MOUNT_READ_BYTES // 1024, XIP_READ_BYTES_PER_S // 1_000_000, read_ms),
        "| power cuts, every flash operation of the test day | %d, %d failed |"
        % (total, len(failed_ops)),
        "| power cuts, random (write or instant, 0-30 min off) | %d, %d failed |"
        % (args.cuts, len(failed_random)),
        "",
        "Boot to basal on the Pico = module imports (not measured here) + the figures above;",
        "the self-test's load-cell reads dominate what is measured.",
    ]
    text = "\n".join(lines)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "recovery.md")
    with open(path, "w") as f:
        f.write(text + "\n")
    print()
    print(text)
    print("written to %s" % path)
    return 1 if failed_ops or failed_random else 0


if __name__ == "__main__":
    sys.exit(main())
