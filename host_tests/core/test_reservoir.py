"""The reservoir counts what the motor emitted; low and empty levels; the change sequence."""

from support import mechanics, raises

from pump.core import reservoir as res
from pump.core.errors import Refused
from pump.core.reservoir import Reservoir


def reservoir(loaded_mu=None, low_mu=20_000):
    mech = mechanics()
    return Reservoir(mech, mech.reservoir_capacity_mu(), low_mu, loaded_mu), mech


def test_a_full_default_reservoir_holds_300_units_counted_in_steps():
    r, mech = reservoir()
    assert mech.reservoir_capacity_mu() == 300_000
    assert r.remaining_steps == mech.steps_for_mu(300_000, 0)[0]
    assert 300_000 - 2 < r.remaining_mu() <= 300_000
    assert r.level() == res.OK


def test_remaining_insulin_falls_by_exactly_the_steps_emitted_and_rises_on_back_off():
    r, mech = reservoir()
    start = r.remaining_steps
    r.took(1000)
    r.took(7)
    r.gave_back(3)
    assert r.remaining_steps == start - 1004
    assert r.remaining_mu() == mech.mu_for_steps(start - 1004)


def test_low_alert_at_the_set_level_and_empty_at_zero():
    r, mech = reservoir(loaded_mu=25_000, low_mu=20_000)
    assert r.level() == res.OK
    r.took(mech.steps_for_mu(5_100, 0)[0])
    assert r.level() == res.LOW
    assert r.steps_allowed(10) == 10
    r.took(r.remaining_steps - 3)
    assert r.steps_allowed(10) == 3  # never more than is left
    r.took(3)
    assert r.level() == res.EMPTY
    assert r.steps_allowed(10) == 0


def test_low_level_is_10_to_50_units():
    r, _mech = reservoir()
    for bad in (9_999, 50_001, "20", 20_000.0):
        raises(Refused, r.set_low_level, bad)
    assert r.low_level_mu == 20_000
    r.set_low_level(10_000)
    r.set_low_level(50_000)
    assert r.low_level_mu == 50_000


def test_reservoir_change_goes_rewind_load_tubing_cannula_in_order():
    r, mech = reservoir(loaded_mu=5_000)
    assert "rewind" in str(raises(Refused, r.load, 200_000))
    r.rewound()
    assert r.remaining_steps == 0 and not r.in_use()
    assert "fill the tubing" in str(raises(Refused, r.check_fill, "cannula", 300))
    for bad in (9_999, 300_001, -5, "200"):
        raises(Refused, r.load, bad)
    r.load(200_000)
    assert r.change_step == res.LOADED
    raises(Refused, r.check_fill, "tubing", 30_001)
    raises(Refused, r.check_fill, "tubing", 0)
    r.check_fill("tubing", 12_000)
    steps = mech.steps_for_mu(12_000, 0)[0]
    r.took(steps)
    r.filled("tubing", steps)
    raises(Refused, r.check_fill, "cannula", 1_001)
    raises(Refused, r.check_fill, "cannula", 99)
    raises(Refused, r.check_fill, "needle", 300)
    r.check_fill("cannula", 300)
    r.took(mech.steps_for_mu(300, 0)[0])
    r.filled("cannula", mech.steps_for_mu(300, 0)[0])
    assert r.in_use()
    assert 12_290 <= r.primed_mu <= 12_300
