"""Validation of safety laser scans at the edge: a typed valid scan or a named reason, never an exception.

A faulty driver or a stray publisher must never make a person vanish. A scan the tracker cannot
trust is *rejected*: the scanner node then publishes no people for it, so the supervisor sees
silence on `humans` and stops after its people_timeout_s. "Rejected" is never "empty".

Beam readings (REP 117):
- a range in [range_min, range_max] is a return (something is there);
- +inf, or a finite range above range_max, is "no return": nothing within range. Valid: a real
  scanner reports exactly that towards an open fence gap;
- NaN, -inf, or a range below range_min (zero, negative: the driver's error codes, dazzle,
  something touching the window) is *unknown*: a person could be standing in that beam.
  An unknown beam inside the protective sector (by default the whole field of view) rejects the
  scan; outside it, more than `max_invalid_beams` unknown beams reject it. With the defaults any
  unknown beam rejects the scan: the conservative reading, relaxed only by an integrator's risk
  assessment (e.g. beams that always look at a reflective machine part outside the sector).

Geometry: the beam layout (angles, beam count, range limits) is configured or fixed by the first
valid scan and never changes afterwards: a scan with another layout is rejected, the tracker is
never rebuilt for it (a stray publisher with a 1 mm different range_min used to reset it).

Stamps: strictly increasing, advancing by at most `max_stamp_step_s`, and (when a clock is given)
within `max_stamp_offset_s` of it. A scan breaking the sequence never updates the state, so one
stamped +100 s cannot blind the node. A new time base (a restarted driver or twin, sim time reset)
is accepted only after `rearm_scans` consecutive scans that advance consistently on it; the
result then says `rearmed` and the caller restarts its tracker (old tracks belong to the old time).
The very same scan again (same stamp, same ranges: a repeat of a lockstep warm-up tick or a
re-delivery) is a `RepeatedScan`; the same stamp with other ranges is rejected.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

import numpy as np

from smartcell.core.sensors.people_tracking import ScanGeometry

# Far more than any safety scanner (0.1 deg over 360 deg is 3600 beams); bounds the work per scan
# before anything looks at the ranges.
MAX_BEAMS = 20_000
NANOSECONDS_PER_S = 1_000_000_000
# Tolerances of a layout comparison: the message fields are float32 (2.4e-7 relative), the
# difference a stray publisher shows is far larger (1 mm on range_min was enough to reset the tracker).
ANGLE_TOLERANCE_RAD = 1e-6
RANGE_TOLERANCE_M = 1e-5


class ScanFault(Enum):
    """Why a scan was rejected. The value is the short name shown on /diagnostics."""

    WRONG_FRAME = 'wrong_frame'
    BAD_STAMP = 'bad_stamp'                    # negative seconds or nanoseconds out of range
    STAMP_TOO_OLD = 'stamp_too_old'            # older than the clock by more than max_stamp_offset_s
    STAMP_IN_FUTURE = 'stamp_in_future'        # ahead of the clock by more than max_stamp_offset_s
    STAMP_BACKWARDS = 'stamp_backwards'        # not newer than the last accepted scan
    STAMP_JUMP = 'stamp_jump'                  # more than max_stamp_step_s after the last accepted scan
    STAMP_REUSED = 'stamp_reused'              # the last scan's stamp with other ranges
    BAD_ANGLES = 'bad_angles'                  # non-finite angles, angle_max <= angle_min, over a full turn
    BAD_INCREMENT = 'bad_increment'            # non-finite or non-positive angle_increment
    NO_BEAMS = 'no_beams'
    TOO_MANY_BEAMS = 'too_many_beams'
    BEAM_COUNT_MISMATCH = 'beam_count_mismatch'  # len(ranges) disagrees with the angles
    INTENSITIES_MISMATCH = 'intensities_mismatch'  # intensities neither empty nor one per beam
    BAD_RANGE_LIMITS = 'bad_range_limits'      # non-finite, negative, or range_min >= range_max
    BAD_TIME_FIELDS = 'bad_time_fields'        # non-finite or negative scan_time, time_increment too long
    LAYOUT_CHANGED = 'layout_changed'          # another beam layout than the expected one
    INVALID_BEAMS = 'invalid_beams'            # NaN, -inf or below range_min where a person could be
    UNREADABLE = 'unreadable'                  # a field of an impossible type or size


@dataclass(frozen=True)
class RawScan:
    """The fields of a sensor_msgs/LaserScan, as received (nothing trusted yet)."""

    stamp_sec: int
    stamp_nanosec: int
    frame_id: str
    angle_min_rad: float
    angle_max_rad: float
    angle_increment_rad: float
    time_increment_s: float
    scan_time_s: float
    range_min_m: float
    range_max_m: float
    ranges_m: np.ndarray
    intensities_count: int = 0

    @property
    def stamp_ns(self) -> int:
        return int(self.stamp_sec) * NANOSECONDS_PER_S + int(self.stamp_nanosec)


@dataclass(frozen=True)
class ScanLayout:
    """The beam layout a scanner keeps for its whole life (angles rad, ranges m)."""

    angle_min_rad: float
    angle_increment_rad: float
    beam_count: int
    range_min_m: float
    range_max_m: float

    @classmethod
    def of(cls, scan: RawScan) -> 'ScanLayout':
        return cls(float(scan.angle_min_rad), float(scan.angle_increment_rad), int(len(scan.ranges_m)),
                   float(scan.range_min_m), float(scan.range_max_m))

    def matches(self, other: 'ScanLayout') -> bool:
        return (self.beam_count == other.beam_count
                and abs(self.angle_min_rad - other.angle_min_rad) <= ANGLE_TOLERANCE_RAD
                and abs(self.angle_increment_rad - other.angle_increment_rad) <= ANGLE_TOLERANCE_RAD
                and abs(self.range_min_m - other.range_min_m) <= RANGE_TOLERANCE_M
                and abs(self.range_max_m - other.range_max_m) <= RANGE_TOLERANCE_M)

    @classmethod
    def from_param(cls, values: Sequence[float]) -> 'ScanLayout | None':
        """The scanner node's `scan_layout` parameter: all zero is None (fixed by the first valid scan)."""
        if len(values) != 5:
            raise ValueError(f'scan_layout needs 5 values (angle_min rad, angle_increment rad, beam count, '
                             f'range_min m, range_max m), got {list(values)}')
        if not any(values):
            return None
        angle_min, increment, count, range_min, range_max = (float(v) for v in values)
        if increment <= 0.0 or count != int(count) or not 1 <= count <= MAX_BEAMS or not 0.0 <= range_min < range_max:
            raise ValueError(f'scan_layout {list(values)} is not a beam layout (increment > 0, an integer beam '
                             f'count in [1, {MAX_BEAMS}], 0 <= range_min < range_max)')
        return cls(angle_min, increment, int(count), range_min, range_max)

    def geometry(self) -> ScanGeometry:
        """The tracker's view of the layout."""
        return ScanGeometry(self.angle_min_rad, self.angle_increment_rad, self.range_min_m, self.range_max_m)


