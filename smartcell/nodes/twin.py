"""Twin node: the PyBullet cell (cobot, person, safety laser scanner) and the simulation clock."""
from __future__ import annotations

import json
import math
import time
from array import array
from typing import TYPE_CHECKING, Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Pose, PoseArray
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState, LaserScan
from std_msgs.msg import String
from std_srvs.srv import Trigger

from smartcell.core.robot.command_validation import Invalid, validate_joint_command
from smartcell.core.robot.kinematics import JOINT_NAMES
from smartcell.core.cell.controller import HANDOVER_POSE
from smartcell.core.robot.motions import UR5E_JOINT_LIMITS, MotionLibrary
from smartcell.twin.human import PathBuilder, PersonPath
from smartcell.twin.scenarios import TASK_DRIVEN_SCENARIO
from smartcell.twin.world import disconnect
from smartcell.core.node_params import TWIN
from smartcell.core.params import ConfigError
from smartcell.nodes.common import (LATCHED_QOS, LEVEL_ERROR, LEVEL_OK, LEVEL_WARN, STREAM_PUB_QOS, STREAM_QOS,
                                    declare_config, diagnostic_array, diagnostic_status, guarded, run_node, s_to_stamp,
                                    stamp_ns, stamp_to_s)

if TYPE_CHECKING:      # the twin's modules load pybullet: imported where the world is built
    from smartcell.twin.scanner import SafetyScanner
    from smartcell.twin.world import CellWorld

WARMUP_REPUBLISH_S = 0.5     # wall seconds: re-send tick 0 until the pipeline answers (discovery)
# Wall seconds the subscriber counts must hold before the run starts: a count is the writer's side of a
# match, and a reader that has not matched this writer yet drops what it is sent (a recorder then missed
# tick 0); tick 0 goes out again once the counts have held this long.
SUBSCRIBERS_SETTLE_S = 0.3
STATUS_PERIOD_S = 0.5        # simulated seconds between twin/status updates


