"""The recovery plan: what the pump does after a reset, from what it found on flash.

Pure code, run once at boot (pump.persistence) and let go after. The names are also
pump.core.state's, where the checkpoint it reads is defined.
"""

from pump.core.state import (
    ALARM_BOLUS_INTERRUPTED,
    ALARM_CHECK_SETTINGS,
    ALARM_SET_TIME,
    ALARM_SET_UP,
    ALARM_STATE_LOST,
    CORRUPT,
    HIGH,
    IOB_WINDOW_S,
    MAX_RECENT_BOLUSES,
    MEDIUM,
    MISSING,
    OK,
    RecoveryPlan,
)


def plan_recovery(
    settings_status,
    settings_reason,
    checkpoint,
    checkpoint_status,
    reset_cause,
    reset_names,
    rtc_lost,
    now_wall_s,
    nu_per_step,
):
    """Decide what happens after a reset.

    settings_status / checkpoint_status: OK, MISSING or CORRUPT (checkpoint None
    unless OK). reset_cause: machine.reset_cause(); reset_names: {code: name} from
    the app. rtc_lost: the wall clock restarted. now_wall_s: wall-clock seconds now
    (None when unknown). nu_per_step converts steps to mU.
    """
    plan = RecoveryPlan()
    plan.reset_cause = reset_names.get(reset_cause, "reset %d" % reset_cause)
    plan.events.append(("reset", {"cause": reset_cause, "rtc_lost": bool(rtc_lost)}))
    deliver = True

    if settings_status != OK:
        deliver = False
        plan.offer_factory_settings = True
        new_pump = checkpoint_status == MISSING or (
            checkpoint_status == OK and not checkpoint.set_up
        )
        if settings_status == MISSING and new_pump:
            plan.alarms.append((MEDIUM, ALARM_SET_UP, "Set up the pump"))
        else:
            why = settings_reason or "settings missing"
            plan.alarms.append((HIGH, ALARM_CHECK_SETTINGS, "Check settings: " + why))

    clock_ok = not rtc_lost and now_wall_s is not None
    if not clock_ok:
        deliver = False
        plan.alarms.append((HIGH, ALARM_SET_TIME, "Set the time before basal resumes"))

    c = checkpoint if checkpoint_status == OK else None
    if c is None:
        if checkpoint_status == CORRUPT or settings_status == OK:
            deliver = False
            plan.alarms.append(
                (HIGH, ALARM_STATE_LOST, "Check reservoir and insulin on board")
            )
        plan.deliver = deliver
        return plan

    plan.reservoir_steps = c.reservoir_steps
    plan.odometer_steps = c.odometer_steps
    uncertain = c.in_flight_steps
    plan.limits = c.limits
    plan.limits_extra_steps = uncertain
    if c.wall_s is not None and clock_ok and now_wall_s >= c.wall_s:
        plan.limits_age_ms = (now_wall_s - c.wall_s) * 1000
    if uncertain:
        # Counted as delivered: IOB is never under-reported, the reservoir errs low.
        plan.odometer_steps += uncertain
        plan.reservoir_steps -= uncertain
        if plan.reservoir_steps < 0:
            plan.reservoir_steps = 0
        plan.events.append(
            (
                "delivery_uncertain",
                {"steps": uncertain, "mu": uncertain * nu_per_step // 1_000_000},
            )
        )

    recent = list(c.recent_boluses)
    bolus = c.bolus
    if bolus is not None:
        delivered = bolus["delivered_steps"]
        bolus_uncertain = uncertain if c.in_flight_kind == "bolus" else 0
        if delivered + bolus_uncertain > bolus["steps"]:
            bolus_uncertain = bolus["steps"] - delivered
        steps = delivered + bolus_uncertain
        mu = steps * nu_per_step // 1_000_000
        interrupted = dict(bolus)
        interrupted["delivered_steps"] = steps
        interrupted["delivered_mu"] = mu
        plan.interrupted_bolus = interrupted
        if mu > 0:
            recent.append((bolus.get("start_wall_s") or c.wall_s or 0, mu))
        plan.events.append(
            (
                "bolus_interrupted",
                {
                    "bolus": bolus.get("kind"),
                    "requested_mu": bolus["requested_mu"],
                    "steps": steps,
                    "delivered_mu": mu,
                    "uncertain_mu": bolus_uncertain * nu_per_step // 1_000_000,
                },
            )
        )
        plan.alarms.append(
            (
                HIGH,
                ALARM_BOLUS_INTERRUPTED,
                "Bolus stopped by a reset: %d of %d mU given" % (mu, bolus["requested_mu"]),
            )
        )

    plan.checkpoint_wall_s = c.wall_s
    if clock_ok:
        recent = [b for b in recent if now_wall_s - b[0] < IOB_WINDOW_S]
    elif c.wall_s is not None:
        # The time since is unknown, but it is at least the age at the checkpoint.
        recent = [b for b in recent if c.wall_s - b[0] < IOB_WINDOW_S]
    while len(recent) > MAX_RECENT_BOLUSES:
        recent.pop(0)
    plan.recent_boluses = recent

    if c.wall_s is not None and clock_ok and now_wall_s >= c.wall_s:
        plan.no_delivery_s = now_wall_s - c.wall_s
        plan.events.append(
            (
                "no_delivery",
                {"from_wall_s": c.wall_s, "to_wall_s": now_wall_s, "seconds": plan.no_delivery_s},
            )
        )

    temp = c.temp
    if temp is not None and clock_ok and temp["end_wall_s"] > now_wall_s:
        plan.temp = (temp["kind"], temp["value"], temp["end_wall_s"])

    if c.suspended:
        plan.suspended = True
        plan.suspend_reason = c.suspend_reason
        deliver = False
    plan.deliver = deliver
    return plan
