"""The run-time task runner: dispatching, re-allocation, never losing or repeating a step."""
import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from smartcell.core.tasks.scheduling import Scheduler, schedule_violations
from smartcell.core.tasks.job_runner import ShiftConfig, ShiftError, ShiftRunner, StepState
from smartcell.core.tasks.recipe import BOTH, EITHER, HUMAN, ROBOT, generated_recipe, load_recipe, recipe_from_dict

SCHEDULER = Scheduler(time_budget_s=None, search_iterations=30)


@pytest.fixture
def gearbox(repo):
    return load_recipe(repo / 'config' / 'job_gearbox.yaml')


def finish(runner, action, now_s):
    """Report an action done by every executor it occupies; True when the step became DONE."""
    executors = (ROBOT, HUMAN) if action.handover else (action.executor,)
    return [runner.step_done(action.step_id, action.unit, e, now_s) for e in executors][-1]


def run_to_end(runner, now_s, max_events=2000):
    """Complete actions in order of expected end until the batch is finished; returns the end time."""
    for _ in range(max_events):
        actions = runner.next_actions(now_s)
        if runner.finished:
            return now_s
        current = [a for a in (actions.robot, actions.human) if a is not None]
        assert current, f'nothing to do but not finished: {actions}'
        first = min(current, key=lambda a: (a.expected_end_s, a.executor))
        now_s = max(now_s, first.expected_end_s)
        finish(runner, first, now_s)
    raise AssertionError('batch did not finish')


def test_nominal_run_reproduces_the_plan(gearbox):
    runner = ShiftRunner(gearbox, 3, SCHEDULER, now_s=0.0)
    end = run_to_end(runner, 0.0)
    assert end == pytest.approx(runner.plan.makespan_s)
    assert schedule_violations(gearbox, _as_schedule(runner), 3, check_durations=True) == []
    kpis = runner.kpis(end)
    assert kpis.units_done == 3 and len(kpis.cycle_times_s) == 3
    assert kpis.robot_busy_s + kpis.robot_idle_s == pytest.approx(end)
    expected_human = sum(e.end_s - e.start_s for e in runner.log if e.actor in (HUMAN, BOTH))
    assert kpis.human_busy_s == pytest.approx(expected_human)
    assert 0.0 < kpis.robot_utilisation < 1.0 and kpis.replans == 0


def test_actions_name_station_and_motion_kind(repo):
    demo = load_recipe(repo / 'config' / 'job_demo.yaml')
    runner = ShiftRunner(demo, 1, SCHEDULER, now_s=0.0)
    first = runner.next_actions(0.0)
    assert (first.robot.step_id, first.robot.station, first.robot.kind) == ('pick_part', 'pick', 'pick')
    assert first.human is None and 'present_part' in first.human_note
    assert runner.next_actions(1.0) == first          # idempotent while the step runs
    runner.step_done('pick_part', 0, ROBOT, 4.0)
    handover = runner.next_actions(4.0)
    assert handover.robot.step_id == handover.human.step_id == 'present_part'
    assert handover.robot.handover and handover.robot.kind == 'present'
    assert runner.step_done('present_part', 0, ROBOT, 7.0) is False   # waits for the person
    assert runner.state_of(0, 'present_part') is StepState.ACTIVE
    holding = runner.next_actions(7.0)
    assert holding.robot is None and 'confirm the handover' in holding.robot_note
    assert holding.human == handover.human
    assert runner.step_done('present_part', 0, HUMAN, 7.5) is True


def test_the_persons_next_step_is_the_first_pending_one_planned_for_them(repo):
    demo = load_recipe(repo / 'config' / 'job_demo.yaml')
    runner = ShiftRunner(demo, 2, SCHEDULER, now_s=0.0)
    runner.next_actions(0.0)
    upcoming = runner.upcoming(HUMAN)
    planned = [e for e in runner.plan.entries if e.actor in (HUMAN, BOTH)]
    assert upcoming == planned[0] and upcoming.step_id == 'present_part'
    runner.step_done('pick_part', 0, ROBOT, 4.0)
    runner.next_actions(4.0)                            # the handover starts: next is the one after it
    assert runner.upcoming(HUMAN) == planned[1]
    end = run_to_end(runner, 4.0)
    assert runner.upcoming(HUMAN) is None and runner.upcoming(ROBOT) is None and end > 4.0
    with pytest.raises(ShiftError, match='unknown executor'):
        runner.upcoming('cobot')


