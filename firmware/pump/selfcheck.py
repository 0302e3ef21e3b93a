"""The power-on self-test run: read every part once, let pump.core.selftest judge them.

Imported at boot only: the code is not kept resident for the rest of the day.
"""

from pump.core import events as ev
from pump.core import selftest
from pump.panel import DISPLAY_RETRY_MS

_LOAD_CELL_READS = 4  # readings at rest the self-test judges
_SELF_TEST_POLL_MS = 10  # how often the self-test looks for the load cell's next sample


def run(app, board):
    """Read the parts, judge them and record the result; return the failures as
    (code, message), empty when it passed."""
    readings = selftest.BootReadings()
    panel = app.panel
    if panel.buttons is not None:
        readings.keys_down = panel.keys_down()
    if panel.display is not None:
        readings.display_found = panel.init_display()
        if not panel.display_ok:
            panel.retry_ms = app.now_ms() + DISPLAY_RETRY_MS
    if board.force_sensor is not None:
        _read_load_cell_at_rest(app, board.force_sensor, readings)
    buzzer = board.buzzer
    if buzzer is not None:
        buzzer.self_test_tone()
        now = app.now_ms()
        app.supervisor.sound_wake_ms = now + (buzzer.update(now) or 0)
        readings.buzzer_driven = buzzer.driven()
    if app.firmware_root is not None:
        from pump.hal.firmware_files import verify

        readings.firmware = verify(app.firmware_root)
    else:
        readings.release = False  # running from source: no image to check
    failures = selftest.judge(readings)
    app.events.emit(
        app.now_ms(),
        ev.SELF_TEST,
        passed=0 if failures else 1,
        codes=selftest.codes(failures),
        firmware=selftest.firmware_status(readings.firmware, readings.release),
    )
    return failures


def _read_load_cell_at_rest(app, sensor, readings):
    # The HX711 gives its first sample within 400 ms of power-up, then 10 a second.
    limits = selftest.LoadCellLimits()
    start = app.now_ms()
    deadline = start + limits.ready_ms + _LOAD_CELL_READS * 200
    samples = []  # type: list[int]
    ready_ms = -1
    while len(samples) < _LOAD_CELL_READS:
        raw = sensor.read_raw()
        now = app.now_ms()
        if raw is not None:
            if ready_ms < 0:
                ready_ms = now - start
            samples.append(raw)
        elif now >= deadline or (ready_ms < 0 and now - start > limits.ready_ms):
            break
        else:
            app.clock.sleep_ms(_SELF_TEST_POLL_MS)
    readings.load_cell_ready_ms = ready_ms
    readings.load_cell_samples = samples
