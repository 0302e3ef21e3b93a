"""A restart for maintenance asked over USB (pump/link_maint.py): shown on the pump, done only
on OK there (delivery suspended as by a suspend, state saved, a one-shot mark, a planned
restart), refused while a bolus runs or the keys are locked, expired unconfirmed; the mark
opens development mode for one start only, and a damaged one opens nothing."""

import io

import machine
import micropython
import pytest

import flash
import pumpctl
import simlink
from pump import link as link_mod
from pump import link_maint
from pump.core import alarms as al
from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core import protocol as p
from pump.hal.storage import Storage
from sim.hw.flashfs import FlashFS
from test_link_rig import LinkRig, TickClock

MIN = 60_000


def locked_at_start(fs, buttons=None):
    """lock_console as main.py calls it at power-up: True when the start is locked."""
    return link_mod.lock_console(buttons, micropython, TickClock(), fs)


def restart(sim):
    """The chip restarts after machine.reset(): main.py's lock_console on the flash, then
    the App on the same flash. Returns lock_console's answer (True: locked)."""
    sim._power_off()
    sim.flash.reboot()
    locked = locked_at_start(sim.flash)
    machine.set_reset_cause(machine.WDT_RESET)  # what machine.reset() reads as on the rp2
    sim._boot()
    return locked


@pytest.fixture
def rig():
    """A set-up pump on flash, delivering basal, with its USB port."""
    rig = LinkRig(flash=FlashFS())
    rig.run(MIN)
    rig.last("hello")
    return rig


def refusals(rig):
    return [e[3]["reason"] for e in rig.events(ev.REFUSED)]


def test_maintenance_asks_on_the_pump_and_on_ok_suspends_saves_and_restarts_planned(rig):
    pending = rig.last("maintenance")
    assert pending.status == p.PENDING
    screen = rig.screen()
    assert "USB: restart?" in screen and "Restart for" in screen and "maintenance?" in screen
    assert "Delivery stops" in screen
    assert rig.app.therapy.suspended_at is None and rig.link.restart_at is None
    assert link_maint.MARK_FILE not in rig.sim.flash.files  # nothing before OK

    rig.sim.press("OK")
    assert rig.app.therapy.suspended_at is not None
    suspended = rig.events(ev.SUSPENDED)[-1][3]
    assert suspended["reason"] == "person"  # a suspend like any other: it stays
    outcome = rig.events(ev.REMOTE_OUTCOME)[-1][3]
    assert outcome["command"] == "maintenance" and outcome["outcome"] == "applied"
    files = rig.sim.flash.files
    assert files[link_maint.MARK_FILE] == link_maint.MARK_TEXT
    assert "Restarting for" in rig.screen()
    status = rig.last("confirm_status", int(pending.fields["id"]))
    assert status.fields["state"] == "applied"
    assert 0 < int(status.fields["uptime_ms"]) <= rig.sim.app.now_ms()  # to tell the restart
    told = rig.sim.now_ms()
    with pytest.raises(machine.SystemReset):
        rig.run(10_000)
    assert rig.sim.now_ms() - told <= 1_000  # restarted once the host had read the outcome
    flash_before = dict(rig.sim.flash.files)

    assert restart(rig.sim) is False  # development mode for this start
    assert micropython.state.kbd_intr_char == 3  # Ctrl-C reaches the REPL
    assert link_maint.MARK_FILE not in rig.sim.flash.files  # used up
    app = rig.sim.app
    cause = app.events.last(ev.RESET_CAUSE)[3]
    assert cause["cause"] == "deliberate" and cause["reason"] == "maintenance"
    assert app.alarms.find(al.RESET) is None  # no "The pump restarted"
    assert app.therapy.suspended_at is not None  # the suspend was saved
    stored = [e[3] for e in app.persistence.storage.log.since(0)]
    assert ev.SUSPENDED in stored and ev.REMOTE_OUTCOME in stored
    assert "reset.rec" in flash_before

    # One shot: the start after is locked again; delivery resumes as after any suspend.
    assert restart(rig.sim) is True
    assert micropython.state.kbd_intr_char == -1
    app = rig.sim.app
    assert app.resume() is None
    rig.sim.run_until(rig.sim.now_ms() + 20 * MIN)
    assert [d for d in rig.sim.deliveries if d[1] == "basal" and d[0] > rig.sim.now_ms() - 20 * MIN]


