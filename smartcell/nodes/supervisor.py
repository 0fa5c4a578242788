"""Supervisor node: converts messages to CellController calls and its outputs back to messages."""
from __future__ import annotations

import json
import sqlite3
import time
import traceback
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from diagnostic_msgs.srv import AddDiagnostics
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState, PointCloud2
from rclpy.clock import Clock, ClockType
from std_msgs.msg import Float64, String, UInt64
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from smartcell.core.cell.authorisation import (MODE_PREFIX, OperatorPolicy, RequestVerifier,
                                               load_operator_users)
from smartcell.core.cell.orders import OrderBook
from smartcell.io.event_journal import EventJournal, JournalError
from smartcell.io.order_store import SqliteOrderStore
from smartcell.core.cell.controller import CLOCK_JUMP_S, REQUESTS, CellController, CellOutput, JointSample, safety_level
from smartcell.core.node_params import SUPERVISOR
from smartcell.core.robot.kinematics import JOINT_NAMES
from smartcell.core.params import ConfigError
from smartcell.core.safety.authority import (AUTH_KEY, SEQUENCE_KEY, CellKeyError, default_cell_key_path,
                                             load_or_create_cell_key, sign_trajectory, sign_verdict, signed_id)
from smartcell.core.safety.graph import publisher_doubt
from smartcell.core.safety.monitor import Mode, PeopleObservation
from smartcell.core.safety.verdict import VERDICT_STATUS_NAME, verdict_values
from smartcell.core.stamp_join import ExactStampJoiner
from smartcell.core.tasks.recipe import load_recipe
from smartcell import interfaces
from smartcell.nodes.common import (LATCHED_QOS, STREAM_QOS, declare_parameters, diagnostic_array,
                                    diagnostic_status, duration_msg, qos_profile, run_node, s_to_stamp, stamp_ns,
                                    stamp_to_s)
from smartcell.nodes.scanner import velocities_from_cloud
from smartcell.share import share_file

