"""The supervisor's messages to and from the CellController's typed values: plain functions, no node.

Messages in become observations (people, joints, contacts, motion results); the controller's
outputs become messages, the ones that move the arm signed with the cell key
(smartcell.core.safety.authority has the wire format). `smartcell replay` reads recordings with
the same functions.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseArray
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from smartcell.core.cell.controller import DiagnosticReport, JointSample, MotionCommand, safety_level
from smartcell.core.cell.inputs import Velocities
from smartcell.core.robot.kinematics import JOINT_NAMES
from smartcell.core.safety.authority import (AUTH_KEY, SEQUENCE_KEY, sign_event, sign_trajectory, sign_verdict,
                                             signed_id)
from smartcell.core.safety.monitor import PeopleObservation, SafetyVerdict
from smartcell.core.safety.verdict import VERDICT_STATUS_NAME, verdict_values
from smartcell.nodes.common import diagnostic_array, diagnostic_status, duration_msg, stamp_ns, stamp_to_s

KPI_STATUS_NAME = 'smartcell/cell'


# -- in ---------------------------------------------------------------------------------------------
def people_positions(msg: PoseArray) -> np.ndarray:
    """The tracked people, (N, 3) m in the message's frame."""
    return np.array([(p.position.x, p.position.y, p.position.z) for p in msg.poses], dtype=float).reshape(-1, 3)


def people_observation(msg: PoseArray, velocities: Velocities | None) -> PeopleObservation:
    """`humans` as the monitor's observation, with the tracker's velocities when they belong to it."""
    speeds, covariances = velocities if velocities is not None else (None, None)
    return PeopleObservation(stamp_to_s(msg.header.stamp), msg.header.frame_id, people_positions(msg), speeds,
                             covariances)


def joint_sample(msg: JointState | None) -> JointSample | None:
    """The arm's joints in its order, or None when the message does not name them all with positions.
    Values pass unchanged (NaN included): the core judges them and stops with the reason."""
    if msg is None:
        return None
    index = {name: i for i, name in enumerate(msg.name)}
    if any(name not in index for name in JOINT_NAMES) or len(msg.position) != len(msg.name):
        return None
    order = [index[name] for name in JOINT_NAMES]
    velocity = np.asarray(msg.velocity, dtype=float)[order] if len(msg.velocity) == len(msg.name) \
        else np.zeros(len(JOINT_NAMES))
    return JointSample(stamp_to_s(msg.header.stamp), np.asarray(msg.position, dtype=float)[order], velocity)


def contacts_from_msg(msg: DiagnosticArray) -> tuple[list[tuple[str, list[str], float]], str]:
    """twin/contacts as (source, body regions, normal force N) per contact, and what could not be read."""
    contacts, unreadable = [], []
    for status in msg.status:
        values = {kv.key: kv.value for kv in status.values}
        try:
            contacts.append((f'{status.name} on {status.hardware_id}',
                             [name for name in values['body_regions'].split(',') if name],
                             float(values['normal_force_n'])))
        except (KeyError, ValueError) as exc:
            unreadable.append(f'{status.name!r}: {exc}')
    return contacts, '; '.join(unreadable)


def motion_result(msg: DiagnosticStatus) -> tuple[str, bool, str] | None:
    """arm/trajectory_result as (motion id, done, message); None for WARN (progress, nothing to do)."""
    if msg.level not in (DiagnosticStatus.OK, DiagnosticStatus.ERROR):
        return None
    return msg.name, msg.level == DiagnosticStatus.OK, msg.message


# -- out --------------------------------------------------------------------------------------------
def ns_to_stamp(nanoseconds: int) -> Time:
    return Time(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9)


class CellSigner:
    """Builds the messages the arm obeys, and the cell events the MES seals, signed with the cell key.

    Verdict sequence numbers start at the wall clock (ns) and only grow: strictly increasing also
    across a restart of the supervisor, which the arm checks.
    """

    def __init__(self, key: bytes, cell_id: str, first_sequence: int) -> None:
        self._key = key
        self._cell_id = cell_id
        self._sequence = first_sequence

    def verdict(self, verdict: SafetyVerdict, fields: Mapping[str, object], stamp: Time) -> DiagnosticArray:
        """safety/verdict: one status named VERDICT_STATUS_NAME, message = the reason, the fields as values."""
        self._sequence += 1
        signature = sign_verdict(self._key, stamp_ns=stamp_ns(stamp), sequence=self._sequence,
                                 speed_scale=verdict.speed_scale, state=verdict.state.value,
                                 motion=str(fields['motion_id']))
        status = DiagnosticStatus(level=int(safety_level(verdict)), name=VERDICT_STATUS_NAME,
                                  message=verdict.reason, hardware_id=self._cell_id)
        values = verdict_values({**fields, SEQUENCE_KEY: self._sequence, AUTH_KEY: signature})
        status.values = [KeyValue(key=k, value=v) for k, v in values]
        return diagnostic_array(stamp, [status])

    def event(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A journal record with its `auth` (authority.sign_event): signed before it is journaled, so the
        replayed copy carries the same signature."""
        return {**record, AUTH_KEY: sign_event(self._key, record)}

    def trajectory(self, motion: MotionCommand, stamp: Time) -> JointTrajectory:
        """arm/joint_trajectory: one segment; header.frame_id = <motion id>#<HMAC over the points>."""
        msg = JointTrajectory(joint_names=list(motion.joint_names))
        msg.header.stamp = stamp
        msg.points = [JointTrajectoryPoint(positions=list(motion.positions_rad),
                                           time_from_start=duration_msg(motion.duration_s))]
        times_ns = [p.time_from_start.sec * 10**9 + p.time_from_start.nanosec for p in msg.points]
        msg.header.frame_id = signed_id(motion.motion_id, sign_trajectory(
            self._key, trajectory_id=motion.motion_id, stamp_ns=stamp_ns(stamp),
            positions=[list(p.positions) for p in msg.points], times_ns=times_ns))
        return msg


def kpi_array(stamp: Time, cell_id: str, state: str, values: Mapping[str, object]) -> DiagnosticArray:
    """cell/kpi: one status, message = the cell state, the KPIs as values."""
    return diagnostic_array(stamp, [diagnostic_status(KPI_STATUS_NAME, cell_id, 0, state, values)])


def diagnostics_array(stamp: Time, cell_id: str, reports: Iterable[DiagnosticReport]) -> DiagnosticArray:
    return diagnostic_array(stamp, [diagnostic_status(r.name, cell_id, int(r.level), r.message, dict(r.values))
                                    for r in reports])
