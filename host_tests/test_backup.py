"""`pumpctl backup FILE` / `pumpctl restore FILE` over the simulated link: what a change of the
MicroPython image erases (settings, event log) saved, checked, and the settings sent back to
a new pump, applied only with OK on it; a damaged or foreign backup refused in one line,
before anything is sent."""

import datetime
import io
import json

import pytest

import pump_backup
import pumpctl
import simlink
from pump.core import alarms as al
from sim.hw.flashfs import FlashFS

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


def run(link, *argv):
    out, err = io.StringIO(), io.StringIO()
    code = pumpctl.main(["--sim", link.path, "--timeout", "30", *argv], out=out, err=err,
                        now=lambda: NOW)
    return code, out.getvalue(), err.getvalue()


def pressed(key):
    def on_held(lk, _change):
        lk.sim.press(key)

    return on_held


SETTINGS_TOML = """max_bolus = 6.5
max_basal = 2.5
bolus_increment = 0.05
max_hour = 8
max_day = 45
auto_off = 6
[profiles]
Weekday = [["00:00", 0.65], ["07:00", 0.9], ["22:00", 0.7]]
"""


def saved_backup(sim, tmp_path):
    """A pump set up with SETTINGS_TOML, then backed up: (path, the backup's settings)."""
    source = tmp_path / "mine.toml"
    source.write_text(SETTINGS_TOML)
    link = sim(on_held=pressed("OK"), flash=new_flash())
    code, _out, err = run(link, "setup", str(source))
    assert code == 0, err
    path = tmp_path / "pump-backup.json"
    code, out, err = run(link, "backup", str(path))
    assert code == 0, err
    link.stop()
    document = json.loads(path.read_text())
    assert out.startswith("Saved the settings and %d events to" % len(document["events"]))
    return path, document


def test_a_backup_holds_the_settings_and_the_event_log_and_checks_itself(sim, tmp_path):
    path, document = saved_backup(sim, tmp_path)
    assert pump_backup.read(str(path)) == document
    settings = document["settings"]
    assert settings["max_bolus"] == 6.5 and settings["max_day"] == 45 and settings["auto_off"] == 6
    assert settings["profiles"] == {"Weekday": [["00:00", 0.65], ["07:00", 0.9], ["22:00", 0.7]]}
    types = {e["type"] for e in document["events"]}
    assert {"boot", "self_test", "settings_changed"} <= types
    assert document["pump"]["board"] == "pico_default"


def test_restore_on_a_new_pump_applies_the_settings_with_one_ok(sim, tmp_path):
    path, document = saved_backup(sim, tmp_path)
    link = sim(on_held=pressed("OK"), flash=new_flash())  # the image changed: nothing left
    app = link.sim.app
    assert al.SET_UP in [a.code for a in app.alarms.alarms]
    code, out, err = run(link, "restore", str(path))
    assert code == 0, err
    assert "Waiting for OK on the pump" in out and "Settings restored" in out
    assert "%d events of the old log stay in" % len(document["events"]) in out
    code, got, err = run(link, "settings", "get")
    assert code == 0, err
    assert "max_bolus = 6.50" in got and '"Weekday" = [["00:00", 0.65]' in got
    assert "max_day = 45" in got and "auto_off = 6" in got


def test_restore_rejected_on_the_pump_changes_nothing(sim, tmp_path):
    path, _document = saved_backup(sim, tmp_path)
    link = sim(on_held=pressed("BACK"), flash=new_flash())
    code, _out, err = run(link, "restore", str(path))
    assert code == pumpctl.EXIT_NOT_CONFIRMED, err
    assert al.SET_UP in [a.code for a in link.sim.app.alarms.alarms]


@pytest.mark.parametrize("spoil, says", [
    (lambda text: text[: len(text) // 2], "not a pump backup (not JSON, or cut short)"),
    (lambda text: text.replace('"max_bolus": 6.5', '"max_bolus": 25'),
     "is damaged: its checksum does not match"),
    (lambda text: json.dumps({"settings": {}, "events": []}), "is not a pump backup (no kind"),
    (lambda text: text.replace('"format": 1', '"format": 2'), "a backup of format 2"),
])
def test_a_damaged_or_foreign_file_is_refused_before_any_port_is_opened(tmp_path, sim, spoil,
                                                                        says):
    path, _document = saved_backup(sim, tmp_path)
    path.write_text(spoil(path.read_text()))
    out, err = io.StringIO(), io.StringIO()
    code = pumpctl.main(["--port", "/dev/ttyNOPE9", "restore", str(path)], out=out, err=err)
    assert code == pumpctl.EXIT_USAGE
    assert err.getvalue().count("\n") == 1 and says in err.getvalue(), err.getvalue()


def test_a_backup_of_another_board_is_refused_and_nothing_is_sent(sim, tmp_path):
    path, document = saved_backup(sim, tmp_path)
    body = {k: v for k, v in document.items() if k != "sha256"}
    body["pump"]["board"] = "pico_tmc2209"
    pump_backup.write(str(path), pump_backup.make(body["pump"], body["settings"],
                                                  body["events"], body["saved"]))
    link = sim(on_held=pressed("OK"), flash=new_flash())
    code, _out, err = run(link, "restore", str(path))
    assert code == pumpctl.EXIT_WRONG_DEVICE
    assert err == ("pumpctl: %s is from a pump with board pico_tmc2209; this one has board "
                   "pico_default\n" % path)
    assert al.SET_UP in [a.code for a in link.sim.app.alarms.alarms]  # nothing applied
