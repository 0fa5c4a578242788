"""Power and force limiting (ISO/TS 15066:2016 clause 5.5.5 and Annex A).

Body-region limits come from config/body_regions.yaml (Tables A.2 and A.3). The permissible
transient speed follows A.3.2, energy transfer into a spring of stiffness k (eq. A.6 solved for v):
    v_max = F_max / sqrt(mu * k),   mu = (1/m_H + 1/m_R)^-1,   m_R = M/2 + m_L   (eq. A.5)
F_max is the transient force limit (2x quasi-static, Table A.2), or the quasi-static limit (1x)
where the body part can be clamped (`clamping_possible`: a hand pinned against a work surface is
quasi-static contact, Annex A). With a contact area A (cm^2) the pressure limit gives a second
bound F = p * A with the region's weakest area, and the smaller force wins (A.3.2: "the lower of
the two values shall be used").
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from smartcell.core.params import ConfigError

_N_PER_MM_TO_N_PER_M = 1000.0


@dataclass(frozen=True)
class BodyRegion:
    """One ISO/TS 15066 body region: quasi-static limits and the body model of Table A.3."""

    name: str
    force_N: float                            # quasi-static force limit, N (Table A.2)
    pressures_N_per_cm2: Mapping[str, float]  # quasi-static pressure limit per body area, N/cm^2
    spring_constant_N_per_mm: float           # k, N/mm (Table A.3)
    effective_mass_kg: float                  # m_H, kg (Table A.3)
    transient_permitted: bool = True          # false for skull/forehead and face (A.3.2)
    transient_multiplier: float = 2.0         # Table A.2: transient = 2x quasi-static

    def __post_init__(self) -> None:
        for name in ('force_N', 'spring_constant_N_per_mm', 'effective_mass_kg', 'transient_multiplier'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                    and value > 0.0):
                raise ConfigError(f'body region {self.name!r}: {name} must be a number > 0, got {value!r}')
        if not self.pressures_N_per_cm2:
            raise ConfigError(f'body region {self.name!r}: areas must list at least one pressure limit (N/cm^2)')
        for area, value in self.pressures_N_per_cm2.items():
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                    and value > 0.0):
                raise ConfigError(f'body region {self.name!r}: area {area!r} pressure must be a number > 0 N/cm^2, '
                                  f'got {value!r}')

    @property
    def transient_force_N(self) -> float:
        """Transient force limit (N); 0 where transient contact is not permitted."""
        return self.force_N * self.transient_multiplier if self.transient_permitted else 0.0

    @property
    def min_pressure_N_per_cm2(self) -> float:
        return min(self.pressures_N_per_cm2.values())


@dataclass(frozen=True)
class BodyModel:
    """All body regions of the file plus the ones exposed at the shared station."""

    regions: Mapping[str, BodyRegion]
    exposed: tuple[str, ...]
    # An exposed region can be pinned between the robot and a surface (a work table at hand
    # height): the quasi-static limits then cap the speed. True unless a file says otherwise.
    clamping_possible: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.clamping_possible, bool):
            raise ConfigError(f'clamping_possible must be true or false, got {self.clamping_possible!r}')

    def region(self, name: str) -> BodyRegion:
        try:
            return self.regions[name]
        except KeyError:
            raise ConfigError(f'unknown body region {name!r}; accepted: {", ".join(self.regions)}') from None

    def most_restrictive(self, names: Iterable[str]) -> BodyRegion:
        """Of the named regions, the one with the lowest quasi-static force limit: a contact that a
        sensor cannot place more precisely (e.g. 'forearm or hand') is judged by the stricter one."""
        candidates = [self.region(name) for name in names]
        if not candidates:
            raise ConfigError('a contact must name at least one body region')
        return min(candidates, key=lambda region: region.force_N)

    @classmethod
    def from_yaml(cls, path: str | Path) -> 'BodyModel':
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f'body region file not found: {path}')
        try:
            document = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f'body region file {path} is not valid YAML: {exc}') from exc
        return cls.from_mapping(document, where=str(path))

    @classmethod
    def from_mapping(cls, document: Any, where: str = 'body regions') -> 'BodyModel':
        if not isinstance(document, dict) or not isinstance(document.get('regions'), dict):
            raise ConfigError(f'{where}: must be a mapping with a `regions` mapping')
        unknown = sorted(set(document) - {'transient_multiplier', 'exposed', 'regions', 'clamping_possible'})
        if unknown:
            raise ConfigError(f'{where}: unknown key(s) {unknown}; accepted: clamping_possible, exposed, regions, '
                              'transient_multiplier')
        clamping = document.get('clamping_possible', True)
        if not isinstance(clamping, bool):
            raise ConfigError(f'{where}: clamping_possible must be true or false, got {clamping!r}')
        multiplier = document.get('transient_multiplier', 2.0)
        fields = {'force_N', 'transient_permitted', 'spring_constant_N_per_mm', 'effective_mass_kg', 'areas'}
        regions = {}
        for name, entry in document['regions'].items():
            if not isinstance(entry, dict) or set(entry) != fields:
                raise ConfigError(f'{where}: region {name!r} must hold exactly {", ".join(sorted(fields))}')
            if not isinstance(entry['transient_permitted'], bool):
                raise ConfigError(f'{where}: region {name!r}: transient_permitted must be true or false')
            if not isinstance(entry['areas'], dict):
                raise ConfigError(f'{where}: region {name!r}: areas must map body areas to pressures (N/cm^2)')
            regions[name] = BodyRegion(name, entry['force_N'], dict(entry['areas']),
                                       entry['spring_constant_N_per_mm'], entry['effective_mass_kg'],
                                       entry['transient_permitted'], multiplier)
        exposed = document.get('exposed', [])
        if not isinstance(exposed, list) or any(name not in regions for name in exposed):
            raise ConfigError(f'{where}: exposed must list region names among {", ".join(regions)}, got {exposed!r}')
        return cls(regions, tuple(exposed), clamping)


# M of ISO/TS 15066 eq. (A.5): the UR5e's moving mass, 20.6 kg less its fixed base, kg. The monitor's PFL
# caps and the twin's contact model both use it.
UR5E_MOVING_MASS_KG = 16.0


def robot_effective_mass(robot_moving_mass_kg: float, payload_kg: float) -> float:
    """m_R = M/2 + m_L (kg), ISO/TS 15066 eq. (A.5): M moving parts of the robot, m_L payload + tool."""
    if not (math.isfinite(robot_moving_mass_kg) and robot_moving_mass_kg > 0.0):
        raise ConfigError(f'robot moving mass must be > 0 kg, got {robot_moving_mass_kg!r}')
    if not (math.isfinite(payload_kg) and payload_kg >= 0.0):
        raise ConfigError(f'payload must be >= 0 kg, got {payload_kg!r}')
    return robot_moving_mass_kg / 2.0 + payload_kg


def reduced_mass(human_mass_kg: float, robot_mass_kg: float) -> float:
    """mu = (1/m_H + 1/m_R)^-1 (kg), the two-body reduced mass of eq. (A.4)."""
    return 1.0 / (1.0 / human_mass_kg + 1.0 / robot_mass_kg)


def max_transient_speed(region: BodyRegion, robot_moving_mass_kg: float, payload_kg: float,
                        contact_area_cm2: float | None = None) -> float:
    """Largest relative speed (m/s) for a transient contact with `region` within its limits.

    We take the robot's moving mass M and payload m_L (not a ready m_R) so that eq. (A.5) is
    applied in one place. 0 m/s where transient contact is not permitted (skull, face).
    """
    return max_contact_speed(region, robot_moving_mass_kg, payload_kg, contact_area_cm2, clamping=False)


def max_contact_speed(region: BodyRegion, robot_moving_mass_kg: float, payload_kg: float,
                      contact_area_cm2: float | None = None, clamping: bool = False) -> float:
    """Largest relative speed (m/s) at which a contact with `region` stays within its limits.

    Without clamping the transient limits apply (2x quasi-static). With clamping the contact can
    become quasi-static (the part is pinned and cannot recoil), so the quasi-static force and
    pressure (1x, Table A.2) go into eq. (A.6) instead: half the transient speed. Either way 0 m/s
    where transient contact is not permitted (skull, face): a clamping contact starts with an impact.
    """
    if not region.transient_permitted:
        return 0.0
    multiplier = 1.0 if clamping else region.transient_multiplier
    force_N = region.force_N * multiplier
    if contact_area_cm2 is not None:
        if not (math.isfinite(contact_area_cm2) and contact_area_cm2 > 0.0):
            raise ConfigError(f'contact area must be > 0 cm^2, got {contact_area_cm2!r}')
        force_N = min(force_N, region.min_pressure_N_per_cm2 * multiplier * contact_area_cm2)
    mu = reduced_mass(region.effective_mass_kg, robot_effective_mass(robot_moving_mass_kg, payload_kg))
    k_N_per_m = region.spring_constant_N_per_mm * _N_PER_MM_TO_N_PER_M
    return force_N / math.sqrt(mu * k_N_per_m)


class ContactOutcome(enum.Enum):
    WITHIN_LIMIT = 'within_limit'
    ABOVE_TRANSIENT = 'above_transient'
    ABOVE_QUASI_STATIC = 'above_quasi_static'


@dataclass(frozen=True)
class ContactVerdict:
    region: str
    force_N: float
    limit_N: float          # the limit the contact was judged against, N
    transient: bool
    outcome: ContactOutcome

    @property
    def within_limit(self) -> bool:
        return self.outcome is ContactOutcome.WITHIN_LIMIT


def contact_verdict(region: BodyRegion, force_N: float, transient: bool) -> ContactVerdict:
    """Judge a measured contact force (N); NaN or negative force counts as above the limit."""
    limit_N = region.transient_force_N if transient else region.force_N
    above = not (math.isfinite(force_N) and 0.0 <= force_N <= limit_N)
    if not above:
        outcome = ContactOutcome.WITHIN_LIMIT
    else:
        outcome = ContactOutcome.ABOVE_TRANSIENT if transient else ContactOutcome.ABOVE_QUASI_STATIC
    return ContactVerdict(region.name, force_N, limit_N, transient, outcome)


# ---------------------------------------------------------------------------------------------
# Contact forces of the digital twin (Annex A's two-body model, not a rigid solver's)
# ---------------------------------------------------------------------------------------------

def transient_contact_force_N(region: BodyRegion, closing_speed_mps: float, robot_moving_mass_kg: float,
                              payload_kg: float) -> float:
    """Peak force (N) of a transient contact at this closing speed, ISO/TS 15066 eq. (A.6) solved
    for F: all the two-body kinetic energy 1/2 mu v^2 goes into the region's spring, F = v sqrt(mu k).
    The inverse of max_contact_speed: a contact at that speed meets exactly the limit it used."""
    if not (math.isfinite(closing_speed_mps) and closing_speed_mps >= 0.0):
        raise ValueError(f'closing speed must be a finite number >= 0 m/s, got {closing_speed_mps!r}')
    mu = reduced_mass(region.effective_mass_kg, robot_effective_mass(robot_moving_mass_kg, payload_kg))
    return closing_speed_mps * math.sqrt(mu * region.spring_constant_N_per_mm * _N_PER_MM_TO_N_PER_M)


# What the arm reports when the cobot's own force limit stopped it (the arm drops its motion).
RATED_STOP_REASON = "the robot's own force limit stopped it (a contact pushed as hard as its rated limit)"


@dataclass
class ContactEpisode:
    """One body region touching one robot link, from first touch until they part.

    Two forces are kept. `force_N` is what the person meets: the transient peak of the first touch at
    the relative closing speed (robot and person), or the region's spring compressed by the robot's
    own motion into it since (clamping, the worst case: the region does not recoil) if larger.
    `robot_force_N` is the robot's share, what PFL limits: the same with the robot's own speed toward
    the region at the first touch (a hand swung into a still arm is the person's doing, as against a
    table). The robot's rated force limit bounds the spring: at that force the cobot's own safety
    function stops it (`rated_stop`)."""

    region: BodyRegion
    closing_speed_mps: float     # relative speed along the contact normal at the first touch, m/s
    robot_speed_mps: float       # the robot's own speed along the normal into the region then, m/s
    transient_N: float           # Annex A peak of the first touch at the relative closing speed, N
    robot_transient_N: float     # the same at the robot's own speed, N
    rated_force_limit_N: float
    compression_m: float = 0.0   # how far the robot has moved into the region since the first touch, m

    def push(self, robot_speed_into_mps: float, dt_s: float) -> None:
        """The robot moved at this speed along the normal into the region (negative: away) for dt."""
        if not (math.isfinite(robot_speed_into_mps) and math.isfinite(dt_s) and dt_s >= 0.0):
            raise ValueError(f'need finite speed and dt >= 0, got {robot_speed_into_mps!r}, {dt_s!r}')
        self.compression_m = max(0.0, self.compression_m + robot_speed_into_mps * dt_s)

    @property
    def spring_force_N(self) -> float:
        """The region's spring force at the robot's compression, N (before the rated limit)."""
        return self.region.spring_constant_N_per_mm * _N_PER_MM_TO_N_PER_M * self.compression_m

    @property
    def rated_stop(self) -> bool:
        """The robot pushes as hard as its rated force limit: its own safety function stops it."""
        return self.spring_force_N >= self.rated_force_limit_N

    @property
    def force_N(self) -> float:
        return max(self.transient_N, min(self.spring_force_N, self.rated_force_limit_N))

    @property
    def robot_force_N(self) -> float:
        return max(self.robot_transient_N, min(self.spring_force_N, self.rated_force_limit_N))


@dataclass(frozen=True)
class ContactForceModel:
    """How the twin turns a touch into a force: the body model, the robot's moving mass and payload
    (eq. A.5), and the rated force limit of the robot's own safety function, which holds the arm
    where a pushing contact reaches it. That limit must not exceed the quasi-static limit of any
    region exposed at the shared station: the cobot's safety configuration is what keeps a clamped
    hand below its limit, the supervisor only slows the arm."""

    body: BodyModel
    robot_moving_mass_kg: float
    payload_kg: float
    rated_force_limit_N: float

    def __post_init__(self) -> None:
        robot_effective_mass(self.robot_moving_mass_kg, self.payload_kg)     # validates both
        limit = self.rated_force_limit_N
        if not (isinstance(limit, (int, float)) and not isinstance(limit, bool) and math.isfinite(limit)
                and limit > 0.0):
            raise ConfigError(f'the robot\'s rated force limit must be a number > 0 N, got {limit!r}')
        for name in self.body.exposed:
            region = self.body.region(name)
            if limit > region.force_N:
                raise ConfigError(f'the robot\'s rated force limit {limit:g} N is above the quasi-static limit '
                                  f'of {name} ({region.force_N:g} N), a region exposed at the shared station: a '
                                  f'clamped {name} could be pushed beyond it; set the robot\'s safety force '
                                  f'limit to at most {min(self.body.region(n).force_N for n in self.body.exposed):g} N')

    def touch(self, region_names: Iterable[str], closing_speed_mps: float,
              robot_speed_mps: float | None = None) -> ContactEpisode:
        """A first touch of the region(s) (judged as the most restrictive) at this relative closing
        speed, of which the robot's own speed toward the region is robot_speed_mps (None: all of it)."""
        region = self.body.most_restrictive(region_names)

        def approach(speed: float) -> float:     # an unknown speed (NaN) is taken as the worst: infinite
            return math.inf if math.isnan(speed) else max(0.0, speed)
        closing = approach(float(closing_speed_mps))
        robot = closing if robot_speed_mps is None else approach(float(robot_speed_mps))

        def peak(speed: float) -> float:
            if math.isinf(speed):
                return math.inf
            return transient_contact_force_N(region, speed, self.robot_moving_mass_kg, self.payload_kg)
        return ContactEpisode(region, closing, robot, peak(closing), peak(robot), float(self.rated_force_limit_N))
