"""People tracking from a 2-D safety laser scan: leg clustering, leg pairing, track ids and velocity.

The scan plane sits at leg height (≈ 0.15–0.2 m), so a walking person shows up as one or two
small arcs. Anything leg-sized inside the monitored area is treated as a person: a missed leg
pair must never hide somebody, so a lone leg is a person too (conservative).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ScanGeometry:
    """Beam layout of a LaserScan (REP 117: no return is +inf)."""

    angle_min_rad: float
    angle_increment_rad: float
    range_min_m: float
    range_max_m: float


@dataclass(frozen=True)
class Pose2D:
    """A planar pose in the world frame: position (m) and heading yaw (rad)."""

    x_m: float
    y_m: float
    yaw_rad: float

    def apply(self, points_xy: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.yaw_rad), np.sin(self.yaw_rad)
        rotation = np.array([[c, -s], [s, c]])
        return points_xy @ rotation.T + np.array([self.x_m, self.y_m])


@dataclass(frozen=True)
class TrackerConfig:
    cluster_gap_m: float = 0.10          # a jump larger than this between neighbouring beams splits clusters
    min_cluster_points: int = 2
    min_leg_width_m: float = 0.03
    max_leg_width_m: float = 0.35         # wider clusters are walls, fences, table sides
    leg_radius_m: float = 0.06            # cluster centre pushed back along the beam by this
    max_leg_pair_distance_m: float = 0.65
    association_gate_m: float = 0.6       # a track moves at most this far between two scans (2 m/s · 0.3 s)
    track_timeout_s: float = 0.5          # unseen this long -> dropped
    velocity_gain: float = 0.5            # alpha-beta filter gain on velocity (0..1)
    monitored_area_m: tuple[float, float, float, float] = (-10.0, -10.0, 10.0, 10.0)  # xmin, ymin, xmax, ymax

    @classmethod
    def from_params(cls, params: dict) -> 'TrackerConfig':
        """From the scanner node's parameters (smartcell.core.node_params.SCANNER)."""
        return cls(cluster_gap_m=params['cluster_gap_m'], max_leg_width_m=params['max_leg_width_m'],
                   max_leg_pair_distance_m=params['max_leg_pair_distance_m'],
                   association_gate_m=params['association_gate_m'], track_timeout_s=params['track_timeout_s'],
                   monitored_area_m=tuple(params['monitored_area_m']))

    def __post_init__(self) -> None:
        if not 0.0 < self.velocity_gain <= 1.0:
            raise ValueError(f'velocity_gain must be in (0, 1], got {self.velocity_gain}')
        if self.min_leg_width_m >= self.max_leg_width_m:
            raise ValueError('min_leg_width_m must be below max_leg_width_m')
        xmin, ymin, xmax, ymax = self.monitored_area_m
        if xmin >= xmax or ymin >= ymax:
            raise ValueError(f'monitored_area_m must be (xmin, ymin, xmax, ymax) with min < max, '
                             f'got {self.monitored_area_m}')


@dataclass(frozen=True)
class Track:
    """A tracked person in the world frame."""

    track_id: int
    position_m: tuple[float, float]
    velocity_mps: tuple[float, float]
    last_seen_s: float
    legs_seen: int                         # 1 or 2 in the last scan, 0 while coasting

    @property
    def speed_mps(self) -> float:
        return float(np.hypot(*self.velocity_mps))

    @property
    def heading_rad(self) -> float:
        return float(np.arctan2(self.velocity_mps[1], self.velocity_mps[0]))


