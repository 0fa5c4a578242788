"""The safety monitor the supervisor calls once per people message: zones + SSM + mode caps.

NOT a safety-rated controller: the robot's certified safety functions and the scanner's own
protective field wired to the robot's safeguard-stop input stay in charge; this monitor only
chooses a speed scale below them (see docs/safety.md).

Rules, each giving a speed scale in [0, 1]; the arm must apply the minimum:
- zones: inside protective_distance_m -> 0, inside warning_distance_m -> reduced_speed_scale;
- SSM (ISO/TS 15066 5.5.4): for every person/link pair, the largest scale with S_p <= separation
  until the next verdict has taken effect (look-ahead: update period + actuation lag, the person at
  their speed bound grown by the largest acceleration over that time);
- mode: MANUAL_REDUCED (T1) caps every capsule point at t1_speed_limit_mps, COLLABORATIVE at the
  PFL speed of the most restrictive exposed body region (ISO/TS 15066 Annex A): transient limits,
  or quasi-static ones where the body model says a part can be clamped (clamping_possible).
Doubt (NaN, wrong frame, stale/backward/future stamps, implausible positions, bad robot data)
means a protective stop with the reason. Slowing is immediate; restarting after the people rules
(zones, SSM, doubt) stopped the arm waits until their target has stayed above 0 for resume_hold_s
(restart interlock), then ramps at ramp_up_per_s; from a reduced speed it only ramps. The mode cap
bounds the robot's own speed, not a person's approach, so rising under it only ramps (a hold there
would freeze the arm at the low scale of each accelerating segment). After an emergency stop only reset() releases.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from smartcell.core.params import ConfigError
from smartcell.core.safety.pfl import (UR5E_MOVING_MASS_KG, BodyModel, BodyRegion, ContactOutcome,  # noqa: F401
                                       ContactVerdict, contact_verdict, max_contact_speed, max_transient_speed,
                                       robot_effective_mass)
from smartcell.core.safety.ssm import (HUMAN_SPEED_FLOOR_MPS, LookAhead, SeparationInputs,  # noqa: F401
                                       StoppingPoint, StoppingSteps, look_ahead_scale, look_ahead_terms,
                                       check_protective_field, full_scale_speed, intrusion_distance_iso13855_mm,
                                       max_robot_speed, minimum_distance_iso13855_mm, protective_separation,
                                       speed_scale_for)
from smartcell.core.safety.stopping import StoppingModel  # noqa: F401


class Mode(enum.Enum):
    AUTOMATIC = 'automatic'
    COLLABORATIVE = 'collaborative'
    MANUAL_REDUCED = 'manual_reduced'     # T1


class SafetyState(enum.Enum):
    """OPC 40010 / UR safety-status vocabulary."""

    NORMAL = 'normal'
    REDUCED = 'reduced'
    PROTECTIVE_STOP = 'protective_stop'
    EMERGENCY_STOP = 'emergency_stop'
    FAULT = 'fault'                       # the monitor itself failed (internal error): stop


ZONES = ('clear', 'warning', 'protective', 'fault')

# A person's speed toward the robot is taken as the tracker's projected mean plus this many standard
# deviations (one-sided ~97.7 % for a Gaussian estimate); never below the ISO 13855 floor.
VELOCITY_BOUND_SIGMAS = 2.0
# Robot speeds further apart than this (s) are not differenced for the PFL cap's growth (a gap in the data).
CAP_GROWTH_MAX_GAP_S = 0.5


def _default_separation() -> SeparationInputs:
    # T_r: 2 scanner periods at 30 Hz (67 ms) + tracking and supervisor (~20 ms) + arm command
    # latency (~60 ms). C: ISO 13855's 0.85 m reach counted from the tracked leg axis, minus the
    # 0.2 m body cylinder already in the separation. T_s/S_s: the 100 %/100 % corner of the first
    # (provisional) config/stopping.yaml, used only when no stopping model is given.
    return SeparationInputs(reaction_time_s=0.15, stopping_time_s=0.34, stopping_distance_m=0.65,
                            intrusion_distance_m=0.65, sensor_uncertainty_m=0.10,
                            robot_position_uncertainty_m=0.02)


@dataclass(frozen=True)
class SafetyConfig:
    """Monitor configuration; units in the names. Invalid values raise ConfigError naming them."""

    separation: SeparationInputs = field(default_factory=_default_separation)
    warning_distance_m: float = 1.5             # person closer -> reduced_speed_scale, m
    protective_distance_m: float = 0.6          # person closer -> protective stop, m
    reduced_speed_scale: float = 0.3            # scale inside the warning zone
    people_timeout_s: float = 0.07              # people data older / silent longer -> stop, s
    robot_timeout_s: float = 0.2                # robot data older -> stop, s
    expected_frame: str = 'world'
    workspace_min_m: tuple[float, float, float] = (-6.0, -6.0, -0.5)    # plausible people x, y, z, m
    workspace_max_m: tuple[float, float, float] = (6.0, 6.0, 2.5)
    ramp_up_per_s: float = 0.5                  # scale increase rate after the hold, 1/s
    ramp_down_per_s: float = math.inf           # scale decrease rate, 1/s; inf = immediate (a finite
                                                # rate delays slowing: 1/rate is added to T_r)
    resume_hold_s: float = 0.5                  # target must stay above the scale this long, s
    association_gate_m: float = 0.5             # max move of a person between two messages, m
    person_radius_m: float = 0.2                # body cylinder radius, m
    person_height_m: float = 2.0                # body cylinder from the floor up to this, m
    nominal_robot_speed_mps: float = 1.0        # assumed full-scale speed when the scale is too small
    min_scale_for_estimate: float = 0.05        # below: measured/scale is not trusted
    speed_fraction_at_full_scale: float = 1.0   # stopping-table speed fraction at scale 1 (1.0: safe)
    payload_kg: float = 1.0                     # tool + part, kg
    robot_moving_mass_kg: float = UR5E_MOVING_MASS_KG   # M of ISO/TS 15066 eq. (A.5), kg
    t1_speed_limit_mps: float = 0.25            # MANUAL_REDUCED cap on every capsule point, m/s
    contact_area_cm2: float | None = None       # PFL: also bound the force by pressure x area
    update_period_s: float = 0.04               # P: longest time between two verdicts (25 Hz scanner), s
    actuation_lag_s: float = 0.05               # L: verdict published -> applied by the arm, s (pipeline's
                                                # VERDICT_TO_ARM_S: twice the measured 23.6 ms; the lockstep
                                                # twin's lag is one 33 ms tick). The SSM scale must hold P + L.
    human_accel_bound_mps2: float = 4.0         # a_h: the person's speed toward the robot grows at most this
                                                # fast over P + L, m/s^2 (2 sigma of the tracker's 2 m/s^2
                                                # white-noise acceleration model of a person)

    def __post_init__(self) -> None:
        if not isinstance(self.separation, SeparationInputs):
            raise ConfigError(f'separation must be SeparationInputs, got {type(self.separation).__name__}')
        positive = ('warning_distance_m', 'protective_distance_m', 'people_timeout_s', 'robot_timeout_s',
                    'ramp_up_per_s', 'ramp_down_per_s', 'association_gate_m', 'person_height_m',
                    'nominal_robot_speed_mps', 'min_scale_for_estimate', 'speed_fraction_at_full_scale',
                    'robot_moving_mass_kg', 't1_speed_limit_mps', 'update_period_s', 'actuation_lag_s',
                    'human_accel_bound_mps2')
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0.0
                    and not math.isnan(value) and (math.isfinite(value) or name == 'ramp_down_per_s')):
                raise ConfigError(f'{name} must be a number > 0, got {value!r}')
        for name in ('resume_hold_s', 'person_radius_m', 'payload_kg'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
                raise ConfigError(f'{name} must be a finite number >= 0, got {value!r}')
        for name in ('reduced_speed_scale', 'speed_fraction_at_full_scale', 'min_scale_for_estimate'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f'{name} must be in [0, 1], got {getattr(self, name)!r}')
        if self.protective_distance_m >= self.warning_distance_m:
            raise ConfigError(f'protective_distance_m={self.protective_distance_m} m must be smaller than '
                              f'warning_distance_m={self.warning_distance_m} m')
        low, high = np.asarray(self.workspace_min_m, float), np.asarray(self.workspace_max_m, float)
        if low.shape != (3,) or high.shape != (3,) or not np.all(np.isfinite(low)) or np.any(low >= high):
            raise ConfigError(f'workspace_min_m={self.workspace_min_m} and workspace_max_m={self.workspace_max_m} '
                              'must be finite x, y, z triples (m) with min < max')
        if self.contact_area_cm2 is not None and not (math.isfinite(self.contact_area_cm2)
                                                      and self.contact_area_cm2 > 0.0):
            raise ConfigError(f'contact_area_cm2 must be > 0 cm^2 or None, got {self.contact_area_cm2!r}')
        if not self.expected_frame:
            raise ConfigError('expected_frame must name a frame, e.g. "world"')

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, ignore_unknown: bool = False) -> 'SafetyConfig':
        """Build from flat key/values (e.g. ROS parameters): SafetyConfig fields, SeparationInputs
        fields, and the supervisor's names world_frame / robot_state_timeout_s. An unknown key is a
        ConfigError naming it and the accepted keys, unless ignore_unknown (a node's other params)."""
        separation_keys = {f.name for f in dataclasses.fields(SeparationInputs)}
        own_keys = {f.name for f in dataclasses.fields(cls)} - {'separation'}
        aliases = {'world_frame': 'expected_frame', 'robot_state_timeout_s': 'robot_timeout_s'}
        own: dict[str, Any] = {}
        separation: dict[str, Any] = {}
        for key, value in values.items():
            name = aliases.get(key, key)
            if isinstance(value, list):
                value = tuple(value)
            if name in own_keys:
                own[name] = value
            elif name in separation_keys:
                separation[name] = value
            elif not ignore_unknown:
                accepted = sorted(own_keys | separation_keys | set(aliases))
                raise ConfigError(f'unknown safety parameter {key!r}; accepted: {", ".join(accepted)}')
        base = _default_separation()
        return cls(separation=dataclasses.replace(base, **separation), **own)

    @property
    def effective_separation(self) -> SeparationInputs:
        """T_r including the time a finite ramp-down takes to go from full speed to zero."""
        ramp_s = 0.0 if math.isinf(self.ramp_down_per_s) else 1.0 / self.ramp_down_per_s
        return dataclasses.replace(self.separation, reaction_time_s=self.separation.reaction_time_s + ramp_s)


@dataclass(frozen=True)
class PeopleObservation:
    stamp_s: float
    frame_id: str
    positions_m: np.ndarray          # (N, 3) in the world frame, z up, floor at z = 0
    # The tracker's estimate per person, same order as positions_m (None: not known, the speed toward
    # the robot then comes from successive positions, never below the ISO 13855 floor).
    velocities_mps: np.ndarray | None = None    # (N, 2) horizontal velocity in the world frame, m/s
    velocity_cov: np.ndarray | None = None      # (N, 2, 2) its covariance, (m/s)^2


@dataclass(frozen=True)
class RobotObservation:
    stamp_s: float
    capsules_m: np.ndarray           # (M, 2, 3) segment end points, world frame
    radii_m: np.ndarray              # (M,)
    velocities_mps: np.ndarray       # (M, 2, 3) end-point velocities measured at applied_scale
    applied_scale: float             # the speed scale the arm currently applies, [0, 1]


@dataclass(frozen=True)
class SafetyVerdict:
    stamp_s: float
    mode: Mode
    state: SafetyState
    zone: str                             # 'clear' | 'warning' | 'protective' | 'fault'
    separation_m: float                   # min person-robot surface distance; inf if nobody
    protective_distance_m: float          # S_p at the current speeds on the worst-margin pair; nan if nobody
    allowed_speed_mps: float              # largest robot speed toward the person the rules allow
    human_speed_mps: float                # v_h used on the limiting pair (>= floor)
    robot_speed_toward_human_mps: float   # measured, on the limiting pair
    speed_scale: float                    # what the arm must apply now (after hold and ramp)
    reason: str                           # always set unless state is NORMAL
    closest_person_index: int             # -1 if nobody
    margin_m: float = math.inf            # min over pairs of separation - S_p at current speeds
    target_scale: float = 0.0             # the rules' scale before hold and ramp

    def as_fields(self) -> dict[str, object]:
        """The verdict as the key/values the supervisor publishes (see smartcell.core.safety.verdict)."""
        return {'mode': self.mode.value, 'state': self.state.value, 'zone': self.zone,
                'separation_m': self.separation_m, 'protective_distance_m': self.protective_distance_m,
                'allowed_speed_mps': self.allowed_speed_mps, 'speed_scale': self.speed_scale,
                'reason': self.reason}


@dataclass(frozen=True)
class SafetyEvent:
    stamp_s: float
    kind: str                  # intrusion, slow_down, full_speed, stop, resume, fault, emergency_stop,
                               # reset, mode_change, contact
    state: SafetyState
    zone: str
    reason: str
    speed_scale: float
    details: Mapping[str, Any] = field(default_factory=dict)


# Event emitted when the state changes from the first to the second (every ordered pair listed;
# a test keeps the table complete).
_S = SafetyState
EVENT_ON_TRANSITION: dict[tuple[SafetyState, SafetyState], str] = {
    (_S.NORMAL, _S.REDUCED): 'slow_down',
    (_S.REDUCED, _S.NORMAL): 'full_speed',
    (_S.NORMAL, _S.PROTECTIVE_STOP): 'stop',
    (_S.REDUCED, _S.PROTECTIVE_STOP): 'stop',
    (_S.PROTECTIVE_STOP, _S.REDUCED): 'resume',
    (_S.PROTECTIVE_STOP, _S.NORMAL): 'resume',
    (_S.EMERGENCY_STOP, _S.PROTECTIVE_STOP): 'reset',
    (_S.EMERGENCY_STOP, _S.REDUCED): 'reset',
    (_S.EMERGENCY_STOP, _S.NORMAL): 'reset',
    (_S.FAULT, _S.NORMAL): 'resume',
    (_S.FAULT, _S.REDUCED): 'resume',
    (_S.FAULT, _S.PROTECTIVE_STOP): 'stop',
    **{(other, _S.EMERGENCY_STOP): 'emergency_stop' for other in _S if other is not _S.EMERGENCY_STOP},
    **{(other, _S.FAULT): 'fault' for other in _S if other is not _S.FAULT},
}


# ---------------------------------------------------------------------------------------------
# Geometry: person cylinders against robot capsules
# ---------------------------------------------------------------------------------------------

def segment_closest_parameters(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closest points between segments a (A, 2, 3) and b (B, 2, 3): parameters s, t in [0, 1] and
    the distance (A, B) in m. Zero-length segments are points. After C. Ericson, Real-Time
    Collision Detection, 5.1.9 (clamped parameters)."""
    a0, b0 = a[:, None, 0, :], b[None, :, 0, :]
    da, db = a[:, None, 1, :] - a0, b[None, :, 1, :] - b0
    r = a0 - b0
    eps = 1e-12
    shape = r.shape[:2]
    aa = np.broadcast_to(np.einsum('ijk,ijk->ij', da, da), shape)
    bb = np.broadcast_to(np.einsum('ijk,ijk->ij', db, db), shape)
    ab = np.einsum('ijk,ijk->ij', np.broadcast_to(da, r.shape), np.broadcast_to(db, r.shape))
    ar = np.einsum('ijk,ijk->ij', np.broadcast_to(da, r.shape), r)
    br = np.einsum('ijk,ijk->ij', np.broadcast_to(db, r.shape), r)
    safe_aa, safe_bb = np.maximum(aa, eps), np.maximum(bb, eps)
    denom = aa * bb - ab * ab
    # General case: both segments have length; parallel segments (denom 0) start from s = 0.
    s = np.where(denom > eps, np.clip((ab * br - ar * bb) / np.where(denom > eps, denom, 1.0), 0.0, 1.0), 0.0)
    t = (ab * s + br) / safe_bb
    s = np.where(t < 0.0, np.clip(-ar / safe_aa, 0.0, 1.0),
                 np.where(t > 1.0, np.clip((ab - ar) / safe_aa, 0.0, 1.0), s))
    t = np.clip(t, 0.0, 1.0)
    # Degenerate cases: b is a point (t = 0), a is a point (s = 0), both points.
    b_point, a_point = bb <= eps, aa <= eps
    s = np.where(b_point, np.clip(-ar / safe_aa, 0.0, 1.0), s)
    t = np.where(b_point, 0.0, t)
    s = np.where(a_point, 0.0, s)
    t = np.where(a_point, np.where(b_point, 0.0, np.clip(br / safe_bb, 0.0, 1.0)), t)
    gap = r + s[..., None] * da - t[..., None] * db
    return s, t, np.linalg.norm(gap, axis=2)


@dataclass(frozen=True)
class PairGeometry:
    """Per person i and capsule c (N, M): surface separation (m), unit vector robot -> person, and
    the robot's measured speed toward the person (m/s, max over the capsule's end points)."""

    separation_m: np.ndarray
    toward_person: np.ndarray        # (N, M, 3)
    robot_speed_toward_mps: np.ndarray


def pair_geometry(positions_m: np.ndarray, robot: RobotObservation, person_radius_m: float,
                  person_height_m: float) -> PairGeometry:
    """Person i is a vertical cylinder (radius, floor to height) at its x, y; capsules as observed."""
    n = len(positions_m)
    axes = np.zeros((n, 2, 3))
    axes[:, :, :2] = positions_m[:, None, :2]
    axes[:, 1, 2] = person_height_m
    s, t, distance = segment_closest_parameters(axes, robot.capsules_m)
    on_person = axes[:, None, 0, :] + s[..., None] * (axes[:, None, 1, :] - axes[:, None, 0, :])
    start, end = robot.capsules_m[None, :, 0, :], robot.capsules_m[None, :, 1, :]
    on_robot = start + t[..., None] * (end - start)
    offset = on_person - on_robot
    norm = np.linalg.norm(offset, axis=2, keepdims=True)
    unit = np.where(norm > 1e-9, offset / np.maximum(norm, 1e-9), 0.0)
    # Velocity varies linearly along a rigid segment, so its largest component toward the person
    # is at an end point: taking both ends bounds every point of the link.
    toward = np.maximum(np.einsum('nmk,mk->nm', unit, robot.velocities_mps[:, 0, :]),
                        np.einsum('nmk,mk->nm', unit, robot.velocities_mps[:, 1, :]))
    # Overlapping axes give no direction: count the link's full speed as toward the person.
    speed_max = np.linalg.norm(robot.velocities_mps, axis=2).max(axis=1)
    toward = np.where(norm[..., 0] > 1e-9, toward, speed_max[None, :])
    separation = distance - robot.radii_m[None, :] - person_radius_m
    return PairGeometry(separation, unit, toward)


def associate(previous_m: np.ndarray, current_m: np.ndarray, gate_m: float) -> np.ndarray:
    """Index into previous_m for each current person (-1: unmatched), greedy nearest neighbour
    on horizontal distance within the gate, each previous person used once."""
    match = np.full(len(current_m), -1, dtype=int)
    if len(previous_m) == 0 or len(current_m) == 0:
        return match
    distance = np.linalg.norm(current_m[:, None, :2] - previous_m[None, :, :2], axis=2)
    taken: set[int] = set()
    for flat in np.argsort(distance, axis=None):
        i, j = divmod(int(flat), len(previous_m))
        if distance[i, j] > gate_m:
            break
        if match[i] < 0 and j not in taken:
            match[i] = j
            taken.add(j)
    return match


# ---------------------------------------------------------------------------------------------
# The monitor
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Rule:
    scale: float
    reason: str


class SafetyMonitor:
    """Stateful safety verdicts; the clock comes in as now_s (s, the supervisor's clock)."""

    def __init__(self, config: SafetyConfig, stopping: StoppingModel | None, mode: Mode = Mode.AUTOMATIC,
                 body: BodyModel | None = None) -> None:
        self.config = config
        self._body = body
        self._mode = mode
        self._payload_fraction = stopping.payload_fraction(config.payload_kg) if stopping is not None else 1.0
        self._separation = config.effective_separation      # S_p as the standard defines it (evidence margin)
        # The scale chosen now stands until the next verdict has taken effect (ssm.look_ahead_scale).
        self._look = LookAhead(config.update_period_s, config.actuation_lag_s, config.human_accel_bound_mps2)
        self._cap_speed: tuple[float, float] | None = None    # (stamp s, fastest full-scale speed m/s) last capped
        self._steps = stopping.steps(self._payload_fraction, config.speed_fraction_at_full_scale) \
            if stopping is not None else StoppingSteps.constant(self._separation.fixed_stopping())
        self._pfl = self._pfl_limit(body) if body is not None else None
        self._scale = 0.0                   # what the arm must apply; starts stopped
        self._held_scale = 0.0              # the people rules' scale after restart interlock and ramp
        self._cap_scale = 0.0               # the mode cap's scale after its ramp
        self._rising_since_s: float | None = None
        self._last_now_s: float | None = None
        self._newest_people_s: float | None = None        # stamp of the newest valid people data, s
        self._track: PeopleObservation | None = None       # previous valid data, for person speeds
        self._estop_reason = ''
        self._last_inputs: tuple[PeopleObservation, RobotObservation] | None = None   # for a mode change
        self._last_verdict: SafetyVerdict | None = None
        self._events: list[SafetyEvent] = []

    # -- public API ---------------------------------------------------------------------------------
    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def last_verdict(self) -> SafetyVerdict | None:
        return self._last_verdict

    def drain_events(self) -> list[SafetyEvent]:
        events, self._events = self._events, []
        return events

    def update(self, people: PeopleObservation, robot: RobotObservation, now_s: float) -> SafetyVerdict:
        self._last_inputs = (people, robot)
        try:
            verdict = self._evaluate(people, robot, now_s)
        except Exception as exc:    # noqa: BLE001 - a bug in here must stop the arm, loudly, never pass
            verdict = self._stop_verdict(now_s, SafetyState.FAULT, f'internal error in the safety monitor: {exc!r}')
        return self._publish(verdict)

    def on_silence(self, now_s: float) -> SafetyVerdict | None:
        """Watchdog: a stop verdict when people data is older than people_timeout_s, else None."""
        if self._estop_reason:
            return self._publish(self._stop_verdict(now_s, SafetyState.EMERGENCY_STOP, self._estop_text()))
        last_s = self._newest_people_s
        if last_s is not None and now_s - last_s <= self.config.people_timeout_s:
            return None
        reason = 'no people data received yet' if last_s is None else \
            f'people data silent for {now_s - last_s:.3f} s (timeout {self.config.people_timeout_s:g} s)'
        self._track = None                  # speeds after a gap are unknown: floor speed again
        return self._publish(self._stop_verdict(now_s, SafetyState.PROTECTIVE_STOP, reason))

    def set_mode(self, mode: Mode, now_s: float) -> SafetyVerdict:
        """Change mode, judged at once on the latest people and robot data in the new mode.

        Re-selecting the current mode changes nothing. A change is a `mode_change` event, not a
        stop: the new mode's rules apply from this verdict on (slowing is immediate, speeding up
        still waits for hold and ramp); without data to judge on, the arm stops until there is.
        """
        previous = self._mode
        if mode is previous and self._last_verdict is not None:
            return self._last_verdict
        self._mode = mode
        reason = f'mode changed from {previous.value} to {mode.value}'
        if self._estop_reason:
            verdict = self._stop_verdict(now_s, SafetyState.EMERGENCY_STOP, self._estop_text())
        elif self._last_inputs is None:
            verdict = self._stop_verdict(now_s, SafetyState.PROTECTIVE_STOP, f'{reason}: no people and robot data '
                                         'yet to judge the new mode on')
        else:
            try:
                verdict = self._evaluate(*self._last_inputs, now_s, again=True)
            except Exception as exc:    # noqa: BLE001 - as in update(): a bug here stops the arm
                verdict = self._stop_verdict(now_s, SafetyState.FAULT,
                                             f'internal error in the safety monitor: {exc!r}')
        self._events.append(SafetyEvent(now_s, 'mode_change', verdict.state, verdict.zone, reason,
                                        verdict.speed_scale, {'from': previous.value, 'to': mode.value}))
        return self._publish(verdict)

    def protective_stop(self, now_s: float, reason: str) -> SafetyVerdict:
        """A stop for a doubt found outside update() (bad robot input, an internal error); like any
        protective stop it clears when good data has passed hold and ramp. Never lifts an e-stop."""
        self._track = None
        if self._estop_reason:
            return self._publish(self._stop_verdict(now_s, SafetyState.EMERGENCY_STOP, self._estop_text()))
        return self._publish(self._stop_verdict(now_s, SafetyState.PROTECTIVE_STOP, reason))

    def emergency_stop(self, now_s: float, reason: str) -> SafetyVerdict:
        """Latch an emergency stop; only reset() releases it."""
        self._estop_reason = reason or 'emergency stop requested'
        return self._publish(self._stop_verdict(now_s, SafetyState.EMERGENCY_STOP, self._estop_text()))

    def clock_jumped(self, now_s: float, reason: str) -> SafetyVerdict:
        """Time went backwards (a restarted twin, a sim-time reset): stop, forget everything timed on
        the old timeline, and judge the new one from scratch (hold and ramp before moving again).
        An emergency stop stays latched."""
        self._newest_people_s = None
        self._track = None
        self._last_inputs = None
        self._last_now_s = None
        if self._estop_reason:
            return self._publish(self._stop_verdict(now_s, SafetyState.EMERGENCY_STOP, self._estop_text()))
        return self._publish(self._stop_verdict(now_s, SafetyState.PROTECTIVE_STOP, reason))

    def reset(self, now_s: float) -> SafetyVerdict:
        """Release an emergency stop; the arm stays stopped until fresh data passes hold and ramp."""
        self._estop_reason = ''
        return self._publish(self._stop_verdict(now_s, SafetyState.PROTECTIVE_STOP,
                                                'reset: waiting for fresh people and robot data'))

    def report_contact(self, now_s: float, region_names: str | Sequence[str], force_N: float, transient: bool,
                       source: str = '') -> ContactVerdict:
        """Log a measured contact; above the region's limit it latches an emergency stop.

        `region_names`: the body region, or the regions a contact could be on when the sensor cannot
        tell them apart (judged by the most restrictive). `source` says what touched what, for the log.
        """
        if self._body is None:
            raise ConfigError('report_contact needs a body-region model (config/body_regions.yaml)')
        names = [region_names] if isinstance(region_names, str) else list(region_names)
        region = self._body.most_restrictive(names)
        verdict = contact_verdict(region, force_N, transient)
        where = f' ({source})' if source else ''
        self._events.append(SafetyEvent(now_s, 'contact', self._current_state(), 'fault' if not verdict.within_limit
                                        else self._current_zone(), f'contact with {region.name}{where}: {force_N:g} N '
                                        f'({verdict.outcome.value}, limit {verdict.limit_N:g} N)', self._scale,
                                        {'region': region.name, 'force_N': force_N, 'transient': transient,
                                         'limit_N': verdict.limit_N, 'outcome': verdict.outcome.value,
                                         'source': source}))
        if not verdict.within_limit:
            self.emergency_stop(now_s, f'contact with {region.name}{where} above its limit: {force_N:g} N > '
                                       f'{verdict.limit_N:g} N')
        return verdict

    # -- evaluation ----------------------------------------------------------------------------------
    def _evaluate(self, people: PeopleObservation, robot: RobotObservation, now_s: float,
                  again: bool = False) -> SafetyVerdict:
        """`again`: the same data judged a second time (a mode change), not a repeated message."""
        people_doubt = self._people_doubt(people, now_s, again)
        if not people_doubt:
            self._newest_people_s = people.stamp_s
        if self._estop_reason:
            self._track = None if people_doubt else people
            return self._stop_verdict(now_s, SafetyState.EMERGENCY_STOP, self._estop_text())
        doubt = people_doubt or self._robot_doubt(robot, now_s)
        if doubt:
            self._track = None              # no speed estimate across doubtful data
            stamp_s = people.stamp_s if math.isfinite(people.stamp_s) else now_s
            return self._stop_verdict(now_s, SafetyState.PROTECTIVE_STOP, doubt, stamp_s=stamp_s)
        previous, self._track = self._track, people
        positions = np.asarray(people.positions_m, dtype=float).reshape(-1, 3)
        cap = self._mode_rule(robot)
        rules: list[_Rule] = []
        if len(positions) == 0:
            return self._moving_verdict(people.stamp_s, now_s, cap, rules, math.inf, math.nan, math.inf,
                                        self._mode_speed_cap(), self.config.separation.human_speed_floor_mps,
                                        0.0, -1)
        geometry = pair_geometry(positions, robot, self.config.person_radius_m, self.config.person_height_m)
        if self._mode is Mode.COLLABORATIVE:
            # Power and force limiting (ISO/TS 15066 5.5.5) replaces separation: contact with the
            # exposed regions is permitted at the PFL speed, so neither SSM nor the zones stop the
            # arm (doubtful data above still does).
            person_min = geometry.separation_m.min(axis=1)
            closest = int(np.argmin(person_min))
            return self._moving_verdict(people.stamp_s, now_s, cap, rules, float(person_min[closest]), math.nan,
                                        math.inf, self._mode_speed_cap(), self.config.separation.human_speed_floor_mps,
                                        float(geometry.robot_speed_toward_mps.min(axis=1)[closest]), closest)
        human_toward = self._human_speed_toward(previous, people, positions, geometry)
        v_h = np.maximum(np.nan_to_num(human_toward, nan=0.0), self._separation.human_speed_floor_mps)
        measured = geometry.robot_speed_toward_mps
        v_full = full_scale_speed(measured, robot.applied_scale, self.config.nominal_robot_speed_mps,
                                  self.config.min_scale_for_estimate)
        # Until this verdict is applied the arm keeps its present speed, or speeds up toward the
        # previous verdict's scale if it is still ramping there: the larger counts.
        robot_now = np.maximum(measured, self._scale * v_full)
        ssm = look_ahead_scale(geometry.separation_m, self._separation, human_toward, v_full, robot_now, self._look,
                               self._steps)
        shrunk, v_h_bound, held = look_ahead_terms(geometry.separation_m, self._separation, human_toward, robot_now,
                                                   self._look)
        limit_i, limit_c = np.unravel_index(int(np.argmin(ssm)), ssm.shape)
        person_min = geometry.separation_m.min(axis=1)
        closest = int(np.argmin(person_min))
        separation = float(person_min[closest])
        rules.append(self._zone_rule(separation, closest))
        rules.append(_Rule(float(ssm[limit_i, limit_c]),
                           f'SSM: person {limit_i} at {geometry.separation_m[limit_i, limit_c]:.2f} m, '
                           f'v_h {v_h[limit_i, limit_c]:.2f} m/s ({v_h_bound[limit_i, limit_c]:.2f} m/s bound over '
                           f'the {self._look.horizon_s:.2f} s look-ahead), robot '
                           f'{max(0.0, v_full[limit_i, limit_c]):.2f} m/s toward them at full scale'))
        # S_p at the speeds of this moment (applied scale), for the evidence margin.
        t_s, s_s = self._steps.at(np.full(measured.shape, robot.applied_scale))
        s_p = v_h * (self._separation.reaction_time_s + t_s) + np.maximum(0.0, measured) * \
            self._separation.reaction_time_s + s_s + self._separation.fixed_margin_m
        margins = geometry.separation_m - s_p
        worst = np.unravel_index(int(np.argmin(margins)), margins.shape)
        target = min(self._combine(rules)[0], cap.scale)
        stop_at_target = self._steps.at(np.array([target]))
        allowed = max_robot_speed(float(shrunk[limit_i, limit_c]), held, float(v_h_bound[limit_i, limit_c]),
                                  StoppingPoint(float(stop_at_target[0][0]), float(stop_at_target[1][0])))
        return self._moving_verdict(people.stamp_s, now_s, cap, rules, separation, float(s_p[worst]),
                                    float(margins[worst]), min(allowed, self._mode_speed_cap()),
                                    float(v_h[limit_i, limit_c]), float(measured[limit_i, limit_c]), closest)

    def _human_speed_toward(self, previous: PeopleObservation | None, people: PeopleObservation,
                            positions: np.ndarray, geometry: PairGeometry) -> np.ndarray:
        """(N, M) speed of each person toward each link (m/s); NaN where unknown (-> floor).

        With the tracker's estimate: the velocity projected on the direction to the link plus
        VELOCITY_BOUND_SIGMAS standard deviations of that projection (an upper confidence bound, not
        the mean). A person without a usable estimate (no data, wrong shape, NaN, a covariance that is
        not positive semi-definite) keeps the old rule: the difference of successive positions."""
        toward = np.full(geometry.separation_m.shape, np.nan)
        estimated = np.zeros(len(positions), dtype=bool)
        velocities, covariances = people.velocities_mps, people.velocity_cov
        if velocities is not None and covariances is not None:
            v = np.asarray(velocities, dtype=float)
            cov = np.asarray(covariances, dtype=float)
            if v.shape == (len(positions), 2) and cov.shape == (len(positions), 2, 2):
                for i in range(len(positions)):
                    symmetric = np.isclose(cov[i, 0, 1], cov[i, 1, 0], rtol=1e-6, atol=1e-12)
                    if not (np.all(np.isfinite(v[i])) and np.all(np.isfinite(cov[i])) and symmetric
                            and np.linalg.eigvalsh(cov[i]).min() >= -1e-12):
                        continue
                    # toward_person points from robot to person: the person approaches along -toward_person.
                    u = -geometry.toward_person[i][:, :2]                        # (M, 2), horizontal part
                    mean = u @ v[i]
                    sigma = np.sqrt(np.maximum(0.0, np.einsum('mk,kl,ml->m', u, cov[i], u)))
                    toward[i] = mean + VELOCITY_BOUND_SIGMAS * sigma
                    estimated[i] = True
        if estimated.all() or previous is None or len(previous.positions_m) == 0:
            return toward
        dt = people.stamp_s - previous.stamp_s
        if not 0.0 < dt <= self.config.people_timeout_s:
            return toward
        before = np.asarray(previous.positions_m, dtype=float).reshape(-1, 3)
        match = associate(before, positions, self.config.association_gate_m)
        for i, j in enumerate(match):
            if j < 0 or estimated[i]:
                continue
            velocity = np.zeros(3)
            velocity[:2] = (positions[i, :2] - before[j, :2]) / dt
            toward[i] = -geometry.toward_person[i] @ velocity
        return toward

    def _zone_rule(self, separation: float, person: int) -> _Rule:
        if separation < self.config.protective_distance_m:
            return _Rule(0.0, f'person {person} at {separation:.2f} m, inside the protective distance '
                              f'{self.config.protective_distance_m:g} m')
        if separation < self.config.warning_distance_m:
            return _Rule(self.config.reduced_speed_scale,
                         f'person {person} at {separation:.2f} m, inside the warning distance '
                         f'{self.config.warning_distance_m:g} m')
        return _Rule(1.0, '')

    def _pfl_limit(self, body: BodyModel) -> tuple[float, str] | None:
        """(cap m/s, which limit of which region) over the exposed regions; None if none is exposed."""
        if not body.exposed:
            return None
        speeds = {name: max_contact_speed(body.region(name), self.config.robot_moving_mass_kg,
                                          self.config.payload_kg, self.config.contact_area_cm2,
                                          clamping=body.clamping_possible)
                  for name in body.exposed}
        region = min(speeds, key=lambda name: speeds[name])
        limit = 'quasi-static limit (clamping possible)' if body.clamping_possible else 'transient limit'
        return speeds[region], f'{limit} of {region}'

    def _mode_speed_cap(self) -> float:
        if self._mode is Mode.MANUAL_REDUCED:
            return self.config.t1_speed_limit_mps
        if self._mode is Mode.COLLABORATIVE:
            return self._pfl[0] if self._pfl is not None else 0.0
        return math.inf

    def _mode_rule(self, robot: RobotObservation) -> _Rule:
        cap = self._mode_speed_cap()
        point_speeds = np.linalg.norm(robot.velocities_mps, axis=2)
        fastest = float(full_scale_speed(point_speeds.max(), robot.applied_scale,
                                         self.config.nominal_robot_speed_mps, self.config.min_scale_for_estimate))
        # The cap must hold until a later verdict is applied: the next one (P + L), or, if the people
        # data stop (a scanner dropout), the timeout's stop (people_timeout_s + L), whichever is later.
        # An arm speeding up along its motion is capped by the speed it will have reached by then, its
        # full-scale speed extrapolated at the growth measured since the previous verdict (encoders
        # are exact enough to difference; a slowing arm is taken at its present speed). Tracked in
        # every mode, so that the growth is known on the first cycle under a cap.
        previous, self._cap_speed = self._cap_speed, (robot.stamp_s, fastest)
        growth = 0.0
        if previous is not None and 0.0 < robot.stamp_s - previous[0] <= CAP_GROWTH_MAX_GAP_S:
            growth = max(0.0, (fastest - previous[1]) / (robot.stamp_s - previous[0]))
        if math.isinf(cap):
            return _Rule(1.0, '')
        if self._mode is Mode.COLLABORATIVE and self._pfl is None:
            return _Rule(0.0, 'collaborative mode without a body-region model with exposed regions: PFL limit unknown')
        horizon_s = max(self._look.horizon_s, self.config.people_timeout_s + self.config.actuation_lag_s)
        expected = fastest + growth * horizon_s
        scale = 1.0 if expected <= cap else cap / expected
        what = 'manual reduced (T1)' if self._mode is Mode.MANUAL_REDUCED else \
            f'collaborative: PFL {self._pfl[1] if self._pfl else "?"}'
        return _Rule(scale, f'{what}: every capsule point capped at {cap:.3f} m/s '
                            f'(fastest {fastest:.3f} m/s at full scale, {expected:.3f} m/s within '
                            f'{horizon_s:.2f} s)')

    @staticmethod
    def _combine(rules: list[_Rule]) -> tuple[float, str]:
        limiting = min(rules, key=lambda rule: rule.scale)
        return float(np.clip(limiting.scale, 0.0, 1.0)), limiting.reason if limiting.scale < 1.0 else ''

    # -- hold and ramp ------------------------------------------------------------------------------
    def _advance_scale(self, held_target: float, cap_target: float, now_s: float) -> tuple[float, str]:
        """The scale to apply, and a note when it is below the target. Slowing is immediate. After the
        people rules stopped the arm (scale 0), their scale rises only once it has stayed below their
        target for resume_hold_s (restart interlock), then ramps at ramp_up_per_s; from a reduced
        speed, and under the mode cap (the robot's own speed), it ramps at once: that is no restart,
        and each verdict's target is safe until the next one."""
        dt_s = 0.0 if self._last_now_s is None else max(0.0, now_s - self._last_now_s)
        held_note = ''
        if held_target <= self._held_scale:
            self._held_scale, self._rising_since_s = held_target, None
        elif self._held_scale > 0.0 and self._rising_since_s is None:
            self._held_scale = min(held_target, self._held_scale + self.config.ramp_up_per_s * dt_s)
            if self._held_scale < held_target:
                held_note = f'ramping up to {held_target:.2f} at {self.config.ramp_up_per_s:g}/s'
        else:
            if self._rising_since_s is None:
                self._rising_since_s = now_s
            held_s = now_s - self._rising_since_s
            if held_s < self.config.resume_hold_s:
                held_note = (f'restart interlock: clear for {held_s:.2f} of {self.config.resume_hold_s:g} s '
                             f'before speeding up to {held_target:.2f}')
            else:
                # The ramp runs from the end of the hold (or the previous cycle, whichever is later).
                ramp_from_s = max(now_s - dt_s, self._rising_since_s + self.config.resume_hold_s)
                self._held_scale = min(held_target, self._held_scale +
                                       self.config.ramp_up_per_s * max(0.0, now_s - ramp_from_s))
                if self._held_scale < held_target:
                    held_note = f'ramping up to {held_target:.2f} at {self.config.ramp_up_per_s:g}/s'
        cap_note = ''
        if cap_target <= self._cap_scale:
            self._cap_scale = cap_target
        else:
            self._cap_scale = min(cap_target, self._cap_scale + self.config.ramp_up_per_s * dt_s)
            if self._cap_scale < cap_target:
                cap_note = f'ramping up to {cap_target:.2f} at {self.config.ramp_up_per_s:g}/s under the mode cap'
        self._scale = min(self._held_scale, self._cap_scale)
        return self._scale, held_note if self._held_scale <= self._cap_scale else cap_note

    def _moving_verdict(self, stamp_s: float, now_s: float, cap: _Rule, rules: list[_Rule], separation: float,
                        s_p: float, margin: float, allowed: float, v_h: float, v_r: float,
                        closest: int) -> SafetyVerdict:
        held_target = self._combine(rules)[0] if rules else 1.0
        target, reason = self._combine([cap, *rules])
        scale, note = self._advance_scale(held_target, cap.scale, now_s)
        self._last_now_s = now_s
        if scale <= 0.0:
            state = SafetyState.PROTECTIVE_STOP
        elif scale < 1.0:
            state = SafetyState.REDUCED
        else:
            state = SafetyState.NORMAL
        zone = self._zone_rule(separation, closest)
        zone_name = 'protective' if zone.scale == 0.0 else 'warning' if zone.scale < 1.0 else 'clear'
        text = '; '.join(part for part in (reason, note) if part)
        return SafetyVerdict(stamp_s, self._mode, state, zone_name, separation, s_p, allowed, v_h, v_r, scale,
                             text, closest, margin, target)

    def _stop_verdict(self, now_s: float, state: SafetyState, reason: str,
                      stamp_s: float | None = None) -> SafetyVerdict:
        self._scale = self._held_scale = self._cap_scale = 0.0
        self._rising_since_s, self._last_now_s = None, now_s
        return SafetyVerdict(now_s if stamp_s is None else stamp_s, self._mode, state, 'fault', math.inf, math.nan,
                             0.0, self.config.separation.human_speed_floor_mps, 0.0, 0.0, reason, -1, math.inf, 0.0)

    # -- doubt ---------------------------------------------------------------------------------------
    def _people_doubt(self, people: PeopleObservation, now_s: float, again: bool = False) -> str:
        config = self.config
        if people.frame_id != config.expected_frame:
            return f'people data in frame {people.frame_id!r}, expected {config.expected_frame!r}'
        if not math.isfinite(people.stamp_s):
            return f'people data stamp is not finite: {people.stamp_s!r}'
        positions = np.asarray(people.positions_m, dtype=float)
        if positions.ndim != 2 or positions.shape[1] != 3:
            return f'people positions must be an (N, 3) array, got shape {positions.shape}'
        if not np.all(np.isfinite(positions)):
            return 'people data contains NaN or infinite positions'
        age_s = now_s - people.stamp_s
        if age_s > config.people_timeout_s:
            return f'people data is {age_s:.3f} s old (timeout {config.people_timeout_s:g} s)'
        if age_s < -config.people_timeout_s:
            return f'people data stamp is {-age_s:.3f} s in the future (clock mismatch)'
        if self._newest_people_s is not None and people.stamp_s <= self._newest_people_s and not again:
            return (f'people data stamp {people.stamp_s:.3f} s is not newer than the previous '
                    f'{self._newest_people_s:.3f} s')
        outside = np.any((positions < np.asarray(config.workspace_min_m)) |
                         (positions > np.asarray(config.workspace_max_m)), axis=1)
        if np.any(outside):
            index = int(np.argmax(outside))
            return (f'person {index} at {np.round(positions[index], 3).tolist()} m is outside the plausible '
                    f'workspace {list(config.workspace_min_m)} .. {list(config.workspace_max_m)} m')
        return ''

    def _robot_doubt(self, robot: RobotObservation, now_s: float) -> str:
        capsules = np.asarray(robot.capsules_m, dtype=float)
        velocities = np.asarray(robot.velocities_mps, dtype=float)
        radii = np.asarray(robot.radii_m, dtype=float)
        if capsules.ndim != 3 or capsules.shape[1:] != (2, 3) or len(capsules) == 0 \
                or velocities.shape != capsules.shape or radii.shape != (len(capsules),):
            return (f'robot data shapes capsules {capsules.shape}, velocities {velocities.shape}, radii '
                    f'{radii.shape}: expected (M, 2, 3), (M, 2, 3), (M,) with M >= 1')
        if not (np.all(np.isfinite(capsules)) and np.all(np.isfinite(velocities)) and np.all(np.isfinite(radii))):
            return 'robot data contains NaN or infinite values'
        if np.any(radii < 0.0):
            return 'robot capsule radius below 0 m'
        if not (math.isfinite(robot.applied_scale) and 0.0 <= robot.applied_scale <= 1.0):
            return f'robot applied speed scale {robot.applied_scale!r} is outside [0, 1]'
        age_s = now_s - robot.stamp_s
        if not math.isfinite(age_s) or age_s > self.config.robot_timeout_s:
            return f'robot data is {age_s:.3f} s old (timeout {self.config.robot_timeout_s:g} s)'
        if age_s < -self.config.robot_timeout_s:
            return f'robot data stamp is {-age_s:.3f} s in the future (clock mismatch)'
        return ''

    # -- events --------------------------------------------------------------------------------------
    def _estop_text(self) -> str:
        return f'emergency stop: {self._estop_reason} (reset required)'

    def _current_state(self) -> SafetyState:
        return self._last_verdict.state if self._last_verdict is not None else SafetyState.PROTECTIVE_STOP

    def _current_zone(self) -> str:
        return self._last_verdict.zone if self._last_verdict is not None else 'fault'

    def _publish(self, verdict: SafetyVerdict) -> SafetyVerdict:
        # The monitor starts stopped (scale 0) with nothing seen: the first move is a 'resume'.
        previous = self._last_verdict
        before_state = previous.state if previous is not None else SafetyState.PROTECTIVE_STOP
        before_zone = previous.zone if previous is not None else 'clear'
        details = {'separation_m': verdict.separation_m, 'target_scale': verdict.target_scale}
        kind = EVENT_ON_TRANSITION.get((before_state, verdict.state))
        if verdict.zone == 'fault' and before_zone != 'fault' and verdict.state is SafetyState.PROTECTIVE_STOP:
            kind = 'fault'
        if verdict.zone in ('warning', 'protective') and before_zone == 'clear':
            self._events.append(SafetyEvent(verdict.stamp_s, 'intrusion', verdict.state, verdict.zone,
                                            verdict.reason, verdict.speed_scale, details))
        if kind is not None:
            self._events.append(SafetyEvent(verdict.stamp_s, kind, verdict.state, verdict.zone, verdict.reason,
                                            verdict.speed_scale, details))
        self._last_verdict = verdict
        return verdict
