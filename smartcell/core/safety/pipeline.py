"""What the supervisor node does between messages and the safety monitor, free of ROS.

- the robot's link capsules in the world frame from its joint state and base pose;
- the shift KPIs the supervisor accounts per safety cycle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from smartcell.core.mes.audit_trail import Anchor
from smartcell.core.safety.evidence import EvidenceWriter
from smartcell.core.params import ConfigError
from smartcell.core.robot.kinematics import (DEFAULT_TOOL_LENGTH_M, LINK_CAPSULE_RADII, capsule_point_velocities,
                                       forward_kinematics, link_capsules)
from smartcell.core.safety.monitor import (Mode, PeopleObservation, RobotObservation, SafetyConfig, SafetyEvent,
                                   SafetyMonitor, SafetyVerdict)
from smartcell.core.safety.pfl import BodyModel, ContactVerdict
from smartcell.core.safety.ssm import (SeparationInputs, check_protective_field, light_curtain_distance_mm,
                                       minimum_distance_iso13855_mm)
from smartcell.core.safety.stopping import StoppingModel


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


def joint_doubt(joints: tuple) -> str:
    """Why a (stamp s, q rad, qd rad/s) joint sample cannot be used, or ''."""
    stamp_s, q, qd = joints
    q, qd = np.asarray(q, dtype=float), np.asarray(qd, dtype=float)
    if q.shape != (6,) or qd.shape != q.shape:
        return f'joint state has {q.size} positions and {qd.size} velocities, the arm has 6 joints'
    if not (math.isfinite(stamp_s) and np.all(np.isfinite(q)) and np.all(np.isfinite(qd))):
        return 'joint state holds NaN or infinite values'
    return ''


def robot_geometry(stamp_s: float, q_rad: np.ndarray, qd_radps: np.ndarray, base: BasePose) -> RobotGeometry:
    rotation = base.rotation()
    offset = np.array([base.x_m, base.y_m, base.z_m])
    capsules = link_capsules(q_rad) @ rotation.T + offset
    velocities = capsule_point_velocities(q_rad, qd_radps) @ rotation.T
    return RobotGeometry(stamp_s, capsules, LINK_CAPSULE_RADII, velocities)


def tool_tip_world(q_rad: np.ndarray, base: BasePose, tool_length_m: float = DEFAULT_TOOL_LENGTH_M) -> np.ndarray:
    """Where the gripper tip is (m, world) with the arm at q."""
    tool0 = forward_kinematics(np.asarray(q_rad, dtype=float))
    tip = tool0[:3, 3] + tool_length_m * tool0[:3, 2]
    return base.rotation() @ tip + np.array([base.x_m, base.y_m, base.z_m])


def person_near(people_xy_m: np.ndarray, point_xy_m: np.ndarray, radius_m: float) -> bool:
    """Is any tracked person (N, 2) m within radius_m (horizontally) of a point? NaN counts as no."""
    people = np.asarray(people_xy_m, dtype=float).reshape(-1, 2)
    if len(people) == 0:
        return False
    distances = np.linalg.norm(people - np.asarray(point_xy_m, dtype=float)[:2], axis=1)
    return bool(np.any(distances <= radius_m))


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
    _last_cycle_end_s: float | None = field(default=None, repr=False)
    _first_stamp_s: float | None = field(default=None, repr=False)

    def last_cycle_time_s(self, now_s: float) -> float | None:
        """Time since the previous unit ended (the first unit: since the first accounted cycle), s."""
        since = self._last_cycle_end_s if self._last_cycle_end_s is not None else self._first_stamp_s
        self._last_cycle_end_s = now_s
        return None if since is None else max(0.0, now_s - since)

    def account(self, speed_scale: float, separation_m: float, stamp_s: float, working: bool) -> None:
        """`working`: the cell is meant to be producing (RUNNING or held by safety)."""
        dt = 0.0 if self._last_stamp_s is None else max(0.0, stamp_s - self._last_stamp_s)
        if self._first_stamp_s is None and working:
            self._first_stamp_s = stamp_s
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

def check_scanner_field(config: dict, stopping: StoppingModel) -> float:
    """Refuse to start when the scanner's protective field is closer than ISO 13855 requires.

    T = scanner response + the arm's longest stop in the table (full speed, full payload);
    S = K T + C for a field parallel to the floor. Returns the required distance in m.
    """
    total_time_s = config['scanner_response_time_s'] + float(np.max(stopping.stopping_time_s))
    required_m = minimum_distance_iso13855_mm(total_time_s, config['scan_plane_height_m'] * 1000.0) / 1000.0
    check_protective_field(config['scanner_protective_field_m'], required_m, 'scanner_protective_field_m')
    return required_m


# T_r must cover what the chain may take before the arm reacts when people data stops: data up to
# people_timeout_s old is still acted on, silence is noticed by the supervisor's watchdog, which runs
# every people_timeout_s / 2 (supervisor node), and the stop verdict then reaches the arm and is applied.
SILENCE_CHECK_FRACTION = 0.5
# Stop verdict published -> applied by the arm: people -> supervisor -> arm measured max 23.6 ms on the
# loaded machine (bench/bench_reaction_latency.py, docs/safety.md "Timing budget"); twice that.
VERDICT_TO_ARM_S = 0.05


def reaction_budget_s(people_timeout_s: float) -> float:
    """The shortest T_r (s) that covers the people timeout, the silence watchdog period and the arm hop."""
    return people_timeout_s * (1.0 + SILENCE_CHECK_FRACTION) + VERDICT_TO_ARM_S


def check_reaction_time(config: dict) -> float:
    """Refuse a reaction time T_r shorter than the chain it stands for; returns the required T_r in s."""
    timeout_s = config['people_timeout_s']
    required_s = reaction_budget_s(timeout_s)
    if config['reaction_time_s'] < required_s - 1e-9:
        raise ConfigError(
            f"reaction_time_s={config['reaction_time_s']:g} s is shorter than the reaction chain it must cover: "
            f'people_timeout_s={timeout_s:g} s (people data that old, or silent that long, is still acted on) + '
            f'{timeout_s * SILENCE_CHECK_FRACTION:g} s (the silence watchdog runs every people_timeout_s/2) + '
            f'{VERDICT_TO_ARM_S:g} s (stop verdict to the arm) = {required_s:.3f} s; raise reaction_time_s to at '
            'least that or shorten people_timeout_s (docs/safety.md, Timing budget)')
    return required_s


def check_light_curtain(config: Mapping[str, Any], stopping_time_s: float) -> float:
    """Refuse to start when the light curtain at the fence opening is closer than ISO 13855 requires
    (perpendicular approach). T = curtain response + the arm's longest stop. Returns the required
    distance in m; 0 when no curtain is configured (light_curtain_distance_m = 0)."""
    configured_m = float(config.get('light_curtain_distance_m', 0.0))
    if configured_m == 0.0:
        return 0.0
    total_time_s = float(config['light_curtain_response_time_s']) + stopping_time_s
    required_m = light_curtain_distance_mm(total_time_s, float(config['light_curtain_resolution_mm'])) / 1000.0
    check_protective_field(configured_m, required_m, 'light_curtain_distance_m')
    return required_m


# Commanded scales kept: the arm's measured velocities lag the command by up to ~3 ticks
# (lockstep lag, the arm's tick, its ramp), so the arm is tracking one of these (AppliedScaleBound).
APPLIED_SCALE_HISTORY = 4
NO_ROBOT = RobotGeometry(-math.inf, np.zeros((1, 2, 3)), np.zeros(1), np.zeros((1, 2, 3)))


class AppliedScaleBound:
    """Lower bound of the speed scale the arm applies, from the scales commanded to it.

    The arm applies a commanded scale a tick or two later and ramps towards it: slowing at no more
    than its scale_ramp_down_per_s, and keeping up with a rising command (the monitor ramps no faster
    than the arm). So the applied scale is at least the larger of the smallest of the last few
    commands and the previous bound less the ramp-down since. Without the ramp term (an arm that may
    drop its scale at once: ramp inf), a drop in the command was read at once as the arm's scale: its
    still-fast motion then seemed even faster at full scale, the PFL cap dropped the scale again, and
    the arm crawled at the bottom of its range.
    """

    def __init__(self, ramp_down_per_s: float = math.inf, history: int = APPLIED_SCALE_HISTORY) -> None:
        if not ramp_down_per_s > 0.0:
            raise ConfigError(f'the arm\'s scale ramp-down must be > 0 1/s (inf: it may drop its scale at once), '
                              f'got {ramp_down_per_s!r}')
        self._ramp_down_per_s = float(ramp_down_per_s)
        self._commanded = [0.0] * history
        self._bound, self._stamp_s = 0.0, -math.inf

    def at(self, stamp_s: float) -> float:
        """The bound at stamp_s (a stamp not after the previous one: the smallest recent command)."""
        commanded = min(self._commanded)
        since_s = stamp_s - self._stamp_s
        bound = commanded
        if math.isfinite(since_s) and since_s >= 0.0 and math.isfinite(self._ramp_down_per_s):
            bound = max(commanded, self._bound - self._ramp_down_per_s * since_s)
        if math.isfinite(stamp_s):
            self._bound, self._stamp_s = bound, stamp_s
        return bound

    def commanded(self, scale: float) -> None:
        """A scale sent to the arm."""
        self._commanded = self._commanded[1:] + [scale]

    @property
    def last(self) -> float:
        """The bound last computed by at()."""
        return self._bound


class SafetyPipeline:
    """Joint state -> robot capsules in the world, then the SafetyMonitor (zones + SSM + modes).

    Measured speed divided by the applied scale is the robot's speed at full scale; the applied scale
    is bounded from below by AppliedScaleBound (dividing by a lower bound can only overestimate: the
    safe direction; the monitor guards small scales).
    """

    def __init__(self, monitor: SafetyMonitor, base: BasePose, evidence: EvidenceWriter | None = None,
                 arm_ramp_down_per_s: float = math.inf) -> None:
        self._monitor = monitor
        self._base = base
        self._evidence = evidence
        self._applied = AppliedScaleBound(arm_ramp_down_per_s)
        self._geometry_cache: tuple[float, np.ndarray, np.ndarray, RobotGeometry] | None = None
        self.events: list[SafetyEvent] = []

    @classmethod
    def from_params(cls, config: dict, stopping_path, body_regions_path,
                    evidence_key: bytes | None = None) -> 'SafetyPipeline':
        separation = SeparationInputs(
            reaction_time_s=config['reaction_time_s'], intrusion_distance_m=config['intrusion_distance_m'],
            sensor_uncertainty_m=config['sensor_uncertainty_m'],
            robot_position_uncertainty_m=config['robot_position_uncertainty_m'],
            human_speed_floor_mps=config['human_speed_floor_mps'])
        safety = SafetyConfig(
            separation=separation, warning_distance_m=config['warning_distance_m'],
            protective_distance_m=config['protective_distance_m'], reduced_speed_scale=config['reduced_speed_scale'],
            people_timeout_s=config['people_timeout_s'], robot_timeout_s=config['robot_state_timeout_s'],
            expected_frame=config['world_frame'], resume_hold_s=config['resume_hold_s'],
            ramp_up_per_s=config['ramp_up_per_s'], payload_kg=config['payload_kg'],
            # The arm refuses anything faster, so scale 1 is at most this fraction of the joint limits.
            speed_fraction_at_full_scale=config['max_joint_speed_fraction'])
        check_reaction_time(config)
        if config['nominal_speed_fraction'] > config['max_joint_speed_fraction']:
            raise ConfigError(f"nominal_speed_fraction={config['nominal_speed_fraction']:g} is above "
                              f"max_joint_speed_fraction={config['max_joint_speed_fraction']:g}: the arm would refuse "
                              'every planned motion')
        stopping = StoppingModel.from_yaml(stopping_path)
        stopping.check_cell_fraction(config['max_joint_speed_fraction'])
        check_scanner_field(config, stopping)
        check_light_curtain(config, float(np.max(stopping.stopping_time_s)))
        body = BodyModel.from_yaml(body_regions_path)
        evidence = EvidenceWriter(config['evidence_log'], key=evidence_key) if config['evidence_log'] else None
        return cls(SafetyMonitor(safety, stopping, Mode(config['mode']), body=body),
                   BasePose.from_list(config['robot_base_xyz_yaw']), evidence,
                   arm_ramp_down_per_s=config['scale_ramp_down_per_s'])

    @property
    def base(self) -> BasePose:
        return self._base

    @property
    def last_verdict(self) -> SafetyVerdict | None:
        return self._monitor.last_verdict

    @property
    def mode(self) -> Mode:
        return self._monitor.mode

    def evaluate(self, people: PeopleObservation | tuple, joints, now_s: float) -> SafetyVerdict:
        stamp_s, frame, positions = (people.stamp_s, people.frame_id, people.positions_m) \
            if isinstance(people, PeopleObservation) else people
        if joints is not None:
            doubt = joint_doubt(joints)
            if doubt:
                return self.protective_stop(now_s, doubt)
        geometry = NO_ROBOT if joints is None else self._geometry_of(joints)
        robot = RobotObservation(geometry.stamp_s, geometry.capsules_m, geometry.radii_m, geometry.velocities_mps,
                                 self._applied.at(stamp_s))
        observation = people if isinstance(people, PeopleObservation) else PeopleObservation(stamp_s, frame, positions)
        return self._record(self._monitor.update(observation, robot, now_s))

    def on_silence(self, now_s: float) -> SafetyVerdict | None:
        verdict = self._monitor.on_silence(now_s)
        return None if verdict is None else self._record(verdict)

    def emergency_stop(self, now_s: float, reason: str) -> SafetyVerdict:
        return self._record(self._monitor.emergency_stop(now_s, reason))

    def clock_jumped(self, now_s: float, reason: str) -> SafetyVerdict:
        """Stop and re-arm on a new timeline (SafetyMonitor.clock_jumped)."""
        self._geometry_cache = None
        return self._record(self._monitor.clock_jumped(now_s, reason))

    def protective_stop(self, now_s: float, reason: str) -> SafetyVerdict:
        """Stop for a named doubt found outside the monitor (bad input, an internal error)."""
        return self._record(self._monitor.protective_stop(now_s, reason))

    def reset(self, now_s: float) -> SafetyVerdict:
        return self._record(self._monitor.reset(now_s))

    def report_contact(self, now_s: float, region_names: Sequence[str], force_N: float, transient: bool,
                       source: str = '') -> ContactVerdict:
        """A measured contact (SafetyMonitor.report_contact): logged; above its limit, an emergency stop."""
        verdict = self._monitor.report_contact(now_s, region_names, force_N, transient, source)
        if verdict.within_limit:
            self._log_events()
        elif self._monitor.last_verdict is not None:
            self._record(self._monitor.last_verdict)
        return verdict

    def set_mode(self, mode: Mode, now_s: float) -> SafetyVerdict:
        return self._record(self._monitor.set_mode(mode, now_s))

    def record_event(self, event: SafetyEvent) -> None:
        """An event from outside the monitor (an operator's privileged request): kept like its own."""
        self.events.append(event)
        if self._evidence is not None:
            self._evidence.event(event)

    def drain_events(self) -> list[SafetyEvent]:
        events, self.events = self.events, []
        return events

    def evidence_head(self) -> Anchor | None:
        """The evidence log's head (seq, hash), synced and anchored now; None without a log."""
        return self._evidence.anchor() if self._evidence is not None else None

    def close(self) -> None:
        if self._evidence is not None:
            self._evidence.close()

    def _record(self, verdict: SafetyVerdict) -> SafetyVerdict:
        applied = self._applied.last
        self._applied.commanded(verdict.speed_scale)
        if self._evidence is not None:
            self._evidence.cycle(verdict, applied)
        self._log_events()
        return verdict

    def _log_events(self) -> None:
        new_events = self._monitor.drain_events()
        self.events.extend(new_events)
        if self._evidence is not None:
            for event in new_events:
                self._evidence.event(event)

    @staticmethod
    def verdict_fields(verdict: SafetyVerdict) -> dict[str, object]:
        return {'mode': verdict.mode.value, 'state': verdict.state.value, 'zone': verdict.zone,
                'separation_m': verdict.separation_m, 'protective_distance_m': verdict.protective_distance_m,
                'allowed_speed_mps': verdict.allowed_speed_mps, 'human_speed_mps': verdict.human_speed_mps,
                'robot_speed_toward_human_mps': verdict.robot_speed_toward_human_mps,
                'margin_m': verdict.margin_m, 'speed_scale': verdict.speed_scale, 'reason': verdict.reason}

    def _geometry_of(self, joints) -> RobotGeometry:
        # Joint states often come faster than people data: the same state is not recomputed.
        stamp_s, q, qd = joints
        cached = self._geometry_cache
        same = cached is not None and cached[0] == stamp_s and np.array_equal(cached[1], q) \
            and np.array_equal(cached[2], qd)
        if cached is None or not same:
            cached = (stamp_s, q.copy(), qd.copy(), robot_geometry(stamp_s, q, qd, self._base))
            self._geometry_cache = cached
        return cached[3]
