"""The safety scenario campaign: seeded scenarios run through the real safety pipeline in the twin.

One process runs what the cell's nodes run, on the same core code and the same configuration
(config/cell.yaml), without DDS in between: the twin's scanner -> PeopleTracker with the static
background of `background_file` (scanner node) -> CellController and its SafetyPipeline, shared
workspaces included (supervisor node) -> TrajectoryExecutor (arm node) -> the physics, with the
lockstep lag of the simulated cell. Each tick the SsmAudit checks the pipeline's decisions
against the twin's ground truth, and every person-robot contact is judged against the body
region's quasi-static limit (smartcell.core.safety.ground_truth has the rule).

Each scenario is run twice, with SSM and with a static stop zone (the classic alternative), on
the very same people paths, so the parts per hour compare like for like.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from smartcell.core.robot.kinematics import (DEFAULT_TOOL_LENGTH_M, REACH_M, capsule_point_velocities,
                                             link_capsules)
from smartcell.core.cell.controller import (ARM_ABORT_PREFIX, SHARED_WORKSPACE_HYSTERESIS_M, CellConfig,
                                         CellController, JointSample, inside_workspaces)
from smartcell.core.robot.motions import UR5E_JOINT_LIMITS as LIMITS, MotionLibrary, speed_limited
from smartcell.core.params import load_cell_config
from smartcell.core.safety.monitor import Mode, PeopleObservation, SafetyState, SafetyVerdict
from smartcell.core.safety.pfl import RATED_STOP_REASON, contact_verdict
from smartcell.core.safety.ssm import SeparationInputs
from smartcell.core.safety.stopping import StoppingModel
from smartcell.core.safety.ground_truth import (SPEED_TOLERANCE_MPS, PersonTruth, SsmAudit, StaticZonePolicy,
                                                robot_speed_toward)
from smartcell.core.safety.pipeline import BasePose, SafetyPipeline, check_scanner_field
from smartcell.core.sensors.background import BackgroundError, ScanBackground, read_background_file
from smartcell.core.sensors.people_tracking import PeopleTracker, Pose2D, TrackerConfig
from smartcell.core.sensors.scan_validation import ScanLayout
from smartcell.core.robot.trajectory import JointTrajectoryPlan, ScaleRamp, TrajectoryExecutor
from smartcell.topology import param_registry
from smartcell.twin.human import RUNNING_SPEED_MPS, WALKING_SPEED_MPS, PathBuilder, PersonPath, PersonState
from smartcell.twin.scanner import ScannerConfig, world_scanner
from smartcell.twin.world import (DEFAULT_LAYOUT, Area, CellLayout, CellWorld, connect, default_contact_model,
                                  disconnect)

POLICIES = ('ssm', 'static', 'none')     # 'none': no safety function at all, to show the audit can fail
ROBOT_REACH_M = REACH_M + DEFAULT_TOOL_LENGTH_M     # the arm plus the tool: the hazard zone around the base
STOP_STATES = (SafetyState.PROTECTIVE_STOP, SafetyState.EMERGENCY_STOP, SafetyState.FAULT)
KEPT_CONTACTS = 10          # first contacts above the limit kept per run for the report

# Free floor inside the fence of the default layout where a person can stand (m, world): the strip
# in front of the table and the one on its left; the table and fence leave no room on the other
# two sides (0.15 m gaps). Both strips contain the door's inside point, so a straight line from
# there, or through their overlap, never crosses the table.
FRONT_STRIP = Area(1.2, -0.35, 2.2, 1.7)
LEFT_STRIP = Area(-0.45, 0.8, 2.2, 1.7)
STRIP_OVERLAP = Area(1.3, 0.9, 2.1, 1.6)


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CampaignScenario:
    index: int
    seed: int
    duration_s: float
    paths: tuple[PersonPath, ...]
    dropout_s: tuple[float, float] | None        # scanner silent over [start, end) s
    kind: str                                    # the behaviour (BEHAVIOURS), or two_people
    description: str


# What a person does in a scenario; each scenario draws one per person (equal odds). The last three
# are shared tasks at the assembly station, the cell's declared shared workspace: a scenario has at
# most one person there (two bodies on one spot would merge into one in the scan).
SHARED_TASKS = ('shared_station', 'handover', 'reach_across')
BEHAVIOURS = ('reach_in', 'stop_short', 'pass_by', 'wander', *SHARED_TASKS)


def _visit_target(rng: np.random.Generator, min_distance_m: float = 0.0) -> tuple[tuple[float, float], str]:
    """A place on the free floor next to the robot, on any side a person can reach, at least
    min_distance_m from the robot base, and which side it is (seen from the robot)."""
    for _ in range(100):
        xy = (FRONT_STRIP if rng.random() < 0.5 else LEFT_STRIP).sample(rng)
        if math.hypot(*xy) >= min_distance_m:
            break
    bearing = math.degrees(math.atan2(xy[1], xy[0]))
    side = 'front' if bearing < 30 else 'front-left' if bearing < 60 else 'left' if bearing < 120 else 'back-left'
    return xy, side


def _speed(rng: np.random.Generator) -> tuple[float, str]:
    """Walking 1.0-1.6 m/s, or running at 2.0 m/s (ISO 13855) three times in ten."""
    if rng.random() < 0.3:
        return RUNNING_SPEED_MPS, 'runs'
    return float(rng.uniform(1.0, WALKING_SPEED_MPS)), 'walks'


def _shared_task_path(rng: np.random.Generator, behaviour: str, duration_s: float,
                      layout: CellLayout) -> tuple[PersonPath, str]:
    """One person's path for a shared task at the assembly station, and what it does in words.

    shared_station: works at the station the whole run, standing and reaching toward its work point
    now and then, with a small step sideways at times; handover: from the bench outside through the
    opening to the station, reaches in as if taking a part, back to the bench and its work there,
    repeatedly; reach_across: at the station, steps up to the table edge and reaches across the
    table toward the robot's side (the pick and place points or the base), then stands back."""
    station = layout.station('assembly')
    place = np.asarray(station.person_position_m(), dtype=float)
    work_xy = (station.position_m[0], station.position_m[1])
    table_front_m = layout.table.centre_m[0] + layout.table.size_m[0] / 2
    notes: list[str] = []
    if behaviour == 'handover':
        bench = layout.station('operator_bench')
        bench_xy = bench.person_position_m()
        path = PathBuilder(bench_xy, 0.0, yaw_rad=bench.yaw_rad)
        path.wait(float(rng.uniform(0.5, 4.0)), reach=float(rng.uniform(0.3, 0.8)), face_xy_m=bench.position_m[:2])
        while path.time_s < duration_s:
            speed, gait = _speed(rng)
            spot = (float(place[0] + rng.uniform(-0.05, 0.1)), float(place[1] + rng.uniform(-0.2, 0.2)))
            path.walk_to(layout.door_outside_xy_m, speed).walk_to(layout.door_inside_xy_m, speed)
            path.walk_to(spot, speed)
            path.wait(float(rng.uniform(1.0, 3.5)), reach=float(rng.uniform(0.7, 1.0)), face_xy_m=work_xy)
            back = float(rng.uniform(1.0, WALKING_SPEED_MPS))
            path.walk_to(layout.door_inside_xy_m, back).walk_to(layout.door_outside_xy_m, back)
            path.walk_to(bench_xy, back)
            path.wait(float(rng.uniform(1.0, 6.0)), reach=float(rng.uniform(0.3, 0.8)),
                      face_xy_m=bench.position_m[:2])
            notes.append(f'{gait} {speed:.1f} m/s to the station, takes a part, back to the bench')
        return path.build(), ', '.join(notes)
    start = (float(place[0] + rng.uniform(-0.05, 0.1)), float(place[1] + rng.uniform(-0.2, 0.2)))
    path = PathBuilder(start, 0.0, yaw_rad=math.pi)
    path.wait(float(rng.uniform(0.2, 2.0)), face_xy_m=work_xy)
    while path.time_s < duration_s:
        if behaviour == 'shared_station':
            if rng.random() < 0.3:
                path.walk_to((start[0], float(place[1] + rng.uniform(-0.25, 0.25))), 0.5)
                notes.append('steps sideways')
            reach = float(rng.uniform(0.5, 1.0)) if rng.random() < 0.6 else 0.0
            path.wait(float(rng.uniform(1.0, 5.0)), reach=reach, face_xy_m=work_xy)
            notes.append('reaches to the station' if reach else 'works standing')
            continue
        # reach_across: at the table edge (the torso's front 2-10 cm from it), arms over the table.
        edge = (float(table_front_m + rng.uniform(0.14, 0.22)), float(place[1] + rng.uniform(-0.25, 0.25)))
        aim = 'base' if rng.random() < 0.4 else str(rng.choice(('pick', 'place')))
        target = layout.robot_base_position_m[:2] if aim == 'base' else layout.station(aim).position_m[:2]
        path.walk_to(edge, 0.5)
        path.wait(float(rng.uniform(1.0, 4.0)), reach=float(rng.uniform(0.8, 1.0)), face_xy_m=target)
        path.walk_to(start, 0.5).wait(float(rng.uniform(1.0, 4.0)), face_xy_m=work_xy)
        notes.append(f'reaches across toward the robot\'s {aim}')
    return path.build(), ', '.join(notes)


