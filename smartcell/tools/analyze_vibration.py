"""`smartcell analyze-vibration FILE`: features, fault-frequency matches and a verdict as JSON.

With --learn-baseline OUT.json the (healthy) file is cut into --window-s windows and their
baseline is written (with --joint NAME it is added to OUT.json under that joint: the file the
vibration_sensor node's `baseline_file` reads); with --baseline IN.json each window of the file
gets a health index, a level (with hysteresis) and the RUL trend against it (docs/sensors.md,
"Learning a baseline").

FILE is a CSV (one sample per row; a header row and several columns are allowed, pick one with
--column) or a NPY array (1-D, or 2-D with --column). Bad input (unreadable, wrong shape, NaN,
too short for the requested resolution, missing or implausible sample rate) prints one clear
error on stderr and exits with code 2.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from smartcell.core.params import ConfigError
from smartcell.core.sensors.vibration import (BEARING_PRESETS, ISO_CLASS_I_MM_S, ISO_ZONE_MEANING, AnalysisConfig,
                                              BearingGeometry, HealthBaseline, HealthThresholds, amplitude_spectrum,
                                              bearing_preset, diagnose, envelope_spectrum, estimate_rul,
                                              extract_features, fault_frequencies, fit_baseline, iso_zone)
from smartcell.core.sensors.vibration_baseline import (UNNAMED_JOINT, BaselineFile, baseline_document,
                                                       read_baseline_file)

SPEED_MATCH = 0.1      # a baseline holds for shaft speeds within 10 % of the one it was learnt at

EXIT_BAD_INPUT = 2


class InputError(ValueError):
    """The file or an option cannot be analysed; the message says what and what is accepted."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='smartcell analyze-vibration', description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('file', type=Path, help='CSV or NPY file of acceleration samples')
    p.add_argument('--sample-rate-hz', '--fs', dest='sample_rate_hz', type=float, required=True,
                   help='sample rate of the file in Hz (required)')
    p.add_argument('--column', type=int, default=None, help='column to analyse in a multi-column file (0-based)')
    speed = p.add_mutually_exclusive_group()
    speed.add_argument('--rpm', type=float, help='shaft speed in rev/min')
    speed.add_argument('--shaft-hz', type=float, help='shaft speed in Hz')
    p.add_argument('--bearing', choices=sorted(BEARING_PRESETS), help='named bearing preset')
    p.add_argument('--n-balls', type=int, help='bearing geometry: number of rolling elements')
    p.add_argument('--ball-diameter-mm', type=float, help='bearing geometry: rolling element diameter, mm')
    p.add_argument('--pitch-diameter-mm', type=float, help='bearing geometry: pitch diameter, mm')
    p.add_argument('--contact-angle-deg', type=float, default=0.0, help='bearing geometry: contact angle, deg')
    p.add_argument('--resolution-hz', type=float, default=1.0,
                   help='required frequency resolution in Hz: the file must hold sample_rate / resolution samples')
    p.add_argument('--envelope-band-hz', type=float, nargs=2, metavar=('LOW', 'HIGH'),
                   help='envelope band-pass in Hz (default: the fast kurtogram\'s most impulsive band, '
                        'else 0.08-0.40 x sample rate)')
    p.add_argument('--iso-zones-mm-s', type=float, nargs=3, metavar=('AB', 'BC', 'CD'),
                   default=list(ISO_CLASS_I_MM_S),
                   help='ISO 20816-1 zone boundaries of the velocity RMS 10-1000 Hz, mm/s (default class I)')
    p.add_argument('--window-s', type=float,
                   help='cut the file into windows of this length, s (baseline learning default: 1.0)')
    base = p.add_mutually_exclusive_group()
    base.add_argument('--learn-baseline', type=Path, metavar='OUT.json',
                      help='learn a health baseline from this healthy recording and write it here')
    base.add_argument('--baseline', type=Path, metavar='IN.json',
                      help='rate every window against a baseline written by --learn-baseline')
    p.add_argument('--joint', help='joint (gearbox) the baseline is for: --learn-baseline adds it to OUT.json '
                                    '(one file for every joint, what the vibration_sensor node reads); --baseline '
                                    'picks it from IN.json (default: the only one)')
    p.add_argument('--plot', type=Path,
                   help='write spectrum and envelope spectrum with the fault frequencies to this PNG')
    return p


