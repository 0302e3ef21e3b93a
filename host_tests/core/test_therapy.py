"""Therapy rules, driven as the app drives them, in exact virtual time."""

from support import CoreLoop, raises

from pump.core import events as ev
from pump.core.errors import Refused
from pump.core.schedule import SLOT_MS, TEMP_ABSOLUTE, TEMP_PERCENT
from pump.core.therapy import BASAL, BOLUS, Settings

MIN = 60_000
HOUR = 3_600_000


def exact_steps(mu_ms_per_h, loop):
    """Whole steps in an integral of rate over time (mU/h x ms)."""
    return mu_ms_per_h * 1_000_000 // (HOUR * loop.mech.nu_per_step)


def settings(max_bolus=10_000, max_basal=5000):
    s = Settings()
    s.max_bolus_mu = max_bolus
    s.max_basal_mu_per_h = max_basal
    return s


def test_flat_basal_for_a_day_is_exact():
    loop = CoreLoop(settings=settings())
    loop.run_to(24 * HOUR)
    assert loop.steps(BASAL) == exact_steps(800 * 24 * HOUR, loop)


def test_the_basal_given_in_each_clock_hour_is_logged_when_the_hour_ends():
    loop = CoreLoop(settings=settings(), ms_of_day=5 * HOUR + 30 * MIN)  # boot at 05:30
    loop.run_to(2 * HOUR + 40 * MIN)  # to 08:10
    hours = [(e[3]["hour"], e[3]["steps"], e[3]["mu"]) for e in loop.of_type(ev.BASAL_HOUR)]
    assert [h[0] for h in hours] == [5, 6, 7]
    # Every step given is in exactly one hour's record, the current hour's still open.
    assert sum(h[1] for h in hours) + loop.therapy._hour_steps == loop.steps(BASAL)
    # 06:00-07:00 is 30 to 90 min after boot: that hour's steps, to the step on the boundary.
    ideal = exact_steps(800 * 90 * MIN, loop) - exact_steps(800 * 30 * MIN, loop)
    assert abs(hours[1][1] - ideal) <= 1
    assert [h[2] for h in hours] == [loop.mech.mu_for_steps(h[1]) for h in hours]


def test_profile_switches_at_segment_boundaries_by_wall_clock():
    loop = CoreLoop(settings=settings(), ms_of_day=5 * HOUR)  # boot at 05:00
    assert loop.command("save_profile", 1, "Work", [(0, 800), (13, 1250)]) is None
    assert loop.command("select_profile", 1) is None
    loop.run_to(HOUR + 30 * MIN)  # 05:00 -> 06:30: 1.5 h at 0.8 U/h
    assert loop.steps(BASAL) == exact_steps(800 * 90 * MIN, loop)
    loop.run_to(3 * HOUR + 30 * MIN)  # two more hours at 1.25 U/h
    assert loop.steps(BASAL) == exact_steps(800 * 90 * MIN + 1250 * 2 * HOUR, loop)
    rates = [(e[1], e[3]["rate_mu_per_h"]) for e in loop.of_type(ev.BASAL_RATE)]
    assert (90 * MIN, 1250) in rates


def test_at_most_four_profiles():
    loop = CoreLoop(settings=settings())
    for i in range(1, 4):
        assert loop.command("save_profile", i, "P%d" % i, [(0, 500)]) is None
    assert "1 to 4" in loop.command("save_profile", 4, "P5", [(0, 500)])
    assert loop.command("select_profile", 7) is not None


def test_temp_basal_percent_runs_then_expires_with_an_event():
    loop = CoreLoop(settings=settings())
    loop.run_to(HOUR)
    assert loop.command("start_temp", TEMP_PERCENT, 150, 2 * SLOT_MS) is None
    loop.run_to(3 * HOUR)
    expected = 800 * HOUR + 1200 * HOUR + 800 * HOUR
    assert loop.steps(BASAL) == exact_steps(expected, loop)
    expired = loop.of_type(ev.TEMP_EXPIRED)
    assert len(expired) == 1 and expired[0][1] == 2 * HOUR


