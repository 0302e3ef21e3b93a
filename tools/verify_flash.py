"""After `make flash`: read the firmware hash back over the protocol and compare it with the build.

    python tools/verify_flash.py [--port PORT | --sim PTY] [--build build] [--wait 180]

The pump answers `hash` with the sha256 of the manifest.json it booted with and
whether every file it lists matches (pump/hal/firmware_files.py). Both must agree
with the manifest make flash wrote (build/device-manifest.json; build/manifest.json
when there is none), or this fails loudly (exit 1). The Pico restarts after flashing
and a slow board takes a while to hash its image, so the port is tried again, with
progress shown, until --wait seconds have passed.
"""

import argparse
import hashlib
import os
import sys
import time

import pumpctl

EXIT_MISMATCH = 1


def manifest_sha256(build_dir):
    """sha256 (hex) of the manifest make flash wrote to the pump (build/device-manifest.json),
    or of the build's manifest.json when nothing was flashed from this build; a PumpError if
    there is neither."""
    path = os.path.join(build_dir, "device-manifest.json")
    if not os.path.exists(path):
        path = os.path.join(build_dir, "manifest.json")
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError as exc:
        raise pumpctl.PumpError(pumpctl.EXIT_USAGE, "no build manifest: %s" % exc) from None


def compare(expected, fields):
    """(ok, message) from the build's manifest hash and the pump's `hash` answer."""
    if fields.get("source") == "1":
        return False, "the pump runs from source files, not from a built image"
    got = fields.get("manifest")
    if got in (None, "-"):
        return False, "the pump has no manifest.json: the image was not copied"
    if got != expected:
        return False, "the pump booted manifest %s..., the build is %s..." % (
            got[:12], expected[:12])
    if fields.get("files_ok") != "1":
        return False, "files differ from the manifest: %s missing, %s changed, %s unexpected" % (
            fields.get("missing"), fields.get("changed"), fields.get("unexpected"))
    return True, "firmware verified: manifest %s..., %s files match" % (
        expected[:12], fields.get("checked"))


class _Recorder:
    """A port that keeps the last text read, to quote a pump that says something else."""

    def __init__(self, port):
        self.port = port
        self.text = b""

    def read(self, n):
        data = self.port.read(n)
        if data:
            self.text = (self.text + data)[-2048:]
        return data

    def __getattr__(self, name):
        return getattr(self.port, name)


INCOMPLETE = b"firmware incomplete"


def _said_incomplete(recorder):
    """The pump's own line when it printed "firmware incomplete", or the error that ended its
    boot in a traceback (then MicroPython's REPL answers instead of the pump); else None."""
    text = recorder.text
    at = text.rfind(INCOMPLETE)
    if at >= 0:
        return text[at:].split(b"\n")[0].decode("utf-8", "replace").strip()
    at = text.rfind(b"Traceback (most recent call last)")
    if at < 0:
        return None
    for line in text[at:].decode("utf-8", "replace").splitlines()[1:]:
        if line and not line.startswith(" "):
            return "its boot stopped: " + line.strip()
    return None


def read_hash(path, wait_s, timeout_s, progress=None, clock=time.monotonic):
    """The pump's `hash` fields, trying again while it restarts, for up to ``wait_s``.

    A try is a `hello` (``timeout_s``) and then `hash`, which gets all the time left: a slow
    board hashes its image for a while. ``progress(seconds waited)`` is called between
    tries. A pump that prints "firmware incomplete" fails at once with its own line.
    """
    start = clock()
    deadline = start + wait_s
    while True:
        client = None
        recorder = None
        try:
            recorder = _Recorder(pumpctl.open_port(path))
            client = pumpctl.Client(recorder, max(0.5, min(timeout_s, deadline - clock())))
            client.hello()
            client.timeout = max(timeout_s, deadline - clock())
            final, _ = client.request("hash")
            return final.fields
        except pumpctl.PumpError as err:
            said = _said_incomplete(recorder) if recorder is not None else None
            if said:
                raise pumpctl.PumpError(EXIT_MISMATCH, "the pump says: " + said) from None
            retry = err.code in (
                pumpctl.EXIT_NO_DEVICE, pumpctl.EXIT_TIMEOUT, pumpctl.EXIT_WRONG_DEVICE)
            if not retry or clock() >= deadline:
                if retry:
                    raise pumpctl.PumpError(
                        err.code, "%s (waited %.0f s)" % (err.message, clock() - start)
                    ) from None
                raise
        finally:
            if client is not None:
                client.close()
            elif recorder is not None:
                recorder.close()
        if progress is not None:
            progress(clock() - start)
        time.sleep(0.5)


def wait_and_check(path, expected, wait_s, out, timeout_s=10.0):
    """After a flash: wait for the pump on ``path`` and compare its manifest hash; exit code."""
    try:
        fields = read_hash(path, wait_s, timeout_s, _progress(out))
    except pumpctl.PumpError as exc:
        out.flush()
        sys.stderr.write("verify_flash: FAILED: %s\n" % exc.message)
        return exc.code
    ok, message = compare(expected, fields)
    if not ok:
        sys.stderr.write("verify_flash: FAILED: %s\n" % message)
        return EXIT_MISMATCH
    out.write("verify_flash: %s\n" % message)
    return 0


def main(argv=None, out=None, err=None):
    out = out or sys.stdout
    err = err or sys.stderr
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--port")
    where.add_argument("--sim", metavar="PTY")
    parser.add_argument("--build", default="build", help="the folder make build wrote")
    parser.add_argument("--wait", type=float, default=180.0,
                        help="seconds for the pump to restart and answer")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per hello")
    args = parser.parse_args(argv)
    try:
        expected = manifest_sha256(args.build)
        if args.sim or args.port:
            path = args.sim or args.port
        else:
            path = _wait_for_port(args.wait)
        fields = read_hash(path, args.wait, args.timeout, _progress(out))
    except pumpctl.PumpError as exc:
        err.write("verify_flash: FAILED: %s\n" % exc.message)
        return exc.code
    ok, message = compare(expected, fields)
    if not ok:
        err.write("verify_flash: FAILED: %s\n" % message)
        return EXIT_MISMATCH
    out.write("verify_flash: %s\n" % message)
    return 0


def _progress(out):
    last = [0.0]

    def progress(waited):
        if waited - last[0] >= 5.0:
            last[0] = waited
            out.write("verify: waiting for the pump to answer... %.0f s\n" % waited)
            out.flush()

    return progress


def _wait_for_port(wait_s):
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return pumpctl.find_port()
        except pumpctl.PumpError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