def test_bad_reports_raise_and_change_nothing(gearbox):
    runner = ShiftRunner(gearbox, 1, SCHEDULER, now_s=0.0)
    actions = runner.next_actions(0.0)
    active = actions.human or actions.robot
    other = ROBOT if active.executor == HUMAN else HUMAN
    pending = next(k for k in runner.plan.entries if runner.state_of(*k.key) is StepState.PENDING)
    with pytest.raises(ShiftError, match=f"{pending.step_id!r} of unit 0 was not started"):
        runner.step_done(pending.step_id, 0, pending.actor, 1.0)
    with pytest.raises(ShiftError, match='cannot report'):
        runner.step_done(active.step_id, 0, other, 1.0)
    with pytest.raises(ShiftError, match='unknown step'):
        runner.step_done('nope', 0, ROBOT, 1.0)
    assert runner.log == ()
    runner.step_done(active.step_id, 0, active.executor, 9.0)
    with pytest.raises(ShiftError, match='already done'):
        runner.step_done(active.step_id, 0, active.executor, 10.0)
    assert len(runner.log) == 1


def test_absent_person_keeps_own_steps_and_either_steps_go_to_the_robot(gearbox):
    runner = ShiftRunner(gearbox, 1, SCHEDULER, now_s=0.0)
    actions = runner.next_actions(0.0)
    assert actions.human is not None and gearbox.by_id[actions.human.step_id].actor == 'human'
    runner.on_person_absent(1.0)
    assert runner.state_of(0, actions.human.step_id) is StepState.PENDING   # unfinished, not lost
    after = runner.next_actions(1.0)
    # Shown again from its start: a person waiting out of the scanner's view comes back to it.
    assert after.human is not None and after.human.step_id == actions.human.step_id
    assert after.human.started_s == 1.0
    either = [e for e in runner.plan.entries if gearbox.by_id[e.step_id].actor == EITHER and not e.fixed]
    assert either and all(e.actor == ROBOT for e in either)
    assert runner.kpis(1.0).replans == 1
    runner.on_person_present(30.0)
    assert run_to_end(runner, 30.0) > 30.0 and runner.finished


def test_a_handover_waits_for_an_absent_person():
    recipe = recipe_from_dict({'job': 'give', 'stations': ['pick', 'assembly'], 'steps': [
        {'id': 'give', 'actor': 'both', 'kind': 'present', 'station': 'assembly', 'duration_s': 3},
        {'id': 'pick', 'actor': 'robot', 'kind': 'pick', 'station': 'pick', 'duration_s': 4, 'after': ['give']}]})
    runner = ShiftRunner(recipe, 1, SCHEDULER, now_s=0.0)
    runner.on_person_absent(0.5)
    after = runner.next_actions(0.5)
    assert after.human is None and after.robot is None
    assert 'waits for the person, who is absent' in after.human_note
    runner.on_person_present(2.0)
    assert runner.next_actions(2.0).human is not None



def test_the_robot_holds_a_handover_from_its_part_done_until_the_person_confirms():
    recipe = recipe_from_dict({'job': 'give', 'stations': ['assembly'], 'steps': [
        {'id': 'give', 'actor': 'both', 'kind': 'present', 'station': 'assembly', 'duration_s': 3}]})
    runner = ShiftRunner(recipe, 1, SCHEDULER, now_s=0.0)
    action = runner.next_actions(0.0).robot
    assert action is not None and action.handover and not runner.robot_holds_a_handover()   # still moving there
    assert not runner.step_done('give', 0, ROBOT, 2.0)
    assert runner.robot_holds_a_handover()
    assert runner.step_done('give', 0, HUMAN, 4.0)
    assert not runner.robot_holds_a_handover()

ROBOT_HEAVY = recipe_from_dict({'job': 'robot_heavy', 'stations': ['pick', 'place', 'assembly'], 'steps': [
    {'id': 'weld', 'actor': 'robot', 'kind': 'process', 'station': 'place', 'duration_s': 20},
    {'id': 'sort', 'actor': 'either', 'kind': 'pick', 'station': 'pick', 'duration_s': {'robot': 6, 'human': 4}},
    {'id': 'stack', 'actor': 'either', 'kind': 'place', 'station': 'assembly',
     'duration_s': {'robot': 6, 'human': 5}, 'after': ['sort']},
]})


def test_fatigue_with_hysteresis_moves_either_steps():
    runner = ShiftRunner(ROBOT_HEAVY, 2, SCHEDULER, now_s=0.0)
    assert any(e.actor == HUMAN for e in runner.plan.entries)   # the robot is busy welding
    for bad in (None, math.nan, 1.5, -0.1, True, '0.9'):
        assert 'unchanged' in runner.on_fatigue(bad, 1.0)
    assert not runner.fatigued
    runner.on_fatigue(0.8, 2.0)
    assert runner.fatigued
    assert all(e.actor == ROBOT for e in runner.plan.entries)
    assert runner.kpis(2.0).reallocated_steps > 0
    runner.on_fatigue(0.6, 3.0)
    assert runner.fatigued                      # inside the hysteresis band
    runner.on_fatigue(0.4, 4.0)
    assert not runner.fatigued and runner.kpis(4.0).replans == 2


