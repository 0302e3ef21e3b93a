"""After `make flash`: read the firmware hash back over the protocol and compare it with the build.

    python tools/verify_flash.py [--port PORT | --sim PTY] [--build build] [--wait 20]

The pump answers `hash` with the sha256 of the manifest.json it booted with and
whether every file it lists matches (pump/hal/firmware_files.py). Both must agree
with build/manifest.json, or this fails loudly (exit 1). The Pico restarts after
flashing, so the port is tried again until --wait seconds have passed.
"""

import argparse
import hashlib
import os
import sys
import time

import pumpctl

EXIT_MISMATCH = 1


def manifest_sha256(build_dir):
    """sha256 (hex) of the build's manifest.json; a PumpError if there is none."""
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


def read_hash(path, wait_s, timeout_s):
    """The pump's `hash` fields, trying again while it restarts (up to ``wait_s``)."""
    deadline = time.monotonic() + wait_s
    while True:
        client = None
        try:
            client = pumpctl.Client(pumpctl.open_port(path), timeout_s)
            client.hello()
            final, _ = client.request("hash")
            return final.fields
        except pumpctl.PumpError as err:
            retry = err.code in (pumpctl.EXIT_NO_DEVICE, pumpctl.EXIT_TIMEOUT)
            if not retry or time.monotonic() >= deadline:
                raise
        finally:
            if client is not None:
                client.close()
        time.sleep(0.5)


def main(argv=None, out=None, err=None):
    out = out or sys.stdout
    err = err or sys.stderr
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--port")
    where.add_argument("--sim", metavar="PTY")
    parser.add_argument("--build", default="build", help="the folder make build wrote")
    parser.add_argument("--wait", type=float, default=20.0, help="seconds for the pump to restart")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    try:
        expected = manifest_sha256(args.build)
        if args.sim or args.port:
            path = args.sim or args.port
        else:
            path = _wait_for_port(args.wait)
        fields = read_hash(path, args.wait, args.timeout)
    except pumpctl.PumpError as exc:
        err.write("verify_flash: FAILED: %s\n" % exc.message)
        return exc.code
    ok, message = compare(expected, fields)
    if not ok:
        err.write("verify_flash: FAILED: %s\n" % message)
        return EXIT_MISMATCH
    out.write("verify_flash: %s\n" % message)
    return 0


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
