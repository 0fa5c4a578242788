"""Speed and separation monitoring (ISO/TS 15066:2016 clause 5.5.4) and ISO 13855 zone sizing.

Pure functions on small frozen data; lengths in m, times in s, speeds in m/s unless a name says
otherwise (ISO 13855 works in mm and mm/s, and its functions say so in their names).

Reading of ISO/TS 15066 eq. (1)-(4), constant-speed form:
    S_p = S_h + S_r + S_s + C + Z_d + Z_r
    S_h = v_h * (T_r + T_s)     person travel while the robot reacts and stops
    S_r = v_r * T_r             robot travel before it starts to stop
    S_s                         robot stopping distance (from the stopping model)
v_h is the person's speed *toward the robot*; we never use less than the floor (1.6 m/s, ISO 13855
walking speed), even for a person walking away, because a person can turn around within T_r.
v_r is the robot's speed *toward the person*, clipped at 0 from below: moving away adds no S_r.
S_s and T_s are taken in full whatever the direction (the stopping model is along the path).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from smartcell.core.params import ConfigError

HUMAN_SPEED_FLOOR_MPS = 1.6         # ISO 13855 clause 6.3: walking approach speed K = 1600 mm/s
ISO13855_APPROACH_SPEED_MM_PER_S = 1600.0
ISO13855_MIN_INTRUSION_MM = 850.0   # ISO 13855 eq. for parallel approach: C >= 850 mm (arm reach)
ISO13855_MAX_SCAN_HEIGHT_MM = 1000.0
_BISECTION_STEPS = 48               # halves [0, 1] to 3.6e-15: far below any meaningful scale step


def _finite_non_negative(owner: str, name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
        raise ConfigError(f'{owner}.{name} must be a finite number >= 0, got {value!r}')


@dataclass(frozen=True)
class StoppingPoint:
    """Stopping time (s) and distance (m) of the robot at one speed/payload operating point."""

    time_s: float
    distance_m: float

    def __post_init__(self) -> None:
        _finite_non_negative('StoppingPoint', 'time_s', self.time_s)
        _finite_non_negative('StoppingPoint', 'distance_m', self.distance_m)


@dataclass(frozen=True)
class SeparationInputs:
    """The speed-independent terms of S_p (ISO/TS 15066 5.5.4.2)."""

    reaction_time_s: float                       # T_r: sensing + processing + actuation, s
    stopping_time_s: float = 0.0                 # T_s when no stopping model is given, s
    stopping_distance_m: float = 0.0             # S_s when no stopping model is given, m
    intrusion_distance_m: float = 0.0            # C: reach beyond the sensed body, m
    sensor_uncertainty_m: float = 0.0            # Z_d: person position uncertainty, m
    robot_position_uncertainty_m: float = 0.0    # Z_r: robot position uncertainty, m
    human_speed_floor_mps: float = HUMAN_SPEED_FLOOR_MPS   # v_h never below this, m/s

    def __post_init__(self) -> None:
        for name in ('reaction_time_s', 'stopping_time_s', 'stopping_distance_m', 'intrusion_distance_m',
                     'sensor_uncertainty_m', 'robot_position_uncertainty_m', 'human_speed_floor_mps'):
            _finite_non_negative('SeparationInputs', name, getattr(self, name))
        if self.reaction_time_s <= 0.0:
            raise ConfigError(f'SeparationInputs.reaction_time_s must be > 0 s, got {self.reaction_time_s!r}')

    @property
    def fixed_margin_m(self) -> float:
        """C + Z_d + Z_r: the part of S_p that no speed removes, m."""
        return self.intrusion_distance_m + self.sensor_uncertainty_m + self.robot_position_uncertainty_m

    def fixed_stopping(self) -> StoppingPoint:
        return StoppingPoint(self.stopping_time_s, self.stopping_distance_m)


# A stopping model as the SSM functions see it: robot speed toward the person (m/s) -> stopping point.
StoppingLookup = Callable[[float], StoppingPoint]


def directed_human_speed(inputs: SeparationInputs, human_speed_mps: float) -> float:
    """v_h used in S_h: the person's speed toward the robot, never below the floor; NaN -> floor."""
    if math.isnan(human_speed_mps):
        return inputs.human_speed_floor_mps
    return max(human_speed_mps, inputs.human_speed_floor_mps)


