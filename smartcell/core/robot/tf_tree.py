"""The cell's coordinate frames: URDF forward kinematics (what robot_state_publisher does), the
static layout, people frames, and a frame tree that resolves any frame to the world.

Pure (numpy + stdlib): the robot_state node turns these transforms into /tf and /tf_static, and
tests build a FrameTree from the TF messages they receive to walk every published frame_id.

Conventions as in tf2: a Transform `parent -> child` is the pose of `child` expressed in `parent`
(translation in m, rotation as a unit quaternion x, y, z, w); a point p_child maps to
p_parent = R p_child + t.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from smartcell.core.safety.monitor import ZONES

# URDF joint types whose transform depends on a joint position (robot_state_publisher puts them on
# /tf); every other supported type is constant and goes on /tf_static.
MOVING_TYPES = ('revolute', 'continuous', 'prismatic')
FIXED_TYPES = ('fixed',)


class UrdfError(ValueError):
    """A URDF this module cannot turn into frames; the message names the joint and the reason."""


class FrameError(LookupError):
    """A frame that does not resolve to the root: unknown, disconnected or in a cycle (named)."""


@dataclass(frozen=True)
class Transform:
    """Pose of `child` in `parent`: translation m, rotation quaternion (x, y, z, w)."""

    parent: str
    child: str
    translation_m: tuple[float, float, float]
    rotation_xyzw: tuple[float, float, float, float]

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping child coordinates into parent coordinates."""
        out = np.eye(4)
        out[:3, :3] = quaternion_to_matrix(self.rotation_xyzw)
        out[:3, 3] = self.translation_m
        return out

    @classmethod
    def from_matrix(cls, parent: str, child: str, matrix: np.ndarray) -> Transform:
        t = matrix[:3, 3]
        return cls(parent, child, (float(t[0]), float(t[1]), float(t[2])), matrix_to_quaternion(matrix[:3, :3]))


