"""Checks a board description (pins and mechanics) before anything is built from it."""

from pump.core.errors import ConfigError
from pump.core.limits import MAX_BASAL_MU_PER_H
from pump.core.units import Mechanics, basal_num, step_volume_pl

# Every pin function a board may wire; a key outside this set is a typo.
PIN_FUNCTIONS = (
    "step",
    "dir",
    "enable",
    "end_stop",
    "driver_diag",
    "button_up",
    "button_down",
    "button_ok",
    "button_back",
    "i2c_sda",
    "i2c_scl",
    "buzzer",
    "hx711_dout",
    "hx711_sck",
    "fsr_adc",
    "battery_adc",
    "led",
)
REQUIRED_PINS = ("step", "dir", "enable")

# GPIOs a board may use: GP0..GP22 and GP26..GP28 on the header; GP25 is the LED,
# GP29 is the VSYS/3 divider (ADC only); GP23/GP24 are internal (SMPS mode, VBUS sense).
_HEADER_GPIOS = tuple(range(0, 23)) + (26, 27, 28)
_ADC_GPIOS = (26, 27, 28, 29)
_PIN_EXTRA = {"led": (25,), "battery_adc": (29,)}

# Highest STEP frequency each driver accepts (minimum high and low pulse widths from
# the datasheets: A4988 1 us + 1 us, DRV8825 1.9 us + 1.9 us, TMC2209 about 100 ns each
# but its filter needs 1 us of care; ULN2003 boards are driven as full-step phases).
DRIVER_MAX_STEP_RATE = {
    "A4988": 500_000,
    "DRV8825": 250_000,
    "TMC2209": 400_000,
}

# Largest step rate the PIO step program produces at its 1 MHz clock (7 cycles a step).
PIO_MAX_STEP_RATE = 142_857

# The basal accumulator runs in a hard interrupt: den + 1000 ms x the largest rate must
# stay a small int (below 2**30) on the RP2040.
_SMALL_INT_LIMIT = 1 << 30
_ISR_CHUNK_MS = 1000

MECHANICS_FIELDS = (
    "driver",
    "lead_um",
    "full_steps_per_rev",
    "microsteps",
    "syringe_inner_diameter_um",
    "units_per_ml",
    "max_step_rate",
    "enable_active_low",
    "dir_forward_level",
    "calibrated_step_pl",
    "reservoir_ul",
)
RESERVOIR_UL_MAX = 10_000


def _positive_int(mech, key):
    value = mech.get(key)
    if type(value) is not int or value <= 0:
        raise ConfigError("board MECHANICS[%r] must be a positive integer, got %r" % (key, value))
    return value


def check_pins(pins):
    """Validate the pin map: known functions, real GPIOs, no GPIO used twice."""
    used = {}  # type: dict[int, str]
    for name in pins:
        if name not in PIN_FUNCTIONS:
            raise ConfigError("board PINS has unknown pin function %r" % (name,))
    for name in REQUIRED_PINS:
        if name not in pins:
            raise ConfigError("board PINS[%r] is missing" % (name,))
    for name in PIN_FUNCTIONS:
        if name not in pins:
            continue
        gpio = pins[name]
        allowed = _HEADER_GPIOS + _PIN_EXTRA.get(name, ())
        if name.endswith("_adc"):
            allowed = _ADC_GPIOS
        if type(gpio) is not int or gpio not in allowed:
            raise ConfigError(
                "board PINS[%r] = %r is not a GPIO this function can use" % (name, gpio)
            )
        if gpio in used:
            raise ConfigError(
                "board PINS[%r] uses GP%d, already used by %r" % (name, gpio, used[gpio])
            )
        used[gpio] = name


def check_mechanics(mech):
    """Validate the mechanics and return the Mechanics they describe."""
    for key in mech:
        if key not in MECHANICS_FIELDS:
            raise ConfigError("board MECHANICS has unknown field %r" % (key,))
    driver = mech.get("driver")
    if driver not in DRIVER_MAX_STEP_RATE:
        raise ConfigError(
            "board MECHANICS['driver'] = %r is not one of %s"
            % (driver, ", ".join(sorted(DRIVER_MAX_STEP_RATE)))
        )
    lead = _positive_int(mech, "lead_um")
    full_steps = _positive_int(mech, "full_steps_per_rev")
    microsteps = _positive_int(mech, "microsteps")
    if microsteps not in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        raise ConfigError(
            "board MECHANICS['microsteps'] must be a power of two up to 256, got %r" % microsteps
        )
    diameter = _positive_int(mech, "syringe_inner_diameter_um")
    concentration = _positive_int(mech, "units_per_ml")
    if concentration not in (100, 200, 500):
        raise ConfigError(
            "board MECHANICS['units_per_ml'] must be 100, 200 or 500 (U-100/U-200/U-500), got %r"
            % concentration
        )
    max_rate = _positive_int(mech, "max_step_rate")
    limit = DRIVER_MAX_STEP_RATE[driver]
    if max_rate > limit:
        raise ConfigError(
            "board MECHANICS['max_step_rate'] = %d steps/s is beyond what a %s can take (%d)"
            % (max_rate, driver, limit)
        )
    if max_rate > PIO_MAX_STEP_RATE:
        raise ConfigError(
            "board MECHANICS['max_step_rate'] = %d steps/s is beyond the PIO step program (%d)"
            % (max_rate, PIO_MAX_STEP_RATE)
        )
    for key in ("enable_active_low",):
        if type(mech.get(key, True)) is not bool:
            raise ConfigError("board MECHANICS[%r] must be True or False" % (key,))
    if mech.get("dir_forward_level", 1) not in (0, 1):
        raise ConfigError("board MECHANICS['dir_forward_level'] must be 0 or 1")
    calibrated = mech.get("calibrated_step_pl")
    if calibrated is None:
        pl = step_volume_pl(lead, full_steps, microsteps, diameter)
    else:
        if type(calibrated) is not int or calibrated <= 0:
            raise ConfigError(
                "board MECHANICS['calibrated_step_pl'] must be a positive integer or None, got %r"
                % (calibrated,)
            )
        pl = calibrated
    if pl <= 0:
        raise ConfigError("board MECHANICS give a step volume below one picolitre")
    reservoir_ul = mech.get("reservoir_ul", 3000)
    if type(reservoir_ul) is not int or not (100 <= reservoir_ul <= RESERVOIR_UL_MAX):
        raise ConfigError(
            "board MECHANICS['reservoir_ul'] must be 100 to %d microlitres, got %r"
            % (RESERVOIR_UL_MAX, reservoir_ul)
        )
    mechanics = Mechanics(pl, concentration, max_rate, reservoir_ul)
    if mechanics.basal_den() + _ISR_CHUNK_MS * basal_num(MAX_BASAL_MU_PER_H) >= _SMALL_INT_LIMIT:
        raise ConfigError(
            "board MECHANICS give %d pL per step: too coarse for the basal accumulator" % pl
        )
    return mechanics


def check_board(pins, mech):
    """Validate a whole board description; return its Mechanics."""
    check_pins(pins)
    return check_mechanics(mech)