def _person_path(rng: np.random.Generator, behaviour: str, duration_s: float,
                 layout: CellLayout) -> tuple[PersonPath, str]:
    """One person's path for the scenario, and what it does in words.

    reach_in: into the cell to a place right next to the robot, then stands or reaches toward it;
    stop_short: into the cell and stops 1.5-2.6 m from the robot to watch; pass_by: walks or runs
    past the fence opening outside, to and fro; wander: through the cell from side to side without
    stopping. Between visits a person may leave the cell for a while."""
    if behaviour in SHARED_TASKS:
        return _shared_task_path(rng, behaviour, duration_s, layout)
    robot_xy = layout.robot_base_position_m[:2]
    inside = behaviour in ('reach_in', 'wander') and rng.random() < 0.25
    start = STRIP_OVERLAP.sample(rng) if inside else layout.outside_area.sample(rng)
    path = PathBuilder(start, 0.0, yaw_rad=float(rng.uniform(-math.pi, math.pi)))
    path.wait(float(rng.uniform(0.0, 4.0)))
    notes = ['starts inside'] if inside else []
    while path.time_s < duration_s:
        speed, gait = _speed(rng)
        if behaviour == 'pass_by':
            x = float(rng.uniform(2.7, 3.3))
            ends = (x, float(rng.uniform(-1.8, -0.5))), (x, float(rng.uniform(2.0, 2.9)))
            for end in (ends if rng.random() < 0.5 else ends[::-1]):
                path.walk_to(end, speed)
            path.wait(float(rng.uniform(0.0, 3.0)))
            notes.append(f'{gait} {speed:.1f} m/s past the opening')
            continue
        if not inside:
            path.walk_to(layout.door_outside_xy_m, speed).walk_to(layout.door_inside_xy_m, speed)
            inside = True
        if behaviour == 'wander':
            for _ in range(int(rng.integers(2, 5))):
                target, side = _visit_target(rng)
                path.walk_to(STRIP_OVERLAP.sample(rng), speed).walk_to(target, speed)
                notes.append(f'{gait} {speed:.1f} m/s to the {side}')
        elif behaviour == 'stop_short':
            target, side = _visit_target(rng, min_distance_m=1.5)
            path.walk_to(STRIP_OVERLAP.sample(rng), speed).walk_to(target, speed)
            path.wait(float(rng.uniform(2.0, 8.0)), face_xy_m=robot_xy)
            notes.append(f'{gait} {speed:.1f} m/s to the {side}, stops {math.dist(target, robot_xy):.1f} m away')
        else:
            target, side = _visit_target(rng)
            path.walk_to(STRIP_OVERLAP.sample(rng), speed).walk_to(target, speed)
            reach = float(rng.uniform(0.5, 1.0)) if rng.random() < 0.6 else 0.0
            path.wait(float(rng.uniform(1.0, 6.0)), reach=reach, face_xy_m=robot_xy)
            notes.append(f'{gait} {speed:.1f} m/s to the {side}, ' + ('reaches in' if reach else 'stands'))
        if rng.random() < 0.4:
            path.walk_to(STRIP_OVERLAP.sample(rng), WALKING_SPEED_MPS)
            path.walk_to(layout.door_inside_xy_m, WALKING_SPEED_MPS).walk_to(layout.door_outside_xy_m,
                                                                             WALKING_SPEED_MPS)
            path.walk_to(layout.outside_area.sample(rng), WALKING_SPEED_MPS).wait(float(rng.uniform(1.0, 8.0)))
            inside = False
            notes.append('leaves')
    return path.build(), ', '.join(notes)