DISPLAY_TOPICS = ('robot/intent', 'operator/current_step', 'operator/next_step')
STAMP_BUFFER_DEPTH = 32       # humans/velocities (and, in lockstep, people waiting for them) kept by stamp
ORDER_QOS = qos_profile(interfaces.ORDERS)
EVENTS_QOS = qos_profile(interfaces.EVENTS)      # a burst of events (a job end) must reach the MES bridge whole
REPLAY_REQUEST_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL)
REPLAY_PAGE_EVENTS = 100         # events replayed per page
REPLAY_PAGE_PERIOD_S = 0.02      # steady s between pages: at most 5000 events/s, never a long callback


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
    Services (std_srvs/Trigger): `cell/start|stop|pause|resume|reset|emergency_stop`,
    `safety/mode/automatic|collaborative|manual_reduced`, `operator/step_done`; a refused request answers
    success=false with the reason. Collaborative mode, reset after an emergency stop and the first start
    after it need an authorised operator: `cell/operator_request` (diagnostic_msgs/srv/AddDiagnostics used
    as string in, success/message out: load_namespace holds a signed request, or {"login": name} for the
    salt and iterations; smartcell.core.cell.authorisation has the format). `cell/cancel_order`
    (AddDiagnostics the same way: load_namespace = the id of a waiting order; answers job_cancelled).
    Event journal: every event is journaled (event_journal_file) before it is published; a latched
    `cell/events/replay_request` (std_msgs/UInt64: the last seq the asker has) is answered on
    `cell/events/replay` (std_msgs/String, the journaled events after it, in pages).
    Checks: the arm's `max_joint_speed_fraction` (its get_parameters service) equals this node's; a
    mismatch is a protective stop held with an ERROR naming both values.
    Parameters: smartcell.core.node_params.SUPERVISOR.
    """

    def __init__(self) -> None:
        super().__init__('supervisor')
        params = declare_parameters(self, SUPERVISOR)
        self._lockstep = bool(params['lockstep'])
        self._tick_now_s = 0.0
        self._last_verdict_stamp_ns = 0
        self._people_publisher = str(params['expected_people_publisher'])
        try:
            self._key = load_or_create_cell_key(params['cell_key_file'] or default_cell_key_path(params['cell_id']))
        except CellKeyError as exc:
            raise ConfigError(f'supervisor.cell_key_file: {exc}') from exc
        users = load_operator_users(params['operator_users_file']) if params['operator_users_file'] else {}
        self._verifier = RequestVerifier(users, self._key, float(params['operator_request_window_s'])) \
            if users else None
        self._policy = OperatorPolicy(users_configured=bool(users))
        store = SqliteOrderStore(params['order_store_file'] or default_cell_key_path(params['cell_id']).with_name(
            f"orders_{params['cell_id']}.sqlite"))
        # Every event is on disk before it is published; seq continues from the journal after a restart.
        self._journal = EventJournal(params['event_journal_file'] or default_cell_key_path(
            params['cell_id']).with_name(f"events_{params['cell_id']}.sqlite"))
        self._replay_after: int | None = None
        self._controller = CellController.from_params(
            params, params['stopping_file'] or share_file('config', 'stopping.yaml'),
            params['body_regions_file'] or share_file('config', 'body_regions.yaml'),
            params['motions_file'] or share_file('config', 'motions.yaml'), _recipe_loader, self._now_s(),
            OrderBook(max_units=int(params['max_order_units']), store=store), evidence_key=self._key,
            last_seq=self._journal.last_seq(),
            authorisation=self._policy)
        self._cell_id = self._controller.config.cell_id
        self._sequence = time.time_ns()        # strictly increasing, also across restarts (the arm checks)
        self._latest_joints: JointSample | None = None
        self._joiner: ExactStampJoiner[PoseArray, JointState] = ExactStampJoiner()
        # humans/velocities by stamp (ns); in lockstep a people message waits for its velocities.
        self._velocities: OrderedDict[int, PointCloud2] = OrderedDict()
        self._waiting_people: OrderedDict[int, PoseArray] = OrderedDict()
        self._velocity_refusal = ''
        self._input_error = ''
        self._config_refusal = ''            # a run-time configuration mismatch: held as a protective stop
        self._speed_fraction = float(params['max_joint_speed_fraction'])
        self._arm_node = str(params['arm_node'])
        self._arm_params = self.create_client(GetParameters, f'{self._arm_node}/get_parameters') \
            if self._arm_node else None
        self._arm_params_future = None
        self._refused_requests, self._refused_recorded_s = 0, -float('inf')

        self._scale_pub = self.create_publisher(Float64, 'speed_scale', LATCHED_QOS)
        self._verdict_pub = self.create_publisher(DiagnosticArray, 'safety/verdict', STREAM_QOS)
        self._state_pub = self.create_publisher(String, 'cell/state', LATCHED_QOS)
        self._events_pub = self.create_publisher(String, 'cell/events', EVENTS_QOS)
        # Replays of journaled events for a consumer that missed some (the MES bridge), asked for with
        # the last seq it has on cell/events/replay_request (latched: a request made before this node
        # started is still answered); paged on a steady timer so the safety loop never waits for one.
        self._replay_pub = self.create_publisher(String, 'cell/events/replay', EVENTS_QOS)
        self.create_subscription(UInt64, 'cell/events/replay_request', self._guard(self._on_replay_request),
                                 REPLAY_REQUEST_QOS)
        self.create_timer(REPLAY_PAGE_PERIOD_S, self._guard(self._replay_page),
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._kpi_pub = self.create_publisher(DiagnosticArray, 'cell/kpi', LATCHED_QOS)
        self._trajectory_pub = self.create_publisher(JointTrajectory, 'arm/joint_trajectory', 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._display_pubs = {topic: self.create_publisher(String, topic, LATCHED_QOS) for topic in DISPLAY_TOPICS}
        self.create_subscription(PoseArray, 'humans', self._guard(self._on_humans), STREAM_QOS)
        self.create_subscription(PointCloud2, 'humans/velocities', self._guard(self._on_velocities), STREAM_QOS)
        self.create_subscription(JointState, 'joint_states', self._guard(self._on_joint_states), STREAM_QOS)
        self.create_subscription(DiagnosticStatus, 'arm/trajectory_result', self._guard(self._on_trajectory_result), 10)
        self.create_subscription(Float64, 'operator/fatigue', self._guard(self._on_fatigue), LATCHED_QOS)
        self.create_subscription(DiagnosticArray, 'twin/contacts', self._guard(self._on_contacts), 10)
        self.create_subscription(String, 'mes/job_order', self._guard(self._on_job_order), ORDER_QOS)
        self.create_service(Trigger, 'operator/step_done', self._service(lambda: self._controller.on_operator_done(
            self._now_s())))
        for name in REQUESTS:
            self.create_service(Trigger, f'cell/{name}', self._service(
                lambda name=name: self._controller.request(name, self._now_s())))
        for mode in Mode:
            self.create_service(Trigger, f'safety/mode/{mode.value}', self._service(
                lambda mode=mode: self._controller.set_mode(mode, self._now_s())))
        self.create_service(AddDiagnostics, 'cell/operator_request', self._on_operator_request)
        self.create_service(AddDiagnostics, 'cell/cancel_order', self._on_cancel_order)
        if self._arm_params is not None:
            self.create_timer(0.5, self._guard(self._check_arm_speed_fraction))
        if not self._lockstep:     # watchdog: silence on `humans` is a stop; checked at twice the timeout rate
            self.create_timer(params['people_timeout_s'] / 2.0, self._guard(
                lambda: self._apply(self._controller.on_silence(self._now_s()))))
            self.create_timer(1.0, self._guard(self._publish_kpis))
        self.create_timer(1.0, self._guard(self._publish_diagnostics))
        self._scale_pub.publish(Float64(data=0.0))
        self._state_pub.publish(String(data=self._controller.state.value.lower()))

    # -- inputs ---------------------------------------------------------------------------------------
    def _on_humans(self, msg: PoseArray) -> None:
        doubt = publisher_doubt('humans', ((i.node_name, i.node_namespace) for i in
                                           self.get_publishers_info_by_topic(self.resolve_topic_name('humans'))),
                                self._people_publisher, self.get_namespace()) if self._people_publisher else ''
        doubt = doubt or self._config_refusal
        if doubt:
            self._refuse_input(doubt)
            return
        if not self._lockstep:
            self._evaluate(msg, self._latest_joints, self._now_s())
            return
        self._waiting_people[stamp_ns(msg.header.stamp)] = msg
        self._release_people()

    def _on_velocities(self, msg: PointCloud2) -> None:
        topic = self.resolve_topic_name('humans/velocities')
        doubt = publisher_doubt('humans/velocities', ((i.node_name, i.node_namespace) for i in
                                                      self.get_publishers_info_by_topic(topic)),
                                self._people_publisher, self.get_namespace()) if self._people_publisher else ''
        if doubt:
            self._refuse_input(doubt)
            return
        self._velocities[stamp_ns(msg.header.stamp)] = msg
        while len(self._velocities) > STAMP_BUFFER_DEPTH:
            self._velocities.popitem(last=False)
        if self._lockstep:
            self._release_people()

    def _release_people(self) -> None:
        """Lockstep: people whose velocities have arrived go on to be paired with the joints of their tick."""
        for key in sorted(k for k in self._waiting_people if k in self._velocities):
            for _, people, joints in self._joiner.add_left(key, self._waiting_people.pop(key)):
                self._evaluate(people, joint_sample(joints), stamp_to_s(people.header.stamp))
        while len(self._waiting_people) > STAMP_BUFFER_DEPTH:
            self._waiting_people.popitem(last=False)

    def _on_joint_states(self, msg: JointState) -> None:
        self._latest_joints = joint_sample(msg)
        self._controller.on_joint_state(self._latest_joints)
        if self._lockstep:
            for _, people, joints in self._joiner.add_right(stamp_ns(msg.header.stamp), msg):
                self._evaluate(people, joint_sample(joints), stamp_to_s(people.header.stamp))

    def _evaluate(self, people: PoseArray, joints: JointSample | None, now_s: float) -> None:
        self._tick_now_s = now_s
        positions = np.array([(p.position.x, p.position.y, p.position.z) for p in people.poses], dtype=float)
        velocities, covariances = self._velocities_for(people, positions.reshape(-1, 3))
        observation = PeopleObservation(stamp_to_s(people.header.stamp), people.header.frame_id,
                                        positions.reshape(-1, 3), velocities, covariances)
        self._apply(self._controller.on_cycle(observation, joints, now_s), people.header.stamp)
        if self._lockstep:
            self._publish_kpis(people.header.stamp)      # every tick: the run's end is not known here

    def _velocities_for(self, people: PoseArray, positions: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The velocities sent with these people (same stamp, frame, count and positions), or (None,
        None): the monitor then falls back to successive positions, never below the ISO 13855 floor."""
        msg = self._velocities.get(stamp_ns(people.header.stamp))
        if msg is None:
            return None, None
        decoded = velocities_from_cloud(msg)
        if isinstance(decoded, str):
            reason = decoded
        elif msg.header.frame_id != people.header.frame_id or len(decoded[0]) != len(positions) \
                or not np.allclose(decoded[0], positions[:, :2], atol=1e-6, equal_nan=True):
            reason = (f'humans/velocities: {len(decoded[0])} people in {msg.header.frame_id!r} do not match the '
                      f'{len(positions)} of humans in {people.header.frame_id!r}')
        else:
            return decoded[1], decoded[2]
        if reason != self._velocity_refusal:
            self.get_logger().warning(f'{reason}; judged without velocities')
        self._velocity_refusal = reason
        return None, None

    def _on_trajectory_result(self, msg: DiagnosticStatus) -> None:
        if msg.level in (DiagnosticStatus.OK, DiagnosticStatus.ERROR):     # WARN: progress, nothing to do
            self._apply(self._controller.on_motion_result(msg.name, msg.level == DiagnosticStatus.OK, msg.message,
                                                          self._now_s()))

    def _on_contacts(self, msg: DiagnosticArray) -> None:
        contacts, unreadable = contacts_from_msg(msg)
        self._apply(self._controller.on_contacts(contacts, self._now_s(), unreadable))

    def _on_fatigue(self, msg: Float64) -> None:
        self._apply(self._controller.on_fatigue(msg.data, self._now_s()))

    def _on_job_order(self, msg: String) -> None:
        output = self._controller.on_order(msg.data, self._now_s())
        if not output.success:
            self.get_logger().warning(output.message)
        self._apply(output)

    def _on_operator_request(self, request: AddDiagnostics.Request,
                             response: AddDiagnostics.Response) -> AddDiagnostics.Response:
        """A signed operator request (or a login-parameter query); answered, never raised."""
        try:
            response.success, response.message = self._operator_request(request.load_namespace)
        except Exception as exc:     # noqa: BLE001 - answer, and keep the node alive
            self.get_logger().error(f'internal error answering an operator request: {exc!r}')
            response.success, response.message = False, f'internal error: {exc!r}'
        return response

    def _on_cancel_order(self, request: AddDiagnostics.Request,
                         response: AddDiagnostics.Response) -> AddDiagnostics.Response:
        """Cancel a waiting order (the id in load_namespace); a running one is aborted with cell/stop."""
        try:
            output = self._controller.cancel_order(request.load_namespace, self._now_s())
            self._apply(output)
            response.success, response.message = output.success, output.message
        except Exception as exc:     # noqa: BLE001 - answer, and keep the node alive
            self.get_logger().error(f'internal error cancelling an order: {exc!r}')
            response.success, response.message = False, f'internal error: {exc!r}'
        return response

    def _operator_request(self, raw: str) -> tuple[bool, str]:
        if self._verifier is None:
            return False, 'no operator users are configured (supervisor.operator_users_file)'
        login = _login_query(raw)
        if login is not None:
            return True, json.dumps(self._verifier.login_parameters(login))
        checked = self._verifier.verify(raw, time.time_ns())
        if checked.operator is None:
            # Recorded (an fsync'd evidence event) at most once a second: a flood of bad requests must
            # not turn into a flood of disk writes on the safety loop's thread.
            self._refused_requests += 1
            now = time.monotonic()
            if now - self._refused_recorded_s >= 1.0:
                self._refused_recorded_s = now
                reason = checked.reason if self._refused_requests == 1 else \
                    f'{checked.reason} (and {self._refused_requests - 1} more refused since the last record)'
                self._refused_requests = 0
                self.get_logger().warning(f'operator request refused: {reason}')
                self._apply(self._controller.operator_refused(checked.request, checked.user, reason,
                                                              self._now_s()))
            return False, checked.reason
        if checked.request.startswith(MODE_PREFIX):
            output = self._controller.set_mode(Mode(checked.request[len(MODE_PREFIX):]), self._now_s(),
                                               who=checked.operator)
        else:
            output = self._controller.request(checked.request, self._now_s(), who=checked.operator)
        self._apply(output)
        return output.success, output.message

    def _check_arm_speed_fraction(self) -> None:
        """One cell-wide speed fraction: the arm's must equal ours (SSM's stopping data are taken at ours)."""
        future = self._arm_params_future
        if future is not None and not future.done():
            return
        if future is not None:
            values = future.result().values if future.result() is not None else []
            self._arm_params_future = None
            if len(values) == 1 and values[0].type == ParameterType.PARAMETER_DOUBLE:
                arm = values[0].double_value
                refusal = '' if abs(arm - self._speed_fraction) <= 1e-9 else (
                    f'configuration mismatch: max_joint_speed_fraction is {arm:g} on the arm node '
                    f'{self._arm_node!r} but {self._speed_fraction:g} on the supervisor, whose SSM takes its '
                    'stopping data at its own value; set it once for the cell under /** in the cell file')
            else:
                refusal = (f'configuration check: the arm node {self._arm_node!r} does not declare '
                           'max_joint_speed_fraction as a double')
            if refusal and refusal != self._config_refusal:
                self.get_logger().error(refusal)
            self._config_refusal = refusal
            if refusal:
                self._refuse_input(refusal)
        if self._arm_params.service_is_ready():
            self._arm_params_future = self._arm_params.call_async(
                GetParameters.Request(names=['max_joint_speed_fraction']))

    def _refuse_input(self, reason: str) -> None:
        if reason != self._input_error:
            self.get_logger().error(reason)
        self._input_error = reason
        self._apply(self._controller.on_input_refused(reason, self._now_s()))

    # -- guards ---------------------------------------------------------------------------------------
    def _guard(self, callback: Callable) -> Callable:
        """Nothing unexpected kills the safety process: it becomes a protective stop and an ERROR."""
        def guarded(*args):
            try:
                return callback(*args)
            except Exception as exc:     # noqa: BLE001 - the node must survive; the arm is stopped instead
                self.get_logger().error(f'internal error in {callback.__name__}: {exc!r}\n{traceback.format_exc()}')
                self._input_error = f'internal error in {callback.__name__}: {exc!r}'
                self._apply(self._controller.on_input_refused(self._input_error, self._now_s()))
        guarded.__name__ = getattr(callback, '__name__', 'callback')
        return guarded

    def _service(self, call: Callable[[], CellOutput]) -> Callable:
        def handle(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            try:
                output = call()
                self._apply(output)
                response.success, response.message = output.success, output.message
            except Exception as exc:     # noqa: BLE001 - answer, and keep the node alive
                self.get_logger().error(f'internal error answering a request: {exc!r}\n{traceback.format_exc()}')
                response.success, response.message = False, f'internal error: {exc!r}'
            return response
        return handle

    # -- outputs --------------------------------------------------------------------------------------
    def _apply(self, output: CellOutput, stamp=None) -> None:
        if output.state is not None:
            self._state_pub.publish(String(data=output.state.value.lower()))
        for topic, payload in output.displays:
            self._display_pubs[topic].publish(String(data=json.dumps(payload)))
        if output.motion is not None:
            self._publish_motion(output.motion, stamp)
        if output.verdict is not None:
            verdict_stamp = s_to_stamp(output.verdict_stamp_s) if output.verdict_stamp_s is not None else (
                stamp if stamp is not None else s_to_stamp(self._now_s()))
            if not self._lockstep:
                # A watchdog verdict is stamped now; the next people verdict carries its (older) data
                # stamp. The arm reads stamps going back as a clock jump: never publish one backwards.
                # A real clock reset (a restarted twin: far back) is passed on: the arm must see it.
                behind_ns = self._last_verdict_stamp_ns - stamp_ns(verdict_stamp)
                if 0 < behind_ns < CLOCK_JUMP_S * 1e9:
                    verdict_stamp = ns_to_stamp(self._last_verdict_stamp_ns)
                self._last_verdict_stamp_ns = stamp_ns(verdict_stamp)
            self._publish_verdict(output.verdict, verdict_stamp)
        if output.events:      # last: the journal's fsync (ms) must not delay the verdict or the motion
            self._publish_events(output.events)

    def _publish_events(self, events) -> None:
        """Journal, then publish: an event anyone could have seen is on disk (smartcell.io.event_journal)."""
        try:
            texts = self._journal.append([_nulled(e.as_record(self._cell_id, str(uuid.uuid4()))) for e in events])
        except (JournalError, OSError, sqlite3.Error, ValueError) as exc:
            # not published unjournaled: a consumer would hold an event the replay cannot give back
            self.get_logger().error(f'cell events {events[0].seq}..{events[-1].seq} not journaled, not '
                                    f'published: {exc!r}', throttle_duration_sec=5.0)
            return
        for text in texts:
            self._events_pub.publish(String(data=text))

    def _on_replay_request(self, msg: UInt64) -> None:
        self._replay_after = int(msg.data)

    def _replay_page(self) -> None:
        if self._replay_after is None:
            return
        texts = self._journal.after(self._replay_after, REPLAY_PAGE_EVENTS)
        for text in texts:
            self._replay_pub.publish(String(data=text))
        # seq is gapless in the journal: the next page starts right after this one
        self._replay_after = self._replay_after + len(texts) if len(texts) == REPLAY_PAGE_EVENTS else None

    def _publish_motion(self, motion, stamp) -> None:
        msg = JointTrajectory(joint_names=list(motion.joint_names))
        msg.header.stamp = stamp if stamp is not None else s_to_stamp(self._now_s())
        msg.points = [JointTrajectoryPoint(positions=list(motion.positions_rad),
                                           time_from_start=duration_msg(motion.duration_s))]
        times_ns = [p.time_from_start.sec * 10**9 + p.time_from_start.nanosec for p in msg.points]
        msg.header.frame_id = signed_id(motion.motion_id, sign_trajectory(
            self._key, trajectory_id=motion.motion_id, stamp_ns=stamp_ns(msg.header.stamp),
            positions=[list(p.positions) for p in msg.points], times_ns=times_ns))
        self._trajectory_pub.publish(msg)

    def _publish_verdict(self, verdict, stamp) -> None:
        """The verdict, signed for the arm (smartcell.core.safety.authority has the wire format)."""
        self._scale_pub.publish(Float64(data=verdict.speed_scale))
        status = DiagnosticStatus(level=int(safety_level(verdict)), name=VERDICT_STATUS_NAME,
                                  message=verdict.reason, hardware_id=self._cell_id)
        fields = self._controller.verdict_fields(verdict)
        self._sequence += 1
        signature = sign_verdict(self._key, stamp_ns=stamp_ns(stamp), sequence=self._sequence,
                                 speed_scale=verdict.speed_scale, state=verdict.state.value,
                                 motion=str(fields['motion_id']))
        values = verdict_values({**fields, SEQUENCE_KEY: self._sequence, AUTH_KEY: signature})
        status.values = [KeyValue(key=k, value=v) for k, v in values]
        self._verdict_pub.publish(diagnostic_array(stamp, [status]))

    def _publish_kpis(self, stamp=None) -> None:
        stamp = stamp if stamp is not None else self.get_clock().now().to_msg()
        self._kpi_pub.publish(diagnostic_array(stamp, [diagnostic_status(
            'smartcell/cell', self._cell_id, 0, self._controller.state.value.lower(),
            self._controller.kpi_values(self._now_s()))]))

    def _publish_diagnostics(self) -> None:
        reports = self._controller.diagnostics(self._now_s())
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [
            diagnostic_status(r.name, self._cell_id, int(r.level), r.message, dict(r.values)) for r in reports]))

    def on_shutdown(self) -> None:
        self._journal.close()
        self._controller.close()          # flush the evidence log

    def _now_s(self) -> float:
        if self._lockstep:
            return self._tick_now_s     # simulation: the time of the tick being handled
        return self.get_clock().now().nanoseconds * 1e-9


def _recipe_loader(job: str):
    path = Path(job) if ('/' in job or job.endswith('.yaml')) else share_file('config', f'{job}.yaml')
    return load_recipe(path)


def _login_query(raw: str) -> str | None:
    """The user name of a {"login": name} query, else None."""
    try:
        document = json.loads(raw) if len(raw) < 1024 else None
    except ValueError:
        return None
    if isinstance(document, dict) and set(document) == {'login'} and isinstance(document['login'], str):
        return document['login']
    return None


def ns_to_stamp(nanoseconds: int) -> Time:
    return Time(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9)


def _nulled(record: dict) -> dict:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in record.items()}


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


def main(args: list[str] | None = None) -> int:
    return run_node(Supervisor, args)


if __name__ == '__main__':
    raise SystemExit(main())
