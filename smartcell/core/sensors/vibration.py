"""Vibration analytics for gearbox and bearing condition monitoring (numpy, scipy.fft, pywavelets).

One window of accelerometer samples (any sample rate) becomes a `VibrationFeatures`: time-domain
statistics, spectrum band energies and dominant peaks, the envelope spectrum with amplitudes at
the bearing defect frequencies and shaft harmonics, and wavelet-packet band energies. A
`HealthBaseline` learnt on healthy windows turns features into a health index (normalised
Mahalanobis distance, about 1 when healthy); `diagnose` names the likely fault with a confidence;
`estimate_rul` extrapolates the health-index trend to a threshold.

Units: acceleration in the unit of the input (m/s^2 in smartcell), frequency in Hz, time in s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np
import pywt
from scipy import fft as sfft

from smartcell.core.sensors.kurtogram import BandChoice, choose_band
from smartcell.core.sensors.vibration_calibration import CONFIDENCE_CALIBRATION

# ---------------------------------------------------------------------------------------------
# Bearing kinematics


@dataclass(frozen=True)
class BearingGeometry:
    """Rolling-element bearing geometry for the defect frequency formulas."""

    n_balls: int
    ball_diameter_mm: float
    pitch_diameter_mm: float
    contact_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        if self.n_balls < 3:
            raise ValueError(f'bearing n_balls must be >= 3, got {self.n_balls}')
        if not 0.0 < self.ball_diameter_mm < self.pitch_diameter_mm:
            raise ValueError('bearing needs 0 < ball_diameter_mm < pitch_diameter_mm, got '
                             f'{self.ball_diameter_mm} and {self.pitch_diameter_mm}')
        if not 0.0 <= self.contact_angle_deg < 90.0:
            raise ValueError(f'bearing contact_angle_deg must be in [0, 90), got {self.contact_angle_deg}')


# Deep-groove ball bearings; 6205-2RS JEM SKF is the drive-end bearing of the CWRU data set.
BEARING_PRESETS: dict[str, BearingGeometry] = {
    '6205': BearingGeometry(n_balls=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04),
    '6203': BearingGeometry(n_balls=8, ball_diameter_mm=6.75, pitch_diameter_mm=28.50),
    '6204': BearingGeometry(n_balls=8, ball_diameter_mm=7.94, pitch_diameter_mm=33.50),
    '6206': BearingGeometry(n_balls=9, ball_diameter_mm=9.53, pitch_diameter_mm=46.00),
}


def bearing_preset(name: str) -> BearingGeometry:
    try:
        return BEARING_PRESETS[name]
    except KeyError:
        raise ValueError(f'unknown bearing preset {name!r}; accepted: {", ".join(sorted(BEARING_PRESETS))}') from None


@dataclass(frozen=True)
class FaultFrequencies:
    """Characteristic frequencies in Hz for one shaft speed (inner ring rotating, outer fixed)."""

    shaft_hz: float
    ftf_hz: float    # fundamental train (cage) frequency
    bsf_hz: float    # ball spin frequency (a ball defect shows at 2 x BSF, hitting both races)
    bpfo_hz: float   # ball pass frequency, outer race
    bpfi_hz: float   # ball pass frequency, inner race

    def as_dict(self) -> dict[str, float]:
        return {'shaft_hz': self.shaft_hz, 'ftf_hz': self.ftf_hz, 'bsf_hz': self.bsf_hz,
                'bpfo_hz': self.bpfo_hz, 'bpfi_hz': self.bpfi_hz}


def fault_frequencies(bearing: BearingGeometry, shaft_hz: float) -> FaultFrequencies:
    """Classical kinematic formulas (no slip): Harris, Rolling Bearing Analysis."""
    ratio = bearing.ball_diameter_mm / bearing.pitch_diameter_mm * math.cos(math.radians(bearing.contact_angle_deg))
    n = bearing.n_balls
    return FaultFrequencies(
        shaft_hz=shaft_hz,
        ftf_hz=shaft_hz / 2.0 * (1.0 - ratio),
        bsf_hz=shaft_hz * bearing.pitch_diameter_mm / (2.0 * bearing.ball_diameter_mm) * (1.0 - ratio ** 2),
        bpfo_hz=shaft_hz * n / 2.0 * (1.0 - ratio),
        bpfi_hz=shaft_hz * n / 2.0 * (1.0 + ratio))


# ---------------------------------------------------------------------------------------------
# Configuration and results


# ISO 20816-1:2016 Annex B keeps the zone boundaries of ISO 10816-1 Annex B as typical values;
# class I (small machines, motors up to 15 kW, which a cobot joint drive is): A/B, B/C, C/D in mm/s
# velocity RMS 10-1000 Hz. Other classes: II (1.12, 2.8, 7.1), III (1.8, 4.5, 11.2), IV (2.8, 7.1, 18).
ISO_CLASS_I_MM_S = (0.71, 1.8, 4.5)
ISO_ZONES = ('A', 'B', 'C', 'D')
ISO_ZONE_MEANING = {'A': 'newly commissioned machine', 'B': 'acceptable for unrestricted long-term operation',
                    'C': 'unsatisfactory for long-term continuous operation', 'D': 'severe enough to cause damage'}


@dataclass(frozen=True)
class AnalysisConfig:
    """How a window is analysed. Band edges in Hz; `None` band = [0.08, 0.40] x sample rate;
    'auto' = the fast kurtogram's most impulsive band when significant, else that default."""

    band_edges_hz: tuple[float, ...] = (0.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0)
    envelope_band_hz: tuple[float, float] | str | None = None
    # 'shannon': 2**level ideal (sinc-wavelet) packet bands summed from the window's one rfft;
    # a pywavelets name ('db4', ...) runs the packet tree in time (about 0.4 ms more per 1 s window).
    wavelet: str = 'shannon'
    wavelet_level: int = 3               # 2**level packet bands
    harmonic_tolerance: float = 0.02     # relative search width around a frequency (speed error)
    bearing_harmonics: int = 3           # defect harmonics summed in the envelope spectrum
    n_peaks: int = 5
    match_threshold: float = 4.0         # prominence of a line that counts as present
    kurtogram_z: float = 6.0             # SK significance for 'auto' (false band choice < 0.5 % on noise)
    velocity_band_hz: tuple[float, float] = (10.0, 1000.0)    # ISO 20816-1 broadband velocity
    iso_zone_boundaries_mm_s: tuple[float, float, float] = ISO_CLASS_I_MM_S
    # float32 spectra: rounding 1e-7 relative, far below any line or floor we compare (and ~2x faster).
    fft_float32: bool = True

    def __post_init__(self) -> None:
        b = self.iso_zone_boundaries_mm_s
        if len(b) != 3 or not 0.0 < b[0] < b[1] < b[2]:
            raise ValueError(f'ISO zone boundaries A/B, B/C, C/D must be 3 increasing mm/s values, got {b}')
        if isinstance(self.envelope_band_hz, str) and self.envelope_band_hz != 'auto':
            raise ValueError(f"envelope band must be [low, high] Hz, None or 'auto', got {self.envelope_band_hz!r}")

    def envelope_band(self, sample_rate_hz: float) -> tuple[float, float]:
        """The fixed band (the default one for 'auto')."""
        if self.envelope_band_hz is None or self.envelope_band_hz == 'auto':
            return 0.08 * sample_rate_hz, 0.40 * sample_rate_hz
        lo, hi = (float(v) for v in self.envelope_band_hz)
        if not 0.0 <= lo < hi <= sample_rate_hz / 2.0:
            raise ValueError(f'envelope band {self.envelope_band_hz} Hz must satisfy 0 <= low < high <= '
                             f'Nyquist ({sample_rate_hz / 2.0:g} Hz)')
        return lo, hi


