"""The simulated gearbox signal carries each injected fault where the analytics look for it."""
from __future__ import annotations

import numpy as np
import pytest

from smartcell.core.sensors.vibration import diagnose, extract_features, fit_baseline
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


def _monitor(**overrides):
    from smartcell.core.sensors.vibration import MonitorConfig, bearing_preset
    settings = dict(sample_rate_hz=FS, window_s=0.5, bearing=bearing_preset('6205'), baseline_windows=8)
    settings.update(overrides)
    return MonitorConfig(**settings)


def test_monitor_learns_then_reaches_error_as_an_outer_race_fault_grows():
    from smartcell.core.sensors.vibration import FAULT_CODES, FEATURE_COLUMNS, GearboxMonitor, LEVEL_ERROR, feature_row
    monitor = GearboxMonitor(_monitor())
    vibration = GearboxVibration(GearboxModel(sample_rate_hz=FS), np.random.default_rng(5))
    shaft_hz = vibration.shaft_hz(JOINT_SPEED_RAD_S)
    assessments = []
    for tick in range(600):                       # 30 Hz joint states, 20 s
        t = tick / 30.0
        severity = fault_severity(t, onset_s=6.0, initial=0.02, growth_per_s=0.4)
        chunk = vibration.generate(427, JOINT_SPEED_RAD_S, EFFORT_NM, {'outer_race': severity})
        assessments += monitor.add_samples(chunk, shaft_hz, t)
    states = [a.state for a in assessments]
    assert states[:8] == ['learning'] * 8 and states[8] == 'assessed'
    assert assessments[8].level == 0
    assert assessments[-1].level == LEVEL_ERROR
    assert assessments[-1].diagnosis.fault == 'outer_race'
    first_error = next(i for i, a in enumerate(assessments) if a.level == LEVEL_ERROR)
    assert all(a.level == LEVEL_ERROR for a in assessments[first_error:])
    row = feature_row(assessments[-1])
    assert len(row) == len(FEATURE_COLUMNS)
    assert FAULT_CODES[int(row[FEATURE_COLUMNS.index('fault_code')])] == 'outer_race'
    assert monitor.samples_received == 600 * 427


def test_monitor_flags_nan_samples_and_keeps_the_level_when_the_shaft_stands():
    from smartcell.core.sensors.vibration import GearboxMonitor, LEVEL_ERROR
    monitor = GearboxMonitor(_monitor(window_s=0.1))
    n = monitor.config.window_samples
    bad = np.zeros(n)
    bad[5] = np.nan
    [invalid] = monitor.add_samples(bad, 16.0, 1.0)
    assert invalid.level == LEVEL_ERROR and 'NaN' in invalid.message
    [idle] = monitor.add_samples(np.random.default_rng(6).standard_normal(n) * 0.05, 0.5, 2.0)
    assert idle.state == 'idle' and idle.level == LEVEL_ERROR      # kept, not silently OK
    [unknown] = monitor.add_samples(np.zeros(n), float('nan'), 3.0)
    assert unknown.state == 'idle' and 'unknown' in unknown.message


def test_monitor_absolute_rms_limit_trips_even_while_learning():
    from smartcell.core.sensors.vibration import GearboxMonitor, LEVEL_ERROR
    monitor = GearboxMonitor(_monitor(window_s=0.1, rms_alarm_mps2=5.0))
    n = monitor.config.window_samples
    [a] = monitor.add_samples(10.0 * np.sin(np.arange(n)), 16.0, 1.0)
    assert a.level == LEVEL_ERROR and 'absolute' in a.message


def test_order_tracking_sharpens_bearing_lines_at_a_varying_speed():
    from smartcell.core.sensors.vibration import order_track
    model = GearboxModel(sample_rate_hz=FS)
    vibration = GearboxVibration(model, np.random.default_rng(7))
    chunks, speeds = [], []
    for k in range(30):                              # joint accelerates 0.7 -> 1.3 rad/s within 1 s
        joint_speed = 0.7 + 0.6 * k / 29
        chunks.append(vibration.generate(427, joint_speed, EFFORT_NM, {'outer_race': 0.5}))
        speeds.append(np.full(427, vibration.shaft_hz(joint_speed)))
    x, shaft = np.concatenate(chunks)[:int(FS)], np.concatenate(speeds)[:int(FS)]
    mean_hz = float(shaft.mean())
    plain = extract_features(x, FS, mean_hz, model.bearing)
    tracked = extract_features(order_track(x, shaft, FS), FS, mean_hz, model.bearing)
    bpfo = {m.name: m.prominence for m in tracked.bearing}['bpfo']
    assert bpfo > 2.0 * {m.name: m.prominence for m in plain.bearing}['bpfo']
    assert diagnose(tracked).fault == 'outer_race'


def test_order_tracking_leaves_a_constant_speed_window_unchanged():
    from smartcell.core.sensors.vibration import order_track
    x = np.random.default_rng(8).standard_normal(1000)
    assert np.allclose(order_track(x, np.full(1000, 15.0), FS), x)


def test_monitor_skips_windows_where_the_shaft_stops_or_reverses():
    from smartcell.core.sensors.vibration import GearboxMonitor
    monitor = GearboxMonitor(_monitor(window_s=0.1))
    n = monitor.config.window_samples
    x = 0.05 * np.random.default_rng(9).standard_normal(n)
    assert monitor.add_samples(x[:n // 2], 16.0, 1.0) == []
    [a] = monitor.add_samples(x[n // 2:], 0.5, 1.1)          # the shaft slows to 0.5 Hz mid-window
    assert a.state == 'idle' and 'below' in a.message
