"""Run-time task runner: dispatches a batch's steps to the robot and the person, re-plans on disruptions.

The supervisor node owns one ShiftRunner and calls it from its callbacks:

  next_actions(now_s)                 -> what the robot and the person should do now (dispatches)
  step_done(step_id, unit, executor, now_s)   arm motion finished / person acknowledged
  on_person_absent / on_person_present(now_s) person left / came back (presence sensing)
  on_person_late(now_s)               the person's step runs late (also checked in next_actions)
  on_fatigue(index, now_s)            wearable fatigue index in [0, 1], None when no wearable
  on_protective_stop / on_safety_clear(now_s) the robot may not / may move again
  on_person_positions(xy, now_s)      tracked people (x, y m, world), every people update

Rules (docs/tasks.md has the details):
  * Each executor follows the order of the current plan strictly: it starts its first pending
    planned step once that step's predecessors are done, its station is free and, for a
    handover, the other executor is free too. Because a valid plan orders every resource
    consistently, this never deadlocks while active steps keep finishing.
  * A step becomes DONE only through step_done; a DONE step is never dispatched again and a
    second step_done for it raises ShiftError. A handover is done when both executors reported.
  * Re-planning (absence, lateness, fatigue, protective stop, clear) keeps done steps done and
    running steps running on their executor, and re-plans only the pending ones.
  * Space: a robot step at a station within person_reach_m of a tracked person is not started
    while another robot step, out of everyone's reach, is first in the plan on its station and
    can start: the robot works elsewhere instead of reaching past the person. When nothing else
    can start the robot goes on as planned (the safety layer sets its speed). A change of reach at
    the robot's next step's station re-plans (with hysteresis and a rate limit against noise).
  * Deterministic given the inputs when the scheduler has no wall-clock budget (the default).

Pure Python; no ROS.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable

import numpy as np

from smartcell.core.params import ConfigError
from smartcell.core.tasks.scheduling import (InProgress, PlanRequest, Schedule, ScheduledStep, Scheduler, StepKey,
                                       person_travel_times, validate_schedule)
from smartcell.core.tasks.recipe import BOTH, EITHER, HUMAN, ROBOT, Recipe, topological_order

EXECUTORS = (ROBOT, HUMAN)
# ISO 13855 adds C = 850 mm for reaching over or through: a person standing this close to a station
# can put a hand into it.
PERSON_REACH_M = 0.85
REACH_HYSTERESIS_M = 0.1     # a station in reach stays so until the person is this much farther away
REACH_REPLAN_MIN_S = 2.0     # at most one re-plan for a change of reach this often, s


class StepState(str, Enum):
    PENDING = 'pending'
    ACTIVE = 'active'
    DONE = 'done'


class ShiftError(ValueError):
    """A report that does not match the runner's state (unknown, not active, already done)."""


