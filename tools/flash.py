"""make flash: copy the built image to a Pico in an order that a cut can never turn into a hang.

    python tools/flash.py [--port PORT] [--build build] [--target auto|romfs|littlefs]
                          [--wait 180] [--no-verify] [--no-maintenance]

A pump in locked mode (its REPL closed; only its protocol answers) is first asked over the
protocol to restart once in development mode for maintenance (pumpctl maintenance): the
person presses OK on the pump, which suspends delivery, saves its state and restarts;
then the flash goes on as below, and the pump starts locked again after it.
--no-maintenance fails instead, with what to do. Then over MicroPython's raw REPL
(mpremote's transport), in this order:

1. stop the RP2040 watchdog (the firmware's 8 s watchdog survives Ctrl-C and a soft
   reset), then soft-reset so the firmware's timers and PIO stop too;
2. write /flashing: from here until step 6 the pump boots to "firmware incomplete"
   (main.py checks it, and manifest.json, before importing anything of the pump);
3. boot.py, bootcheck.py and main.py, each written beside and renamed over (littlefs
   renames are atomic); then the old manifest.json goes, and every file of the pump's
   that the build no longer has (pump/ and board modules anywhere on the import path,
   files the old manifest listed);
4. pump/**.mpy and board.mpy: to the ROMFS partition with `mpremote romfs deploy` when
   the MicroPython image has one (they execute in place from flash), else to littlefs,
   skipping files whose sha256 on the Pico already matches;
5. manifest.json (paths as deployed: rom/pump/... or pump/...), written last;
6. remove /flashing, write /reset_planned (the firmware's recovery then raises no
   "The pump restarted" alarm), reset;
7. wait for the pump's answer to `hash` (tools/verify_flash.py) as long as it takes,
   showing progress.

Every failure is one line on stderr and an exit code (pumpctl's: 2 usage, 3 no device,
4 wrong device, 5 timeout; 1 the image did not verify; 130 interrupted here).
"""

import argparse
import base64
import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time


import pumpctl
import verify_flash

EXIT_FAILED = 1
FLASHING = "flashing"
RESET_PLANNED = "reset_planned"
MAINTENANCE_MARK = "maintenance.once"  # pump/link_maint.py MARK_FILE: removed if one is left
MANIFEST = "manifest.json"
SETTINGS = "settings.rec"  # pump/hal/storage.py: the pump's settings on littlefs
# Where MicroPython's rp2 port imports from (sys.path less '.frozen'), relative to "/".
IMPORT_PLACES = ("", "rom", "rom/lib", "lib")
_WATCHDOG_CTRL = 0x40058000  # RP2040 WATCHDOG CTRL, bit 30 ENABLE
_WRITE_CHUNK = 2048  # bytes per raw-REPL command when writing a file
_REPL_WAIT_S = 10.0
_RETRY_S = 1.0  # between tries to reach the REPL of a pump restarting for maintenance
_READ_S = 5.0  # the longest a single read waits (a slow, emulated board answers late)


class FlashError(Exception):
    def __init__(self, code, message, locked=False):
        Exception.__init__(self, message)
        self.code = code
        self.message = message
        self.locked = locked  # no REPL, but the pump's protocol answered: locked mode


# ----- the plan (pure: tested on the host) ---------------------------------------------


def is_module(rel):
    """True for what goes to ROMFS when there is one: the pump package and the board."""
    return rel.startswith("pump/") or rel in ("board.mpy", "board.py")


def device_manifest(build_manifest, target):
    """The manifest as written to the Pico: the build's, its module paths under rom/ for
    the ROMFS target. Returns a new dict."""
    if target not in ("romfs", "littlefs"):
        raise ValueError("target must be romfs or littlefs, not %r" % (target,))
    files = {}
    for rel, digest in build_manifest["files"].items():
        files[("rom/" + rel) if target == "romfs" and is_module(rel) else rel] = digest
    manifest = dict(build_manifest)
    manifest["files"] = dict(sorted(files.items()))
    manifest["target"] = target
    return manifest


