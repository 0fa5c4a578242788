"""`smartcell teach-background`: the static background of the safety laser scan, a commissioning step.

With the cell EMPTY (nobody inside the fence, the arm at home, the scanner mounted where
`scanner_pose_xy_yaw` says), record scans and keep per beam the median range; the scanner node
then skips readings at this background when it looks for legs (parameter `background_file`,
docs/sensors.md, Static background). Teach again whenever the scanner, the fence, the table or
any furniture in the scan plane moves: the node refuses a file taught for another mount or layout.

    smartcell teach-background --output FILE [--scans 90] [--timeout 30] [--config cell.yaml]
        records the running cell's `scan` topic (validated like the scanner node does)
    smartcell teach-background --twin --output FILE
        computes it from the twin's layout with nobody in it (no ROS needed)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from smartcell.core.params import ConfigError
from smartcell.core.sensors.background import (BackgroundError, ScanBackground, teach_background,
                                               write_background_file)
from smartcell.core.sensors.scan_validation import ScanLayout


def twin_background(frame_id: str = 'scanner_link') -> ScanBackground:
    """The twin's default cell, empty, noise free (its static scene is exact: no median needed)."""
    from smartcell.twin.scanner import empty_cell_scan
    from smartcell.twin.world import DEFAULT_LAYOUT
    frame = empty_cell_scan(DEFAULT_LAYOUT)
    layout = ScanLayout(float(frame.angle_min_rad), float(frame.angle_increment_rad), int(frame.ranges.size),
                        float(frame.range_min_m), float(frame.range_max_m))
    mount = DEFAULT_LAYOUT.scanner
    return ScanBackground(layout, np.asarray(frame.ranges, dtype=float), frame_id,
                          (mount.position_m[0], mount.position_m[1], mount.yaw_rad), 1,
                          'twin DEFAULT_LAYOUT, empty cell, noise free (smartcell teach-background --twin)')


def record_background(scanner_params: dict, scans: int, timeout_s: float) -> ScanBackground:
    """Median of `scans` valid scans of the running cell's `scan` topic (validated by the scanner
    node's own gate: frame, stamps, layout, unknown beams)."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import LaserScan

    from smartcell.core.sensors.scan_validation import ScanGate, ScanLimits, ScanRejected, ValidScan
    from smartcell.nodes.scanner import raw_scan

    gate = ScanGate(ScanLimits.from_params(scanner_params), ScanLayout.from_param(scanner_params['scan_layout']))
    ranges: list[np.ndarray] = []
    rejected: dict[str, int] = {}

    def on_scan(msg: LaserScan) -> None:
        result = gate.check(raw_scan(msg))
        if isinstance(result, ValidScan):
            ranges.append(np.array(result.ranges_m, dtype=float))
        elif isinstance(result, ScanRejected):
            rejected[result.reason] = rejected.get(result.reason, 0) + 1

    rclpy.init(args=[])
    node = rclpy.create_node('teach_background')
    try:
        node.create_subscription(LaserScan, 'scan', on_scan, qos_profile_sensor_data)
        deadline = time.monotonic() + timeout_s
        while len(ranges) < scans and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.shutdown()
    if len(ranges) < scans:
        raise BackgroundError(f'{len(ranges)} valid scans on `scan` in {timeout_s} s, {scans} needed'
                              + (f'; rejected: {rejected}' if rejected else ''))
    assert gate.layout is not None                      # fixed by the first valid scan
    x, y, yaw = scanner_params['scanner_pose_xy_yaw']
    when = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    return teach_background(ranges, gate.layout, scanner_params['scanner_frame'], (x, y, yaw),
                            float(scanner_params['background_tolerance_m']),
                            f'taught from `scan`, {len(ranges)} scans, {when}')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='smartcell teach-background', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output', type=Path, required=True, help='background file to write (JSON)')
    parser.add_argument('--twin', action='store_true', help="compute it from the twin's layout, nobody in it")
    parser.add_argument('--scans', type=int, default=90, help='scans to record (default 90: 3 s at 30 Hz)')
    parser.add_argument('--timeout', type=float, default=30.0, help='give up after this long, s')
    parser.add_argument('--config', type=Path, default=None,
                        help="cell parameter file with the scanner's frame and mount (default: installed cell.yaml)")
    args = parser.parse_args(argv)
    try:
        if args.twin:
            background = twin_background()
        else:
            if args.scans < 5:
                parser.error('--scans must be at least 5 (a median of fewer is noise)')
            from smartcell.core.params import load_cell_config
            from smartcell.share import share_file
            from smartcell.topology import param_registry
            resolved = load_cell_config(args.config or share_file('config', 'cell.yaml'), param_registry())
            background = record_background(dict(resolved['scanner']), args.scans, args.timeout)
        write_background_file(args.output, background)
    except (BackgroundError, ConfigError, FileNotFoundError) as exc:
        print(f'smartcell teach-background: {exc}', file=sys.stderr)
        return 1
    finite = np.isfinite(background.ranges_m)
    print(f'{args.output}: {background.layout.beam_count} beams, {int(finite.sum())} with a return '
          f'({float(np.min(background.ranges_m[finite])) if finite.any() else float("nan"):.3f}-'
          f'{float(np.max(background.ranges_m[finite])) if finite.any() else float("nan"):.3f} m), '
          f'frame {background.frame_id}, scanner at {list(background.scanner_pose_xy_yaw)}')
    return 0

