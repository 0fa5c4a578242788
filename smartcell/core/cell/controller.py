"""The cell, composed once and free of ROS: safety, state machine, job runner, motions, KPIs, orders.

The supervisor node, `smartcell campaign` and the tests all drive this one object. Inputs are
typed observations (people, joint samples, motion results, operator acknowledgements, requests,
orders, fatigue, contacts, the clock); every call returns a frozen `CellOutput` saying what to
publish: the safety verdict, a motion command, the new cell state, events, display payloads.

Side effects of the state machine go through its transition table plus the callbacks registered
here (`_ON_ENTER`, `_ON_EVENT`), never through per-call special cases, so e.g. every way into IDLE
(stop, e-stop + reset, job done) ends the job, restores the operator's chosen safety mode and
clears the robot's intent and the operator's steps.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from smartcell.core.cell.authorisation import MODE_PREFIX, Operator, OperatorPolicy
from smartcell.core.cell.orders import OrderBook, OrderError
from smartcell.core.cell.states import CellStateMachine, Event, IllegalTransition, State, Transition
from smartcell.core.params import ConfigError
from smartcell.core.robot.motions import (ARRIVAL_TOLERANCE_RAD, MotionLibrary, arrived, motions_for_step, segment_plan,
                                         transit_poses)
from smartcell.core.robot.motions import UR5E_JOINT_LIMITS as LIMITS
from smartcell.core.safety.monitor import Mode, PeopleObservation, SafetyEvent, SafetyState, SafetyVerdict
from smartcell.core.safety.pipeline import CellKpis, SafetyPipeline, person_near, tool_tip_world
from smartcell.core.tasks.job_runner import (PERSON_REACH_M, ShiftConfig, ShiftError, ShiftKpis, ShiftRunner,
                                             parse_station_positions)
from smartcell.core.tasks.recipe import BOTH, HUMAN, ROBOT, Recipe
from smartcell.core.tasks.scheduling import Scheduler

# Wall-clock cap of one plan outside lockstep: planning runs in the safety cycle's thread, so a batch's
# plan may delay one verdict by about this much (a third of a 30 Hz period). In lockstep the plan is
# bounded by search counts instead, so runs repeat exactly.
PLAN_TIME_BUDGET_S = 0.01
HANDOVER_POSE = 'present'        # motions.yaml configuration that holds the part out to the person
PARK_POSE = 'home'               # where an arm with no step waits: turned away from the shared station
STOP_STATES = (SafetyState.PROTECTIVE_STOP, SafetyState.EMERGENCY_STOP, SafetyState.FAULT)
# Requests the operator (cell/* services, OPC UA) may send.
REQUESTS = {'start': Event.START, 'stop': Event.STOP, 'pause': Event.PAUSE, 'resume': Event.RESUME,
            'reset': Event.RESET, 'emergency_stop': Event.EMERGENCY_STOP}


class Level(IntEnum):
    """diagnostic_msgs/DiagnosticStatus levels, free of ROS."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


SAFETY_LEVEL = {SafetyState.NORMAL: Level.OK, SafetyState.REDUCED: Level.OK,
                SafetyState.PROTECTIVE_STOP: Level.WARN, SafetyState.EMERGENCY_STOP: Level.ERROR,
                SafetyState.FAULT: Level.ERROR}
CELL_LEVEL = {State.FAULT: Level.ERROR, State.EMERGENCY_STOP: Level.ERROR, State.PROTECTIVE_STOP: Level.WARN}


ARM_ABORT_PREFIX = 'aborted: '   # the arm's result for a motion it dropped on a clock jump (nodes/arm.py)
CLOCK_JUMP_S = 1.0            # people stamps this far behind the newest: the time source restarted, s
# A person enters a shared workspace this far inside its edge and leaves it at the edge: the noise at
# the edge does not flip the mode, and tracking lag errs on the safe side (SSM back early). The campaign's
# audit spares a person up to this far outside the edge (ground truth against the tracked position).
SHARED_WORKSPACE_HYSTERESIS_M = 0.25
INPUT_ERROR_HOLD_S = 5.0      # a refused input stays ERROR on /diagnostics this long after the last one, s


def safety_level(verdict: SafetyVerdict | None) -> Level:
    """The diagnostic level of a verdict (no verdict yet: WARN)."""
    return SAFETY_LEVEL.get(verdict.state, Level.ERROR) if verdict is not None else Level.WARN


class JointSample(NamedTuple):
    """The arm's joint state at one stamp, in the arm's joint order."""

    stamp_s: float
    positions_rad: np.ndarray
    velocities_radps: np.ndarray


@dataclass(frozen=True)
class CellConfig:
    """The supervisor's parameters the controller uses (SafetyPipeline takes the safety ones)."""

    cell_id: str = 'cell-1'
    lockstep: bool = False
    auto_start: bool = False
    mode: Mode = Mode.AUTOMATIC
    job: str = ''                       # recipe name or path; '' runs the pick-and-place cycle
    units: int = 3
    max_order_units: int = 100000
    plan_horizon_units: int = 3         # units planned at once: bounds the work of one call
    cycle_waypoints: str = 'pick_place'
    nominal_speed_fraction: float = 0.5
    handover_presence_m: float = 1.2
    late_threshold_s: float = 15.0
    fatigue_high: float = 0.7
    fatigue_low: float = 0.5
    future_tolerance_s: float = 0.07    # people stamps this far ahead of the clock are refused
    person_absent_s: float = 30.0       # nobody tracked this long during a job: the person is away
    # Shared workspaces (x, y, radius m, world): a person working there is the normal case, not an
    # intrusion. While every tracked person is inside one during a job, the cell runs in
    # COLLABORATIVE mode (PFL speed caps, ISO/TS 15066 5.5.5); anyone elsewhere means SSM again.
    collaborative_regions_xyr: tuple[float, ...] = ()
    # Stations (name, x m, y m, world): the job runner keeps robot steps out of a tracked person's
    # reach (person_reach_m) while it has other robot work (docs/tasks.md, section 4).
    station_positions_xy: tuple[tuple[str, float, float], ...] = ()
    person_reach_m: float = PERSON_REACH_M
    person_walking_speed_mps: float = 1.6   # the scheduler plans the person's walks between stations at it

    @classmethod
    def from_params(cls, values: Mapping[str, Any]) -> 'CellConfig':
        names = {f for f in cls.__dataclass_fields__}
        picked = {k: v for k, v in values.items() if k in names}
        if 'mode' in picked:
            picked['mode'] = Mode(picked['mode'])
        if 'collaborative_regions_xyr' in picked:
            values_m = tuple(float(v) for v in picked['collaborative_regions_xyr'])
            if len(values_m) % 3 or not all(math.isfinite(v) for v in values_m) or \
                    any(r < 0.0 for r in values_m[2::3]):
                raise ConfigError(f'collaborative_regions_xyr must list x, y, radius (m) per region, finite, with '
                                  f'radius >= 0 (0: no region), got {list(values_m)}')
            triples = [values_m[i:i + 3] for i in range(0, len(values_m), 3)]
            picked['collaborative_regions_xyr'] = tuple(v for t in triples if t[2] > 0.0 for v in t)
        if 'station_positions_xy' in picked:
            picked['station_positions_xy'] = parse_station_positions(picked['station_positions_xy'])
        if 'future_tolerance_s' not in picked and 'people_timeout_s' in values:
            picked['future_tolerance_s'] = float(values['people_timeout_s'])
        return cls(**picked)


