"""Alarms latch until acknowledged, sound again while their cause remains, remind, auto-off."""

from support import raises

from pump.core import alarms as al
from pump.core import events as ev
from pump.core.alarms import AlarmManager
from pump.core.events import EventLog

MIN = 60_000
HOUR = 3_600_000


def manager(auto_off_h=12):
    log = EventLog(capacity=100)
    return AlarmManager(log, auto_off_h, 0), log


def types(log):
    return [e[2] for e in log.recent()]


def test_every_alarm_has_a_priority_and_a_message():
    for code, (priority, stops, text) in al.TABLE.items():
        assert priority in (al.HIGH, al.MEDIUM, al.LOW), code
        assert stops in (True, False)
        assert len(text) > 5
    # Everything that stops delivery is high priority.
    assert all(p == al.HIGH for p, stops, _t in al.TABLE.values() if stops)


def test_an_alarm_is_an_event_with_its_priority_and_stays_until_acknowledged():
    alarms, log = manager()
    assert alarms.raise_alarm(1000, al.OCCLUSION, pressure_kpa=80)
    assert not alarms.raise_alarm(2000, al.OCCLUSION)  # already latched: no second event
    seq, t, etype, fields = log.last(ev.ALARM)
    assert (t, fields["code"], fields["priority"], fields["pressure_kpa"]) == (
        1000, "occlusion", "high", 80
    )
    alarms.clear(3000, al.OCCLUSION)  # the cause went away...
    assert alarms.shown(3000).code == al.OCCLUSION  # ...but the alarm is latched
    assert alarms.sound(3000) == al.HIGH
    assert alarms.acknowledge(4000) == al.OCCLUSION
    assert alarms.alarms == []
    assert alarms.sound(4000) == 0
    assert log.last(ev.ALARM_ACK)[1] == 4000
    assert types(log) == [ev.ALARM, ev.ALARM_CLEARED, ev.ALARM_ACK]


def test_an_acknowledged_alarm_whose_cause_remains_sounds_again_within_2_minutes():
    alarms, _log = manager()
    alarms.raise_alarm(0, al.BATTERY_LOW)
    alarms.acknowledge(10_000)
    assert alarms.sound(10_000) == 0
    assert alarms.sound(10_000 + al.RESOUND_MS - 1) == 0
    assert alarms.sound(10_000 + al.RESOUND_MS) == al.MEDIUM
    assert al.RESOUND_MS <= 2 * MIN
    assert alarms.next_wake_ms(20_000) == 10_000 + al.RESOUND_MS
    # Once the cause has gone, the acknowledged alarm leaves.
    alarms.clear(200_000, al.BATTERY_LOW)
    assert alarms.alarms == []


def test_the_highest_priority_is_shown_and_sounded():
    alarms, _log = manager()
    alarms.raise_alarm(0, al.RESERVOIR_LOW)
    alarms.raise_alarm(5, al.RESERVOIR_EMPTY)
    alarms.raise_alarm(9, al.SUSPENDED)
    assert alarms.shown(10).code == al.RESERVOIR_EMPTY
    assert alarms.sound(10) == al.HIGH
    assert alarms.high_active()
    assert alarms.blocking_delivery() == [al.RESERVOIR_EMPTY]
    alarms.clear(20, al.RESERVOIR_EMPTY)
    alarms.acknowledge(30)
    assert not alarms.high_active()
    assert alarms.shown(30).code == al.RESERVOIR_LOW
    assert alarms.sound(30) == al.MEDIUM


def test_suspended_delivery_reminds_every_15_minutes():
    alarms, log = manager(auto_off_h=0)
    assert alarms.tick(0, 0) == []
    assert alarms.tick(14 * MIN, 0) == []
    assert alarms.tick(15 * MIN, 0) == [al.SUSPENDED]
    assert alarms.sound(15 * MIN) == al.LOW
    alarms.acknowledge(16 * MIN)
    assert alarms.sound(17 * MIN) == 0
    assert alarms.tick(30 * MIN, 0) == []
    assert alarms.sound(31 * MIN + 1) == al.LOW  # reminded again 15 min after the ack
    alarms.tick(32 * MIN, None)  # resumed: the reminder goes
    assert alarms.alarms == []
    assert types(log).count(ev.ALARM) == 1


def test_auto_off_after_the_set_hours_without_a_key_press():
    alarms, _log = manager(auto_off_h=12)
    alarms.interaction(2 * HOUR)
    assert alarms.tick(14 * HOUR - 1, None) == []
    assert alarms.next_wake_ms(13 * HOUR) == 14 * HOUR
    assert alarms.tick(14 * HOUR, None) == [al.AUTO_OFF]
    assert alarms.find(al.AUTO_OFF) is None  # it stops delivery: the app's fault path raises it
    assert al.stops_delivery(al.AUTO_OFF)
    alarms.raise_alarm(14 * HOUR, al.AUTO_OFF)
    assert alarms.tick(15 * HOUR, None) == []  # once raised, not again


def test_auto_off_can_be_switched_off_and_is_limited_to_5_to_24_hours():
    alarms, _log = manager(auto_off_h=0)
    assert alarms.tick(100 * HOUR, None) == []
    for bad in (4, 25, -1, "12", 12.0):
        raises(ValueError, alarms.set_auto_off, bad)
    assert alarms.auto_off_h == 0
    alarms.set_auto_off(5)
    assert alarms.auto_off_deadline() == 5 * HOUR


def test_unknown_alarm_codes_are_a_programming_error():
    alarms, log = manager()
    raises(ValueError, alarms.raise_alarm, 0, "gremlins")
    assert log.recent() == []


def test_acknowledge_with_nothing_to_acknowledge_returns_none():
    alarms, log = manager()
    assert alarms.acknowledge(5) is None
    assert log.recent() == []
