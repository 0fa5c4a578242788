"""Configuration that would break the safety argument is refused, naming the file, the key and why;
damaged files are clean ConfigErrors (exit 2 in the tools), never tracebacks."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from smartcell.core.params import ConfigError, load_cell_config, read_yaml
from smartcell.core.safety.stopping import StoppingModel, hazard_radius_m
from smartcell.topology import param_registry

CONFIG = Path(__file__).resolve().parents[2] / 'config'
SHIPPED = yaml.safe_load((CONFIG / 'stopping.yaml').read_text())


def with_joints(change) -> dict:
    document = copy.deepcopy(SHIPPED)
    change(document['joints'])
    return document


def scaled(table, factor):
    return [[v * factor for v in row] for row in table]


@pytest.mark.parametrize('change, fragment', [
    (lambda j: [j.pop(name) for name in ('shoulder_lift', 'elbow')], "missing ['shoulder_lift', 'elbow']"),
    (lambda j: j.update(wrist_3=j['elbow']), "unknown ['wrist_3']"),
    (lambda j: j['elbow'].update(stopping_distance_rad=scaled(j['elbow']['stopping_distance_rad'], 0.0)),
     'joints.elbow.stopping_distance_rad[0][0] = 0 rad is shorter than braking'),
    (lambda j: j['shoulder_pan'].update(stopping_distance_rad=[[1e-6] * 3] * 6),
     'joints.shoulder_pan.stopping_distance_rad[0][0] = 1e-06 rad'),
    (lambda j: j['shoulder_lift'].update(stopping_time_s=[[1e-6] * 3] * 6),
     'joints.shoulder_lift.stopping_time_s[0][0] = 1e-06 s'),
    # degrees typed where radians belong would be 57x too long (allowed); radians / 57 is too short:
    (lambda j: j['shoulder_pan'].update(stopping_distance_rad=scaled(j['shoulder_pan']['stopping_distance_rad'],
                                                                     1 / 57.3)), 'physically impossible'),
])
def test_implausible_joint_tables_are_refused(change, fragment):
    with pytest.raises(ConfigError) as info:
        StoppingModel.from_mapping(with_joints(change), where='config/stopping.yaml')
    assert fragment in str(info.value) and 'config/stopping.yaml' in str(info.value)


def test_the_shipped_table_is_plausible():
    StoppingModel.from_mapping(SHIPPED)


def test_unknown_robot_has_no_datasheet():
    with pytest.raises(ConfigError, match="robot 'kr3' has no datasheet"):
        StoppingModel.from_mapping({**SHIPPED, 'robot': 'kr3'})


@pytest.mark.parametrize('value', [0.0, 1e-6])
def test_placeholder_cartesian_tables_are_refused(value):
    document = {'speed_fractions': [0.5, 1.0], 'payload_fractions': [1.0],
                'robot_table': {'stopping_time_s': [[0.4], [0.5]], 'stopping_distance_m': [[value], [value]]}}
    with pytest.raises(ConfigError, match=r'robot_table.stopping_distance_m\[0\]\[0\]'):
        StoppingModel.from_mapping(document)


@pytest.mark.parametrize('content, fragment', [
    (bytes(range(256)), 'binary data (NUL byte at offset 0)'),
    (b'\xff\xfe supervisor: 1', 'not UTF-8 text (byte 0'),
    (b'a: [1, 2\nb: 3\n', 'not valid YAML at line'),
    (b'a: b: c', 'not valid YAML at line 1'),
    (b'[' * 5000 + b']' * 5000, 'not valid YAML'),
])
def test_damaged_files_are_clean_errors(tmp_path, content, fragment):
    path = tmp_path / 'cell.yaml'
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_cell_config(path, param_registry())
    assert fragment in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ConfigError, match='stopping model'):
        StoppingModel.from_yaml(path)


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(ConfigError, match='file not found'):
        read_yaml(tmp_path / 'nope.yaml', 'config file')
    with pytest.raises(ConfigError, match='file not found'):       # a directory is not a file
        read_yaml(tmp_path, 'config file')


def cell_file(tmp_path, sections: dict) -> Path:
    document = yaml.safe_load((CONFIG / 'cell.yaml').read_text())
    for node, values in sections.items():
        document.setdefault(node, {'ros__parameters': {}})['ros__parameters'].update(values)
    path = tmp_path / 'cell.yaml'
    path.write_text(yaml.safe_dump(document))
    (tmp_path / 'stopping.yaml').write_text((CONFIG / 'stopping.yaml').read_text())
    return path


def test_the_shipped_cell_passes_the_cross_checks():
    load_cell_config(CONFIG / 'cell.yaml', param_registry())


def test_a_speed_fraction_mismatch_in_the_cell_file_is_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_cell_config(cell_file(tmp_path, {'arm': {'max_joint_speed_fraction': 1.0}}), param_registry())
    assert 'arm.max_joint_speed_fraction=1' in str(info.value) and 'supervisor.max_joint_speed_fraction=0.5' in \
        str(info.value) and 'cell.yaml' in str(info.value)


def test_an_arm_slowing_its_scale_faster_than_the_supervisor_assumes_is_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_cell_config(cell_file(tmp_path, {'arm': {'scale_ramp_down_per_s': 8.0, 'scale_ramp_up_per_s': 1.0}}),
                         param_registry())
    assert 'arm.scale_ramp_down_per_s=8' in str(info.value) and 'supervisor.scale_ramp_down_per_s=4' in \
        str(info.value)
    # the supervisor assuming a faster ramp than the arm's only lowers its bound: accepted
    resolved = load_cell_config(cell_file(tmp_path, {'supervisor': {'scale_ramp_down_per_s': 8.0}}),
                                param_registry())
    assert resolved['supervisor']['scale_ramp_down_per_s'] == 8.0 and resolved['arm']['scale_ramp_down_per_s'] == 4.0


def test_a_supervisor_raising_the_scale_faster_than_the_arm_follows_is_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_cell_config(cell_file(tmp_path, {'supervisor': {'ramp_up_per_s': 2.0}}), param_registry())
    assert 'supervisor.ramp_up_per_s=2' in str(info.value) and 'arm.scale_ramp_up_per_s=1' in str(info.value)


def test_a_monitored_area_smaller_than_reach_plus_sp_is_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_cell_config(cell_file(tmp_path, {'scanner': {'monitored_area_m': [-1.0, -1.0, 1.0, 1.0]}}),
                         param_registry())
    message = str(info.value)
    assert 'scanner.monitored_area_m' in message and 'supervisor.robot_base_xyz_yaw' in message
    assert 'xmin short by' in message and 'ymax short by' in message


def test_the_hazard_radius_covers_reach_and_the_full_speed_sp():
    supervisor = load_cell_config(CONFIG / 'cell.yaml', param_registry())['supervisor']
    radius = hazard_radius_m(supervisor, StoppingModel.from_yaml(CONFIG / 'stopping.yaml'))
    assert 3.0 < radius < 6.0          # reach 1 m + S_p at full speed; the shipped area (+-6 m) covers it


@pytest.mark.parametrize('name, value', [('payload_kg', 3.0), ('body_regions_file', '/cells/7/body_regions.yaml')])
def test_a_twin_judging_contacts_by_another_payload_or_body_than_the_supervisor_is_refused(tmp_path, name, value):
    with pytest.raises(ConfigError) as info:
        load_cell_config(cell_file(tmp_path, {'supervisor': {name: value}}), param_registry())
    assert f'supervisor.{name}={value!r}' in str(info.value) and f'twin.{name}=' in str(info.value)
    assert 'set it once under /**' in str(info.value)


def test_the_payload_set_cell_wide_reaches_the_twin_and_the_supervisor(tmp_path):
    path = cell_file(tmp_path, {})
    document = yaml.safe_load(path.read_text())
    document['/**']['ros__parameters']['payload_kg'] = 2.5
    path.write_text(yaml.safe_dump(document))
    resolved = load_cell_config(path, param_registry())
    assert resolved['twin']['payload_kg'] == resolved['supervisor']['payload_kg'] == 2.5
