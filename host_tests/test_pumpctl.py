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
    code = pumpctl.main(["--sim", link.path, "--timeout", "3", *argv], out=out, err=err, **kw)
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
    assert settings["profiles"] == [{"name": "Standard", "basal": [["00:00", 0.8]]}]
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
        'max_bolus = 8.0\nincrement = 0.05\n[[profiles]]\nname = "Standard"\n'
        'basal = [["00:00", 0.8], ["06:30", 1.25]]\n'
    )
    asked = []
    code, out, err = run(link, "settings", "put", str(path),
                         input_fn=lambda: asked.append(1) or "y")
    assert code == 0, err
    assert "max_bolus: 10000 -> 8000" in out and "basal0: 00:00/800 -> 00:00/800,06:30/1250" in out
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
        code = pumpctl.main(["--port", os.ttyname(slave), "--timeout", "0.3", "status"],
                            io.StringIO(), err)
        stop.set()
        assert code == pumpctl.EXIT_WRONG_DEVICE
        assert "does not speak the pump's protocol" in err.getvalue()
    finally:
        os.close(master)
        os.close(slave)

    link = sim()
    code, _, err_text = run(link, "bolus", "30")  # above the protocol's 25 U ceiling
    assert code == pumpctl.EXIT_REFUSED
    assert err_text.count("\n") == 1 and "bad_args" in err_text and "25.000 U" in err_text


def test_settings_split_into_requests_that_each_fit_a_line():
    segments = ",".join("%02d:%02d/%d" % (h, m, 800) for h in range(12) for m in (0, 30))
    requests = pumpctl.pack_requests([("basal0", segments[:200]), ("max_bolus", 8000),
                                      ("name1", "Work day")])
    assert len(requests) == 2
    for tokens in requests:
        assert len(p.encode_request(p.MAX_SEQ, "settings_put", *tokens)) <= p.MAX_REQUEST_LINE
