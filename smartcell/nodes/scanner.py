"""Scanner node: the safety laser scanner as a smart sensor that reports people, not points."""
from __future__ import annotations

import dataclasses
import time
import traceback
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Pose, PoseArray
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import LaserScan, PointCloud2, PointField
from visualization_msgs.msg import Marker, MarkerArray

from smartcell.core.node_params import SCANNER
from smartcell.core.params import ConfigError
from smartcell.core.sensors.background import BackgroundError, ScanBackground, read_background_file
from smartcell.core.sensors.people_tracking import PeopleTracker, Pose2D, TrackerConfig
from smartcell.core.sensors.scan_validation import (RawScan, RepeatedScan, ScanGate, ScanLayout, ScanLimits,
                                                    ScanRejected, check_publishers)
from smartcell.nodes.common import (LEVEL_ERROR, LEVEL_OK, STREAM_PUB_QOS, declare_config, diagnostic_array,
                                    diagnostic_status, run_node)

# `humans/velocities`: one PointCloud2 point per person, in the order of `humans` and with its header;
# every field float64 (m, m/s, (m/s)^2): the tracker's Kalman mean and velocity covariance.
VELOCITY_FIELDS = ('x', 'y', 'vx', 'vy', 'var_vx', 'cov_vx_vy', 'var_vy')
_VELOCITY_DTYPE = np.dtype([(name, '<f8') for name in VELOCITY_FIELDS])


def velocity_cloud(header, tracks) -> PointCloud2:
    """The tracks' positions, velocities and velocity covariances as a PointCloud2 (layout above)."""
    points = np.array([(*t.position_m, *t.velocity_mps, *t.velocity_cov_m2ps2) for t in tracks],
                      dtype=float).reshape(-1, len(VELOCITY_FIELDS))
    return PointCloud2(header=header, height=1, width=len(points), is_bigendian=False,
                       point_step=_VELOCITY_DTYPE.itemsize, row_step=_VELOCITY_DTYPE.itemsize * len(points),
                       is_dense=True, data=np.ascontiguousarray(points, dtype='<f8').tobytes(),
                       fields=[PointField(name=name, offset=8 * i, datatype=PointField.FLOAT64, count=1)
                               for i, name in enumerate(VELOCITY_FIELDS)])


def velocities_from_cloud(msg: PointCloud2) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """(positions (N, 2) m, velocities (N, 2) m/s, covariances (N, 2, 2) (m/s)^2) from a cloud in the
    layout above, or the reason it is not one (the receiver then judges without velocities)."""
    layout = [(f.name, f.offset, f.datatype, f.count) for f in msg.fields]
    expected = [(name, 8 * i, PointField.FLOAT64, 1) for i, name in enumerate(VELOCITY_FIELDS)]
    if layout != expected or msg.is_bigendian or msg.point_step != _VELOCITY_DTYPE.itemsize:
        return f'humans/velocities: fields {layout}, expected {expected} little endian'
    if msg.height != 1 or msg.row_step != msg.point_step * msg.width or len(msg.data) != msg.row_step:
        return (f'humans/velocities: {len(msg.data)} bytes for height {msg.height}, width {msg.width}, '
                f'row_step {msg.row_step}')
    points = np.frombuffer(bytes(msg.data), dtype='<f8').reshape(msg.width, len(VELOCITY_FIELDS))
    cov = np.stack((points[:, 4:6], points[:, 5:7]), axis=1)
    return points[:, 0:2].copy(), points[:, 2:4].copy(), cov


# An immediate ERROR on /diagnostics for every rejected scan, but the same reason at most this
# often (a broken driver at 30 Hz would flood it); the 1 s report carries the latest one anyway.
REJECT_REPORT_PERIOD_S = 0.25


def raw_scan(msg: LaserScan) -> RawScan:
    """The message's fields, nothing judged yet (ranges stay float32: the validator copies them)."""
    return RawScan(stamp_sec=msg.header.stamp.sec, stamp_nanosec=msg.header.stamp.nanosec,
                   frame_id=msg.header.frame_id, angle_min_rad=msg.angle_min, angle_max_rad=msg.angle_max,
                   angle_increment_rad=msg.angle_increment, time_increment_s=msg.time_increment,
                   scan_time_s=msg.scan_time, range_min_m=msg.range_min, range_max_m=msg.range_max,
                   ranges_m=np.asarray(msg.ranges, dtype=np.float32), intensities_count=len(msg.intensities))


def load_background(path_text: str, frame_id: str, scanner_pose_xy_yaw, layout: ScanLayout | None
                    ) -> ScanBackground | None:
    """The `background_file` parameter's background, checked against this scanner (BackgroundError,
    a ValueError, when missing, unreadable or taught for another frame, mount or layout); None when
    the parameter is empty. A relative path is in the installed share directory (config/...)."""
    if not path_text:
        return None
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        from smartcell.share import ShareFileMissing, share_dir
        try:
            path = share_dir() / path
        except ShareFileMissing as exc:
            raise BackgroundError(f'background file {path_text}: relative, but {exc}') from None
    background = read_background_file(path)
    try:
        background.check_fits(frame_id, scanner_pose_xy_yaw, layout)
    except BackgroundError as exc:
        raise BackgroundError(f'background file {path}: {exc}') from None
    return background


