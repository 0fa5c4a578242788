"""A simulated person: separate body regions, moved kinematically along a scripted path.

The person is not simulated dynamically: every twin tick, each body region is placed where the
path says (deterministic, and a robot can never push a person away). Regions are static PyBullet
bodies, so they collide with the robot (contacts with normal forces) but not with the floor,
fence or tables.

Person frame: origin on the floor under the pelvis, x forward (walking direction), y left, z up.
Legs are straight and swing about the hips in antiphase while walking, so a scanner at leg
height sees two legs moving past each other; arms swing against the legs and rise forward when
reaching (reach 0 = hanging, 1 = horizontal forward).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pybullet as p

# Region names, with the ISO/TS 15066:2016 (Table A.2) body region each one stands for.
ISO_TS_15066_REGIONS: dict[str, str] = {
    'head': 'skull and forehead',
    'torso': 'chest',
    'upper_arm_left': 'upper arm and elbow joint',
    'upper_arm_right': 'upper arm and elbow joint',
    'forearm_hand_left': 'lower arm and wrist joint / hand and fingers',
    'forearm_hand_right': 'lower arm and wrist joint / hand and fingers',
    'thigh_left': 'thigh and knee',
    'thigh_right': 'thigh and knee',
    'lower_leg_left': 'lower leg',
    'lower_leg_right': 'lower leg',
}
REGION_NAMES: tuple[str, ...] = tuple(ISO_TS_15066_REGIONS)

# The same regions as named in config/body_regions.yaml (the PFL limits). A twin region that spans
# two ISO regions (forearm with hand) lists both: a contact there is judged by the stricter one.
BODY_MODEL_REGIONS: dict[str, tuple[str, ...]] = {
    'head': ('skull_forehead', 'face'),
    'torso': ('chest', 'abdomen'),
    'upper_arm_left': ('upper_arms_elbows',),
    'upper_arm_right': ('upper_arms_elbows',),
    'forearm_hand_left': ('lower_arms_wrists', 'hands_fingers'),
    'forearm_hand_right': ('lower_arms_wrists', 'hands_fingers'),
    'thigh_left': ('thighs_knees',),
    'thigh_right': ('thighs_knees',),
    'lower_leg_left': ('lower_legs',),
    'lower_leg_right': ('lower_legs',),
}

WALKING_SPEED_MPS = 1.6          # ISO 13855 walking speed
RUNNING_SPEED_MPS = 2.0          # ISO 13855 approach speed for close distances


@dataclass(frozen=True)
class BodyDimensions:
    """An adult of roughly 1.75 m (m)."""

    hip_height_m: float = 0.90
    hip_half_width_m: float = 0.10
    thigh_length_m: float = 0.45
    thigh_radius_m: float = 0.07
    lower_leg_length_m: float = 0.39          # knee to ankle; the capsule cap reaches the floor
    lower_leg_radius_m: float = 0.055
    torso_size_m: tuple[float, float, float] = (0.24, 0.40, 0.55)     # depth x, width y, height z
    shoulder_height_m: float = 1.42
    shoulder_half_width_m: float = 0.22
    upper_arm_length_m: float = 0.30
    upper_arm_radius_m: float = 0.05
    forearm_hand_length_m: float = 0.40        # elbow to finger tips (straight arm)
    forearm_hand_radius_m: float = 0.045
    head_radius_m: float = 0.11
    head_centre_height_m: float = 1.62
    stride_length_m: float = 1.5               # one full gait cycle (two steps) at walking speed
    max_leg_swing_rad: float = 0.38            # hip pitch amplitude at walking speed
    arm_swing_ratio: float = 0.5               # arm swing amplitude relative to the legs


@dataclass(frozen=True)
class PersonState:
    """Where a person is and what they do at one instant."""

    x_m: float
    y_m: float
    yaw_rad: float                  # facing direction in the world
    speed_mps: float = 0.0
    gait_phase_rad: float = 0.0     # advances 2 pi per stride; legs swing as sin(phase)
    reach: float = 0.0              # 0 arms hanging ... 1 arms horizontal forward


@functools.lru_cache(maxsize=8)
def _region_geometry(dims: BodyDimensions) -> tuple[np.ndarray, ...]:
    """Per region, in REGION_NAMES order: start point in the person frame (m), distance from the
    start to the shape centre along the limb (m, 0 for head and torso), whether it is a limb, and
    how its pitch depends on reach, arm swing and leg swing."""
    hip, shoulder = dims.hip_half_width_m, dims.shoulder_half_width_m
    arm, leg = dims.upper_arm_length_m, dims.thigh_length_m
    rows = {   # name: (start xyz, to centre, is limb, d pitch / reach pitch, d / arm swing, d / leg swing)
        'head': ((0, 0, dims.head_centre_height_m), 0.0, False, 0, 0, 0),
        'torso': ((0, 0, dims.hip_height_m + dims.torso_size_m[2] / 2), 0.0, False, 0, 0, 0),
        'upper_arm_left': ((0, shoulder, dims.shoulder_height_m), arm / 2, True, 1, 1, 0),
        'upper_arm_right': ((0, -shoulder, dims.shoulder_height_m), arm / 2, True, 1, -1, 0),
        'forearm_hand_left': ((0, shoulder, dims.shoulder_height_m), arm + dims.forearm_hand_length_m / 2,
                              True, 1, 1, 0),
        'forearm_hand_right': ((0, -shoulder, dims.shoulder_height_m), arm + dims.forearm_hand_length_m / 2,
                               True, 1, -1, 0),
        'thigh_left': ((0, hip, dims.hip_height_m), leg / 2, True, 0, 0, 1),
        'thigh_right': ((0, -hip, dims.hip_height_m), leg / 2, True, 0, 0, -1),
        'lower_leg_left': ((0, hip, dims.hip_height_m), leg + dims.lower_leg_length_m / 2, True, 0, 0, 1),
        'lower_leg_right': ((0, -hip, dims.hip_height_m), leg + dims.lower_leg_length_m / 2, True, 0, 0, -1),
    }
    table = [rows[name] for name in REGION_NAMES]
    start = np.array([r[0] for r in table], dtype=float)
    to_centre = np.array([r[1] for r in table])
    is_limb = np.array([r[2] for r in table])
    pitch_coefficients = np.array([r[3:] for r in table], dtype=float)
    return start, to_centre, is_limb, pitch_coefficients


def region_poses(state: PersonState, dims: BodyDimensions = BodyDimensions()) -> tuple[np.ndarray, np.ndarray]:
    """World poses of the body regions in REGION_NAMES order: positions (R, 3) m, quaternions (R, 4) xyzw.

    Limbs are capsules along their local z, the torso a box, the head a sphere (shape_specs()).
    A limb's pitch is its angle from hanging straight down, positive forward.
    """
    positions, quaternions, _ = _region_frames(state, dims)
    return positions, quaternions


def region_segments(state: PersonState, dims: BodyDimensions = BodyDimensions()) -> tuple[np.ndarray, np.ndarray]:
    """Each region as a segment (R, 2, 3) m in the world plus a radius (R,) m that together enclose it
    (exactly for the capsules and the head; the torso box inside a vertical capsule)."""
    positions, _, axes = _region_frames(state, dims)
    return _segments(positions, axes, dims)


def _segments(positions: np.ndarray, axes: np.ndarray, dims: BodyDimensions) -> tuple[np.ndarray, np.ndarray]:
    half_length, radius = _segment_sizes(dims)
    offset = half_length[:, None] * axes
    return np.stack([positions - offset, positions + offset], axis=1), radius


@functools.lru_cache(maxsize=8)
def _segment_sizes(dims: BodyDimensions) -> tuple[np.ndarray, np.ndarray]:
    half_length, radius = [], []
    for region in REGION_NAMES:
        shape, size = shape_specs(dims)[region]
        if shape == p.GEOM_SPHERE:
            half_length.append(0.0)
            radius.append(size['radius'])
        elif shape == p.GEOM_BOX:
            hx, hy, hz = size['halfExtents']
            half_length.append(hz)
            radius.append(math.hypot(hx, hy))
        else:
            half_length.append(size['height'] / 2)
            radius.append(size['radius'])
    return np.array(half_length), np.array(radius)


def _region_frames(state: PersonState, dims: BodyDimensions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (R, 3), quaternions (R, 4) and shape z axes (R, 3) in the world."""
    reach = float(np.clip(state.reach, 0.0, 1.0))
    leg_swing = dims.max_leg_swing_rad * min(state.speed_mps / WALKING_SPEED_MPS, 1.25) \
        * math.sin(state.gait_phase_rad)                     # > 0: left leg forward
    arm_swing = -dims.arm_swing_ratio * leg_swing * (1.0 - reach)   # arms swing against the legs
    start, to_centre, is_limb, coefficients = _region_geometry(dims)
    pitch = coefficients @ np.array([reach * math.pi / 2, arm_swing, leg_swing])
    direction = np.stack([np.sin(pitch), np.zeros_like(pitch), -np.cos(pitch)], axis=1)
    local = start + to_centre[:, None] * direction
    # Ry(pi - pitch) turns a shape's +z into `direction`; head and torso stay upright.
    about_y = np.where(is_limb, np.pi - pitch, 0.0)
    c, s = math.cos(state.yaw_rad), math.sin(state.yaw_rad)
    positions = local @ np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]) + (state.x_m, state.y_m, 0.0)
    # q = q_z(yaw) * q_y(about_y), expanded.
    sz, cz = math.sin(state.yaw_rad / 2), math.cos(state.yaw_rad / 2)
    sy, cy = np.sin(about_y / 2), np.cos(about_y / 2)
    quaternions = np.stack([-sz * sy, cz * sy, sz * cy, cz * cy], axis=1)
    local_axis = np.where(is_limb[:, None], direction, (0.0, 0.0, 1.0))
    axes = local_axis @ np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    return positions, quaternions, axes


