"""Automatic demodulation band: the fast kurtogram finds the resonance the impacts ring."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import fft as sfft

from smartcell.core.sensors.kurtogram import _levels, choose_band, kurtogram
from smartcell.core.sensors.vibration import AnalysisConfig, BearingGeometry, diagnose, extract_features, \
    fault_frequencies


def test_band_grid_is_antonis_one_third_binary_tree():
    assert _levels(3) == [(0.0, 1), (1.0, 2), (1.6, 3), (2.0, 4), (2.6, 6), (3.0, 8)]


def test_spectral_kurtosis_of_gaussian_noise_is_near_zero_and_of_impacts_high():
    fs, n = 25600.0, 25600
    rng = np.random.default_rng(0)
    noise = kurtogram(sfft.rfft(rng.standard_normal(n)), n, fs, 400.0)
    # SK of a complex Gaussian band: mean 0, standard deviation 2 / sqrt(M) for M samples.
    assert max(abs(b[2]) * np.sqrt(b[3]) / 2.0 for row in noise.bands for b in row) < 5.0
    impulses = np.zeros(n)
    impulses[::256] = 1.0                      # 100 Hz impacts
    t = np.arange(400) / fs
    x = np.convolve(impulses, np.exp(-1500.0 * t) * np.sin(2 * np.pi * 9000.0 * t))[:n]
    x += 0.05 * rng.standard_normal(n)
    level, (lo, hi, sk, _) = kurtogram(sfft.rfft(x), n, fs, 400.0).best()
    assert lo <= 9000.0 <= hi and sk > 1.0


def test_noise_alone_keeps_the_default_band():
    fs, n = 12800.0, 12800
    chosen = 0
    for seed in range(30):
        x = np.random.default_rng(seed).standard_normal(n)
        choice = choose_band(sfft.rfft(x), n, fs, 200.0)
        chosen += choice.band_hz is not None
        assert choice.band_hz is not None or 'default band kept' in choice.reason
    assert chosen <= 1


FS = 6400.0
SHAFT_HZ = 5.1
BEARING = BearingGeometry(8, 7.94, 33.5)


def _inner_race_outside_the_default_band(seconds: float, seed: int = 1) -> np.ndarray:
    """The situation of the real recording in issue 15: inner-race impacts (BPFI ~ 25 Hz, modulated
    once a turn) ring a 2.9 kHz resonance, above the default band 512-2560 Hz, which holds strong
    broadband machinery noise below 2 kHz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    times = np.arange(0.0, seconds, 1.0 / fault_frequencies(BEARING, SHAFT_HZ).bpfi_hz)
    impulses = np.zeros(n)
    impulses[(times * FS).astype(int)] = 6.0 * (0.6 + 0.4 * np.cos(2 * np.pi * SHAFT_HZ * times))
    x = np.convolve(impulses, np.exp(-500.0 * t[:200]) * np.sin(2 * np.pi * 2900.0 * t[:200]))[:n]
    low = sfft.irfft(sfft.rfft(rng.standard_normal(n)) * (sfft.rfftfreq(n, 1 / FS) < 2000.0), n)
    return x + 2.0 * low + 0.3 * rng.standard_normal(n) + 0.8 * np.sin(2 * np.pi * 17 * SHAFT_HZ * t)


@pytest.mark.parametrize('seconds', [1.0, 4.0])
def test_kurtogram_band_finds_an_inner_race_fault_the_default_band_misses(seconds):
    x = _inner_race_outside_the_default_band(seconds)
    fixed = extract_features(x, FS, SHAFT_HZ, BEARING)
    assert diagnose(fixed).fault == 'healthy'                        # the miss reported in issue 15
    auto = extract_features(x, FS, SHAFT_HZ, BEARING, AnalysisConfig(envelope_band_hz='auto'))
    lo, hi = auto.envelope_band_hz
    assert lo <= 2900.0 <= hi
    assert auto.band_choice is not None and 'highest spectral kurtosis' in auto.band_choice.reason
    verdict = diagnose(auto)
    assert verdict.fault == 'inner_race' and verdict.confidence > 0.8