def campaign_scenario(index: int, base_seed: int, duration_s: float,
                      layout: CellLayout = DEFAULT_LAYOUT) -> CampaignScenario:
    """Scenario `index` of the campaign seeded `base_seed`: the same arguments give the same scenario."""
    if not duration_s > 0:
        raise ValueError(f'scenario duration must be > 0 s, got {duration_s}')
    seed = int(np.random.SeedSequence([base_seed, index]).generate_state(1)[0])
    rng = np.random.default_rng(seed)
    count = 2 if rng.random() < 0.25 else 1
    behaviours = [str(rng.choice(BEHAVIOURS))]
    if count == 2:
        others = [b for b in BEHAVIOURS if b not in SHARED_TASKS] if behaviours[0] in SHARED_TASKS else BEHAVIOURS
        behaviours.append(str(rng.choice(others)))
    paths, parts = [], []
    for person, person_rng in enumerate(rng.spawn(count)):
        person_path, notes = _person_path(person_rng, behaviours[person], duration_s, layout)
        paths.append(person_path)
        parts.append(f'person {person} ({behaviours[person]}): {notes}')
    dropout = None
    if rng.random() < 0.15:
        start = float(rng.uniform(1.0, max(1.5, duration_s - 2.0)))
        dropout = (start, start + float(rng.uniform(0.1, 1.5)))
        parts.append(f'scanner silent {dropout[0]:.1f}-{dropout[1]:.1f} s')
    if count == 2:
        parts.append('two people: one can hide the other from the scanner')
    kind = '+'.join(behaviours) if count == 1 else 'two_people'
    return CampaignScenario(index, seed, float(duration_s), tuple(paths), dropout, kind, '; '.join(parts))