def test_no_restart_before_the_host_asks_longer_than_3_s(rig):
    rig.last("maintenance")
    rig.sim.press("OK")
    at = rig.sim.now_ms()
    with pytest.raises(machine.SystemReset):
        rig.run(10_000)
    assert 2_500 <= rig.sim.now_ms() - at <= 3_500


def test_back_rejects_and_nothing_changes(rig):
    rig.last("maintenance")
    rig.sim.press("BACK")
    rig.run(5_000)
    assert rig.events(ev.REMOTE_OUTCOME)[-1][3]["outcome"] == "rejected"
    assert rig.app.therapy.suspended_at is None and rig.link.restart_at is None
    assert link_maint.MARK_FILE not in rig.sim.flash.files


def test_unconfirmed_within_60_s_it_expires_and_nothing_changes(rig):
    pending = rig.last("maintenance")
    rig.run(61_000)
    status = rig.last("confirm_status", int(pending.fields["id"]))
    assert status.fields["state"] == "expired"
    assert "not confirmed within 60 s" in status.fields["reason"]
    assert rig.app.therapy.suspended_at is None
    files = rig.sim.flash.files
    assert link_maint.MARK_FILE not in files and "reset.rec" not in files


def test_refused_at_once_while_a_bolus_runs(rig):
    assert rig.app.bolus(bolus_mod.NORMAL, 2_000) is None
    rig.run(2_000)
    answer = rig.last("maintenance")
    assert answer.status == p.ERR and answer.fields["code"] == p.E_REFUSED
    assert answer.fields["msg"] == "a bolus is running: let it finish or cancel it first"
    assert rig.link.held is None and rig.app.therapy.bolus is not None
    assert "a bolus is running: let it finish or cancel it first" in refusals(rig)
    assert link_maint.MARK_FILE not in rig.sim.flash.files


def test_refused_at_once_while_the_keys_are_locked(rig):
    rig.app.ui.locked = True
    answer = rig.last("maintenance")
    assert answer.status == p.ERR and answer.fields["code"] == p.E_REFUSED
    assert "the keys are locked" in answer.fields["msg"]
    assert rig.link.held is None and rig.app.therapy.suspended_at is None


def test_a_bolus_started_while_it_waits_is_refused_on_ok(rig):
    rig.last("maintenance")
    rig.app.post(lambda app: app.bolus(bolus_mod.NORMAL, 1_000))
    rig.run(1_000)
    rig.sim.press("OK")
    outcome = rig.events(ev.REMOTE_OUTCOME)[-1][3]
    assert outcome["outcome"] == "refused" and "a bolus is running" in outcome["reason"]
    assert link_maint.MARK_FILE not in rig.sim.flash.files and rig.link.restart_at is None


def test_a_pump_without_storage_refuses():
    rig = LinkRig()
    answer = rig.last("maintenance")
    assert answer.status == p.ERR and "keeps nothing on flash" in answer.fields["msg"]


@pytest.mark.parametrize("content", [
    b"", link_maint.MARK_TEXT[:-1], link_maint.MARK_TEXT + b"x", link_maint.MARK_TEXT.upper(),
    b"\xff" * len(link_maint.MARK_TEXT),
])
def test_a_damaged_mark_opens_nothing_and_is_removed(content):
    fs = FlashFS()
    fs.files[link_maint.MARK_FILE] = content
    assert locked_at_start(fs) is True
    assert micropython.state.kbd_intr_char == -1
    assert link_maint.MARK_FILE not in fs.files


def test_a_mark_that_cannot_be_removed_opens_nothing():
    class StuckFs(FlashFS):
        def remove(self, path):
            raise OSError(30)  # read-only

    fs = StuckFs()
    fs.files[link_maint.MARK_FILE] = link_maint.MARK_TEXT
    assert locked_at_start(fs) is True  # it would open every start: not trusted


