"""Physics-based bearing-fault model, the ROC machinery (small N) and encoder order tracking."""
from __future__ import annotations

import math

import numpy as np
import pytest

from smartcell.core.sensors.vibration import (AnalysisConfig, GearboxMonitor, MonitorConfig, angle_window,
                                              bearing_preset, diagnose, extract_features, fault_frequencies)
from smartcell.core.sensors.vibration_validation import (choose_window, cycle_assessable_share, cycle_positions,
                                                         roc_markdown, roc_table)
from smartcell.twin.vibration_model import GearboxModel, GearboxVibration, bearing_fault_signal

FS = 12800.0


def test_fault_component_power_sets_the_snr():
    rng = np.random.default_rng(1)
    n = int(2 * FS)
    quiet = bearing_fault_signal('healthy', n, FS, 15.0, 0.0, rng, mesh_to_fault_db=-200.0)
    assert np.std(quiet) == pytest.approx(1.0, rel=0.02)             # noise alone at 0 dB: unit RMS
    loud = bearing_fault_signal('outer_race', n, FS, 15.0, 60.0, rng, mesh_to_fault_db=-200.0)
    assert np.std(loud) == pytest.approx(1.0, rel=0.02)             # fault alone at unit RMS


@pytest.mark.parametrize('fault,line,modulation', [('outer_race', 'bpfo_hz', None), ('inner_race', 'bpfi_hz', 'shaft'),
                                                   ('ball', 'bsf_hz', 'cage')])
def test_each_fault_shows_its_line_and_modulation_in_the_envelope(fault, line, modulation):
    bearing = bearing_preset('6205')
    freqs = fault_frequencies(bearing, 15.0)
    x = bearing_fault_signal(fault, int(4 * FS), FS, 15.0, 10.0, np.random.default_rng(2))
    f = extract_features(x, FS, 15.0, bearing, AnalysisConfig(envelope_band_hz=(2000.0, 4000.0)))
    assert diagnose(f).fault == fault
    rate = getattr(freqs, line) * (2.0 if fault == 'ball' else 1.0)
    from smartcell.core.sensors.vibration import envelope_spectrum
    env = envelope_spectrum(x, FS, (2000.0, 4000.0))
    floor = env.floor_near(rate)
    if modulation is not None:     # sidebands at +- the modulation rate around the defect line
        side = 15.0 if modulation == 'shaft' else freqs.ftf_hz
        assert env.amplitude_near(rate + side, 0.005) > 4.0 * floor
    else:
        assert env.amplitude_near(rate + 15.0, 0.005) < 4.0 * floor


def test_slip_makes_impact_intervals_vary_by_about_the_slip():
    x = bearing_fault_signal('outer_race', int(4 * FS), FS, 15.0, 40.0, np.random.default_rng(3), slip=0.015,
                             mesh_to_fault_db=-200.0, damping_ratio=0.2)
    peaks = np.flatnonzero((x[1:-1] > 0.5 * x.max()) & (x[1:-1] >= x[:-2]) & (x[1:-1] > x[2:])) + 1
    starts = peaks[np.concatenate(([True], np.diff(peaks) > 20))]
    intervals = np.diff(starts) / FS
    assert np.std(intervals) / np.mean(intervals) == pytest.approx(0.015, abs=0.006)


def test_small_roc_table_rises_with_snr_and_names_a_window():
    rows, curve = roc_table((-15.0, 0.0), (0.5,), n=6, seed=3)
    by = {(r.fault, r.snr_db): r for r in rows}
    for fault in ('outer_race', 'inner_race', 'ball'):
        assert by[(fault, 0.0)].detection == 1.0 and by[(fault, 0.0)].auc > 0.95
        assert by[(fault, -15.0)].detection < by[(fault, 0.0)].detection
    assert all(r.false_alarm == 0.0 for r in rows)
    assert choose_window(rows, 0.0) == 0.5 and choose_window(rows, -15.0) is None
    assert '| outer_race | 0.5 |' in roc_markdown(rows)
    assert sum(k for *_, k in curve) > 0


def test_order_tracking_from_the_encoder_assesses_a_window_the_speed_rule_rejects():
    """The shaft accelerates 3 -> 24 Hz within the window (variation 1.6 > 0.5): rejected by the speed rule,
    assessed (and the outer-race defect named) once resampled on the encoder angle."""
    model = GearboxModel(sample_rate_hz=FS)
    vibration = GearboxVibration(model, np.random.default_rng(4))
    chunk, chunks = 128, 100                               # 1 s
    joint_speeds = np.linspace(0.2, 1.5, chunks)          # rad/s at the joint
    x = np.concatenate([vibration.generate(chunk, v, 40.0, {'outer_race': 0.6}) for v in joint_speeds])
    shaft_hz = np.repeat([vibration.shaft_hz(v) for v in joint_speeds], chunk)
    angle = np.cumsum(shaft_hz) / FS
    config = MonitorConfig(sample_rate_hz=FS, window_s=1.0, bearing=model.bearing, baseline_windows=3,
                           max_speed_variation=0.5)
    plain = GearboxMonitor(config)
    [rejected] = plain.add_samples(x, float('nan'), 1.0)              # speed rule: no encoder
    assert rejected.state == 'idle'
    rejected_by_speed = GearboxMonitor(config)._assess(x, shaft_hz, 1.0, None)
    assert rejected_by_speed.state == 'idle' and 'varied' in rejected_by_speed.message
    tracked = GearboxMonitor(config)
    [assessed] = tracked.add_samples(x, float(shaft_hz.mean()), 1.0, angle)
    assert assessed.state == 'learning' and assessed.diagnosis.fault == 'outer_race'
    window = angle_window(x, angle, FS, 2.0)
    assert window.turns == pytest.approx(angle[-1] - angle[0], rel=0.01)
    assert window.mean_shaft_hz == pytest.approx(window.turns / (window.samples.size / FS), rel=1e-9)


def test_stops_are_cut_out_and_the_moving_parts_joined():
    angle = np.concatenate([np.linspace(0.0, 5.0, 6400), np.full(3200, 5.0), np.linspace(5.0, 1.0, 3200)])
    w = angle_window(np.random.default_rng(5).standard_normal(angle.size), angle, FS, 2.0)
    assert w.moving_fraction == pytest.approx(0.75, abs=0.01)
    assert w.turns == pytest.approx(9.0, rel=0.01)                 # 5 turns forward + 4 back, joined


def test_cycle_share_counts_more_windows_with_order_tracking():
    configurations = [np.zeros(6), np.full(6, 1.0)]
    positions = cycle_positions(configurations, 1000.0, cycles=3)
    shares = cycle_assessable_share(positions, 1000.0, 1.0)
    assert all(0.0 <= b <= 1.0 and 0.0 <= a <= 1.0 for b, a in shares)
    assert shares[0][1] > shares[0][0]
    assert math.isclose(shares[0][0], shares[5][0])                # same motion, same share
