"""Setup's settings: built from the values a person chose, every one checked, all together."""

from support import mechanics

from pump.core import setup
from pump.core.events import EventLog
from pump.core.therapy import Settings, Therapy


def test_no_values_give_the_factory_settings():
    reason, s = setup.build(mechanics(), {})
    factory = Settings()
    assert reason is None
    assert (s.max_bolus_mu, s.max_basal_mu_per_h, s.max_hour_mu, s.max_day_mu) == (
        factory.max_bolus_mu, factory.max_basal_mu_per_h, factory.max_hour_mu, factory.max_day_mu)
    assert [(p.name, p.segments) for p in s.profiles] == [("Standard", [(0, 800)])]
    assert s.auto_off_h == factory.auto_off_h and s.low_reservoir_mu == factory.low_reservoir_mu


def test_every_value_chosen_is_in_the_settings():
    values = {
        "max_bolus": 8000, "max_basal": 2000, "increment": 100, "speed": 3000,
        "name0": "Week", "basal0": ((0, 600), (12, 1200)), "name1": "Sport",
        "basal1": ((0, 400),), "active_profile": 1, "max_hour": 6000, "max_day": 40_000,
        "low_reservoir": 30_000, "auto_off": 0,
    }
    reason, s = setup.build(mechanics(), values)
    assert reason is None, reason
    assert (s.max_bolus_mu, s.max_basal_mu_per_h, s.increment_mu, s.bolus_speed_mu_per_min) == (
        8000, 2000, 100, 3000)
    assert [(p.name, p.segments) for p in s.profiles] == [
        ("Week", [(0, 600), (12, 1200)]), ("Sport", [(0, 400)])]
    assert s.active_profile == 1
    assert (s.max_hour_mu, s.max_day_mu, s.low_reservoir_mu, s.auto_off_h) == (
        6000, 40_000, 30_000, 0)


def test_values_that_do_not_go_together_are_refused_with_the_reason():
    cases = (
        ({"max_basal": 500}, "profile Standard has 0.80 U/h, above that max basal"),
        ({"active_profile": 2}, "there is no profile 2"),
        ({"max_bolus": 8010}, "multiple of the bolus increment"),
        ({"max_hour": 3000, "max_day": 2000}, "max per day"),
        ({"auto_off": 3}, "auto-off is 5 to 24 h"),
        ({"low_reservoir": 5000}, "low reservoir level"),
        ({"name0": "A name far too long"}, "profile name"),
    )
    for values, said in cases:
        reason, s = setup.build(mechanics(), values)
        assert s is None and reason is not None and said in reason, (values, reason)


def test_a_running_bolus_or_temp_basal_stops_a_setup():
    therapy = Therapy(mechanics(), Settings(), EventLog(8), 0, 0)
    assert setup.check_state(therapy) is None
    therapy.start_bolus(0, "normal", 1000)
    assert "bolus is running" in setup.check_state(therapy)
    therapy.cancel_bolus(0)
    therapy.start_temp(0, 0, 50, 1_800_000)
    assert "temp basal is running" in setup.check_state(therapy)