def test_temp_basal_absolute_and_cancel():
    loop = CoreLoop(settings=settings())
    assert loop.command("start_temp", TEMP_ABSOLUTE, 0, 4 * SLOT_MS) is None
    loop.run_to(HOUR)
    assert loop.steps(BASAL) == 0
    assert loop.command("cancel_temp") is None
    loop.run_to(2 * HOUR)
    assert loop.steps(BASAL) == exact_steps(800 * HOUR, loop)
    assert loop.of_type(ev.TEMP_CANCELLED)[0][3]["ran_min"] == 60
    assert loop.command("cancel_temp") == "no temp basal is running"


def test_normal_bolus_is_within_one_step_and_basal_keeps_going():
    loop = CoreLoop(settings=settings())
    loop.run_to(10 * MIN)
    assert loop.command("start_bolus", "normal", 2500) is None
    loop.run_to(HOUR)
    bolus_steps = loop.steps(BOLUS)
    nu = loop.mech.nu_per_step
    assert abs(bolus_steps * nu - 2500 * 1_000_000) < nu
    assert loop.steps(BASAL) == exact_steps(800 * HOUR, loop)
    done = loop.of_type(ev.BOLUS_FINISHED)[0][3]
    assert done["steps"] == bolus_steps and done["requested_mu"] == 2500


def test_bolus_remainders_carry_over_many_boluses():
    loop = CoreLoop(settings=settings())
    for i in range(40):
        assert loop.command("start_bolus", "normal", 50) is None
        loop.run_to((i + 1) * 10 * MIN)
    assert loop.steps(BOLUS) == 40 * 50 * 1_000_000 // loop.mech.nu_per_step


