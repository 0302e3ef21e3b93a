"""Boot: check the image against manifest.json, build the board, lock the console, run the pump.

Nothing of the pump package is imported before the image is known to be whole: a flash
cut short (make flash writes /flashing first and removes it after manifest.json, which
it writes last) or a file that differs from manifest.json stops here, in a plain
"firmware incomplete" state that says why on the console (and on the OLED when its
own files are whole), delivers nothing and leaves Ctrl-C working for the next flash.
"""

import micropython

micropython.alloc_emergency_exception_buf(200)
# Every script starts with Ctrl-C enabled (MicroPython re-enables it for each file it
# runs), so lock again until lock_console decides between locked and development mode.
micropython.kbd_intr(-1)

import binascii  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import machine  # noqa: E402

MANIFEST = "/manifest.json"
FLASHING = "/flashing"  # make flash: written first, removed last
RESET_PLANNED = "/reset_planned"  # make flash: the reset that follows is deliberate
_WATCHDOG_CTRL = 0x40058000  # RP2040 WATCHDOG CTRL; bit 30 enables the watchdog
_WATCHDOG_ENABLE = 1 << 30
_REPEAT_MS = 10000  # the incomplete state says it again this often
# What the OLED message needs besides framebuf (board.PINS and the display driver).
_DISPLAY_FILES = ("board.mpy", "pump/__init__.mpy", "pump/hal/__init__.mpy", "pump/hal/ssd1306.mpy")


def _exists(path):
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def _sha256(path, buf):
    digest = hashlib.sha256()
    view = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            digest.update(view[:n])
    return binascii.hexlify(digest.digest()).decode()


def check_image(root="/"):
    """(problem, files found whole): problem is None when the image is whole, else one line."""
    if _exists(root + FLASHING[1:]):
        return "a flash did not finish", ()
    try:
        with open(root + MANIFEST[1:]) as f:
            manifest = json.load(f)
        files = manifest["files"]
        if manifest.get("format") != 1 or not files:
            return "manifest.json has an unknown format", ()
    except OSError:
        return "no manifest.json", ()
    except (ValueError, KeyError, TypeError, AttributeError):
        return "manifest.json is damaged", ()
    bad = []  # type: list[str]
    good = []  # type: list[str]
    buf = bytearray(512)
    for rel in sorted(files):
        try:
            same = _sha256(root + rel, buf) == files[rel]
        except OSError:
            same = False
        (good if same else bad).append(rel)
    if bad:
        more = " and %d more" % (len(bad) - 1) if len(bad) > 1 else ""
        return "%s differs from manifest.json%s" % (bad[0], more), good
    return None, good


def take_reset_mark(root="/"):
    """True when make flash marked the reset that started this boot; the mark is used once."""
    path = root + RESET_PLANNED[1:]
    if not _exists(path):
        return False
    try:
        os.remove(path)
    except OSError:
        pass
    return True


def _show(text, good):
    """The message on the OLED, when the files that draw it were found whole (else the
    console only: importing a half-written .mpy can hang the chip)."""
    place = "rom/" if "rom/board.mpy" in good else ""
    if _exists("/pump") and place or any(place + rel not in good for rel in _DISPLAY_FILES):
        return
    try:
        import board
        from pump.hal.ssd1306 import SSD1306

        pins = board.PINS
        i2c = machine.I2C(0, sda=machine.Pin(pins["i2c_sda"]), scl=machine.Pin(pins["i2c_scl"]))
        oled = SSD1306(i2c, 128, 64, 0x3C)
        oled.init_display()
        oled.fill(0)
        oled.text("FIRMWARE", 0, 0, 1)
        oled.text("INCOMPLETE", 0, 10, 1)
        oled.text("No delivery.", 0, 28, 1)
        oled.text(text[:16], 0, 42, 1)
        oled.text("make flash again", 0, 54, 1)
        oled.show_all()
    except Exception:  # the console has said it already
        pass


def incomplete(problem, good):
    """No therapy: say why, keep saying it, and let Ctrl-C reach the REPL for the next flash."""
    machine.mem32[_WATCHDOG_CTRL] &= ~_WATCHDOG_ENABLE  # a watchdog left running would reset
    micropython.kbd_intr(3)
    line = "firmware incomplete: %s; no delivery. Run make flash again." % problem
    print(line)
    _show(problem, good)
    while True:
        time.sleep_ms(_REPEAT_MS)
        print(line)


def main():
    problem, good = check_image()
    if problem is not None:
        incomplete(problem, good)
    planned = take_reset_mark()
    gc.collect()

    import board  # the board file (board.mpy, in /rom or on littlefs)
    from pump.app import App
    from pump.hal.storage import OsFs, Storage
    from pump.link import lock_console

    hardware = board.build()
    locked = lock_console(hardware.buttons, micropython, time)
    # make flash restarted the chip: not the "pump restarted" alarm of a real watchdog reset.
    App.reset_planned = planned
    storage = None
    try:
        # Settings, therapy checkpoint and event log on the littlefs partition.
        storage = Storage(OsFs(os, open, "/"))
        # The self-test checks the image against the manifest.json `make flash` wrote.
        App(hardware, time, storage=storage, firmware_root="/").run()
    except Exception as exc:
        if not locked:
            raise  # development mode: the traceback, then the REPL
        # Locked mode never falls through to the REPL: start again instead.
        print_exception = getattr(sys, "print_exception", None)
        if print_exception is not None:
            print_exception(exc)
        if storage is not None:
            try:  # the error on flash, and a mark the next boot reads, before the reset
                from pump.resets import record_crash

                record_crash(storage, exc)
            except Exception:  # the flash itself may be what failed
                pass
        machine.reset()


if __name__ == "__main__":
    main()
