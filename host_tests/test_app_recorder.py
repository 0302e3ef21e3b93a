"""No insulin without a durable record; the log on flash is complete, across reboots."""

import machine

from pump.core import alarms as al
from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core.limits import SPEED_QUICK_MU_MIN
from pump.core.schedule import BasalProfile
from pump.core.therapy import Settings
from pump.hal.storage import Storage
from sim.hw.flashfs import FlashFS
from sim.pump import SimPump

MIN = 60_000
HOUR = 3_600_000


def flash_settings():
    s = Settings()
    s.max_basal_mu_per_h = 5000
    s.profiles = [BasalProfile("Test", [(0, 1000)], 5000)]
    s.bolus_speed_mu_per_min = SPEED_QUICK_MU_MIN
    return s


def _no_display(board):
    board.display = None


class FailingFS:
    """The fake flash, with writes to chosen files failing from a moment on (EIO)."""

    def __init__(self, flash):
        self.flash = flash
        self.failing = ()  # name prefixes whose writes fail

    def __getattr__(self, name):
        return getattr(self.flash, name)

    def open(self, path, mode="r"):
        if "r" not in mode and any(path.startswith(p) for p in self.failing):
            raise OSError(5)
        return self.flash.open(path, mode)

    def rename(self, old, new):
        if any(new.startswith(p) for p in self.failing):
            raise OSError(5)
        return self.flash.rename(old, new)


def on_flash(fs=None):
    flash = FlashFS()
    sim = SimPump(settings=flash_settings(), start_ms_of_day=8 * HOUR, flash=flash,
                  prepare_board=_no_display, line_test=False)
    sim.clock_backup = True
    return sim


def failing_pump(prefixes, at_ms):
    sim = on_flash()
    wrapper = FailingFS(sim.flash)
    storage = sim.app.persistence.storage
    for part in (storage, storage.settings, storage.checkpoint, storage.log):
        part.fs = wrapper

    def fail(_app):
        wrapper.failing = prefixes

    sim.at(at_ms, fail)
    return sim, wrapper


def assert_stopped_for_storage(sim, failed_at):
    app = sim.app
    alarm = app.alarms.find(al.STORAGE)
    assert alarm is not None and alarm.priority == al.HIGH
    assert app.therapy.suspended_at is not None
    assert app.therapy.bolus is None
    late = [d for d in sim.deliveries if d[0] > failed_at + 1_000]
    assert late == []


def test_a_failing_checkpoint_write_stops_delivery_before_the_next_train():
    sim, _fs = failing_pump(("ckpt",), 3 * MIN)
    sim.at(3 * MIN + 100, lambda app: app.bolus(bolus_mod.NORMAL, 2_000))
    sim.run_until(20 * MIN)
    assert_stopped_for_storage(sim, 3 * MIN)


def test_a_failing_log_write_stops_delivery_with_a_high_alarm():
    sim, _fs = failing_pump(("ev",), 3 * MIN)
    sim.at(3 * MIN + 100, lambda app: app.bolus(bolus_mod.NORMAL, 2_000))
    sim.run_until(20 * MIN)
    assert_stopped_for_storage(sim, 3 * MIN)
    assert sim.app.bolus(bolus_mod.NORMAL, 1_000) is not None


def test_a_full_flash_stops_delivery_with_a_high_alarm():
    sim = on_flash()
    sim.run_until(2 * MIN)
    flash = sim.flash
    # Something fills the filesystem: no block left for the log or a checkpoint.
    for i in range(10_000):
        try:
            with flash.open("filler%d.bin" % i, "wb") as f:
                f.write(bytes(4096))
        except OSError:
            break
    full_at = sim.now_ms()
    # Events to log (refusals, with their reasons): the log's segment needs a new block.
    for i in range(100):
        sim.at(full_at + 10 + i, lambda app: app.bolus(bolus_mod.NORMAL, 99_000))
    sim.run_until(full_at + 30 * MIN)
    assert_stopped_for_storage(sim, full_at)


