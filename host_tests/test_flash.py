"""make flash's pieces on the host: the deployed manifest, the stale-file list, the boot check
in main.py (before anything of the pump is imported), the reset mark, and the failures that
must be one line."""

import hashlib
import io
import os
import runpy

import machine
import pytest

import flash
from pump.app import App
from pump.core import alarms as al
from pump.hal.firmware_files import verify
from sim.hw.flashfs import FlashFS
from sim.pump import SimPump

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN_PY = os.path.join(ROOT, "firmware", "main.py")
BOOTCHECK_PY = os.path.join(ROOT, "firmware", "bootcheck.py")


def image(folder, files, target="littlefs", extra=None):
    """A device's root as make flash leaves it: the files (modules under rom/ for the
    ROMFS target) and manifest.json with their sha256."""
    hashes = {}
    for rel, data in files.items():
        hashes[rel] = hashlib.sha256(data).hexdigest()
    placed = flash.device_manifest({"format": 1, "board": "b", "mpy_arch": "armv6m",
                                    "files": hashes}, target)
    for rel in placed["files"]:
        src = rel[4:] if rel.startswith("rom/") else rel
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[src])
    for rel, data in (extra or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (folder / "manifest.json").write_bytes(flash.manifest_bytes(placed))
    return placed


FILES = {
    "boot.py": b"import micropython\n",
    "bootcheck.py": b"def check_image():\n    pass\n",
    "main.py": b"print('pump')\n",
    "board.mpy": b"M\x06board",
    "pump/__init__.mpy": b"M\x06init",
    "pump/app.mpy": b"M\x06app",
    "pump/hal/stepper.mpy": b"M\x06stepper",
}


# ----- the manifest as deployed --------------------------------------------------------


def test_romfs_target_moves_the_modules_under_rom_and_keeps_the_entry_files():
    built = {"format": 1, "board": "b", "mpy_arch": "armv6m",
             "files": {rel: "0" * 64 for rel in FILES}}
    placed = flash.device_manifest(built, "romfs")
    assert sorted(placed["files"]) == [
        "boot.py", "bootcheck.py", "main.py", "rom/board.mpy", "rom/pump/__init__.mpy",
        "rom/pump/app.mpy", "rom/pump/hal/stepper.mpy"]
    assert placed["target"] == "romfs" and built["files"].get("pump/app.mpy")  # not changed
    assert sorted(flash.device_manifest(built, "littlefs")["files"]) == sorted(FILES)
    with pytest.raises(ValueError):
        flash.device_manifest(built, "sdcard")


def test_a_romfs_image_holds_the_modules():
    from mpremote.romfs import VfsRomWriter

    modules = {rel: data for rel, data in FILES.items() if flash.is_module(rel)}
    img = flash.romfs_image(modules)
    assert img.startswith(VfsRomWriter.ROMFS_HEADER)
    for data in modules.values():
        assert data in img
    assert b"print('pump')" not in img  # main.py stays on littlefs


# ----- what a flash removes ------------------------------------------------------------


DATA = ["settings.rec", "ckpt_a.rec", "ckpt_b.rec", "ev000001.log", "ev000002.log", "notes.txt"]


def test_stale_files_are_the_pumps_own_never_the_settings_or_the_log():
    new = ["boot.py", "main.py", "pump/__init__.mpy", "pump/app.mpy", "board.mpy"]
    device = DATA + new + ["pump/old.mpy", "pump/ui/flows.py", "lib/pump/app.mpy",
                           "lib/board.py", "board.py", "old_tool.py", "rom/pump/app.mpy",
                           "manifest.json", "flashing", "reset_planned"]
    stale = flash.stale_files(device, new)
    assert stale == ["board.py", "lib/board.py", "lib/pump/app.mpy", "old_tool.py",
                     "pump/old.mpy", "pump/ui/flows.py", "reset_planned"]
    assert not set(stale) & set(DATA + new)


def test_moving_to_romfs_removes_pump_and_board_from_littlefs():
    new = ["boot.py", "main.py"]  # the modules go to /rom
    device = DATA + ["boot.py", "main.py", "board.mpy", "pump/__init__.mpy", "pump/core/units.mpy"]
    stale = flash.stale_files(device, new)
    assert stale == ["board.mpy", "pump/__init__.mpy", "pump/core/units.mpy"]
    assert flash.empty_folders(stale, [r for r in device if r not in stale] + new) == [
        "pump/core", "pump"]


def test_a_file_the_old_manifest_listed_goes_too():
    stale = flash.stale_files(DATA + ["main.py", "data/curve.bin"], ["main.py"],
                              old_files=["main.py", "data/curve.bin"])
    assert stale == ["data/curve.bin"]


# ----- the build as read by make flash -------------------------------------------------


def build_dir(tmp_path):
    folder = tmp_path / "build"
    folder.mkdir()
    image(folder, FILES)
    return folder


def test_a_build_is_read_with_its_files_checked(tmp_path):
    folder = build_dir(tmp_path)
    manifest, data = flash.local_image(str(folder))
    assert data["pump/app.mpy"] == FILES["pump/app.mpy"] and manifest["format"] == 1
    (folder / "pump" / "app.mpy").write_bytes(b"changed")
    with pytest.raises(flash.FlashError, match="pump/app.mpy differs from its manifest"):
        flash.local_image(str(folder))
    (folder / "pump" / "app.mpy").unlink()
    with pytest.raises(flash.FlashError, match="pump/app.mpy is missing"):
        flash.local_image(str(folder))
    with pytest.raises(flash.FlashError, match="run make build first"):
        flash.local_image(str(tmp_path / "nothing"))


def test_a_missing_port_is_no_such_port_in_one_line(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = flash.main(["--build", str(build_dir(tmp_path)), "--port", "/dev/ttyNOPE9"], out, err)
    assert code == 3
    assert err.getvalue() == "flash: FAILED: no such port: /dev/ttyNOPE9\n"


def test_a_locked_pump_is_told_apart_from_a_board_without_micropython(tmp_path, monkeypatch):
    import simlink

    monkeypatch.setattr(flash, "_REPL_WAIT_S", 1.0)
    link = simlink.SimLink().start()
    try:
        out, err = io.StringIO(), io.StringIO()
        code = flash.main(["--build", str(build_dir(tmp_path)), "--port", link.path,
                           "--no-maintenance"], out, err)
    finally:
        link.stop()
    assert code == 4
    line = err.getvalue()
    assert line.count("\n") == 1 and "locked mode" in line and "hold UP and BACK" in line
    assert "press OK on the pump when it asks" in line
    assert link.link.held is None  # --no-maintenance: nothing was asked of the pump


# ----- main.py: the image checked before the pump package is imported ------------------


@pytest.fixture
def boot():
    """bootcheck.py's functions (what main.py imports first and lets go)."""
    return runpy.run_path(BOOTCHECK_PY, run_name="bootcheck")


@pytest.fixture
def main_py():
    """main.py's functions, loaded without running main()."""
    return runpy.run_path(MAIN_PY, run_name="boot_main")


def root_of(folder):
    return str(folder) + "/"


@pytest.mark.parametrize("target", ["littlefs", "romfs"])
def test_a_whole_image_passes_the_boot_check(tmp_path, boot, target):
    image(tmp_path, FILES, target)
    problem, good = boot["check_image"](root_of(tmp_path))
    assert problem is None
    assert len(good) == len(FILES)


def test_a_flash_cut_short_boots_to_firmware_incomplete(tmp_path, boot):
    image(tmp_path, FILES)
    (tmp_path / "flashing").write_bytes(b"make flash did not finish\n")
    assert boot["check_image"](root_of(tmp_path)) == ("a flash did not finish", ())


def test_a_changed_or_missing_file_is_named(tmp_path, boot):
    image(tmp_path, FILES, "romfs")
    (tmp_path / "rom" / "pump" / "app.mpy").write_bytes(b"M\x06ap")  # cut short
    (tmp_path / "rom" / "pump" / "hal" / "stepper.mpy").unlink()
    problem, good = boot["check_image"](root_of(tmp_path))
    assert problem == "rom/pump/app.mpy differs from manifest.json and 1 more"
    assert "rom/pump/app.mpy" not in good and "rom/board.mpy" in good


def test_no_or_damaged_manifest_is_incomplete(tmp_path, boot):
    assert boot["check_image"](root_of(tmp_path))[0] == "no manifest.json"
    (tmp_path / "manifest.json").write_bytes(b'{"format": 1, "files": {"main.py": ')
    assert boot["check_image"](root_of(tmp_path))[0] == "manifest.json is damaged"
    (tmp_path / "manifest.json").write_bytes(b'{"format": 7, "files": {"main.py": "00"}}')
    assert boot["check_image"](root_of(tmp_path))[0] == "manifest.json has an unknown format"


def test_the_reset_mark_is_used_once(tmp_path, boot):
    take = boot["take_reset_mark"]
    assert take(root_of(tmp_path)) is False
    (tmp_path / "reset_planned").write_bytes(b"make flash\n")
    assert take(root_of(tmp_path)) is True
    assert not (tmp_path / "reset_planned").exists()
    assert take(root_of(tmp_path)) is False


def test_main_py_checks_the_image_before_it_imports_the_pump():
    with open(MAIN_PY) as f:
        source = f.read()
    body = source[source.index("def main():"):]
    assert body.index("boot_check()") < body.index("import board")
    assert body.index("incomplete(problem)") < body.index("from pump")
    top = source[:source.index("def ")]
    assert "import board" not in top and "from pump" not in top
    assert "import bootcheck" not in top
    with open(BOOTCHECK_PY) as f:
        assert "\nimport pump" not in f.read()  # the checker reads nothing of the pump


def test_main_py_lets_bootcheck_go_and_stops_at_the_marker_first(tmp_path, main_py, monkeypatch):
    import sys

    check = main_py["boot_check"]
    monkeypatch.setitem(check.__globals__, "FLASHING", str(tmp_path / "flashing"))
    (tmp_path / "flashing").write_bytes(b"")
    monkeypatch.delitem(sys.modules, "bootcheck", raising=False)
    assert check() == ("a flash did not finish", False)
    assert "bootcheck" not in sys.modules  # not even imported: nothing of the image is read
    (tmp_path / "flashing").unlink()
    monkeypatch.syspath_prepend(str(tmp_path))  # a bootcheck.py cut short
    (tmp_path / "bootcheck.py").write_text("def check_image(:\n")
    assert check() == ("bootcheck.py is missing or damaged", False)
    (tmp_path / "bootcheck.py").write_text(
        "def check_image():\n    return None, ['main.py']\n"
        "def take_reset_mark():\n    return True\n")
    assert check() == (None, True)
    assert "bootcheck" not in sys.modules  # let go: its bytecode does not stay in RAM


def test_the_incomplete_state_waits_with_ctrl_c_on_and_the_watchdog_off(main_py, monkeypatch):
    import micropython

    said = []
    # The RP2040's registers, as far as this needs: a watchdog running from the last firmware.
    monkeypatch.setattr(machine, "mem32", {0x40058000: 1 << 30 | 0x1234}, raising=False)

    class Enough(Exception):
        pass

    sleeps = []

    def sleep_ms(ms):
        sleeps.append(ms)
        if len(sleeps) == 2:
            raise Enough

    monkeypatch.setattr(main_py["time"], "sleep_ms", sleep_ms, raising=False)
    incomplete = main_py["incomplete"]
    incomplete.__globals__["print"] = said.append
    micropython.kbd_intr(-1)
    with pytest.raises(Enough):
        incomplete("a flash did not finish")
    assert machine.mem32[0x40058000] == 0x1234  # only the enable bit cleared
    assert micropython.state.kbd_intr_char == 3
    assert said[0] == ("firmware incomplete: a flash did not finish; no delivery. "
                       "Run make flash again.")
    assert len(said) == 2  # said again while it waits


# ----- the self-test: a pump/ or board module outside the deployed place ---------------


def test_a_stale_pump_on_littlefs_is_flagged_when_the_modules_are_in_rom(tmp_path):
    image(tmp_path, FILES, "romfs", extra={"pump/app.mpy": b"old", "lib/board.py": b"old"})
    report = verify(root_of(tmp_path))
    assert report.checked == len(FILES) and not report.missing and not report.changed
    assert "pump/" in report.unexpected and "lib/board.py" in report.unexpected
    assert not report.ok()


def test_a_clean_romfs_image_passes_the_firmware_check(tmp_path):
    image(tmp_path, FILES, "romfs")
    report = verify(root_of(tmp_path))
    assert report.ok(), (report.missing, report.changed, report.unexpected)


def test_an_old_pump_left_in_rom_is_flagged_when_the_modules_are_on_littlefs(tmp_path):
    image(tmp_path, FILES, "littlefs", extra={"rom/pump/app.mpy": b"old"})
    assert verify(root_of(tmp_path)).unexpected == ["rom/pump/"]


# ----- the reset make flash makes is not "The pump restarted" ---------------------------


@pytest.mark.parametrize("planned", [False, True])
def test_a_marked_reset_raises_no_restarted_alarm(planned, monkeypatch):
    sim = SimPump(flash=FlashFS())
    sim.run_until(60_000)
    sim._power_off()
    machine.set_reset_cause(machine.WDT_RESET)
    monkeypatch.setattr(App, "reset_planned", planned)
    sim._boot()
    assert (sim.app.alarms.find(al.RESET) is not None) is not planned


# ----- firmware/manifest.py --------------------------------------------------------------


def test_the_freeze_manifest_names_the_package_and_the_firmware_version(monkeypatch):
    monkeypatch.chdir(os.path.join(ROOT, "firmware"))  # as MicroPython's manifest reader does
    calls = []
    scope = {
        "metadata": lambda **kw: calls.append(("metadata", kw)),
        "package": lambda *a, **kw: calls.append(("package", a)),
    }
    with open(os.path.join(ROOT, "firmware", "manifest.py")) as f:
        exec(compile(f.read(), "manifest.py", "exec"), scope)
    import pump

    assert calls[0][0] == "metadata" and calls[0][1]["version"] == pump.VERSION
    assert calls[0][1]["description"]
    assert ("package", ("pump",)) in calls