# ---------------------------------------------------------------------------------------------
# Running one scenario
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CampaignSettings:
    """Everything a scenario run needs from the cell configuration (validated like the nodes do)."""

    supervisor: dict
    scanner: dict
    arm: dict
    twin: dict
    stopping_path: Path
    body_regions_path: Path
    motions_path: Path
    background: ScanBackground | None = None     # the scanner's static background (`background_file`)

    @classmethod
    def from_files(cls, cell_yaml: Path, config_dir: Path) -> 'CampaignSettings':
        """The settings of cell_yaml; other files default to config_dir's. BackgroundError (a
        ValueError) when the scanner's background_file is missing or does not fit the scanner."""
        params = load_cell_config(cell_yaml, param_registry())
        supervisor = dict(params['supervisor'], evidence_log='')
        scanner = dict(params['scanner'])
        return cls(supervisor, scanner, dict(params['arm']), dict(params['twin']),
                   Path(str(supervisor['stopping_file']) or config_dir / 'stopping.yaml'),
                   Path(str(supervisor['body_regions_file']) or config_dir / 'body_regions.yaml'),
                   Path(str(supervisor['motions_file']) or config_dir / 'motions.yaml'),
                   _scanner_background(scanner, config_dir.parent))

    @property
    def tick_s(self) -> float:
        return 1.0 / self.twin['tick_rate_hz']

    def separation_inputs(self) -> SeparationInputs:
        return SeparationInputs(reaction_time_s=self.supervisor['reaction_time_s'],
                                human_speed_floor_mps=self.supervisor['human_speed_floor_mps'])

    def static_field_radius_m(self) -> float:
        """Robot reach plus the ISO 13855 distance S = K T + C the supervisor checks at start-up."""
        return ROBOT_REACH_M + check_scanner_field(self.supervisor, StoppingModel.from_yaml(self.stopping_path))


