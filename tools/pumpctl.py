"""pumpctl: talk to the pump over its USB serial port (a Pico, or the simulator's pty).

    pumpctl [--port PORT | --sim PTY] status | version | hash | history | settings get |
            settings put FILE.toml | setup [FILE.toml] | time sync | bolus U |
            extended U --minutes M | dual U --now P --minutes M | temp-basal ... |
            suspend | resume | cancel-bolus | cancel-temp | profile delete NAME |
            watch | backup FILE | restore FILE | maintenance

Amounts are typed and shown in U, rates in U/h, speeds in U/min; milliunits only go over
the wire and into --csv and --json.

Every change that touches therapy waits until the person confirms it on the pump
(OK on its confirm screen, within 60 s). Exit codes: 0 done, 2 usage, 3 no device,
4 wrong device, 5 timeout, 6 refused, 7 not confirmed (rejected or expired),
8 cancelled here. Errors are one line on stderr. Each answer is awaited --timeout s
(10 by default: a slow or emulated board answers late); on a terminal, a wait past 3 s
shows the seconds on stderr until the answer comes.
"""

import argparse
import csv
import datetime
import glob
import json
import math
import os
import sys
import time

import pumptext


from pump.core import limits as lim
from pump.core import protocol as p

DEVICE = "pico-insulin-pump"
BAUD = 115200  # ignored by USB CDC; a pty takes it too
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_DEVICE = 3
EXIT_WRONG_DEVICE = 4
EXIT_TIMEOUT = 5
EXIT_REFUSED = 6
EXIT_NOT_CONFIRMED = 7
EXIT_CANCELLED = 8
CONFIRM_POLL_S = 0.25
ANSWER_TIMEOUT_S = 10.0  # default wait per answer: a slow or emulated board answers late
PROGRESS_AFTER_S = 3.0  # a wait longer than this shows its seconds (on a terminal)
_READ_SLICE_S = 0.02


class PumpError(Exception):
    """A failure to report: one line, and the exit code that goes with it."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


def open_port(path):
    """Open a serial port (a Pico's /dev/ttyACM0, or the simulator's pty) with pyserial."""
    import serial

    if not os.path.exists(path):
        raise PumpError(EXIT_NO_DEVICE, "no device at %s" % path)
    try:
        return serial.Serial(path, BAUD, timeout=_READ_SLICE_S, write_timeout=2)
    except (serial.SerialException, OSError) as exc:
        raise PumpError(EXIT_NO_DEVICE, "cannot open %s: %s" % (path, exc)) from None


def find_port():
    """The only USB serial port that looks like a Pico, or a PumpError."""
    candidates = sorted(glob.glob("/dev/ttyACM*") + glob.glob("/dev/cu.usbmodem*"))
    if not candidates:
        raise PumpError(EXIT_NO_DEVICE, "no pump found: plug it in or give --port")
    if len(candidates) > 1:
        raise PumpError(
            EXIT_NO_DEVICE, "several serial ports (%s): choose one with --port" % ", ".join(
                candidates)
        )
    return candidates[0]


class Client:
    """Requests and their answers over one open port; ``timeout`` in seconds per answer."""

    def __init__(self, port, timeout=ANSWER_TIMEOUT_S, progress=None):
        self.port = port
        self.timeout = timeout
        # progress(command, seconds waited) about once a second while an answer is late
        # (after PROGRESS_AFTER_S); progress(command, None) once it came or the wait ended.
        self.progress = progress
        self.decoder = p.ResponseDecoder()
        self.seq = 0
        self._queue = []
        self.noise = 0  # lines that were not valid responses
        self.bytes_in = 0
        self.version = {}  # the pump's answer to hello

    def close(self):
        self.port.close()

    def hello(self):
        """Open a session and check that a pump answers; returns its version fields."""
        try:
            self.port.reset_input_buffer()
        except Exception:  # a port that cannot flush still works
            pass
        self.seq = 0
        try:
            final, _ = self.request(p.HELLO)
        except PumpError as err:
            if err.code == EXIT_TIMEOUT and (self.noise or self.bytes_in):
                raise PumpError(
                    EXIT_WRONG_DEVICE,
                    "the device does not speak the pump's protocol (a REPL, or another device)",
                ) from None
            if err.code == EXIT_REFUSED:
                raise PumpError(
                    EXIT_WRONG_DEVICE, "the device refused the handshake: " + err.message
                ) from None
            raise
        if final.fields.get("device") != DEVICE:
            raise PumpError(
                EXIT_WRONG_DEVICE, "not a pump: it says device=%s" % final.fields.get("device")
            )
        return final.fields

    def _next(self, deadline, waiting=None):
        while not self._queue:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if waiting is not None:
                waiting()
            data = self.port.read(4096)
            if data:
                self.bytes_in += len(data)
                self._queue.extend(self.decoder.feed(data))
        return self._queue.pop(0)

    def request(self, command, *args):
        """Send one request; returns (final Response, [more Responses]). An ``err`` answer
        raises PumpError(EXIT_REFUSED)."""
        self.seq += 1
        seq = self.seq
        line = p.encode_request(seq, command, *args)
        if len(line) > p.MAX_REQUEST_LINE:
            raise PumpError(EXIT_USAGE, "request too long for one line (%d bytes)" % len(line))
        self.port.write(line)
        self.port.flush()
        deadline = time.monotonic() + self.timeout
        waiting = None if self.progress is None else _Waiting(self.progress, command)
        try:
            return self._answer(seq, command, deadline, waiting)
        finally:
            if waiting is not None:
                waiting.done()

    def _answer(self, seq, command, deadline, waiting):
        listing = []
        while True:
            item = self._next(deadline, waiting)
            if item is None:
                raise PumpError(
                    EXIT_TIMEOUT, "no answer to %s within %g s" % (command, self.timeout)
                )
            if item.is_error:
                self.noise += 1
                continue
            if item.seq != seq and item.seq != 0:
                continue  # a late answer to an earlier request
            if item.status == p.MORE:
                listing.append(item)
                continue
            if item.status == p.ERR:
                raise PumpError(
                    EXIT_REFUSED,
                    "refused (%s): %s" % (item.fields.get("code"), item.fields.get("msg")),
                )
            return item, listing

    def change(self, command, *args, on_pending=None, limit_s=None):
        """A therapy change: sent, held by the pump, then followed until the person
        confirms or rejects it on the pump. Returns the final confirm_status fields."""
        final, _ = self.request(command, *args)
        if final.status != p.PENDING:
            raise PumpError(EXIT_REFUSED, "the pump did not hold %s for confirmation" % command)
        ident = int(final.fields["id"])
        expires_s = int(final.fields.get("expires_in_ms", "60000")) / 1000
        if on_pending is not None:
            on_pending(ident, expires_s)
        deadline = time.monotonic() + (limit_s if limit_s is not None else expires_s + 30)
        while True:
            status, _ = self.request("confirm_status", ident)
            state = status.fields.get("state")
            if state == "applied":
                return status.fields
            if state == "refused":
                raise PumpError(
                    EXIT_REFUSED, "the pump refused it: %s" % status.fields.get("reason")
                )
            if state != "pending":
                raise PumpError(
                    EXIT_NOT_CONFIRMED,
                    "not confirmed on the pump (%s): %s" % (state, status.fields.get("reason")),
                )
            if time.monotonic() > deadline:
                raise PumpError(EXIT_TIMEOUT, "the pump still holds change %d" % ident)
            time.sleep(CONFIRM_POLL_S)


class _Waiting:
    """Calls ``progress(command, seconds)`` once a second after PROGRESS_AFTER_S."""

    def __init__(self, progress, command):
        self.progress = progress
        self.command = command
        self.start = time.monotonic()
        self.next_s = PROGRESS_AFTER_S
        self.shown = False

    def __call__(self):
        waited = time.monotonic() - self.start
        if waited >= self.next_s:
            self.next_s = int(waited) + 1.0
            self.shown = True
            self.progress(self.command, waited)

    def done(self):
        if self.shown:
            self.progress(self.command, None)


def terminal_progress(stream):
    """A Client's progress for a terminal: one line, rewritten in place, then erased."""

    def progress(command, waited):
        if waited is None:
            stream.write("\r\033[K")
        else:
            stream.write("\rpumpctl: waiting for the pump's answer to %s... %.0f s"
                         % (command, waited))
        stream.flush()

    return progress