@dataclass(frozen=True)
class Spectrum:
    """Single-sided amplitude spectrum: a sine of amplitude A shows a peak of about A at its frequency."""

    freqs_hz: np.ndarray
    amplitude: np.ndarray
    resolution_hz: float = field(init=False)    # Hz per bin (looked up ~30 times per window: stored)

    def __post_init__(self) -> None:
        df = float(self.freqs_hz[1] - self.freqs_hz[0]) if len(self.freqs_hz) > 1 else math.inf
        object.__setattr__(self, 'resolution_hz', df)

    def amplitude_near(self, freq_hz: float, tolerance: float) -> float:
        """Largest amplitude within +-max(tolerance x f, 1 bin) of `freq_hz`; 0 beyond the spectrum."""
        if not 0.0 < freq_hz < self.freqs_hz[-1]:
            return 0.0
        df = self.resolution_hz
        width = max(tolerance * freq_hz, df)
        lo = max(int(math.floor((freq_hz - width) / df)), 0)
        hi = min(int(math.ceil((freq_hz + width) / df)) + 1, len(self.amplitude))
        return float(self.amplitude[lo:hi].max())

    def floor_near(self, freq_hz: float, span: float = 0.25) -> float:
        """Median amplitude over +-span x f around `freq_hz`: the local noise floor for a prominence."""
        df = self.resolution_hz
        width = max(span * freq_hz, 10 * df)
        lo = max(int((freq_hz - width) / df), 1)
        hi = min(int((freq_hz + width) / df) + 1, len(self.amplitude))
        if hi <= lo:
            return 0.0
        values = self.amplitude[lo:hi]
        return float(np.partition(values, values.size // 2)[values.size // 2])   # median, cheaper


@dataclass(frozen=True)
class TimeFeatures:
    rms: float             # input unit (m/s^2)
    peak: float            # max |x|
    peak_to_peak: float
    crest_factor: float    # peak / rms, dimensionless; sine sqrt(2), Gaussian ~3-4, impacts > 5
    kurtosis: float        # Pearson (not excess): Gaussian 3, impulsive > 3
    skewness: float
    mean: float


@dataclass(frozen=True)
class FrequencyMatch:
    """Amplitude found at one characteristic frequency and how far it stands out of the floor.

    Bearing lines are attributed exclusively: harmonics of a line that fall on a harmonic of a
    stronger, matched line are that line's, so `prominence` averages only the harmonics left to
    this line (`raw_prominence`: all of them) and `explained_by` names the stronger line.
    """

    name: str
    freq_hz: float
    amplitude: float       # in the spectrum it was looked for (envelope or plain), input unit
    prominence: float      # amplitude / local median floor (dimensionless, >= 4 ~ clear line)
    raw_prominence: float = math.nan
    matched: bool = False  # prominence >= AnalysisConfig.match_threshold
    explained_by: str = ''

    def as_dict(self) -> dict[str, object]:
        return {'name': self.name, 'freq_hz': self.freq_hz, 'amplitude': self.amplitude,
                'prominence': self.prominence, 'raw_prominence': self.raw_prominence, 'matched': self.matched,
                'explained_by': self.explained_by or None}


@dataclass(frozen=True)
class VibrationFeatures:
    """Everything extracted from one window. `vector()` gives the numbers a baseline is fitted on."""

    sample_rate_hz: float
    n_samples: int
    time: TimeFeatures
    band_energies: tuple[float, ...]              # mean-square per band of AnalysisConfig.band_edges_hz
    peaks: tuple[tuple[float, float], ...]        # (freq Hz, amplitude), largest first
    wavelet_energies: tuple[float, ...]           # fraction of energy per packet band, low to high
    envelope_band_hz: tuple[float, float]
    shaft: tuple[FrequencyMatch, ...] = ()        # 0.5x, 1x, 2x, 3x ... in the plain spectrum
    bearing: tuple[FrequencyMatch, ...] = ()      # ftf, bsf, bpfo, bpfi in the envelope spectrum
    fault_freqs: FaultFrequencies | None = None
    velocity_rms_mm_s: float = math.nan           # ISO 20816-1 broadband velocity RMS (10-1000 Hz)
    envelope_peaks: tuple[tuple[float, float, float], ...] = ()   # (freq Hz, amplitude, prominence)
    band_choice: BandChoice | None = None         # why this envelope band ('auto' only)
    order_tracked: bool = False                   # frequencies are shaft orders x mean speed

    def vector(self) -> np.ndarray:
        """Baseline features: logs of amplitudes (they change multiplicatively), shape statistics as is."""
        t = self.time
        values = [math.log(max(t.rms, _TINY)), math.log(max(t.peak, _TINY)), t.crest_factor, t.kurtosis,
                  t.skewness]
        values += [math.log(max(e, _TINY)) for e in self.band_energies]
        values += [math.log(max(m.amplitude, _TINY)) for m in self.shaft]
        values += [math.log(max(m.amplitude, _TINY)) for m in self.bearing]
        return np.asarray(values, dtype=float)

    def vector_names(self) -> tuple[str, ...]:
        names = ['log_rms', 'log_peak', 'crest_factor', 'kurtosis', 'skewness']
        names += [f'log_band_energy_{i}' for i in range(len(self.band_energies))]
        names += [f'log_shaft_{m.name}' for m in self.shaft]
        names += [f'log_env_{m.name}' for m in self.bearing]
        return tuple(names)

    def summary(self) -> dict[str, object]:
        """JSON-ready dictionary with units in the keys."""
        t = self.time
        out: dict[str, object] = {
            'rms': t.rms, 'peak': t.peak, 'peak_to_peak': t.peak_to_peak, 'crest_factor': t.crest_factor,
            'kurtosis': t.kurtosis, 'skewness': t.skewness, 'mean': t.mean,
            'band_energies_ms': list(self.band_energies),
            'dominant_peaks_hz_amplitude': [list(p) for p in self.peaks],
            'wavelet_energy_fractions': list(self.wavelet_energies),
            'envelope_band_hz': list(self.envelope_band_hz),
            'velocity_rms_mm_s': self.velocity_rms_mm_s,
            'envelope_peaks_hz_amplitude_prominence': [list(p) for p in self.envelope_peaks],
        }
        if self.band_choice is not None:
            out['envelope_band_choice'] = self.band_choice.as_dict()
        if self.fault_freqs is not None:
            out['fault_frequencies_hz'] = self.fault_freqs.as_dict()
        out['shaft_harmonics'] = [m.as_dict() for m in self.shaft]
        out['bearing_envelope'] = [m.as_dict() for m in self.bearing]
        return out


_TINY = 1e-12
_HANN_ENBW_BINS = 1.5

# Shaft orders looked at in the plain spectrum: sub-harmonic and half orders for looseness,
# 1x imbalance, 2x misalignment, 3x-4x looseness / misalignment.
SHAFT_ORDERS: tuple[tuple[str, float], ...] = (
    ('0.5x', 0.5), ('1x', 1.0), ('1.5x', 1.5), ('2x', 2.0), ('2.5x', 2.5), ('3x', 3.0), ('4x', 4.0))
BEARING_LINES = ('ftf', 'bsf', 'bpfo', 'bpfi')


# ---------------------------------------------------------------------------------------------
# Feature extraction


def validate_window(samples: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """A 1-D finite float array of at least 16 samples, or ValueError naming what is wrong."""
    x = np.asarray(samples, dtype=float)
    if x.ndim != 1:
        raise ValueError(f'vibration window must be 1-D, got shape {x.shape}')
    if x.size < 16:
        raise ValueError(f'vibration window needs at least 16 samples, got {x.size}')
    if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0.0):
        raise ValueError(f'sample rate must be a positive number of Hz, got {sample_rate_hz!r}')
    if not np.isfinite(x).all():
        raise ValueError(f'vibration window holds {int((~np.isfinite(x)).sum())} NaN/inf samples')
    return x


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum, not BLAS: a threaded BLAS wakes its worker threads for every 1-D dot product, which
    # costs more than the product itself on a loaded or single-core machine (measured 10x slower).
    return float(np.einsum('i,i->', a, b))


def time_features(x: np.ndarray) -> TimeFeatures:
    mean = float(x.mean())
    centred = x - mean
    m2 = _dot(centred, centred) / x.size
    rms = math.sqrt(_dot(x, x) / x.size)
    top, bottom = float(x.max()), float(x.min())
    peak = max(top, -bottom)
    if m2 <= 0.0:
        skewness, kurtosis = 0.0, 0.0
    else:
        sq = centred * centred
        skewness = _dot(sq, centred) / x.size / m2 ** 1.5
        kurtosis = _dot(sq, sq) / x.size / m2 ** 2
    return TimeFeatures(rms=rms, peak=peak, peak_to_peak=top - bottom,
                        crest_factor=peak / rms if rms > 0.0 else 0.0, kurtosis=kurtosis, skewness=skewness,
                        mean=mean)


def _raw_spectrum(x: np.ndarray, float32: bool = False) -> np.ndarray:
    """rfft of the window with its mean removed; every spectrum of the window derives from it (one FFT)."""
    spectrum = sfft.rfft(x.astype(np.float32) if float32 else x, workers=1)
    spectrum[0] = 0.0
    return spectrum


def _hann_amplitude(raw: np.ndarray, n: int) -> np.ndarray:
    """Amplitude of the periodic-Hann-windowed spectrum from the raw one.

    Multiplying by w = 0.5 - 0.5 cos(2 pi k / n) in time is the 3-tap convolution
    0.5 X[k] - 0.25 (X[k-1] + X[k+1]) in frequency: no second FFT. Neighbours beyond the
    ends are the conjugate-symmetric bins of the full spectrum.
    """
    last_neighbour = np.conj(raw[-2]) if n % 2 == 0 else np.conj(raw[-1])
    padded = np.concatenate((np.conj(raw[1:2]), raw, [last_neighbour]))
    windowed = 0.5 * raw - 0.25 * (padded[:-2] + padded[2:])
    return np.abs(windowed) * (4.0 / n)        # 2 (single-sided) / coherent gain (n / 2)


def amplitude_spectrum(x: np.ndarray, sample_rate_hz: float) -> Spectrum:
    """Hann-windowed single-sided amplitude spectrum, corrected for the window's coherent gain."""
    return Spectrum(sfft.rfftfreq(x.size, 1.0 / sample_rate_hz), _hann_amplitude(_raw_spectrum(x), x.size))


def envelope_spectrum(x: np.ndarray, sample_rate_hz: float, band_hz: tuple[float, float],
                      raw: np.ndarray | None = None) -> Spectrum:
    """Amplitude spectrum of the envelope of `x` band-passed to `band_hz` (the resonance the impacts excite).

    Band-pass and Hilbert transform are one step in the frequency domain: the positive-frequency
    bins inside the band, doubled, are the analytic signal of the band. Its magnitude does not
    change when the band is shifted to 0 Hz, so the inverse FFT runs at baseband on 1.5 x the
    band's bin count (the envelope is exact up to half the band width) instead of the full window.
    The result has the window's frequency resolution and reaches half the band width.
    """
    n = x.size
    raw = _raw_spectrum(x) if raw is None else raw
    df = sample_rate_hz / n
    lo = max(int(math.ceil(band_hz[0] / df)), 1)
    hi = min(int(math.floor(band_hz[1] / df)) + 1, raw.size)
    if hi - lo < 8:
        raise ValueError(f'envelope band {band_hz} Hz holds only {max(hi - lo, 0)} bins at {df:g} Hz resolution; '
                         'widen the band or use a longer window')
    m = sfft.next_fast_len(int(1.5 * (hi - lo)) + 1, real=True)
    baseband = np.zeros(m, dtype=raw.dtype)
    baseband[:hi - lo] = raw[lo:hi] * (2.0 * m / n)
    envelope = np.abs(sfft.ifft(baseband, workers=1))
    envelope_raw = sfft.rfft(envelope, workers=1)
    envelope_raw[0] = 0.0
    return Spectrum(sfft.rfftfreq(m, 1.0 / (m * df)), _hann_amplitude(envelope_raw, m))


def band_energies(spectrum: Spectrum, edges_hz: Sequence[float]) -> tuple[float, ...]:
    """Mean-square signal per band [edge_i, edge_i+1) from the Hann amplitude spectrum (Parseval).

    A line of amplitude A carries A^2/2 of mean square, but the Hann window spreads it over bins
    whose squares sum to 1.5 x its peak^2 (equivalent noise bandwidth 1.5 bins): divide by 1.5,
    which also makes broadband noise come out right.
    """
    power = spectrum.amplitude * spectrum.amplitude
    idx = np.searchsorted(spectrum.freqs_hz, edges_hz)
    out = []
    for a, b in zip(idx[:-1], idx[1:]):
        out.append(float(np.add.reduce(power[a:b], dtype=np.float64)) / (2.0 * _HANN_ENBW_BINS) if b > a else 0.0)
    return tuple(out)


def dominant_peaks(spectrum: Spectrum, count: int) -> tuple[tuple[float, float], ...]:
    """The `count` largest local maxima (freq Hz, amplitude), largest first."""
    a = spectrum.amplitude
    if a.size < 3:
        return ()
    is_peak = np.flatnonzero((a[1:-1] > a[:-2]) & (a[1:-1] >= a[2:])) + 1
    if is_peak.size == 0:
        return ()
    if is_peak.size > count:
        is_peak = is_peak[np.argpartition(a[is_peak], -count)[-count:]]
    top = is_peak[np.argsort(a[is_peak])[::-1]]
    return tuple((float(spectrum.freqs_hz[i]), float(a[i])) for i in top)


def wavelet_packet_energies(x: np.ndarray, wavelet: str = 'db4', level: int = 3) -> tuple[float, ...]:
    """Fraction of signal energy in each of the 2**level wavelet-packet bands, in frequency order.

    A full packet tree by repeated single-level DWTs (the tree object of pywt costs more than the
    transforms). Natural order is not frequency order: a high-pass branch mirrors the spectrum,
    so band k of frequency order is node k XOR (k >> 1) (Gray code) of natural order.
    """
    nodes = [x]
    for _ in range(level):
        nodes = [part for node in nodes for part in pywt.dwt(node, wavelet, mode='periodization')]
    natural = np.array([_dot(node, node) for node in nodes])
    energies = natural[[k ^ (k >> 1) for k in range(len(natural))]]
    total = energies.sum()
    return tuple((energies / total).tolist()) if total > 0.0 else tuple([0.0] * len(energies))


def shannon_packet_energies(raw: np.ndarray, level: int = 3) -> tuple[float, ...]:
    """Fraction of energy in 2**level equal frequency bands, from the window's rfft (Parseval).

    This is the wavelet-packet decomposition with the Shannon (sinc) wavelet, whose packets are
    ideal band-passes: the same bands as `wavelet_packet_energies`, without leakage between them,
    and no transform beyond the FFT every other feature shares.
    """
    power = raw.real * raw.real + raw.imag * raw.imag
    edges = np.linspace(0, power.size, 2 ** level + 1).astype(int)
    # one-sided: every bin but DC stands for two; DC is 0 (mean removed), so a common factor 2
    energies = np.add.reduceat(power, edges[:-1], dtype=np.float64)
    total = energies.sum()
    return tuple((energies / total).tolist()) if total > 0.0 else tuple([0.0] * len(energies))


def velocity_rms_mm_s(spectrum: Spectrum, band_hz: tuple[float, float] = (10.0, 1000.0)) -> float:
    """Broadband velocity RMS in mm/s (ISO 20816-1) from an acceleration spectrum in m/s^2.

    Integration in the frequency domain: velocity amplitude = acceleration amplitude / (2 pi f),
    summed as mean square (Hann ENBW as in `band_energies`) over the band only, so the 1/f gain
    does not blow up drift below 10 Hz.
    """
    f = spectrum.freqs_hz
    lo, hi = np.searchsorted(f, band_hz[0]), np.searchsorted(f, band_hz[1], side='right')
    if hi <= lo:
        return math.nan
    a = spectrum.amplitude[lo:hi].astype(float) / (2.0 * math.pi * f[lo:hi])
    return 1000.0 * math.sqrt(_dot(a, a) / (2.0 * _HANN_ENBW_BINS))


def iso_zone(velocity_mm_s: float, boundaries_mm_s: tuple[float, float, float] = ISO_CLASS_I_MM_S) -> str:
    """ISO 20816-1 evaluation zone A-D of a broadband velocity RMS (mm/s); '' if not finite.
    A value on a boundary belongs to the worse zone."""
    if not math.isfinite(velocity_mm_s):
        return ''
    return ISO_ZONES[int(np.searchsorted(np.asarray(boundaries_mm_s), velocity_mm_s, side='right'))]


def envelope_peaks(envelope: Spectrum, count: int) -> tuple[tuple[float, float, float], ...]:
    """The `count` largest envelope-spectrum peaks above 1 Hz with their prominence: what repeats,
    and how clearly, whatever the speed (the condition indicators when no speed is known)."""
    peaks = dominant_peaks(Spectrum(envelope.freqs_hz[1:], envelope.amplitude[1:]), count)
    return tuple((f, a, a / max(envelope.floor_near(f), _TINY)) for f, a in peaks)


def _line_harmonics(spectrum: Spectrum, freq: float, tolerance: float,
                    harmonics: int) -> list[tuple[float, float]]:
    """(amplitude, prominence) of harmonics 1..`harmonics` of `freq`."""
    out = []
    for k in range(1, harmonics + 1):
        a = spectrum.amplitude_near(k * freq, tolerance)
        floor = spectrum.floor_near(k * freq)
        out.append((a, a / floor if floor > 0.0 else 0.0))
    return out


def _matches(spectrum: Spectrum, lines: Sequence[tuple[str, float]], tolerance: float,
             harmonics: int = 1, threshold: float = 4.0) -> tuple[FrequencyMatch, ...]:
    out = []
    for name, freq in lines:
        found = _line_harmonics(spectrum, freq, tolerance, harmonics)
        prominence = sum(p for _, p in found) / harmonics
        out.append(FrequencyMatch(name, freq, sum(a for a, _ in found) / harmonics, prominence, prominence,
                                  prominence >= threshold))
    return tuple(out)


def attribute_lines(spectrum: Spectrum, lines: Sequence[tuple[str, float]], tolerance: float, harmonics: int,
                    threshold: float) -> tuple[FrequencyMatch, ...]:
    """Bearing lines with exclusive attribution, in the order of `lines`.

    Lines are taken strongest first (mean prominence over their harmonics). A harmonic of a weaker
    line lying within the search width of any harmonic of a stronger line already matched is
    explained by that line: it does not count again. The weaker line's prominence is the mean
    over its unexplained harmonics (0 if none); it is matched only if that still reaches
    `threshold`. So one defect whose harmonics happen to land on another line's frequencies gives
    one match, not two; two real defects at distinct frequencies still give two.
    """
    df = spectrum.resolution_hz
    found = {name: _line_harmonics(spectrum, freq, tolerance, harmonics) for name, freq in lines}
    raw = {name: sum(p for _, p in found[name]) / harmonics for name, _ in lines}
    freq_of = dict(lines)
    accepted: list[str] = []
    result: dict[str, FrequencyMatch] = {}
    for name in sorted(raw, key=lambda line: raw[line], reverse=True):
        f = freq_of[name]
        own, explainers = [], []
        for k, (_, p) in enumerate(found[name], start=1):
            target = k * f
            width = max(tolerance * target, 2.0 * df)
            by = next((other for other in accepted
                       if abs(target - round(target / freq_of[other]) * freq_of[other]) <= width
                       and round(target / freq_of[other]) >= 1), None)
            if by is None:
                own.append(p)
            else:
                explainers.append(by)
        prominence = sum(own) / len(own) if own else 0.0
        matched = prominence >= threshold
        explained_by = max(set(explainers), key=explainers.count) if explainers and not matched else ''
        amplitude = sum(a for a, _ in found[name]) / harmonics
        result[name] = FrequencyMatch(name, f, amplitude, prominence, raw[name], matched, explained_by)
        if matched:
            accepted.append(name)
    return tuple(result[name] for name, _ in lines)


def extract_features(samples: np.ndarray, sample_rate_hz: float, shaft_hz: float | None = None,
                     bearing: BearingGeometry | None = None,
                     config: AnalysisConfig = AnalysisConfig(), *, band_hz: tuple[float, float] | None = None,
                     order_tracked: bool = False) -> VibrationFeatures:
    """All features of one window. Shaft lines need `shaft_hz`; bearing lines need both.

    `band_hz` overrides the configured envelope band (the monitor passes the band it holds).
    """
    x = validate_window(samples, sample_rate_hz)
    raw = _raw_spectrum(x, config.fft_float32)
    spectrum = Spectrum(sfft.rfftfreq(x.size, 1.0 / sample_rate_hz), _hann_amplitude(raw, x.size))
    freqs = fault_frequencies(bearing, shaft_hz) if bearing is not None and shaft_hz else None
    choice = None
    if band_hz is not None:
        band = band_hz
    elif config.envelope_band_hz == 'auto':
        choice = choose_band(raw, x.size, sample_rate_hz, min_envelope_bandwidth_hz(sample_rate_hz, freqs, config),
                             config.kurtogram_z)
        band = choice.band_hz if choice.band_hz is not None else config.envelope_band(sample_rate_hz)
    else:
        band = config.envelope_band(sample_rate_hz)
    nyquist = sample_rate_hz / 2.0
    edges = [e for e in config.band_edges_hz if e < nyquist] + [nyquist]
    envelope = envelope_spectrum(x, sample_rate_hz, band, raw)
    shaft: tuple[FrequencyMatch, ...] = ()
    bearing_matches: tuple[FrequencyMatch, ...] = ()
    if shaft_hz is not None and shaft_hz > 0.0:
        shaft = _matches(spectrum, [(name, order * shaft_hz) for name, order in SHAFT_ORDERS],
                         config.harmonic_tolerance, 1, config.match_threshold)
        if freqs is not None:
            bearing_matches = attribute_lines(envelope, [('ftf', freqs.ftf_hz), ('bsf', 2.0 * freqs.bsf_hz),
                                                         ('bpfo', freqs.bpfo_hz), ('bpfi', freqs.bpfi_hz)],
                                              config.harmonic_tolerance, config.bearing_harmonics,
                                              config.match_threshold)
    if config.wavelet == 'shannon':
        packets = shannon_packet_energies(raw, config.wavelet_level)
    else:
        packets = wavelet_packet_energies(x, config.wavelet, config.wavelet_level)
    return VibrationFeatures(
        sample_rate_hz=sample_rate_hz, n_samples=x.size, time=time_features(x),
        band_energies=band_energies(spectrum, edges), peaks=dominant_peaks(spectrum, config.n_peaks),
        wavelet_energies=packets, envelope_band_hz=band, shaft=shaft, bearing=bearing_matches, fault_freqs=freqs,
        velocity_rms_mm_s=velocity_rms_mm_s(spectrum, config.velocity_band_hz),
        envelope_peaks=envelope_peaks(envelope, config.n_peaks), band_choice=choice, order_tracked=order_tracked)


def feature_vector_names(sample_rate_hz: float, config: AnalysisConfig = AnalysisConfig(), *, shaft: bool = True,
                         bearing: bool = True) -> tuple[str, ...]:
    """`VibrationFeatures.vector_names()` of the windows `extract_features` gives at this sample rate,
    with a shaft speed (`shaft`) and a bearing (`bearing`): what a baseline must have been fitted on."""
    nyquist = sample_rate_hz / 2.0
    bands = len([e for e in config.band_edges_hz if e < nyquist])
    names = ['log_rms', 'log_peak', 'crest_factor', 'kurtosis', 'skewness']
    names += [f'log_band_energy_{i}' for i in range(bands)]
    names += [f'log_shaft_{name}' for name, _ in SHAFT_ORDERS] if shaft else []
    names += [f'log_env_{name}' for name in BEARING_LINES] if shaft and bearing else []
    return tuple(names)


def min_envelope_bandwidth_hz(sample_rate_hz: float, freqs: FaultFrequencies | None,
                              config: AnalysisConfig) -> float:
    """Narrowest envelope band whose envelope spectrum (reaching half the band width) still holds
    every searched harmonic of the highest bearing line; without a speed, sample rate / 64."""
    if freqs is None:
        return sample_rate_hz / 64.0
    highest = max(freqs.bpfi_hz, 2.0 * freqs.bsf_hz, freqs.bpfo_hz)
    return 2.0 * (config.bearing_harmonics + 0.5) * highest * (1.0 + config.harmonic_tolerance)


# ---------------------------------------------------------------------------------------------
# Health index against a learnt baseline


@dataclass(frozen=True)
class HealthBaseline:
    """Mean and shrunk covariance of healthy feature vectors (see `fit_baseline`)."""

    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    inv_cov: np.ndarray
    n_windows: int

    def as_dict(self) -> dict[str, object]:
        """JSON-ready; `from_dict` reads it back."""
        return {'names': list(self.names), 'mean': self.mean.tolist(), 'std': self.std.tolist(),
                'inv_cov': self.inv_cov.tolist(), 'n_windows': self.n_windows}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> 'HealthBaseline':
        try:
            names = tuple(str(n) for n in data['names'])  # type: ignore[attr-defined]
            mean, std = np.asarray(data['mean'], dtype=float), np.asarray(data['std'], dtype=float)
            inv_cov = np.asarray(data['inv_cov'], dtype=float)
            n_windows = int(data['n_windows'])  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f'baseline is incomplete or malformed ({exc!r})') from exc
        k = len(names)
        if mean.shape != (k,) or std.shape != (k,) or inv_cov.shape != (k, k):
            raise ValueError(f'baseline arrays do not match its {k} feature names')
        if not (np.isfinite(mean).all() and np.isfinite(inv_cov).all() and (std > 0.0).all()):
            raise ValueError('baseline holds NaN/inf values or non-positive standard deviations')
        return cls(names, mean, std, inv_cov, n_windows)

    def z_scores(self, vector: np.ndarray) -> np.ndarray:
        return (np.asarray(vector, dtype=float) - self.mean) / self.std

    def health_index(self, vector: np.ndarray) -> float:
        """Mahalanobis distance / sqrt(n features): about 1 for a healthy window, grows with damage."""
        d = np.asarray(vector, dtype=float) - self.mean
        if not np.isfinite(d).all():
            return math.inf      # unknown is treated as unhealthy
        return math.sqrt(max(float(d @ self.inv_cov @ d), 0.0) / len(d))


def fit_baseline(vectors: Sequence[np.ndarray], names: Sequence[str], *, shrinkage: float | None = None,
                 std_floor: float = 0.05) -> HealthBaseline:
    """Learn a baseline from healthy windows.

    The correlation is shrunk towards the identity, the more the fewer windows there are per
    feature (default max(0.5, 1 - n / (2 k)) for n windows of k features): a handful of windows
    cannot estimate many correlations. Standard deviations are widened by sqrt(1 + 1/n) (a new
    window also differs from the estimated mean) and floored at `std_floor` (a 5 % change of a log
    amplitude): a simulated or very steady machine would otherwise alarm on numerical noise.
    """
    data = np.asarray(vectors, dtype=float)
    if data.ndim != 2 or data.shape[0] < 3:
        raise ValueError(f'baseline needs at least 3 healthy windows, got {data.shape[0] if data.ndim == 2 else 0}')
    if data.shape[1] != len(names):
        raise ValueError(f'baseline has {data.shape[1]} features but {len(names)} names')
    if not np.isfinite(data).all():
        raise ValueError('baseline windows hold NaN/inf features')
    n, k = data.shape
    if shrinkage is None:
        shrinkage = max(0.5, 1.0 - n / (2.0 * k))
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f'shrinkage must be in [0, 1], got {shrinkage}')
    mean = data.mean(axis=0)
    std = np.maximum(data.std(axis=0, ddof=1) * math.sqrt(1.0 + 1.0 / n), std_floor)
    corr = np.corrcoef(data, rowvar=False) if data.shape[0] > 2 else np.eye(data.shape[1])
    corr = np.nan_to_num(corr, nan=0.0)
    np.fill_diagonal(corr, 1.0)
    corr = (1.0 - shrinkage) * corr + shrinkage * np.eye(data.shape[1])
    cov = corr * np.outer(std, std)
    return HealthBaseline(tuple(names), mean, std, np.linalg.pinv(cov), data.shape[0])


