"""The simulated gearbox signal carries each injected fault where the analytics look for it."""
from __future__ import annotations

import numpy as np
import pytest

from smartcell.core.vibration import diagnose, extract_features, fit_baseline
from smartcell.twin.vibration_model import FAULT_KINDS, GearboxModel, GearboxVibration, fault_severity

FS = 12800.0
JOINT_SPEED_RAD_S = 1.0
EFFORT_NM = 40.0


def _window(vibration: GearboxVibration, faults, chunks=30, chunk=427) -> np.ndarray:
    # Chunks of one joint-state period (30 Hz) joined into one 1 s window, as the node does.
    return np.concatenate([vibration.generate(chunk, JOINT_SPEED_RAD_S, EFFORT_NM, faults)
                           for _ in range(chunks)])[:int(FS)]


@pytest.mark.parametrize('kind', [k for k in FAULT_KINDS if k != 'none'])
def test_each_injected_fault_is_recognised_without_a_baseline(kind):
    model = GearboxModel(sample_rate_hz=FS)
    vibration = GearboxVibration(model, np.random.default_rng(1))
    x = _window(vibration, {kind: 0.5})
    f = extract_features(x, FS, vibration.shaft_hz(JOINT_SPEED_RAD_S), model.bearing)
    assert diagnose(f).fault == kind


def test_healthy_gearbox_is_healthy_and_a_growing_fault_raises_the_health_index():
    model = GearboxModel(sample_rate_hz=FS)
    vibration = GearboxVibration(model, np.random.default_rng(2))
    shaft_hz = vibration.shaft_hz(JOINT_SPEED_RAD_S)
    healthy = [extract_features(_window(vibration, {}), FS, shaft_hz, model.bearing) for _ in range(12)]
    assert all(diagnose(f).fault == 'healthy' for f in healthy)
    baseline = fit_baseline([f.vector() for f in healthy], healthy[0].vector_names())
    his = [baseline.health_index(extract_features(_window(vibration, {'outer_race': s}), FS, shaft_hz,
                                                  model.bearing).vector()) for s in (0.0, 0.1, 0.3, 1.0)]
    assert his[0] < 3.0
    assert his[-1] > 6.0
    assert his == sorted(his)


def test_standing_joint_gives_only_noise():
    model = GearboxModel(sample_rate_hz=FS)
    x = GearboxVibration(model, np.random.default_rng(3)).generate(int(FS), 0.0, 0.0, {'outer_race': 1.0})
    assert np.std(x) == pytest.approx(model.noise_mps2, rel=0.05)


def test_unknown_fault_kind_is_named():
    vibration = GearboxVibration(GearboxModel(sample_rate_hz=FS), np.random.default_rng(4))
    with pytest.raises(ValueError, match='spalling'):
        vibration.generate(10, 1.0, 0.0, {'spalling': 1.0})


@pytest.mark.parametrize('elapsed,expected', [(5.0, 0.0), (10.0, 0.01), (10.0 + np.log(10) / 0.1, 0.1),
                                              (1e6, 1.0)])
def test_fault_severity_grows_exponentially_from_onset_and_saturates(elapsed, expected):
    assert fault_severity(elapsed, onset_s=10.0, initial=0.01, growth_per_s=0.1) == pytest.approx(expected)
