"""Setup from the computer: `pumpctl setup [FILE.toml]` on a new pump over the simulated link.
The pump checks every value before it asks, shows what it got in a person's units, applies
the settings and the clock only on OK, and then delivers basal with no alarm left over."""

import datetime
import io

import pytest

import pumpctl
import simlink
from pump.core import alarms as al
from pump.core import events as ev
from pump.core import protocol as p
from pump.hal.storage import Storage
from sim.hw.flashfs import FlashFS
from test_link_rig import LinkRig

MIN_MS = 60_000
NOW = datetime.datetime(2026, 12, 4, 9, 30, 0)


def new_flash():
    flash = FlashFS()
    flash.files["placeholder"] = b""  # not empty: the simulator does not set it up itself
    return flash


@pytest.fixture
def sim():
    links = []

    def start(**kw):
        link = simlink.SimLink(**kw).start()
        links.append(link)
        return link

    yield start
    for link in links:
        if not link._stop.is_set():
            link.stop()


def run(link, *argv, **kw):
    out, err = io.StringIO(), io.StringIO()
    code = pumpctl.main(["--sim", link.path, "--timeout", "3", *argv], out=out, err=err, **kw)
    return code, out.getvalue(), err.getvalue()


def codes(app):
    return sorted(a.code for a in app.alarms.alarms)


def screens_seen(link):
    """Record the screen each time a change starts waiting, then press OK."""
    seen = []

    def on_held(lk, change):
        seen.append((lk.sim.screen_text(), lk.link.describe(change)))
        lk.sim.press("OK")

    return seen, on_held


def test_pumpctl_setup_on_a_new_pump_takes_one_ok_and_basal_starts_with_no_alarm(sim):
    seen, on_held = screens_seen(None)
    link = sim(on_held=on_held, flash=new_flash())
    app = link.sim.app
    assert codes(app) == [al.SET_TIME, al.SET_UP] and app.therapy.suspended_at is not None
    code, out, err = run(link, "setup", now=lambda: NOW)
    assert code == 0, err
    assert "factory settings" in out and "Waiting for OK on the pump" in out
    screen, summary = seen[0]
    assert "USB: set up?" in screen and "2026-12-04 09:30" in screen
    assert "Standard" in screen and "00:00 0.80 U/h" in screen
    assert "set up: 2026-12-04 09:30" in summary and "Max bol 10.00 U" in summary
    assert "Max bas 3.00U/h" in summary
    assert "Max/day 80.00 U" in summary and "Auto-off 12 h" in summary
    link.stop()  # the rest runs on the simulator alone, in this thread
    link.sim.run_until(link.sim.now_ms() + 20 * MIN_MS)
    assert codes(app) == [] and app.therapy.suspended_at is None
    assert [d for d in link.sim.deliveries if d[1] == "basal"]
    assert app.therapy.ms_of_day(app.now_ms()) // MIN_MS >= 9 * 60 + 30
    assert Storage(link.sim.flash).settings.load().status == "ok"
    outcome = [e for e in link.sim.events if e[2] == ev.REMOTE_OUTCOME][-1][3]
    assert outcome["command"] == "setup" and outcome["outcome"] == "applied"
    setup_events = [e for e in link.sim.events if e[2] == ev.SETTINGS_CHANGED]
    assert setup_events[-1][3]["setup"] == 1


def test_pumpctl_setup_from_a_file_sends_every_setting_and_a_long_profile(sim, tmp_path):
    seen, on_held = screens_seen(None)
    link = sim(on_held=on_held, flash=new_flash())
    rows = ", ".join('["%02d:00", %.2f]' % (h, 0.5 + h * 0.05) for h in range(24))
    path = tmp_path / "mine.toml"
    path.write_text(
        "max_bolus = 8.0\nmax_basal = 2.0\nbolus_increment = 0.1\nmax_hour = 6\nmax_day = 40\n"
        'auto_off = 0\nlow_reservoir = 30\n[profiles]\n'
        "Hourly = [%s]\n" % rows
    )
    code, _out, err = run(link, "setup", str(path), now=lambda: NOW)
    assert code == 0, err
    link.stop()
    s = link.sim.app.therapy.settings
    assert (s.max_bolus_mu, s.max_basal_mu_per_h, s.increment_mu) == (8000, 2000, 100)
    assert (s.max_hour_mu, s.max_day_mu, s.auto_off_h, s.low_reservoir_mu) == (
        6000, 40_000, 0, 30_000)
    assert s.profiles[0].name == "Hourly" and len(s.profiles[0].segments) == 24
    assert s.profiles[0].segments[23] == (46, 1650)
    puts = [e for e in link.sim.events
            if e[2] == ev.REMOTE_REQUEST and e[3]["command"] == "setup_put"]
    assert len(puts) >= 1 and sum(e[3].get("count", 1) for e in puts) >= 2  # over two lines
    assert "Hourly" in seen[0][0]


