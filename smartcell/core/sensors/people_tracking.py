"""People tracking from a 2-D safety laser scan: leg clustering, leg pairing, and per person a
constant-velocity Kalman filter (position and velocity with covariance, track ids, coasting).

The scan plane sits at leg height (≈ 0.15–0.2 m), so a walking person shows up as one or two
small arcs. Anything leg-sized inside the monitored area is treated as a person: a missed leg
pair must never hide somebody, so a lone leg is a person too (conservative). With a static
background (smartcell.core.sensors.background) the readings at the empty cell's fence, table and
bench are not leg candidates: a person's shadow no longer cuts a leg-sized "person" out of a wall.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:       # background imports scan_validation, which imports this module
    from smartcell.core.sensors.background import ScanBackground

# A lower leg at scan height (0.15-0.2 m) is >= 0.08 m thick: a leg touching a wall is at least that
# far in front of it, so a background tolerance below this cannot hide a leg (docs/sensors.md).
MAX_BACKGROUND_TOLERANCE_M = 0.06


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
    max_leg_pair_distance_m: float = 0.65   # two free legs closer than this are one new person
    max_running_leg_distance_m: float = 0.9  # a track takes two legs up to this far apart (a runner's stride)
    association_gate_m: float = 0.6       # hard cap on prediction-detection distance, m (on top of the
                                          # Mahalanobis gate: a coasting track's ellipse must not grab
                                          # somebody across the room)
    track_timeout_s: float = 0.5          # unseen this long -> dropped
    monitored_area_m: tuple[float, float, float, float] = (-10.0, -10.0, 10.0, 10.0)  # xmin, ymin, xmax, ymax
    # -- the constant-velocity Kalman filter of each track ---------------------------------------
    range_noise_m: float = 0.02           # scanner range noise, 1 sigma (its data sheet: 10-30 mm)
    leg_pair_sigma_m: float = 0.06        # midpoint of two legs vs the body axis, 1 sigma: legs swing in
                                          # antiphase, so the midpoint stays near the hips
    single_leg_sigma_m: float = 0.20      # a lone leg vs the body axis, 1 sigma: a swinging lower leg is up
                                          # to ~0.27 m in front of or behind the hips at walking speed
    accel_noise_mps2: float = 2.0         # white-noise acceleration of a person, 1 sigma (gait, starts, turns)
    initial_speed_sigma_mps: float = 0.8  # velocity prior of a new track, 1 sigma per axis: 0 + 2 sigma is
                                          # ISO 13855's 1.6 m/s, what SSM assumes when the speed is unknown
    gate_chi2: float = 13.8               # Mahalanobis gate, squared (chi-square, 2 dof, 99.9 %)
    confirm_hits: int = 3                 # detections before a track is confirmed; a tentative track is
                                          # dropped at its first miss (still published while it exists)
    background_tolerance_m: float = 0.05  # a reading this close to the static background is the background
                                          # (5 sigma of the twin's 1 cm noise; below a leg's 0.08 m thickness,
                                          # so a leg touching a wall stays in front of it)

    @classmethod
    def from_params(cls, params: dict) -> 'TrackerConfig':
        """From the scanner node's parameters (smartcell.core.node_params.SCANNER)."""
        optional = {name: params[name] for name in ('range_noise_m', 'accel_noise_mps2', 'background_tolerance_m')
                    if name in params}
        return cls(cluster_gap_m=params['cluster_gap_m'], max_leg_width_m=params['max_leg_width_m'],
                   max_leg_pair_distance_m=params['max_leg_pair_distance_m'],
                   association_gate_m=params['association_gate_m'], track_timeout_s=params['track_timeout_s'],
                   monitored_area_m=tuple(params['monitored_area_m']), **optional)

    def __post_init__(self) -> None:
        if self.min_leg_width_m >= self.max_leg_width_m:
            raise ValueError('min_leg_width_m must be below max_leg_width_m')
        xmin, ymin, xmax, ymax = self.monitored_area_m
        if xmin >= xmax or ymin >= ymax:
            raise ValueError(f'monitored_area_m must be (xmin, ymin, xmax, ymax) with min < max, '
                             f'got {self.monitored_area_m}')
        for name in ('range_noise_m', 'leg_pair_sigma_m', 'single_leg_sigma_m', 'accel_noise_mps2',
                     'initial_speed_sigma_mps', 'gate_chi2', 'association_gate_m'):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be a finite number > 0, got {value!r}')
        if self.confirm_hits < 1:
            raise ValueError(f'confirm_hits must be >= 1, got {self.confirm_hits}')
        if not 0.0 < self.background_tolerance_m <= MAX_BACKGROUND_TOLERANCE_M:
            raise ValueError(f'background_tolerance_m must be in (0, {MAX_BACKGROUND_TOLERANCE_M}] m (below a leg\'s '
                             f'thickness), got {self.background_tolerance_m!r}')

    def measurement_variance_m2(self, legs: int) -> float:
        """Variance (m^2, per axis) of a detected person centre about the body axis."""
        if legs >= 2:     # mean of two legs: the range noise averages, the leg swing mostly cancels
            return self.range_noise_m ** 2 / 2.0 + self.leg_pair_sigma_m ** 2
        return self.range_noise_m ** 2 + self.single_leg_sigma_m ** 2


