"""A whole simulated pump: the real firmware and board file on the host fakes, in virtual time."""

import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host_tests")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import fakes

fakes.install()

import machine  # the fake
from fakes import vclock
from fakes.devices import StepperDriverModel
from fakes.plant import OutflowRecorder, Plant, PlantParams
from fakes.sensors import HX711Device
from fakes.ssd1306 import SSD1306Device

from pump.app import App
from pump.core.events import EventLog

NS_PER_MS = 1_000_000
FRESH_BATTERY_V = 4.5  # 3 x AA alkaline, new, at VSYS
KEY_PINS = {"UP": "button_up", "DOWN": "button_down", "OK": "button_ok", "BACK": "button_back"}


def load_board_module(name):
    """Import ``boards/<name>.py`` afresh (board files are plain modules)."""
    path = os.path.join(ROOT, "boards", name + ".py")
    if not os.path.exists(path):
        boards = os.listdir(os.path.join(ROOT, "boards"))
        known = sorted(f[:-3] for f in boards if f.endswith(".py"))
        raise ValueError("no board file %r (known: %s)" % (name, ", ".join(known)))
    spec = importlib.util.spec_from_file_location("board_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SimPump:
    """The firmware's App on a freshly reset set of fakes.

    ``deliveries`` and ``events`` collect what the firmware reports; ``driver`` is
    the stepper driver model on the real STEP/DIR/EN pins: the physical truth.
    """

    def __init__(
        self,
        board="pico_default",
        settings=None,
        start_ms_of_day=0,
        event_capacity=64,
        prepare_board=None,
        plant_params=None,
        seed=0,
        start=True,
    ):
        fakes.reset()
        self.clock = vclock.current()
        self.board_module = load_board_module(board)
        self.board = self.board_module.build()
        # The panel on I2C0 and a fresh battery behind the VSYS/3 divider on GP29.
        self.display = None
        pins = self.board_module.PINS
        if getattr(self.board, "display", None) is not None:
            self.display = SSD1306Device()
            machine.I2C.lookup(0).attach(self.board.display.addr, self.display)
        self.battery_adc = None
        if "battery_adc" in pins:
            self.battery_adc = machine.ADC.lookup(pins["battery_adc"])
            self.set_battery_volts(FRESH_BATTERY_V)
        if prepare_board is not None:
            prepare_board(self.board)  # a test's wiring change, before the firmware starts
        pins = self.board_module.PINS
        mech = self.board_module.MECHANICS
        self.driver = StepperDriverModel(
            machine.Pin.lookup(pins["step"]),
            machine.Pin.lookup(pins["dir"]),
            machine.Pin.lookup(pins["enable"]),
            en_active_low=mech.get("enable_active_low", True),
            dir_forward_level=mech.get("dir_forward_level", 1),
        )
        # The physics behind the pins: syringe, line and load cell (host_tests/fakes/plant.py).
        params = plant_params or PlantParams.typical()
        self.plant = Plant.on_driver(
            self.driver,
            self.clock,
            params.replace(reservoir_ul=mech.get("reservoir_ul", 3000)),
            seed,
            mech,
            end_stop_pin=machine.Pin.lookup(pins["end_stop"]),
            diag_pin=self.board.driver_diag,
        )
        pressure = getattr(self.board_module, "PRESSURE", None)
        self.load_cell = None
        if pressure is not None and pressure.get("sensor") == "hx711":
            self.load_cell = HX711Device(
                machine.Pin.lookup(pins["hx711_dout"]),
                machine.Pin.lookup(pins["hx711_sck"]),
                self.plant.load_cell_force_n,
                pressure["counts_per_n"],
                pressure["offset_counts"],
                1000 // pressure["period_ms"],
            )
        self.outflow = OutflowRecorder(self.plant, self.clock)
        self.deliveries = []  # (t_ms, kind, steps, mu)
        self.events = []  # (seq, t_ms, type, fields)
        log = EventLog(capacity=event_capacity, listener=self.events.append)
        self.app = App(
            self.board, self.clock, settings=settings, ms_of_day=start_ms_of_day, events=log
        )
        self.app.therapy.delivery_listener = self._on_delivery
        self._t0_ns = self.clock.now_ns
        if start:
            self.app.start()

    def start(self):
        """Boot the firmware (self-test, then delivery), when built with start=False."""
        self.app.start()

    def _on_delivery(self, t_ms, kind, steps, mu):
        self.deliveries.append((t_ms, kind, steps, mu))

    @property
    def mechanics(self):
        return self.board.mechanics

    def now_ms(self):
        return (self.clock.now_ns - self._t0_ns) // NS_PER_MS

    def at(self, t_ms, action):
        """At ``t_ms`` after start, post ``action(app)`` to the firmware's main loop."""
        self.clock.call_at(self._t0_ns + t_ms * NS_PER_MS, lambda: self.app.post(action))

    def at_plant(self, t_ms, fn):
        """At ``t_ms`` after start, ``fn(plant)``: something happens to the line itself."""
        self.clock.call_at(self._t0_ns + t_ms * NS_PER_MS, lambda: fn(self.plant))

    def run_until(self, t_ms):
        """Run the firmware's main loop until ``t_ms`` after start."""
        end_ns = self._t0_ns + t_ms * NS_PER_MS
        app = self.app
        if self.clock.now_ns < end_ns:
            self.clock.call_at(end_ns, lambda: app.post(_nothing))
        while self.clock.now_ns < end_ns:
            app.service()
            app.sleep()
        app.service()


    # ----- the person at the pump: battery, keys, screen ------------------------------

    def set_battery_volts(self, volts):
        """The battery voltage at VSYS (the ADC sees a third of it)."""
        self.battery_adc.set_voltage(volts / 3)

    def key_pin(self, key_name):
        """The Pin of a front-panel key ('UP', 'DOWN', 'OK', 'BACK')."""
        return machine.Pin.lookup(self.board_module.PINS[KEY_PINS[key_name]])

    def hold_key(self, key_name, down=True):
        """Hold a key down (its pin pulled low by the switch) or let it go."""
        self.key_pin(key_name).drive(0 if down else None)

    def press(self, key_name, hold_ms=80, gap_ms=120):
        """Press a key for ``hold_ms`` and let go, the firmware running meanwhile; then run
        ``gap_ms`` more, as a person's pace between keys."""
        start = self.now_ms()
        self.clock.call_at(self._t0_ns + start * NS_PER_MS, lambda: self.hold_key(key_name))
        self.clock.call_at(
            self._t0_ns + (start + hold_ms) * NS_PER_MS,
            lambda: self.hold_key(key_name, False),
        )
        self.run_until(start + hold_ms + gap_ms)

    def screen_pixels(self):
        """What the panel shows, as rows of 0/1."""
        return self.display.pixels()

    def screen_text(self):
        """The texts on the panel, one 'x,y: text' line each."""
        from test_ui import read_lines

        return "\n".join(read_lines(self.display.pixels()))

    def screen_png(self, path, scale=4):
        """Save what the panel shows as a PNG."""
        import frames

        return frames.save_png(self.display.pixels(), path, scale)

    def settle(self, limit_ms=10_000):
        """Let a pulse train already on the motor finish, so its steps are recorded."""
        deadline = self.now_ms() + limit_ms
        while self.app.train_running() and self.now_ms() < deadline:
            self.run_until(self.now_ms() + 1)


def _nothing(_app):
    """A no-op posted to wake the main loop at the end of a run."""
