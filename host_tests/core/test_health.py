"""Periodic jobs report in; a late one makes the pump unhealthy, which stops the watchdog feed."""

from support import raises

from pump.core.errors import ConfigError
from pump.core.health import (
    HARD_RESET,
    PWRON_RESET,
    SOFT_RESET,
    WDT_RESET,
    TaskMonitor,
    reset_cause_name,
    was_watchdog_reset,
)


def monitor(now=0):
    m = TaskMonitor(margin_ms=1000)
    m.register("basal", 60_000, now)
    m.register("pressure", 10_000, now)
    m.register("battery", 180_000, now)
    return m


def test_healthy_while_every_job_reports_within_its_period():
    m = monitor()
    for t in range(0, 600_001, 10_000):
        m.report("pressure", t)
        if t % 60_000 == 0:
            m.report("basal", t)
        if t % 180_000 == 0:
            m.report("battery", t)
        assert m.healthy(t + 10_999), t
        assert m.overdue(t + 10_999) == []


def test_a_job_that_stops_reporting_is_named_after_its_period_and_margin():
    m = monitor()
    for t in range(0, 60_001, 10_000):
        m.report("pressure", t)
    m.report("basal", 60_000)
    # pressure last reported at 60 s: late after 60 + 10 + 1 s
    assert m.healthy(71_000)
    assert not m.healthy(71_001)
    assert m.overdue(71_001) == ["pressure"]
    m.report("pressure", 71_500)
    assert m.healthy(71_500)


def test_first_report_is_due_one_period_after_registration():
    m = TaskMonitor(margin_ms=0)
    m.register("ui", 5_000, 1_000)
    assert m.healthy(6_000)
    assert m.overdue(6_001) == ["ui"]
    assert m.ms_until_overdue(2_000) == 4_000
    assert m.ms_until_overdue(9_000) == 0


def test_several_late_jobs_are_all_named_in_registration_order():
    m = monitor()
    assert m.overdue(200_000) == ["basal", "pressure", "battery"]
    m.report("basal", 200_000)
    assert m.overdue(200_000) == ["pressure", "battery"]


def test_unregister_and_reregister():
    m = monitor()
    m.unregister("pressure")  # the load cell is off while the pump is suspended
    assert m.names() == ["basal", "battery"]
    assert m.healthy(50_000)
    m.report("battery", 50_000)  # the indexes still point at the right jobs
    assert m.overdue(62_000) == ["basal"]
    m.register("basal", 120_000, 62_000)  # a new period replaces the old one
    assert m.period_ms("basal") == 120_000
    assert m.healthy(62_000)
    m.unregister("never registered")  # harmless


def test_an_empty_monitor_is_healthy():
    m = TaskMonitor()
    assert m.healthy(123)
    assert m.ms_until_overdue(0) is None


def test_reporting_an_unknown_job_is_a_wiring_error():
    raises(KeyError, monitor().report, "pressur", 0)


def test_bad_periods_are_refused():
    m = TaskMonitor()
    raises(ConfigError, m.register, "basal", 0, 0)
    raises(ConfigError, m.register, "basal", 1.5, 0)
    raises(ConfigError, TaskMonitor, -1)


def test_reset_causes_have_names():
    assert reset_cause_name(WDT_RESET) == "watchdog"
    assert reset_cause_name(PWRON_RESET) == "power_on"
    assert reset_cause_name(HARD_RESET) == "hard_reset"
    assert reset_cause_name(SOFT_RESET) == "soft_reset"
    assert reset_cause_name(99) == "unknown_99"
    assert was_watchdog_reset(WDT_RESET)
    assert not was_watchdog_reset(PWRON_RESET)
