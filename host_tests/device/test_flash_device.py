"""`make flash` on the emulated Pico: from an erased flash on the stock image and on the ROMFS
image, a locked pump refused with what to do (--no-maintenance) or flashed after OK on the
pump (it restarts once in development mode), a stale file removed, a flash cut by a power
cut that boots to "firmware incomplete" (no delivery, no hang) and is flashed again, a
pump/ left on littlefs that shadows /rom/pump, and the settings carried across a change of
MicroPython image by `pumpctl backup` / `pumpctl restore`.

Each flash takes 30-40 s of wall time here, a locked pump's with its restart for maintenance
60-70 s (the four tests about 7 minutes); the module
builds the image once (its own build folder, so it never races another test's `make
flash`)."""

import io
import os
import subprocess
import sys
import time

import devicekit
import pytest

pytestmark = pytest.mark.device

ROOT = devicekit.ROOT
FLASH = os.path.join(ROOT, "tools", "flash.py")
TOOLS = os.path.join(ROOT, "tools")


def make_flash(rig, build, timeout=600):
    proc = subprocess.run(
        ["make", "-s", "-C", ROOT, "flash", "PORT=" + rig.port, "BUILD=" + build],
        capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def tool_flash(rig, build, *args, timeout=600):
    proc = subprocess.run([sys.executable, FLASH, "--port", rig.port, "--build", build, *args],
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def serial_since(rig, mark):
    return rig.read_serial()[mark:].decode("utf-8", "replace")


def wait_serial(rig, mark, text, wall_s=120):
    deadline = time.monotonic() + wall_s
    while time.monotonic() < deadline:
        if text in serial_since(rig, mark):
            return True
        time.sleep(0.5)
    return False


def development_mode(rig):
    """Power up with UP and BACK held: Ctrl-C reaches the REPL (pump/link.py lock_console)."""
    rig.power_cycle(hold=("up", "back"), off_ms=500)
    rig.wait_ms(3000)
    rig.release("up")
    rig.release("back")
    rig.wait_ms(3000)


def alarms(rig):
    pump = devicekit.Pump(rig)
    return pump.alarms()


def test_stock_image_flash_lock_stale_file_and_a_cut_flash():
    """Erased flash, stock image: make flash verifies and leaves no "restarted" alarm; a
    second flash of the locked pump is refused in one line. A changed pump/app.mpy (and a
    stale pump/old.mpy) found at power-up stop the boot in "firmware incomplete", on the
    console and the OLED, with no step at the motor; from there a flash, cut by a power
    cut after it removed the stale file, boots to "firmware incomplete" again (the flash
    did not finish), and the next flash mends it: verified, nothing unexpected left."""
    rig = devicekit.emu_rig.Rig()
    try:
        build = build_once()
        code, out = make_flash(rig, build)
        assert code == 0, out[-2000:]
        assert "firmware verified" in out and "to littlefs" in out
        found = alarms(rig)
        assert "reset" not in found and "self_test" not in found, found

        code, out = tool_flash(rig, build, "--no-verify", "--no-maintenance")
        assert code == 4, out[-2000:]
        assert "locked mode" in out and "hold UP and BACK" in out

        development_mode(rig)
        plant_all(rig, [("pump/old.mpy", b"M\x06stale"), ("pump/app.mpy", b"M\x06an older app")])
        mark = len(rig.read_serial())
        rig.power_cycle(off_ms=500)  # locked mode
        assert wait_serial(rig, mark, "firmware incomplete: pump/app.mpy differs from "
                                      "manifest.json"), serial_since(rig, mark)[-1500:]
        rig.wait_ms(2000)
        lit = sum(map(sum, rig.oled_pixels()))
        assert lit > 300, lit  # the message is on the OLED too
        before = rig.steps()
        rig.wait_ms(11_000)
        assert rig.steps()["rises"] == before["rises"]  # no therapy
        assert serial_since(rig, mark).count("firmware incomplete") >= 2  # said again, no hang

        # A flash of the incomplete pump (Ctrl-C works there), cut by a power cut while
        # pump files are being written.
        proc = subprocess.Popen(
            [sys.executable, FLASH, "--port", rig.port, "--build", build, "--no-verify"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "pump/app.mpy" in line and "[" in line:
                break
        mark = len(rig.read_serial())
        rig.power_cycle(off_ms=500)
        proc.kill()
        proc.wait()
        assert any("remove pump/old.mpy" in line for line in seen), "".join(seen)
        assert wait_serial(rig, mark, "firmware incomplete: a flash did not finish"), (
            serial_since(rig, mark)[-1500:])

        code, out = tool_flash(rig, build)
        assert code == 0, out[-2000:]
        assert "firmware verified" in out  # files_ok: pump/old.mpy is gone
    finally:
        rig.close()


def test_romfs_image_flash_deploys_the_modules_to_rom_and_clears_a_shadowing_pump():
    """Erased flash, ROMFS image: make flash puts pump/ and board.mpy in /rom and verifies.
    A whole pump/ left on littlefs (an earlier flash's; it is imported before /rom/pump)
    fails the self-test at the next power-up; the next flash removes it, finding ROMFS
    already holding the image."""
    uf2 = romfs_uf2()
    if uf2 is None:
        pytest.skip("no ROMFS image (firmware-romfs.uf2 beside the stock one, or PICO_UF2_ROMFS)")
    rig = devicekit.emu_rig.Rig(uf2)
    try:
        build = build_once()
        code, out = make_flash(rig, build)
        assert code == 0, out[-2000:]
        assert "to romfs" in out and "ROMFS deployed" in out and "firmware verified" in out

        development_mode(rig)
        stale = []
        for folder, _dirs, names in os.walk(os.path.join(build, "pump")):
            for name in names:
                path = os.path.join(folder, name)
                stale.append((os.path.relpath(path, build), open(path, "rb").read()))
        plant_all(rig, stale)
        rig.power_cycle(off_ms=500)  # locked mode: the firmware runs from the littlefs copy
        pump = devicekit.Pump(rig)
        answer = pump.wait_for(lambda: hash_fields(rig), 60_000, 5000)
        assert answer and answer.get("files_ok") == "0" and answer.get("unexpected") == "1", answer
        assert "self_test" in pump.alarms()

        development_mode(rig)
        code, out = tool_flash(rig, build)
        assert code == 0, out[-2000:]
        assert "remove pump/app.mpy" in out and "%d to remove" % len(stale) in out
        assert "ROMFS already holds this image" in out and "firmware verified" in out
    finally:
        rig.close()


def hash_fields(rig):
    """The pump's answer to `hash` as a dict, or None while it does not answer."""
    proc = subprocess.run([sys.executable, devicekit.PUMPCTL, "--port", rig.port, "--timeout", "30",
                           "hash"],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return None
    fields = {}
    for line in proc.stdout.splitlines():  # "key  value" per line
        parts = line.split(None, 1)
        if len(parts) == 2:
            fields[parts[0]] = parts[1].strip()
    return fields


def plant_all(rig, files):
    if TOOLS not in sys.path:
        sys.path.insert(0, TOOLS)
    import flash

    pico = flash.Pico(rig.port, io.StringIO())
    pico.open(soft_reset=False)
    try:
        pico.stop_watchdog()
        for rel, data in files:
            pico.write(rel, data)
    finally:
        pico.close()


_BUILD = []


def build_once():
    """One build for the module, in its own folder."""
    if not _BUILD:
        import tempfile

        folder = os.path.join(tempfile.mkdtemp(prefix="flash-device-"), "build")
        subprocess.run(["make", "-s", "-C", ROOT, "build", "BUILD=" + folder], check=True,
                       capture_output=True, timeout=300)
        _BUILD.append(folder)
    return _BUILD[0]


def romfs_uf2():
    path = os.environ.get("PICO_UF2_ROMFS")
    if path:
        return path if os.path.exists(path) else None
    stock = devicekit.emu_rig.default_uf2()
    if stock is None:
        return None
    path = os.path.join(os.path.dirname(stock), "firmware-romfs.uf2")
    return path if os.path.exists(path) else None


SETTINGS_TOML = """max_bolus = 6.5
max_basal = 2.5
max_day = 45
[profiles]
Weekday = [["00:00", 0.65], ["07:00", 0.9]]
"""


def test_a_new_micropython_image_keeps_the_settings_through_backup_and_restore(tmp_path):
    """A pump set up on the stock image is backed up; a new image (the ROMFS one, on an
    erased flash as BOOTSEL leaves it) gets make flash, which says there are no settings;
    `pumpctl restore` with OK on the pump brings them back."""
    build = build_once()
    settings = tmp_path / "mine.toml"
    settings.write_text(SETTINGS_TOML)
    backup = tmp_path / "pump-backup.json"
    rig = devicekit.emu_rig.Rig()
    try:
        code, out = tool_flash(rig, build)
        assert code == 0, out[-2000:]
        pump = devicekit.Pump(rig)
        code, out = pump.pumpctl("--timeout", "30", "setup", str(settings), confirm=True)
        assert code == 0, out
        code, out = pump.pumpctl("--timeout", "30", "backup", str(backup))
        assert code == 0 and "Saved the settings and" in out, out
    finally:
        rig.close()

    rig = devicekit.emu_rig.Rig(romfs_uf2())  # the stock image again when there is no ROMFS one
    try:
        code, out = tool_flash(rig, build)
        assert code == 0, out[-2000:]
        assert "no settings on this Pico" in out
        pump = devicekit.Pump(rig)
        code, out = pump.pumpctl("--timeout", "30", "restore", str(backup), confirm=True)
        assert code == 0 and "Settings restored" in out, out
        code, out = pump.pumpctl("--timeout", "30", "settings", "get")
        assert code == 0, out
        assert "max_bolus = 6.50" in out and '"Weekday" = [["00:00", 0.65]' in out, out
        assert "max_day = 45" in out
    finally:
        rig.close()


def test_a_locked_pump_is_flashed_after_ok_on_the_pump_and_starts_locked_again(tmp_path):
    """A set-up pump in locked mode: make flash asks it over the protocol to restart for
    maintenance and says to press OK on the pump; OK on its keys suspends delivery and
    restarts it in development mode, the flash goes on and verifies, and the pump starts
    locked again (a second flash is refused) with no "restarted" alarm; delivery resumes
    with one OK."""
    build = build_once()
    settings = tmp_path / "mine.toml"
    settings.write_text(SETTINGS_TOML)
    rig = devicekit.emu_rig.Rig()
    try:
        code, out = tool_flash(rig, build)  # an erased flash: MicroPython's own REPL answers
        assert code == 0, out[-2000:]
        pump = devicekit.Pump(rig)
        code, out = pump.pumpctl("setup", str(settings), confirm=True)
        assert code == 0, out
        assert pump.status()["suspended"] == 0

        mark = len(rig.read_serial())
        started = time.monotonic()
        code, out, presses = flash_pressing_ok(rig, build)
        seconds = time.monotonic() - started
        assert code == 0, out[-2500:]
        assert "locked mode: asking it to restart in development mode" in out
        assert "flash: Press OK on the pump" in out and "OK pressed on the pump" in out
        assert "restarted in development mode" in out and "firmware verified" in out
        assert "delivery stays suspended" in out
        pump.report("locked flash over the wire", wall_s=round(seconds), ok_presses=presses)
        # The start the mark opened: make flash stops it with Ctrl-C once it answers.
        assert "development mode for maintenance, this start only" in serial_since(rig, mark)

        status = pump.status()
        assert status["suspended"] == 1, status
        assert "reset" not in pump.alarms()
        events = pump.history(200)
        asked = [i for i, e in enumerate(events) if e.get("type") == "remote_outcome"
                 and e.get("command") == "maintenance" and e.get("outcome") == "applied"]
        assert asked, events[-20:]
        after = [e.get("type") for e in events[asked[-1] - 3:]]
        assert "suspended" in after, after
        causes = [(e.get("cause"), e.get("reason")) for e in events[asked[-1]:]
                  if e.get("type") == "reset_cause"]
        assert causes[:1] == [("deliberate", "maintenance")], causes  # no alarm either
        assert causes[-1][0] == "deliberate", causes  # the flash's own reset

        code, out = tool_flash(rig, build, "--no-verify", "--no-maintenance")
        assert code == 4 and "locked mode" in out, out[-2000:]  # locked again

        if "set_time" in pump.alarms():  # the clock did not survive the restarts
            code, out = pump.pumpctl("time", "sync", confirm=True)
            assert code == 0, out
        code, out = pump.pumpctl("resume", confirm=True)
        assert code == 0 and "Delivery resumed" in out, out
        assert pump.status()["suspended"] == 0
    finally:
        rig.close()


def flash_pressing_ok(rig, build, timeout=900):
    """make flash on a locked pump; OK on the pump's keys once make flash says to press it,
    again (twice at most) if it still waits 10 s later (the slow emulated pump can miss a
    press). Returns (exit code, output, presses)."""
    proc = subprocess.Popen(["make", "-s", "-C", ROOT, "flash", "PORT=" + rig.port,
                             "BUILD=" + build], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    presses = []
    deadline = time.monotonic() + timeout

    def press_until_confirmed():
        for _ in range(3):
            rig.wait_ms(600)
            rig.press("ok")
            presses.append(time.monotonic())
            waited = time.monotonic()
            while time.monotonic() - waited < 10:
                if any("OK pressed on the pump" in line for line in lines):
                    return
                if proc.poll() is not None:
                    return
                time.sleep(0.2)

    import threading

    for line in proc.stdout:
        lines.append(line)
        if line.startswith("flash: Press OK on the pump"):
            threading.Thread(target=press_until_confirmed, daemon=True).start()
        if time.monotonic() > deadline:
            proc.kill()
            break
    proc.wait()
    return proc.returncode, "".join(lines), len(presses)
