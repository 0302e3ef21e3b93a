"""pumpctl against the firmware in the simulator over a real pseudo-terminal: every read command,
changes confirmed on the pump, one that expires, a replay, bad frames and the clear errors."""

import csv
import datetime
import io
import json
import os
import threading
import time
import tomllib
import tty

import pytest

import pumpctl
import simlink
from pump.core import events as ev
from pump.core import protocol as p


def press_ok(link, _change):
    link.sim.press("OK")


@pytest.fixture
def sim():
    links = []

    def start(**kw):
        link = simlink.SimLink(**kw).start()
        links.append(link)
        return link

    yield start
    for link in links:
        link.stop()


def run(link, *argv, **kw):
    """pumpctl in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    # A generous wait per answer: it only runs out when the pump never answers.
    code = pumpctl.main(["--sim", link.path, "--timeout", "30", *argv], out=out, err=err, **kw)
    return code, out.getvalue(), err.getvalue()


# ----- read commands -------------------------------------------------------------------


def test_every_read_command_answers_over_the_pty(sim):
    link = sim()
    code, out, _ = run(link, "status", "--json")
    status = json.loads(out)
    assert code == 0 and status["basal_mu_per_h"] == 800 and status["reservoir_mu"] > 290_000
    code, out, _ = run(link, "version")
    assert code == 0 and "pico-insulin-pump" in out and "pico_default" in out
    code, out, _ = run(link, "hash")
    assert code == 0 and "source" in out
    code, out, _ = run(link, "settings", "get")
    settings = tomllib.loads(out)
    assert code == 0 and settings["max_bolus"] == 10.0
    assert settings["profiles"] == {"Standard": [["00:00", 0.8]]}
    assert settings["active_profile"] == "Standard" and settings["bolus_speed"] == 1.5
    assert (settings["max_hour"], settings["max_day"], settings["auto_off"]) == (15, 80, 12)
    code, out, _ = run(link, "history", "--json")
    events = json.loads(out)
    assert code == 0 and [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert {ev.BOOT, ev.SELF_TEST, ev.REMOTE_REQUEST} <= {e["type"] for e in events}
    code, out, _ = run(link, "history", "--csv", "--count", "3")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3 and rows[0]["t_ms"].isdigit()
    code, out, _ = run(link, "watch", "--count", "2", "--interval", "0.05")
    assert code == 0 and len(out.splitlines()) == 2 and "basal 0.80 U/h" in out


# ----- changes confirmed on the pump ----------------------------------------------------


def test_settings_put_shows_the_diff_waits_for_ok_on_the_pump_and_is_applied(sim, tmp_path):
    link = sim(on_held=press_ok)
    path = tmp_path / "settings.toml"
    path.write_text(
        'max_bolus = 8.0\nbolus_increment = 0.05\n[profiles]\n'
        'Standard = [["00:00", 0.8], ["06:30", 1.25]]\n'
    )
    asked = []
    code, out, err = run(link, "settings", "put", str(path),
                         input_fn=lambda: asked.append(1) or "y")
    assert code == 0, err
    assert "max bolus: 10.00 U -> 8.00 U" in out
    assert "profile Standard: 00:00 0.80 U/h -> 00:00 0.80 U/h, 06:30 1.25 U/h" in out
    assert "increment" not in out.split("Changes:")[1].split("Send")[0]  # unchanged: not sent
    assert asked == [1] and "Waiting for OK on the pump" in out
    s = link.sim.app.therapy.settings
    assert s.max_bolus_mu == 8000 and s.profiles[0].segments == [(0, 800), (13, 1250)]


def test_settings_put_answered_no_sends_nothing(sim, tmp_path):
    link = sim(on_held=press_ok)
    path = tmp_path / "settings.toml"
    path.write_text("max_bolus = 8.0\n")
    code, out, _ = run(link, "settings", "put", str(path), input_fn=lambda: "")
    assert code == pumpctl.EXIT_CANCELLED and "Nothing sent" in out
    assert link.sim.app.therapy.settings.max_bolus_mu == 10_000


def test_a_change_nobody_confirms_expires_after_60_s_of_pump_time(sim, tmp_path):
    link = sim(speed=300)  # 60 s on the pump in a fraction of a second here
    path = tmp_path / "settings.toml"
    path.write_text("max_bolus = 8.0\n")
    code, _, err = run(link, "settings", "put", str(path), "--yes")
    assert code == pumpctl.EXIT_NOT_CONFIRMED
    assert err.startswith("pumpctl: not confirmed on the pump (expired)")
    assert link.sim.app.therapy.settings.max_bolus_mu == 10_000
    outcomes = [e[3]["outcome"] for e in link.sim.events if e[2] == ev.REMOTE_OUTCOME]
    assert outcomes == ["expired"]


def test_bolus_temp_basal_and_time_sync_run_after_ok(sim):
    link = sim(on_held=press_ok)
    code, out, _ = run(link, "bolus", "0.5")
    assert code == 0 and "Bolus of 0.50 U started" in out
    assert link.sim.app.therapy.bolus.requested_mu == 500
    code, _, _ = run(link, "temp-basal", "--percent", "50", "--minutes", "30")
    assert code == 0 and link.sim.app.therapy.temp.value == 50
    code, _, _ = run(link, "time", "sync", now=lambda: datetime.datetime(2026, 3, 4, 21, 15, 0))
    app = link.sim.app
    assert code == 0 and app.therapy.ms_of_day(app.now_ms()) // 60_000 == 21 * 60 + 15


def test_a_change_rejected_on_the_pump_exits_not_confirmed(sim):
    link = sim(on_held=lambda lk, _c: lk.sim.press("BACK"))
    code, _, err = run(link, "bolus", "1")
    assert code == pumpctl.EXIT_NOT_CONFIRMED and "rejected" in err
    assert link.sim.app.therapy.bolus is None


# ----- replay, bad frames, errors ---------------------------------------------------------


def test_a_replayed_sequence_number_is_refused_over_the_pty(sim):
    link = sim(on_held=press_ok)
    client = pumpctl.Client(pumpctl.open_port(link.path), 3)
    try:
        client.hello()
        client.request("status")
        client.seq -= 1  # the next request reuses the last number, as a replay would
        with pytest.raises(pumpctl.PumpError) as refused:
            client.request("bolus", 1000)
        assert refused.value.code == pumpctl.EXIT_REFUSED and "replay" in refused.value.message
        assert link.sim.app.therapy.bolus is None and link.link.held is None
    finally:
        client.close()


def test_bad_frames_on_the_wire_get_errors_and_the_link_goes_on(sim):
    link = sim()
    client = pumpctl.Client(pumpctl.open_port(link.path), 3)
    try:
        client.hello()
        frame = p.encode_request(50, "bolus", 1000)
        client.port.write(frame.replace(b"1000", b"9000") + b"\x00\xff\n" + b"z" * 400 + b"\n")
        deadline = time.monotonic() + 3
        errors = []
        while len(errors) < 3 and time.monotonic() < deadline:
            errors += [r for r in client.decoder.feed(client.port.read(4096))
                       if not r.is_error and r.status == p.ERR]
        assert [e.fields["code"] for e in errors] == [p.E_BAD_CRC, p.E_NOT_ASCII, p.E_TOO_LONG]
        client.seq = 60
        assert client.request("status")[0].status == p.OK
        assert link.sim.app.therapy.bolus is None
    finally:
        client.close()


def test_no_device_timeout_wrong_device_and_refusal_are_one_line_errors(sim, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    assert pumpctl.main(["--port", str(tmp_path / "ttyACM9"), "status"], out, err) == 3
    assert err.getvalue() == "pumpctl: no device at %s\n" % (tmp_path / "ttyACM9")

    master, slave = os.openpty()  # a port with nothing behind it
    tty.setraw(slave)
    try:
        err = io.StringIO()
        code = pumpctl.main(["--port", os.ttyname(slave), "--timeout", "0.3", "status"],
                            io.StringIO(), err)
        assert code == pumpctl.EXIT_TIMEOUT and "no answer to hello" in err.getvalue()
        stop = threading.Event()

        def repl():  # a MicroPython REPL answers with its prompt, not with frames
            while not stop.is_set():
                try:
                    if os.read(master, 1024):
                        os.write(master, b"\r\n>>> ")
                except OSError:
                    return

        threading.Thread(target=repl, daemon=True).start()
        err = io.StringIO()
        code = pumpctl.main(["--port", os.ttyname(slave), "--timeout", "2", "status"],
                            io.StringIO(), err)
        stop.set()
        assert code == pumpctl.EXIT_WRONG_DEVICE
        assert "does not speak the pump's protocol" in err.getvalue()
    finally:
        os.close(master)
        os.close(slave)

    link = sim()
    code, _, err_text = run(link, "bolus", "30")  # above the protocol's 25 U ceiling
    assert code == pumpctl.EXIT_USAGE
    assert err_text == "pumpctl: bolus must be from 0.001 U to 25.00 U, got 30 U\n"
    code, _, err_text = run(link, "bolus", "12")  # above this pump's 10 U max bolus
    assert code == pumpctl.EXIT_REFUSED
    assert err_text.count("\n") == 1 and "max bolus" in err_text


def test_settings_split_into_requests_that_each_fit_a_line():
    segments = ",".join("%02d:%02d/%d" % (h, m, 800) for h in range(12) for m in (0, 30))
    requests = pumpctl.pack_requests([("basal0", segments[:200]), ("max_bolus", 8000),
                                      ("name1", "Work day")])
    assert len(requests) == 2
    for tokens in requests:
        assert len(p.encode_request(p.MAX_SEQ, "settings_put", *tokens)) <= p.MAX_REQUEST_LINE


# ----- a person's units, checked input, the commands an owner needs -----------------------


def test_status_and_history_read_in_a_person_s_units(sim):
    link = sim()
    code, out, _ = run(link, "status")
    assert code == 0
    assert "Basal          0.80 U/h" in out and "Reservoir" in out and " U" in out
    for raw in ("_mu", "mu_per_h", "=",):
        assert raw not in out, out
    code, out, _ = run(link, "history")
    assert code == 0 and "self-test passed" in out and "basal rate now 0.80 U/h" in out
    assert "_mu" not in out and "cause=" not in out
    assert "USB: status" not in out  # questions are not therapy events
    code, out, _ = run(link, "history", "--all")
    assert "USB: status answered" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bolus", "nan"], "'nan' is not a finite number"),
        (["bolus", "inf"], "'inf' is not a finite number"),
        (["bolus", "--", "-1"], "bolus must be from 0.001 U"),
        (["bolus", "0.0005"], "more than three decimals"),
        (["history", "--count", "-3"], "'-3': give 1 or more"),
        (["temp-basal", "--percent", "150"], "--minutes"),
        (["temp-basal", "--percent", "150", "--minutes", "45"], "steps of 30"),
        (["temp-basal", "--rate", "nan", "--minutes", "60"], "not a finite number"),
        (["--timeout", "inf", "status"], "not a finite number"),
        (["dual", "2", "--now", "100", "--minutes", "60"], "--now must be 1 to 99"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(sim, argv, message):
    link = sim()
    out, err = io.StringIO(), io.StringIO()
    try:
        code = pumpctl.main(["--sim", link.path] + argv, out=out, err=err)
    except SystemExit as exc:  # argparse's own checks
        code = exc.code
    assert code == pumpctl.EXIT_USAGE
    assert link.sim.app.therapy.bolus is None and link.sim.app.therapy.temp is None


def test_bad_input_messages_name_the_problem(capsys, sim):
    link = sim()
    with pytest.raises(SystemExit) as info:
        pumpctl.main(["--sim", link.path, "history", "--count", "-3"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--count" in err and "give 1 or more" in err


def test_a_settings_file_with_an_unknown_key_changes_nothing(sim, tmp_path):
    link = sim(on_held=press_ok)
    path = tmp_path / "settings.toml"
    path.write_text("max_bolus = 8.0\nmax_bolsu = 3.0\n")
    code, _out, err = run(link, "settings", "put", str(path), "--yes")
    assert code == pumpctl.EXIT_USAGE and err.count("\n") == 1
    assert "unknown key 'max_bolsu'" in err
    assert link.sim.app.therapy.settings.max_bolus_mu == 10_000


def test_settings_get_then_put_round_trips_with_nothing_to_send(sim, tmp_path):
    link = sim()
    code, out, _ = run(link, "settings", "get")
    path = tmp_path / "pump.toml"
    path.write_text(out)
    code, out, err = run(link, "settings", "put", str(path))
    assert code == 0 and "already has these settings" in out, err


def test_profile_delete_checks_the_name_and_says_when_the_pump_cannot(sim):
    link = sim(on_held=press_ok)
    code, _out, err = run(link, "profile", "delete", "Nosuch")
    assert code == pumpctl.EXIT_USAGE and "no profile 'Nosuch' on the pump" in err
    code, _out, err = run(link, "profile", "delete", "Standard")
    assert code == pumpctl.EXIT_USAGE and "the active one" in err
    assert err.count("\n") == 1


def test_history_into_a_pipe_closed_early_ends_quietly(sim):
    import subprocess
    import sys

    link = sim()
    tool = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools",
                        "pumpctl.py")
    result = subprocess.run(
        "%s %s --sim %s history | head -n 1" % (sys.executable, tool, link.path),
        shell=True, capture_output=True, text=True)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


@pytest.mark.parametrize("argv", [["--speed", "nan"], ["--speed", "-1"], ["--seconds", "inf"],
                                  ["--firmware-root", "/no/such/build"]])
def test_simlink_refuses_bad_options_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as info:
        simlink.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and argv[0] in err, err
