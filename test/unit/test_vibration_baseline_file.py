"""A learnt baseline on disk: written per joint by the CLI, read and checked for the node's monitor."""
from __future__ import annotations


import numpy as np
import pytest

from smartcell.core.params import ConfigError
from smartcell.core.sensors.vibration import (LEVEL_OK, AnalysisConfig, GearboxMonitor, MonitorConfig, bearing_preset,
                                              feature_vector_names)
from smartcell.core.sensors.vibration_baseline import baselines_for_monitor, read_baseline_file
from smartcell.tools.analyze_vibration import main
from smartcell.twin.vibration_model import GearboxModel, GearboxVibration

FS = 6400.0
WINDOW_S = 0.25
BEARING = bearing_preset('6205')


def _learn(tmp_path, joint, seed, *extra, out='base.json', window_s=WINDOW_S):
    model = GearboxModel(sample_rate_hz=FS, resonance_hz=0.3 * FS)
    vibration = GearboxVibration(model, np.random.default_rng(seed))
    recording = tmp_path / f'{joint or "recording"}.npy'
    np.save(recording, vibration.generate(int(6 * FS), 1.0, 40.0, {}))
    argv = [recording, '--fs', FS, '--shaft-hz', vibration.shaft_hz(1.0), '--bearing', '6205',
            '--window-s', window_s, '--learn-baseline', tmp_path / out, *extra]
    if joint:
        argv += ['--joint', joint]
    return main([str(a) for a in argv])


def _check(path, joints=('elbow_joint',), **overrides):
    settings = dict(sample_rate_hz=FS, window_s=WINDOW_S, bearing=BEARING,
                    feature_names=feature_vector_names(FS), envelope_band_hz=None)
    settings.update(overrides)
    return baselines_for_monitor(read_baseline_file(path), list(joints), **settings)


def test_one_file_collects_a_baseline_per_joint_and_the_monitor_rates_from_the_first_window(tmp_path, capsys):
    assert _learn(tmp_path, 'elbow_joint', 1) == 0
    assert _learn(tmp_path, 'wrist_1_joint', 2) == 0
    loaded = read_baseline_file(tmp_path / 'base.json')
    assert set(loaded.baselines) == {'elbow_joint', 'wrist_1_joint'}
    assert loaded.envelope_band_hz == pytest.approx((0.08 * FS, 0.40 * FS))
    baselines = _check(tmp_path / 'base.json', ('elbow_joint', 'wrist_1_joint'))
    assert baselines['elbow_joint'].names == feature_vector_names(FS)
    # A monitor given the baseline rates its very first window (no learning phase).
    model = GearboxModel(sample_rate_hz=FS, resonance_hz=0.3 * FS)
    vibration = GearboxVibration(model, np.random.default_rng(9))
    config = MonitorConfig(sample_rate_hz=FS, window_s=WINDOW_S, bearing=BEARING,
                           analysis=AnalysisConfig(envelope_band_hz=loaded.envelope_band_hz))
    monitor = GearboxMonitor(config, baselines['elbow_joint'])
    [first] = monitor.add_samples(vibration.generate(int(WINDOW_S * FS), 1.0, 40.0, {}), vibration.shaft_hz(1.0), 0.0)
    assert first.state == 'assessed' and first.level == LEVEL_OK and first.health_index < 3.0
    [faulty] = monitor.add_samples(vibration.generate(int(WINDOW_S * FS), 1.0, 40.0, {'inner_race': 1.0}),
                                   vibration.shaft_hz(1.0), WINDOW_S)
    assert faulty.state == 'assessed' and faulty.health_index > 6.0


def test_a_joint_learnt_with_other_settings_is_not_merged_into_the_file(tmp_path, capsys):
    assert _learn(tmp_path, 'elbow_joint', 1) == 0
    capsys.readouterr()
    assert _learn(tmp_path, 'wrist_1_joint', 2, window_s=0.5) == 2
    assert 'window_s' in capsys.readouterr().err
    assert set(read_baseline_file(tmp_path / 'base.json').baselines) == {'elbow_joint'}   # file untouched


@pytest.mark.parametrize('overrides,reason', [
    ({'sample_rate_hz': 12800.0}, 'learnt at 6400 Hz, the node samples at 12800 Hz'),
    ({'window_s': 1.0}, 'learnt on 0.25 s windows, the node uses 1 s'),
    ({'bearing': bearing_preset('6203')}, 'learnt with bearing'),
    ({'envelope_band_hz': (1000.0, 2000.0)}, 'envelope band'),
    ({'feature_names': feature_vector_names(FS, bearing=False)}, 'features are not the node'),
])
def test_a_mismatched_file_is_refused_naming_file_and_reason(tmp_path, capsys, overrides, reason):
    assert _learn(tmp_path, 'elbow_joint', 1) == 0
    with pytest.raises(ConfigError, match=reason) as raised:
        _check(tmp_path / 'base.json', **overrides)
    assert str(tmp_path / 'base.json') in str(raised.value)


def test_a_monitored_joint_without_a_baseline_is_refused(tmp_path):
    assert _learn(tmp_path, 'elbow_joint', 1) == 0
    with pytest.raises(ConfigError, match=r'no baseline for joint\(s\) wrist_2_joint \(it holds elbow_joint\)'):
        _check(tmp_path / 'base.json', ('elbow_joint', 'wrist_2_joint'))
    assert _learn(tmp_path, '', 1, out='anonymous.json') == 0          # learnt without --joint
    with pytest.raises(ConfigError, match='it holds unnamed'):
        _check(tmp_path / 'anonymous.json')


@pytest.mark.parametrize('content,reason', [
    (None, 'cannot be read'),
    ('{"format": "smartcell-vibration-baseline/2", "sample_rate_hz": 6400', 'is not JSON'),
    ('[1, 2, 3]', 'not a smartcell vibration baseline'),
    ('{"format": "smartcell-vibration-baseline/2", "sample_rate_hz": 6400.0}', 'incomplete or malformed'),
    ('{"format": "smartcell-vibration-baseline/2", "sample_rate_hz": 6400.0, "window_s": 0.25, "bearing": null, '
     '"envelope_band_hz": [512, 2560], "joints": {"elbow_joint": {"baseline": {"names": ["a"]}}}}',
     "joint 'elbow_joint': baseline is incomplete or malformed"),
    ('{"format": "smartcell-vibration-baseline/2", "sample_rate_hz": 6400.0, "window_s": 0.25, "bearing": null, '
     '"envelope_band_hz": [512, 9000], "joints": {}}', 'not \\[low, high\\] within Nyquist'),
])
def test_a_missing_or_corrupt_file_is_a_config_error_naming_it(tmp_path, content, reason):
    path = tmp_path / 'baseline.json'
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=reason) as raised:
        read_baseline_file(path)
    assert str(path) in str(raised.value)
