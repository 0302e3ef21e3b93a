"""What a person reads (tools/pumptext.py): units, times and events in words."""

import pytest

import pumptext as t

NU = 1_472_500  # the default board's step: 1.4725 mU


def test_amounts_come_from_steps_rounded_to_the_nearest_milliunit():
    assert t.mu_from_steps(679, NU) == 1000  # 999.8 mU: shown as 1.000 U, not 0.999 U
    assert t.mu_from_steps(3056, NU) == 4500
    assert t.units(t.mu_from_steps(3056, NU)) == "4.500 U"
    assert t.step_units(NU) == "0.0014725 U"


def test_settings_rates_and_speeds_have_their_units():
    assert t.setting_units(8000) == "8.00 U" and t.setting_units(25) == "0.025 U"
    assert t.rate(800) == "0.80 U/h" and t.rate(625) == "0.625 U/h"
    assert t.speed(1500) == "1.5 U/min"
    assert t.clock(27_000_000) == "07:30" and t.duration(90 * 60_000) == "1:30"


def test_the_pump_s_wall_clock_reads_as_a_date():
    assert t.wall_text(789_462_000) == "2025-01-06 07:00"
    assert t.wall_text(0) == "2000-01-01 00:00"


@pytest.mark.parametrize(
    "etype, fields, text",
    [
        ("reset_cause", {"code": 1, "cause": "power_on"}, "restart: power on"),
        ("reset_cause", {"code": 3, "cause": 3}, "restart: watchdog"),
        ("reset", {"cause": 3, "rtc_lost": True},
         "state read back from flash; the clock lost the time"),
        ("no_delivery", {"from_wall_s": 789_462_000, "to_wall_s": 789_465_600, "seconds": 3600},
         "no delivery from 2025-01-06 07:00 to 2025-01-06 08:00 (1:00)"),
        ("bolus_finished", {"bolus": "normal", "steps": 679, "delivered_mu": 999},
         "normal bolus finished: 1.000 U given"),
        ("basal_hour", {"hour": 6, "steps": 543, "mu": 799}, "basal 06:00-07:00: 0.800 U given"),
        ("alarm_cleared", {"code": "occlusion"}, "occlusion: pressure relieved by backing off"),
        ("remote_request", {"command": "status", "outcome": "ok", "code": None, "count": 3},
         "USB: status answered (3 times)"),
    ],
)
def test_events_read_in_words(etype, fields, text):
    assert t.describe(etype, fields, NU).startswith(text)


def test_an_event_it_does_not_know_still_reads_in_units():
    line = t.describe("something_new", {"left_mu": 1500, "wait_ms": 120_000, "ok": True,
                                        "rate_mu_per_h": 800, "gone": None})
    assert line == "something new: left 1.500 U, ok yes, rate 0.80 U/h, wait 0:02"
