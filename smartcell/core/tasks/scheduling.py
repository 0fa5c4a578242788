"""Allocation and scheduling of a recipe's steps between the robot and the person.

The problem: every step of every unit is done once, by one of its allowed executors (robot,
person, or both for a handover), for its nominal duration; a step starts after the steps it
waits for have ended; the robot does one step at a time, so does the person, and so does each
station (a handover occupies robot, person and station together, which is what synchronises
it). Minimise the makespan: the end of the last step.

This is a multi-mode resource-constrained project scheduling problem with unary resources.
Schedules are built with the serial schedule-generation scheme (SGS) with gap insertion: take
the steps in a precedence-feasible list and put each at the earliest time its predecessors and
all its resources allow. Over all lists and all executor choices the SGS reaches every active
schedule, and an optimal schedule is active, so:

  * exact (few steps): branch and bound over (next step, executor) choices with a critical-path
    and a workload bound, skipping partial schedules already seen. Optimal when it finishes
    within `exact_max_nodes`; `Schedule.optimal` says so.
  * heuristic (more steps): list scheduling with several priority rules (critical path, unit
    order, successors), the `either` executor picked on the fly (earliest finish), then a local
    search flipping `either` assignments, within an iteration count and an optional time budget.

Both baselines are always evaluated too and the best schedule wins, so the result is never
worse than either baseline: naive (every `either` step to the robot, each actor works through
the recipe in file order, unit after unit, no gap filling) and sequential (one step at a time).

Over a batch of units the steps of all units are scheduled together, so the robot starts unit
k+1 while the person finishes unit k whenever the constraints allow (pipelining).

The person walks between stations (`PlanRequest.person_travel_s`, seconds per pair of stations):
two of their steps at different stations are at least that far apart, so a plan that sends them
back and forth between the bench and the shared station pays for it, and the search prefers one
that does not. (The robot's moves between stations are part of its steps' durations.)

Pure Python; no ROS.
"""
from __future__ import annotations

import bisect
import dataclasses
import heapq
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from smartcell.core.tasks.recipe import BOTH, EITHER, HUMAN, ROBOT, Recipe, topological_order

EPS_S = 1e-9          # time comparison tolerance, s
_NEVER = -1e18        # start of an "always busy before" interval, s

StepKey = tuple[int, str]   # (unit index, step id)


class ScheduleError(ValueError):
    """A schedule breaks a constraint; the message lists every violation."""


@dataclass(frozen=True)
class ScheduledStep:
    unit: int
    step_id: str
    actor: str            # 'robot', 'human' or 'both' (handover)
    station: str
    start_s: float
    end_s: float
    fixed: bool = False   # already running when planned: start is actual, end an estimate

    @property
    def key(self) -> StepKey:
        return (self.unit, self.step_id)


@dataclass(frozen=True)
class Schedule:
    entries: tuple[ScheduledStep, ...]   # sorted by start time
    origin_s: float                      # time the plan starts from, s
    makespan_s: float                    # last end - origin, s
    method: str                          # 'exact', 'heuristic', 'naive', 'sequential', ...
    optimal: bool = False                # proven optimal (exact search finished)

    def entry(self, unit: int, step_id: str) -> ScheduledStep:
        for e in self.entries:
            if e.unit == unit and e.step_id == step_id:
                return e
        raise KeyError(f'step {step_id!r} of unit {unit} is not in this schedule')

    def for_executor(self, executor: str) -> tuple[ScheduledStep, ...]:
        """Entries that occupy `executor` ('robot' or 'human'), handovers included, by start time."""
        return tuple(e for e in self.entries if e.actor in (executor, BOTH))

    def busy_s(self, executor: str) -> float:
        return sum(e.end_s - e.start_s for e in self.for_executor(executor))