class Scanner(Node):
    """Tracks people in the safety laser scanner's plane.

    Subscribes: `scan` (sensor_msgs/LaserScan, frame `scanner_frame`, sensor-data QoS: best effort,
    what lidar drivers publish with; reliable publishers connect too).
    Publishes: `humans` (geometry_msgs/PoseArray, world frame, stamp of the scan; one pose per
    tracked person: position in m, orientation = heading of motion about z) for every *valid* scan
    only; `humans/velocities` (sensor_msgs/PointCloud2, same header, published just before `humans`:
    one point per person in the same order, float64 fields x, y (m), vx, vy (m/s), var_vx, cov_vx_vy,
    var_vy ((m/s)^2), the Kalman filter's estimate; see VELOCITY_FIELDS);
    `humans/markers` (visualization_msgs/MarkerArray: track id and velocity arrow, for RViz);
    `/diagnostics` (scan rate, people count; ERROR at once naming the reason when a scan is
    rejected, when a stray node publishes `scan`, or when scans stop).
    An invalid scan (smartcell.core.sensors.scan_validation), a second or unexpected publisher on
    `scan`, or an unexpected exception publishes NO people: the supervisor sees silence and stops
    after its people_timeout_s. Never "0 people" for a scan it cannot trust.
    With `background_file` set, readings at the empty cell's static background (fence, table,
    bench) are not leg candidates (smartcell.core.sensors.background; a bad file refuses to start).
    Parameters: see smartcell.core.node_params.SCANNER (all read-only, units in the names).
    """

    def __init__(self) -> None:
        super().__init__('scanner')
        c = self._config = declare_config(self, SCANNER)
        try:
            x, y, yaw = c.scanner_pose_xy_yaw
            self._scanner_pose = Pose2D(x, y, yaw)
            # The core's factories also take the campaign's resolved YAML dicts: one mapping for both.
            values = dataclasses.asdict(c)
            self._tracker_config = TrackerConfig.from_params(values)
            layout = ScanLayout.from_param(c.scan_layout)
            self._background = load_background(c.background_file, c.scanner_frame, c.scanner_pose_xy_yaw, layout)
            # The background fixes the beam layout: a scan of any other is rejected (layout_changed), so
            # a background of another scanner can never be applied to the wrong beams.
            self._gate = ScanGate(ScanLimits.from_params(values),
                                  self._background.layout if self._background is not None else layout)
        except ValueError as exc:
            raise ConfigError(f'scanner: {exc}') from exc
        self._check_clock = c.max_stamp_offset_s > 0.0
        self._expected_publisher = c.expected_scan_publisher
        self._tracker: PeopleTracker | None = None
        self._world_frame = c.world_frame
        self._scans = 0
        self._accepted = 0
        self._last_accepted_s: float | None = None
        self._last_people: PoseArray | None = None
        self._last_velocities: PointCloud2 | None = None
        self._people = 0
        self._rejected_since_report = 0
        self._rejections: dict[str, int] = {}              # fault name -> scans rejected for it
        self._last_reason = ''
        self._reported: tuple[str, float] = ('', -1e9)      # (fault name, monotonic s) of the last immediate ERROR
        self._humans_pub = self.create_publisher(PoseArray, 'humans', STREAM_PUB_QOS)
        self._velocities_pub = self.create_publisher(PointCloud2, 'humans/velocities', STREAM_PUB_QOS)
        self._markers_pub = self.create_publisher(MarkerArray, 'humans/markers', STREAM_PUB_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._scan_sub = self.create_subscription(LaserScan, 'scan', self._on_scan, qos_profile_sensor_data)
        self._scan_topic = self._scan_sub.topic_name
        self.create_timer(1.0, self._on_report_timer)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_scan(self, msg: LaserScan) -> None:
        try:
            self._handle_scan(msg)
        except Exception as exc:  # noqa: BLE001 - the guard: nothing may kill the safety input
            self.get_logger().error(f'scan handling failed, people withheld: {traceback.format_exc()}')
            self._reject(f'internal_error: {type(exc).__name__}: {exc}')

    def _handle_scan(self, msg: LaserScan) -> None:
        self._scans += 1
        stray = check_publishers(self._scan_publishers(), self._expected_publisher)
        if stray is not None:
            # Which publisher sent this scan is unknown: none of them is trusted.
            self._reject(f'stray_publisher: {stray}')
            return
        result = self._gate.check(raw_scan(msg), self._now_s() if self._check_clock else None)
        if isinstance(result, ScanRejected):
            self._reject(result.reason)
            return
        if isinstance(result, RepeatedScan):
            if self._last_people is not None:                  # same scan, same answer, no new state
                self._velocities_pub.publish(self._last_velocities)
                self._humans_pub.publish(self._last_people)
            return
        if self._tracker is None or result.rearmed:
            # Built once for the layout fixed by the gate; again only on a new time base (old tracks
            # carry stamps of the old one), never on a layout change (that scan was rejected).
            self._tracker = PeopleTracker(self._tracker_config, self._scanner_pose, result.layout.geometry(),
                                          self._background)
        tracks = self._tracker.update(result.ranges_m, result.stamp_s)
        self._accepted += 1
        self._last_accepted_s = self._now_s()
        self._people = len(tracks)
        people = PoseArray()
        people.header.stamp = msg.header.stamp
        people.header.frame_id = self._world_frame
        for track in tracks:
            pose = Pose()
            pose.position.x, pose.position.y = track.position_m
            pose.orientation.z = float(np.sin(track.heading_rad / 2.0))
            pose.orientation.w = float(np.cos(track.heading_rad / 2.0))
            people.poses.append(pose)
        velocities = velocity_cloud(people.header, tracks)
        # Velocities first: a receiver that pairs by stamp finds them when the positions arrive.
        self._velocities_pub.publish(velocities)
        self._humans_pub.publish(people)
        self._last_people, self._last_velocities = people, velocities
        self._reported = ('', -1e9)             # the next rejection after good data is reported at once
        if self._markers_pub.get_subscription_count():
            self._markers_pub.publish(self._markers(people, tracks))

    def _scan_publishers(self) -> list[tuple[str, str]]:
        return [(info.node_namespace, info.node_name)
                for info in self.get_publishers_info_by_topic(self._scan_topic)]

    def _reject(self, reason: str) -> None:
        """No people for this scan; ERROR on /diagnostics at once (per reason at most every 0.25 s)."""
        fault, now = reason.split(':', 1)[0], time.monotonic()
        self._rejected_since_report += 1
        self._rejections[fault] = self._rejections.get(fault, 0) + 1
        self._last_reason = reason
        if fault != self._reported[0] or now - self._reported[1] >= REJECT_REPORT_PERIOD_S:
            self._reported = (fault, now)
            self._publish_diagnostics(LEVEL_ERROR, f'scan rejected, people withheld: {reason}')
            # In the node's log too (what a stalled or stopped run's logs are read for), at most every 5 s.
            self.get_logger().error(f'scan rejected, people withheld: {reason}', throttle_duration_sec=5.0)

    def _on_report_timer(self) -> None:
        try:
            now_s = self._now_s()
            age = None if self._last_accepted_s is None else now_s - self._last_accepted_s
            if self._rejected_since_report:
                level, message = LEVEL_ERROR, (f'{self._rejected_since_report} scans rejected in the last report '
                                               f'period, people withheld; last: {self._last_reason}')
            elif age is None or age > self._config.scan_timeout_s:
                level, message = LEVEL_ERROR, 'no valid laser scan received' if age is None else \
                    f'last valid scan {age:.2f} s ago'
            else:
                level, message = LEVEL_OK, f'{self._people} people tracked'
            self._rejected_since_report = 0
            self._publish_diagnostics(level, message)
        except Exception:  # noqa: BLE001 - a diagnostics hiccup must not end the node
            self.get_logger().error(f'diagnostics failed: {traceback.format_exc()}')

    def _publish_diagnostics(self, level: int, message: str) -> None:
        now_s = self._now_s()
        age = None if self._last_accepted_s is None else now_s - self._last_accepted_s
        rejected = self._rejections
        status = diagnostic_status('smartcell/scanner', self._config.scanner_frame, level, message, {
            'scans_received': self._scans, 'scans_accepted': self._accepted,
            'scans_rejected': sum(rejected.values()), 'rejected_by_reason': rejected or 'none',
            'people': self._people, 'last_valid_scan_age_s': 'never' if age is None else age,
            'last_rejection': self._last_reason or 'none'})
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))

    def _markers(self, people: PoseArray, tracks) -> MarkerArray:
        markers = MarkerArray(markers=[Marker(header=people.header, action=Marker.DELETEALL)])
        for pose, track in zip(people.poses, tracks):
            arrow = Marker(header=people.header, ns='people', id=track.track_id, type=Marker.ARROW)
            arrow.pose = pose
            arrow.scale.x, arrow.scale.y, arrow.scale.z = max(track.speed_mps, 0.05), 0.08, 0.08
            arrow.color.r, arrow.color.a = 1.0, 0.9
            markers.markers.append(arrow)
        return markers


def main(args: list[str] | None = None) -> int:
    return run_node(Scanner, args)


if __name__ == '__main__':
    raise SystemExit(main())
