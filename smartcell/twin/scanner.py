"""Simulated safety laser scanner (in the manner of a SICK microScan3 / nanoScan3).

One horizontal scan plane near the floor (leg height), 270 deg field of view, 0.5 deg steps
(541 beams), 0.05-9 m, Gaussian range noise, 30 Hz. Each scan is one PyBullet rayTestBatch.

What it sees: every collision shape crossing its plane - people's lower legs, the solid work
table and operator bench, the fence panels (modelled opaque: a person behind a panel is hidden,
as behind a real solid guard), and the arm if it ever dips below the table top (it cannot reach
the plane from its mount). The scanner's own housing and the station markers are visual only.
No return within range is +inf (REP 117).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pybullet as p

from smartcell.twin.world import CellLayout, ScannerMount

# Looking through the moving shapes for the static background: a ray that starts inside one steps
# on by this much (a 4 cm fence panel is not jumped over; 1 cm of range error at most, static scene
# right behind a leg), up to this many casts (2 legs of 0.15 m: ~30).
BACKGROUND_STEP_M = 0.01
BACKGROUND_MAX_CASTS = 200


@dataclass(frozen=True)
class ScannerConfig:
    """Scanner parameters (defaults: a typical safety laser scanner)."""

    field_of_view_rad: float = math.radians(270.0)
    angular_resolution_rad: float = math.radians(0.5)
    range_min_m: float = 0.05
    range_max_m: float = 9.0
    noise_std_m: float = 0.01              # 1 sigma Gaussian range noise
    rate_hz: float = 30.0                  # safety scanners run at 25-40 Hz

    def __post_init__(self) -> None:
        if not 0.0 < self.field_of_view_rad <= 2 * math.pi:
            raise ValueError(f'field_of_view_rad must be in (0, 2 pi], got {self.field_of_view_rad}')
        if not 0.0 < self.angular_resolution_rad <= self.field_of_view_rad:
            raise ValueError(f'angular_resolution_rad must be in (0, field of view], got {self.angular_resolution_rad}')
        if not 0.0 < self.range_min_m < self.range_max_m:
            raise ValueError(f'need 0 < range_min_m < range_max_m, got {self.range_min_m}, {self.range_max_m}')
        if not 0.0 <= self.noise_std_m <= 0.1:
            raise ValueError(f'noise_std_m must be in [0, 0.1] m, got {self.noise_std_m}')
        if not 25.0 <= self.rate_hz <= 40.0:
            raise ValueError(f'rate_hz must be in [25, 40] Hz like real safety scanners, got {self.rate_hz}')

    @property
    def beam_count(self) -> int:
        return int(round(self.field_of_view_rad / self.angular_resolution_rad)) + 1

    @property
    def period_s(self) -> float:
        return 1.0 / self.rate_hz


@dataclass(frozen=True)
class ScanFrame:
    """One scan, laid out as sensor_msgs/LaserScan (angles in the scanner frame, rad; ranges m)."""

    stamp_s: float
    frame_id: str
    angle_min_rad: float
    angle_max_rad: float
    angle_increment_rad: float
    time_increment_s: float               # 0: all beams of a simulated scan are cast at the same instant
    scan_time_s: float
    range_min_m: float
    range_max_m: float
    ranges: np.ndarray                    # float32, +inf where nothing was hit

    @property
    def angles_rad(self) -> np.ndarray:
        return self.angle_min_rad + self.angle_increment_rad * np.arange(self.ranges.size)


class SafetyScanner:
    """Casts the scanner's beams in a PyBullet client; noise from the Generator it is given.

    The furniture and fence never move, so their ranges are cast once, at construction, into a
    background scan that looks through the `moving_shapes` ((body, link) pairs: the people's
    regions and the robot links, CellWorld.moving_shapes()). Each scan() then casts - in one
    rayTestBatch - only the beams whose direction may meet a moving shape where it crosses the
    scan plane: people from `people_capsules` (a callable returning capsules that enclose them,
    CellWorld.people_capsules), the `boxed_shapes` (CellWorld.robot_shapes()) from their bounding
    boxes; every other beam returns the background range. That is exactly what casting all
    beams would return, several times cheaper (test/twin/test_scanner.py compares the two).
    Without `moving_shapes` every scan casts all beams.
    """

    def __init__(self, client_id: int, mount: ScannerMount, config: ScannerConfig = ScannerConfig(), *,
                 rng: np.random.Generator, moving_shapes: Sequence[tuple[int, int]] | None = None,
                 people_capsules: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
                 boxed_shapes: Sequence[tuple[int, int]] | None = None) -> None:
        self.client_id = client_id
        self.mount = mount
        self.config = config
        self._rng = rng
        # Without the list of what moves, nothing can be assumed static: every scan casts every beam
        # (correct, just slower). Never a background that could hold a person standing there now.
        self._cast_everything = moving_shapes is None
        self._moving = tuple(moving_shapes or ())
        # People are found from capsules enclosing their regions (CellWorld.people_capsules: tighter
        # than the bounding boxes of swinging legs, and no per-shape PyBullet call); the shapes in
        # boxed_shapes (default: all moving shapes) from their bounding boxes.
        self._people_capsules = people_capsules
        self._boxed = self._moving if boxed_shapes is None else tuple(boxed_shapes)
        n = config.beam_count
        self.angle_min_rad = -config.angular_resolution_rad * (n - 1) / 2
        self._beam_angles = self.angle_min_rad + config.angular_resolution_rad * np.arange(n)   # scanner frame
        world_angles = self._beam_angles + mount.yaw_rad
        self._directions = np.stack([np.cos(world_angles), np.sin(world_angles), np.zeros(n)], axis=1)
        self._origin = np.asarray(mount.position_m, dtype=float)
        # Beams start at range_min so that nothing at the housing itself is reported.
        self._ray_from = self._origin + config.range_min_m * self._directions
        self._ray_to = self._origin + config.range_max_m * self._directions
        self._always_cast = np.zeros(n, dtype=bool)          # beams whose background could not be cast
        self._background_m = np.full(self._beam_angles.size, np.inf) if self._cast_everything \
            else self._static_background()
        self.last_beams_cast = 0            # beams cast by the last scan() (for benchmarks)

    def _cast(self, ray_from: np.ndarray, ray_to: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hit (body, link) ids and ranges from the scanner origin (m, inf = no hit) of the given rays."""
        hits = p.rayTestBatch(ray_from.tolist(), ray_to.tolist(), physicsClientId=self.client_id)
        ids = np.array([(h[0], h[1]) for h in hits], dtype=np.int64).reshape(-1, 2)
        points = np.array([h[3] for h in hits], dtype=float).reshape(-1, 3)
        ranges = np.hypot(points[:, 0] - self._origin[0], points[:, 1] - self._origin[1])
        ranges[ids[:, 0] < 0] = np.inf
        return ids, ranges

    def _static_background(self) -> np.ndarray:
        """Ranges (m) of every beam to the static scene, looking through the moving shapes."""
        moving = set(self._moving)
        index = np.arange(self._beam_angles.size)
        ray_from = self._ray_from.copy()
        background = np.full(index.size, np.inf)
        start_m = np.full(index.size, self.config.range_min_m)
        for _ in range(BACKGROUND_MAX_CASTS):
            ids, ranges = self._cast(ray_from[index], self._ray_to[index])
            hit_moving = np.array([(int(body), int(link)) in moving for body, link in ids], dtype=bool)
            done = ~hit_moving
            background[index[done]] = ranges[done]
            index, ranges, start_m = index[hit_moving], ranges[hit_moving], start_m[hit_moving]
            if index.size == 0:
                break
            # Bullet reports a ray that starts inside a capsule as a hit at its start: such a ray
            # steps on by BACKGROUND_STEP_M until it is out (1 mm steps took 16 casts to cross 16 mm
            # of leg, so the wall behind a person standing there at start-up went missing: a gap
            # that cut a leg-sized piece out of the fence, issue 13). Else restart 1 mm past the hit.
            inside = ranges <= start_m + 1e-4
            start_m = np.where(inside, start_m + BACKGROUND_STEP_M, ranges + 1e-3)
            ray_from[index] = self._origin + start_m[:, None] * self._directions[index]
        if index.size:
            # Still inside something that moves: these beams are cast on every scan, never assumed.
            self._always_cast[index] = True
        return background

    def _beams_near_moving_shapes(self) -> np.ndarray:
        """Mask of beams whose direction may meet a moving shape in the scan plane."""
        mask = self._always_cast.copy()
        circles = self._capsule_circles()
        if circles.size and np.any(np.hypot(circles[:, 0], circles[:, 1]) <= circles[:, 2]):
            mask[:] = True                   # a shape around the scanner itself: cast everything
            return mask
        centre = np.arctan2(circles[:, 1], circles[:, 0])
        half = np.arcsin(np.clip(circles[:, 2] / np.hypot(circles[:, 0], circles[:, 1]), 0.0, 1.0))
        intervals = [(centre - half).tolist(), (centre + half).tolist()]
        if self._boxed:
            # (S, 2, 3)
            boxes = np.array([p.getAABB(body, link, physicsClientId=self.client_id) for body, link in self._boxed])
            height = self._origin[2]
            boxes = boxes[(boxes[:, 0, 2] <= height) & (boxes[:, 1, 2] >= height)]
            if boxes.size:
                x = boxes[:, [0, 0, 1, 1], 0] - self._origin[0]          # the four xy corners of each box
                y = boxes[:, [0, 1, 1, 0], 1] - self._origin[1]
                if np.any((x.min(axis=1) <= 0) & (x.max(axis=1) >= 0) & (y.min(axis=1) <= 0) & (y.max(axis=1) >= 0)):
                    mask[:] = True           # a shape around the scanner itself: cast everything
                    return mask
                box_centre = np.arctan2(y.mean(axis=1), x.mean(axis=1))
                offset = (np.arctan2(y, x) - box_centre[:, None] + np.pi) % (2 * np.pi) - np.pi  # subtends < pi
                intervals[0] += (box_centre + offset.min(axis=1)).tolist()
                intervals[1] += (box_centre + offset.max(axis=1)).tolist()
        self._mark(mask, intervals[0], intervals[1])
        return mask

    def _capsule_circles(self) -> np.ndarray:
        """(K, 3): centre x, y relative to the scanner (m) and radius (m) of circles enclosing where
        the moving capsules cut the scan plane."""
        if self._people_capsules is None:
            return np.empty((0, 3))
        segments, radii = self._people_capsules()
        height = self._origin[2]
        z0, z1 = segments[:, 0, 2], segments[:, 1, 2]
        crossing = (np.minimum(z0, z1) - radii <= height) & (np.maximum(z0, z1) + radii >= height)
        segments, radii, z0, z1 = segments[crossing], radii[crossing], z0[crossing], z1[crossing]
        dz = z1 - z0
        axis = segments[:, 1] - segments[:, 0]
        length = np.linalg.norm(axis, axis=1)
        steep = np.abs(dz) > 0.1 * length          # axis at least ~6 deg out of the horizontal
        # A capsule tilted by theta from the vertical cuts the plane inside the circle of radius
        # r / cos(theta) around the point where its (extended) axis crosses the plane - end caps
        # included, since max over d of d tan(theta) + sqrt(r^2 - d^2) is r / cos(theta). A
        # near-horizontal one is taken whole: its mid-point and half length + r.
        t = np.divide(height - z0, dz, out=np.full_like(dz, 0.5), where=steep)
        centre = segments[:, 0] + np.where(steep, t, 0.5)[:, None] * axis
        radius = np.where(steep, radii * length / np.where(steep, np.abs(dz), 1.0), length / 2 + radii)
        return np.column_stack([centre[:, 0] - self._origin[0], centre[:, 1] - self._origin[1], radius])

    def _mark(self, mask: np.ndarray, first_rad: list[float], last_rad: list[float]) -> None:
        """Set the beams within each [first, last] world-frame bearing interval, one beam of margin each side;
        the +-2 pi copies catch a field of view wider than pi wrapping around the back."""
        n = mask.size
        resolution = self.config.angular_resolution_rad
        start = self.mount.yaw_rad + self.angle_min_rad
        for lo, hi in zip(first_rad, last_rad):
            for turn in (-2 * math.pi, 0.0, 2 * math.pi):
                first = max(math.floor((lo - start + turn) / resolution) - 1, 0)
                last = min(math.ceil((hi - start + turn) / resolution) + 2, n)
                if first < last:
                    mask[first:last] = True

    def scan(self, stamp_s: float, cast_all_beams: bool = False) -> ScanFrame:
        """The scan as of now, stamped stamp_s, with noise; one rayTestBatch.

        cast_all_beams: cast every beam over the full range instead (the plain reference
        implementation, for tests and benchmarks)."""
        cfg = self.config
        if cast_all_beams or self._cast_everything:
            _, ranges = self._cast(self._ray_from, self._ray_to)
            self.last_beams_cast = int(ranges.size)
        else:
            ranges = self._background_m.copy()
            index = np.nonzero(self._beams_near_moving_shapes())[0]
            self.last_beams_cast = int(index.size)
            if index.size:
                # Nothing moving can hide inside the static scene, so each ray stops just past it.
                reach_m = np.minimum(self._background_m[index] + 0.05, cfg.range_max_m)
                _, cast = self._cast(self._ray_from[index], self._origin + reach_m[:, None] * self._directions[index])
                ranges[index] = np.where(np.isfinite(cast), cast, self._background_m[index])
        hit = np.isfinite(ranges)
        if cfg.noise_std_m > 0:
            ranges = ranges + self._rng.normal(0.0, cfg.noise_std_m, ranges.size)
        ranges = np.where(hit, np.clip(ranges, cfg.range_min_m, cfg.range_max_m), np.inf).astype(np.float32)
        ranges.setflags(write=False)
        return ScanFrame(stamp_s=float(stamp_s), frame_id=self.mount.frame_id, angle_min_rad=self.angle_min_rad,
                         angle_max_rad=-self.angle_min_rad, angle_increment_rad=cfg.angular_resolution_rad,
                         time_increment_s=0.0, scan_time_s=cfg.period_s,
                         range_min_m=cfg.range_min_m, range_max_m=cfg.range_max_m, ranges=ranges)

    def to_world(self, frame: ScanFrame) -> np.ndarray:
        """(K, 2) world xy (m) of the finite returns of a scan, for tests and plots."""
        finite = np.isfinite(frame.ranges)
        angles = frame.angles_rad[finite] + self.mount.yaw_rad
        r = frame.ranges[finite].astype(float)
        x, y, _ = self.mount.position_m
        return np.stack([x + r * np.cos(angles), y + r * np.sin(angles)], axis=1)


def world_scanner(world, config: ScannerConfig = ScannerConfig()) -> SafetyScanner:
    """The safety scanner of a CellWorld, noise from the world's Generator, casting only the beams
    that can see something that moves (same ranges as casting all beams; test/twin checks it)."""
    return SafetyScanner(world.client_id, world.layout.scanner, config, rng=world.rng,
                         moving_shapes=world.moving_shapes(), people_capsules=world.people_capsules,
                         boxed_shapes=world.robot_shapes())


def empty_cell_scan(layout: CellLayout | None = None, config: ScannerConfig = ScannerConfig()) -> ScanFrame:
    """A noise-free scan of the cell with nobody in it: the twin's static background for the
    scanner's people tracking (`smartcell teach-background --twin` writes it). Every beam is cast
    against the real scene (table, fence, bench, the arm at home), in a client of its own."""
    from smartcell.twin.world import DEFAULT_LAYOUT, CellWorld, connect, disconnect
    client = connect()
    try:
        world = CellWorld(client, layout or DEFAULT_LAYOUT)
        scanner = SafetyScanner(client, world.layout.scanner, replace(config, noise_std_m=0.0), rng=world.rng)
        return scanner.scan(0.0, cast_all_beams=True)
    finally:
        disconnect(client)
