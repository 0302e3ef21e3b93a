"""A whole simulated pump: the real firmware and board file on the host fakes, in virtual time."""

import importlib.util
import os

from sim import hw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

hw.install()

import machine  # the fake
import rp2  # the fake

from sim.hw import vclock
from sim.hw.devices import StepperDriverModel
from sim.hw.flashfs import PowerCut
from sim.hw.plant import OutflowRecorder, Plant, PlantParams
from sim.hw.sensors import HX711Device
from sim.hw.ssd1306 import SSD1306Device

from pump.app import App
from pump.core.events import EventLog
from pump.core.state import DAY_S, Checkpoint, days_from_date, rtc_tuple
from pump.core.therapy import Settings
from pump.hal.storage import Storage

NS_PER_MS = 1_000_000
FRESH_BATTERY_V = 4.5  # 3 x AA alkaline, new, at VSYS
KEY_PINS = {"UP": "button_up", "DOWN": "button_down", "OK": "button_ok", "BACK": "button_back"}
_BARREL_BEHIND_MARK_UL = 100  # barrel behind the full mark of the simulated syringe (uL)


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
        flash=None,
        line_test=True,
    ):
        hw.reset()
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
        if not line_test:
            self.board.line_test = None  # no line tests: every move is therapy
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
        # The physics behind the pins: syringe, line and load cell (sim/hw/plant.py).
        params = plant_params or PlantParams.typical()
        fill_ul = mech.get("reservoir_ul", 3000)
        # Filled to its 3 mL mark, a syringe's barrel still runs on behind the stopper: the
        # line test's pull and a back-off can draw it back a little without letting go.
        capacity_ul = max(params.syringe_capacity_ul, fill_ul + _BARREL_BEHIND_MARK_UL)
        self.plant = Plant.on_driver(
            self.driver,
            self.clock,
            params.replace(reservoir_ul=fill_ul, syringe_capacity_ul=capacity_ul),
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
            # 50 edges a reading: nobody reads their list (the device model watches them).
            self.load_cell.sck_pin.record = False
            self.load_cell.dout_pin.record = False
        self.outflow = OutflowRecorder(self.plant, self.clock)
        self.deliveries = []  # (t_ms, kind, steps, mu)
        self.events = []  # (seq, t_ms, type, fields)
        log = EventLog(capacity=event_capacity, listener=self.events.append)
        # Power cuts (power_loss): the flash survives them, and so do the plant and the clock.
        self.flash = flash
        self.clock_backup = False  # True: the RTC keeps time through a cut (a backup cell)
        self.cuts = []  # one dict per power cut: t_ms, op (flash operation), off_ms
        self.cut_off_ms = 0  # how long the power stays off after a cut the flash makes
        self._event_capacity = event_capacity
        self._prepare_board = prepare_board
        storage = None
        if flash is not None:
            if not flash.files:
                provision(flash, settings or Settings(), self.board.mechanics, start_ms_of_day)
            storage = Storage(flash)
        self.app = App(
            self.board,
            self.clock,
            settings=settings,
            ms_of_day=start_ms_of_day,
            events=log,
            storage=storage,
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
            self.clock.call_at(end_ns, lambda: self.app.post(_nothing))
        while self.clock.now_ns < end_ns:
            try:
                app.service()
                app.sleep()
            except PowerCut:
                self._restore_after_cut(self.cut_off_ms)
                app = self.app
        try:
            app.service()
        except PowerCut:
            self._restore_after_cut(self.cut_off_ms)

    # ----- power cuts --------------------------------------------------------------------

    def power_loss(self, off_ms, cut_at=None):
        """Cut the power now, or (``cut_at``) when the fake flash reaches that operation
        number (``flash.ops``), the firmware running until then. The plant keeps its state;
        ``off_ms`` pass with the motor dead; then the firmware boots again on the same
        flash with reset cause power-on. Returns the cut's record (also in ``cuts``)."""
        if cut_at is None or self.flash is None or cut_at <= self.flash.ops:
            self._power_off()
            self._restore(off_ms)
            return self.cuts[-1]
        self.flash.cut_at(cut_at - self.flash.ops)
        before = len(self.cuts)
        self.cut_off_ms = off_ms
        limit = self.now_ms() + 86_400_000
        while len(self.cuts) == before:
            if self.now_ms() >= limit:
                self.flash.cut_at(0)
                raise ValueError("the flash never reached operation %d" % cut_at)
            self.run_until(self.now_ms() + 60_000)
        self.cut_off_ms = 0
        return self.cuts[-1]

    def _restore_after_cut(self, off_ms):
        self._power_off()
        self._restore(off_ms)

    def _power_off(self):
        """Everything electrical stops at once: motor, timers, watchdog, interrupts."""
        self.app.running = False
        for sm in rp2._state.sms.values():
            sm._cancel_event()  # the pulse train stops where it is
        clock = self.clock
        for slot in list(clock._slots):
            slot._slot_armed = False
            slot._slot_active = False
            clock.remove_slot(slot)
        machine._state.wdt = None
        clock.irq_disabled = False  # the chip starts again with interrupts on
        for line in machine._state.gpios.values():
            line.irq_handler = None
        if self.flash is not None:
            self.flash.powered = False  # a write in progress is lost
        train = self.app._train
        self.cuts.append(
            {
                "t_ms": self.now_ms(),
                "op": None if self.flash is None else self.flash.ops,
                "off_ms": 0,
                # The physical truth at the cut, for checks: the motor's count, what the
                # firmware had booked, and the train that was on the motor (kind, steps).
                "motor_steps": self.driver.position_steps,
                "reported_steps": sum(d[2] for d in self.deliveries),
                "train": None if train is None else (train[0], train[2]),
                "events": len(self.events),  # events and deliveries before the cut
                "deliveries": len(self.deliveries),
            }
        )

    def _restore(self, off_ms):
        self.cuts[-1]["off_ms"] = off_ms
        self.clock.run_until(self.clock.now_ns + off_ms * NS_PER_MS)
        if not self.clock_backup:
            machine.RTC().lost_power()
        machine.set_reset_cause(machine.PWRON_RESET)
        while True:
            try:
                self._boot()
                return
            except PowerCut:  # a cut the flash was told to make, during the boot itself
                self._power_off()
                self.cuts[-1]["off_ms"] = self.cut_off_ms

    def _boot(self):
        flash = self.flash
        if flash is not None:
            armed = flash._cut_at  # a cut still to come (power_loss cut before it was reached)
            flash.reboot()
            if armed is not None and armed > flash.ops:
                flash._cut_at = armed
        self.board = self.board_module.build()
        if self._prepare_board is not None:
            self._prepare_board(self.board)
        log = EventLog(capacity=self._event_capacity, listener=self.events.append)
        storage = None if self.flash is None else Storage(self.flash)
        self.app = App(self.board, self.clock, events=log, storage=storage)
        self.app.therapy.delivery_listener = self._on_delivery
        self.app.start()


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
        from sim.frames import read_lines

        return "\n".join(read_lines(self.display.pixels()))

    def screen_png(self, path, scale=4):
        """Save what the panel shows as a PNG."""
        from sim import frames

        return frames.save_png(self.display.pixels(), path, scale)

    def settle(self, limit_ms=10_000):
        """Let a pulse train already on the motor finish, so its steps are recorded."""
        deadline = self.now_ms() + limit_ms
        while self.app.train_running() and self.now_ms() < deadline:
            self.run_until(self.now_ms() + 1)


SIM_DATE_S = days_from_date(2025, 1, 6) * DAY_S  # the date a simulated pump is set up on


def provision(flash, settings, mech, ms_of_day):
    """Set up a new pump as its owner would: the clock set, the settings saved and a first
    checkpoint with a full reservoir, so that it boots straight into basal delivery."""
    wall = SIM_DATE_S + ms_of_day // 1000
    machine.RTC().datetime(rtc_tuple(wall))
    storage = Storage(flash)
    storage.boot()
    storage.settings.save({"therapy": settings})
    checkpoint = Checkpoint()
    checkpoint.wall_s = wall
    checkpoint.reservoir_steps = mech.steps_for_mu(mech.reservoir_capacity_mu(), 0)[0]
    storage.checkpoint.save(checkpoint)


def _nothing(_app):
    """A no-op posted to wake the main loop at the end of a run."""
