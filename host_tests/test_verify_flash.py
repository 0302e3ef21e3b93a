"""make flash's check: the firmware hash read back over the protocol must match the build."""

import hashlib
import io
import json
import shutil

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
