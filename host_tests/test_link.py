"""The serial link on the simulated pump: read commands answered at once, therapy changes held
for OK on the pump, expiry, replay, bad frames, events, and the locked console."""

import os
import sys

import machine
import micropython
import pytest

import pump
from pump import link as link_mod
from pump.core import events as ev
from pump.core import protocol as p
from pump.hal.usb_serial import UsbSerial
from sim.hw.usbcdc import UsbCdcPipe
from test_link_rig import LinkRig, TickClock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def therapy_snapshot(app):
    """Everything a therapy change could touch."""
    s = app.therapy.settings
    profiles = [(pr.name, list(pr.segments)) for pr in s.profiles]
    return (
        s.max_bolus_mu, s.max_basal_mu_per_h, s.increment_mu, s.bolus_speed_mu_per_min,
        s.active_profile, profiles, app.therapy.bolus, app.therapy.temp,
        app.therapy.ms_of_day(0),  # the wall clock's offset: moves only when the clock is set
    )


@pytest.fixture
def rig():
    return LinkRig()


# ----- read-only commands --------------------------------------------------------------


def test_hello_and_version_name_the_pump_its_firmware_and_board(rig):
    hello = rig.last(p.HELLO)
    assert hello.status == p.OK
    assert hello.fields["device"] == "pico-insulin-pump"
    assert hello.fields["protocol"] == "1"
    assert hello.fields["firmware"] == pump.VERSION  # the package's one version string
    assert rig.last("version").fields == hello.fields


def test_status_reports_delivery_reservoir_battery_and_alarms_at_once(rig):
    status = rig.last("status")
    f = status.fields
    assert status.status == p.OK
    assert f["basal_mu_per_h"] == "800"
    assert f["profile"] == "Standard"
    assert f["suspended"] == "0"
    assert int(f["reservoir_mu"]) > 290_000
    assert f["alarms"] == "-"
    assert f["held"] == "0"


def test_settings_lists_each_profile_then_the_limits(rig):
    answers = rig.ask("settings")
    assert [a.status for a in answers] == [p.MORE, p.OK]
    assert answers[0].fields == {"profile": "0", "name": "Standard", "basal": "00:00/800"}
    final = answers[-1].fields
    assert final["max_bolus"] == "10000"
    assert final["increment"] == "50"
    assert final["active_profile"] == "0"


def test_history_pages_through_the_event_log_after_a_given_seq(rig):
    first = rig.ask("history", 0, 3)
    assert [a.status for a in first] == [p.MORE] * 3 + [p.OK]
    seqs = [int(a.fields["seq"]) for a in first[:-1]]
    assert seqs == sorted(seqs) and first[-1].fields["last_seq"] == str(seqs[-1])
    assert first[0].fields["type"] in (ev.BOOT, ev.BASAL_RATE)
    rest = rig.ask("history", seqs[-1], 50)
    assert all(int(a.fields["seq"]) > seqs[-1] for a in rest[:-1])
    assert {a.fields["type"] for a in rest[:-1]} >= {ev.SELF_TEST}