class Twin(Node):
    """The simulated cell and its clock.

    Publishes: `/clock` (rosgraph_msgs/Clock); `scan` (sensor_msgs/LaserScan, frame `scanner_link`,
    one per tick); `twin/joint_states` (sensor_msgs/JointState measured in the physics: rad, rad/s, N·m);
    `twin/people_truth` (geometry_msgs/PoseArray, world frame: true person positions, for evaluation);
    `twin/status` (diagnostic_msgs/DiagnosticArray latched: state warming/running/finished/failed,
    sim_time_s, wall_time_s, ticks, true min person-robot distance, contacts);
    `twin/contacts` (diagnostic_msgs/DiagnosticArray, only on ticks with a person-robot contact: one
    status per person body region and robot link, name `<person>/<region>`, hardware_id = robot link,
    values body_regions (config/body_regions.yaml names, comma-separated), normal_force_n (N, the
    ISO/TS 15066 Annex A contact model's peak over the tick, see CellWorld), closing_speed_mps (at the
    first touch), rated_force_stop (true while the simulated cobot's own force limit holds the arm),
    x_m/y_m/z_m (world)); `/diagnostics`.
    Subscribes: `twin/joint_command` (sensor_msgs/JointState position/velocity set-points from the arm;
    a command that names the joints wrongly, has NaN/Inf or leaves the joint limits is ignored with an
    ERROR on /diagnostics, and the last valid one stays applied).
    Every callback is guarded: an unexpected error is an ERROR diagnostic, never a dead process.
    Lockstep: tick k publishes the outputs of time t_k; the command the arm computed from tick k-L
    (L = lockstep_lag_ticks) drives the physics from t_k to t_k+1: L scan periods of processing and
    actuation delay, part of the reaction time T_r; it lets L ticks be in the pipeline at once.
    Parameters: smartcell.core.node_params.TWIN.
    """

    def __init__(self) -> None:
        super().__init__('twin')
        self._held_command: tuple | None = None     # tick 0's answer, held until every subscriber listens
        self._config = declare_config(self, TWIN)
        self._world, self._scanner = build_world(self._config)
        self._dt_s = 1.0 / self._config.tick_rate_hz
        self._lag = self._config.lockstep_lag_ticks
        self._tick = 0
        self._expected_command_ns = 0             # lockstep: the stamp of the command that unblocks the next step
        self._command: tuple[np.ndarray, np.ndarray] | None = None   # (positions, velocities) until the next one
        self._min_distance_m = float('inf')
        self._contacts = 0
        self._step_contacts: list = []            # contacts of the last physics step
        self._state = 'warming'
        self._failure = ''
        self._wall_start: float | None = None
        self._tick_messages: tuple[int, Clock, JointState, LaserScan] | None = None   # last published, per tick
        self._last_publish_wall = 0.0
        self._subscribers_since: float | None = None     # wall s since the subscriber counts are met
        self._next_status_s = 0.0
        self._commands_refused = 0
        self._input_problem = ''                  # the last refused command or callback error (ERROR)

        self._clock_pub = self.create_publisher(Clock, '/clock', 10)
        self._scan_pub = self.create_publisher(LaserScan, 'scan', STREAM_PUB_QOS)
        self._joint_pub = self.create_publisher(JointState, 'twin/joint_states', STREAM_PUB_QOS)
        self._truth_pub = self.create_publisher(PoseArray, 'twin/people_truth', 10)
        self._status_pub = self.create_publisher(DiagnosticArray, 'twin/status', LATCHED_QOS)
        self._contacts_pub = self.create_publisher(DiagnosticArray, 'twin/contacts', 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(JointState, 'twin/joint_command', self._guard(self._on_command), STREAM_QOS)
        self._motions = self._load_motions()
        self._operator: SimulatedOperator | None = None
        if self._config.scenario == TASK_DRIVEN_SCENARIO:
            self._operator = SimulatedOperator(self._world, self.create_client(Trigger, 'operator/step_done'),
                                               self.get_logger(), self._motions.configurations[HANDOVER_POSE])
            self.create_subscription(String, 'operator/current_step', self._guard(self._operator.on_step),
                                     LATCHED_QOS)
        if self._config.lockstep:
            self._watch = self.create_timer(0.05, self._guard(self._watch_lockstep))
        else:
            period = self._dt_s / self._config.real_time_factor
            self.create_timer(period, self._guard(self._free_running_tick))
        self._check_motions()
        self._publish_tick()
        self._publish_status()

    def _load_motions(self) -> MotionLibrary:
        from smartcell.share import share_file
        return MotionLibrary.from_yaml(self._config.motions_file or share_file('config', 'motions.yaml'),
                                       UR5E_JOINT_LIMITS)

    def _check_motions(self) -> None:
        """Sweep the supervisor's motions through this cell before anything moves; refuse on a collision."""
        from smartcell.twin.motion_check import check_motions
        library = self._motions
        problems = check_motions(library, self._world.layout, self._config.urdf_path or None)
        if problems:
            self._fail(f'{len(problems)} arm motion(s) collide with the cell, not running: '
                       + '; '.join(map(str, problems[:5])))
        else:
            self.get_logger().info(f'{len(library.configurations)} arm configurations and their segments '
                                   'clear the table, fence and furniture')

    # -- lockstep -------------------------------------------------------------------------------
    def _guard(self, callback):
        return guarded(callback, self._on_callback_error)

    def _on_callback_error(self, name: str, exc: BaseException) -> None:
        self._report_input_problem(f'internal error in {name}: {exc!r}')

    def _report_input_problem(self, reason: str) -> None:
        if reason != self._input_problem:
            self.get_logger().error(reason)
        self._input_problem = reason
        self._publish_status()

    def _on_command(self, msg: JointState) -> None:
        parsed = validate_joint_command(list(msg.name), list(msg.position), list(msg.velocity), UR5E_JOINT_LIMITS)
        if isinstance(parsed, Invalid):
            self._commands_refused += 1
            self._report_input_problem(f'ignored: {parsed.reason}')
            return
        self._input_problem = ''                  # a valid command again (the refusals stay counted)
        command = (parsed.positions_rad, parsed.velocities_radps)
        if not self._config.lockstep:
            self._command = command
            return
        key = stamp_ns(msg.header.stamp)
        if self._state not in ('warming', 'running') or key != self._expected_command_ns:
            return      # a repeat of a warm-up tick, already handled
        if self._state == 'warming' and not self._subscribers_ready():
            self._held_command = command    # a recorder is not receiving yet: start once it is (watchdog)
            return
        self._advance(command)

    def _subscribers_ready(self) -> bool:
        """scan and twin/joint_states have had min_subscribers each for SUBSCRIBERS_SETTLE_S."""
        if min(self._scan_pub.get_subscription_count(),
               self._joint_pub.get_subscription_count()) < self._config.min_subscribers:
            self._subscribers_since = None
            return False
        now = time.monotonic()
        if self._subscribers_since is None:
            self._subscribers_since = now
        return now - self._subscribers_since >= SUBSCRIBERS_SETTLE_S

    def _advance(self, command) -> None:
        """Lockstep: the arm's command for the expected tick drives the physics one tick on."""
        self._held_command = None
        if self._state == 'warming':
            # The pipeline answered tick 0: the first `lag` steps hold the start pose, then pipelined.
            self._state, self._wall_start = 'running', time.monotonic()
            for _ in range(self._lag):
                self._step_physics()
                if self._finished():
                    return
                self._publish_tick()
        # Command(t_k-lag) drives t_k -> t_k+1 while the pipeline works on the scans since then.
        self._command = command
        self._step_physics()
        if self._finished():
            return
        self._publish_tick()
        self._expected_command_ns = self._tick_ns(self._tick - self._lag)

    def _watch_lockstep(self) -> None:
        now = time.monotonic()
        if self._state == 'warming' and self._held_command is not None and self._subscribers_ready():
            self._publish_tick()       # tick 0 once more, now that everyone listens (the others: a repeat)
            self._advance(self._held_command)
        elif self._state == 'warming' and now - self._last_publish_wall > WARMUP_REPUBLISH_S:
            self._publish_tick()       # discovery may have missed it; every node handles a repeat idempotently
        elif self._state == 'running' and now - self._last_publish_wall > self._config.lockstep_timeout_s:
            self._fail(f'no arm command for tick {self._tick} within {self._config.lockstep_timeout_s} s '
                       '(is the arm, scanner or supervisor down?)')

    # -- free running (ros2 launch sim:=true) --------------------------------------------------------
    def _free_running_tick(self) -> None:
        if self._state in ('finished', 'failed'):
            return
        if self._state == 'warming':
            self._state, self._wall_start = 'running', time.monotonic()
        self._step_physics()
        if not self._finished():
            self._publish_tick()

    # -- shared ----------------------------------------------------------------------------------------
    def _step_physics(self) -> None:
        if self._command is not None:
            self._world.set_joint_targets(*self._command)
        self._world.step(self._dt_s)
        self._tick += 1
        if self._operator is not None:
            self._operator.tick()
        self._min_distance_m = min(self._min_distance_m, self._world.min_person_robot_distance())
        self._step_contacts = self._world.person_robot_contacts()
        if self._step_contacts:
            self._contacts += 1      # ticks with a person-robot contact

    def _finished(self) -> bool:
        duration = self._config.duration_s
        if duration > 0 and self._tick * self._dt_s >= duration - 1e-9:
            self._state = 'finished'
            self._publish_status()
            return True
        return False

    def _tick_ns(self, tick: int) -> int:
        return int(round(tick * self._dt_s * 1e9))

    def _publish_tick(self) -> None:
        self._last_publish_wall = time.monotonic()
        if self._tick_messages is not None and self._tick_messages[0] == self._tick:
            # A warm-up repeat: the very same messages (a new scan would draw new noise and
            # make the run depend on how long discovery took).
            for publisher, msg in zip((self._clock_pub, self._joint_pub, self._scan_pub), self._tick_messages[1:]):
                publisher.publish(msg)
            return
        stamp = s_to_stamp(self._tick_ns(self._tick) * 1e-9)
        clock = Clock(clock=stamp)
        q, qd, effort = self._world.joint_state()
        joints = JointState(name=list(JOINT_NAMES), position=q.tolist(), velocity=qd.tolist(), effort=effort.tolist())
        joints.header.stamp = stamp
        scan = self._scan_msg(stamp)
        self._tick_messages = (self._tick, clock, joints, scan)
        self._clock_pub.publish(clock)
        self._joint_pub.publish(joints)
        self._scan_pub.publish(scan)
        if self._step_contacts:
            self._contacts_pub.publish(contacts_msg(stamp, self._step_contacts))
        if self._truth_pub.get_subscription_count():
            self._truth_pub.publish(self._truth_msg(stamp))
        if stamp_to_s(stamp) >= self._next_status_s:
            self._next_status_s += STATUS_PERIOD_S
            self._publish_status()

    def _scan_msg(self, stamp) -> LaserScan:
        frame = self._scanner.scan(stamp_to_s(stamp))
        msg = LaserScan(angle_min=frame.angle_min_rad, angle_max=frame.angle_max_rad,
                        angle_increment=frame.angle_increment_rad, time_increment=frame.time_increment_s,
                        scan_time=frame.scan_time_s, range_min=frame.range_min_m, range_max=frame.range_max_m)
        # array('f') from the raw bytes: assigning the numpy array directly converts element by element.
        msg.ranges = array('f', np.ascontiguousarray(frame.ranges, dtype=np.float32).tobytes())
        msg.header.stamp = stamp
        msg.header.frame_id = frame.frame_id
        return msg

    def _truth_msg(self, stamp) -> PoseArray:
        msg = PoseArray()
        msg.header.stamp, msg.header.frame_id = stamp, 'world'
        for path in self._world.paths:
            if path is None:
                continue
            state = path.state_at(self._world.sim_time)
            pose = Pose()
            pose.position.x, pose.position.y = state.x_m, state.y_m
            pose.orientation.w = 1.0
            msg.poses.append(pose)
        return msg

    def _fail(self, reason: str) -> None:
        self._state, self._failure = 'failed', reason
        self.get_logger().error(reason)
        self._publish_status()

    def _publish_status(self) -> None:
        wall = 0.0 if self._wall_start is None else time.monotonic() - self._wall_start
        level = LEVEL_ERROR if self._state == 'failed' or self._input_problem else LEVEL_OK
        message = self._failure or self._input_problem or f'{self._state}, scenario {self._config.scenario}'
        last_tick = self._tick_ns(self._tick if self._state != 'finished' else self._tick - 1)
        status = diagnostic_status('smartcell/twin', 'pybullet', level, message, {
            'state': self._state, 'sim_time_s': self._tick * self._dt_s, 'wall_time_s': repr(wall),
            'ticks': self._tick, 'last_tick_ns': last_tick,
            'min_person_robot_distance_m': repr(self._min_distance_m), 'contacts': self._contacts,
            'commands_refused': self._commands_refused,
            'scenario': self._config.scenario, 'seed': self._config.seed})
        array = diagnostic_array(s_to_stamp(self._tick * self._dt_s), [status])
        self._status_pub.publish(array)
        self._diag_pub.publish(array)

    def on_shutdown(self) -> None:
        for timer in list(self.timers):     # nothing may step the physics once it is disconnected
            timer.cancel()
        self._state = 'finished' if self._state == 'finished' else 'stopped'
        self._world.close()
        disconnect(self._world.client_id)


class SimulatedOperator:
    """The person of the 'operator' scenario: walks to the station of the step the supervisor shows,
    works for its expected duration (arms forward at a shared station) and acknowledges over the
    real `operator/step_done` service, as a person pressing the HMI button would. At a handover step
    the person waits at the station with the arms down until the arm holds the part out (at the
    `present` configuration, still), then reaches for it: people do not put their hands where the
    robot has not yet arrived (after a twin restart the arm stands at home, its wrist at hand height
    over the shared station). At a shared station the person also waits, arms down, until the arm has
    left it (no wrist or tool frame within ARM_CLEAR_M of the station): after a handover the arm
    withdraws through the station, and nobody puts their hands in its way.

    Its acknowledgement reaches the supervisor like a real one, asynchronously: runs with a job
    can differ by a tick in step timing (the bare cycle stays exactly repeatable).
    """

    PRESENTING_TOLERANCE_RAD = 0.05      # every joint this close to the present configuration ...
    PRESENTING_STILL_RADPS = 0.05        # ... and this slow: the part is held out
    ARM_CLEAR_M = 0.35                   # horizontal distance of the wrist and tool frames from a station
    ARM_FRAMES = ('wrist_1_link', 'wrist_2_link', 'wrist_3_link', 'tool0', 'gripper_tcp')

    def __init__(self, world, done_client, logger, present_q_rad: np.ndarray) -> None:
        self._world = world
        self._logger = logger
        self._done = done_client
        self._present_q = np.asarray(present_q_rad, dtype=float)
        self._ack_at_s: float | None = None
        self._step: tuple | None = None
        # Waiting, arms down, to reach in: arrival s, work s, station xy, and whether for a part held out.
        self._waiting: tuple[float, float, tuple[float, float], bool] | None = None

    def on_step(self, msg: String) -> None:
        step = json.loads(msg.data) if msg.data else {}
        key = (step.get('unit'), step.get('step')) if step.get('step') else None
        if key == self._step:
            return
        self._step = key
        layout = self._world.layout
        if key is None:
            # Nothing to do for the person: back to the bench, out of the robot's way.
            station = layout.station('operator_bench')
            step = {'station': station.name, 'started_s': 0.0, 'expected_end_s': 8 * 3600.0}
            self._logger.info('simulated operator has no step: back to the bench')
        else:
            self._logger.info(f'simulated operator goes to {step["station"]} for step {key}')
            station = layout.station(step['station'])
        x, y = station.position_m[:2]
        # A table station without a place for the person: stand at the table's front edge, level with it.
        table = layout.table
        front_x = table.centre_m[0] + table.size_m[0] / 2 + 0.3
        target = station.person_xy_m or (front_x, y)
        now = self._world.sim_time
        here = self._world.paths[0].state_at(now)
        path = PathBuilder((here.x_m, here.y_m), start_s=now, yaw_rad=here.yaw_rad)
        inside_now = not layout.outside_area.contains((here.x_m, here.y_m))
        inside_target = not layout.outside_area.contains(target)
        if inside_now != inside_target:          # through the fence opening, the only way in or out
            for waypoint in ((layout.door_inside_xy_m, layout.door_outside_xy_m) if inside_now
                             else (layout.door_outside_xy_m, layout.door_inside_xy_m)):
                path.walk_to(waypoint)
        path.walk_to(target)
        # The person's own work at the step (a handover's planned end also holds the arm's approach).
        work_s = float(step['work_s']) if step.get('work_s') else \
            max(1.0, float(step['expected_end_s']) - float(step['started_s']))
        self._waiting = None
        if key is not None and (step.get('handover') or station.shared):
            # Wait, arms down, for the part or for the arm to leave (tick() reaches then).
            self._waiting = (path.time_s, work_s, (float(x), float(y)), bool(step.get('handover')))
            self._ack_at_s = None
        else:
            path.wait(work_s, reach=1.0 if station.shared else 0.0, face_xy_m=(x, y))
            self._ack_at_s = path.time_s if key is not None else None
        path.wait(8 * 3600.0)                    # then stays there until the next step
        self._world.paths[0] = path.build()

    def _part_held_out(self) -> bool:
        q, qd, _ = self._world.joint_state()
        return bool(np.max(np.abs(q - self._present_q)) <= self.PRESENTING_TOLERANCE_RAD
                    and np.max(np.abs(qd)) <= self.PRESENTING_STILL_RADPS)

    def _arm_clear_of(self, station_xy: tuple[float, float]) -> bool:
        poses = self._world.link_poses()
        return all(math.hypot(poses[name][0][0] - station_xy[0], poses[name][0][1] - station_xy[1])
                   > self.ARM_CLEAR_M for name in self.ARM_FRAMES if name in poses)

    def tick(self) -> None:
        now = self._world.sim_time
        if self._waiting is not None and now >= self._waiting[0] and (
                self._part_held_out() if self._waiting[3] else self._arm_clear_of(self._waiting[2])):
            _, work_s, face, handover = self._waiting
            self._waiting = None
            here = self._world.paths[0].state_at(now)
            path = PathBuilder((here.x_m, here.y_m), start_s=now, yaw_rad=here.yaw_rad)
            path.wait(work_s, reach=1.0, face_xy_m=face)
            self._ack_at_s = path.time_s
            path.wait(8 * 3600.0)
            self._world.paths[0] = path.build()
            self._logger.info(f'simulated operator {"takes the part" if handover else "starts"} for step '
                              f'{self._step} at t={now:.2f} s')
        if self._ack_at_s is not None and now >= self._ack_at_s and self._done.service_is_ready():
            self._ack_at_s = None
            self._logger.info(f'simulated operator done with step {self._step} at t={now:.2f} s')
            self._done.call_async(Trigger.Request())


def contacts_msg(stamp, contacts) -> DiagnosticArray:
    """The twin's ground-truth contacts as a DiagnosticArray (see Twin: `twin/contacts`)."""
    statuses = [diagnostic_status(f'{c.person}/{c.region}', c.robot_link, LEVEL_WARN, c.iso_region, {
        'body_regions': ','.join(c.body_regions), 'normal_force_n': repr(c.normal_force_n),
        'closing_speed_mps': repr(c.closing_speed_mps), 'rated_force_stop': str(c.rated_force_stop).lower(),
        'x_m': repr(c.position_m[0]), 'y_m': repr(c.position_m[1]), 'z_m': repr(c.position_m[2])})
        for c in contacts]
    return diagnostic_array(stamp, statuses)


def build_world(config: Any) -> tuple[CellWorld, SafetyScanner]:
    """The cell of the default layout with the scenario's people and the safety scanner."""
    from smartcell.twin.scanner import ScannerConfig, world_scanner
    from smartcell.twin.scenarios import SCENARIOS, scenario_paths
    from smartcell.twin.world import DEFAULT_LAYOUT, CellWorld, connect, default_contact_model
    if config.scenario not in SCENARIOS and config.scenario != TASK_DRIVEN_SCENARIO:
        raise ConfigError(f'unknown scenario {config.scenario!r}; accepted: '
                          f'{", ".join(sorted(SCENARIOS) + [TASK_DRIVEN_SCENARIO])}')
    # Scenario paths are generated up front for the run (8 h when it runs until shut down).
    horizon_s = config.duration_s if config.duration_s > 0 else 8 * 3600.0
    if config.scenario == TASK_DRIVEN_SCENARIO:
        bench = DEFAULT_LAYOUT.station('operator_bench').person_position_m()
        people: tuple[PersonPath, ...] = (PathBuilder(bench).wait(horizon_s).build(),)   # at the bench until a step
    else:
        people = scenario_paths(config.scenario, config.seed, horizon_s, DEFAULT_LAYOUT)
    # refuses a rated force limit above an exposed region's quasi-static limit
    contact_model = default_contact_model(config.rated_force_limit_n, config.payload_kg,
                                          config.body_regions_file or None)
    client = connect(gui=config.gui)
    world = CellWorld(client, DEFAULT_LAYOUT, config.urdf_path or None, seed=config.seed, people=people,
                      physics_rate_hz=config.physics_rate_hz, contact_model=contact_model)
    scanner = world_scanner(world, ScannerConfig(rate_hz=config.tick_rate_hz, noise_std_m=config.scan_noise_m))
    return world, scanner


def main(args: list[str] | None = None) -> int:
    return run_node(Twin, args)


if __name__ == '__main__':
    raise SystemExit(main())
