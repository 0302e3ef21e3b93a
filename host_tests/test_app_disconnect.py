"""A line that comes off the site during a bolus: the firmware on the plant raises a
medium-priority alert within seconds, records it, and goes on delivering."""

import pytest

from pump.core import alarms as al
from pump.core import bolus as bolus_mod
from pump.core import events as ev
from pump.core.schedule import BasalProfile
from pump.core.therapy import Settings
from sim.hw.plant import PlantParams
from sim.pump import SimPump
from test_app_safety import events_of

SEC = 1000
MIN = 60_000
HOUR = 60 * MIN
BOLUS_AT = 40 * MIN


def pump(preset, seed=1):
    s = Settings()
    s.profiles = [BasalProfile("Test", [(0, 1000)], 15_000)]
    s.auto_off_h = 0

    def no_display(board):
        board.display = None

    return SimPump(settings=s, plant_params=getattr(PlantParams, preset)(), seed=seed,
                   prepare_board=no_display)


def alerts(sim):
    return [(t, f) for t, f in events_of(sim, ev.ALARM) if f["code"] == al.DISCONNECTED]


@pytest.mark.parametrize("preset", ["typical", "hard"])
def test_a_line_taken_off_the_site_mid_bolus_raises_a_medium_alert_and_delivery_goes_on(
        preset):
    sim = pump(preset)
    off_at = BOLUS_AT + 60 * SEC  # the stopper slides steadily by then
    sim.at(BOLUS_AT, lambda app: app.bolus(bolus_mod.NORMAL, 5000))
    sim.at_plant(off_at, lambda plant: plant.disconnect())
    sim.run_until(off_at + 5 * SEC)
    (t_alert, fields), = alerts(sim)
    assert 0 <= t_alert - off_at <= 2 * SEC
    assert fields["priority"] == "medium" and fields["drop_mn"] >= 65
    assert sim.app.alarms.sound(sim.now_ms()) == al.MEDIUM
    # An alert, not a fault: the bolus runs to its end (the person checks the site).
    assert sim.app.therapy.suspended_at is None
    sim.run_until(BOLUS_AT + 6 * MIN)
    (_t, done), = events_of(sim, ev.BOLUS_FINISHED)
    assert done["delivered_mu"] >= 4990
    assert sim.plant.spilled_nl() > 30_000  # most of it went to the air
    assert [f for _t, f in events_of(sim, ev.ALARM) if f["code"] == al.OCCLUSION] == []
    # Latched until acknowledged, then gone; the acknowledgement is recorded.
    assert sim.app.alarms.find(al.DISCONNECTED) is not None
    sim.at(sim.now_ms() + SEC, lambda app: app.acknowledge(al.DISCONNECTED))
    sim.run_until(sim.now_ms() + 2 * SEC)
    assert sim.app.alarms.find(al.DISCONNECTED) is None
    assert [f for _t, f in events_of(sim, ev.ALARM_ACK) if f["code"] == al.DISCONNECTED]


@pytest.mark.parametrize("preset", ["typical", "hard"])
def test_boluses_into_an_open_line_raise_no_disconnection_alert(preset):
    sim = pump(preset, seed=5)
    for k in range(3):
        sim.at(BOLUS_AT + k * HOUR, lambda app: app.bolus(bolus_mod.NORMAL, 5000))
    sim.run_until(BOLUS_AT + 2 * HOUR + 6 * MIN)
    assert len(events_of(sim, ev.BOLUS_FINISHED)) == 3
    assert alerts(sim) == []


def test_without_back_pressure_there_is_nothing_to_see():
    """The easy plant's tissue holds no back-pressure: coming off changes no force, and
    the pump cannot tell (docs/bench/safety.md)."""
    sim = pump("easy")
    sim.at(BOLUS_AT, lambda app: app.bolus(bolus_mod.NORMAL, 5000))
    sim.at_plant(BOLUS_AT + 60 * SEC, lambda plant: plant.disconnect())
    sim.run_until(BOLUS_AT + 6 * MIN)
    assert alerts(sim) == []