def protective_separation(inputs: SeparationInputs, human_speed_mps: float, robot_speed_toward_human_mps: float,
                          stopping: StoppingPoint | None = None) -> float:
    """S_p (m), ISO/TS 15066 eq. (1) with constant speeds; `stopping` overrides the inputs' T_s/S_s."""
    point = stopping if stopping is not None else inputs.fixed_stopping()
    v_h = directed_human_speed(inputs, human_speed_mps)
    v_r = max(0.0, robot_speed_toward_human_mps) if not math.isnan(robot_speed_toward_human_mps) else math.inf
    s_h = v_h * (inputs.reaction_time_s + point.time_s)
    s_r = v_r * inputs.reaction_time_s
    return s_h + s_r + point.distance_m + inputs.fixed_margin_m


def max_robot_speed(separation_m: float, inputs: SeparationInputs, human_speed_mps: float,
                    stopping: StoppingPoint | StoppingLookup | None = None, speed_cap_mps: float = 10.0) -> float:
    """Largest v_r >= 0 (m/s, toward the person) with S_p(v_r) <= separation_m; 0 when none is.

    Constant stopping (None or a StoppingPoint): closed form
        v_r = (separation - v_h (T_r + T_s) - S_s - C - Z_d - Z_r) / T_r.
    Speed-dependent stopping (a callable v_r -> StoppingPoint, non-decreasing in v_r): bisection
    on [0, speed_cap_mps], returning the lower end, so the answer never exceeds the true limit.
    """
    if not math.isfinite(separation_m):
        return speed_cap_mps if separation_m > 0 else 0.0
    if stopping is None or isinstance(stopping, StoppingPoint):
        point = stopping if stopping is not None else inputs.fixed_stopping()
        room = separation_m - protective_separation(inputs, human_speed_mps, 0.0, point)
        return min(speed_cap_mps, max(0.0, room / inputs.reaction_time_s))

    def fits(v_r: float) -> bool:
        return protective_separation(inputs, human_speed_mps, v_r, stopping(v_r)) <= separation_m

    if not fits(0.0):
        return 0.0
    if fits(speed_cap_mps):
        return speed_cap_mps
    low, high = 0.0, speed_cap_mps
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def full_scale_speed(measured_mps: np.ndarray | float, applied_scale: float, nominal_speed_mps: float,
                     min_scale: float) -> np.ndarray:
    """Robot speed(s) at speed scale 1 from speed(s) measured at `applied_scale`.

    Velocity is proportional to the applied scale (time-scaled trajectory). Below `min_scale` the
    division would amplify noise or hide a motion about to start, so every value becomes
    `nominal_speed_mps` (the fastest the programme may move, toward the person): the safe guess.
    """
    measured = np.asarray(measured_mps, dtype=float)
    if not (math.isfinite(applied_scale) and applied_scale >= min_scale):
        return np.full_like(measured, nominal_speed_mps)
    return measured / applied_scale


