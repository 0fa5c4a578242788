"""The shipped example orders are accepted by the shipped cell: every order's product is one it makes."""
import yaml

from smartcell.core.mes.records import JobOrder, parse_orders
from smartcell.core.params import load_cell_config
from smartcell.topology import param_registry


def test_every_example_order_is_valid_for_the_shipped_cell(repo):
    cell = load_cell_config(repo / 'config' / 'cell.yaml', param_registry())
    products = cell['mes_bridge']['work_masters']
    text = (repo / 'config' / 'job_orders.yaml').read_text()
    orders = parse_orders(text, products)
    assert len(orders) == len(yaml.safe_load(text)) >= 1
    refused = [o.reason for o in orders if not isinstance(o, JobOrder)]
    assert refused == []
    # and every product ordered has its recipe installed beside it
    assert all((repo / 'config' / f'job_{o.work_master}.yaml').is_file() for o in orders)


def test_an_order_for_a_product_the_cell_does_not_make_is_refused(repo):
    orders = parse_orders('- {order_id: PO-1, work_master: bracket_a, quantity: 1}\n', ['demo', 'gearbox'])
    assert not isinstance(orders[0], JobOrder) and 'unknown work master' in orders[0].reason