def _scanner_background(scanner: dict, share_root: Path) -> ScanBackground | None:
    """The scanner node's background (smartcell.nodes.scanner.load_background, without rclpy): the
    `background_file` parameter, a relative path in the share directory (share_root, which holds
    config/), checked against the scanner's frame, mount and scan_layout; None when empty."""
    path_text = str(scanner['background_file'])
    if not path_text:
        return None
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        path = share_root / path
    background = read_background_file(path)
    try:
        background.check_fits(scanner['scanner_frame'], scanner['scanner_pose_xy_yaw'],
                              ScanLayout.from_param(scanner['scan_layout']))
    except BackgroundError as exc:
        raise BackgroundError(f'background file {path}: {exc}') from None
    return background


@dataclass
class ScenarioResult:
    index: int
    kind: str
    policy: str
    duration_s: float
    parts: float                     # finished pick-place cycles, fractional (segments done / segments per cycle)
    violations: int                  # SsmAudit violations (moving + stopping)
    contacts: int                    # ticks x region-link pairs in contact
    contacts_above_limit: int        # of those, the robot's share above the region's quasi-static limit
    stops: int                       # transitions into a stop
    stopped_time_s: float
    approach_samples: int
    worst_margin_m: float
    min_separation_m: float
    wall_s: float
    examples: list[dict] = field(default_factory=list)
    collaborative_time_s: float = 0.0  # in COLLABORATIVE mode (PFL caps; S_p not judged, contacts are)
    pfl_overspeed_samples: int = 0     # collaborative ticks with a robot point faster than the PFL cap
    contact_examples: list[dict] = field(default_factory=list)   # the first contacts above the limit
    rated_force_stops: int = 0         # contacts on which the simulated cobot's own force limit held the arm
    peak_contact_force_n: float = 0.0  # the largest contact force a person met (Annex A model), N
    peak_robot_force_n: float = 0.0    # the largest robot share of a contact force, N
    contacts_above_limit_by_person: int = 0   # above the limit only by the person's own motion into the arm
    ghost_ticks: int = 0               # scans with more people tracked than there are (a ghost stops the arm)
    scan_rate_hz: float = 30.0         # scans (ticks) per simulated s

    @property
    def parts_per_hour(self) -> float:
        return self.parts / self.duration_s * 3600.0

    def as_dict(self) -> dict:
        values = asdict(self)
        values['parts_per_hour'] = self.parts_per_hour
        return values


class _RulePipeline(SafetyPipeline):
    """The classic alternatives SSM is compared with, behind the SafetyPipeline interface so that the
    very same CellController runs them: a static ISO 13855 stop zone, or no safety function at all
    ('none', to show the audit can fail). Contacts are still judged by the monitor: above the limit
    the emergency stop latches, as with SSM."""

    def __init__(self, name: str, settings: 'CampaignSettings', monitor, base: BasePose) -> None:
        super().__init__(monitor, base)
        self._name = name
        xyz_yaw = settings.supervisor['robot_base_xyz_yaw']
        self._static = StaticZonePolicy((xyz_yaw[0], xyz_yaw[1]), settings.static_field_radius_m(),
                                        settings.supervisor['resume_hold_s'], settings.supervisor['people_timeout_s'])
        self._scale = 0.0
        self._verdict: SafetyVerdict | None = None

    @property
    def last_verdict(self) -> SafetyVerdict | None:
        return self._verdict

    def evaluate(self, people, joints, now_s: float) -> SafetyVerdict:
        if self._name == 'static':
            self._scale = self._static.update(np.asarray(people.positions_m)[:, :2], people.stamp_s)
        else:
            self._scale = 1.0
        return self._rule_verdict(now_s)

    def on_silence(self, now_s: float) -> SafetyVerdict | None:
        scale = self._static.on_silence(now_s) if self._name == 'static' else None
        if scale is None:
            return None
        self._scale = scale
        return self._rule_verdict(now_s)

    def _rule_verdict(self, now_s: float) -> SafetyVerdict:
        latched = self._monitor.last_verdict is not None and \
            self._monitor.last_verdict.state is SafetyState.EMERGENCY_STOP
        scale = 0.0 if latched else self._scale
        state = SafetyState.EMERGENCY_STOP if latched else \
            SafetyState.PROTECTIVE_STOP if scale <= 0.0 else SafetyState.NORMAL
        self._verdict = SafetyVerdict(
            stamp_s=now_s, mode=Mode.AUTOMATIC, state=state, zone='protective' if scale <= 0.0 else 'clear',
            separation_m=math.inf, protective_distance_m=math.nan, allowed_speed_mps=math.inf, human_speed_mps=0.0,
            robot_speed_toward_human_mps=0.0, speed_scale=scale,
            reason='' if state is SafetyState.NORMAL else f'{self._name} rule', closest_person_index=-1)
        return self._record(self._verdict)


