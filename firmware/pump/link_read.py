"""The link's listings: the settings, the event history and the firmware's hash.

Loaded by pump/link.py for one answer and let go after, so the pump keeps none of it in
RAM between requests.
"""

from micropython import const

from pump.core import protocol as p
from pump.core.schedule import slot_text

_HISTORY_WINDOW = const(400)  # history reaches back at most this many events from the newest


def answer(link, req, now):
    command = req.command
    if command == "settings":
        _settings(link, req.seq, now)
    elif command == "history":
        _history(link, req.seq, req.args[0], req.args[1], now)
    else:
        link.answer_ok(req.seq, hash_fields(link), now, command)


def _settings(link, seq, now):
    s = link.app.therapy.settings
    for index, profile in enumerate(s.profiles):
        segments = ",".join(
            "%s/%d" % (slot_text(start), rate)
            for start, rate in profile.segments
        )
        line = p.encode_response(
            seq, p.MORE, (("profile", index), ("name", profile.name), ("basal", segments))
        )
        link.port.write(line)
    fields = (
        ("max_bolus", s.max_bolus_mu),
        ("max_basal", s.max_basal_mu_per_h),
        ("increment", s.increment_mu),
        ("speed", s.bolus_speed_mu_per_min),
        ("active_profile", s.active_profile),
        ("profiles", len(s.profiles)),
        ("max_hour", s.max_hour_mu),
        ("max_day", s.max_day_mu),
        ("low_reservoir", s.low_reservoir_mu),
        ("auto_off_h", s.auto_off_h),
    )
    link.answer_ok(seq, fields, now, "settings")


def _events(link, since, count):
    """Up to ``count`` events after seq ``since``, oldest first, as (seq, t_ms, type,
    fields, wall_s): only those are read (from flash, or the RAM ring)."""
    app = link.app
    if app.events.seq <= since:
        return []
    history = getattr(app, "history", None)
    if history is not None:
        try:  # the first ``count`` after ``since``, oldest first
            rows = history(count, since=since)
            return [(e[0], e[1], e[3], e[4], e[2]) for e in rows]
        except Exception:  # the stored log failed (or an App without since): the RAM ring
            pass
    wanted = app.events.seq - since
    wanted = wanted if wanted < _HISTORY_WINDOW else _HISTORY_WINDOW
    return [(e[0], e[1], e[2], e[3], None) for e in app.events.recent(wanted)]


def _history(link, seq, since, count, now):
    sent = 0
    last = since
    for event in _events(link, since, count):
        if event[0] <= since:
            continue
        if sent >= count:
            break
        link.port.write(_event_line(seq, event))
        sent += 1
        last = event[0]
    link.answer_ok(seq, (("count", sent), ("last_seq", last)), now, "history")


def hash_fields(link):
    """The image's manifest (sha256 of manifest.json) and whether every file matches it."""
    root = link.app.firmware_root
    if root is None:
        return (("manifest", None), ("source", 1))
    from pump.hal import firmware_files as ff

    # Hashing the image takes well under a second: inside one watchdog period.
    report = ff.verify(root)
    digest = None
    if report.manifest_found:
        path = root.rstrip("/") + "/" + ff.MANIFEST if root else ff.MANIFEST
        try:
            digest = ff.file_sha256(path, bytearray(256))
        except OSError:
            digest = None
    return (
        ("manifest", digest),
        ("files_ok", report.ok()),
        ("checked", report.checked),
        ("missing", len(report.missing)),
        ("changed", len(report.changed)),
        ("unexpected", len(report.unexpected)),
        ("error", report.error),
    )


def _event_line(seq, event):
    """One history event as a ``more`` line, cut down to fit a response line."""
    fields = [("seq", event[0]), ("t_ms", event[1]), ("type", event[2])]
    if event[4] is not None:
        fields.append(("wall_s", event[4]))
    for key in sorted(event[3]):
        name = key if key not in ("seq", "t_ms", "type", "wall_s") else "field_" + key
        fields.append((name, _flat(event[3][key])))
    line = p.encode_response(seq, p.MORE, fields)
    while len(line) > p.MAX_RESPONSE_LINE and len(fields) > 3:
        fields.pop()
        line = p.encode_response(seq, p.MORE, fields + [("truncated", 1)])
    return line


def _flat(value):
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value