@dataclass(frozen=True)
class MotionCommand:
    """One segment for the arm: go to positions_rad, arriving duration_s after the start."""

    motion_id: str
    joint_names: tuple[str, ...]
    positions_rad: tuple[float, ...]
    duration_s: float


@dataclass(frozen=True)
class CellEvent:
    """One entry of cell/events: a per-cell sequence number, the type, the time and its fields."""

    seq: int
    type: str
    stamp_s: float
    fields: Mapping[str, Any]

    def as_record(self, cell_id: str, event_id: str) -> dict[str, Any]:
        return {'event_id': event_id, 'cell_id': cell_id, 'seq': self.seq, 'type': self.type,
                'stamp': self.stamp_s, **self.fields}


@dataclass(frozen=True)
class DiagnosticReport:
    name: str
    level: Level
    message: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class CellOutput:
    """What one call changed. Empty fields: nothing to publish for them."""

    verdict: SafetyVerdict | None = None
    verdict_stamp_s: float | None = None       # the people data's stamp (None: now)
    motion: MotionCommand | None = None
    state: State | None = None                 # the new cell state, when it changed
    events: tuple[CellEvent, ...] = ()
    displays: tuple[tuple[str, Mapping[str, Any]], ...] = ()   # (topic, payload) changed
    success: bool = True                       # for requests: accepted?
    message: str = ''                          # for requests: the answer


@dataclass
class _Pending:
    """What the current call has produced so far."""

    verdict: SafetyVerdict | None = None
    verdict_stamp_s: float | None = None
    motion: MotionCommand | None = None
    state_changed: bool = False
    events: list[CellEvent] = field(default_factory=list)
    displays: dict[str, Mapping[str, Any]] = field(default_factory=dict)


