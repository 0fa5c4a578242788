"""Supervisor node: cell state machine, safety verdicts (zones + SSM), and the robot's work."""
from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from smartcell.core.cell.states import SERVICE_REQUESTS, CellStateMachine, Event, IllegalTransition, State
from smartcell.core.robot.kinematics import JOINT_NAMES
from smartcell.core.robot.motions import (UR5E_JOINT_LIMITS as LIMITS, MotionLibrary, arrived, motions_for_step,
                                    segment_plan)
from smartcell.core.tasks.job_runner import ShiftConfig, ShiftError, ShiftRunner
from smartcell.core.tasks.recipe import load_recipe
from smartcell.core.node_params import SUPERVISOR
from smartcell.core.params import ConfigError
from smartcell.core.safety.monitor import Mode
from smartcell.core.safety.pipeline import CellKpis, SafetyPipeline, person_near, tool_tip_world
from smartcell.core.safety.verdict import MOTION_KEY, VERDICT_STATUS_NAME, verdict_values
from smartcell.nodes.common import (LATCHED_QOS, LEVEL_ERROR, LEVEL_OK, LEVEL_WARN, STREAM_QOS, declare_parameters,
                                    diagnostic_array, diagnostic_status, duration_msg, run_node, s_to_stamp,
                                    stamp_ns, stamp_to_s)
from smartcell.share import share_file

HANDOVER_POSE = 'present'        # motions.yaml configuration that holds the part out to the person
SAFETY_LEVEL = {'normal': LEVEL_OK, 'reduced': LEVEL_OK, 'protective_stop': LEVEL_WARN,
                'emergency_stop': LEVEL_ERROR, 'fault': LEVEL_ERROR}


