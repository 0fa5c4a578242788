"""Kinematics of the Universal Robots UR5e: forward, analytic inverse, limits, link capsules.

Frames (as in ur_description):
- `base_link`: the ROS frame the robot is mounted by; z up along the shoulder-pan axis.
- `base`: the vendor's frame (the one the teach pendant shows). It is `base_link` rotated by
  pi about z, so a point (x, y, z) in `base` is (-x, -y, z) in `base_link`.
- The manufacturer's DH table below is expressed in `base`; `tool0` coincides with DH frame 6.

Every public function here takes and returns `base_link` coordinates (m, rad) unless it says
otherwise. numpy only: this module is part of the ROS-free, PyBullet-free core.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JOINT_NAMES: tuple[str, ...] = ('shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint',
                                'wrist_1_joint', 'wrist_2_joint', 'wrist_3_joint')
N_JOINTS = len(JOINT_NAMES)

# Manufacturer's standard DH parameters of the UR5e (m, rad), joint i: Rz(q_i) Tz(d_i) Tx(a_i) Rx(alpha_i).
DH_D_M = np.array([0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996])
DH_A_M = np.array([0.0, -0.425, -0.3922, 0.0, 0.0, 0.0])
DH_ALPHA_RAD = np.array([np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0])

# base_link -> base: rotation by pi about z (ur_description's base_link-base_fixed_joint).
BASE_LINK_T_BASE = np.diag([-1.0, -1.0, 1.0, 1.0])

# Datasheet figures (UR5e).
PAYLOAD_KG = 5.0
REACH_M = 0.85
MAX_TCP_SPEED_MPS = 1.0
DEFAULT_TOOL_LENGTH_M = 0.15      # flange to the tip of the simple gripper of urdf/ur5e.urdf


class IKError(ValueError):
    """No inverse-kinematics solution: the message says why (out of reach, singular, limits)."""


class JointLimitError(ValueError):
    """A joint value outside its range; the message names the joint, the value and the range."""


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits in JOINT_NAMES order."""

    lower: np.ndarray        # rad
    upper: np.ndarray        # rad
    velocity: np.ndarray     # rad/s
    effort: np.ndarray       # N·m

    def __post_init__(self) -> None:
        for name in ('lower', 'upper', 'velocity', 'effort'):
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape != (N_JOINTS,):
                raise ValueError(f'JointLimits.{name} needs {N_JOINTS} values, got shape {value.shape}')
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        if np.any(self.lower >= self.upper):
            raise ValueError(f'JointLimits.lower must be below upper, got {self.lower} / {self.upper}')


# ur_description joint_limits.yaml for ur5e: +-360 deg except the elbow (+-180 deg, the
# cables and the forearm would hit the upper arm beyond); 180 deg/s on every joint.
UR5E_LIMITS = JointLimits(
    lower=np.array([-2 * np.pi, -2 * np.pi, -np.pi, -2 * np.pi, -2 * np.pi, -2 * np.pi]),
    upper=np.array([2 * np.pi, 2 * np.pi, np.pi, 2 * np.pi, 2 * np.pi, 2 * np.pi]),
    velocity=np.full(N_JOINTS, np.pi),
    effort=np.array([150.0, 150.0, 150.0, 28.0, 28.0, 28.0]),
)


def _as_joints(q: np.ndarray | list[float], what: str = 'q') -> np.ndarray:
    q = np.asarray(q, dtype=float)
    if q.shape != (N_JOINTS,):
        raise ValueError(f'{what} needs {N_JOINTS} joint values in JOINT_NAMES order, got shape {q.shape}')
    if not np.all(np.isfinite(q)):
        raise ValueError(f'{what} must be finite, got {q}')
    return q


def _dh_transform(theta: float, d: float, a: float, alpha: float) -> np.ndarray:
    ct, st, ca, sa = np.cos(theta), np.sin(theta), np.cos(alpha), np.sin(alpha)
    return np.array([[ct, -st * ca, st * sa, a * ct],
                     [st, ct * ca, -ct * sa, a * st],
                     [0.0, sa, ca, d],
                     [0.0, 0.0, 0.0, 1.0]])


