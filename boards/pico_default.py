"""Default bench build: Pico, STEP/DIR/EN driver, M5 lead screw, 3 mL syringe, U-100."""

NAME = "pico_default"

# Wiring (GPIO numbers on the Raspberry Pi Pico):
# | function    | GPIO | Pico pin | goes to                                        |
# |-------------|------|----------|------------------------------------------------|
# | step        | GP2  | 4        | driver STEP                                    |
# | dir         | GP3  | 5        | driver DIR                                     |
# | enable      | GP4  | 6        | driver EN (active low)                         |
# | end_stop    | GP5  | 7        | end-stop switch to GND (plunger fully back)    |
# | hx711_dout  | GP6  | 9        | HX711 DOUT (load cell under the plunger)       |
# | hx711_sck   | GP7  | 10       | HX711 PD_SCK                                   |
# | i2c_sda     | GP8  | 11       | SSD1306 SDA (I2C0)                             |
# | i2c_scl     | GP9  | 12       | SSD1306 SCL (I2C0)                             |
# | button_up   | GP10 | 14       | UP button to GND                               |
# | button_down | GP11 | 15       | DOWN button to GND                             |
# | button_ok   | GP12 | 16       | OK button to GND                               |
# | button_back | GP13 | 17       | BACK button to GND                             |
# | driver_diag | GP14 | 19       | driver DIAG/FAULT (stall), where it has one    |
# | buzzer      | GP15 | 20       | piezo buzzer through a transistor (PWM)        |
# | battery_adc | GP29 | -        | VSYS/3 divider on the Pico board (ADC3)        |
# | led         | GP25 | -        | on-board LED                                   |
PINS = {
    "step": 2,
    "dir": 3,
    "enable": 4,
    "end_stop": 5,
    "hx711_dout": 6,
    "hx711_sck": 7,
    "i2c_sda": 8,
    "i2c_scl": 9,
    "button_up": 10,
    "button_down": 11,
    "button_ok": 12,
    "button_back": 13,
    "driver_diag": 14,
    "buzzer": 15,
    "battery_adc": 29,
    "led": 25,
}

# Mechanics. One microstep pushes pi * 8.66^2 / 4 mm^2 * 0.8 mm / 3200 = 14.73 nL,
# which is 1.473 mU of U-100 insulin.
MECHANICS = {
    "driver": "A4988",  # STEP/DIR/EN; DRV8825 and TMC2209 boards set this
    "lead_um": 800,  # M5 threaded rod: 0.8 mm per turn
    "full_steps_per_rev": 200,  # 1.8 degree motor
    "microsteps": 16,  # MS1..MS3 high on an A4988
    "syringe_inner_diameter_um": 8660,  # 3 mL syringe
    "units_per_ml": 100,  # U-100 insulin
    "max_step_rate": 4000,  # microsteps/s the motor turns reliably under load
    "enable_active_low": True,
    "dir_forward_level": 1,  # DIR level that pushes the plunger forward
    "calibrated_step_pl": None,  # picolitres per step from a gravimetric calibration
    "reservoir_ul": 3000,  # a full 3 mL syringe: 300 U of U-100
}

# Pressure under the plunger: a 5 kg bar load cell (1.0 mV/V) on an HX711, channel A,
# gain 128, RATE tied low (10 samples/s). offset_counts comes from a bench calibration
# (the reading with nothing on the cell); counts_per_n from the cell's rated output.
PRESSURE = {
    "sensor": "hx711",
    "counts_per_n": 43_797,  # 2**23 * 0.256 / 49.03 N (see pump/core/pressure.py)
    "offset_counts": 0,
    "rated_mn": 49_033,  # 5 kg
    "period_ms": 100,  # 10 samples/s
}

# Occlusion is found by the line test (pump/core/line_test.py): pull the plunger back
# 0.5 uL, watch the force, push it forward again, watch again; an open line lets the
# pressure of each move go within a second or two, a blocked one keeps it. Figures from
# the plant model at the hard end of its ranges (docs/plant_model.md,
# docs/bench/safety.md): an open line relieves 27-90 mN, a blocked one -12 to 17 mN
# (rarely more, after a slip of the stopper).
LINE_TEST = {
    "probe_nl": 500,  # each move: 33 steps, 0.05 U out and back
    "watch_ms": 3000,  # watched after each move (the hard line's R*C is 1.2 s)
    "open_mn": 22,  # relief below this: suspect, test again at once
    "blocked_mn": 11,  # relief below this, or suspect twice: blocked
    "interval_s": 180,  # between tests while basal runs
    "bolus_interval_s": 30,  # bolus time between tests during a bolus
    "settle_ms": 4000,  # quiet before a test in the middle of a bolus
}

