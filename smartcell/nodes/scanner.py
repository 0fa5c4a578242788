"""Scanner node: the safety laser scanner as a smart sensor that reports people, not points."""
from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Pose, PoseArray
from rclpy.node import Node
from sensor_msgs.msg import LaserScan
from visualization_msgs.msg import Marker, MarkerArray

from smartcell.core.node_params import SCANNER
from smartcell.core.sensors.people_tracking import PeopleTracker, Pose2D, ScanGeometry, TrackerConfig
from smartcell.nodes.common import (LEVEL_ERROR, LEVEL_OK, STREAM_QOS, declare_parameters, diagnostic_array,
                                    diagnostic_status, run_node, stamp_to_s)


class Scanner(Node):
    """Tracks people in the safety laser scanner's plane.

    Subscribes: `scan` (sensor_msgs/LaserScan, frame `scanner_frame`).
    Publishes: `humans` (geometry_msgs/PoseArray, world frame, stamp of the scan; one pose per
    tracked person: position in m, orientation = heading of motion about z);
    `humans/markers` (visualization_msgs/MarkerArray: track id and velocity arrow, for RViz);
    `/diagnostics` (scan rate, people count, frame errors; ERROR when scans stop).
    Parameters: see smartcell.core.node_params.SCANNER (all read-only, units in the names).
    """

    def __init__(self) -> None:
        super().__init__('scanner')
        self._config = declare_parameters(self, SCANNER)
        x, y, yaw = self._config['scanner_pose_xy_yaw']
        self._scanner_pose = Pose2D(x, y, yaw)
        self._tracker_config = TrackerConfig.from_params(self._config)
        self._tracker: PeopleTracker | None = None
        self._geometry: ScanGeometry | None = None
        self._world_frame = self._config['world_frame']
        self._scans = 0
        self._last_scan_s: float | None = None
        self._last_error = ''
        self._people = 0
        self._humans_pub = self.create_publisher(PoseArray, 'humans', STREAM_QOS)
        self._markers_pub = self.create_publisher(MarkerArray, 'humans/markers', STREAM_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(LaserScan, 'scan', self._on_scan, STREAM_QOS)
        self.create_timer(1.0, self._publish_diagnostics)

    def _on_scan(self, msg: LaserScan) -> None:
        if msg.header.frame_id != self._config['scanner_frame']:
            # No people output: the supervisor sees silence and stops, which is the safe reading.
            self._last_error = (f'scan frame {msg.header.frame_id!r} is not the configured '
                                f'{self._config["scanner_frame"]!r}; people not published')
            return
        geometry = ScanGeometry(msg.angle_min, msg.angle_increment, msg.range_min, msg.range_max)
        if self._tracker is None or geometry != self._geometry:
            self._geometry = geometry
            self._tracker = PeopleTracker(self._tracker_config, self._scanner_pose, geometry)
        stamp_s = stamp_to_s(msg.header.stamp)
        tracks = self._tracker.update(np.asarray(msg.ranges, dtype=float), stamp_s)
        self._scans += 1
        self._last_scan_s = self.get_clock().now().nanoseconds * 1e-9
        self._people = len(tracks)
        self._last_error = ''
        people = PoseArray()
        people.header.stamp = msg.header.stamp
        people.header.frame_id = self._world_frame
        for track in tracks:
            pose = Pose()
            pose.position.x, pose.position.y = track.position_m
            pose.orientation.z = float(np.sin(track.heading_rad / 2.0))
            pose.orientation.w = float(np.cos(track.heading_rad / 2.0))
            people.poses.append(pose)
        self._humans_pub.publish(people)
        if self._markers_pub.get_subscription_count():
            self._markers_pub.publish(self._markers(people, tracks))

    def _markers(self, people: PoseArray, tracks) -> MarkerArray:
        markers = MarkerArray(markers=[Marker(header=people.header, action=Marker.DELETEALL)])
        for pose, track in zip(people.poses, tracks):
            arrow = Marker(header=people.header, ns='people', id=track.track_id, type=Marker.ARROW)
            arrow.pose = pose
            arrow.scale.x, arrow.scale.y, arrow.scale.z = max(track.speed_mps, 0.05), 0.08, 0.08
            arrow.color.r, arrow.color.a = 1.0, 0.9
            markers.markers.append(arrow)
        return markers

    def _publish_diagnostics(self) -> None:
        now_s = self.get_clock().now().nanoseconds * 1e-9
        age = None if self._last_scan_s is None else now_s - self._last_scan_s
        stale = age is None or age > self._config['scan_timeout_s']
        level, message = LEVEL_OK, f'{self._people} people tracked'
        if self._last_error:
            level, message = LEVEL_ERROR, self._last_error
        elif stale:
            level, message = LEVEL_ERROR, 'no laser scan received' if age is None else f'last scan {age:.2f} s ago'
        status = diagnostic_status('smartcell/scanner', self._config['scanner_frame'], level, message, {
            'scans_received': self._scans, 'people': self._people,
            'last_scan_age_s': 'never' if age is None else age})
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))


def main(args: list[str] | None = None) -> int:
    return run_node(Scanner, args)


if __name__ == '__main__':
    raise SystemExit(main())