def load_samples(path: Path, column: int | None) -> np.ndarray:
    """One channel of samples from a CSV or NPY file, or InputError naming the problem."""
    if not path.is_file():
        raise InputError(f'{path}: no such file')
    suffix = path.suffix.lower()
    try:
        if suffix == '.npy':
            data = np.load(path, allow_pickle=False)
        elif suffix in ('.csv', '.txt'):
            data = _load_csv(path)
        else:
            raise InputError(f'{path}: unsupported file type {suffix!r}; accepted: .csv, .txt, .npy')
    except InputError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f'{path}: unreadable ({exc})') from exc
    if not np.issubdtype(np.asarray(data).dtype, np.number):
        raise InputError(f'{path}: holds {data.dtype} values, not numbers')
    data = np.asarray(data, dtype=float)
    if data.ndim == 2 and column is None and data.shape[1] == 1:
        column = 0
    if data.ndim == 2:
        if column is None:
            raise InputError(f'{path}: has {data.shape[1]} columns; choose one with --column 0..{data.shape[1] - 1}')
        if not 0 <= column < data.shape[1]:
            raise InputError(f'{path}: --column {column} out of range; accepted: 0..{data.shape[1] - 1}')
        data = data[:, column]
    elif data.ndim != 1:
        raise InputError(f'{path}: wrong shape {data.shape}; accepted: 1-D samples or 2-D rows x columns')
    elif column not in (None, 0):
        raise InputError(f'{path}: has one column; --column {column} does not exist')
    bad = ~np.isfinite(data)
    if bad.any():
        raise InputError(f'{path}: {int(bad.sum())} NaN/inf samples (first at index {int(np.argmax(bad))})')
    return data


def _load_csv(path: Path) -> np.ndarray:
    try:
        return np.loadtxt(path, delimiter=',', ndmin=1)
    except ValueError:
        return np.loadtxt(path, delimiter=',', skiprows=1, ndmin=1)   # a header row


def _bearing(args: argparse.Namespace) -> BearingGeometry | None:
    geometry = (args.n_balls, args.ball_diameter_mm, args.pitch_diameter_mm)
    if args.bearing and any(v is not None for v in geometry):
        raise InputError('give either --bearing or the geometry (--n-balls, --ball-diameter-mm, --pitch-diameter-mm)')
    if args.bearing:
        return bearing_preset(args.bearing)
    if all(v is None for v in geometry):
        return None
    if any(v is None for v in geometry):
        raise InputError('bearing geometry needs all of --n-balls, --ball-diameter-mm, --pitch-diameter-mm')
    try:
        return BearingGeometry(args.n_balls, args.ball_diameter_mm, args.pitch_diameter_mm, args.contact_angle_deg)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def _check(args: argparse.Namespace, samples: np.ndarray, shaft_hz: float | None,
           bearing: BearingGeometry | None) -> AnalysisConfig:
    fs = args.sample_rate_hz
    if not (math.isfinite(fs) and fs > 0.0):
        raise InputError(f'--sample-rate-hz must be a positive number of Hz, got {fs}')
    if not (math.isfinite(args.resolution_hz) and args.resolution_hz > 0.0):
        raise InputError(f'--resolution-hz must be > 0, got {args.resolution_hz}')
    needed = int(math.ceil(fs / args.resolution_hz))
    if samples.size < needed:
        raise InputError(f'{args.file}: {samples.size} samples ({samples.size / fs:.3g} s) are too short for '
                         f'{args.resolution_hz:g} Hz resolution at {fs:g} Hz; need at least {needed} samples '
                         f'(or a coarser --resolution-hz)')
    if shaft_hz is not None and not (math.isfinite(shaft_hz) and shaft_hz > 0.0):
        raise InputError(f'shaft speed must be > 0, got {shaft_hz} Hz')
    if shaft_hz is not None and bearing is not None:
        highest = 3.0 * fault_frequencies(bearing, shaft_hz).bpfi_hz    # third BPFI harmonic
        if highest >= fs / 2.0:
            raise InputError(f'sample rate {fs:g} Hz is too low: bearing lines reach {highest:.4g} Hz, above the '
                             f'Nyquist frequency {fs / 2:g} Hz (wrong --sample-rate-hz?)')
    # A baseline compares windows feature by feature: one fixed envelope band, not one per window.
    fixed = args.learn_baseline is not None or args.baseline is not None
    band = tuple(args.envelope_band_hz) if args.envelope_band_hz else (None if fixed else 'auto')
    try:
        config = AnalysisConfig(envelope_band_hz=band, iso_zone_boundaries_mm_s=tuple(args.iso_zones_mm_s))
        config.envelope_band(fs)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    return config