@dataclass(frozen=True)
class ScanLimits:
    """What the validator tolerates (units in the names)."""

    frame_id: str = 'scanner_link'
    protective_sector_rad: tuple[float, float] = (-math.pi, math.pi)   # scanner frame: any unknown beam here rejects
    max_invalid_beams: int = 0              # unknown beams tolerated outside the protective sector
    max_stamp_step_s: float = 1.0           # largest advance between two accepted scans
    max_stamp_offset_s: float = 0.5         # |stamp - clock| allowed when a clock is given
    rearm_scans: int = 3                    # consistent scans that establish a new time base

    def __post_init__(self) -> None:
        lo, hi = self.protective_sector_rad
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f'protective_sector_rad must be (lo, hi) with lo <= hi, got {self.protective_sector_rad}')
        if self.max_invalid_beams < 0:
            raise ValueError(f'max_invalid_beams must be >= 0, got {self.max_invalid_beams}')
        if not (math.isfinite(self.max_stamp_step_s) and self.max_stamp_step_s > 0.0):
            raise ValueError(f'max_stamp_step_s must be > 0, got {self.max_stamp_step_s}')
        if not (math.isfinite(self.max_stamp_offset_s) and self.max_stamp_offset_s >= 0.0):
            raise ValueError(f'max_stamp_offset_s must be >= 0, got {self.max_stamp_offset_s}')
        if self.rearm_scans < 1:
            raise ValueError(f'rearm_scans must be >= 1, got {self.rearm_scans}')

    @classmethod
    def from_params(cls, params: dict) -> 'ScanLimits':
        """From the scanner node's parameters (smartcell.core.node_params.SCANNER)."""
        lo, hi = params['protective_sector_rad']
        return cls(frame_id=params['scanner_frame'], protective_sector_rad=(float(lo), float(hi)),
                   max_invalid_beams=int(params['max_invalid_beams']),
                   max_stamp_step_s=float(params['max_stamp_step_s']),
                   max_stamp_offset_s=float(params['max_stamp_offset_s']))


