"""Clock jumps, process restarts, a large order and operator authorisation, over real DDS."""
from __future__ import annotations

import json
import time

import pytest
from builtin_interfaces.msg import Time
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from smartcell.core.robot.kinematics import JOINT_NAMES
from smartcell.core.safety.evidence import read_evidence
from smartcell_adversarial import FAR, NEAR, people_msg, probe, start_cell

pytestmark = pytest.mark.ros
ORDER_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.fixture(scope='module')
def cell(request, tmp_path_factory):
    return start_cell(request, tmp_path_factory, with_scanner=False)


def shifted(node, offset_s: float) -> Time:
    ns = max(node.get_clock().now().nanoseconds + int(offset_s * 1e9), 0)
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def test_a_people_message_from_the_future_does_not_blind_the_supervisor(cell):
    cell.running_far()
    with probe(cell, 'clock jump', 'one people message stamped +100 s'):
        cell.people_pub.publish(people_msg(cell.source, [], stamp=shifted(cell.source, 100.0)))
        cell.pace(0.5)
    cell.person = FAR                       # fresh data after the jump: judged again, not "silent" forever
    count = cell.verdict_count

    def judged() -> bool:
        last = {kv.key: kv.value for kv in cell.verdicts[-1].status[0].values}
        return cell.verdict_count > count and last.get('state') in ('normal', 'reduced')
    cell.wait(judged, 20, 'people judged again after the jump')
    cell.running_far()


def test_twin_clock_reset_holds_the_arm(cell):
    """The twin restarts and its states begin again at t = 0 (sim time reset)."""
    cell.running_far()
    with probe(cell, 'clock jump', 'twin joint states stamped back to t = 0'):
        publisher = cell.twin.state_pub
        base = 0

        def reset_state():
            nonlocal base
            base += 20_000_000
            msg = JointState(name=list(JOINT_NAMES), position=list(cell.twin.position), velocity=[0.0] * 6)
            msg.header.stamp = Time(sec=base // 10**9, nanosec=base % 10**9)
            publisher.publish(msg)
        timer = cell.peer.node.create_timer(0.02, reset_state)
        cell.pace(1.0)
        cell.peer.node.destroy_timer(timer)


def test_a_100000_unit_order_does_not_stall_the_safety_loop(cell):
    cell.running_far()
    cell.call('cell/stop')
    cell.wait(lambda: cell.state == 'idle', 30, 'idle')
    publisher = cell.peer.node.create_publisher(String, 'mes/job_order', ORDER_QOS)
    order_id = f'adv-large-{time.time_ns()}'
    with probe(cell, 'large order', '100000-unit order accepted and started', near=False):
        publisher.publish(String(data=json.dumps({'order_id': order_id, 'work_master': 'gearbox',
                                                  'quantity': 100000})))
        cell.wait(lambda: any(e.get('order_id') == order_id and e['type'] == 'job_accepted' for e in cell.events),
                  20, 'order accepted')
        count = cell.verdict_count
        answer = cell.call('cell/start')
        assert answer.success, answer.message
        cell.wait(lambda: cell.state == 'running', 10, 'running the order')
        started = time.monotonic()
        cell.wait(lambda: cell.verdict_count > count + 60, 10, 'verdicts flowing while the order runs')
        assert time.monotonic() - started < 5.0
    cell.call('cell/stop')
    cell.peer.node.destroy_publisher(publisher)


def test_operator_authorisation_over_dds(cell):
    cell.person = FAR
    with probe(cell, 'authorisation', 'reset/start after e-stop and collaborative mode need an operator',
               near=False):
        assert cell.call('cell/emergency_stop').success
        cell.wait(lambda: cell.state == 'emergency_stop', 10, 'emergency stop')
        refused = cell.call('cell/reset')
        assert not refused.success and 'authorised operator' in refused.message
        assert not cell.call('safety/mode/collaborative').success
        answer, message = cell.operator('reset')
        assert answer.success, answer.message
        replay, _ = cell.operator('', raw=message)
        assert not replay.success and 'replayed' in replay.message
        cell.wait(lambda: cell.state == 'idle', 10, 'idle after the authorised reset')
        refused = cell.call('cell/start')
        assert not refused.success and 'first start after an emergency stop' in refused.message
        answer, _ = cell.operator('start')
        assert answer.success, answer.message
        forged = json.loads(message)
        forged['request'] = 'mode:collaborative'
        assert not cell.operator('', raw=json.dumps(forged))[0].success
        login, _ = cell.operator('', raw=json.dumps({'login': 'alice'}))
        assert login.success and json.loads(login.message)['iterations'] == 1000
        cell.wait(lambda: any(e['type'] == 'operator_request' and e['user'] == 'alice' and e['accepted']
                              for e in cell.events), 5, 'the granted request on cell/events')
    cell.call('cell/stop')
    records = [e for e in read_evidence(cell.work / 'evidence.jsonl').events() if e['event'] == 'operator_request']
    assert {('reset', 'alice', True), ('start', 'alice', True)} <= {
        (r['details']['request'], r['details']['user'], r['details']['accepted']) for r in records}


# The restarts last: a killed process's DDS endpoints stay on the graph until its lease runs out, and
# until then the arm (rightly) holds for "2 publishers named /supervisor".
def test_killed_supervisor_stops_the_arm_by_its_deadman_and_restarts_idle(cell):
    cell.running_far()
    with probe(cell, 'process restart', 'kill -9 supervisor while moving; restart', near=False):
        cell.wait(lambda: (cell.scale() or 0) > 0.2, 20, 'moving')
        cell.processes.kill('supervisor')
        del cell.processes.processes['supervisor']
        killed = time.monotonic()
        cell.wait(lambda: cell.twin.mode == 'paused', 2, 'the arm stopping by its deadman')
        cell.wait(cell.at_rest, 5, 'the arm at rest')
        stopped_after_s = time.monotonic() - killed
        frozen = len(cell.truth)
        cell.wait(lambda: len(cell.truth) > frozen + 20, 5, 'arm commands after the stop')
        cell.assert_still(frozen, 'deadman after kill -9')         # and no creeping afterwards
        cell.person = NEAR
        cell.start_supervisor()
        cell.state = ''
        cell.wait(lambda: cell.state == 'idle', 30, 'restarted supervisor: cell idle')
        assert stopped_after_s < 3.0, f'the arm came to rest {stopped_after_s:.2f} s after the kill'


def test_bad_latched_order_does_not_crash_restarted_supervisors(cell):
    publisher = cell.peer.node.create_publisher(String, 'mes/job_order', ORDER_QOS)
    for raw in ('{"order_id": {"a": 1}, "quantity": Infinity}', '[1, 2]', '{' * 5000):
        publisher.publish(String(data=raw))
    with probe(cell, 'process restart', 'restart with malformed orders re-delivered (transient local)'):
        cell.processes.kill('supervisor')
        del cell.processes.processes['supervisor']
        cell.state = ''
        cell.start_supervisor()
        cell.wait(lambda: cell.state == 'idle', 30, 'restarted supervisor idle with bad orders latched')
    cell.peer.node.destroy_publisher(publisher)
