"""Named person-behaviour scenarios: seed -> people's paths, identical for the same seed.

All randomness comes from the numpy Generator built from the seed; paths are planned on the
layout's free floor (outside area, door, inside areas) so that nobody walks through furniture.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from smartcell.twin.human import RUNNING_SPEED_MPS, WALKING_SPEED_MPS, PathBuilder, PersonPath
from smartcell.twin.world import DEFAULT_LAYOUT, CellLayout

PathsFactory = Callable[[np.random.Generator, float, CellLayout], tuple[PersonPath, ...]]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    build: PathsFactory


def _enter(path: PathBuilder, layout: CellLayout, speed_mps: float) -> None:
    path.walk_to(layout.door_outside_xy_m, speed_mps).walk_to(layout.door_inside_xy_m, speed_mps)


def _leave(path: PathBuilder, layout: CellLayout, speed_mps: float) -> None:
    path.walk_to(layout.door_inside_xy_m, speed_mps).walk_to(layout.door_outside_xy_m, speed_mps)


def _robot_xy(layout: CellLayout) -> tuple[float, float]:
    return layout.robot_base_position_m[0], layout.robot_base_position_m[1]


def _shift_person(rng: np.random.Generator, duration_s: float, layout: CellLayout,
                  mean_outside_s: float = 40.0) -> PersonPath:
    """Works at the operator bench and walks around outside; now and then goes into the cell,
    mostly to the shared assembly station (reaching in), otherwise to look around inside."""
    bench = layout.station('operator_bench').person_position_m()
    assembly = layout.station('assembly')
    path = PathBuilder(bench, 0.0, yaw_rad=layout.station('operator_bench').yaw_rad)
    while path.time_s < duration_s:
        # Outside: bench work and short walks, for an exponential time.
        outside_until = path.time_s + rng.exponential(mean_outside_s)
        while path.time_s < outside_until:
            if rng.random() < 0.5:
                path.walk_to(bench, rng.uniform(1.0, WALKING_SPEED_MPS))
                path.wait(rng.uniform(3.0, 15.0), reach=rng.uniform(0.3, 0.8),
                          face_xy_m=layout.station('operator_bench').position_m[:2])
            else:
                path.walk_to(layout.outside_area.sample(rng), rng.uniform(1.0, WALKING_SPEED_MPS))
                path.wait(rng.uniform(1.0, 5.0))
        # Inside.
        speed = RUNNING_SPEED_MPS if rng.random() < 0.1 else WALKING_SPEED_MPS
        _enter(path, layout, speed)
        if rng.random() < 0.7:
            path.walk_to(assembly.person_position_m(), speed)
            path.wait(rng.uniform(4.0, 20.0), reach=rng.uniform(0.6, 1.0), face_xy_m=assembly.position_m[:2])
        else:
            area = layout.inside_areas[int(rng.integers(len(layout.inside_areas)))]
            path.walk_to(layout.door_inside_xy_m, speed).walk_to(area.sample(rng), speed)
            path.wait(rng.uniform(2.0, 8.0), face_xy_m=_robot_xy(layout))
        _leave(path, layout, WALKING_SPEED_MPS)
    return path.build()


def _shift(rng: np.random.Generator, duration_s: float, layout: CellLayout) -> tuple[PersonPath, ...]:
    return (_shift_person(rng, duration_s, layout),)


def _shift_two_people(rng: np.random.Generator, duration_s: float, layout: CellLayout) -> tuple[PersonPath, ...]:
    first, second = rng.spawn(2)
    return (_shift_person(first, duration_s, layout), _shift_person(second, duration_s, layout, 60.0))


def _intrusion(rng: np.random.Generator, duration_s: float, layout: CellLayout) -> tuple[PersonPath, ...]:
    """Straight at the robot through the opening, reach over the table edge, and back; again and again."""
    start = (layout.outside_area.xmax_m - 1.0, layout.door_outside_xy_m[1])
    front_of_robot = layout.station('assembly').person_position_m()
    path = PathBuilder(start, 0.0, yaw_rad=np.pi)
    path.wait(rng.uniform(2.0, 5.0))
    while path.time_s < duration_s:
        speed = RUNNING_SPEED_MPS if rng.random() < 0.3 else WALKING_SPEED_MPS
        path.walk_to(layout.door_outside_xy_m, speed).walk_to(front_of_robot, speed)
        path.wait(rng.uniform(1.5, 4.0), reach=1.0, face_xy_m=_robot_xy(layout))
        path.walk_to(layout.door_outside_xy_m, WALKING_SPEED_MPS).walk_to(start, WALKING_SPEED_MPS)
        path.wait(rng.uniform(5.0, 15.0))
    return (path.build(),)


def _empty(rng: np.random.Generator, duration_s: float, layout: CellLayout) -> tuple[PersonPath, ...]:
    return ()


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario('shift', 'one operator: bench work outside the fence, now and then into the cell, '
             'mostly to the shared assembly station', _shift),
    Scenario('shift_two_people', 'two operators working the shift independently', _shift_two_people),
    Scenario('intrusion', 'a person walks or runs straight at the robot, reaches in, and goes back, repeatedly',
             _intrusion),
    Scenario('empty', 'nobody in or around the cell', _empty),
)}


# Not a scripted scenario: the person follows the steps the supervisor gives the operator
# (`operator/current_step`), walks to the station, works, and acknowledges (twin node).
TASK_DRIVEN_SCENARIO = 'operator'


def scenario_paths(name: str, seed: int, duration_s: float,
                   layout: CellLayout = DEFAULT_LAYOUT) -> tuple[PersonPath, ...]:
    """People's paths of scenario `name` covering [0, duration_s] s; the same seed gives the same paths."""
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise ValueError(f'unknown scenario {name!r}; accepted: {", ".join(sorted(SCENARIOS))}')
    if not duration_s > 0:
        raise ValueError(f'scenario duration must be > 0 s, got {duration_s}')
    return scenario.build(np.random.default_rng(seed), float(duration_s), layout)