def shape_specs(dims: BodyDimensions = BodyDimensions()) -> dict[str, tuple[int, dict[str, Any]]]:
    """PyBullet shape type and size keyword arguments per region (a float radius or height, or a
    list of halfExtents, so the values are Any: they are passed on as createCollisionShape's kwargs)."""
    def capsule(radius: float, length: float) -> tuple[int, dict[str, Any]]:
        # PyBullet's capsule `height` is the cylinder part; the caps add a radius at each end.
        return p.GEOM_CAPSULE, {'radius': radius, 'height': max(length - 2 * radius, 0.01)}
    half_torso = [v / 2 for v in dims.torso_size_m]
    return {
        'head': (p.GEOM_SPHERE, {'radius': dims.head_radius_m}),
        'torso': (p.GEOM_BOX, {'halfExtents': half_torso}),
        'upper_arm_left': capsule(dims.upper_arm_radius_m, dims.upper_arm_length_m),
        'upper_arm_right': capsule(dims.upper_arm_radius_m, dims.upper_arm_length_m),
        'forearm_hand_left': capsule(dims.forearm_hand_radius_m, dims.forearm_hand_length_m),
        'forearm_hand_right': capsule(dims.forearm_hand_radius_m, dims.forearm_hand_length_m),
        'thigh_left': capsule(dims.thigh_radius_m, dims.thigh_length_m),
        'thigh_right': capsule(dims.thigh_radius_m, dims.thigh_length_m),
        'lower_leg_left': capsule(dims.lower_leg_radius_m, dims.lower_leg_length_m + 2 * dims.lower_leg_radius_m),
        'lower_leg_right': capsule(dims.lower_leg_radius_m, dims.lower_leg_length_m + 2 * dims.lower_leg_radius_m),
    }