def manifest_bytes(manifest):
    return (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()


def is_managed(rel):
    """Files of the pump's on littlefs that a flash may remove: the pump package and board
    modules anywhere on the import path, .py/.mpy beside main.py, and the flash's markers."""
    for place in IMPORT_PLACES:
        prefix = place + "/" if place else ""
        if rel.startswith(prefix + "pump/") or rel in (prefix + "board.py", prefix + "board.mpy"):
            return True
    if "/" not in rel and (rel.endswith(".py") or rel.endswith(".mpy")):
        return True
    return rel in (MANIFEST, FLASHING, RESET_PLANNED, MAINTENANCE_MARK)


def stale_files(device_files, new_files, old_files=()):
    """Littlefs files to remove before writing: the pump's files that the new manifest does
    not list, and whatever the old manifest listed that the new one does not. Paths
    relative to "/", sorted; ROMFS (rom/...) is rewritten whole, never listed here."""
    keep = set(new_files)
    stale = set()
    for rel in device_files:
        if rel.startswith("rom/") or rel in keep or rel in (MANIFEST, FLASHING):
            continue
        if is_managed(rel) or rel in old_files:
            stale.add(rel)
    return sorted(stale)


def empty_folders(removed, remaining):
    """Folders (deepest first) that hold nothing once ``removed`` are gone."""
    folders = set()
    for rel in removed:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folders.add("/".join(parts[:i]))
    still = set()
    for rel in remaining:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            still.add("/".join(parts[:i]))
    return sorted(folders - still, key=lambda f: (-f.count("/"), f))


def local_image(build_dir):
    """(manifest dict, {rel: bytes}) of the build, each file checked against the manifest."""
    path = os.path.join(build_dir, MANIFEST)
    try:
        with open(path, "rb") as f:
            manifest = json.loads(f.read())
    except OSError:
        raise FlashError(pumpctl.EXIT_USAGE, "no %s: run make build first" % path) from None
    except ValueError:
        raise FlashError(pumpctl.EXIT_USAGE, "%s is not JSON: run make build" % path) from None
    if not isinstance(manifest, dict) or manifest.get("format") != 1 or not isinstance(
        manifest.get("files"), dict
    ):
        raise FlashError(pumpctl.EXIT_USAGE, "%s has an unknown format" % path)
    data = {}
    usage = pumpctl.EXIT_USAGE
    for rel, digest in sorted(manifest["files"].items()):
        try:
            with open(os.path.join(build_dir, rel), "rb") as f:
                content = f.read()
        except OSError:
            raise FlashError(usage, "%s is missing from %s" % (rel, build_dir)) from None
        if hashlib.sha256(content).hexdigest() != digest:
            raise FlashError(usage, "%s/%s differs from its manifest" % (build_dir, rel))
        data[rel] = content
    for rel in ("main.py", "board.mpy"):
        if rel not in data:
            raise FlashError(pumpctl.EXIT_USAGE, "the build has no %s" % rel)
    return manifest, data


def romfs_image(modules):
    """A ROMFS image (bytes) of {rel: bytes}, made by mpremote's own writer."""
    from mpremote.romfs import make_romfs

    with tempfile.TemporaryDirectory() as folder:
        for rel, content in modules.items():
            path = os.path.join(folder, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)
        with contextlib.redirect_stdout(io.StringIO()):
            return make_romfs(folder, mpy_cross=False)


# ----- the Pico ------------------------------------------------------------------------


def resolve_port(port):
    if port:
        if not os.path.exists(port):
            raise FlashError(pumpctl.EXIT_NO_DEVICE, "no such port: %s" % port)
        return port
    try:
        return pumpctl.find_port()
    except pumpctl.PumpError as exc:
        # pumpctl's words name its --port option; make flash takes PORT=.
        raise FlashError(exc.code, exc.message.replace("--port", "PORT=/dev/ttyACM0")) from None


_WALK = """
import os
def _w(d):
    for e in os.ilistdir(d):
        p = d + e[0] if d.endswith('/') else d + '/' + e[0]
        if e[1] == 0x4000:
            if p != '/rom':
                _w(p)
        else:
            print(repr(p[1:]))
_w('/')
"""

_HASHES = """
import hashlib, binascii
def _h(names):
    b = bytearray(512)
    v = memoryview(b)
    for n in names:
        try:
            d = hashlib.sha256()
            with open('/' + n, 'rb') as f:
                while True:
                    k = f.readinto(b)
                    if not k:
                        break
                    d.update(v[:k])
            print(repr((n, binascii.hexlify(d.digest()).decode())))
        except OSError:
            pass
"""


class Pico:
    """The raw REPL of a Pico running MicroPython, through mpremote's serial transport."""

    def __init__(self, port, out):
        self.port = port
        self.out = out
        self.transport = None
        self._folders = set()  # made (or found) on the Pico in this session

    def say(self, text):
        self.out.write(text + "\n")
        self.out.flush()

    def open(self, soft_reset, explain=True):
        """The raw REPL; a FlashError when there is none (``explain``: say why, asking the
        port whether a locked pump answers there)."""
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        try:
            # A read timeout: on a pty mpremote reads without one, and a silent port (a
            # locked pump) would then block for ever.
            self.transport = SerialTransport(self.port, baudrate=115200, timeout=_READ_S)
        except TransportError:
            raise FlashError(
                pumpctl.EXIT_NO_DEVICE,
                "cannot open %s: another program has it open (close pumpctl, mpremote or a "
                "terminal)" % self.port,
            ) from None
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.transport.enter_raw_repl(soft_reset=soft_reset, timeout_overall=_REPL_WAIT_S)
        except TransportError:
            self.close()
            if not explain:
                raise FlashError(pumpctl.EXIT_WRONG_DEVICE, "no REPL yet") from None
            locked, message = self._why_no_repl()
            raise FlashError(pumpctl.EXIT_WRONG_DEVICE, message, locked) from None

    def soft_reset(self):
        from mpremote.transport import TransportError

        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.transport.enter_raw_repl(soft_reset=True, timeout_overall=_REPL_WAIT_S)
        except TransportError:
            raise FlashError(EXIT_FAILED, "the Pico did not come back from a soft reset") from None

    def _why_no_repl(self):
        """(locked, one line): why the REPL did not answer (a locked pump answers its
        protocol)."""
        try:
            client = pumpctl.Client(pumpctl.open_port(self.port))
        except pumpctl.PumpError:
            return False, "no MicroPython REPL on %s" % self.port
        try:
            # End the line that mpremote's Ctrl-C / Ctrl-A started, so hello is read whole.
            client.port.write(b"\r\n")
            time.sleep(0.3)
            client.hello()
            return True, (
                "the pump runs in locked mode, where Ctrl-C cannot stop it: run make flash and "
                "press OK on the pump when it asks, or unplug it, hold UP and BACK while "
                "plugging it in (development mode) and run make flash again"
            )
        except pumpctl.PumpError:
            return False, (
                "no MicroPython REPL on %s: is MicroPython on the Pico? (README, Flashing)"
                % self.port
            )
        finally:
            client.close()

    def close(self):
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.close()
            self.transport = None

    def exec(self, code):
        from mpremote.transport import TransportError

        try:
            return self.transport.exec(code).decode()
        except TransportError as exc:
            raise FlashError(
                EXIT_FAILED, "the Pico failed: %s" % _last_line(exc)
            ) from None

    def lines(self, code):
        import ast

        return [ast.literal_eval(line) for line in self.exec(code).splitlines() if line.strip()]

    def stop_watchdog(self):
        """Clear the RP2040 watchdog's enable bit; returns the machine's description."""
        machine = self.exec(
            "import sys, machine\nm = sys.implementation._machine\n"
            "if 'RP2040' in m:\n machine.mem32[%d] &= ~(1 << 30)\nprint(m)" % _WATCHDOG_CTRL
        ).strip()
        if "RP2040" not in machine:
            raise FlashError(pumpctl.EXIT_WRONG_DEVICE, "not an RP2040: %s" % machine)
        return machine

    def info(self):
        """(MicroPython version, ROMFS partition size in bytes or 0, littlefs files)."""
        version = self.exec("import os\nprint(os.uname().release)").strip()
        rom_size = int(self.exec(
            "import vfs\ntry:\n d = vfs.rom_ioctl(2, 0) if vfs.rom_ioctl(1) > 0 else 0\n"
            " print(d.ioctl(4, 0) * d.ioctl(5, 0) if hasattr(d, 'ioctl') else len(d) if d else 0)\n"
            "except Exception:\n print(0)"
        ).strip())
        return version, rom_size, self.lines(_WALK)

    def hashes(self, names):
        self.exec(_HASHES)
        found = {}
        for i in range(0, len(names), 16):
            for rel, digest in self.lines("_h(%r)" % (names[i:i + 16],)):
                found[rel] = digest
        return found

    def rom_sha256(self, size):
        return self.exec(
            "import vfs, hashlib, binascii\n"
            "print(binascii.hexlify(hashlib.sha256(memoryview(vfs.rom_ioctl(2, 0))[:%d])"
            ".digest()).decode())" % size
        ).strip()

    def write(self, rel, content, atomic=False):
        """Write a file (parents made); ``atomic``: beside it, then renamed over it."""
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i])
            if folder not in self._folders:
                self.exec("import os\ntry:\n os.mkdir('/%s')\nexcept OSError:\n pass" % folder)
                self._folders.add(folder)
        target = "/" + rel + (".new" if atomic else "")
        self.exec("from binascii import a2b_base64 as _d\n_f = open(%r, 'wb')" % target)
        for i in range(0, len(content), _WRITE_CHUNK):
            chunk = base64.b64encode(content[i:i + _WRITE_CHUNK]).decode()
            self.exec("_f.write(_d(%r))" % chunk)
        self.exec("_f.close()")
        if atomic:
            self.exec("import os\nos.rename(%r, %r)" % (target, "/" + rel))

    def remove(self, rel):
        self.exec("import os\ntry:\n os.remove('/%s')\nexcept OSError:\n pass" % rel)

    def rmdir(self, rel):
        self._folders.discard(rel)
        self.exec("import os\ntry:\n os.rmdir('/%s')\nexcept OSError:\n pass" % rel)

    def erase_romfs(self):
        """Spoil the ROMFS header so nothing is mounted at /rom after the next reset."""
        self.exec(
            "import vfs\ntry:\n vfs.umount('/rom')\nexcept OSError:\n pass\n"
            "d = vfs.rom_ioctl(2, 0)\nif hasattr(d, 'ioctl'):\n d.ioctl(6, 0)\n"
            "else:\n vfs.rom_ioctl(3, 0, 4096)\n vfs.rom_ioctl(5, 0)"
        )

    def reset(self):
        from mpremote.transport import TransportError

        with contextlib.suppress(TransportError, OSError):
            self.transport.exec_raw_no_follow("import machine\nmachine.reset()")
        self.close()


