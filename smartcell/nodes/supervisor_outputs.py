"""The supervisor's publishers: what a CellController call changed becomes messages.

Motions, verdicts and cell events are signed with the cell key (supervisor_messages.CellSigner); every
event is signed and journaled before it is published, and replayed from the journal on request.
QoS: smartcell.interfaces.
"""
from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any, Callable, Iterable, Mapping

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Float64, String
from trajectory_msgs.msg import JointTrajectory

from smartcell import interfaces
from smartcell.core.cell.controller import CellEvent, CellOutput, DiagnosticReport
from smartcell.core.cell.outputs import ReplayPages, VerdictStamps, journal_record
from smartcell.core.cell.states import State
from smartcell.io.event_journal import EventJournal, JournalError
from smartcell.nodes.common import qos_profile, s_to_stamp, stamp_ns
from smartcell.nodes.supervisor_messages import CellSigner, diagnostics_array, kpi_array, ns_to_stamp

DISPLAY_TOPICS = ('robot/intent', 'operator/current_step', 'operator/next_step')


def publisher(node: Node, msg_type: type, topic: str) -> Any:
    """A publisher of `topic` with the QoS smartcell.interfaces gives its publishers."""
    return node.create_publisher(msg_type, topic, qos_profile(interfaces.topic(topic).publisher_qos))


class CellPublishers:
    """Publishes CellOutputs; `verdict_fields` gives a verdict's values (the controller's, with motion_id)."""

    def __init__(self, node: Node, cell_id: str, signer: CellSigner, journal: EventJournal, lockstep: bool,
                 verdict_fields: Callable[[Any], Mapping[str, object]], now_s: Callable[[], float]) -> None:
        self._node, self._cell_id, self._signer, self._journal = node, cell_id, signer, journal
        self._lockstep = lockstep
        self._verdict_fields, self._now_s = verdict_fields, now_s
        self._verdict_stamps = VerdictStamps()
        self.replay = ReplayPages()
        self._scale = publisher(node, Float64, 'speed_scale')
        self._verdict = publisher(node, DiagnosticArray, 'safety/verdict')
        self._state = publisher(node, String, 'cell/state')
        self._events = publisher(node, String, 'cell/events')
        self._replay = publisher(node, String, 'cell/events/replay')
        self._kpi = publisher(node, DiagnosticArray, 'cell/kpi')
        self._trajectory = publisher(node, JointTrajectory, 'arm/joint_trajectory')
        self._diagnostics = publisher(node, DiagnosticArray, '/diagnostics')
        self._displays = {topic: publisher(node, String, topic) for topic in DISPLAY_TOPICS}

    def start(self, state: State) -> None:
        """Before any verdict: the arm holds (scale 0) and the cell state is known to late joiners."""
        self._scale.publish(Float64(data=0.0))
        self._state.publish(String(data=state.value.lower()))

    def apply(self, output: CellOutput, stamp: Time | None = None) -> None:
        """Publish what one controller call changed; `stamp`: of the people data it judged (None: now)."""
        if output.state is not None:
            self._state.publish(String(data=output.state.value.lower()))
        for topic, payload in output.displays:
            self._displays[topic].publish(String(data=json.dumps(payload)))
        if output.motion is not None:
            self._trajectory.publish(self._signer.trajectory(output.motion, self._stamp_or_now(stamp)))
        if output.verdict is not None:
            verdict_stamp = self._verdict_stamp(output, stamp)
            self._scale.publish(Float64(data=output.verdict.speed_scale))
            self._verdict.publish(self._signer.verdict(output.verdict, self._verdict_fields(output.verdict),
                                                       verdict_stamp))
        if output.events:      # last: the journal's fsync (ms) must not delay the verdict or the motion
            self._publish_events(output.events)

    def _verdict_stamp(self, output: CellOutput, stamp: Time | None) -> Time:
        """The people data's stamp (else now); outside lockstep never a little behind the previous one
        (core.cell.outputs.VerdictStamps: a watchdog verdict is stamped now, the next one older)."""
        if output.verdict_stamp_s is not None:
            stamp = s_to_stamp(output.verdict_stamp_s)
        stamp = self._stamp_or_now(stamp)
        return stamp if self._lockstep else ns_to_stamp(self._verdict_stamps.next(stamp_ns(stamp)))

    def _stamp_or_now(self, stamp: Time | None) -> Time:
        return stamp if stamp is not None else s_to_stamp(self._now_s())

    def _publish_events(self, events: tuple[CellEvent, ...]) -> None:
        """Sign, journal, then publish: an event anyone could have seen is on disk (smartcell.io.event_journal),
        with the signature the MES bridge checks before sealing it (the replay sends the same text)."""
        try:
            texts = self._journal.append([self._signer.event(journal_record(e, self._cell_id, str(uuid.uuid4())))
                                          for e in events])
        except (JournalError, OSError, sqlite3.Error, ValueError) as exc:
            # not published unjournaled: a consumer would hold an event the replay cannot give back
            self._node.get_logger().error(f'cell events {events[0].seq}..{events[-1].seq} not journaled, not '
                                          f'published: {exc!r}', throttle_duration_sec=5.0)
            return
        for text in texts:
            self._events.publish(String(data=text))

    def replay_page(self) -> None:
        """The next page of journaled events for the consumer that asked (ReplayPages), if any."""
        if self.replay.after is None:
            return
        texts = self._journal.after(self.replay.after, self.replay.page_events)
        for text in texts:
            self._replay.publish(String(data=text))
        self.replay.sent(len(texts))

    def kpis(self, stamp: Time, state: State, values: Mapping[str, object]) -> None:
        self._kpi.publish(kpi_array(stamp, self._cell_id, state.value.lower(), values))

    def diagnostics(self, stamp: Time, reports: Iterable[DiagnosticReport]) -> None:
        self._diagnostics.publish(diagnostics_array(stamp, self._cell_id, reports))