@dataclass(frozen=True)
class ShiftConfig:
    late_threshold_s: float = 15.0         # a person step this long past its expected end is late, s
    fatigue_high: float = 0.7              # fatigue index at/above this -> `either` steps to the robot
    fatigue_low: float = 0.5               # ... until it falls to/below this (hysteresis against flapping)
    absent_return_guess_s: float = 60.0    # planning assumption: an absent person is back after this, s
    stop_clear_guess_s: float = 5.0        # planning assumption: a protective stop lasts this long, s
    # Where each station is, (name, x m, y m) in the world frame of the people data; a station not
    # listed is never judged in or out of reach. Empty: the reach rule is off.
    station_positions_xy: tuple[tuple[str, float, float], ...] = ()
    person_reach_m: float = PERSON_REACH_M         # a station this close to a tracked person is in reach, m
    reach_hysteresis_m: float = REACH_HYSTERESIS_M  # ... and leaves reach only this much farther away, m
    reach_replan_min_s: float = REACH_REPLAN_MIN_S  # changes of reach closer together re-plan once, s
    # Defer even a step that the person's next planned step waits for (False: go on with it, the
    # person is probably standing there waiting for it, and deferring only makes them wait longer).
    reach_defer_awaited: bool = False
    # The person's walking speed, m/s: the scheduler plans their walks between the stations above at
    # it (straight lines). 0: walks not planned.
    person_walking_speed_mps: float = 0.0

    def __post_init__(self) -> None:
        for name in ('late_threshold_s', 'absent_return_guess_s', 'stop_clear_guess_s'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'ShiftConfig.{name} must be a positive finite number of s, got {value!r}')
        if not 0.0 <= self.fatigue_low <= self.fatigue_high <= 1.0:
            raise ValueError(f'ShiftConfig needs 0 <= fatigue_low <= fatigue_high <= 1, got '
                             f'{self.fatigue_low!r}, {self.fatigue_high!r}')
        if not (math.isfinite(self.person_reach_m) and self.person_reach_m > 0.0):
            raise ValueError(f'ShiftConfig.person_reach_m must be a positive finite number of m, '
                             f'got {self.person_reach_m!r}')
        for name in ('reach_hysteresis_m', 'reach_replan_min_s'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f'ShiftConfig.{name} must be a finite number >= 0, got {value!r}')
        if not (math.isfinite(self.person_walking_speed_mps) and self.person_walking_speed_mps >= 0.0):
            raise ValueError(f'ShiftConfig.person_walking_speed_mps must be a finite number >= 0 of m/s, '
                             f'got {self.person_walking_speed_mps!r}')
        names = [entry[0] for entry in self.station_positions_xy]
        for entry in self.station_positions_xy:
            if len(entry) != 3 or not isinstance(entry[0], str) or not entry[0] or \
                    not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                            for v in entry[1:]):
                raise ValueError(f'ShiftConfig.station_positions_xy: each entry is (station, x m, y m) with '
                                 f'finite numbers, got {entry!r}')
            if names.count(entry[0]) > 1:
                raise ValueError(f'ShiftConfig.station_positions_xy names station {entry[0]!r} twice')


def parse_station_positions(entries: Iterable[Any]) -> tuple[tuple[str, float, float], ...]:
    """Station positions from parameter strings 'NAME X Y' (m, world), e.g. 'assembly 0.70 0.0'.

    Raises ConfigError naming the entry: a missing or extra field, a number that is not finite,
    a station named twice.
    """
    parsed: list[tuple[str, float, float]] = []
    for entry in entries:
        fields = str(entry).split()
        try:
            if len(fields) != 3:
                raise ValueError('needs 3 fields')
            name, x_m, y_m = fields[0], float(fields[1]), float(fields[2])
            if not (math.isfinite(x_m) and math.isfinite(y_m)):
                raise ValueError('x and y must be finite')
        except ValueError as exc:
            raise ConfigError(f'station position {entry!r} is not "NAME X Y" (m, world): {exc}') from None
        if any(p[0] == name for p in parsed):
            raise ConfigError(f'station position of {name!r} is given twice')
        parsed.append((name, x_m, y_m))
    return tuple(parsed)


@dataclass(frozen=True)
class Action:
    """One step handed to one executor. For a handover both executors get the same step."""

    unit: int
    step_id: str
    executor: str          # who receives this action: 'robot' or 'human'
    station: str           # station name; the node converts it to joint targets for the robot
    kind: str              # pick, place, process, present, receive (robot); assemble, inspect... (person)
    handover: bool
    started_s: float
    expected_end_s: float


@dataclass(frozen=True)
class NextActions:
    robot: Action | None
    human: Action | None
    robot_note: str = ''   # why the robot has no action (or '' when it has one)
    human_note: str = ''


@dataclass(frozen=True)
class ShiftKpis:
    elapsed_s: float
    units_done: int
    cycle_times_s: tuple[float, ...]   # per finished unit: first step start to last step end, s
    robot_busy_s: float
    human_busy_s: float
    robot_idle_s: float
    human_idle_s: float
    robot_utilisation: float           # busy / elapsed, 1
    human_utilisation: float
    safety_stop_s: float               # time spent in protective stops, s
    replans: int
    reallocated_steps: int             # pending steps whose planned executor changed at a re-plan


@dataclass
class _Running:
    executor: str                      # 'robot', 'human' or 'both'
    start_s: float
    expected_end_s: float
    reported: frozenset[str] = frozenset()   # executors that reported done (handover needs both)


