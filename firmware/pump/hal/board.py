"""What a board file hands the application: validated mechanics and built peripherals."""


class Board:
    """Peripherals of one build, constructed by its board file and nowhere else."""

    def __init__(self, name, pins, mechanics, stepper, basal_timer, wake_timer, rtc):
        self.name = name
        self.pins = pins
        self.mechanics = mechanics
        self.stepper = stepper
        self.basal_timer = basal_timer  # drives basal delivery (hard interrupt)
        self.wake_timer = wake_timer  # wakes the main loop when it has work planned
        self.rtc = rtc  # wall clock: basal profiles follow the time of day
