"""Joint trajectory execution with a speed scale that time-scales the path, and a category-2 stop.

The speed scale s in [0, 1] stretches time, not the path: the path parameter advances at
s · dt per tick, so joint positions follow the same curve at any speed and every joint
velocity is proportional to s. A controlled stop (IEC 60204-1 category 2) is s → 0 along the
path, after which the position is held with the drives powered.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

# Each segment uses a cubic blend with zero velocity at the waypoints; its peak speed is 1.5×
# the segment's average, which is what joint velocity limits are checked against.
PEAK_TO_MEAN_SPEED = 1.5
# How much slower than planned the arm may take the first segment when it starts a little off the
# planner's start (TrajectoryExecutor.load; seen: 1.2 % beyond the planner's 2 % margin, the arm still
# settling after a stop). Beyond it the plan was made for another start, or at a higher speed fraction
# than this arm's (a mismatch the arm must refuse, not absorb).
MAX_LEAD_STRETCH = 1.05


class TrajectoryRejected(ValueError):
    """A trajectory the arm refuses; the message says which point and joint and why."""


class ArmMode(enum.Enum):
    """Robot mode published by the arm (lower-case strings on `arm/mode`)."""

    IDLE = 'idle'                 # no trajectory, holding position
    EXECUTING = 'executing'       # moving along a trajectory (possibly slowed)
    PAUSED = 'paused'             # trajectory loaded, speed scale at 0 (safety) - holding
    STOPPING = 'stopping'         # category-2 stop in progress: decelerating along the path
    HELD = 'held'                 # stopped on command; holding until resume
    FAULT = 'fault'


@dataclass(frozen=True)
class JointTrajectoryPlan:
    """Waypoints with times from start (s); positions (K, J) in rad."""

    joint_names: tuple[str, ...]
    times_s: np.ndarray
    positions_rad: np.ndarray

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1])


@dataclass(frozen=True)
class JointLimitsView:
    """What trajectory validation needs from the robot's joint limits."""

    names: tuple[str, ...]
    lower_rad: np.ndarray
    upper_rad: np.ndarray
    velocity_radps: np.ndarray


def validate_trajectory(plan: JointTrajectoryPlan, limits: JointLimitsView) -> None:
    """Raise TrajectoryRejected naming the point and joint when the plan leaves the limits."""
    if tuple(plan.joint_names) != tuple(limits.names):
        raise TrajectoryRejected(f'joint names {list(plan.joint_names)} do not match the arm {list(limits.names)}')
    times, positions = plan.times_s, plan.positions_rad
    if positions.ndim != 2 or positions.shape[1] != len(limits.names) or len(times) != len(positions):
        raise TrajectoryRejected(f'expected positions of shape (K, {len(limits.names)}) with K times, '
                                 f'got {positions.shape} and {len(times)} times')
    if len(times) < 1:
        raise TrajectoryRejected('trajectory has no points')
    if not (np.all(np.isfinite(times)) and np.all(np.isfinite(positions))):
        raise TrajectoryRejected('trajectory contains NaN or infinite values')
    if times[0] < 0.0 or np.any(np.diff(times) <= 0.0):
        raise TrajectoryRejected('time_from_start must start at >= 0 and strictly increase')
    for k, point in enumerate(positions):
        for j, name in enumerate(limits.names):
            if not limits.lower_rad[j] <= point[j] <= limits.upper_rad[j]:
                raise TrajectoryRejected(
                    f'point {k}: {name} = {point[j]:.4f} rad is outside its limits '
                    f'[{limits.lower_rad[j]:.4f}, {limits.upper_rad[j]:.4f}] rad')
    for k in range(1, len(times)):
        peak = PEAK_TO_MEAN_SPEED * np.abs(positions[k] - positions[k - 1]) / (times[k] - times[k - 1])
        for j, name in enumerate(limits.names):
            if peak[j] > limits.velocity_radps[j] * (1 + 1e-9):
                raise TrajectoryRejected(
                    f'segment {k - 1}->{k}: {name} would reach {peak[j]:.3f} rad/s, above its limit '
                    f'{limits.velocity_radps[j]:.3f} rad/s (slow the segment down)')


@dataclass(frozen=True)
class ScaleRamp:
    """Fast to slow down, slow to speed up (per second of time, in scale units)."""

    down_per_s: float = 4.0      # full speed to standstill in 0.25 s
    up_per_s: float = 0.5        # standstill to full speed in 2 s

    def step(self, applied: float, target: float, dt_s: float) -> float:
        if target < applied:
            return max(target, applied - self.down_per_s * dt_s)
        return min(target, applied + self.up_per_s * dt_s)