# ----- values ---------------------------------------------------------------------------


def typed(text):
    """A field from the wire: int when it is a whole number, None for '-', else str."""
    if text == "-":
        return None
    if text.isdigit():
        return int(text)
    return text


def mu(units):
    """Insulin units (float or str) to whole milliunits."""
    return int(round(float(units) * 1000))


def units(mu_value):
    return "%.2f" % (mu_value / 1000)


# The settings file's keys: those of a scenario's [settings] (README, "Scenario runner").
SETTINGS_KEYS = ("max_bolus", "max_basal", "bolus_increment", "bolus_speed", "active_profile",
                 "profiles", "basal")


def settings_from_pump(client):
    """The pump's settings as a settings file holds them: U, U/h, U/min, hours; profiles as
    {name: [["HH:MM", U/h], ...]} in the pump's order; the active profile by name."""
    final, listing = client.request("settings")
    f = {k: typed(v) for k, v in final.fields.items()}
    profiles = {}
    for item in listing:
        basal = []
        for part in item.fields.get("basal", "").split(","):
            if part:
                start, rate = part.split("/")
                basal.append([start, int(rate) / 1000])
        profiles[item.fields.get("name")] = basal
    names = list(profiles)
    active = f["active_profile"]
    settings = {
        "max_bolus": f["max_bolus"] / 1000,
        "max_basal": f["max_basal"] / 1000,
        "bolus_increment": f["increment"] / 1000,
        "bolus_speed": f["speed"] / 1000,
        "active_profile": names[active] if 0 <= active < len(names) else active,
        "profiles": profiles,
    }
    for key, wire, scale in (("max_hour", "max_hour", 1000), ("max_day", "max_day", 1000),
                             ("low_reservoir", "low_reservoir", 1000),
                             ("auto_off", "auto_off_h", 1)):
        if isinstance(f.get(wire), int):
            settings[key] = f[wire] / scale if scale != 1 else f[wire]
    return settings


