import math

import pytest
import yaml

from smartcell.core.params import ConfigError, NodeParams, ParamSpec, load_cell_config
from smartcell.topology import CELL_NODES, nodes_for, param_registry

DEMO = NodeParams('demo', (
    ParamSpec('rate_hz', 30.0, 'rate', min=25.0, max=40.0),
    ParamSpec('mode', 'a', 'mode', choices=('a', 'b')),
    ParamSpec('flag', False, 'flag'),
    ParamSpec('pose', [0.0, 0.0], 'pose'),
))


@pytest.mark.parametrize('key,value,fragment', [
    ('rate_hz', 41.0, 'in [25, 40]'),
    ('rate_hz', 'fast', 'a float'),
    ('rate_hz', math.nan, 'finite'),
    ('mode', 'c', "one of 'a', 'b'"),
    ('flag', 1, 'a bool'),
    ('pose', [0.0, 'x'], 'list of float'),
    ('typo_hz', 1.0, "unknown parameter 'typo_hz'"),
])
def test_bad_values_name_the_parameter_and_accepted_values(key, value, fragment):
    with pytest.raises(ConfigError) as err:
        DEMO.resolve({key: value})
    assert fragment in str(err.value)
    assert key in str(err.value)


def test_ints_are_accepted_for_floats_and_defaults_fill_in():
    values = DEMO.resolve({'rate_hz': 30, 'pose': [1, 2]})
    assert values == {'rate_hz': 30.0, 'mode': 'a', 'flag': False, 'pose': [1.0, 2.0]}


def write(tmp_path, document):
    path = tmp_path / 'cell.yaml'
    path.write_text(yaml.safe_dump(document))
    return path


def test_cell_config_merges_cell_wide_and_node_sections(tmp_path):
    path = write(tmp_path, {'/**': {'ros__parameters': {'world_frame': 'cell'}},
                            'supervisor': {'ros__parameters': {'warning_distance_m': 2.0}}})
    config = load_cell_config(path, param_registry())
    assert config['supervisor']['warning_distance_m'] == 2.0
    assert config['supervisor']['world_frame'] == 'cell'
    assert config['scanner']['world_frame'] == 'cell'
    assert set(config) == {n.name for n in CELL_NODES}


@pytest.mark.parametrize('document,fragment', [
    ({'supervisr': {'ros__parameters': {}}}, "unknown node 'supervisr'"),
    ({'supervisor': {'ros__parameters': {'warning_distance': 2.0}}}, "unknown parameter 'warning_distance'"),
    ({'supervisor': {'params': {}}}, 'exactly one key, ros__parameters'),
    ({'/**': {'ros__parameters': {'colour': 'red'}}}, "unknown cell-wide parameter(s) ['colour']"),
    ({'arm': {'ros__parameters': {'backend': 'gazebo'}}}, "one of 'sim', 'ros2_control'"),
])
def test_cell_config_errors(tmp_path, document, fragment):
    with pytest.raises(ConfigError) as err:
        load_cell_config(write(tmp_path, document), param_registry())
    assert fragment in str(err.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match='not found'):
        load_cell_config(tmp_path / 'nope.yaml', param_registry())


def test_shipped_cell_config_is_valid(repo):
    config = load_cell_config(repo / 'config' / 'cell.yaml', param_registry())
    assert config['arm']['backend'] in ('sim', 'ros2_control')


def test_topology_sim_and_hardware_node_sets():
    assert [n.name for n in nodes_for(sim=True)][0] == 'twin'
    assert 'twin' not in [n.name for n in nodes_for(sim=False)]
    assert {'scanner', 'arm', 'supervisor'} <= {n.name for n in nodes_for(sim=False)}


def test_every_node_gets_a_frozen_typed_config_from_its_specs():
    import dataclasses

    from smartcell.topology import CELL_NODES
    for node in CELL_NODES:
        specs = node.params()
        config = specs.config({})
        assert dataclasses.is_dataclass(config) and type(config).__dataclass_params__.frozen
        for spec in specs.specs:
            value = getattr(config, spec.name)
            assert value == (tuple(spec.default) if isinstance(spec.default, list) else spec.default)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(config, specs.specs[0].name, specs.specs[0].default)
    with pytest.raises(ConfigError, match='unknown parameter'):
        CELL_NODES[0].params().config({'no_such_parameter': 1})