def test_hash_from_source_says_so_and_from_an_image_gives_its_manifest(rig, tmp_path):
    assert rig.last("hash").fields == {"manifest": "-", "source": "1"}
    (tmp_path / "main.py").write_bytes(b"print('pump')\n")
    import hashlib
    import json

    manifest = {"format": 1, "board": "pico_default", "mpy_arch": "armv6m",
                "files": {"main.py": hashlib.sha256(b"print('pump')\n").hexdigest()}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    rig.app.firmware_root = str(tmp_path)
    f = rig.last("hash").fields
    assert f["manifest"] == hashlib.sha256((tmp_path / "manifest.json").read_bytes()).hexdigest()
    assert f["files_ok"] == "1" and f["checked"] == "1"
    (tmp_path / "main.py").write_bytes(b"print('changed')\n")
    f = rig.last("hash").fields
    assert f["files_ok"] == "0" and f["changed"] == "1"


# ----- therapy changes: held for the person ------------------------------------------


def test_a_bolus_waits_for_ok_on_the_pump_then_runs(rig):
    before = len(rig.events(ev.BOLUS_STARTED))
    pending = rig.last("bolus", 1000)
    assert pending.status == p.PENDING
    ident = int(pending.fields["id"])
    rig.run(5000)
    assert len(rig.events(ev.BOLUS_STARTED)) == before  # nothing runs from the wire alone
    assert "USB: bolus?" in rig.screen() and "1.00 U" in rig.screen()
    assert rig.last("confirm_status", ident).fields["state"] == "pending"
    rig.sim.press("OK")
    assert len(rig.events(ev.BOLUS_STARTED)) == before + 1
    assert rig.app.therapy.bolus.requested_mu == 1000
    assert rig.last("confirm_status", ident).fields["state"] == "applied"
    assert "USB: bolus?" not in rig.screen()
    outcome = rig.events(ev.REMOTE_OUTCOME)[-1][3]
    assert outcome["outcome"] == "applied" and outcome["command"] == "bolus"


def test_back_on_the_pump_rejects_the_change(rig):
    before = therapy_snapshot(rig.app)
    ident = int(rig.last("temp", "percent", 150, 60).fields["id"])
    rig.sim.press("BACK")
    assert rig.last("confirm_status", ident).fields["state"] == "rejected"
    assert therapy_snapshot(rig.app) == before


def test_an_unconfirmed_change_expires_after_60_s_and_changes_nothing(rig):
    before = therapy_snapshot(rig.app)
    ident = int(rig.last("bolus", 2000).fields["id"])
    rig.run(59_000)
    assert rig.last("confirm_status", ident).fields["state"] == "pending"
    rig.run(1_100)
    status = rig.last("confirm_status", ident).fields
    assert status["state"] == "expired"
    assert "USB: bolus?" not in rig.screen()
    rig.sim.press("OK")  # too late: the key meets the home screen's menu, not the change
    assert rig.app.therapy.bolus is None
    assert therapy_snapshot(rig.app) == before


def test_the_expiry_wakes_the_main_loop_by_itself(rig):
    ident = int(rig.last("bolus", 2000).fields["id"])
    assert rig.link.next_wake_ms() == rig.link.held.expires_ms
    rig.run(61_000)
    assert rig.link.find(ident).state == "expired"


def test_one_change_waits_at_a_time(rig):
    rig.last("bolus", 1000)
    busy = rig.last("bolus", 1000)
    assert busy.status == p.ERR and busy.fields["code"] == p.E_BUSY


def test_a_change_the_pump_would_refuse_is_refused_at_once_with_the_reason(rig):
    before = therapy_snapshot(rig.app)
    cases = (
        (("bolus", 12_000), "bolus 12.00 U is above the max bolus 10.00 U"),
        (("temp", "rate", 5000, 60), "above the max basal 3.00 U/h"),
        (("settings_put", "active_profile=3"), "there is no profile 3"),
        (("settings_put", "max_basal=500"), "profile Standard has 0.80 U/h, above that max"),
    )
    for request, reason in cases:
        answer = rig.last(*request)
        assert answer.status == p.ERR and answer.fields["code"] == p.E_REFUSED, request
        assert reason in answer.fields["msg"], (request, answer.fields["msg"])
        assert rig.link.held is None and "USB:" not in rig.screen()
        assert rig.events(ev.REFUSED)[-1][3]["reason"] == answer.fields["msg"]
    assert therapy_snapshot(rig.app) == before


def test_the_max_bolus_is_the_reason_even_when_the_hourly_limit_is_lower(rig):
    assert rig.app.set_limits(10_000, 1_000) is None
    assert rig.app.set_insulin_limits(2_000, 20_000) is None  # 2 U an hour
    answer = rig.last("bolus", 12_000)
    assert answer.fields["code"] == p.E_REFUSED and "max bolus" in answer.fields["msg"]
    assert not [e for e in rig.events(ev.ALARM) if e[3]["code"] == "over_limit_request"]


def test_a_change_the_pump_refuses_once_confirmed_is_reported(rig):
    ident = int(rig.last("bolus", 2000).fields["id"])
    assert rig.app.suspend() is None  # things moved on while the change waited
    rig.sim.press("OK")
    status = rig.last("confirm_status", ident).fields
    assert status["state"] == "refused" and "suspended" in status["reason"]
    assert rig.app.therapy.bolus is None
    assert "Not done" in rig.screen()


def test_temp_basal_and_time_set_apply_after_ok(rig):
    rig.last("temp", "rate", 1200, 90)
    rig.sim.press("OK")
    temp = rig.app.therapy.temp
    assert temp is not None and temp.value == 1200 and temp.end_ms - temp.start_ms == 5_400_000
    rig.last("time_set", "2026-11-21T08:30:00")
    rig.sim.press("OK")
    assert rig.app.therapy.ms_of_day(rig.app.now_ms()) // 60_000 == 8 * 60 + 30
    assert machine.RTC().datetime()[:7] == (2026, 11, 21, 5, 8, 30, 0)  # a Saturday


def test_settings_put_applies_every_key_or_none(rig):
    # The increment must change before a max bolus that is a multiple of only the new one.
    rig.last("settings_put", "max_bolus=10010", "increment=10", "name1=Work day",
             "basal1=00:00/700,06:30/1250", "active_profile=1")
    rig.sim.press("OK")
    s = rig.app.therapy.settings
    assert (s.max_bolus_mu, s.increment_mu, s.active_profile) == (10010, 10, 1)
    assert s.profiles[1].name == "Work day" and s.profiles[1].segments == [(0, 700), (13, 1250)]
    before = therapy_snapshot(rig.app)
    answer = rig.last("settings_put", "max_bolus=5000", "max_basal=1000")
    # Profile 1 runs 1.25 U/h: above that max basal in every order; nothing is held.
    assert answer.fields["code"] == p.E_REFUSED and "Work day" in answer.fields["msg"]
    assert therapy_snapshot(rig.app) == before


def test_without_a_screen_a_change_is_refused_at_once():
    rig = LinkRig(display=False)
    answer = rig.last("bolus", 1000)
    assert answer.status == p.ERR and answer.fields["code"] == p.E_CANNOT_CONFIRM
    assert rig.link.held is None


# ----- sequence numbers and bad frames ---------------------------------------------------


def test_a_repeated_or_lower_seq_is_refused_and_nothing_runs(rig):
    assert rig.last("status", seq=5).status == p.OK
    again = rig.last("bolus", 1000, seq=5)
    assert again.status == p.ERR and again.fields["code"] == p.E_REPLAY
    lower = rig.last("bolus", 1000, seq=4)
    assert lower.fields["code"] == p.E_REPLAY
    assert rig.link.held is None
    assert rig.last(p.HELLO, seq=1).status == p.OK  # a new session starts numbering again
    assert rig.last("status", seq=2).status == p.OK


def test_bad_frames_are_answered_with_errors_and_change_nothing(rig):
    before = therapy_snapshot(rig.app)
    good = p.encode_request(7, "bolus", 1000)
    damaged = good.replace(b"1000", b"9000")
    answers = rig.send(damaged + b"\x03\x00junk\n" + b"x" * 600 + b"\n" + b"7 bolus *zz\n")
    codes = [a.fields["code"] for a in answers]
    assert codes == [p.E_BAD_CRC, p.E_NOT_ASCII, p.E_TOO_LONG, p.E_NO_CRC]
    assert rig.link.held is None and therapy_snapshot(rig.app) == before
    assert rig.link.decoder.buffered() < p.MAX_REQUEST_LINE
    assert rig.last("status", seq=8).status == p.OK  # the link still answers


def test_every_request_and_outcome_is_an_event_and_repeats_are_counted(rig):
    rig.ask("status")
    rig.ask("status")
    rig.ask("status")
    rig.ask("bolus", 1000)
    rig.sim.press("BACK")
    requests = [e[3] for e in rig.events(ev.REMOTE_REQUEST)]
    assert requests[-2]["command"] == "status" and requests[-2]["count"] == 3
    assert requests[-1]["command"] == "bolus" and requests[-1]["outcome"] == p.PENDING
    assert rig.events(ev.REMOTE_OUTCOME)[-1][3]["outcome"] == "rejected"


# ----- the port -----------------------------------------------------------------------------


def test_the_port_never_blocks_and_reads_at_most_its_buffer():
    pipe = UsbCdcPipe()
    port = UsbSerial(pipe.rx, pipe.tx, pipe.poller, rx_buf=16)
    assert bytes(port.read()) == b""  # nothing waiting: returns at once
    pipe.send(b"a" * 40)
    assert bytes(port.read()) == b"a" * 16
    assert pipe.pending() == 24
    port.write(b"1 ok *00000000\n")
    assert pipe.receive() == b"1 ok *00000000\n"


def test_a_port_that_takes_nothing_drops_the_line_instead_of_waiting():
    class Stuck:
        def write(self, data):
            return 0

    pipe = UsbCdcPipe()
    port = UsbSerial(pipe.rx, Stuck(), pipe.poller)
    port.write(b"1 ok *00000000\n")
    assert port.dropped == 15


# ----- locked mode ----------------------------------------------------------------------------


class _Keys:
    def __init__(self, mask, release_after_reads=0):
        self.mask = mask
        self.reads = 0
        self.release_after = release_after_reads

    def read_mask(self):
        self.reads += 1
        if self.release_after and self.reads > self.release_after:
            return 0
        return self.mask


def test_the_console_is_locked_unless_up_and_back_are_held_at_power_up():
    assert link_mod.lock_console(_Keys(0), micropython, TickClock()) is True
    assert micropython.state.kbd_intr_char == -1
    assert link_mod.lock_console(_Keys(1), micropython, TickClock()) is True  # UP alone
    assert link_mod.lock_console(None, micropython, TickClock()) is True
    clock = TickClock()
    assert link_mod.lock_console(_Keys(1 | 8, release_after_reads=3), micropython, clock) is False
    assert micropython.state.kbd_intr_char == 3  # Ctrl-C reaches the REPL again
    assert 0 < clock.t < 5000  # waited for the keys to be let go before the self-test


def test_boot_py_locks_the_console_first_thing():
    micropython.state.kbd_intr_char = 3
    with open(os.path.join(ROOT, "firmware", "boot.py")) as f:
        exec(compile(f.read(), "boot.py", "exec"), {"__name__": "boot"})
    assert micropython.state.kbd_intr_char == -1


def test_main_py_locks_the_console_with_the_board_keys_before_the_app_starts():
    with open(os.path.join(ROOT, "firmware", "main.py")) as f:
        source = f.read()
    lock = source.index("lock_console(hardware.buttons, micropython, time, fs)")
    assert source.index('fs = OsFs(os, open, "/")') < lock  # the flash, for maintenance
    assert "Storage(fs)" in source
    assert lock < source.index('App(hardware, time, storage=storage, firmware_root="/").run()')
    assert "machine.reset()" in source  # locked mode never falls through to the REPL
    assert sys.modules["micropython"] is micropython


def test_the_link_lets_its_change_and_listing_modules_go_after_each_answer(rig):
    import pump

    rig.ask("history", 0, 5)
    rig.ask("settings")
    rig.last("bolus", 1000)
    rig.sim.press("OK")
    for name in ("pump.link_change", "pump.link_read", "pump.core.setup"):
        assert name not in sys.modules, name
    assert not hasattr(pump, "link_change") and not hasattr(pump, "link_read")
    assert rig.app.therapy.bolus is not None  # and the bolus was carried out


def test_extended_dual_suspend_resume_and_cancels_wait_for_ok_then_run(rig):
    therapy = rig.app.therapy
    rig.last("extended", 1000, 60)
    assert "USB: extended?" in rig.screen() and "over 1:00 h" in rig.screen()
    rig.sim.press("OK")
    assert therapy.bolus.kind == "extended" and therapy.bolus.requested_mu == 1000
    rig.last("cancel_bolus")
    assert "Stop the bolus" in rig.screen() and "of    1.00 U" in rig.screen(), rig.screen()
    rig.sim.press("OK")
    assert therapy.bolus is None
    rig.last("dual", 2000, 30, 90)
    screen = rig.screen()
    assert "now   0.60 U" in screen and "later 1.40 U" in screen and "over 1:30 h" in screen
    rig.sim.press("OK")
    assert therapy.bolus.kind == "dual" and therapy.bolus.requested_mu == 2000
    rig.last("suspend")
    assert "and the bolus" in rig.screen(), rig.screen()
    rig.sim.press("OK")
    assert therapy.suspended_at is not None and therapy.bolus is None
    rig.last("resume")
    assert "0.80 U/h" in rig.screen(), rig.screen()
    rig.sim.press("OK")
    assert therapy.suspended_at is None
    rig.last("temp", "percent", 50, 60)
    rig.sim.press("OK")
    rig.last("cancel_temp")
    assert "50 %" in rig.screen(), rig.screen()
    rig.sim.press("OK")
    assert therapy.temp is None


def test_the_other_changes_are_refused_at_once_when_the_pump_would_refuse_them(rig):
    cases = (
        (("cancel_bolus",), "no bolus is running"),
        (("cancel_temp",), "no temp basal is running"),
        (("resume",), "delivery is not suspended"),
        (("extended", 12_000, 60), "above the max bolus 10.00 U"),
        (("dual", 1000, 50, 600), None),  # 600 min: beyond the protocol's 480
    )
    for request, reason in cases:
        answer = rig.last(*request)
        assert answer.status == p.ERR and rig.link.held is None, request
        if reason is None:
            assert answer.fields["code"] == p.E_BAD_ARGS
        else:
            assert answer.fields["code"] == p.E_REFUSED and reason in answer.fields["msg"]
    assert rig.app.suspend() is None
    answer = rig.last("suspend")
    assert answer.fields["code"] == p.E_REFUSED and "already suspended" in answer.fields["msg"]


def test_history_pages_from_the_start_of_a_long_stored_log():
    from sim.hw.flashfs import FlashFS

    rig = LinkRig(flash=FlashFS())
    app = rig.app
    for i in range(450):  # more than any window of recent events
        app.events.emit(app.now_ms(), "note", i=i)
    rig.run(100)
    first = rig.ask("history", 0, 5)
    seqs = [int(a.fields["seq"]) for a in first[:-1]]
    assert seqs == sorted(seqs) and len(seqs) == 5 and seqs[0] <= 2, seqs
    later = rig.ask("history", 300, 3)
    assert [int(a.fields["seq"]) for a in later[:-1]] == [301, 302, 303]
