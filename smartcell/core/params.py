"""Parameter specifications: declared once, used by the nodes and by config validation.

A node declares its ROS parameters from these specs (with description and range), and
`smartcell sim`/`ros2 launch` validate the YAML against the same specs before anything
starts, so a typo in a config file is an error naming the key, never a silent default.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

ParamValue = bool | int | float | str | list


class ConfigError(ValueError):
    """A configuration value or file is invalid; the message names the thing and what is accepted."""


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: name, default, description with unit, and its accepted range or choices."""

    name: str
    default: ParamValue
    description: str
    min: float | None = None          # inclusive
    max: float | None = None          # inclusive
    choices: tuple[str, ...] = ()
    read_only: bool = True            # most are start-up configuration

    def kind(self) -> type:
        return type(self.default)

    def accepted(self) -> str:
        if self.choices:
            return 'one of ' + ', '.join(repr(c) for c in self.choices)
        if self.min is not None or self.max is not None:
            lo = '-inf' if self.min is None else f'{self.min:g}'
            hi = 'inf' if self.max is None else f'{self.max:g}'
            return f'a {self.kind().__name__} in [{lo}, {hi}]'
        return f'a {self.kind().__name__}'

    def validate(self, value: Any, where: str = '') -> ParamValue:
        """Return the value coerced to the spec's type, or raise ConfigError naming the parameter."""
        label = f'{where}{self.name}'
        kind: Any = self.kind()       # Any: isinstance(value, kind) must not narrow value to object
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is list:
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f'parameter {label!r} must be a list, got {value!r}')
            value = list(value)
            element = type(self.default[0]) if isinstance(self.default, list) and self.default else None
            if element is float:
                value = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
            if element is not None and not all(isinstance(v, element) for v in value):
                raise ConfigError(f'parameter {label!r} must be a list of {element.__name__}, got {value!r}')
            if element is float and not all(math.isfinite(v) for v in value):
                raise ConfigError(f'parameter {label!r} must hold finite numbers, got {value!r}')
            return value
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ConfigError(f'parameter {label!r} must be {self.accepted()}, got {value!r}')
        if kind is float and not math.isfinite(value):
            raise ConfigError(f'parameter {label!r} must be finite, got {value!r}')
        if self.choices and value not in self.choices:
            raise ConfigError(f'parameter {label!r} must be {self.accepted()}, got {value!r}')
        if self.min is not None and value < self.min or self.max is not None and value > self.max:
            raise ConfigError(f'parameter {label!r} must be {self.accepted()}, got {value!r}')
        return value


@dataclass(frozen=True)
class NodeParams:
    """The parameter specs of one node; `name` is the node name, executable and YAML key."""

    name: str
    specs: tuple[ParamSpec, ...]
    by_name: dict[str, ParamSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'by_name', {s.name: s for s in self.specs})
        if len(self.by_name) != len(self.specs):
            raise ValueError(f'duplicate parameter in node {self.name!r}')

    def defaults(self) -> dict[str, Any]:
        return {s.name: s.default for s in self.specs}

    def resolve(self, overrides: Mapping[str, Any], *, allow_unknown: Sequence[str] = ()) -> dict[str, Any]:
        # Any: each value has its spec's kind (validated); the specs, not the annotation, say which.
        """Defaults overlaid with validated overrides; an unknown key is an error naming it."""
        values = self.defaults()
        for key, value in overrides.items():
            spec = self.by_name.get(key)
            if spec is None and key in allow_unknown:
                continue
            if spec is None:
                raise ConfigError(
                    f'unknown parameter {key!r} for node {self.name!r}; accepted: {", ".join(sorted(self.by_name))}')
            values[key] = spec.validate(value, where=f'{self.name}.')
        return values

    def config(self, values: Mapping[str, Any]) -> Any:
        """A frozen, attribute-access configuration of this node (`config.deadman_timeout_s`) from
        resolved values: one field per spec, typed by its kind, lists as tuples. Built once at
        start-up; nodes never look parameters up by string afterwards."""
        resolved = self.resolve(values)
        return self.config_type()(**{name: tuple(v) if isinstance(v, list) else v for name, v in resolved.items()})

    def config_type(self) -> type:
        cached = _CONFIG_TYPES.get(self.name)
        if cached is None or cached[0] is not self:
            fields = [(s.name, tuple if s.kind() is list else s.kind()) for s in self.specs]
            cls_name = ''.join(part.capitalize() for part in self.name.split('_')) + 'Config'
            cached = (self, make_dataclass(cls_name, fields, frozen=True))
            _CONFIG_TYPES[self.name] = cached
        return cached[1]


_CONFIG_TYPES: dict[str, tuple[NodeParams, type]] = {}