@dataclass(frozen=True)
class HealthThresholds:
    """Health-index levels. A level is entered at its threshold and left only below
    `clear_ratio` x that threshold, so a window-to-window scatter around a threshold does not
    make the level flicker (hysteresis)."""

    warn: float = 3.0      # health index (dimensionless)
    alarm: float = 6.0
    clear_ratio: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 < self.warn < self.alarm:
            raise ValueError(f'health thresholds need 0 < warn < alarm, got {self.warn}, {self.alarm}')
        if not 0.0 < self.clear_ratio <= 1.0:
            raise ValueError(f'clear_ratio must be in (0, 1], got {self.clear_ratio}')

    def level(self, health_index: float, previous_level: int) -> int:
        """0 OK, 1 WARN, 2 ERROR, from the index and the level held so far (hysteresis)."""
        if not health_index < self.alarm:           # NaN counts as alarm: unknown is not healthy
            return 2
        if previous_level >= 2 and health_index >= self.clear_ratio * self.alarm:
            return 2
        if health_index >= self.warn:
            return 1
        if previous_level >= 1 and health_index >= self.clear_ratio * self.warn:
            return 1
        return 0


# ---------------------------------------------------------------------------------------------
# Fault class


FAULT_CLASSES = ('healthy', 'imbalance', 'misalignment', 'looseness', 'outer_race', 'inner_race', 'ball')


