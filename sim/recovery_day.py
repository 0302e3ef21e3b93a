"""A short pump day on flash, cut by a power loss anywhere, and the checks every cut must pass.

Used by host_tests/test_recovery*.py and tools/bench_recovery.py. The day: a 1 U/h basal,
two quick boluses (0.5 U and 1 U, in pulse trains of 85 steps), a temp basal started and
cancelled, and two settings changes, in 10 simulated minutes. ``cut_day(op)`` runs it with
the power cut at flash operation ``op``; ``check(sim)`` judges what the pump did after.
"""

from pump.core import bolus as bolus_mod
from pump.core.limits import SPEED_QUICK_MU_MIN
from pump.core.schedule import TEMP_PERCENT, BasalProfile
from pump.core.state import OK
from pump.core.therapy import BOLUS, Settings
from pump.hal.storage import Storage
from sim.hw.flashfs import FlashFS
from sim.pump import SimPump

MIN_MS = 60_000
START_MS_OF_DAY = 8 * 3_600_000
END_MS = 10 * MIN_MS
OFF_MS = 2 * MIN_MS
AFTER_MS = MIN_MS  # how long the pump runs after it boots again
IOB_CHECK_MS = 3 * 3_600_000  # a bolus this recent still counts in insulin on board
OLD_MAX_BOLUS_MU = 10_000
NEW_MAX_BOLUS_MU = 8_000
QUICK_MU_PER_MIN = SPEED_QUICK_MU_MIN
TRAIN_STEPS = 85  # a quick bolus train on the default board: 170 steps/s for half a second
BASAL_RESERVE_STEPS = 68  # pump.persistence.default_policy()


def day_settings():
    s = Settings()
    s.profiles = [BasalProfile("Day", [(0, 1000)], s.max_basal_mu_per_h)]
    s.bolus_speed_mu_per_min = QUICK_MU_PER_MIN
    return s


# (at ms, name, action on the App)
ACTIONS = (
    (1 * MIN_MS, "bolus 0.5 U", lambda app: app.bolus(bolus_mod.NORMAL, 500)),
    (2 * MIN_MS, "temp 150 %", lambda app: app.temp_basal(TEMP_PERCENT, 150, 30 * MIN_MS)),
    (3 * MIN_MS, "limits", lambda app: app.set_limits(NEW_MAX_BOLUS_MU, 3_000)),
    (4 * MIN_MS, "bolus 1 U", lambda app: app.bolus(bolus_mod.NORMAL, 1_000)),
    (6 * MIN_MS, "bolus options", lambda app: app.set_bolus_options(50, QUICK_MU_PER_MIN)),
    (7 * MIN_MS, "cancel temp", lambda app: app.cancel_temp()),
)


def _no_display(board):
    board.display = None  # the screens cost time and prove nothing here


def new_day(flash=None):
    """A provisioned pump on ``flash`` with the day's actions scheduled."""
    sim = SimPump(
        settings=day_settings(),
        start_ms_of_day=START_MS_OF_DAY,
        prepare_board=_no_display,
        flash=flash if flash is not None else FlashFS(),
    )
    for at_ms, _name, action in ACTIONS:
        sim.at(at_ms, action)
    return sim


def count_ops():
    """Flash operations (writes, closes, renames...) of the day after the first boot,
    without a cut; and the pump that ran it."""
    sim = new_day()
    booted = sim.flash.ops
    sim.run_until(END_MS)
    sim.settle()
    return sim.flash.ops - booted, sim


def cut_day(op, off_ms=OFF_MS, clock_backup=False, after_ms=AFTER_MS):
    """The day with the power cut at its flash operation ``op`` (1 = the first after the
    first boot); the pump boots again after ``off_ms`` and runs ``after_ms`` more. The cut
    record is ``sim.cuts[0]`` (none if the day has fewer operations)."""
    sim = new_day()
    sim.clock_backup = clock_backup
    sim.cut_off_ms = off_ms
    sim.flash.cut_at(op)
    t = 0
    while not sim.cuts and t < END_MS:
        t = min(t + MIN_MS, END_MS)
        sim.run_until(t)
    if sim.cuts:
        sim.run_until(sim.now_ms() + after_ms)
    sim.settle()
    return sim


def cut_at_instant(t_ms, off_ms=OFF_MS, clock_backup=False, after_ms=AFTER_MS):
    """The day with the power cut at ``t_ms`` (between flash operations)."""
    sim = new_day()
    sim.clock_backup = clock_backup
    sim.run_until(t_ms)
    sim.power_loss(off_ms)
    sim.run_until(sim.now_ms() + after_ms)
    sim.settle()
    return sim