def _rebooted_pump():
    sim = on_flash()
    sim.at(MIN, lambda app: app.bolus(bolus_mod.NORMAL, 1_000))
    sim.at(2 * MIN, lambda app: app.bolus(bolus_mod.NORMAL, 99_000))  # refused
    sim.run_until(6 * MIN)
    sim.power_loss(MIN)
    sim.at(sim.now_ms() + MIN, lambda app: app.bolus(bolus_mod.NORMAL, 500))
    sim.run_until(sim.now_ms() + 5 * MIN)
    return sim


def test_history_after_a_reboot_is_one_sequence_complete_and_paged():
    sim = _rebooted_pump()
    app = sim.app
    everything = app.history(10_000)
    seqs = [e[0] for e in everything]
    assert seqs == list(range(seqs[0], 0, -1))  # newest first, every number, none twice
    assert seqs[0] == app.events.seq  # the RAM log and the flash log count alike
    assert app.events.recent(1)[0][0] == seqs[0]
    types = [e[3] for e in everything]
    assert types.count(ev.BOOT) == 2  # both boots, from flash
    # Pages: the next page starts below the last one's oldest event.
    first = app.history(7)
    second = app.history(7, before=first[-1][0])
    assert first + second == everything[:14]
    # Since a sequence number: everything after it, oldest first.
    since = app.history(10_000, since=8)
    assert [e[0] for e in since] == list(range(9, seqs[0] + 1))


def test_every_field_of_every_event_is_kept_on_flash():
    sim = _rebooted_pump()
    store = Storage(sim.flash)
    store.boot()
    on_flash = {e[0]: e for e in store.log.since(0)}
    ram = [e for e in sim.events if e[0] in on_flash]
    assert len(ram) > 12
    for seq, _t_ms, etype, fields in ram:
        stored = on_flash[seq]
        assert stored[3] == etype, seq
        assert stored[4] == fields, (etype, fields, stored[4])
    refused = [e for e in ram if e[2] == ev.REFUSED]
    assert refused and on_flash[refused[0][0]][4]["reason"].startswith("bolus")


def test_a_repeated_fault_is_recorded_each_time():
    sim = on_flash()
    sim.run_until(MIN)
    sim.app.fault(al.INTERNAL, reason="first")
    sim.run_until(2 * MIN)
    sim.app.fault(al.INTERNAL, reason="again")
    sim.run_until(3 * MIN)
    store = Storage(sim.flash)
    store.boot()
    faults = [e for e in store.log.since(0) if e[3] == ev.FAULT]
    assert [f[4]["code"] for f in faults] == [al.INTERNAL, al.INTERNAL]
    assert faults[1][4].get("repeat") == 1


def test_a_deliberate_reset_is_marked_and_told_apart_from_the_watchdog():
    from pump.resets import reset_deliberately

    sim = on_flash()
    sim.run_until(MIN)
    reset_deliberately(sim.app.persistence.storage, "update")
    sim._power_off()
    machine.set_reset_cause(machine.WDT_RESET)
    sim.clock.run_until(sim.clock.now_ns + 1_000_000)
    sim._boot()
    cause = sim.app.events.last(ev.RESET_CAUSE)[3]
    assert cause["cause"] == "deliberate" and cause["reason"] == "update"
    assert sim.app.alarms.find(al.RESET) is None  # not a hang: no alarm
    # The mark is used once: the next watchdog reset is the watchdog's again.
    sim._power_off()
    sim._boot()
    assert sim.app.events.last(ev.RESET_CAUSE)[3]["cause"] == "watchdog"


