"""Firmware integrity: each file listed in the build's manifest.json hashed against its sha256.

`make flash` writes manifest.json next to main.py: {"format": 1, "board", "mpy_arch",
"files": {path: sha256 hex}}, paths relative to the device's root ("rom/pump/app.mpy"
when the modules went to the ROMFS partition, "pump/app.mpy" on littlefs). Besides
missing and changed files, two kinds count as unexpected:

- a .py or .mpy file in one of the image's folders that the manifest does not list
  (a stale pump/x.py would be imported instead of pump/x.mpy);
- a ``pump/`` package or a board module in another folder of ``sys.path`` ('', /rom,
  /rom/lib, /lib): littlefs comes first, so a pump/ left there by an earlier flash
  would run instead of the one in /rom.
"""

import binascii
import hashlib
import json
import os

from micropython import const

MANIFEST = "manifest.json"
MANIFEST_FORMAT = const(1)
_CHUNK = const(512)  # bytes hashed per read: a small buffer, allocated once
# The import path of the rp2 port, less '.frozen': where a pump/ or board module is found.
IMPORT_PLACES = ("", "rom", "rom/lib", "lib")
_BOARD_MODULES = ("board.py", "board.mpy")


class FirmwareReport:
    """What the check found; ``ok()`` when the manifest was read and every file matches."""

    def __init__(self):
        self.manifest_found = False
        self.error = None  # why the manifest could not be used, if it was found
        self.board = None
        self.mpy_arch = None
        self.checked = 0  # files hashed
        self.missing = []
        self.changed = []
        self.unexpected = []

    def ok(self):
        return (
            self.manifest_found
            and self.error is None
            and not self.missing
            and not self.changed
            and not self.unexpected
        )


def _join(root, rel):
    if not root:
        return rel
    if root.endswith("/"):
        return root + rel
    return root + "/" + rel


def _exists(path):
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def file_sha256(path, buf):
    """sha256 of a file as 64 hex characters, read through ``buf`` (a bytearray)."""
    digest = hashlib.sha256()
    view = memoryview(buf)
    size = len(buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            digest.update(view if n == size else view[:n])
    return binascii.hexlify(digest.digest()).decode()


def _read_manifest(path, report):
    try:
        with open(path) as f:
            manifest = json.load(f)
    except ValueError:
        report.error = "manifest.json is not valid JSON"
        return None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        report.error = "manifest.json has an unknown format"
        return None
    if not isinstance(files, dict) or not files:
        report.error = "manifest.json lists no files"
        return None
    report.board = manifest.get("board")
    report.mpy_arch = manifest.get("mpy_arch")
    return files


def verify(root="/", buf=None, on_file=None):
    """Check the image under ``root`` against its manifest; returns a FirmwareReport.

    ``on_file()`` (optional) is called after each file, for example to feed the
    watchdog while a large image is hashed.
    """
    report = FirmwareReport()
    manifest_path = _join(root, MANIFEST)
    if not _exists(manifest_path):
        return report
    report.manifest_found = True
    files = _read_manifest(manifest_path, report)
    if files is None:
        return report
    if buf is None:
        buf = bytearray(_CHUNK)
    folders = {}
    for rel in sorted(files):
        cut = rel.rfind("/")
        folders[rel[:cut] if cut >= 0 else ""] = True
        path = _join(root, rel)
        try:
            digest = file_sha256(path, buf)
        except OSError:
            report.missing.append(rel)
            continue
        report.checked += 1
        if digest != str(files[rel]).lower():
            report.changed.append(rel)
        if on_file is not None:
            on_file()
    for folder in sorted(folders):
        try:
            names = os.listdir(_join(root, folder) if folder else (root or "."))
        except OSError:
            continue
        for name in sorted(names):
            if not (name.endswith(".py") or name.endswith(".mpy")):
                continue
            rel = folder + "/" + name if folder else name
            if rel not in files:
                report.unexpected.append(rel)
    for rel in shadows(root, files):
        if rel not in report.unexpected:
            report.unexpected.append(rel)
    return report


def shadows(root, files):
    """A pump/ package or board module on the import path that the manifest does not list,
    as "pump/" or "lib/board.mpy"; these would be imported instead of the image's or
    alongside it."""
    found = []
    for place in IMPORT_PLACES:
        prefix = place + "/" if place else ""
        package = prefix + "pump/"
        if _exists(_join(root, prefix + "pump")):
            owned = False
            for rel in files:
                if rel.startswith(package):
                    owned = True
                    break
            if not owned:
                found.append(package)
        for name in _BOARD_MODULES:
            rel = prefix + name
            if rel not in files and _exists(_join(root, rel)):
                found.append(rel)
    return found
