"""What the supervisor node does between messages and the safety monitor, free of ROS.

- the robot's link capsules in the world frame from its joint state and base pose;
- the shift KPIs the supervisor accounts per safety cycle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from smartcell.core.kinematics import LINK_CAPSULE_RADII, capsule_point_velocities, link_capsules


@dataclass(frozen=True)
class BasePose:
    """Robot base_link in the world frame: position (m) and yaw about z (rad)."""

    x_m: float
    y_m: float
    z_m: float
    yaw_rad: float

    @classmethod
    def from_list(cls, values: list[float]) -> 'BasePose':
        if len(values) != 4:
            raise ValueError(f'robot base pose needs x, y, z (m) and yaw (rad), got {values!r}')
        return cls(*map(float, values))

    def rotation(self) -> np.ndarray:
        c, s = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class RobotGeometry:
    """Capsules (M, 2, 3) m and their end-point velocities (M, 2, 3) m/s, in the world frame."""

    stamp_s: float
    capsules_m: np.ndarray
    radii_m: np.ndarray
    velocities_mps: np.ndarray


def robot_geometry(stamp_s: float, q_rad: np.ndarray, qd_radps: np.ndarray, base: BasePose) -> RobotGeometry:
    rotation = base.rotation()
    offset = np.array([base.x_m, base.y_m, base.z_m])
    capsules = link_capsules(q_rad) @ rotation.T + offset
    velocities = capsule_point_velocities(q_rad, qd_radps) @ rotation.T
    return RobotGeometry(stamp_s, capsules, LINK_CAPSULE_RADII, velocities)


@dataclass
class CellKpis:
    """Shift figures accounted once per safety cycle, from the cycle's own stamps (deterministic)."""

    cycles: int = 0
    protective_stops: int = 0
    reduced_speed_time_s: float = 0.0
    safety_stop_time_s: float = 0.0
    min_separation_m: float = math.inf
    started: bool = False
    _last_stamp_s: float | None = field(default=None, repr=False)

    def account(self, speed_scale: float, separation_m: float, stamp_s: float, working: bool) -> None:
        """`working`: the cell is meant to be producing (RUNNING or held by safety)."""
        dt = 0.0 if self._last_stamp_s is None else max(0.0, stamp_s - self._last_stamp_s)
        self._last_stamp_s = stamp_s
        if math.isfinite(separation_m):
            self.min_separation_m = min(self.min_separation_m, separation_m)
        if not working:
            return
        if speed_scale <= 0.0:
            self.safety_stop_time_s += dt
        elif speed_scale < 1.0:
            self.reduced_speed_time_s += dt

    def as_dict(self) -> dict[str, float]:
        return {'cycles': self.cycles, 'protective_stops': self.protective_stops,
                'reduced_speed_time_s': round(self.reduced_speed_time_s, 6),
                'safety_stop_time_s': round(self.safety_stop_time_s, 6),
                'min_separation_m': self.min_separation_m}


# ---------------------------------------------------------------------------------------------
# The safety pipeline the supervisor node calls: message arrays in, verdict out.
# ---------------------------------------------------------------------------------------------

class SafetyState(str):
    """Placeholder until the SSM monitor lands: values 'normal', 'reduced', 'protective_stop', ..."""

    @property
    def value(self) -> str:
        return str(self)


@dataclass(frozen=True)
class ZoneVerdict:
    stamp_s: float
    state: SafetyState
    zone: str
    separation_m: float
    speed_scale: float
    reason: str


