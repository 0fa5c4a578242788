"""The three sensor nodes start from config/cell.yaml and report on /diagnostics."""
from __future__ import annotations

import pytest

from smartcell.tools.cell_processes import node_command

pytestmark = pytest.mark.ros


def test_sensor_nodes_start_from_the_shipped_config(peer, processes, repo):
    from diagnostic_msgs.msg import DiagnosticArray
    params = repo / 'config' / 'cell.yaml'
    for name in ('vibration_sensor', 'energy_meter', 'wearable'):
        processes.start(name, node_command(f'smartcell.nodes.{name}', name, params, {}))
    seen = set()
    peer.node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: seen.update(s.name for s in m.status), 10)
    wanted = {'smartcell/vibration_sensor', 'smartcell/vibration_sensor/elbow_joint', 'smartcell/energy_meter',
              'smartcell/energy_meter/environment', 'smartcell/wearable'}
    peer.wait_for(lambda: wanted <= seen, 30.0, f'diagnostics of {sorted(wanted)}', processes)
    assert not processes.failed()