class CellController:
    """Runs the cell: who may move how fast, what the robot does next, what the cell reports."""

    def __init__(self, config: CellConfig, safety: SafetyPipeline, motions: MotionLibrary,
                 load_recipe: Callable[[str], Recipe], now_s: float = 0.0, orders: OrderBook | None = None,
                 authorisation: OperatorPolicy | None = None,
                 last_seq: int = 0) -> None:
        """`last_seq`: the newest event seq already issued (the event journal's after a restart), so
        `seq` continues without a repeat or a gap."""
        self.config = config
        self.safety = safety
        self.motions = motions
        self._load_recipe_file = load_recipe
        # Recipes checked once per job name: an order's validation and its start parse no file in the
        # safety cycle (a changed recipe file is read at the next start of the node).
        self._recipes: dict[str, Recipe] = {}
        self.cell = CellStateMachine(now_s)
        self.cell.add_callback(self._on_transition)
        # None: every request open (in-process composition such as the campaign, no remote callers).
        self.authorisation = authorisation
        if authorisation is not None:
            self.cell.add_callback(authorisation.observe)
        self._cycle = motions.cycle(config.cycle_waypoints)
        self._waiting_poses: dict[str, str | None] = {}   # a step's first pose -> where to wait for it
        # (job, step id) -> the person's own work at the step, s, as the recipe says (a handover's planned
        # time also holds the arm's approach, which the person spends waiting, not working).
        self._person_work_s: dict[tuple[str, str], float] = {}
        self._cycle_index = 0
        self._default_recipe = self.load_job(config.job) if config.job else None
        self.orders = orders if orders is not None else OrderBook(max_units=config.max_order_units)
        self._base_mode = config.mode                  # the mode the operator chose
        self._runner: ShiftRunner | None = None
        self._job: _Job | None = None
        self._reported_job: _Job | None = None         # the last job, for the KPIs after it ended
        self._robot_step: tuple[int, str, tuple[str, ...]] | None = None
        self._human_step: tuple[int, str] | None = None
        self._fatigue: float | None = None
        self._pending_motion = ''                     # id of the segment sent and not finished
        # (unit, step, pose) when the pending segment is the robot step's next pose; None for a segment
        # of no step (waiting pose, park): its arrival must not count as the step's progress.
        self._pending_step_pose: tuple[int, str, str] | None = None
        self._pending_target = np.zeros(len(LIMITS.names))
        self._last_motion = ''
        self._motion_count = 0
        self._safety_stopped = False
        self._people_xy = np.empty((0, 2))
        self._joints: JointSample | None = None
        self._handover_xy: np.ndarray | None = None
        self._handover_note = ''
        self._intent: dict[str, Any] = {}
        self._next_human: dict[str, Any] | None = None
        self._last_people_s = -math.inf
        self._nobody_since_s: float | None = None     # presence sensing for the job runner
        self._person_away = False
        self._human_step_end_s = -math.inf            # nominal end of the person's current step, s
        self._shared = False                          # everyone was inside a shared workspace last cycle
        self._input_error = ''                        # the latest refused input, for /diagnostics
        self._input_error_s = -math.inf
        self._now_s = now_s
        self._seq = int(last_seq)
        self._follow_ups: list[tuple[Event, str]] = []
        self._out = _Pending()
        self._out_message = ''
        self.kpis = CellKpis()

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_params(cls, values: Mapping[str, Any], stopping_path: Any, body_regions_path: Any, motions_path: Any,
                    load_recipe: Callable[[str], Recipe], now_s: float = 0.0,
                    orders: OrderBook | None = None, evidence_key: bytes | None = None,
                    authorisation: OperatorPolicy | None = None,
                    last_seq: int = 0) -> 'CellController':
        safety = SafetyPipeline.from_params(dict(values), stopping_path, body_regions_path, evidence_key)
        return cls(CellConfig.from_params(values), safety, MotionLibrary.from_yaml(motions_path, LIMITS),
                   load_recipe, now_s, orders, authorisation, last_seq=last_seq)

    def load_job(self, job: str) -> Recipe:
        """The recipe named `job`, checked (every robot-capable step has arm configurations) and timed
        by the arm's motions (_timed_by_motions): the recipe the cell plans with."""
        recipe = self._recipes.get(job)
        if recipe is None:
            recipe = self._timed_by_motions(self._load_recipe_file(job))
            self._recipes[job] = recipe
        return recipe

    def _timed_by_motions(self, recipe: Recipe) -> Recipe:
        """The recipe with the durations the arm's motions need, at the nominal speed: a robot step
        lasts at least its own motions; a handover lasts the arm's approach (from where it waits for
        the handover, _wait_for_next_step, into the handover pose), which the person waits through,
        plus the recipe's duration or the arm's motions after the handover pose, whichever is longer.
        Raises ConfigError when a robot-capable step lacks arm configurations."""
        steps = []
        for step in recipe.steps:
            for executor in (HUMAN, BOTH):
                if executor in step.executors:
                    self._person_work_s[(recipe.job, step.id)] = step.duration_s(executor)
            if step.actor == HUMAN:
                steps.append(step)
                continue
            poses = motions_for_step(step.station, step.kind, self.motions)
            q = [np.asarray(self.motions.configurations[name], dtype=float) for name in poses]
            legs = [self._motion_time_s(a, b) for a, b in zip(q, q[1:])]
            durations = []
            for executor, duration_s in step.durations_s:
                if executor == BOTH:
                    waiting = self._waiting_pose(poses[0])
                    at_handover = poses.index(HANDOVER_POSE) if HANDOVER_POSE in poses else len(poses) - 1
                    approach_s = sum(legs[:at_handover]) + (0.0 if waiting in (None, poses[0]) else self._motion_time_s(
                        np.asarray(self.motions.configurations[waiting], dtype=float), q[0]))
                    duration_s = approach_s + max(duration_s, sum(legs[at_handover:]))
                elif executor == ROBOT:
                    duration_s = max(duration_s, sum(legs))
                durations.append((executor, duration_s))
            steps.append(dataclasses.replace(step, durations_s=tuple(durations)))
        return dataclasses.replace(recipe, steps=tuple(steps))

    # -- state -------------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self.cell.state

    @property
    def base_mode(self) -> Mode:
        return self._base_mode

    @property
    def last_motion(self) -> str:
        return self._last_motion

    @property
    def intent(self) -> Mapping[str, Any]:
        return dict(self._intent)

    @property
    def cycle_progress(self) -> float:
        """Pick-and-place cycles done, fractional (segments done / segments per cycle)."""
        return self._cycle_index / len(self._cycle)

    @property
    def runner(self) -> ShiftRunner | None:
        return self._runner

    @property
    def human_step(self) -> tuple[int, str] | None:
        """(unit, step id) shown to the person on operator/current_step; None when nothing is."""
        return self._human_step

    @property
    def robot_step(self) -> tuple[int, str] | None:
        """(unit, step id) the arm is doing; None when it has no step (waiting or parking)."""
        return None if self._robot_step is None else self._robot_step[:2]

    # -- inputs ------------------------------------------------------------------------------------
    def on_joint_state(self, joints: JointSample | None) -> None:
        """The latest joint state (hardware: the cycle uses the newest one there is)."""
        self._joints = joints

    def on_cycle(self, people: PeopleObservation, joints: JointSample | None, now_s: float) -> CellOutput:
        """One safety cycle: people seen at people.stamp_s against the robot at `joints`."""
        self._begin(now_s)
        stamp = people.stamp_s
        if math.isfinite(stamp) and stamp > now_s + self.config.future_tolerance_s:
            # A stamp from the future must never become the newest: it would hide later real data.
            self._verdict(self.safety.on_silence(now_s) or self.safety.last_verdict)
            return self._end()
        if math.isfinite(stamp) and stamp < self._last_people_s - CLOCK_JUMP_S:
            # Time went backwards (a restarted twin resets sim time to 0): everything timed on the old
            # timeline is void. Stop with the reason and judge the new timeline from scratch.
            reason = (f'clock jumped back from {self._last_people_s:.3f} s to {stamp:.3f} s (restarted time '
                      'source): stopped, re-armed on the new time')
            self._emit('clock_jump', previous_s=self._last_people_s, now_s=stamp)
            self._last_people_s = stamp
            verdict = self.safety.clock_jumped(now_s, reason)
            self._verdict(verdict)
            self._react_to_safety(verdict)
            self._pending_motion = ''       # a motion planned on the old timeline is re-planned when clear
            return self._end()
        if math.isfinite(stamp) and stamp <= self._last_people_s:
            if stamp == self._last_people_s:                    # a repeated tick: same answer, no new state
                self._verdict(self.safety.last_verdict, stamp)
            return self._end()
        if math.isfinite(stamp):
            self._last_people_s = stamp
        if joints is not None:
            self._joints = joints
        positions = np.asarray(people.positions_m, dtype=float).reshape(-1, 3)
        self._people_xy = positions[:, :2]
        if self._runner is not None:
            self._runner.on_person_positions(self._people_xy, now_s)
        self._sense_presence(len(positions) > 0, now_s)
        verdict = self.safety.evaluate(people, None if joints is None else tuple(joints), now_s)
        self._react_to_safety(verdict)
        self.kpis.account(verdict.speed_scale, verdict.separation_m, stamp if math.isfinite(stamp) else now_s,
                          self.cell.state in (State.RUNNING, State.PROTECTIVE_STOP))
        if self.config.lockstep:
            self._check_arrival(joints)
        self._settle_stop()
        self._drive_robot(joints)
        self._verdict(verdict, stamp if math.isfinite(stamp) else None)
        return self._end()

    def on_silence(self, now_s: float) -> CellOutput:
        """Watchdog: people data silent too long is a protective stop."""
        self._begin(now_s)
        verdict = self.safety.on_silence(now_s)
        if verdict is not None:
            self._verdict(verdict)
            self._react_to_safety(verdict)
            self._settle_stop()
        return self._end()

    def on_motion_result(self, motion_id: str, ok: bool, message: str, now_s: float) -> CellOutput:
        """The arm's answer about a motion; in lockstep only refusals count (arrival is judged here)."""
        self._begin(now_s)
        if motion_id == self._pending_motion:
            if not ok and message.startswith(ARM_ABORT_PREFIX):
                # The arm dropped the motion it was running because its inputs went back in time (a
                # restarted twin or clock): it holds where it is; the motion is planned again from the
                # actual position once the safety verdict lets it move. An interruption, not a fault.
                self._pending_motion = ''
                self._emit('motion_aborted', motion=motion_id, reason=message)
            elif not ok:
                self._pending_motion = ''
                self._emit('fault', reason=f'arm refused motion: {message}')
                self._handle(Event.FAULT_DETECTED, message)
            elif not self.config.lockstep:
                self._motion_done()
                self._settle_stop()
        return self._end()

    def on_contacts(self, contacts: Sequence[tuple[str, Sequence[str], float]], now_s: float,
                    unreadable: str = '') -> CellOutput:
        """Measured contacts (source, body regions, normal force N), judged against the quasi-static
        limits; above one (or an unreadable report) an emergency stop, within them a protective stop
        until the person and the arm part."""
        self._begin(now_s)
        if unreadable:
            self.safety.emergency_stop(now_s, f'unreadable contact report: {unreadable}')
            self._emergency(self.safety.last_verdict)
        touching = []
        for source, regions, force_n in contacts:
            try:
                contact = self.safety.report_contact(now_s, list(regions), float(force_n), transient=False,
                                                     source=source)
                within = contact.within_limit
            except (ValueError, TypeError) as exc:     # ConfigError is a ValueError: unknown region
                self.safety.emergency_stop(now_s, f'unreadable contact report {source!r}: {exc}')
                within = False
            self._safety_events()
            if not within:
                self._emergency(self.safety.last_verdict)
            else:
                touching.append(f'{source} ({float(force_n):.0f} N)')
        if touching and self.safety.last_verdict is not None and \
                self.safety.last_verdict.state is not SafetyState.EMERGENCY_STOP:
            # Within its limit, a touch is allowed (PFL), but the arm does not go on pushing into a person,
            # nor start to move while one leans on it: it stops until they part, then resumes after the hold.
            verdict = self.safety.protective_stop(now_s, f'touching a person: {", ".join(touching)}; stopped until '
                                                         'they part')
            self._verdict(verdict)
            self._react_to_safety(verdict)
            self._settle_stop()
        return self._end()

    def on_input_refused(self, reason: str, now_s: float) -> CellOutput:
        """A safety input could not be trusted (a stray publisher, an internal error converting it):
        a protective stop with the reason, kept on /diagnostics as ERROR until good data flows again."""
        self._begin(now_s)
        if reason != self._input_error:
            self._emit('input_refused', reason=reason)
        self._input_error, self._input_error_s = reason, now_s
        verdict = self.safety.protective_stop(now_s, reason)
        self._verdict(verdict)
        self._react_to_safety(verdict)
        self._settle_stop()
        return self._end()

    def on_fatigue(self, index: float, now_s: float) -> CellOutput:
        self._begin(now_s)
        if not (isinstance(index, (int, float)) and math.isfinite(index) and 0.0 <= index <= 1.0):
            self._emit('input_refused', input='operator/fatigue', reason=f'fatigue index {index!r} outside [0, 1]')
            return self._end()
        self._fatigue = float(index)
        if self._runner is not None:
            self._runner.on_fatigue(self._fatigue, now_s)
        return self._end()

    def request(self, name: str, now_s: float, who: str | Operator = 'service') -> CellOutput:
        """An operator request by name (REQUESTS): accepted or refused with the reason."""
        self._begin(now_s)
        event = REQUESTS.get(name)
        if event is None:
            return self._end(False, f'unknown request {name!r}; accepted: {", ".join(REQUESTS)}')
        needs = self._authorise(name, who)
        if needs is None:
            return self._end(False, self._out_message)
        source = self.cell.state
        try:
            self._handle(event, f'{name} requested by {who}')
        except IllegalTransition as exc:
            return self._end(False, str(exc))
        if needs and self.authorisation is not None:
            self._operator_record(name, who, needs, True, '')
            self.authorisation.granted(name)
        self._settle_stop()
        return self._end(True, f'{source.value.lower()} -> {self.cell.state.value.lower()}')

    def set_mode(self, mode: Mode, now_s: float, who: str | Operator = 'service') -> CellOutput:
        """The operator chooses the safety mode; re-selecting the current one changes nothing."""
        self._begin(now_s)
        needs = self._authorise(MODE_PREFIX + mode.value, who)
        if needs is None:
            return self._end(False, self._out_message)
        if needs:
            self._operator_record(MODE_PREFIX + mode.value, who, needs, True, '')
        before = self._current_mode()
        self._base_mode = mode
        if mode is before:
            return self._end(True, f'safety mode already {mode.value}')
        self._change_mode(mode, f'selected by {who}')
        return self._end(True, f'safety mode {before.value} -> {mode.value}')

    def operator_refused(self, request: str, user: str, reason: str, now_s: float) -> CellOutput:
        """A signed operator request that failed its check (signature, freshness, replay): recorded."""
        self._begin(now_s)
        self._operator_record(request, f'{user} (not authenticated)', 'a signed operator request', False, reason)
        return self._end(False, reason)

    def _authorise(self, request: str, who: str | Operator) -> str | None:
        """Why the request needs an authorised operator ('' when it does not), or None when it needs one
        and `who` is not: then the refusal is recorded and its message left in self._out_message."""
        policy = self.authorisation
        needs = policy.needs(request, self.cell.state) if policy is not None else ''
        if not needs or policy is None:
            return ''
        refusal = policy.refusal(who)
        if not refusal:
            return needs
        self._operator_record(request, who, needs, False, refusal)
        self._out_message = f'{request} refused: {needs} needs an authorised operator; {refusal}'
        return None

    def _operator_record(self, request: str, who: str | Operator, needs: str, accepted: bool, refusal: str) -> None:
        """A privileged request, granted or refused, with who asked: on cell/events and in the evidence log."""
        user, role, via = (who.name, who.role, who.via) if isinstance(who, Operator) \
            else (str(who), '', 'unauthenticated')
        fields = {'request': request, 'user': user, 'role': role, 'via': via, 'needs': needs, 'accepted': accepted,
                  'reason': refusal}
        self._emit('operator_request', **fields)
        verdict = self.safety.last_verdict
        self.safety.record_event(SafetyEvent(
            self._now_s, 'operator_request', verdict.state if verdict else SafetyState.PROTECTIVE_STOP,
            verdict.zone if verdict else '', f'{request} by {user}: ' + ('granted' if accepted else refusal),
            verdict.speed_scale if verdict else 0.0, fields))

    def on_operator_done(self, now_s: float) -> CellOutput:
        """The person reports the step shown on operator/current_step as done."""
        self._begin(now_s)
        if self._runner is None or self._human_step is None:
            return self._end(False, 'no step is waiting for the operator')
        unit, step_id = self._human_step
        if self._person_away:
            self._mark_present(now_s)          # an acknowledged step is the person's own word
        self._nobody_since_s = None
        try:
            self._step_done(unit, step_id, 'human')
        except ShiftError as exc:
            return self._end(False, str(exc))
        self._settle_stop()
        # _human_step stays until the next dispatch publishes what the person does now (maybe nothing)
        return self._end(True, f'step {step_id!r} of unit {unit} done')

    def on_order(self, raw: str, now_s: float) -> CellOutput:
        """A job order (JSON) from the MES bridge: queued, or rejected with the reason, named."""
        self._begin(now_s)
        try:
            order = self.orders.submit(raw, known_product=self._known_product, now_s=now_s)
        except OrderError as exc:
            if not exc.duplicate:
                self._emit('job_rejected', order_id=exc.order_id, reason=str(exc), received=exc.excerpt)
            return self._end(False, str(exc))
        self._emit('job_accepted', order_id=order.order_id, work_master=order.work_master, quantity=order.quantity,
                   queue_position=self.orders.position(order.order_id))
        return self._end(True, f'order {order.order_id!r} queued')

    def cancel_order(self, order_id: str, now_s: float) -> CellOutput:
        self._begin(now_s)
        try:
            self.orders.cancel(order_id)
        except OrderError as exc:
            return self._end(False, str(exc))
        self._emit('job_cancelled', order_id=order_id)
        return self._end(True, f'order {order_id!r} cancelled')

    def evidence_anchor(self, now_s: float) -> CellOutput:
        """The safety evidence log's head (synced and anchored first) as an `evidence_anchor` event
        (evidence_seq, evidence_hash): sent periodically, it puts a copy of the anchor off the machine."""
        self._begin(now_s)
        head = self.safety.evidence_head()
        if head is not None and head.seq > 0:
            self._emit('evidence_anchor', evidence_seq=head.seq, evidence_hash=head.hash)
        return self._end()

    # -- reports -----------------------------------------------------------------------------------
    def kpi_values(self, now_s: float) -> dict[str, object]:
        values: dict[str, object] = dict(self.kpis.as_dict())
        job = self._job or self._reported_job
        if job is not None:
            values.update(job_kpi_values(job.kpis(job.end_s if job is self._reported_job else now_s)))
            values.update(job.pace_values())
        return values

    def diagnostics(self, now_s: float) -> tuple[DiagnosticReport, ...]:
        verdict = self.safety.last_verdict
        level = safety_level(verdict)
        message = (verdict.reason or verdict.state.value) if verdict else 'no people data yet'
        if self._input_error and now_s - self._input_error_s <= INPUT_ERROR_HOLD_S:
            level, message = Level.ERROR, f'input refused: {self._input_error}'
        state = self.cell.state
        return (DiagnosticReport('smartcell/supervisor/safety', level, message,
                                 self.safety.verdict_fields(verdict) if verdict else {}),
                DiagnosticReport('smartcell/supervisor/cell', CELL_LEVEL.get(state, Level.OK), state.value.lower(),
                                 self.kpi_values(now_s)))

    def verdict_fields(self, verdict: SafetyVerdict) -> dict[str, object]:
        return {**self.safety.verdict_fields(verdict), 'motion_id': self._last_motion}

    def close(self) -> None:
        self.safety.close()

    # -- call framing --------------------------------------------------------------------------------
    def _begin(self, now_s: float) -> None:
        self._now_s = now_s
        self._out = _Pending()

    def _end(self, success: bool = True, message: str = '') -> CellOutput:
        self._safety_events()
        out = self._out
        self._out = _Pending()
        return CellOutput(out.verdict, out.verdict_stamp_s, out.motion, self.cell.state if out.state_changed else None,
                          tuple(out.events), tuple(out.displays.items()), success, message)

    def _verdict(self, verdict: SafetyVerdict | None, stamp_s: float | None = None) -> None:
        if verdict is not None:
            self._out.verdict, self._out.verdict_stamp_s = verdict, stamp_s

    def _emit(self, event_type: str, **fields: Any) -> None:
        self._seq += 1
        self._out.events.append(CellEvent(self._seq, event_type, self._now_s, fields))

    def _display(self, topic: str, payload: Mapping[str, Any]) -> None:
        self._out.displays[topic] = dict(payload)

    def _safety_events(self) -> None:
        for event in self.safety.drain_events():
            self._emit('safety_event', kind=event.kind, reason=event.reason, state=event.state.value,
                       zone=event.zone, speed_scale=event.speed_scale)

    # -- the state machine and its callbacks ---------------------------------------------------------
    def _handle(self, event: Event, reason: str) -> Transition:
        transition = self.cell.handle(event, self._now_s, reason)
        while self._follow_ups:
            follow, why = self._follow_ups.pop(0)
            if self.cell.accepts(follow):
                self.cell.handle(follow, self._now_s, why)
        return transition

    def _on_transition(self, transition: Transition) -> None:
        # Event side effects belong to the event received, not to the table's own continuation
        # (RUNNING entered with the safety stop still active goes on to PROTECTIVE_STOP).
        for callback in self._ON_EVENT.get(transition.event, ()) if transition.follows is None else ():
            callback(self, transition)
        if transition.target is not transition.source:
            self._out.state_changed = True
            self._emit('state_change', **{'from': transition.source.value.lower(),
                                          'to': transition.target.value.lower(), 'reason': transition.reason})
            for callback in self._ON_ENTER.get(transition.target, ()):
                callback(self, transition)

    def _enter_starting(self, transition: Transition) -> None:
        self._start_job()
        self._follow_ups.append((Event.STARTED, 'cell ready'))

    def _enter_idle(self, transition: Transition) -> None:
        """Every way into IDLE ends the job, restores the operator's mode and clears the displays."""
        if self._job is not None:
            if not self._job.finished:
                self._emit('job_aborted', order_id=self._job.order_id, produced=self._job.units_done,
                           reason=transition.reason)
                if self._job.order_id:
                    self.orders.finish(self._job.order_id, 'aborted')
            self._reported_job, self._job = self._job, None
        self._runner = None
        self._robot_step = self._human_step = None
        self._pending_motion = ''
        if self._current_mode() is not self._base_mode:
            self._change_mode(self._base_mode, 'cell idle: back to the operator-chosen mode')
        for topic in ('robot/intent', 'operator/current_step', 'operator/next_step'):
            self._display(topic, {})
        self._intent, self._next_human, self._handover_note = {}, {}, ''

    def _on_safety_stop(self, transition: Transition) -> None:
        if self._runner is not None:
            self._runner.on_protective_stop(self._now_s)

    def _on_safety_clear(self, transition: Transition) -> None:
        if self._runner is not None:
            self._runner.on_safety_clear(self._now_s)
        self._pending_motion = ''     # re-plan the interrupted motion from the actual position

    def _on_emergency_stop(self, transition: Transition) -> None:
        verdict = self.safety.last_verdict
        if verdict is None or verdict.state is not SafetyState.EMERGENCY_STOP:
            self._verdict(self.safety.emergency_stop(self._now_s, transition.reason or 'emergency stop requested'))

    def _on_reset(self, transition: Transition) -> None:
        if transition.source is State.EMERGENCY_STOP:
            self._verdict(self.safety.reset(self._now_s))

    _ON_ENTER: dict[State, tuple[Callable[['CellController', Transition], None], ...]] = {
        State.STARTING: (_enter_starting,),
        State.IDLE: (_enter_idle,),
    }
    _ON_EVENT: dict[Event, tuple[Callable[['CellController', Transition], None], ...]] = {
        Event.SAFETY_STOP: (_on_safety_stop,),
        Event.SAFETY_CLEAR: (_on_safety_clear,),
        Event.EMERGENCY_STOP: (_on_emergency_stop,),
        Event.RESET: (_on_reset,),
    }

    # -- safety --------------------------------------------------------------------------------------
    def _current_mode(self) -> Mode:
        verdict = self.safety.last_verdict
        return verdict.mode if verdict is not None else self.safety.mode

    def _change_mode(self, mode: Mode, reason: str) -> None:
        previous = self._current_mode()
        if mode is previous:
            return
        self._verdict(self.safety.set_mode(mode, self._now_s))
        self._emit('mode_change', mode=mode.value, previous=previous.value, reason=reason)

    def _emergency(self, verdict: SafetyVerdict | None) -> None:
        self._verdict(verdict)
        if self.cell.state is not State.EMERGENCY_STOP:
            self._handle(Event.EMERGENCY_STOP, verdict.reason if verdict else 'emergency stop')

    def _react_to_safety(self, verdict: SafetyVerdict) -> None:
        stopped = verdict.state in STOP_STATES
        if stopped != self._safety_stopped:
            self._safety_stopped = stopped
            if stopped:
                if self.cell.state is State.RUNNING:
                    self.kpis.protective_stops += 1
                self._emit('safety_stop', reason=verdict.reason)
                self._handle(Event.SAFETY_STOP, verdict.reason)
            else:
                self._emit('safety_clear')
                self._handle(Event.SAFETY_CLEAR, 'protective zone clear and safety data fresh')
        if self.config.auto_start and not self.kpis.started and self.cell.state is State.IDLE:
            self.kpis.started = True
            self._handle(Event.START, 'auto_start')

    # -- jobs ------------------------------------------------------------------------------------------
    def _sense_presence(self, seen: bool, now_s: float) -> None:
        """The person is away once not accounted for during person_absent_s of a job: then their
        unfinished step goes back to pending and `either` steps go to the robot
        (ShiftRunner.on_person_absent); seen again or a step acknowledged: back, re-plan.

        Accounted for = tracked by the scanner, or (while not away) given no step, or working on their
        own step (not a handover) within its nominal time: a bench outside the fence is out of the
        scanner's view, and a person pressing a bearing there is not away."""
        busy = not self._person_away and self._human_step is not None and now_s <= self._human_step_end_s
        # With no step shown the person waits for the robot (often out of view): nothing is late, and an
        # absent person would not be offered the handover that brings them back (a deadlock).
        idle = not self._person_away and self._human_step is None
        if seen or busy or idle:
            self._nobody_since_s = None
            if seen and self._person_away:
                self._mark_present(now_s)
            return
        if self._nobody_since_s is None:
            self._nobody_since_s = now_s
        if not self._person_away and self._runner is not None and \
                now_s - self._nobody_since_s >= self.config.person_absent_s:
            self._person_away = True
            self._emit('person_absent', since_s=self._nobody_since_s)
            self._runner.on_person_absent(now_s)

    def _mark_present(self, now_s: float) -> None:
        self._person_away = False
        self._nobody_since_s = None
        self._emit('person_present')
        if self._runner is not None:
            self._runner.on_person_present(now_s)

    def _known_product(self, work_master: str) -> str:
        """'' when the cell can make the product, else why not."""
        try:
            self.load_job(f'job_{work_master}')
        except (ConfigError, FileNotFoundError, OSError, ValueError) as exc:
            return f'unknown product {work_master!r}: {exc}'
        return ''

    def _start_job(self) -> None:
        order = self.orders.next_waiting()
        if order is not None:
            recipe, units, order_id = self.load_job(f'job_{order.work_master}'), order.quantity, order.order_id
            self.orders.finish(order_id, 'running')
        elif self._default_recipe is not None:
            recipe, units, order_id = self._default_recipe, self.config.units, ''
        else:
            return
        self._job = _Job(recipe, units, order_id, ShiftConfig(
            late_threshold_s=self.config.late_threshold_s, fatigue_high=self.config.fatigue_high,
            fatigue_low=self.config.fatigue_low, station_positions_xy=self.config.station_positions_xy,
            person_reach_m=self.config.person_reach_m,
            person_walking_speed_mps=self.config.person_walking_speed_mps), self.config.plan_horizon_units, self._now_s,
            Scheduler(time_budget_s=None if self.config.lockstep else PLAN_TIME_BUDGET_S))
        self._runner = self._job.runner
        self._runner.on_person_positions(self._people_xy, self._now_s)
        self._robot_step = self._human_step = None
        self._emit('job_started', job=recipe.job, units=units, order_id=order_id)
        if self._fatigue is not None:
            self._runner.on_fatigue(self._fatigue, self._now_s)

    def _step_done(self, unit: int, step_id: str, executor: str) -> None:
        job = self._job
        assert job is not None and self._runner is not None
        done_before, offset = job.units_done, job.unit_offset
        job.step_done(step_id, unit, executor, self._now_s)
        if job.units_done > done_before:
            self._emit('unit_complete', unit=offset + unit, cycle_time_s=job.last_cycle_time_s, good=True,
                       order_id=job.order_id)
        if job.runner is not self._runner:            # the next batch of the order was planned
            self._runner = job.runner
            self._runner.on_person_positions(self._people_xy, self._now_s)
            self._robot_step = self._human_step = None
            if self._fatigue is not None:
                self._runner.on_fatigue(self._fatigue, self._now_s)
        if job.finished:
            self._emit('job_complete', produced=job.units_done, good=job.units_done, scrap=0, order_id=job.order_id)
            if job.order_id:
                self.orders.finish(job.order_id, 'completed')
            self._handle(Event.JOB_COMPLETE, 'all units done')

    # -- motions ---------------------------------------------------------------------------------------
    def _check_arrival(self, joints: JointSample | None) -> None:
        """Lockstep: a motion is done at the tick its joint state reaches the target (deterministic)."""
        if not self._pending_motion or joints is None:
            return
        if arrived(joints.positions_rad, joints.velocities_radps, self._pending_target):
            self._motion_done()

    def _motion_done(self) -> None:
        self._pending_motion = ''
        for_step, self._pending_step_pose = self._pending_step_pose, None
        if self._runner is not None and self._robot_step is not None:
            unit, step_id, remaining = self._robot_step
            if for_step != (unit, step_id, remaining[0]):
                return      # a waiting or park motion ended after the step came: its first pose is next
            if remaining[1:]:
                self._robot_step = (unit, step_id, remaining[1:])
                return
            self._robot_step = None
            self._step_done(unit, step_id, 'robot')
            return
        if self._runner is None:
            self._cycle_index += 1
            if self._cycle_index % len(self._cycle) == 0:
                self.kpis.cycles += 1
                self._emit('unit_complete', unit=self.kpis.cycles, good=True,
                           cycle_time_s=self.kpis.last_cycle_time_s(self._now_s))

    def _settle_stop(self) -> None:
        """STOPPING ends (-> IDLE) once the arm is at rest with no motion left to finish."""
        if self.cell.state is not State.STOPPING:
            return
        joints = self._joints
        at_rest = joints is None or float(np.max(np.abs(joints.velocities_radps))) < ARRIVAL_TOLERANCE_RAD
        held = self._safety_stopped
        if not at_rest or (self._pending_motion and not held):
            return
        if self._pending_motion and joints is not None:
            # The arm still holds the interrupted segment: replace it by staying where it is.
            self._send_motion(joints.positions_rad, joints.positions_rad)
        self._pending_motion = ''
        self._handle(Event.STOPPED, 'arm at rest')

    def _drive_robot(self, joints: JointSample | None) -> None:
        if self._runner is not None and self.cell.state in (State.RUNNING, State.PROTECTIVE_STOP):
            # The person keeps working while the arm is held by a protective stop (often because the
            # person is right there); the arm's next motion waits for the speed scale.
            self._drive_job()
        elif self._runner is None and self.cell.state in (State.RUNNING, State.PROTECTIVE_STOP):
            # The bare cycle has no handover, but a person working at a shared station is as normal
            # there as during a job: the same rule chooses PFL caps over separation stops.
            self._choose_mode(False)
        if self.cell.state is not State.RUNNING or joints is None or self._pending_motion:
            return
        if self._runner is not None:
            if self._robot_step is None:
                self._wait_for_next_step(joints)
                return
            unit, step_id, (name, *_) = self._robot_step
            if name == HANDOVER_POSE and not self._person_at_handover():
                return          # hold the part back until somebody is there to take it
            self._send_motion(joints.positions_rad, self.motions.configurations[name])
            self._pending_step_pose = (unit, step_id, name)
        elif self._job is None and self._default_recipe is None:
            name = self._cycle[self._cycle_index % len(self._cycle)]
            self._send_motion(joints.positions_rad, self.motions.configurations[name])

    def _send_motion(self, actual: np.ndarray, target: Sequence[float] | np.ndarray) -> None:
        plan = segment_plan(actual, np.asarray(target, dtype=float), LIMITS, self.config.nominal_speed_fraction)
        self._motion_count += 1
        self._pending_motion = self._last_motion = f'motion-{self._motion_count}'
        self._pending_step_pose = None
        self._pending_target = np.asarray(target, dtype=float)
        self._out.motion = MotionCommand(self._pending_motion, tuple(LIMITS.names),
                                         tuple(float(v) for v in plan.positions_rad[0]), float(plan.times_s[0]))

    def _wait_for_next_step(self, joints: JointSample) -> None:
        """An arm with no step to do now waits where its next planned step begins, or, when that pose
        is in a shared workspace, at the pose outside every shared workspace nearest to it (in motion
        time): the travel to the next station is done while the arm would idle, not while the person
        waits for it (a handover after a place across the cell). It moves only when that shortens the
        travel still to come, never toward a pose within a tracked person's reach, and never while it
        holds a handover out. With no next step, or no such pose, it parks (_park)."""
        if self._pending_motion or self._runner is None or self._runner.robot_holds_a_handover():
            return
        upcoming = self._runner.upcoming('robot')
        if upcoming is not None:
            kind = self._runner.recipe.by_id[upcoming.step_id].kind
            first = motions_for_step(upcoming.station, kind, self.motions)[0]
            waiting = self._waiting_pose(first)
            if waiting is not None:
                target = np.asarray(self.motions.configurations[waiting], dtype=float)
                first_rad = np.asarray(self.motions.configurations[first], dtype=float)
                if arrived(joints.positions_rad, np.zeros_like(target), target):
                    return
                in_reach = person_near(self._people_xy, tool_tip_world(target, self.safety.base)[:2],
                                       self.config.person_reach_m)
                if not in_reach and self._motion_time_s(target, first_rad) < \
                        self._motion_time_s(joints.positions_rad, first_rad):
                    self._send_motion(joints.positions_rad, target)
                    return
        self._park(joints)

    def _waiting_pose(self, first: str) -> str | None:
        """The transit pose (off the work surface, transit_poses) outside every shared workspace with the
        shortest motion to `first` (itself when it is one); None when there is none. Fixed poses: once each."""
        if first not in self._waiting_poses:
            target = np.asarray(self.motions.configurations[first], dtype=float)
            outside = [name for name in transit_poses(self.motions)
                       if not inside_workspaces(tool_tip_world(self.motions.configurations[name], self.safety.base)[:2],
                                                self.config.collaborative_regions_xyr)[0]]
            self._waiting_poses[first] = first if first in outside else min(
                outside, default=None,
                key=lambda name: self._motion_time_s(np.asarray(self.motions.configurations[name]), target))
        return self._waiting_poses[first]

    def _motion_time_s(self, start_rad: np.ndarray, target_rad: np.ndarray) -> float:
        """The planned duration of one segment at the nominal speed (s)."""
        return float(segment_plan(start_rad, target_rad, LIMITS, self.config.nominal_speed_fraction).times_s[0])

    def _park(self, joints: JointSample) -> None:
        """With no step to do and its tool inside a shared workspace (left there by a handover or a
        place at the shared station), the arm goes to PARK_POSE: waiting there it would stand in the
        person's way, and the person waits for it to leave. Elsewhere it waits where it is (a park
        there would only add a motion to the next step)."""
        park = self.motions.configurations.get(PARK_POSE)
        if park is None or self._pending_motion:
            return
        if self._runner is not None and self._runner.robot_holds_a_handover():
            return      # the person may be taking the part now
        tool_xy = tool_tip_world(joints.positions_rad, self.safety.base)[:2]
        if inside_workspaces(tool_xy, self.config.collaborative_regions_xyr)[0]:
            self._send_motion(joints.positions_rad, park)

    def _person_at_handover(self) -> bool:
        if self._handover_xy is None:      # fixed pose and base: once
            self._handover_xy = tool_tip_world(self.motions.configurations[HANDOVER_POSE], self.safety.base)[:2]
        radius = self.config.handover_presence_m
        present = person_near(self._people_xy, self._handover_xy, radius)
        waiting = '' if present else f'handover: waiting for a person within {radius:g} m of the part'
        if waiting != self._handover_note:
            self._handover_note = waiting
            self._intent = {**self._intent, 'waiting': waiting}
            self._display('robot/intent', self._intent)
        return present

    def _drive_job(self) -> None:
        assert self._runner is not None
        actions = self._runner.next_actions(self._now_s)
        robot = actions.robot
        self._choose_mode(robot is not None and robot.handover)
        if robot is not None and (self._robot_step is None or self._robot_step[:2] != (robot.unit, robot.step_id)):
            self._robot_step = (robot.unit, robot.step_id, motions_for_step(robot.station, robot.kind, self.motions))
            self._intent = {'unit': robot.unit, 'step': robot.step_id, 'station': robot.station, 'kind': robot.kind,
                            'handover': robot.handover, 'expected_end_s': robot.expected_end_s, 'waiting': ''}
            self._display('robot/intent', self._intent)
        upcoming = self._runner.upcoming('human')
        next_step: dict[str, Any] = {} if upcoming is None else {
            'unit': upcoming.unit, 'step': upcoming.step_id, 'station': upcoming.station,
            'kind': self._runner.recipe.by_id[upcoming.step_id].kind, 'handover': upcoming.actor == 'both',
            'planned_start_s': upcoming.start_s, 'planned_end_s': upcoming.end_s}
        if next_step != self._next_human:
            self._next_human = next_step
            self._display('operator/next_step', next_step)
        human = actions.human
        key = None if human is None else (human.unit, human.step_id)
        if key != self._human_step:
            self._human_step = key
            # A handover needs the person at the shared station, in view: only their own steps count.
            self._human_step_end_s = -math.inf if human is None or human.handover else human.expected_end_s
            self._display('operator/current_step', {} if human is None else {
                'unit': human.unit, 'step': human.step_id, 'station': human.station, 'kind': human.kind,
                'handover': human.handover, 'started_s': human.started_s,
                'expected_end_s': human.expected_end_s,
                'work_s': self._person_work_s.get((self._runner.recipe.job, human.step_id)),
                'note': actions.human_note})

    def _choose_mode(self, handover: bool) -> None:
        """While the cell runs (a job or the bare cycle) it is in COLLABORATIVE mode (PFL speed caps
        instead of the separation stop) for a handover, which needs the person within the separation
        distance, and while every tracked person works inside a declared shared workspace; otherwise in
        the operator-chosen mode.
        Only from AUTOMATIC: a T1 (manual reduced) choice is never overridden. A switch is a
        mode_change event judged at once on the latest data, not a stop."""
        shared = self._people_in_shared_workspaces(0.0 if self._shared else -SHARED_WORKSPACE_HYSTERESIS_M)
        self._shared = shared
        collaborate = (handover or shared) and self._base_mode is Mode.AUTOMATIC
        wanted = Mode.COLLABORATIVE if collaborate else self._base_mode
        reason = 'handover step' if handover else 'person at a shared workspace' if shared else \
            'nobody only at a shared workspace, no handover'
        self._change_mode(wanted, reason)

    def _people_in_shared_workspaces(self, margin_m: float = 0.0) -> bool:
        """True when someone is tracked and everyone tracked is inside a shared workspace, its radius
        grown by margin_m (negative: shrunk; entering takes a person well inside, leaving is at the
        edge, so tracking noise at the edge does not flip the mode every cycle)."""
        people = np.asarray(self._people_xy, dtype=float).reshape(-1, 2)
        if len(people) == 0 or not np.all(np.isfinite(people)):
            return False
        return bool(np.all(inside_workspaces(people, self.config.collaborative_regions_xyr, margin_m)))


