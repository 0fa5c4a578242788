"""Arm node: one interface to the cobot over two backends (the PyBullet twin or a vendor driver)."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import JointState, TimeReference
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from smartcell.core.kinematics import JOINT_NAMES
from smartcell.core.motions import UR5E_JOINT_LIMITS, speed_limited
from smartcell.core.node_params import ARM
from smartcell.core.trajectory import (ArmMode, JointTrajectoryPlan, ScaleRamp,
                                       TrajectoryExecutor, TrajectoryRejected)
from smartcell.core.verdict import MOTION_KEY, VERDICT_STATUS_NAME, VerdictError, speed_scale_from_values
from smartcell.nodes.common import (LATCHED_QOS, LEVEL_ERROR, LEVEL_OK, LEVEL_WARN, STREAM_QOS,
                                    declare_parameters, diagnostic_array, diagnostic_status, run_node,
                                    duration_msg, stamp_ns, stamp_to_s)



class Arm(Node):
    """The cobot behind one interface.

    Subscribes: `arm/joint_trajectory` (trajectory_msgs/JointTrajectory: UR5e joint names, positions
    in rad, time_from_start; started from the actual position, refused with a reason when it leaves
    the joint position or velocity limits); `safety/verdict` (diagnostic_msgs/DiagnosticArray: the
    speed scale to apply; a missing, malformed or late verdict stops the arm: deadman).
    sim backend: `twin/joint_states` (sensor_msgs/JointState). ros2_control backend: the driver's
    joint states (`driver_joint_states_topic`).
    Publishes: `joint_states` (sim backend; sensor_msgs/JointState, rad, rad/s, N·m);
    sim: `twin/joint_command` (sensor_msgs/JointState position/velocity set-points);
    ros2_control: `controller_topic` (trajectory_msgs/JointTrajectory, one streamed point);
    `arm/mode` (std_msgs/String latched: idle, executing, paused, stopping, held, fault);
    `arm/trajectory_result` (diagnostic_msgs/DiagnosticStatus: name = trajectory id
    (header.frame_id of the request), level OK succeeded / WARN preempted / ERROR rejected, message = reason);
    `arm/speed_limit_applied` (sensor_msgs/TimeReference: header.stamp when the scale was applied,
    time_ref = the verdict stamp, source = the scale) — for latency measurement;
    `/diagnostics`.
    Services (std_srvs/Trigger): `arm/stop` controlled stop, category 2 (decelerate along the path,
    then hold position); `arm/resume` release it.
    Parameters: smartcell.core.node_params.ARM.
    """

    def __init__(self) -> None:
        super().__init__('arm')
        self._config = declare_parameters(self, ARM)
        self._sim = self._config['backend'] == 'sim'
        self._lockstep = self._config['lockstep'] and self._sim
        initial = np.asarray(self._config['initial_positions_rad'], dtype=float)
        if len(initial) != len(JOINT_NAMES):
            from smartcell.core.params import ConfigError
            raise ConfigError(f'initial_positions_rad needs {len(JOINT_NAMES)} values, got {len(initial)}')
        self._executor = TrajectoryExecutor(
            speed_limited(UR5E_JOINT_LIMITS, self._config['max_joint_speed_fraction']),
            ScaleRamp(self._config['scale_ramp_down_per_s'], self._config['scale_ramp_up_per_s']), initial)
        self._actual = initial
        self._actual_velocity = np.zeros(len(JOINT_NAMES))
        self._actual_effort = np.zeros(len(JOINT_NAMES))
        self._last_tick_s: float | None = None
        self._last_verdict_rx_s: float | None = None
        self._deadman_reason = 'no safety verdict received yet'
        self._trajectory_id = ''
        self._mode: ArmMode | None = None
        self._rejections = 0
        # Lockstep: verdicts waiting for the twin state of the same stamp (ns -> scale, motion id).
        self._pending_verdicts: OrderedDict[int, tuple[float, str]] = OrderedDict()
        self._pending_states: OrderedDict[int, JointState] = OrderedDict()
        self._queued_motions: dict[str, JointTrajectory] = {}
        self._loaded_motion = ''
        self._handled_key = -1

        self._mode_pub = self.create_publisher(String, 'arm/mode', LATCHED_QOS)
        self._result_pub = self.create_publisher(DiagnosticStatus, 'arm/trajectory_result', 10)
        self._applied_pub = self.create_publisher(TimeReference, 'arm/speed_limit_applied', STREAM_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(JointTrajectory, 'arm/joint_trajectory', self._on_trajectory, 10)
        self.create_subscription(DiagnosticArray, 'safety/verdict', self._on_verdict, STREAM_QOS)
        self.create_service(Trigger, 'arm/stop', self._on_stop)
        self.create_service(Trigger, 'arm/resume', self._on_resume)
        if self._sim:
            self._state_pub = self.create_publisher(JointState, 'joint_states', STREAM_QOS)
            self._command_pub = self.create_publisher(JointState, 'twin/joint_command', STREAM_QOS)
            self.create_subscription(JointState, 'twin/joint_states', self._on_twin_state, STREAM_QOS)
        else:
            self._controller_pub = self.create_publisher(JointTrajectory, self._config['controller_topic'], 10)
            self.create_subscription(JointState, self._config['driver_joint_states_topic'],
                                     self._on_driver_state, STREAM_QOS)
            self.create_timer(1.0 / self._config['control_rate_hz'], self._on_control_tick)
        if not self._lockstep:
            # In lockstep every tick needs a verdict of its own stamp, so silence stalls the twin instead.
            self.create_timer(self._config['deadman_timeout_s'] / 4.0, self._check_deadman)
        self.create_timer(1.0, self._publish_diagnostics)
        self._publish_mode()

    # -- inputs ------------------------------------------------------------------------------
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if self._lockstep:
            # Simulation: a motion starts at the tick whose verdict names it, never at arrival time.
            self._queued_motions[msg.header.frame_id] = msg
            self._advance_lockstep()
            return
        self._load(msg)

    def _load(self, msg: JointTrajectory) -> None:
        self._loaded_motion = msg.header.frame_id
        try:
            plan = plan_from_msg(msg)
            self._executor.load(plan, self._actual)
        except TrajectoryRejected as exc:
            self._rejections += 1
            self.get_logger().warning(f'trajectory {msg.header.frame_id!r} refused: {exc}')
            self._publish_result(msg.header.frame_id, DiagnosticStatus.ERROR, f'rejected: {exc}')
            return
        if self._trajectory_id:
            self._publish_result(self._trajectory_id, DiagnosticStatus.WARN, 'preempted by a new trajectory')
        self._trajectory_id = msg.header.frame_id

    def _on_verdict(self, msg: DiagnosticArray) -> None:
        scale = verdict_scale(msg)
        self._last_verdict_rx_s = self._now_s()
        if self._lockstep:
            key = stamp_ns(msg.header.stamp)
            if key > self._handled_key:
                self._pending_verdicts[key] = (scale, verdict_motion(msg))
                self._advance_lockstep()
            return
        self._apply_scale(scale, msg)

    def _apply_scale(self, scale: float, msg: DiagnosticArray) -> None:
        self._executor.set_speed_limit(scale)
        self._deadman_reason = '' if scale > 0.0 else 'safety verdict: stop'
        if self._applied_pub.get_subscription_count():
            applied = TimeReference(source=repr(scale), time_ref=msg.header.stamp)
            applied.header.stamp = self.get_clock().now().to_msg()
            self._applied_pub.publish(applied)

    def _on_twin_state(self, msg: JointState) -> None:
        # Relay first: the supervisor needs the state of this tick to produce the verdict of this tick.
        self._state_pub.publish(msg)
        if not self._lockstep:
            self._store_actual(msg)
        if self._lockstep:
            key = stamp_ns(msg.header.stamp)
            if key > self._handled_key:
                self._pending_states[key] = msg
                self._advance_lockstep()
        else:
            self._tick(stamp_to_s(msg.header.stamp), msg.header.stamp)

    def _advance_lockstep(self) -> None:
        for key in sorted(k for k in self._pending_states if k in self._pending_verdicts):
            scale, motion = self._pending_verdicts[key]
            if motion and motion != self._loaded_motion and motion not in self._queued_motions:
                return              # the verdict names a motion still on its way: wait for it
            state = self._pending_states.pop(key)
            # The measured state of this very tick (a later one may already have arrived): a motion
            # starts from it, so runs repeat to the last bit.
            self._store_actual(state)
            if motion and motion != self._loaded_motion:
                self._load(self._queued_motions.pop(motion))
            del self._pending_verdicts[key]
            self._handled_key = key
            self._executor.set_speed_limit(scale)
            self._tick(stamp_to_s(state.header.stamp), state.header.stamp)
            # Anything older than the handled tick can never pair any more.
            for pending in (self._pending_states, self._pending_verdicts):
                for old in [k for k in pending if k < key]:
                    del pending[old]

    def _on_driver_state(self, msg: JointState) -> None:
        self._store_actual(msg)

    def _store_actual(self, msg: JointState) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        try:
            order = [index[name] for name in JOINT_NAMES]
        except KeyError as exc:
            self.get_logger().error(f'joint state without joint {exc}; expected {list(JOINT_NAMES)}')
            return
        self._actual = np.asarray(msg.position, dtype=float)[order]
        if len(msg.velocity) == len(msg.name):
            self._actual_velocity = np.asarray(msg.velocity, dtype=float)[order]
        if len(msg.effort) == len(msg.name):
            self._actual_effort = np.asarray(msg.effort, dtype=float)[order]

    def _on_control_tick(self) -> None:
        self._tick(self._now_s(), self.get_clock().now().to_msg())

    # -- control -----------------------------------------------------------------------------
    def _tick(self, now_s: float, stamp) -> None:
        dt = 0.0 if self._last_tick_s is None else max(0.0, now_s - self._last_tick_s)
        self._last_tick_s = now_s
        was_active = self._executor.active
        q, qd = self._executor.step(dt)
        if self._sim:
            command = JointState(name=list(JOINT_NAMES), position=q.tolist(), velocity=qd.tolist())
            command.header.stamp = stamp
            self._command_pub.publish(command)
        else:
            point = JointTrajectoryPoint(positions=q.tolist(), velocities=qd.tolist(),
                                         time_from_start=duration_msg(self._config['stream_horizon_s']))
            self._controller_pub.publish(JointTrajectory(joint_names=list(JOINT_NAMES), points=[point]))
        if was_active and not self._executor.active:
            # after the final set-point has left, so whoever sees the result also has the command
            self._publish_result(self._trajectory_id, DiagnosticStatus.OK, 'succeeded')
            self._trajectory_id = ''
        self._publish_mode()

    def _check_deadman(self) -> None:
        now = self._now_s()
        if self._last_verdict_rx_s is None or now - self._last_verdict_rx_s > self._config['deadman_timeout_s']:
            if self._executor.target_scale > 0.0:
                self._deadman_reason = (f'no safety verdict for more than {self._config["deadman_timeout_s"]} s: '
                                        'stopping (deadman)')
                self.get_logger().error(self._deadman_reason)
            self._executor.set_speed_limit(0.0)

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._executor.controlled_stop()
        response.success, response.message = True, 'controlled stop (category 2): decelerating, then holding'
        return response

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._executor.release_stop()
        response.success, response.message = True, 'stop released; speed ramps up as the safety verdict allows'
        return response

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
        status = diagnostic_status('smartcell/arm', self._config['backend'], level, message, {
            'mode': self._mode.value if self._mode else 'unknown',
            'applied_speed_scale': self._executor.applied_scale,
            'allowed_speed_scale': self._executor.target_scale,
            'trajectory_progress': self._executor.progress,
            'trajectories_refused': self._rejections})
        if self._mode == ArmMode.FAULT:
            status.level = LEVEL_ERROR
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9


def verdict_scale(msg: DiagnosticArray) -> float:
    """The scale a verdict allows; anything untrustworthy is 0 (stop)."""
    for status in msg.status:
        if status.name == VERDICT_STATUS_NAME:
            try:
                return speed_scale_from_values((kv.key, kv.value) for kv in status.values)
            except VerdictError:
                return 0.0
    return 0.0


def verdict_motion(msg: DiagnosticArray) -> str:
    """The id of the newest motion the supervisor had sent when it gave this verdict."""
    for status in msg.status:
        if status.name == VERDICT_STATUS_NAME:
            return next((kv.value for kv in status.values if kv.key == MOTION_KEY), '')
    return ''


def plan_from_msg(msg: JointTrajectory) -> JointTrajectoryPlan:
    """Reorder to the arm's joint order; refuse unknown or missing joints."""
    if sorted(msg.joint_names) != sorted(JOINT_NAMES):
        raise TrajectoryRejected(f'joint names {list(msg.joint_names)} must be exactly {list(JOINT_NAMES)}')
    if not msg.points:
        raise TrajectoryRejected('trajectory has no points')
    order = [list(msg.joint_names).index(name) for name in JOINT_NAMES]
    positions = []
    for k, point in enumerate(msg.points):
        if len(point.positions) != len(JOINT_NAMES):
            raise TrajectoryRejected(f'point {k} has {len(point.positions)} positions, expected {len(JOINT_NAMES)}')
        positions.append(np.asarray(point.positions, dtype=float)[order])
    times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    return JointTrajectoryPlan(tuple(JOINT_NAMES), times, np.array(positions))


def main(args: list[str] | None = None) -> int:
    return run_node(Arm, args)


if __name__ == '__main__':
    raise SystemExit(main())
