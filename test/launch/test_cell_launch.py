"""The real launch file, where launch_ros is importable (ROS 2 installs; not the PyPI wheels)."""
import importlib.util

import pytest

from smartcell.topology import DEFAULT_GROUPS, nodes_for

launch = pytest.importorskip('launch', reason='launch/launch_ros are not on PyPI; this runs on ROS 2 installs')
launch_ros = pytest.importorskip('launch_ros')


def load_description(repo):
    spec = importlib.util.spec_from_file_location('cell_launch', repo / 'launch' / 'cell.launch.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


@pytest.mark.parametrize('switched_off', [(), ('sensors',), ('mes', 'hmi')])
@pytest.mark.parametrize('record', ['false', 'true'])
@pytest.mark.parametrize('sim', ['true', 'false'])
def test_launch_starts_exactly_the_topology_nodes(repo, sim, record, switched_off):
    from launch import LaunchContext
    from launch_ros.actions import Node

    description = load_description(repo)
    context = LaunchContext()
    context.launch_configurations.update({'sim': sim, 'gui': 'false', 'namespace': '', 'record': record,
                                          'config': str(repo / 'config' / 'cell.yaml'),
                                          **{g: 'false' if g in switched_off else 'true'
                                             for g in ('sensors', 'mes', 'hmi')}})
    started = [entity for entity in description.entities
               # smartcell's own: on hardware the launch file also starts robot_state_publisher
               if isinstance(entity, Node) and entity.node_package == 'smartcell'
               and (entity.condition is None or entity.condition.evaluate(context))]
    names = sorted(node.node_executable for node in started)
    groups = tuple(g for g in DEFAULT_GROUPS if g not in switched_off) + (('record',) if record == 'true' else ())
    assert names == sorted(spec.name for spec in nodes_for(sim=sim == 'true', groups=groups))


def test_every_argument_is_described(repo):
    from launch.actions import DeclareLaunchArgument
    arguments = [e for e in load_description(repo).entities if isinstance(e, DeclareLaunchArgument)]
    assert {a.name for a in arguments} == {'sim', 'gui', 'namespace', 'config', 'record', 'sensors', 'mes', 'hmi'}
    assert all(a.description for a in arguments)
    choices = {a.name: a.choices for a in arguments}
    assert choices['sim'] == choices['gui'] == choices['sensors'] == ['true', 'false']
