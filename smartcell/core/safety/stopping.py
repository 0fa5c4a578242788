"""Robot stopping model: stopping time T_s (s) and distance S_s (m) versus speed and payload.

Data like the ISO 10218-1 Annex B tables robot makers publish: values at speed fractions and
payload fractions (33/66/100 %). The file config/stopping.yaml holds either one Cartesian table
for the robot (`robot_table`, distance in m) or per-joint tables (`joints`, distance in rad, each
with the lever arm in m from its axis to the farthest robot/tool point). Per-joint tables combine
conservatively: T_s = max over joints, S_s = sum of angle * lever arm (each joint's rotation moves
a point at most that far; the sum bounds all joints stopping together).

Lookup is conservative: at load the tables become non-decreasing in speed and payload (a faster
or heavier robot is never assumed to stop sooner), and a query takes the table point at or above
it on both axes (never below either neighbour). Fractions above 1 (100 %) are refused.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from smartcell.core.params import ConfigError, read_yaml
from smartcell.core.safety.ssm import SeparationInputs, StoppingPoint, StoppingSteps, protective_separation

_FRACTION_SLACK = 1e-9       # 1.0000000001 is rounding, not 100 % + something


@dataclass(frozen=True)
class JointDatasheet:
    """What a table for this robot must cover and what physics allows it to claim."""

    joints: tuple[str, ...]              # ISO 10218-1 Annex B: the three joints nearest the base
    max_speed_radps: float               # joint speed at speed fraction 1.0, rad/s
    max_deceleration_radps2: float       # no joint brakes harder than this, rad/s^2


# UR5e: 180 deg/s on every joint (UR5e datasheet, ur_description joint_limits.yaml). UR publishes no
# braking deceleration; 40 rad/s^2 is above any the arm reaches (its category-0 stops from full speed
# take about 0.2 rad and 0.1 s on the base joints), so a stop shorter than v^2 / (2 * 40) rad or
# v / 40 s is physically impossible: a typo, a unit error (deg vs rad) or a placeholder table.
DATASHEETS = {'ur5e': JointDatasheet(('shoulder_pan', 'shoulder_lift', 'elbow'), math.pi, 40.0)}
# A Cartesian table has no lever arms to bound it by; a stop shorter than this at any speed above zero
# is a placeholder (all-zero, 1e-6), never a measurement.
MIN_CARTESIAN_STOP_M = 1e-3
MIN_CARTESIAN_STOP_S = 1e-3


def check_joint_plausibility(name: str, speeds: np.ndarray, times_s: np.ndarray, angles_rad: np.ndarray,
                             sheet: JointDatasheet, where: str) -> None:
    """Refuse a joint table that claims to stop sooner or shorter than the datasheet's deceleration allows."""
    speed_radps = speeds[:, None] * sheet.max_speed_radps
    a_max = sheet.max_deceleration_radps2
    for key, table, bound, unit in (('stopping_distance_rad', angles_rad, speed_radps ** 2 / (2 * a_max), 'rad'),
                                    ('stopping_time_s', times_s, speed_radps / a_max, 's')):
        short = np.argwhere(table < bound)
        if len(short):
            row, column = (int(i) for i in short[0])
            raise ConfigError(
                f'{where}: joints.{name}.{key}[{row}][{column}] = {table[row, column]:g} {unit} is shorter than '
                f'braking at the maximum deceleration allows ({bound[row, 0]:.4g} {unit} from '
                f'{speed_radps[row, 0]:.3g} rad/s, {speeds[row]:g} of {sheet.max_speed_radps:.3g} rad/s, at '
                f'{a_max:g} rad/s^2): physically impossible (a placeholder, a unit error?); measure it with '
                '`smartcell stopping-table`')


