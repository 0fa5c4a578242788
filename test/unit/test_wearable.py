"""Fatigue index: bounded, monotone in heart-rate load, robust to implausible samples."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from smartcell.core.sensors.wearable import (GRAVITY_MPS2, FatigueConfig, FatigueEstimator, OperatorProfile,
                                     SimulatedOperator, fatigue_step, workload)

CONFIG = FatigueConfig()


def _shift(hr_bpm: float, hours: float = 2.0, dt_s: float = 5.0) -> float:
    estimator = FatigueEstimator(CONFIG)
    for t in np.arange(0.0, hours * 3600.0, dt_s):
        estimator.update(float(t), hr_bpm, GRAVITY_MPS2)
    return estimator.index


def test_fatigue_index_is_monotone_in_heart_rate_load():
    indices = [_shift(hr) for hr in (65, 80, 100, 120, 140, 160, 185)]
    assert indices == sorted(indices)
    assert indices[:3] == [0.0, 0.0, 0.0]     # up to 29 % of HR reserve x 0.7 weight: sustainable
    # Two hours at maximum heart rate (no motion): L = 0.7, gain (0.7-0.3)/0.7/3600 per s.
    assert indices[-1] == pytest.approx(1.0 - math.exp(-(0.4 / 0.7) * 2.0), rel=1e-3)
    assert len(set(indices[2:])) == len(indices[2:])          # strictly increasing above it


@settings(max_examples=200, deadline=None)
@given(f=st.floats(0.0, 1.0), low=st.floats(0.0, 1.0), high=st.floats(0.0, 1.0), dt=st.floats(0.0, 1e5))
def test_one_step_is_bounded_and_monotone_in_load(f, low, high, dt):
    low, high = min(low, high), max(low, high)
    a, b = fatigue_step(f, low, dt, CONFIG), fatigue_step(f, high, dt, CONFIG)
    assert 0.0 <= a <= b + 1e-12 <= 1.0 + 1e-12


def test_rest_recovers():
    estimator = FatigueEstimator(CONFIG, initial=0.8)
    for t in range(0, 3600, 5):
        estimator.update(float(t), CONFIG.resting_hr_bpm, GRAVITY_MPS2)
    assert estimator.index < 0.8 * math.exp(-3000 / CONFIG.recovery_time_constant_s)


def test_workload_combines_heart_rate_reserve_and_motion():
    assert workload(CONFIG.resting_hr_bpm, GRAVITY_MPS2, CONFIG) == 0.0
    assert workload(CONFIG.max_hr_bpm, GRAVITY_MPS2, CONFIG) == pytest.approx(CONFIG.hr_weight)
    assert workload(CONFIG.max_hr_bpm, GRAVITY_MPS2 + 100.0, CONFIG) == pytest.approx(1.0)
    half_reserve = (CONFIG.resting_hr_bpm + CONFIG.max_hr_bpm) / 2
    assert workload(half_reserve, GRAVITY_MPS2, CONFIG) == pytest.approx(0.5 * CONFIG.hr_weight)


@pytest.mark.parametrize('hr', [math.nan, 0.0, 20.0, 300.0, math.inf])
def test_implausible_heart_rate_is_rejected_and_counted(hr):
    estimator = FatigueEstimator(CONFIG, initial=0.3)
    assert estimator.update(0.0, hr, GRAVITY_MPS2) is None
    assert estimator.rejected == 1 and estimator.index == 0.3


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match='resting'):
        FatigueConfig(resting_hr_bpm=190.0, max_hr_bpm=185.0)


def test_simulated_operator_is_seeded_and_plausible():
    a, b = SimulatedOperator(OperatorProfile(), 3), SimulatedOperator(OperatorProfile(), 3)
    samples = [a.step(1.0) for _ in range(3600)]
    assert samples == [b.step(1.0) for _ in range(3600)]
    hrs = [hr for hr, _ in samples]
    assert 60.0 < min(hrs) and max(hrs) < 185.0
    estimator = FatigueEstimator(CONFIG)
    for t, (hr, accel) in enumerate(samples):
        estimator.update(float(t), hr, accel)
    assert 0.0 < estimator.index < 1.0
