"""People injected on `humans` -> supervisor process -> arm process: the arm slows and stops.

Real DDS between three processes (this test plays the scanner and the twin), real services.
"""
from __future__ import annotations

import json

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Pose, PoseArray
from sensor_msgs.msg import TimeReference
from std_msgs.msg import String
from std_srvs.srv import Trigger

from smartcell.nodes.common import LATCHED_QOS, STREAM_QOS
from smartcell.nodes.twin import contacts_msg
from smartcell.tools.cell_processes import node_command
from smartcell.twin.world import Contact

pytestmark = pytest.mark.ros


class People:
    """Publishes people positions (world frame) at 50 Hz from this process."""

    def __init__(self, peer) -> None:
        self.peer = peer
        self.positions: list[tuple[float, float]] | None = [(4.0, 3.0)]
        self.frame = 'world'
        self.publisher = peer.node.create_publisher(PoseArray, 'humans', STREAM_QOS)
        peer.node.create_timer(0.02, self._tick)

    def _tick(self) -> None:
        if self.positions is None:
            return              # the scanner went silent
        msg = PoseArray()
        msg.header.stamp = self.peer.node.get_clock().now().to_msg()
        msg.header.frame_id = self.frame
        for x, y in self.positions:
            pose = Pose()
            pose.position.x, pose.position.y = x, y
            pose.orientation.w = 1.0
            msg.poses.append(pose)
        self.publisher.publish(msg)


@pytest.fixture
def cell(peer, processes, fake_twin):
    processes.start('supervisor', node_command('smartcell.nodes.supervisor', 'supervisor', None, {
        'robot_base_xyz_yaw': [0.0, 0.0, 0.75, 0.0], 'warning_distance_m': 2.5, 'protective_distance_m': 0.6,
        'expected_people_publisher': ''}))  # people come from this test process
    processes.start('arm', node_command('smartcell.nodes.arm', 'arm', None, {}))
    twin = fake_twin(peer, publish_verdicts=False)     # verdicts come from the real supervisor
    people = People(peer)
    state = {'cell': '', 'applied': []}
    peer.node.create_subscription(String, 'cell/state', lambda m: state.update(cell=m.data), LATCHED_QOS)
    peer.node.create_subscription(TimeReference, 'arm/speed_limit_applied',
                                  lambda m: state['applied'].append(float(m.source)), STREAM_QOS)
    peer.wait_for(lambda: state['cell'] == 'idle' and len(twin.commands) > 3, 30, 'cell idle', processes)
    return twin, people, state


def applied_now(peer, state, processes, expected: float, what: str) -> None:
    peer.wait_for(lambda: state['applied'] and state['applied'][-1] == pytest.approx(expected), 10, what, processes)


def test_people_slow_then_stop_the_arm_and_the_cell_follows(peer, processes, cell):
    twin, people, state = cell
    answer = peer.call(Trigger, 'cell/start', processes=processes)
    assert answer.success, answer.message
    peer.wait_for(lambda: state['cell'] == 'running', 10, 'running', processes)
    peer.wait_for(lambda: twin.mode == 'executing', 10, 'arm executing the cycle', processes)
    applied_now(peer, state, processes, 1.0, 'full speed with nobody near')

    people.positions = [(2.8, 0.0)]         # ~2 m from the arm: warning zone, SSM allows reduced speed
    peer.wait_for(lambda: 0.0 < state['applied'][-1] < 1.0, 10, 'reduced speed', processes)
    assert state['cell'] == 'running'

    people.positions = [(0.7, 0.0)]         # at the table edge: inside S_p and the protective zone
    applied_now(peer, state, processes, 0.0, 'protective stop')
    peer.wait_for(lambda: state['cell'] == 'protective_stop', 10, 'cell protective_stop', processes)
    peer.wait_for(lambda: twin.mode == 'paused', 10, 'arm paused', processes)

    people.positions = [(4.0, 3.0)]         # gone: the cell resumes by itself (SSM protective stop)
    peer.wait_for(lambda: state['cell'] == 'running', 10, 'running again', processes)
    applied_now(peer, state, processes, 1.0, 'full speed again')