def test_up_and_back_held_still_open_development_mode_and_use_up_a_mark():
    class Keys:
        def read_mask(self):
            return link_mod.DEV_KEYS

    fs = FlashFS()
    fs.files[link_maint.MARK_FILE] = link_maint.MARK_TEXT
    assert locked_at_start(fs, Keys()) is False
    assert link_maint.MARK_FILE not in fs.files
    assert locked_at_start(fs) is True


def test_flash_removes_a_mark_left_on_the_pump():
    assert flash.MAINTENANCE_MARK == link_maint.MARK_FILE
    assert flash.stale_files([link_maint.MARK_FILE, "main.py"], ["main.py"]) == [
        link_maint.MARK_FILE]


def test_the_link_lets_the_maintenance_module_go():
    import sys

    rig = LinkRig(flash=FlashFS())
    rig.last("maintenance")
    assert "pump.link_maint" not in sys.modules
    locked_at_start(FlashFS())
    assert "pump.link_maint" not in sys.modules


# ----- pumpctl maintenance, and make flash's ask, over a pty ------------------------------


class RestartingLink(simlink.SimLink):
    """The simulated pump on a pty that starts again when its firmware resets the chip."""

    def __init__(self, **kw):
        simlink.SimLink.__init__(self, flash=FlashFS(), **kw)
        self.starts = []  # lock_console's answer at each start after a reset

    def step(self, sim_ms):
        try:
            simlink.SimLink.step(self, sim_ms)
        except machine.SystemReset:
            self.starts.append(restart(self.sim))
            self.link = self.sim.app.link


@pytest.fixture
def sim():
    links = []

    def start(**kw):
        link = RestartingLink(**kw).start()
        links.append(link)
        return link

    yield start
    for link in links:
        link.stop()


def press_ok(link, _change):
    link.sim.press("OK")


def test_a_restart_is_told_by_the_pump_s_uptime():
    """The pump restarts within 0.3 s of saying "applied" at uptime told: an answer with
    less uptime, or more than 3 s beyond it, is the restarted pump's; between, it may be
    the old one's (asked again)."""
    told = 10_000
    assert pumpctl.restarted(800, told)
    assert not pumpctl.restarted(told, told) and not pumpctl.restarted(told + 300, told)
    assert not pumpctl.restarted(told + pumpctl.RESTART_WITHIN_MS, told)
    assert pumpctl.restarted(told + pumpctl.RESTART_WITHIN_MS + 1, told)


def test_pumpctl_maintenance_waits_for_ok_and_the_pump_restarts_once_unlocked(sim):
    link = sim(on_held=press_ok, speed=5)
    out, err = io.StringIO(), io.StringIO()
    code = pumpctl.main(["--sim", link.path, "--timeout", "30", "maintenance"], out, err)
    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert 'Press OK on the pump: it asks "Restart for maintenance?"' in text
    assert "Waiting for OK on the pump" in text and "The pump restarted in development mode" in text
    assert "pumpctl resume" in text
    assert link.starts == [False]  # it returned once the pump answered after its restart
    out, err = io.StringIO(), io.StringIO()
    code = pumpctl.main(["--sim", link.path, "--timeout", "30", "status", "--json"], out, err)
    assert code == 0 and '"suspended": 1' in out.getvalue()


def test_pumpctl_maintenance_not_confirmed_is_one_line(sim):
    link = sim(on_held=lambda lk, change: lk.sim.press("BACK"))
    out, err = io.StringIO(), io.StringIO()
    code = pumpctl.main(["--sim", link.path, "--timeout", "30", "maintenance"], out, err)
    assert code == pumpctl.EXIT_NOT_CONFIRMED
    assert err.getvalue().count("\n") == 1 and "rejected" in err.getvalue()
    assert link.starts == []


def test_make_flash_asks_a_locked_pump_and_waits_for_its_repl(sim, tmp_path, monkeypatch):
    """The simulator has no REPL: make flash asks for the restart, the pump restarts after
    OK, and the wait for a REPL that never comes ends in one line."""
    from test_flash import build_dir

    monkeypatch.setattr(flash, "_REPL_WAIT_S", 1.0)
    link = sim(on_held=press_ok, speed=5)
    out, err = io.StringIO(), io.StringIO()
    code = flash.main(["--build", str(build_dir(tmp_path)), "--port", link.path, "--wait", "4"],
                      out, err)
    text = out.getvalue()
    assert "asking it to restart in development mode for maintenance" in text
    assert "flash: Press OK on the pump" in text and "OK pressed on the pump" in text
    assert link.starts == [False]
    assert code == pumpctl.EXIT_TIMEOUT
    assert err.getvalue().count("\n") == 1
    assert "did not come back in development mode" in err.getvalue()