@dataclass(frozen=True)
class Condition:
    """Condition indicators that need no speed and no baseline, and the severity they indicate."""

    severity: str                    # 'normal', 'elevated' or 'high'
    kurtosis: float
    crest_factor: float
    envelope_peak_hz: float          # most prominent envelope-spectrum peak (what repeats), NaN if none
    envelope_peak_prominence: float
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {'severity': self.severity, 'kurtosis': self.kurtosis, 'crest_factor': self.crest_factor,
                'envelope_peak_hz': self.envelope_peak_hz, 'envelope_peak_prominence': self.envelope_peak_prominence,
                'reasons': list(self.reasons)}


# Gaussian noise: kurtosis 3, crest factor 4-5 over 10^4-10^5 samples, and the most prominent of
# ~10^3 envelope bins about 3 x the median (Rayleigh). Impacts push all three up.
SEVERITY_LIMITS = {'kurtosis': (4.0, 6.0), 'crest_factor': (6.0, 8.0), 'envelope_peak_prominence': (8.0, 16.0)}
SEVERITIES = ('normal', 'elevated', 'high')


def condition(features: VibrationFeatures) -> Condition:
    """Severity from kurtosis, crest factor and the most prominent envelope peak (limits above)."""
    t = features.time
    peak = max(features.envelope_peaks, key=lambda p: p[2], default=(math.nan, 0.0, 0.0))
    values = {'kurtosis': t.kurtosis, 'crest_factor': t.crest_factor, 'envelope_peak_prominence': peak[2]}
    rank, reasons = 0, []
    for name, (elevated, high) in SEVERITY_LIMITS.items():
        level = 2 if values[name] >= high else 1 if values[name] >= elevated else 0
        if level:
            reasons.append(f'{name} {values[name]:.3g} >= {high if level == 2 else elevated:g}')
        rank = max(rank, level)
    return Condition(SEVERITIES[rank], t.kurtosis, t.crest_factor, peak[0], peak[2], tuple(reasons))


