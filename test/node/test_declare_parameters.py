"""nodes.common.declare_parameters over real rclpy: overrides from `-p` and params files, unknown keys refused."""
from __future__ import annotations

import os

import pytest

rclpy = pytest.importorskip('rclpy')

from smartcell.core.params import ConfigError, NodeParams, ParamSpec  # noqa: E402
from smartcell.nodes.common import declare_config, declare_parameters  # noqa: E402

NAME = f'params_probe_{os.getpid()}'
SPECS = NodeParams(NAME, (
    ParamSpec('gap_m', 0.1, 'a distance, m', min=0.0, max=1.0),
    ParamSpec('frame', 'world', 'a frame'),
    ParamSpec('pose_xy_yaw', [0.0, 0.0, 0.0], 'x m, y m, yaw rad'),
))
ROS_OWN = {'use_sim_time', 'start_type_description_service'}     # declared by rclpy.Node itself


def node_with(args: list[str], namespace: str = ''):
    context = rclpy.Context()
    rclpy.init(context=context, args=['--ros-args', *args] if args else [])
    node = rclpy.create_node(NAME, namespace=namespace, context=context)
    return context, node


def declared(args: list[str], namespace: str = ''):
    context, node = node_with(args, namespace)
    try:
        return declare_parameters(node, SPECS), sorted(node.list_parameters([], 0).names)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def refusal(args: list[str]) -> str:
    with pytest.raises(ConfigError) as caught:
        declared(args)
    return str(caught.value)


def test_defaults_and_overrides_are_declared_with_their_values():
    values, names = declared([])
    assert values == {'gap_m': 0.1, 'frame': 'world', 'pose_xy_yaw': [0.0, 0.0, 0.0]}
    assert set(names) - ROS_OWN == {'frame', 'gap_m', 'pose_xy_yaw'}
    values, _ = declared(['-p', 'gap_m:=0.25', '-p', 'frame:=base', '-p', 'pose_xy_yaw:=[1.0, 2.0, 0.5]'])
    assert values == {'gap_m': 0.25, 'frame': 'base', 'pose_xy_yaw': [1.0, 2.0, 0.5]}


def test_cell_wide_and_ros_parameters_are_accepted_but_not_declared_by_a_node_without_them():
    values, names = declared(['-p', 'cell_id:=cell-07', '-p', 'use_sim_time:=true',
                              '-p', 'start_type_description_service:=false'])
    assert values['gap_m'] == 0.1
    assert set(names) - ROS_OWN == {'frame', 'gap_m', 'pose_xy_yaw'}     # no cell_id: not one of its specs


@pytest.mark.parametrize('args, unknown', [
    (['-p', 'gap_mm:=0.2'], ['gap_mm']),
    (['-p', 'typo_a:=1', '-p', 'frame:=x', '-p', 'typo_b:=true'], ['typo_a', 'typo_b']),
    (['-p', f'{NAME}:gap_mm:=0.2'], ['gap_mm']),             # node-scoped on the command line
])
def test_an_unknown_command_line_override_names_it_and_the_accepted_ones(args, unknown):
    message = refusal(args)
    assert f'unknown parameter(s) {unknown} for node {NAME!r}' in message
    assert 'accepted: frame, gap_m, pose_xy_yaw' in message


def test_an_override_for_another_node_is_not_this_nodes_business():
    values, _ = declared(['-p', 'other_node:gap_mm:=0.2'])
    assert values['gap_m'] == 0.1


@pytest.mark.parametrize('key', [f'/{NAME}', NAME, '/**'])
def test_an_unknown_key_in_a_params_file_is_refused(tmp_path, key):
    path = tmp_path / 'params.yaml'
    path.write_text(f'{key}:\n  ros__parameters:\n    gap_m: 0.3\n    gap_mn: 0.2\n')
    assert "unknown parameter(s) ['gap_mn']" in refusal(['--params-file', str(path)])
    path.write_text(f'{key}:\n  ros__parameters:\n    gap_m: 0.3\n')
    assert declared(['--params-file', str(path)])[0]['gap_m'] == 0.3


def test_a_namespaced_node_gets_its_own_overrides_and_refusals(tmp_path):
    path = tmp_path / 'params.yaml'
    path.write_text(f'/cell_a/{NAME}:\n  ros__parameters:\n    gap_m: 0.4\n'
                    f'/cell_b/{NAME}:\n  ros__parameters:\n    gap_mm: 0.4\n')
    assert declared(['--params-file', str(path)], namespace='cell_a')[0]['gap_m'] == 0.4
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['gap_mm'\]"):
        declared(['--params-file', str(path)], namespace='cell_b')


@pytest.mark.parametrize('args, fragment', [
    (['-p', 'gap_m:=1.5'], f'parameter {NAME}.gap_m'),
    (['-p', 'gap_m:=near'], f'parameter {NAME}.gap_m'),
])
def test_a_bad_value_names_the_parameter_and_what_is_accepted(args, fragment):
    message = refusal(args)
    assert fragment in message and 'a float in [0, 1]' in message


def test_the_config_is_frozen_and_typed():
    context, node = node_with(['-p', 'pose_xy_yaw:=[1.0, 2.0, 0.5]'])
    try:
        config = declare_config(node, SPECS)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert config.pose_xy_yaw == (1.0, 2.0, 0.5) and config.gap_m == 0.1 and config.frame == 'world'


def test_a_node_executable_with_a_typo_exits_2_naming_it(repo):
    import subprocess
    import sys
    run = subprocess.run([sys.executable, '-m', 'smartcell.nodes.scanner', '--ros-args', '-p', 'scan_timeout:=0.2'],
                         cwd=repo, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "unknown parameter(s) ['scan_timeout'] for node 'scanner'; accepted:" in run.stderr
    assert 'scan_timeout_s' in run.stderr