class Supervisor(Node):
    """Runs the cell: who may move how fast, what the robot does next, what the cell reports.

    Subscribes: `humans` (geometry_msgs/PoseArray, world frame, m); `joint_states`
    (sensor_msgs/JointState, rad, rad/s); `arm/trajectory_result` (diagnostic_msgs/DiagnosticStatus);
    `arm/mode` (std_msgs/String); `twin/contacts` (diagnostic_msgs/DiagnosticArray, simulation: person-robot
    contacts, each judged against its body region's quasi-static limit; above it -> emergency stop).
    Publishes: `speed_scale` (std_msgs/Float64 latched, [0, 1]); `safety/verdict`
    (diagnostic_msgs/DiagnosticArray, stamp of the people data: mode, state, zone, separation_m,
    protective_distance_m, allowed_speed_mps, speed_scale, reason); `cell/state` (std_msgs/String
    latched); `cell/events` (std_msgs/String, one JSON object per event); `cell/kpi`
    (diagnostic_msgs/DiagnosticArray latched, cumulative shift KPIs); `arm/joint_trajectory`
    (trajectory_msgs/JointTrajectory); `operator/current_step`, `operator/next_step`, `robot/intent`
    (std_msgs/String latched JSON, for the station display); `/diagnostics`.
    Services (std_srvs/Trigger): `cell/start`, `cell/stop`, `cell/pause`, `cell/resume`, `cell/reset`,
    `cell/emergency_stop` — an illegal request answers success=false naming the state and request.
    Parameters: smartcell.core.node_params.SUPERVISOR.
    """

    def __init__(self) -> None:
        super().__init__('supervisor')
        self._config = declare_parameters(self, SUPERVISOR)
        self._cell_id = 'cell'
        self._lockstep = self._config['lockstep']
        self._safety = SafetyPipeline.from_params(
            self._config, self._config['stopping_file'] or share_file('config', 'stopping.yaml'),
            self._config['body_regions_file'] or share_file('config', 'body_regions.yaml'))
        self._cell = CellStateMachine()
        self._motions = MotionLibrary.from_yaml(self._config['motions_file'] or share_file('config', 'motions.yaml'),
                                                LIMITS)
        self._cycle = self._motions.cycle(self._config['cycle_waypoints'])
        self._cycle_index = 0
        self._recipe = self._load_job(self._config['job'])
        self._units = self._config['units']                # a MES order replaces recipe and quantity
        self._base_mode = Mode(self._config['mode'])        # the mode chosen by parameter or service
        self._runner: ShiftRunner | None = None
        self._robot_step: tuple | None = None          # (unit, step_id, remaining configuration names)
        self._human_step: tuple | None = None          # (unit, step_id) shown to the person
        self._fatigue: float | None = None
        self._pending_trajectory = ''       # id of the segment sent and not finished
        self._kpis = CellKpis()
        self._joints: JointState | None = None
        self._people_by_stamp: OrderedDict[int, PoseArray] = OrderedDict()
        self._joints_by_stamp: OrderedDict[int, JointState] = OrderedDict()
        self._last_people_ns = -1
        self._last_verdict_msg: DiagnosticArray | None = None
        self._safety_stopped = False
        self._motion_count = 0
        self._pending_target = np.zeros(len(JOINT_NAMES))
        self._last_motion = ''
        self._tick_now_s = 0.0
        self._people_xy = np.empty((0, 2))     # tracked people of the latest cycle (m, world)
        self._handover_note = ''
        self._handover_xy: np.ndarray | None = None     # where the part is held out (m, world)
        self._intent: dict = {}                # the robot's current step as shown on robot/intent

        self._scale_pub = self.create_publisher(Float64, 'speed_scale', LATCHED_QOS)
        self._verdict_pub = self.create_publisher(DiagnosticArray, 'safety/verdict', STREAM_QOS)
        self._state_pub = self.create_publisher(String, 'cell/state', LATCHED_QOS)
        # Deep and reliable: a burst of events (a job end) must reach the MES bridge whole.
        self._events_pub = self.create_publisher(String, 'cell/events', QoSProfile(
            depth=500, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE))
        self._kpi_pub = self.create_publisher(DiagnosticArray, 'cell/kpi', LATCHED_QOS)
        self._trajectory_pub = self.create_publisher(JointTrajectory, 'arm/joint_trajectory', 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(PoseArray, 'humans', self._on_humans, STREAM_QOS)
        self.create_subscription(JointState, 'joint_states', self._on_joint_states, STREAM_QOS)
        self.create_subscription(DiagnosticStatus, 'arm/trajectory_result', self._on_trajectory_result, 10)
        self.create_subscription(Float64, 'operator/fatigue', self._on_fatigue, LATCHED_QOS)
        self.create_subscription(DiagnosticArray, 'twin/contacts', self._on_contacts, 10)
        self._operator_step_pub = self.create_publisher(String, 'operator/current_step', LATCHED_QOS)
        self._operator_next_pub = self.create_publisher(String, 'operator/next_step', LATCHED_QOS)
        self._next_human_step: dict | None = None
        self._intent_pub = self.create_publisher(String, 'robot/intent', LATCHED_QOS)
        self.create_service(Trigger, 'operator/step_done', self._on_operator_done)
        self.create_subscription(String, 'mes/job_order', self._on_job_order, QoSProfile(
            depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._order_id = ''
        self._seen_orders: set[str] = set()
        for name, event in SERVICE_REQUESTS.items():
            self.create_service(Trigger, f'cell/{name}', self._request_handler(event))
        for mode in Mode:
            self.create_service(Trigger, f'safety/mode/{mode.value}', self._mode_handler(mode))
        # Watchdog: silence on `humans` is a stop; checked at twice the timeout rate.
        if not self._lockstep:
            self.create_timer(self._config['people_timeout_s'] / 2.0, self._on_watchdog)
        self.create_timer(1.0, self._publish_diagnostics)
        if not self._lockstep:
            self.create_timer(1.0, self._publish_kpis)
        self._scale_pub.publish(Float64(data=0.0))
        self._publish_state()

    # -- inputs ---------------------------------------------------------------------------------------
    def _on_humans(self, msg: PoseArray) -> None:
        key = stamp_ns(msg.header.stamp)
        if key <= self._last_people_ns:
            if key == self._last_people_ns and self._last_verdict_msg is not None:
                self._verdict_pub.publish(self._last_verdict_msg)    # a repeated tick: same answer, no new state
            return
        if not self._lockstep:
            self._evaluate(msg, self._joints, self._now_s())
            return
        self._people_by_stamp[key] = msg
        self._pair_lockstep()

    def _on_joint_states(self, msg: JointState) -> None:
        self._joints = msg
        if self._lockstep:
            self._joints_by_stamp[stamp_ns(msg.header.stamp)] = msg
            self._pair_lockstep()

    def _pair_lockstep(self) -> None:
        # Simulation: the people seen at t are judged against the robot at t, whatever arrives first.
        for key in [k for k in self._people_by_stamp if k in self._joints_by_stamp]:
            people = self._people_by_stamp.pop(key)
            joints = self._joints_by_stamp.pop(key)
            self._evaluate(people, joints, stamp_to_s(people.header.stamp))
            for pending in (self._people_by_stamp, self._joints_by_stamp):
                for old in [k for k in pending if k < key]:
                    del pending[old]

    def _on_contacts(self, msg: DiagnosticArray) -> None:
        """Contacts are judged against the quasi-static limits (the stricter reading: the twin cannot
        tell whether the person could get away); above one, the arm gets an emergency stop."""
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            try:
                regions = [name for name in values['body_regions'].split(',') if name]
                force_n = float(values['normal_force_n'])
                verdict = self._safety.report_contact(stamp_to_s(msg.header.stamp), regions, force_n, transient=False,
                                                      source=f'{status.name} on {status.hardware_id}')
            except (KeyError, ValueError) as exc:    # ConfigError is a ValueError: unknown region
                verdict = None
                self._safety.emergency_stop(self._now_s(), f'unreadable contact report {status.name!r}: {exc}')
            self._emit_safety_events()
            if verdict is None or not verdict.within_limit:
                self._publish_verdict(self._safety.last_verdict)
                try:
                    self._handle(Event.EMERGENCY_STOP, self._safety.last_verdict.reason)
                except IllegalTransition:
                    pass        # already in emergency stop: the safety latch above is what counts

    def _on_watchdog(self) -> None:
        verdict = self._safety.on_silence(self._now_s())
        if verdict is not None:
            self._publish_verdict(verdict)
            self._react_to_safety(verdict)

    def _on_trajectory_result(self, msg: DiagnosticStatus) -> None:
        if msg.name != self._pending_trajectory:
            return
        if msg.level == DiagnosticStatus.ERROR:
            self._pending_trajectory = ''
            self._emit('fault', reason=f'arm refused motion: {msg.message}')
            self._handle(Event.FAULT_DETECTED, msg.message)
        elif msg.level == DiagnosticStatus.OK and not self._lockstep:
            self._motion_done()

    def _check_arrival(self, joints: JointState | None) -> None:
        """Lockstep: a motion is done at the tick its joint state reaches the target (deterministic),
        not when the result message happens to arrive."""
        arrays = joint_arrays(joints)
        if not self._pending_trajectory or arrays is None:
            return
        _, q, qd = arrays
        if arrived(q, qd, self._pending_target):
            self._motion_done()

    def _motion_done(self) -> None:
        self._pending_trajectory = ''
        if self._runner is not None:
            self._robot_segment_done()
            return
        self._cycle_index += 1
        if self._cycle_index % len(self._cycle) == 0:
            self._kpis.cycles += 1
            self._emit('unit_complete', unit=self._kpis.cycles, good=True)

    def _robot_segment_done(self) -> None:
        unit, step_id, remaining = self._robot_step
        if remaining[1:]:
            self._robot_step = (unit, step_id, remaining[1:])
            return
        self._robot_step = None
        self._step_done(unit, step_id, 'robot')

    def _step_done(self, unit: int, step_id: str, executor: str) -> None:
        done_before = self._runner.kpis(self._now_s()).units_done
        self._runner.step_done(step_id, unit, executor, self._now_s())
        kpis = self._runner.kpis(self._now_s())
        if kpis.units_done > done_before:
            self._emit('unit_complete', unit=unit, cycle_time_s=kpis.cycle_times_s[-1], good=True,
                       order_id=self._order_id)
        if self._runner.finished:
            self._emit('job_complete', produced=kpis.units_done, good=kpis.units_done, scrap=0,
                       order_id=self._order_id)
            self._handle(Event.JOB_COMPLETE, 'all units done')
            self._handle(Event.STOPPED, 'arm at rest')

    def _on_operator_done(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._runner is None or self._human_step is None:
            response.success, response.message = False, 'no step is waiting for the operator'
            return response
        unit, step_id = self._human_step
        try:
            self._step_done(unit, step_id, 'human')
        except ShiftError as exc:
            self.get_logger().warning(f'operator acknowledgement refused: {exc}')
            response.success, response.message = False, str(exc)
            return response
        self.get_logger().info(f'operator finished step {step_id!r} of unit {unit}')
        # _human_step stays until the next dispatch publishes what the person does now (maybe nothing)
        response.success, response.message = True, f'step {step_id!r} of unit {unit} done'
        return response

    def _on_job_order(self, msg: String) -> None:
        """An order validated by the MES bridge: accepted when the cell is idle and knows the product."""
        try:
            order = json.loads(msg.data)
            order_id, work_master, quantity = order['order_id'], order['work_master'], int(order['quantity'])
        except (ValueError, KeyError, TypeError) as exc:
            self.get_logger().error(f'malformed job order {msg.data[:200]!r}: {exc}')
            return
        if order_id in self._seen_orders:
            return                          # transient-local redelivery after a restart of either side
        self._seen_orders.add(order_id)
        reason = ''
        if self._cell.state is not State.IDLE:
            reason = f'the cell is {self._cell.state.value.lower()}, orders are accepted when idle'
        else:
            try:
                recipe = self._load_job(f'job_{work_master}')
            except (ConfigError, FileNotFoundError) as exc:
                reason = f'unknown product {work_master!r}: {exc}'
        if reason:
            self._emit('job_rejected', order_id=order_id, reason=reason)
            return
        self._recipe, self._order_id, self._units = recipe, order_id, quantity
        self._emit('job_accepted', order_id=order_id, work_master=work_master, quantity=quantity)

    def _on_fatigue(self, msg: Float64) -> None:
        self._fatigue = msg.data
        if self._runner is not None:
            self._runner.on_fatigue(msg.data, self._now_s())

    def _load_job(self, job: str):
        if not job:
            return None
        path = Path(job) if ('/' in job or job.endswith('.yaml')) else share_file('config', f'{job}.yaml')
        recipe = load_recipe(path)
        for step in recipe.steps:          # every robot-capable step must have arm configurations
            if step.actor != 'human':
                motions_for_step(step.station, step.kind, self._motions)
        return recipe

    # -- the cycle -------------------------------------------------------------------------------------
    def _evaluate(self, people: PoseArray, joints: JointState | None, now_s: float) -> None:
        self._last_people_ns = stamp_ns(people.header.stamp)
        self._tick_now_s = now_s
        people_data = people_arrays(people)
        self._people_xy = people_data[2][:, :2]
        verdict = self._safety.evaluate(people_data, joint_arrays(joints), now_s)
        self._emit_safety_events()
        self._react_to_safety(verdict)
        self._kpis.account(verdict.speed_scale, verdict.separation_m, stamp_to_s(people.header.stamp),
                           self._cell.state in (State.RUNNING, State.PROTECTIVE_STOP))
        if self._lockstep:
            self._check_arrival(joints)
        self._drive_robot(joints)
        self._publish_verdict(verdict, people.header.stamp)    # after the motion it may name
        if self._lockstep:
            self._publish_kpis(people.header.stamp)            # every tick: the run's end is not known here

    def _publish_kpis(self, stamp=None) -> None:
        stamp = stamp if stamp is not None else self.get_clock().now().to_msg()
        self._kpi_pub.publish(diagnostic_array(stamp, [diagnostic_status(
            'smartcell/cell', self._cell_id, LEVEL_OK, self._cell.state.value.lower(), self._all_kpis())]))

    def _all_kpis(self) -> dict[str, object]:
        values = dict(self._kpis.as_dict())
        if self._runner is not None:
            values.update(shift_kpi_values(self._runner.kpis(self._now_s())))
        return values

    def _react_to_safety(self, verdict) -> None:
        stopped = verdict.state.value in ('protective_stop', 'fault', 'emergency_stop')
        if stopped != self._safety_stopped:
            self._safety_stopped = stopped
            if stopped:
                if self._cell.state is State.RUNNING:
                    self._kpis.protective_stops += 1
                self._emit('safety_stop', reason=verdict.reason)
                self._handle(Event.SAFETY_STOP, verdict.reason)
            else:
                self._emit('safety_clear')
                self._handle(Event.SAFETY_CLEAR, 'protective zone clear and safety data fresh')
                self._pending_trajectory = ''     # re-plan the interrupted motion from the actual position
        if self._config['auto_start'] and not self._kpis.started and self._cell.state is State.IDLE:
            self._kpis.started = True
            self._handle(Event.START, 'auto_start')
            self._handle(Event.STARTED, 'cell ready')

    def _drive_robot(self, joints: JointState | None) -> None:
        if self._runner is not None and self._cell.state in (State.RUNNING, State.PROTECTIVE_STOP):
            # The person keeps working while the arm is held by a protective stop (often because
            # the person is right there); the arm's next motion waits for the speed scale.
            self._drive_job()
        if self._cell.state is not State.RUNNING or joints is None:
            return
        if self._pending_trajectory:
            return
        arrays = joint_arrays(joints)
        if arrays is None:
            return
        if self._runner is not None:
            if self._robot_step is None:
                return
            name = self._robot_step[2][0]
            if name == HANDOVER_POSE and not self._person_at_handover():
                return          # hold the part back until somebody is there to take it
        else:
            name = self._cycle[self._cycle_index % len(self._cycle)]
        self._send_motion(arrays[1], self._motions.configurations[name])

    def _person_at_handover(self) -> bool:
        if self._handover_xy is None:      # fixed pose and base: once
            self._handover_xy = tool_tip_world(self._motions.configurations[HANDOVER_POSE], self._safety.base)[:2]
        present = person_near(self._people_xy, self._handover_xy, self._config['handover_presence_m'])
        radius = self._config['handover_presence_m']
        waiting = '' if present else f'handover: waiting for a person within {radius:g} m of the part'
        if waiting != self._handover_note:
            self._handover_note = waiting
            self.get_logger().info(waiting or 'handover: person there, presenting the part')
            self._intent = {**self._intent, 'waiting': waiting}
            self._intent_pub.publish(String(data=json.dumps(self._intent)))     # tell the display why
        return present

    def _drive_job(self) -> None:
        actions = self._runner.next_actions(self._now_s())
        robot = actions.robot
        self._collaborate_for_handover(robot is not None and robot.handover)
        if robot is not None and (self._robot_step is None or self._robot_step[:2] != (robot.unit, robot.step_id)):
            self._robot_step = (robot.unit, robot.step_id, motions_for_step(robot.station, robot.kind, self._motions))
            self._intent = {'unit': robot.unit, 'step': robot.step_id, 'station': robot.station, 'kind': robot.kind,
                            'handover': robot.handover, 'expected_end_s': robot.expected_end_s, 'waiting': ''}
            self._intent_pub.publish(String(data=json.dumps(self._intent)))
        upcoming = self._runner.upcoming('human')
        next_step = {} if upcoming is None else {
            'unit': upcoming.unit, 'step': upcoming.step_id, 'station': upcoming.station,
            'kind': self._runner.recipe.by_id[upcoming.step_id].kind, 'handover': upcoming.actor == 'both',
            'planned_start_s': upcoming.start_s, 'planned_end_s': upcoming.end_s}
        if next_step != self._next_human_step:
            self._next_human_step = next_step
            self._operator_next_pub.publish(String(data=json.dumps(next_step)))
        human = actions.human
        key = None if human is None else (human.unit, human.step_id)
        if key != self._human_step:
            self._human_step = key
            self._operator_step_pub.publish(String(data=json.dumps({} if human is None else {
                'unit': human.unit, 'step': human.step_id, 'station': human.station, 'kind': human.kind,
                'handover': human.handover, 'started_s': human.started_s,
                'expected_end_s': human.expected_end_s, 'note': actions.human_note})))

    def _collaborate_for_handover(self, handover: bool) -> None:
        """A handover needs the person within the separation distance: for its duration the cell runs
        in COLLABORATIVE mode (PFL speed caps instead of the separation stop), then returns to the
        operator-chosen mode. Only from AUTOMATIC; a T1 (manual reduced) choice is never overridden."""
        current = self._safety.last_verdict.mode if self._safety.last_verdict else Mode(self._config['mode'])
        wanted = Mode.COLLABORATIVE if handover and self._base_mode is Mode.AUTOMATIC else self._base_mode
        if wanted is not current:
            self._publish_verdict(self._safety.set_mode(wanted, self._now_s()))
            self._emit_safety_events()
            self._emit('mode_change', mode=wanted.value, previous=current.value,
                       reason='handover step' if handover else 'handover done')

    def _send_motion(self, actual, target) -> None:
        plan = segment_plan(actual, target, LIMITS, self._config['nominal_speed_fraction'])
        self._motion_count += 1
        self._pending_trajectory = self._last_motion = f'motion-{self._motion_count}'
        self._pending_target = np.asarray(target, dtype=float)
        msg = JointTrajectory(joint_names=list(JOINT_NAMES))
        msg.header.frame_id = self._pending_trajectory
        msg.points = [JointTrajectoryPoint(positions=plan.positions_rad[0].tolist(),
                                           time_from_start=duration_msg(plan.times_s[0]))]
        self._trajectory_pub.publish(msg)

    # -- requests ---------------------------------------------------------------------------------------
    def _request_handler(self, event: Event):
        def handle(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            try:
                transition = self._handle(event, 'requested by service')
            except IllegalTransition as exc:
                response.success, response.message = False, str(exc)
                return response
            if self._cell.state is State.STARTING:
                self._handle(Event.STARTED, 'cell ready')
            if event is Event.EMERGENCY_STOP:
                self._safety.emergency_stop(self._now_s(), 'emergency stop requested')
            elif event is Event.RESET:
                self._safety.reset(self._now_s())
            response.success = True
            response.message = f'{transition.source.value.lower()} -> {self._cell.state.value.lower()}'
            return response
        return handle

    def _mode_handler(self, mode: Mode):
        def handle(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            before = self._safety.last_verdict.mode.value if self._safety.last_verdict else self._config['mode']
            self._base_mode = mode
            verdict = self._safety.set_mode(mode, self._now_s())
            self._publish_verdict(verdict)
            self._emit_safety_events()
            self._emit('mode_change', mode=mode.value, previous=before)
            response.success, response.message = True, f'safety mode {before} -> {mode.value}'
            return response
        return handle

    def _emit_safety_events(self) -> None:
        for event in self._safety.drain_events():
            self._emit('safety_event', kind=event.kind, reason=event.reason, state=event.state.value,
                       zone=event.zone, speed_scale=event.speed_scale)

    def _handle(self, event: Event, reason: str):
        before = self._cell.state
        transition = self._cell.handle(event, self._now_s(), reason)
        if event is Event.START and self._recipe is not None:
            self._runner = ShiftRunner(self._recipe, self._units, now_s=self._now_s(), config=ShiftConfig(
                late_threshold_s=self._config['late_threshold_s'], fatigue_high=self._config['fatigue_high'],
                fatigue_low=self._config['fatigue_low']))
            self._robot_step = self._human_step = None
            self._emit('job_started', job=self._recipe.job, units=self._units, order_id=self._order_id)
            if self._fatigue is not None:
                self._runner.on_fatigue(self._fatigue, self._now_s())
        elif self._runner is not None and event is Event.SAFETY_STOP:
            self._runner.on_protective_stop(self._now_s())
        elif self._runner is not None and event is Event.SAFETY_CLEAR:
            self._runner.on_safety_clear(self._now_s())
        if self._cell.state is not before:
            self._emit('state_change', **{'from': before.value.lower(), 'to': self._cell.state.value.lower(),
                                          'reason': reason})
            self._publish_state()
        return transition

    # -- outputs ----------------------------------------------------------------------------------------
    def _publish_verdict(self, verdict, stamp=None) -> None:
        stamp = stamp if stamp is not None else s_to_stamp(self._now_s())
        self._scale_pub.publish(Float64(data=verdict.speed_scale))
        status = DiagnosticStatus(level=SAFETY_LEVEL.get(verdict.state.value, LEVEL_ERROR), name=VERDICT_STATUS_NAME,
                                  message=verdict.reason, hardware_id=self._cell_id)
        fields = {**self._safety.verdict_fields(verdict), MOTION_KEY: self._last_motion}
        status.values = [KeyValue(key=k, value=v) for k, v in verdict_values(fields)]
        msg = diagnostic_array(stamp, [status])
        self._last_verdict_msg = msg
        self._verdict_pub.publish(msg)

    def _publish_state(self) -> None:
        self._state_pub.publish(String(data=self._cell.state.value.lower()))

    def _emit(self, event_type: str, **fields) -> None:
        record = {'event_id': str(uuid.uuid4()), 'cell_id': self._cell_id, 'type': event_type,
                  'stamp': self._now_s(), **fields}
        self._events_pub.publish(String(data=json.dumps(record)))

    def _publish_diagnostics(self) -> None:
        verdict = self._safety.last_verdict
        level = SAFETY_LEVEL.get(verdict.state.value, LEVEL_ERROR) if verdict else LEVEL_WARN
        message = (verdict.reason or verdict.state.value) if verdict else 'no people data yet'
        statuses = [
            diagnostic_status('smartcell/supervisor/safety', self._cell_id, level, message,
                              self._safety.verdict_fields(verdict) if verdict else {}),
            diagnostic_status('smartcell/supervisor/cell', self._cell_id,
                              LEVEL_ERROR if self._cell.state.value in ('fault', 'emergency_stop') else LEVEL_OK,
                              self._cell.state.value.lower(), self._all_kpis()),
        ]
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), statuses))

    def on_shutdown(self) -> None:
        self._safety.close()          # flush the evidence log

    def _now_s(self) -> float:
        if self._lockstep:
            return self._tick_now_s     # simulation: the time of the tick being handled
        return self.get_clock().now().nanoseconds * 1e-9


def shift_kpi_values(kpis) -> dict[str, object]:
    cycles = np.asarray(kpis.cycle_times_s, dtype=float)
    return {'units_completed': kpis.units_done,
            'cycle_time_mean_s': float(cycles.mean()) if len(cycles) else float('nan'),
            'cycle_time_std_s': float(cycles.std()) if len(cycles) else float('nan'),
            'robot_utilisation': kpis.robot_utilisation, 'human_utilisation': kpis.human_utilisation,
            'robot_idle_s': kpis.robot_idle_s, 'human_idle_s': kpis.human_idle_s,
            'replans': kpis.replans, 'reallocated_steps': kpis.reallocated_steps}


def people_arrays(msg: PoseArray) -> tuple[float, str, np.ndarray]:
    """(stamp s, frame, positions (N, 3) m): NaN and all are passed on; the core judges them."""
    positions = np.array([(p.position.x, p.position.y, p.position.z) for p in msg.poses], dtype=float)
    return stamp_to_s(msg.header.stamp), msg.header.frame_id, positions.reshape(-1, 3)


def joint_arrays(msg: JointState | None) -> tuple[float, np.ndarray, np.ndarray] | None:
    """(stamp s, positions rad, velocities rad/s) in the arm's joint order, or None when unusable."""
    if msg is None:
        return None
    index = {name: i for i, name in enumerate(msg.name)}
    if any(name not in index for name in JOINT_NAMES) or len(msg.position) != len(msg.name):
        return None
    order = [index[name] for name in JOINT_NAMES]
    velocity = np.asarray(msg.velocity, dtype=float)[order] if len(msg.velocity) == len(msg.name) \
        else np.zeros(len(JOINT_NAMES))
    return stamp_to_s(msg.header.stamp), np.asarray(msg.position, dtype=float)[order], velocity


def main(args: list[str] | None = None) -> int:
    return run_node(Supervisor, args)


if __name__ == '__main__':
    raise SystemExit(main())