# ---------------------------------------------------------------------------------------------
# Paths: keyframes (time, position, facing, reach) with straight walking between them.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PersonPath:
    """Piecewise-linear motion of one person. Before the first keyframe and after the last one
    the person stands still there. Arrays are read-only."""

    times_s: np.ndarray           # (N,) increasing
    xy_m: np.ndarray              # (N, 2)
    yaw_rad: np.ndarray           # (N,) facing while standing at keyframe k (walking faces the motion)
    reach: np.ndarray             # (N,) 0..1, linear between keyframes
    distance_m: np.ndarray        # (N,) walked distance so far (drives the gait phase)
    stride_length_m: float = BodyDimensions.stride_length_m

    def __post_init__(self) -> None:
        for name in ('times_s', 'xy_m', 'yaw_rad', 'reach', 'distance_m'):
            array = np.array(getattr(self, name), dtype=float)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        if self.times_s.ndim != 1 or self.times_s.size == 0 or np.any(np.diff(self.times_s) <= 0):
            raise ValueError('PersonPath.times_s must be a non-empty, strictly increasing 1-D array')

    @property
    def end_s(self) -> float:
        return float(self.times_s[-1])

    def state_at(self, t_s: float) -> PersonState:
        times = self.times_s
        if t_s <= times[0] or times.size == 1:
            return PersonState(self.xy_m[0, 0], self.xy_m[0, 1], self.yaw_rad[0], 0.0, self._phase(self.distance_m[0]),
                               self.reach[0])
        if t_s >= times[-1]:
            return PersonState(self.xy_m[-1, 0], self.xy_m[-1, 1], self.yaw_rad[-1], 0.0,
                               self._phase(self.distance_m[-1]), self.reach[-1])
        k = int(np.searchsorted(times, t_s, side='right')) - 1
        f = (t_s - times[k]) / (times[k + 1] - times[k])
        delta = self.xy_m[k + 1] - self.xy_m[k]
        step_m = float(np.hypot(*delta))
        xy = self.xy_m[k] + f * delta
        moving = step_m > 1e-9
        yaw = math.atan2(delta[1], delta[0]) if moving else float(self.yaw_rad[k])
        speed = step_m / (times[k + 1] - times[k])
        distance = self.distance_m[k] + f * step_m
        reach = self.reach[k] + f * (self.reach[k + 1] - self.reach[k])
        return PersonState(float(xy[0]), float(xy[1]), yaw, speed, self._phase(distance), float(reach))

    def _phase(self, distance_m: float) -> float:
        return float(2 * math.pi * distance_m / self.stride_length_m)


