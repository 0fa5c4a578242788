"""mes_bridge parameters: the shipped YAML validates, cross-checks name the bad key, defaults resolve."""
from pathlib import Path

import pytest

from smartcell.core.mes.records import (FillAlarm, parse_orders, service_for, EXAMPLE_ORDERS_YAML, JobOrder,
                                        OrderRejected)
from smartcell.topology import param_registry
from smartcell.core.mes.params import MES_BRIDGE, bridge_config
from smartcell.core.params import ConfigError, load_cell_config

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_yaml_matches_the_specs():
    resolved = load_cell_config(ROOT / 'config' / 'cell.yaml', param_registry())['mes_bridge']
    # The cell file sets the cell id (cell-wide) and its products (the job recipes); the rest are defaults.
    assert {k: v for k, v in resolved.items() if k not in ('cell_id', 'work_masters', 'ideal_cycle_s')} == \
        {k: v for k, v in MES_BRIDGE.defaults().items() if k not in ('cell_id', 'work_masters', 'ideal_cycle_s')}
    cfg = bridge_config(resolved, environ={'ROS_HOME': '/data/ros', 'SMARTCELL_MQTT_PASSWORD': 'pw'})
    assert str(cfg.db_path) == '/data/ros/smartcell/mes_outbox_cell-01.sqlite'
    assert cfg.mqtt_password == 'pw'
    assert cfg.ideal_cycle_s == {'demo': 20.0, 'gearbox': 99.0, 'kitting': 38.0}
    for product in cfg.ideal_cycle_s:            # every product the MES may order has a recipe
        assert (ROOT / 'config' / f'job_{product}.yaml').is_file()


@pytest.mark.parametrize('override,words', [
    ({'ideal_cycle_s': [30.0]}, 'same length'),
    ({'ideal_cycle_s': [30.0, 0.0, 1.0]}, 'must be > 0'),
    ({'opcua_endpoint': 'http://x'}, 'opc.tcp://'),
    ({'backoff_initial_s': 40.0, 'backoff_max_s': 30.0}, 'backoff_initial_s'),
])
def test_cross_checks(override, words):
    with pytest.raises(ConfigError, match=words):
        bridge_config(MES_BRIDGE.resolve(override))


@pytest.mark.parametrize('override', [{'mqtt_port': 0}, {'opcua_security': 'basic128'}, {'mqtt_prot': 1}])
def test_bad_values_are_refused_by_the_specs(override):
    with pytest.raises(ConfigError):
        MES_BRIDGE.resolve(override)


def test_orders_file_intake():
    # the products the shipped cell makes: the example orders must be ones it accepts
    products = load_cell_config(ROOT / 'config' / 'cell.yaml', param_registry())['mes_bridge']['work_masters']
    orders = parse_orders(EXAMPLE_ORDERS_YAML, products)
    assert [o.order_id for o in orders] == ['PO-2026-0001', 'PO-2026-0002']
    assert all(isinstance(o, JobOrder) for o in orders), orders
    shipped = parse_orders((ROOT / 'config' / 'job_orders.yaml').read_text(), products)
    assert shipped == orders
    mixed = parse_orders('orders:\n- {order_id: A, work_master: bracket_a, quantity: 1}\n'
                         '- {order_id: A, work_master: bracket_a, quantity: 2}\n'
                         '- {order_id: B, work_master: nope, quantity: 1}\n', ['bracket_a'])
    assert isinstance(mixed[0], JobOrder)
    assert isinstance(mixed[1], OrderRejected) and 'duplicate' in mixed[1].reason
    assert isinstance(mixed[2], OrderRejected) and mixed[2].reason.startswith('order #2: unknown work master')
    assert isinstance(parse_orders('{a: [', ['x'])[0], OrderRejected)


def test_job_commands_map_to_supervisor_services():
    assert service_for('Abort') == 'cell/stop'
    with pytest.raises(ValueError, match='Cancel'):
        service_for('Cancel')


@pytest.mark.parametrize('active,fill,expected', [
    (False, 0.80, False), (False, 0.81, True), (True, 0.75, True), (True, 0.69, False), (True, 1.5, True),
])
def test_fill_alarm_hysteresis(active, fill, expected):
    assert FillAlarm().next_state(active, fill) is expected