def _last_line(exc):
    text = " ".join(str(a) for a in exc.args if isinstance(a, (str, bytes)))
    if isinstance(exc.args[-1], str):
        text = exc.args[-1]
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else str(exc)


def deploy_romfs(port, image_path, out):
    """`mpremote romfs deploy` of a built image; its progress shown, its failure one line."""
    mpremote = os.path.join(os.path.dirname(sys.executable), "mpremote")
    cmd = [mpremote if os.path.exists(mpremote) else "mpremote",
           "connect", port, "resume", "romfs", "deploy", image_path]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr + proc.stdout).strip().splitlines() or ["exit %d" % proc.returncode]
        raise FlashError(EXIT_FAILED, "mpremote romfs deploy failed: %s" % lines[-1].strip())
    out.write("  ROMFS deployed (%s)\n" % proc.stdout.strip().splitlines()[-1].split("\r")[-1])


# ----- the flash -----------------------------------------------------------------------


_MAINTENANCE_ANSWER_S = 30.0  # per answer while asking: the pump is known to answer


def restart_for_maintenance(pico, wait_s, timeout_s=_MAINTENANCE_ANSWER_S, clock=time.monotonic):
    """A locked pump: ask it over its protocol to restart once in development mode (OK on
    the pump), then wait until its REPL answers (``pico`` open), at most ``wait_s``."""
    pico.say("flash: the pump runs in locked mode: asking it to restart in development mode "
             "for maintenance")
    try:
        client = pumpctl.Client(pumpctl.open_port(pico.port), timeout_s)
    except pumpctl.PumpError as err:
        raise FlashError(err.code, err.message) from None
    try:
        client.port.write(b"\r\n")  # ends the line mpremote's Ctrl-C / Ctrl-A started
        time.sleep(0.3)
        client.hello()
        before_ms = pumpctl.ask_maintenance(client, pico.out, "flash: ")
    except pumpctl.PumpError as err:
        raise FlashError(err.code, "the pump did not restart for maintenance: %s; run make "
                         "flash again and press OK on the pump, or unplug it and hold UP and "
                         "BACK while plugging it in" % err.message) from None
    finally:
        client.close()
    pico.say("flash: OK pressed on the pump; waiting for it to restart in development mode")
    start = clock()

    def progress(waited):
        pico.say("  waiting for the pump to answer again... %.0f s" % waited)

    # Its protocol first: once it answers, its start is recorded on flash (Ctrl-C earlier
    # would stop the firmware before that).
    try:
        pumpctl.wait_restart(pico.port, before_ms, wait_s, timeout_s, progress)
    except pumpctl.PumpError as err:
        raise FlashError(err.code, "%s: power it off and on holding UP and BACK, then make "
                         "flash again" % err.message) from None
    shown = 0.0
    while True:
        time.sleep(_RETRY_S)
        try:
            pico.open(soft_reset=False, explain=False)
            return clock() - start
        except FlashError as exc:
            waited = clock() - start
            if waited >= wait_s:
                raise FlashError(pumpctl.EXIT_TIMEOUT, "the pump did not come back in "
                                 "development mode within %.0f s (%s)" % (waited, exc.message)
                                 ) from None
            if waited - shown >= 5.0:
                shown = waited
                pico.say("  waiting for the pump's REPL... %.0f s" % waited)