def test_protective_stop_holds_new_robot_steps_and_counts_lost_time(gearbox):
    runner = ShiftRunner(gearbox, 1, SCHEDULER, now_s=0.0)
    now = 0.0
    while runner.next_actions(now).robot is None:      # run until the robot has a step
        human = runner.next_actions(now).human
        now = human.expected_end_s
        runner.step_done(human.step_id, 0, HUMAN, now)
    robot = runner.next_actions(now).robot
    runner.on_protective_stop(now + 1.0)
    assert runner.next_actions(now + 1.0).robot == robot   # its motion is frozen, not dropped
    runner.step_done(robot.step_id, 0, ROBOT, now + 2.0)
    held = runner.next_actions(now + 2.0)
    assert held.robot is None and held.robot_note == 'protective stop'
    assert runner.kpis(now + 3.0).safety_stop_s == pytest.approx(2.0)
    runner.on_safety_clear(now + 5.0)
    assert runner.kpis(now + 9.0).safety_stop_s == pytest.approx(4.0)
    assert run_to_end(runner, now + 5.0) and runner.finished


def test_late_person_triggers_a_replan_once_per_threshold(gearbox):
    config = ShiftConfig(late_threshold_s=5.0)
    runner = ShiftRunner(gearbox, 1, SCHEDULER, now_s=0.0, config=config)
    human = runner.next_actions(0.0).human
    assert not runner.on_person_late(human.expected_end_s + 4.0)
    assert runner.on_person_late(human.expected_end_s + 6.0)
    assert not runner.on_person_late(human.expected_end_s + 7.0)
    assert runner.replan_reasons[-1][1].startswith('person late')


EVENTS = st.lists(st.tuples(
    st.sampled_from(['robot_done', 'human_done', 'robot_part', 'absent', 'present', 'fatigue', 'stop', 'clear',
                     'late']),
    st.floats(0.0, 20.0),                                   # time advance, s
    st.one_of(st.none(), st.floats(0.0, 1.0), st.just(math.nan))), max_size=60)


def apply(runner, events, now_s=0.0):
    for name, dt, value in events:
        now_s += dt
        actions = runner.next_actions(now_s)
        done_before = runner.done_steps()
        if name in ('robot_done', 'human_done'):
            action = actions.robot if name == 'robot_done' else actions.human
            if action is not None:
                was_done = finish(runner, action, now_s)
                assert was_done and (action.unit, action.step_id) not in done_before
        elif name == 'robot_part':   # the robot's half of a handover only; the step stays active
            if actions.robot is not None and actions.robot.handover:
                assert not runner.step_done(actions.robot.step_id, actions.robot.unit, ROBOT, now_s)
        elif name == 'absent':
            runner.on_person_absent(now_s)
        elif name == 'present':
            runner.on_person_present(now_s)
        elif name == 'fatigue':
            runner.on_fatigue(value, now_s)
        elif name == 'stop':
            runner.on_protective_stop(now_s)
        elif name == 'clear':
            runner.on_safety_clear(now_s)
        else:
            runner.on_person_late(now_s)
        assert done_before <= runner.done_steps(), 'a done step was lost'
    return now_s


def _as_schedule(runner):
    from smartcell.core.tasks.scheduling import Schedule
    span = max(e.end_s for e in runner.log) if runner.log else 0.0
    return Schedule(tuple(sorted(runner.log, key=lambda e: e.start_s)), 0.0, span, 'log')


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 5000), units=st.integers(1, 3), events=EVENTS)
def test_random_events_never_lose_or_repeat_a_step(seed, units, events):
    recipe = generated_recipe(8, seed, n_stations=3, handover_share=0.2, either_share=0.4)
    runner = ShiftRunner(recipe, units, SCHEDULER, now_s=0.0)
    now_s = apply(runner, events)
    runner.on_person_present(now_s)
    runner.on_safety_clear(now_s)
    run_to_end(runner, now_s)
    keys = [e.key for e in runner.log]
    assert len(keys) == len(set(keys)) == units * len(recipe.steps)
    # What really happened respects precedence, one step per executor and per station.
    assert schedule_violations(recipe, _as_schedule(runner), units, check_durations=False) == []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 5000), events=EVENTS)
def test_runner_is_deterministic(seed, events):
    recipe = generated_recipe(8, seed, n_stations=3, handover_share=0.2, either_share=0.4)
    runs = []
    for _ in range(2):
        runner = ShiftRunner(recipe, 2, SCHEDULER, now_s=0.0)
        end = apply(runner, events)
        runs.append((runner.log, runner.plan, runner.kpis(end), runner.replan_reasons))
    assert runs[0] == runs[1]
