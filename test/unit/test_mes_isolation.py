"""A namespaced MES bridge derives what two cells on one machine must not share (pure, no ROS)."""
import pytest

from smartcell.core.mes.params import (MES_BRIDGE, NAMESPACE_DERIVED, bridge_config, endpoint_port, namespace_slug,
                                       namespaced, with_port)
from smartcell.core.params import ConfigError

DEFAULTS = {spec.name: spec.default for spec in MES_BRIDGE.specs}
ENV = {'ROS_HOME': '/data/ros'}


@pytest.mark.parametrize('namespace,slug', [('/', ''), ('', ''), ('/cell_b', 'cell_b'),
                                            ('/line2/cell_b/', 'line2-cell_b')])
def test_namespace_slug(namespace, slug):
    assert namespace_slug(namespace) == slug


@pytest.mark.parametrize('endpoint,port,moved', [
    ('opc.tcp://127.0.0.1:4840/smartcell/', 4840, 'opc.tcp://127.0.0.1:5000/smartcell/'),
    ('opc.tcp://localhost', 4840, 'opc.tcp://localhost:5000/'),
    ('opc.tcp://[::1]:4841/x', 4841, 'opc.tcp://[::1]:5000/x'),
])
def test_endpoint_port(endpoint, port, moved):
    assert endpoint_port(endpoint) == port and with_port(endpoint, 5000) == moved


def test_root_namespace_changes_nothing():
    assert bridge_config(DEFAULTS, ENV, '/') == bridge_config(DEFAULTS, ENV)
    assert bridge_config(DEFAULTS, ENV).cell_id == 'cell-1'


def test_two_namespaced_cells_share_nothing_from_one_file():
    a, b = (bridge_config({**DEFAULTS, 'cell_id': 'cell-01'}, ENV, ns) for ns in ('/cell_a', '/cell_b'))
    assert (a.cell_id, b.cell_id) == ('cell_a', 'cell_b')
    assert a.db_path != b.db_path and str(b.db_path) == '/data/ros/smartcell/mes_outbox_cell_b.sqlite'
    assert endpoint_port(a.opcua_endpoint) != endpoint_port(b.opcua_endpoint)
    assert all(4841 <= endpoint_port(c.opcua_endpoint) <= 5840 for c in (a, b))
    assert a.mqtt_client_id == b.mqtt_client_id == ''       # empty: the transport derives it from the cell id


def test_explicit_values_get_the_namespace_or_are_kept_when_left_out():
    values = {**DEFAULTS, 'db_path': '/var/mes/outbox.sqlite', 'mqtt_client_id': 'press'}
    derived = namespaced(values, '/cell_b')
    assert derived['db_path'] == '/var/mes/outbox_cell_b.sqlite' and derived['mqtt_client_id'] == 'press-cell_b'
    kept = namespaced({**values, 'cell_id': 'press-7', 'namespace_derived': ['db_path']}, '/cell_b')
    assert kept['cell_id'] == 'press-7' and kept['opcua_endpoint'] == values['opcua_endpoint']
    assert kept['mqtt_client_id'] == 'press' and kept['db_path'] == '/var/mes/outbox_cell_b.sqlite'
    assert namespaced({**values, 'namespace_derived': ['']}, '/cell_b') == {**values, 'namespace_derived': ['']}


def test_bad_derivation_names_are_refused():
    with pytest.raises(ConfigError, match=r"namespace_derived has unknown name\(s\) \['port'\]"):
        namespaced({**DEFAULTS, 'namespace_derived': ['port']}, '/cell_b')
    assert set(DEFAULTS['namespace_derived']) == set(NAMESPACE_DERIVED)
    with pytest.raises(ConfigError, match='> 65535'):
        namespaced({**DEFAULTS, 'opcua_endpoint': 'opc.tcp://127.0.0.1:65500/'}, '/cell_b')


def test_launch_arguments_become_overrides_or_are_refused():
    from smartcell.tools.cell_processes import OverrideRefused, launch_overrides, overrides_document
    from smartcell.topology import param_registry
    declared = ('sim', 'gui', 'namespace', 'config')
    given = {'sim': 'true', 'namespace': 'cell_b', 'mes_bridge.mqtt_port': '1884', '_private': 'x',
             'supervisor.warning_distance_m': '2'}
    assert launch_overrides(given, declared, param_registry()) == [('mes_bridge', 'mqtt_port', 1884),
                                                                   ('supervisor', 'warning_distance_m', 2.0)]
    with pytest.raises(OverrideRefused, match=r'mqtt_port:=.1884. is not an argument of cell.launch.py'):
        launch_overrides({'mqtt_port': '1884'}, declared, param_registry())
    with pytest.raises(OverrideRefused, match="node 'mes_bridge' has no parameter 'mqtt_prot'"):
        launch_overrides({'mes_bridge.mqtt_prot': '1884'}, declared, param_registry())
    assert overrides_document('arm', {'backend': 'x'}) == {'/**/arm': {'ros__parameters': {'backend': 'x'}}}


def test_a_later_params_file_beats_the_cell_file_and_a_plain_p_does_not(tmp_path):
    """Why overrides go in a second file: rclpy applies -p values as /** (beaten by /**/node sections)."""
    import subprocess
    import sys

    import yaml
    from smartcell.tools.cell_processes import overrides_document
    cell = tmp_path / 'cell.yaml'
    cell.write_text('/**:\n  ros__parameters:\n    cell_id: a\n/**/probe:\n  ros__parameters:\n    mqtt_port: 1883\n')
    extra = tmp_path / 'extra.yaml'
    extra.write_text(yaml.safe_dump(overrides_document('probe', {'mqtt_port': 1999})))
    script = ('import sys, rclpy\nfrom rclpy.node import Node\nrclpy.init(args=sys.argv)\nn = Node("probe")\n'
              'n.declare_parameter("mqtt_port", 0)\nprint(n.get_parameter("mqtt_port").value)\n')

    def port(*args):
        return int(subprocess.run([sys.executable, '-c', script, '--ros-args', '--params-file', str(cell), *args],
                                  capture_output=True, text=True, timeout=60, check=True).stdout)
    assert port('-p', 'mqtt_port:=1999') == 1883          # the silent loss the issue reported
    assert port('--params-file', str(extra)) == 1999        # what smartcell sim and the launch file do
