"""The arm node in its own process over real DDS (sim backend, driven by this test as the twin)."""
from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectoryPoint

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


def test_trajectory_above_the_cell_speed_fraction_is_refused(peer, processes, arm):
    # 1.2 rad in 1 s peaks at 1.8 rad/s: within the pan joint's 3.14 rad/s, above half of it (the
    # cell's max_joint_speed_fraction 0.5, on which the SSM stopping distances rely).
    target = list(HOME)
    target[0] = 1.2
    arm.send('too-fast', target, 1.0)
    peer.wait_for(lambda: arm.result('too-fast') is not None, 10, 'refusal', processes)
    result = arm.result('too-fast')
    assert result.level == DiagnosticStatus.ERROR
    assert 'shoulder_pan_joint would reach 1.800 rad/s' in result.message and '1.571' in result.message


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


def test_ros2_control_backend_streams_the_scaled_path_to_the_controller(peer, processes):
    """Hardware backend: set-points go to the vendor's trajectory controller, state comes from its driver."""
    from diagnostic_msgs.msg import DiagnosticArray, KeyValue
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from smartcell.core.kinematics import JOINT_NAMES
    from smartcell.core.verdict import VERDICT_STATUS_NAME
    from smartcell.nodes.common import STREAM_QOS, duration_msg
    processes.start('arm', node_command('smartcell.nodes.arm', 'arm', None, {
        'backend': 'ros2_control', 'controller_topic': 'ctrl/joint_trajectory',
        'driver_joint_states_topic': 'driver/joint_states', 'control_rate_hz': 50.0}))
    streamed: list[JointTrajectory] = []
    peer.node.create_subscription(JointTrajectory, 'ctrl/joint_trajectory', streamed.append, 10)
    driver = peer.node.create_publisher(JointState, 'driver/joint_states', STREAM_QOS)
    verdicts = peer.node.create_publisher(DiagnosticArray, 'safety/verdict', STREAM_QOS)
    requests = peer.node.create_publisher(JointTrajectory, 'arm/joint_trajectory', 10)

    def feed() -> None:
        now = peer.node.get_clock().now().to_msg()
        state = JointState(name=list(JOINT_NAMES), position=HOME, velocity=[0.0] * 6)
        state.header.stamp = now
        driver.publish(state)
        verdict = DiagnosticArray(status=[DiagnosticStatus(name=VERDICT_STATUS_NAME,
                                                           values=[KeyValue(key='speed_scale', value='0.5')])])
        verdict.header.stamp = now
        verdicts.publish(verdict)
    peer.node.create_timer(0.02, feed)
    peer.wait_for(lambda: len(streamed) > 5, 20, 'streamed set-points', processes)
    target = list(HOME)
    target[0] = 0.3
    request = JointTrajectory(joint_names=list(JOINT_NAMES))
    request.header.frame_id = 'hw-move'
    request.points = [JointTrajectoryPoint(positions=target, time_from_start=duration_msg(1.0))]
    requests.publish(request)
    peer.wait_for(lambda: streamed[-1].points[0].positions[0] > 0.299, 15, 'path streamed to the end', processes)
    moving = [m.points[0] for m in streamed if abs(m.points[0].velocities[0]) > 1e-6]
    assert moving, 'no moving set-points were streamed'
    # at scale 0.5 the 1 s segment (peak 1.5 x 0.3 rad/s) peaks at half speed
    assert max(abs(p.velocities[0]) for p in moving) == pytest.approx(0.5 * 0.45, rel=0.1)
    assert all(list(m.joint_names) == list(JOINT_NAMES) for m in streamed)
    assert streamed[-1].points[0].time_from_start.nanosec == 100_000_000     # stream_horizon_s default
