"""Fast kurtogram (Antoni 2007): the frequency band where a signal is most impulsive.

Bearing impacts ring a structural resonance; in that band the signal is a train of short bursts
(high kurtosis), elsewhere it is dominated by Gaussian-like noise and steady lines (kurtosis of the
complex envelope near 0). The envelope spectrum taken in that band shows the defect rate clearly;
taken in a fixed band that misses the resonance it may not (see docs/sensors.md, "Envelope band").

J. Antoni, "Fast computation of the kurtogram for the detection of transient faults",
Mechanical Systems and Signal Processing 21 (2007) 108-124. The band grid is his 1/3-binary
tree: level k splits [0, fs/2] into 2^k bands, level k + 0.6 into 3 x 2^(k-1) bands. Antoni
computes the band signals with a tree of quasi-analytic FIR filters; here each band's complex
envelope is taken directly from the window's real FFT (the bins of the band, shifted to 0 Hz and
inverse transformed: an ideal band-pass, critically sampled), which gives the same quantity,
spectral kurtosis SK = E|c|^4 / (E|c|^2)^2 - 2 of the band's complex envelope c, with one batched
inverse FFT per level and no filter design. No maintained PyPI package provides it (the
package lists hold none; a few unmaintained scripts copy Antoni's MATLAB code).

SK of a complex Gaussian band is 0 with a standard deviation of about 2 / sqrt(M) for M envelope
samples; a band is only chosen when its SK stands `z` of those above 0, otherwise the caller keeps
its default band (a healthy machine then keeps one comparable band from window to window).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft


@dataclass(frozen=True)
class BandChoice:
    """The band the kurtogram chose (or why it did not)."""

    band_hz: tuple[float, float] | None   # None: no band significantly impulsive
    level: float                          # tree level (0, 1, 1.6, 2, 2.6, ...), NaN if none
    spectral_kurtosis: float              # SK of the chosen (or best) band, 0 for Gaussian noise
    threshold: float                      # SK the best band had to reach (z x 2 / sqrt(M))
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {'method': 'fast kurtogram (Antoni 2007)',
                'band_hz': None if self.band_hz is None else list(self.band_hz),
                'level': self.level, 'spectral_kurtosis': self.spectral_kurtosis, 'threshold': self.threshold,
                'reason': self.reason}


@dataclass(frozen=True)
class Kurtogram:
    """SK of every band of the 1/3-binary tree: rows = levels, one (low Hz, high Hz, SK, M) per band."""

    levels: tuple[float, ...]
    bands: tuple[tuple[tuple[float, float, float, int], ...], ...]

    def best(self) -> tuple[float, tuple[float, float, float, int]]:
        """(level, band) with the largest SK significance (SK x sqrt(M) / 2)."""
        return max(((lvl, b) for lvl, row in zip(self.levels, self.bands) for b in row),
                   key=lambda lb: lb[1][2] * math.sqrt(lb[1][3]) / 2.0)


def _levels(max_level: int) -> list[tuple[float, int]]:
    """(level, number of bands) of the 1/3-binary tree up to `max_level`: 0:1, 1:2, 1.6:3, 2:4, 2.6:6, ..."""
    out = [(0.0, 1)]
    for k in range(1, max_level + 1):
        out.append((float(k), 2 ** k))
        if k < max_level:
            out.append((k + 0.6, 3 * 2 ** (k - 1)))
    return out


def kurtogram(raw: np.ndarray, n: int, sample_rate_hz: float, min_bandwidth_hz: float,
              max_level: int = 8) -> Kurtogram:
    """Kurtogram of a window from its rfft `raw` (n samples); bands narrower than `min_bandwidth_hz`
    (the envelope spectrum must still reach the defect harmonics) are not computed."""
    nyquist_bins = raw.size - 1             # bins 1 .. raw.size-1 cover (0, fs/2]
    levels, rows = [], []
    for level, count in _levels(max_level):
        width = nyquist_bins // count
        if width < 16 or width * sample_rate_hz / n < min_bandwidth_hz:
            continue
        block = raw[1:1 + count * width].reshape(count, width).astype(np.complex64, copy=False)
        envelope = sfft.ifft(block, axis=1, workers=1)     # complex64: SK needs no more precision
        power = envelope.real ** 2 + envelope.imag ** 2
        m2 = power.mean(axis=1)
        m4 = (power * power).mean(axis=1)
        sk = np.where(m2 > 0.0, m4 / np.maximum(m2 * m2, 1e-300) - 2.0, 0.0)
        df = sample_rate_hz / n
        rows.append(tuple((float((1 + i * width) * df), float((1 + (i + 1) * width) * df), float(sk[i]), width)
                          for i in range(count)))
        levels.append(level)
    return Kurtogram(tuple(levels), tuple(rows))


def choose_band(raw: np.ndarray, n: int, sample_rate_hz: float, min_bandwidth_hz: float, z: float = 6.0,
                max_level: int = 8) -> BandChoice:
    """The most impulsive band, if its SK is significant (SK > z x 2 / sqrt(M)); else band None."""
    grid = kurtogram(raw, n, sample_rate_hz, min_bandwidth_hz, max_level)
    if not grid.levels:
        return BandChoice(None, math.nan, math.nan, math.nan,
                          f'window too short for a {min_bandwidth_hz:.0f} Hz wide band: default band kept')
    level, (lo, hi, sk, m) = grid.best()
    threshold = z * 2.0 / math.sqrt(m)
    if sk <= threshold:
        return BandChoice(None, level, sk, threshold,
                          f'no impulsive band (best SK {sk:.2f} at {lo:.0f}-{hi:.0f} Hz, level {level:g}, '
                          f'below {threshold:.2f} = {z:g} sigma of Gaussian noise): default band kept')
    return BandChoice((lo, hi), level, sk, threshold,
                      f'highest spectral kurtosis {sk:.2f} at level {level:g} (> {threshold:.2f} = {z:g} sigma '
                      'of Gaussian noise)')