def check(sim):
    """Every invariant a power cut must keep; returns a list of what failed (empty: all
    held). ``sim`` ran ``cut_day`` or ``cut_at_instant``."""
    failures = []

    def fail(text):
        failures.append(text)

    if not sim.cuts:
        return failures
    cut = sim.cuts[0]
    flash = sim.flash

    # Settings whole and valid: the old ones or the new ones.
    store = Storage(flash)
    settings, _checkpoint = store.boot()
    if settings.status != OK:
        fail("settings %s: %s" % (settings.status, settings.reason))
    elif settings.value["therapy"].max_bolus_mu not in (OLD_MAX_BOLUS_MU, NEW_MAX_BOLUS_MU):
        fail("settings hold max bolus %d" % settings.value["therapy"].max_bolus_mu)

    # The event log readable, numbered without a gap or a repeat.
    seqs = [e[0] for e in store.log.since(0)]
    if seqs and seqs != list(range(seqs[0], seqs[0] + len(seqs))):
        fail("log sequence broken: %r" % seqs[:5])
    if store.log.skipped or store.log.torn:
        fail("log damaged: %d skipped, %d torn" % (store.log.skipped, store.log.torn))

    # The recovered record against the motor: never less, at most one reservation more.
    app = sim.app
    plan = app.persistence.plan
    # The motor's therapy steps: its place, or the steps booked when a line test's pull
    # (not therapy) was not yet pushed back at the cut.
    motor = max(cut["motor_steps"], cut["reported_steps"])
    in_flight = motor - cut["reported_steps"]  # steps of the cut train that went out
    if plan is not None and plan.reservoir_steps is not None:
        recorded = plan.odometer_steps
        if not motor <= recorded <= motor + max(TRAIN_STEPS, BASAL_RESERVE_STEPS):
            fail("odometer %d after the cut, the motor made %d" % (recorded, motor))

    # The interrupted bolus: recorded within one train of the motor, never resumed.
    before = sim.deliveries[: cut["deliveries"]]
    events_before = sim.events[: cut["events"]]
    started = [e for e in events_before if e[2] == "bolus_started"]
    ended = [e for e in events_before if e[2] in ("bolus_finished", "bolus_cancelled")]
    running = len(started) > len(ended)
    train = cut["train"]
    interrupted = None if plan is None else plan.interrupted_bolus
    given = 0
    if started:
        start_ms = started[-1][1]
        given = sum(d[2] for d in before if d[1] == BOLUS and d[0] >= start_ms)
        if train is not None and train[0] == BOLUS:
            given += in_flight
    if plan is None or plan.reservoir_steps is None:
        pass  # no checkpoint to recover from: judged by the state-lost alarm elsewhere
    elif interrupted is None:
        if running and given:
            fail("bolus of %d steps given, none recorded after the cut" % given)
    else:
        # Running at the cut, or ended but the end not yet on flash: either way the
        # record is what the motor gave, up to one train more.
        if not started:
            fail("a bolus recovered that never started")
        else:
            rec = interrupted["delivered_steps"]
            if not given <= rec <= given + TRAIN_STEPS:
                fail("bolus record %d steps, the motor gave %d" % (rec, given))
            if rec > interrupted["steps"]:
                fail("bolus record %d above the bolus %d" % (rec, interrupted["steps"]))
            iob_mu = sum(mu for _t, mu in app.therapy.iob.entries())
            if cut["off_ms"] < IOB_CHECK_MS and iob_mu < interrupted["delivered_mu"]:
                fail(
                    "insulin on board %d mU misses the bolus %d mU"
                    % (iob_mu, interrupted["delivered_mu"])
                )

    # No insulin twice: the motor's bolus steps never exceed the boluses asked for, and
    # after the cut no bolus train goes out before a new bolus starts.
    after_events = sim.events[cut["events"] :]
    after = sim.deliveries[cut["deliveries"] :]
    if any(d[1] == BOLUS for d in after) and not any(
        e[2] == "bolus_started" for e in after_events
    ):
        fail("a bolus train after the cut without a new bolus")
    basal_motor = sum(d[2] for d in sim.deliveries if d[1] != BOLUS)
    if train is not None and train[0] != BOLUS:
        basal_motor += in_flight
    requested = sum(e[3]["steps"] for e in sim.events if e[2] == "bolus_started")
    if sim.driver.position_steps - basal_motor > requested:
        fail(
            "the motor gave %d bolus steps, %d were asked for"
            % (sim.driver.position_steps - basal_motor, requested)
        )
    return failures
