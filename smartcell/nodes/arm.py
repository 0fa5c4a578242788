"""Arm node: one interface to the cobot over two backends (the PyBullet twin or a vendor driver)."""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Protocol

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.expand_topic_name import expand_topic_name
from rclpy.node import Node
from sensor_msgs.msg import JointState, TimeReference
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from smartcell.core.node_params import ARM
from smartcell.core.params import ConfigError
from smartcell.core.robot.command_validation import (ClockGuard, HoldLatch, Invalid, NamedMotionWatch, TrajectoryInput,
                                                     validate_trajectory_points, validate_verdict)
from smartcell.core.robot.kinematics import JOINT_NAMES
from smartcell.core.robot.motions import UR5E_JOINT_LIMITS, speed_limited
from smartcell.core.robot.trajectory import ArmMode, ScaleRamp, TrajectoryExecutor, TrajectoryRejected
from smartcell.core.safety.authority import (CellKeyError, SeenSignatures, SequenceGuard, default_cell_key_path,
                                             load_or_create_cell_key, split_signed_id, verify_trajectory,
                                             verify_verdict)
from smartcell.core.safety.graph import CommandPublisherCheck
from smartcell.core.safety.pfl import RATED_STOP_REASON
from smartcell.core.safety.verdict import VERDICT_STATUS_NAME
from smartcell.core.stamp_join import ExactStampJoiner
from smartcell.nodes.common import (LATCHED_QOS, LEVEL_ERROR, LEVEL_OK, LEVEL_WARN, STREAM_PUB_QOS, STREAM_QOS,
                                    declare_config, diagnostic_array, diagnostic_status, duration_msg, guarded,
                                    joint_state_sample, command_publishers, run_node, stamp_ns, steady_clock)

# A gap between two joint states longer than this advances the path by this much only: a stamp
# jumping forward must never fast-forward the arm along its path (the twin ticks at 25-40 Hz).
MAX_TICK_DT_S = 0.1
MAX_PARKED_TRAJECTORIES = 4       # trajectories kept while two endpoints carry the supervisor's name
MAX_QUEUED_MOTIONS = 16           # signed trajectories waiting for the verdict that names them
LOCKSTEP_DEPTH = 64               # lockstep: unpaired twin states kept (as many verdicts); the twin runs at most
                                  # lockstep_lag_ticks ahead of the arm's commands, so a few wait at a time
AUTHORITY_CHECK_PERIOD_S = 0.1    # steady seconds between ROS graph checks of the command topics
# A trajectory and the verdict naming it leave the supervisor in the same cycle; on a busy machine DDS
# delivers the trajectory within milliseconds, so a named motion still missing after this long (steady s)
# never comes: reported lost, the cell plans again (NamedMotionWatch).
LOST_MOTION_GRACE_S = 2.0
VERDICT_TOPIC = 'safety/verdict'
TRAJECTORY_TOPIC = 'arm/joint_trajectory'
RESUME_SERVICE = 'arm/resume'


class ArmBackend(Protocol):
    """Where set-points go and measured joint states come from; chosen once at start-up."""

    allow_extra_joints: bool      # a vendor driver may publish more joints (a gripper) than the arm's six

    def relay(self, msg: JointState) -> None:
        """Pass a validated measured state on to the cell (the sim backend republishes it)."""

    def send(self, q_rad: np.ndarray, qd_radps: np.ndarray, stamp: Time) -> None:
        """Command one set-point."""


