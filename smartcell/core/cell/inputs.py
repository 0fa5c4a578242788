"""The supervisor's inputs judged before the cell sees them, free of ROS.

Which velocities belong to which people, which people, velocities and joints are of one lockstep
tick, and whether the arm runs at the cell's speed fraction. The supervisor node converts the
messages and calls these; `smartcell replay` can pair a recording the same way.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

import numpy as np

from smartcell.core.stamp_join import ExactStampJoiner

STAMP_BUFFER_DEPTH = 32       # velocities (and, in lockstep, people waiting for them) kept by stamp
POSITION_MATCH_M = 1e-6       # the velocity cloud repeats the people's x, y exactly (same tracker output)

P = TypeVar('P')    # people (a message or an observation)
V = TypeVar('V')    # their velocities
J = TypeVar('J')    # joint states

Velocities = tuple[np.ndarray, np.ndarray]     # (N, 2) m/s and (N, 2, 2) (m/s)^2


def people_velocities(positions_m: np.ndarray, people_frame: str, cloud: tuple[np.ndarray, ...] | str,
                      cloud_frame: str) -> Velocities | str:
    """The tracker's velocities and covariances for these people, or why they are not theirs.

    `cloud`: (x, y m, velocities, covariances) per person as decoded from humans/velocities, or the
    reason it could not be decoded. They belong to the people only in the same frame, count and
    order (same x, y); otherwise the monitor falls back to successive positions, never below the
    ISO 13855 speed floor, so a mismatch is judged without velocities, not stopped.
    """
    if isinstance(cloud, str):
        return cloud
    xy, velocities, covariances = cloud[0], cloud[1], cloud[2]
    positions_m = np.asarray(positions_m, dtype=float).reshape(-1, 3)
    if cloud_frame != people_frame or len(xy) != len(positions_m) or \
            not np.allclose(xy, positions_m[:, :2], atol=POSITION_MATCH_M, equal_nan=True):
        return (f'humans/velocities: {len(xy)} people in {cloud_frame!r} do not match the '
                f'{len(positions_m)} of humans in {people_frame!r}')
    return velocities, covariances


class TickPairing(Generic[P, V, J]):
    """Lockstep: the people seen at tick t are judged against the robot at t, with their velocities of t.

    People wait (by stamp, ns) until the velocities of their stamp have arrived, when
    `wait_for_velocities`, then for the joints of the same stamp, whatever arrives first. Each
    add_* returns the (people, joints) pairs that became complete, oldest first. Velocities are kept
    by stamp for `velocities_at` in both modes (outside lockstep people are judged on arrival).
    """

    def __init__(self, wait_for_velocities: bool = True, depth: int = STAMP_BUFFER_DEPTH) -> None:
        self._wait_for_velocities = wait_for_velocities
        self._depth = depth
        self._velocities: OrderedDict[int, V] = OrderedDict()
        self._waiting: OrderedDict[int, P] = OrderedDict()
        self._joiner: ExactStampJoiner[P, J] = ExactStampJoiner()

    def velocities_at(self, stamp_ns: int) -> V | None:
        return self._velocities.get(stamp_ns)

    def add_people(self, stamp_ns: int, people: P) -> list[tuple[P, J]]:
        self._waiting[stamp_ns] = people
        return self._release()

    def add_velocities(self, stamp_ns: int, velocities: V) -> list[tuple[P, J]]:
        self._velocities[stamp_ns] = velocities
        while len(self._velocities) > self._depth:
            self._velocities.popitem(last=False)
        return self._release()

    def add_joints(self, stamp_ns: int, joints: J) -> list[tuple[P, J]]:
        return [(people, joints) for _, people, joints in self._joiner.add_right(stamp_ns, joints)]

    def _release(self) -> list[tuple[P, J]]:
        """People whose velocities are here go on to be paired with the joints of their tick."""
        pairs = []
        ready = sorted(k for k in self._waiting if k in self._velocities or not self._wait_for_velocities)
        for key in ready:
            pairs += [(people, joints) for _, people, joints in self._joiner.add_left(key, self._waiting.pop(key))]
        while len(self._waiting) > self._depth:
            self._waiting.popitem(last=False)
        return pairs


def ramp_down_refusal(arm_rate: float | None, supervisor_rate: float, arm_node: str) -> str:
    """'' when the arm lowers its speed scale no faster than the supervisor assumes, else why the cell
    must hold. The supervisor bounds the scale the arm still applies by that ramp; an arm that drops its
    scale faster moves slower than the bound says, and its speed at full scale would be underrated."""
    if arm_rate is None:
        return f'configuration check: the arm node {arm_node!r} does not declare scale_ramp_down_per_s as a double'
    if arm_rate <= supervisor_rate + 1e-9:
        return ''
    return (f'configuration mismatch: scale_ramp_down_per_s is {arm_rate:g} 1/s on the arm node {arm_node!r} '
            f'but {supervisor_rate:g} 1/s on the supervisor, which bounds the scale the arm applies by its own '
            'value; set it once for the cell under /** in the cell file')


def speed_fraction_refusal(arm_fraction: float | None, cell_fraction: float, arm_node: str) -> str:
    """'' when the arm runs at the cell's max_joint_speed_fraction, else why the cell must hold.

    `arm_fraction`: the value the arm node declares (None: not declared as a double). SSM takes its
    stopping data at the supervisor's fraction; an arm allowed faster stops later than assumed.
    """
    if arm_fraction is None:
        return f'configuration check: the arm node {arm_node!r} does not declare max_joint_speed_fraction as a double'
    if abs(arm_fraction - cell_fraction) <= 1e-9:
        return ''
    return (f'configuration mismatch: max_joint_speed_fraction is {arm_fraction:g} on the arm node {arm_node!r} '
            f'but {cell_fraction:g} on the supervisor, whose SSM takes its stopping data at its own value; '
            'set it once for the cell under /** in the cell file')
