"""The arm node in its own process over real DDS (sim backend, driven by this test as the twin)."""
from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from std_srvs.srv import Trigger

from smartcell.tools.cell_processes import node_command

pytestmark = pytest.mark.ros
HOME = [0.0, -1.571, 1.571, -1.571, -1.571, 0.0]


@pytest.fixture
def arm(peer, processes, fake_twin):
    processes.start('arm', node_command('smartcell.nodes.arm', 'arm', None, {'deadman_timeout_s': 0.2}))
    twin = fake_twin(peer)
    peer.wait_for(lambda: len(twin.commands) > 5 and twin.mode, 30, 'arm commands', processes)
    return twin


def test_trajectory_beyond_limits_is_refused_with_a_reason(peer, processes, arm):
    arm.send('too-far', [0.0, -1.571, 3.5, -1.571, -1.571, 0.0], 5.0)
    peer.wait_for(lambda: arm.result('too-far') is not None, 10, 'refusal', processes)
    result = arm.result('too-far')
    assert result.level == DiagnosticStatus.ERROR
    assert 'elbow_joint' in result.message and 'outside its limits' in result.message


def test_executes_then_controlled_stop_holds_position(peer, processes, arm):
    target = list(HOME)
    target[0] = 0.6
    arm.send('move', target, 2.0)
    peer.wait_for(lambda: arm.position[0] > 0.15, 10, 'motion', processes)
    answer = peer.call(Trigger, 'arm/stop', processes=processes)
    assert answer.success
    peer.wait_for(lambda: arm.mode == 'held', 5, 'held mode', processes)
    held = arm.position[0]
    count = len(arm.commands)
    peer.wait_for(lambda: len(arm.commands) > count + 20, 5, 'more commands', processes)
    assert arm.position[0] == pytest.approx(held, abs=1e-9)
    assert 0.15 < held < 0.6
    assert peer.call(Trigger, 'arm/resume', processes=processes).success
    peer.wait_for(lambda: arm.result('move') is not None, 15, 'completion', processes)
    assert arm.result('move').level == DiagnosticStatus.OK
    # the final set-point is published before the result (topics may still arrive in either order)
    peer.wait_for(lambda: abs(arm.position[0] - 0.6) < 1e-6, 5, 'final set-point', processes)


def test_deadman_stops_the_arm_when_verdicts_stop(peer, processes, arm):
    target = list(HOME)
    target[0] = 1.5
    arm.send('long', target, 6.0)
    peer.wait_for(lambda: arm.position[0] > 0.05, 10, 'motion', processes)
    arm.scale = None                       # the supervisor goes silent
    peer.wait_for(lambda: arm.mode == 'paused', 3, 'deadman stop', processes)
    frozen = arm.position[0]
    count = len(arm.commands)
    peer.wait_for(lambda: len(arm.commands) > count + 10, 5, 'more commands', processes)
    assert arm.position[0] == pytest.approx(frozen, abs=1e-9)
    assert frozen < 1.5


def test_speed_scale_time_scales_the_motion(peer, processes, arm):
    arm.scale = 0.25
    target = list(HOME)
    target[0] = 0.5
    arm.send('slow', target, 1.0)
    peer.wait_for(lambda: arm.result('slow') is not None, 20, 'slow completion', processes)
    moving = [c for c in arm.commands if abs(c.velocity[0]) > 1e-6]
    peak = max(abs(c.velocity[0]) for c in moving)
    # Full speed would peak at 1.5 * 0.5 rad / 1 s = 0.75 rad/s; a quarter of it here.
    assert peak == pytest.approx(0.25 * 0.75, rel=0.1)
