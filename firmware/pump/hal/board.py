"""What a board file hands the application: validated mechanics and built peripherals."""


class Board:
    """Peripherals of one build, constructed by its board file and nowhere else.

    Optional parts are None on a build that lacks them; the app then does without
    (and says so where safety depends on it).
    """

    def __init__(
        self,
        name,
        pins,
        mechanics,
        stepper,
        basal_timer,
        wake_timer,
        rtc,
        *,
        pulse_counter=None,
        end_stop=None,
        driver_diag=None,
        buzzer=None,
        force_sensor=None,
        pressure=None,
        occlusion=None,
        line_test=None,
        disconnection=None,
        watchdog=None,
        battery=None,
        battery_monitor=None,
        buttons=None,
        display=None,
        serial=None,
    ):
        self.name = name
        self.pins = pins
        self.mechanics = mechanics
        self.stepper = stepper
        self.basal_timer = basal_timer  # drives basal delivery (hard interrupt)
        self.wake_timer = wake_timer  # wakes the main loop when it has work planned
        self.rtc = rtc  # wall clock: basal profiles follow the time of day
        self.pulse_counter = pulse_counter  # independent count of STEP pulses (monitor)
        self.end_stop = end_stop  # Pin, low when the pusher is fully back
        self.driver_diag = driver_diag  # Pin, high when the driver reports a stall
        self.buzzer = buzzer  # alarm tones
        self.force_sensor = force_sensor  # load cell driver: read_raw() -> counts or None
        self.pressure = pressure  # core PressureSensor: calibration and sensor fault rules
        self.occlusion = occlusion  # core OcclusionDetector tuned for this build
        self.line_test = line_test  # core LineTest: is the line open? (needs the load cell)
        self.disconnection = disconnection  # core DisconnectWatch: off the site in a bolus?
        self.watchdog = watchdog  # hal Watchdog: started by the App after the self-test
        self.battery = battery  # hal BatteryGauge: read_mv()
        self.battery_monitor = battery_monitor  # core BatteryMonitor with this supply's levels
        self.buttons = buttons  # hal Buttons: UP, DOWN, OK, BACK
        self.display = display  # hal SSD1306 (a FrameBuffer): init_display(), show()
        self.serial = serial  # hal UsbSerial: the protocol's port (pump/link.py)
