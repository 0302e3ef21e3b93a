"""The simulated pump on a pseudo-terminal: run it, then point pumpctl at the path it prints.

    python tools/simlink.py [--speed 60] [--auto-confirm] [--firmware-root DIR]

The real firmware runs on the host fakes (sim/pump.py) with its USB serial port
attached to a pty; simulated time follows real time times ``--speed``. A change sent
over the link waits for OK on the pump, as on the bench: ``--auto-confirm`` presses
OK by itself, for demos only; or type ok, back, up or down and Enter on simlink's
standard input to press that key. Tests use ``SimLink`` directly: ``on_held`` is called
with (SimLink, change) when a change starts waiting, and ``call(fn)`` runs
``fn(SimLink)`` on the simulator's thread (to press keys, say).
"""

import argparse
import os
import sys
import threading
import time
import tty

import pumptext
from sim import pump as pumpsim
from sim.hw.usbcdc import UsbCdcPipe

from pump.hal.usb_serial import UsbSerial

_SLICE_S = 0.005  # real seconds between two looks at the pty
_MAX_SLICE_MS = 2000  # simulated ms run at most per look, so answers never wait long


class SimLink:
    """A SimPump whose USB port is the master side of a pty; ``path`` is the slave."""

    def __init__(self, speed=1.0, auto_confirm=False, on_held=None, firmware_root=None,
                 **sim_kw):
        self.pipe = UsbCdcPipe()
        pipe = self.pipe

        def attach(board):
            board.serial = UsbSerial(pipe.rx, pipe.tx, pipe.poller)

        self.sim = pumpsim.SimPump(prepare_board=attach, **sim_kw)
        if firmware_root is not None:
            self.sim.app.firmware_root = firmware_root
        self.link = self.sim.app.link
        self.speed = speed
        self.auto_confirm = auto_confirm
        self.on_held = on_held
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: bytes pass as they are
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._calls = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._seen_held = None

    # ----- one step ---------------------------------------------------------------------

    def _carry_in(self):
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return
        if data:
            self.pipe.send(data)

    def _carry_out(self):
        data = self.pipe.receive()
        while data:
            try:
                n = os.write(self._master, data)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            data = data[n:]

    def step(self, sim_ms):
        """Carry bytes in, run the pump ``sim_ms`` (at least up to its answer), carry out."""
        with self._lock:
            calls, self._calls = self._calls, []
        for fn in calls:
            fn(self)
        self._carry_in()
        sim = self.sim
        sim.run_until(sim.now_ms() + max(1, int(sim_ms)))
        self._carry_out()
        held = self.link.held
        if held is not None and held is not self._seen_held:
            self._seen_held = held
            if self.on_held is not None:
                self.on_held(self, held)
            if self.auto_confirm:
                sim.press("OK")
                self._carry_out()

    def call(self, fn):
        """Run ``fn(self)`` on the simulator's thread before its next step."""
        with self._lock:
            self._calls.append(fn)

    # ----- running ----------------------------------------------------------------------

    def run(self, seconds=None):
        """Run in real time times ``speed`` until stop() (or for ``seconds``)."""
        started = time.monotonic()
        last = started
        while not self._stop.is_set():
            now = time.monotonic()
            if seconds is not None and now - started >= seconds:
                break
            sim_ms = min((now - last) * 1000 * self.speed, _MAX_SLICE_MS)
            last = now
            self.step(sim_ms)
            time.sleep(_SLICE_S)

    def start(self):
        """Run on a background thread (tests)."""
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        os.close(self._master)
        os.close(self._slave)


def _positive(text):
    value = pumptext.finite(text)
    if not 0 < value <= 3600 * 24:
        raise argparse.ArgumentTypeError("%r: give a number above 0" % text)
    return value


def main(argv=None):
    parser = pumptext.OneLineParser(prog="simlink.py", description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=_positive, default=1.0,
                        help="simulated s per real s (up to 3600)")
    parser.add_argument("--auto-confirm", action="store_true",
                        help="press OK on the pump for every change (demos only)")
    parser.add_argument("--firmware-root", help="a built image (build/) the hash command checks")
    parser.add_argument("--seconds", type=_positive, help="stop after this many real seconds")
    args = parser.parse_args(argv)
    if args.firmware_root is not None and not os.path.isdir(args.firmware_root):
        parser.error("--firmware-root: no folder %s (make build writes build/)"
                     % args.firmware_root)
    link = SimLink(args.speed, args.auto_confirm, firmware_root=args.firmware_root)

    def say_held(sim_link, change):
        note = "pressing OK" if args.auto_confirm else "type ok or back within 60 s"
        print("change %d waits on the pump (%s): %s" % (
            change.id, sim_link.link.describe(change), note), flush=True)

    link.on_held = say_held

    def keys_from_stdin():
        # Type ok, back, up or down (and Enter) to press that key on the simulated pump.
        for line in sys.stdin:
            key = line.strip().upper()
            if key in pumpsim.KEY_PINS:
                link.call(lambda lk, key=key: lk.sim.press(key))

    threading.Thread(target=keys_from_stdin, daemon=True).start()
    print(link.path, flush=True)
    print("pumpctl --sim %s status" % link.path, file=sys.stderr, flush=True)
    try:
        link.run(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        link.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
