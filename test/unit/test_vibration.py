"""Vibration analytics against signals whose answers are known by hand."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import pywt

from smartcell.core.sensors.vibration import (AnalysisConfig, BearingGeometry, HealthThresholds, amplitude_spectrum,
                                      bearing_preset, diagnose, envelope_spectrum, estimate_rul, extract_features,
                                      fault_frequencies, fit_baseline, time_features, wavelet_packet_energies)

FS = 25600.0


def _t(seconds: float, fs: float = FS) -> np.ndarray:
    return np.arange(int(seconds * fs)) / fs


@pytest.mark.parametrize('amplitude', [0.5, 1.0, 7.0])
def test_sine_rms_is_amplitude_over_root_two_and_crest_factor_root_two(amplitude):
    x = amplitude * np.sin(2 * np.pi * 100.0 * _t(1.0))
    f = time_features(x)
    assert f.rms == pytest.approx(amplitude / math.sqrt(2), rel=1e-6)
    assert f.crest_factor == pytest.approx(math.sqrt(2), rel=1e-4)
    assert f.peak_to_peak == pytest.approx(2 * amplitude, rel=1e-4)
    assert f.kurtosis == pytest.approx(1.5, rel=1e-3)          # a sine's Pearson kurtosis
    assert abs(f.skewness) < 1e-6


def test_gaussian_noise_kurtosis_is_three_and_skewness_zero():
    x = np.random.default_rng(3).standard_normal(200_000)
    f = time_features(x)
    assert f.kurtosis == pytest.approx(3.0, abs=0.05)
    assert abs(f.skewness) < 0.03
    assert f.rms == pytest.approx(1.0, rel=0.01)


def test_exponential_noise_is_skewed():
    x = np.random.default_rng(4).exponential(size=200_000)
    assert time_features(x).skewness == pytest.approx(2.0, rel=0.05)   # exponential: skewness 2


def test_amplitude_spectrum_reads_the_sine_amplitude_at_its_frequency():
    x = 3.0 * np.sin(2 * np.pi * 250.0 * _t(1.0)) + 0.5 * np.sin(2 * np.pi * 1000.0 * _t(1.0))
    s = amplitude_spectrum(x, FS)
    assert s.amplitude_near(250.0, 0.0) == pytest.approx(3.0, rel=1e-3)
    assert s.amplitude_near(1000.0, 0.0) == pytest.approx(0.5, rel=1e-3)
    f = extract_features(x, FS)
    assert [round(p[0]) for p in f.peaks[:2]] == [250, 1000]


def test_band_energies_sum_to_the_mean_square():
    rng = np.random.default_rng(5)
    x = np.sin(2 * np.pi * 50.0 * _t(1.0)) + 0.3 * rng.standard_normal(int(FS))
    f = extract_features(x, FS)
    # 0-100 Hz holds the 50 Hz line (mean square 0.5) and 100/12800 of the noise (0.09 in all).
    assert f.band_energies[0] == pytest.approx(0.5 + 0.09 * 100 / 12800, rel=0.01)
    assert sum(f.band_energies) == pytest.approx(0.5 + 0.09, rel=0.01)
    assert sum(f.band_energies) == pytest.approx(np.mean((x - x.mean()) ** 2), rel=0.01)


def test_impulse_train_gives_an_envelope_peak_at_its_rate():
    rate_hz = 87.0
    t = _t(1.0)
    impulses = np.zeros_like(t)
    impulses[(np.arange(0, 1.0, 1 / rate_hz) * FS).astype(int)] = 1.0
    ringing = np.exp(-t[:256] * 1500.0) * np.sin(2 * np.pi * 4000.0 * t[:256])   # 4 kHz resonance
    x = np.convolve(impulses, ringing)[:t.size] + 0.02 * np.random.default_rng(6).standard_normal(t.size)
    env = envelope_spectrum(x, FS, (2500.0, 6000.0))
    low = env.freqs_hz < 300.0
    peak_hz = env.freqs_hz[low][np.argmax(env.amplitude[low])]
    assert peak_hz == pytest.approx(rate_hz, abs=1.0)
    # The plain spectrum has no line there (the impacts live at 4 kHz).
    plain = amplitude_spectrum(x, FS)
    assert plain.amplitude_near(rate_hz, 0.01) < 0.2 * env.amplitude_near(rate_hz, 0.01)


def test_bearing_frequencies_of_a_6205_match_a_hand_calculation():
    # 6205: 9 balls, d = 7.94 mm, D = 39.04 mm, 0 deg; 1797 rpm (CWRU).  d/D = 0.20338
    fr = 1797 / 60.0
    f = fault_frequencies(bearing_preset('6205'), fr)
    assert f.bpfo_hz / fr == pytest.approx(3.5848, abs=1e-3)         # 9/2 (1 - 0.20338)
    assert f.bpfi_hz / fr == pytest.approx(5.4152, abs=1e-3)         # 9/2 (1 + 0.20338)
    assert f.ftf_hz / fr == pytest.approx(0.39831, abs=1e-3)         # 1/2 (1 - 0.20338)
    assert 2 * f.bsf_hz / fr == pytest.approx(4.7135, abs=2e-3)      # CWRU lists 2 x BSF
    assert f.bpfo_hz == pytest.approx(107.36, abs=0.02)
    assert f.bpfi_hz == pytest.approx(162.19, abs=0.02)


def test_contact_angle_lowers_the_outer_race_frequency_ratio_term():
    flat = fault_frequencies(BearingGeometry(9, 7.94, 39.04, 0.0), 30.0)
    angled = fault_frequencies(BearingGeometry(9, 7.94, 39.04, 40.0), 30.0)
    assert angled.bpfo_hz > flat.bpfo_hz and angled.bpfi_hz < flat.bpfi_hz
    assert angled.bpfo_hz + angled.bpfi_hz == pytest.approx(9 * 30.0)    # always n x fr


@pytest.mark.parametrize('bad', [dict(n_balls=2, ball_diameter_mm=5, pitch_diameter_mm=30),
                                 dict(n_balls=9, ball_diameter_mm=40, pitch_diameter_mm=30),
                                 dict(n_balls=9, ball_diameter_mm=5, pitch_diameter_mm=30, contact_angle_deg=95)])
def test_impossible_bearing_geometry_is_rejected(bad):
    with pytest.raises(ValueError, match='bearing'):
        BearingGeometry(**bad)


def test_unknown_bearing_preset_names_the_accepted_ones():
    with pytest.raises(ValueError, match='6205'):
        bearing_preset('9999')


def _bearing_signal(defect_hz: float, shaft_hz: float, modulate: bool, seconds: float = 1.0,
                    seed: int = 0) -> np.ndarray:
    """Impacts at `defect_hz` ringing a 5 kHz resonance, optionally amplitude-modulated by the shaft
    (an inner-race defect passes through the load zone once a turn), plus a shaft line and noise."""
    rng = np.random.default_rng(seed)
    t = _t(seconds)
    impulses = np.zeros_like(t)
    times = np.arange(0.0, seconds, 1.0 / defect_hz)
    idx = (times * FS).astype(int)
    gain = 1.0 + 0.8 * np.cos(2 * np.pi * shaft_hz * times) if modulate else np.ones_like(times)
    impulses[idx] = gain * (1.0 + 0.1 * rng.standard_normal(idx.size))
    kernel_t = t[:400]
    ringing = np.exp(-kernel_t * 1200.0) * np.sin(2 * np.pi * 5000.0 * kernel_t)
    x = 3.0 * np.convolve(impulses, ringing)[:t.size]
    return x + 0.3 * np.sin(2 * np.pi * shaft_hz * t) + 0.2 * rng.standard_normal(t.size)


@pytest.mark.parametrize('line,fault', [('bpfo', 'outer_race'), ('bpfi', 'inner_race')])
def test_amplitude_modulated_bearing_signal_reveals_the_right_fault_frequency(line, fault):
    bearing = bearing_preset('6205')
    shaft_hz = 29.95
    freqs = fault_frequencies(bearing, shaft_hz)
    defect_hz = freqs.bpfo_hz if line == 'bpfo' else freqs.bpfi_hz
    x = _bearing_signal(defect_hz, shaft_hz, modulate=(line == 'bpfi'))
    f = extract_features(x, FS, shaft_hz, bearing, AnalysisConfig(envelope_band_hz=(3000.0, 8000.0)))
    matches = {m.name: m for m in f.bearing}
    assert max(matches.values(), key=lambda m: m.prominence).name == line
    assert matches[line].prominence > 4.0
    verdict = diagnose(f)
    assert verdict.fault == fault
    assert 0.0 < verdict.confidence <= 1.0


def test_healthy_noise_is_diagnosed_healthy_without_a_baseline():
    x = np.random.default_rng(8).standard_normal(int(FS))
    f = extract_features(x, FS, 29.95, bearing_preset('6205'))
    assert diagnose(f).fault == 'healthy'


def test_nan_window_and_bad_rate_are_rejected_with_the_reason():
    x = np.ones(1000)
    x[3] = np.nan
    with pytest.raises(ValueError, match='NaN'):
        extract_features(x, FS)
    with pytest.raises(ValueError, match='sample rate'):
        extract_features(np.ones(1000), 0.0)
    with pytest.raises(ValueError, match='1-D'):
        extract_features(np.ones((10, 10)), FS)


def test_wavelet_packet_energies_follow_frequency_order_like_pywavelets():
    x = np.random.default_rng(9).standard_normal(4096) + np.sin(2 * np.pi * 0.3 * FS * _t(4096 / FS))
    ours = wavelet_packet_energies(x, 'db4', 3)
    tree = pywt.WaveletPacket(x, 'db4', 'periodization', 3)
    ref = np.array([float(n.data @ n.data) for n in tree.get_level(3, order='freq')])
    assert np.allclose(ours, ref / ref.sum())
    assert int(np.argmax(ours)) == 4           # 0.3 fs lies in band 4 of 8 (0.25-0.3125 fs)
    assert sum(ours) == pytest.approx(1.0)


def _windows(rng, n, amplitude_1x=0.5, shaft_hz=30.0):
    t = _t(0.25)
    out = []
    for _ in range(n):
        x = amplitude_1x * np.sin(2 * np.pi * shaft_hz * t + rng.uniform(0, 6.28)) + 0.3 * rng.standard_normal(t.size)
        out.append(extract_features(x, FS, shaft_hz, bearing_preset('6205')))
    return out


def test_health_index_is_near_one_when_healthy_and_rises_with_imbalance():
    rng = np.random.default_rng(10)
    healthy = _windows(rng, 30)
    baseline = fit_baseline([f.vector() for f in healthy], healthy[0].vector_names())
    fresh = _windows(rng, 10)
    his = [baseline.health_index(f.vector()) for f in fresh]
    assert max(his) < HealthThresholds().warn
    imbalanced = _windows(rng, 1, amplitude_1x=5.0)[0]
    assert baseline.health_index(imbalanced.vector()) > HealthThresholds().alarm
    verdict = diagnose(imbalanced, baseline)
    assert verdict.fault == 'imbalance'
    assert verdict.confidence > 0.5
    assert diagnose(fresh[0], baseline).fault == 'healthy'


def test_baseline_needs_enough_finite_windows():
    with pytest.raises(ValueError, match='at least 3'):
        fit_baseline([np.zeros(3), np.zeros(3)], ['a', 'b', 'c'])


def test_rul_of_an_exponential_trend_matches_the_closed_form():
    t = np.linspace(0.0, 100.0, 51)
    hi = 1.0 * np.exp(0.01 * t) * (1.0 + 0.01 * np.random.default_rng(11).standard_normal(t.size))
    rul = estimate_rul(t, hi, threshold=6.0)
    expected = math.log(6.0) / 0.01 - 100.0          # 179 s after the last point
    assert rul.rul_s == pytest.approx(expected, rel=0.05)
    assert rul.low_s < rul.rul_s < rul.high_s
    assert rul.high_s - rul.low_s < 0.3 * expected


def test_rul_of_a_linear_trend_and_of_a_flat_one():
    t = np.arange(20.0)
    rul = estimate_rul(t, 1.0 + 0.1 * t, threshold=4.0, model='linear')
    assert rul.rul_s == pytest.approx((4.0 - 2.9) / 0.1, rel=1e-6)
    flat = estimate_rul(t, 1.0 + 0.01 * np.sin(t), threshold=4.0)
    assert math.isinf(flat.rul_s) and 'no significant' in flat.reason
    over = estimate_rul(t, 1.0 + t, threshold=4.0)
    assert over.rul_s == 0.0


def test_core_imports_neither_rclpy_nor_pybullet():
    code = ('import sys, smartcell.core.sensors.vibration, smartcell.core.sensors.energy, '
            'smartcell.core.sensors.wearable, '
            'smartcell.core.sensors.params, smartcell.twin.vibration_model, smartcell.twin.energy_model; '
            'print(sorted(m for m in ("rclpy", "pybullet") if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]'
