"""The arm node in its own process over real DDS (sim backend, driven by this test as the twin and supervisor).

The test peer signs its verdicts and trajectories with a cell key file, as the supervisor does, and the
arm is told that the peer is its supervisor (`supervisor_node`). Stray nodes, unsigned or malformed
messages and clock jumps are then injected next to it.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from smartcell.core.robot.kinematics import JOINT_NAMES
from smartcell.core.safety.authority import (AUTH_KEY, SEQUENCE_KEY, load_or_create_cell_key, sign_trajectory,
                                             sign_verdict, signed_id)
from smartcell.core.safety.verdict import MOTION_KEY, VERDICT_STATUS_NAME
from smartcell.nodes.common import LATCHED_QOS, STREAM_QOS, duration_msg, s_to_stamp, stamp_ns
from smartcell.tools.cell_processes import node_command

pytestmark = pytest.mark.ros
HOME = [0.0, -1.571, 1.571, -1.571, -1.571, 0.0]


def verdict_msg(key: bytes | None, stamp, sequence: int, scale: float, motion: str,
                state: str = 'normal') -> DiagnosticArray:
    values = [('state', state), ('speed_scale', repr(scale)), (MOTION_KEY, motion)]
    if key is not None:
        signature = sign_verdict(key, stamp_ns=stamp_ns(stamp), sequence=sequence, speed_scale=scale,
                                 state=state, motion=motion)
        values += [(SEQUENCE_KEY, str(sequence)), (AUTH_KEY, signature)]
    msg = DiagnosticArray(status=[DiagnosticStatus(name=VERDICT_STATUS_NAME,
                                                   values=[KeyValue(key=k, value=v) for k, v in values])])
    msg.header.stamp = stamp
    return msg


def trajectory_msg(key: bytes | None, trajectory_id: str, target: list[float], seconds: float,
                   stamp) -> JointTrajectory:
    msg = JointTrajectory(joint_names=list(JOINT_NAMES))
    msg.header.stamp = stamp
    msg.points = [JointTrajectoryPoint(positions=target, time_from_start=duration_msg(seconds))]
    msg.header.frame_id = trajectory_id
    if key is not None:
        point = msg.points[0].time_from_start
        msg.header.frame_id = signed_id(trajectory_id, sign_trajectory(
            key, trajectory_id=trajectory_id, stamp_ns=stamp_ns(stamp), positions=[target],
            times_ns=[point.sec * 1_000_000_000 + point.nanosec]))
    return msg


class SignedTwin:
    """Plays the twin (echoes the arm's commands back as measured joint states) and the supervisor
    (signed verdicts naming the newest motion, signed trajectories). `stamp_offset_s` shifts every stamp:
    a negative jump is a restarted twin."""

    def __init__(self, peer, key: bytes | None, publish_verdicts: bool = True) -> None:
        node = peer.node
        self.peer, self.key = peer, key
        self.position = np.array(HOME)
        self.commands: list[JointState] = []
        self.results: list[DiagnosticStatus] = []
        self.diagnostics: list[DiagnosticStatus] = []
        self.mode = ''
        self.motion = ''
        self.sequence = time.time_ns()
        self.stamp_offset_s = 0.0
        self.publish_states = True
        self.follow = True              # False: the arm stands still whatever it is commanded (held)
        self.state_pub = node.create_publisher(JointState, 'twin/joint_states', STREAM_QOS)
        self.verdict_pub = node.create_publisher(DiagnosticArray, 'safety/verdict', STREAM_QOS)
        self.trajectory_pub = node.create_publisher(JointTrajectory, 'arm/joint_trajectory', 10)
        node.create_subscription(JointState, 'twin/joint_command', self._on_command, STREAM_QOS)
        node.create_subscription(DiagnosticStatus, 'arm/trajectory_result', self.results.append, 10)
        node.create_subscription(String, 'arm/mode', self._on_mode, LATCHED_QOS)
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        self.scale = 1.0 if publish_verdicts else None
        node.create_timer(0.02, self._tick)

    def stamp(self):
        now_s = self.peer.node.get_clock().now().nanoseconds * 1e-9
        return s_to_stamp(now_s + self.stamp_offset_s)

    def _on_command(self, msg: JointState) -> None:
        self.commands.append(msg)
        if self.follow:
            self.position = np.array(msg.position)

    def _on_mode(self, msg: String) -> None:
        self.mode = msg.data

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        self.diagnostics.extend(s for s in msg.status if s.name == 'smartcell/arm')

    def _tick(self) -> None:
        stamp = self.stamp()
        if self.publish_states:
            state = JointState(name=list(JOINT_NAMES), position=self.position.tolist(), velocity=[0.0] * 6)
            state.header.stamp = stamp
            self.state_pub.publish(state)
        if self.scale is not None:
            self.sequence += 1
            self.verdict_pub.publish(verdict_msg(self.key, stamp, self.sequence, self.scale, self.motion))

    def send(self, trajectory_id: str, target: list[float], seconds: float) -> JointTrajectory:
        msg = trajectory_msg(self.key, trajectory_id, target, seconds, self.stamp())
        self.motion = trajectory_id
        self.trajectory_pub.publish(msg)
        return msg

    def result(self, trajectory_id: str) -> DiagnosticStatus | None:
        return next((r for r in self.results if r.name == trajectory_id), None)

    def error_naming(self, *words: str) -> DiagnosticStatus | None:
        return next((d for d in self.diagnostics if d.level == DiagnosticStatus.ERROR
                     and all(w in d.message for w in words)), None)


@pytest.fixture
def cell_key(tmp_path):
    path = tmp_path / 'cell.key'
    return path, load_or_create_cell_key(path)


def arm_params(peer, cell_key, **extra) -> dict:
    # The echoing twin below starts where the arm says it is: at this test's HOME.
    return {'deadman_timeout_s': 0.2, 'cell_key_file': str(cell_key[0]), 'supervisor_node': peer.node.get_name(),
            'input_fault_hold_s': 0.5, 'initial_positions_rad': list(HOME), **extra}


@pytest.fixture
def arm(peer, processes, cell_key):
    processes.start('arm', node_command('smartcell.nodes.arm', 'arm', None, arm_params(peer, cell_key)))
    twin = SignedTwin(peer, cell_key[1])
    peer.wait_for(lambda: len(twin.commands) > 5 and twin.mode and twin.trajectory_pub.get_subscription_count(), 30,
                  'arm commands, and the arm subscribed to trajectories', processes)
    return twin


def moved(target_0: float) -> list[float]:
    target = list(HOME)
    target[0] = target_0
    return target


def test_trajectory_beyond_limits_is_refused_with_a_reason(peer, processes, arm):
    arm.send('too-far', [0.0, -1.571, 3.5, -1.571, -1.571, 0.0], 5.0)
    peer.wait_for(lambda: arm.result('too-far') is not None, 10, 'refusal', processes)
    result = arm.result('too-far')
    assert result.level == DiagnosticStatus.ERROR
    assert 'elbow_joint' in result.message and 'outside its limits' in result.message


def test_trajectory_above_the_cell_speed_fraction_is_refused(peer, processes, arm):
    # 1.2 rad in 1 s peaks at 1.8 rad/s: within the pan joint's 3.14 rad/s, above half of it (the
    # cell's max_joint_speed_fraction 0.5, on which the SSM stopping distances rely).
    arm.send('too-fast', moved(1.2), 1.0)
    peer.wait_for(lambda: arm.result('too-fast') is not None, 10, 'refusal', processes)
    result = arm.result('too-fast')
    assert result.level == DiagnosticStatus.ERROR
    assert 'shoulder_pan_joint would reach 1.800 rad/s' in result.message and '1.571' in result.message


def test_executes_then_controlled_stop_holds_position(peer, processes, arm):
    arm.send('move', moved(0.6), 2.0)
    peer.wait_for(lambda: arm.position[0] > 0.15, 10, 'motion', processes)
    answer = peer.call(Trigger, 'arm/stop', processes=processes)
    assert answer.success
    peer.wait_for(lambda: arm.mode == 'held', 5, 'held mode', processes)
    held = arm.position[0]
    count = len(arm.commands)
    peer.wait_for(lambda: len(arm.commands) > count + 20, 5, 'more commands', processes)
    assert arm.position[0] == pytest.approx(held, abs=1e-9)
    assert 0.15 < held < 0.6
    # Another node may stop the arm, but not release it.
    stray = rclpy.create_node('stray_operator', context=peer.context)
    try:
        stray_client = stray.create_client(Trigger, 'arm/resume')
        refused = peer.call(Trigger, 'arm/resume', processes=processes)
        assert not refused.success and '/stray_operator' in refused.message, refused.message
        assert arm.mode == 'held'
    finally:
        stray.destroy_client(stray_client)
        stray.destroy_node()
    peer.wait_for(lambda: peer.call(Trigger, 'arm/resume', processes=processes).success, 10,
                  'resume accepted once the stray client left the graph', processes)
    peer.wait_for(lambda: arm.result('move') is not None, 15, 'completion', processes)
    assert arm.result('move').level == DiagnosticStatus.OK
    # the final set-point is published before the result (topics may still arrive in either order)
    peer.wait_for(lambda: abs(arm.position[0] - 0.6) < 1e-6, 5, 'final set-point', processes)


def test_deadman_stops_the_arm_when_verdicts_stop(peer, processes, arm):
    arm.send('long', moved(1.5), 6.0)
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
    arm.send('slow', moved(0.5), 1.0)
    peer.wait_for(lambda: arm.result('slow') is not None, 20, 'slow completion', processes)
    moving = [c for c in arm.commands if abs(c.velocity[0]) > 1e-6]
    peak = max(abs(c.velocity[0]) for c in moving)
    # Full speed would peak at 1.5 * 0.5 rad / 1 s = 0.75 rad/s; a quarter of it here.
    assert peak == pytest.approx(0.25 * 0.75, rel=0.1)


def test_lockstep_handles_each_tick_once_in_stamp_order_when_state_and_verdict_are_both_there(
        peer, processes, cell_key):
    """lockstep:=true (the simulation): tick t is commanded only with the twin state and the verdict of
    stamp t, whichever arrives first; a verdict naming a motion still on its way holds that tick and every
    later one until the motion arrives (or is refused); a tick already handled is never handled again."""
    processes.start('arm', node_command('smartcell.nodes.arm', 'arm', None,
                                        arm_params(peer, cell_key, lockstep=True)))
    twin = SignedTwin(peer, cell_key[1], publish_verdicts=False)
    twin.publish_states = False                  # this test steps the ticks itself
    relayed: list[JointState] = []
    peer.node.create_subscription(JointState, 'joint_states', relayed.append, STREAM_QOS)
    peer.wait_for(lambda: twin.mode and twin.state_pub.get_subscription_count()
                  and twin.verdict_pub.get_subscription_count() and twin.trajectory_pub.get_subscription_count(),
                  30, 'the arm subscribed', processes)
    base_ns = stamp_ns(twin.stamp())

    def tick(k: int) -> int:
        return base_ns + k * 40_000_000          # 25 Hz, as the twin

    def state(k: int) -> None:
        msg = JointState(name=list(JOINT_NAMES), position=twin.position.tolist(), velocity=[0.0] * 6)
        msg.header.stamp = ns_to_stamp(tick(k))
        twin.state_pub.publish(msg)

    def ns_to_stamp(ns: int) -> Time:
        return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)   # exact: pairing is by equal ns

    def verdict(k: int, motion: str = '') -> None:
        twin.sequence += 1
        twin.verdict_pub.publish(verdict_msg(twin.key, ns_to_stamp(tick(k)), twin.sequence, 1.0, motion))

    def commanded() -> list[int]:
        return [s for s in (stamp_ns(c.header.stamp) for c in twin.commands) if s >= tick(0)]

    warm_up = iter(range(-1000, 0))

    def matched() -> bool:
        # Until both directions are matched the first messages may be lost: warm-up ticks (before tick 0)
        # are sent until one is commanded and relayed back here.
        if not (twin.commands and relayed):
            k = next(warm_up)
            verdict(k)
            state(k)
            peer.executor.spin_once(timeout_sec=0.1)
        return bool(twin.commands and relayed)
    peer.wait_for(matched, 30, 'a warm-up tick commanded', processes)
    verdict(0)
    state(0)
    peer.wait_for(lambda: tick(0) in commanded(), 10, 'tick 0', processes)
    verdict(1)
    state(1)
    peer.wait_for(lambda: tick(1) in commanded(), 10, 'tick 1 (verdict first)', processes)
    state(2)
    peer.wait_for(lambda: any(stamp_ns(r.header.stamp) == tick(2) for r in relayed), 10, 'state 2 relayed',
                  processes)
    assert tick(2) not in commanded(), 'tick 2 commanded without its verdict'
    verdict(2)
    peer.wait_for(lambda: tick(2) in commanded(), 10, 'tick 2 (state first)', processes)

    # Ticks 3-5 name motion m1, not sent yet: they wait, in order, behind tick 3.
    for k in (3, 4, 5):
        verdict(k, 'm1')
        state(k)
    peer.wait_for(lambda: sum(stamp_ns(r.header.stamp) >= tick(3) for r in relayed) == 3, 10, 'states 3-5 relayed',
                  processes)
    assert not [s for s in commanded() if s >= tick(3)], 'a tick overtook the motion its verdict names'
    twin.send('m1', moved(0.5), 2.0)
    peer.wait_for(lambda: tick(5) in commanded(), 10, 'ticks 3-5 once m1 arrived', processes)
    assert [s for s in commanded() if s >= tick(3)] == [tick(3), tick(4), tick(5)]
    peer.wait_for(lambda: twin.mode == 'executing', 5, 'm1 executing', processes)

    # A repeated or late tick (at or before the last handled) is dropped; the next one is handled.
    verdict(2, 'm1')
    state(2)
    verdict(6, 'm1')
    state(6)
    peer.wait_for(lambda: tick(6) in commanded(), 10, 'tick 6', processes)
    assert commanded() == [tick(k) for k in range(7)], 'a tick was handled twice or out of order'

    # A verdict naming a motion that is refused does not stall the ticks.
    verdict(7, 'bad')
    state(7)
    twin.send('bad', [0.0, -1.571, 3.5, -1.571, -1.571, 0.0], 5.0)     # elbow beyond its limits
    peer.wait_for(lambda: tick(7) in commanded(), 10, 'tick 7 after the refusal', processes)
    peer.wait_for(lambda: twin.result('bad') is not None, 10, 'the refusal', processes)
    assert twin.result('bad').level == DiagnosticStatus.ERROR
    assert commanded() == [tick(k) for k in range(8)]


# -- command authority ---------------------------------------------------------------------------------
def test_a_spoofed_verdict_from_a_second_node_holds_the_arm_with_an_error_naming_it(peer, processes, arm,
                                                                                  cell_key):
    arm.scale = 0.0                         # the supervisor says stop (a person is close) ...
    arm.send('blocked', moved(1.0), 4.0)
    peer.wait_for(lambda: arm.mode == 'paused', 10, 'the motion loaded, held at scale 0', processes)
    spoofer = rclpy.create_node('spoofer', context=peer.context)
    spoof_pub = spoofer.create_publisher(DiagnosticArray, 'safety/verdict', STREAM_QOS)
    sequence = [time.time_ns() + 10**12]

    def spoof() -> None:                   # ... a stray node says full speed, even signed with the stolen key
        sequence[0] += 1
        spoof_pub.publish(verdict_msg(cell_key[1], arm.stamp(), sequence[0], 1.0, 'blocked'))
    timer = peer.node.create_timer(0.005, spoof)
    try:
        peer.wait_for(lambda: arm.error_naming('/spoofer', 'safety/verdict'), 10, 'ERROR naming the spoofer',
                      processes)
        count = len(arm.commands)
        held_at = arm.commands[-1].position[0]       # (the ramp to scale 0 may have crept by nanometres)
        assert abs(held_at) < 1e-3
        peer.wait_for(lambda: len(arm.commands) > count + 50, 10, 'commands while spoofed', processes)
        moving = [(i, c.position[0], c.velocity[0]) for i, c in enumerate(arm.commands[count:], count)
                  if c.position[0] != held_at or c.velocity[0] != 0.0]
        assert not moving, f'the arm moved while spoofed: (index, position, velocity) {moving[:3]}'
        assert arm.mode == 'paused'
    finally:
        peer.node.destroy_timer(timer)
        spoofer.destroy_publisher(spoof_pub)
        spoofer.destroy_node()
    # Stray gone, the supervisor allows motion again: the arm goes on after the hold time.
    arm.scale = 1.0
    peer.wait_for(lambda: arm.position[0] > 0.05, 15, 'motion after the spoofer left', processes)


def test_unsigned_or_stray_trajectories_never_run(peer, processes, arm, cell_key):
    unsigned = trajectory_msg(None, 'unsigned', moved(0.8), 3.0, arm.stamp())
    arm.motion = 'unsigned'                 # even a verdict naming it does not make it run
    arm.trajectory_pub.publish(unsigned)
    peer.wait_for(lambda: arm.result('unsigned') is not None, 10, 'refusal', processes)
    assert arm.result('unsigned').level == DiagnosticStatus.ERROR
    assert 'not authenticated' in arm.result('unsigned').message
    peer.wait_for(lambda: arm.error_naming('unsigned', 'not signed'), 5, 'ERROR naming the reason', processes)

    intruder = rclpy.create_node('intruder', context=peer.context)
    intruder_pub = intruder.create_publisher(JointTrajectory, 'arm/joint_trajectory', 10)
    try:
        stolen = trajectory_msg(cell_key[1], 'intruded', moved(0.8), 3.0, arm.stamp())
        arm.motion = 'intruded'
        peer.wait_for(lambda: intruder_pub.get_subscription_count() > 0, 10, 'intruder matched', processes)
        intruder_pub.publish(stolen)
        peer.wait_for(lambda: arm.result('intruded') is not None, 10, 'refusal', processes)
        # Refused as a stranger: by name, or (its first milliseconds) as an unnamed publisher beside the
        # supervisor; the periodic graph check names it in an ERROR either way.
        refusal = arm.result('intruded').message
        assert '/intruder' in refusal or 'a stranger until named' in refusal, refusal
        peer.wait_for(lambda: arm.error_naming('/intruder'), 10, 'ERROR naming the intruder', processes)
    finally:
        intruder.destroy_publisher(intruder_pub)
        intruder.destroy_node()
    # A signed trajectory from the supervisor, replayed, is refused the second time.
    accepted = arm.send('once', moved(0.3), 1.0)
    peer.wait_for(lambda: arm.result('once') is not None, 15, 'completion', processes)
    assert arm.result('once').level == DiagnosticStatus.OK
    arm.results.clear()
    arm.trajectory_pub.publish(accepted)
    peer.wait_for(lambda: arm.result('once') is not None, 10, 'replay refused', processes)
    assert 'replay' in arm.result('once').message
    assert all(abs(c.position[0]) <= 0.3 + 1e-9 for c in arm.commands), 'a refused trajectory moved the arm'


def test_a_trajectory_sent_while_the_supervisor_is_listed_twice_waits_and_runs_once_one_is_left(
        peer, processes, arm):
    """A restarted supervisor is listed twice on the graph until the killed process's DDS lease runs out
    (about 20 s): its trajectory is kept (the arm holds, naming why) and runs once one is left, instead
    of being refused, which stranded the cell in FAULT after every supervisor restart."""
    context = rclpy.Context()            # a second DDS participant under the supervisor's name
    rclpy.init(context=context, args=[])
    twin_node = rclpy.create_node(peer.node.get_name(), context=context)
    ghost_pub = twin_node.create_publisher(JointTrajectory, 'arm/joint_trajectory', 10)
    try:
        peer.wait_for(lambda: len(peer.node.get_publishers_info_by_topic('arm/joint_trajectory')) == 2, 20,
                      'the supervisor listed twice', processes)
        arm.send('after-restart', moved(0.3), 1.0)
        peer.wait_for(lambda: arm.error_naming('2 publishers of arm/joint_trajectory'), 10,
                      'ERROR naming the doubled supervisor', processes)
        count = len(arm.commands)
        peer.wait_for(lambda: len(arm.commands) > count + 20, 10, 'commands while doubled', processes)
        assert arm.result('after-restart') is None, 'a parked trajectory was judged while doubled'
        held = [c.position[0] for c in arm.commands[count:]]
        assert max(held) - min(held) < 1e-9, f'the arm moved while doubled: {held[:3]} .. {held[-3:]}'
    finally:
        twin_node.destroy_publisher(ghost_pub)
        twin_node.destroy_node()
        rclpy.shutdown(context=context)
    peer.wait_for(lambda: arm.result('after-restart') is not None, 30, 'the parked trajectory judged', processes)
    assert arm.result('after-restart').level == DiagnosticStatus.OK, arm.result('after-restart').message
    assert arm.position[0] == pytest.approx(0.3, abs=1e-3)



# -- malformed inputs, clocks --------------------------------------------------------------------------
@pytest.mark.parametrize('backend', ['sim', 'ros2_control'])
def test_malformed_joint_states_hold_the_arm_and_never_kill_it(peer, processes, cell_key, backend):
    topic = 'twin/joint_states' if backend == 'sim' else 'driver/joint_states'
    processes.start('arm', node_command('smartcell.nodes.arm', 'arm', None, arm_params(
        peer, cell_key, backend=backend, driver_joint_states_topic='driver/joint_states',
        controller_topic='ctrl/joint_trajectory')))
    diagnostics: list[DiagnosticStatus] = []
    peer.node.create_subscription(DiagnosticArray, '/diagnostics',
                                  lambda m: diagnostics.extend(s for s in m.status if s.name == 'smartcell/arm'), 50)
    states = peer.node.create_publisher(JointState, topic, STREAM_QOS)
    peer.wait_for(lambda: states.get_subscription_count() > 0, 30, 'arm subscribed', processes)
    bad = [JointState(name=list(JOINT_NAMES)),                                             # names, no positions
           JointState(name=list(JOINT_NAMES), position=[math.nan] * 6),
           JointState(name=list(JOINT_NAMES), position=HOME[:3]),
           JointState(name=list(JOINT_NAMES), position=HOME, velocity=[math.inf] * 6),
           JointState(name=['x'] * 6, position=HOME)]
    for msg in bad:
        msg.header.stamp = peer.node.get_clock().now().to_msg()
        states.publish(msg)
    peer.wait_for(lambda: any(d.level == DiagnosticStatus.ERROR and 'joint state' in d.message
                              for d in diagnostics), 10, 'ERROR naming the joint state', processes)
    good = JointState(name=list(JOINT_NAMES), position=HOME)
    good.header.stamp = peer.node.get_clock().now().to_msg()
    count = len(diagnostics)
    states.publish(good)
    peer.wait_for(lambda: len(diagnostics) > count + 1, 10, 'the arm still reporting', processes)
    assert not processes.failed()


def test_deadman_runs_on_steady_time_while_sim_time_stands_still(peer, processes, cell_key):
    """With use_sim_time and a /clock that stops (or goes back), the deadman still fires."""
    processes.start('arm', node_command('smartcell.nodes.arm', 'arm', None,
                                        arm_params(peer, cell_key, use_sim_time=True)))
    clock_pub = peer.node.create_publisher(Clock, '/clock', 10)
    twin = SignedTwin(peer, cell_key[1])
    sim_now = {'stamp': s_to_stamp(1000.0)}
    peer.node.create_timer(0.01, lambda: clock_pub.publish(Clock(clock=sim_now['stamp'])))
    peer.wait_for(lambda: len(twin.commands) > 5 and twin.mode, 30, 'arm commands', processes)
    twin.send('long', moved(1.5), 6.0)
    peer.wait_for(lambda: twin.position[0] > 0.05, 10, 'motion', processes)
    twin.scale = None                       # verdicts stop; sim time is frozen at 1000 s
    peer.wait_for(lambda: twin.mode == 'paused', 3, 'deadman stop on steady time', processes)
    sim_now['stamp'] = s_to_stamp(0.0)      # and even a /clock reset cannot make it move
    frozen = twin.position[0]
    count = len(twin.commands)
    peer.wait_for(lambda: len(twin.commands) > count + 20, 5, 'more commands', processes)
    assert twin.position[0] == pytest.approx(frozen, abs=1e-9)


def test_joint_states_jumping_back_abort_the_motion_and_hold_until_consistent(peer, processes, arm):
    arm.send('before', moved(1.2), 5.0)
    peer.wait_for(lambda: arm.position[0] > 0.05, 10, 'motion', processes)
    arm.stamp_offset_s = -1000.0            # the twin restarts: its stamps jump back, verdicts follow
    peer.wait_for(lambda: arm.result('before') is not None, 10, 'the motion aborted', processes)
    assert 'jumped back' in arm.result('before').message
    peer.wait_for(lambda: arm.error_naming('jumped back'), 5, 'ERROR naming the clock jump', processes)
    frozen = arm.position[0]
    count = len(arm.commands)
    peer.wait_for(lambda: len(arm.commands) > count + 20, 5, 'more commands', processes)
    assert arm.position[0] == pytest.approx(frozen, abs=1e-9), 'moved after the clock jump'
    # fresh, consistent data on the new timeline re-arms it: a new motion runs
    arm.send('after', moved(frozen + 0.2), 1.0)
    peer.wait_for(lambda: arm.result('after') is not None, 15, 'the new motion', processes)
    assert arm.result('after').level == DiagnosticStatus.OK


def test_a_motion_named_but_never_received_is_reported_lost_and_refused_if_it_comes_late(peer, processes, arm):
    """A restarted arm never gets the trajectory sent while it was dead: the supervisor would wait for
    its result for ever. Named by the verdicts for LOST_MOTION_GRACE_S, it is reported aborted."""
    from smartcell.nodes.arm import LOST_MOTION_GRACE_S
    arm.motion = 'sent-while-down'          # the verdicts name it; its trajectory never comes
    started = time.monotonic()
    peer.wait_for(lambda: arm.result('sent-while-down') is not None, 15, 'the lost motion reported', processes)
    waited = time.monotonic() - started
    result = arm.result('sent-while-down')
    assert result.level == DiagnosticStatus.ERROR and result.message.startswith('aborted: ')
    assert 'never reached this arm' in result.message
    assert waited >= LOST_MOTION_GRACE_S - 0.1
    # It arrives late: the cell has planned past it, so it must not run.
    arm.results.clear()
    arm.send('sent-while-down', moved(1.0), 1.0)
    peer.wait_for(lambda: arm.result('sent-while-down') is not None, 10, 'the late trajectory refused', processes)
    assert 'reported lost' in arm.result('sent-while-down').message
    assert arm.position[0] == pytest.approx(HOME[0], abs=1e-6)
    # The cell's next motion runs as usual, and is never reported lost.
    arm.send('replanned', moved(0.3), 1.0)
    peer.wait_for(lambda: arm.result('replanned') is not None, 15, 'the re-planned motion', processes)
    assert arm.result('replanned').level == DiagnosticStatus.OK
    assert arm.position[0] == pytest.approx(0.3, abs=1e-3)


def test_the_robots_own_force_stop_drops_the_motion_and_holds_where_the_arm_stands(peer, processes, arm):
    arm.send('reach', moved(1.2), 5.0)
    peer.wait_for(lambda: arm.position[0] > 0.1, 10, 'motion', processes)
    arm.follow = False                      # the cobot's force limit holds it here
    held = arm.position.copy()
    contacts = arm.peer.node.create_publisher(DiagnosticArray, 'twin/contacts', 10)
    peer.wait_for(lambda: contacts.get_subscription_count() > 0, 10, 'the arm subscribed to twin/contacts', processes)
    msg = DiagnosticArray(status=[DiagnosticStatus(name='person_0/forearm_hand_left', hardware_id='wrist_3_link',
                                                   values=[KeyValue(key='normal_force_n', value='120.0'),
                                                           KeyValue(key='rated_force_stop', value='true')])])
    contacts.publish(msg)
    peer.wait_for(lambda: arm.result('reach') is not None, 10, 'the motion aborted', processes)
    assert arm.result('reach').level == DiagnosticStatus.ERROR
    assert arm.result('reach').message.startswith('aborted: ') and 'force limit' in arm.result('reach').message
    count = len(arm.commands)
    peer.wait_for(lambda: len(arm.commands) > count + 10, 5, 'more commands', processes)
    # Every command since is where the arm stands: no lunge to the old set-point once it is let go.
    np.testing.assert_allclose(arm.commands[-1].position, held, atol=1e-9)


def test_ros2_control_backend_streams_the_scaled_path_to_the_controller(peer, processes, cell_key):
    """Hardware backend: set-points go to the vendor's trajectory controller, state comes from its driver."""
    processes.start('arm', node_command('smartcell.nodes.arm', 'arm', None, arm_params(
        peer, cell_key, backend='ros2_control', controller_topic='ctrl/joint_trajectory',
        driver_joint_states_topic='driver/joint_states', control_rate_hz=50.0)))
    streamed: list[JointTrajectory] = []
    peer.node.create_subscription(JointTrajectory, 'ctrl/joint_trajectory', streamed.append, 10)
    driver = peer.node.create_publisher(JointState, 'driver/joint_states', STREAM_QOS)
    supervisor = SignedTwin(peer, cell_key[1])
    supervisor.publish_states = False
    supervisor.scale = 0.5

    def feed() -> None:
        # a driver publishes a gripper joint too: accepted on this backend
        state = JointState(name=list(JOINT_NAMES) + ['gripper'], position=HOME + [0.0], velocity=[0.0] * 7)
        state.header.stamp = supervisor.stamp()
        driver.publish(state)
    peer.node.create_timer(0.02, feed)
    peer.wait_for(lambda: len(streamed) > 5, 20, 'streamed set-points', processes)
    supervisor.send('hw-move', moved(0.3), 1.0)
    peer.wait_for(lambda: streamed[-1].points[0].positions[0] > 0.299, 15, 'path streamed to the end', processes)
    moving = [m.points[0] for m in streamed if abs(m.points[0].velocities[0]) > 1e-6]
    assert moving, 'no moving set-points were streamed'
    # at scale 0.5 the 1 s segment (peak 1.5 x 0.3 rad/s) peaks at half speed
    assert max(abs(p.velocities[0]) for p in moving) == pytest.approx(0.5 * 0.45, rel=0.1)
    assert all(list(m.joint_names) == list(JOINT_NAMES) for m in streamed)
    assert streamed[-1].points[0].time_from_start.nanosec == 100_000_000     # stream_horizon_s default


def test_unauthenticated_mode_keeps_the_old_behaviour(peer, processes, fake_twin):
    """require_authenticated_commands false: unsigned verdicts and trajectories from anyone (until the
    supervisor signs); input validation and the steady deadman still apply."""
    processes.start('arm', node_command('smartcell.nodes.arm', 'arm', None, {
        'deadman_timeout_s': 0.2, 'require_authenticated_commands': False, 'initial_positions_rad': list(HOME)}))
    twin = fake_twin(peer)
    twin.position = np.array(HOME)          # this file's HOME (pan 0), where the arm starts too
    peer.wait_for(lambda: len(twin.commands) > 5 and twin.mode, 30, 'arm commands', processes)
    twin.send('legacy', moved(0.3), 1.0)
    peer.wait_for(lambda: twin.result('legacy') is not None, 15, 'completion', processes)
    assert twin.result('legacy').level == DiagnosticStatus.OK


def test_malformed_commands_never_kill_the_twin(peer, processes):
    """NaN, Inf, missing or unknown joints on twin/joint_command: ignored with an ERROR, the twin runs on."""
    processes.start('twin', node_command('smartcell.nodes.twin', 'twin', None, {'scenario': 'empty'}))
    diagnostics: list[DiagnosticStatus] = []
    states: list[JointState] = []
    peer.node.create_subscription(DiagnosticArray, '/diagnostics',
                                  lambda m: diagnostics.extend(s for s in m.status if s.name == 'smartcell/twin'), 50)
    peer.node.create_subscription(JointState, 'twin/joint_states', states.append, STREAM_QOS)
    commands = peer.node.create_publisher(JointState, 'twin/joint_command', STREAM_QOS)
    peer.wait_for(lambda: len(states) > 3 and commands.get_subscription_count() > 0, 60, 'the twin running',
                  processes)
    for name, position, velocity in [
            (list(JOINT_NAMES), [math.nan] + HOME[1:], [0.0] * 6),
            (list(JOINT_NAMES), HOME, [math.inf] * 6),
            (list(JOINT_NAMES), [], []),
            ([], HOME, [0.0] * 6),
            (['x'] * 6, HOME, [0.0] * 6),
            (list(JOINT_NAMES), [0.0, -1.571, 9.0, -1.571, -1.571, 0.0], [0.0] * 6)]:
        commands.publish(JointState(name=name, position=position, velocity=velocity))
    peer.wait_for(lambda: any(d.level == DiagnosticStatus.ERROR and 'NaN or infinite' in d.message
                              for d in diagnostics), 20, 'ERROR naming the NaN command', processes)
    peer.wait_for(lambda: any('outside its limits' in d.message for d in diagnostics), 20,
                  'ERROR naming the out-of-range command', processes)
    count = len(states)
    peer.wait_for(lambda: len(states) > count + 10, 20, 'the twin still stepping', processes)
    assert all(np.all(np.isfinite(s.position)) for s in states)
    assert not processes.failed()


def test_a_started_arm_holds_where_the_arm_stands_never_its_initial_pose(peer, processes, cell_key):
    # A restarted arm node meets an arm that is not at initial_positions_rad (it held a part out).
    twin = SignedTwin(peer, cell_key[1])
    standing = np.array(moved(HOME[0] + 0.8))
    twin.position = standing.copy()
    processes.start('arm', node_command('smartcell.nodes.arm', 'arm', None, arm_params(peer, cell_key)))
    peer.wait_for(lambda: len(twin.commands) > 5, 30, 'arm commands', processes)
    first = [np.array(c.position) for c in twin.commands[:5]]
    assert all(np.allclose(q, standing, atol=1e-9) for q in first), (first[0], standing)
    assert not any(np.allclose(np.array(c.position), HOME, atol=1e-3) for c in twin.commands)
