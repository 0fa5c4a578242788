"""Recipes of human-robot shared tasks: the steps of one product, loaded from YAML and validated.

A recipe (config/job_*.yaml) lists the stations, parts and tools of a product and its steps.
Every step names who may do it (`actor`), what kind of work it is, where (`station`), how long
it takes (s) and which steps must be finished before it starts (`after`). Handover steps
(kind `present` or `receive`, actor `both`) need the robot and the person at the same station
at the same time. Everything is checked at load time; a mistake raises RecipeError naming the
step and the problem, never a silent default (docs/tasks.md has the format).

Pure Python + pyyaml; no ROS.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from smartcell.core.params import ConfigError

ROBOT = 'robot'
HUMAN = 'human'
EITHER = 'either'
BOTH = 'both'              # handover: robot and person together
ACTORS = (ROBOT, HUMAN, EITHER, BOTH)
EXECUTORS = (ROBOT, HUMAN)  # who actually works; `both` occupies the two of them

ROBOT_MOTION_KINDS = ('pick', 'place', 'process')   # kinds an arm motion can do alone
HANDOVER_KINDS = ('present', 'receive')             # robot presents to / receives from the person
HUMAN_KINDS = ('assemble', 'inspect', 'fetch', 'fasten', 'pack', 'pick', 'place', 'process')

# Which kinds each actor value accepts. An `either` step must be something the arm can do,
# because the scheduler may give it to the robot.
KINDS_BY_ACTOR: dict[str, tuple[str, ...]] = {
    ROBOT: ROBOT_MOTION_KINDS,
    HUMAN: HUMAN_KINDS,
    EITHER: ROBOT_MOTION_KINDS,
    BOTH: HANDOVER_KINDS,
}

STEP_KEYS = ('id', 'actor', 'kind', 'station', 'duration_s', 'cv', 'after', 'parts', 'tools', 'description')
REQUIRED_STEP_KEYS = ('id', 'actor', 'kind', 'station', 'duration_s')
RECIPE_KEYS = ('job', 'description', 'stations', 'parts', 'tools', 'steps')
MAX_CV = 1.0   # a coefficient of variation above 1 means the nominal duration says nothing


class RecipeError(ConfigError):
    """A recipe is invalid; the message names the step (or key) and the problem."""


@dataclass(frozen=True)
class Step:
    """One step of a product.

    `durations_s` maps each executor who may do the step to its nominal duration in s:
    robot -> {'robot'}, human -> {'human'}, either -> {'robot', 'human'}, both -> {'both'}.
    """

    id: str
    actor: str                                  # one of ACTORS
    kind: str                                   # one of KINDS_BY_ACTOR[actor]
    station: str
    durations_s: tuple[tuple[str, float], ...]  # (executor, nominal duration s)
    cv: float = 0.0                             # coefficient of variation of the duration, 1
    after: tuple[str, ...] = ()                 # step ids that must be done before this starts
    parts: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    description: str = ''

    @property
    def is_handover(self) -> bool:
        return self.actor == BOTH

    @property
    def executors(self) -> tuple[str, ...]:
        """Who may be assigned: ('robot',), ('human',), ('robot', 'human') or ('both',)."""
        return tuple(actor for actor, _ in self.durations_s)

    def duration_s(self, executor: str) -> float:
        """Nominal duration in s when done by `executor` ('robot', 'human' or 'both')."""
        for actor, duration in self.durations_s:
            if actor == executor:
                return duration
        raise ValueError(f'step {self.id!r} cannot be done by {executor!r}; accepted: {", ".join(self.executors)}')

    def min_duration_s(self) -> float:
        return min(duration for _, duration in self.durations_s)


@dataclass(frozen=True)
class Recipe:
    """A validated product recipe: steps in file order plus the stations, parts and tools it uses."""

    job: str
    steps: tuple[Step, ...]
    stations: tuple[str, ...]
    parts: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    description: str = ''
    by_id: dict[str, Step] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'by_id', {s.id: s for s in self.steps})

    def step(self, step_id: str) -> Step:
        try:
            return self.by_id[step_id]
        except KeyError:
            raise KeyError(f'unknown step {step_id!r} in job {self.job!r}') from None

    def successors(self) -> dict[str, tuple[str, ...]]:
        """Step id -> ids of the steps that wait for it."""
        result: dict[str, list[str]] = {s.id: [] for s in self.steps}
        for s in self.steps:
            for before in s.after:
                result[before].append(s.id)
        return {k: tuple(v) for k, v in result.items()}


def load_recipe(path: str | Path, stations: Iterable[str] | None = None) -> Recipe:
    """Read and validate a recipe YAML file. `stations` adds cell stations to those the file lists."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f'recipe file not found: {path}')
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError(f'recipe file {path} is not valid YAML: {exc}') from exc
    return recipe_from_dict(document, stations=stations, source=str(path))