@dataclass(frozen=True)
class Diagnosis:
    # one of FAULT_CLASSES; 'unknown' (abnormal, no pattern); 'not_assessed' (no shaft speed)
    fault: str
    # [0, 1]. calibrated: the share of such verdicts that were right on the validation model
    # (`calibrate_confidence`); otherwise the heuristic margin over the runner-up and the threshold.
    confidence: float
    evidence: Mapping[str, float] = field(default_factory=dict)   # class -> score
    note: str = ''                   # what was not assessed, and why
    condition: Condition | None = None
    raw_confidence: float = math.nan   # the heuristic margin, before calibration (NaN: = confidence)
    calibrated: bool = False

    def __post_init__(self) -> None:
        if math.isnan(self.raw_confidence):
            object.__setattr__(self, 'raw_confidence', self.confidence)


def _class_scores(features: VibrationFeatures, baseline: HealthBaseline | None) -> dict[str, float]:
    """Score per fault class: z-score rise of the class's lines against the baseline when there is
    one; otherwise, baseline-free, how far bearing lines stand out of the envelope spectrum
    (prominence) and how much of the energy the shaft lines carry."""
    shaft = {m.name: m for m in features.shaft}
    bearing = {m.name: m for m in features.bearing}
    if baseline is not None:
        z = dict(zip(baseline.names, baseline.z_scores(features.vector())))

        def score(*keys: str) -> float:
            vals = [z.get(k, 0.0) for k in keys]
            return float(np.mean(vals)) if vals else 0.0
        scores = {'imbalance': score('log_shaft_1x'), 'misalignment': score('log_shaft_2x'),
                  'looseness': score('log_shaft_0.5x', 'log_shaft_1.5x', 'log_shaft_2.5x', 'log_shaft_3x'),
                  'outer_race': score('log_env_bpfo'), 'inner_race': score('log_env_bpfi'),
                  'ball': score('log_env_bsf')}
        # A misaligned shaft also lifts 1x, an imbalanced one barely lifts 2x: keep them apart.
        if scores['misalignment'] > 0.0 and scores['imbalance'] > 0.0:
            scores['imbalance'] -= 0.5 * scores['misalignment']
        # One defect's impacts raise the whole envelope spectrum, so every bearing line rises
        # against the baseline; which line it is comes from the spectrum's shape: weight each
        # bearing score by its line's prominence relative to the most prominent one.
        top = max((m.prominence for m in features.bearing), default=0.0)
        for cls, line in (('outer_race', 'bpfo'), ('inner_race', 'bpfi'), ('ball', 'bsf')):
            if top > 0.0 and line in bearing:
                scores[cls] *= bearing[line].prominence / top
        return scores

    def prom(table: Mapping[str, FrequencyMatch], *keys: str) -> float:
        vals = [table[k].prominence for k in keys if k in table]
        return float(np.mean(vals)) if vals else 0.0

    # Every rotating machine shows a clear 1x line, so without a baseline a shaft fault is only
    # called when its lines carry a large share of the acceleration's mean square (normally
    # dominated by broadband and high-frequency content): score 8 x share, 4 = half the energy.
    mean_square = max(features.time.rms ** 2 - features.time.mean ** 2, _TINY)

    def share(*keys: str) -> float:
        return 8.0 * sum(shaft[k].amplitude ** 2 / 2.0 for k in keys if k in shaft) / mean_square
    one_x = shaft.get('1x')
    ratio_2x = shaft['2x'].amplitude / one_x.amplitude if one_x and one_x.amplitude > 0 and '2x' in shaft else 0.0
    return {'imbalance': share('1x') if ratio_2x < 0.5 else 0.0,
            'misalignment': share('1x', '2x') if ratio_2x >= 0.5 else 0.0,
            'looseness': share('0.5x', '1.5x', '2.5x', '3x', '4x'),
            'outer_race': prom(bearing, 'bpfo'), 'inner_race': prom(bearing, 'bpfi'), 'ball': prom(bearing, 'bsf')}


