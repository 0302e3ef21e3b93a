"""The range of every therapy setting, defined once.

Integers in the firmware's units (mU, mU/h, mU/min, ms, hours). The settings commands,
the stored settings' checks, the protocol's arguments, the screens and the host tools
all take their ranges from here; the pump's own settings and safety checks then apply
on top of them.
"""

# Boluses
MAX_BOLUS_MU = 25_000  # the highest max bolus a person may set
INCREMENT_CHOICES_MU = (10, 25, 50, 100)  # 0.01, 0.025, 0.05, 0.1 U
SPEED_STANDARD_MU_MIN = 1_500  # 1.5 U/min, the slowest bolus speed
SPEED_QUICK_MU_MIN = 15_000  # 15 U/min, the fastest
EXTENDED_MIN_MS = 30 * 60_000
EXTENDED_MAX_MS = 8 * 3_600_000
EXTENDED_STEP_MS = 30 * 60_000  # extended durations in 30-minute steps

# Basal
MAX_BASAL_MU_PER_H = 15_000  # the highest max basal (and basal or temp rate)
RATE_STEP_MU_H = 10  # rates are set in 0.01 U/h
MAX_PROFILES = 4
MAX_NAME_LEN = 12  # characters of a profile's name
TEMP_MAX_PERCENT = 250
TEMP_MIN_MS = 30 * 60_000  # also the step of a temp basal's duration
TEMP_MAX_MS = 24 * 3_600_000

# Insulin in any rolling hour and day
MAX_HOUR_MIN_MU = 1_000
MAX_HOUR_MAX_MU = 40_000
MAX_HOUR_DEFAULT_MU = 15_000
MAX_DAY_MIN_MU = 5_000
MAX_DAY_MAX_MU = 200_000
MAX_DAY_DEFAULT_MU = 80_000

# The level that raises the low-reservoir alarm
LOW_LEVEL_MIN_MU = 10_000
LOW_LEVEL_MAX_MU = 50_000
LOW_LEVEL_DEFAULT_MU = 20_000

# Auto-off: hours without a key press (0 = off)
AUTO_OFF_MIN_H = 5
AUTO_OFF_MAX_H = 24
AUTO_OFF_DEFAULT_H = 12
