"""Stray publishers, spoofed and replayed commands against the real scanner -> supervisor -> arm chain."""
from __future__ import annotations

import copy
import math

import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseArray
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import LaserScan
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from smartcell.core.robot.kinematics import JOINT_NAMES
from smartcell.core.safety.verdict import VERDICT_STATUS_NAME
from smartcell.nodes.common import STREAM_QOS

from scan_helpers import BEAMS, INCREMENT, legs_ranges, scan_msg
from smartcell_adversarial import NEAR, people_msg, probe, start_cell

pytestmark = pytest.mark.ros
GENERATED = settings(max_examples=25, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope='module')
def cell(request, tmp_path_factory):
    return start_cell(request, tmp_path_factory, with_scanner=True)


def flood(cell, publisher, make, seconds: float = 1.5, period_s: float = 0.005) -> None:
    """Publish make() every period_s for `seconds` from this process, then withdraw the publisher."""
    timer = cell.peer.node.create_timer(period_s, lambda: publisher.publish(make()))
    try:
        cell.pace(seconds)
    finally:
        cell.peer.node.destroy_timer(timer)
        cell.peer.node.destroy_publisher(publisher)


def unsigned_verdict(cell, scale: float = 1.0) -> DiagnosticArray:
    status = DiagnosticStatus(name=VERDICT_STATUS_NAME, values=[KeyValue(key='speed_scale', value=repr(scale))])
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = cell.peer.node.get_clock().now().to_msg()
    return msg


def restamped(cell, msg):
    copied = copy.deepcopy(msg)
    copied.header.stamp = cell.peer.node.get_clock().now().to_msg()
    return copied


def test_stray_humans_publisher_hiding_the_person(cell):
    cell.running_far()
    with probe(cell, 'stray publisher', 'empty humans stamped +50 ms at 200 Hz'):
        pub = cell.peer.node.create_publisher(PoseArray, 'humans', STREAM_QOS)

        def ahead() -> PoseArray:
            now = cell.peer.node.get_clock().now().nanoseconds + 50_000_000
            return people_msg(cell.peer.node, [], stamp=Time(sec=now // 10**9, nanosec=now % 10**9))
        flood(cell, pub, ahead)
        cell.wait(lambda: cell.errors('on humans'), 5, 'an ERROR naming the stray humans publisher')


def test_stray_scan_publisher(cell):
    cell.running_far()
    with probe(cell, 'stray publisher', 'empty scans with another range_min'):
        pub = cell.peer.node.create_publisher(LaserScan, 'scan', STREAM_QOS)

        def stray() -> LaserScan:
            msg = scan_msg(cell.peer.node.get_clock().now().to_msg(), ranges=legs_ranges(5.0, 5.0))
            msg.range_min, msg.ranges = 0.051, [math.inf] * BEAMS
            return msg
        flood(cell, pub, stray)


def test_stray_verdict_publisher(cell):
    cell.running_far()
    with probe(cell, 'stray publisher', 'unsigned verdicts at full scale'):
        flood(cell, cell.peer.node.create_publisher(DiagnosticArray, 'safety/verdict', STREAM_QOS),
              lambda: unsigned_verdict(cell))


def test_replayed_verdicts(cell):
    cell.running_far()

    def fast() -> list[DiagnosticArray]:
        return [v for v in cell.verdicts if any(kv.key == 'speed_scale' and float(kv.value) > 0.5
                                                for kv in v.status[0].values)]
    cell.wait(lambda: len(fast()) > 10, 20, 'signed verdicts above 0.5 to capture')
    captured = fast()[-30:]
    with probe(cell, 'replay', 'captured signed verdicts replayed and restamped'):
        index = {'i': 0}

        def replay() -> DiagnosticArray:
            index['i'] += 1
            msg = captured[index['i'] % len(captured)]
            return msg if index['i'] % 2 else restamped(cell, msg)
        flood(cell, cell.peer.node.create_publisher(DiagnosticArray, 'safety/verdict', STREAM_QOS), replay)


def trajectory_to(target: list[float], frame_id: str) -> JointTrajectory:
    msg = JointTrajectory(joint_names=list(JOINT_NAMES))
    msg.header.frame_id = frame_id
    msg.points = [JointTrajectoryPoint(positions=target)]
    msg.points[0].time_from_start.sec = 2
    return msg


def test_stray_trajectory_publisher(cell):
    cell.running_far()
    with probe(cell, 'stray publisher', 'unsigned trajectories'):
        target = [0.5, -1.2, 1.2, -1.5, -1.5, 0.3]
        flood(cell, cell.peer.node.create_publisher(JointTrajectory, 'arm/joint_trajectory', 10),
              lambda: trajectory_to(target, 'spoof-1'), seconds=1.0, period_s=0.05)


def test_replayed_trajectories(cell):
    cell.running_far()
    cell.wait(lambda: len(cell.trajectories) >= 2, 20, 'signed trajectories from the supervisor')
    captured = list(cell.trajectories[-5:])
    with probe(cell, 'replay', 'captured signed trajectories replayed'):
        index = {'i': 0}

        def replay() -> JointTrajectory:
            index['i'] += 1
            msg = captured[index['i'] % len(captured)]
            return msg if index['i'] % 2 else restamped(cell, msg)
        flood(cell, cell.peer.node.create_publisher(JointTrajectory, 'arm/joint_trajectory', 10), replay,
              seconds=1.0, period_s=0.05)


SCAN_FIELDS = st.fixed_dictionaries({
    'ranges': st.one_of(
        st.lists(st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e30]), min_size=0, max_size=BEAMS),
        st.just([math.nan] * BEAMS), st.just([-0.5] * BEAMS), st.just([]), st.just([1.0] * 100_000)),
    'range_min': st.sampled_from([0.05, 20.0, math.nan, -1.0]),
    'angle_increment': st.sampled_from([INCREMENT, math.nan, 0.0, -INCREMENT, math.inf]),
    'frame': st.sampled_from(['scanner_link', '', 'world', 'x' * 300]),
    'stamp_offset_s': st.sampled_from([0.0, 100.0, -100.0, -1e6])})


