"""The supervisor's message conversions, with the real message classes and no node (no DDS, no rclpy.init).

What it signs is checked the way the arm checks it (command_validation + authority), so a change on
either side that breaks the pair fails here, not only over DDS.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseArray
from sensor_msgs.msg import JointState

from smartcell.core.cell.controller import DiagnosticReport, Level, MotionCommand
from smartcell.core.robot.command_validation import validate_verdict
from smartcell.core.robot.kinematics import JOINT_NAMES
from smartcell.core.safety.authority import split_signed_id, verify_trajectory, verify_verdict
from smartcell.core.safety.monitor import Mode, SafetyState, SafetyVerdict
from smartcell.nodes.supervisor_messages import (CellSigner, contacts_from_msg, diagnostics_array, joint_sample,
                                                 kpi_array, motion_result, ns_to_stamp, people_observation)

KEY = b'k' * 32
STAMP = Time(sec=12, nanosec=500_000_000)


def verdict(scale: float = 0.4, state: SafetyState = SafetyState.REDUCED) -> SafetyVerdict:
    return SafetyVerdict(12.5, Mode.AUTOMATIC, state, 'warning', 1.2, 0.8, 0.3, 1.6, 0.1, scale, 'person near', 0)


def level(status: DiagnosticStatus) -> int:
    """The level as received (a byte on the wire; in Python an int or one byte, as it was set)."""
    return status.level if isinstance(status.level, int) else status.level[0]


def test_people_become_an_observation_with_their_velocities():
    msg = PoseArray()
    msg.header.stamp, msg.header.frame_id = STAMP, 'world'
    for x, y in ((1.0, 2.0), (3.0, -1.0)):
        pose = Pose()
        pose.position.x, pose.position.y = x, y
        msg.poses.append(pose)
    velocities = (np.array([[0.5, 0.0], [0.0, 1.0]]), np.zeros((2, 2, 2)))
    observation = people_observation(msg, velocities)
    assert observation.stamp_s == 12.5 and observation.frame_id == 'world'
    np.testing.assert_array_equal(observation.positions_m, [[1.0, 2.0, 0.0], [3.0, -1.0, 0.0]])
    assert observation.velocities_mps is velocities[0]
    empty = people_observation(PoseArray(), None)
    assert empty.positions_m.shape == (0, 3) and empty.velocities_mps is None


def test_joint_states_in_any_order_become_the_arms_order_nan_kept_for_the_core():
    names = list(reversed(JOINT_NAMES))
    msg = JointState(name=names, position=[float(i) for i in range(6)], velocity=[math.nan] + [0.0] * 5)
    msg.header.stamp = STAMP
    sample = joint_sample(msg)
    assert sample is not None and sample.stamp_s == 12.5
    np.testing.assert_array_equal(sample.positions_rad, [5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    assert math.isnan(sample.velocities_radps[-1])        # judged (and stopped on) by the core, not here
    no_velocity = joint_sample(JointState(name=names, position=[0.0] * 6))
    assert no_velocity is not None and not no_velocity.velocities_radps.any()
    assert joint_sample(JointState(name=names[:5], position=[0.0] * 5)) is None
    assert joint_sample(JointState(name=names, position=[0.0] * 5)) is None
    assert joint_sample(None) is None


def test_contacts_are_read_and_unreadable_ones_named():
    good = DiagnosticStatus(name='person_0', hardware_id='forearm_link', values=[
        KeyValue(key='body_regions', value='hand,forearm'), KeyValue(key='normal_force_n', value='42.5')])
    bad = DiagnosticStatus(name='person_1', values=[KeyValue(key='body_regions', value='hand')])
    contacts, unreadable = contacts_from_msg(DiagnosticArray(status=[good, bad]))
    assert contacts == [('person_0 on forearm_link', ['hand', 'forearm'], 42.5)]
    assert "'person_1'" in unreadable and 'normal_force_n' in unreadable


@pytest.mark.parametrize('level, expected', [(DiagnosticStatus.OK, ('motion-3', True, 'done')),
                                             (DiagnosticStatus.ERROR, ('motion-3', False, 'done')),
                                             (DiagnosticStatus.WARN, None)])
def test_motion_results_ok_and_error_count_progress_does_not(level, expected):
    assert motion_result(DiagnosticStatus(level=level, name='motion-3', message='done')) == expected


def test_a_signed_verdict_passes_the_arms_checks_and_sequences_grow():
    signer = CellSigner(KEY, 'cell-01', first_sequence=1000)
    fields = {**verdict().as_fields(), 'motion_id': 'motion-3'}
    sequences = []
    for _ in range(2):
        status = signer.verdict(verdict(), fields, STAMP).status[0]
        assert status.name == 'smartcell/safety' and status.hardware_id == 'cell-01'
        assert status.message == 'person near' and level(status) == Level.OK
        parsed = validate_verdict(STAMP.sec, STAMP.nanosec, [(kv.key, kv.value) for kv in status.values])
        assert not hasattr(parsed, 'reason'), parsed
        assert parsed.speed_scale == 0.4 and parsed.motion == 'motion-3' and parsed.state == 'reduced'
        assert verify_verdict(KEY, stamp_ns=parsed.stamp_ns, sequence=parsed.sequence, speed_scale=parsed.speed_scale,
                              state=parsed.state, motion=parsed.motion, signature=parsed.signature) is None
        assert verify_verdict(b'x' * 32, stamp_ns=parsed.stamp_ns, sequence=parsed.sequence, speed_scale=0.4,
                              state=parsed.state, motion=parsed.motion, signature=parsed.signature) is not None
        sequences.append(parsed.sequence)
    assert sequences == [1001, 1002]


def test_a_stop_verdict_is_an_error_on_its_status():
    stop = verdict(0.0, SafetyState.EMERGENCY_STOP)
    status = CellSigner(KEY, 'c', 0).verdict(stop, {**stop.as_fields(), 'motion_id': ''}, STAMP).status[0]
    assert level(status) == Level.ERROR


def test_a_signed_trajectory_verifies_over_its_points():
    motion = MotionCommand('motion-7', tuple(JOINT_NAMES), (0.1, -1.5, 1.5, -1.5, -1.5, 0.0), 1.25)
    msg = CellSigner(KEY, 'c', 0).trajectory(motion, STAMP)
    assert list(msg.joint_names) == list(JOINT_NAMES) and len(msg.points) == 1
    motion_id, signature = split_signed_id(msg.header.frame_id)
    point = msg.points[0]
    times_ns = [point.time_from_start.sec * 10**9 + point.time_from_start.nanosec]
    assert motion_id == 'motion-7' and times_ns == [1_250_000_000]
    assert verify_trajectory(KEY, trajectory_id=motion_id, stamp_ns=12_500_000_000, positions=[list(point.positions)],
                             times_ns=times_ns, signature=signature) is None
    assert verify_trajectory(KEY, trajectory_id=motion_id, stamp_ns=12_500_000_001, positions=[list(point.positions)],
                             times_ns=times_ns, signature=signature) is not None


def test_reports_become_diagnostic_arrays():
    kpi = kpi_array(STAMP, 'cell-01', 'running', {'cycles': 3, 'min_separation_m': 0.4712345678})
    assert kpi.header.stamp == STAMP and kpi.status[0].name == 'smartcell/cell' and kpi.status[0].message == 'running'
    assert [(kv.key, kv.value) for kv in kpi.status[0].values] == [('cycles', '3'), ('min_separation_m', '0.471235')]
    reports = [DiagnosticReport('smartcell/supervisor/cell', Level.ERROR, 'fault', {'a': 1})]
    status = diagnostics_array(STAMP, 'cell-01', reports).status[0]
    assert level(status) == Level.ERROR and status.hardware_id == 'cell-01' and status.message == 'fault'


def test_nanoseconds_become_a_stamp():
    assert ns_to_stamp(12_500_000_000) == STAMP