@dataclass(frozen=True)
class InProgress:
    """A step already started when re-planning; it keeps its executor."""

    unit: int
    step_id: str
    actor: str
    start_s: float
    expected_end_s: float


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: the remaining steps of `units` units from `now_s`."""

    recipe: Recipe
    units: int = 1
    now_s: float = 0.0
    done: frozenset[StepKey] = frozenset()
    in_progress: tuple[InProgress, ...] = ()
    executor_free_s: tuple[tuple[str, float], ...] = ()   # ('human', t): person not available before t s
    either_to: str | None = None                           # force pending `either` steps to this executor
    # The person's walking time between two stations (either way), s: (station, station, s) triples;
    # pairs not listed (and a station to itself) take no time.
    person_travel_s: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True)
class Scheduler:
    """Scheduling settings. With time_budget_s=None the result depends only on the inputs."""

    exact_max_steps: int = 8             # exact search when at most this many steps remain
    exact_max_nodes: int = 200_000       # node budget of the exact search
    search_iterations: int = 300         # local-search moves of the heuristic
    time_budget_s: float | None = 0.08   # wall-clock cap of one plan() call, s (None: node/move counts only)
    seed: int = 0

    def schedule(self, recipe: Recipe, units: int = 1) -> Schedule:
        return self.plan(PlanRequest(recipe, units))

    def plan(self, request: PlanRequest) -> Schedule:
        deadline = None if self.time_budget_s is None else time.perf_counter() + self.time_budget_s
        problem = _Problem.build(request)
        candidates = [_naive(problem), _sequential(problem)]
        if len(problem.jobs) <= self.exact_max_steps:
            # Priority rules alone give a good incumbent cheaply; the better it is, the more the search prunes.
            candidates.append(_heuristic(problem, self, deadline, iterations=0))
            exact = _branch_and_bound(problem, self.exact_max_nodes, min(candidates, key=_span), deadline)
            if exact is not None:
                candidates.append(exact)
        if not any(c.optimal for c in candidates):
            candidates.append(_heuristic(problem, self, deadline, iterations=self.search_iterations))
        best = min(candidates, key=lambda s: (round(s.makespan_s, 9), not s.optimal, _METHOD_RANK[s.method]))
        if not best.optimal:
            # A schedule that meets the lower bound is optimal, whatever found it.
            base = max((f.end_s for f in problem.fixed), default=request.now_s)
            bound = _lower_bound(problem, [False] * len(problem.jobs), [0.0] * len(problem.jobs), base)
            if best.makespan_s + request.now_s <= bound + EPS_S:
                best = dataclasses.replace(best, optimal=True)
        return best


_METHOD_RANK = {'exact': 0, 'heuristic': 1, 'naive': 2, 'sequential': 3}


def person_travel_times(positions_xy: Iterable[tuple[str, float, float]], walking_speed_mps: float
                        ) -> tuple[tuple[str, str, float], ...]:
    """The person's walking time between every two stations, straight line at walking_speed_mps:
    (station, station, s) triples for PlanRequest.person_travel_s. A lower bound where the way is
    not straight (round a table, through the fence opening)."""
    if not (math.isfinite(walking_speed_mps) and walking_speed_mps > 0.0):
        raise ValueError(f'walking speed must be a positive finite number of m/s, got {walking_speed_mps!r}')
    stations = list(positions_xy)
    return tuple((a, b, math.hypot(xa - xb, ya - yb) / walking_speed_mps)
                 for i, (a, xa, ya) in enumerate(stations) for (b, xb, yb) in stations[i + 1:])


def naive_schedule(recipe: Recipe, units: int = 1) -> Schedule:
    """Baseline: `either` steps to the robot; each actor follows the recipe order, unit by unit, no gap filling."""
    return _naive(_Problem.build(PlanRequest(recipe, units)))


def sequential_schedule(recipe: Recipe, units: int = 1) -> Schedule:
    """Baseline: one step at a time in recipe order, `either` steps to the faster executor."""
    return _sequential(_Problem.build(PlanRequest(recipe, units)))


# --- validation ------------------------------------------------------------------------------

def schedule_violations(recipe: Recipe, schedule: Schedule, units: int = 1,
                        done: Iterable[StepKey] = (), check_durations: bool = True,
                        person_travel_s: Iterable[tuple[str, str, float]] = ()) -> list[str]:
    """Every broken constraint of `schedule`, as messages naming the step; [] when valid.

    The schedule must hold every (unit, step) not in `done` exactly once. Entries marked fixed
    (and all entries when check_durations is False, e.g. a log of what really happened) are not
    held to the nominal duration. With `person_travel_s`, a planned step of the person at another
    station than their step before must leave them the time to walk there.
    """
    problems: list[str] = []
    done = frozenset(done)
    expected = {(u, s.id) for u in range(units) for s in recipe.steps} - done
    seen: dict[StepKey, ScheduledStep] = {}
    for e in schedule.entries:
        name = f'step {e.step_id!r} of unit {e.unit}'
        if e.key in seen:
            problems.append(f'{name} is scheduled twice')
            continue
        seen[e.key] = e
        if e.key not in expected:
            problems.append(f'{name} is not expected (done, unknown step or unit outside 0..{units - 1})')
            continue
        step = recipe.by_id[e.step_id]
        if e.actor not in step.executors:
            problems.append(f'{name} is given to {e.actor!r}; accepted: {", ".join(step.executors)}')
            continue
        if e.station != step.station:
            problems.append(f'{name} is at station {e.station!r}, the recipe says {step.station!r}')
        if not (math.isfinite(e.start_s) and math.isfinite(e.end_s)) or e.end_s < e.start_s:
            problems.append(f'{name} has bad times start={e.start_s!r} s, end={e.end_s!r} s')
            continue
        if check_durations and not e.fixed and abs(e.end_s - e.start_s - step.duration_s(e.actor)) > 1e-6:
            problems.append(f'{name} lasts {e.end_s - e.start_s:g} s, nominal for {e.actor} is '
                            f'{step.duration_s(e.actor):g} s')
        if not e.fixed and e.start_s < schedule.origin_s - EPS_S:
            problems.append(f'{name} starts at {e.start_s:g} s, before the plan origin {schedule.origin_s:g} s')
    for key in sorted(expected - set(seen)):
        problems.append(f'step {key[1]!r} of unit {key[0]} is missing')
    for e in seen.values():
        if e.key not in expected:
            continue
        for before in recipe.by_id[e.step_id].after:
            if (e.unit, before) in done:
                continue
            p = seen.get((e.unit, before))
            if p is not None and p.end_s > e.start_s + EPS_S:
                problems.append(f'step {e.step_id!r} of unit {e.unit} starts at {e.start_s:g} s before '
                                f'{before!r} ends at {p.end_s:g} s')
    occupancy: dict[str, list[ScheduledStep]] = {}
    for e in seen.values():
        users = [e.station] + ([ROBOT, HUMAN] if e.actor == BOTH else [e.actor])
        for resource in users:
            occupancy.setdefault(resource, []).append(e)
    for resource, entries in occupancy.items():
        entries.sort(key=lambda x: (x.start_s, x.end_s))
        for a, b in zip(entries, entries[1:]):
            if b.start_s < a.end_s - EPS_S:
                problems.append(f'{resource!r} is used by step {a.step_id!r} of unit {a.unit} and step '
                                f'{b.step_id!r} of unit {b.unit} at the same time ({b.start_s:g} s < {a.end_s:g} s)')
    walks = {(a, b): float(t) for a, b, t in person_travel_s} | {(b, a): float(t) for a, b, t in person_travel_s}
    person = sorted(occupancy.get(HUMAN, []), key=lambda x: (x.start_s, x.end_s))
    for a, b in zip(person, person[1:]):
        walk = walks.get((a.station, b.station), 0.0) if a.station != b.station else 0.0
        if not b.fixed and b.start_s < a.end_s + walk - EPS_S:
            problems.append(f'the person cannot walk from {a.station!r} (step {a.step_id!r} of unit {a.unit}, ends '
                            f'{a.end_s:g} s) to {b.station!r} (step {b.step_id!r} of unit {b.unit}, starts '
                            f'{b.start_s:g} s) in {walk:g} s')
    if seen:
        span = max(e.end_s for e in seen.values()) - schedule.origin_s
        if abs(span - schedule.makespan_s) > 1e-6:
            problems.append(f'makespan_s is {schedule.makespan_s:g} s but the last step ends {span:g} s after origin')
    return problems


def validate_schedule(recipe: Recipe, schedule: Schedule, units: int = 1, done: Iterable[StepKey] = (),
                      check_durations: bool = True, person_travel_s: Iterable[tuple[str, str, float]] = ()) -> None:
    """Raise ScheduleError listing every violation (see schedule_violations)."""
    problems = schedule_violations(recipe, schedule, units, done, check_durations, tuple(person_travel_s))
    if problems:
        raise ScheduleError('invalid schedule: ' + '; '.join(problems))


# --- the problem in index form ----------------------------------------------------------------

def _resources(station: str, executor: str) -> tuple[str, ...]:
    return (ROBOT, HUMAN, station) if executor == BOTH else (executor, station)


@dataclass(frozen=True)
class _Job:
    key: StepKey
    station: str
    modes: tuple[tuple[str, float], ...]   # (executor, duration s)
    preds: tuple[int, ...]
    release_s: float                       # earliest start: now, or end of an in-progress predecessor
    file_index: int


@dataclass
class _Problem:
    request: PlanRequest
    jobs: list[_Job]
    succs: list[list[int]] = field(default_factory=list)
    fixed: list[ScheduledStep] = field(default_factory=list)
    # resource -> fixed intervals (start s, end s, station or None: the person away, nowhere known)
    busy: dict[str, list[tuple[float, float, str | None]]] = field(default_factory=dict)
    travel: dict[tuple[str, str], float] = field(default_factory=dict)  # (station, station) -> the person's walk, s
    tail_s: list[float] = field(default_factory=list)   # critical path from job start to the end, s
    min_duration_s: list[float] = field(default_factory=list)

    @staticmethod
    def build(request: PlanRequest) -> '_Problem':
        recipe, now = request.recipe, request.now_s
        if request.units < 1:
            raise ValueError(f'units must be >= 1, got {request.units!r}')
        if request.either_to not in (None, ROBOT, HUMAN):
            raise ValueError(f'either_to must be robot, human or None, got {request.either_to!r}')
        running = {(p.unit, p.step_id): p for p in request.in_progress}
        fixed = [ScheduledStep(p.unit, p.step_id, p.actor, recipe.by_id[p.step_id].station, p.start_s,
                               max(p.expected_end_s, now), fixed=True) for p in request.in_progress]
        fixed_end = {f.key: f.end_s for f in fixed}
        busy: dict[str, list[tuple[float, float, str | None]]] = {}
        for f in fixed:
            for r in _resources(f.station, f.actor):
                busy.setdefault(r, []).append((f.start_s, f.end_s, f.station))
        for executor, free_s in request.executor_free_s:
            busy.setdefault(executor, []).append((_NEVER, free_s, None))
        travel: dict[tuple[str, str], float] = {}
        for a, b, seconds in request.person_travel_s:
            if not (math.isfinite(seconds) and seconds >= 0.0):
                raise ValueError(f'person_travel_s {a!r} -> {b!r} must be a finite number >= 0 of s, got {seconds!r}')
            if a != b:
                travel[(a, b)] = travel[(b, a)] = float(seconds)
        order = topological_order(recipe)
        position = {step_id: i for i, step_id in enumerate(order)}
        index: dict[StepKey, int] = {}
        jobs: list[_Job] = []
        for unit in range(request.units):
            for step_id in order:
                key = (unit, step_id)
                if key in request.done or key in running:
                    continue
                step = recipe.by_id[step_id]
                modes = step.durations_s
                if step.actor == EITHER and request.either_to is not None:
                    modes = tuple(m for m in modes if m[0] == request.either_to)
                release = max([now] + [fixed_end[(unit, b)] for b in step.after if (unit, b) in fixed_end])
                preds = tuple(index[(unit, b)] for b in step.after if (unit, b) in index)
                index[key] = len(jobs)
                jobs.append(_Job(key, step.station, modes, preds, release, position[step_id]))
        problem = _Problem(request, jobs, fixed=fixed, busy=busy, travel=travel)
        problem.succs = [[] for _ in jobs]
        for j, job in enumerate(jobs):
            for p in job.preds:
                problem.succs[p].append(j)
        problem.min_duration_s = [min(d for _, d in job.modes) for job in jobs]
        problem.tail_s = [0.0] * len(jobs)
        for j in reversed(range(len(jobs))):   # jobs are in topological order
            shortest = min(d for _, d in jobs[j].modes)
            problem.tail_s[j] = shortest + max((problem.tail_s[s] for s in problem.succs[j]), default=0.0)
        return problem

    def to_schedule(self, starts: Sequence[float], modes: Sequence[int], method: str,
                    optimal: bool = False) -> Schedule:
        entries = list(self.fixed)
        for j, job in enumerate(self.jobs):
            executor, duration = job.modes[modes[j]]
            entries.append(ScheduledStep(job.key[0], job.key[1], executor, job.station, starts[j],
                                         starts[j] + duration))
        entries.sort(key=lambda e: (e.start_s, e.unit, e.step_id))
        origin = self.request.now_s
        end = max((e.end_s for e in entries), default=origin)
        return Schedule(tuple(entries), origin, end - origin, method, optimal)


def _span(schedule: Schedule) -> float:
    return schedule.makespan_s


class _Timelines:
    """Busy intervals per resource, sorted and disjoint, for earliest-fit placement. Each interval
    keeps its station: on the person's timeline a step at another station must leave room to walk
    there (`travel`, s per pair of stations) before and after it."""

    def __init__(self, busy: dict[str, list[tuple[float, float, str | None]]],
                 travel: dict[tuple[str, str], float] | None = None) -> None:
        self.starts: dict[str, list[float]] = {}
        self.ends: dict[str, list[float]] = {}
        self.stations: dict[str, list[str | None]] = {}
        self.travel = travel or {}
        for resource, intervals in busy.items():
            merged: list[list] = []
            for a, b, station in sorted(intervals, key=lambda i: (i[0], i[1])):
                # overlapping reservations (away + running) merge into one, at the later one's station
                if merged and a <= merged[-1][1]:
                    if b >= merged[-1][1]:
                        merged[-1][1], merged[-1][2] = b, station
                else:
                    merged.append([a, b, station])
            for a, b, station in merged:
                self.add(resource, a, b, station)

    def earliest(self, resources: Sequence[str], est: float, duration: float, station: str | None = None) -> float:
        t = est
        walks = bool(self.travel) and station is not None
        moved = True
        while moved:
            moved = False
            for r in resources:
                ends = self.ends.get(r)
                if not ends:
                    continue
                if walks and r == HUMAN:
                    for a, b, at in zip(self.starts[r], ends, self.stations[r]):
                        walk = self.walk_s(at, station)
                        if a - walk < t + duration - EPS_S and b + walk > t + EPS_S:
                            t = b + walk
                            moved = True
                    continue
                i = bisect.bisect_right(ends, t + EPS_S)
                if i < len(ends) and self.starts[r][i] < t + duration - EPS_S:
                    t = ends[i]
                    moved = True
        return t

    def latest_end(self, resources: Sequence[str], station: str | None = None) -> float:
        """The last end on these resources (on the person's, plus the walk from there to `station`)."""
        latest = _NEVER
        for r in resources:
            if not self.ends.get(r):
                continue
            end = self.ends[r][-1]
            latest = max(latest, end + (self.walk_s(self.stations[r][-1], station) if r == HUMAN else 0.0))
        return latest

    def walk_s(self, here: str | None, there: str | None) -> float:
        """The person's walk from one station to another, s (0 where either is unknown)."""
        return 0.0 if here is None or there is None else self.travel.get((here, there), 0.0)

    def add(self, resource: str, start: float, end: float, station: str | None = None) -> None:
        starts = self.starts.setdefault(resource, [])
        ends = self.ends.setdefault(resource, [])
        stations = self.stations.setdefault(resource, [])
        i = bisect.bisect_right(starts, start)
        starts.insert(i, start)
        ends.insert(i, end)
        stations.insert(i, station)

    def remove(self, resource: str, start: float) -> None:
        i = bisect.bisect_left(self.starts[resource], start)
        del self.starts[resource][i]
        del self.ends[resource][i]
        del self.stations[resource][i]


# --- schedule generation ----------------------------------------------------------------------

def _sgs(problem: _Problem, order: Sequence[int], modes: Sequence[int | None], insertion: bool = True
         ) -> tuple[list[float], list[int], float]:
    """Serial SGS: place jobs in `order` at their earliest feasible start.

    A mode of None picks, for that job, the executor that finishes it earliest.
    Without insertion a job never starts before the last end on its resources (no gap filling).
    """
    jobs = problem.jobs
    timelines = _Timelines(problem.busy, problem.travel)
    starts = [0.0] * len(jobs)
    ends = [0.0] * len(jobs)
    chosen = [0] * len(jobs)
    span = max((f.end_s for f in problem.fixed), default=problem.request.now_s)
    for j in order:
        job = jobs[j]
        est = max([job.release_s] + [ends[p] for p in job.preds])
        best: tuple[float, int, float] | None = None
        fixed = modes[j]
        candidates: Sequence[int] = range(len(job.modes)) if fixed is None else (fixed,)
        for m in candidates:
            executor, duration = job.modes[m]
            resources = _resources(job.station, executor)
            earliest = est if insertion else max(est, timelines.latest_end(resources, job.station))
            start = timelines.earliest(resources, earliest, duration, job.station)
            if best is None or start + duration < best[0] + best[2] - EPS_S:
                best = (start, m, duration)
        assert best is not None, 'every job has at least one mode'
        start, m, duration = best
        for r in _resources(job.station, job.modes[m][0]):
            timelines.add(r, start, start + duration, job.station)
        starts[j], ends[j], chosen[j] = start, start + duration, m
        span = max(span, start + duration)
    return starts, chosen, span


def _priority_list(problem: _Problem, key: Callable[[int], tuple]) -> list[int]:
    """Precedence-feasible list: repeatedly take the ready job with the smallest key."""
    waiting = [len(job.preds) for job in problem.jobs]
    ready = [(key(j), j) for j, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, j = heapq.heappop(ready)
        order.append(j)
        for s in problem.succs[j]:
            waiting[s] -= 1
            if waiting[s] == 0:
                heapq.heappush(ready, (key(s), s))
    return order


def _rules(problem: _Problem) -> dict[str, Callable[[int], tuple]]:
    jobs, tail = problem.jobs, problem.tail_s
    n_succ = [len(s) for s in problem.succs]
    return {
        'critical_path': lambda j: (-tail[j], jobs[j].key[0], jobs[j].file_index),
        'unit_then_critical_path': lambda j: (jobs[j].key[0], -tail[j], jobs[j].file_index),
        'release_then_critical_path': lambda j: (jobs[j].release_s, -tail[j], jobs[j].key[0], jobs[j].file_index),
        'most_successors': lambda j: (-n_succ[j], -tail[j], jobs[j].key[0], jobs[j].file_index),
        'recipe_order': lambda j: (jobs[j].key[0], jobs[j].file_index),
    }


def _naive(problem: _Problem) -> Schedule:
    modes = [next((i for i, m in enumerate(job.modes) if m[0] == ROBOT), 0) for job in problem.jobs]
    order = _priority_list(problem, _rules(problem)['recipe_order'])
    starts, chosen, _ = _sgs(problem, order, modes, insertion=False)
    return problem.to_schedule(starts, chosen, 'naive')


def _sequential(problem: _Problem) -> Schedule:
    order = _priority_list(problem, _rules(problem)['recipe_order'])
    timelines = _Timelines(problem.busy, problem.travel)
    starts = [0.0] * len(problem.jobs)
    modes = [min(range(len(job.modes)), key=lambda m: job.modes[m][1]) for job in problem.jobs]
    t = max([problem.request.now_s] + [f.end_s for f in problem.fixed])
    for j in order:
        job = problem.jobs[j]
        executor, duration = job.modes[modes[j]]
        resources = _resources(job.station, executor)
        t = timelines.earliest(resources, max(t, job.release_s, timelines.latest_end(resources, job.station)),
                               duration, job.station)
        starts[j] = t
        for r in resources:
            timelines.add(r, t, t + duration, job.station)
        t += duration
    return problem.to_schedule(starts, modes, 'sequential')


def _heuristic(problem: _Problem, settings: Scheduler, deadline: float | None, iterations: int) -> Schedule:
    """Priority rules with on-the-fly executor choice, then a local search that flips `either`
    executors or moves one step earlier in the list; a move is kept when the makespan does not grow."""
    best: tuple[float, list[int], list[float], list[int]] | None = None
    free = [None] * len(problem.jobs)
    for rule in _rules(problem).values():
        order = _priority_list(problem, rule)
        starts, chosen, span = _sgs(problem, order, free)
        if best is None or span < best[0] - EPS_S:
            best = (span, order, starts, chosen)
    assert best is not None, 'at least one priority rule ran'
    span, order, starts, modes = best
    flippable = [j for j, job in enumerate(problem.jobs) if len(job.modes) > 1]
    rng = random.Random(settings.seed)
    for _ in range(iterations if len(problem.jobs) > 1 else 0):
        if deadline is not None and time.perf_counter() > deadline:
            break
        trial_order, trial = order, modes
        if flippable and rng.random() < 0.5:
            trial = list(modes)
            for j in rng.sample(flippable, min(len(flippable), rng.choice((1, 1, 2)))):
                trial[j] = 1 - trial[j]
        else:
            trial_order = _move_earlier(problem, order, rng)
        trial_starts, trial_modes, trial_span = _sgs(problem, trial_order, trial)
        # Sideways moves (equal makespan) are kept to walk across plateaus.
        if trial_span <= span + EPS_S:
            if trial_span < span - EPS_S:
                # Re-derive the list from the improved schedule: start order is precedence-feasible.
                trial_order = sorted(range(len(problem.jobs)),
                                     key=lambda j: (trial_starts[j], problem.jobs[j].file_index))
            span, order, starts, modes = trial_span, trial_order, trial_starts, trial_modes
    return problem.to_schedule(starts, modes, 'heuristic')


def _move_earlier(problem: _Problem, order: list[int], rng: random.Random) -> list[int]:
    """The list with one job moved to a random earlier place that still follows its predecessors."""
    position = {j: i for i, j in enumerate(order)}
    i = rng.randrange(len(order))
    j = order[i]
    earliest = max((position[p] + 1 for p in problem.jobs[j].preds), default=0)
    if earliest >= i:
        return order
    k = rng.randint(earliest, i - 1)
    return order[:k] + [j] + order[k:i] + order[i + 1:]


def _lower_bound(problem: _Problem, placed: Sequence[bool], ends: Sequence[float], span: float) -> float:
    """A makespan no completion of the partial schedule can beat (absolute time, s).

    Critical path from each unplaced job's earliest start, and workload: the robot's (and the
    person's) mandatory work, or both executors' total work shared out, after the earliest start.
    """
    jobs, min_duration = problem.jobs, problem.min_duration_s
    est = [0.0] * len(jobs)
    bound = span
    load = {ROBOT: 0.0, HUMAN: 0.0}
    shared = 0.0
    first = math.inf
    for j, job in enumerate(jobs):   # topological order
        if placed[j]:
            continue
        est[j] = max([job.release_s] + [ends[p] if placed[p] else est[p] + min_duration[p] for p in job.preds])
        bound = max(bound, est[j] + problem.tail_s[j])
        first = min(first, est[j])
        executors = [m[0] for m in job.modes]
        if executors == [BOTH]:
            load[ROBOT] += min_duration[j]
            load[HUMAN] += min_duration[j]
        elif len(executors) == 1:
            load[executors[0]] += min_duration[j]
        else:
            shared += min_duration[j]
    if first < math.inf:
        bound = max(bound, first + max(load.values()), first + (load[ROBOT] + load[HUMAN] + shared) / 2.0)
    return bound


def _branch_and_bound(problem: _Problem, max_nodes: int, incumbent: Schedule, deadline: float | None
                      ) -> Schedule | None:
    """Depth-first search over (ready job, executor), earliest-fit placement; None when it runs out
    of nodes or time (then nothing is proven)."""
    jobs = problem.jobs
    n = len(jobs)
    if n == 0:
        return problem.to_schedule([], [], 'exact', optimal=True)
    timelines = _Timelines(problem.busy, problem.travel)
    best_span = incumbent.makespan_s + problem.request.now_s
    best: list = [None]
    starts = [0.0] * n
    ends = [0.0] * n
    modes = [0] * n
    placed = [False] * n
    base_span = max((f.end_s for f in problem.fixed), default=problem.request.now_s)
    seen: set[frozenset] = set()
    nodes = [0]
    by_priority = sorted(range(n), key=lambda j: -problem.tail_s[j])

    def search(count: int, span: float, key: frozenset) -> bool:
        nonlocal best_span
        nodes[0] += 1
        if nodes[0] > max_nodes:
            return False
        if deadline is not None and nodes[0] % 32 == 0 and time.perf_counter() > deadline:
            return False
        if count == n:
            if span < best_span - EPS_S:
                best_span = span
                best[0] = (list(starts), list(modes))
            return True
        if _lower_bound(problem, placed, ends, span) >= best_span - EPS_S:
            return True
        for j in by_priority:
            if placed[j] or not all(placed[p] for p in jobs[j].preds):
                continue
            job = jobs[j]
            est = max([job.release_s] + [ends[p] for p in job.preds])
            for m, (executor, duration) in enumerate(job.modes):
                resources = _resources(job.station, executor)
                start = timelines.earliest(resources, est, duration, job.station)
                child = key | {(j, m, round(start, 9))}
                if child in seen:
                    continue
                seen.add(child)
                for r in resources:
                    timelines.add(r, start, start + duration, job.station)
                placed[j], starts[j], ends[j], modes[j] = True, start, start + duration, m
                finished = search(count + 1, max(span, start + duration), child)
                placed[j] = False
                for r in resources:
                    timelines.remove(r, start)
                if not finished:
                    return False
        return True

    complete = search(0, base_span, frozenset())
    if not complete:
        return None
    if best[0] is None:
        # Nothing beat the incumbent, which is therefore optimal.
        return Schedule(incumbent.entries, incumbent.origin_s, incumbent.makespan_s, incumbent.method, optimal=True)
    return problem.to_schedule(best[0][0], best[0][1], 'exact', optimal=True)