def diagnose(features: VibrationFeatures, baseline: HealthBaseline | None = None,
             thresholds: HealthThresholds = HealthThresholds(), *, score_threshold: float | None = None) -> Diagnosis:
    """Name the likely fault. With a baseline: healthy below the warn health index; otherwise the
    class whose lines rose most (z >= score_threshold, default 3). Without one: the class with
    the highest baseline-free score (>= score_threshold, default 4; see `_class_scores`)."""
    state = condition(features)
    if not features.shaft:
        return Diagnosis('not_assessed', 0.0, {}, 'unknown speed: bearing lines not assessed', state)
    note = '' if features.bearing else 'no bearing geometry: bearing lines not assessed'
    scores = _class_scores(features, baseline)
    threshold = score_threshold if score_threshold is not None else (3.0 if baseline is not None else 4.0)
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    (best, best_score), (_, second_score) = ranked[0], ranked[1]
    if baseline is not None:
        hi = baseline.health_index(features.vector())
        if hi < thresholds.warn and best_score < threshold:
            return Diagnosis('healthy', _confidence(thresholds.warn, hi, thresholds.warn), scores, note, state)
        if best_score < threshold:
            return Diagnosis('unknown', _confidence(hi, thresholds.warn, thresholds.warn), scores, note, state)
    elif best_score < threshold:
        if state.severity == 'high':
            # Impulsive beyond doubt but no known line: a fault we cannot name is not 'healthy'.
            return Diagnosis('unknown', 0.5, scores, note or 'condition indicators high, no fault line matched',
                             state)
        return _calibrated(Diagnosis('healthy', _confidence(threshold, best_score, threshold), scores, note,
                                     state), features)
    separation = best_score / (best_score + max(second_score, 0.0))
    diagnosis = Diagnosis(best, separation * _confidence(best_score, threshold, threshold), scores, note, state)
    return diagnosis if baseline is not None else _calibrated(diagnosis, features)


def _calibrated(diagnosis: Diagnosis, features: VibrationFeatures) -> Diagnosis:
    # The maps were fitted on baseline-free verdicts with bearing lines: only those are calibrated.
    return calibrate_confidence(diagnosis) if features.bearing else diagnosis


def calibration_group(fault: str) -> str | None:
    """Which calibration map a baseline-free verdict takes: 'healthy', 'bearing_fault', or None
    (shaft classes and 'unknown': the validation model holds no such windows to calibrate on)."""
    if fault == 'healthy':
        return 'healthy'
    if fault in ('outer_race', 'inner_race', 'ball'):
        return 'bearing_fault'
    return None


def calibrate_confidence(diagnosis: Diagnosis,
                         maps: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None) -> Diagnosis:
    """The baseline-free verdict with its heuristic confidence mapped to the share of such verdicts
    that were right on the physics-based validation model (isotonic fit, `CONFIDENCE_CALIBRATION`
    in vibration_calibration.py, regenerated by bench/bench_vibration.py --calibrate). Verdicts
    without a map keep the heuristic value, `calibrated` False."""
    maps = CONFIDENCE_CALIBRATION if maps is None else maps
    raw = diagnosis.confidence
    group = calibration_group(diagnosis.fault)
    if group is None or group not in maps or not math.isfinite(raw):
        return replace(diagnosis, raw_confidence=raw, calibrated=False)
    xs, ys = maps[group]
    return replace(diagnosis, confidence=float(np.interp(raw, xs, ys)), raw_confidence=raw, calibrated=True)


def _confidence(value: float, threshold: float, scale: float) -> float:
    """0 at the threshold, towards 1 as `value` moves past it by several `scale`s."""
    if not math.isfinite(value):
        return 1.0
    return float(1.0 - math.exp(-max(value - threshold, 0.0) / max(scale, _TINY) * 2.0)) if value > threshold else 0.0


# ---------------------------------------------------------------------------------------------
# Remaining useful life


@dataclass(frozen=True)
class RulEstimate:
    rul_s: float            # time until the health index reaches the threshold; inf: no degradation trend
    low_s: float            # 90 % band of the estimate (delta method on the fitted trend)
    high_s: float
    model: str              # 'exponential' or 'linear'
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {'rul_s': self.rul_s, 'rul_low_s': self.low_s, 'rul_high_s': self.high_s, 'model': self.model,
                'reason': self.reason}


_Z90 = 1.645


def estimate_rul(times_s: Sequence[float], health: Sequence[float], threshold: float,
                 model: str = 'exponential', min_points: int = 5) -> RulEstimate:
    """Fit the health-index trend (exponential: log HI linear in t; or linear) and extrapolate it to
    `threshold`. Uncertainty: the fitted parameter covariance propagated to the crossing time."""
    if model not in ('exponential', 'linear'):
        raise ValueError(f"RUL model must be 'exponential' or 'linear', got {model!r}")
    t = np.asarray(times_s, dtype=float)
    h = np.asarray(health, dtype=float)
    keep = np.isfinite(t) & np.isfinite(h) & ((h > 0.0) if model == 'exponential' else True)
    t, h = t[keep], h[keep]
    if t.size and h[-1] >= threshold:
        return RulEstimate(0.0, 0.0, 0.0, model, 'health index at or above the threshold')
    if t.size < min_points:
        return RulEstimate(math.inf, math.inf, math.inf, model,
                           f'not enough trend: only {t.size} valid points, need {min_points}')
    y = np.log(h) if model == 'exponential' else h
    level = math.log(threshold) if model == 'exponential' else threshold
    t0 = t[-1]
    a = np.column_stack((np.ones_like(t), t - t0))      # intercept at the latest point
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    residual = y - a @ coef
    dof = max(t.size - 2, 1)
    sigma2 = float(residual @ residual) / dof
    cov = sigma2 * np.linalg.pinv(a.T @ a)
    c, b = float(coef[0]), float(coef[1])
    sb = math.sqrt(max(cov[1, 1], 0.0))
    if b <= 0.0 or b < 2.0 * sb:
        return RulEstimate(math.inf, math.inf, math.inf, model,
                           f'not enough trend: no significant degradation trend (slope {b:.3g} +- {sb:.3g} per s)')
    rul = (level - c) / b
    grad = np.array([-1.0 / b, -(level - c) / b ** 2])
    std = math.sqrt(max(float(grad @ cov @ grad), 0.0))
    return RulEstimate(max(rul, 0.0), max(rul - _Z90 * std, 0.0), rul + _Z90 * std, model,
                       f'{model} trend over {t.size} points')


# ---------------------------------------------------------------------------------------------
# Streaming monitor of one gearbox (what the node runs per joint; no ROS here)

LEVEL_OK, LEVEL_WARN, LEVEL_ERROR = 0, 1, 2    # same numbers as diagnostic_msgs/DiagnosticStatus


