"""Energy per part and CO2e against hand calculations; environment limits."""
from __future__ import annotations

import math

import numpy as np
import pytest

from smartcell.core.sensors.energy import (NO_LOSSES, DriveLossModel, EnergyMeter, LEVEL_ERROR, LEVEL_OK, LEVEL_WARN,
                                   cell_power_w, co2e_g, evaluate_environment, joint_power_w)
from smartcell.twin.energy_model import EnvironmentProfile, EnvironmentSimulator


def _run(meter: EnergyMeter, torque_nm: float, speed_rad_s: float, idle_w: float, losses: DriveLossModel,
         start_s: float, end_s: float, rate_hz: float = 30.0) -> None:
    for t in np.arange(start_s, end_s, 1.0 / rate_hz):
        meter.add_power(float(t), cell_power_w([torque_nm, 0.0], [speed_rad_s, 0.0], losses, idle_w))


def test_energy_per_part_matches_constant_torque_times_speed_plus_idle():
    # One joint at 10 N m x 2 rad/s = 20 W for 5 s, plus 100 W idle: (20 + 100) x 5 = 600 J.
    meter = EnergyMeter(grid_g_per_kwh=400.0)
    meter.start_cycle(0.0)
    _run(meter, 10.0, 2.0, 100.0, NO_LOSSES, 0.0, 5.0)
    cycle = meter.close_cycle(5.0, unit=1, order_id='WO-1')
    assert cycle.energy_j == pytest.approx(600.0, rel=1e-9)
    assert cycle.co2e_g == pytest.approx(600.0 / 3.6e6 * 400.0, rel=1e-9)     # 0.0667 g
    assert cycle.duration_s == pytest.approx(5.0)
    assert cycle.unmetered_s == 0.0


def test_second_part_counts_only_its_own_cycle_and_losses_add_up():
    losses = DriveLossModel(copper_loss_w_per_nm2=0.01, friction_loss_w_per_rad_s=1.5, regen_efficiency=0.0)
    meter = EnergyMeter(grid_g_per_kwh=300.0)
    _run(meter, 10.0, 2.0, 100.0, losses, 0.0, 5.0)
    first = meter.close_cycle(5.0, unit=1)
    _run(meter, 0.0, 0.0, 100.0, losses, 5.0, 8.0)          # the arm stands: idle only
    second = meter.close_cycle(8.0, unit=2)
    # 20 W mechanical + 0.01 x 10^2 copper + 1.5 x 2 friction = 24 W, plus 100 W idle, for 5 s.
    assert first.energy_j == pytest.approx((20.0 + 1.0 + 3.0 + 100.0) * 5.0, rel=1e-9)
    assert second.energy_j == pytest.approx(100.0 * 3.0, rel=1e-9)
    assert meter.energy_j_total == pytest.approx(first.energy_j + second.energy_j)
    report = meter.report(8.0)
    assert report == {'stamp': 8.0, 'power_w': 100.0, 'energy_j_total': pytest.approx(920.0),
                      'last_cycle': {'unit': 2, 'energy_j': pytest.approx(300.0), 'co2e_g': pytest.approx(0.025)},
                      'grid_co2e_g_per_kwh': 300.0}


@pytest.mark.parametrize('regen,expected_w', [(0.0, 0.0), (0.5, -10.0), (1.0, -20.0)])
def test_braking_power_is_returned_only_with_regeneration(regen, expected_w):
    losses = DriveLossModel(0.0, 0.0, regen)
    assert float(joint_power_w(-10.0, 2.0, losses)) == pytest.approx(expected_w)


def test_gaps_and_nan_power_are_reported_unmetered_not_invented():
    meter = EnergyMeter(grid_g_per_kwh=400.0, max_gap_s=1.0)
    meter.add_power(0.0, 100.0)
    meter.add_power(1.0, 100.0)        # 100 J
    meter.add_power(4.0, 100.0)        # 3 s gap > 1 s: not integrated
    meter.add_power(5.0, math.nan)     # 100 J for 4..5, then unknown
    meter.add_power(6.0, 100.0)        # 5..6 unknown
    cycle = meter.close_cycle(6.5, unit=1)   # 6..6.5 at 100 W: 50 J
    assert cycle.energy_j == pytest.approx(250.0)
    assert cycle.unmetered_s == pytest.approx(4.0)
    assert cell_power_w([1.0, math.nan], [1.0, 1.0], NO_LOSSES, 10.0) != cell_power_w([1.0], [1.0], NO_LOSSES, 10.0)
    assert math.isnan(cell_power_w([1.0, math.nan], [1.0, 1.0], NO_LOSSES, 10.0))


def test_co2e_of_one_kwh_is_the_grid_factor():
    assert co2e_g(3.6e6, 350.0) == pytest.approx(350.0)


def test_negative_grid_factor_is_rejected_with_its_value():
    with pytest.raises(ValueError, match='-5'):
        EnergyMeter(grid_g_per_kwh=-5.0)


@pytest.mark.parametrize('readings,level,word', [
    ({'pm2_5': 10.0, 'pm10': 20.0, 'temperature': 22.0, 'humidity': 45.0}, LEVEL_OK, 'within'),
    ({'pm2_5': 40.0}, LEVEL_WARN, 'pm2_5'),
    ({'pm2_5': 80.0, 'temperature': 22.0}, LEVEL_ERROR, 'alarm'),
    ({'temperature': 12.0}, LEVEL_WARN, 'temperature'),
    ({'humidity': 95.0}, LEVEL_ERROR, 'humidity'),
    ({'pm10': math.nan}, LEVEL_ERROR, 'not a number'),
])
def test_environment_thresholds(readings, level, word):
    got_level, reason = evaluate_environment(readings)
    assert got_level == level
    assert word in reason


def test_unknown_environment_quantity_is_named():
    with pytest.raises(ValueError, match='co2'):
        evaluate_environment({'co2': 400.0})


def test_simulated_environment_is_reproducible_and_plausible():
    a = EnvironmentSimulator(EnvironmentProfile(), seed=7)
    b = EnvironmentSimulator(EnvironmentProfile(), seed=7)
    ra = [a.step(1.0) for _ in range(600)]
    assert ra == [b.step(1.0) for _ in range(600)]
    assert all(0.0 <= r['humidity'] <= 100.0 and r['pm2_5'] >= 0.0 for r in ra)
    assert 15.0 < np.mean([r['temperature'] for r in ra]) < 30.0


def test_energy_per_joint_adds_up_to_the_drives_share():
    meter = EnergyMeter(grid_g_per_kwh=400.0)
    for t in np.arange(0.0, 5.0 + 1e-9, 0.1):
        torques, speeds = [10.0, -4.0, 0.0], [2.0, 1.0, 0.0]   # joint 2 brakes (no regeneration)
        joints = joint_power_w(torques, speeds, NO_LOSSES)
        meter.add_power(float(t), cell_power_w(torques, speeds, NO_LOSSES, 50.0), joints)
    assert meter.breakdown_j.tolist() == pytest.approx([100.0, 0.0, 0.0])        # 20 W x 5 s
    assert meter.energy_j_total == pytest.approx(100.0 + 50.0 * 5.0)