def check_cartesian_plausibility(times_s: np.ndarray, distances_m: np.ndarray, where: str) -> None:
    for key, table, floor, unit in (('robot_table.stopping_distance_m', distances_m, MIN_CARTESIAN_STOP_M, 'm'),
                                    ('robot_table.stopping_time_s', times_s, MIN_CARTESIAN_STOP_S, 's')):
        short = np.argwhere(table < floor)
        if len(short):
            row, column = (int(i) for i in short[0])
            raise ConfigError(f'{where}: {key}[{row}][{column}] = {table[row, column]:g} {unit} is below {floor:g} '
                              f'{unit}: not a measured stop (all-zero or placeholder table)')


def _grid(document: Mapping[str, Any], key: str, where: str) -> np.ndarray:
    values = document.get(key)
    if not isinstance(values, list) or not values:
        raise ConfigError(f'{where}: {key} must be a non-empty list of fractions in (0, 1], got {values!r}')
    grid = np.array(values, dtype=float) if all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                for v in values) else None
    if grid is None or not np.all(np.isfinite(grid)) or np.any(grid <= 0.0) or np.any(np.diff(grid) <= 0.0) \
            or abs(grid[-1] - 1.0) > _FRACTION_SLACK:
        raise ConfigError(f'{where}: {key} must be strictly increasing fractions in (0, 1] ending at 1.0, '
                          f'got {values!r}')
    return grid


def _table(values: Any, shape: tuple[int, int], name: str, where: str) -> np.ndarray:
    try:
        table = np.array(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f'{where}: {name} must be a {shape[0]}x{shape[1]} table of numbers '
                          '(rows: speed_fractions, columns: payload_fractions)') from exc
    if table.shape != shape:
        raise ConfigError(f'{where}: {name} must be {shape[0]} rows (speed_fractions) x {shape[1]} columns '
                          f'(payload_fractions), got shape {table.shape}')
    if not np.all(np.isfinite(table)) or np.any(table < 0.0):
        raise ConfigError(f'{where}: {name} must hold finite numbers >= 0, got {values!r}')
    return table


def _upper_envelope(table: np.ndarray) -> np.ndarray:
    """Non-decreasing along speed (rows) and payload (columns)."""
    return np.maximum.accumulate(np.maximum.accumulate(table, axis=0), axis=1)


