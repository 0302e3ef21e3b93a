"""The power-on self-test passes a good pump and names every failure, each with a message."""

from pump.core import selftest as st


class Report:
    """A firmware check result, as hal/firmware_files.verify() returns it."""

    def __init__(self, found=True, error=None, missing=(), changed=(), unexpected=()):
        self.manifest_found = found
        self.error = error
        self.missing = list(missing)
        self.changed = list(changed)
        self.unexpected = list(unexpected)

    def ok(self):
        return (
            self.manifest_found
            and self.error is None
            and not (self.missing or self.changed or self.unexpected)
        )


def good():
    r = st.BootReadings()
    r.keys_down = ()
    r.display_found = True
    r.load_cell_ready_ms = 120
    r.load_cell_samples = [81234, 81240, 81229, 81251]
    r.buzzer_driven = True
    r.firmware = Report()
    r.release = True
    return r


def test_a_good_pump_passes():
    assert st.judge(good()) == []
    assert st.firmware_status(good().firmware, True) == st.FIRMWARE_OK


def test_a_key_down_at_power_on_is_a_stuck_key():
    r = good()
    r.keys_down = ("OK", "BACK")
    failures = st.judge(r)
    assert st.codes(failures) == [st.STUCK_KEY, st.STUCK_KEY]
    assert "OK" in failures[0][1] and "BACK" in failures[1][1]


def test_missing_display():
    r = good()
    r.display_found = False
    assert st.codes(st.judge(r)) == [st.DISPLAY_MISSING]


def test_load_cell_without_data_in_time():
    r = good()
    r.load_cell_ready_ms = -1
    assert st.codes(st.judge(r)) == [st.LOAD_CELL_NO_DATA]
    r.load_cell_ready_ms = 501
    assert st.codes(st.judge(r)) == [st.LOAD_CELL_NO_DATA]
    r.load_cell_ready_ms = 100
    r.load_cell_samples = [1, 2]
    assert st.codes(st.judge(r)) == [st.LOAD_CELL_NO_DATA]


def test_load_cell_saturated():
    for end in (st.HX711_MAX, st.HX711_MIN):
        r = good()
        r.load_cell_samples = [81234, end, 81229]
        failures = st.judge(r)
        assert st.codes(failures) == [st.LOAD_CELL_SATURATED], end
        assert str(end) in failures[0][1]


def test_load_cell_stuck_on_one_code():
    for code in (0, -1, 81234):  # DOUT held low, held high, a frozen value
        r = good()
        r.load_cell_samples = [code] * 5
        assert st.codes(st.judge(r)) == [st.LOAD_CELL_STUCK], code


def test_load_cell_out_of_its_rest_range():
    r = good()
    r.load_cell_samples = [0x500000, 0x500010, 0x500003]
    assert st.codes(st.judge(r)) == [st.LOAD_CELL_OUT_OF_RANGE]
    limits = st.LoadCellLimits(rest_min=-1000, rest_max=100_000)
    assert st.judge(good(), limits) == []


def test_a_board_without_load_cell_or_display_skips_those_checks():
    r = good()
    r.display_found = None
    r.load_cell_ready_ms = None
    r.load_cell_samples = None
    assert st.judge(r) == []


def test_buzzer_not_driven():
    r = good()
    r.buzzer_driven = False
    assert st.codes(st.judge(r)) == [st.BUZZER_NOT_DRIVEN]
    r.buzzer_driven = None  # no buzzer at all: no alarm could be heard
    assert st.codes(st.judge(r)) == [st.BUZZER_NOT_DRIVEN]


def test_buzzer_feedback_input_decides_where_there_is_one():
    r = good()
    r.buzzer_feedback = False
    r.buzzer_driven = True  # the PWM ran, but nothing was heard
    failures = st.judge(r)
    assert st.codes(failures) == [st.BUZZER_NOT_DRIVEN]
    assert "feedback" in failures[0][1]
    r.buzzer_feedback = True
    assert st.judge(r) == []


def test_firmware_manifest_missing_fails_a_release_but_not_a_run_from_source():
    r = good()
    r.firmware = Report(found=False)
    assert st.codes(st.judge(r)) == [st.FIRMWARE_NO_MANIFEST]
    assert st.firmware_status(r.firmware, True) == st.FIRMWARE_FAILED
    r.firmware = None
    assert st.codes(st.judge(r)) == [st.FIRMWARE_NO_MANIFEST]
    r.release = False
    assert st.judge(r) == []
    assert st.firmware_status(None, False) == st.FIRMWARE_NOT_APPLICABLE


def test_firmware_files_missing_changed_or_unexpected():
    r = good()
    r.firmware = Report(
        missing=["pump/app.mpy"],
        changed=["pump/core/a.mpy", "pump/core/b.mpy", "pump/core/c.mpy", "pump/core/d.mpy"],
        unexpected=["pump/app.py"],
    )
    failures = st.judge(r)
    assert st.codes(failures) == [
        st.FIRMWARE_MISSING,
        st.FIRMWARE_CHANGED,
        st.FIRMWARE_UNEXPECTED,
    ]
    assert "pump/app.mpy" in failures[0][1]
    assert failures[1][1].endswith("and 1 more")
    assert "pump/app.py" in failures[2][1]
    assert st.firmware_status(r.firmware, True) == st.FIRMWARE_FAILED
    r.release = False  # a manifest that is there is checked even when running from source
    assert len(st.judge(r)) == 3


def test_bad_manifest():
    r = good()
    r.firmware = Report(error="manifest.json is not valid JSON")
    failures = st.judge(r)
    assert st.codes(failures) == [st.FIRMWARE_BAD_MANIFEST]
    assert "JSON" in failures[0][1]


def test_every_failure_at_once_in_a_fixed_order():
    r = good()
    r.keys_down = ("UP",)
    r.display_found = False
    r.load_cell_samples = [7] * 4
    r.buzzer_driven = False
    r.firmware = Report(changed=["main.py"])
    assert st.codes(st.judge(r)) == [
        st.STUCK_KEY,
        st.DISPLAY_MISSING,
        st.LOAD_CELL_STUCK,
        st.BUZZER_NOT_DRIVEN,
        st.FIRMWARE_CHANGED,
    ]
    for _code, message in st.judge(r):
        assert message and isinstance(message, str)
