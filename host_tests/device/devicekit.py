"""Helpers of the device tests: a flashed, set-up pump on the emulated Pico, pumpctl on its port."""

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EMU = os.path.join(ROOT, "tools", "emu")
if EMU not in sys.path:
    sys.path.insert(0, EMU)

import rig as emu_rig  # noqa: E402

PYTHON = sys.executable
PUMPCTL = os.path.join(ROOT, "tools", "pumpctl.py")
# The emulated pump runs at a fraction of real time (less on a loaded machine): pumpctl
# waits this long (wall seconds) for each answer.
ANSWER_S = 60


def why_not_ready():
    """None when the tier can run here, else the reason it is skipped."""
    reason = emu_rig.node_ready()
    if reason:
        return "device tier skipped: " + reason
    if emu_rig.default_uf2() is None:
        return "device tier skipped: no MicroPython .uf2 (set PICO_UF2, or ../shared/rig/)"
    return None


def mechanics():
    """The board's mechanics as the firmware computes them (nu_per_step, steps_for_mu)."""
    firmware = os.path.join(ROOT, "firmware")
    if firmware not in sys.path:
        sys.path.insert(0, firmware)
    import boards.pico_default as board
    from pump.core.board_spec import check_board

    return check_board(board.PINS, board.MECHANICS)


class Pump:
    """A rig with the firmware flashed by `make flash`; pumpctl and keys on it."""

    def __init__(self, rig):
        self.rig = rig
        self.port = rig.port
        self.flash_output = ""
        self.events = []  # (what, figures) kept for the report
        self.serial_mark = 0

    def make_flash(self, timeout=900):
        """`make flash PORT=<pty>`; one at a time (make build rewrites build/)."""
        lock_path = os.path.join(tempfile.gettempdir(), "pump-device-tier-flash.lock")
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            started = time.monotonic()
            proc = subprocess.run(
                ["make", "-s", "-C", ROOT, "flash", "PORT=" + self.port],
                capture_output=True, text=True, timeout=timeout,
            )
        self.flash_output = proc.stdout + proc.stderr
        self.serial_mark = len(self.rig.read_serial())  # the REPL's own errors end here
        self.flash_s = time.monotonic() - started
        return proc.returncode

    def report(self, what, **figures):
        """Print a figure for the record, and add it to out/device/figures.txt."""
        self.events.append((what, figures))
        line = "device: %s %s" % (what, " ".join("%s=%s" % kv for kv in figures.items()))
        print(line)
        folder = os.path.join(ROOT, "out", "device")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "figures.txt"), "a") as f:
            f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")

    def pumpctl(self, *args, confirm=False, timeout=300):
        """Run pumpctl on the pump's port; with confirm, press OK once the pump asks."""
        proc = subprocess.Popen(
            [PYTHON, PUMPCTL, "--port", self.port, "--timeout", str(ANSWER_S), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        lines = []
        deadline = time.monotonic() + timeout
        for line in proc.stdout:
            lines.append(line)
            if confirm and line.startswith("Waiting for OK on the pump"):
                threading.Thread(target=self._confirm, args=(proc,), daemon=True).start()
            if time.monotonic() > deadline:
                proc.kill()
                break
        proc.wait()
        return proc.returncode, "".join(lines)

    def _confirm(self, proc):
        """OK on the confirm screen; again (twice at most) if pumpctl still waits 8 s later:
        a press can go unseen while the slow emulated pump is busy."""
        for _ in range(3):
            self.rig.wait_ms(600)  # the confirm screen is up
            self.rig.press("ok")
            self.rig.wait_ms(8000)
            if proc.poll() is not None:
                return

    def status(self):
        code, out = self.pumpctl("status", "--json")
        assert code == 0, out
        return json.loads(out)

    def history(self, count=40):
        code, out = self.pumpctl("history", "--json", "--count", str(count))
        assert code == 0, out
        return json.loads(out)

    def alarms(self):
        text = self.status().get("alarms", "-")
        return set() if text in ("-", "", None) else set(str(text).split(","))

    def wait_for(self, predicate, emulated_ms, step_ms=1000):
        """Let emulated time pass until predicate() holds (at most emulated_ms); its last value."""
        waited = 0
        value = predicate()
        while not value and waited < emulated_ms:
            self.rig.wait_ms(step_ms)
            waited += step_ms
            value = predicate()
        return value

    def quiet_ns(self, limit_ms=30_000):
        """Emulated now, once no line test is half done; and the STEP log since power-up."""
        waited = 0
        while True:
            answer = self.rig.steps(since_ns=0)
            _, open_test = split_steps(answer["log"])
            if not open_test or waited >= limit_ms:
                return answer["ns"], answer["log"]
            self.rig.wait_ms(1000)
            waited += 1000

    def tracebacks(self):
        """What the firmware printed as tracebacks since `make flash` ended ('' if none)."""
        text = self.rig.read_serial()[self.serial_mark :].decode(errors="replace")
        at = text.find("Traceback")
        return "" if at < 0 else text[at : at + 800]


def step_runs(log, gap_ns=300_000_000):
    """The STEP edges of a log ([ns, +1 forward / -1 back / 0 disabled]) as runs of one
    direction with no gap over ``gap_ns``: [direction, [ns, ...]]."""
    runs = []
    for ns, direction in log:
        if direction == 0:
            continue
        if runs and runs[-1][0] == direction and ns - runs[-1][1][-1] <= gap_ns:
            runs[-1][1].append(ns)
        else:
            runs.append([direction, [ns]])
    return runs


def split_steps(log, pair_ns=20_000_000_000):
    """Delivery steps apart from line tests: a line test pulls the plunger back and pushes
    it forward the same number of steps (in either order, within ``pair_ns``); each such
    pair of runs cancels, any steps a forward run has beyond its pair deliver.

    Returns (delivery: [ns of each delivering forward step], open_test: True while the
    last long run (10 steps or more) has no pair yet: a line test half done).
    """
    runs = step_runs(log)
    paired = [False] * len(runs)
    extra = [0] * len(runs)
    for i, (direction, steps) in enumerate(runs):
        if direction > 0 or paired[i]:
            continue
        best = None
        for j, (other, other_steps) in enumerate(runs):
            if other < 0 or paired[j] or len(other_steps) < len(steps) - 1:
                continue
            gap = abs(other_steps[0] - steps[0])
            if gap <= pair_ns and (best is None or gap < best[0]):
                best = (gap, j)
        if best is not None:
            j = best[1]
            paired[i] = paired[j] = True
            extra[j] = max(0, len(runs[j][1]) - len(steps))
    delivery = []
    for j, (direction, steps) in enumerate(runs):
        if direction > 0:
            delivery.extend(steps[len(steps) - extra[j] :] if paired[j] else steps)
    open_test = False
    for j in range(len(runs) - 1, -1, -1):
        if len(runs[j][1]) >= 10:
            open_test = not paired[j] and runs[j][0] < 0
            if not paired[j] and runs[j][0] > 0 and runs[j][1][-1] > log[-1][0] - pair_ns:
                open_test = len(runs[j][1]) <= 40  # a push that may still be paired
            break
    return delivery, open_test
