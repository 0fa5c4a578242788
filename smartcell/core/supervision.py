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
