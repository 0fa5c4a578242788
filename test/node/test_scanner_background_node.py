"""The scanner node with a static background file: refused when it does not fit, applied when it does."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from smartcell.core.sensors.background import ScanBackground, write_background_file
from smartcell.core.sensors.scan_validation import ScanLayout
from smartcell.tools.cell_processes import node_command

from scan_helpers import ANGLE_MIN, BEAMS, INCREMENT, RANGE_MAX_M, RANGE_MIN_M, scan_msg

pytestmark = pytest.mark.ros

LAYOUT = ScanLayout(ANGLE_MIN, INCREMENT, BEAMS, RANGE_MIN_M, RANGE_MAX_M)
ANGLES = ANGLE_MIN + np.arange(BEAMS) * INCREMENT
POSE = [1.0, 0.0, 0.0]              # the node tests' scanner pose


def wall(distance_m: float = 1.5) -> np.ndarray:
    ranges = np.full(BEAMS, np.inf)
    front = np.abs(ANGLES) < math.radians(60.0)
    ranges[front] = distance_m / np.cos(ANGLES[front])
    return ranges


def with_legs(ranges: np.ndarray, x_m: float, radius_m: float = 0.05) -> np.ndarray:
    """Two legs of radius_m centred at x_m (scanner frame), y = +-0.12 m, in front of `ranges`."""
    out = ranges.copy()
    d = np.stack((np.cos(ANGLES), np.sin(ANGLES)), axis=1)
    for cy in (-0.12, 0.12):
        b = d @ np.array([x_m, cy])
        disc = b * b - (x_m * x_m + cy * cy - radius_m ** 2)
        hit = (disc >= 0) & (b > 0)
        out[hit] = np.minimum(out[hit], (b - np.sqrt(np.maximum(disc, 0)))[hit])
    return out


def wall_piece() -> np.ndarray:
    """A leg-wide piece of the wall, the rest of it in shadow (issue 13's ghost)."""
    piece = np.full(BEAMS, np.inf)
    centre = int(np.argmin(np.abs(ANGLES)))
    piece[centre:centre + 20] = wall()[centre:centre + 20]
    return piece


@pytest.fixture
def background_file(tmp_path):
    path = tmp_path / 'background.json'
    write_background_file(path, ScanBackground(LAYOUT, wall(), 'scanner_link', tuple(POSE)))
    return path


def run_scanner(repo, **params) -> subprocess.CompletedProcess:
    command = [sys.executable, '-m', 'smartcell.nodes.scanner', '--ros-args']
    for key, value in {'scanner_pose_xy_yaw': POSE, **params}.items():
        command += ['-p', f'{key}:={value}']
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize('params, message', [
    ({'scanner_pose_xy_yaw': [1.0, 0.1, 0.0]}, 'teach the background again'),
    ({'scanner_frame': 'laser'}, "taught for frame 'scanner_link'"),
    ({'scan_layout': [ANGLE_MIN, INCREMENT, float(BEAMS - 1), RANGE_MIN_M, RANGE_MAX_M]}, 'beam layout'),
])
def test_a_background_of_another_scanner_refuses_to_start(repo, background_file, params, message):
    run = run_scanner(repo, background_file=str(background_file), **params)
    assert run.returncode == 2, run.stderr[-2000:]
    assert message in run.stderr and str(background_file) in run.stderr


@pytest.mark.parametrize('content, message', [(None, 'No such file'), ('{"format": ', 'background file'),
                                              ('{"ranges_m": [NaN]}', 'not strict JSON')])
def test_a_missing_or_corrupt_background_refuses_to_start(repo, tmp_path, content, message):
    path = tmp_path / 'bg.json'
    if content is not None:
        path.write_text(content)
    run = run_scanner(repo, background_file=str(path))
    assert run.returncode == 2, run.stderr[-2000:]
    assert message in run.stderr and str(path) in run.stderr


def test_with_the_background_a_wall_piece_is_nobody_and_a_person_at_the_wall_is_somebody(peer, processes,
                                                                                      background_file):
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import PoseArray
    from sensor_msgs.msg import LaserScan

    from smartcell.nodes.common import STREAM_QOS
    processes.start('scanner', node_command('smartcell.nodes.scanner', 'scanner', None,
                                            {'scanner_pose_xy_yaw': POSE, 'background_file': str(background_file)}))
    people: dict[tuple[int, int], PoseArray] = {}
    peer.node.create_subscription(PoseArray, 'humans', lambda m: people.update(
        {(m.header.stamp.sec, m.header.stamp.nanosec): m}), STREAM_QOS)
    publisher = peer.node.create_publisher(LaserScan, 'scan', STREAM_QOS)
    peer.wait_for(lambda: publisher.get_subscription_count() > 0, 20, 'scanner subscription', processes)

    def answers(ranges: np.ndarray, count: int) -> list[PoseArray]:
        """Scans of `ranges` (stamped now, best effort may drop some) until `count` come back as people."""
        sent: list[tuple[int, int]] = []

        def publish() -> bool:
            ns = peer.node.get_clock().now().nanoseconds
            stamp = Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
            sent.append((stamp.sec, stamp.nanosec))
            publisher.publish(scan_msg(stamp, ranges=ranges))
            peer.executor.spin_once(timeout_sec=0.05)
            return sum(key in people for key in sent) >= count
        peer.wait_for(publish, 20, 'people for the scans', processes)
        return [people[key] for key in sent if key in people]

    assert all(len(p.poses) == 0 for p in answers(wall_piece(), 5)), 'the wall piece became a person'
    last = answers(with_legs(wall(), 1.5 - 0.05), 3)[-1]          # legs touching the wall
    assert len(last.poses) == 1
    assert abs(last.poses[0].position.x - (1.0 + 1.45)) < 0.1 and abs(last.poses[0].position.y) < 0.1


def test_teach_background_records_the_median_of_the_running_scan(peer, repo, tmp_path):
    """The commissioning command against a live `scan` topic: the file it writes is the wall, and fits."""
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import LaserScan

    from smartcell.core.sensors.background import read_background_file
    from smartcell.nodes.common import STREAM_QOS
    output = tmp_path / 'taught.json'
    teach = subprocess.Popen([sys.executable, '-m', 'smartcell.cli', 'teach-background', '--output', str(output),
                              '--scans', '20', '--timeout', '60', '--config', str(repo / 'config' / 'cell.yaml')],
                             cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    publisher = peer.node.create_publisher(LaserScan, 'scan', STREAM_QOS)
    rng = np.random.default_rng(4)
    ticks = [0]

    def publish() -> bool:
        ticks[0] += 1
        stamp = Time(sec=100 + ticks[0] // 30, nanosec=(ticks[0] % 30) * 33_000_000)
        publisher.publish(scan_msg(stamp, ranges=wall() + rng.normal(0.0, 0.01, BEAMS)))
        peer.executor.spin_once(timeout_sec=0.03)
        return teach.poll() is not None
    try:
        peer.wait_for(publish, 90, 'teach-background to finish')
    finally:
        if teach.poll() is None:
            teach.kill()
    out, err = teach.communicate(timeout=10)
    assert teach.returncode == 0, err[-2000:]
    taught = read_background_file(output)
    finite = np.isfinite(wall())
    assert np.array_equal(np.isfinite(taught.ranges_m), finite)
    assert np.max(np.abs(taught.ranges_m[finite] - wall()[finite])) < 0.015
    assert taught.scans == 20 and taught.frame_id == 'scanner_link'