def test_malformed_scans_from_the_driver(cell):
    """A faulty driver (the legitimate `twin` publisher) sends only garbage while the person stands at
    the table edge: never read as nobody there."""
    cell.running_far()
    with probe(cell, 'malformed input', 'generated malformed scans (scan)', count=GENERATED.max_examples):
        cell.person = None                      # the valid scans stop: only garbage flows

        @GENERATED
        @given(fields=SCAN_FIELDS)
        def send(fields):
            msg = scan_msg(cell.source.get_clock().now().to_msg(), ranges=legs_ranges(*NEAR))
            msg.ranges = [float(r) for r in fields['ranges']]
            msg.range_min, msg.angle_increment = fields['range_min'], fields['angle_increment']
            msg.header.frame_id = fields['frame']
            ns = cell.source.get_clock().now().nanoseconds + int(fields['stamp_offset_s'] * 1e9)
            msg.header.stamp = Time(sec=max(ns, 0) // 10**9, nanosec=max(ns, 0) % 10**9)
            cell.scan_pub.publish(msg)
            cell.pace(0.03)
        send()
        cell.person = NEAR


# Last: the killed supervisor's DDS endpoints stay on the graph until its lease runs out.
def test_impostor_supervisor_after_the_real_one_died(cell):
    """The real supervisor is killed; a node named `supervisor` replays its signed verdicts with
    higher sequence numbers (no key: signature broken) and restamped ones: the arm stays stopped
    (deadman), and the restarted supervisor brings the cell back idle."""
    cell.running_far()
    captured = list(cell.verdicts[-20:])
    with probe(cell, 'process restart', 'kill -9 supervisor, impostor replays verdicts, restart'):
        start = cell.person_near()
        cell.processes.kill('supervisor')
        del cell.processes.processes['supervisor']
        import rclpy
        impostor = rclpy.create_node('supervisor', context=cell.peer.context)
        cell.peer.executor.add_node(impostor)
        pub = impostor.create_publisher(DiagnosticArray, 'safety/verdict', STREAM_QOS)
        index = {'i': 0}

        def forge() -> DiagnosticArray:
            index['i'] += 1
            msg = restamped(cell, captured[index['i'] % len(captured)])
            values = {kv.key: kv.value for kv in msg.status[0].values}
            values['speed_scale'] = '1.0'
            for key in values:
                if key.endswith('sequence'):
                    values[key] = str(int(values[key]) + 10**6 + index['i'])
            msg.status[0].values = [KeyValue(key=k, value=v) for k, v in values.items()]
            return msg
        timer = impostor.create_timer(0.01, lambda: pub.publish(forge()))
        cell.pace(1.5)
        impostor.destroy_timer(timer)
        cell.peer.executor.remove_node(impostor)
        impostor.destroy_node()
        cell.assert_still(start, 'impostor supervisor')
        cell.person = NEAR
        cell.start_supervisor()
        cell.wait(lambda: cell.state == 'idle', 30, 'restarted supervisor: cell idle')
