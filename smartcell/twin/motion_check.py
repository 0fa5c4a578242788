"""Check the arm's motions against the cell in the twin before they run: table, fence, furniture.

The supervisor moves the arm along straight joint-space segments between named configurations
(smartcell.core.robot.motions). This sweeps every segment it can command - the cycle's, each station's
approach and retreat, and every transit between the configurations that are not on a work
surface - in small joint steps through the PyBullet cell and reports where a link comes closer
to a static obstacle than its clearance. The tool works at the surface, so it only needs
TOOL_CLEARANCE_M; every other link ARM_CLEARANCE_M.

Self-collision and people are not this check's business (the URDF's joint limits and the safety
functions cover those).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from smartcell.core.robot.motions import MotionLibrary, transit_poses
from smartcell.twin.world import DEFAULT_LAYOUT, CellLayout, CellWorld, connect, disconnect

ARM_CLEARANCE_M = 0.03
TOOL_CLEARANCE_M = 0.01
TOOL_LINKS = ('gripper', 'gripper_tcp', 'tool0', 'flange')
STEP_RAD = 0.05                    # largest joint change between two checked poses (~2.5 cm at 0.5 m)


@dataclass(frozen=True)
class MotionProblem:
    segment: tuple[str, str]       # configuration names, from -> to (the same twice: a configuration)
    fraction: float                # where along the segment, 0..1
    obstacle: str
    link: str
    distance_m: float

    def __str__(self) -> str:
        where = self.segment[0] if self.segment[0] == self.segment[1] else \
            f'{self.segment[0]} -> {self.segment[1]} at {self.fraction:.0%}'
        return (f'{where}: {self.link} {self.distance_m * 100:.1f} cm from {self.obstacle} '
                f'(needs {100 * (TOOL_CLEARANCE_M if self.link in TOOL_LINKS else ARM_CLEARANCE_M):.0f} cm)')


def commanded_segments(library: MotionLibrary) -> list[tuple[str, str]]:
    """The joint-space segments the supervisor can command with this library."""
    names = library.configurations
    segments: set[tuple[str, str]] = set()
    for cycle in library.cycles.values():
        segments.update(zip(cycle, cycle[1:] + cycle[:1]))
    for name in names:
        if f'above_{name}' in names:                       # approach and retreat of a station
            segments.update({(f'above_{name}', name), (name, f'above_{name}')})
    # Robot steps start and end above their station (or at the handover pose), from wherever the
    # previous one ended, an arm with no step waits at one of them, and a re-plan after a stop starts
    # on one of these segments.
    segments.update(combinations(transit_poses(library), 2))
    return sorted(segments)


def check_motions(library: MotionLibrary, layout: CellLayout = DEFAULT_LAYOUT,
                  urdf_path: str | None = None) -> list[MotionProblem]:
    """Every configuration and commanded segment of the library, swept through the cell: the problems."""
    client = connect()
    try:
        world = CellWorld(client, layout, urdf_path)
        problems: list[MotionProblem] = []
        for name, q in sorted(library.configurations.items()):
            problems += _problems_at(world, np.asarray(q, dtype=float), (name, name), 0.0)
        for start, end in commanded_segments(library):
            a, b = (np.asarray(library.configurations[n], dtype=float) for n in (start, end))
            steps = max(1, int(np.ceil(np.max(np.abs(b - a)) / STEP_RAD)))
            for k in range(1, steps):
                found = _problems_at(world, a + (b - a) * k / steps, (start, end), k / steps)
                if found:
                    problems += found[:1]              # the first pose that fails tells where
                    break
        world.close()
        return problems
    finally:
        disconnect(client)


def _problems_at(world: CellWorld, q: np.ndarray, segment: tuple[str, str], fraction: float) -> list[MotionProblem]:
    problems = []
    for obstacle, link, distance in world.robot_clearances(q, ARM_CLEARANCE_M):
        if distance < (TOOL_CLEARANCE_M if link in TOOL_LINKS else ARM_CLEARANCE_M):
            problems.append(MotionProblem(segment, fraction, obstacle, link, distance))
    return problems
