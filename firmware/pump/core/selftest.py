"""Power-on self-test: judges what the App read from the hardware; any failure blocks delivery."""

# Failure codes (stable: the log and the alarm screen use them).
STUCK_KEY = "stuck_key"
DISPLAY_MISSING = "display_missing"
LOAD_CELL_NO_DATA = "load_cell_no_data"
LOAD_CELL_OUT_OF_RANGE = "load_cell_out_of_range"
LOAD_CELL_SATURATED = "load_cell_saturated"
LOAD_CELL_STUCK = "load_cell_stuck"
BUZZER_NOT_DRIVEN = "buzzer_not_driven"
FIRMWARE_NO_MANIFEST = "firmware_no_manifest"
FIRMWARE_BAD_MANIFEST = "firmware_bad_manifest"
FIRMWARE_MISSING = "firmware_missing"
FIRMWARE_CHANGED = "firmware_changed"
FIRMWARE_UNEXPECTED = "firmware_unexpected"

# What the firmware check came to (firmware_status()).
FIRMWARE_OK = "ok"
FIRMWARE_NOT_APPLICABLE = "not applicable"  # running from source on the host
FIRMWARE_FAILED = "failed"

# HX711: 24-bit two's complement; it clamps to these two codes outside its input range.
HX711_MAX = 0x7FFFFF
HX711_MIN = -0x800000

_NAMES_SHOWN = 3  # file names quoted in one message; the rest are counted


class LoadCellLimits:
    """What a sane load cell at rest looks like (raw counts, before tare)."""

    def __init__(self, ready_ms=500, rest_min=-0x400000, rest_max=0x3FFFFF, min_samples=3):
        # HX711 at 10 samples/s settles within 400 ms after power-up (datasheet).
        self.ready_ms = ready_ms
        self.rest_min = rest_min
        self.rest_max = rest_max
        self.min_samples = min_samples


class BootReadings:
    """What the App gathered at power-on. None means "this board has no such part"."""

    def __init__(self):
        self.keys_down = ()  # type: tuple[str, ...]  # names of keys read as pressed
        self.display_found = None  # I2C scan found the display and its init succeeded
        self.load_cell_ready_ms = None  # ms until the first sample; -1: none in time
        self.load_cell_samples = None  # raw readings at rest, a few in a row
        self.buzzer_feedback = None  # a feedback input saw the self-test tone
        self.buzzer_driven = None  # the PWM read back the tone (Buzzer.driven())
        self.firmware = None  # a firmware_files.FirmwareReport, or None if not run
        self.release = True  # a built image: its manifest must be there


def _names(names):
    shown = ", ".join(names[:_NAMES_SHOWN])
    if len(names) > _NAMES_SHOWN:
        shown += " and %d more" % (len(names) - _NAMES_SHOWN)
    return shown


def check_keys(keys_down):
    return [(STUCK_KEY, "key %s is down at power-on (stuck key?)" % k) for k in keys_down]


def check_display(found):
    if found is None or found:
        return []
    return [(DISPLAY_MISSING, "display not found on I2C or did not start")]


def check_load_cell(ready_ms, samples, limits):
    if ready_ms is None:
        return []
    if ready_ms < 0 or ready_ms > limits.ready_ms:
        return [(LOAD_CELL_NO_DATA, "load cell gave no data within %d ms" % limits.ready_ms)]
    if samples is None or len(samples) < limits.min_samples:
        n = 0 if samples is None else len(samples)
        message = "load cell gave %d readings, need %d" % (n, limits.min_samples)
        return [(LOAD_CELL_NO_DATA, message)]
    for raw in samples:
        if raw >= HX711_MAX or raw <= HX711_MIN:
            return [(LOAD_CELL_SATURATED, "load cell reading %d is at the end of its range" % raw)]
    first = samples[0]
    if all(raw == first for raw in samples):
        # A live 24-bit converter always shows noise in its low bits.
        return [(LOAD_CELL_STUCK, "load cell reads %d every time (stuck?)" % first)]
    for raw in samples:
        if raw < limits.rest_min or raw > limits.rest_max:
            return [
                (
                    LOAD_CELL_OUT_OF_RANGE,
                    "load cell reading %d at rest is outside %d..%d"
                    % (raw, limits.rest_min, limits.rest_max),
                )
            ]
    return []


def check_buzzer(feedback, driven):
    if feedback is not None:
        ok = feedback
        how = "its feedback input heard nothing"
    else:
        ok = driven
        how = "the PWM did not take the test tone"
    if ok:
        return []
    return [(BUZZER_NOT_DRIVEN, "buzzer failed its test: %s" % how)]


def firmware_status(report, release):
    """FIRMWARE_OK, FIRMWARE_NOT_APPLICABLE (no manifest, not a release) or FIRMWARE_FAILED."""
    if report is None or not report.manifest_found:
        return FIRMWARE_FAILED if release else FIRMWARE_NOT_APPLICABLE
    return FIRMWARE_OK if report.ok() else FIRMWARE_FAILED


def check_firmware(report, release):
    if report is None or not report.manifest_found:
        if release:
            return [(FIRMWARE_NO_MANIFEST, "firmware manifest.json is missing")]
        return []
    if report.error is not None:
        return [(FIRMWARE_BAD_MANIFEST, "firmware check impossible: %s" % report.error)]
    failures = []
    if report.missing:
        failures.append((FIRMWARE_MISSING, "firmware files missing: " + _names(report.missing)))
    if report.changed:
        failures.append((FIRMWARE_CHANGED, "firmware files changed: " + _names(report.changed)))
    if report.unexpected:
        failures.append(
            (FIRMWARE_UNEXPECTED, "files not in the firmware image: " + _names(report.unexpected))
        )
    return failures


def judge(readings, limits=None):
    """Every failure as (code, message), in a fixed order; an empty list means pass."""
    if limits is None:
        limits = LoadCellLimits()
    failures = check_keys(readings.keys_down)
    failures += check_display(readings.display_found)
    failures += check_load_cell(readings.load_cell_ready_ms, readings.load_cell_samples, limits)
    failures += check_buzzer(readings.buzzer_feedback, readings.buzzer_driven)
    failures += check_firmware(readings.firmware, readings.release)
    return failures


def codes(failures):
    return [code for code, _message in failures]
