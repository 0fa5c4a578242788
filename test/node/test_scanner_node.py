"""The scanner node in its own process: LaserScan with two legs in -> one person out, same stamp."""
from __future__ import annotations

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from sensor_msgs.msg import LaserScan

from smartcell.nodes.common import STREAM_QOS
from smartcell.tools.cell_processes import node_command

pytestmark = pytest.mark.ros

INCREMENT = np.deg2rad(0.5)
ANGLE_MIN = -np.deg2rad(135)


def legs_scan(x: float, y: float) -> np.ndarray:
    """Ranges to two 6 cm legs at (x, y +- 0.12) in the scanner frame."""
    angles = ANGLE_MIN + np.arange(541) * INCREMENT
    ranges = np.full(541, np.inf, dtype=np.float32)
    for cy in (y - 0.12, y + 0.12):
        c = np.array([x, cy])
        b = np.cos(angles) * c[0] + np.sin(angles) * c[1]
        disc = b * b - (c @ c - 0.06 ** 2)
        hit = (disc >= 0) & (b > 0)
        ranges[hit] = np.minimum(ranges[hit], (b - np.sqrt(np.where(hit, disc, 0)))[hit])
    return ranges


def test_people_are_published_in_the_world_frame_with_the_scan_stamp(peer, processes):
    processes.start('scanner', node_command('smartcell.nodes.scanner', 'scanner', None,
                                            {'scanner_pose_xy_yaw': [1.0, 0.0, 0.0]}))
    received: list[PoseArray] = []
    diagnostics: list[DiagnosticArray] = []
    peer.node.create_subscription(PoseArray, 'humans', received.append, STREAM_QOS)
    peer.node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    scans = peer.node.create_publisher(LaserScan, 'scan', STREAM_QOS)

    def publish(frame: str, sec: int) -> None:
        msg = LaserScan(angle_min=float(ANGLE_MIN), angle_max=float(ANGLE_MIN + 540 * INCREMENT),
                        angle_increment=float(INCREMENT), range_min=0.05, range_max=9.0)
        msg.ranges = legs_scan(2.0, 0.5)
        msg.header.frame_id, msg.header.stamp.sec = frame, sec
        scans.publish(msg)

    peer.wait_for(lambda: scans.get_subscription_count() > 0, 20, 'scanner subscription', processes)
    sent = []
    while not received:
        sent.append(100 + len(sent))
        publish('scanner_link', sent[-1])
        peer.executor.spin_once(timeout_sec=0.1)
    peer.wait_for(lambda: len(received) == len(sent), 10, 'people for every scan sent', processes)
    person = received[-1]
    assert person.header.frame_id == 'world'
    assert person.header.stamp.sec in sent       # the stamp of the scan it came from, not a receipt time
    sec = sent[-1]
    assert len(person.poses) == 1
    assert person.poses[0].position.x == pytest.approx(3.0, abs=0.05)    # scanner at x=1, leg axes 2 m ahead
    assert person.poses[0].position.y == pytest.approx(0.5, abs=0.05)

    # A scan in the wrong frame produces no people, and the diagnostics say why.
    count = len(received)
    publish('laser_wrong', sec + 1)
    peer.wait_for(lambda: any(s.name == 'smartcell/scanner' and 'laser_wrong' in s.message
                              for d in diagnostics for s in d.status), 5, 'frame error diagnostics', processes)
    assert len(received) == count
