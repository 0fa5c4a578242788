"""A namespaced MES bridge derives what two cells on one machine must not share (pure, no ROS)."""
import pytest

from smartcell.core.mes.params import (MES_BRIDGE, NAMESPACE_DERIVED, bridge_config, endpoint_port, namespace_slug,
                                       namespaced, with_port)
from smartcell.core.params import ConfigError

DEFAULTS = {spec.name: spec.default for spec in MES_BRIDGE.specs}
ENV = {'ROS_HOME': '/data/ros'}


@pytest.mark.parametrize('namespace,slug', [('/', ''), ('', ''), ('/cell_b', 'cell_b'), ('/line2/cell_b/', 'line2-cell_b')])
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