def test_a_crash_in_locked_mode_is_recorded_on_flash_before_the_reset(monkeypatch):
    import os
    import sys
    import types

    import pytest

    import pump.app
    import pump.hal.storage
    import pump.link

    sim = on_flash()
    sim.run_until(MIN)
    flash = sim.flash

    class Crashing:
        def __init__(self, *args, **kwargs):
            pass

        def run(self):
            raise ZeroDivisionError("division by zero in the test")

    board_module = types.ModuleType("board")
    board_module.build = lambda: sim.board
    monkeypatch.setitem(sys.modules, "board", board_module)
    monkeypatch.setattr(pump.app, "App", Crashing)
    monkeypatch.setattr(pump.hal.storage, "OsFs", lambda *args: flash)
    monkeypatch.setattr(pump.link, "lock_console", lambda *args: True)
    path = os.path.join(os.path.dirname(__file__), "..", "firmware", "main.py")
    source = open(path).read()
    main = {"__name__": "main"}
    exec(compile(source, "main.py", "exec"), main)
    main["boot_check"] = lambda: (None, False)  # the image is whole, the reset not planned
    with pytest.raises(machine.SystemReset):
        main["main"]()
    # The next boot reads the crash record: the cause, and the error, on flash and shown.
    machine.set_reset_cause(machine.WDT_RESET)
    sim._power_off()
    sim._boot()
    cause = sim.app.events.last(ev.RESET_CAUSE)[3]
    assert cause["cause"] == "crash"
    assert "ZeroDivisionError" in cause["reason"]
    assert sim.app.alarms.find(al.RESET) is not None
    store = Storage(flash)
    store.boot()
    crash = [e for e in store.log.since(0) if e[3] == "crash"]
    assert crash and "division by zero" in crash[0][4]["error"]


def test_insulin_on_board_does_not_come_back_after_a_power_cut_with_the_clock_lost():
    sim = on_flash()
    sim.at(MIN, lambda app: app.bolus(bolus_mod.NORMAL, 1_000))
    sim.run_until(7 * HOUR)
    app = sim.app
    before = app.therapy.iob.iob_mu(app.now_ms())
    sim.clock_backup = False  # the Pico has no backup cell: the RTC starts again
    sim.power_loss(MIN)
    app = sim.app
    assert app.alarms.find(al.SET_TIME) is not None
    assert app.therapy.iob.iob_mu(app.now_ms()) <= before
    assert app.set_time_of_day(15 * HOUR + 2 * MIN) is None
    assert app.therapy.iob.iob_mu(app.now_ms()) <= before


def test_insulin_on_board_gets_its_true_age_back_when_the_time_is_set():
    sim = on_flash()
    sim.at(MIN, lambda app: app.bolus(bolus_mod.NORMAL, 2_000))
    sim.run_until(HOUR)
    sim.clock_backup = False
    sim.power_loss(30 * MIN)
    app = sim.app
    # The clock lost: the bolus counts at least as old as at the last checkpoint.
    at_boot = app.therapy.iob.iob_mu(app.now_ms())
    assert 0 < at_boot
    assert app.set_time_of_day(8 * HOUR + sim.now_ms()) is None  # the run began at 08:00
    later = app.therapy.iob.iob_mu(app.now_ms())
    assert later < at_boot  # the 30 min off now count too
    reference = on_flash()
    reference.at(MIN, lambda app: app.bolus(bolus_mod.NORMAL, 2_000))
    reference.run_until(sim.now_ms())
    expected = reference.app.therapy.iob.iob_mu(reference.app.now_ms())
    assert abs(later - expected) <= 20


def test_history_over_the_serial_link_reaches_back_past_a_reboot():
    from test_link_rig import LinkRig

    rig = LinkRig(display=False, flash=FlashFS(), start_ms_of_day=8 * HOUR)
    rig.sim.clock_backup = True
    rig.run(2 * MIN)
    rig.sim.power_loss(MIN)
    rig.run(MIN)
    answers = rig.ask("history", 0, 50)
    seqs = [int(a.fields["seq"]) for a in answers[:-1]]
    types = [a.fields["type"] for a in answers[:-1]]
    assert types.count(ev.BOOT) == 2  # the boot before the cut, from flash, and this one
    assert seqs == list(range(1, len(seqs) + 1))
    page = rig.ask("history", 8, 5)
    assert [int(a.fields["seq"]) for a in page[:-1]] == [9, 10, 11, 12, 13]
