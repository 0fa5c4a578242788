"""Severity a maintenance engineer recognises: ISO 20816-1 zones, hysteresis, a learnt baseline."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from smartcell.core.sensors.vibration import (LEVEL_ERROR, LEVEL_OK, AnalysisConfig, GearboxMonitor, HealthThresholds,
                                              MonitorConfig, amplitude_spectrum, extract_features,
                                              iso_zone, velocity_rms_mm_s)
from smartcell.tools.analyze_vibration import main
from smartcell.twin.vibration_model import GearboxModel, GearboxVibration

FS = 6400.0


@pytest.mark.parametrize('velocity,zone', [(0.3, 'A'), (0.71, 'B'), (1.0, 'B'), (1.8, 'C'), (4.49, 'C'),
                                           (4.5, 'D'), (30.0, 'D'), (math.nan, '')])
def test_iso_zones_of_class_i_with_boundaries_in_the_worse_zone(velocity, zone):
    assert iso_zone(velocity) == zone


def test_configurable_zone_boundaries():
    assert iso_zone(2.0, (1.12, 2.8, 7.1)) == 'B'             # class II
    with pytest.raises(ValueError, match='increasing'):
        AnalysisConfig(iso_zone_boundaries_mm_s=(2.0, 1.0, 3.0))


def test_velocity_rms_of_a_sine_and_nothing_outside_10_to_1000_hz():
    t = np.arange(int(4 * FS)) / FS
    a = 2.0                                                    # m/s^2 at 50 Hz
    x = a * np.sin(2 * np.pi * 50.0 * t)
    expected = 1000.0 * a / (2 * np.pi * 50.0) / math.sqrt(2)   # 4.50 mm/s
    assert velocity_rms_mm_s(amplitude_spectrum(x, FS)) == pytest.approx(expected, rel=0.01)
    high = 50.0 * np.sin(2 * np.pi * 2000.0 * t) + 50.0 * np.sin(2 * np.pi * 5.0 * t)
    assert velocity_rms_mm_s(amplitude_spectrum(x + high, FS)) == pytest.approx(expected, rel=0.02)
    assert extract_features(x, FS).velocity_rms_mm_s == pytest.approx(expected, rel=0.01)


def test_health_levels_have_hysteresis():
    thresholds = HealthThresholds(warn=3.0, alarm=6.0, clear_ratio=0.8)
    level, levels = 0, []
    for hi in (1.0, 3.1, 2.9, 2.3, 6.5, 5.0, 4.7, 2.0, math.nan):
        level = thresholds.level(hi, level)
        levels.append(level)
    assert levels == [0, 1, 1, 0, 2, 2, 1, 0, 2]


def test_a_machine_in_zone_d_is_an_error_even_while_the_baseline_is_learnt():
    model = GearboxModel(sample_rate_hz=FS, resonance_hz=0.3 * FS)
    vibration = GearboxVibration(model, np.random.default_rng(1))
    monitor = GearboxMonitor(MonitorConfig(sample_rate_hz=FS, window_s=0.5, bearing=model.bearing))
    speed = 1.0
    [healthy] = monitor.add_samples(vibration.generate(int(0.5 * FS), speed, 40.0, {}), vibration.shaft_hz(speed), 1.0)
    assert healthy.state == 'learning' and healthy.level == LEVEL_OK and healthy.iso_zone in ('A', 'B')
    [rough] = monitor.add_samples(vibration.generate(int(0.5 * FS), speed, 40.0, {'imbalance': 1.0}),
                                  vibration.shaft_hz(speed), 2.0)
    assert rough.state == 'learning' and rough.iso_zone == 'D' and rough.level == LEVEL_ERROR
    assert 'zone D' in rough.message


def _recording(path, seconds, faults, seed):
    model = GearboxModel(sample_rate_hz=FS, resonance_hz=0.3 * FS)
    vibration = GearboxVibration(model, np.random.default_rng(seed))
    np.save(path, vibration.generate(int(seconds * FS), 1.0, 40.0, faults))
    return vibration.shaft_hz(1.0)


def test_learn_a_baseline_then_rate_healthy_and_faulty_recordings(tmp_path, capsys):
    shaft_hz = _recording(tmp_path / 'healthy.npy', 12.0, {}, 1)
    common = ['--fs', FS, '--shaft-hz', shaft_hz, '--bearing', '6205']
    assert main([str(a) for a in [tmp_path / 'healthy.npy', *common, '--window-s', 0.5,
                                  '--learn-baseline', tmp_path / 'base.json']]) == 0
    learnt = json.loads(capsys.readouterr().out)
    assert learnt['windows'] == 24 and learnt['warning'] is None
    assert json.loads((tmp_path / 'base.json').read_text())['window_s'] == 0.5

    _recording(tmp_path / 'again.npy', 5.0, {}, 2)
    assert main([str(a) for a in [tmp_path / 'again.npy', *common, '--baseline', tmp_path / 'base.json']]) == 0
    healthy = json.loads(capsys.readouterr().out)
    assert healthy['summary']['levels']['ERROR'] == 0 and healthy['summary']['final_level'] == 'OK'
    assert healthy['rul']['rul_s'] is None and 'not enough trend' in healthy['rul']['reason']   # inf -> null

    _recording(tmp_path / 'faulty.npy', 5.0, {'outer_race': 0.5}, 3)
    assert main([str(a) for a in [tmp_path / 'faulty.npy', *common, '--baseline', tmp_path / 'base.json']]) == 0
    faulty = json.loads(capsys.readouterr().out)
    assert faulty['summary']['levels']['ERROR'] == len(faulty['windows']) == 10
    assert {w['fault'] for w in faulty['windows']} == {'outer_race'}


def test_a_baseline_is_refused_at_another_speed_or_when_malformed(tmp_path, capsys):
    shaft_hz = _recording(tmp_path / 'healthy.npy', 3.0, {}, 1)
    common = ['--fs', FS, '--bearing', '6205', '--window-s', 0.5]
    assert main([str(a) for a in [tmp_path / 'healthy.npy', *common, '--shaft-hz', shaft_hz,
                                  '--learn-baseline', tmp_path / 'base.json']]) == 0
    capsys.readouterr()
    assert main([str(a) for a in [tmp_path / 'healthy.npy', *common, '--shaft-hz', 1.5 * shaft_hz,
                                  '--baseline', tmp_path / 'base.json']]) == 2
    assert 'within 10%' in capsys.readouterr().err
    (tmp_path / 'bad.json').write_text('{"format": "smartcell-vibration-baseline/1", "baseline": {"names": ["a"]}}')
    assert main([str(a) for a in [tmp_path / 'healthy.npy', *common, '--shaft-hz', shaft_hz,
                                  '--baseline', tmp_path / 'bad.json']]) == 2
    assert 'malformed' in capsys.readouterr().err
    assert main([str(a) for a in [tmp_path / 'healthy.npy', '--fs', FS, '--window-s', 2.0,
                                  '--learn-baseline', tmp_path / 'b2.json']]) == 2
    assert 'at least 3' in capsys.readouterr().err