class SimBackend:
    """The PyBullet twin: state from `twin/joint_states`, set-points on `twin/joint_command`."""

    allow_extra_joints = False

    def __init__(self, node: Node, on_state: Callable[[JointState], None],
                 on_robot_stop: Callable[[DiagnosticArray], None]) -> None:
        self._state_pub = node.create_publisher(JointState, 'joint_states', STREAM_PUB_QOS)
        self._command_pub = node.create_publisher(JointState, 'twin/joint_command', STREAM_PUB_QOS)
        node.create_subscription(JointState, 'twin/joint_states', on_state, STREAM_QOS)
        # The simulated cobot's own safety function (its rated force limit) reports on the contacts; a
        # vendor driver reports it in its own status messages (UR: safety_mode), not handled here.
        node.create_subscription(DiagnosticArray, 'twin/contacts', on_robot_stop, 10)

    def relay(self, msg: JointState) -> None:
        self._state_pub.publish(msg)

    def send(self, q_rad: np.ndarray, qd_radps: np.ndarray, stamp: Time) -> None:
        command = JointState(name=list(JOINT_NAMES), position=q_rad.tolist(), velocity=qd_radps.tolist())
        command.header.stamp = stamp
        self._command_pub.publish(command)


class Ros2ControlBackend:
    """A vendor driver: state from its joint states, one streamed point per control tick to its
    joint trajectory controller. Ticks on a steady clock (the driver runs in real time)."""

    allow_extra_joints = True

    def __init__(self, node: Node, config: Any, on_state: Callable[[JointState], None],
                 on_tick: Callable[[], None]) -> None:
        # config: the arm's frozen config (ARM.config()); the stream_*, control_* and topic fields
        self._horizon_s = config.stream_horizon_s
        self._controller_pub = node.create_publisher(JointTrajectory, config.controller_topic, 10)
        node.create_subscription(JointState, config.driver_joint_states_topic, on_state, STREAM_QOS)
        node.create_timer(1.0 / config.control_rate_hz, on_tick, clock=steady_clock())

    def relay(self, msg: JointState) -> None:
        """The driver publishes the cell's joint states itself."""

    def send(self, q_rad: np.ndarray, qd_radps: np.ndarray, stamp: Time) -> None:
        point = JointTrajectoryPoint(positions=q_rad.tolist(), velocities=qd_radps.tolist(),
                                     time_from_start=duration_msg(self._horizon_s))
        self._controller_pub.publish(JointTrajectory(joint_names=list(JOINT_NAMES), points=[point]))