def scan_points(ranges_m: np.ndarray, geometry: ScanGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Valid returns as (points (K,2) in the scanner frame, beam indices (K,))."""
    ranges = np.asarray(ranges_m, dtype=float)
    beams = np.flatnonzero(np.isfinite(ranges) & (ranges >= geometry.range_min_m) & (ranges <= geometry.range_max_m))
    angles = geometry.angle_min_rad + beams * geometry.angle_increment_rad
    r = ranges[beams]
    return np.column_stack((r * np.cos(angles), r * np.sin(angles))), beams


def leg_candidates(ranges_m: np.ndarray, geometry: ScanGeometry, config: TrackerConfig) -> np.ndarray:
    """Centres (L,2) of leg-sized clusters, in the scanner frame."""
    points, beams = scan_points(ranges_m, geometry)
    if len(points) == 0:
        return np.empty((0, 2))
    gaps = np.hypot(*np.diff(points, axis=0).T)
    # A missing beam between two returns also splits a cluster.
    breaks = np.flatnonzero((gaps > config.cluster_gap_m) | (np.diff(beams) > 1)) + 1
    centres = []
    for cluster in np.split(points, breaks):
        if len(cluster) < config.min_cluster_points:
            continue
        width = float(np.hypot(*(cluster[-1] - cluster[0])))
        if not config.min_leg_width_m <= width <= config.max_leg_width_m:
            continue
        centre = cluster.mean(axis=0)
        distance = float(np.hypot(*centre))
        # The scanner sees the front of the leg: its axis lies one radius further along the beam.
        centres.append(centre * (distance + config.leg_radius_m) / max(distance, 1e-6))
    return np.array(centres) if centres else np.empty((0, 2))


def pair_legs(legs_m: np.ndarray, max_pair_distance_m: float) -> list[tuple[np.ndarray, int]]:
    """Group legs into people: closest pairs first; a lone leg is a person too. Returns (centre, legs)."""
    remaining = list(range(len(legs_m)))
    people: list[tuple[np.ndarray, int]] = []
    if len(legs_m) >= 2:
        distances = np.hypot(*(legs_m[:, None, :] - legs_m[None, :, :]).transpose(2, 0, 1))
        order = np.dstack(np.unravel_index(np.argsort(distances, axis=None), distances.shape))[0]
        used: set[int] = set()
        for i, j in order:
            if i >= j or i in used or j in used or distances[i, j] > max_pair_distance_m:
                continue
            used.update((i, j))
            people.append(((legs_m[i] + legs_m[j]) / 2.0, 2))
        remaining = [i for i in remaining if i not in used]
    people.extend((legs_m[i], 1) for i in remaining)
    return people


@dataclass
class PeopleTracker:
    """Nearest-neighbour tracker with an alpha-beta velocity filter. Deterministic."""

    config: TrackerConfig
    scanner_pose: Pose2D
    geometry: ScanGeometry
    _tracks: list[Track] = field(default_factory=list)
    _next_id: int = 1

    def update(self, ranges_m: np.ndarray, stamp_s: float) -> list[Track]:
        legs = leg_candidates(ranges_m, self.geometry, self.config)
        world_legs = self.scanner_pose.apply(legs) if len(legs) else legs
        detections = [(c, n) for c, n in pair_legs(world_legs, self.config.max_leg_pair_distance_m)
                      if self._inside(c)]
        self._tracks = self._associate(detections, stamp_s)
        return list(self._tracks)

    def _inside(self, point: np.ndarray) -> bool:
        xmin, ymin, xmax, ymax = self.config.monitored_area_m
        return bool(xmin <= point[0] <= xmax and ymin <= point[1] <= ymax)

    def _associate(self, detections: list[tuple[np.ndarray, int]], stamp_s: float) -> list[Track]:
        predictions = []
        for track in self._tracks:
            dt = stamp_s - track.last_seen_s
            predictions.append(np.asarray(track.position_m) + np.asarray(track.velocity_mps) * dt)
        pairs = []
        for ti, predicted in enumerate(predictions):
            for di, (centre, _) in enumerate(detections):
                distance = float(np.hypot(*(centre - predicted)))
                if distance <= self.config.association_gate_m:
                    pairs.append((distance, ti, di))
        pairs.sort()
        matched_tracks: set[int] = set()
        matched_detections: set[int] = set()
        updated: list[Track] = []
        for _, ti, di in pairs:
            if ti in matched_tracks or di in matched_detections:
                continue
            matched_tracks.add(ti)
            matched_detections.add(di)
            updated.append(self._correct(self._tracks[ti], detections[di], stamp_s))
        for ti, track in enumerate(self._tracks):
            if ti not in matched_tracks and stamp_s - track.last_seen_s <= self.config.track_timeout_s:
                updated.append(Track(track.track_id, track.position_m, track.velocity_mps, track.last_seen_s, 0))
        for di, (centre, legs) in enumerate(detections):
            if di not in matched_detections:
                updated.append(Track(self._next_id, (float(centre[0]), float(centre[1])), (0.0, 0.0), stamp_s, legs))
                self._next_id += 1
        return sorted(updated, key=lambda t: t.track_id)

    def _correct(self, track: Track, detection: tuple[np.ndarray, int], stamp_s: float) -> Track:
        centre, legs = detection
        dt = stamp_s - track.last_seen_s
        velocity = np.asarray(track.velocity_mps)
        if dt > 1e-6:
            measured = (centre - np.asarray(track.position_m)) / dt
            velocity = velocity + self.config.velocity_gain * (measured - velocity)
        return Track(track.track_id, (float(centre[0]), float(centre[1])),
                     (float(velocity[0]), float(velocity[1])), stamp_s, legs)