def analyse(args: argparse.Namespace) -> dict[str, object]:
    samples = load_samples(args.file, args.column)
    shaft_hz = args.rpm / 60.0 if args.rpm is not None else args.shaft_hz
    bearing = _bearing(args)
    config = _check(args, samples, shaft_hz, bearing)
    try:
        features = extract_features(samples, args.sample_rate_hz, shaft_hz, bearing, config)
    except ValueError as exc:
        raise InputError(f'{args.file}: {exc}') from exc
    if args.learn_baseline is not None:
        return _learn_baseline(args, samples, shaft_hz, bearing, config)
    if args.baseline is not None:
        return _rate_against_baseline(args, samples, shaft_hz, bearing, config)
    diagnosis = diagnose(features)
    zone = iso_zone(features.velocity_rms_mm_s, config.iso_zone_boundaries_mm_s)
    verdict: dict[str, object] = {
        'fault': diagnosis.fault, 'confidence': diagnosis.confidence,
        'raw_confidence': diagnosis.raw_confidence, 'confidence_calibrated': diagnosis.calibrated,
        'scores': dict(diagnosis.evidence), 'baseline': 'none: baseline-free rules (see docs/sensors.md)'}
    if diagnosis.note:
        verdict['note'] = diagnosis.note
    result: dict[str, object] = {
        'file': str(args.file), 'samples': int(samples.size), 'sample_rate_hz': args.sample_rate_hz,
        'duration_s': samples.size / args.sample_rate_hz, 'shaft_hz': shaft_hz,
        'bearing': None if bearing is None else bearing.__dict__,
        'features': features.summary(),
        'matches': [m.as_dict() for m in features.bearing + features.shaft],
        'condition': diagnosis.condition.as_dict() if diagnosis.condition else None,
        'iso_20816': {'velocity_rms_mm_s': features.velocity_rms_mm_s, 'band_hz': list(config.velocity_band_hz),
                      'zone': zone, 'meaning': ISO_ZONE_MEANING.get(zone, ''),
                      'boundaries_mm_s': list(config.iso_zone_boundaries_mm_s)},
        'verdict': verdict,
    }
    if args.plot is not None:
        try:
            _plot(args.plot, samples, args.sample_rate_hz, features, config)
        except OSError as exc:
            raise InputError(f'cannot write the plot {args.plot}: {exc}') from exc
        result['plot'] = str(args.plot)
    return result


def _windows(args: argparse.Namespace, samples: np.ndarray, window_s: float) -> list[np.ndarray]:
    n = int(round(window_s * args.sample_rate_hz))
    if not (math.isfinite(window_s) and window_s > 0.0) or n < 16:
        raise InputError(f'--window-s must give at least 16 samples, got {window_s} s')
    return [samples[i:i + n] for i in range(0, samples.size - n + 1, n)]


