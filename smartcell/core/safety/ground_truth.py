"""Ground-truth audit of speed and separation monitoring, and the static-zone baseline it is compared with.

The scenario campaign (`smartcell campaign`) runs the real safety pipeline against the twin and
checks every tick against what the pipeline never sees: the exact distance between the person's
body (hands included) and the robot's links, the person's true speed, the robot's true speed.

The rule checked (ISO/TS 15066 5.5.4, with ground truth in place of sensing):

* **moving**: the robot's speed toward the person v_r must not exceed the largest speed whose
  protective separation fits the true separation d:
      S_p(v_r) = v_h (T_r + T_s) + v_r T_r + S_s  <=  d
  v_h is the person's true speed, never below the floor (a person can turn within T_r); T_s and
  S_s come from the stopping model at the applied speed scale. C, Z_d and Z_r are left out on
  purpose: they are allowances for sensing (legs seen, hands not; measurement error), while d is
  the exact distance to the hands. A stationary robot (v_r = 0) never violates.
* **stopping**: once the pipeline has commanded a stop (scale 0), S_p at that tick was the budget
  for the stop: the robot may travel v_r T_r + S_s more and must be still after T_r + T_s. So from
  then on, the travel of its fastest point (any direction; the sum of the per-tick top speeds)
  must stay within v T_r + S_s, with v its top speed at the command and S_s, T_s from the
  stopping model at the applied scale, and after T_r + T_s (plus one tick) it must be still. A stop
  commanded too late shows up as a moving violation on the tick of the command; a stop that runs
  longer or further than the stopping model promises shows up here.

Both counts must be 0. A contact above its body region's quasi-static limit is the third count
(the twin measures contacts; see smartcell.core.safety.pfl.contact_verdict).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from smartcell.core.safety.ssm import SeparationInputs, StoppingSteps

SPEED_TOLERANCE_MPS = 0.02      # PD tracking noise of a joint-position-controlled arm at standstill
DISTANCE_TOLERANCE_M = 0.005    # travel the tick sampling of the speed can misjudge
KEPT_VIOLATIONS = 20            # first examples kept per audit for the report
APPROACH_RANGE_M = 2.0          # approaches closer than this are counted as exercising the rule


def closest_points_on_segments(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """For each point (P, 3), the closest point (P, S, 3) on each segment (S, 2, 3)."""
    points = np.asarray(points, dtype=float)[:, None, :]
    start, end = segments[None, :, 0, :], segments[None, :, 1, :]
    axis = end - start
    length2 = np.einsum('...i,...i', axis, axis)
    with np.errstate(divide='ignore', invalid='ignore'):
        t = np.where(length2 > 0.0, np.einsum('...i,...i', points - start, axis) / length2, 0.0)
    return start + np.clip(t, 0.0, 1.0)[..., None] * axis


def robot_speed_toward(person_segments: np.ndarray, robot_points: np.ndarray,
                       robot_point_velocities: np.ndarray) -> float:
    """Largest speed (m/s) at which any robot point approaches the person: for each point (P, 3) with
    velocity (P, 3), the component toward the closest point of the person's segments (S, 2, 3).
    Robot capsules are rigid segments, so their end points bound the speed of every point on them.
    Negative when every point moves away."""
    closest = closest_points_on_segments(robot_points, person_segments)           # (P, S, 3)
    gaps = np.linalg.norm(closest - robot_points[:, None, :], axis=2)
    nearest = closest[np.arange(len(robot_points)), np.argmin(gaps, axis=1)]     # (P, 3)
    direction = nearest - robot_points
    norms = np.linalg.norm(direction, axis=1)
    # A point inside the person has no direction: its whole speed counts.
    speeds = np.where(norms > 1e-9, np.einsum('ij,ij->i', robot_point_velocities, direction) / np.maximum(norms, 1e-9),
                      np.linalg.norm(robot_point_velocities, axis=1))
    return float(np.max(speeds))


@dataclass(frozen=True)
class PersonTruth:
    """One person at one tick, as the twin knows it."""

    separation_m: float             # exact distance body (hands included) - robot links, m
    speed_mps: float                # the person's true speed, m/s
    robot_speed_toward_mps: float   # robot_speed_toward() for this person, m/s


@dataclass(frozen=True)
class Violation:
    time_s: float
    kind: str                       # 'moving' or 'stopping'
    separation_m: float
    robot_speed_mps: float          # toward the person (moving) or overall (stopping), m/s
    allowed_speed_mps: float
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {'time_s': round(self.time_s, 4), 'kind': self.kind, 'separation_m': round(self.separation_m, 4),
                'robot_speed_mps': round(self.robot_speed_mps, 4),
                'allowed_speed_mps': round(self.allowed_speed_mps, 4), 'detail': self.detail}


@dataclass
class SsmAudit:
    """Checks ticks against the rule in the module docstring; counts violations and keeps the first few."""

    inputs: SeparationInputs
    stopping: StoppingSteps
    samples: int = 0
    approach_samples: int = 0          # person-ticks with the robot moving toward a person within 2 m
    violations: int = 0
    worst_margin_m: float = math.inf   # smallest d - S_p(v_r) over person-ticks with the robot approaching
    kept: list[Violation] = field(default_factory=list)
    _stop: tuple[float, float, float, float] | None = field(default=None, repr=False)   # t0, v0, T_s, S_s
    _travelled_m: float = field(default=0.0, repr=False)     # by the fastest point since the stop command
    _last_time_s: float | None = field(default=None, repr=False)

    def protective_separation(self, person: PersonTruth, robot_speed_toward_mps: float,
                              applied_scale: float) -> float:
        """S_p (m) of the rule above, at this scale's stopping time and distance."""
        t_s, s_s = (float(v) for v in self.stopping.at(applied_scale))
        v_h = max(person.speed_mps, self.inputs.human_speed_floor_mps)
        return v_h * (self.inputs.reaction_time_s + t_s) + max(0.0, robot_speed_toward_mps) * \
            self.inputs.reaction_time_s + s_s

    def allowed_speed(self, person: PersonTruth, applied_scale: float) -> float:
        """Largest v_r (m/s) with S_p(v_r) <= the true separation; 0 when not even standing still fits."""
        room = person.separation_m - self.protective_separation(person, 0.0, applied_scale)
        return max(0.0, room / self.inputs.reaction_time_s)

    def sample(self, time_s: float, people: list[PersonTruth], robot_speed_mps: float, applied_scale: float,
               commanded_scale: float) -> int:
        """Check one tick; returns the violations found in it (0 or 1).

        `robot_speed_mps`: the fastest robot point's speed (any direction); `applied_scale`: the scale
        the arm applies now; `commanded_scale`: the pipeline's verdict of this tick.
        """
        self.samples += 1
        dt_s = 0.0 if self._last_time_s is None else time_s - self._last_time_s
        self._last_time_s = time_s
        if commanded_scale > 0.0:
            self._stop = None
        elif self._stop is None:
            t_s, s_s = (float(v) for v in self.stopping.at(applied_scale))
            self._stop, self._travelled_m = (time_s, robot_speed_mps, t_s, s_s), 0.0
        if self._stop is not None and self._stop[0] < time_s:
            found = self._check_stopping(time_s, people, robot_speed_mps, dt_s)
        else:
            found = self._check_moving(time_s, people, applied_scale)
        if found is None:
            return 0
        self.violations += 1
        if len(self.kept) < KEPT_VIOLATIONS:
            self.kept.append(found)
        return 1

    def _check_stopping(self, time_s: float, people: list[PersonTruth], robot_speed_mps: float,
                        dt_s: float) -> Violation | None:
        assert self._stop is not None, 'called only while a stop is being checked'
        t0, v0, t_s, s_s = self._stop[:4]
        self._travelled_m += robot_speed_mps * dt_s
        budget_m = v0 * self.inputs.reaction_time_s + s_s
        overdue = time_s - t0 > self.inputs.reaction_time_s + t_s + dt_s
        if self._travelled_m > budget_m + DISTANCE_TOLERANCE_M:
            detail = (f'{self._travelled_m:.3f} m travelled since the stop command {time_s - t0:.3f} s ago, '
                      f'more than v T_r + S_s = {budget_m:.3f} m')
        elif overdue and robot_speed_mps > SPEED_TOLERANCE_MPS:
            detail = (f'still at {robot_speed_mps:.3f} m/s {time_s - t0:.3f} s after the stop command '
                      f'(T_r + T_s = {self.inputs.reaction_time_s + t_s:.3f} s)')
        else:
            return None
        return Violation(time_s, 'stopping', min((p.separation_m for p in people), default=math.inf),
                         robot_speed_mps, 0.0 if overdue else v0, detail)

    def _check_moving(self, time_s: float, people: list[PersonTruth], applied_scale: float) -> Violation | None:
        found = None
        for person in people:
            v_r = person.robot_speed_toward_mps
            if v_r <= SPEED_TOLERANCE_MPS:
                continue
            margin = person.separation_m - self.protective_separation(person, v_r, applied_scale)
            self.worst_margin_m = min(self.worst_margin_m, margin)
            if person.separation_m < APPROACH_RANGE_M:
                self.approach_samples += 1
            allowed = self.allowed_speed(person, applied_scale)
            if v_r > allowed + SPEED_TOLERANCE_MPS and found is None:
                found = Violation(time_s, 'moving', person.separation_m, v_r, allowed,
                                  f'robot at {v_r:.3f} m/s toward a person {person.separation_m:.3f} m away moving '
                                  f'at {person.speed_mps:.2f} m/s; allowed {allowed:.3f} m/s (margin {margin:.3f} m)')
        return found


