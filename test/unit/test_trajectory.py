import numpy as np
import pytest

from smartcell.core.robot.trajectory import (ArmMode, JointLimitsView, JointTrajectoryPlan, ScaleRamp,
                                       TrajectoryExecutor, TrajectoryRejected, validate_trajectory)
from smartcell.core.safety.verdict import VerdictError, speed_scale_from_values, verdict_values

NAMES = ('a', 'b')
LIMITS = JointLimitsView(NAMES, np.array([-1.0, -2.0]), np.array([1.0, 2.0]), np.array([1.0, 1.0]))


def plan(times, points):
    return JointTrajectoryPlan(NAMES, np.asarray(times, float), np.asarray(points, float))


@pytest.mark.parametrize('bad,fragment', [
    (plan([1.0], [[1.5, 0.0]]), 'point 0: a = 1.5000 rad is outside its limits'),
    (plan([1.0, 1.0], [[0, 0], [0.1, 0]]), 'strictly increase'),
    (plan([0.5], [[0.0, np.nan]]), 'NaN'),
    (plan([1.0, 1.5], [[0, 0], [0.0, 0.5]]), 'segment 0->1: b would reach 1.500 rad/s'),
    (JointTrajectoryPlan(('b', 'a'), np.array([1.0]), np.zeros((1, 2))), 'do not match'),
])
def test_refused_trajectories_say_why(bad, fragment):
    with pytest.raises(TrajectoryRejected) as err:
        validate_trajectory(bad, LIMITS)
    assert fragment in str(err.value)


def run(executor, seconds, dt=0.01):
    trace = []
    for _ in range(int(round(seconds / dt))):
        trace.append(executor.step(dt))
    return trace


def test_full_speed_reaches_the_goal_on_time_and_path_is_scale_independent():
    path = plan([1.0, 2.0], [[0.5, 0.5], [0.5, 1.0]])
    fast = TrajectoryExecutor(LIMITS, ScaleRamp(up_per_s=1e6, down_per_s=1e6), np.zeros(2))
    fast.set_speed_limit(1.0)
    fast.load(path, np.zeros(2))
    trace_fast = run(fast, 2.05)
    assert not fast.active and fast.mode() is ArmMode.IDLE
    assert trace_fast[-1][0] == pytest.approx([0.5, 1.0])
    slow = TrajectoryExecutor(LIMITS, ScaleRamp(up_per_s=1e6, down_per_s=1e6), np.zeros(2))
    slow.set_speed_limit(0.5)
    slow.load(path, np.zeros(2))
    trace_slow = run(slow, 4.05)
    # The same curve: every slow sample lies on the fast curve's geometry (same positions visited).
    fast_points = np.array([q for q, _ in trace_fast])
    for q, _ in trace_slow[::7]:
        assert np.min(np.linalg.norm(fast_points - q, axis=1)) < 0.01
    assert max(np.max(np.abs(qd)) for _, qd in trace_slow) == pytest.approx(
        0.5 * max(np.max(np.abs(qd)) for _, qd in trace_fast), rel=0.05)


def test_controlled_stop_decelerates_then_holds_and_resumes():
    executor = TrajectoryExecutor(LIMITS, ScaleRamp(down_per_s=4.0, up_per_s=2.0), np.zeros(2))
    executor.set_speed_limit(1.0)
    executor.load(plan([2.0], [[0.8, 0.0]]), np.zeros(2))
    run(executor, 0.7)
    executor.controlled_stop()
    assert executor.mode() is ArmMode.STOPPING
    trace = run(executor, 0.3)
    assert executor.applied_scale == 0.0 and executor.mode() is ArmMode.HELD
    held = trace[-1][0]
    assert np.all(trace[-1][1] == 0.0)
    assert run(executor, 1.0)[-1][0] == pytest.approx(held)
    executor.release_stop()
    run(executor, 3.0)
    assert executor.mode() is ArmMode.IDLE and executor.step(0.01)[0] == pytest.approx([0.8, 0.0])


@pytest.mark.parametrize('bad', [float('nan'), -0.1, 1.5, float('inf')])
def test_untrustworthy_limits_mean_stop(bad):
    executor = TrajectoryExecutor(LIMITS, ScaleRamp(), np.zeros(2))
    executor.set_speed_limit(1.0)
    executor.set_speed_limit(bad)
    assert executor.target_scale == 0.0


