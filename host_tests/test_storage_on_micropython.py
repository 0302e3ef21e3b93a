"""Storage runs on a real MicroPython: through os/open on the fake flash mounted as a VFS.

The records and state core tests run there too (test_core_on_micropython picks up
every module in host_tests/core/).
"""

import pytest

from mpy.wasm import GUEST_PATHS, run_micropython

pytestmark = [pytest.mark.micropython, pytest.mark.slow]

PATHS = GUEST_PATHS + ("/input/sim/hw",)

SETUP = """
import os
from flashfs import FlashFS, PowerCut
from pump.core.state import Checkpoint
from pump.core.therapy import Settings
from pump.hal.storage import OsFs, Storage

flash = FlashFS()
os.mount(flash, "/flash")

def storage():
    s = Storage(OsFs(os, open, "/flash"))
    return s, s.boot()
"""


def _run(body):
    code = SETUP + "try:\n" + body + "\nexcept Exception as e:\n    print('ERROR', repr(e))\n"
    stdout, stderr = run_micropython(code, PATHS)
    assert "ERROR" not in stdout, stdout + stderr
    return stdout.split()


def test_storage_round_trips_through_a_mounted_vfs_and_skips_a_torn_record():
    out = _run(
        """
    store, (settings, ckpt) = storage()
    print(settings.status, ckpt.status)
    s = Settings()
    s.max_bolus_mu = 4500
    store.settings.save({"therapy": s})
    for reservoir in (900, 800):
        c = Checkpoint()
        c.reservoir_steps = reservoir
        store.checkpoint.save(c)
    for i in range(20):
        store.log.append(i * 1000, None, "basal_rate", {"rate_mu_per_h": i})
    store, (settings, ckpt) = storage()
    print(settings.status, settings.value["therapy"].max_bolus_mu)
    print(ckpt.value.seq, ckpt.value.reservoir_steps)
    print(store.log.last_seq, [e[0] for e in store.log.recent(3)])
    print(sorted(os.listdir("/flash")))
    name = store.log.segment_names()[-1]
    flash.files[name] = flash.files[name][:-7]  # the last record torn
    store, _ = storage()
    print(store.log.last_seq, store.log.torn, store.log.append(0, None, "boot", {}))
"""
    )
    assert out[:2] == ["missing", "missing"]
    assert out[2:6] == ["ok", "4500", "2", "800"]
    assert "".join(out[6:10]) == "20[20,19,18]"
    assert out[10:14] == ["['ckpt_a.rec',", "'ckpt_b.rec',", "'ev000001.log',", "'settings.rec']"]
    # A torn last record is skipped and reported; numbering goes on from the last good one.
    assert out[14:] == ["19", "1", "20"]


def test_power_cuts_through_the_vfs_leave_old_or_new():
    out = _run(
        """
    store, _ = storage()
    s = Settings()
    store.settings.save({"therapy": s})
    for i in range(3):
        store.log.append(i, None, "boot", {})
    results = []
    for cut in range(1, 5):  # create, write, close, rename of the next settings save
        flash.cut_at(cut)
        s.max_bolus_mu = 1000 * cut
        try:
            store.settings.save({"therapy": s})
            store.log.append(0, None, "boot", {})
        except PowerCut:
            pass
        flash.reboot()
        store, (settings, _) = storage()
        results.append(settings.value["therapy"].max_bolus_mu)
        results.append(store.log.last_seq)
    print(results)
"""
    )
    # Cuts 1-2 (create, write of settings.rec.new): the old settings. From cut 3 on the
    # .new file left by cut 2 exists, so the save is write, close, rename: cut 3 is at
    # the rename, the commit point, which did not happen: still the old settings. Cut 4
    # falls on the log append after a completed save: the new settings, and the append
    # that was cut is not in the log.
    assert "".join(out) == "[10000,3,10000,3,10000,3,4000,3]"