class SafetyPipeline:
    """First cut: static distance zones from the closest robot capsule; doubt means stop."""

    def __init__(self, config: dict, base: BasePose) -> None:
        self._config = config
        self._base = base
        self._estop = False
        self._last_people_s: float | None = None
        self._geometry_cache = None
        self.last_verdict: ZoneVerdict | None = None

    @classmethod
    def from_params(cls, config: dict, stopping_path) -> 'SafetyPipeline':
        return cls(config, BasePose.from_list(config['robot_base_xyz_yaw']))

    def _verdict(self, stamp_s, state, zone, separation, scale, reason) -> ZoneVerdict:
        self.last_verdict = ZoneVerdict(stamp_s, SafetyState(state), zone, separation, scale, reason)
        return self.last_verdict

    def evaluate(self, people, joints, now_s: float) -> ZoneVerdict:
        stamp_s, frame, positions = people
        self._last_people_s = stamp_s
        if self._estop:
            return self._verdict(stamp_s, 'emergency_stop', 'fault', math.inf, 0.0, 'emergency stop: reset required')
        problem = self._doubt(stamp_s, frame, positions, joints, now_s)
        if problem:
            return self._verdict(stamp_s, 'protective_stop', 'fault', math.inf, 0.0, problem)
        geometry = self._geometry_of(joints)
        separation = math.inf
        if len(positions):
            from smartcell.core.kinematics import points_to_capsules_distance
            # A person is a vertical line from the floor to 2 m: sample it every 0.1 m.
            heights = np.arange(0.0, 2.0001, 0.1)
            column = np.concatenate([np.column_stack([np.repeat(positions[:, :2], len(heights), axis=0),
                                                      np.tile(heights, len(positions))])])
            separation = float(points_to_capsules_distance(column, geometry.capsules_m, geometry.radii_m).min()) - 0.2
        if separation < self._config['protective_distance_m']:
            return self._verdict(stamp_s, 'protective_stop', 'protective', separation, 0.0,
                                 f'person {separation:.2f} m from the robot (protective distance '
                                 f'{self._config["protective_distance_m"]} m)')
        if separation < self._config['warning_distance_m']:
            return self._verdict(stamp_s, 'reduced', 'warning', separation, self._config['reduced_speed_scale'],
                                 f'person {separation:.2f} m from the robot: reduced speed')
        return self._verdict(stamp_s, 'normal', 'clear', separation, 1.0, '')

    def _geometry_of(self, joints) -> RobotGeometry:
        # Joint states often come faster than people data: the same state is not recomputed.
        stamp_s, q, qd = joints
        cached = self._geometry_cache
        if cached is None or cached[0] != stamp_s or not (np.array_equal(cached[1], q) and np.array_equal(cached[2], qd)):
            self._geometry_cache = (stamp_s, q.copy(), qd.copy(), robot_geometry(stamp_s, q, qd, self._base))
        return self._geometry_cache[3]

    def _doubt(self, stamp_s, frame, positions, joints, now_s) -> str:
        if frame != self._config['world_frame']:
            return f'people data in frame {frame!r}, expected {self._config["world_frame"]!r}'
        if not np.all(np.isfinite(positions)):
            return 'people data contains NaN or infinite values'
        if now_s - stamp_s > self._config['people_timeout_s']:
            return f'people data is {now_s - stamp_s:.3f} s old'
        if joints is None:
            return 'no robot joint state'
        if now_s - joints[0] > self._config['robot_state_timeout_s']:
            return f'robot joint state is {now_s - joints[0]:.3f} s old'
        if not (np.all(np.isfinite(joints[1])) and np.all(np.isfinite(joints[2]))):
            return 'robot joint state contains NaN'
        return ''

    def on_silence(self, now_s: float) -> ZoneVerdict | None:
        if self._last_people_s is None or now_s - self._last_people_s > self._config['people_timeout_s']:
            age = 'never received' if self._last_people_s is None else f'silent for {now_s - self._last_people_s:.3f} s'
            return self._verdict(now_s, 'protective_stop', 'fault', math.inf, 0.0, f'people data {age}')
        return None

    def emergency_stop(self, now_s: float, reason: str) -> None:
        self._estop = True

    def reset(self, now_s: float) -> None:
        self._estop = False

    def verdict_fields(self, verdict: ZoneVerdict) -> dict[str, object]:
        return {'state': verdict.state.value, 'zone': verdict.zone, 'separation_m': verdict.separation_m,
                'speed_scale': verdict.speed_scale, 'reason': verdict.reason}
