"""`smartcell sim`'s observer names the links of the lockstep chain when a run stalls (real ROS graph)."""
from __future__ import annotations

import re

import pytest
from geometry_msgs.msg import PoseArray

from smartcell.tools.sim_monitor import LOCKSTEP_CHAIN, SimMonitor

pytestmark = pytest.mark.ros


def test_the_stall_diagnosis_counts_publishers_and_subscribers_of_each_lockstep_topic(peer):
    monitor = SimMonitor(peer.context, 10.0, progress=False)
    before = int(re.search(r'(?<![/\w])humans (\d+)->', monitor.lockstep_graph()).group(1))
    publisher = peer.node.create_publisher(PoseArray, 'humans', 10)
    peer.wait_for(lambda: f' humans {before + 1}->' in monitor.lockstep_graph(), 10,
                  'the monitor to see the new humans publisher')
    text = monitor.lockstep_graph()
    assert text.startswith('publishers->subscribers on the graph: ')
    for topic in LOCKSTEP_CHAIN:          # every link of the chain, in order, with both counts
        assert re.search(rf'(?<![/\w]){re.escape(topic)} \d+->\d+', text), (topic, text)
    assert [m.group(1) for m in re.finditer(r'([\w/]+) \d+->\d+', text)] == list(LOCKSTEP_CHAIN)
    peer.node.destroy_publisher(publisher)
    monitor.close()