def to_toml(settings):
    out = [
        "# Pump settings (pumpctl settings get), with the key names of a scenario's [settings].",
        "max_bolus = %.2f          # U, up to %g" % (settings["max_bolus"],
                                                   lim.MAX_BOLUS_MU / 1000),
        "max_basal = %.2f          # U/h, up to %g" % (settings["max_basal"],
                                                     lim.MAX_BASAL_MU_PER_H / 1000),
        "bolus_increment = %g     # U: 0.01, 0.025, 0.05 or 0.1" % settings["bolus_increment"],
        "bolus_speed = %g          # U/min, %g to %g" % (settings["bolus_speed"],
                                                       lim.SPEED_STANDARD_MU_MIN / 1000,
                                                       lim.SPEED_QUICK_MU_MIN / 1000),
        "active_profile = %s" % json.dumps(settings["active_profile"]),
    ]
    extra = (("max_hour", "%g  # U in any hour"), ("max_day", "%g  # U in any day"),
             ("low_reservoir", "%g  # U left that raises the low-reservoir alert"),
             ("auto_off", "%d  # hours without a key press before auto-off, 0 = off"))
    if any(key in settings for key, _f in extra):
        out.append("# Limits and alarm options: changed only by pumpctl setup FILE.")
        for key, fmt in extra:
            if key in settings:
                out.append(("%s = " + fmt) % (key, settings[key]))
    out.append("")
    out.append("[profiles]                # U/h from each half-hour")
    for name, basal in settings["profiles"].items():
        rows = ", ".join('["%s", %.2f]' % (start, rate) for start, rate in basal)
        out.append("%s = [%s]" % (json.dumps(name), rows))
    return "\n".join(out) + "\n"


