"""config/cell.yaml (sensor sections) and config/diagnostics_aggregator.yaml agree with the sensor nodes."""
from __future__ import annotations

import yaml

from smartcell.core.params import load_cell_config
from smartcell.core.sensors.params import ENERGY_METER, UR5E_JOINTS, VIBRATION_SENSOR, WEARABLE
from smartcell.topology import param_registry

REGISTRY = {p.name: p for p in (VIBRATION_SENSOR, ENERGY_METER, WEARABLE)}


def test_sensor_sections_of_cell_yaml_are_valid_and_list_every_parameter(repo):
    path = repo / 'config' / 'cell.yaml'
    resolved = load_cell_config(path, param_registry())
    document = yaml.safe_load(path.read_text())
    for name, params in REGISTRY.items():
        assert set(document[f'/**/{name}']['ros__parameters']) == set(params.by_name), name
        expected_source = 'joint_states' if name == 'energy_meter' else 'sim'
        assert resolved[name]['source'] == expected_source


def test_aggregator_expects_the_status_names_the_sensor_nodes_publish(repo):
    document = yaml.safe_load((repo / 'config' / 'diagnostics_aggregator.yaml').read_text())
    analyzers = document['analyzers']['ros__parameters']
    expected = set()
    prefixes = set()

    def walk(section):
        for value in section.values():
            if isinstance(value, dict):
                expected.update(value.get('expected', []))
                prefixes.update(value.get('startswith', []))
                walk(value)
    walk(analyzers)
    ours = {'smartcell/vibration_sensor', 'smartcell/energy_meter', 'smartcell/energy_meter/environment',
            'smartcell/wearable'} | {f'smartcell/vibration_sensor/{j}' for j in UR5E_JOINTS}
    assert ours <= expected
    for node in ('twin', 'scanner', 'arm', 'supervisor', 'mes_bridge', 'vibration_sensor', 'energy_meter',
                 'wearable'):
        assert f'smartcell/{node}' in prefixes, node