def test_the_answer_timeout_is_10_s_and_a_long_wait_shows_its_seconds(monkeypatch):
    assert pumpctl.build_parser().parse_args(["status"]).timeout == 10.0
    monkeypatch.setattr(pumpctl, "PROGRESS_AFTER_S", 0.1)

    class Silent:
        def write(self, data):
            pass

        def flush(self):
            pass

        def read(self, n):
            import time

            time.sleep(0.02)
            return b""

    shown = []
    client = pumpctl.Client(Silent(), 1.3, lambda command, s: shown.append((command, s)))
    with pytest.raises(pumpctl.PumpError) as failed:
        client.request("status")
    assert failed.value.message == "no answer to status within 1.3 s"
    waits = [s for _c, s in shown[:-1]]
    assert waits and waits[0] >= 0.1 and all(b > a for a, b in zip(waits, waits[1:]))
    assert shown[-1] == ("status", None)  # the line is cleared before the error is said
    stream = io.StringIO()
    progress = pumpctl.terminal_progress(stream)
    progress("hello", 4.2)
    progress("hello", None)
    assert stream.getvalue() == "\rpumpctl: waiting for the pump's answer to hello... 4 s\r\033[K"


def test_main_py_starts_in_development_mode_once_after_a_maintenance(monkeypatch):
    """main.py as on the Pico: lock_console reads the mark on the same flash as the App's
    storage, and only the first start after it is unlocked."""
    import os
    import sys
    import types

    import pump.app
    import pump.hal.storage

    fs = FlashFS()
    fs.files[link_maint.MARK_FILE] = link_maint.MARK_TEXT
    ran = []

    class App:
        reset_planned = False

        def __init__(self, board, clock, storage=None, firmware_root=None):
            ran.append((storage.fs, micropython.state.kbd_intr_char))

        def run(self):
            pass

    board_module = types.ModuleType("board")
    board_module.build = lambda: types.SimpleNamespace(buttons=None)
    monkeypatch.setitem(sys.modules, "board", board_module)
    monkeypatch.setattr(pump.app, "App", App)
    monkeypatch.setattr(pump.hal.storage, "OsFs", lambda *args: fs)
    path = os.path.join(os.path.dirname(__file__), "..", "firmware", "main.py")
    main = {"__name__": "main"}
    exec(compile(open(path).read(), "main.py", "exec"), main)
    main["boot_check"] = lambda: (None, False)
    main["main"]()
    sys.modules["board"] = board_module  # main.py lets the board file go after boot
    main["main"]()
    assert ran == [(fs, 3), (fs, -1)]  # unlocked once, then locked
    assert link_maint.MARK_FILE not in fs.files


def test_a_power_cut_anywhere_in_a_maintenance_opens_at_most_one_start():
    """Cut the power at each flash operation from OK on: the pump boots again (locked, as
    after any power cut), and whatever the mark's state, the start after the next one is
    locked; the suspend, once on flash, is not lost."""
    seen_cuts = 0
    for cut in range(1, 18):
        rig = LinkRig(flash=FlashFS())
        rig.run(MIN)
        rig.last("maintenance")
        rig.sim.flash.cut_at(cut)
        try:
            rig.sim.press("OK")
            rig.run(5_000)
        except machine.SystemReset:
            pass  # no cut before the planned restart
        seen_cuts += len(rig.sim.cuts)
        fs = rig.sim.flash
        fs.reboot()
        fs.cut_at(10_000)  # no more cuts
        starts = [locked_at_start(fs), locked_at_start(fs)]
        assert starts[1] is True, cut
        if not starts[0]:  # opened: the mark was whole, so the suspend was saved first
            store = Storage(fs)
            store.boot()
            assert [e for e in store.log.since(0) if e[3] == ev.SUSPENDED], cut
    assert seen_cuts >= 8  # most of the cuts fell inside the maintenance