class StaticZonePolicy:
    """The classic alternative to SSM: a fixed protective field around the robot, sized by ISO 13855
    for the robot at full speed. Anybody inside -> stop; everybody out for hold_s -> full speed again
    (the arm's own ramp brings the speed back). No data for timeout_s -> stop, like the SSM pipeline.
    """

    def __init__(self, centre_xy_m: tuple[float, float], radius_m: float, hold_s: float, timeout_s: float) -> None:
        if not (math.isfinite(radius_m) and radius_m > 0.0):
            raise ValueError(f'static field radius must be > 0 m, got {radius_m!r}')
        self.centre = np.asarray(centre_xy_m, dtype=float)
        self.radius_m = float(radius_m)
        self.hold_s = float(hold_s)
        self.timeout_s = float(timeout_s)
        self._clear_since_s: float | None = None
        self._last_data_s: float | None = None
        self._stopped = True

    def update(self, people_xy_m: np.ndarray, stamp_s: float) -> float:
        """The speed scale (0 or 1) for a people observation (N, 2) m in the world frame."""
        self._last_data_s = stamp_s
        positions = np.asarray(people_xy_m, dtype=float).reshape(-1, 2)
        if not np.all(np.isfinite(positions)):
            inside = True                      # doubt is a person in the field
        else:
            inside = bool(len(positions)) and bool(np.any(np.linalg.norm(positions - self.centre, axis=1)
                                                          < self.radius_m))
        if inside:
            self._stopped, self._clear_since_s = True, None
        elif self._stopped:
            if self._clear_since_s is None:
                self._clear_since_s = stamp_s
            if stamp_s - self._clear_since_s >= self.hold_s:
                self._stopped = False
        return 0.0 if self._stopped else 1.0

    def on_silence(self, now_s: float) -> float | None:
        """Stop (0.0) when data is older than the timeout; None while it is still fresh."""
        if self._last_data_s is not None and now_s - self._last_data_s <= self.timeout_s:
            return None
        self._stopped, self._clear_since_s = True, None
        return 0.0
