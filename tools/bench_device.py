"""Heap, CPU and speed of the firmware on the emulated Pico, on the stock and ROMFS images.

    python tools/bench_device.py [--out docs/bench/device.md] [--images stock,romfs]

For each MicroPython image (the stock RPI_PICO and the ROMFS build in ../shared/rig/,
or PICO_UF2 for the stock one): an erased flash, `make flash` to the emulated Pico's
port, `pumpctl setup` with OK on the pump, 20 s of basal, the screen gallery walked by
keys, a 0.5 U bolus. The GC heap is read from the emulated RAM (allocation table at
the heap's start, bounds from the image's -info.json): free and largest free block now,
and their extremes sampled every 100 ms over each stretch. "Free" includes garbage
between collections (main.py collects after every 8 KB allocated); the highest free
seen over a stretch is what the last collection left.
"""

import argparse
import datetime
import fcntl
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "emu"))

import gallery
import rig as emu_rig

PUMPCTL = os.path.join(HERE, "pumpctl.py")
IDLE_MS = 20_000
BOLUS_MS = 40_000  # a 0.5 U bolus at the factory speed, and its line test


def pumpctl(rig, *args, confirm=False):
    proc = subprocess.Popen(
        [sys.executable, PUMPCTL, "--port", rig.port, "--timeout", "60", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if confirm and line.startswith("Waiting for OK on the pump"):
            threading.Thread(target=_confirm, args=(rig, proc), daemon=True).start()
    proc.wait()
    return proc.returncode, "".join(lines)


def _confirm(rig, proc):
    """OK on the confirm screen; again (twice at most) if pumpctl still waits 8 s later:
    a press can go unseen while the slow emulated pump is busy."""
    for _ in range(3):
        rig.wait_ms(600)  # the confirm screen is up
        rig.press("ok")
        rig.wait_ms(8000)
        if proc.poll() is not None:
            return


def measure(uf2, say):
    """The figures of one image (a dict), or its failure."""
    rig = emu_rig.Rig(uf2)
    result = {"image": os.path.basename(uf2), "notes": []}
    try:
        # One make flash at a time on this machine (make build rewrites build/).
        lock_path = os.path.join(tempfile.gettempdir(), "pump-device-tier-flash.lock")
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            started = time.monotonic()
            flash = subprocess.run(
                ["make", "-s", "-C", ROOT, "flash", "PORT=" + rig.port],
                capture_output=True, text=True, timeout=1200,
            )
        output = flash.stdout + flash.stderr
        result["flash_s"] = round(time.monotonic() - started)
        result["romfs"] = "romfs" in output.lower() and "deploy" in output.lower()
        if flash.returncode != 0:
            result["notes"].append("make flash failed: " + output.strip().splitlines()[-1])
            return result
        serial_mark = len(rig.read_serial())
        code, out = pumpctl(rig, "setup", confirm=True)
        if code != 0:
            result["notes"].append("pumpctl setup failed: " + out.strip().splitlines()[-1])
        say("  flashed in %d s, set up" % result["flash_s"])
        rig.mark()
        rig.wait_ms(IDLE_MS)
        stats = rig.stats()
        result["boot"] = rig.heap()["window"]
        result["speed"] = stats["speed"]
        result["busy"] = stats["busy"]
        result["mips"] = stats["mips"]
        say("  idle: %.2fx real time, CPU busy %.0f %%" % (stats["speed"], 100 * stats["busy"]))
        rig.mark()
        code, out = pumpctl(rig, "bolus", "0.5", confirm=True)
        if code != 0:
            result["notes"].append("bolus: " + out.strip().splitlines()[-1])
        rig.wait_ms(BOLUS_MS)
        result["bolus"] = rig.heap()["window"]
        screens = {}

        def on_screen(name):
            # The stretch since the previous screen: its most free and its least largest.
            screens[name] = rig.heap()["window"]
            rig.mark()

        boots = len(rig.boots)
        rig.mark()
        gallery.walk(rig, on_screen)
        result["screens"] = screens
        result["gallery_resets"] = len(rig.boots) - boots
        say("  gallery: %d screens, %d resets" % (len(screens), result["gallery_resets"]))
        text = rig.read_serial()[serial_mark:].decode(errors="replace")
        errors = [line for line in text.splitlines() if "Error" in line]
        result["errors"] = sorted(set(errors))
        return result
    finally:
        rig.close()


def kb(n):
    return "%.1f" % (n / 1024)


def write_report(results, path):
    lines = [
        "# The firmware on an emulated Pico: heap, CPU, speed",
        "",
        "`make bench` (tools/bench_device.py), %s: MicroPython v1.28.0 (rp2 port, RPI_PICO)"
        % datetime.date.today().isoformat(),
        "on rp2040js 1.4.1 (tools/emu), from an erased flash: `make flash`, `pumpctl setup`",
        "and OK, %d s of basal, a 0.5 U bolus from pumpctl (%d s), then every screen of the"
        % (IDLE_MS // 1000, BOLUS_MS // 1000),
        "gallery by keys (tools/scenarios/screens/gallery.toml, gaps cut to 1 s). The GC heap",
        "(240.1 KB) is read from the emulated RAM every 100 ms (its allocation table, bounds",
        "from the image's -info.json). The firmware collects after every 8 KB allocated",
        "(main.py, gc.threshold), so each figure is the most free seen over a stretch (what",
        "the last collection left) and the largest free block at that moment; a screen's",
        "stretch runs from the screen before it.",
        "",
        "| image | code in | after boot: free / largest | bolus: free / largest"
        " | worst screen: free / largest | screen with the least largest | resets | CPU busy"
        " | emulated : wall | MIPS |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "boot" not in r:
            lines.append("| %s | - | %s | | | | | | | |" % (r["image"], "; ".join(r["notes"])))
            continue
        boot = r["boot"]
        bolus = r["bolus"]
        screens = r.get("screens") or {}
        worst = min(screens, key=lambda n: screens[n]["maxFree"]) if screens else None
        least = min(screens, key=lambda n: screens[n]["bestLargest"]) if screens else None
        lines.append(
            "| %s | %s | %s / %s | %s / %s | %s (%s) / %s | %s (%s) | %s | %.0f %% | %.2f | %.1f |"
            % (
                r["image"], "ROMFS" if r["romfs"] else "littlefs",
                kb(boot["maxFree"]), kb(boot["bestLargest"]),
                kb(bolus["maxFree"]), kb(bolus["bestLargest"]),
                kb(screens[worst]["maxFree"]) if worst else "-", worst or "-",
                kb(screens[worst]["bestLargest"]) if worst else "-",
                kb(screens[least]["bestLargest"]) if least else "-", least or "-",
                r["gallery_resets"], 100 * r["busy"], r["speed"], r["mips"],
            )
        )
    lines.append("")
    for r in results:
        lines.append("**%s**: flashed in %s s (wall). %s" % (
            r["image"], r.get("flash_s", "-"), " ".join(r["notes"])))
        for error in r.get("errors", []):
            lines.append("")
            lines.append("    %s" % error.strip())
        if not r.get("romfs", False) and "romfs" in r["image"]:
            lines.append(
                "The ROMFS image ran with the code on littlefs: `make flash` did not deploy"
                " to the ROMFS partition.")
        lines.append("")
    lines.append(
        "KB of 1024 bytes. *resets*: restarts of the chip during the gallery (a failure in"
        " locked mode restarts it). CPU busy is the share of emulated time the core was not"
        " asleep (WFI/WFE) over the %d s of basal; emulated : wall and MIPS (million"
        " emulated instructions per wall second) over the same stretch, on this machine"
        " (2 cores, shared)." % (IDLE_MS // 1000)
    )
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "bench", "device.md"))
    parser.add_argument("--images", default="stock,romfs")
    parser.add_argument("--romfs", help="the ROMFS image (default: firmware-romfs.uf2 beside"
                        " the stock one, or in ../shared/rig/)")
    args = parser.parse_args(argv)
    why = emu_rig.node_ready()
    stock = emu_rig.default_uf2()
    if why or not stock:
        print("bench_device: SKIPPED, %s" % (why or "no MicroPython .uf2 (PICO_UF2)"))
        return 0
    romfs = args.romfs or os.path.join(os.path.dirname(stock), "firmware-romfs.uf2")
    if not os.path.exists(romfs):
        romfs = os.path.join(emu_rig.RIG_DIR, "firmware-romfs.uf2")
    images = {"stock": stock, "romfs": romfs}
    results = []
    for name in args.images.split(","):
        if name not in images:
            parser.error("--images: one of stock, romfs, got %r" % name)
        if not os.path.exists(images[name]):
            print("bench_device: no %s image at %s, left out" % (name, images[name]))
            continue
        print("bench_device: %s (%s)" % (name, images[name]))
        results.append(measure(images[name], print))
    write_report(results, args.out)
    print("bench_device: wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