@dataclass(frozen=True)
class MonitorConfig:
    sample_rate_hz: float
    window_s: float
    bearing: BearingGeometry
    analysis: AnalysisConfig = AnalysisConfig()
    min_shaft_hz: float = 2.0             # slower windows carry no fault information
    max_speed_variation: float = 0.5      # (max - min) / mean shaft speed over a window
    order_tracking: bool = True           # resample varying-speed windows to constant shaft angle steps
    baseline_windows: int = 20
    thresholds: HealthThresholds = HealthThresholds()
    rms_alarm_mps2: float = 50.0          # absolute limit, independent of the baseline
    rul_warn_s: float = 86400.0
    trend_windows: int = 30
    kurtogram_every_windows: int = 5      # analysis band 'auto': re-run the kurtogram on every n-th window
    min_turns: float = 4.0                # order tracking: shaft turns above min_shaft_hz a window needs
    min_moving_fraction: float = 0.5      # order tracking: share of the window above min_shaft_hz it needs

    @property
    def window_samples(self) -> int:
        return max(int(round(self.window_s * self.sample_rate_hz)), 16)


@dataclass(frozen=True)
class Assessment:
    """Outcome of one window. `state`: learning (baseline), assessed, idle (not assessable), invalid."""

    stamp_s: float
    state: str
    level: int
    message: str
    shaft_hz: float
    features: VibrationFeatures | None = None
    health_index: float = math.nan
    diagnosis: Diagnosis | None = None
    rul: RulEstimate | None = None
    iso_zone: str = ''                   # ISO 20816-1 zone A-D of the window's velocity RMS

    def key_values(self) -> dict[str, object]:
        """What an operator sees of this window in /diagnostics (units in the keys)."""
        time_features = self.features.time if self.features is not None else None
        band = self.features.envelope_band_hz if self.features is not None else None
        return {'state': self.state, 'shaft_hz': self.shaft_hz,
                'velocity_rms_mm_s': self.features.velocity_rms_mm_s if self.features else math.nan,
                'iso_zone': self.iso_zone or 'unknown',
                'envelope_band_hz': f'{band[0]:.0f}-{band[1]:.0f}' if band else 'none',
                'rms_mps2': time_features.rms if time_features else math.nan,
                'kurtosis': time_features.kurtosis if time_features else math.nan,
                'health_index': self.health_index,
                'fault': self.diagnosis.fault if self.diagnosis else 'unknown',
                'fault_confidence': self.diagnosis.confidence if self.diagnosis else 0.0,
                'rul_s': self.rul.rul_s if self.rul else math.inf}


# Columns of one joint's row in the published feature matrix (vibration/features).
FEATURE_COLUMNS = ('rms_mps2', 'peak_mps2', 'crest_factor', 'kurtosis', 'skewness', 'shaft_hz',
                   'shaft_1x_mps2', 'shaft_2x_mps2', 'env_bpfo_mps2', 'env_bpfi_mps2', 'env_ball_mps2',
                   'health_index', 'fault_code', 'fault_confidence', 'rul_s', 'level', 'velocity_rms_mm_s', 'iso_zone')
FAULT_CODES = FAULT_CLASSES + ('unknown',)     # fault_code = index here; -1 = not assessed
ZONE_LEVELS = {'A': LEVEL_OK, 'B': LEVEL_OK, 'C': LEVEL_WARN, 'D': LEVEL_ERROR}    # ISO 20816-1 zone meanings


def feature_row(assessment: Assessment | None) -> list[float]:
    """One row of FEATURE_COLUMNS; NaN where a value does not exist (yet)."""
    row = [math.nan] * len(FEATURE_COLUMNS)
    if assessment is None:
        return row
    row[FEATURE_COLUMNS.index('shaft_hz')] = assessment.shaft_hz
    row[FEATURE_COLUMNS.index('level')] = float(assessment.level)
    f = assessment.features
    if f is not None:
        row[0:5] = [f.time.rms, f.time.peak, f.time.crest_factor, f.time.kurtosis, f.time.skewness]
        shaft = {m.name: m.amplitude for m in f.shaft}
        bearing = {m.name: m.amplitude for m in f.bearing}
        row[6:11] = [shaft.get('1x', math.nan), shaft.get('2x', math.nan), bearing.get('bpfo', math.nan),
                     bearing.get('bpfi', math.nan), bearing.get('bsf', math.nan)]
    row[FEATURE_COLUMNS.index('health_index')] = assessment.health_index
    if f is not None:
        row[FEATURE_COLUMNS.index('velocity_rms_mm_s')] = f.velocity_rms_mm_s
    if assessment.iso_zone:
        row[FEATURE_COLUMNS.index('iso_zone')] = float(ISO_ZONES.index(assessment.iso_zone))
    if assessment.diagnosis is not None and assessment.diagnosis.fault in FAULT_CODES:
        row[FEATURE_COLUMNS.index('fault_code')] = float(FAULT_CODES.index(assessment.diagnosis.fault))
        row[FEATURE_COLUMNS.index('fault_confidence')] = assessment.diagnosis.confidence
    else:
        row[FEATURE_COLUMNS.index('fault_code')] = -1.0
    if assessment.rul is not None:
        row[FEATURE_COLUMNS.index('rul_s')] = assessment.rul.rul_s
    return row


@dataclass(frozen=True)
class AngleWindow:
    """A window resampled to equal steps of shaft angle over the part where the shaft turned."""

    samples: np.ndarray          # as many samples as were kept, at equal angle steps
    mean_shaft_hz: float         # turns kept / time kept: the speed the resampled window stands for
    turns: float                 # shaft turns kept
    moving_fraction: float       # share of the window's samples kept


def angle_window(samples: np.ndarray, angle_turns: np.ndarray, sample_rate_hz: float,
                 min_shaft_hz: float) -> AngleWindow:
    """Order tracking from the shaft angle (encoder position x gear ratio, in turns, per sample).

    Samples where the shaft turns slower than `min_shaft_hz` carry no defect impacts worth the
    name; they are cut out and the moving parts are joined in the angle domain, where the angle
    travelled (either direction: a defect is struck once per turn either way) just continues. The
    joined signal is resampled to equal angle steps, so bearing and shaft lines, fixed multiples of
    the speed, are sharp orders whatever the speed profile; expressed in Hz at the mean speed kept.
    """
    step = np.abs(np.diff(angle_turns, prepend=angle_turns[0] - (angle_turns[1] - angle_turns[0])
                          if angle_turns.size > 1 else angle_turns[0]))
    keep = step * sample_rate_hz >= min_shaft_hz
    kept = int(keep.sum())
    fraction = kept / max(samples.size, 1)
    if kept < 16:
        return AngleWindow(samples[:0], 0.0, 0.0, fraction)
    travelled = np.cumsum(step[keep])
    turns = float(travelled[-1] - travelled[0])
    uniform = np.linspace(travelled[0], travelled[-1], kept)
    resampled = np.interp(uniform, travelled, samples[keep])
    return AngleWindow(resampled, turns / (kept / sample_rate_hz), turns, fraction)


