"""A bad board description fails at start with a message naming the field."""

from support import raises

from pump.core.board_spec import check_board
from pump.core.errors import ConfigError


def pins():
    return {"step": 2, "dir": 3, "enable": 4, "i2c_sda": 8, "i2c_scl": 9, "battery_adc": 29}


def mech(**changes):
    base = {
        "driver": "A4988",
        "lead_um": 800,
        "full_steps_per_rev": 200,
        "microsteps": 16,
        "syringe_inner_diameter_um": 8660,
        "units_per_ml": 100,
        "max_step_rate": 4000,
        "enable_active_low": True,
        "dir_forward_level": 1,
        "calibrated_step_pl": None,
    }
    base.update(changes)
    return base


def test_default_board_is_accepted():
    m = check_board(pins(), mech())
    assert m.pl_per_step == 14725
    assert m.units_per_ml == 100
    assert m.max_step_rate == 4000


def test_zero_or_negative_dimensions_name_the_field():
    for field in ("lead_um", "full_steps_per_rev", "syringe_inner_diameter_um", "max_step_rate"):
        for bad in (0, -5):
            err = raises(ConfigError, check_board, pins(), mech(**{field: bad}))
            assert field in str(err), str(err)


def test_float_dimension_is_refused():
    err = raises(ConfigError, check_board, pins(), mech(lead_um=0.8))
    assert "lead_um" in str(err)


def test_unknown_concentration_and_microsteps():
    assert "units_per_ml" in str(raises(ConfigError, check_board, pins(), mech(units_per_ml=40)))
    assert "microsteps" in str(raises(ConfigError, check_board, pins(), mech(microsteps=3)))


def test_step_rate_beyond_the_driver_is_refused():
    err = raises(ConfigError, check_board, pins(), mech(driver="DRV8825", max_step_rate=300_000))
    assert "max_step_rate" in str(err) and "DRV8825" in str(err)


def test_step_rate_beyond_the_pio_program_is_refused():
    err = raises(ConfigError, check_board, pins(), mech(max_step_rate=200_000))
    assert "max_step_rate" in str(err) and "PIO" in str(err)


def test_unknown_driver_and_unknown_field():
    assert "driver" in str(raises(ConfigError, check_board, pins(), mech(driver="L298")))
    assert "lead_mm" in str(raises(ConfigError, check_board, pins(), mech(lead_mm=1)))


def test_unknown_pin_function_and_gpio():
    p = pins()
    p["stepp"] = 5
    assert "stepp" in str(raises(ConfigError, check_board, p, mech()))
    p = pins()
    p["dir"] = 30
    assert "'dir'" in str(raises(ConfigError, check_board, p, mech()))
    p = pins()
    p["step"] = 24  # VBUS sense, not on the header
    assert "'step'" in str(raises(ConfigError, check_board, p, mech()))
    p = pins()
    p["battery_adc"] = 5  # not an ADC input
    assert "battery_adc" in str(raises(ConfigError, check_board, p, mech()))


def test_pin_used_twice_and_missing_pin():
    p = pins()
    p["enable"] = 2
    err = raises(ConfigError, check_board, p, mech())
    assert "'enable'" in str(err) and "'step'" in str(err)
    p = pins()
    del p["dir"]
    assert "'dir'" in str(raises(ConfigError, check_board, p, mech()))


def test_calibrated_step_volume_overrides_geometry():
    assert check_board(pins(), mech(calibrated_step_pl=15000)).pl_per_step == 15000
    err = raises(ConfigError, check_board, pins(), mech(calibrated_step_pl=-1))
    assert "calibrated_step_pl" in str(err)


def test_step_too_coarse_for_the_interrupt_accumulator():
    err = raises(
        ConfigError, check_board, pins(), mech(calibrated_step_pl=900_000, units_per_ml=500)
    )
    assert "accumulator" in str(err)
