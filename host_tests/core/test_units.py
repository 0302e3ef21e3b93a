"""Insulin, volume and steps convert exactly, with remainders carried."""

from support import DEFAULT_PL, mechanics

from pump.core.units import NU_PER_MU, DoseCounter, basal_num, earliest, step_volume_pl


def test_default_syringe_step_volume_from_geometry():
    # pi * (8.66 mm)^2 / 4 = 58.9014 mm^2; x 0.8 mm / 3200 = 0.0147254 mm^3 = 14725 pL
    assert DEFAULT_PL == 14725
    assert mechanics().nu_per_step == 1_472_500  # 1.4725 mU of U-100 per step


def test_step_volume_scales_with_lead_and_microsteps():
    assert step_volume_pl(800, 200, 8, 8660) == 29451  # 2 x 14725.4, rounded once
    assert step_volume_pl(1600, 200, 16, 8660) == 29451
    assert step_volume_pl(800, 200, 16, 4660) == 4264  # 1 mL syringe, 4.66 mm bore


def test_steps_for_dose_carries_the_remainder():
    m = mechanics()
    steps, carry = m.steps_for_mu(1000)  # 1 U
    assert steps == 679  # 1e9 nU / 1_472_500 nU = 679.12
    assert steps * m.nu_per_step + carry == 1000 * NU_PER_MU
    assert 0 <= carry < m.nu_per_step


def test_many_small_doses_lose_nothing():
    m = mechanics()
    carry = 0
    total_steps = 0
    for _ in range(1000):
        steps, carry = m.steps_for_mu(50, carry)  # 0.05 U each
        total_steps += steps
    assert total_steps * m.nu_per_step + carry == 50 * 1000 * NU_PER_MU
    assert total_steps == 50 * 1000 * NU_PER_MU // m.nu_per_step


def test_dose_counter_reports_whole_milliunits_without_drift():
    m = mechanics()
    counter = DoseCounter(m)
    reported = 0
    for _ in range(10_000):
        reported += counter.add(1)
    assert reported == counter.mu == 10_000 * m.nu_per_step // NU_PER_MU
    assert counter.steps == 10_000


def test_volume_of_steps():
    m = mechanics()
    assert m.nl_for_steps(1000) == 14725
    assert m.mu_for_steps(679) == 999  # 679 * 1.4725 = 999.83 mU, rounded down


def test_step_rate_for_bolus_speed():
    m = mechanics()
    assert m.steps_per_s_for_mu_per_min(1500) == 16  # 25 mU/s / 1.4725 = 16.98
    assert m.steps_per_s_for_mu_per_min(15_000) == 169
    assert m.steps_per_s_for_mu_per_min(1) == 1  # never 0


def test_basal_accumulator_units_make_one_hour_exact():
    m = mechanics()
    # 1 U/h for one hour accrues exactly 1 U worth of step units.
    assert basal_num(1000) * 3_600_000 == 1000 * NU_PER_MU * m.basal_den() // m.nu_per_step


def test_earliest_of_two_planned_times_ignores_nothing_planned():
    assert earliest(None, None) is None
    assert earliest(5, None) == 5 and earliest(None, 7) == 7
    assert earliest(5, 7) == 5 and earliest(9, 7) == 7 and earliest(0, 3) == 0
