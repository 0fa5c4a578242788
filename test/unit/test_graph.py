"""Who may publish a safety input (smartcell.core.safety.graph)."""
import pytest

from smartcell.core.safety.graph import UNNAMED_NODE, publisher_doubt


@pytest.mark.parametrize('publishers, doubt', [
    ([], ''),                                                     # silence: the data timeout's business
    ([('scanner', '/')], ''),
    ([('scanner', '/'), (UNNAMED_NODE, '/')], ''),                # discovery in progress
    ([('scanner', '/'), ('scanner', '/')], ''),                   # one node, two endpoints listed twice
    ([('scanner', '/'), ('stranger', '/')], '2 publishers on humans (/scanner, /stranger)'),
    ([('stranger', '/')], 'unexpected publisher /stranger on humans'),
    ([('scanner', '/cell2')], 'unexpected publisher /cell2/scanner'),
])
def test_only_the_expected_node_may_publish(publishers, doubt):
    found = publisher_doubt('humans', publishers, 'scanner', '/')
    assert (found == '') if not doubt else (doubt in found)


def test_an_empty_expected_node_accepts_any_single_publisher():
    assert publisher_doubt('humans', [('test_peer', '/')], '', '/') == ''
    assert 'only' in publisher_doubt('humans', [('a', '/'), ('b', '/')], '', '/')
