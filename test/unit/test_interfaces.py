"""The interface table (smartcell.interfaces): every subscription has a compatible publisher."""
import pytest

from smartcell.interfaces import (EXTERNAL, LATCHED, SENSOR, SERVICES, STREAM, TOPICS, Durability, Qos, Reliability,
                                  compatible, topic)
from smartcell.topology import CELL_NODES

NODES = {n.name for n in CELL_NODES} | {EXTERNAL}


@pytest.mark.parametrize('entry', TOPICS, ids=lambda t: t.name)
def test_every_topic_names_cell_nodes_and_has_compatible_qos(entry):
    assert set(entry.publishers) <= NODES and set(entry.subscribers) <= NODES, entry
    assert entry.publishers, f'{entry.name} has no publisher'
    assert compatible(entry.publisher_qos, entry.subscriber_qos) == '', entry.name
    assert entry.type.count('/msg/') == 1


def test_names_are_unique_and_services_have_servers():
    names = [t.name for t in TOPICS]
    assert len(names) == len(set(names))
    assert all(s.server in NODES for s in SERVICES)


@pytest.mark.parametrize('publisher, subscriber, ok', [
    (STREAM, STREAM, True), (STREAM, SENSOR, True), (SENSOR, STREAM, False), (LATCHED, LATCHED, True),
    (STREAM, LATCHED, False), (LATCHED, STREAM, True)])
def test_the_request_offer_rule(publisher, subscriber, ok):
    assert (compatible(publisher, subscriber) == '') is ok


def test_sensor_inputs_take_the_sensor_data_qos():
    scan = topic('scan')
    assert scan.subscriber_qos.reliability is Reliability.BEST_EFFORT
    assert compatible(Qos(Reliability.BEST_EFFORT, Durability.VOLATILE, 10), scan.subscriber_qos) == ''
    with pytest.raises(KeyError, match='no topic'):
        topic('nope')
