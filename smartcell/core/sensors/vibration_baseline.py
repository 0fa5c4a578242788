"""Learned healthy baselines on disk: the file `smartcell analyze-vibration --learn-baseline` writes
and the vibration_sensor node starts from (parameter `baseline_file`).

One file holds one baseline per joint (gearbox), learnt at one sample rate, window length,
bearing and envelope band, which every baseline in the file shares: the health index compares
feature vectors, and each of those settings changes the features (resolution, line amplitudes,
the band the envelope is taken in). A file that does not match the monitor it is loaded into is
refused with the file and the reason, never used, never silently replaced by online learning.

    {"format": "smartcell-vibration-baseline/2", "sample_rate_hz": 25600.0, "window_s": 1.0,
     "bearing": {"n_balls": 9, ...} | null, "envelope_band_hz": [lo, hi],
     "iso_zone_boundaries_mm_s": [...], "thresholds": {...},
     "joints": {"elbow_joint": {"source_file": "...", "shaft_hz": 23.9, "baseline": {HealthBaseline}}}}

Format /1 (one baseline, no joint name, written before joints were named) is read as the joint
`unnamed`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from smartcell.core.params import ConfigError
from smartcell.core.sensors.vibration import BearingGeometry, HealthBaseline

BASELINE_FORMAT = 'smartcell-vibration-baseline/2'
BASELINE_FORMAT_V1 = 'smartcell-vibration-baseline/1'
UNNAMED_JOINT = 'unnamed'
_SHARED_KEYS = ('sample_rate_hz', 'window_s', 'bearing', 'envelope_band_hz')


@dataclass(frozen=True)
class BaselineFile:
    """A parsed and checked baseline file."""

    path: str
    sample_rate_hz: float
    window_s: float
    bearing: Mapping[str, object] | None         # BearingGeometry fields, None = learnt without bearing lines
    envelope_band_hz: tuple[float, float]
    baselines: Mapping[str, HealthBaseline]     # joint -> baseline
    shaft_hz: Mapping[str, float | None]        # joint -> shaft speed it was learnt at, Hz
    document: Mapping[str, object]              # the file as read (format /2)


def _fail(path: Path | str, reason: str) -> ConfigError:
    return ConfigError(f'vibration baseline file {path}: {reason}')


def read_baseline_file(path: Path | str) -> BaselineFile:
    """Read and check a baseline file; ConfigError naming the file and what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise _fail(path, f'cannot be read ({exc.strerror or exc})') from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise _fail(path, f'is not JSON ({exc})') from exc
    if isinstance(document, dict) and document.get('format') == BASELINE_FORMAT_V1:
        document = _upgrade_v1(document)
    if not isinstance(document, dict) or document.get('format') != BASELINE_FORMAT:
        raise _fail(path, f'not a smartcell vibration baseline (format {BASELINE_FORMAT!r} expected)')
    try:
        sample_rate_hz = float(document['sample_rate_hz'])
        window_s = float(document['window_s'])
        band = tuple(float(v) for v in document['envelope_band_hz'])
        bearing = document['bearing']
        joints = document['joints']
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f'incomplete or malformed ({exc!r})') from exc
    if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0.0 and math.isfinite(window_s) and window_s > 0.0):
        raise _fail(path, f'implausible sample rate {sample_rate_hz} Hz or window {window_s} s')
    if len(band) != 2 or not 0.0 <= band[0] < band[1] <= sample_rate_hz / 2.0:
        raise _fail(path, f'envelope band {list(band)} Hz is not [low, high] within Nyquist')
    if bearing is not None and not isinstance(bearing, dict):
        raise _fail(path, f'bearing must be an object or null, got {bearing!r}')
    if not isinstance(joints, dict) or not joints:
        raise _fail(path, 'holds no joint baselines')
    baselines, speeds = {}, {}
    for joint, entry in joints.items():
        try:
            baselines[str(joint)] = HealthBaseline.from_dict(entry['baseline'])
            speed = entry.get('shaft_hz')
            speeds[str(joint)] = None if speed is None else float(speed)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise _fail(path, f'joint {joint!r}: {exc}') from exc
    return BaselineFile(str(path), sample_rate_hz, window_s, bearing, (band[0], band[1]), baselines, speeds, document)


