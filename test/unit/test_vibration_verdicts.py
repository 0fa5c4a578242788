"""Honest verdicts: no speed means no bearing verdict; one defect's harmonics are one match."""
from __future__ import annotations

import numpy as np
import pytest

from smartcell.core.sensors.vibration import (AnalysisConfig, Spectrum, attribute_lines, bearing_preset, condition,
                                              diagnose, extract_features, fault_frequencies)

FS = 25600.0


def _impacts(rate_hz: float, seconds: float = 1.0, amplitude: float = 3.0, noise: float = 0.2,
             seed: int = 0) -> np.ndarray:
    """Impacts at `rate_hz` ringing a 5 kHz resonance, in noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    impulses = np.zeros(n)
    impulses[(np.arange(0.0, seconds, 1.0 / rate_hz) * FS).astype(int)] = 1.0
    ringing = np.exp(-t[:400] * 1200.0) * np.sin(2 * np.pi * 5000.0 * t[:400])
    return amplitude * np.convolve(impulses, ringing)[:n] + noise * rng.standard_normal(n)


def test_without_a_speed_bearing_lines_are_not_assessed_but_the_condition_is_reported():
    x = _impacts(107.4)
    f = extract_features(x, FS)                     # no speed, no bearing
    assert f.time.kurtosis > 6.0                    # clearly impulsive
    verdict = diagnose(f)
    assert verdict.fault == 'not_assessed'
    assert verdict.note == 'unknown speed: bearing lines not assessed'
    assert verdict.condition.severity == 'high'
    assert verdict.condition.envelope_peak_hz == pytest.approx(107.4, abs=1.5)   # what repeats, in Hz
    assert verdict.confidence == 0.0


def test_gaussian_noise_has_normal_condition_indicators():
    f = extract_features(np.random.default_rng(1).standard_normal(int(FS)), FS)
    c = condition(f)
    assert c.severity == 'normal', c.reasons
    assert diagnose(f).fault == 'not_assessed'


def test_impulsive_signal_with_no_known_line_is_unknown_not_healthy():
    bearing = bearing_preset('6205')
    # Impacts at 67 Hz: no bearing line of a 6205 turning at 29.95 Hz (BPFO 107, BPFI 162, 2xBSF 141).
    f = extract_features(_impacts(67.0), FS, 29.95, bearing)
    verdict = diagnose(f)
    assert verdict.fault == 'unknown' and verdict.condition.severity == 'high'


def _spectrum_with_lines(lines_hz, amplitude=1.0, resolution_hz=0.5, top_hz=1000.0, seed=2):
    freqs = np.arange(0.0, top_hz, resolution_hz)
    amp = 0.01 * (1.0 + 0.1 * np.random.default_rng(seed).standard_normal(freqs.size)) ** 2
    for f0 in lines_hz:
        for k in range(1, 8):
            amp[int(round(k * f0 / resolution_hz))] = amplitude / k
    return Spectrum(freqs, amp)


def test_a_line_whose_harmonics_are_another_lines_harmonics_is_not_a_separate_match():
    spectrum = _spectrum_with_lines([50.0])                       # one defect at 50 Hz (+ harmonics)
    a, b = attribute_lines(spectrum, [('a', 50.0), ('b', 100.0)], 0.02, 3, 4.0)
    assert a.matched and a.prominence > 10.0
    assert b.raw_prominence > 10.0                                # every harmonic of b is there...
    assert not b.matched and b.explained_by == 'a' and b.prominence == 0.0   # ...and all are a's


def test_two_real_defects_at_unrelated_frequencies_both_match():
    spectrum = _spectrum_with_lines([50.0, 73.0])
    a, b = attribute_lines(spectrum, [('a', 50.0), ('b', 73.0)], 0.02, 3, 4.0)
    assert a.matched and b.matched and not a.explained_by and not b.explained_by


def test_outer_race_third_harmonic_does_not_make_an_inner_race_match():
    # For a 6205, 3 x BPFO = 10.75 x shaft and 2 x BPFI = 10.83 x shaft lie within the 2 % search
    # width of each other: an outer-race defect lifts BPFI's 2nd harmonic; that is BPFO's.
    bearing = bearing_preset('6205')
    shaft_hz = 29.95
    x = _impacts(fault_frequencies(bearing, shaft_hz).bpfo_hz, amplitude=3.0, noise=0.3)
    f = extract_features(x, FS, shaft_hz, bearing, AnalysisConfig(envelope_band_hz=(3000.0, 8000.0)))
    lines = {m.name: m for m in f.bearing}
    assert lines['bpfo'].matched
    assert not lines['bpfi'].matched
    assert lines['bpfi'].raw_prominence >= 4.0     # the old rule called this a match
    assert lines['bpfi'].explained_by == 'bpfo'
    assert [m.name for m in f.bearing if m.matched] == ['bpfo']
    assert diagnose(f).fault == 'outer_race'