@pytest.mark.parametrize('fault', ['silence', 'nan', 'wrong_frame'])
def test_doubtful_people_data_stops_the_arm(peer, processes, cell, fault):
    twin, people, state = cell
    assert peer.call(Trigger, 'cell/start', processes=processes).success
    applied_now(peer, state, processes, 1.0, 'full speed')
    if fault == 'silence':
        people.positions = None
    elif fault == 'nan':
        people.positions = [(float('nan'), 0.0)]
    else:
        people.frame = 'scanner_link'
    applied_now(peer, state, processes, 0.0, f'stop on {fault}')
    peer.wait_for(lambda: state['cell'] == 'protective_stop', 10, 'cell protective_stop', processes)


def test_illegal_requests_are_refused_with_the_state_named(peer, processes, cell):
    answer = peer.call(Trigger, 'cell/resume', processes=processes)
    assert not answer.success
    assert 'RESUME' in answer.message and 'IDLE' in answer.message
    assert peer.call(Trigger, 'cell/emergency_stop', processes=processes).success
    refused = peer.call(Trigger, 'cell/start', processes=processes)
    assert not refused.success and 'EMERGENCY_STOP' in refused.message
    # Undoing an emergency stop needs an authorised operator (a signed request; test/adversarial covers it).
    refused = peer.call(Trigger, 'cell/reset', processes=processes)
    assert not refused.success and 'authorised operator' in refused.message


def test_killing_the_supervisor_stops_the_arm_by_its_deadman(peer, processes, cell):
    twin, people, state = cell
    assert peer.call(Trigger, 'cell/start', processes=processes).success
    peer.wait_for(lambda: twin.mode == 'executing', 20, 'arm executing', processes)
    applied_now(peer, state, processes, 1.0, 'full speed')
    processes.kill('supervisor')                    # SIGKILL: no goodbye message, just silence
    del processes.processes['supervisor']
    peer.wait_for(lambda: twin.mode == 'paused', 2, 'the arm stopping by itself', processes)
    frozen = twin.position.copy()
    count = len(twin.commands)
    peer.wait_for(lambda: len(twin.commands) > count + 10, 5, 'more commands', processes)
    assert twin.position == pytest.approx(frozen, abs=1e-9)


def test_a_contact_above_its_quasi_static_limit_stops_the_arm(peer, processes, cell):
    """A twin contact report within the limit is logged and stops the arm until no contact is reported
    (then it resumes by itself); one above it is an emergency stop."""
    twin, people, state = cell
    events: list[dict] = []
    peer.node.create_subscription(String, 'cell/events', lambda m: events.append(json.loads(m.data)), 100)
    publisher = peer.node.create_publisher(DiagnosticArray, 'twin/contacts', 10)
    assert peer.call(Trigger, 'cell/start', processes=processes).success
    applied_now(peer, state, processes, 1.0, 'full speed')

    def touch(force_n: float) -> None:
        contact = Contact('person_0', 'forearm_hand_left', 'lower arm and wrist joint / hand and fingers',
                          ('lower_arms_wrists', 'hands_fingers'), 'wrist_3_link', force_n, (0.5, 0.1, 1.0))
        publisher.publish(contacts_msg(peer.node.get_clock().now().to_msg(), [contact]))

    def contact_events() -> list[dict]:
        return [e for e in events if e['type'] == 'safety_event' and e['kind'] == 'contact']

    peer.wait_for(lambda: publisher.get_subscription_count() > 0, 10, 'supervisor subscribed', processes)
    touch(100.0)                            # below 140 N (hands and fingers, the stricter of the two)
    peer.wait_for(lambda: len(contact_events()) == 1, 10, 'contact logged', processes)
    assert 'hands_fingers' in contact_events()[0]['reason'] and 'within_limit' in contact_events()[0]['reason']
    applied_now(peer, state, processes, 0.0, 'stop while touching a person')
    peer.wait_for(lambda: state['cell'] == 'running', 15, 'back in service once no contact is reported', processes)
    applied_now(peer, state, processes, 1.0, 'full speed again')
    touch(150.0)                            # within the lower-arm limit (160 N), above the hand's (140 N)
    applied_now(peer, state, processes, 0.0, 'stop after the contact above the limit')
    peer.wait_for(lambda: state['cell'] == 'emergency_stop', 10, 'cell emergency_stop', processes)
    # cell/events and cell/state are separate topics: either may arrive first
    peer.wait_for(lambda: len(contact_events()) == 2, 10, 'second contact logged', processes)
    assert 'above_quasi_static' in contact_events()[-1]['reason']
    people.positions = [(4.0, 3.0)]
    refused = peer.call(Trigger, 'cell/start', processes=processes)
    assert not refused.success                  # only a manual reset releases it
