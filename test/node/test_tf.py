"""TF over real DDS: the robot_state node's frames, and every frame_id a running simulated cell
publishes walked to `world` through the /tf and /tf_static messages this process received."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from importlib import import_module

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from geometry_msgs.msg import Pose, PoseArray  # noqa: E402
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402
try:
    from tf2_msgs.msg import TFMessage  # noqa: E402
except ImportError as exc:   # not a skip: `make venv` builds it (tools/build_interfaces.sh), so this is a broken venv
    raise ImportError(f'{exc}: run `make venv` (tools/build_interfaces.sh builds tf2_msgs into .venv)') from exc

from smartcell.core.robot.kinematics import JOINT_NAMES, LINK_CAPSULE_RADII, forward_kinematics  # noqa: E402
from smartcell.core.safety.verdict import VERDICT_STATUS_NAME  # noqa: E402
from smartcell.core.robot.tf_tree import FrameTree, Transform, parse_urdf  # noqa: E402
from smartcell.nodes.common import STREAM_QOS  # noqa: E402
from smartcell.tools.cell_processes import node_command  # noqa: E402

pytestmark = pytest.mark.ros

STATIC_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)    # tf2_ros's static listener
TF_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
BASE = [0.4, -0.2, 0.75, math.pi / 2]
SCANNER = [0.95, 0.55, math.pi / 4]


def transform_of(msg) -> Transform:
    t, r = msg.transform.translation, msg.transform.rotation
    return Transform(msg.header.frame_id, msg.child_frame_id, (t.x, t.y, t.z), (r.x, r.y, r.z, r.w))


class TfProbe:
    """/tf, /tf_static, /robot_description and /diagnostics as received; a FrameTree of the latest transforms."""

    def __init__(self, peer) -> None:
        node = peer.node
        self.tree = FrameTree()
        self.tf: list[TFMessage] = []
        self.static: list[TFMessage] = []
        self.description: list[String] = []
        self.diagnostics: list[DiagnosticArray] = []
        node.create_subscription(TFMessage, '/tf', self._on_tf, TF_QOS)
        node.create_subscription(TFMessage, '/tf_static', self._on_static, STATIC_QOS)
        node.create_subscription(String, '/robot_description', self.description.append, STATIC_QOS)
        node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 50)

    def _on_tf(self, msg: TFMessage) -> None:
        self.tf.append(msg)
        for transform in msg.transforms:
            self.tree.add(transform_of(transform))

    def _on_static(self, msg: TFMessage) -> None:
        self.static.append(msg)
        for transform in msg.transforms:
            self.tree.add(transform_of(transform))

    def tf_stamped(self, stamp) -> list[TFMessage]:
        return [m for m in self.tf if m.transforms and m.transforms[0].header.stamp == stamp]

    def errors(self) -> list[str]:
        return [s.message for a in self.diagnostics for s in a.status
                if s.hardware_id == 'robot_state' and s.level == bytes([2])]


def joint_state(peer, q, names=JOINT_NAMES) -> JointState:
    msg = JointState(name=list(names), position=list(q), velocity=[0.0] * len(q))
    msg.header.stamp = peer.node.get_clock().now().to_msg()
    return msg


def people(peer, positions, frame='world') -> PoseArray:
    msg = PoseArray()
    msg.header.stamp = peer.node.get_clock().now().to_msg()
    msg.header.frame_id = frame
    for x, y in positions:
        pose = Pose()
        pose.position.x, pose.position.y, pose.orientation.w = x, y, 1.0
        msg.poses.append(pose)
    return msg


@pytest.fixture
def robot_state(peer, processes):
    processes.start('robot_state', node_command('smartcell.nodes.robot_state', 'robot_state', None,
                                                {'robot_base_xyz_yaw': BASE, 'scanner_pose_xy_yaw': SCANNER}))
    probe = TfProbe(peer)
    joints = peer.node.create_publisher(JointState, 'joint_states', STREAM_QOS)
    humans = peer.node.create_publisher(PoseArray, 'humans', STREAM_QOS)
    peer.wait_for(lambda: probe.static and probe.description and joints.get_subscription_count()
                  and humans.get_subscription_count(), 30, 'robot_state static frames and subscriptions', processes)
    return probe, joints, humans


def test_links_follow_the_joint_states_in_the_layout_given_cell_wide(peer, processes, robot_state):
    probe, joints, _ = robot_state
    q = [0.3, -1.2, 1.4, -1.7, -1.57, 0.5]
    sent = joint_state(peer, q)
    joints.publish(sent)
    peer.wait_for(lambda: probe.tf_stamped(sent.header.stamp), 10, '/tf of the joint state', processes)
    base = probe.tree.pose('base_link', 'world')
    np.testing.assert_allclose(base[:3, 3], BASE[:3], atol=1e-12)
    assert math.atan2(base[1, 0], base[0, 0]) == pytest.approx(BASE[3])
    # tool0 in world = the layout's base pose x the manufacturer's forward kinematics
    np.testing.assert_allclose(probe.tree.pose('tool0', 'world'), base @ forward_kinematics(q), atol=1e-9)
    scanner = probe.tree.pose('scanner_link', 'world')
    np.testing.assert_allclose(scanner[:2, 3], SCANNER[:2], atol=1e-12)
    assert math.atan2(scanner[1, 0], scanner[0, 0]) == pytest.approx(SCANNER[2])
    urdf = parse_urdf(probe.description[-1].data)
    assert set(urdf.links) <= probe.tree.frames                 # every link of the description has a frame
    stamps = {(t.header.stamp.sec, t.header.stamp.nanosec) for t in probe.tf_stamped(sent.header.stamp)[0].transforms}
    assert stamps == {(sent.header.stamp.sec, sent.header.stamp.nanosec)}


def test_each_tracked_person_gets_a_frame_at_its_position(peer, processes, robot_state):
    probe, _, humans = robot_state
    sent = people(peer, [(1.5, 0.5), (-2.0, 1.0)])
    humans.publish(sent)
    peer.wait_for(lambda: probe.tf_stamped(sent.header.stamp), 10, '/tf of the people', processes)
    np.testing.assert_allclose(probe.tree.pose('person_0', 'world')[:2, 3], [1.5, 0.5])
    np.testing.assert_allclose(probe.tree.pose('person_1', 'world')[:2, 3], [-2.0, 1.0])


@pytest.mark.parametrize('bad, reason', [
    ('nan_joint', 'joint state not used'),
    ('missing_joint', 'joint state not used'),
    ('people_frame', "humans in frame 'scanner_link'"),
    ('people_nan', 'non-finite position'),
])
def test_an_invalid_input_publishes_no_frames_and_an_error_naming_it(peer, processes, robot_state, bad, reason):
    probe, joints, humans = robot_state
    if bad == 'nan_joint':
        msg = joint_state(peer, [0.0, math.nan, 0.0, 0.0, 0.0, 0.0])
    elif bad == 'missing_joint':
        msg = joint_state(peer, [0.0] * 5, JOINT_NAMES[:5])
    elif bad == 'people_frame':
        msg = people(peer, [(1.0, 1.0)], frame='scanner_link')
    else:
        msg = people(peer, [(math.nan, 1.0)])
    (joints if 'joint' in bad else humans).publish(msg)
    peer.wait_for(lambda: any(reason in e for e in probe.errors()), 10, f'ERROR naming {reason!r}', processes)
    # A good message after it: its frames arrive on the same writer after any the bad one caused.
    good = joint_state(peer, [0.0] * 6) if 'joint' in bad else people(peer, [(1.0, 1.0)])
    (joints if 'joint' in bad else humans).publish(good)
    peer.wait_for(lambda: probe.tf_stamped(good.header.stamp), 10, '/tf of the good message', processes)
    assert not probe.tf_stamped(msg.header.stamp)
    assert not processes.failed()


def test_beside_robot_state_publisher_only_layout_and_people_frames(peer, processes):
    """links_tf false (the launch file on hardware where robot_state_publisher runs): no link frames,
    no second /robot_description."""
    processes.start('robot_state', node_command('smartcell.nodes.robot_state', 'robot_state', None,
                                                {'robot_base_xyz_yaw': BASE, 'scanner_pose_xy_yaw': SCANNER,
                                                 'links_tf': False}))
    probe = TfProbe(peer)
    joints = peer.node.create_publisher(JointState, 'joint_states', STREAM_QOS)
    humans = peer.node.create_publisher(PoseArray, 'humans', STREAM_QOS)
    peer.wait_for(lambda: probe.static and joints.get_subscription_count() and humans.get_subscription_count(),
                  30, 'static frames and subscriptions', processes)
    assert {t.child_frame_id for m in probe.static for t in m.transforms} == {'base_link', 'scanner_link'}
    joints.publish(joint_state(peer, [0.0] * 6))

    def joint_states_used() -> int:
        return max([int(kv.value) for a in probe.diagnostics for st in a.status if st.hardware_id == 'robot_state'
                    for kv in st.values if kv.key == 'joint_states_used'] or [0])
    peer.wait_for(lambda: joint_states_used() >= 1, 10, 'the joint state used (diagnostics)', processes)
    sent = people(peer, [(1.0, 2.0)])
    humans.publish(sent)
    peer.wait_for(lambda: probe.tf_stamped(sent.header.stamp), 10, '/tf of the people', processes)
    assert {t.child_frame_id for m in probe.tf for t in m.transforms} == {'person_0'}
    assert not probe.description
    assert not peer.node.get_publishers_info_by_topic('/robot_description')


def verdict(peer, zone: str, s_p: str) -> DiagnosticArray:
    msg = DiagnosticArray(status=[DiagnosticStatus(name=VERDICT_STATUS_NAME, values=[
        KeyValue(key='zone', value=zone), KeyValue(key='protective_distance_m', value=s_p)])])
    msg.header.stamp = peer.node.get_clock().now().to_msg()
    return msg


def test_the_protective_zone_follows_the_verdict(peer, processes, robot_state):
    probe, joints, _ = robot_state
    zones: list[MarkerArray] = []
    peer.node.create_subscription(MarkerArray, 'safety/zones', zones.append, STREAM_QOS)
    verdicts = peer.node.create_publisher(DiagnosticArray, 'safety/verdict', STREAM_QOS)
    sent = joint_state(peer, [0.3, -1.2, 1.4, -1.7, -1.57, 0.5])
    joints.publish(sent)
    peer.wait_for(lambda: probe.tf_stamped(sent.header.stamp) and verdicts.get_subscription_count(), 10,
                  'joint state used, verdict subscription', processes)
    drawn = verdict(peer, 'protective', '0.5')
    peer.wait_for(lambda: (verdicts.publish(drawn), zones)[1], 10, 'zone markers', processes)
    cylinders = [m for m in zones[-1].markers if m.type == Marker.CYLINDER]
    assert len(cylinders) == len(LINK_CAPSULE_RADII)
    assert sorted(round(m.scale.x / 2 - 0.5, 6) for m in cylinders) == sorted(round(r, 6) for r in LINK_CAPSULE_RADII)
    assert {m.header.frame_id for m in zones[-1].markers} == {'base_link'}
    assert cylinders[0].color.r == 1.0 and cylinders[0].color.g == 0.0          # protective: red
    # nobody tracked (S_p nan): the zone is cleared (earlier verdicts may still be drawn first)
    peer.wait_for(lambda: (verdicts.publish(verdict(peer, 'clear', 'nan')),
                           [m.action for m in zones[-1].markers] == [Marker.DELETEALL])[1], 10,
                  'zone cleared', processes)
    verdicts.publish(verdict(peer, 'warning', '-1.0'))
    peer.wait_for(lambda: any('zone not drawn' in e for e in probe.errors()), 10, 'ERROR naming the bad S_p',
                  processes)


# ------------------------------------------------------------------------------------------------
# The whole simulated cell: every frame_id of every message, walked to `world`.
# ------------------------------------------------------------------------------------------------

# header.frame_id of arm/joint_trajectory carries the command's signature, not a frame (README,
# Command authority); nothing else in the cell may name a frame that TF cannot place.
NOT_A_FRAME = {'/arm/joint_trajectory'}
LATCHED_TOPICS = {'/tf_static', '/robot_description'}
# Besides the frames asked for by name: the streams with a header that the check must have seen.
MUST_RECEIVE = {'/safety/verdict', '/twin/people_truth', '/joint_states', '/robot_description'}


def frame_ids(msg, out: set[str]) -> None:
    """Every header.frame_id and child_frame_id anywhere in a message (nested, in sequences)."""
    fields = getattr(type(msg), '_fields_and_field_types', None)
    if fields is None:
        return
    for name in fields:
        value = getattr(msg, name)
        if name == 'header' and hasattr(value, 'frame_id'):
            if value.frame_id:
                out.add(value.frame_id)
        elif name == 'child_frame_id' and value:
            out.add(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                frame_ids(item, out)
        elif hasattr(type(value), '_fields_and_field_types'):
            frame_ids(value, out)


def message_class(type_name: str):
    package, _, name = type_name.split('/')
    return getattr(import_module(f'{package}.msg'), name)


@pytest.mark.twin
def test_every_frame_the_running_cell_names_reaches_world(peer, tmp_path):
    env = {**os.environ, 'SMARTCELL_SIM_DOMAIN_ID': os.environ['ROS_DOMAIN_ID']}
    sim = subprocess.Popen([sys.executable, '-m', 'smartcell.cli', 'sim', '--no-progress', '--duration', '120',
                            '--scenario', 'intrusion', '--without', 'mes,sensors', '--log-dir', str(tmp_path / 'run')],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    node = peer.node
    tree = FrameTree()
    frames_by_topic: dict[str, set[str]] = {}
    subscribed: set[str] = set()
    people_seen = []
    received: dict[str, int] = {}

    def on_message(topic_name: str):
        def callback(msg) -> None:
            received[topic_name] = received.get(topic_name, 0) + 1
            if topic_name in ('/tf', '/tf_static'):
                for transform in msg.transforms:
                    tree.add(transform_of(transform))
            if topic_name == '/humans' and msg.poses:
                people_seen.append(len(msg.poses))
            if topic_name not in NOT_A_FRAME:
                frame_ids(msg, frames_by_topic.setdefault(topic_name, set()))
        return callback

    def subscribe_new_topics() -> None:
        for name, types in node.get_topic_names_and_types():
            if name in subscribed or name in ('/rosout', '/parameter_events'):
                continue
            publishers = [i for i in node.get_publishers_info_by_topic(name) if i.node_name != node.get_name()]
            if not publishers:
                continue
            qos = STATIC_QOS if name in LATCHED_TOPICS else QoSProfile(
                depth=50, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
            node.create_subscription(message_class(types[0]), name, on_message(name), qos)
            subscribed.add(name)

    def enough() -> bool:
        subscribe_new_topics()
        if sim.poll() is not None:
            raise AssertionError(f'smartcell sim ended early:\n{sim.communicate()[0][-3000:]}')
        named = {'/scan', '/humans', '/humans/markers', '/tf', '/tf_static'} <= set(frames_by_topic)
        people_frames = any(f.startswith('person_') for f in frames_by_topic.get('/tf', ()))
        return named and MUST_RECEIVE <= set(received) and bool(people_seen) and people_frames

    try:
        peer.wait_for(enough, 240, 'scan, people, markers and TF from the running cell')
        problems = []
        for topic_name, frames in sorted(frames_by_topic.items()):
            for frame in sorted(frames):
                try:
                    tree.path(frame, 'world')
                except LookupError as exc:
                    problems.append(f'{topic_name}: {exc}')
        assert not problems, '\n'.join(problems)
        assert 'scanner_link' in frames_by_topic['/scan'] and 'world' in frames_by_topic['/humans']
        assert {'base_link', 'tool0', 'gripper_tcp', 'scanner_link'} <= tree.frames
    finally:
        # SIGINT, not SIGTERM: smartcell sim stops its node processes (own sessions) in a finally
        # block, which a SIGTERM would skip and leave them running.
        sim.send_signal(signal.SIGINT)
        try:
            sim.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.communicate()