def link_frames(q: np.ndarray | list[float]) -> np.ndarray:
    """(7, 4, 4) poses in base_link: index 0 is the vendor `base` frame, i is DH frame i (6 = tool0).

    Frame i's z axis is the axis of joint i+1 (i < 6); its origin is the DH origin, which for
    the shoulder and elbow lies in the arm's plane, not at the centre of the joint housing.
    """
    q = _as_joints(q)
    frames = np.empty((N_JOINTS + 1, 4, 4))
    frames[0] = BASE_LINK_T_BASE
    for i in range(N_JOINTS):
        frames[i + 1] = frames[i] @ _dh_transform(q[i], DH_D_M[i], DH_A_M[i], DH_ALPHA_RAD[i])
    return frames


def forward_kinematics(q: np.ndarray | list[float]) -> np.ndarray:
    """4x4 pose of `tool0` in `base_link` for joint positions q (rad, JOINT_NAMES order)."""
    return link_frames(q)[-1]


def check_joint_limits(q: np.ndarray | list[float], limits: JointLimits = UR5E_LIMITS) -> None:
    """Raise JointLimitError naming the first joint outside [lower, upper] (rad); NaN is outside."""
    q = np.asarray(q, dtype=float)
    if q.shape != (N_JOINTS,):
        raise JointLimitError(f'expected {N_JOINTS} joint values in order {JOINT_NAMES}, got shape {q.shape}')
    for name, value, lower, upper in zip(JOINT_NAMES, q, limits.lower, limits.upper):
        if not lower <= value <= upper:        # also true for NaN: unknown counts as out of range
            raise JointLimitError(f'{name} = {value:.4f} rad ({np.degrees(value):.1f} deg) is outside '
                                  f'[{lower:.4f}, {upper:.4f}] rad ([{np.degrees(lower):.0f}, '
                                  f'{np.degrees(upper):.0f}] deg)')


# ---------------------------------------------------------------------------------------------
# Inverse kinematics: the closed form for UR arms (three parallel axes 2-4, wrist axes 5 and 6
# intersecting axis 4's normal), after K. Hawkins, "Analytic inverse kinematics for the Universal
# Robots UR-5/UR-10 arms" (2013). Up to 8 solutions: shoulder left/right x wrist up/down x elbow
# up/down. Derivation of the wrist step, with z1 = (sin q1, -cos q1, 0) the axis of joints 2-4 in
# `base`: z1 expressed in tool0 is (sin q5 cos q6, -sin q5 sin q6, cos q5), and the tool0 origin
# satisfies p6 . z1 = d4 + d6 cos q5.
# ---------------------------------------------------------------------------------------------

_NUMERIC_SLACK = 1e-9            # acos/asin arguments this far past +-1 are rounding, not unreachability
_SINGULAR_SIN_Q5 = 1e-6          # |sin q5| below this: wrist singularity, q6 is (nearly) free
_IK_CHECK_POSITION_M = 1e-6
_IK_CHECK_ROTATION = 1e-6            # max abs difference of rotation-matrix entries


def _clip_unit(value: float, reason: str) -> float:
    if abs(value) > 1.0 + _NUMERIC_SLACK:
        raise IKError(reason)
    return float(np.clip(value, -1.0, 1.0))