class TrajectoryExecutor:
    """Plays one trajectory at a time from the arm's actual position; time is passed in."""

    def __init__(self, limits: JointLimitsView, ramp: ScaleRamp, initial_rad: np.ndarray) -> None:
        self._limits = limits
        self._ramp = ramp
        self._times = np.zeros(1)
        self._points = np.asarray(initial_rad, dtype=float)[None, :].copy()
        self._tau_s = 0.0               # position along the nominal (unscaled) timeline
        self._applied = 0.0             # the scale actually applied (after the ramp)
        self._target = 0.0              # the scale the safety layer allows
        self._stop_requested = False
        self._active = False
        self.lead_delay_s = 0.0         # how much later than planned the loaded trajectory reaches its first point

    # -- commands -------------------------------------------------------------------------
    def load(self, plan: JointTrajectoryPlan, actual_rad: np.ndarray) -> None:
        """Start a new trajectory from where the arm actually is (never from an old plan)."""
        validate_trajectory(plan, self._limits)
        actual = np.asarray(actual_rad, dtype=float)
        times, points = plan.times_s, plan.positions_rad
        self.lead_delay_s = 0.0
        if times[0] > 0.0:
            # Reaching the first waypoint from the actual position must respect limits too. The planner
            # timed it from the state it last saw; the arm may be a little off that (it was still
            # settling): then the first segment is slowed to the limit and the rest follows later, never
            # faster. Far off (more than MAX_LEAD_STRETCH) the plan was made for another start: refused.
            needed_s = float(np.max(PEAK_TO_MEAN_SPEED * np.abs(points[0] - actual) / self._limits.velocity_radps))
            if times[0] < needed_s <= times[0] * MAX_LEAD_STRETCH:
                self.lead_delay_s = needed_s - float(times[0])
                times = times + self.lead_delay_s
            lead = JointTrajectoryPlan(plan.joint_names, np.array([0.0, times[0]]), np.vstack((actual, points[0])))
            validate_trajectory(lead, self._limits)
            times, points = np.concatenate(([0.0], times)), np.vstack((actual, points))
        self._times, self._points = times.astype(float), points.astype(float)
        self._tau_s = 0.0
        self._active = True

    def cancel(self, actual_rad: np.ndarray) -> None:
        """Forget the trajectory and hold the given position."""
        self._times = np.zeros(1)
        self._points = np.asarray(actual_rad, dtype=float)[None, :].copy()
        self._tau_s = 0.0
        self._active = False

    def set_speed_limit(self, scale: float) -> None:
        """The scale the safety layer allows now; NaN or out of range is treated as 0 (stop)."""
        self._target = float(scale) if math.isfinite(scale) and 0.0 <= scale <= 1.0 else 0.0

    def controlled_stop(self) -> None:
        self._stop_requested = True

    def release_stop(self) -> None:
        self._stop_requested = False

    # -- time ---------------------------------------------------------------------------------
    def step(self, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Advance by dt and return the commanded (positions rad, velocities rad/s)."""
        target = 0.0 if self._stop_requested else self._target
        self._applied = self._ramp.step(self._applied, target, dt_s)
        if self._active:
            self._tau_s = min(self._tau_s + self._applied * dt_s, self._times[-1])
        q, qd_nominal = self._sample(self._tau_s)
        if self._active and self._tau_s >= self._times[-1]:
            self._active = False
        return q, qd_nominal * (self._applied if self._active else 0.0)

    def _sample(self, tau_s: float) -> tuple[np.ndarray, np.ndarray]:
        times, points = self._times, self._points
        if len(times) == 1 or tau_s >= times[-1]:
            return points[-1].copy(), np.zeros(points.shape[1])
        k = int(np.searchsorted(times, tau_s, side='right')) - 1
        k = min(max(k, 0), len(times) - 2)
        span = times[k + 1] - times[k]
        u = (tau_s - times[k]) / span
        delta = points[k + 1] - points[k]
        return points[k] + delta * (3 * u * u - 2 * u ** 3), delta * (6 * u - 6 * u * u) / span

    # -- state -----------------------------------------------------------------------------------
    @property
    def applied_scale(self) -> float:
        return self._applied

    @property
    def target_scale(self) -> float:
        return 0.0 if self._stop_requested else self._target

    @property
    def active(self) -> bool:
        return self._active

    @property
    def progress(self) -> float:
        return 1.0 if self._times[-1] <= 0 else self._tau_s / self._times[-1]

    def mode(self) -> ArmMode:
        moving = self._applied > 1e-6
        if self._stop_requested:
            return ArmMode.STOPPING if moving else ArmMode.HELD
        if not self._active:
            return ArmMode.IDLE
        return ArmMode.EXECUTING if moving or self._target > 0.0 else ArmMode.PAUSED