def test_a_setup_the_pump_would_refuse_is_refused_at_once_and_nothing_waits(sim, tmp_path):
    link = sim(flash=new_flash())
    path = tmp_path / "bad.toml"
    path.write_text('max_basal = 0.5\n[profiles]\nHigh = [["00:00", 0.8]]\n')
    code, _out, err = run(link, "setup", str(path), now=lambda: NOW)
    assert code == pumpctl.EXIT_REFUSED
    assert "refused" in err and "profile High has 0.80 U/h, above that max basal" in err
    assert err.count("\n") == 1
    link.stop()
    app = link.sim.app
    assert link.link.held is None and al.SET_UP in codes(app)
    assert app.therapy.suspended_at is not None


def test_setup_applies_the_time_sent_plus_the_time_the_person_took():
    rig = LinkRig(flash=new_flash())
    rig.last("setup_put", "max_bolus=5000")
    pending = rig.last("setup", "2026-12-04T09:30:00")
    assert pending.status == p.PENDING
    rig.run(40_000)  # the person reads the screen for 40 s
    assert "USB: set up?" in rig.screen()
    rig.sim.press("OK")
    app = rig.app
    assert codes(app) == [] and app.therapy.settings.max_bolus_mu == 5000
    seconds = app.therapy.ms_of_day(app.now_ms()) // 1000
    assert 9 * 3600 + 30 * 60 + 40 <= seconds <= 9 * 3600 + 30 * 60 + 41
    assert rig.sim.board.rtc.datetime()[:6] == (2026, 12, 4, 4, 9, 30)  # a Friday


def test_time_set_too_applies_the_time_waited():
    rig = LinkRig()
    rig.last("time_set", "2026-11-21T08:30:00")
    rig.run(25_000)
    rig.sim.press("OK")
    seconds = rig.app.therapy.ms_of_day(rig.app.now_ms()) // 1000
    assert 8 * 3600 + 30 * 60 + 25 <= seconds <= 8 * 3600 + 30 * 60 + 26


def test_back_on_a_setup_changes_nothing_and_the_staged_settings_are_dropped():
    rig = LinkRig(flash=new_flash())
    rig.last("setup_put", "max_bolus=5000")
    rig.last("setup", "2026-12-04T09:30:00")
    rig.sim.press("BACK")
    app = rig.app
    assert al.SET_UP in codes(app) and app.therapy.settings.max_bolus_mu == 10_000
    assert rig.link.draft is None
    rig.last("setup", "2026-12-04T09:31:00")  # sent again: factory settings this time
    rig.sim.press("OK")
    assert codes(app) == [] and app.therapy.settings.max_bolus_mu == 10_000


def test_setup_put_checks_each_value_and_a_profile_may_come_in_parts():
    rig = LinkRig()
    bad = rig.last("setup_put", "max_day=900000")
    assert bad.fields["code"] == p.E_BAD_ARGS and "max_day must be from" in bad.fields["msg"]
    assert "U" in bad.fields["msg"]
    orphan = rig.last("setup_put", "basal1=06:00/900")
    assert orphan.fields["code"] == p.E_BAD_ARGS and "does not go on" in orphan.fields["msg"]
    assert rig.last("setup_put", "basal1=00:00/700", "name1=Two").fields["staged"] == "2"
    assert rig.last("setup_put", "basal1=06:00/900").status == p.OK
    assert rig.link.draft["basal1"] == ((0, 700), (12, 900))
    rig.last(p.HELLO)
    assert rig.link.draft is None  # a new session stages its own


def test_setup_is_refused_while_a_bolus_runs():
    rig = LinkRig()
    assert rig.app.bolus("normal", 2000) is None
    answer = rig.last("setup", "2026-12-04T09:30:00")
    assert answer.fields["code"] == p.E_REFUSED and "bolus is running" in answer.fields["msg"]


