"""The emulated pump: MicroPython's rp2 port on an emulated RP2040, wired as the board file says.

``python tools/emu/rig.py`` (``make emu``) starts tools/emu/chip.mjs (rp2040js under
Node) with a MicroPython .uf2, makes a pseudo-terminal for the Pico's USB CDC port
(``make flash PORT=<pty>``, mpremote and ``pumpctl --port <pty>`` work on it), runs the
plant model of the host simulator on the STEP/DIR/EN edges and answers the HX711
with its force, and offers a control channel (a Unix socket, and stdin when
interactive) to press keys, change the line, read the OLED, the step counts and the
heap, and cut the power. ``Rig`` is the same thing as a Python object, for tests.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RIG_DIR = os.path.join(os.path.dirname(ROOT), "shared", "rig")
if ROOT not in sys.path:
    sys.path.append(ROOT)

import boards.pico_default as default_board  # noqa: E402  (pins, mechanics, load cell)

from sim.hw.plant import Plant, PlantParams  # noqa: E402  (the host simulator's plant)

KEYS = ("up", "down", "ok", "back")
LINE_STATES = ("open", "occluded", "disconnected")
WIDTH, HEIGHT = 128, 64


class EmuError(Exception):
    """The emulator cannot start or stopped: the message says why."""


def default_uf2():
    """PICO_UF2 when set, else the rig folder's stock image (None when neither exists)."""
    path = os.environ.get("PICO_UF2") or os.path.join(RIG_DIR, "firmware.uf2")
    return path if os.path.exists(path) else None


def image_info(uf2):
    """The GC heap bounds of an image: <name>-info.json beside it, or firmware-info.json."""
    stem = os.path.splitext(uf2)[0]
    beside = os.path.join(os.path.dirname(uf2), "firmware-info.json")
    for candidate in (stem + "-info.json", beside):
        if os.path.exists(candidate):
            with open(candidate) as f:
                return json.load(f)
    return {}