def _file_number(settings, key, low, high, unit):
    value = settings[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("%s: expected a number, got %r" % (key, value))
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError("%s: %r is not from %g to %g %s" % (key, value, low, high, unit))
    milli = round(value * 1000)
    if abs(milli - value * 1000) > 1e-6:
        raise ValueError("%s: %r has more than three decimals" % (key, value))
    return milli


def wire_settings(settings, pump_names=None):
    """A settings file's values as settings_put key=value pairs (wire units), in a fixed
    order; ValueError names the key at fault. ``pump_names``: the pump's profile names, for
    an active_profile given without profiles."""
    for key in settings:
        if key not in SETTINGS_KEYS:
            raise ValueError("unknown key %r (known: %s)" % (
                key, ", ".join(SETTINGS_KEYS + tuple(SETUP_EXTRA))))
    pairs = []
    for key, wire, low, high, unit in (
        ("max_bolus", "max_bolus", 0.001, lim.MAX_BOLUS_MU / 1000, "U"),
        ("max_basal", "max_basal", lim.RATE_STEP_MU_H / 1000, lim.MAX_BASAL_MU_PER_H / 1000, "U/h"),
        ("bolus_increment", "increment", lim.INCREMENT_CHOICES_MU[0] / 1000,
         lim.INCREMENT_CHOICES_MU[-1] / 1000, "U"),
        ("bolus_speed", "speed", lim.SPEED_STANDARD_MU_MIN / 1000, lim.SPEED_QUICK_MU_MIN / 1000,
         "U/min"),
    ):
        if key in settings:
            pairs.append((wire, _file_number(settings, key, low, high, unit)))
    profiles = settings.get("profiles")
    if "basal" in settings:
        if profiles is not None:
            raise ValueError("give basal or profiles, not both")
        profiles = {"Standard": settings["basal"]}
    names = list(pump_names or [])
    if profiles is not None:
        if not isinstance(profiles, dict) or not 1 <= len(profiles) <= lim.MAX_PROFILES:
            raise ValueError('profiles: 1 to %d profiles, as Name = [["00:00", 0.8], ...]'
                             % lim.MAX_PROFILES)
        names = list(profiles)
        for index, (name, basal) in enumerate(profiles.items()):
            pairs.append(("name%d" % index, str(name)))
            if not isinstance(basal, list) or not basal:
                raise ValueError('profiles.%s: expected [["HH:MM", U/h], ...]' % name)
            segments = []
            for i, seg in enumerate(basal):
                if not isinstance(seg, list) or len(seg) != 2 or not isinstance(seg[0], str):
                    raise ValueError('profiles.%s[%d]: expected ["HH:MM", U/h]' % (name, i))
                rate = _file_number({"rate": seg[1]}, "rate", 0, lim.MAX_BASAL_MU_PER_H / 1000,
                                    "U/h")
                segments.append("%s/%d" % (seg[0], rate))
            pairs.append(("basal%d" % index, ",".join(segments)))
    if "active_profile" in settings:
        active = settings["active_profile"]
        if active not in names:
            raise ValueError("active_profile: %r is not one of %s" % (active, names))
        pairs.append(("active_profile", names.index(active)))
    return pairs


def wire_text(key, value, names=()):
    """A settings_put value in a person's units, for the list of changes."""
    if value is None:
        return "(none)"
    if key == "max_bolus" or key == "increment":
        return pumptext.setting_units(int(value))
    if key == "max_basal":
        return pumptext.rate(int(value))
    if key == "speed":
        return pumptext.speed(int(value))
    if key == "active_profile":
        return names[value] if 0 <= value < len(names) else "profile %d" % value
    if key.startswith("basal"):
        parts = []
        for part in str(value).split(","):
            start, rate = part.split("/")
            parts.append("%s %s" % (start, pumptext.rate(int(rate))))
        return ", ".join(parts)
    return str(value)


WIRE_NAMES = {"max_bolus": "max bolus", "max_basal": "max basal", "increment": "bolus increment",
              "speed": "bolus speed", "active_profile": "active profile"}


def _wire_name(key, names):
    if key[:5] == "basal" and key[5:].isdigit():
        index = int(key[5:])
        name = names[index] if index < len(names) else "profile %d" % index
        return "profile %s" % name
    if key[:4] == "name" and key[4:].isdigit():
        return "name of profile %d" % (int(key[4:]) + 1)
    return WIRE_NAMES.get(key, key)


def diff_pairs(old, new, old_names=(), new_names=()):
    """Lines saying what changes from ``old`` to ``new`` (wire pairs), in a person's units;
    and the changed pairs."""
    before = dict(old)
    lines = []
    changed = []
    for key, value in new:
        if before.get(key) != value:
            lines.append("  %s: %s -> %s" % (
                _wire_name(key, list(new_names)), wire_text(key, before.get(key), old_names),
                wire_text(key, value, new_names)))
            changed.append((key, value))
    return lines, changed


def pack_requests(pairs):
    """Group key=value pairs into settings_put requests that each fit one line."""
    requests = []
    current = []
    for key, value in pairs:
        token = "%s=%s" % (key, value)
        trial = current + [token]
        if len(p.encode_request(p.MAX_SEQ, "settings_put", *trial)) > p.MAX_REQUEST_LINE:
            if not current:
                raise PumpError(EXIT_USAGE, "setting %s is too long for one request" % key)
            requests.append(current)
            trial = [token]
        current = trial
    if current:
        requests.append(current)
    return requests


# ----- commands -------------------------------------------------------------------------


def cmd_status(client, args, out):
    final, _ = client.request("status")
    fields = {k: typed(v) for k, v in final.fields.items()}
    if args.json:
        out.write(json.dumps(fields, sort_keys=True) + "\n")
        return EXIT_OK
    for label, text in status_lines(fields):
        out.write("%-14s %s\n" % (label, text))
    return EXIT_OK


def status_lines(f):
    """The status answer as (label, text) rows in a person's units."""
    def amount(key):
        return pumptext.units(int(f.get(key) or 0))

    rows = [("Time", str(f.get("time")))]
    if f.get("suspended"):
        rows.append(("Basal", "suspended (%s)" % (f.get("suspend_reason") or "-")))
    else:
        basal = pumptext.rate(int(f.get("basal_mu_per_h") or 0))
        if f.get("temp") not in (None, "", 0):
            basal += "  (temp basal %s)" % f.get("temp")
        rows.append(("Basal", basal))
    if f.get("profile") is not None:
        rows.append(("Profile", str(f.get("profile"))))
    if f.get("bolus_mu"):
        rows.append(("Bolus", "%s of %s given" % (amount("bolus_done_mu"), amount("bolus_mu"))))
    else:
        rows.append(("Bolus", "none running"))
    rows.append(("Given", "basal %s, bolus %s since the pump started" % (
        amount("basal_total_mu"), amount("bolus_total_mu"))))
    rows.append(("On board", amount("iob_mu")))
    rows.append(("Reservoir", pumptext.units(int(f.get("reservoir_mu") or 0), 2)))
    battery = f.get("battery_pct")
    rows.append(("Battery", "-" if battery is None else "%s %%" % battery))
    alarms = f.get("alarms")
    if alarms:
        names = [pumptext.alarm_name(code) for code in str(alarms).split(",")]
        rows.append(("Alarms", "; ".join(names)))
    else:
        rows.append(("Alarms", "none"))
    if f.get("held"):
        rows.append(("Waiting", "change %s waits for OK on the pump" % f.get("held")))
    return rows


def cmd_version(client, args, out):
    for key, value in client.version.items():
        out.write("%-10s %s\n" % (key, value))
    return EXIT_OK


def cmd_hash(client, args, out):
    final, _ = client.request("hash")
    for key, value in final.fields.items():
        out.write("%-10s %s\n" % (key, value))
    return EXIT_OK


def fetch_history(client, count=None):
    """Every event the pump still holds (or the last ``count``), oldest first."""
    events = []
    since = 0
    while True:
        final, listing = client.request("history", since, p.HISTORY_MAX_COUNT)
        for item in listing:
            events.append({k: typed(v) for k, v in item.fields.items()})
        got = int(final.fields.get("count", "0"))
        since = int(final.fields.get("last_seq", str(since)))
        if got < p.HISTORY_MAX_COUNT:
            break
    if count is not None:
        events = events[-count:]
    return events


READ_ONLY = ("hello", "status", "settings", "history", "version", "hash", "confirm_status",
             "setup_put")


def cmd_history(client, args, out):
    events = fetch_history(client, args.count)
    if args.json:
        out.write(json.dumps(events, indent=1) + "\n")
    elif args.csv:
        head = ["t_ms", "type", "seq", "kind", "steps", "mu"]
        extra = sorted({k for e in events for k in e} - set(head))
        writer = csv.DictWriter(out, head + extra, lineterminator="\n")
        writer.writeheader()
        for event in events:
            writer.writerow({k: ("" if v is None else v) for k, v in event.items()})
    else:
        for event in events:
            if not args.all and event.get("type") == "remote_request" and event.get(
                    "command") in READ_ONLY:
                continue  # the link's own record of a question: not therapy (see --all)
            fields = {k: v for k, v in event.items() if k not in ("seq", "t_ms", "type", "time",
                                                                  "wall_s")}
            when = event.get("time")
            if when is None and isinstance(event.get("wall_s"), int):
                when = pumptext.wall_text(event["wall_s"])
            if when is None:  # time since the pump started
                seconds = int(event.get("t_ms") or 0) // 1000
                when = "+%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)
            out.write("%6s  %-16s  %s\n" % (event.get("seq"), when,
                                             pumptext.describe(str(event.get("type")), fields)))
            out.flush()
    return EXIT_OK


def _say_pending(out):
    def say(ident, expires_s):
        out.write("Waiting for OK on the pump (change %d, %d s)...\n" % (ident, expires_s))
        out.flush()

    return say


def cmd_settings(client, args, out):
    if args.action == "get":
        out.write(to_toml(settings_from_pump(client)))
        return EXIT_OK
    import tomllib

    try:
        with open(args.file, "rb") as f:
            wanted = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PumpError(EXIT_USAGE, "cannot read %s: %s" % (args.file, exc)) from None
    current = settings_from_pump(client)
    for key in SETUP_EXTRA:
        if key in wanted and wanted[key] != current.get(key):
            raise PumpError(EXIT_USAGE, "%s: %s: the pump changes its limits and alarm options "
                            "only in setup (pumpctl setup FILE)" % (args.file, key))
    wanted = {k: v for k, v in wanted.items() if k not in SETUP_EXTRA}
    pump_names = list(current["profiles"])
    try:
        new = wire_settings(wanted, pump_names)
    except (TypeError, ValueError, KeyError) as exc:
        raise PumpError(EXIT_USAGE, "%s: %s" % (args.file, exc)) from None
    old = wire_settings({k: v for k, v in current.items() if k in SETTINGS_KEYS})
    new_names = list(wanted["profiles"]) if isinstance(wanted.get("profiles"), dict) else (
        ["Standard"] if "basal" in wanted else pump_names)
    lines, changed = diff_pairs(old, new, pump_names, new_names)
    if not changed:
        out.write("The pump already has these settings.\n")
        return EXIT_OK
    out.write("Changes:\n" + "\n".join(lines) + "\n")
    if not args.yes:
        out.write("Send them to the pump? [y/N] ")
        out.flush()
        answer = args.input().strip().lower()
        if answer not in ("y", "yes"):
            out.write("Nothing sent.\n")
            return EXIT_CANCELLED
    for tokens in pack_requests(changed):
        pairs = [t.split("=", 1) for t in tokens]
        client.change("settings_put", *["%s=%s" % (k, v) for k, v in pairs],
                      on_pending=_say_pending(out))
    out.write("Settings applied.\n")
    return EXIT_OK


def cmd_time(client, args, out):
    now = args.now() if args.now is not None else datetime.datetime.now()
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S")
    client.change("time_set", stamp, on_pending=_say_pending(out))
    out.write("Clock set to %s.\n" % stamp)
    return EXIT_OK


# ----- setup: the whole settings and the clock, one OK on the pump ----------------------

# Settings only setup takes (beyond settings put's): file key -> (low, high, unit) as the
# pump accepts them; amounts in U, auto_off in whole hours (0 = off).
SETUP_EXTRA = {
    "max_hour": (lim.MAX_HOUR_MIN_MU / 1000, lim.MAX_HOUR_MAX_MU / 1000, "U"),  # in any hour
    "max_day": (lim.MAX_DAY_MIN_MU / 1000, lim.MAX_DAY_MAX_MU / 1000, "U"),  # in any day
    # what is left when the low-reservoir alarm sounds
    "low_reservoir": (lim.LOW_LEVEL_MIN_MU / 1000, lim.LOW_LEVEL_MAX_MU / 1000, "U"),
    "auto_off": (0, lim.AUTO_OFF_MAX_H, "h"),  # hours without a key press before auto-off
}


def setup_pairs(wanted):
    """A settings file's values as setup_put (key, value) pairs in wire units; ValueError
    names the key at fault."""
    pairs = wire_settings({k: v for k, v in wanted.items() if k not in SETUP_EXTRA})
    for key, (low, high, unit) in SETUP_EXTRA.items():
        if key not in wanted:
            continue
        value = wanted[key]
        if unit == "h":
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError("%s: %r is not a whole number of hours from %d to %d" % (
                    key, value, low, high))
            pairs.append((key, value))
        else:
            pairs.append((key, _file_number(wanted, key, low, high, unit)))
    return pairs


def pack_setup(pairs):
    """setup_put requests (lists of key=value tokens) that each fit one line; a profile too
    long for one line goes on over several (each part after the first continues it)."""
    tokens = []
    for key, value in pairs:
        text = str(value)
        if key.startswith("basal") and len(p.encode_request(p.MAX_SEQ, "setup_put",
                                                            "%s=%s" % (key, text))) > 200:
            segments = text.split(",")
            while segments:
                part = []
                while segments and len(",".join(part + segments[:1])) < 160:
                    part.append(segments.pop(0))
                tokens.append("%s=%s" % (key, ",".join(part)))
        else:
            tokens.append("%s=%s" % (key, p.quote(text)))
    requests = []
    current = []
    for token in tokens:
        trial = current + [token]
        if current and (len(p.encode_request(p.MAX_SEQ, "setup_put", *trial))
                        > p.MAX_REQUEST_LINE or token.split("=")[0] in
                        [t.split("=")[0] for t in current]):
            requests.append(current)
            trial = [token]
        current = trial
    if current:
        requests.append(current)
    return requests


def cmd_setup(client, args, out):
    if args.file:
        import tomllib

        try:
            with open(args.file, "rb") as f:
                wanted = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PumpError(EXIT_USAGE, "cannot read %s: %s" % (args.file, exc)) from None
        try:
            pairs = setup_pairs(wanted)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise PumpError(EXIT_USAGE, "%s: bad value: %s" % (args.file, exc)) from None
        out.write("Setting the pump up with %s and this computer's clock.\n" % args.file)
    else:
        pairs = []
        out.write("Setting the pump up with the factory settings and this computer's clock.\n")
    for tokens in pack_setup(pairs):
        client.request("setup_put", *tokens)  # staged on the pump; refused at once if bad
    now = args.now() if args.now is not None else datetime.datetime.now()
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S")
    client.change("setup", stamp, on_pending=_say_pending(out))
    out.write("The pump is set up (clock %s, plus the time until OK).\n" % stamp.replace("T", " "))
    return EXIT_OK


# ----- backup / restore: across a change of the MicroPython image ------------------------


def cmd_backup(client, args, out):
    import pump_backup

    settings = settings_from_pump(client)
    events = fetch_history(client)
    now = args.now() if args.now is not None else datetime.datetime.now()
    document = pump_backup.make(client.version, settings, events,
                                now.strftime("%Y-%m-%dT%H:%M:%S"))
    try:
        pump_backup.write(args.file, document)
    except OSError as exc:
        raise PumpError(EXIT_USAGE, "cannot write %s: %s" % (args.file, exc)) from None
    out.write("Saved the settings and %d events to %s.\n" % (len(events), args.file))
    return EXIT_OK


def cmd_restore(client, args, out):
    import pump_backup

    document = args.backup  # read and checked before the port was opened
    try:
        pump_backup.check_pump(document, args.file, client.version)
        pairs = setup_pairs(document["settings"])
    except pump_backup.BackupError as exc:
        raise PumpError(EXIT_WRONG_DEVICE, str(exc)) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise PumpError(EXIT_USAGE, "%s: bad setting: %s" % (args.file, exc)) from None
    out.write("Restoring the settings saved %s, with this computer's clock.\n"
              % str(document.get("saved")).replace("T", " "))
    for tokens in pack_setup(pairs):
        client.request("setup_put", *tokens)
    now = args.now() if args.now is not None else datetime.datetime.now()
    client.change("setup", now.strftime("%Y-%m-%dT%H:%M:%S"), on_pending=_say_pending(out))
    out.write("Settings restored. The %d events of the old log stay in %s: the pump's log "
              "records only what this pump did, so nothing writes into it from outside.\n"
              % (len(document["events"]), args.file))
    return EXIT_OK


def _amount_mu(units_value, what, low_mu=1, high_mu=p.MAX_BOLUS_MU):
    """Units typed by a person as whole mU, or a usage error in U."""
    amount = round(units_value * 1000)
    if abs(amount - units_value * 1000) > 1e-6:
        raise PumpError(EXIT_USAGE, "%s %g U has more than three decimals" % (what, units_value))
    if not low_mu <= amount <= high_mu:
        raise PumpError(EXIT_USAGE, "%s must be from %s to %s, got %g U" % (
            what, pumptext.setting_units(low_mu), pumptext.setting_units(high_mu), units_value))
    return amount


def _minutes(value, what="--minutes"):
    if not 30 <= value <= 1440 or value % 30:
        raise PumpError(EXIT_USAGE, "%s must be 30 to 1440 in steps of 30, got %d"
                        % (what, value))
    return value


def cmd_bolus(client, args, out):
    amount = _amount_mu(args.units, "bolus")
    client.change("bolus", amount, on_pending=_say_pending(out))
    out.write("Bolus of %s started.\n" % pumptext.setting_units(amount))
    return EXIT_OK


def cmd_temp(client, args, out):
    if (args.percent is None) == (args.rate is None):
        raise PumpError(EXIT_USAGE, "give one of --percent or --rate")
    minutes = _minutes(args.minutes)
    if args.percent is not None:
        if not 0 <= args.percent <= 250:
            raise PumpError(EXIT_USAGE, "--percent must be 0 to 250, got %d" % args.percent)
        client.change("temp", "percent", args.percent, minutes, on_pending=_say_pending(out))
        out.write("Temp basal %d %% for %s started.\n" % (args.percent,
                                                         pumptext.minutes_text(minutes)))
    else:
        rate = _amount_mu(args.rate, "--rate", 0, p.MAX_BASAL_MU_PER_H)
        client.change("temp", "rate", rate, minutes, on_pending=_say_pending(out))
        out.write("Temp basal %s for %s started.\n" % (pumptext.rate(rate),
                                                      pumptext.minutes_text(minutes)))
    return EXIT_OK


def _simple_change(command, done):
    """A change with no arguments that the pump may not have: say so plainly."""

    def run(client, args, out):
        try:
            client.change(command, on_pending=_say_pending(out))
        except PumpError as err:
            if "unknown_command" in err.message:
                raise PumpError(EXIT_REFUSED, "this pump's firmware takes no %r over USB: use "
                                "the pump's menu" % command) from None
            raise
        out.write(done + "\n")
        return EXIT_OK

    return run


def cmd_extended(client, args, out):
    amount = _amount_mu(args.units, "extended bolus")
    minutes = _minutes(args.minutes)
    return _bolus_change(client, out, "extended", (amount, minutes), "Extended bolus of %s over "
                         "%s started." % (pumptext.setting_units(amount),
                                          pumptext.minutes_text(minutes)))


def cmd_dual(client, args, out):
    amount = _amount_mu(args.units, "dual bolus")
    minutes = _minutes(args.minutes)
    if not 1 <= args.now_percent <= 99:
        raise PumpError(EXIT_USAGE, "--now must be 1 to 99 %%, got %d" % args.now_percent)
    return _bolus_change(client, out, "dual", (amount, args.now_percent, minutes),
                         "Dual bolus of %s (%d %% now, the rest over %s) started." % (
                             pumptext.setting_units(amount), args.now_percent,
                             pumptext.minutes_text(minutes)))


def _bolus_change(client, out, command, wire_args, done):
    try:
        client.change(command, *wire_args, on_pending=_say_pending(out))
    except PumpError as err:
        if "unknown_command" in err.message:
            raise PumpError(EXIT_REFUSED, "this pump's firmware takes no %r bolus over USB: use "
                            "the pump's menu" % command) from None
        raise
    out.write(done + "\n")
    return EXIT_OK


def cmd_profile(client, args, out):
    current = settings_from_pump(client)
    names = list(current["profiles"])
    if args.name not in names:
        raise PumpError(EXIT_USAGE, "no profile %r on the pump (it has %s)" % (
            args.name, ", ".join(names)))
    if args.name == current["active_profile"]:
        raise PumpError(EXIT_USAGE, "profile %r is the active one: select another first"
                        % args.name)
    try:
        client.change("profile_delete", names.index(args.name), on_pending=_say_pending(out))
    except PumpError as err:
        if "unknown_command" in err.message:
            raise PumpError(EXIT_REFUSED, "this pump's firmware cannot delete a profile over "
                            "USB: use the pump's menu") from None
        raise
    out.write("Profile %s deleted.\n" % args.name)
    return EXIT_OK


MAINTENANCE_DONE = (
    "The pump restarted in development mode: until its next start, Ctrl-C reaches its "
    "REPL (make flash, mpremote); that next start is locked again. Delivery stays "
    "suspended: pumpctl resume (OK on the pump) or Resume on its menu.")
RESTART_WAIT_S = 120.0  # for a pump to answer again after a restart (an emulated one is slow)
# A confirmed maintenance restarts the pump within 0.3 s of its uptime when it answered
# "applied" (pump/link.py): an answer with less uptime, or with more than this beyond it,
# comes from the restarted pump.
RESTART_WITHIN_MS = 3000


def uptime_ms(client):
    final, _ = client.request("status")
    return int(final.fields.get("uptime_ms") or 0)


def ask_maintenance(client, out, prefix=""):
    """Ask the pump to restart once in development mode, and wait for OK on the pump.
    Returns the pump's uptime (ms) when it was confirmed (it answers with less once it has
    restarted); a PumpError (one line) when it is refused or not confirmed."""
    before = uptime_ms(client)

    def pending(ident, expires_s):
        out.write("%sPress OK on the pump: it asks \"Restart for maintenance?\" (delivery "
                  "stops until resumed).\n" % prefix)
        out.write("%sWaiting for OK on the pump (change %d, %d s)...\n" % (prefix, ident,
                                                                         expires_s))
        out.flush()

    try:
        fields = client.change("maintenance", on_pending=pending)
        told = fields.get("uptime_ms")  # the pump's uptime when it said "applied"
        return int(told) if told and told.isdigit() else before
    except PumpError as err:
        if "unknown_command" in err.message:
            raise PumpError(EXIT_REFUSED, "this pump's firmware cannot restart for maintenance "
                            "over USB: unplug it, hold UP and BACK while plugging it in "
                            "(development mode)") from None
        raise


def restarted(uptime, told_ms):
    """True when a pump that said "applied" at uptime ``told_ms`` has restarted since."""
    return uptime < told_ms or uptime > told_ms + RESTART_WITHIN_MS


def wait_restart(path, told_ms, wait_s, timeout_s, progress=None, clock=time.monotonic):
    """After a confirmed maintenance: wait until the pump on ``path`` answers again after
    its restart (``restarted``: its firmware runs, so what its start recorded is on flash).
    Returns the seconds waited; PumpError(EXIT_TIMEOUT) after ``wait_s``.
    ``progress(seconds)`` about every 5 s."""
    start = clock()
    shown = 0.0
    while True:
        time.sleep(0.5)
        client = None
        try:
            client = Client(open_port(path), timeout_s)
            client.hello()
            if restarted(uptime_ms(client), told_ms):
                return clock() - start
        except PumpError:
            pass  # gone while it restarts, or not answering yet
        finally:
            if client is not None:
                client.close()
        waited = clock() - start
        if waited >= wait_s:
            raise PumpError(EXIT_TIMEOUT, "the pump did not answer after its restart within "
                            "%.0f s" % waited)
        if progress is not None and waited - shown >= 5.0:
            shown = waited
            progress(waited)


def cmd_maintenance(client, args, out):
    before = ask_maintenance(client, out)
    client.close()
    out.write("Confirmed: the pump saves its state and restarts...\n")
    out.flush()

    def progress(waited):
        out.write("  waiting for the pump to answer again... %.0f s\n" % waited)
        out.flush()

    wait_restart(args.path, before, args.wait, args.timeout, progress)
    out.write(MAINTENANCE_DONE + "\n")
    return EXIT_OK


def cmd_watch(client, args, out):
    shown = 0
    try:
        while args.count is None or shown < args.count:
            final, _ = client.request("status")
            f = final.fields
            rows = dict(status_lines({k: typed(v) for k, v in f.items()}))
            out.write("%s  basal %s  bolus %s  on board %s  reservoir %s  battery %s  alarms %s\n"
                      % (rows["Time"], rows["Basal"], rows["Bolus"], rows["On board"],
                         rows["Reservoir"], rows["Battery"], rows["Alarms"]))
            out.flush()
            shown += 1
            if args.count is None or shown < args.count:
                time.sleep(args.interval)
    except KeyboardInterrupt:
        out.write("\n")
    return EXIT_OK


def _seconds(text):
    value = pumptext.finite(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("%r: give 0 to 3600 s" % text)
    return value


def build_parser():
    parser = pumptext.OneLineParser(prog="pumpctl", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--port", help="serial port of the pump (default: the only /dev/ttyACM*)")
    where.add_argument("--sim", metavar="PTY", help="the simulator's pty (tools/simlink.py)")
    parser.add_argument("--timeout", type=_seconds, default=ANSWER_TIMEOUT_S,
                        help="seconds to wait per answer (default %g)" % ANSWER_TIMEOUT_S)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("status", help="delivery, reservoir, battery, alarms")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_status)
    sub.add_parser("version", help="the pump's firmware and protocol").set_defaults(
        run=cmd_version)
    sub.add_parser("hash", help="the firmware image's manifest hash").set_defaults(run=cmd_hash)
    s = sub.add_parser("history", help="the event log")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true")
    fmt.add_argument("--json", action="store_true")
    s.add_argument("--count", type=pumptext.positive_int, help="only the last COUNT events")
    s.add_argument("--all", action="store_true", help="also the read-only requests the pump "
                   "answered over USB (--csv and --json always have them)")
    s.set_defaults(run=cmd_history)
    s = sub.add_parser("settings", help="settings get, or settings put FILE.toml")
    s.add_argument("action", choices=("get", "put"))
    s.add_argument("file", nargs="?")
    s.add_argument("--yes", action="store_true", help="send without asking (still confirmed "
                   "on the pump)")
    s.set_defaults(run=cmd_settings)
    s = sub.add_parser("setup", help="set the pump up: settings (factory, or FILE.toml) and "
                       "this computer's clock, applied with one OK on the pump")
    s.add_argument("file", nargs="?", help="settings as settings get writes them, plus "
                   "max_hour, max_day, low_reservoir (U) and auto_off (h)")
    s.set_defaults(run=cmd_setup)
    s = sub.add_parser("backup", help="save the settings and the event log to FILE (before "
                       "a new MicroPython image erases them)")
    s.add_argument("file")
    s.set_defaults(run=cmd_backup)
    s = sub.add_parser("restore", help="send the settings of a backup FILE back, applied with "
                       "one OK on the pump")
    s.add_argument("file")
    s.set_defaults(run=cmd_restore)
    s = sub.add_parser("time", help="time sync: set the pump's clock to this computer's")
    s.add_argument("action", choices=("sync",))
    s.set_defaults(run=cmd_time)
    s = sub.add_parser("bolus", help="a normal bolus of U units")
    s.add_argument("units", type=pumptext.finite, help="U, e.g. 2.5")
    s.set_defaults(run=cmd_bolus)
    s = sub.add_parser("extended", help="an extended bolus: U over --minutes")
    s.add_argument("units", type=pumptext.finite)
    s.add_argument("--minutes", type=int, required=True, help="30 to 480, in steps of 30")
    s.set_defaults(run=cmd_extended)
    s = sub.add_parser("dual", help="a dual-wave bolus: U, --now PERCENT, the rest over "
                       "--minutes")
    s.add_argument("units", type=pumptext.finite)
    s.add_argument("--now", dest="now_percent", type=int, required=True, help="1 to 99 %%")
    s.add_argument("--minutes", type=int, required=True, help="30 to 480, in steps of 30")
    s.set_defaults(run=cmd_dual)
    s = sub.add_parser("temp-basal", help="a temp basal: --percent P or --rate U/h, --minutes")
    s.add_argument("--percent", type=int, help="0 to 250 %% of the profile")
    s.add_argument("--rate", type=pumptext.finite, help="U/h")
    s.add_argument("--minutes", type=int, required=True, help="30 to 1440, in steps of 30")
    s.set_defaults(run=cmd_temp)
    for name, command, done, text in (
        ("suspend", "suspend", "Delivery suspended.", "stop all delivery (cancels a bolus)"),
        ("resume", "resume", "Delivery resumed.", "resume basal delivery"),
        ("cancel-bolus", "cancel_bolus", "Bolus cancelled.", "cancel the running bolus"),
        ("cancel-temp", "cancel_temp", "Temp basal cancelled.", "cancel the temp basal"),
    ):
        sub.add_parser(name, help=text).set_defaults(run=_simple_change(command, done))
    s = sub.add_parser("profile", help="profile delete NAME: remove a basal profile")
    s.add_argument("action", choices=("delete",))
    s.add_argument("name")
    s.set_defaults(run=cmd_profile)
    s = sub.add_parser("maintenance", help="restart the pump once in development mode (for "
                       "make flash), after OK on the pump; delivery stays suspended")
    s.add_argument("--wait", type=_seconds, default=RESTART_WAIT_S,
                   help="seconds for the pump to answer again after its restart")
    s.set_defaults(run=cmd_maintenance)
    s = sub.add_parser("watch", help="live status until Ctrl-C")
    s.add_argument("--interval", type=_seconds, default=1.0)
    s.add_argument("--count", type=pumptext.positive_int, help="stop after COUNT lines")
    s.set_defaults(run=cmd_watch)
    return parser


def main(argv=None, out=None, err=None, input_fn=input, now=None):
    """Run one command; returns the exit code. ``input_fn`` and ``now`` are for tests."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    args.input = input_fn
    args.now = now
    if args.command == "settings" and args.action == "put" and not args.file:
        parser.error("settings put needs a FILE.toml")
    client = None
    try:
        if args.command == "restore":  # a bad backup is refused before any port is opened
            args.backup = _read_backup(args.file)
        path = args.path = args.sim or args.port or find_port()
        progress = terminal_progress(err) if _is_terminal(err) else None
        client = Client(open_port(path), args.timeout, progress)
        client.version = client.hello()
        return args.run(client, args, out)
    except PumpError as exc:
        err.write("pumpctl: %s\n" % exc.message)
        return exc.code
    finally:
        if client is not None:
            client.close()


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _read_backup(path):
    import pump_backup

    try:
        return pump_backup.read(path)
    except pump_backup.BackupError as exc:
        raise PumpError(EXIT_USAGE, str(exc)) from None


def console():
    """Entry point of the `pumpctl` console script."""
    sys.exit(pumptext.quiet_broken_pipe(main))


if __name__ == "__main__":
    console()
