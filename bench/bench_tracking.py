"""People tracking benchmarks: the scan validator's cost, and the tracker against the twin's ground truth.

    .venv/bin/python bench/bench_tracking.py [--scenario intrusion,shift_two_people] [--duration-s 120] [--seed 3]

1. validate_scan on a 541-beam scan (the scanner node runs it on every scan): p50/p99 in us, and
   the ROS graph query the node makes per scan (get_publishers_info_by_topic), when rclpy is there.
2. The core PeopleTracker fed the simulated scanner of a twin scenario (noise 1 cm, 30 Hz, the
   cell's scanner mount and monitored area) against the people's true paths: position error and
   speed error of the nearest track (p50/p99), time to confirm (person inside the monitored area ->
   a track within 0.3 m of them), time to drop (person out of the area -> no track within 0.5 m of
   their last position), and the number of distinct track ids that followed each person (swaps).
   Also the velocity the supervisor's SSM uses: the vector error |v_track - v_true|, and how often the
   person's true speed toward the robot base exceeds the track's upper bound (projected mean + 2
   sigma of the filter's covariance; a tracker without covariance is counted with sigma 0) and the
   bound floored at the ISO 13855 1.6 m/s the monitor applies.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartcell.core.sensors.people_tracking import PeopleTracker, Pose2D, TrackerConfig  # noqa: E402
from smartcell.core.sensors.scan_validation import (RawScan, ScanGate, ScanLimits, ValidScan,  # noqa: E402
                                                    validate_scan)

CONFIRM_RADIUS_M = 0.3
DROP_RADIUS_M = 0.5
HUMAN_SPEED_FLOOR_MPS = 1.6


def percentiles(values, unit_scale: float = 1.0) -> str:
    if not values:
        return 'n/a'
    v = np.asarray(values) * unit_scale
    return f'p50 {np.percentile(v, 50):.3g}, p99 {np.percentile(v, 99):.3g}, max {v.max():.3g} (n={v.size})'


def bench_validation(rounds: int = 5000) -> None:
    angles = -math.radians(135) + math.radians(0.5) * np.arange(541)
    ranges = np.where(np.abs(angles) < 0.3, 2.0, np.inf).astype(np.float32)
    raw = RawScan(10, 0, 'scanner_link', -math.radians(135), math.radians(135), math.radians(0.5), 0.0, 1 / 30,
                  0.05, 9.0, ranges)
    limits = ScanLimits()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        validate_scan(raw, limits)
        times.append(time.perf_counter() - start)
    print(f'validate_scan, 541 beams: {percentiles(times, 1e6)} us')
    try:
        import rclpy
        from sensor_msgs.msg import LaserScan
    except ImportError:
        print('graph query: rclpy not available, skipped')
        return
    rclpy.init()
    node = rclpy.create_node('bench_graph_query')
    node.create_publisher(LaserScan, 'scan', 10)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        node.get_publishers_info_by_topic('/scan')
        times.append(time.perf_counter() - start)
    node.destroy_node()
    rclpy.shutdown()
    print(f'get_publishers_info_by_topic (one publisher): {percentiles(times, 1e6)} us')


def bench_accuracy(scenario: str, duration_s: float, seed: int, use_background: bool = True) -> None:
    from smartcell.core.params import load_cell_config
    from smartcell.core.sensors.background import read_background_file
    from smartcell.topology import param_registry
    from smartcell.twin.scanner import ScannerConfig, world_scanner
    from smartcell.twin.scenarios import scenario_paths
    from smartcell.twin.world import CellWorld, connect

    config = load_cell_config(Path(__file__).resolve().parents[1] / 'config' / 'cell.yaml', param_registry())
    scanner_cfg = config['scanner']
    client = connect()
    world = CellWorld(client, people=scenario_paths(scenario, seed, duration_s), seed=seed)
    scanner = world_scanner(world, ScannerConfig(rate_hz=30.0, noise_std_m=config['twin']['scan_noise_m']))
    tracker_config = TrackerConfig.from_params(scanner_cfg)
    # The scanner node's static background (config/cell.yaml background_file, relative to config's parent).
    background_path = str(scanner_cfg.get('background_file', '')) if use_background else ''
    background = read_background_file(Path(__file__).resolve().parents[1] / background_path) \
        if background_path else None
    ghost_scans = 0                # scans with a track further than 0.5 m from every person (clutter)
    gate = ScanGate(ScanLimits(frame_id=world.layout.scanner.frame_id))
    tracker: PeopleTracker | None = None
    xmin, ymin, xmax, ymax = tracker_config.monitored_area_m
    dt = 1 / 30
    position_errors, speed_errors, confirm_s, drop_s, rejected = [], [], [], [], 0
    velocity_errors, above_bound, above_floored, bound_margin = [], 0, 0, []
    robot_xy = np.asarray(world.layout.robot_base_position_m[:2])
    ids: list[set[int]] = [set() for _ in world.paths]
    inside_since: list[float | None] = [None] * len(world.paths)
    confirmed = [False] * len(world.paths)
    left_at: list[tuple[float, float, float] | None] = [None] * len(world.paths)
    wall = time.perf_counter()
    for _ in range(int(duration_s / dt)):
        world.step(dt)
        t = world.sim_time
        frame = scanner.scan(t)
        ns = int(round(t * 1e9))
        result = gate.check(RawScan(ns // 10**9, ns % 10**9, frame.frame_id, frame.angle_min_rad, frame.angle_max_rad,
                                    frame.angle_increment_rad, frame.time_increment_s, frame.scan_time_s,
                                    frame.range_min_m, frame.range_max_m, frame.ranges), now_s=t)
        if not isinstance(result, ValidScan):
            rejected += 1
            continue
        if tracker is None:
            tracker = PeopleTracker(
                tracker_config, Pose2D(*scanner_cfg['scanner_pose_xy_yaw']), result.layout.geometry(), background
            )
        tracks = tracker.update(result.ranges_m, t)
        truths = [path.state_at(t) for path in world.paths]
        ghost_scans += any(all(math.hypot(tr.position_m[0] - s.x_m, tr.position_m[1] - s.y_m) > DROP_RADIUS_M
                               for s in truths) for tr in tracks)
        for index, path in enumerate(world.paths):
            truth = path.state_at(t)
            inside = xmin <= truth.x_m <= xmax and ymin <= truth.y_m <= ymax
            distances = [math.hypot(tr.position_m[0] - truth.x_m, tr.position_m[1] - truth.y_m) for tr in tracks]
            nearest = int(np.argmin(distances)) if distances else -1
            if inside:
                left_at[index] = None
                if inside_since[index] is None:
                    inside_since[index], confirmed[index] = t, False
                if nearest >= 0 and distances[nearest] <= CONFIRM_RADIUS_M:
                    track = tracks[nearest]
                    if not confirmed[index]:
                        confirmed[index] = True
                        confirm_s.append(t - inside_since[index])
                    position_errors.append(distances[nearest])
                    speed_errors.append(abs(track.speed_mps - truth.speed_mps))
                    true_v = truth.speed_mps * np.array([math.cos(truth.yaw_rad), math.sin(truth.yaw_rad)])
                    velocity_errors.append(float(np.hypot(*(np.asarray(track.velocity_mps) - true_v))))
                    toward = robot_xy - np.array([truth.x_m, truth.y_m])
                    toward /= max(float(np.hypot(*toward)), 1e-9)
                    a, b, c = getattr(track, 'velocity_cov_m2ps2', (0.0, 0.0, 0.0))
                    sigma = math.sqrt(max(0.0, toward @ np.array([[a, b], [b, c]]) @ toward))
                    bound = float(np.asarray(track.velocity_mps) @ toward) + 2.0 * sigma
                    true_toward = float(true_v @ toward)
                    above_bound += true_toward > bound
                    above_floored += true_toward > max(bound, HUMAN_SPEED_FLOOR_MPS)
                    bound_margin.append(bound - true_toward)
                    ids[index].add(track.track_id)
            else:
                inside_since[index] = None
                if left_at[index] is None:
                    left_at[index] = (t, truth.x_m, truth.y_m)
                else:
                    t0, x0, y0 = left_at[index]
                    near = [
                        tr for tr in tracks if math.hypot(tr.position_m[0] - x0, tr.position_m[1] - y0) <= DROP_RADIUS_M
                    ]
                    if not near and t0 >= 0:
                        drop_s.append(t - t0)
                        left_at[index] = (-1.0, x0, y0)  # counted once
    # A lost person: the scan goes empty (the person gone, or hidden behind something that is no leg).
    empty, lost_at, drop_lost_s = np.full_like(np.asarray(frame.ranges, dtype=float), np.inf), t, None
    for k in range(1, int(5.0 / dt)):
        if tracker is None or not tracker.update(empty, lost_at + k * dt):
            drop_lost_s = k * dt
            break
    wall = time.perf_counter() - wall
    print(
        f'scenario {scenario}, seed {seed}, {duration_s:.0f} s simulated ({wall:.1f} s wall), '
        f'{len(world.paths)} people, {rejected} scans rejected, static background: {background_path or "none"}'
    )
    print(f'  position error of the nearest track, m: {percentiles(position_errors)}')
    print(f'  speed error |tracked - true|, m/s:      {percentiles(speed_errors)}')
    print(f'  velocity error |v_track - v_true|, m/s: {percentiles(velocity_errors)}')
    n = max(len(position_errors), 1)
    print(
        f'  true speed toward the robot > mean + 2 sigma: {above_bound / n:.2%}; '
        f'> max(bound, {HUMAN_SPEED_FLOOR_MPS} m/s): {above_floored / n:.2%} (n={len(position_errors)})'
    )
    print(f'  bound - true speed toward the robot, m/s: {percentiles(bound_margin)}')
    print(f'  time to confirm, s:                     {percentiles(confirm_s)}')
    print(f'  time to drop after leaving, s:          {percentiles(drop_s)}')
    print(
        f'  time to drop once the scan is empty, s: {drop_lost_s if drop_lost_s is None else round(drop_lost_s, 3)}'
        f' (track_timeout_s {tracker_config.track_timeout_s})'
    )
    print(f'  track ids per person (1 = no swap):     {[len(s) for s in ids]}')
    print(f'  scans with a track > {DROP_RADIUS_M} m from every person: {ghost_scans} of {int(duration_s / dt)}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--scenario', default='intrusion', help='twin scenario, or several separated by commas')
    parser.add_argument('--duration-s', type=float, default=120.0)
    parser.add_argument('--seed', type=int, default=3)
    parser.add_argument('--skip-validation', action='store_true')
    parser.add_argument('--no-background', action='store_true', help="without the scanner's static background")
    args = parser.parse_args()
    if not args.skip_validation:
        bench_validation()
    for scenario in args.scenario.split(','):
        bench_accuracy(scenario, args.duration_s, args.seed, use_background=not args.no_background)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
