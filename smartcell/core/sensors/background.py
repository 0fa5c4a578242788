"""Static background of the safety laser scan: what the empty cell returns, beam by beam.

Taught once at commissioning with nobody in the cell (`smartcell teach-background`), or computed
from the twin's layout. A reading within `tolerance_m` of its beam's background is the fence, the
table or the bench, never a leg: leg detection skips it. Everything else stays a candidate:

* a reading SHORTER than the background by more than the tolerance (something in front of the
  static scene: a person standing at the table is at least one leg diameter, >= 0.08 m, in front);
* a reading LONGER than the background by more than the tolerance (a static object is gone, so
  what is seen now is unknown);
* any return on a beam that saw nothing when taught.

So the rule can only remove returns at the static scene itself, where a person cannot stand
(docs/sensors.md, Static background). Why it is needed: a person's shadow cuts a wall or panel
into a piece as narrow as a leg, which the leg detector took for a second person (issue 13).

The file is strict JSON (no return = null, not Infinity). Loading it checks everything a wrong file
could get wrong; any mismatch raises BackgroundError naming the file and the field, never a
silent fallback to no background.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from smartcell.core.sensors.people_tracking import MAX_BACKGROUND_TOLERANCE_M
from smartcell.core.sensors.scan_validation import ScanLayout

__all__ = ['MAX_BACKGROUND_TOLERANCE_M', 'BackgroundError', 'ScanBackground', 'read_background_file',
           'write_background_file', 'teach_background', 'background_from_json']

FORMAT = 'smartcell-scan-background'
VERSION = 1
POSE_TOLERANCE_M = 0.005            # the scanner moved more than this: the background no longer fits
POSE_TOLERANCE_RAD = 0.002          # 2 mrad: 9 mm at 4.5 m


class BackgroundError(ValueError):
    """A background file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ScanBackground:
    """Per-beam range (m) of the empty cell; +inf where the beam saw nothing within range."""

    layout: ScanLayout
    ranges_m: np.ndarray                      # (beam_count,), float64
    frame_id: str
    scanner_pose_xy_yaw: tuple[float, float, float]
    scans: int = 1                            # scans the ranges were taken from (median per beam)
    source: str = ''

    def __post_init__(self) -> None:
        ranges = np.asarray(self.ranges_m, dtype=float)
        if ranges.shape != (self.layout.beam_count,):
            raise BackgroundError(f'{ranges.size} ranges for a layout of {self.layout.beam_count} beams')
        finite = np.isfinite(ranges)
        if np.any(np.isnan(ranges)) or np.any(ranges == -np.inf):
            raise BackgroundError('ranges must be numbers or no return, not NaN or -inf')
        bad = finite & ((ranges < self.layout.range_min_m) | (ranges > self.layout.range_max_m))
        if np.any(bad):
            beam = int(np.flatnonzero(bad)[0])
            raise BackgroundError(f'beam {beam}: {ranges[beam]} m outside [range_min, range_max] = '
                                  f'[{self.layout.range_min_m}, {self.layout.range_max_m}] m')
        ranges.setflags(write=False)
        object.__setattr__(self, 'ranges_m', ranges)

    def at_background(self, ranges_m: np.ndarray, tolerance_m: float) -> np.ndarray:
        """Mask of the beams whose reading is the static scene (|r - background| <= tolerance_m)."""
        ranges = np.asarray(ranges_m, dtype=float)
        if ranges.shape != self.ranges_m.shape:
            raise ValueError(f'scan of {ranges.size} beams against a background of {self.ranges_m.size}')
        with np.errstate(invalid='ignore'):        # inf - inf: a beam without a background is never one
            return np.isfinite(ranges) & np.isfinite(self.ranges_m) & (np.abs(ranges - self.ranges_m) <= tolerance_m)

    def foreground(self, ranges_m: np.ndarray, tolerance_m: float) -> np.ndarray:
        """The scan with its background readings replaced by +inf (no return): gaps that split
        clusters, never join them. Every other reading is kept as it is."""
        return np.where(self.at_background(ranges_m, tolerance_m), np.inf, np.asarray(ranges_m, dtype=float))

    def check_fits(self, frame_id: str, scanner_pose_xy_yaw: Sequence[float], layout: ScanLayout | None) -> None:
        """Raise BackgroundError unless this background belongs to this scanner: frame, mount, layout."""
        if frame_id != self.frame_id:
            raise BackgroundError(f'taught for frame {self.frame_id!r}, the scanner is {frame_id!r}')
        x, y, yaw = (float(v) for v in scanner_pose_xy_yaw)
        bx, by, byaw = self.scanner_pose_xy_yaw
        yaw_error = abs((yaw - byaw + math.pi) % (2 * math.pi) - math.pi)
        if math.hypot(x - bx, y - by) > POSE_TOLERANCE_M or yaw_error > POSE_TOLERANCE_RAD:
            raise BackgroundError(f'taught with the scanner at {list(self.scanner_pose_xy_yaw)} (x m, y m, yaw rad), '
                                  f'it is configured at {[x, y, yaw]}: teach the background again after moving it')
        if layout is not None and not layout.matches(self.layout):
            raise BackgroundError(f'taught for beam layout {_layout_text(self.layout)}, scan_layout is '
                                  f'{_layout_text(layout)}')

    def to_json(self) -> dict[str, Any]:
        layout = self.layout
        return {'format': FORMAT, 'version': VERSION, 'frame_id': self.frame_id,
                'scanner_pose_xy_yaw': [float(v) for v in self.scanner_pose_xy_yaw],
                'angle_min_rad': layout.angle_min_rad, 'angle_increment_rad': layout.angle_increment_rad,
                'beam_count': layout.beam_count, 'range_min_m': layout.range_min_m, 'range_max_m': layout.range_max_m,
                'scans': int(self.scans), 'source': self.source,
                'ranges_m': [round(float(r), 4) if math.isfinite(r) else None for r in self.ranges_m]}


