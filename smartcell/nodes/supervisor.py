"""Supervisor node: messages in -> CellController (smartcell.core.cell.controller) -> messages out."""
from __future__ import annotations

import dataclasses
import functools
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from diagnostic_msgs.srv import AddDiagnostics
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from sensor_msgs.msg import JointState, PointCloud2
from std_msgs.msg import Float64, String, UInt64
from std_srvs.srv import Trigger

from smartcell import interfaces
from smartcell.core.cell.authorisation import OperatorPolicy, RequestVerifier, load_operator_users
from smartcell.core.cell.files import cell_file, cell_key, unadopted_file
from smartcell.core.cell.controller import REQUESTS, CellController, CellOutput, JointSample
from smartcell.core.cell.inputs import TickPairing, Velocities, people_velocities
from smartcell.core.cell.operator_requests import OperatorRequests
from smartcell.core.cell.orders import OrderBook
from smartcell.core.node_params import SUPERVISOR
from smartcell.core.safety.monitor import Mode
from smartcell.core.tasks.recipe import Recipe, load_recipe
from smartcell.io.event_journal import EventJournal
from smartcell.io.order_store import SqliteOrderStore
from smartcell.nodes.common import declare_config, guarded, qos_profile, run_node, stamp_ns, stamp_to_s, steady_clock
from smartcell.nodes.scanner import velocities_from_cloud
from smartcell.nodes.supervisor_inputs import ArmConfigCheck, people_publisher_doubt
from smartcell.nodes.supervisor_messages import (CellSigner, contacts_from_msg, joint_sample, motion_result,
                                                 people_observation, people_positions)
from smartcell.nodes.supervisor_outputs import CellPublishers
from smartcell.share import share_file

__all__ = ['Supervisor', 'main']

REPLAY_PAGE_PERIOD_S = 0.02      # steady s between replay pages: at most 5000 events/s, never a long callback
ARM_CHECK_PERIOD_S = 0.5         # the arm's speed fraction is asked for this often
REPORT_PERIOD_S = 1.0            # cell/kpi (outside lockstep) and /diagnostics