def _all_solutions(target_in_base: np.ndarray, q6_if_singular: float) -> list[np.ndarray]:
    d4, d6 = DH_D_M[3], DH_D_M[5]
    rotation, p6 = target_in_base[:3, :3], target_in_base[:3, 3]
    x_axis, y_axis, z_axis = rotation[:, 0], rotation[:, 1], rotation[:, 2]
    p5 = p6 - d6 * z_axis
    radius = float(np.hypot(p5[0], p5[1]))
    if radius < abs(d4) * (1.0 - _NUMERIC_SLACK):
        raise IKError(f'target wrist centre is {radius:.4f} m from the shoulder-pan axis, closer than the '
                      f'shoulder offset d4 = {d4} m: unreachable')
    psi = np.arctan2(p5[1], p5[0])
    phi = np.arcsin(min(d4 / radius, 1.0))          # = 1 at the shoulder singularity (arm straight up)
    solutions: list[np.ndarray] = []
    errors = []
    for q1 in (psi + phi, psi + np.pi - phi):
        s1, c1 = np.sin(q1), np.cos(q1)
        try:
            c5 = _clip_unit((p6[0] * s1 - p6[1] * c1 - d4) / d6,
                            'tool orientation incompatible with the tool position (wrist 2 out of range)')
        except IKError as exc:
            errors.append(str(exc))
            continue
        for q5 in (np.arccos(c5), -np.arccos(c5)):
            s5 = np.sin(q5)
            z1 = np.array([s1, -c1, 0.0])
            q6_options = [np.arctan2(-(y_axis @ z1) / s5, (x_axis @ z1) / s5)] if s5 != 0.0 else []
            if abs(s5) < _SINGULAR_SIN_Q5:
                # Wrist singularity: z6 is (nearly) parallel to z1 and only q2+q3+q4+-q6 is fixed,
                # so the q6 above is rounding noise. q6 moves the wrist-1 centre on a circle: try the
                # seed's q6 and a 5 deg grid too; the FK check and nearest-to-seed choice pick among them.
                # The two extremes of that circle (nearest to and farthest from the shoulder) cover
                # the stretched and folded limits that a grid would miss.
                q6_options += [q6_if_singular, *_wrist_circle_extremes(q1, q5, target_in_base),
                               *np.radians(np.arange(-180.0, 180.0, 5.0))]
            for q6 in q6_options:
                _planar_solutions(q1, q5, q6, target_in_base, solutions, errors)
    if not solutions:
        raise IKError(errors[0] if errors else 'no analytic solution')
    return solutions


def _t14(q1: float, q5: float, q6: float, target_in_base: np.ndarray) -> np.ndarray:
    t01 = _dh_transform(q1, DH_D_M[0], 0.0, DH_ALPHA_RAD[0])
    t45 = _dh_transform(q5, DH_D_M[4], 0.0, DH_ALPHA_RAD[4])
    t56 = _dh_transform(q6, DH_D_M[5], 0.0, DH_ALPHA_RAD[5])
    return np.linalg.inv(t01) @ target_in_base @ np.linalg.inv(t45 @ t56)


def _wrist_circle_extremes(q1: float, q5: float, target_in_base: np.ndarray) -> tuple[float, float]:
    """At the wrist singularity the wrist-1 centre, in the arm plane, is c + A cos q6 + B sin q6;
    return the q6 putting it nearest to and farthest from the shoulder."""
    at_0, at_half_pi, at_pi = (_t14(q1, q5, q6, target_in_base)[:2, 3] for q6 in (0.0, np.pi / 2, np.pi))
    centre = (at_0 + at_pi) / 2.0
    a, b = at_0 - centre, at_half_pi - centre
    nearest = float(np.arctan2(-centre @ b, -centre @ a))
    return nearest, nearest + np.pi


def _planar_solutions(q1: float, q5: float, q6: float, target_in_base: np.ndarray,
                      solutions: list[np.ndarray], errors: list[str]) -> None:
    """Append the elbow-up/down solutions for given q1, q5, q6 (joints 2-4 form a planar 3R chain)."""
    a2, a3 = DH_A_M[1], DH_A_M[2]
    t14 = _t14(q1, q5, q6, target_in_base)
    x, y = t14[0, 3], t14[1, 3]
    try:
        c3 = _clip_unit((x * x + y * y - a2 * a2 - a3 * a3) / (2.0 * a2 * a3),
                        f'wrist is {np.hypot(x, y):.4f} m from the shoulder, beyond the arm\'s '
                        f'{abs(a2) + abs(a3):.4f} m reach')
    except IKError as exc:
        errors.append(str(exc))
        return
    for q3 in (np.arccos(c3), -np.arccos(c3)):
        q2 = np.arctan2(y, x) - np.arctan2(a3 * np.sin(q3), a2 + a3 * np.cos(q3))
        q234 = np.arctan2(t14[1, 0], t14[0, 0])
        solutions.append(np.array([q1, q2, q3, q234 - q2 - q3, q5, q6]))