def inside_workspaces(points_xy: Any, regions_xyr: Any, margin_m: float = 0.0) -> np.ndarray:
    """For each (x, y) point (m, world), whether it lies inside any declared workspace (rows x, y,
    radius m), the radius grown by margin_m; all False when none is declared."""
    points = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    regions = np.asarray(regions_xyr, dtype=float).reshape(-1, 3)
    if len(regions) == 0:
        return np.zeros(len(points), dtype=bool)
    distance = np.linalg.norm(points[:, None, :] - regions[None, :, :2], axis=2)
    return np.any(distance <= regions[None, :, 2] + margin_m, axis=1)


def planned_unit_ends_s(entries: Any, start_s: float) -> list[float]:
    """When a plan finishes its units, from start_s, earliest first (s)."""
    ends: dict[int, float] = {}
    for entry in entries:
        ends[entry.unit] = max(ends.get(entry.unit, -math.inf), entry.end_s - start_s)
    return sorted(ends.values())


class _Job:
    """One job (an order or the configured recipe), planned `horizon` units at a time so that no
    single call plans a large order at once (the safety loop never waits for planning)."""

    def __init__(self, recipe: Recipe, units: int, order_id: str, config: ShiftConfig, horizon: int,
                 now_s: float, scheduler: Scheduler) -> None:
        self.recipe, self.units, self.order_id = recipe, units, order_id
        self._scheduler = scheduler
        self._config, self._horizon = config, max(1, horizon)
        self._done_before = 0                      # units finished in earlier batches
        self._cycle_times: list[float] = []
        self._earlier: list[ShiftKpis] = []
        self.end_s = now_s                          # time of the latest step done, s
        self.start_s = now_s
        self.last_unit_s: float | None = None       # when the latest unit was finished, s
        # The scheduler's own figures, to hold the run against: each batch's plan as first made (not
        # as re-planned after a delay), the time from the batch's start to each unit's finish.
        self._planned_batches_s = 0.0               # planned spans of the batches finished, s
        self._start_batch(now_s)
        self.planned_s_per_unit = self._unit_ends_s[-1] / len(self._unit_ends_s) if self._unit_ends_s else math.nan

    def _start_batch(self, now_s: float) -> None:
        self.runner = ShiftRunner(self.recipe, min(self._horizon, self.units - self._done_before), self._scheduler,
                                  now_s=now_s, config=self._config)
        self._unit_ends_s = planned_unit_ends_s(self.runner.plan.entries, now_s)

    @property
    def units_done(self) -> int:
        return self._done_before + len(self._cycle_times_of(self.runner))

    @property
    def unit_offset(self) -> int:
        """The job-wide index of the current batch's unit 0."""
        return self._done_before

    @property
    def finished(self) -> bool:
        return self.units_done >= self.units

    @property
    def last_cycle_time_s(self) -> float | None:
        times = self._cycle_times + list(self._cycle_times_of(self.runner))
        return times[-1] if times else None

    def step_done(self, step_id: str, unit: int, executor: str, now_s: float) -> None:
        self.end_s = now_s
        done_before = self.units_done
        self.runner.step_done(step_id, unit, executor, now_s)
        if self.units_done > done_before:
            self.last_unit_s = now_s
        if self.runner.finished and not self.finished:
            kpis = self.runner.kpis(now_s)
            self._earlier.append(kpis)
            self._cycle_times.extend(kpis.cycle_times_s)
            self._done_before += kpis.units_done
            self._planned_batches_s += self._unit_ends_s[-1] if self._unit_ends_s else 0.0
            self._start_batch(now_s)

    def kpis(self, now_s: float) -> ShiftKpis:
        current = self.runner.kpis(now_s)
        if not self._earlier:
            return current
        parts = self._earlier + [current]
        elapsed = sum(k.elapsed_s for k in parts)
        robot_busy, human_busy = sum(k.robot_busy_s for k in parts), sum(k.human_busy_s for k in parts)
        return ShiftKpis(elapsed, self.units_done, tuple(self._cycle_times) + current.cycle_times_s, robot_busy,
                         human_busy, sum(k.robot_idle_s for k in parts), sum(k.human_idle_s for k in parts),
                         robot_busy / elapsed if elapsed > 0 else 0.0, human_busy / elapsed if elapsed > 0 else 0.0,
                         sum(k.safety_stop_s for k in parts), sum(k.replans for k in parts),
                         sum(k.reallocated_steps for k in parts))

    def planned_time_for_units_s(self, units: int) -> float:
        """How long the scheduler planned for the job's first `units` units (at least those of the
        batches finished): the spans of those batches, each as first planned, and within the current
        one until its units-th unit is done."""
        in_batch = units - self._done_before
        if in_batch <= 0 or not self._unit_ends_s:
            return self._planned_batches_s
        return self._planned_batches_s + self._unit_ends_s[min(in_batch, len(self._unit_ends_s)) - 1]

    def pace_values(self) -> dict[str, object]:
        """Time per unit, actual (job start to the latest unit finished, over the units) and planned
        (the scheduler's plan for those same units, batch by batch: a batch fills and drains, so a
        unit of a batch just begun is planned late in it too). Per-unit cycle times overlap in a
        batch, these do not. Before any unit is done, planned is the first batch's span per unit."""
        values: dict[str, object] = {'planned_time_per_unit_s': self.planned_s_per_unit
                                     if math.isfinite(self.planned_s_per_unit) else None}
        done = self.units_done
        if done and self.last_unit_s is not None:
            actual = (self.last_unit_s - self.start_s) / done
            planned = self.planned_time_for_units_s(done) / done
            values['planned_time_per_unit_s'] = planned
            values['time_per_unit_s'] = actual
            values['time_per_unit_ratio'] = actual / planned if planned > 0 else None
        else:
            values['time_per_unit_s'] = values['time_per_unit_ratio'] = None
            values['time_per_unit_reason'] = 'no unit completed yet'
        return values

    @staticmethod
    def _cycle_times_of(runner: ShiftRunner) -> tuple[float, ...]:
        return runner.kpis(0.0).cycle_times_s       # cycle times come from the log, not the clock


def job_kpi_values(kpis: ShiftKpis) -> dict[str, object]:
    """KPIs of the running job; a figure that does not exist yet is None with the reason, never NaN."""
    cycles = np.asarray(kpis.cycle_times_s, dtype=float)
    values: dict[str, object] = {
        'units_completed': kpis.units_done,
        'cycle_time_mean_s': float(cycles.mean()) if len(cycles) else None,
        'cycle_time_std_s': float(cycles.std()) if len(cycles) else None,
        'robot_utilisation': kpis.robot_utilisation, 'human_utilisation': kpis.human_utilisation,
        'robot_idle_s': kpis.robot_idle_s, 'human_idle_s': kpis.human_idle_s,
        'replans': kpis.replans, 'reallocated_steps': kpis.reallocated_steps}
    if not len(cycles):
        values['cycle_time_reason'] = 'no unit completed yet'
    return values