class PathBuilder:
    """Write a path as a script: walk_to, wait (optionally reaching), starting at a time and place."""

    REACH_MOTION_S = 0.6            # time to raise or lower the arms

    def __init__(self, start_xy_m: tuple[float, float], start_s: float = 0.0, yaw_rad: float = 0.0) -> None:
        self._t = [float(start_s)]
        self._xy = [np.asarray(start_xy_m, dtype=float)]
        self._yaw = [float(yaw_rad)]
        self._reach = [0.0]
        self._distance = [0.0]

    @property
    def time_s(self) -> float:
        return self._t[-1]

    @property
    def position_m(self) -> np.ndarray:
        return self._xy[-1].copy()

    def _append(self, t: float, xy: np.ndarray, yaw: float, reach: float) -> None:
        self._distance.append(self._distance[-1] + float(np.hypot(*(xy - self._xy[-1]))))
        self._t.append(t)
        self._xy.append(xy)
        self._yaw.append(yaw)
        self._reach.append(reach)

    def walk_to(self, xy_m: tuple[float, float], speed_mps: float = WALKING_SPEED_MPS) -> PathBuilder:
        if not speed_mps > 0:
            raise ValueError(f'walking speed must be > 0 m/s, got {speed_mps}')
        target = np.asarray(xy_m, dtype=float)
        delta = target - self._xy[-1]
        distance = float(np.hypot(*delta))
        if distance < 1e-6:
            return self
        yaw = math.atan2(delta[1], delta[0])
        self._append(self._t[-1] + distance / speed_mps, target, yaw, 0.0)
        return self

    def wait(self, duration_s: float, reach: float = 0.0, face_xy_m: tuple[float, float] | None = None) -> PathBuilder:
        """Stand still; with reach > 0 the arms rise to that level and come back before leaving."""
        if not duration_s > 0:
            raise ValueError(f'wait duration must be > 0 s, got {duration_s}')
        if not 0.0 <= reach <= 1.0:
            raise ValueError(f'reach must be in [0, 1], got {reach}')
        here = self._xy[-1]
        yaw = self._yaw[-1]
        if face_xy_m is not None:
            yaw = math.atan2(face_xy_m[1] - here[1], face_xy_m[0] - here[0])
            self._yaw[-1] = yaw
        motion = min(self.REACH_MOTION_S, duration_s / 3)
        if reach > 0.0:
            self._append(self._t[-1] + motion, here, yaw, reach)
            self._append(self._t[-1] + duration_s - 2 * motion, here, yaw, reach)
            self._append(self._t[-1] + motion, here, yaw, 0.0)
        else:
            self._append(self._t[-1] + duration_s, here, yaw, 0.0)
        return self

    def build(self) -> PersonPath:
        return PersonPath(np.array(self._t), np.array(self._xy), np.array(self._yaw), np.array(self._reach),
                          np.array(self._distance))