@dataclass(frozen=True)
class ValidScan:
    """A scan the tracker may use: every beam inside the protective sector is a return or "no return"."""

    stamp_s: float
    stamp_ns: int
    layout: ScanLayout
    ranges_m: np.ndarray                    # float64, read-only; unknown beams (outside the sector) as NaN
    returns: int                            # beams with something in range
    invalid_beams: int                      # unknown beams tolerated outside the protective sector
    rearmed: bool = False                   # first scan of a new time base: restart the tracker


@dataclass(frozen=True)
class ScanRejected:
    """A scan that must not be read as anything, least of all as "nobody there"."""

    fault: ScanFault
    detail: str

    @property
    def reason(self) -> str:
        return f'{self.fault.value}: {self.detail}'


@dataclass(frozen=True)
class RepeatedScan:
    """The last accepted scan again (same stamp, same ranges): answer as before, change nothing."""

    stamp_ns: int


def _finite(*values: float) -> bool:
    return all(not isinstance(v, bool) and math.isfinite(float(v)) for v in values)


def check_message(scan: RawScan, limits: ScanLimits) -> ScanRejected | None:
    """The checks that need nothing but the scan itself: frame, stamp fields, layout fields, lengths."""
    if scan.frame_id != limits.frame_id:
        return ScanRejected(ScanFault.WRONG_FRAME,
                            f'frame {scan.frame_id!r} is not the configured {limits.frame_id!r}')
    if scan.stamp_sec < 0 or not 0 <= scan.stamp_nanosec < NANOSECONDS_PER_S:
        return ScanRejected(ScanFault.BAD_STAMP, f'stamp {scan.stamp_sec} s {scan.stamp_nanosec} ns is not a time')
    if not _finite(scan.angle_increment_rad) or scan.angle_increment_rad <= 0.0:
        return ScanRejected(ScanFault.BAD_INCREMENT,
                            f'angle_increment {scan.angle_increment_rad!r} rad is not a positive number')
    if not _finite(scan.angle_min_rad, scan.angle_max_rad) or scan.angle_max_rad < scan.angle_min_rad \
            or scan.angle_max_rad - scan.angle_min_rad > 2 * math.pi + scan.angle_increment_rad:
        return ScanRejected(ScanFault.BAD_ANGLES, f'angles [{scan.angle_min_rad!r}, {scan.angle_max_rad!r}] rad '
                            'are not a field of view (finite, min <= max, at most one turn)')
    if not _finite(scan.range_min_m, scan.range_max_m) or scan.range_min_m < 0.0 \
            or scan.range_min_m >= scan.range_max_m:
        return ScanRejected(ScanFault.BAD_RANGE_LIMITS, f'range_min {scan.range_min_m!r} m, range_max '
                            f'{scan.range_max_m!r} m: need 0 <= range_min < range_max, both finite')
    beams = len(scan.ranges_m)
    if beams == 0:
        return ScanRejected(ScanFault.NO_BEAMS, 'no ranges in the scan')
    if beams > MAX_BEAMS:
        return ScanRejected(ScanFault.TOO_MANY_BEAMS, f'{beams} beams, more than {MAX_BEAMS}')
    # Drivers disagree on whether angle_max is the last beam's angle or one step past it: one
    # increment of slack; any more means the angles do not describe these ranges.
    expected_beams = (scan.angle_max_rad - scan.angle_min_rad) / scan.angle_increment_rad + 1.0
    if abs(beams - expected_beams) > 1.0 + 1e-6 * expected_beams:
        return ScanRejected(ScanFault.BEAM_COUNT_MISMATCH, f'{beams} ranges but the angles describe '
                            f'{expected_beams:.1f} beams')
    if scan.intensities_count not in (0, beams):
        return ScanRejected(ScanFault.INTENSITIES_MISMATCH,
                            f'{scan.intensities_count} intensities for {beams} ranges')
    if not _finite(scan.scan_time_s, scan.time_increment_s) or scan.scan_time_s < 0.0 or (
            scan.scan_time_s > 0.0 and abs(scan.time_increment_s) * (beams - 1) > scan.scan_time_s * 1.01 + 1e-6):
        return ScanRejected(ScanFault.BAD_TIME_FIELDS, f'scan_time {scan.scan_time_s!r} s, time_increment '
                            f'{scan.time_increment_s!r} s over {beams} beams')
    return None


