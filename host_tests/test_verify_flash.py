"""make flash's check: the firmware hash read back over the protocol must match the build."""

import hashlib
import io
import json
import shutil
import time

import pytest

import simlink
import verify_flash


def make_image(folder, files):
    """A built image as make build writes it: the files and their manifest.json."""
    folder.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
        hashes[rel] = hashlib.sha256(data).hexdigest()
    manifest = {"board": "pico_default", "files": hashes, "format": 1, "mpy_arch": "armv6m"}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return folder


FILES = {"main.py": b"import board\n", "pump/app.mpy": b"M\x06app"}


@pytest.fixture
def pump_with(tmp_path):
    links = []

    def start(device_folder):
        link = simlink.SimLink(firmware_root=str(device_folder)).start()
        links.append(link)
        return link

    yield start
    for link in links:
        link.stop()


def check(link, build):
    out, err = io.StringIO(), io.StringIO()
    code = verify_flash.main(["--sim", link.path, "--build", str(build), "--wait", "1"], out, err)
    return code, out.getvalue() + err.getvalue()


def test_a_pump_running_the_build_passes(tmp_path, pump_with):
    build = make_image(tmp_path / "build", FILES)
    device = tmp_path / "device"
    shutil.copytree(build, device)
    code, text = check(pump_with(device), build)
    assert code == 0 and "firmware verified" in text and "2 files match" in text


def test_a_pump_with_another_build_fails_loudly(tmp_path, pump_with):
    build = make_image(tmp_path / "build", FILES)
    device = make_image(tmp_path / "device", dict(FILES, **{"main.py": b"import old\n"}))
    code, text = check(pump_with(device), build)
    assert code == verify_flash.EXIT_MISMATCH
    assert text.startswith("verify_flash: FAILED: the pump booted manifest")


def test_a_file_changed_after_copying_fails(tmp_path, pump_with):
    build = make_image(tmp_path / "build", FILES)
    device = tmp_path / "device"
    shutil.copytree(build, device)
    (device / "pump" / "app.mpy").write_bytes(b"M\x06bad")
    code, text = check(pump_with(device), build)
    assert code == verify_flash.EXIT_MISMATCH and "1 changed" in text


def test_a_pump_running_from_source_is_not_verified(tmp_path):
    build = make_image(tmp_path / "build", FILES)
    link = simlink.SimLink().start()
    try:
        code, text = check(link, build)
    finally:
        link.stop()
    assert code == verify_flash.EXIT_MISMATCH and "runs from source" in text


def test_no_build_manifest_is_an_error_before_any_port_is_opened(tmp_path):
    err = io.StringIO()
    code = verify_flash.main(["--port", "/dev/none", "--build", str(tmp_path)], io.StringIO(), err)
    assert code == 2 and "no build manifest" in err.getvalue()


# ----- a slow board, and one that says it is incomplete ---------------------------------


class FakePort:
    """A pty whose far end a thread plays: answers to requests after a delay, or a line
    printed every so often (what main.py prints in its "firmware incomplete" state)."""

    def __init__(self, hash_fields=None, hash_delay_s=0.0, says=None):
        import os
        import threading
        import tty

        from pump.core import protocol as p

        self.p = p
        self.hash_fields = hash_fields
        self.hash_delay_s = hash_delay_s
        self.says = says
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import os
        import select

        buf = b""
        while not self._stop.is_set():
            if self.says is not None:
                os.write(self.master, self.says)
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                continue
            buf += os.read(self.master, 4096)
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if self.says is not None:
                    continue
                words = line.decode(errors="replace").split()
                if len(words) < 2:
                    continue
                seq, command = int(words[0]), words[1]
                if command == "hello":
                    fields = {"device": "pico-insulin-pump", "firmware": "0.1.0",
                              "protocol": 1, "board": "pico_default"}
                else:
                    if self._stop.wait(self.hash_delay_s):
                        return
                    fields = self.hash_fields
                os.write(self.master, self.p.encode_response(seq, self.p.OK, fields))

    def close(self):
        import os

        self._stop.set()
        self._thread.join()
        os.close(self.master)
        os.close(self._slave)


def test_a_slow_board_is_waited_for(tmp_path):
    build = make_image(tmp_path / "build", FILES)
    digest = hashlib.sha256((build / "manifest.json").read_bytes()).hexdigest()
    fields = {"manifest": digest, "files_ok": 1, "checked": 2, "missing": 0, "changed": 0,
              "unexpected": 0}
    port = FakePort(fields, hash_delay_s=6.0)  # twice the old fixed 3 s give-up
    try:
        out, err = io.StringIO(), io.StringIO()
        code = verify_flash.main(["--port", port.path, "--build", str(build), "--wait", "30",
                                  "--timeout", "2"], out, err)
    finally:
        port.close()
    assert code == 0, err.getvalue()
    assert "firmware verified" in out.getvalue()


def test_no_answer_fails_after_the_wait_with_the_time_waited(tmp_path):
    build = make_image(tmp_path / "build", FILES)
    port = FakePort({}, hash_delay_s=60.0)
    try:
        out, err = io.StringIO(), io.StringIO()
        code = verify_flash.main(["--port", port.path, "--build", str(build), "--wait", "7",
                                  "--timeout", "2"], out, err)
    finally:
        port.close()
    assert code == 5
    assert err.getvalue().startswith("verify_flash: FAILED: no answer to hash within")
    assert "(waited " in err.getvalue() and err.getvalue().count("\n") == 1


def test_a_pump_that_says_firmware_incomplete_fails_at_once_with_its_own_words(tmp_path):
    build = make_image(tmp_path / "build", FILES)
    line = b"firmware incomplete: a flash did not finish; no delivery. Run make flash again.\r\n"
    port = FakePort(says=line)
    started = time.monotonic()
    try:
        out, err = io.StringIO(), io.StringIO()
        code = verify_flash.main(["--port", port.path, "--build", str(build), "--wait", "60",
                                  "--timeout", "2"], out, err)
    finally:
        port.close()
    assert code == verify_flash.EXIT_MISMATCH
    assert err.getvalue() == ("verify_flash: FAILED: the pump says: firmware incomplete: a flash "
                              "did not finish; no delivery. Run make flash again.\n")
    assert time.monotonic() - started < 20


def test_while_the_port_is_away_the_wait_shows_progress(tmp_path):
    build = make_image(tmp_path / "build", FILES)
    away = str(tmp_path / "ttyACM0")  # a Pico's port goes while it restarts
    out, err = io.StringIO(), io.StringIO()
    code = verify_flash.main(["--port", away, "--build", str(build), "--wait", "6"], out, err)
    assert code == 3
    assert "verify: waiting for the pump to answer... 5 s" in out.getvalue()
    assert err.getvalue() == "verify_flash: FAILED: no device at %s (waited 6 s)\n" % away