def recipe_from_dict(document: Any, stations: Iterable[str] | None = None, source: str = '<dict>') -> Recipe:
    """Validate a parsed recipe document; every problem raises RecipeError naming the step and key."""
    if not isinstance(document, Mapping):
        raise RecipeError(f'recipe {source} must be a mapping with keys {", ".join(RECIPE_KEYS)}')
    _reject_unknown_keys(document, RECIPE_KEYS, f'recipe {source}')
    job = document.get('job')
    if not isinstance(job, str) or not job:
        raise RecipeError(f'recipe {source}: key job must be a non-empty string, got {job!r}')
    known_stations = _name_list(document.get('stations', []), f'recipe {job!r} key stations')
    known_stations += tuple(s for s in (stations or ()) if s not in known_stations)
    if not known_stations:
        raise RecipeError(f'recipe {job!r} lists no stations: add a stations list or pass the cell stations')
    parts = _name_list(document.get('parts', []), f'recipe {job!r} key parts')
    tools = _name_list(document.get('tools', []), f'recipe {job!r} key tools')
    raw_steps = document.get('steps')
    if not isinstance(raw_steps, list) or not raw_steps:
        raise RecipeError(f'recipe {job!r}: key steps must be a non-empty list of steps')
    steps: list[Step] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_steps):
        step = _parse_step(raw, index, known_stations, parts, tools)
        if step.id in seen:
            raise RecipeError(f'step {step.id!r}: duplicate id (ids must be unique in a recipe)')
        seen.add(step.id)
        steps.append(step)
    for step in steps:
        for before in step.after:
            if before not in seen:
                raise RecipeError(f'step {step.id!r}: key after names unknown step {before!r}; '
                                  f'known steps: {", ".join(sorted(seen))}')
            if before == step.id:
                raise RecipeError(f'step {step.id!r}: precedence cycle {step.id} -> {step.id}')
    cycle = find_cycle({s.id: s.after for s in steps})
    if cycle:
        raise RecipeError(f'step {cycle[0]!r}: precedence cycle {" -> ".join(cycle)}')
    description = document.get('description', '')
    if not isinstance(description, str):
        raise RecipeError(f'recipe {job!r}: key description must be a string, got {description!r}')
    return Recipe(job=job, steps=tuple(steps), stations=known_stations, parts=parts, tools=tools,
                  description=description)


def find_cycle(after: Mapping[str, Iterable[str]]) -> list[str]:
    """A precedence cycle as [a, b, ..., a] (each waits for the next), or [] when there is none."""
    white, grey, black = 0, 1, 2
    colour = {node: white for node in after}
    for root in after:
        if colour[root] != white:
            continue
        path: list[str] = []
        stack: list[tuple[str, Any]] = [(root, iter(after[root]))]
        colour[root] = grey
        path.append(root)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = black
                stack.pop()
                path.pop()
            elif colour.get(child) == grey:
                return path[path.index(child):] + [child]
            elif colour.get(child) == white:
                colour[child] = grey
                path.append(child)
                stack.append((child, iter(after[child])))
    return []


def topological_order(recipe: Recipe) -> tuple[str, ...]:
    """Step ids so that every step comes after the steps it waits for; ties keep file order."""
    remaining = {s.id: set(s.after) for s in recipe.steps}
    order: list[str] = []
    while remaining:
        ready = [s.id for s in recipe.steps if s.id in remaining and not remaining[s.id]]
        for step_id in ready:
            del remaining[step_id]
            for waits in remaining.values():
                waits.discard(step_id)
        order.extend(ready)
    return tuple(order)