def _pipeline(policy_name: str, settings: 'CampaignSettings') -> SafetyPipeline:
    if policy_name not in POLICIES:
        raise ValueError(f'unknown policy {policy_name!r}; accepted: {", ".join(POLICIES)}')
    pipeline = SafetyPipeline.from_params(settings.supervisor, settings.stopping_path, settings.body_regions_path)
    if policy_name == 'ssm':
        return pipeline
    return _RulePipeline(policy_name, settings, pipeline._monitor, pipeline.base)


def _no_recipes(job: str):
    raise FileNotFoundError(f'the campaign runs the pick-and-place cycle, not job {job!r}')


@contextlib.contextmanager
def _native_stdout_silenced():
    """PyBullet's C++ side prints URDF warnings on fd 1 for every world; a campaign builds thousands."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, 'w') as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _in_shared_workspace(person: PersonState, regions_xyr: np.ndarray) -> bool:
    """Whether the person truly stands in a shared workspace (x, y, radius m rows), its edge grown by
    SHARED_WORKSPACE_HYSTERESIS_M: the controller lets a person out at the edge by their track, and
    this allows for the track's lag and noise against the ground truth."""
    return bool(inside_workspaces((person.x_m, person.y_m), regions_xyr, SHARED_WORKSPACE_HYSTERESIS_M)[0])


def _tracker(settings: CampaignSettings, frame) -> PeopleTracker:
    """The scanner node's tracker for the twin's scans: its config and background. The node's scan
    gate rejects every scan of another beam layout than the background's (people withheld, the arm
    stops), so a campaign with such a pair would measure nothing: it is an error here."""
    layout = ScanLayout(float(frame.angle_min_rad), float(frame.angle_increment_rad), len(frame.ranges),
                        float(frame.range_min_m), float(frame.range_max_m))
    background = settings.background
    if background is not None and not background.layout.matches(layout):
        raise BackgroundError(f'the twin scanner\'s beam layout {layout} is not the background\'s '
                              f'{background.layout}: the scanner node would reject every scan')
    return PeopleTracker(TrackerConfig.from_params(settings.scanner), Pose2D(*settings.scanner['scanner_pose_xy_yaw']),
                         layout.geometry(), background)