def order_track(samples: np.ndarray, speeds_hz: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """Resample a window taken at varying shaft speed onto equal steps of shaft angle.

    Bearing and shaft lines are fixed multiples of the shaft speed: at a varying speed they smear
    over a band, in the angle domain they are sharp again. The result has as many samples over
    the same total angle, i.e. it is the window a constant shaft at the mean speed would give, so
    the mean speed and the sample rate still describe it (computed order tracking).
    """
    angle_turns = np.cumsum(speeds_hz) / sample_rate_hz
    uniform = np.linspace(angle_turns[0], angle_turns[-1], samples.size)
    return np.interp(uniform, angle_turns, samples)


class GearboxMonitor:
    """Cuts a sample stream into windows, learns a baseline on the first assessable ones, then
    rates each window: health index, fault class, RUL from the health trend, and a level.

    Levels are conservative: a window with NaN samples is an ERROR (broken sensor), an RMS over
    the absolute limit is an ERROR even while learning, and windows that cannot be assessed
    (standing, reversing or strongly accelerating shaft) keep the last level instead of falling
    back to OK. Windows at a moderately varying speed are order-tracked before analysis.
    """

    def __init__(self, config: MonitorConfig, baseline: HealthBaseline | None = None) -> None:
        """`baseline`: a baseline learnt beforehand (e.g. read from a file by vibration_baseline), so
        windows are rated from the first one; None = learn on the first `baseline_windows` windows."""
        self.config = config
        n = config.window_samples
        self._buffer = np.empty(2 * n)
        self._filled = 0
        self._speeds = np.empty(2 * n)  # shaft speed (Hz) at every buffered sample, NaN = unknown
        self._angles = np.empty(2 * n)  # shaft angle (turns) at every buffered sample, NaN = not given
        self._angle_from_speed = 0.0    # running integral of the speed when no encoder angle is given
        self._learning: list[np.ndarray] = []
        self._names: tuple[str, ...] = () if baseline is None else tuple(baseline.names)
        self.baseline: HealthBaseline | None = baseline
        self._health_level = LEVEL_OK     # level from the health index alone, held for the hysteresis
        self._trend_t: list[float] = []
        self._trend_hi: list[float] = []
        self.last: Assessment | None = None
        self.samples_received = 0
        self.windows = 0
        # 'auto' band: the last significant kurtogram band is held (None: the default band), so
        # consecutive windows, and the baseline, are analysed in the same band until impacts show.
        self.band_hz: tuple[float, float] | None = None
        self.band_reason = 'default band'
        self._assessable = 0

    def add_samples(self, samples: np.ndarray, shaft_hz: float, stamp_s: float,
                    angle_turns: np.ndarray | None = None) -> list[Assessment]:
        """Append samples taken at shaft speed `shaft_hz` (NaN = unknown); returns the windows completed.

        `angle_turns`: the shaft angle at every sample (joint encoder position x gear ratio / 2 pi),
        for order tracking; without it the angle is the integral of `shaft_hz`.
        """
        x = np.asarray(samples, dtype=float).ravel()
        if angle_turns is None:
            rate = shaft_hz if math.isfinite(shaft_hz) else math.nan
            angles = self._angle_from_speed + rate * np.arange(1, x.size + 1) / self.config.sample_rate_hz
            if x.size and math.isfinite(rate):
                self._angle_from_speed = float(angles[-1])
        else:
            angles = np.asarray(angle_turns, dtype=float).ravel()
            if angles.size != x.size:
                raise ValueError(f'{angles.size} shaft angles for {x.size} samples')
        self.samples_received += x.size
        out = []
        n = self.config.window_samples
        start = 0
        while start < x.size:
            take = min(x.size - start, n - self._filled)
            self._buffer[self._filled:self._filled + take] = x[start:start + take]
            self._speeds[self._filled:self._filled + take] = shaft_hz if math.isfinite(shaft_hz) else math.nan
            self._angles[self._filled:self._filled + take] = angles[start:start + take]
            self._filled += take
            start += take
            if self._filled == n:
                out.append(self._assess(self._buffer[:n].copy(), self._speeds[:n].copy(), stamp_s,
                                        self._angles[:n].copy()))
                self._filled = 0
        return out

    def _assess(self, window: np.ndarray, speeds_hz: np.ndarray, stamp_s: float,
                angles: np.ndarray | None = None) -> Assessment:
        c = self.config
        self.windows += 1
        shaft = float(speeds_hz.mean())          # NaN if any speed is unknown
        previous_level = self.last.level if self.last is not None else LEVEL_OK
        if not np.isfinite(window).all():
            return self._keep(Assessment(stamp_s, 'invalid', LEVEL_ERROR,
                                         'window holds NaN/inf samples: accelerometer or wiring fault', shaft))
        rms = math.sqrt(_dot(window, window) / window.size)
        if rms >= c.rms_alarm_mps2:
            absolute = Assessment(stamp_s, 'assessed', LEVEL_ERROR,
                                  f'RMS {rms:.3g} m/s^2 above the absolute limit {c.rms_alarm_mps2:g}', shaft,
                                  features=extract_features(window, c.sample_rate_hz, None, None, c.analysis))
            return self._keep(absolute)
        if c.order_tracking and angles is not None and np.isfinite(angles).all():
            tracked = angle_window(window, angles, c.sample_rate_hz, c.min_shaft_hz)
            if tracked.turns < c.min_turns or tracked.moving_fraction < c.min_moving_fraction:
                reason = (f'shaft below {c.min_shaft_hz:g} Hz for {1.0 - tracked.moving_fraction:.0%} of the window, '
                          f'{tracked.turns:.2g} turns above it; need {c.min_turns:g} turns and '
                          f'{c.min_moving_fraction:.0%} of the window')
                message = f'not assessed ({reason}); level of the last assessed window kept'
                return self._keep(Assessment(stamp_s, 'idle', previous_level, message, shaft))
            window, shaft = tracked.samples, tracked.mean_shaft_hz
        else:
            slowest = float(speeds_hz.min())
            variation = (float(speeds_hz.max()) - slowest) / shaft if shaft > 0 else math.inf
            if not math.isfinite(shaft) or slowest < c.min_shaft_hz or not variation <= c.max_speed_variation:
                reason = ('shaft speed unknown' if not math.isfinite(shaft) else
                          f'shaft down to {slowest:.3g} Hz, below {c.min_shaft_hz:g} Hz' if slowest < c.min_shaft_hz
                          else f'shaft speed varied {variation:.0%} over the window')
                message = f'not assessed ({reason}); level of the last assessed window kept'
                return self._keep(Assessment(stamp_s, 'idle', previous_level, message, shaft))
            if c.order_tracking and variation > 0.0:
                window = order_track(window, speeds_hz, c.sample_rate_hz)
        features = self._features(window, shaft)
        vector = features.vector()
        zone = iso_zone(features.velocity_rms_mm_s, c.analysis.iso_zone_boundaries_mm_s)
        zone_level = ZONE_LEVELS.get(zone, LEVEL_OK)
        zone_text = f'ISO 20816 zone {zone} ({features.velocity_rms_mm_s:.2f} mm/s)'
        if self.baseline is None:
            self._learning.append(vector)
            self._names = features.vector_names()
            if len(self._learning) >= c.baseline_windows:
                self.baseline = fit_baseline(self._learning, self._names)
                self._learning = []
            done = c.baseline_windows if self.baseline is not None else len(self._learning)
            # The zones need no baseline: a machine already rough at start-up is not learnt as fine silently.
            return self._keep(Assessment(stamp_s, 'learning', zone_level,
                                         f'learning baseline ({done}/{c.baseline_windows} windows); {zone_text}',
                                         shaft, features, diagnosis=diagnose(features), iso_zone=zone))
        hi = self.baseline.health_index(vector)
        diagnosis = diagnose(features, self.baseline, c.thresholds)
        self._trend_t.append(stamp_s)
        self._trend_hi.append(hi)
        del self._trend_t[:-c.trend_windows], self._trend_hi[:-c.trend_windows]
        rul = estimate_rul(self._trend_t, self._trend_hi, c.thresholds.alarm)
        self._health_level = c.thresholds.level(hi, self._health_level)
        if self._health_level == LEVEL_ERROR:
            level, verdict = LEVEL_ERROR, f'health index {hi:.3g} (alarm {c.thresholds.alarm:g})'
        elif self._health_level == LEVEL_WARN:
            level, verdict = LEVEL_WARN, f'health index {hi:.3g} (warn {c.thresholds.warn:g})'
        elif rul.rul_s < c.rul_warn_s:
            level, verdict = LEVEL_WARN, f'predicted to reach the alarm in {rul.rul_s:.0f} s'
        else:
            level, verdict = LEVEL_OK, f'health index {hi:.3g}'
        level = max(level, zone_level)
        message = f'{verdict}; {zone_text}; {diagnosis.fault} ({diagnosis.confidence:.0%})'
        return self._keep(Assessment(stamp_s, 'assessed', level, message, shaft, features, hi, diagnosis, rul,
                                     iso_zone=zone))

    def _features(self, window: np.ndarray, shaft_hz: float) -> VibrationFeatures:
        c = self.config
        self._assessable += 1
        if c.analysis.envelope_band_hz != 'auto':
            return extract_features(window, c.sample_rate_hz, shaft_hz, c.bearing, c.analysis)
        if (self._assessable - 1) % c.kurtogram_every_windows == 0:
            features = extract_features(window, c.sample_rate_hz, shaft_hz, c.bearing, c.analysis,
                                        band_hz=None)
            if features.band_choice is not None and features.band_choice.band_hz is not None:
                self.band_hz = features.band_choice.band_hz
                self.band_reason = features.band_choice.reason
                return features
            if self.band_hz is None:
                self.band_reason = features.band_choice.reason if features.band_choice else 'default band'
                return features
        band = self.band_hz or c.analysis.envelope_band(c.sample_rate_hz)
        return extract_features(window, c.sample_rate_hz, shaft_hz, c.bearing, c.analysis, band_hz=band)

    def _keep(self, assessment: Assessment) -> Assessment:
        self.last = assessment
        return assessment
