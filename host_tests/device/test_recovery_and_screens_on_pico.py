"""Recovery and screens of the firmware on MicroPython's rp2 port in an emulated RP2040.

A pump of its own (beside test_delivery_on_pico.py's), from an erased flash: `make
flash`, `pumpctl setup` with OK on the pump; then a power cut in a bolus (its alarms
acknowledged on the keys after), and the screen gallery walked by keys with the heap
read from RAM after every screen.
"""

import pathlib

import devicekit
import pytest

pytestmark = pytest.mark.device


@pytest.fixture(scope="module")
def pump():
    rig = devicekit.emu_rig.Rig()
    try:
        pump = devicekit.Pump(rig)
        code = pump.make_flash()
        assert code == 0, pump.flash_output[-2000:]
        code, out = pump.pumpctl("setup", confirm=True)
        assert code == 0, out
        yield pump
    finally:
        rig.close()


def test_a_power_cut_during_a_bolus_recovers_as_the_readme_says(pump):
    """Power cut 2 s in the middle of a 1 U bolus. After power-up (README, Recovery): the
    bolus is not resumed; what was given is recorded, never less than the plunger's net
    travel at the pin (less the basal of the same stretch) and within one pulse train of
    its forward steps; the lost clock stops delivery with "set the time"; after `pumpctl
    time sync` and OK, basal runs again."""
    rig = pump.rig
    if pump.status()["suspended"]:
        pytest.skip("the pump was not set up (see the fixture)")
    # From a moment with no line test half done: a test's push after t0 whose pull came
    # before it would count as delivery at the pin.
    t0, _ = pump.quiet_ns()
    code, out = pump.pumpctl("bolus", "1", confirm=True)
    assert code == 0, out
    given = pump.wait_for(lambda: len(devicekit.split_steps(
        rig.steps(since_ns=t0)["log"])[0]) >= 150, 60_000, 500)
    assert given
    rig.power_cycle()
    cut = rig.steps(since_ns=t0)
    pin_steps = len(devicekit.split_steps(cut["log"])[0])
    rig.wait_ms(8000)  # boot, self-test, recovery
    alarms = pump.alarms()
    assert {"bolus_interrupted", "set_time"} <= alarms, alarms
    still = rig.steps()
    rig.wait_ms(10_000)
    assert rig.steps()["forward"] == still["forward"], "delivery went on without the time"
    events = pump.history(20)
    interrupted = [e for e in events if e.get("type") == "bolus_interrupted"]
    assert interrupted, events
    recorded = int(interrupted[-1]["steps"])
    # The plunger's net travel at the pin (a line test cut between its pull and its push
    # leaves the plunger back by the pull): what the record is held to.
    net = sum(d for _, d in cut["log"])
    pump.report("power cut", pin_forward_delivery=pin_steps, pin_net=net,
                recorded_steps=recorded)
    # A bolus goes out in trains of half a second (pump/core/therapy.py): its step rate,
    # from the pin, gives the size of one train.
    forward = [ns for ns, d in cut["log"] if d > 0]
    gaps = sorted(b - a for a, b in zip(forward, forward[1:], strict=False))
    train = round(1e9 / gaps[len(gaps) // 2]) // 2 + 1
    code, out = pump.pumpctl("time", "sync", confirm=True)
    assert code == 0, out
    status = pump.status()
    assert status["suspended"] == 0, status
    t1 = rig.steps()["ns"]
    rig.wait_ms(20_000)
    delivery, _ = devicekit.split_steps(rig.steps(since_ns=t1)["log"])
    assert len(delivery) >= 2, "basal did not resume after the time was set"
    for _ in range(4):  # OK on the alarm screens acknowledges them, as a person would
        if pump.alarms() <= {"reset"}:
            break
        rig.press("ok")
        rig.wait_ms(1500)
    # Basal (0.80 U/h after `pumpctl setup`) goes on beside the bolus: the pin's steps
    # since t0 hold the basal steps of that stretch too, which the bolus record does not.
    stretch_h = (cut["log"][-1][0] - t0) / 3.6e12
    basal = int(800 * 1_000_000 / devicekit.mechanics().nu_per_step * stretch_h) + 1
    # Never under-recorded (insulin on board would be too low), and at most the train
    # that was on the motor (reserved before it started) plus a basal step over.
    assert net - basal <= recorded <= pin_steps + train + 1, (
        recorded, net, basal, pin_steps, train
    )


def test_every_screen_of_the_gallery_by_keys_without_an_exception(pump):
    """tools/scenarios/screens/gallery.toml replayed by key presses (gaps over 1 s cut to
    1 s): no traceback, no reset; the heap read from RAM after every screen, the OLED
    saved to out/device/gallery/."""
    import gallery

    rig = pump.rig
    boots = len(rig.boots)
    out = pathlib.Path(devicekit.ROOT, "out", "device", "gallery")
    out.mkdir(parents=True, exist_ok=True)
    heaps = {}

    def on_screen(name):
        rig.oled_png(str(out / ("%s.png" % name)))
        heaps[name] = rig.heap()

    rig.mark()
    gallery.walk(rig, on_screen)
    worst = min(heaps, key=lambda n: heaps[n]["free"]) if heaps else None
    if worst:
        pump.report("gallery", screens=len(heaps), worst=worst,
               free=heaps[worst]["free"], largest=min(h["largest"] for h in heaps.values()),
               pngs=out)
    failure = pump.tracebacks()  # a MemoryError included (the stock image's heap once ran out)
    assert not failure, failure
    assert len(rig.boots) == boots, rig.boots[boots:]
    assert len(heaps) == len(gallery.screen_names())