# ---------------------------------------------------------------------------------------------
# PyBullet bodies
# ---------------------------------------------------------------------------------------------

SKIN_RGBA = (0.93, 0.75, 0.62, 1.0)
CLOTHES_RGBA = (0.85, 0.45, 0.10, 1.0)       # high-visibility orange


class SimulatedPerson:
    """One person's body regions as static PyBullet bodies in the given client."""

    def __init__(self, client_id: int, name: str, dims: BodyDimensions = BodyDimensions(),
                 initial: PersonState = PersonState(100.0, 100.0, 0.0)) -> None:
        self.client_id = client_id
        self.name = name
        self.dims = dims
        self.state = initial
        positions, quaternions, axes = _region_frames(initial, dims)
        self.positions_m, self.quaternions_xyzw = positions, quaternions   # each region's pose, world frame
        self.segments_m, self.radii_m = _segments(positions, axes, dims)
        bodies = []
        for (region, (shape, size)), position, quaternion in zip(shape_specs(dims).items(), positions, quaternions):
            colour = SKIN_RGBA if region in ('head', 'forearm_hand_left', 'forearm_hand_right') else CLOTHES_RGBA
            collision = p.createCollisionShape(shape, physicsClientId=client_id, **size)
            visual = p.createVisualShape(shape, rgbaColor=colour, physicsClientId=client_id,
                                         **_visual_size(shape, size))
            bodies.append(p.createMultiBody(baseMass=0.0, baseCollisionShapeIndex=collision,
                                            baseVisualShapeIndex=visual, basePosition=position.tolist(),
                                            baseOrientation=quaternion.tolist(), physicsClientId=client_id))
        self.body_ids: tuple[int, ...] = tuple(bodies)
        self.region_by_body: dict[int, str] = dict(zip(self.body_ids, REGION_NAMES))

    def apply(self, state: PersonState) -> None:
        """Place every body region for this state (kinematic: no forces, no inertia)."""
        self.state = state
        positions, quaternions, axes = _region_frames(state, self.dims)
        self.positions_m, self.quaternions_xyzw = positions, quaternions
        # Each region as segment + radius, for cheap distance bounds and scanner sectors.
        self.segments_m, self.radii_m = _segments(positions, axes, self.dims)
        for body, position, quaternion in zip(self.body_ids, positions.tolist(), quaternions.tolist()):
            p.resetBasePositionAndOrientation(body, position, quaternion, physicsClientId=self.client_id)


def _visual_size(shape: int, size: dict[str, object]) -> dict[str, object]:
    # createVisualShape names the capsule's cylinder part `length`, createCollisionShape `height`.
    if shape == p.GEOM_CAPSULE:
        return {'radius': size['radius'], 'length': size['height']}
    return size