def flash(build_dir, port, target="auto", out=None, verify=True, wait_s=180.0,
          maintenance=True):
    out = out or sys.stdout
    manifest, data = local_image(build_dir)
    port = resolve_port(port)
    pico = Pico(port, out)
    started = time.monotonic()
    pico.say("flash: connecting to %s" % port)
    try:
        pico.open(soft_reset=False)
    except FlashError as exc:
        if not (exc.locked and maintenance):
            raise
        waited = restart_for_maintenance(pico, wait_s)
        pico.say("flash: the pump restarted in development mode (%.0f s)" % waited)
    else:
        maintenance = False  # the REPL answered: nothing was asked of the pump
    try:
        machine = pico.stop_watchdog()
        pico.soft_reset()  # the firmware's timers and state machines stop too
        version, rom_size, device_files = pico.info()
        pico.say("flash: %s, MicroPython %s, ROMFS %s" % (
            machine, version, "%d KB" % (rom_size // 1024) if rom_size else "none"))
        modules = {rel: content for rel, content in data.items() if is_module(rel)}
        image = romfs_image(modules) if rom_size or target == "romfs" else b""
        if target == "auto":
            target = "romfs" if rom_size else "littlefs"
        if target == "romfs":
            if not rom_size:
                raise FlashError(pumpctl.EXIT_WRONG_DEVICE,
                                 "this MicroPython has no ROMFS partition (README, Flashing)")
            if len(image) > rom_size:
                raise FlashError(EXIT_FAILED, "the ROMFS image (%d bytes) does not fit the %d-byte "
                                 "partition" % (len(image), rom_size))
        placed = device_manifest(manifest, target)
        text = manifest_bytes(placed)
        with open(os.path.join(build_dir, "device-manifest.json"), "wb") as f:
            f.write(text)
        old_files = _old_manifest_files(pico, device_files)
        to_littlefs = {rel: content for rel, content in data.items()
                       if not (target == "romfs" and is_module(rel))}
        stale = stale_files(device_files, list(to_littlefs), old_files)
        present = pico.hashes(sorted(rel for rel in to_littlefs if rel in device_files))
        changed = [rel for rel in sorted(to_littlefs)
                   if present.get(rel) != hashlib.sha256(to_littlefs[rel]).hexdigest()]
        pico.say("flash: to %s; %d files to write, %d unchanged, %d to remove" % (
            target, len(changed), len(to_littlefs) - len(changed), len(stale)))

        pico.write(FLASHING, b"make flash did not finish\n")
        entry = [rel for rel in changed if "/" not in rel and rel.endswith(".py")]
        for rel in entry:  # boot.py, bootcheck.py, main.py: each whole or not at all
            pico.write(rel, to_littlefs[rel], atomic=True)
        pico.remove(MANIFEST)
        for rel in stale:
            pico.say("  remove %s" % rel)
            pico.remove(rel)
        remaining = [rel for rel in device_files if rel not in stale] + list(to_littlefs)
        for folder in empty_folders(stale, remaining):
            pico.rmdir(folder)
        rest = [rel for rel in changed if rel not in entry]
        for n, rel in enumerate(rest, 1):
            pico.say("  [%d/%d] %s (%d bytes)" % (n, len(rest), rel, len(to_littlefs[rel])))
            pico.write(rel, to_littlefs[rel])
        if target == "romfs":
            digest = hashlib.sha256(image).hexdigest()
            if pico.rom_sha256(len(image)) == digest:
                pico.say("  ROMFS already holds this image (%d bytes)" % len(image))
            else:
                pico.say("  ROMFS: deploying %d bytes with mpremote romfs deploy..." % len(image))
                image_path = os.path.join(build_dir, "romfs.img")
                with open(image_path, "wb") as f:
                    f.write(image)
                pico.close()
                deploy_romfs(port, image_path, out)
                pico.open(soft_reset=False)
        elif rom_size and _rom_has_files(pico):
            pico.say("  ROMFS: erased (the modules now live on littlefs)")
            pico.erase_romfs()
        pico.write(MANIFEST, text, atomic=True)
        pico.remove(FLASHING)
        pico.write(RESET_PLANNED, b"make flash\n")
        pico.say("flash: written in %.0f s; resetting the Pico" % (time.monotonic() - started))
        pico.reset()
    finally:
        pico.close()
    if maintenance:
        out.write("flash: the pump starts locked again; delivery stays suspended since the "
                  "maintenance restart: pumpctl resume (OK on the pump) or Resume on its menu\n")
    if SETTINGS not in device_files:
        out.write("flash: no settings on this Pico (new, or its filesystem was erased by a new "
                  "MicroPython image): set it up (pumpctl setup, or the pump's keys), or "
                  "pumpctl restore FILE from a backup\n")
    if not verify:
        return 0
    expected = hashlib.sha256(text).hexdigest()
    return verify_flash.wait_and_check(port, expected, wait_s, out)


def _old_manifest_files(pico, device_files):
    if MANIFEST not in device_files:
        return ()
    try:
        old = json.loads(pico.exec("print(open('/%s').read())" % MANIFEST))
        return tuple(old.get("files", {}))
    except (ValueError, AttributeError, FlashError):
        return ()


def _rom_has_files(pico):
    return pico.exec("import os\ntry:\n print(len(os.listdir('/rom')))\nexcept OSError:\n"
                     " print(0)").strip() not in ("", "0")


def main(argv=None, out=None, err=None):
    out = out or sys.stdout
    err = err or sys.stderr
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", help="the Pico's serial port (default: the only /dev/ttyACM*)")
    parser.add_argument("--build", default="build", help="the folder make build wrote")
    parser.add_argument("--target", choices=("auto", "romfs", "littlefs"), default="auto",
                        help="where pump/ and board.mpy go (auto: ROMFS when the image has one)")
    parser.add_argument("--wait", type=float, default=180.0,
                        help="seconds for the restarted pump to answer (progress is shown)")
    parser.add_argument("--no-verify", action="store_true", help="do not wait for the pump")
    parser.add_argument("--no-maintenance", action="store_true",
                        help="do not ask a locked pump to restart for maintenance: fail instead")
    args = parser.parse_args(argv)
    try:
        return flash(args.build, args.port, args.target, out, not args.no_verify, args.wait,
                     not args.no_maintenance)
    except FlashError as exc:
        err.write("flash: FAILED: %s\n" % exc.message)
        return exc.code
    except KeyboardInterrupt:
        err.write("flash: interrupted: a pump written to only in part shows 'firmware "
                  "incomplete' until make flash runs again\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
