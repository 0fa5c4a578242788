"""Arm and twin inputs checked at the edge: valid messages pass, malformed ones give a named reason, never raise."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from smartcell.core.robot.command_validation import (ClockGuard, HoldLatch, Invalid, JointCommand, JointSample,
                                                     NamedMotionWatch,
                                                     TrajectoryInput, VerdictInput, validate_joint_command,
                                                     validate_joint_state, validate_trajectory_points,
                                                     validate_verdict)
from smartcell.core.robot.kinematics import JOINT_NAMES
from smartcell.core.robot.motions import UR5E_JOINT_LIMITS

HOME = [0.0, -1.571, 1.571, -1.571, -1.571, 0.0]
NAMES = list(JOINT_NAMES)

# -- generators of hostile messages ---------------------------------------------------------------------
any_float = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([math.nan, math.inf, -math.inf, 1e308])
names_strategy = st.one_of(
    st.just(NAMES), st.permutations(NAMES), st.lists(st.sampled_from(NAMES + ['gripper', '']), max_size=8),
    st.lists(st.text(max_size=12), max_size=8))
float_lists = st.lists(any_float, max_size=8)
stamp_parts = st.tuples(st.integers(-2**31, 2**31 - 1), st.integers(0, 2**32 - 1))
ints_or_junk = st.one_of(st.integers(-2**40, 2**40), st.floats(allow_nan=True), st.none(), st.text(max_size=3))


def _check_sample(result, allow_extra=False):
    if isinstance(result, Invalid):
        assert result.reason and isinstance(result.reason, str)
        return
    assert isinstance(result, JointSample)
    assert result.positions_rad.shape == (6,) and result.velocities_radps.shape == (6,)
    assert np.all(np.isfinite(result.positions_rad)) and np.all(np.isfinite(result.velocities_radps))
    assert result.stamp_ns >= 0


@settings(max_examples=400, deadline=None)
@given(stamp=stamp_parts, names=names_strategy, positions=float_lists, velocities=float_lists,
       allow_extra=st.booleans())
def test_joint_state_never_raises_and_only_passes_usable_states(stamp, names, positions, velocities, allow_extra):
    _check_sample(validate_joint_state(*stamp, names, positions, velocities, allow_extra_joints=allow_extra))


@settings(max_examples=300, deadline=None)
@given(names=names_strategy,
       points=st.lists(st.tuples(float_lists, st.tuples(ints_or_junk, ints_or_junk)), max_size=5))
def test_trajectory_never_raises_and_only_passes_well_formed_plans(names, points):
    result = validate_trajectory_points(names, [p for p, _ in points], [t for _, t in points])
    if isinstance(result, Invalid):
        assert result.reason
        return
    assert isinstance(result, TrajectoryInput)
    plan = result.plan
    assert plan.positions_rad.shape == (len(points), 6) and np.all(np.isfinite(plan.positions_rad))
    assert plan.times_s[0] >= 0 and np.all(np.diff(plan.times_s) > 0)


verdict_keys = st.sampled_from(['speed_scale', 'state', 'motion_id', 'sequence', 'auth', 'reason', ''])
verdict_values = st.one_of(st.text(max_size=20), any_float.map(repr), st.integers().map(str),
                           st.sampled_from(['nan', 'inf', '-0.0', '1e-300', '0x10', ' 1', '1_000']))


@settings(max_examples=400, deadline=None)
@given(stamp=stamp_parts, values=st.lists(st.tuples(verdict_keys, verdict_values), max_size=7))
def test_verdict_never_raises_and_only_passes_scales_in_0_1(stamp, values):
    result = validate_verdict(*stamp, values)
    if isinstance(result, Invalid):
        assert result.reason
        return
    assert isinstance(result, VerdictInput)
    assert math.isfinite(result.speed_scale) and 0.0 <= result.speed_scale <= 1.0
    assert result.sequence is None or result.sequence >= 0


@settings(max_examples=300, deadline=None)
@given(names=names_strategy, positions=float_lists, velocities=float_lists)
def test_joint_command_never_raises_and_only_passes_finite_targets_within_limits(names, positions, velocities):
    result = validate_joint_command(names, positions, velocities, UR5E_JOINT_LIMITS)
    if isinstance(result, Invalid):
        assert result.reason
        return
    assert isinstance(result, JointCommand)
    assert np.all(np.isfinite(result.positions_rad)) and np.all(np.isfinite(result.velocities_radps))
    assert np.all(result.positions_rad >= UR5E_JOINT_LIMITS.lower_rad)
    assert np.all(result.positions_rad <= UR5E_JOINT_LIMITS.upper_rad)


# -- named reasons for the probes that crashed or fooled the cell ---------------------------------------
@pytest.mark.parametrize('names, positions, velocities, words', [
    (NAMES, [], [], '6 names but 0 positions'),                  # names without positions: crashed the arm
    (NAMES, HOME[:5], [], '6 names but 5 positions'),
    (NAMES, HOME, [0.0] * 3, '6 names but 3 velocities'),
    (NAMES, [math.nan] + HOME[1:], [], 'NaN or infinite'),
    (NAMES, HOME, [math.inf] + [0.0] * 5, 'NaN or infinite'),
    (NAMES[:5], HOME[:5], [], "lacks joints ['wrist_3_joint']"),
    (NAMES + ['gripper'], HOME + [0.0], [], "unknown joints ['gripper']"),
    (NAMES[:5] + ['shoulder_pan_joint'], HOME, [], 'names joints twice'),
])
def test_joint_state_reasons(names, positions, velocities, words):
    result = validate_joint_state(1, 0, names, positions, velocities)
    assert isinstance(result, Invalid) and words in result.reason


def test_joint_state_reordered_to_the_arm_order_and_extra_joints_allowed_for_drivers():
    names = NAMES[::-1] + ['gripper']
    positions = HOME[::-1] + [0.04]
    result = validate_joint_state(3, 500, names, positions, [], allow_extra_joints=True)
    assert isinstance(result, JointSample)
    assert result.positions_rad.tolist() == HOME and result.velocities_radps.tolist() == [0.0] * 6
    assert result.stamp_ns == 3_000_000_500


@pytest.mark.parametrize('sec, nanosec', [(-1, 0), (0, 1_000_000_000)])
def test_bad_stamps_are_refused(sec, nanosec):
    assert 'stamp' in validate_joint_state(sec, nanosec, NAMES, HOME, []).reason


@pytest.mark.parametrize('names, positions, times, words', [
    (NAMES, [HOME, HOME], [(1, 0), (1, 0)], 'does not increase at point 1'),
    (NAMES, [HOME, HOME], [(2, 0), (1, 0)], 'does not increase'),
    (NAMES, [[math.nan] + HOME[1:]], [(1, 0)], 'NaN or infinite'),
    (NAMES, [HOME], [(-1, 0)], 'starts below 0'),
    (NAMES, [], [], 'no points'),
    (NAMES, [HOME[:5]], [(1, 0)], 'point 0 has 5 positions'),
    (['a'] + NAMES[1:], [HOME], [(1, 0)], 'lacks joints'),
    (NAMES + ['x'], [HOME + [0.0]], [(1, 0)], 'unknown joints'),
    (NAMES, [HOME], [(1, 2_000_000_000)], 'malformed'),
])
def test_trajectory_reasons(names, positions, times, words):
    result = validate_trajectory_points(names, positions, times)
    assert isinstance(result, Invalid) and words in result.reason, result


def test_trajectory_in_another_joint_order_is_reordered_with_exact_times():
    result = validate_trajectory_points(NAMES[::-1], [HOME[::-1]], [(1, 500_000_000)])
    assert isinstance(result, TrajectoryInput)
    assert result.plan.positions_rad[0].tolist() == HOME
    assert result.times_ns == (1_500_000_000,) and result.plan.times_s[0] == 1.5


@pytest.mark.parametrize('values, words', [
    ([], "no 'speed_scale'"),
    ([('speed_scale', 'nan')], 'outside [0, 1]'),
    ([('speed_scale', 'inf')], 'outside [0, 1]'),
    ([('speed_scale', '1.0000001')], 'outside [0, 1]'),
    ([('speed_scale', '-0.1')], 'outside [0, 1]'),
    ([('speed_scale', 'fast')], 'not a number'),
    ([('speed_scale', '0.5'), ('speed_scale', '1.0')], 'given twice'),
    ([('speed_scale', '0.5'), ('sequence', '-3')], 'not a non-negative integer'),
    ([('speed_scale', '0.5'), ('sequence', '1.5')], 'not a non-negative integer'),
    ([('speed_scale', '0.5'), ('motion_id', 'm' * 300)], 'longer than'),
])
def test_verdict_reasons(values, words):
    result = validate_verdict(1, 0, values)
    assert isinstance(result, Invalid) and words in result.reason, result


def test_a_full_verdict_parses():
    result = validate_verdict(2, 5, [('mode', 'automatic'), ('state', 'reduced'), ('speed_scale', '0.3'),
                                     ('motion_id', 'motion-4'), ('sequence', '17'), ('auth', 'ab' * 32)])
    assert result == VerdictInput(2_000_000_005, 0.3, 'reduced', 'motion-4', 17, 'ab' * 32)


@pytest.mark.parametrize('positions, velocities, words', [
    ([math.nan] + HOME[1:], [0.0] * 6, 'NaN or infinite'),                  # crashed the twin
    (HOME, [math.inf] + [0.0] * 5, 'NaN or infinite'),
    (HOME, [], '6 positions and 0 velocities'),
    ([0.0, -1.571, 3.5, -1.571, -1.571, 0.0], [0.0] * 6, 'elbow_joint = 3.5000 rad is outside'),
])
def test_joint_command_reasons(positions, velocities, words):
    result = validate_joint_command(NAMES, positions, velocities, UR5E_JOINT_LIMITS)
    assert isinstance(result, Invalid) and words in result.reason


# -- over time -----------------------------------------------------------------------------------------
S = 1_000_000_000


def test_clock_guard_holds_on_a_jump_back_and_rearms_on_fresh_consistent_data():
    guard = ClockGuard(('joint_states', 'verdict'), tolerance_ns=S // 4, rearm_messages=3)
    for k in range(10):
        assert guard.observe('joint_states', 100 * S + k * S // 30) is None
        assert guard.observe('verdict', 100 * S + k * S // 30) is None
    assert guard.hold_reason == ''
    assert guard.observe('verdict', 100 * S + S // 10) is None            # reordering within the tolerance
    reason = guard.observe('joint_states', 0)                              # the twin restarted at t = 0
    assert reason and 'jumped back by 100.3' in reason and guard.hold_reason == reason
    for k in range(1, 5):
        guard.observe('joint_states', k * S // 30)
    assert guard.hold_reason, 'verdicts still stamped with the old time: not consistent'
    assert guard.observe('verdict', S // 30)                               # the verdicts jump back too
    for k in range(2, 4):
        guard.observe('verdict', k * S // 30)
        assert guard.hold_reason
    guard.observe('verdict', 4 * S // 30)
    assert guard.hold_reason, 'after the second jump every stream must deliver fresh data again'
    for k in range(5, 8):
        guard.observe('joint_states', k * S // 30)
    assert guard.hold_reason == '' and guard.jumps == 2


def test_clock_guard_does_not_rearm_while_the_streams_disagree():
    guard = ClockGuard(('a', 'b'), tolerance_ns=0, rearm_messages=1, max_skew_ns=S)
    guard.observe('a', 50 * S)
    guard.observe('b', 50 * S)
    guard.observe('a', 1 * S)
    guard.observe('a', 2 * S)
    guard.observe('b', 51 * S)                          # b never went back: 49 s apart
    assert guard.hold_reason


def test_hold_latch_releases_each_reason_after_its_quiet_time():
    latch = HoldLatch(clear_after_s=1.0)
    assert latch.reason(0.0) == ''
    assert latch.trip('authority', 'stray publisher /spoofer', 10.0)
    assert not latch.trip('authority', 'stray publisher /spoofer', 10.5)      # same reason: not new
    latch.trip('input', 'joint state has 6 names but 0 positions', 10.6)
    assert 'spoofer' in latch.reason(11.4) and 'positions' in latch.reason(11.4)
    assert latch.reason(11.5) == 'joint state has 6 names but 0 positions'
    assert latch.reason(11.6) == ''


def test_a_named_motion_that_never_arrives_is_reported_lost_once_after_the_grace():
    watch = NamedMotionWatch(grace_s=2.0)
    assert watch.named('motion-7', 10.0) is None            # just sent: its trajectory may be on its way
    assert watch.named('motion-7', 11.9) is None
    assert watch.named('motion-7', 12.0) == 'motion-7'      # named 2 s and still not here: lost
    assert watch.named('motion-7', 13.0) is None            # reported once
    assert not watch.received('motion-7')                   # arriving now, it must not run


def test_a_motion_that_arrives_is_never_reported_lost():
    watch = NamedMotionWatch(grace_s=2.0)
    assert watch.named('motion-1', 0.0) is None
    assert watch.received('motion-1')                       # arrived after its verdict: normal
    assert watch.named('motion-1', 100.0) is None
    assert watch.received('motion-2')                       # arrived before any verdict named it
    assert watch.named('motion-2', 0.0) is None and watch.named('motion-2', 50.0) is None
    assert watch.named('', 0.0) is None and watch.named('', 10.0) is None     # nothing sent yet


def test_the_grace_restarts_when_the_verdicts_name_another_motion():
    watch = NamedMotionWatch(grace_s=2.0)
    watch.named('motion-1', 0.0)
    assert watch.named('motion-2', 1.5) is None
    assert watch.named('motion-2', 3.0) is None             # motion-2 named only 1.5 s
    assert watch.named('motion-2', 3.5) == 'motion-2'


def test_the_watch_remembers_a_bounded_number_of_ids_and_rejects_no_grace():
    watch = NamedMotionWatch(grace_s=1.0, remember=3)
    for index in range(5):
        watch.received(f'motion-{index}')
    watch.named('motion-0', 0.0)
    assert watch.named('motion-0', 1.0) == 'motion-0'       # forgotten: judged like a new one
    assert watch.named('motion-4', 0.0) is None and watch.named('motion-4', 5.0) is None
    with pytest.raises(ValueError, match='grace_s'):
        NamedMotionWatch(grace_s=0.0)