def quaternion_to_matrix(q: Sequence[float]) -> np.ndarray:
    """3x3 rotation of a quaternion (x, y, z, w); normalised first (TF senders round)."""
    x, y, z, w = np.asarray(q, dtype=float) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_to_quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """Quaternion (x, y, z, w) with w >= 0 of a 3x3 rotation (Shepperd's method, stable near 180 deg)."""
    m = np.asarray(rotation, dtype=float)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0.0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = (0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s)
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = ((m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = ((m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s)
    norm = math.sqrt(sum(c * c for c in q))
    sign = -1.0 if q[3] < 0.0 else 1.0
    return tuple(float(sign * c / norm) for c in q)  # type: ignore[return-value]


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF's fixed-axis roll, pitch, yaw (rad): R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def axis_angle_matrix(axis: Sequence[float], angle_rad: float) -> np.ndarray:
    """Rotation by angle_rad about the unit vector axis (Rodrigues)."""
    k = np.asarray(axis, dtype=float)
    k = k / np.linalg.norm(k)
    skew = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(angle_rad) * skew + (1.0 - math.cos(angle_rad)) * skew @ skew


def yaw_transform(parent: str, child: str, xyz_m: Sequence[float], yaw_rad: float) -> Transform:
    """A frame placed at xyz_m (m) and turned by yaw_rad about z: how the cell's layout mounts things."""
    half = 0.5 * yaw_rad
    return Transform(parent, child, (float(xyz_m[0]), float(xyz_m[1]), float(xyz_m[2])),
                     (0.0, 0.0, math.sin(half), math.cos(half)))


@dataclass(frozen=True)
class UrdfJoint:
    name: str
    type: str                                 # fixed | revolute | continuous | prismatic
    parent: str
    child: str
    origin: tuple[tuple[float, ...], ...]     # 4x4 parent -> joint frame at zero position, rows
    axis: tuple[float, float, float]          # unit vector in the joint frame

    def transform(self, position: float = 0.0) -> Transform:
        """parent -> child at the joint position (rad for revolute/continuous, m for prismatic)."""
        matrix = np.array(self.origin)
        motion = np.eye(4)
        if self.type in ('revolute', 'continuous'):
            motion[:3, :3] = axis_angle_matrix(self.axis, position)
        elif self.type == 'prismatic':
            motion[:3, 3] = np.asarray(self.axis) * position
        return Transform.from_matrix(self.parent, self.child, matrix @ motion)


@dataclass(frozen=True)
class RobotModel:
    """The kinematic tree of a URDF: joints in document order, the root link."""

    name: str
    root: str
    joints: tuple[UrdfJoint, ...]

    @property
    def moving_joints(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints if j.type in MOVING_TYPES)

    @property
    def links(self) -> tuple[str, ...]:
        return (self.root,) + tuple(j.child for j in self.joints)

    def fixed_transforms(self) -> tuple[Transform, ...]:
        """The constant parent -> child transforms (robot_state_publisher's /tf_static)."""
        return tuple(j.transform() for j in self.joints if j.type in FIXED_TYPES)

    def moving_transforms(self, positions: Mapping[str, float]) -> tuple[Transform, ...]:
        """The joint-dependent transforms (robot_state_publisher's /tf) for positions by joint name.

        Raises ValueError naming a missing or non-finite joint: a link drawn at a guessed angle is
        worse than a link not drawn (TF consumers see it go stale).
        """
        out = []
        for joint in self.joints:
            if joint.type not in MOVING_TYPES:
                continue
            if joint.name not in positions:
                raise ValueError(f'no position for joint {joint.name!r}')
            value = float(positions[joint.name])
            if not math.isfinite(value):
                raise ValueError(f'joint {joint.name!r} position is {value}')
            out.append(joint.transform(value))
        return tuple(out)

    def link_poses(self, positions: Mapping[str, float]) -> dict[str, np.ndarray]:
        """4x4 pose of every link in the root link's frame (forward kinematics)."""
        tree = FrameTree(self.fixed_transforms() + self.moving_transforms(positions))
        return {link: tree.pose(link, self.root) for link in self.links}


def _floats(text: str | None, count: int, default: Sequence[float], where: str) -> tuple[float, ...]:
    if text is None:
        return tuple(default)
    try:
        values = tuple(float(v) for v in text.split())
    except ValueError as exc:
        raise UrdfError(f'{where}: {text!r} is not {count} numbers') from exc
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise UrdfError(f'{where}: {text!r} is not {count} finite numbers')
    return values


def parse_urdf(xml_text: str) -> RobotModel:
    """The kinematic tree of a URDF document (robot_state_publisher's view: links and joints only)."""
    try:
        robot = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise UrdfError(f'URDF is not XML: {exc}') from exc
    if robot.tag != 'robot':
        raise UrdfError(f'URDF root element is <{robot.tag}>, expected <robot>')
    links = [link.get('name') for link in robot.findall('link')]
    joints = []
    for element in robot.findall('joint'):
        name, kind = element.get('name', ''), element.get('type', '')
        if kind not in MOVING_TYPES + FIXED_TYPES:
            raise UrdfError(f'joint {name!r}: type {kind!r} is not supported '
                            f'({", ".join(MOVING_TYPES + FIXED_TYPES)})')
        parent, child = element.find('parent'), element.find('child')
        if parent is None or child is None:
            raise UrdfError(f'joint {name!r} lacks <parent> or <child>')
        origin = element.find('origin')
        xyz = _floats(origin.get('xyz') if origin is not None else None, 3, (0.0, 0.0, 0.0),
                      f'joint {name!r} origin xyz')
        rpy = _floats(origin.get('rpy') if origin is not None else None, 3, (0.0, 0.0, 0.0),
                      f'joint {name!r} origin rpy')
        axis_element = element.find('axis')
        axis = _floats(axis_element.get('xyz') if axis_element is not None else None, 3, (1.0, 0.0, 0.0),
                       f'joint {name!r} axis')
        if np.linalg.norm(axis) == 0.0:
            raise UrdfError(f'joint {name!r}: axis is the zero vector')
        matrix = np.eye(4)
        matrix[:3, :3] = rpy_matrix(*rpy)
        matrix[:3, 3] = xyz
        unit = tuple(float(a) for a in np.asarray(axis) / np.linalg.norm(axis))
        joints.append(UrdfJoint(name, kind, parent.get('link', ''), child.get('link', ''),
                                tuple(tuple(float(v) for v in row) for row in matrix), unit))  # type: ignore[arg-type]
    children = {j.child for j in joints}
    roots = [link for link in links if link not in children]
    if len(roots) != 1:
        raise UrdfError(f'URDF must have exactly one root link, found {roots}')
    root = str(roots[0])
    model = RobotModel(str(robot.get('name', '')), root, tuple(joints))
    FrameTree(model.fixed_transforms() + tuple(j.transform() for j in joints if j.type in MOVING_TYPES)).check(
        model.links, root)
    return model


def people_transforms(world_frame: str, positions_xy_m: Iterable[Sequence[float]], prefix: str = 'person_',
                      height_m: float = 0.0) -> tuple[Transform, ...]:
    """One frame per tracked person, `<prefix><i>` at its position (m, world) in the order given."""
    return tuple(Transform(world_frame, f'{prefix}{i}', (float(p[0]), float(p[1]), float(height_m)),
                           (0.0, 0.0, 0.0, 1.0))
                 for i, p in enumerate(positions_xy_m))


class FrameTree:
    """The latest transform per child frame, and lookups through it (a tf2 buffer without time).

    As in tf2, each frame has one parent; a later transform for the same child replaces the earlier.
    """

    def __init__(self, transforms: Iterable[Transform] = ()) -> None:
        self._by_child: dict[str, Transform] = {}
        for transform in transforms:
            self.add(transform)

    def add(self, transform: Transform) -> None:
        if transform.parent == transform.child:
            raise FrameError(f'transform from {transform.parent!r} to itself')
        self._by_child[transform.child] = transform

    @property
    def frames(self) -> frozenset[str]:
        return frozenset(self._by_child) | frozenset(t.parent for t in self._by_child.values())

    def path(self, frame: str, root: str) -> tuple[str, ...]:
        """The frames from `frame` up to `root`, both included; FrameError naming where it breaks."""
        chain = [frame]
        while chain[-1] != root:
            transform = self._by_child.get(chain[-1])
            if transform is None:
                where = 'is unknown' if chain[-1] not in self.frames else 'has no parent'
                raise FrameError(f'frame {frame!r} does not reach {root!r}: {chain[-1]!r} {where} '
                                 f'(path {" -> ".join(chain)})')
            if transform.parent in chain:
                raise FrameError(f'frame {frame!r}: cycle through {transform.parent!r} ({" -> ".join(chain)})')
            chain.append(transform.parent)
        return tuple(chain)

    def pose(self, frame: str, root: str) -> np.ndarray:
        """4x4 pose of `frame` in `root` (maps frame coordinates into root coordinates)."""
        chain = self.path(frame, root)
        out = np.eye(4)
        for child in reversed(chain[:-1]):
            out = out @ self._by_child[child].matrix()
        return out

    def check(self, frames: Iterable[str], root: str) -> None:
        for frame in frames:
            self.path(frame, root)


# ---------------------------------------------------------------------------------------------
# The protective zone for drawing: the separation monitor measures person-to-robot surface
# distance against S_p, so the zone is the robot's link capsules grown by S_p (a person's body
# surface inside it means a protective stop). Drawn in base_link from the verdict's S_p.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Capsule:
    start_m: tuple[float, float, float]      # segment end points, base_link
    end_m: tuple[float, float, float]
    radius_m: float


@dataclass(frozen=True)
class ZoneView:
    """What to draw for one verdict: the zone name and S_p (m; None when nobody is tracked)."""

    zone: str
    protective_distance_m: float | None


def zone_view(values: Mapping[str, str]) -> ZoneView | str:
    """The verdict's zone and S_p from its key/values, or why they cannot be drawn (a reason string)."""
    zone = values.get('zone')
    if zone not in ZONES:
        return f'verdict zone {zone!r} is not one of {", ".join(ZONES)}'
    raw = values.get('protective_distance_m')
    try:
        s_p = float(raw) if raw is not None else math.nan
    except ValueError:
        return f'verdict protective_distance_m={raw!r} is not a number'
    if math.isnan(s_p):
        return ZoneView(zone, None)            # nobody tracked: no S_p (the verdict says nan)
    if not math.isfinite(s_p) or s_p < 0.0:
        return f'verdict protective_distance_m={raw!r} is not a distance'
    return ZoneView(zone, s_p)


def protective_zone(capsules_m: np.ndarray, radii_m: Sequence[float] | np.ndarray,
                    distance_m: float) -> tuple[Capsule, ...]:
    """The link capsules (M, 2, 3) with radii (M,) grown by distance_m: the points within distance_m
    of the robot's surface."""
    return tuple(Capsule(tuple(float(v) for v in segment[0]), tuple(float(v) for v in segment[1]),  # type: ignore[arg-type]
                         float(radius) + float(distance_m))
                 for segment, radius in zip(np.asarray(capsules_m), radii_m, strict=True))