def test_ramp_is_fast_down_slow_up():
    ramp = ScaleRamp(down_per_s=4.0, up_per_s=0.5)
    assert ramp.step(1.0, 0.0, 0.1) == pytest.approx(0.6)
    assert ramp.step(0.0, 1.0, 0.1) == pytest.approx(0.05)
    assert ramp.step(0.5, 0.5, 0.1) == 0.5


def test_new_trajectory_starts_from_the_actual_position():
    executor = TrajectoryExecutor(LIMITS, ScaleRamp(up_per_s=1e6), np.zeros(2))
    executor.set_speed_limit(1.0)
    executor.load(plan([2.0], [[0.5, 0.0]]), np.array([0.2, 0.1]))
    q0, _ = executor.step(1e-6)
    assert q0 == pytest.approx([0.2, 0.1], abs=1e-4)


def test_lead_in_from_actual_position_must_respect_limits():
    executor = TrajectoryExecutor(LIMITS, ScaleRamp(), np.zeros(2))
    with pytest.raises(TrajectoryRejected, match='segment 0->1'):
        executor.load(plan([0.1], [[0.9, 0.0]]), np.zeros(2))


def test_verdict_values_round_trip_and_errors():
    values = verdict_values({'speed_scale': 0.125, 'state': 'reduced'})
    assert speed_scale_from_values(values) == 0.125
    for bad in ([], [('speed_scale', 'nan')], [('speed_scale', '1.2')], [('speed_scale', 'x')]):
        with pytest.raises(VerdictError):
            speed_scale_from_values(bad)


def test_segment_at_full_speed_fraction_is_accepted_by_the_arm():
    from smartcell.core.robot.motions import segment_plan
    start, target = np.zeros(2), np.array([1.0, -0.3])
    plan = segment_plan(start, target, LIMITS, speed_fraction=1.0)
    executor = TrajectoryExecutor(LIMITS, ScaleRamp(), start)
    executor.load(plan, start)                     # must not be refused for rounding
    assert plan.duration_s == pytest.approx(1.5 * 1.0 / 1.0 * 1.02)     # peak 1.5x mean, 2 % margin


def test_segment_at_full_speed_is_accepted_from_a_slightly_different_actual_position():
    from smartcell.core.robot.motions import segment_plan
    start, target = np.zeros(2), np.array([0.9, -0.3])
    plan = segment_plan(start, target, LIMITS, speed_fraction=1.0)
    executor = TrajectoryExecutor(LIMITS, ScaleRamp(), start)
    # the arm has drifted 1 % of the travel further away by the time the plan arrives: still accepted
    executor.load(plan, start - np.array([0.009, 0.0]))
    assert executor.active


def test_a_start_a_little_off_the_plan_slows_the_first_segment_to_the_limit_never_faster():
    from smartcell.core.robot.motions import segment_plan
    start, target = np.zeros(2), np.array([0.9, -0.3])
    plan = segment_plan(start, target, LIMITS, speed_fraction=1.0)
    executor = TrajectoryExecutor(LIMITS, ScaleRamp(up_per_s=1e6), start)
    executor.set_speed_limit(1.0)
    off = start - np.array([0.9 * 0.035, 0.0])         # 3.5 % of the travel further away: beyond the 2 % margin
    executor.load(plan, off)
    needed_s = 1.5 * (0.9 + 0.9 * 0.035) / 1.0
    assert executor.lead_delay_s == pytest.approx(needed_s - plan.duration_s)
    q, qd = executor.step(1e-3)
    speeds = []
    for _ in range(int(needed_s / 1e-3) + 50):
        q, qd = executor.step(1e-3)
        speeds.append(np.max(np.abs(qd)))
    assert max(speeds) <= 1.0 + 1e-6 and q == pytest.approx(target, abs=1e-6)
    with pytest.raises(TrajectoryRejected, match='a would reach'):     # far off: made for another start
        executor.load(plan, start - np.array([0.9 * 0.2, 0.0]))


def test_speed_limited_arm_refuses_what_the_planner_at_a_higher_fraction_makes():
    from smartcell.core.robot.motions import segment_plan, speed_limited
    from smartcell.core.params import ConfigError
    start, target = np.zeros(2), np.array([1.0, -0.3])
    arm = TrajectoryExecutor(speed_limited(LIMITS, 0.5), ScaleRamp(), start)
    arm.load(segment_plan(start, target, LIMITS, speed_fraction=0.5), start)       # within: accepted
    with pytest.raises(TrajectoryRejected, match='a would reach'):
        arm.load(segment_plan(start, target, LIMITS, speed_fraction=0.6), start)
    with pytest.raises(ConfigError, match='max_joint_speed_fraction'):
        speed_limited(LIMITS, 0.0)