class ShiftRunner:
    """Tracks every (unit, step) of a batch and decides who does what next."""

    def __init__(self, recipe: Recipe, units: int, scheduler: Scheduler | None = None, now_s: float = 0.0,
                 config: ShiftConfig = ShiftConfig()) -> None:
        if units < 1:
            raise ValueError(f'units must be >= 1, got {units!r}')
        self.recipe = recipe
        self.units = units
        self.config = config
        self._scheduler = scheduler or Scheduler(time_budget_s=None)
        self._start_s = now_s
        self._state: dict[StepKey, StepState] = {(u, s.id): StepState.PENDING
                                                  for u in range(units) for s in recipe.steps}
        self._running: dict[StepKey, _Running] = {}
        self._log: list[ScheduledStep] = []
        self._human_present = True
        self._fatigued = False
        self._stop_since_s: float | None = None
        self._stop_total_s = 0.0
        self._replans = 0
        self._reallocated = 0
        self._reasons: list[tuple[float, str]] = []
        self._assumed_until_s = math.inf
        # Reach rule: positions of the stations where the robot works alone (the others never matter).
        robot_stations = {s.station for s in recipe.steps if s.actor in (ROBOT, EITHER)}
        self._station_xy = {name: np.array([x_m, y_m]) for name, x_m, y_m in config.station_positions_xy
                            if name in robot_stations}
        self._person_travel_s = person_travel_times(config.station_positions_xy, config.person_walking_speed_mps) \
            if config.person_walking_speed_mps > 0.0 else ()
        self._in_reach: frozenset[str] | None = None   # None: unknown (no positions yet, or not finite)
        self._known_reach: frozenset[str] = frozenset()  # the last known set, for hysteresis
        self._planned_reach: frozenset[str] = frozenset()  # the set the current plan was made with
        self._reach_replan_s = -math.inf
        self._deferrals: list[tuple[float, StepKey, StepKey]] = []
        self._before: dict[str, frozenset[str]] = {}      # every step a step waits for, directly or not
        for step_id in topological_order(recipe):
            after = recipe.by_id[step_id].after
            self._before[step_id] = frozenset(after).union(*(self._before[b] for b in after))
        self._plan = self._make_plan(now_s)

    # --- queries ----------------------------------------------------------------------------

    @property
    def plan(self) -> Schedule:
        return self._plan

    @property
    def finished(self) -> bool:
        return all(s is StepState.DONE for s in self._state.values())

    @property
    def log(self) -> tuple[ScheduledStep, ...]:
        """What really happened: finished steps with executor and actual start/end, in finishing order."""
        return tuple(self._log)

    @property
    def replan_reasons(self) -> tuple[tuple[float, str], ...]:
        return tuple(self._reasons)

    @property
    def human_present(self) -> bool:
        return self._human_present

    @property
    def stations_in_reach(self) -> frozenset[str] | None:
        """Stations (with robot-only work) within reach of a tracked person; None when unknown."""
        return self._in_reach

    @property
    def reach_deferrals(self) -> tuple[tuple[float, StepKey, StepKey], ...]:
        """(time s, robot step deferred because a person could reach its station, step started instead)."""
        return tuple(self._deferrals)

    @property
    def fatigued(self) -> bool:
        return self._fatigued

    def state_of(self, unit: int, step_id: str) -> StepState:
        key = (unit, step_id)
        if key not in self._state:
            raise ShiftError(f'unknown step {step_id!r} of unit {unit} (job {self.recipe.job!r}, '
                             f'units 0..{self.units - 1})')
        return self._state[key]

    def robot_holds_a_handover(self) -> bool:
        """A handover whose robot part is done and whose person part is not: the arm holds the part
        out at the shared station while the person may be taking it."""
        return any(running.executor == BOTH and ROBOT in running.reported for running in self._running.values())

    def done_steps(self) -> frozenset[StepKey]:
        return frozenset(k for k, s in self._state.items() if s is StepState.DONE)

    def upcoming(self, executor: str) -> ScheduledStep | None:
        """The executor's next step after its current one, as planned now (it may change at a
        re-plan); None when nothing more is planned for it. For the operator's display."""
        if executor not in EXECUTORS:
            raise ShiftError(f'unknown executor {executor!r}; accepted: {", ".join(EXECUTORS)}')
        for entry in self._plan.entries:
            if self._state[entry.key] is StepState.PENDING and executor in _occupies(entry.actor):
                return entry
        return None

    # --- dispatching ------------------------------------------------------------------------

    def next_actions(self, now_s: float) -> NextActions:
        """The robot's and the person's current step; starts the next planned ones that can start."""
        self.on_person_late(now_s)
        if now_s >= self._assumed_until_s:
            self._replan(now_s, 'absence or stop lasts longer than the plan assumed')
        actions: dict[str, Action | None] = {}
        notes: dict[str, str] = {}
        for executor in EXECUTORS:
            current = self._current(executor)
            if current is not None and executor in self._running[current].reported:
                # Its part of a handover is finished; it holds until the other one confirms.
                actions[executor] = None
                notes[executor] = (f'step {current[1]!r} of unit {current[0]}: waiting for the other '
                                   f'executor to confirm the handover')
                continue
            if current is not None:
                actions[executor], notes[executor] = self._action(current, executor), ''
                continue
            key, note = self._next_startable(executor, now_s)
            if key is None:
                actions[executor], notes[executor] = None, note
                continue
            self._start(key, now_s)
            actions[executor], notes[executor] = self._action(key, executor), ''
        # A handover started for one executor is also the other's action now.
        for executor in EXECUTORS:
            current = self._current(executor)
            if actions[executor] is None and current is not None and executor not in self._running[current].reported:
                actions[executor], notes[executor] = self._action(current, executor), ''
        return NextActions(actions[ROBOT], actions[HUMAN], notes[ROBOT], notes[HUMAN])

    def step_done(self, step_id: str, unit: int, executor: str, now_s: float) -> bool:
        """Record that `executor` finished `step_id` of `unit`; True when the step is now DONE.

        A handover is DONE once both executors reported. Raises ShiftError (changing nothing) for
        an unknown step, a step that is not active, or the wrong executor.
        """
        key = (unit, step_id)
        state = self.state_of(unit, step_id)
        name = f'step {step_id!r} of unit {unit}'
        if state is StepState.DONE:
            raise ShiftError(f'{name} is already done; a step is never done twice')
        if state is StepState.PENDING:
            raise ShiftError(f'{name} was not started (pending); only active steps can be done')
        running = self._running[key]
        allowed = EXECUTORS if running.executor == BOTH else (running.executor,)
        if executor not in allowed:
            raise ShiftError(f'{name} is being done by {running.executor!r}; {executor!r} cannot report it '
                             f'(accepted: {", ".join(allowed)})')
        running.reported = running.reported | {executor}
        if not set(allowed) <= running.reported:
            return False
        del self._running[key]
        self._state[key] = StepState.DONE
        step = self.recipe.by_id[step_id]
        self._log.append(ScheduledStep(unit, step_id, running.executor, step.station, running.start_s, now_s))
        return True

    # --- disruptions ------------------------------------------------------------------------

    def on_person_absent(self, now_s: float) -> None:
        """The person left: their unfinished step goes back to pending; `either` steps go to the robot."""
        if not self._human_present:
            return
        self._human_present = False
        for key, running in list(self._running.items()):
            if running.executor in (HUMAN, BOTH):
                # Never acknowledged, so not done: it will be done again from its start.
                del self._running[key]
                self._state[key] = StepState.PENDING
        self._replan(now_s, 'person absent')

    def on_person_present(self, now_s: float) -> None:
        if self._human_present:
            return
        self._human_present = True
        self._replan(now_s, 'person back')

    def on_person_late(self, now_s: float) -> bool:
        """Re-plan when the person's step runs late_threshold_s past its expected end; True if re-planned."""
        for key, running in self._running.items():
            if running.executor in (HUMAN, BOTH) and now_s > running.expected_end_s + self.config.late_threshold_s:
                # Assume it needs another threshold; the plan moves work the robot can take over.
                running.expected_end_s = now_s + self.config.late_threshold_s
                self._replan(now_s, f'person late on step {key[1]!r} of unit {key[0]}')
                return True
        return False

    def on_fatigue(self, index: float | None, now_s: float) -> str:
        """Apply a fatigue index in [0, 1] with hysteresis; returns what was done and why.

        None (no wearable), NaN or a value outside [0, 1] changes nothing: fatigue is a comfort
        rule, not a safety function, so doubt keeps the current allocation rather than flapping it.
        """
        if index is None:
            return 'no fatigue index (no wearable): allocation unchanged'
        if isinstance(index, bool) or not (isinstance(index, (int, float)) and math.isfinite(index)
                                           and 0.0 <= index <= 1.0):
            return f'fatigue index {index!r} is not in [0, 1]: ignored, allocation unchanged'
        if not self._fatigued and index >= self.config.fatigue_high:
            self._fatigued = True
            self._replan(now_s, f'fatigue {index:.2f} >= {self.config.fatigue_high:.2f}')
            return 'fatigued: either steps go to the robot'
        if self._fatigued and index <= self.config.fatigue_low:
            self._fatigued = False
            self._replan(now_s, f'fatigue {index:.2f} <= {self.config.fatigue_low:.2f}')
            return 'recovered: either steps are allocated freely again'
        return 'fatigue state unchanged'

    def on_protective_stop(self, now_s: float) -> None:
        """The robot must not move: no new robot steps; the plan gives the person what it can."""
        if self._stop_since_s is not None:
            return
        self._stop_since_s = now_s
        self._replan(now_s, 'protective stop')

    def on_safety_clear(self, now_s: float) -> None:
        if self._stop_since_s is None:
            return
        stopped_s = now_s - self._stop_since_s
        self._stop_total_s += stopped_s
        self._stop_since_s = None
        for running in self._running.values():
            if running.executor in (ROBOT, BOTH):
                running.expected_end_s += stopped_s   # the motion was frozen meanwhile
        self._replan(now_s, f'safety clear after {stopped_s:.1f} s')

    def on_person_positions(self, xy_m: Any, now_s: float) -> str:
        """Tracked people, an (N, 2) array of x, y (m, world; N = 0: nobody); returns what it did.

        Decides which stations (of robot-only work) a person can reach: within person_reach_m,
        left only beyond person_reach_m + reach_hysteresis_m, so tracking noise at the edge does
        not flip it; dispatch uses the new set at once. A change at the station of the robot's
        next robot-only step re-plans, naming the stations, at most once per reach_replan_min_s
        (changes in between are folded into the next one, and a set that came back to the planned
        one needs none); other changes only update the set. A position that is not finite makes
        the reach unknown: no station is preferred (dispatch as without the rule) and nothing is
        re-planned. A wrong shape or a non-finite time raises ValueError and changes nothing.
        """
        try:
            people = np.asarray(xy_m, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f'person positions must be numbers, an (N, 2) array of x, y (m): {exc}') from None
        if people.ndim != 2 or people.shape[1] != 2:
            raise ValueError(f'person positions must be an (N, 2) array of x, y (m), got shape {people.shape}')
        if not isinstance(now_s, (int, float)) or not math.isfinite(now_s):
            raise ValueError(f'now_s must be a finite time in s, got {now_s!r}')
        if not self._station_xy:
            return 'no positions of robot stations configured: reach rule off'
        if not np.all(np.isfinite(people)):
            self._in_reach = None
            return 'a person position is not finite (unknown): no station preferred'
        near = set()
        for name, xy in self._station_xy.items():
            limit = self.config.person_reach_m + (self.config.reach_hysteresis_m if name in self._known_reach
                                                  else 0.0)
            if len(people) and float(np.min(np.linalg.norm(people - xy, axis=1))) <= limit:
                near.add(name)
        reach = frozenset(near)
        self._in_reach = self._known_reach = reach
        if reach == self._planned_reach:
            return 'stations in reach unchanged'
        upcoming = self._next_robot_only()
        if upcoming is None or upcoming.station not in reach ^ self._planned_reach:
            # The scheduler does not model reach, so a re-plan here would only reshuffle the plan
            # (measured: 20 such re-plans halved the gearbox's units in `smartcell sim`).
            self._planned_reach = reach
            return "stations in reach changed, not at the robot's next step's station: no re-plan"
        if now_s - self._reach_replan_s < self.config.reach_replan_min_s:
            # Dispatch already uses the new set; the re-plan waits, so a person at the edge of reach
            # (or a noisy track) costs one re-plan per interval at most.
            return 'stations in reach changed; re-plan deferred (the last one was too recent)'
        entered, left = sorted(reach - self._planned_reach), sorted(self._planned_reach - reach)
        parts = ([f'person within reach of {", ".join(entered)}'] if entered else []) + \
            ([f'{", ".join(left)} out of reach'] if left else [])
        reason = '; '.join(parts)
        self._planned_reach = reach
        if not self.finished:
            self._reach_replan_s = now_s
            self._replan(now_s, reason)
        return reason

    # --- KPIs -------------------------------------------------------------------------------

    def kpis(self, now_s: float) -> ShiftKpis:
        elapsed = max(now_s - self._start_s, 0.0)
        busy = {ROBOT: 0.0, HUMAN: 0.0}
        for entry in self._log:
            for executor in _occupies(entry.actor):
                busy[executor] += entry.end_s - entry.start_s
        for running in self._running.values():
            for executor in _occupies(running.executor):
                busy[executor] += max(now_s - running.start_s, 0.0)
        cycle_times = []
        for unit in range(self.units):
            entries = [e for e in self._log if e.unit == unit]
            if len(entries) == len(self.recipe.steps):
                cycle_times.append(max(e.end_s for e in entries) - min(e.start_s for e in entries))
        stop = self._stop_total_s + (now_s - self._stop_since_s if self._stop_since_s is not None else 0.0)
        return ShiftKpis(
            elapsed_s=elapsed, units_done=len(cycle_times), cycle_times_s=tuple(cycle_times),
            robot_busy_s=busy[ROBOT], human_busy_s=busy[HUMAN],
            robot_idle_s=max(elapsed - busy[ROBOT], 0.0), human_idle_s=max(elapsed - busy[HUMAN], 0.0),
            robot_utilisation=busy[ROBOT] / elapsed if elapsed > 0 else 0.0,
            human_utilisation=busy[HUMAN] / elapsed if elapsed > 0 else 0.0,
            safety_stop_s=stop, replans=self._replans, reallocated_steps=self._reallocated)

    # --- internals --------------------------------------------------------------------------

    def _current(self, executor: str) -> StepKey | None:
        for key, running in self._running.items():
            if executor in _occupies(running.executor):
                return key
        return None

    def _planned(self, key: StepKey) -> ScheduledStep:
        return self._plan.entry(*key)

    def _next_startable(self, executor: str, now_s: float) -> tuple[StepKey | None, str]:
        if executor == ROBOT and self._stop_since_s is not None:
            return None, 'protective stop'
        if self.finished:
            return None, 'all steps done'
        # The first pending step of every resource (executor or station) in plan order: a step
        # starts only when it is first on all its resources, so nobody jumps the planned queue
        # and the step planned earliest can always start once its predecessors are done.
        first: dict[str, ScheduledStep] = {}
        for entry in self._plan.entries:
            if self._state[entry.key] is StepState.PENDING:
                for resource in _occupies(entry.actor) + (entry.station,):
                    first.setdefault(resource, entry)
        found = first.get(executor)
        if found is None:
            return None, f'no pending step planned for the {executor}'
        entry = found
        name = f'step {entry.step_id!r} of unit {entry.unit}'
        waiting = [b for b in self.recipe.by_id[entry.step_id].after
                   if self._state[(entry.unit, b)] is not StepState.DONE]
        if waiting:
            return None, f'{name} waits for {", ".join(waiting)}'
        if any(self.recipe.by_id[k[1]].station == entry.station for k in self._running):
            return None, f'{name} waits for station {entry.station!r}'
        for resource in _occupies(entry.actor) + (entry.station,):
            ahead = first[resource]
            if ahead is not entry:
                return None, f'{name} waits: step {ahead.step_id!r} of unit {ahead.unit} is planned first at {resource}'
        if executor == HUMAN and not self._human_present and entry.actor != HUMAN:
            # An absent person's own steps are still shown (they come back to them: a person waiting
            # out of the scanner's view is not lost work); a handover would hold the robot.
            return None, f'{name} (handover) waits for the person, who is absent'
        for other in _occupies(entry.actor):
            if other == executor:
                continue
            if other == HUMAN and not self._human_present:
                return None, f'{name} (handover) waits for the person, who is absent'
            if other == ROBOT and self._stop_since_s is not None:
                return None, f'{name} (handover) waits for the robot (protective stop)'
            if self._current(other) is not None:
                return None, f'{name} (handover) waits for the {other} to finish its step'
        if executor == ROBOT and entry.actor == ROBOT and self._in_reach and entry.station in self._in_reach \
                and (self.config.reach_defer_awaited or not self._person_awaits(entry)):
            instead = self._out_of_reach_step(first, entry)
            if instead is not None:
                self._deferrals.append((now_s, entry.key, instead.key))
                return instead.key, ''
        return entry.key, ''

    def _next_robot_only(self) -> ScheduledStep | None:
        """The robot's first pending robot-only step in plan order (None: none left)."""
        return next((e for e in self._plan.entries
                     if e.actor == ROBOT and self._state[e.key] is StepState.PENDING), None)

    def _person_awaits(self, entry: ScheduledStep) -> bool:
        """True when the person's next planned step needs `entry` first (directly or not)."""
        upcoming = self.upcoming(HUMAN)
        return upcoming is not None and upcoming.unit == entry.unit and entry.step_id in self._before[upcoming.step_id]

    def _out_of_reach_step(self, first: dict[str, ScheduledStep], deferred: ScheduledStep) -> ScheduledStep | None:
        """The earliest-planned robot-only step that can start now at a station out of everyone's
        reach and is first in the plan at its station (only the robot's own order is waived, so
        no other executor's queue is jumped); None when there is none. Handovers are never
        deferred nor chosen: they need the person there."""
        assert self._in_reach is not None
        busy = {self.recipe.by_id[k[1]].station for k in self._running}
        for entry in self._plan.entries:
            if entry is deferred or entry.actor != ROBOT or self._state[entry.key] is not StepState.PENDING:
                continue
            if entry.station not in self._station_xy or entry.station in self._in_reach:
                continue            # unknown position or in reach: not a better choice
            if first.get(entry.station) is not entry or entry.station in busy:
                continue
            if all(self._state[(entry.unit, b)] is StepState.DONE for b in self.recipe.by_id[entry.step_id].after):
                return entry
        return None

    def _start(self, key: StepKey, now_s: float) -> None:
        entry = self._planned(key)
        duration = self.recipe.by_id[key[1]].duration_s(entry.actor)
        self._running[key] = _Running(entry.actor, now_s, now_s + duration)
        self._state[key] = StepState.ACTIVE

    def _action(self, key: StepKey, executor: str) -> Action:
        running = self._running[key]
        step = self.recipe.by_id[key[1]]
        return Action(key[0], key[1], executor, step.station, step.kind, step.is_handover,
                      running.start_s, running.expected_end_s)

    def _make_plan(self, now_s: float) -> Schedule:
        free = []
        if not self._human_present:
            free.append((HUMAN, now_s + self.config.absent_return_guess_s))
        if self._stop_since_s is not None:
            free.append((ROBOT, now_s + self.config.stop_clear_guess_s))
        # When a guess runs out, the plan would keep others waiting for the absent one: re-plan then.
        self._assumed_until_s = min((t for _, t in free), default=math.inf)
        either_to = ROBOT if (self._fatigued or not self._human_present) else None
        done = self.done_steps()
        request = PlanRequest(
            self.recipe, self.units, now_s=now_s, done=done,
            in_progress=tuple(InProgress(k[0], k[1], r.executor, r.start_s, r.expected_end_s)
                              for k, r in sorted(self._running.items())),
            executor_free_s=tuple(free), either_to=either_to, person_travel_s=self._person_travel_s)
        plan = self._scheduler.plan(request)
        # Run-time check: a plan that breaks a constraint is never executed (the node faults).
        validate_schedule(self.recipe, plan, self.units, done=done, person_travel_s=self._person_travel_s)
        return plan

    def _replan(self, now_s: float, reason: str) -> None:
        old = {e.key: e.actor for e in self._plan.entries if self._state[e.key] is StepState.PENDING}
        self._plan = self._make_plan(now_s)
        self._replans += 1
        self._reallocated += sum(1 for e in self._plan.entries if e.key in old and old[e.key] != e.actor)
        self._reasons.append((now_s, reason))


def _occupies(actor: str) -> tuple[str, ...]:
    return EXECUTORS if actor == BOTH else (actor,)
