"""The pump's settings and event log in one file, for `pumpctl backup` and `pumpctl restore`.

Changing the MicroPython image on the Pico (for example to the ROMFS build) erases its
littlefs partition: the settings and the event log with it. `pumpctl backup FILE` saves
both over the pump's protocol (it works in locked mode); `pumpctl restore FILE` sends the
settings back as a setup, which the pump applies only when OK is pressed on it.

The file is JSON: {"kind", "format", "saved", "pump": {device, firmware, board, ...},
"settings": {as pumpctl settings get reads them}, "events": [...], "sha256"}, where
sha256 is over the canonical JSON of everything else: a file changed by hand or cut
short is refused, and so is one from another kind of pump (another board).
"""

import hashlib
import json
import os

KIND = "pico-insulin-pump backup"
FORMAT = 1


class BackupError(Exception):
    """Why a backup file cannot be used: one line."""


def _digest(body):
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def make(pump, settings, events, saved):
    """The backup document (a dict) of a pump's hello fields, settings and events."""
    body = {
        "kind": KIND,
        "format": FORMAT,
        "saved": saved,
        "pump": dict(pump),
        "settings": settings,
        "events": list(events),
    }
    body["sha256"] = _digest(body)
    return body


def write(path, document):
    """Write atomically: beside the file, then renamed over it."""
    temp = path + ".new"
    with open(temp, "w") as f:
        json.dump(document, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(temp, path)


def read(path):
    """The checked document of a backup file; BackupError (one line) when it is not whole,
    not a pump backup, or of a format this tool does not know."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise BackupError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BackupError("%s is not a pump backup (not JSON, or cut short)" % path) from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise BackupError("%s is not a pump backup (no kind %r)" % (path, KIND))
    if document.get("format") != FORMAT:
        raise BackupError("%s is a backup of format %r; this pumpctl reads format %d" % (
            path, document.get("format"), FORMAT))
    body = {k: v for k, v in document.items() if k != "sha256"}
    if document.get("sha256") != _digest(body):
        raise BackupError("%s is damaged: its checksum does not match its contents" % path)
    for key, kind in (("pump", dict), ("settings", dict), ("events", list)):
        if not isinstance(document.get(key), kind):
            raise BackupError("%s has no %s" % (path, key))
    return document


def check_pump(document, path, hello):
    """BackupError when the backup was made on another kind of pump than ``hello`` says."""
    mine = document["pump"]
    if mine.get("device") != hello.get("device"):
        raise BackupError("%s is from a %s, not this %s" % (
            path, mine.get("device"), hello.get("device")))
    if mine.get("board") != hello.get("board"):
        raise BackupError("%s is from a pump with board %s; this one has board %s" % (
            path, mine.get("board"), hello.get("board")))