# Backstops beside the line test: a force no friction reaches, and the floor of the
# force over a window of travel (pump/core/occlusion.py). The floor test is off: on a
# sticky syringe at the hard end its friction alone rises by more than a blocked line's
# pressure (hundreds of false alarms a month, docs/bench/safety.md).
OCCLUSION = {
    "window_ul": 2,  # travel compared: 2 uL = 135 steps = 0.2 U
    "rise_mn": 0,  # floor rise that means a blocked line (0: off)
    "ceiling_mn": 8000,  # no friction reaches 8 N: an occlusion at once
}

# A line that comes off the site during a bolus: the tissue's back-pressure goes, and
# the force falls below its steady trend within a train or two (pump/core/disconnect.py).
# On the plant model an open line's force strays at most about 60 mN below the trend
# during a bolus (hard end); a disconnection drops it by 70-600 mN (2-10 kPa of
# back-pressure on 59 mm^2), docs/bench/safety.md. A medium-priority alert.
DISCONNECTION = {
    "drop_mn": 65,  # fall below the trend that is a disconnection
    "fit_samples": 10,  # positions (trains) the trend is fitted over, about 5 s of bolus
    "slope_mn_per_100": 250,  # steeper than this per 100 steps: the rim sticks, no judgement
    "scatter_mn": 25,  # RMS about the fit above this: not steady sliding, no judgement
    "gap_ms": 1500,  # a pause longer than this starts a new run
}

# Supply: 3 x AA alkaline cells on VSYS, read through the Pico's VSYS/3 divider on GP29.
BATTERY = {"low_mv": 3600, "depleted_mv": 3300, "hysteresis_mv": 100}

# The serial protocol on the USB port (docs/protocol.md).
USB_SERIAL = True

# Watchdog: the RP2040's counter reaches 8.3 s at most; the main loop feeds it every 4 s.
WATCHDOG_MS = 8000

PARTS = (
    ("Raspberry Pi Pico (RP2040)", 1),
    ("A4988 stepper driver carrier (or DRV8825 / TMC2209)", 1),
    ("NEMA 17 stepper motor, 200 steps/rev", 1),
    ("M5 threaded rod (0.8 mm lead), nut and plunger pusher", 1),
    ("3 mL syringe, 8.66 mm inner diameter, as the reservoir", 1),
    ("Load cell with HX711 amplifier under the plunger", 1),
    ("End-stop microswitch", 1),
    ("SSD1306 128x64 OLED, I2C", 1),
    ("Push buttons (UP, DOWN, OK, BACK)", 4),
    ("Piezo buzzer and NPN transistor", 1),
    ("Motor supply 9-12 V and 100 uF capacitor across it", 1),
)