def _nearest_within_limits(q: np.ndarray, seed: np.ndarray, limits: JointLimits) -> np.ndarray | None:
    """Shift every joint by a multiple of 2 pi towards the seed, staying inside the limits."""
    result = np.empty(N_JOINTS)
    for i in range(N_JOINTS):
        k = np.round((seed[i] - q[i]) / (2 * np.pi))
        candidates = q[i] + 2 * np.pi * np.array([k - 1, k, k + 1])
        inside = candidates[(candidates >= limits.lower[i]) & (candidates <= limits.upper[i])]
        if inside.size == 0:
            # A +-360 deg joint always has a representative inside; this covers narrower ranges.
            k_lo = np.ceil((limits.lower[i] - q[i]) / (2 * np.pi))
            value = q[i] + 2 * np.pi * k_lo
            if value > limits.upper[i]:
                return None
            inside = np.array([value])
        result[i] = inside[np.argmin(np.abs(inside - seed[i]))]
    return result


def inverse_kinematics(target_pose: np.ndarray, q_seed: np.ndarray | list[float],
                       limits: JointLimits = UR5E_LIMITS) -> np.ndarray:
    """Joint positions (rad) putting `tool0` at target_pose (4x4 in base_link).

    Of the up to 8 analytic solutions, each joint is wrapped by multiples of 2 pi towards the
    seed where the limits allow, and the solution nearest to the seed (Euclidean, rad) is
    returned. Raises IKError naming the reason: out of reach, or no solution within the limits.
    """
    target_pose = np.asarray(target_pose, dtype=float)
    if target_pose.shape != (4, 4) or not np.all(np.isfinite(target_pose)):
        raise IKError(f'target pose must be a finite 4x4 homogeneous matrix, got shape {target_pose.shape}')
    rotation = target_pose[:3, :3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or np.linalg.det(rotation) < 0:
        raise IKError('target pose rotation is not a proper rotation matrix')
    seed = _as_joints(q_seed, 'q_seed')
    target_in_base = BASE_LINK_T_BASE @ target_pose       # BASE_LINK_T_BASE is its own inverse
    best, best_cost = None, np.inf
    for solution in _all_solutions(target_in_base, q6_if_singular=seed[5]):
        reached = forward_kinematics(solution)
        if (np.linalg.norm(reached[:3, 3] - target_pose[:3, 3]) > _IK_CHECK_POSITION_M
                or np.abs(reached[:3, :3] - rotation).max() > _IK_CHECK_ROTATION):
            continue                                       # a numerically degenerate branch
        wrapped = _nearest_within_limits(solution, seed, limits)
        if wrapped is None:
            continue
        cost = float(np.linalg.norm(wrapped - seed))
        if cost < best_cost:
            best, best_cost = wrapped, cost
    if best is None:
        raise IKError('target pose is reachable but no solution lies within the joint limits')
    return best


# ---------------------------------------------------------------------------------------------
# Link capsules: a conservative envelope of the real links for person-robot separation.
# Each capsule is a segment plus a radius. Offsets are along the joint axes (DH z_i) from the DH
# origins; they are the UR5e housing positions (upper arm tube ~0.138 m out along the shoulder
# axis, forearm ~0.007 m, per ur_description's visual offsets), rounded outward, and each radius
# is the housing radius plus >= 1 cm margin.
# ---------------------------------------------------------------------------------------------

LINK_CAPSULE_RADII = np.array([0.095, 0.085, 0.075, 0.075, 0.065, 0.06, 0.06, 0.055, 0.07])   # m
LINK_CAPSULE_RADII.setflags(write=False)


def link_capsules(q: np.ndarray | list[float], tool_length: float = DEFAULT_TOOL_LENGTH_M) -> np.ndarray:
    """(M, 2, 3) capsule segment end points in base_link (m); radii in LINK_CAPSULE_RADII (m).

    `tool_length` (m) is the flange-to-tip length of the tool or gripper on tool0.
    """
    if not tool_length >= 0.0:
        raise ValueError(f'tool_length must be >= 0 m, got {tool_length}')
    frames = link_frames(q)
    origin = frames[:, :3, 3]
    axis = frames[:, :3, 2]
    base_origin = np.zeros(3)
    segments = np.array([
        # base cylinder and shoulder-pan housing, up to just above the shoulder-lift axis
        [base_origin, origin[1] + np.array([0.0, 0.0, 0.02])],
        # shoulder-lift housing along its own axis (z1)
        [origin[1] - 0.06 * axis[1], origin[1] + 0.19 * axis[1]],
        # upper arm tube, offset along the shoulder axis
        [origin[1] + 0.138 * axis[1], origin[2] + 0.138 * axis[2]],
        # elbow housing along the elbow axis (z2)
        [origin[2] - 0.03 * axis[2], origin[2] + 0.19 * axis[2]],
        # forearm tube
        [origin[2] + 0.007 * axis[2], origin[3] + 0.007 * axis[3]],
        # wrist 1 housing: from the forearm plane out to the wrist-2 axis
        [origin[3] - 0.03 * axis[3], origin[4] + 0.05 * axis[3]],
        # wrist 2 housing along z4, past the wrist-3 axis
        [origin[4] - 0.05 * axis[4], origin[5] + 0.05 * axis[4]],
        # wrist 3 housing along z5 up to the flange
        [origin[5] - 0.05 * axis[5], origin[6]],
        # tool / gripper
        [origin[6], origin[6] + tool_length * axis[6]],
    ])
    return segments


def capsule_point_velocities(q: np.ndarray | list[float], qd: np.ndarray | list[float],
                             tool_length: float = DEFAULT_TOOL_LENGTH_M) -> np.ndarray:
    """(M, 2, 3) linear velocities (m/s, base_link) of the capsule end points at joint rates qd (rad/s).

    Central finite difference of link_capsules along qd over +-0.1 ms: exact to ~1e-8 m/s at
    the arm's speeds, and by construction consistent with link_capsules.
    """
    q = _as_joints(q)
    qd = _as_joints(qd, 'qd')
    h_s = 1e-4
    ahead = link_capsules(q + h_s * qd, tool_length)
    behind = link_capsules(q - h_s * qd, tool_length)
    return (ahead - behind) / (2.0 * h_s)


def points_to_capsules_distance(points: np.ndarray, capsules: np.ndarray,
                                radii: np.ndarray = LINK_CAPSULE_RADII) -> np.ndarray:
    """(P, M) distance (m) from each point (P, 3) to each capsule surface (negative inside)."""
    points = np.atleast_2d(np.asarray(points, dtype=float))
    start, end = capsules[:, 0], capsules[:, 1]
    direction = end - start
    length_sq = np.maximum(np.einsum('ij,ij->i', direction, direction), 1e-18)
    rel = points[:, None, :] - start[None, :, :]
    t = np.clip(np.einsum('pmj,mj->pm', rel, direction) / length_sq, 0.0, 1.0)
    closest = start[None] + t[..., None] * direction[None]
    return np.linalg.norm(points[:, None, :] - closest, axis=2) - radii[None, :]


def segment_distances(segments_a: np.ndarray, segments_b: np.ndarray) -> np.ndarray:
    """(A, B) shortest distances (m) between segments (A, 2, 3) and (B, 2, 3); zero-length segments
    are points. Clamped closest-point parameters, after C. Ericson, Real-Time Collision Detection, 5.1.9."""
    segments_a = np.asarray(segments_a, dtype=float)
    segments_b = np.asarray(segments_b, dtype=float)
    a0, b0 = segments_a[:, None, 0], segments_b[None, :, 0]
    da = segments_a[:, None, 1] - a0                                   # (A, 1, 3)
    db = segments_b[None, :, 1] - b0                                   # (1, B, 3)
    r = a0 - b0                                                        # (A, B, 3)
    eps = 1e-12
    aa = np.maximum((da * da).sum(axis=2), eps)                        # (A, 1)
    bb = np.maximum((db * db).sum(axis=2), eps)                        # (1, B)
    ab = (da * db).sum(axis=2)                                         # (A, B)
    ar = (da * r).sum(axis=2)
    br = (db * r).sum(axis=2)
    denom = aa * bb - ab * ab
    parallel = denom <= eps
    s = np.where(parallel, 0.0, np.clip((ab * br - ar * bb) / np.where(parallel, 1.0, denom), 0.0, 1.0))
    t = (ab * s + br) / bb
    s = np.where(t < 0.0, np.clip(-ar / aa, 0.0, 1.0), np.where(t > 1.0, np.clip((ab - ar) / aa, 0.0, 1.0), s))
    t = np.clip(t, 0.0, 1.0)
    gap = r + s[..., None] * da - t[..., None] * db
    return np.sqrt((gap * gap).sum(axis=2))