@dataclass(frozen=True)
class StoppingModel:
    """Conservative stopping time (s) and distance (m) at a speed fraction and payload fraction."""

    speed_fractions: np.ndarray          # (S,) strictly increasing, last = 1.0
    payload_fractions: np.ndarray        # (P,) strictly increasing, last = 1.0
    stopping_time_s: np.ndarray          # (S, P) s
    stopping_distance_m: np.ndarray      # (S, P) m
    rated_payload_kg: float = 0.0
    provisional: bool = False
    source: str = ''
    # Each row's stop was commanded through the arm's scale ramp from scale (speed fraction / this),
    # as in a cell whose scale 1 runs at this fraction of the joint limits. None: every row's ramp
    # started at scale 1 (the longest stop at any cell fraction).
    full_scale_speed_fraction: float | None = None
    _time_envelope: np.ndarray = field(init=False, repr=False, compare=False)
    _distance_envelope: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        shape = (len(self.speed_fractions), len(self.payload_fractions))
        for name in ('stopping_time_s', 'stopping_distance_m'):
            if np.shape(getattr(self, name)) != shape:
                raise ConfigError(f'StoppingModel.{name} must have shape {shape}')
        object.__setattr__(self, '_time_envelope', _upper_envelope(np.asarray(self.stopping_time_s, float)))
        object.__setattr__(self, '_distance_envelope', _upper_envelope(np.asarray(self.stopping_distance_m, float)))

    # -- loading ------------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> 'StoppingModel':
        return cls.from_mapping(read_yaml(path, 'stopping model'), where=str(path))

    @classmethod
    def from_mapping(cls, document: Any, where: str = 'stopping model') -> 'StoppingModel':
        if not isinstance(document, dict):
            raise ConfigError(f'{where}: must be a mapping with speed_fractions, payload_fractions and '
                              'robot_table or joints')
        known = {'robot', 'stop_category', 'provisional', 'source', 'rated_payload_kg', 'speed_fractions',
                 'payload_fractions', 'robot_table', 'joints', 'full_scale_speed_fraction'}
        unknown = sorted(set(document) - known)
        if unknown:
            raise ConfigError(f'{where}: unknown key(s) {unknown}; accepted: {", ".join(sorted(known))}')
        speeds = _grid(document, 'speed_fractions', where)
        payloads = _grid(document, 'payload_fractions', where)
        shape = (len(speeds), len(payloads))
        has_robot, has_joints = 'robot_table' in document, 'joints' in document
        if has_robot == has_joints:
            raise ConfigError(f'{where}: give exactly one of robot_table (Cartesian, m) or joints (rad + lever arm)')
        if has_robot:
            table = document['robot_table']
            if not isinstance(table, dict) or set(table) != {'stopping_time_s', 'stopping_distance_m'}:
                raise ConfigError(f'{where}: robot_table must hold exactly stopping_time_s and stopping_distance_m')
            times = _table(table['stopping_time_s'], shape, 'robot_table.stopping_time_s', where)
            distances = _table(table['stopping_distance_m'], shape, 'robot_table.stopping_distance_m', where)
            check_cartesian_plausibility(times, distances, where)
        else:
            robot = str(document.get('robot', 'ur5e'))
            sheet = DATASHEETS.get(robot)
            if sheet is None:
                raise ConfigError(f'{where}: robot {robot!r} has no datasheet to check its joint tables against; '
                                  f'known: {", ".join(DATASHEETS)}')
            times, distances = cls._combine_joints(document['joints'], shape, where, speeds, sheet)
        rated = document.get('rated_payload_kg', 0.0)
        if not (isinstance(rated, (int, float)) and not isinstance(rated, bool) and math.isfinite(rated)
                and rated >= 0.0):
            raise ConfigError(f'{where}: rated_payload_kg must be a number >= 0 kg, got {rated!r}')
        provisional = document.get('provisional', False)
        if not isinstance(provisional, bool):
            raise ConfigError(f'{where}: provisional must be true or false, got {provisional!r}')
        full_scale = document.get('full_scale_speed_fraction')
        if full_scale is not None and not (isinstance(full_scale, (int, float)) and not isinstance(full_scale, bool)
                                           and 0.0 < full_scale <= 1.0):
            raise ConfigError(f'{where}: full_scale_speed_fraction must be in (0, 1] (or absent), got {full_scale!r}')
        return cls(speeds, payloads, times, distances, float(rated), provisional, str(document.get('source', '')),
                   None if full_scale is None else float(full_scale))

    def to_mapping(self, robot: str = '', stop_category: int = 2) -> dict[str, Any]:
        """The model as a `robot_table` document for config/stopping.yaml (from_mapping reads it
        back); the raw tables are written, the conservative envelope is rebuilt on loading."""
        return {'robot': robot, 'stop_category': stop_category, 'provisional': self.provisional,
                'source': self.source, 'rated_payload_kg': float(self.rated_payload_kg),
                'speed_fractions': [float(v) for v in self.speed_fractions],
                'payload_fractions': [float(v) for v in self.payload_fractions],
                **({} if self.full_scale_speed_fraction is None
                   else {'full_scale_speed_fraction': self.full_scale_speed_fraction}),
                'robot_table': {'stopping_time_s': np.asarray(self.stopping_time_s, float).tolist(),
                                'stopping_distance_m': np.asarray(self.stopping_distance_m, float).tolist()}}

    @staticmethod
    def _combine_joints(joints: Any, shape: tuple[int, int], where: str, speeds: np.ndarray,
                        sheet: JointDatasheet) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(joints, dict) or not joints:
            raise ConfigError(f'{where}: joints must map joint names to their tables')
        missing = [name for name in sheet.joints if name not in joints]
        unknown = [str(name) for name in joints if name not in sheet.joints]
        if missing or unknown:
            raise ConfigError(f'{where}: joints must be exactly {", ".join(sheet.joints)} (ISO 10218-1 Annex B: '
                              f'the joints nearest the base); missing {missing}, unknown {unknown}: a table without '
                              'a joint would leave its motion out of S_s')
        times, distances = np.zeros(shape), np.zeros(shape)
        for name, joint in joints.items():
            label = f'joints.{name}'
            if not isinstance(joint, dict) or set(joint) != {'lever_arm_m', 'stopping_time_s', 'stopping_distance_rad'}:
                raise ConfigError(f'{where}: {label} must hold exactly lever_arm_m, stopping_time_s, '
                                  'stopping_distance_rad')
            lever = joint['lever_arm_m']
            if not (isinstance(lever, (int, float)) and not isinstance(lever, bool) and math.isfinite(lever)
                    and lever > 0.0):
                raise ConfigError(f'{where}: {label}.lever_arm_m must be a number > 0 m, got {lever!r}')
            joint_times = _table(joint['stopping_time_s'], shape, f'{label}.stopping_time_s', where)
            angles = _table(joint['stopping_distance_rad'], shape, f'{label}.stopping_distance_rad', where)
            check_joint_plausibility(str(name), speeds, joint_times, angles, sheet, where)
            times = np.maximum(times, joint_times)
            distances = distances + lever * angles
        return times, distances

    # -- lookup -------------------------------------------------------------------------------------
    def _index(self, grid: np.ndarray, fraction: np.ndarray, what: str) -> np.ndarray:
        fraction = np.asarray(fraction, dtype=float)
        if np.any(~np.isfinite(fraction)) or np.any(fraction < 0.0) or np.any(fraction > 1.0 + _FRACTION_SLACK):
            raise ValueError(f'{what} must be in [0, 1] (100 % is the largest tabulated value), got {fraction}')
        # The grid point at or above the query: never below the upper neighbour.
        return np.minimum(np.searchsorted(grid, fraction - _FRACTION_SLACK, side='left'), len(grid) - 1)

    def lookup(self, speed_fraction: np.ndarray | float,
               payload_fraction: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(T_s s, S_s m) arrays at the given speed fraction(s), non-decreasing in both fractions."""
        rows = self._index(self.speed_fractions, np.asarray(speed_fraction, dtype=float), 'speed_fraction')
        columns = self._index(self.payload_fractions, np.full(np.shape(rows), payload_fraction), 'payload_fraction')
        return self._time_envelope[rows, columns], self._distance_envelope[rows, columns]

    def stopping_time(self, speed_fraction: float, payload_fraction: float) -> float:
        return float(self.lookup(speed_fraction, payload_fraction)[0])

    def stopping_distance(self, speed_fraction: float, payload_fraction: float) -> float:
        return float(self.lookup(speed_fraction, payload_fraction)[1])

    def at(self, speed_fraction: float, payload_fraction: float) -> StoppingPoint:
        time_s, distance_m = self.lookup(speed_fraction, payload_fraction)
        return StoppingPoint(float(time_s), float(distance_m))

    def steps(self, payload_fraction: float, speed_fraction_at_full_scale: float = 1.0) -> StoppingSteps:
        """The table at one payload as a step function of the speed scale for speed_scale_for.

        Scale s runs at speed fraction s * speed_fraction_at_full_scale (1.0, the conservative
        default, assumes the programme at full scale runs at the robot's maximum speed)."""
        if not 0.0 < speed_fraction_at_full_scale <= 1.0:
            raise ConfigError(f'speed_fraction_at_full_scale must be in (0, 1], got {speed_fraction_at_full_scale!r}')
        column = int(self._index(self.payload_fractions, np.array(payload_fraction), 'payload_fraction'))
        return StoppingSteps(self.speed_fractions / speed_fraction_at_full_scale, self._time_envelope[:, column],
                             self._distance_envelope[:, column])

    def check_cell_fraction(self, max_joint_speed_fraction: float) -> None:
        """Refuse a cell whose scale 1 is slower than the table's: there a given joint speed is a
        higher scale, whose ramp to 0 takes longer than the table measured."""
        if self.full_scale_speed_fraction is not None and max_joint_speed_fraction < self.full_scale_speed_fraction:
            raise ConfigError(
                f'the stopping table was measured with stops ramped from the scale of full_scale_speed_fraction='
                f'{self.full_scale_speed_fraction:g}, but max_joint_speed_fraction={max_joint_speed_fraction:g}: '
                'the cell\'s stops would last longer than the table says; re-measure with '
                f'`smartcell stopping-table --full-scale-fraction {max_joint_speed_fraction:g}`')

    def payload_fraction(self, payload_kg: float) -> float:
        """payload / rated payload; a payload above the rating is refused (the table does not cover it)."""
        if self.rated_payload_kg <= 0.0:
            return 1.0      # no rating given: assume the heaviest tabulated case
        fraction = payload_kg / self.rated_payload_kg
        if not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0 + _FRACTION_SLACK):
            raise ConfigError(f'payload {payload_kg!r} kg is outside [0, {self.rated_payload_kg:g}] kg, '
                              'the rated payload of the stopping model')
        return min(fraction, 1.0)


# UR5e reach (0.85 m) plus the tool: the farthest robot point from the base axis, m.
ROBOT_REACH_M = 1.0


def hazard_radius_m(supervisor: Mapping[str, Any], stopping: StoppingModel) -> float:
    """Robot reach plus S_p at full scale: a person outside this circle around the base can never be
    inside the protective separation, so the scanner must see everything within it.

    S_p takes the table's stop at max_joint_speed_fraction and the full payload, and a robot speed
    toward the person of that fraction of the joint speed limit at the reach (the fastest point)."""
    fraction = float(supervisor['max_joint_speed_fraction'])
    inputs = SeparationInputs(reaction_time_s=supervisor['reaction_time_s'],
                              intrusion_distance_m=supervisor['intrusion_distance_m'],
                              sensor_uncertainty_m=supervisor['sensor_uncertainty_m'],
                              robot_position_uncertainty_m=supervisor['robot_position_uncertainty_m'],
                              human_speed_floor_mps=supervisor['human_speed_floor_mps'])
    robot_speed_mps = fraction * DATASHEETS['ur5e'].max_speed_radps * ROBOT_REACH_M
    return ROBOT_REACH_M + protective_separation(inputs, 0.0, robot_speed_mps, stopping.at(fraction, 1.0))


def check_monitored_area(scanner: Mapping[str, Any], supervisor: Mapping[str, Any], stopping: StoppingModel,
                         where: str) -> None:
    """Refuse a scanner area (scanner.monitored_area_m, world) that leaves part of the hazard circle
    around the robot base (supervisor.robot_base_xyz_yaw) unwatched: a person there reads as nobody."""
    radius = hazard_radius_m(supervisor, stopping)
    x, y = supervisor['robot_base_xyz_yaw'][:2]
    xmin, ymin, xmax, ymax = scanner['monitored_area_m']
    short = {'xmin': xmin - (x - radius), 'ymin': ymin - (y - radius), 'xmax': (x + radius) - xmax,
             'ymax': (y + radius) - ymax}
    missing = {side: gap for side, gap in short.items() if gap > 0.0}
    if missing:
        sides = ', '.join(f'{side} short by {gap:.2f} m' for side, gap in missing.items())
        raise ConfigError(
            f'{where}: scanner.monitored_area_m={list(scanner["monitored_area_m"])} does not cover the robot\'s reach '
            f'plus S_p ({ROBOT_REACH_M:g} m + {radius - ROBOT_REACH_M:.2f} m = {radius:.2f} m around '
            f'supervisor.robot_base_xyz_yaw=({x:g}, {y:g})): {sides}; a person there would not be tracked')
