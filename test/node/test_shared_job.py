"""A shared human-robot job over real DDS: supervisor and arm processes, the operator acknowledging
over the real `operator/step_done` service, a protective stop mid-job that is re-planned and finished."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from geometry_msgs.msg import Pose, PoseArray
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import Trigger

from smartcell.nodes.common import LATCHED_QOS, STREAM_QOS
from smartcell.tools.cell_processes import node_command

pytestmark = pytest.mark.ros
# Latched topics keep one message per publisher; a test that wants *every* message must not let a
# quick second one replace the first in its own reader queue.
EVERY_LATCHED = QoSProfile(depth=50, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)
AWAY, AT_ASSEMBLY = (4.0, 3.0), (1.2, 0.0)        # m, world: far off; where the person works at the shared station
PRESENT = np.array(yaml.safe_load((Path(__file__).resolve().parents[2] / 'config' / 'motions.yaml').read_text())
                   ['configurations']['present'])


class Cell:
    def __init__(self, peer, processes, fake_twin) -> None:
        processes.start('supervisor', node_command('smartcell.nodes.supervisor', 'supervisor', None, {
            'robot_base_xyz_yaw': [0.0, 0.0, 0.75, 0.0], 'job': 'job_demo', 'units': 2,
            'nominal_speed_fraction': 1.0, 'max_joint_speed_fraction': 1.0, 'expected_people_publisher': ''}))
        processes.start('arm', node_command('smartcell.nodes.arm', 'arm', None, {'scale_ramp_up_per_s': 10.0,
                                                                                  'max_joint_speed_fraction': 1.0}))
        self.peer, self.processes = peer, processes
        self.twin = fake_twin(peer, publish_verdicts=False)
        self.person = AWAY
        self.people_pub = peer.node.create_publisher(PoseArray, 'humans', STREAM_QOS)
        peer.node.create_timer(0.02, self._publish_people)
        self.state = ''
        self.operator_step: dict = {}
        self.events: list[dict] = []
        peer.node.create_subscription(String, 'cell/state', lambda m: setattr(self, 'state', m.data), LATCHED_QOS)
        peer.node.create_subscription(String, 'operator/current_step',
                                      lambda m: setattr(self, 'operator_step', json.loads(m.data)), LATCHED_QOS)
        peer.node.create_subscription(String, 'cell/events', lambda m: self.events.append(json.loads(m.data)), 50)
        self.next_steps: list[dict] = []
        peer.node.create_subscription(String, 'operator/next_step',
                                      lambda m: self.next_steps.append(json.loads(m.data)), EVERY_LATCHED)
        peer.wait_for(lambda: self.state == 'idle', 30, 'cell idle', processes)

    def _publish_people(self) -> None:
        msg = PoseArray()
        msg.header.stamp = self.peer.node.get_clock().now().to_msg()
        msg.header.frame_id = 'world'
        pose = Pose()
        pose.position.x, pose.position.y = self.person
        pose.orientation.w = 1.0
        msg.poses.append(pose)
        self.people_pub.publish(msg)

    def events_of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e['type'] == kind]

    def work_as_operator(self, until, timeout_s: float) -> list[str]:
        """Acknowledge every step shown to the person until `until()` holds; returns the steps done."""
        done = []
        while not until():
            self.peer.wait_for(lambda: until() or (self.operator_step.get('step') and
                                                  (self.operator_step['unit'], self.operator_step['step'])
                                                  not in {tuple(d) for d in done}),
                               timeout_s, 'a step for the operator or the end', self.processes)
            if until():
                break
            step = dict(self.operator_step)
            if step['station'] == 'assembly':
                self.person = AT_ASSEMBLY              # walks to the shared station
            if step.get('handover'):
                # takes the part once the arm holds it out (it does so only with somebody there)
                self.peer.wait_for(lambda: np.max(np.abs(self.twin.position - PRESENT)) < 0.01, timeout_s,
                                   'the arm presenting the part', self.processes)
            answer = self.peer.call(Trigger, 'operator/step_done', processes=self.processes)
            assert answer.success, answer.message
            self.person = AWAY
            done.append((step['unit'], step['step']))
        return [step for _, step in done]


def test_two_units_complete_with_acknowledgements(peer, processes, fake_twin):
    cell = Cell(peer, processes, fake_twin)
    assert peer.call(Trigger, 'operator/step_done', processes=processes).success is False
    assert peer.call(Trigger, 'cell/start', processes=processes).success
    done = cell.work_as_operator(lambda: bool(cell.events_of('job_complete')), timeout_s=240)
    assert done.count('present_part') == 2 and done.count('assemble_part') == 2, (done, cell.events)
    assert [e['unit'] for e in cell.events_of('unit_complete')] == [0, 1]
    peer.wait_for(lambda: cell.state == 'idle', 10, 'idle after the job', processes)
    # The display's "next" list: the person's steps in plan order, then nothing left. A step is shown again
    # when a re-plan moves its planned times, and one that starts in the cycle its predecessor ends (a
    # loaded machine's coarse cycles) is never "next": repeats collapse, skips are allowed, order is not.
    announced: list[tuple[int, str]] = []
    for shown in cell.next_steps:
        if shown and (not announced or announced[-1] != (shown['unit'], shown['step'])):
            announced.append((shown['unit'], shown['step']))
    plan = [(0, 'present_part'), (0, 'assemble_part'), (1, 'present_part'), (1, 'assemble_part')]
    assert announced[0] == plan[0], cell.next_steps
    assert [step for step in plan if step in announced] == announced, cell.next_steps   # in plan order, once each
    assert cell.next_steps[-1] == {}
    assert all(n['station'] and n['planned_end_s'] >= n['planned_start_s'] for n in cell.next_steps if n)


def test_the_arm_holds_the_part_back_until_the_person_is_at_the_handover(peer, processes, fake_twin):
    cell = Cell(peer, processes, fake_twin)
    intents: list[dict] = []
    peer.node.create_subscription(String, 'robot/intent', lambda m: intents.append(json.loads(m.data)), EVERY_LATCHED)
    assert peer.call(Trigger, 'cell/start', processes=processes).success
    peer.wait_for(lambda: intents and intents[-1]['step'] == 'present_part' and intents[-1]['waiting'], 60,
                  'the robot waiting at the handover', processes)
    assert 'waiting for a person' in intents[-1]['waiting']
    assert np.max(np.abs(cell.twin.position - PRESENT)) > 0.1          # not holding the part out
    cell.person = AT_ASSEMBLY
    peer.wait_for(lambda: np.max(np.abs(cell.twin.position - PRESENT)) < 0.01, 30, 'the part presented', processes)
    peer.wait_for(lambda: intents[-1]['waiting'] == '', 10, 'the display told the wait is over', processes)
    assert intents[-1]['step'] == 'present_part'


def test_protective_stop_mid_job_replans_and_finishes(peer, processes, fake_twin):
    cell = Cell(peer, processes, fake_twin)
    assert peer.call(Trigger, 'cell/start', processes=processes).success
    peer.wait_for(lambda: cell.twin.mode == 'executing', 20, 'robot moving', processes)
    cell.person = (0.7, 0.0)                    # into the protective zone mid-motion
    peer.wait_for(lambda: cell.state == 'protective_stop', 10, 'protective stop', processes)
    cell.person = AWAY
    peer.wait_for(lambda: cell.state == 'running', 10, 'resumed', processes)
    cell.work_as_operator(lambda: bool(cell.events_of('job_complete')), timeout_s=240)
    complete = cell.events_of('job_complete')[0]
    assert complete['produced'] == 2
    assert cell.events_of('safety_stop') and cell.events_of('safety_clear')


def test_mes_orders_are_accepted_when_idle_and_known_else_rejected_with_a_reason(peer, processes, fake_twin):
    cell = Cell(peer, processes, fake_twin)
    orders = peer.node.create_publisher(String, 'mes/job_order', QoSProfile(
        depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    orders.publish(String(data=json.dumps({'order_id': 'PO-1', 'work_master': 'demo', 'quantity': 1})))
    orders.publish(String(data=json.dumps({'order_id': 'PO-2', 'work_master': 'teapot', 'quantity': 1})))
    peer.wait_for(lambda: len(cell.events_of('job_accepted')) + len(cell.events_of('job_rejected')) == 2, 20,
                  'answers to both orders', processes)
    assert [e['order_id'] for e in cell.events_of('job_accepted')] == ['PO-1']
    rejected = cell.events_of('job_rejected')[0]
    assert rejected['order_id'] == 'PO-2' and "unknown product 'teapot'" in rejected['reason']
    assert peer.call(Trigger, 'cell/start', processes=processes).success
    cell.work_as_operator(lambda: bool(cell.events_of('job_complete')), timeout_s=240)
    done = cell.events_of('job_complete')[0]
    assert done['order_id'] == 'PO-1' and done['produced'] == 1      # the order's quantity, not the parameter's 2
