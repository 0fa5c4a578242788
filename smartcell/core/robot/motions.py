"""Named arm configurations and motion cycles, loaded from config/motions.yaml.

Robot work is planned here as joint-space segments from the arm's actual position to a named
configuration, timed so that no joint exceeds a fraction of its speed limit.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from smartcell.core.robot.kinematics import JOINT_NAMES, UR5E_LIMITS
from smartcell.core.params import ConfigError
from smartcell.core.robot.trajectory import PEAK_TO_MEAN_SPEED, JointLimitsView, JointTrajectoryPlan

# The UR5e's joint limits as trajectory validation and planning see them.
UR5E_JOINT_LIMITS = JointLimitsView(JOINT_NAMES, np.asarray(UR5E_LIMITS.lower), np.asarray(UR5E_LIMITS.upper),
                                    np.asarray(UR5E_LIMITS.velocity))


def speed_limited(limits: JointLimitsView, max_speed_fraction: float) -> JointLimitsView:
    """The same limits with every joint's velocity limit cut to max_speed_fraction of it: what the arm
    enforces, so that the SSM's stopping distances (taken at that fraction) hold for any trajectory."""
    if not 0.0 < max_speed_fraction <= 1.0:
        raise ConfigError(f'max_joint_speed_fraction must be in (0, 1], got {max_speed_fraction!r}')
    return JointLimitsView(limits.names, limits.lower_rad, limits.upper_rad, limits.velocity_radps * max_speed_fraction)


@dataclass(frozen=True)
class MotionLibrary:
    """Joint configurations by name (rad) and cycles (sequences of configuration names)."""

    configurations: dict[str, np.ndarray]
    cycles: dict[str, tuple[str, ...]]

    @classmethod
    def from_yaml(cls, path: str | Path, limits: JointLimitsView) -> 'MotionLibrary':
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f'motions file not found: {path}')
        document = yaml.safe_load(path.read_text()) or {}
        unknown = set(document) - {'configurations', 'cycles'}
        if unknown:
            raise ConfigError(f'unknown key(s) {sorted(unknown)} in {path}; accepted: configurations, cycles')
        configurations = {}
        for name, values in (document.get('configurations') or {}).items():
            q = np.asarray(values, dtype=float)
            if q.shape != (len(limits.names),) or not np.all(np.isfinite(q)):
                raise ConfigError(f'configuration {name!r} in {path} needs {len(limits.names)} finite joint '
                                  f'values in rad, got {values!r}')
            outside = (q < limits.lower_rad) | (q > limits.upper_rad)
            if outside.any():
                joint = limits.names[int(np.argmax(outside))]
                raise ConfigError(f'configuration {name!r} in {path}: {joint} is outside its limits')
            configurations[name] = q
        cycles = {}
        for name, steps in (document.get('cycles') or {}).items():
            missing = [s for s in steps or [] if s not in configurations]
            if not steps or missing:
                raise ConfigError(f'cycle {name!r} in {path} names unknown configuration(s) {missing}; '
                                  f'known: {", ".join(sorted(configurations))}')
            cycles[name] = tuple(steps)
        return cls(configurations, cycles)

    def cycle(self, name: str) -> tuple[str, ...]:
        if name not in self.cycles:
            raise ConfigError(f'unknown motion cycle {name!r}; accepted: {", ".join(sorted(self.cycles))}')
        return self.cycles[name]


SEGMENT_TIME_MARGIN = 1.02
ARRIVAL_TOLERANCE_RAD = 0.01     # joint error and speed (rad, rad/s) at which a motion counts as arrived


def arrived(q_rad: np.ndarray, qd_radps: np.ndarray, target_rad: np.ndarray) -> bool:
    """A motion is done when every joint is within the tolerance of its target and nearly still."""
    return bool(np.max(np.abs(np.asarray(q_rad) - target_rad)) < ARRIVAL_TOLERANCE_RAD
                and np.max(np.abs(qd_radps)) < ARRIVAL_TOLERANCE_RAD)


def segment_plan(start_rad: np.ndarray, target_rad: np.ndarray, limits: JointLimitsView,
                 speed_fraction: float, min_duration_s: float = 0.3) -> JointTrajectoryPlan:
    """One segment start -> target, timed so every joint's peak speed stays within speed_fraction of its limit."""
    if not 0.0 < speed_fraction <= 1.0:
        raise ValueError(f'speed_fraction must be in (0, 1], got {speed_fraction}')
    distance = np.abs(np.asarray(target_rad, float) - np.asarray(start_rad, float))
    # 2 % margin: the arm re-plans the segment from its own latest measured position, which may
    # differ slightly from `start_rad`; at speed_fraction 1.0 a plan timed exactly at the limit was
    # refused for that (seen in CI). 2 % of a speed-limited travel dwarfs any measurement drift.
    duration = max(min_duration_s, SEGMENT_TIME_MARGIN * float(np.max(PEAK_TO_MEAN_SPEED * distance
                                                                       / (limits.velocity_radps * speed_fraction))))
    return JointTrajectoryPlan(tuple(limits.names), np.array([duration]), np.asarray(target_rad, float)[None, :])


def transit_poses(library: MotionLibrary) -> tuple[str, ...]:
    """The configurations off the work surface between which the arm moves directly: above each
    station, home and the handover pose. Robot steps start and end at them, an arm with no step
    waits at one, and the twin's motion check sweeps every segment between them."""
    return tuple(sorted(n for n in library.configurations if n.startswith('above_') or n in ('home', 'present')))


def motions_for_step(station: str, kind: str, library: MotionLibrary) -> tuple[str, ...]:
    """The configurations the arm visits for a robot step (or its half of a handover).

    pick/place/process: approach from above, work, retreat; present: hold the part out over the
    shared station (and stay there for the person); receive: from the present pose back up.
    Raises ConfigError naming the station and kind when the library lacks a configuration.
    """
    names: tuple[str, ...]
    if kind in ('pick', 'place', 'process'):
        names = (f'above_{station}', station, f'above_{station}')
    elif kind == 'present':
        names = (f'above_{station}', 'present')
    elif kind == 'receive':
        names = ('present', f'above_{station}')
    else:
        raise ConfigError(f'the arm cannot do kind {kind!r}; accepted: pick, place, process, present, receive')
    missing = [n for n in names if n not in library.configurations]
    if missing:
        raise ConfigError(f'robot step {kind!r} at station {station!r} needs arm configuration(s) {missing} '
                          f'in the motions file; known: {", ".join(sorted(library.configurations))}')
    return names
