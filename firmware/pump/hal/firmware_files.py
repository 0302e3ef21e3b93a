"""Firmware integrity: each file listed in the build's manifest.json hashed against its sha256.

`make build` writes manifest.json next to main.py: {"format": 1, "board", "mpy_arch",
"files": {path: sha256 hex}}, paths relative to the device's root. Besides missing
and changed files, a .py or .mpy file that sits in one of the image's folders but
is not in the manifest counts as unexpected: `make flash` never deletes, and a
stale pump/x.py would be imported instead of pump/x.mpy.
"""

import binascii
import hashlib
import json
import os

from micropython import const

MANIFEST = "manifest.json"
MANIFEST_FORMAT = const(1)
_CHUNK = const(512)  # bytes hashed per read: a small buffer, allocated once


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
    return report