def _learn_baseline(args: argparse.Namespace, samples: np.ndarray, shaft_hz: float | None,
                    bearing: BearingGeometry | None, config: AnalysisConfig) -> dict[str, object]:
    window_s = args.window_s or 1.0
    windows = _windows(args, samples, window_s)
    if len(windows) < 3:
        raise InputError(f'{args.file}: {len(windows)} windows of {window_s:g} s; a baseline needs at least 3 '
                         '(20 or more recommended): record longer or use a shorter --window-s')
    band = config.envelope_band(args.sample_rate_hz)
    features = [extract_features(w, args.sample_rate_hz, shaft_hz, bearing, config, band_hz=band) for w in windows]
    baseline = fit_baseline([f.vector() for f in features], features[0].vector_names())
    joint = args.joint or UNNAMED_JOINT
    try:
        # An existing baseline file gets this joint added (one file for the arm's gearboxes).
        existing = read_baseline_file(args.learn_baseline) if args.learn_baseline.exists() else None
        document = baseline_document(
            existing, joint, sample_rate_hz=args.sample_rate_hz, window_s=window_s, bearing=bearing,
            envelope_band_hz=band, iso_zone_boundaries_mm_s=config.iso_zone_boundaries_mm_s,
            thresholds=HealthThresholds().__dict__, source_file=str(args.file), shaft_hz=shaft_hz, baseline=baseline)
    except ConfigError as exc:
        raise InputError(str(exc)) from exc
    try:
        args.learn_baseline.write_text(json.dumps(_json_safe(document), indent=1))
    except OSError as exc:
        raise InputError(f'cannot write the baseline {args.learn_baseline}: {exc}') from exc
    his = [baseline.health_index(f.vector()) for f in features]
    return {'baseline': str(args.learn_baseline), 'joint': joint,
            'joints_in_file': sorted(document['joints']),  # type: ignore[call-overload]
            'windows': len(windows), 'window_s': window_s,
            'shaft_hz': shaft_hz, 'features': len(baseline.names), 'envelope_band_hz': list(band),
            'learning_health_index': {'median': float(np.median(his)), 'max': float(np.max(his))},
            'warning': None if len(windows) >= 20 else f'only {len(windows)} windows: 20 or more give a steadier '
                                                        'baseline (fewer are shrunk harder towards independence)'}


def load_baseline(path: Path, joint: str | None = None) -> tuple[BaselineFile, str, HealthBaseline]:
    """The file written by --learn-baseline, the joint chosen (`joint`, or the only one) and its
    HealthBaseline, or InputError."""
    try:
        loaded = read_baseline_file(path)
    except ConfigError as exc:
        raise InputError(str(exc)) from exc
    if joint is None:
        if len(loaded.baselines) != 1:
            raise InputError(f'{path}: holds baselines of {", ".join(sorted(loaded.baselines))}; choose one '
                             'with --joint')
        joint = next(iter(loaded.baselines))
    if joint not in loaded.baselines:
        raise InputError(f'{path}: no baseline for joint {joint!r}; it holds {", ".join(sorted(loaded.baselines))}')
    return loaded, joint, loaded.baselines[joint]