def read_yaml(path: str | Path, what: str) -> Any:
    """The YAML document in `path`; ConfigError naming the file and why for a missing, unreadable,
    binary or malformed file (never a traceback: a damaged file on a cell is a configuration error)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'{what} {path}: file not found')
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f'{what} {path}: unreadable: {exc.strerror or exc}') from exc
    if b'\x00' in raw:
        raise ConfigError(f'{what} {path}: binary data (NUL byte at offset {raw.index(bytes(1))}), not YAML text')
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise ConfigError(f'{what} {path}: not UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})') \
            from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark is not None else ''
        problem = getattr(exc, 'problem', None) or str(exc).splitlines()[0]
        raise ConfigError(f'{what} {path} is not valid YAML{where}: {problem}') from exc
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:     # e.g. deeply nested, bad timestamps
        raise ConfigError(f'{what} {path} is not valid YAML: {type(exc).__name__}: {exc}') from exc


# Parameters every node accepts (set by ROS itself or cell-wide under `/**`).
COMMON_PARAMS = ('use_sim_time', 'cell_id', 'cell_key_file', 'world_frame', 'max_joint_speed_fraction', 'motions_file',
                 'scale_ramp_down_per_s', 'payload_kg', 'body_regions_file',
                 # the cell layout: one value for the safety functions and the TF tree alike
                 'robot_base_xyz_yaw', 'scanner_pose_xy_yaw')


def load_cell_config(path: str | Path, registry: Mapping[str, NodeParams]) -> dict[str, dict[str, ParamValue]]:
    """Read a ROS 2 parameter YAML and validate every node section against `registry`.

    Returns resolved parameters per node (defaults + cell-wide `/**` values + the node's own).
    Raises ConfigError for a missing file, bad YAML, an unknown node or an unknown parameter.
    """
    path = Path(path)
    document = read_yaml(path, 'config file') or {}
    if not isinstance(document, dict):
        raise ConfigError(f'config file {path} must map node names to sections')
    sections: dict[str, dict[str, Any]] = {}
    for key, section in document.items():
        node = str(key).strip('/').split('/')[-1] if key != '/**' else '/**'
        if node != '/**' and node not in registry:
            raise ConfigError(f'unknown node {key!r} in {path}; accepted: /**, {", ".join(sorted(registry))}')
        if not isinstance(section, dict) or set(section) != {'ros__parameters'}:
            raise ConfigError(f'section {key!r} in {path} must hold exactly one key, ros__parameters')
        params = section['ros__parameters'] or {}
        if not isinstance(params, dict):
            raise ConfigError(f'{key}.ros__parameters in {path} must be a mapping')
        sections[node] = params
    cell_wide = sections.pop('/**', {})
    unknown_common = set(cell_wide) - set(COMMON_PARAMS)
    if unknown_common:
        raise ConfigError(f'unknown cell-wide parameter(s) {sorted(unknown_common)} under /** in {path}; '
                          f'accepted: {", ".join(COMMON_PARAMS)}')
    resolved = {}
    for name, node_params in registry.items():
        merged = {k: v for k, v in cell_wide.items() if k in node_params.by_name}
        merged.update(sections.get(name, {}))
        resolved[name] = node_params.resolve(merged, allow_unknown=COMMON_PARAMS)
    check_cell(resolved, path)
    return resolved


def check_cell(resolved: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    """Checks across nodes, which no single node can make at its start-up: one speed fraction for the
    cell, an arm that slows its scale no faster and raises it no slower than the supervisor assumes,
    a twin that judges contacts with the supervisor's payload and body regions, and a scanner that
    watches the whole hazard zone (robot reach plus S_p)."""
    arm, supervisor, scanner = (resolved.get(name) for name in ('arm', 'supervisor', 'scanner'))
    if arm is not None and supervisor is not None and \
            arm['max_joint_speed_fraction'] != supervisor['max_joint_speed_fraction']:
        raise ConfigError(
            f"{path}: arm.max_joint_speed_fraction={arm['max_joint_speed_fraction']:g} but "
            f"supervisor.max_joint_speed_fraction={supervisor['max_joint_speed_fraction']:g}: the arm would run "
            "faster than the stopping data the supervisor's SSM uses; set it once under /**")
    if arm is not None and supervisor is not None and supervisor['ramp_up_per_s'] > arm['scale_ramp_up_per_s']:
        raise ConfigError(
            f"{path}: supervisor.ramp_up_per_s={supervisor['ramp_up_per_s']:g} but "
            f"arm.scale_ramp_up_per_s={arm['scale_ramp_up_per_s']:g}: the supervisor would raise the scale faster "
            "than the arm follows, and take the arm's scale for higher than it is")
    if arm is not None and supervisor is not None and \
            arm['scale_ramp_down_per_s'] > supervisor['scale_ramp_down_per_s']:
        raise ConfigError(
            f"{path}: arm.scale_ramp_down_per_s={arm['scale_ramp_down_per_s']:g} but "
            f"supervisor.scale_ramp_down_per_s={supervisor['scale_ramp_down_per_s']:g}: the arm would slow its "
            "scale faster than the supervisor assumes, which then underrates its speed at full scale; set it once "
            "under /**")
    twin = resolved.get('twin')
    for name in ('payload_kg', 'body_regions_file'):
        if twin is not None and supervisor is not None and twin[name] != supervisor[name]:
            raise ConfigError(
                f'{path}: twin.{name}={twin[name]!r} but supervisor.{name}={supervisor[name]!r}: the twin would '
                "judge contacts by another arm or body than the supervisor's PFL caps; set it once under /**")
    if scanner is not None and supervisor is not None:
        from smartcell.core.safety.stopping import StoppingModel, check_monitored_area
        stopping_file = Path(supervisor['stopping_file']) if supervisor['stopping_file'] else \
            path.parent / 'stopping.yaml'
        if stopping_file.is_file():      # else the supervisor refuses to start, naming it
            check_monitored_area(scanner, supervisor, StoppingModel.from_yaml(stopping_file), str(path))


def markdown_table(params: NodeParams) -> str:
    """The node's parameters as a Markdown table (README keeps one per node; a test keeps it in sync)."""
    rows = [f'| `{params.name}` parameter | default | accepted | description |', '|---|---|---|---|']
    for spec in params.specs:
        default = repr(spec.default) if isinstance(spec.default, str) else str(spec.default).lower() \
            if isinstance(spec.default, bool) else str(spec.default)
        rows.append(f'| `{spec.name}` | `{default}` | {spec.accepted()} | {spec.description.replace("|", "/")} |')
    return '\n'.join(rows)