@dataclass(frozen=True)
class Track:
    """A tracked person in the world frame: the filter's mean and covariance at the scan's stamp."""

    track_id: int
    position_m: tuple[float, float]
    velocity_mps: tuple[float, float]
    last_seen_s: float
    legs_seen: int                         # 1 or 2 in the last scan, 0 while coasting
    velocity_cov_m2ps2: tuple[float, float, float] = (0.0, 0.0, 0.0)   # var vx, cov vx vy, var vy, (m/s)^2
    position_cov_m2: tuple[float, float, float] = (0.0, 0.0, 0.0)      # var x, cov x y, var y, m^2
    confirmed: bool = True                 # seen confirm_hits times; tentative tracks are people too

    @property
    def speed_mps(self) -> float:
        return float(np.hypot(*self.velocity_mps))

    @property
    def heading_rad(self) -> float:
        return float(np.arctan2(self.velocity_mps[1], self.velocity_mps[0]))

    @property
    def velocity_cov_matrix(self) -> np.ndarray:
        a, b, c = self.velocity_cov_m2ps2
        return np.array([[a, b], [b, c]])


def scan_points(ranges_m: np.ndarray, geometry: ScanGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Valid returns as (points (K,2) in the scanner frame, beam indices (K,))."""
    ranges = np.asarray(ranges_m, dtype=float)
    beams = np.flatnonzero(np.isfinite(ranges) & (ranges >= geometry.range_min_m) & (ranges <= geometry.range_max_m))
    angles = geometry.angle_min_rad + beams * geometry.angle_increment_rad
    r = ranges[beams]
    return np.column_stack((r * np.cos(angles), r * np.sin(angles))), beams


def leg_candidates(ranges_m: np.ndarray, geometry: ScanGeometry, config: TrackerConfig,
                   split_wide: bool = False) -> np.ndarray:
    """Centres (L,2) of leg-sized clusters, in the scanner frame.

    A cluster wider than max_leg_width_m is a wall or a table side and is skipped, unless
    `split_wide`: in a scan whose static background has been taken out, what is left that wide is
    not the cell's structure but something in it, most often people standing side by side whose
    legs merge into one cluster (or a person carrying a box). It is then taken as legs, one per
    max_leg_width_m of it: never nobody where somebody may be."""
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
        if width < config.min_leg_width_m or (width > config.max_leg_width_m and not split_wide):
            continue
        pieces = np.array_split(cluster, min(len(cluster), int(np.ceil(width / config.max_leg_width_m))))
        for piece in pieces:
            centre = piece.mean(axis=0)
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
class _FilterState:
    """One track's constant-velocity Kalman filter: x = (px, py, vx, vy), P its covariance."""

    track_id: int
    x: np.ndarray
    P: np.ndarray
    last_seen_s: float
    legs: int
    hits: int

    def output(self, confirm_hits: int) -> Track:
        P = self.P
        return Track(self.track_id, (float(self.x[0]), float(self.x[1])), (float(self.x[2]), float(self.x[3])),
                     self.last_seen_s, self.legs, (float(P[2, 2]), float(P[2, 3]), float(P[3, 3])),
                     (float(P[0, 0]), float(P[0, 1]), float(P[1, 1])), self.hits >= confirm_hits)


_H = np.hstack((np.eye(2), np.zeros((2, 2))))       # the scanner measures position only


def cv_transition(dt_s: float, accel_sigma_mps2: float) -> tuple[np.ndarray, np.ndarray]:
    """F and Q of the constant-velocity model over dt_s with white-noise acceleration (per axis
    Q = sigma_a^2 [[dt^4/4, dt^3/2], [dt^3/2, dt^2]]; Bar-Shalom, Estimation with Applications to
    Tracking and Navigation, 6.3.3)."""
    F = np.eye(4)
    F[0, 2] = F[1, 3] = dt_s
    q = accel_sigma_mps2 ** 2 * np.array([[dt_s ** 4 / 4.0, dt_s ** 3 / 2.0], [dt_s ** 3 / 2.0, dt_s ** 2]])
    Q = np.zeros((4, 4))
    for axis in (0, 1):
        index = np.ix_((axis, axis + 2), (axis, axis + 2))
        Q[index] = q
    return F, Q


@dataclass
class PeopleTracker:
    """Per person a constant-velocity Kalman filter; Mahalanobis-gated nearest-neighbour association
    (cost d^2 + ln|S|, so a wide coasting ellipse does not out-bid a tight one); measurement noise
    from the scanner's range noise and the leg geometry. An unseen confirmed track coasts on its
    model (covariance growing) until track_timeout_s. Deterministic (no randomness, stable order).

    background: the empty cell's scan (same beam layout as `geometry`); readings within
    config.background_tolerance_m of it are not leg candidates. None: every reading is one."""

    config: TrackerConfig
    scanner_pose: Pose2D
    geometry: ScanGeometry
    background: ScanBackground | None = None
    _tracks: list[_FilterState] = field(default_factory=list)
    _next_id: int = 1
    _time_s: float | None = None

    def update(self, ranges_m: np.ndarray, stamp_s: float) -> list[Track]:
        if self.background is not None:
            ranges_m = self.background.foreground(ranges_m, self.config.background_tolerance_m)
        legs = leg_candidates(ranges_m, self.geometry, self.config, split_wide=self.background is not None)
        world_legs = self.scanner_pose.apply(legs) if len(legs) else np.empty((0, 2))
        return self.update_legs(np.array([leg for leg in world_legs if self._inside(leg)]).reshape(-1, 2), stamp_s)

    def update_legs(self, legs_m: np.ndarray, stamp_s: float) -> list[Track]:
        """One filter cycle on leg positions (L, 2) in the world frame, m.

        Legs are given to tracks before they are paired: each track takes the nearest gated leg, then
        a second one within the pairing distance of the first, so a runner whose legs are further
        apart than max_leg_pair_distance_m stays one person. Legs no track takes are paired into new
        people (a lone leg is a person too)."""
        dt = 0.0 if self._time_s is None else stamp_s - self._time_s
        if dt > 0.0:
            F, Q = cv_transition(dt, self.config.accel_noise_mps2)
            for track in self._tracks:
                track.x = F @ track.x
                track.P = F @ track.P @ F.T + Q
        self._time_s = stamp_s if self._time_s is None else max(self._time_s, stamp_s)
        claimed, merged = self._claim_legs(legs_m)
        kept = []
        for ti, (track, leg_indices) in enumerate(zip(self._tracks, claimed)):
            if ti in merged:
                continue
            if leg_indices:
                self._correct(track, (legs_m[leg_indices].mean(axis=0), len(leg_indices)), stamp_s)
                kept.append(track)
            elif track.hits >= self.config.confirm_hits and stamp_s - track.last_seen_s <= self.config.track_timeout_s:
                track.legs = 0                  # coasting: the prediction above is the estimate
                kept.append(track)
        taken = {i for indices in claimed for i in indices}
        free = np.array([leg for i, leg in enumerate(legs_m) if i not in taken]).reshape(-1, 2)
        for centre, legs in pair_legs(free, self.config.max_leg_pair_distance_m):
            kept.append(self._new_track(centre, legs, stamp_s))
        self._tracks = sorted(kept, key=lambda t: t.track_id)
        return [track.output(self.config.confirm_hits) for track in self._tracks]

    def _inside(self, point: np.ndarray) -> bool:
        xmin, ymin, xmax, ymax = self.config.monitored_area_m
        return bool(xmin <= point[0] <= xmax and ymin <= point[1] <= ymax)

    def _claim_legs(self, legs_m: np.ndarray) -> tuple[list[list[int]], set[int]]:
        """Per track the indices of the legs it takes (0, 1 or 2), and the tracks merged into an older
        one: two tracks that each hold one leg, the legs close enough to pair, are one person whose
        legs were split (pair_legs would have made them one person too)."""
        config = self.config
        leg_var = config.range_noise_m ** 2 + config.single_leg_sigma_m ** 2
        pairs = []
        for ti, track in enumerate(self._tracks):
            S = track.P[:2, :2] + np.eye(2) * leg_var
            log_det = float(np.log(np.linalg.det(S)))
            for li, leg in enumerate(legs_m):
                innovation = leg - track.x[:2]
                if float(np.hypot(*innovation)) > config.association_gate_m:
                    continue
                d2 = float(innovation @ np.linalg.solve(S, innovation))
                if d2 <= config.gate_chi2:
                    pairs.append((d2 + log_det, ti, li))
        pairs.sort()
        claimed: list[list[int]] = [[] for _ in self._tracks]
        owner: dict[int, int] = {}
        for _, ti, li in pairs:                  # first every track its best leg
            if li not in owner and not claimed[ti]:
                claimed[ti].append(li)
                owner[li] = ti
        merged: set[int] = set()
        for _, ti, li in pairs:                  # then a second leg, from another one-leg track if need be
            if len(claimed[ti]) != 1 or ti in merged or li == claimed[ti][0]:
                continue
            spread = float(np.hypot(*(legs_m[li] - legs_m[claimed[ti][0]])))
            other = owner.get(li)
            if other is None and spread <= config.max_running_leg_distance_m:
                claimed[ti].append(li)
                owner[li] = ti
            elif other is not None and other != ti and claimed[other] == [li] and spread <= \
                    config.max_leg_pair_distance_m and self._tracks[ti].track_id < self._tracks[other].track_id:
                claimed[other] = []
                merged.add(other)
                claimed[ti].append(li)
                owner[li] = ti
        return claimed, merged

    def _correct(self, track: _FilterState, detection: tuple[np.ndarray, int], stamp_s: float) -> None:
        centre, legs = detection
        R = np.eye(2) * self.config.measurement_variance_m2(legs)
        S = _H @ track.P @ _H.T + R
        K = np.linalg.solve(S, _H @ track.P).T            # P H^T S^-1 (S, P symmetric)
        track.x = track.x + K @ (np.asarray(centre, dtype=float) - track.x[:2])
        I_KH = np.eye(4) - K @ _H
        track.P = I_KH @ track.P @ I_KH.T + K @ R @ K.T   # Joseph form: stays symmetric positive
        track.P = (track.P + track.P.T) / 2.0
        track.last_seen_s, track.legs, track.hits = stamp_s, legs, track.hits + 1

    def _new_track(self, centre: np.ndarray, legs: int, stamp_s: float) -> _FilterState:
        variance = self.config.measurement_variance_m2(legs)
        speed_var = self.config.initial_speed_sigma_mps ** 2
        track = _FilterState(self._next_id, np.array([float(centre[0]), float(centre[1]), 0.0, 0.0]),
                             np.diag([variance, variance, speed_var, speed_var]), stamp_s, legs, 1)
        self._next_id += 1
        return track