@dataclass(frozen=True)
class StoppingSteps:
    """Stopping as a non-decreasing step function of the speed scale s: on (upper_scale[k-1],
    upper_scale[k]] (the first step from 0) the robot stops in time_s[k] (s) over distance_m[k] (m)."""

    upper_scale: np.ndarray      # (K,) strictly increasing, last >= 1
    time_s: np.ndarray           # (K,) non-decreasing
    distance_m: np.ndarray       # (K,) non-decreasing

    def __post_init__(self) -> None:
        upper, times, distances = (np.asarray(v, dtype=float) for v in (self.upper_scale, self.time_s,
                                                                       self.distance_m))
        if upper.ndim != 1 or len(upper) == 0 or times.shape != upper.shape or distances.shape != upper.shape:
            raise ConfigError('StoppingSteps needs upper_scale, time_s, distance_m of the same length >= 1')
        if np.any(np.diff(upper) <= 0.0) or upper[-1] < 1.0 - 1e-9 or upper[0] <= 0.0:
            raise ConfigError(f'StoppingSteps.upper_scale must increase strictly from > 0 to >= 1, got {upper}')
        if np.any(np.diff(times) < 0.0) or np.any(np.diff(distances) < 0.0) or np.any(times < 0.0) \
                or np.any(distances < 0.0):
            raise ConfigError('StoppingSteps time_s and distance_m must be >= 0 and non-decreasing in speed')

    @classmethod
    def constant(cls, point: StoppingPoint) -> 'StoppingSteps':
        return cls(np.array([1.0]), np.array([point.time_s]), np.array([point.distance_m]))

    def at(self, scale: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(T_s s, S_s m) at the given scale(s): the step whose upper end is at or above the scale."""
        index = np.minimum(np.searchsorted(self.upper_scale, np.asarray(scale, dtype=float) - 1e-9, side='left'),
                           len(self.upper_scale) - 1)
        return np.asarray(self.time_s)[index], np.asarray(self.distance_m)[index]


def speed_scale_for(separation_m: np.ndarray | float, inputs: SeparationInputs, human_speed_mps: np.ndarray | float,
                    robot_speed_full_scale_mps: np.ndarray | float,
                    stopping: StoppingSteps | None = None) -> np.ndarray:
    """Largest speed scale s in [0, 1] with S_p(v_r = s * v_full, T_s(s), S_s(s)) <= separation.

    Vectorised over person/link pairs; 0 when not even standing still fits. Closed form per
    stopping step: on a step, S_p(s) = base + max(0, s v_full) T_r with base = v_h (T_r + T_s)
    + S_s + C + Z_d + Z_r, so s <= (separation - base) / (v_full T_r). As S_p is non-decreasing
    in s, the answer is the largest feasible s over the steps. Unknown (NaN) v_full counts as
    infinite: only s = 0 can fit. Without a stopping model the inputs' fixed T_s/S_s are one step.
    """
    steps = stopping if stopping is not None else StoppingSteps.constant(inputs.fixed_stopping())
    separation = np.asarray(separation_m, dtype=float)
    v_h = np.maximum(np.nan_to_num(np.asarray(human_speed_mps, dtype=float), nan=0.0), inputs.human_speed_floor_mps)
    v_full = np.nan_to_num(np.asarray(robot_speed_full_scale_mps, dtype=float), nan=np.inf)
    separation, v_h, v_full = np.broadcast_arrays(separation, v_h, v_full)
    separation = np.where(np.isnan(separation), -np.inf, separation)
    best = np.full(separation.shape, -1.0)          # -1: nothing fits yet
    lower = 0.0
    for upper, t_s, s_s in zip(steps.upper_scale, steps.time_s, steps.distance_m):
        if lower >= 1.0:
            break
        high = min(float(upper), 1.0)
        room = separation - (v_h * (inputs.reaction_time_s + t_s) + s_s + inputs.fixed_margin_m)
        with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
            limit = np.where(v_full > 0.0, room / (v_full * inputs.reaction_time_s), np.inf)
        candidate = np.minimum(high, limit)
        # The first step includes s = 0; later ones start just above their lower end.
        feasible = (room >= 0.0) & ((candidate >= 0.0) if lower == 0.0 else (candidate > lower))
        best = np.where(feasible, np.maximum(best, candidate), best)
        lower = high
    return np.clip(best, 0.0, 1.0)


@dataclass(frozen=True)
class LookAhead:
    """How long a speed verdict stands, and how fast the person's speed bound may grow meanwhile.

    A verdict chosen now governs the arm until the next verdict has taken effect: up to one update
    period P until the next verdict, plus the actuation lag L until the arm applies it. The
    horizon is H = P + L.
    """

    update_period_s: float          # P: longest time until the next verdict, s
    actuation_lag_s: float          # L: verdict published -> applied by the arm, s
    human_accel_mps2: float         # a_h: largest growth rate of the person's speed toward the robot, m/s^2

    def __post_init__(self) -> None:
        for name in ('update_period_s', 'actuation_lag_s', 'human_accel_mps2'):
            _finite_non_negative('LookAhead', name, getattr(self, name))

    @property
    def horizon_s(self) -> float:
        return self.update_period_s + self.actuation_lag_s


def human_speed_bound(inputs: SeparationInputs, human_speed_mps: np.ndarray | float,
                      look: LookAhead) -> np.ndarray:
    """v_h,H (m/s): the person's speed toward the robot at its bound over the horizon.

    The estimate (an upper confidence bound already) may grow by a_h * H before the next verdict
    takes effect; never below the floor (the floor needs no growth: it already is the worst case
    for someone standing or walking away). An unknown speed (NaN) is the floor and may grow like an
    estimate: never less than a known speed at the floor gets.
    """
    known = np.nan_to_num(np.asarray(human_speed_mps, dtype=float), nan=inputs.human_speed_floor_mps)
    return np.maximum(known + look.human_accel_mps2 * look.horizon_s, inputs.human_speed_floor_mps)


def look_ahead_terms(separation_m: np.ndarray | float, inputs: SeparationInputs, human_speed_mps: np.ndarray | float,
                     robot_speed_now_mps: np.ndarray | float,
                     look: LookAhead) -> tuple[np.ndarray, np.ndarray, SeparationInputs]:
    """(d_H m, v_h,H m/s, inputs with T_r + P): the terms of look_ahead_scale, for reporting."""
    v_h = human_speed_bound(inputs, human_speed_mps, look)
    now = np.nan_to_num(np.asarray(robot_speed_now_mps, dtype=float), nan=np.inf)
    with np.errstate(invalid='ignore'):         # an infinite speed over no lag: NaN, which stops below
        shrunk = np.asarray(separation_m, dtype=float) - (v_h + np.maximum(0.0, now)) * look.actuation_lag_s
    held = dataclasses.replace(inputs, reaction_time_s=inputs.reaction_time_s + look.update_period_s)
    return shrunk, v_h, held


def look_ahead_scale(separation_m: np.ndarray | float, inputs: SeparationInputs, human_speed_mps: np.ndarray | float,
                     robot_speed_full_scale_mps: np.ndarray | float, robot_speed_now_mps: np.ndarray | float,
                     look: LookAhead, stopping: StoppingSteps | None = None) -> np.ndarray:
    """Largest speed scale s in [0, 1] that keeps separation >= S_p until the next verdict has taken
    effect (H = P + L later), not only at this instant.

        d_H = d - v_h,H * L - v_r,now * L       separation left when this verdict takes effect
        d_H >= v_h,H (T_r + P + T_s(s)) + s v_full (T_r + P) + S_s(s) + C + Z_d + Z_r

    The person approaches at v_h,H (human_speed_bound) for the whole horizon and S_h is counted at
    that bound; until this verdict is applied (L) the arm keeps its present speed toward the person
    `robot_speed_now_mps` (clipped at 0; NaN = infinite), then moves at s v_full for P. Every term
    is at least its value in speed_scale_for(d, inputs, v_h, v_full), so the answer is never above it.
    """
    shrunk, v_h, held = look_ahead_terms(separation_m, inputs, human_speed_mps, robot_speed_now_mps, look)
    return speed_scale_for(shrunk, held, v_h, robot_speed_full_scale_mps, stopping)


# ---------------------------------------------------------------------------------------------
# ISO 13855:2010 clause 6.5 (ESPE with a detection zone parallel to the approach, e.g. a laser
# scanner field): S = K * T + C, K = 1600 mm/s, C = 1200 - 0.4 H (mm), C >= 850 mm,
# 0 <= H <= 1000 mm, and H >= 15 (d - 50) mm for a detection capability d (mm).
# ---------------------------------------------------------------------------------------------

def intrusion_distance_iso13855_mm(scan_height_mm: float, detection_capability_mm: float | None = None) -> float:
    """C (mm) for a horizontal field at height H (mm) above the floor; bad H raises ConfigError."""
    if not (math.isfinite(scan_height_mm) and 0.0 <= scan_height_mm <= ISO13855_MAX_SCAN_HEIGHT_MM):
        raise ConfigError(f'scan plane height H={scan_height_mm!r} mm is outside ISO 13855 limits '
                          f'[0, {ISO13855_MAX_SCAN_HEIGHT_MM:g}] mm')
    if detection_capability_mm is not None:
        lowest_mm = 15.0 * (detection_capability_mm - 50.0)
        if scan_height_mm < lowest_mm:
            raise ConfigError(f'scan plane height H={scan_height_mm:g} mm is below 15 (d - 50) = {lowest_mm:g} mm '
                              f'for detection capability d={detection_capability_mm:g} mm (ISO 13855)')
    return max(ISO13855_MIN_INTRUSION_MM, 1200.0 - 0.4 * scan_height_mm)


def minimum_distance_iso13855_mm(total_time_s: float, scan_height_mm: float,
                                 approach_speed_mm_per_s: float = ISO13855_APPROACH_SPEED_MM_PER_S,
                                 detection_capability_mm: float | None = None) -> float:
    """S = K T + C (mm): minimum distance of a parallel-approach protective field from the hazard.

    T (s) is the overall system stopping performance: sensor response + control + machine stop.
    """
    if not (math.isfinite(total_time_s) and total_time_s >= 0.0):
        raise ConfigError(f'overall stopping time T must be a finite number >= 0 s, got {total_time_s!r}')
    if not (math.isfinite(approach_speed_mm_per_s) and approach_speed_mm_per_s >= ISO13855_APPROACH_SPEED_MM_PER_S):
        raise ConfigError(f'approach speed K must be >= {ISO13855_APPROACH_SPEED_MM_PER_S:g} mm/s (ISO 13855 '
                          f'walking speed), got {approach_speed_mm_per_s!r}')
    return approach_speed_mm_per_s * total_time_s + intrusion_distance_iso13855_mm(scan_height_mm,
                                                                                  detection_capability_mm)


def check_protective_field(configured_m: float, required_m: float, field_name: str = 'protective_distance_m') -> None:
    """Raise ConfigError naming the field and both values when the configured field is too small."""
    if not (math.isfinite(configured_m) and configured_m >= required_m):
        raise ConfigError(f'{field_name}={configured_m!r} m is smaller than the required minimum distance '
                          f'{required_m:.3f} m (ISO 13855 S = K T + C); enlarge the field or shorten T')


# ---------------------------------------------------------------------------------------------
# ISO 13855, perpendicular approach: a light curtain (ESPE) across the fence opening
# ---------------------------------------------------------------------------------------------

LIGHT_CURTAIN_FAST_K_MM_PER_S = 2000.0      # hand / arm approach, d <= 40 mm
LIGHT_CURTAIN_SLOW_K_MM_PER_S = 1600.0      # body approach (the fallback, and d > 40 mm)
LIGHT_CURTAIN_BODY_C_MM = 850.0             # arm reaching through a coarse curtain, d > 40 mm


def light_curtain_distance_mm(total_time_s: float, detection_capability_mm: float) -> float:
    """Minimum distance S (mm) of a vertical light curtain from the hazard, perpendicular approach.

    ISO 13855:2010 (6.2.3): for a detection capability d <= 40 mm, S = 2000 T + 8 (d - 14) with
    C >= 0; when that gives more than 500 mm, S = 1600 T + 8 (d - 14) with S >= 500 mm; S is never
    below 100 mm. For 40 < d <= 70 mm, S = 1600 T + 850 (the arm reaches through). T (s) is the
    overall stopping performance: the curtain's response plus the machine's stopping time.
    """
    if not (math.isfinite(total_time_s) and total_time_s >= 0.0):
        raise ConfigError(f'overall stopping time T must be a finite number >= 0 s, got {total_time_s!r}')
    d = detection_capability_mm
    if not (math.isfinite(d) and 0.0 < d <= 70.0):
        raise ConfigError(f'light curtain detection capability d must be in (0, 70] mm for the perpendicular '
                          f'approach formulas, got {d!r} (coarser beams: ISO 13855 multi-beam rules)')
    if d > 40.0:
        return LIGHT_CURTAIN_SLOW_K_MM_PER_S * total_time_s + LIGHT_CURTAIN_BODY_C_MM
    c_mm = max(0.0, 8.0 * (d - 14.0))
    fast = LIGHT_CURTAIN_FAST_K_MM_PER_S * total_time_s + c_mm
    if fast <= 500.0:
        return max(100.0, fast)
    return max(500.0, LIGHT_CURTAIN_SLOW_K_MM_PER_S * total_time_s + c_mm)
