"""The image checked against manifest.json before main.py imports anything of the pump.

main.py imports this module at power-up, uses it and lets it go (its bytecode does not
stay in RAM). It reads nothing of the pump package: a flash cut short (make flash writes
/flashing first and removes it after manifest.json, which it writes last) or a file that
differs from manifest.json is found here, and main.py then waits in "firmware
incomplete". ``show`` puts that on the OLED when the files that draw it were found whole.
"""

import binascii
import hashlib
import json
import os

import machine

MANIFEST = "/manifest.json"
FLASHING = "/flashing"  # make flash: written first, removed last
RESET_PLANNED = "/reset_planned"  # make flash: the reset that follows is deliberate
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


def show(text, good):
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