def _parse_step(raw: Any, index: int, stations: tuple[str, ...], parts: tuple[str, ...],
                tools: tuple[str, ...]) -> Step:
    if not isinstance(raw, Mapping):
        raise RecipeError(f'step #{index + 1} must be a mapping with keys {", ".join(STEP_KEYS)}, got {raw!r}')
    step_id = raw.get('id')
    if not isinstance(step_id, str) or not step_id:
        raise RecipeError(f'step #{index + 1}: key id must be a non-empty string, got {step_id!r}')
    where = f'step {step_id!r}'
    _reject_unknown_keys(raw, STEP_KEYS, where)
    missing = [key for key in REQUIRED_STEP_KEYS if key not in raw]
    if missing:
        raise RecipeError(f'{where}: missing key(s) {", ".join(missing)}')
    actor = raw['actor']
    if actor not in ACTORS:
        raise RecipeError(f'{where}: unknown actor {actor!r}; accepted: {", ".join(ACTORS)}')
    kind = raw['kind']
    if kind not in KINDS_BY_ACTOR[actor]:
        raise RecipeError(f'{where}: kind {kind!r} is not accepted for actor {actor!r}; '
                          f'accepted: {", ".join(KINDS_BY_ACTOR[actor])}')
    station = raw['station']
    if station not in stations:
        raise RecipeError(f'{where}: unknown station {station!r}; accepted: {", ".join(stations)}')
    cv = _number(raw.get('cv', 0.0), f'{where}: key cv')
    if not 0.0 <= cv <= MAX_CV:
        raise RecipeError(f'{where}: key cv must be in [0, {MAX_CV:g}], got {cv!r}')
    step_parts = _name_list(raw.get('parts', []), f'{where}: key parts')
    step_tools = _name_list(raw.get('tools', []), f'{where}: key tools')
    for name, declared, key in [(p, parts, 'parts') for p in step_parts] + [(t, tools, 'tools') for t in step_tools]:
        if name not in declared:
            raise RecipeError(f'{where}: {key} names {name!r}, which the recipe does not declare; '
                              f'declared {key}: {", ".join(declared) or "none"}')
    description = raw.get('description', '')
    if not isinstance(description, str):
        raise RecipeError(f'{where}: key description must be a string, got {description!r}')
    return Step(id=step_id, actor=actor, kind=kind, station=station,
                durations_s=_durations(raw['duration_s'], actor, where), cv=cv,
                after=_name_list(raw.get('after', []), f'{where}: key after'),
                parts=step_parts, tools=step_tools, description=description)


def _durations(raw: Any, actor: str, where: str) -> tuple[tuple[str, float], ...]:
    executors = {ROBOT: (ROBOT,), HUMAN: (HUMAN,), EITHER: (ROBOT, HUMAN), BOTH: (BOTH,)}[actor]
    if isinstance(raw, Mapping):
        if actor != EITHER:
            raise RecipeError(f'{where}: duration_s may be a mapping only for actor either, got {raw!r}')
        _reject_unknown_keys(raw, executors, f'{where}: duration_s')
        if set(raw) != set(executors):
            raise RecipeError(f'{where}: duration_s must give both robot and human, got {dict(raw)!r}')
        values = [raw[e] for e in executors]
    else:
        values = [raw] * len(executors)
    durations = []
    for executor, value in zip(executors, values):
        seconds = _number(value, f'{where}: duration_s')
        if not seconds > 0.0:
            raise RecipeError(f'{where}: duration_s must be a positive finite number of seconds, got {value!r}')
        durations.append((executor, seconds))
    return tuple(durations)


def _number(value: Any, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecipeError(f'{label} must be a number, got {value!r}')
    if not math.isfinite(value):
        raise RecipeError(f'{label} must be finite, got {value!r}')
    return float(value)


def _name_list(value: Any, label: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RecipeError(f'{label} must be a list of non-empty strings, got {value!r}')
    if len(set(value)) != len(value):
        raise RecipeError(f'{label} lists a name twice: {value!r}')
    return tuple(value)


def _reject_unknown_keys(mapping: Mapping, accepted: Iterable[str], where: str) -> None:
    unknown = [str(k) for k in mapping if k not in accepted]
    if unknown:
        raise RecipeError(f'{where}: unknown key(s) {", ".join(unknown)}; accepted: {", ".join(accepted)}')


def generated_recipe(n_steps: int, seed: int, *, n_stations: int = 4, handover_share: float = 0.1,
                     either_share: float = 0.3, precedence_density: float = 0.3, max_duration_s: int = 10,
                     integer_durations: bool = True) -> Recipe:
    """A random but valid recipe for tests and benchmarks (deterministic in `seed`).

    Steps draw their predecessors from earlier steps only (so there is never a cycle); about
    `handover_share` of them are handovers and `either_share` may go to either actor.
    """
    import random

    rng = random.Random(seed)
    stations = [f'station_{i}' for i in range(n_stations)]
    steps = []
    for i in range(n_steps):
        roll = rng.random()
        if roll < handover_share:
            actor, kind = BOTH, rng.choice(HANDOVER_KINDS)
        elif roll < handover_share + either_share:
            actor, kind = EITHER, rng.choice(ROBOT_MOTION_KINDS)
        else:
            actor = rng.choice((ROBOT, HUMAN))
            kind = rng.choice(KINDS_BY_ACTOR[actor])

        def draw() -> float:
            return float(rng.randint(1, max_duration_s)) if integer_durations else rng.uniform(1.0, max_duration_s)

        duration: Any = {ROBOT: draw(), HUMAN: draw()} if actor == EITHER else draw()
        window = range(max(0, i - 8), i)   # nearby steps, like a real assembly sequence
        after = [f's{j}' for j in window if rng.random() < precedence_density]
        steps.append({'id': f's{i}', 'actor': actor, 'kind': kind, 'station': rng.choice(stations),
                      'duration_s': duration, 'after': after})
    return recipe_from_dict({'job': f'generated_{n_steps}_{seed}', 'stations': stations, 'steps': steps})
