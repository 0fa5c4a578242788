"""Laser scans of a person for the tests: the scanner's layout, two legs, one LaserScan builder.

The layout is the twin's and the cell's scanner: 541 beams of 0.5 deg from -135 deg (270 deg).
Test files import this module by name (`from scan_helpers import ...`): test/conftest.py puts test/
on sys.path, as pytest runs with --import-mode=importlib and test/ is no package. No ROS at import:
the unit tests use the ranges alone, `scan_msg` imports sensor_msgs when called.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import LaserScan

BEAMS = 541
ANGLE_MIN = -math.radians(135.0)        # rad, first beam
INCREMENT = math.radians(0.5)           # rad between beams
RANGE_MIN_M, RANGE_MAX_M = 0.05, 9.0
SCAN_TIME_S = 1 / 30
LEG_RADIUS_M = 0.06
LEG_OFFSET_M = 0.12                     # each leg's y from the person's centre


def legs_ranges(x: float, y: float) -> np.ndarray:
    """Ranges (m, float32) to two 6 cm legs at (x, y +- 0.12) m in the scanner frame, +inf elsewhere."""
    angles = ANGLE_MIN + np.arange(BEAMS) * INCREMENT
    ranges = np.full(BEAMS, np.inf, dtype=np.float32)
    for cy in (y - LEG_OFFSET_M, y + LEG_OFFSET_M):
        c = np.array([x, cy])
        b = np.cos(angles) * c[0] + np.sin(angles) * c[1]           # ray-circle intersection
        disc = b * b - (c @ c - LEG_RADIUS_M ** 2)
        hit = (disc >= 0) & (b > 0)
        ranges[hit] = np.minimum(ranges[hit], (b - np.sqrt(np.where(hit, disc, 0)))[hit])
    return ranges


def scan_msg(stamp: Time, frame: str = 'scanner_link', ranges: Any = None, **fields: Any) -> LaserScan:
    """A valid scan of a person 0.5 m in front of the scanner (or of `ranges`), with `fields` replaced."""
    from sensor_msgs.msg import LaserScan
    msg = LaserScan(angle_min=ANGLE_MIN, angle_max=ANGLE_MIN + (BEAMS - 1) * INCREMENT, angle_increment=INCREMENT,
                    range_min=RANGE_MIN_M, range_max=RANGE_MAX_M, scan_time=SCAN_TIME_S)
    for key, value in fields.items():
        setattr(msg, key, value)
    msg.ranges = (legs_ranges(0.5, 0.0) if ranges is None else np.asarray(ranges, dtype=np.float32)).tolist()
    msg.header.frame_id, msg.header.stamp = frame, stamp
    return msg
