"""Every input of the arm and the twin checked at the edge: a typed value, or a named reason.

The nodes convert a message's fields to plain Python sequences and call these functions; nothing
here raises on bad data (an exception in a callback would kill a safety process). On a reason the
arm holds (speed limit 0) and the twin ignores the command, both with an ERROR diagnostic.

Also here: the guards the arm keeps over time, ROS-free so they are tested without DDS —
`ClockGuard` (stamps that jump backwards: a restarted twin, a sim-time reset), `HoldLatch`
(reasons that hold the arm until they have been absent for a while) and `NamedMotionWatch` (a
motion the supervisor waits on that never reached this arm).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from smartcell.core.robot.kinematics import JOINT_NAMES
from smartcell.core.robot.trajectory import JointLimitsView, JointTrajectoryPlan
from smartcell.core.safety.authority import AUTH_KEY, SEQUENCE_KEY
from smartcell.core.safety.verdict import MOTION_KEY, SPEED_SCALE_KEY

NS_PER_S = 1_000_000_000
MAX_TRAJECTORY_POINTS = 10_000      # bounded work per message; the supervisor sends one point per segment
MAX_ID_CHARS = 256                  # motion ids, states: short identifiers, never payloads
STATE_KEY = 'state'


@dataclass(frozen=True)
class Invalid:
    """Why an input was refused (shown on /diagnostics and in the arm's trajectory result)."""

    reason: str


@dataclass(frozen=True)
class JointSample:
    """A joint state in the arm's joint order: stamp in ns, positions rad, velocities rad/s (0 if absent)."""

    stamp_ns: int
    positions_rad: np.ndarray
    velocities_radps: np.ndarray

    @property
    def stamp_s(self) -> float:
        return self.stamp_ns / NS_PER_S


@dataclass(frozen=True)
class TrajectoryInput:
    """A structurally valid trajectory: the plan in the arm's joint order, the exact wire times (ns)."""

    plan: JointTrajectoryPlan
    times_ns: tuple[int, ...]


@dataclass(frozen=True)
class VerdictInput:
    """A parsed safety verdict. sequence and signature are None when the verdict carries none."""

    stamp_ns: int
    speed_scale: float
    state: str
    motion: str
    sequence: int | None
    signature: str | None


@dataclass(frozen=True)
class JointCommand:
    """A set-point for the twin's joints in the arm's joint order: rad and rad/s."""

    positions_rad: np.ndarray
    velocities_radps: np.ndarray


def stamp_ns_from(sec: int, nanosec: int) -> int | Invalid:
    """A builtin_interfaces Time as integer ns; a negative time or nanosec >= 1e9 is refused."""
    if not isinstance(sec, int) or not isinstance(nanosec, int):
        return Invalid(f'stamp is not integer sec/nanosec ({sec!r}, {nanosec!r})')
    if sec < 0 or not 0 <= nanosec < NS_PER_S:
        return Invalid(f'stamp {sec} s {nanosec} ns is negative or nanosec is not below 1e9')
    return sec * NS_PER_S + nanosec


def _floats(values: Sequence[float], what: str) -> np.ndarray | Invalid:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        return Invalid(f'{what} are not numbers ({exc})')
    if array.ndim != 1:
        return Invalid(f'{what} are not a flat list')
    if not np.all(np.isfinite(array)):
        return Invalid(f'{what} contain NaN or infinite values')
    return array


def _joint_order(names: Sequence[str], expected: Sequence[str], allow_extra: bool, what: str) -> list[int] | Invalid:
    names = list(names)
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        return Invalid(f'{what} names joints twice: {duplicated}')
    missing = [n for n in expected if n not in names]
    if missing:
        return Invalid(f'{what} lacks joints {missing}; expected {list(expected)}')
    unknown = [n for n in names if n not in expected]
    if unknown and not allow_extra:
        return Invalid(f'{what} has unknown joints {unknown[:6]}; expected {list(expected)}')
    index = {name: i for i, name in enumerate(names)}
    return [index[name] for name in expected]


def validate_joint_state(sec: int, nanosec: int, names: Sequence[str], positions: Sequence[float],
                         velocities: Sequence[float], *, expected: Sequence[str] = JOINT_NAMES,
                         allow_extra_joints: bool = False) -> JointSample | Invalid:
    """A joint state as a JointSample in `expected` order, or why it cannot be used.

    Velocities may be empty (then zero); if given, one per name. Extra joints (a gripper in a driver's
    joint states) are accepted only with allow_extra_joints.
    """
    stamp = stamp_ns_from(sec, nanosec)
    if isinstance(stamp, Invalid):
        return Invalid(f'joint state {stamp.reason}')
    order = _joint_order(names, expected, allow_extra_joints, 'joint state')
    if isinstance(order, Invalid):
        return order
    if len(positions) != len(names):
        return Invalid(f'joint state has {len(names)} names but {len(positions)} positions')
    if len(velocities) not in (0, len(names)):
        return Invalid(f'joint state has {len(names)} names but {len(velocities)} velocities')
    q = _floats(positions, 'joint state positions')
    if isinstance(q, Invalid):
        return q
    if len(velocities):
        qd = _floats(velocities, 'joint state velocities')
        if isinstance(qd, Invalid):
            return qd
        qd = qd[order]
    else:
        qd = np.zeros(len(expected))
    return JointSample(stamp, q[order], qd)


def validate_trajectory_points(names: Sequence[str], positions: Sequence[Sequence[float]],
                               times: Sequence[tuple[int, int]], *,
                               expected: Sequence[str] = JOINT_NAMES) -> TrajectoryInput | Invalid:
    """A trajectory's points (positions per point, (sec, nanosec) time_from_start per point) as a plan
    in `expected` order. Joint limits and speeds are checked when the executor loads it."""
    order = _joint_order(names, expected, False, 'trajectory')
    if isinstance(order, Invalid):
        return order
    if not positions:
        return Invalid('trajectory has no points')
    if len(positions) > MAX_TRAJECTORY_POINTS:
        return Invalid(f'trajectory has {len(positions)} points, more than {MAX_TRAJECTORY_POINTS}')
    if len(times) != len(positions):
        return Invalid(f'trajectory has {len(positions)} points but {len(times)} times')
    rows = []
    for k, point in enumerate(positions):
        if len(point) != len(names):
            return Invalid(f'trajectory point {k} has {len(point)} positions, expected {len(names)}')
        q = _floats(point, f'trajectory point {k} positions')
        if isinstance(q, Invalid):
            return q
        rows.append(q[order])
    times_ns = []
    for k, (sec, nanosec) in enumerate(times):
        if not isinstance(sec, int) or not isinstance(nanosec, int) or not 0 <= nanosec < NS_PER_S:
            return Invalid(f'trajectory point {k} time_from_start ({sec!r} s, {nanosec!r} ns) is malformed')
        times_ns.append(sec * NS_PER_S + nanosec)
    if times_ns[0] < 0:
        return Invalid('trajectory time_from_start starts below 0')
    for k in range(1, len(times_ns)):
        if times_ns[k] <= times_ns[k - 1]:
            return Invalid(f'trajectory time_from_start does not increase at point {k}')
    plan = JointTrajectoryPlan(tuple(expected), np.asarray(times_ns, dtype=float) / NS_PER_S, np.asarray(rows))
    return TrajectoryInput(plan, tuple(times_ns))


def _identifier(value: str, key: str) -> str | Invalid:
    if len(value) > MAX_ID_CHARS:
        return Invalid(f'verdict {key} is longer than {MAX_ID_CHARS} characters')
    return value


def validate_verdict(sec: int, nanosec: int, values: Sequence[tuple[str, str]]) -> VerdictInput | Invalid:
    """The verdict's values (key/value strings of its `smartcell/safety` status) as a VerdictInput.

    speed_scale must be a finite number in [0, 1]; a key given twice is refused (which one would count?);
    state and motion_id default to '' (unsigned legacy verdicts), sequence must be a decimal integer.
    """
    stamp = stamp_ns_from(sec, nanosec)
    if isinstance(stamp, Invalid):
        return Invalid(f'verdict {stamp.reason}')
    keys = [key for key, _ in values]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        return Invalid(f'verdict has keys given twice: {duplicated}')
    fields = dict(values)
    if SPEED_SCALE_KEY not in fields:
        return Invalid(f'verdict has no {SPEED_SCALE_KEY!r} value')
    raw = fields[SPEED_SCALE_KEY]
    try:
        scale = float(raw)
    except (TypeError, ValueError):
        return Invalid(f'verdict {SPEED_SCALE_KEY}={raw!r:.40} is not a number')
    if not math.isfinite(scale) or not 0.0 <= scale <= 1.0:
        return Invalid(f'verdict {SPEED_SCALE_KEY}={raw!r:.40} is outside [0, 1]')
    sequence: int | None = None
    if SEQUENCE_KEY in fields:
        text = fields[SEQUENCE_KEY]
        if not (text.isascii() and text.isdigit()) or len(text) > 30:
            return Invalid(f'verdict {SEQUENCE_KEY}={text!r:.40} is not a non-negative integer')
        sequence = int(text)
    state = _identifier(fields.get(STATE_KEY, ''), STATE_KEY)
    motion = _identifier(fields.get(MOTION_KEY, ''), MOTION_KEY)
    if isinstance(state, Invalid):
        return state
    if isinstance(motion, Invalid):
        return motion
    return VerdictInput(stamp, scale, state, motion, sequence, fields.get(AUTH_KEY) or None)


def validate_joint_command(names: Sequence[str], positions: Sequence[float], velocities: Sequence[float],
                           limits: JointLimitsView) -> JointCommand | Invalid:
    """A twin joint command in the limits' joint order: every joint named once, finite, within its range."""
    order = _joint_order(names, limits.names, False, 'joint command')
    if isinstance(order, Invalid):
        return order
    if len(positions) != len(names) or len(velocities) != len(names):
        return Invalid(f'joint command has {len(names)} names, {len(positions)} positions and '
                       f'{len(velocities)} velocities')
    q = _floats(positions, 'joint command positions')
    if isinstance(q, Invalid):
        return q
    qd = _floats(velocities, 'joint command velocities')
    if isinstance(qd, Invalid):
        return qd
    q, qd = q[order], qd[order]
    for j, name in enumerate(limits.names):
        if not limits.lower_rad[j] <= q[j] <= limits.upper_rad[j]:
            return Invalid(f'joint command {name} = {q[j]:.4f} rad is outside its limits '
                           f'[{limits.lower_rad[j]:.4f}, {limits.upper_rad[j]:.4f}] rad')
    return JointCommand(q, qd)


# -- over time ---------------------------------------------------------------------------------------
class ClockGuard:
    """Detects stamps jumping backwards on the arm's timed inputs and re-arms on fresh, consistent data.

    A stream's stamp more than `tolerance_ns` below its previous one is a jump (a restarted twin, a
    sim-time reset): the arm holds. It re-arms once every stream has delivered `rearm_messages`
    messages with non-decreasing stamps since the last jump and their newest stamps lie within
    `max_skew_ns` of each other (the verdicts come from the same time base as the joint states).
    """

    def __init__(self, streams: Sequence[str], tolerance_ns: int, rearm_messages: int = 5,
                 max_skew_ns: int = 2 * NS_PER_S) -> None:
        self._streams = tuple(streams)
        self._tolerance_ns = tolerance_ns
        self._rearm = rearm_messages
        self._max_skew_ns = max_skew_ns
        self._last: dict[str, int] = {}
        self._fresh: dict[str, int] = {}
        self.hold_reason = ''
        self.jumps = 0

    def observe(self, stream: str, stamp_ns: int) -> str | None:
        """Record a stamp; returns the reason when this message is a jump backwards."""
        last = self._last.get(stream)
        if last is not None and stamp_ns < last - self._tolerance_ns:
            self._last[stream] = stamp_ns
            self.jumps += 1
            self._fresh = {}
            self.hold_reason = (f'{stream} stamp jumped back by {(last - stamp_ns) / NS_PER_S:.3f} s '
                                f'(from {last / NS_PER_S:.3f} s to {stamp_ns / NS_PER_S:.3f} s: a restarted twin or '
                                'a sim-time reset); holding until fresh, consistent data arrives')
            return self.hold_reason
        # The high-water mark: reordering within the tolerance is not a jump and does not move it back.
        self._last[stream] = stamp_ns if last is None else max(last, stamp_ns)
        if self.hold_reason:
            self._fresh[stream] = self._fresh.get(stream, 0) + 1
            if self._consistent():
                self.hold_reason = ''
        return None

    def _consistent(self) -> bool:
        if any(self._fresh.get(s, 0) < self._rearm for s in self._streams):
            return False
        newest = [self._last[s] for s in self._streams]
        return max(newest) - min(newest) <= self._max_skew_ns


class HoldLatch:
    """Reasons that hold the arm; each is released `clear_after_s` after it was last tripped.

    Time is steady time in s (never sim time), passed in.
    """

    def __init__(self, clear_after_s: float) -> None:
        self._clear_after_s = clear_after_s
        self._tripped: dict[str, tuple[str, float]] = {}     # source -> (reason, last trip s)
        self.trips = 0

    def trip(self, source: str, reason: str, now_s: float) -> bool:
        """Hold for `source`; True when this is a new or changed reason (worth logging)."""
        previous = self._tripped.get(source)
        self._tripped[source] = (reason, now_s)
        self.trips += 1
        return previous is None or previous[0] != reason

    def reason(self, now_s: float) -> str:
        """'' when nothing holds the arm any more, else every current reason."""
        for source in [s for s, (_, at) in self._tripped.items() if now_s - at >= self._clear_after_s]:
            del self._tripped[source]
        return '; '.join(reason for reason, _ in self._tripped.values())


class NamedMotionWatch:
    """Motions the supervisor waits on that never reached this arm.

    Each verdict names the motion the supervisor sent last and waits on. A restarted arm node never got
    the trajectory that was on its way while it was dead (the topic is volatile), so without an answer
    the cell would wait for that motion's result for ever, running with the arm standing still. A
    motion named for `grace_s` (steady s) without its trajectory arriving is reported lost, once; the
    supervisor then plans it again from where the arm stands. A trajectory that arrives after it was
    reported lost must not run (the cell has planned past it). Ids are remembered up to `remember`.
    """

    def __init__(self, grace_s: float, remember: int = 256) -> None:
        if not grace_s > 0.0:
            raise ValueError(f'grace_s must be > 0, got {grace_s!r}')
        self.grace_s = grace_s
        self._remember = remember
        self._received: OrderedDict[str, None] = OrderedDict()
        self._reported: OrderedDict[str, None] = OrderedDict()
        self._unknown: tuple[str, float] | None = None      # (motion named but not here, first named at)

    def received(self, motion_id: str) -> bool:
        """A trajectory arrived; False when it was already reported lost (it must not run)."""
        self._keep(self._received, motion_id)
        return motion_id not in self._reported

    def named(self, motion_id: str, now_s: float) -> str | None:
        """A verdict named `motion_id` at steady `now_s`: the id to report lost now, else None."""
        if not motion_id or motion_id in self._received or motion_id in self._reported:
            self._unknown = None
            return None
        if self._unknown is None or self._unknown[0] != motion_id:
            self._unknown = (motion_id, now_s)
            return None
        if now_s - self._unknown[1] < self.grace_s:
            return None
        self._unknown = None
        self._keep(self._reported, motion_id)
        return motion_id

    def _keep(self, ids: OrderedDict[str, None], motion_id: str) -> None:
        ids[motion_id] = None
        ids.move_to_end(motion_id)
        while len(ids) > self._remember:
            ids.popitem(last=False)