def test_extended_bolus_square_wave():
    loop = CoreLoop(settings=settings())
    assert loop.command("start_bolus", "extended", 1000, 0, HOUR) is None
    total = loop.of_type(ev.BOLUS_STARTED)[0][3]["steps"]
    loop.run_to(HOUR // 2)
    assert loop.steps(BOLUS) == total // 2
    loop.run_to(HOUR)
    assert loop.steps(BOLUS) == total
    assert len(loop.of_type(ev.BOLUS_FINISHED)) == 1


def test_dual_wave_gives_its_share_now_and_the_rest_over_time():
    loop = CoreLoop(settings=settings())
    assert loop.command("start_bolus", "dual", 2000, 60, 30 * MIN) is None
    started = loop.of_type(ev.BOLUS_STARTED)[0][3]
    assert started["now_steps"] == started["steps"] * 60 // 100
    loop.run_to(1)
    assert loop.steps(BOLUS) >= started["now_steps"]
    loop.run_to(30 * MIN)
    assert loop.steps(BOLUS) == started["steps"]


def test_cancel_records_exactly_what_was_delivered():
    loop = CoreLoop(settings=settings())
    loop.command("start_bolus", "extended", 2000, 0, HOUR)
    loop.run_to(HOUR // 4)
    delivered = loop.steps(BOLUS)
    assert loop.command("cancel_bolus") is None
    cancelled = loop.of_type(ev.BOLUS_CANCELLED)[0][3]
    assert cancelled["steps"] == delivered
    assert cancelled["delivered_mu"] == delivered * loop.mech.nu_per_step // 1_000_000
    assert cancelled["not_delivered_mu"] == 2000 - cancelled["delivered_mu"]
    loop.run_to(HOUR)
    assert loop.steps(BOLUS) == delivered


def test_limits_refuse_with_a_reason_and_change_nothing():
    loop = CoreLoop(settings=settings(max_bolus=5000, max_basal=2000))
    reason = loop.command("start_bolus", "normal", 5050)
    assert "above the max bolus 5.00 U" in reason
    assert loop.therapy.bolus is None
    assert "max basal" in loop.command("start_temp", TEMP_ABSOLUTE, 2010, SLOT_MS)
    assert loop.therapy.temp is None
    assert loop.command("set_limits", 30_000, 2000) is not None
    assert loop.command("set_limits", 5000, 16_000) is not None
    assert loop.command("set_limits", 5000, 500) is not None  # profile has 0.8 U/h
    assert loop.therapy.settings.max_basal_mu_per_h == 2000
    refusals = loop.of_type(ev.REFUSED)
    assert len(refusals) == 5
    assert refusals[0][3]["command"] == "normal bolus"
    loop.run_to(HOUR)
    assert loop.steps(BOLUS) == 0


def test_only_one_bolus_at_a_time_and_none_while_suspended():
    loop = CoreLoop(settings=settings())
    loop.command("start_bolus", "extended", 1000, 0, HOUR)
    assert "already running" in loop.command("start_bolus", "normal", 1000)
    loop.command("suspend")
    assert "suspended" in loop.command("start_bolus", "normal", 1000)
    assert "suspended" in loop.command("start_temp", TEMP_PERCENT, 50, SLOT_MS)


def test_suspend_stops_everything_and_resume_records_what_was_not_given():
    loop = CoreLoop(settings=settings())
    loop.run_to(HOUR)
    loop.command("start_bolus", "extended", 2000, 0, 2 * HOUR)
    loop.run_to(HOUR + 30 * MIN)
    before = loop.steps()
    assert loop.command("suspend") is None
    cancelled = loop.of_type(ev.BOLUS_CANCELLED)[0][3]
    assert cancelled["reason"] == "suspended"
    loop.run_to(3 * HOUR + 30 * MIN)
    assert loop.steps() == before
    assert loop.command("resume") is None
    resumed = loop.of_type(ev.RESUMED)[0][3]
    assert resumed["suspended_min"] == 120
    assert resumed["basal_not_given_mu"] == 1600  # 2 h at 0.8 U/h
    loop.run_to(4 * HOUR + 30 * MIN)
    assert loop.steps(BASAL) - (before - loop.steps(BOLUS)) >= exact_steps(800 * HOUR, loop) - 1
    assert loop.command("resume") == "delivery is not suspended"


def test_suspend_missed_insulin_follows_profile_and_temp():
    loop = CoreLoop(settings=settings(), ms_of_day=5 * HOUR)
    loop.command("save_profile", 0, "Std", [(0, 800), (12, 1600)])
    loop.command("start_temp", TEMP_PERCENT, 50, 2 * HOUR)
    loop.command("suspend")
    loop.run_to(3 * HOUR)  # 05:00-06:00 0.4, 06:00-07:00 0.8 (temp), 07:00-08:00 1.6 U/h
    loop.command("resume")
    assert loop.of_type(ev.RESUMED)[0][3]["basal_not_given_mu"] == 400 + 800 + 1600


def test_bolus_options_and_speed_limits():
    loop = CoreLoop(settings=settings())
    assert loop.command("set_bolus_options", 100, 15_000) is None
    assert loop.command("set_bolus_options", 30, 1500) is not None
    assert loop.command("set_bolus_options", 50, 1000) is not None
    assert loop.command("set_bolus_options", 50, 16_000) is not None
    assert "multiple" in loop.command("start_bolus", "normal", 1050)


def test_set_clock_moves_the_profile():
    loop = CoreLoop(settings=settings())
    loop.command("save_profile", 0, "Std", [(0, 800), (12, 2000)])
    assert loop.command("set_clock", 6 * HOUR) is None
    assert loop.therapy.rate(loop.now) == 2000
    assert loop.command("set_clock", 86_400_000) is not None


def test_refused_raises_in_the_core_api():
    loop = CoreLoop(settings=settings())
    raises(Refused, loop.therapy.start_bolus, 0, "square", 1000)