def _upgrade_v1(document: dict) -> dict:
    upgraded = {k: v for k, v in document.items() if k not in ('baseline', 'source_file', 'shaft_hz')}
    upgraded['format'] = BASELINE_FORMAT
    upgraded['joints'] = {UNNAMED_JOINT: {'source_file': document.get('source_file'),
                                          'shaft_hz': document.get('shaft_hz'),
                                          'baseline': document.get('baseline')}}
    return upgraded


def baseline_document(existing: BaselineFile | None, joint: str, *, sample_rate_hz: float, window_s: float,
                      bearing: BearingGeometry | None, envelope_band_hz: tuple[float, float],
                      iso_zone_boundaries_mm_s: Sequence[float], thresholds: Mapping[str, float],
                      source_file: str, shaft_hz: float | None, baseline: HealthBaseline) -> dict[str, object]:
    """The file content with `joint`'s baseline added to (or replaced in) `existing`, whose shared
    settings must be the same (ConfigError naming the one that differs)."""
    shared: dict[str, object] = {'sample_rate_hz': float(sample_rate_hz), 'window_s': float(window_s),
                                 'bearing': None if bearing is None else dict(bearing.__dict__),
                                 'envelope_band_hz': [float(v) for v in envelope_band_hz]}
    joints: dict[str, object] = {}
    if existing is not None:
        for key in _SHARED_KEYS:
            if _normalised(existing.document.get(key)) != _normalised(shared[key]):
                raise _fail(existing.path, f'holds baselines learnt with {key} {existing.document.get(key)}, not '
                                           f'{shared[key]}: every baseline in a file shares it; write another file')
        joints = dict(existing.document['joints'])  # type: ignore[call-overload]
    joints[joint] = {'source_file': source_file, 'shaft_hz': shaft_hz, 'baseline': baseline.as_dict()}
    return {'format': BASELINE_FORMAT, **shared,
            'iso_zone_boundaries_mm_s': [float(v) for v in iso_zone_boundaries_mm_s],
            'thresholds': dict(thresholds), 'joints': joints}


def _normalised(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def baselines_for_monitor(loaded: BaselineFile, joints: Sequence[str], *, sample_rate_hz: float, window_s: float,
                          bearing: BearingGeometry | None, feature_names: Sequence[str],
                          envelope_band_hz: tuple[float, float] | None) -> dict[str, HealthBaseline]:
    """The baseline of every monitored joint, after checking that the file was learnt the way the
    monitor analyses: same sample rate, window length, bearing, feature vector and (if the monitor
    has a fixed one) envelope band. ConfigError naming the file and the first mismatch."""
    if not math.isclose(loaded.sample_rate_hz, sample_rate_hz, rel_tol=1e-9):
        raise _fail(loaded.path, f'learnt at {loaded.sample_rate_hz:g} Hz, the node samples at {sample_rate_hz:g} Hz')
    if not math.isclose(loaded.window_s, window_s, rel_tol=1e-9):
        raise _fail(loaded.path, f'learnt on {loaded.window_s:g} s windows, the node uses {window_s:g} s '
                                 '(the window sets the frequency resolution the features depend on)')
    wanted = None if bearing is None else dict(bearing.__dict__)
    if _normalised(loaded.bearing) != _normalised(wanted):
        raise _fail(loaded.path, f'learnt with bearing {loaded.bearing}, the node monitors {wanted}')
    if envelope_band_hz is not None and not all(
            math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) for a, b in zip(loaded.envelope_band_hz, envelope_band_hz)):
        raise _fail(loaded.path, f'learnt in the envelope band {list(loaded.envelope_band_hz)} Hz, the node is set to '
                                 f'{list(envelope_band_hz)} Hz (set envelope_band_hz to [0, 0] to use the file\'s)')
    missing = [j for j in joints if j not in loaded.baselines]
    if missing:
        raise _fail(loaded.path, f'no baseline for joint(s) {", ".join(missing)} (it holds '
                                 f'{", ".join(sorted(loaded.baselines))}); learn one per joint with '
                                 '`smartcell analyze-vibration REC --learn-baseline FILE --joint NAME`')
    out = {}
    for joint in joints:
        baseline = loaded.baselines[joint]
        if tuple(baseline.names) != tuple(feature_names):
            extra = sorted(set(baseline.names) ^ set(feature_names))
            raise _fail(loaded.path, f'joint {joint}: its {len(baseline.names)} features are not the node\'s '
                                     f'{len(feature_names)} (differing: {", ".join(extra) or "order"}); learn it with '
                                     'the node\'s bearing and a shaft speed (--bearing, --rpm/--shaft-hz)')
        out[joint] = baseline
    return out