def run_scenario(scenario: CampaignScenario, policy_name: str, settings: CampaignSettings,
                 layout: CellLayout = DEFAULT_LAYOUT) -> ScenarioResult:
    """Run one scenario under one policy; deterministic for the same scenario and settings."""
    wall_start = time.perf_counter()
    dt = settings.tick_s
    lag = settings.twin['lockstep_lag_ticks']
    with _native_stdout_silenced():
        client = connect()
    try:
        contact_model = default_contact_model(settings.twin['rated_force_limit_n'], settings.supervisor['payload_kg'],
                                              settings.body_regions_path)
        with _native_stdout_silenced():
            world = CellWorld(client, layout, seed=scenario.seed, people=scenario.paths,
                              physics_rate_hz=settings.twin['physics_rate_hz'],
                              initial_q_rad=tuple(settings.arm['initial_positions_rad']), contact_model=contact_model)
        scanner = world_scanner(world, ScannerConfig(rate_hz=settings.twin['tick_rate_hz'],
                                                     noise_std_m=settings.twin['scan_noise_m']))
        pipeline = _pipeline(policy_name, settings)
        # The cell's own controller, as the supervisor node runs it in lockstep simulation.
        controller = CellController(CellConfig.from_params({**settings.supervisor, 'auto_start': True,
                                                            'lockstep': True, 'job': ''}),
                                    pipeline, MotionLibrary.from_yaml(settings.motions_path, LIMITS),
                                    load_recipe=_no_recipes)
        body = contact_model.body
        stopping = StoppingModel.from_yaml(settings.stopping_path)
        # The stopping data at the scale the arm applies: scale 1 is at most max_joint_speed_fraction
        # of the limits (the arm refuses anything faster).
        audit = SsmAudit(settings.separation_inputs(),
                         stopping.steps(stopping.payload_fraction(settings.supervisor['payload_kg']),
                                        settings.arm['max_joint_speed_fraction']))
        tracker: PeopleTracker | None = None
        q0 = np.asarray(settings.arm['initial_positions_rad'], dtype=float)
        executor = TrajectoryExecutor(speed_limited(LIMITS, settings.arm['max_joint_speed_fraction']),
                                      ScaleRamp(settings.arm['scale_ramp_down_per_s'],
                                                settings.arm['scale_ramp_up_per_s']), q0)
        base = BasePose.from_list(settings.supervisor['robot_base_xyz_yaw'])
        rotation, offset = base.rotation(), np.array([base.x_m, base.y_m, base.z_m])

        commands: deque = deque()
        loaded_motion, robot_stopped = '', False
        shared_regions = np.asarray(controller.config.collaborative_regions_xyr, dtype=float).reshape(-1, 3)
        scale, stopped = 0.0, True
        collaborative, pfl_cap_mps = False, math.inf
        result = ScenarioResult(scenario.index, scenario.kind, policy_name, scenario.duration_s, 0.0, 0, 0, 0, 0, 0.0,
                                0, math.inf, math.inf, 0.0, scan_rate_hz=1.0 / dt)
        ticks = int(round(scenario.duration_s / dt))
        for tick in range(ticks):
            t = tick * dt
            q, qd, _ = world.joint_state()
            # The rule the arm's present motion was commanded under: the verdict in force before this
            # tick's. A switch out of collaborative mode finds the person within S_p of an arm moving at
            # the PFL cap, as PFL allows; the stop it commands is judged by the stopping model.
            motion_collaborative, motion_cap_mps = collaborative, pfl_cap_mps
            # -- scanner node, then the supervisor's controller ------------------------------------
            dropout = scenario.dropout_s is not None and scenario.dropout_s[0] <= t < scenario.dropout_s[1]
            if dropout:
                output = controller.on_silence(t)
            else:
                frame = scanner.scan(t)
                if tracker is None:
                    tracker = _tracker(settings, frame)
                tracks = tracker.update(np.asarray(frame.ranges, dtype=float), t)
                result.ghost_ticks += len(tracks) > len(scenario.paths)
                people_xyz = np.array([(*track.position_m, 0.0) for track in tracks]).reshape(-1, 3)
                velocities = np.array([track.velocity_mps for track in tracks]).reshape(-1, 2)
                covariances = np.array([track.velocity_cov_matrix for track in tracks]).reshape(-1, 2, 2)
                output = controller.on_cycle(PeopleObservation(t, 'world', people_xyz, velocities, covariances),
                                             JointSample(t, q, qd), t)
            if output.verdict is not None:
                scale = output.verdict.speed_scale if output.verdict.state not in STOP_STATES else 0.0
                collaborative = output.verdict.mode is Mode.COLLABORATIVE
                # The PFL cap binds a moving arm; a stop is judged by the stopping model instead.
                pfl_cap_mps = output.verdict.allowed_speed_mps if collaborative and scale > 0.0 else math.inf
            if output.motion is not None:
                executor.load(JointTrajectoryPlan(output.motion.joint_names, np.array([output.motion.duration_s]),
                                                  np.asarray(output.motion.positions_rad)[None, :]), q)
                loaded_motion, robot_stopped = output.motion.motion_id, False
            elif robot_stopped:
                executor.cancel(q)      # as the arm node: where the arm stands, until a motion comes again
            now_stopped = scale <= 0.0
            if now_stopped and not stopped:
                result.stops += 1
            stopped = now_stopped
            if stopped:
                result.stopped_time_s += dt
            result.parts = controller.cycle_progress
            # -- ground truth at t, against this tick's decision ------------------------------------
            points = (link_capsules(q) @ rotation.T + offset).reshape(-1, 3)
            velocities = (capsule_point_velocities(q, qd) @ rotation.T).reshape(-1, 3)
            truths = []
            for index, path in enumerate(scenario.paths):
                separation = world.min_person_robot_distance(person_index=index)
                result.min_separation_m = min(result.min_separation_m, separation)
                truths.append(PersonTruth(separation, path.state_at(t).speed_mps,
                                          robot_speed_toward(world.people[index].segments_m, points, velocities)))
            fastest_mps = float(np.max(np.linalg.norm(velocities, axis=1)))
            if collaborative:
                result.collaborative_time_s += dt
            if motion_collaborative:
                # Power and force limiting (ISO/TS 15066 5.5.5) replaces separation for the people who are
                # truly in a shared workspace (ground truth, not the tracks the controller chose by): they
                # may be within S_p, while every contact is judged against its region's limit below and the
                # arm's speed against the PFL cap (each capsule point, as the monitor caps it). Anybody
                # else, e.g. hidden behind the operator from the scanner, is still judged against S_p.
                result.pfl_overspeed_samples += fastest_mps > motion_cap_mps + SPEED_TOLERANCE_MPS
                truths = [truth for truth, path in zip(truths, scenario.paths)
                          if not _in_shared_workspace(path.state_at(t), shared_regions)]
            audit.sample(t, truths, fastest_mps, executor.applied_scale, scale)
            # -- arm node and physics (lockstep lag) ----------------------------------------------
            executor.set_speed_limit(scale)
            commands.append(executor.step(dt if tick else 0.0))
            if len(commands) > lag:
                world.set_joint_targets(*commands.popleft())
            world.step(dt)
            # -- the arm node: the cobot's own force limit stopped the arm (a UR protective stop): drop
            # the motion and hold where the arm stands; the cell plans it again from there.
            if world.rated_force_stop and not robot_stopped:
                robot_stopped = True
                executor.cancel(world.joint_state()[0])
                commands.clear()
                if loaded_motion:
                    controller.on_motion_result(loaded_motion, False, f'{ARM_ABORT_PREFIX}{RATED_STOP_REASON}', t + dt)
                    loaded_motion = ''
            touching = world.person_robot_contacts()
            contacts = [(f'{c.person}/{c.region} on {c.robot_link}', c.body_regions, c.normal_force_n)
                        for c in touching]
            if contacts:     # ground truth: each contact against its region's quasi-static limit
                result.contacts += len(contacts)
                result.rated_force_stops += sum(c.rated_force_stop for c in touching)
                for contact in touching:
                    # The robot's share is what PFL limits; the force the person met (their own swing
                    # included) is reported beside it, and is what the cell reacts to.
                    region = body.most_restrictive(contact.body_regions)
                    result.peak_contact_force_n = max(result.peak_contact_force_n, contact.normal_force_n)
                    result.peak_robot_force_n = max(result.peak_robot_force_n, contact.robot_force_n)
                    verdict = contact_verdict(region, contact.robot_force_n, False)
                    if verdict.within_limit:
                        result.contacts_above_limit_by_person += \
                            not contact_verdict(region, contact.normal_force_n, False).within_limit
                        continue
                    result.contacts_above_limit += 1
                    if len(result.contact_examples) < KEPT_CONTACTS:
                        result.contact_examples.append({
                            'time_s': round(t + dt, 4), 'contact': f'{contact.person}/{contact.region} on '
                            f'{contact.robot_link}', 'robot_force_n': round(contact.robot_force_n, 1),
                            'force_n': round(contact.normal_force_n, 1), 'limit_n': verdict.limit_N,
                            'mode': 'collaborative' if collaborative else 'automatic',
                            'robot_speed_mps': round(fastest_mps, 3),
                            'closing_speed_mps': round(contact.closing_speed_mps, 3)})
                output = controller.on_contacts(contacts, t + dt)     # the cell's own reaction
                if output.verdict is not None and output.verdict.state in STOP_STATES:
                    scale = 0.0
        result.violations = audit.violations
        result.approach_samples = audit.approach_samples
        result.worst_margin_m = audit.worst_margin_m
        result.examples = [v.as_dict() for v in audit.kept]
        controller.close()
        world.close()
    finally:
        disconnect(client)
    result.wall_s = time.perf_counter() - wall_start
    return result
