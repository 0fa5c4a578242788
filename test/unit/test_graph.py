"""Who may publish a safety input (smartcell.core.safety.graph)."""
import pytest

from smartcell.core.safety.graph import UNNAMED_NODE, check_command_publishers, publisher_doubt


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


SUP = ('supervisor', '/')


@pytest.mark.parametrize('publishers, matched, problem, pending', [
    ([SUP], 1, '', False),
    ([SUP], None, '', False),
    ([], 0, 'no publisher of safety/verdict', False),
    ([], 1, '1 publisher(s) of safety/verdict not yet named', True),            # start-up: matched, not listed
    ([(UNNAMED_NODE, '/')], 1, 'not yet named on the ROS graph', True),          # start-up: listed, not named
    ([SUP], 2, '1 more publisher(s) of safety/verdict beside /supervisor', False),  # a stranger's first ms
    ([SUP, (UNNAMED_NODE, '/')], 2, 'a stranger until named', False),
    ([SUP, ('spoofer', '/')], 2, 'unexpected publisher(s) of safety/verdict: /spoofer', False),
    ([(UNNAMED_NODE, '/'), ('spoofer', '/')], 2, '/spoofer', False),
    ([SUP, SUP], 2, '2 publishers of safety/verdict named /supervisor', False),  # restarted, or a second process
    ([('supervisor', '/cell2')], 1, 'unexpected publisher(s) of safety/verdict: /cell2/supervisor', False),
])
def test_a_command_topic_trusts_only_the_one_named_supervisor(publishers, matched, problem, pending):
    check = check_command_publishers('safety/verdict', publishers, 'supervisor', '/', matched)
    assert check.pending is pending
    undecided = publishers == [SUP, SUP] or 'beside /supervisor' in problem or 'a stranger until named' in problem
    assert check.ambiguous is undecided
    assert (check.problem == '') if not problem else (problem in check.problem)


def test_no_publisher_at_all_is_no_problem_for_the_periodic_graph_check():
    assert check_command_publishers('arm/joint_trajectory', [], 'supervisor', '/', 0, allow_none=True).problem == ''