class Arm(Node):
    """The cobot behind one interface.

    Subscribes: `arm/joint_trajectory` (trajectory_msgs/JointTrajectory: UR5e joint names, positions
    in rad, time_from_start; started from the actual position, refused with a reason when it leaves
    the joint position or velocity limits); `safety/verdict` (diagnostic_msgs/DiagnosticArray: the
    speed scale to apply; a missing, malformed or late verdict stops the arm: deadman, on a steady
    clock that sim time cannot stop); sim backend: `twin/contacts` (a status with rated_force_stop
    true: the simulated cobot's own force limit stopped it; the trajectory is aborted and the arm
    holds where it stands until the next one. Unsigned: a stray publisher can only stop the arm).
    Command authority (require_authenticated_commands, default): a verdict counts only when it is
    signed with the cell key, its sequence is above the last one accepted and `supervisor_node` is
    the one publisher of `safety/verdict` on the ROS graph; a trajectory only when it is signed
    (header.frame_id `<motion-id>#<hex>`, see smartcell.core.safety.authority), not a replay,
    `supervisor_node` is the one publisher of `arm/joint_trajectory`, and a verified verdict names
    its motion id. Anything else, a malformed input, an internal error or a stamp jumping backwards
    holds the arm (speed limit 0) with an ERROR on /diagnostics naming the reason or the stray node.
    sim backend: `twin/joint_states` (sensor_msgs/JointState). ros2_control backend: the driver's
    joint states (`driver_joint_states_topic`).
    Publishes: `joint_states` (sim backend, validated relay; sensor_msgs/JointState, rad, rad/s, N·m);
    sim: `twin/joint_command` (sensor_msgs/JointState position/velocity set-points);
    ros2_control: `controller_topic` (trajectory_msgs/JointTrajectory, one streamed point);
    `arm/mode` (std_msgs/String latched: idle, executing, paused, stopping, held, fault);
    `arm/trajectory_result` (diagnostic_msgs/DiagnosticStatus: name = trajectory id (header.frame_id of
    the request without its signature), level OK succeeded / WARN preempted / ERROR rejected,
    message = reason; real time: a motion the verdicts name for LOST_MOTION_GRACE_S without its
    trajectory arriving, e.g. one sent while this node was restarting, gets ERROR `aborted: ...`, so
    the supervisor plans it again instead of waiting for it);
    `arm/speed_limit_applied` (sensor_msgs/TimeReference: header.stamp when the scale was applied,
    time_ref = the verdict stamp, source = the scale) — for latency measurement;
    `/diagnostics`.
    Services (std_srvs/Trigger): `arm/stop` controlled stop, category 2 (decelerate along the path,
    then hold position; anyone may stop the arm); `arm/resume` release it (authenticated: refused
    unless `supervisor_node` is the only client of the service on the graph).
    Parameters: smartcell.core.node_params.ARM.
    """

    def __init__(self) -> None:
        super().__init__('arm')
        self._config = declare_config(self, ARM)
        self._lockstep = self._config.lockstep and self._config.backend == 'sim'
        self._authenticated = self._config.require_authenticated_commands
        self._key = self._load_key() if self._authenticated else b''
        self._supervisor = self._config.supervisor_node
        initial = np.asarray(self._config.initial_positions_rad, dtype=float)
        if len(initial) != len(JOINT_NAMES):
            raise ConfigError(f'initial_positions_rad needs {len(JOINT_NAMES)} values, got {len(initial)}')
        self._executor = TrajectoryExecutor(
            speed_limited(UR5E_JOINT_LIMITS, self._config.max_joint_speed_fraction),
            ScaleRamp(self._config.scale_ramp_down_per_s, self._config.scale_ramp_up_per_s), initial)
        self._actual = initial
        self._robot_stopped = ''          # why the robot stopped itself (the twin's rated force limit), until handled
        # Real time: nothing is commanded before the arm's own position is known, and then it is held
        # there. A restarted arm node used to command initial_positions_rad at once: the arm swept from
        # where it stood to home, through the hands of a person taking a part at the handover.
        self._measured = self._lockstep
        self._last_tick_s: float | None = None
        self._last_verdict_rx_s: float | None = None      # steady (monotonic) seconds
        self._verdict_scale = 0.0
        self._verdict_motion = ''
        self._deadman_reason = 'no safety verdict received yet'
        self._holds = HoldLatch(self._config.input_fault_hold_s)
        self._clock_guard = ClockGuard(('joint_states', 'verdict'),
                                       int(self._config.clock_jump_tolerance_s * 1e9))
        self._sequence = SequenceGuard()
        self._motion_watch = NamedMotionWatch(LOST_MOTION_GRACE_S)
        self._lost_motions = 0
        self._seen_trajectories = SeenSignatures()
        self._trajectory_id = ''
        self._mode: ArmMode | None = None
        self._rejections = 0
        self._verdicts_refused = 0
        # Lockstep: the twin state of tick t (positions, stamp) waits for the verdict of tick t (scale,
        # motion id) and back; a tick at or before the last one handled is never handled again.
        self._ticks: ExactStampJoiner[tuple[np.ndarray, Time], tuple[float, str]] = \
            ExactStampJoiner(LOCKSTEP_DEPTH, drop_stale=True)
        self._queued_motions: OrderedDict[str, TrajectoryInput] = OrderedDict()
        self._refused_motions: OrderedDict[str, None] = OrderedDict()
        self._parked: list[JointTrajectory] = []      # trajectories waiting for one supervisor on the graph
        self._loaded_motion = ''

        self._mode_pub = self.create_publisher(String, 'arm/mode', LATCHED_QOS)
        self._result_pub = self.create_publisher(DiagnosticStatus, 'arm/trajectory_result', 10)
        self._applied_pub = self.create_publisher(TimeReference, 'arm/speed_limit_applied', STREAM_PUB_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._subscriptions_by_topic = {
            TRAJECTORY_TOPIC: self.create_subscription(JointTrajectory, TRAJECTORY_TOPIC,
                                                       self._guard(self._on_trajectory), 10),
            VERDICT_TOPIC: self.create_subscription(DiagnosticArray, VERDICT_TOPIC, self._guard(self._on_verdict),
                                                    STREAM_QOS)}
        self.create_service(Trigger, 'arm/stop', self._guard(self._on_stop))
        self.create_service(Trigger, RESUME_SERVICE, self._guard(self._on_resume))
        on_state = self._guard(self._on_measured)
        self._backend: ArmBackend = (SimBackend(self, on_state, self._guard(self._on_twin_contacts))
                                     if self._config.backend == 'sim' else
                                     Ros2ControlBackend(self, self._config, on_state,
                                                        self._guard(self._on_control_tick)))
        steady = steady_clock()
        if not self._lockstep:
            # In lockstep every tick needs a verdict of its own stamp, so silence stalls the twin instead.
            self.create_timer(self._config.deadman_timeout_s / 4.0, self._guard(self._check_deadman),
                              clock=steady)
        if self._authenticated:
            self.create_timer(AUTHORITY_CHECK_PERIOD_S, self._guard(self._check_graph), clock=steady)
        self.create_timer(1.0, self._guard(self._publish_diagnostics), clock=steady)
        self._publish_mode()

    def _load_key(self) -> bytes:
        path = self._config.cell_key_file
        try:
            return load_or_create_cell_key(path or default_cell_key_path(self._config.cell_id))
        except (CellKeyError, OSError) as exc:
            raise ConfigError(f'arm.cell_key_file: {exc}') from exc

    # -- guards ------------------------------------------------------------------------------
    def _guard(self, callback: Callable) -> Callable:
        return guarded(callback, self._on_callback_error)

    def _on_callback_error(self, name: str, exc: BaseException) -> None:
        self.get_logger().error(f'{name} failed: {exc!r}; holding the arm')
        self._hold('internal', f'internal error in {name}: {exc!r}')

    def _hold(self, source: str, reason: str) -> None:
        """Stop (speed limit 0) for `reason`; released input_fault_hold_s after it last recurred."""
        if self._holds.trip(source, reason, time.monotonic()):
            self.get_logger().error(f'holding the arm: {reason}')
            self._publish_diagnostics()
        self._executor.set_speed_limit(0.0)

    def _hold_reason(self) -> str:
        return '; '.join(r for r in (self._clock_guard.hold_reason, self._holds.reason(time.monotonic())) if r)

    def _apply_limit(self) -> None:
        """The verdict's scale unless a hold or the deadman says stop."""
        stop = self._hold_reason() or self._deadman_expired(time.monotonic())
        self._executor.set_speed_limit(0.0 if stop else self._verdict_scale)

    def _check_graph(self) -> None:
        """A stray or second publisher on a command topic holds the arm even while it is silent."""
        for topic in (VERDICT_TOPIC, TRAJECTORY_TOPIC):
            check = self._command_publishers_of(topic, allow_none=True)
            if check.problem and not check.pending:
                self._hold(f'publishers of {topic}', check.problem)
        if self._parked and not self._command_publishers_of(TRAJECTORY_TOPIC).ambiguous:
            parked, self._parked = self._parked, []
            for msg in parked:          # one supervisor again: judged like any trajectory (a stray is refused)
                self._on_trajectory(msg)

    def _command_publishers_of(self, topic: str, allow_none: bool = False) -> CommandPublisherCheck:
        return command_publishers(self, topic, self._supervisor, self._subscriptions_by_topic[topic], allow_none)

    # -- inputs ------------------------------------------------------------------------------
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        motion_id, signature = split_signed_id(msg.header.frame_id) if self._authenticated \
            else (msg.header.frame_id, None)
        if not self._lockstep and not self._motion_watch.received(motion_id):
            self._refuse(motion_id, 'arrived after it was reported lost: the cell has planned again without it',
                         hold=False)
            return
        check = self._command_publishers_of(TRAJECTORY_TOPIC) if self._authenticated else CommandPublisherCheck()
        # No writer named yet (start-up discovery lags the data by a few ms): the signature below
        # decides. Holding here would tie the lockstep simulation to wall-clock discovery timing.
        problem = '' if check.pending else check.problem
        if check.ambiguous:
            # The supervisor and an endpoint not told apart from it yet: most often a restart (the dead
            # process stays listed until its DDS lease runs out; the new one's endpoint is unnamed for a
            # few ms). Keep the trajectory, hold, and judge it once the graph has settled: a stranger is
            # then named and refused.
            self._park(motion_id, msg, problem)
            return
        if problem:
            self._refuse(motion_id, f'not from the supervisor: {problem}', hold=True)
            return
        parsed = validate_trajectory_points(
            list(msg.joint_names), [list(p.positions) for p in msg.points],
            [(p.time_from_start.sec, p.time_from_start.nanosec) for p in msg.points])
        if isinstance(parsed, Invalid):
            self._refuse(motion_id, f'rejected: {parsed.reason}', hold=True)
            return
        if self._authenticated:
            reason = verify_trajectory(self._key, trajectory_id=motion_id, stamp_ns=stamp_ns(msg.header.stamp),
                                       positions=parsed.plan.positions_rad.tolist(), times_ns=parsed.times_ns,
                                       signature=signature)
            if reason is not None or signature is None:     # verify_trajectory names a missing signature
                reason = reason or 'is not signed (no auth)'
            elif signature in self._seen_trajectories:
                reason = f'trajectory {motion_id!r} was accepted before (a replay)'
            else:
                self._seen_trajectories.add(signature)      # authentic and new: a second copy is a replay
            if reason:
                self._refuse(motion_id, f'not authenticated: {reason}', hold=True)
                return
        if not (self._lockstep or self._authenticated):
            self._load(motion_id, parsed)
            return
        # A motion starts only when a verdict names it: in lockstep at that verdict's tick (runs repeat
        # exactly); authenticated, because the signed verdict says which motion the supervisor means now.
        self._queued_motions[motion_id] = parsed
        while len(self._queued_motions) > MAX_QUEUED_MOTIONS:
            self._queued_motions.popitem(last=False)
        if self._lockstep:
            self._advance_lockstep()
        else:
            self._start_named_motion()

    def _park(self, motion_id: str, msg: JointTrajectory, problem: str) -> None:
        self._hold(f'publishers of {TRAJECTORY_TOPIC}', problem)
        self._parked.append(msg)
        self.get_logger().warning(f'trajectory {motion_id!r} parked until the graph settles: {problem}')
        while len(self._parked) > MAX_PARKED_TRAJECTORIES:
            dropped = self._parked.pop(0)
            self._refuse(split_signed_id(dropped.header.frame_id)[0], f'not from the supervisor: {problem} '
                         f'(more than {MAX_PARKED_TRAJECTORIES} trajectories parked meanwhile)', hold=True)

    def _refuse(self, motion_id: str, reason: str, hold: bool) -> None:
        self._rejections += 1
        self._refused_motions[motion_id] = None
        while len(self._refused_motions) > MAX_QUEUED_MOTIONS:
            self._refused_motions.popitem(last=False)
        self.get_logger().warning(f'trajectory {motion_id!r} refused: {reason}')
        self._publish_result(motion_id, DiagnosticStatus.ERROR, reason)
        if hold:
            self._hold('trajectory', f'trajectory {motion_id!r} {reason}')
        if self._lockstep:
            self._advance_lockstep()          # a verdict may be waiting for this motion: it never comes

    def _load(self, motion_id: str, parsed: TrajectoryInput) -> None:
        self._loaded_motion = motion_id
        self._robot_stopped = ''        # the cell planned again, from where the arm stands
        try:
            self._executor.load(parsed.plan, self._actual)
        except TrajectoryRejected as exc:
            self._rejections += 1
            self.get_logger().warning(f'trajectory {motion_id!r} refused: {exc}')
            self._publish_result(motion_id, DiagnosticStatus.ERROR, f'rejected: {exc}')
            return
        if self._executor.lead_delay_s:
            self.get_logger().info(f'trajectory {motion_id!r}: first segment slowed by '
                                   f'{self._executor.lead_delay_s:.3f} s (the arm started off the planned start)')
        if self._trajectory_id:
            self._publish_result(self._trajectory_id, DiagnosticStatus.WARN, 'preempted by a new trajectory')
        self._trajectory_id = motion_id

    def _start_named_motion(self) -> None:
        motion = self._verdict_motion
        if motion and motion != self._loaded_motion and motion in self._queued_motions:
            self._load(motion, self._queued_motions.pop(motion))

    def _on_verdict(self, msg: DiagnosticArray) -> None:
        if self._authenticated:
            check = self._command_publishers_of(VERDICT_TOPIC)
            if check.problem and not check.pending:     # none named yet: the signature decides (below)
                self._refuse_verdict(f'verdict not from the supervisor: {check.problem}')
                return
        statuses = [s for s in msg.status if s.name == VERDICT_STATUS_NAME]
        if len(statuses) != 1:
            self._refuse_verdict(f'verdict has {len(statuses)} statuses named {VERDICT_STATUS_NAME!r}, expected 1')
            return
        verdict = validate_verdict(msg.header.stamp.sec, msg.header.stamp.nanosec,
                                   [(kv.key, kv.value) for kv in statuses[0].values])
        if isinstance(verdict, Invalid):
            self._refuse_verdict(verdict.reason)
            return
        if self._authenticated:
            sequence = verdict.sequence
            if sequence is None:
                self._refuse_verdict('verdict has no sequence')
                return
            reason = verify_verdict(self._key, stamp_ns=verdict.stamp_ns, sequence=sequence,
                                    speed_scale=verdict.speed_scale, state=verdict.state, motion=verdict.motion,
                                    signature=verdict.signature) or self._sequence.check(sequence)
            if reason:
                self._refuse_verdict(reason)
                return
            self._sequence.accept(sequence)
        jump = self._clock_guard.observe('verdict', verdict.stamp_ns)
        if jump:
            self._on_clock_jump(jump)
        self._last_verdict_rx_s = time.monotonic()
        if self._lockstep:
            if self._ticks.put_right(verdict.stamp_ns, (verdict.speed_scale, verdict.motion)):
                self._advance_lockstep()
            return
        self._verdict_scale, self._verdict_motion = verdict.speed_scale, verdict.motion
        lost = self._motion_watch.named(verdict.motion, time.monotonic())
        if lost:
            self._lost_motions += 1
            reason = (f'motion {lost!r}, named by the verdicts for {LOST_MOTION_GRACE_S:g} s, never reached this arm '
                      '(sent while this node was down, or lost on the way): if the cell still waits for it, it '
                      'plans it again from where the arm stands')
            self.get_logger().warning(reason)
            self._publish_result(lost, DiagnosticStatus.ERROR, f'aborted: {reason}')
        self._apply_limit()
        self._deadman_reason = '' if verdict.speed_scale > 0.0 else 'safety verdict: stop'
        if self._authenticated:
            self._start_named_motion()
        if self._applied_pub.get_subscription_count():
            applied = TimeReference(source=repr(self._executor.target_scale), time_ref=msg.header.stamp)
            applied.header.stamp = self.get_clock().now().to_msg()
            self._applied_pub.publish(applied)

    def _refuse_verdict(self, reason: str) -> None:
        self._verdicts_refused += 1
        self._hold('verdict', reason)

    def _on_measured(self, msg: JointState) -> None:
        sample = joint_state_sample(msg, self._backend.allow_extra_joints)
        if isinstance(sample, Invalid):
            self._hold('joint state', sample.reason)
            return
        # Relay first: the supervisor needs the state of this tick to produce the verdict of this tick.
        self._backend.relay(msg)
        jump = self._clock_guard.observe('joint_states', sample.stamp_ns)
        if self._lockstep and not jump:
            if self._ticks.put_left(sample.stamp_ns, (sample.positions_rad, msg.header.stamp)):
                self._advance_lockstep()
            return
        self._actual = sample.positions_rad
        if not self._measured:
            self._measured = True
            if not self._executor.active:
                self._executor.cancel(sample.positions_rad)
        if jump:
            self._on_clock_jump(jump)
        if self._config.backend == 'sim':
            self._tick(sample.stamp_s, msg.header.stamp)

    def _on_twin_contacts(self, msg: DiagnosticArray) -> None:
        """The twin's cobot stopped itself on a contact pushing as hard as its rated force limit (like a
        UR protective stop): at the next tick the trajectory is dropped and the arm holds where it
        stands until the cell sends a motion again; the twin lets it move only from there."""
        if any(value.key == 'rated_force_stop' and value.value == 'true' for status in msg.status
               for value in status.values):
            self._robot_stopped = RATED_STOP_REASON

    def _on_clock_jump(self, reason: str) -> None:
        """Time went back (a restarted twin, a sim-time reset): nothing planned on the old timeline may
        continue. Drop the trajectory and hold where the arm is; pairing starts afresh."""
        self.get_logger().error(reason)
        if self._trajectory_id:
            self._publish_result(self._trajectory_id, DiagnosticStatus.ERROR, f'aborted: {reason}')
            self._trajectory_id = ''
        self._executor.cancel(self._actual)
        self._loaded_motion = ''
        self._queued_motions.clear()
        self._ticks.clear()
        self._last_tick_s = None
        self._executor.set_speed_limit(0.0)
        self._publish_diagnostics()

    def _advance_lockstep(self) -> None:
        """Handle every tick whose state and verdict are both here, in stamp order (older unpaired
        ones can never pair any more and are dropped by the joiner)."""
        while (tick := self._ticks.pop_pair(self._motion_here)) is not None:
            key, (positions, stamp), (scale, motion) = tick
            # The measured state of this very tick (a later one may already have arrived): a motion
            # starts from it, so runs repeat to the last bit.
            self._actual = positions
            if motion and motion != self._loaded_motion and motion in self._queued_motions:
                self._load(motion, self._queued_motions.pop(motion))
            self._executor.set_speed_limit(0.0 if self._hold_reason() else scale)
            self._tick(key * 1e-9, stamp)

    def _motion_here(self, key: int, state: tuple[np.ndarray, Time], verdict: tuple[float, str]) -> bool:
        """False while the tick's verdict names a motion still on its way: that tick and every later one
        wait for it (a refused motion never comes, so it does not hold the ticks up)."""
        motion = verdict[1]
        waiting = motion and motion != self._loaded_motion and motion not in self._queued_motions
        return not (waiting and motion not in self._refused_motions)

    def _on_control_tick(self) -> None:
        self._tick(time.monotonic(), self.get_clock().now().to_msg())

    # -- control -----------------------------------------------------------------------------
    def _tick(self, now_s: float, stamp: Time) -> None:
        if not self._measured:
            return                      # where the arm is is not known yet: command nothing
        dt = 0.0 if self._last_tick_s is None else min(MAX_TICK_DT_S, max(0.0, now_s - self._last_tick_s))
        self._last_tick_s = now_s
        if self._robot_stopped:
            # Until the cell sends a motion again the arm's command is where it stands, so that the
            # twin lets it go without a lunge to an old set-point.
            if self._trajectory_id:
                self._publish_result(self._trajectory_id, DiagnosticStatus.ERROR, f'aborted: {self._robot_stopped}')
                self._trajectory_id = ''
            self._executor.cancel(self._actual)
        if not self._lockstep and self._hold_reason():
            self._executor.set_speed_limit(0.0)
        was_active = self._executor.active
        q, qd = self._executor.step(dt)
        self._backend.send(q, qd, stamp)
        if was_active and not self._executor.active:
            # after the final set-point has left, so whoever sees the result also has the command
            self._publish_result(self._trajectory_id, DiagnosticStatus.OK, 'succeeded')
            self._trajectory_id = ''
        self._publish_mode()

    def _deadman_expired(self, now_s: float) -> bool:
        if self._lockstep:
            return False
        return self._last_verdict_rx_s is None or now_s - self._last_verdict_rx_s > self._config.deadman_timeout_s

    def _check_deadman(self) -> None:
        if self._deadman_expired(time.monotonic()):
            if self._executor.target_scale > 0.0:
                self._deadman_reason = (f'no safety verdict for more than {self._config.deadman_timeout_s} s: '
                                        'stopping (deadman)')
                self.get_logger().error(self._deadman_reason)
            self._executor.set_speed_limit(0.0)
        else:
            self._apply_limit()       # a hold whose time is up gives the verdict's scale back

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._executor.controlled_stop()
        response.success, response.message = True, 'controlled stop (category 2): decelerating, then holding'
        return response

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        problem = self._resume_clients_problem() if self._authenticated else None
        if problem:
            self.get_logger().error(f'arm/resume refused: {problem}')
            response.success, response.message = False, f'refused: {problem}'
            return response
        self._executor.release_stop()
        response.success, response.message = True, 'stop released; speed ramps up as the safety verdict allows'
        return response

    def _resume_clients_problem(self) -> str | None:
        """A service request carries no caller: the release is accepted only while the supervisor is the
        one node with a client of arm/resume on the graph."""
        service = expand_topic_name(RESUME_SERVICE, self.get_name(), self.get_namespace())
        clients = []
        for name, namespace in self.get_node_names_and_namespaces():
            try:
                names = [n for n, _ in self.get_client_names_and_types_by_node(name, namespace)]
            except Exception:  # noqa: BLE001 - the node left the graph meanwhile
                continue
            if service in names:
                clients.append((namespace.rstrip('/') + '/' + name) if namespace != '/' else '/' + name)
        expected = expand_topic_name(self._supervisor, self.get_name(), self.get_namespace())
        if clients == [expected]:
            return None
        return (f'only {expected} may release the hold; clients of {service} on the graph: '
                f'{", ".join(sorted(clients)) or "none"}')

    # -- outputs -----------------------------------------------------------------------------
    def _publish_mode(self) -> None:
        mode = self._executor.mode()
        if mode != self._mode:
            self._mode = mode
            self._mode_pub.publish(String(data=mode.value))

    def _publish_result(self, trajectory_id: str, level: bytes, message: str) -> None:
        self._result_pub.publish(DiagnosticStatus(level=level, name=trajectory_id, message=message,
                                                  hardware_id='arm'))

    def _publish_diagnostics(self) -> None:
        level, message = LEVEL_OK, self._mode.value if self._mode else 'starting'
        if self._deadman_reason and self._executor.active:
            level, message = LEVEL_WARN, self._deadman_reason
        hold = self._hold_reason()
        if hold:
            level, message = LEVEL_ERROR, f'holding: {hold}'
        status = diagnostic_status('smartcell/arm', self._config.backend, level, message, {
            'mode': self._mode.value if self._mode else 'unknown',
            'applied_speed_scale': self._executor.applied_scale,
            'allowed_speed_scale': self._executor.target_scale,
            'trajectory_progress': self._executor.progress,
            'trajectories_refused': self._rejections,
            'verdicts_refused': self._verdicts_refused,
            'clock_jumps': self._clock_guard.jumps,
            'lost_motions_reported': self._lost_motions,
            'authenticated_commands': self._authenticated})
        if self._mode == ArmMode.FAULT:
            status.level = LEVEL_ERROR
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))


def main(args: list[str] | None = None) -> int:
    return run_node(Arm, args)


if __name__ == '__main__':
    raise SystemExit(main())
