"""Robot state node: the cell's TF tree and robot description, for RViz, Foxglove and any TF consumer."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PoseArray, TransformStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA, String
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import Marker, MarkerArray

from smartcell.core.node_params import ROBOT_STATE
from smartcell.core.params import ConfigError
from smartcell.core.robot.command_validation import Invalid
from smartcell.core.robot.kinematics import JOINT_NAMES, LINK_CAPSULE_RADII, link_capsules
from smartcell.core.robot.tf_tree import (Capsule, Transform, UrdfError, ZoneView, matrix_to_quaternion, parse_urdf,
                                          people_transforms, protective_zone, yaw_transform, zone_view)
from smartcell.core.safety.verdict import VERDICT_STATUS_NAME
from smartcell.nodes.common import (LEVEL_ERROR, LEVEL_OK, LEVEL_WARN, declare_config,
                                    diagnostic_array, diagnostic_status, guarded, joint_state_sample, qos_profile,
                                    run_node)
from smartcell.interfaces import topic
from smartcell.share import share_file

# Zone colours (r, g, b, alpha): see-through, so the arm stays visible inside its zone.
ZONE_COLOURS = {'clear': (0.1, 0.8, 0.2, 0.12), 'warning': (1.0, 0.6, 0.0, 0.25),
                'protective': (1.0, 0.0, 0.0, 0.35), 'fault': (0.8, 0.0, 0.8, 0.35)}
ZONE_NAMESPACE = 'protective_zone'


def zone_markers(capsules: tuple[Capsule, ...], view: ZoneView, frame: str, stamp) -> MarkerArray:
    """One cylinder and one pair of end spheres per grown link capsule; DELETEALL when there is no S_p."""
    if view.protective_distance_m is None:
        return MarkerArray(markers=[Marker(ns=ZONE_NAMESPACE, action=Marker.DELETEALL)])
    colour = ColorRGBA()
    colour.r, colour.g, colour.b, colour.a = ZONE_COLOURS[view.zone]
    markers = []
    for index, capsule in enumerate(capsules):
        start, end = np.asarray(capsule.start_m), np.asarray(capsule.end_m)
        axis = end - start
        length = float(np.linalg.norm(axis))
        cylinder = Marker(ns=ZONE_NAMESPACE, id=2 * index, type=Marker.CYLINDER, action=Marker.ADD, color=colour)
        cylinder.header.frame_id, cylinder.header.stamp = frame, stamp
        cylinder.pose.position.x, cylinder.pose.position.y, cylinder.pose.position.z = (float(v) for v in
                                                                                        (start + end) / 2.0)
        (cylinder.pose.orientation.x, cylinder.pose.orientation.y, cylinder.pose.orientation.z,
         cylinder.pose.orientation.w) = matrix_to_quaternion(_z_along(axis / length if length > 0.0 else axis))
        cylinder.scale.x = cylinder.scale.y = 2.0 * capsule.radius_m
        cylinder.scale.z = max(length, 1e-3)
        ends = Marker(ns=ZONE_NAMESPACE, id=2 * index + 1, type=Marker.SPHERE_LIST, action=Marker.ADD, color=colour)
        ends.header.frame_id, ends.header.stamp = frame, stamp
        ends.pose.orientation.w = 1.0
        ends.scale.x = ends.scale.y = ends.scale.z = 2.0 * capsule.radius_m
        ends.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in (start, end)]
        markers += [cylinder, ends]
    return MarkerArray(markers=markers)


def _z_along(direction: np.ndarray) -> np.ndarray:
    """A rotation whose z axis is `direction` (unit; a zero vector gives the identity)."""
    if not np.any(direction):
        return np.eye(3)
    helper = np.array([1.0, 0.0, 0.0]) if abs(direction[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, direction)
    x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(direction, x), direction])


def transform_msg(transform: Transform, stamp) -> TransformStamped:
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = transform.parent
    msg.child_frame_id = transform.child
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = transform.translation_m
    (msg.transform.rotation.x, msg.transform.rotation.y, msg.transform.rotation.z,
     msg.transform.rotation.w) = transform.rotation_xyzw
    return msg


class RobotState(Node):
    """Broadcasts every frame the cell's messages name, and the robot description.

    Subscribes: `joint_states` (sensor_msgs/JointState from the arm node, rad), `humans`
    (geometry_msgs/PoseArray from the scanner node, world frame, m), `safety/verdict` (the
    supervisor's verdict: its zone and S_p, for drawing only).
    Publishes: `/tf_static` (tf2_msgs/TFMessage, transient local: world -> base_link from
    robot_base_xyz_yaw, world -> scanner_frame from scanner_pose_xy_yaw, the URDF's fixed joints);
    `/tf` (tf2_msgs/TFMessage: the URDF's moving joints for every valid joint state, stamped with
    it, as robot_state_publisher does; world -> <person_frame_prefix><i> for every `humans`
    message, stamped with it); `/robot_description` (std_msgs/String, transient local: the URDF);
    `safety/zones` (visualization_msgs/MarkerArray in base_link: the protective zone, i.e. the
    arm's link capsules at the latest joint state grown by the verdict's S_p, coloured by its zone;
    cleared while nobody is tracked); `/diagnostics` (joint states and people received; ERROR
    naming why a message was not used, WARN when joint states stop).
    With links_tf false (hardware with robot_state_publisher) it publishes only the layout and
    people frames; robot_state_publisher publishes the links and the description.
    An invalid joint state or people message publishes no frames for it: a frame drawn in a
    guessed place is worse than one that goes stale where every TF consumer sees it.
    Parameters: see smartcell.core.node_params.ROBOT_STATE (all read-only, units in the names).
    """

    def __init__(self) -> None:
        super().__init__('robot_state')
        self._config = declare_config(self, ROBOT_STATE)
        config = self._config
        self._world = config.world_frame
        try:
            base, scanner = config.robot_base_xyz_yaw, config.scanner_pose_xy_yaw
            if len(base) != 4 or len(scanner) != 3 or not all(math.isfinite(v) for v in (*base, *scanner)):
                raise ValueError('robot_base_xyz_yaw needs 4 finite numbers and scanner_pose_xy_yaw 3, got '
                                 f'{base} and {scanner}')
            urdf_path = Path(config.urdf_path) if config.urdf_path else share_file('urdf', 'ur5e.urdf')
            self._urdf = urdf_path.read_text()
            self._model = parse_urdf(self._urdf)
        except (ValueError, OSError, UrdfError) as exc:
            raise ConfigError(f'robot_state: {exc}') from exc
        if self._model.root != 'base_link':
            raise ConfigError(f'robot_state: the URDF root link is {self._model.root!r}; the layout places base_link')
        missing = set(JOINT_NAMES) - set(self._model.moving_joints)
        if missing:
            raise ConfigError(f'robot_state: the URDF lacks the arm joints {sorted(missing)}')
        self._layout = (yaw_transform(self._world, 'base_link', base[:3], base[3]),
                        yaw_transform(self._world, config.scanner_frame,
                                      (scanner[0], scanner[1], config.scanner_height_m), scanner[2]))
        self._links_tf = config.links_tf
        self._joint_states = 0
        self._people_messages = 0
        self._last_joint_state_s: float | None = None
        self._last_problem = ''
        self._problems = 0
        self._capsules_base: np.ndarray | None = None   # link capsules at the latest joint state
        self._zone_drawn = False

        self._tf_pub = self.create_publisher(TFMessage, '/tf', qos_profile(topic('/tf').publisher_qos))
        self._tf_static_pub = self.create_publisher(TFMessage, '/tf_static',
                                                     qos_profile(topic('/tf_static').publisher_qos))
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        if self._links_tf:
            self._description_pub = self.create_publisher(
                String, '/robot_description', qos_profile(topic('/robot_description').publisher_qos))
            self._description_pub.publish(String(data=self._urdf))
        # Also without links_tf: the joint states place the protective zone.
        self.create_subscription(JointState, 'joint_states', guarded(self._on_joint_states, self._on_error),
                                 qos_profile(topic('joint_states').subscriber_qos))
        self._zones_pub = self.create_publisher(MarkerArray, 'safety/zones',
                                                qos_profile(topic('safety/zones').publisher_qos))
        self.create_subscription(DiagnosticArray, 'safety/verdict', guarded(self._on_verdict, self._on_error),
                                 qos_profile(topic('safety/verdict').subscriber_qos))
        self.create_subscription(PoseArray, 'humans', guarded(self._on_humans, self._on_error),
                                 qos_profile(topic('humans').subscriber_qos))
        static = self._layout + (self._model.fixed_transforms() if self._links_tf else ())
        stamp = self.get_clock().now().to_msg()
        self._tf_static_pub.publish(TFMessage(transforms=[transform_msg(t, stamp) for t in static]))
        self.create_timer(1.0, guarded(self._on_report_timer, self._on_error))

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_states(self, msg: JointState) -> None:
        sample = joint_state_sample(msg, allow_extra_joints=True)
        if isinstance(sample, Invalid):
            self._problem(f'joint state not used: {sample.reason}')
            return
        if self._links_tf:
            positions = dict(zip(JOINT_NAMES, sample.positions_rad, strict=True))
            transforms = self._model.moving_transforms(positions)
            self._tf_pub.publish(TFMessage(transforms=[transform_msg(t, msg.header.stamp) for t in transforms]))
        self._joint_states += 1
        self._last_joint_state_s = self._now_s()
        self._capsules_base = link_capsules(sample.positions_rad)

    def _on_verdict(self, msg: DiagnosticArray) -> None:
        statuses = [s for s in msg.status if s.name == VERDICT_STATUS_NAME]
        if not statuses or self._capsules_base is None or not self._zones_pub.get_subscription_count():
            return
        view = zone_view({kv.key: kv.value for kv in statuses[0].values})
        if isinstance(view, str):
            self._problem(f'zone not drawn: {view}')
            return
        if view.protective_distance_m is None and not self._zone_drawn:
            return                           # nothing drawn, nothing to clear
        capsules = protective_zone(self._capsules_base, LINK_CAPSULE_RADII, view.protective_distance_m or 0.0)
        self._zones_pub.publish(zone_markers(capsules, view, 'base_link', msg.header.stamp))
        self._zone_drawn = view.protective_distance_m is not None

    def _on_humans(self, msg: PoseArray) -> None:
        if msg.header.frame_id != self._world:
            self._problem(f'humans in frame {msg.header.frame_id!r}, expected {self._world!r}: no person frames')
            return
        positions = [(p.position.x, p.position.y) for p in msg.poses]
        if not all(math.isfinite(v) for xy in positions for v in xy):
            self._problem('humans with a non-finite position: no person frames')
            return
        people = people_transforms(self._world, positions, self._config.person_frame_prefix)
        self._people_messages += 1
        if people:
            self._tf_pub.publish(TFMessage(transforms=[transform_msg(t, msg.header.stamp) for t in people]))

    def _problem(self, reason: str) -> None:
        self._problems += 1
        if reason != self._last_problem:
            self.get_logger().error(reason)
            self._publish_report(LEVEL_ERROR, reason)
        self._last_problem = reason

    def _on_error(self, where: str, exc: BaseException) -> None:
        self._problem(f'internal error in {where}: {exc!r}')

    def _on_report_timer(self) -> None:
        level, message = LEVEL_OK, 'frames published'
        if self._links_tf:
            age = None if self._last_joint_state_s is None else self._now_s() - self._last_joint_state_s
            if age is None or age > self._config.stale_timeout_s:
                level, message = LEVEL_WARN, 'no valid joint states: link frames are stale'
        if self._last_problem:
            level, message = LEVEL_ERROR, self._last_problem
            self._last_problem = ''
        self._publish_report(level, message)

    def _publish_report(self, level: int, message: str) -> None:
        status = diagnostic_status('smartcell: robot_state', 'robot_state', level, message, {
            'joint_states_used': self._joint_states, 'people_messages_used': self._people_messages,
            'messages_not_used': self._problems, 'links_tf': self._links_tf})
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))


def main(args: list[str] | None = None) -> int:
    return run_node(RobotState, args)


if __name__ == '__main__':
    raise SystemExit(main())