def classify_beams(scan: RawScan, limits: ScanLimits) -> tuple[np.ndarray | None, ScanRejected | None, int, int]:
    """(ranges as float64 with unknown beams NaN, rejection, returns, unknown beams outside the sector)."""
    ranges = np.array(scan.ranges_m, dtype=float)              # a copy: the caller's buffer stays untouched
    unknown = ~(ranges >= scan.range_min_m)                    # NaN, -inf, zero, negative, below range_min
    angles = scan.angle_min_rad + scan.angle_increment_rad * np.arange(ranges.size)
    lo, hi = limits.protective_sector_rad
    in_sector = (angles >= lo) & (angles <= hi)
    inside = np.flatnonzero(unknown & in_sector)
    if inside.size:
        first = int(inside[0])
        return None, ScanRejected(ScanFault.INVALID_BEAMS, (
            f'{inside.size} of {ranges.size} beams are unknown (NaN, -inf or below range_min '
            f'{scan.range_min_m:g} m) inside the protective sector, first beam {first} at '
            f'{math.degrees(angles[first]):.1f} deg reads {ranges[first]!r}: a person could be there')), 0, 0
    outside = int(np.count_nonzero(unknown))
    if outside > limits.max_invalid_beams:
        return None, ScanRejected(ScanFault.INVALID_BEAMS, (
            f'{outside} of {ranges.size} beams are unknown (NaN, -inf or below range_min) outside the protective '
            f'sector, more than the {limits.max_invalid_beams} tolerated')), 0, 0
    ranges[unknown] = np.nan                                   # the tracker skips them, as gaps
    returns = int(np.count_nonzero(ranges <= scan.range_max_m))
    ranges.setflags(write=False)
    return ranges, None, returns, outside


def check_stamp_to_clock(stamp_ns: int, now_s: float | None, limits: ScanLimits) -> ScanRejected | None:
    """A stamp too far from the clock (None: no clock to compare with, e.g. lockstep simulation)."""
    if now_s is None or limits.max_stamp_offset_s <= 0.0:
        return None
    offset_s = stamp_ns / NANOSECONDS_PER_S - now_s
    if offset_s > limits.max_stamp_offset_s:
        return ScanRejected(ScanFault.STAMP_IN_FUTURE, f'stamp {offset_s:.3f} s ahead of the clock '
                            f'(tolerance {limits.max_stamp_offset_s:g} s)')
    if offset_s < -limits.max_stamp_offset_s:
        return ScanRejected(ScanFault.STAMP_TOO_OLD, f'stamp {-offset_s:.3f} s behind the clock '
                            f'(tolerance {limits.max_stamp_offset_s:g} s)')
    return None


def validate_scan(scan: RawScan, limits: ScanLimits, layout: ScanLayout | None = None,
                  now_s: float | None = None) -> ValidScan | ScanRejected:
    """One scan on its own against the expected layout (None: any consistent layout) and the clock.

    Never raises for any field values: every fault is a ScanRejected with its reason. The stamp
    sequence (monotonic, bounded steps, re-arming) is ScanGate's."""
    try:
        rejected = check_message(scan, limits)
        if rejected is not None:
            return rejected
        if layout is not None and not layout.matches(ScanLayout.of(scan)):
            return ScanRejected(ScanFault.LAYOUT_CHANGED, f'beam layout {_layout_text(ScanLayout.of(scan))} is not '
                                f'the expected {_layout_text(layout)}')
        rejected = check_stamp_to_clock(scan.stamp_ns, now_s, limits)
        if rejected is not None:
            return rejected
        ranges, rejected, returns, invalid = classify_beams(scan, limits)
        if ranges is None:
            return rejected or ScanRejected(ScanFault.INVALID_BEAMS, 'no usable ranges')
        return ValidScan(scan.stamp_ns / NANOSECONDS_PER_S, scan.stamp_ns, layout or ScanLayout.of(scan),
                         ranges, returns, invalid)
    except (TypeError, ValueError, OverflowError) as exc:      # rclpy types the fields; a caller may not
        return ScanRejected(ScanFault.UNREADABLE, f'{type(exc).__name__}: {exc}')


def _layout_text(layout: ScanLayout) -> str:
    return (f'({layout.beam_count} beams from {layout.angle_min_rad:.6f} rad by {layout.angle_increment_rad:.6f} '
            f'rad, {layout.range_min_m:.4f}-{layout.range_max_m:.4f} m)')