def _layout_text(layout: ScanLayout) -> str:
    return (f'(angle_min {layout.angle_min_rad} rad, increment {layout.angle_increment_rad} rad, '
            f'{layout.beam_count} beams, range {layout.range_min_m}-{layout.range_max_m} m)')


def background_from_json(data: Any) -> ScanBackground:
    """The background of a parsed file; BackgroundError naming the field when anything is off."""
    if not isinstance(data, dict):
        raise BackgroundError(f'expected a JSON object, got {type(data).__name__}')
    if data.get('format') != FORMAT or data.get('version') != VERSION:
        raise BackgroundError(f'not a {FORMAT} file of version {VERSION} (format {data.get("format")!r}, '
                              f'version {data.get("version")!r})')

    def number(name: str) -> float:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BackgroundError(f'{name} must be a finite number, got {value!r}')
        return float(value)

    count = data.get('beam_count')
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise BackgroundError(f'beam_count must be a positive integer, got {count!r}')
    try:
        layout = ScanLayout.from_param([number('angle_min_rad'), number('angle_increment_rad'), count,
                                        number('range_min_m'), number('range_max_m')])
    except ValueError as exc:
        raise BackgroundError(str(exc)) from None
    if layout is None:
        raise BackgroundError('the beam layout is all zero')
    pose = data.get('scanner_pose_xy_yaw')
    if not isinstance(pose, list) or len(pose) != 3 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pose):
        raise BackgroundError(f'scanner_pose_xy_yaw must be 3 finite numbers, got {pose!r}')
    frame_id, ranges = data.get('frame_id'), data.get('ranges_m')
    if not isinstance(frame_id, str) or not frame_id:
        raise BackgroundError(f'frame_id must be a non-empty string, got {frame_id!r}')
    if not isinstance(ranges, list) or not all(
            r is None or (isinstance(r, (int, float)) and not isinstance(r, bool)) for r in ranges):
        raise BackgroundError('ranges_m must be a list of numbers (m) or null (no return)')
    scans = data.get('scans', 1)
    if isinstance(scans, bool) or not isinstance(scans, int) or scans < 1:
        raise BackgroundError(f'scans must be a positive integer, got {scans!r}')
    return ScanBackground(layout, np.array([np.inf if r is None else float(r) for r in ranges]), frame_id,
                          (float(pose[0]), float(pose[1]), float(pose[2])), scans, str(data.get('source', '')))


def read_background_file(path: Path) -> ScanBackground:
    """Load a background file; BackgroundError (naming the file) when it is missing, unreadable or wrong."""
    try:
        text = path.read_text(encoding='utf-8')
    except OSError as exc:
        raise BackgroundError(f'background file {path}: {exc.strerror or exc}') from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
        return background_from_json(data)
    except (json.JSONDecodeError, BackgroundError) as exc:
        raise BackgroundError(f'background file {path}: {exc}') from None


def _refuse_constant(name: str) -> float:
    raise BackgroundError(f'{name} is not strict JSON (no return is null)')


def write_background_file(path: Path, background: ScanBackground) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(background.to_json(), allow_nan=False) + '\n', encoding='utf-8')


def teach_background(scans_m: Sequence[np.ndarray], layout: ScanLayout, frame_id: str,
                     scanner_pose_xy_yaw: Sequence[float], tolerance_m: float, source: str = '') -> ScanBackground:
    """The background from scans of the empty cell: per beam the median of its returns.

    Refused (BackgroundError) when a beam is not steady: returns on fewer than half the scans, or
    more than a quarter of them further than tolerance_m from the median. That is somebody moving
    through the cell while teaching, or a beam that flickers between two surfaces; either would
    make the taught background unsafe or useless, so teach again with the cell empty."""
    if len(scans_m) < 1:
        raise BackgroundError('no scans to teach from')
    stack = np.array([np.asarray(s, dtype=float) for s in scans_m])
    if stack.shape[1:] != (layout.beam_count,):
        raise BackgroundError(f'scans of {stack.shape[1:]} beams for a layout of {layout.beam_count}')
    stack = np.where((stack >= layout.range_min_m) & (stack <= layout.range_max_m), stack, np.inf)
    hits = np.isfinite(stack)
    returning = hits.sum(axis=0) * 2 > len(stack)
    masked = np.where(hits, stack, np.nan)
    # Every column here has returns on more than half the scans: nanmedian never sees an all-NaN one.
    median = np.nanmedian(masked[:, returning], axis=0) if np.any(returning) else np.empty(0)
    ranges = np.full(layout.beam_count, np.inf)
    ranges[returning] = median
    far = hits[:, returning] & (np.abs(stack[:, returning] - median) > tolerance_m)
    unsteady = np.flatnonzero(returning)[far.sum(axis=0) * 4 > len(stack)]
    mixed = np.flatnonzero(~returning & hits.any(axis=0) & (hits.sum(axis=0) * 4 > len(stack)))
    if unsteady.size or mixed.size:
        beams = sorted(set(unsteady.tolist()) | set(mixed.tolist()))
        raise BackgroundError(f'{len(beams)} beams are not steady while teaching (first: {beams[:8]}): is the '
                              f'cell empty and the scanner still? Teach again')
    x, y, yaw = (float(v) for v in scanner_pose_xy_yaw)
    return ScanBackground(layout, ranges, frame_id, (x, y, yaw), len(stack), source)