def build():
    """Construct every peripheral of this build; the only place that makes Pins."""
    import sys

    import machine
    import rp2

    from pump.core.battery import monitor_for_board
    from pump.core.board_spec import check_board
    from pump.core.disconnect import DisconnectWatch
    from pump.core.line_test import LineTest
    from pump.core.occlusion import OcclusionDetector
    from pump.core.pressure import LoadCellCalibration, PressureSensor, plunger_area_um2
    from pump.hal.battery import BatteryGauge
    from pump.hal.board import Board
    from pump.hal.buttons import Buttons
    from pump.hal.buzzer import Buzzer
    from pump.hal.hx711 import HX711
    from pump.hal.pulse_counter import PioPulseCounter, count_rising
    from pump.hal.ssd1306 import SSD1306
    from pump.hal.stepper import SM_FREQ, StepperPio, step_train
    from pump.hal.usb_serial import UsbSerial
    from pump.hal.watchdog import Watchdog

    mechanics = check_board(PINS, MECHANICS)
    enable_off = 1 if MECHANICS["enable_active_low"] else 0
    step = machine.Pin(PINS["step"], machine.Pin.OUT, value=0)
    direction = machine.Pin(PINS["dir"], machine.Pin.OUT, value=0)
    enable = machine.Pin(PINS["enable"], machine.Pin.OUT, value=enable_off)
    sm = rp2.StateMachine(0, step_train, freq=SM_FREQ, sideset_base=step)
    stepper = StepperPio(
        sm,
        direction,
        enable,
        max_step_rate=MECHANICS["max_step_rate"],
        enable_active_low=MECHANICS["enable_active_low"],
        dir_forward_level=MECHANICS["dir_forward_level"],
    )
    end_stop = machine.Pin(PINS["end_stop"], machine.Pin.IN, machine.Pin.PULL_UP)
    # An A4988 has no stall output; a TMC2209 board sets "driver" and gets DIAG.
    diag = None
    if MECHANICS["driver"] == "TMC2209":
        diag = machine.Pin(PINS["driver_diag"], machine.Pin.IN, machine.Pin.PULL_DOWN)
    load_cell = HX711(
        machine.Pin(PINS["hx711_dout"], machine.Pin.IN, machine.Pin.PULL_UP),
        machine.Pin(PINS["hx711_sck"], machine.Pin.OUT, value=0),
    )
    pressure = PressureSensor.for_load_cell(
        LoadCellCalibration(PRESSURE["offset_counts"], PRESSURE["counts_per_n"]),
        PRESSURE["period_ms"],
        PRESSURE["rated_mn"],
        area_um2=plunger_area_um2(MECHANICS["syringe_inner_diameter_um"]),
    )
    occlusion = OcclusionDetector(
        OCCLUSION["window_ul"] * 1_000_000 // mechanics.pl_per_step,
        OCCLUSION["rise_mn"],
        OCCLUSION["ceiling_mn"],
        OCCLUSION.get("bend_mn", 0),
        OCCLUSION.get("bend_bolus_mn", 0),
    )
    line_test = LineTest(
        LINE_TEST["probe_nl"] * 1000 // mechanics.pl_per_step,
        LINE_TEST["watch_ms"],
        LINE_TEST["open_mn"],
        LINE_TEST["blocked_mn"],
        LINE_TEST["interval_s"] * 1000,
        LINE_TEST["bolus_interval_s"] * 1000,
        LINE_TEST["settle_ms"],
        PRESSURE["period_ms"],
    )
    disconnection = DisconnectWatch(
        DISCONNECTION["drop_mn"],
        DISCONNECTION["fit_samples"],
        DISCONNECTION["slope_mn_per_100"],
        DISCONNECTION["scatter_mn"],
        DISCONNECTION["gap_ms"],
    )
    buttons = Buttons(
        *[
            machine.Pin(PINS[name], machine.Pin.IN, machine.Pin.PULL_UP)
            for name in ("button_up", "button_down", "button_ok", "button_back")
        ]
    )
    i2c = machine.I2C(
        0, sda=machine.Pin(PINS["i2c_sda"]), scl=machine.Pin(PINS["i2c_scl"]), freq=400_000
    )
    serial = None
    if USB_SERIAL and sys.platform == "rp2":
        # The protocol on the USB port, MicroPython's stdio (pump/link.py). On the host the
        # simulator attaches a fake port instead.
        import select

        poller = select.poll()
        poller.register(sys.stdin, select.POLLIN)
        serial = UsbSerial(sys.stdin.buffer, sys.stdout.buffer, poller)
    return Board(
        NAME,
        PINS,
        mechanics,
        stepper,
        basal_timer=machine.Timer(-1),
        wake_timer=machine.Timer(-1),
        rtc=machine.RTC(),
        # PIO1's first state machine counts the rising edges on the STEP pad.
        pulse_counter=PioPulseCounter(rp2.StateMachine(4, count_rising, in_base=step)),
        end_stop=end_stop,
        driver_diag=diag,
        force_sensor=load_cell,
        pressure=pressure,
        occlusion=occlusion,
        line_test=line_test,
        disconnection=disconnection,
        buzzer=Buzzer(machine.PWM(machine.Pin(PINS["buzzer"]))),
        watchdog=Watchdog(machine.WDT, WATCHDOG_MS),  # started by the App after the self-test
        battery=BatteryGauge(machine.ADC(machine.Pin(PINS["battery_adc"]))),
        battery_monitor=monitor_for_board(BATTERY),
        buttons=buttons,
        display=SSD1306(i2c, 128, 64, 0x3C),
        serial=serial,
    )