class Supervisor(Node):
    """Runs the cell through one CellController (smartcell.core.cell.controller); this node only converts.

    Subscribes: `humans` (geometry_msgs/PoseArray, world frame, m; only from the `scanner` node);
    `humans/velocities` (sensor_msgs/PointCloud2 from the `scanner` node, same stamp: per person the
    tracker's velocity and covariance, smartcell.nodes.scanner.VELOCITY_FIELDS; paired with `humans` by
    exact stamp, in lockstep waited for; missing or not matching -> judged without velocities);
    `joint_states` (sensor_msgs/JointState, rad, rad/s); `arm/trajectory_result`
    (diagnostic_msgs/DiagnosticStatus); `operator/fatigue` (std_msgs/Float64, [0, 1]); `twin/contacts`
    (diagnostic_msgs/DiagnosticArray: person-robot contacts, judged against the quasi-static limits);
    `mes/job_order` (std_msgs/String JSON, transient local).
    Publishes: `speed_scale` (std_msgs/Float64 latched, [0, 1]); `safety/verdict`
    (diagnostic_msgs/DiagnosticArray, stamp of the people data: mode, state, zone, separation_m,
    protective_distance_m, allowed_speed_mps, speed_scale, reason, motion_id); `cell/state` (std_msgs/String
    latched); `cell/events` (std_msgs/String, one JSON object per event, with a per-cell `seq`); `cell/kpi`
    (diagnostic_msgs/DiagnosticArray latched); `arm/joint_trajectory` (trajectory_msgs/JointTrajectory);
    `operator/current_step`, `operator/next_step`, `robot/intent` (std_msgs/String latched JSON); `/diagnostics`.
    QoS: smartcell.interfaces.
    Services (std_srvs/Trigger): `cell/start|stop|pause|resume|reset|emergency_stop`,
    `safety/mode/automatic|collaborative|manual_reduced`, `operator/step_done`; a refused request answers
    success=false with the reason. Collaborative mode, reset after an emergency stop and the first start
    after it need an authorised operator: `cell/operator_request` (diagnostic_msgs/srv/AddDiagnostics used
    as string in, success/message out: load_namespace holds a signed request, or {"login": name} for the
    salt and iterations; smartcell.core.cell.authorisation has the format). `cell/cancel_order`
    (AddDiagnostics the same way: load_namespace = the id of a waiting order; answers job_cancelled).
    Event journal: every event is signed with the cell key (`auth`, core.safety.authority.sign_event: the MES
    bridge seals only what verifies) and journaled (event_journal_file) before it is published; every
    `evidence_anchor_period_s` an `evidence_anchor` event carries the evidence log's head; a latched
    `cell/events/replay_request` (std_msgs/UInt64: the last seq the asker has) is answered on
    `cell/events/replay` (std_msgs/String, the journaled events after it, in pages).
    Checks: the arm's `max_joint_speed_fraction` (its get_parameters service) equals this node's and its
    `scale_ramp_down_per_s` is not above this node's; a mismatch is a protective stop held with an ERROR
    naming both values.
    Parameters: smartcell.core.node_params.SUPERVISOR.
    """

    def __init__(self) -> None:
        super().__init__('supervisor')
        config = self._config = declare_config(self, SUPERVISOR)
        self._tick_now_s = 0.0              # lockstep: the time of the tick being handled
        key = cell_key(config.cell_key_file, config.cell_id)
        users = load_operator_users(config.operator_users_file) if config.operator_users_file else {}
        self._operator = OperatorRequests(RequestVerifier(users, key, config.operator_request_window_s)
                                          if users else None)
        # Every event is on disk before it is published; seq continues from the journal after a restart.
        namespace = self.get_namespace()
        journal_file = cell_file(config.event_journal_file, config.cell_id, 'events', namespace)
        order_file = cell_file(config.order_store_file, config.cell_id, 'orders', namespace)
        for path, configured, kind in ((journal_file, config.event_journal_file, 'events'),
                                       (order_file, config.order_store_file, 'orders')):
            root = unadopted_file(configured, config.cell_id, kind, namespace)
            if root is not None:
                self.get_logger().warning(
                    f'starting a new {path}; {root} exists: if it is this cell\'s from before the namespace was '
                    'in the file name, stop the cell and move it there (else the MES bridge refuses the restarted '
                    'event seq as replays); if it is a root-namespace cell\'s, nothing to do')
        self._journal = EventJournal(journal_file)
        orders = OrderBook(max_units=config.max_order_units, store=SqliteOrderStore(order_file))
        self._controller = CellController.from_params(
            dataclasses.asdict(config), config.stopping_file or share_file('config', 'stopping.yaml'),
            config.body_regions_file or share_file('config', 'body_regions.yaml'),
            config.motions_file or share_file('config', 'motions.yaml'), _load_job, self._now_s(), orders,
            evidence_key=key, last_seq=self._journal.last_seq(),
            authorisation=OperatorPolicy(users_configured=bool(users)))
        self._ticks: TickPairing[PoseArray, PointCloud2, JointState] = TickPairing()
        self._latest_joints: JointSample | None = None
        self._velocity_refusal = self._input_error = ''
        self._config_refusal = ''            # a run-time configuration mismatch: held as a protective stop
        self._arm_check = ArmConfigCheck(self, config.arm_node, config.max_joint_speed_fraction,
                                         config.scale_ramp_down_per_s) \
            if config.arm_node else None

        self._out = CellPublishers(self, self._controller.config.cell_id,
                                   CellSigner(key, self._controller.config.cell_id, first_sequence=time.time_ns()),
                                   self._journal, config.lockstep, self._controller.verdict_fields, self._now_s)
        self._subscribe(PoseArray, 'humans', self._on_humans)
        self._subscribe(PointCloud2, 'humans/velocities', self._on_velocities)
        self._subscribe(JointState, 'joint_states', self._on_joint_states)
        self._subscribe(DiagnosticStatus, 'arm/trajectory_result', self._on_trajectory_result)
        self._subscribe(Float64, 'operator/fatigue', self._on_fatigue)
        self._subscribe(DiagnosticArray, 'twin/contacts', self._on_contacts)
        self._subscribe(String, 'mes/job_order', self._on_job_order)
        # A request made before this node started is still answered (latched); paged on a steady timer
        # so the safety loop never waits for a replay.
        self._subscribe(UInt64, 'cell/events/replay_request', lambda msg: self._out.replay.request(msg.data))
        self.create_timer(REPLAY_PAGE_PERIOD_S, self._guard(self._out.replay_page), clock=steady_clock())

        self._trigger('operator/step_done', self._controller.on_operator_done)
        for name in REQUESTS:
            self._trigger(f'cell/{name}', functools.partial(self._controller.request, name))
        for mode in Mode:
            self._trigger(f'safety/mode/{mode.value}', functools.partial(self._controller.set_mode, mode))
        self.create_service(AddDiagnostics, 'cell/operator_request', self._answer(self._on_operator_request))
        self.create_service(AddDiagnostics, 'cell/cancel_order', self._answer(self._on_cancel_order))

        if self._arm_check is not None:
            self.create_timer(ARM_CHECK_PERIOD_S, self._guard(self._check_arm_config))
        if not config.lockstep:     # watchdog: silence on `humans` is a stop; checked at twice the timeout rate
            self.create_timer(config.people_timeout_s / 2.0, self._guard(
                lambda: self._out.apply(self._controller.on_silence(self._now_s()))))
            self.create_timer(REPORT_PERIOD_S, self._guard(self._publish_kpis))
        self.create_timer(REPORT_PERIOD_S, self._guard(self._publish_diagnostics))
        if config.evidence_anchor_period_s > 0.0:     # the evidence log's head off the machine, through the MES
            self.create_timer(config.evidence_anchor_period_s, self._guard(
                lambda: self._out.apply(self._controller.evidence_anchor(self._now_s()))))
        self._out.start(self._controller.state)

    # -- inputs ---------------------------------------------------------------------------------------
    def _on_humans(self, msg: PoseArray) -> None:
        doubt = people_publisher_doubt(self, 'humans', self._config.expected_people_publisher) or self._config_refusal
        if doubt:
            self._refuse_input(doubt)
        elif not self._config.lockstep:
            self._evaluate(msg, self._latest_joints, self._now_s())
        else:
            self._evaluate_ticks(self._ticks.add_people(stamp_ns(msg.header.stamp), msg))

    def _on_velocities(self, msg: PointCloud2) -> None:
        doubt = people_publisher_doubt(self, 'humans/velocities', self._config.expected_people_publisher)
        if doubt:
            self._refuse_input(doubt)
        else:
            self._evaluate_ticks(self._ticks.add_velocities(stamp_ns(msg.header.stamp), msg))

    def _on_joint_states(self, msg: JointState) -> None:
        self._latest_joints = joint_sample(msg)
        self._controller.on_joint_state(self._latest_joints)
        if self._config.lockstep:
            self._evaluate_ticks(self._ticks.add_joints(stamp_ns(msg.header.stamp), msg))

    def _evaluate_ticks(self, ticks: list[tuple[PoseArray, JointState]]) -> None:
        """Lockstep: people judged against the joints of their own tick, at the tick's time."""
        for people, joints in ticks:
            self._evaluate(people, joint_sample(joints), stamp_to_s(people.header.stamp))

    def _evaluate(self, people: PoseArray, joints: JointSample | None, now_s: float) -> None:
        self._tick_now_s = now_s
        observation = people_observation(people, self._velocities_for(people))
        self._out.apply(self._controller.on_cycle(observation, joints, now_s), people.header.stamp)
        if self._config.lockstep:
            self._publish_kpis(people.header.stamp)      # every tick: the run's end is not known here

    def _velocities_for(self, people: PoseArray) -> Velocities | None:
        cloud = self._ticks.velocities_at(stamp_ns(people.header.stamp))
        if cloud is None:
            return None
        matched = people_velocities(people_positions(people), people.header.frame_id, velocities_from_cloud(cloud),
                                    cloud.header.frame_id)
        if not isinstance(matched, str):
            return matched
        if matched != self._velocity_refusal:
            self.get_logger().warning(f'{matched}; judged without velocities')
        self._velocity_refusal = matched
        return None

    def _on_trajectory_result(self, msg: DiagnosticStatus) -> None:
        result = motion_result(msg)
        if result is not None:
            self._out.apply(self._controller.on_motion_result(*result, self._now_s()))

    def _on_contacts(self, msg: DiagnosticArray) -> None:
        contacts, unreadable = contacts_from_msg(msg)
        self._out.apply(self._controller.on_contacts(contacts, self._now_s(), unreadable))

    def _on_fatigue(self, msg: Float64) -> None:
        self._out.apply(self._controller.on_fatigue(msg.data, self._now_s()))

    def _on_job_order(self, msg: String) -> None:
        output = self._controller.on_order(msg.data, self._now_s())
        if not output.success:
            self.get_logger().warning(output.message)
        self._out.apply(output)

    def _on_operator_request(self, request: AddDiagnostics.Request) -> tuple[bool, str]:
        """A signed operator request (or a login-parameter query)."""
        answer = self._operator.answer(request.load_namespace, self._controller, self._now_s(), time.time_ns(),
                                       time.monotonic())
        if answer.refusal_recorded:
            self.get_logger().warning(f'operator request refused: {answer.refusal_recorded}')
        if answer.output is not None:
            self._out.apply(answer.output)
        return answer.success, answer.message

    def _on_cancel_order(self, request: AddDiagnostics.Request) -> tuple[bool, str]:
        """Cancel a waiting order (the id in load_namespace); a running one is aborted with cell/stop."""
        output = self._controller.cancel_order(request.load_namespace, self._now_s())
        self._out.apply(output)
        return output.success, output.message

    def _check_arm_config(self) -> None:
        """One cell-wide speed fraction (SSM's stopping data are taken at ours) and an arm that slows its
        scale no faster than we assume (ArmConfigCheck)."""
        refusal = self._arm_check.poll() if self._arm_check is not None else None
        if refusal is None:
            return
        if refusal and refusal != self._config_refusal:
            self.get_logger().error(refusal)
        self._config_refusal = refusal
        if refusal:
            self._refuse_input(refusal)

    def _refuse_input(self, reason: str) -> None:
        if reason != self._input_error:
            self.get_logger().error(reason)
        self._input_error = reason
        self._out.apply(self._controller.on_input_refused(reason, self._now_s()))

    def _publish_kpis(self, stamp: Time | None = None) -> None:
        self._out.kpis(stamp if stamp is not None else self.get_clock().now().to_msg(), self._controller.state,
                       self._controller.kpi_values(self._now_s()))

    def _publish_diagnostics(self) -> None:
        self._out.diagnostics(self.get_clock().now().to_msg(), self._controller.diagnostics(self._now_s()))

    # -- wiring ---------------------------------------------------------------------------------------
    def _subscribe(self, msg_type: type, topic: str, callback: Callable[[Any], None]) -> None:
        self.create_subscription(msg_type, topic, self._guard(callback),
                                 qos_profile(interfaces.topic(topic).subscriber_qos))

    def _guard(self, callback: Callable[..., None]) -> Callable[..., Any]:
        """Nothing unexpected kills the safety process: it becomes a protective stop and an ERROR."""
        def stop(name: str, exc: BaseException) -> None:
            self.get_logger().error(f'internal error in {name}: {exc!r}\n{traceback.format_exc()}')
            self._input_error = f'internal error in {name}: {exc!r}'
            self._out.apply(self._controller.on_input_refused(self._input_error, self._now_s()))
        return guarded(callback, stop)

    def _trigger(self, name: str, call: Callable[[float], CellOutput]) -> None:
        """A std_srvs/Trigger service: `call(now_s)` on the controller, answered with its answer."""
        def answer(request: Any) -> tuple[bool, str]:
            output = call(self._now_s())
            self._out.apply(output)
            return output.success, output.message
        answer.__name__ = name
        self.create_service(Trigger, name, self._answer(answer))

    def _answer(self, handle: Callable[[Any], tuple[bool, str]]) -> Callable[[Any, Any], Any]:
        """A service callback: (success, message) into the response; an internal error is answered, not raised."""
        def respond(request: Any, response: Any) -> Any:
            response.success, response.message = handle(request)
            return response
        respond.__name__ = handle.__name__
        return guarded(respond, lambda name, exc: self.get_logger().error(
            f'internal error answering {name}: {exc!r}\n{traceback.format_exc()}'))

    def on_shutdown(self) -> None:
        self._journal.close()
        self._controller.close()          # flush the evidence log

    def _now_s(self) -> float:
        if self._config.lockstep:
            return self._tick_now_s     # simulation: the time of the tick being handled
        return self.get_clock().now().nanoseconds * 1e-9


def _load_job(job: str) -> Recipe:
    """A recipe by path, or by name from the installed config directory (job_demo -> job_demo.yaml)."""
    return load_recipe(Path(job) if ('/' in job or job.endswith('.yaml')) else share_file('config', f'{job}.yaml'))


def main(args: list[str] | None = None) -> int:
    return run_node(Supervisor, args)


if __name__ == '__main__':
    raise SystemExit(main())
