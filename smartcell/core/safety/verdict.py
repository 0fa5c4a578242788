"""The safety verdict as key/value pairs: the one wire format between supervisor and arm.

The verdict travels as diagnostic_msgs/DiagnosticArray (a standard, stamped type); these
helpers keep the key names and parsing in one place, free of ROS types.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

VERDICT_STATUS_NAME = 'smartcell/safety'
SPEED_SCALE_KEY = 'speed_scale'
# The newest motion (trajectory id) the supervisor had sent when it gave the verdict: in lockstep
# simulation the arm starts that motion at this verdict's tick, so runs repeat exactly.
MOTION_KEY = 'motion_id'


class VerdictError(ValueError):
    """A verdict that cannot be trusted; the arm treats it as a stop."""


def speed_scale_from_values(values: Iterable[tuple[str, str]]) -> float:
    """Extract the speed scale in [0, 1]; anything missing, NaN or out of range raises VerdictError."""
    found = dict(values).get(SPEED_SCALE_KEY)
    if found is None:
        raise VerdictError(f'verdict has no {SPEED_SCALE_KEY!r} value')
    try:
        scale = float(found)
    except ValueError as exc:
        raise VerdictError(f'verdict {SPEED_SCALE_KEY}={found!r} is not a number') from exc
    if not math.isfinite(scale) or not 0.0 <= scale <= 1.0:
        raise VerdictError(f'verdict {SPEED_SCALE_KEY}={found!r} is outside [0, 1]')
    return scale


def verdict_values(fields: Mapping[str, object]) -> list[tuple[str, str]]:
    """Key/value strings of a verdict; floats keep full precision (the arm parses the scale)."""
    return [(key, repr(value) if isinstance(value, float) else str(value)) for key, value in fields.items()]