def node_ready():
    """None when Node and rp2040js are installed, else why not (one line)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not os.path.isdir(os.path.join(HERE, "node_modules", "rp2040js")):
        return "rp2040js is not installed (npm ci --prefix tools/emu)"
    return None


# --- pins as the plant model sees them ------------------------------------------------------
class _Clock:
    def __init__(self):
        self.now_ns = 0


class _Pin:
    """A pin of the emulated chip for the plant: its level, edge listeners, an outside driver."""

    def __init__(self, rig, number, level=0):
        self.rig = rig
        self.number = number
        self.level = level
        self._listeners = []

    def value(self):
        return self.level

    def add_listener(self, callback):
        self._listeners.append(callback)

    def remove_listener(self, callback):
        self._listeners.remove(callback)

    def set(self, level, t_ns):
        self.level = level
        for callback in list(self._listeners):
            callback(self, level, t_ns)

    def drive(self, level):
        self.level = 1 if level is None else level
        self.rig._send({"t": "drive", "pin": self.number, "v": level})


# --- the rig ---------------------------------------------------------------------------------
class Rig:
    """One emulated pump: the chip process, its pty, the plant and the control channel."""

    def __init__(
        self,
        uf2=None,
        *,
        bootrom=None,
        board=default_board,
        seed=0,
        plant_params=None,
        realtime=False,
        flash_image=None,
        battery_mv=4500,
        verbose=False,
        link=None,
    ):
        reason = node_ready()
        if reason:
            raise EmuError(reason)
        self.uf2 = os.path.normpath(uf2 or default_uf2() or "")
        if not os.path.isfile(self.uf2):
            raise EmuError(
                "no MicroPython image%s: set PICO_UF2=path/to/RPI_PICO.uf2"
                % (" at " + self.uf2 if uf2 else "")
            )
        self.bootrom = bootrom or os.path.join(os.path.dirname(self.uf2), "bootrom-b1.bin")
        if not os.path.exists(self.bootrom):
            self.bootrom = os.path.join(RIG_DIR, "bootrom-b1.bin")
        if not os.path.exists(self.bootrom):
            raise EmuError("no RP2040 boot ROM (bootrom-b1.bin) beside the image or in " + RIG_DIR)
        self.info = image_info(self.uf2)
        self.board = board
        pins = board.PINS
        self.pins = pins
        self.key_pins = {name: pins["button_" + name] for name in KEYS}
        mech = board.MECHANICS
        self.enable_active_low = bool(mech.get("enable_active_low", True))
        self.dir_forward_level = mech.get("dir_forward_level", 1)
        config = {
            "uf2": os.path.abspath(self.uf2),
            "bootrom": os.path.abspath(self.bootrom),
            "pins": pins,
            "heapStart": int(self.info["gc_heap_start"], 16) if "gc_heap_start" in self.info else 0,
            "heapEnd": int(self.info["gc_heap_end"], 16) if "gc_heap_end" in self.info else 0,
            "hxPeriodMs": board.PRESSURE.get("period_ms", 100),
            "enableActiveLow": self.enable_active_low,
            "dirForwardLevel": self.dir_forward_level,
            "batteryMv": battery_mv,
            "realtime": realtime,
            "verbose": verbose,
            "flashImage": flash_image,
            "profile": bool(os.environ.get("EMU_PROFILE")),
        }
        # The plant, on pin stand-ins fed by the chip's edges.
        self.clock = _Clock()
        self.step_pin = _Pin(self, pins["step"])
        self.dir_pin = _Pin(self, pins["dir"])
        self.en_pin = _Pin(self, pins["enable"], 1 if self.enable_active_low else 0)
        self.end_stop_pin = _Pin(self, pins["end_stop"], 1)
        diag = None
        if mech.get("driver") == "TMC2209":
            diag = _Pin(self, pins["driver_diag"])
        self._by_number = {p.number: p for p in (self.step_pin, self.dir_pin, self.en_pin)}
        self.counts_per_n = board.PRESSURE["counts_per_n"]
        self.offset_counts = board.PRESSURE.get("offset_counts", 0)
        self._plant_args = dict(
            params=plant_params or PlantParams.typical(), seed=seed, mechanics=mech,
            en_active_low=self.enable_active_low, dir_forward_level=self.dir_forward_level,
            end_stop_pin=self.end_stop_pin, diag_pin=diag,
        )

        self.serial_log = bytearray()  # everything the Pico wrote on USB, for tests
        self.boots = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._answers = {}
        self._events = {}
        self._next_id = 0
        self._closed = False
        self._pty_out = bytearray()

        # The pty: the rig keeps the master, and a slave fd so the port never hangs up.
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        attrs = termios.tcgetattr(self._slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self._slave, termios.TCSANOW, attrs)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self.link = link
        if link:
            if os.path.islink(link):
                os.unlink(link)
            os.symlink(self.port, link)

        node = shutil.which("node")
        self._proc = subprocess.Popen(
            [node, os.path.join(HERE, "chip.mjs"), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            cwd=HERE,
        )
        os.set_blocking(self._proc.stdout.fileno(), False)
        self.plant = Plant(self.clock, self.step_pin, self.dir_pin, self.en_pin, **self._plant_args)
        self._stdout_buf = b""
        self.control_path = None
        self._control = None
        self._clients = {}
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._proc.stdout, selectors.EVENT_READ, "chip")
        self._sel.register(self._master, selectors.EVENT_READ, "pty")
        self._thread = threading.Thread(target=self._loop, name="emu-rig", daemon=True)
        self._thread.start()

    # -- plumbing --------------------------------------------------------------------------
    def _send(self, msg):
        data = (json.dumps(msg) + "\n").encode()
        with self._write_lock:
            try:
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass

    def _loop(self):
        while not self._closed:
            for key, _mask in self._sel.select(timeout=0.2):
                if key.data == "chip":
                    if not self._read_chip():
                        self._closed = True
                        self._wake_all()
                        return
                elif key.data == "pty":
                    self._read_pty()
                elif key.data == "control":
                    self._accept()
                else:
                    self._read_client(key.fileobj)
            self._flush_pty()

    def _read_chip(self):
        try:
            chunk = os.read(self._proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        self._stdout_buf += chunk
        *lines, self._stdout_buf = self._stdout_buf.split(b"\n")
        for line in lines:
            if line.strip():
                self._on_chip(json.loads(line))
        return True

    def _on_chip(self, msg):
        kind = msg["t"]
        if kind == "ev":
            for t_ns, number, level in msg["ev"]:
                pin = self._by_number.get(number)
                if pin is not None and level >= 0:
                    self.clock.now_ns = max(self.clock.now_ns, t_ns)
                    pin.set(level, t_ns)
            self._send({"t": "go"})
        elif kind == "hx":
            self.clock.now_ns = max(self.clock.now_ns, msg["ns"])
            force = self.plant.load_cell_force_n()
            raw = int(round(self.offset_counts + force * self.counts_per_n))
            self._send({"t": "hx", "raw": raw})
        elif kind == "tx":
            data = base64.b64decode(msg["d"])
            self.serial_log += data
            self._pty_out += data
            if len(self._pty_out) > 1 << 20:  # nobody reads the port: keep the last 1 MB
                del self._pty_out[: len(self._pty_out) - (1 << 20)]
        elif kind == "boot":
            self.boots.append(msg)
            self.clock.now_ns = max(self.clock.now_ns, msg["ns"])
        elif kind == "r":
            with self._lock:
                self._answers[msg["id"]] = msg
                event = self._events.pop(msg["id"], None)
            if event is not None:
                event.set()

    def _wake_all(self):
        with self._lock:
            events = list(self._events.values())
            self._events.clear()
        for event in events:
            event.set()

    def _read_pty(self):
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return
        if data:
            self._send({"t": "rx", "d": base64.b64encode(data).decode()})

    def _flush_pty(self):
        if not self._pty_out:
            return
        try:
            n = os.write(self._master, bytes(self._pty_out[:4096]))
        except (BlockingIOError, OSError):
            return
        del self._pty_out[:n]

    def query(self, what, timeout=600.0, **args):
        """Ask the chip (oled, heap, steps, stats, mark, flash, wait); its answer as a dict."""
        event = threading.Event()
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            self._events[ident] = event
        self._send({"t": "q", "id": ident, "what": what, **args})
        if not event.wait(timeout):
            raise EmuError("the emulated Pico did not answer %r within %.0f s" % (what, timeout))
        with self._lock:
            answer = self._answers.pop(ident, None)
        if answer is None:
            raise EmuError("the emulated Pico stopped (%s)" % self.exit_reason())
        return answer

    def exit_reason(self):
        code = self._proc.poll()
        return "running" if code is None else "node exited with %s" % code

    # -- what people and tests do -----------------------------------------------------------
    def now_ms(self):
        """Emulated milliseconds since the rig started."""
        return self.query("stats")["ns"] / 1e6

    def wait_ms(self, ms, timeout=None):
        """Let ``ms`` milliseconds of emulated time pass."""
        self.query("wait", ms=ms, timeout=timeout or max(60.0, ms / 1000 * 20))

    def press(self, key, ms=150):
        """Press a key for ``ms`` of emulated time (held until release() when ms < 0)."""
        if key not in self.key_pins:
            raise ValueError("key must be one of %s, got %r" % ("/".join(KEYS), key))
        self._send({"t": "key", "pin": self.key_pins[key], "ms": ms})

    def release(self, key):
        self._send({"t": "release", "pin": self.key_pins[key]})

    def set_line(self, state):
        """The infusion line: open, occluded or disconnected."""
        if state == "open":
            self.plant.clear()
        elif state == "occluded":
            self.plant.occlude()
        elif state == "disconnected":
            self.plant.disconnect()
        else:
            raise ValueError("line must be one of %s, got %r" % ("/".join(LINE_STATES), state))

    def set_battery(self, mv):
        if not 0 <= mv <= 6000:
            raise ValueError("battery must be 0..6000 mV, got %r" % (mv,))
        self._send({"t": "battery", "mv": mv})

    def power_cycle(self, hold=(), off_ms=2000):
        """Cut the power and power up again; ``hold`` keys are held down at power-up."""
        for key in hold:
            if key not in self.key_pins:
                raise ValueError("key must be one of %s, got %r" % ("/".join(KEYS), key))
        before = len(self.boots)
        self._send({"t": "power", "hold": [self.key_pins[k] for k in hold], "offMs": off_ms})
        deadline = time.monotonic() + 30
        while len(self.boots) == before and time.monotonic() < deadline:
            time.sleep(0.01)

    def steps(self, since_ns=None):
        """STEP rising edges counted at the pin: totals, and their log since ``since_ns``."""
        if since_ns is None:
            return self.query("steps")
        return self.query("steps", since=since_ns, log=True)

    def heap(self):
        """GC heap read from RAM: free and largest free block now, extremes since mark()."""
        return self.query("heap")

    def mark(self):
        """Start a new window for the heap extremes and the CPU figures."""
        return self.query("mark")

    def stats(self):
        return self.query("stats")

    def oled_pixels(self):
        """The OLED as 64 rows of 128 ints (1 lit), as the glass shows it."""
        answer = self.query("oled")
        ram = base64.b64decode(answer["ram"])
        rows = []
        for y in range(HEIGHT):
            page, bit = divmod(y, 8)
            row = [(ram[page * WIDTH + x] >> bit) & 1 for x in range(WIDTH)]
            rows.append(row)
        # Modules are mounted for the usual init (segment remap A1, COM scan C8): with
        # those the picture is upright; without them the glass shows it mirrored.
        if not answer.get("comReverse"):
            rows.reverse()
        if not answer.get("segRemap"):
            rows = [row[::-1] for row in rows]
        if answer.get("invert"):
            rows = [[1 - v for v in row] for row in rows]
        if not answer.get("on"):
            rows = [[0] * WIDTH for _ in range(HEIGHT)]
        return rows

    def oled_png(self, path, scale=4):
        """Save the OLED as a PNG (white on black, ``scale`` x)."""
        from PIL import Image

        rows = self.oled_pixels()
        image = Image.new("L", (WIDTH, HEIGHT))
        image.putdata([255 if v else 0 for row in rows for v in row])
        if scale != 1:
            image = image.resize((WIDTH * scale, HEIGHT * scale), Image.NEAREST)
        image.save(path)
        return path

    def read_serial(self):
        return bytes(self.serial_log)

    def close(self):
        if self._proc.poll() is None:
            self._send({"t": "quit"})
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._closed = True
        self._thread.join(2)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)
        if self._control is not None:
            self._control.close()
            if self.control_path and os.path.exists(self.control_path):
                os.unlink(self.control_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- control channel ---------------------------------------------------------------------
    def serve_control(self, path):
        """Listen on a Unix socket for control commands (one line each, answer one line)."""
        if os.path.exists(path):
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(4)
        server.setblocking(False)
        self._control = server
        self.control_path = path
        self._sel.register(server, selectors.EVENT_READ, "control")

    def _accept(self):
        try:
            conn, _ = self._control.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self._clients[conn] = b""
        self._sel.register(conn, selectors.EVENT_READ, "client")

    def _read_client(self, conn):
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            return
        if not data:
            self._sel.unregister(conn)
            del self._clients[conn]
            conn.close()
            return
        buf = self._clients[conn] + data
        *lines, self._clients[conn] = buf.split(b"\n")
        for line in lines:
            # Commands that wait on the chip run beside the loop that feeds it.
            threading.Thread(target=self._serve_line, args=(conn, line), daemon=True).start()

    def _serve_line(self, conn, line):
        reply = self.command(line.decode(errors="replace"))
        try:
            conn.setblocking(True)
            conn.sendall((reply + "\n").encode())
        except OSError:
            pass

    def command(self, line):
        """One control command (see HELP); the answer is one line (JSON, or 'error: ...')."""
        words = line.split()
        if not words:
            return ""
        try:
            return self._command(words[0], words[1:])
        except (ValueError, EmuError) as exc:
            return "error: %s" % exc

    def _command(self, name, args):
        def number(text, what):
            try:
                return float(text)
            except ValueError:
                raise ValueError("%s must be a number, got %r" % (what, text)) from None

        if name == "help":
            return HELP.replace("\n", " | ")
        if name in ("press", "hold", "release"):
            if len(args) < 1:
                raise ValueError("%s needs a key: %s" % (name, "/".join(KEYS)))
            for key in args[0].split("+"):
                if key not in self.key_pins:
                    raise ValueError("key must be one of %s, got %r" % ("/".join(KEYS), key))
            ms = number(args[1], "ms") if len(args) > 1 else 150
            for key in args[0].split("+"):
                if name == "press":
                    self.press(key, ms)
                elif name == "hold":
                    self.press(key, -1)
                else:
                    self.release(key)
            return "ok"
        if name == "line":
            if len(args) != 1:
                raise ValueError("line needs one of %s" % "/".join(LINE_STATES))
            self.set_line(args[0])
            return "ok"
        if name == "battery":
            if len(args) != 1:
                raise ValueError("battery needs millivolts")
            self.set_battery(int(number(args[0], "battery")))
            return "ok"
        if name == "oled":
            path = args[0] if args else os.path.abspath("oled.png")
            return json.dumps({"png": self.oled_png(path)})
        if name in ("steps", "heap", "stats", "mark"):
            answer = self.query(name)
            answer.pop("t", None)
            answer.pop("id", None)
            return json.dumps(answer)
        if name == "plant":
            p = self.plant
            return json.dumps(
                {"line": p.line_state(), "force_n": round(p.true_force_n(), 4),
                 "delivered_nl": round(p.delivered_nl(), 1), "position_steps": p.position_steps(),
                 "end_stop": p.at_end_stop(), "stalled": p.stalled()}
            )
        if name == "wait":
            ms = number(args[0], "ms") if args else 1000
            self.wait_ms(ms)
            return "ok"
        if name == "power":
            hold = args[0].split("+") if args else []
            self.power_cycle(hold)
            return "ok"
        if name == "port":
            return self.port
        raise ValueError("unknown command %r (try help)" % name)


HELP = """commands (one per line):
  press KEY[+KEY] [MS]   press keys (up, down, ok, back) for MS ms of emulated time (150)
  hold KEY / release KEY  hold a key down / let it go
  line open|occluded|disconnected   the infusion line
  battery MV             VSYS in millivolts
  oled [PATH]            save the OLED as a PNG
  steps | heap | stats | plant | mark   read counters (JSON)
  wait MS                let MS ms of emulated time pass
  power [KEY+KEY]        power cut and power-up, keys held at power-up
  port                   the serial port (pty)"""


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="make emu", description="Run the pump on an emulated Pico (MicroPython rp2 port)."
    )
    parser.add_argument("--uf2", help="MicroPython image (default: $PICO_UF2 or ../shared/rig)")
    parser.add_argument("--link", help="also make this path a symlink to the serial port")
    parser.add_argument("--control", help="control socket path (default: in a temp folder)")
    parser.add_argument("--flash-image", help="keep the flash in this file across runs")
    parser.add_argument("--fast", action="store_true", help="run faster than real time when idle")
    parser.add_argument("--line", choices=LINE_STATES, default="open")
    parser.add_argument("--seed", type=int, default=0, help="plant model seed")
    parser.add_argument("--hold", default="", help="keys held at power-up, e.g. up+back")
    args = parser.parse_args(argv)
    hold = [k for k in args.hold.split("+") if k]
    for key in hold:
        if key not in KEYS:
            parser.error("--hold: key must be one of %s, got %r" % ("/".join(KEYS), key))
    try:
        rig = Rig(args.uf2, seed=args.seed, realtime=not args.fast, flash_image=args.flash_image,
                  link=args.link)
    except EmuError as exc:
        print("emu: %s" % exc, file=sys.stderr)
        return 3
    control = args.control or os.path.join(tempfile.mkdtemp(prefix="pump-emu-"), "control.sock")
    rig.serve_control(control)
    if hold:  # held at power-up, let go 2 s later (development mode wants them let go)
        rig.power_cycle(hold, off_ms=0)
        rig.wait_ms(2000)
        for key in hold:
            rig.release(key)
    if args.line != "open":
        rig.set_line(args.line)
    print("emulated Pico: %s" % rig.uf2)
    print("serial port:   %s%s" % (rig.port, "  (also %s)" % args.link if args.link else ""))
    print("control:       %s   (e.g. echo 'press ok' | nc -U %s)" % (control, control))
    print("  make flash PORT=%s   then   pumpctl --port %s status" % (rig.port, rig.port))
    print("Type a command (help lists them), Ctrl-D or Ctrl-C to stop.")
    sys.stdout.flush()
    try:
        while True:
            if sys.stdin.isatty() or not sys.stdin.closed:
                line = sys.stdin.readline()
                if not line:
                    if sys.stdin.isatty():
                        break
                    while rig._proc.poll() is None:  # no input (a pipe ended): run on
                        time.sleep(1)
                    break
                if line.strip() == "help":
                    print(HELP)
                    continue
                reply = rig.command(line)
                if reply:
                    print(reply)
                    sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        rig.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