def _rate_against_baseline(args: argparse.Namespace, samples: np.ndarray, shaft_hz: float | None,
                           bearing: BearingGeometry | None, config: AnalysisConfig) -> dict[str, object]:
    loaded, joint, baseline = load_baseline(args.baseline, args.joint)
    document = loaded.document
    if loaded.sample_rate_hz != args.sample_rate_hz:
        raise InputError(f'baseline was learnt at {loaded.sample_rate_hz:g} Hz, the file is '
                         f'{args.sample_rate_hz:g} Hz: learn one at this sample rate')
    learnt_hz = loaded.shaft_hz[joint]
    if (learnt_hz is None) != (shaft_hz is None) or (
            shaft_hz is not None and learnt_hz is not None and abs(shaft_hz - learnt_hz) > SPEED_MATCH * learnt_hz):
        raise InputError(f'baseline was learnt at shaft speed {learnt_hz} Hz, this file is at {shaft_hz} Hz: '
                         f'a baseline holds within {SPEED_MATCH:.0%} of its speed')
    if (None if bearing is None else bearing.__dict__) != loaded.bearing:
        raise InputError('bearing differs from the one the baseline was learnt with')
    window_s = args.window_s or loaded.window_s
    band = loaded.envelope_band_hz
    t = document['thresholds']
    if not isinstance(t, dict):
        raise InputError(f'{args.baseline}: thresholds must be an object, got {t!r}')
    thresholds = HealthThresholds(t['warn'], t['alarm'], t.get('clear_ratio', 0.8))
    rows, level = [], 0
    stamps, his = [], []
    for k, w in enumerate(_windows(args, samples, window_s)):
        f = extract_features(w, args.sample_rate_hz, shaft_hz, bearing, config, band_hz=band)
        if f.vector_names() != baseline.names:
            raise InputError('the windows give other features than the baseline (different options?)')
        hi = baseline.health_index(f.vector())
        level = thresholds.level(hi, level)
        d = diagnose(f, baseline, thresholds)
        zone = iso_zone(f.velocity_rms_mm_s, config.iso_zone_boundaries_mm_s)
        rows.append({'start_s': k * window_s, 'health_index': hi, 'level': ('OK', 'WARN', 'ERROR')[level],
                     'fault': d.fault, 'confidence': d.confidence, 'velocity_rms_mm_s': f.velocity_rms_mm_s,
                     'iso_zone': zone})
        stamps.append(k * window_s)
        his.append(hi)
    if not rows:
        raise InputError(f'{args.file}: shorter than one {window_s:g} s window')
    rul = estimate_rul(stamps, his, thresholds.alarm)
    return {'file': str(args.file), 'baseline': str(args.baseline), 'joint': joint, 'window_s': window_s,
            'shaft_hz': shaft_hz,
            'thresholds': thresholds.__dict__, 'windows': rows,
            'summary': {'windows': len(rows), 'max_health_index': float(np.max(his)), 'final_level': rows[-1]['level'],
                        'levels': {name: sum(r['level'] == name for r in rows) for name in ('OK', 'WARN', 'ERROR')}},
            'rul': rul.as_dict()}


def _plot(path: Path, samples: np.ndarray, fs: float, features, config: AnalysisConfig) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    spectrum = amplitude_spectrum(samples, fs)
    envelope = envelope_spectrum(samples, fs, features.envelope_band_hz)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), constrained_layout=True)
    top.semilogy(spectrum.freqs_hz, np.maximum(spectrum.amplitude, 1e-12), lw=0.6, color='0.2')
    top.set(title='Spectrum (Hann, amplitude)', xlabel='frequency [Hz]', ylabel='amplitude')
    for m in features.shaft:
        top.axvline(m.freq_hz, color='tab:blue', lw=0.8, ls='--')
        top.text(m.freq_hz, top.get_ylim()[1], m.name, color='tab:blue', fontsize=7, va='top', rotation=90)
    if features.shaft:
        top.set_xlim(0, min(fs / 2, 12 * features.shaft[1].freq_hz))
    bottom.plot(envelope.freqs_hz, envelope.amplitude, lw=0.6, color='0.2')
    lo, hi = features.envelope_band_hz
    bottom.set(title=f'Envelope spectrum (band {lo:.0f}-{hi:.0f} Hz)', xlabel='frequency [Hz]', ylabel='amplitude')
    colours = {'ftf': 'tab:gray', 'bsf': 'tab:green', 'bpfo': 'tab:red', 'bpfi': 'tab:purple'}
    for m in features.bearing:
        for k in range(1, config.bearing_harmonics + 1):
            bottom.axvline(k * m.freq_hz, color=colours[m.name], lw=0.8, ls='--',
                           label=f'{m.name} {m.freq_hz:.1f} Hz' if k == 1 else None)
    if features.bearing:
        bottom.set_xlim(0, min(envelope.freqs_hz[-1], 4 * max(m.freq_hz for m in features.bearing)))
        bottom.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _json_safe(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:       # argparse already printed usage and the reason on stderr
        return int(exc.code or 0)
    try:
        result = analyse(args)
    except InputError as exc:
        print(f'analyze-vibration: error: {exc}', file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(_json_safe(result), indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