def check_publishers(publishers: Sequence[tuple[str, str]], expected_node: str) -> str | None:
    """Who may publish `scan`: exactly one publisher, and the expected node when one is configured.

    `publishers` are (namespace, node name) from the ROS graph; `expected_node` a node name, or a
    fully qualified one with its namespace ('/cell1/scanner_driver'); empty accepts any single one.
    Returns the reason the scans cannot be trusted, or None."""
    names = [_full_name(namespace, name) for namespace, name in publishers]
    if not names:
        return None                                     # nobody: silence is the scan timeout's business
    if len(names) > 1:
        strays = [n for n in names if not _is_expected(n, expected_node)] if expected_node else names
        return (f'{len(names)} publishers on scan ({", ".join(sorted(names))}): one of them is a stray'
                + (f' (not {expected_node!r}: {", ".join(sorted(strays))})' if expected_node else ''))
    if expected_node and not _is_expected(names[0], expected_node):
        return f'scan is published by {names[0]}, not the expected {expected_node!r}'
    return None


def _full_name(namespace: str, name: str) -> str:
    return f'{namespace.rstrip("/")}/{name}' if namespace else f'/{name}'


def _is_expected(full_name: str, expected_node: str) -> bool:
    if expected_node.startswith('/'):
        return full_name == expected_node
    return full_name.rsplit('/', 1)[-1] == expected_node


@dataclass
class ScanGate:
    """The stateful part: the layout fixed once, the stamp sequence, re-arming on a new time base.

    A rejected scan never changes the state (except for counting towards a re-arm), so a single
    bad message cannot poison what the next good one is judged against."""

    limits: ScanLimits
    layout: ScanLayout | None = None           # configured, or fixed by the first valid scan
    _last_ns: int | None = None
    _last_ranges: np.ndarray | None = None
    _candidate_ns: int | None = None           # newest scan of a possible new time base
    _candidate_count: int = 0
    rejected: dict[ScanFault, int] = field(default_factory=dict)

    def check(self, scan: RawScan, now_s: float | None = None) -> ValidScan | ScanRejected | RepeatedScan:
        result: ValidScan | ScanRejected | RepeatedScan = validate_scan(scan, self.limits, self.layout, now_s)
        if isinstance(result, ValidScan):
            result = self._sequence(result)
        if isinstance(result, ScanRejected):
            self.rejected[result.fault] = self.rejected.get(result.fault, 0) + 1
        return result

    def _sequence(self, scan: ValidScan) -> ValidScan | ScanRejected | RepeatedScan:
        if self._last_ns is None:
            return self._accept(scan, rearmed=False)
        step_ns = scan.stamp_ns - self._last_ns
        if step_ns == 0:
            if self._last_ranges is not None and np.array_equal(self._last_ranges, scan.ranges_m, equal_nan=True):
                return RepeatedScan(scan.stamp_ns)
            return ScanRejected(ScanFault.STAMP_REUSED, 'the stamp of the last scan with other ranges')
        step_s = step_ns / NANOSECONDS_PER_S
        if 0 < step_s <= self.limits.max_stamp_step_s:
            self._candidate_ns, self._candidate_count = None, 0
            return self._accept(scan, rearmed=False)
        # A discontinuity: a stray message, or a new time base (restarted driver, sim time reset).
        if self._candidate_ns is not None and 0 < (scan.stamp_ns - self._candidate_ns) / NANOSECONDS_PER_S \
                <= self.limits.max_stamp_step_s:
            self._candidate_count += 1
        else:
            self._candidate_count = 1
        self._candidate_ns = scan.stamp_ns
        if self._candidate_count >= self.limits.rearm_scans:
            self._candidate_ns, self._candidate_count = None, 0
            return self._accept(scan, rearmed=True)
        fault = ScanFault.STAMP_BACKWARDS if step_ns < 0 else ScanFault.STAMP_JUMP
        return ScanRejected(fault, f'stamp {step_s:+.3f} s from the last accepted scan (allowed (0, '
                            f'{self.limits.max_stamp_step_s:g}] s); a new time base is accepted after '
                            f'{self.limits.rearm_scans} consistent scans')

    def _accept(self, scan: ValidScan, rearmed: bool) -> ValidScan:
        if self.layout is None:
            self.layout = scan.layout
        self._last_ns, self._last_ranges = scan.stamp_ns, scan.ranges_m
        if rearmed:
            return ValidScan(scan.stamp_s, scan.stamp_ns, scan.layout, scan.ranges_m, scan.returns,
                             scan.invalid_beams, rearmed=True)
        return scan