def test_the_confirm_screen_and_the_host_prompt_say_what_is_confirmed_in_units():
    rig = LinkRig()
    rig.last("bolus", 2500)
    screen = rig.screen()
    assert "USB: bolus?" in screen and "2.50 U" in screen and "1.5 U/min" in screen, screen
    prompt = rig.link.describe(rig.link.held)
    assert prompt.startswith("bolus: Normal bolus, 2.50 U, at 1.5 U/min, takes ")
    rig.sim.press("BACK")
    rig.last("temp", "rate", 1200, 90)
    assert rig.link.describe(rig.link.held) == "temp: Temp basal, 1.20 U/h, for 1:30 h"
    rig.sim.press("BACK")
    rig.last("settings_put", "max_bolus=8000", "name1=Work", "basal1=00:00/700,06:00/900",
             "active_profile=1")
    prompt = rig.link.describe(rig.link.held)
    for part in ("Max bol 8.00 U", "Work", "00:00 0.70 U/h", "06:00 0.90 U/h", "Use Work"):
        assert part in prompt, prompt
    assert "mU" not in prompt and "8000" not in prompt
    rig.last("hello")
    rig.sim.press("BACK")
    rig.last("time_set", "2026-12-04T09:30:00")
    assert rig.link.describe(rig.link.held) == (
        "set clock: Set the clock to, 2026-12-04, 09:30:00, + the time until OK")


@pytest.mark.parametrize("line, said", [
    ("max_hour = nan", "max_hour"),
    ("max_day = 900", "max_day"),
    ("auto_off = 2.5", "auto_off"),
    ("low_reservoir = \"lots\"", "low_reservoir"),
])
def test_a_bad_setup_file_is_refused_in_one_line_before_anything_is_sent(sim, tmp_path, line,
                                                                         said):
    link = sim(flash=new_flash())
    path = tmp_path / "bad.toml"
    path.write_text(line + "\n")
    code, _out, err = run(link, "setup", str(path), now=lambda: NOW)
    assert code == pumpctl.EXIT_USAGE and err.count("\n") == 1 and said in err, err
    link.stop()
    assert not [e for e in link.sim.events if e[2] == ev.REMOTE_REQUEST
                and e[3]["command"] in ("setup_put", "setup")]


def test_pumpctl_extended_dual_suspend_resume_and_cancels_are_done_on_one_ok_each(sim):
    link = sim(on_held=lambda lk, _c: lk.sim.press("OK"))
    therapy = link.sim.app.therapy
    steps = (
        (["extended", "2", "--minutes", "60"], lambda: therapy.bolus.kind == "extended"),
        (["cancel-bolus"], lambda: therapy.bolus is None),
        (["dual", "2", "--now", "50", "--minutes", "60"], lambda: therapy.bolus.kind == "dual"),
        (["suspend"], lambda: therapy.suspended_at is not None and therapy.bolus is None),
        (["resume"], lambda: therapy.suspended_at is None),
        (["temp-basal", "--percent", "50", "--minutes", "30"], lambda: therapy.temp is not None),
        (["cancel-temp"], lambda: therapy.temp is None),
    )
    for argv, done in steps:
        code, _out, err = run(link, *argv)
        assert code == 0, (argv, err)
        assert done(), argv


def test_a_held_setup_applies_what_it_showed_even_if_more_is_staged_meanwhile():
    rig = LinkRig(flash=new_flash())
    rig.last("setup_put", "max_bolus=5000")
    rig.last("setup", "2026-12-04T09:30:00")
    assert "Max bol 5.00 U" in rig.link.describe(rig.link.held)
    assert rig.last("setup_put", "max_bolus=7000").status == p.OK  # staged for a next one
    rig.sim.press("OK")
    assert rig.app.therapy.settings.max_bolus_mu == 5000


def test_a_setup_of_a_pump_already_set_up_says_it_replaces_every_setting():
    rig = LinkRig()  # set up and delivering
    rig.last("setup", "2026-12-04T09:30:00")
    assert "Replaces all" in rig.screen(), rig.screen()
    assert rig.link.describe(rig.link.held).startswith("set up: Replaces all, 2026-12-04")
    rig.sim.press("BACK")
    new = LinkRig(flash=new_flash())
    new.last("setup", "2026-12-04T09:30:00")
    assert "Replaces all" not in new.screen()


def test_pumpctl_profile_delete_removes_a_profile_on_one_ok_and_not_the_active_one(sim):
    seen, on_held = screens_seen(None)
    link = sim(on_held=on_held)
    app = link.sim.app
    link.call(lambda lk: lk.sim.app.save_profile(1, "Sport", [(0, 500)]))
    link.call(lambda lk: lk.sim.app.save_profile(2, "Night", [(0, 600)]))
    code, _out, err = run(link, "profile", "delete", "Sport")
    assert code == 0, err
    assert "USB: delete?" in seen[-1][0] and "Sport" in seen[-1][0] and "12.00 U/day" in seen[-1][0]
    assert [p.name for p in app.therapy.settings.profiles] == ["Standard", "Night"]
    link.stop()
    answer = LinkRig()
    refused = answer.last("profile_delete", 0)
    assert refused.fields["code"] == p.E_REFUSED and "active one" in refused.fields["msg"]
    missing = answer.last("profile_delete", 3)
    assert missing.fields["code"] == p.E_REFUSED and "no profile 3" in missing.fields["msg"]
