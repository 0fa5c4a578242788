"""Space-aware dispatch: the job runner keeps the robot out of a person's reach when it has other work."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from smartcell.core.params import ConfigError
from smartcell.core.tasks.job_runner import (PERSON_REACH_M, ShiftConfig, ShiftRunner, StepState,
                                             parse_station_positions)
from smartcell.core.tasks.recipe import BOTH, HUMAN, ROBOT, generated_recipe, load_recipe, recipe_from_dict
from smartcell.core.tasks.scheduling import Schedule, Scheduler, schedule_violations

SCHEDULER = Scheduler(time_budget_s=None, search_iterations=30)
# Shared station 'table' at the origin, 'shelf' 2 m away, the person's bench 4 m away.
STATIONS = (('table', 0.0, 0.0), ('shelf', 2.0, 0.0), ('bench', 4.0, 0.0))
NEAR_TABLE = np.array([[0.5, 0.0]])           # 0.5 m from the table, 1.5 m from the shelf
FAR = np.array([[4.0, 0.5]])                  # at the bench


def two_robot_steps(with_shelf=True):
    """The robot's first planned step is at the table (the person's long step needs it); a short robot
    step at the shelf is also ready (planned after it: the scheduler favours the critical path)."""
    steps = [{'id': 'place_base', 'actor': 'robot', 'kind': 'place', 'station': 'table', 'duration_s': 5.0},
             {'id': 'assemble', 'actor': 'human', 'kind': 'assemble', 'station': 'table', 'duration_s': 30.0,
              'after': ['place_base']}]
    if with_shelf:
        steps.append({'id': 'stock_shelf', 'actor': 'robot', 'kind': 'pick', 'station': 'shelf',
                      'duration_s': 3.0})
    return recipe_from_dict({'job': 'space', 'stations': ['table', 'shelf', 'bench'], 'steps': steps})


def runner_for(recipe, units=1, **config):
    return ShiftRunner(recipe, units, SCHEDULER, now_s=0.0,
                       config=ShiftConfig(station_positions_xy=STATIONS, **config))


def test_the_plan_puts_the_table_step_first():
    runner = runner_for(two_robot_steps())
    robot_order = [e.step_id for e in runner.plan.entries if e.actor == ROBOT]
    assert robot_order == ['place_base', 'stock_shelf']


def test_a_robot_step_in_reach_waits_while_one_out_of_reach_can_start():
    runner = runner_for(two_robot_steps(), reach_defer_awaited=True)   # the person's step awaits place_base
    runner.on_person_positions(NEAR_TABLE, 0.0)
    assert runner.stations_in_reach == frozenset({'table'})
    actions = runner.next_actions(0.0)
    assert actions.robot.step_id == 'stock_shelf' and actions.robot.station == 'shelf'
    assert runner.state_of(0, 'place_base') is StepState.PENDING
    assert runner.reach_deferrals == ((0.0, (0, 'place_base'), (0, 'stock_shelf')),)
    # Once the shelf is stocked nothing else is out of reach: the table step goes on as today.
    runner.step_done('stock_shelf', 0, ROBOT, 3.0)
    assert runner.next_actions(3.0).robot.step_id == 'place_base'


def test_without_positions_or_with_the_person_away_the_plan_order_holds():
    plain = ShiftRunner(two_robot_steps(), 1, SCHEDULER, now_s=0.0)
    assert 'reach rule off' in plain.on_person_positions(NEAR_TABLE, 0.0)
    assert plain.next_actions(0.0).robot.step_id == 'place_base'
    away = runner_for(two_robot_steps())
    away.on_person_positions(FAR, 0.0)
    assert away.stations_in_reach == frozenset()
    assert away.next_actions(0.0).robot.step_id == 'place_base' and away.reach_deferrals == ()


def test_only_an_in_reach_step_left_falls_back_to_todays_behaviour():
    runner = runner_for(two_robot_steps(with_shelf=False))
    runner.on_person_positions(NEAR_TABLE, 0.0)
    assert runner.next_actions(0.0).robot.step_id == 'place_base'     # the safety layer sets its speed
    assert runner.reach_deferrals == ()


def test_a_station_without_a_position_is_never_chosen_as_out_of_reach():
    runner = ShiftRunner(two_robot_steps(), 1, SCHEDULER, now_s=0.0,
                         config=ShiftConfig(station_positions_xy=(('table', 0.0, 0.0),)))
    runner.on_person_positions(NEAR_TABLE, 0.0)
    assert runner.next_actions(0.0).robot.step_id == 'place_base'


def test_a_handover_is_never_deferred():
    recipe = recipe_from_dict({'job': 'give', 'stations': ['table', 'shelf'], 'steps': [
        {'id': 'give', 'actor': 'both', 'kind': 'present', 'station': 'table', 'duration_s': 4.0},
        {'id': 'assemble', 'actor': 'human', 'kind': 'assemble', 'station': 'table', 'duration_s': 20.0,
         'after': ['give']},
        {'id': 'stock_shelf', 'actor': 'robot', 'kind': 'pick', 'station': 'shelf', 'duration_s': 3.0}]})
    runner = ShiftRunner(recipe, 1, SCHEDULER, now_s=0.0,
                         config=ShiftConfig(station_positions_xy=STATIONS[:2]))
    assert [e.step_id for e in runner.plan.entries][0] == 'give'
    runner.on_person_positions(NEAR_TABLE, 0.0)
    actions = runner.next_actions(0.0)
    assert actions.robot.step_id == actions.human.step_id == 'give'


def test_the_person_moving_re_plans_and_names_the_station():
    runner = runner_for(two_robot_steps(), reach_defer_awaited=True)   # the person's step awaits place_base
    runner.on_person_positions(FAR, 0.0)
    assert runner.kpis(0.0).replans == 0                   # nothing in reach, as planned
    assert 'within reach of table' in runner.on_person_positions(NEAR_TABLE, 1.0)
    assert runner.replan_reasons[-1] == (1.0, 'person within reach of table')
    assert runner.next_actions(1.0).robot.step_id == 'stock_shelf'
    # Leaving reach needs the hysteresis margin too: 0.9 m is still 'in reach' once in.
    runner.on_person_positions(np.array([[0.9, 0.0]]), 4.0)
    assert runner.stations_in_reach == frozenset({'table'}) and runner.kpis(4.0).replans == 1
    runner.on_person_positions(np.array([[PERSON_REACH_M + 0.11, 0.0]]), 5.0)
    assert runner.stations_in_reach == frozenset()
    assert runner.replan_reasons[-1] == (5.0, 'table out of reach') and runner.kpis(5.0).replans == 2


def test_a_change_away_from_the_robots_next_step_does_not_re_plan():
    # The robot's next step is at the table; the person comes within reach of the shelf only.
    runner = runner_for(two_robot_steps())
    message = runner.on_person_positions(np.array([[2.5, 0.0]]), 1.0)
    assert runner.stations_in_reach == frozenset({'shelf'}) and 'no re-plan' in message
    assert runner.kpis(1.0).replans == 0
    assert runner.next_actions(1.0).robot.step_id == 'place_base'      # not in reach: as planned
    # Once the robot's next step is the shelf's, the person there does re-plan.
    runner.step_done('place_base', 0, ROBOT, 6.0)
    runner.on_person_positions(np.array([[0.5, 0.0]]), 7.0)             # leaves the shelf: next is the shelf
    assert runner.replan_reasons[-1][1] == 'person within reach of table; shelf out of reach'


@pytest.mark.parametrize('centre_m, max_replans', [(0.5, 1), (PERSON_REACH_M + 0.05, 30), (PERSON_REACH_M, 30)])
def test_tracking_noise_does_not_re_plan_every_tick(centre_m, max_replans):
    runner = runner_for(two_robot_steps(), units=3)
    rng = np.random.default_rng(7)
    ticks = 1800                                           # 60 s at 30 Hz
    changes, previous = 0, None
    for k in range(ticks):
        xy = np.array([[centre_m, 0.0]]) + rng.normal(0.0, 0.03, (1, 2))
        runner.on_person_positions(xy, k / 30.0)
        changes += runner.stations_in_reach != previous
        previous = runner.stations_in_reach
    replans = runner.kpis(60.0).replans
    # At most one re-plan per reach_replan_min_s (2 s) whatever the noise; far fewer than the ticks.
    assert 1 <= replans <= max_replans and replans <= 60.0 / runner.config.reach_replan_min_s + 1
    assert all('reach' in reason for _, reason in runner.replan_reasons)


def test_a_person_standing_at_the_edge_flips_the_set_rarely_thanks_to_the_hysteresis():
    with_band = runner_for(two_robot_steps(), units=3)
    without = runner_for(two_robot_steps(), units=3, reach_hysteresis_m=0.0)
    rng = np.random.default_rng(3)
    flips = {id(with_band): 0, id(without): 0}
    last = {id(with_band): None, id(without): None}
    for k in range(900):
        xy = np.array([[PERSON_REACH_M, 0.0]]) + rng.normal(0.0, 0.02, (1, 2))
        for runner in (with_band, without):
            runner.on_person_positions(xy, k / 30.0)
            flips[id(runner)] += runner.stations_in_reach != last[id(runner)]
            last[id(runner)] = runner.stations_in_reach
    assert flips[id(with_band)] <= 5 < flips[id(without)]


def test_a_non_finite_position_means_unknown_and_keeps_todays_behaviour():
    runner = runner_for(two_robot_steps())
    runner.on_person_positions(NEAR_TABLE, 0.0)
    replans = runner.kpis(0.0).replans
    message = runner.on_person_positions(np.array([[math.nan, 0.0], [0.5, 0.0]]), 0.5)
    assert 'not finite' in message and runner.stations_in_reach is None
    assert runner.kpis(0.5).replans == replans               # no re-plan on doubt
    assert runner.next_actions(0.5).robot.step_id == 'place_base'   # no preference: the plan order
    assert runner.reach_deferrals == ()


@pytest.mark.parametrize('bad', [np.array([0.5, 0.0]), np.zeros((2, 3)), np.zeros((1, 2, 1)), [['a', 'b']],
                                 'nobody', None])
def test_wrong_shapes_are_refused_and_change_nothing(bad):
    runner = runner_for(two_robot_steps())
    runner.on_person_positions(NEAR_TABLE, 0.0)
    with pytest.raises(ValueError, match=r'\(N, 2\)'):
        runner.on_person_positions(bad, 1.0)
    assert runner.stations_in_reach == frozenset({'table'})


@pytest.mark.parametrize('now_s', [math.nan, math.inf, None])
def test_a_bad_time_is_refused(now_s):
    runner = runner_for(two_robot_steps())
    with pytest.raises(ValueError, match='now_s'):
        runner.on_person_positions(NEAR_TABLE, now_s)


def test_nobody_tracked_means_nothing_in_reach():
    runner = runner_for(two_robot_steps())
    runner.on_person_positions(NEAR_TABLE, 0.0)
    assert 'table out of reach' in runner.on_person_positions(np.empty((0, 2)), 5.0)
    assert runner.stations_in_reach == frozenset()


@pytest.mark.parametrize('config, match', [
    ({'person_reach_m': 0.0}, 'person_reach_m'), ({'person_reach_m': math.nan}, 'person_reach_m'),
    ({'reach_hysteresis_m': -0.1}, 'reach_hysteresis_m'), ({'reach_replan_min_s': math.inf}, 'reach_replan_min_s'),
    ({'station_positions_xy': (('a', 0.0, math.nan),)}, 'finite'),
    ({'station_positions_xy': (('a', 0.0),)}, 'station, x m, y m'),
    ({'station_positions_xy': (('a', 0.0, 0.0), ('a', 1.0, 0.0))}, 'twice')])
def test_bad_configuration_is_refused(config, match):
    with pytest.raises(ValueError, match=match):
        ShiftConfig(**config)


def test_station_positions_parse_from_parameter_strings():
    assert parse_station_positions(['pick 0.35 -0.35', ' assembly 0.7 0 ']) == (
        ('pick', 0.35, -0.35), ('assembly', 0.7, 0.0))
    for bad in (['pick 0.35'], ['pick 1 2 3'], ['pick x 0'], ['pick nan 0'], ['a 0 0', 'a 1 1']):
        with pytest.raises(ConfigError, match='pick|a'):
            parse_station_positions(bad)


def test_the_gearbox_with_a_person_at_the_assembly_station_loses_and_repeats_nothing(repo):
    gearbox = load_recipe(repo / 'config' / 'job_gearbox.yaml')
    layout = (('pick', 0.35, -0.35), ('place', -0.35, 0.35), ('assembly', 0.70, 0.0), ('operator_bench', 3.6, -1.1))
    runner = ShiftRunner(gearbox, 2, SCHEDULER, now_s=0.0, config=ShiftConfig(station_positions_xy=layout))
    person = np.array([[1.20, 0.0]])
    now_s = 0.0
    for _ in range(2000):
        runner.on_person_positions(person, now_s)
        actions = runner.next_actions(now_s)
        if runner.finished:
            break
        current = [a for a in (actions.robot, actions.human) if a is not None]
        first = min(current, key=lambda a: (a.expected_end_s, a.executor))
        now_s = max(now_s, first.expected_end_s)
        for executor in ((ROBOT, HUMAN) if first.handover else (first.executor,)):
            runner.step_done(first.step_id, first.unit, executor, now_s)
    assert runner.finished and runner.reach_deferrals
    deferred_stations = {gearbox.by_id[d[1][1]].station for d in runner.reach_deferrals}
    assert deferred_stations == {'assembly'}
    log = Schedule(tuple(sorted(runner.log, key=lambda e: e.start_s)), 0.0, now_s, 'log')
    assert schedule_violations(gearbox, log, 2, check_durations=False) == []
    assert sum(1 for e in runner.log if e.actor == BOTH) == 2 * 2


def test_a_step_the_person_waits_for_can_be_exempt_from_deferral():
    # The person's next step (assemble) needs place_base: by default (reach_defer_awaited=False) the robot goes on.
    runner = runner_for(two_robot_steps())
    runner.on_person_positions(NEAR_TABLE, 0.0)
    assert runner.next_actions(0.0).robot.step_id == 'place_base' and runner.reach_deferrals == ()
    # A step nobody waits for is still deferred.
    recipe = recipe_from_dict({'job': 'tidy', 'stations': ['table', 'shelf', 'bench'], 'steps': [
        {'id': 'place_base', 'actor': 'robot', 'kind': 'place', 'station': 'table', 'duration_s': 5.0},
        {'id': 'stock_shelf', 'actor': 'robot', 'kind': 'pick', 'station': 'shelf', 'duration_s': 3.0},
        {'id': 'fetch', 'actor': 'human', 'kind': 'fetch', 'station': 'bench', 'duration_s': 20.0}]})
    runner = runner_for(recipe, reach_defer_awaited=False)
    assert [e.step_id for e in runner.plan.entries if e.actor == ROBOT][0] == 'place_base'
    runner.on_person_positions(NEAR_TABLE, 0.0)
    assert runner.next_actions(0.0).robot.step_id == 'stock_shelf'


POSITION_EVENTS = st.lists(st.tuples(
    st.sampled_from(['robot_done', 'human_done', 'people', 'people', 'stop', 'clear', 'absent', 'present']),
    st.floats(0.0, 10.0),                                                    # time advance, s
    st.lists(st.tuples(st.one_of(st.floats(-1.0, 3.0), st.just(math.nan)), st.floats(-1.0, 1.0)), max_size=3)),
    max_size=60)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 5000), units=st.integers(1, 2), events=POSITION_EVENTS)
def test_moving_people_never_lose_or_repeat_a_step_and_the_runner_stays_deterministic(seed, units, events):
    recipe = generated_recipe(8, seed, n_stations=3, handover_share=0.2, either_share=0.4)
    stations = tuple((name, float(i), 0.0) for i, name in enumerate(recipe.stations))
    runs = []
    for _ in range(2):
        runner = ShiftRunner(recipe, units, SCHEDULER, now_s=0.0, config=ShiftConfig(station_positions_xy=stations))
        now_s = 0.0
        for name, dt, people in events:
            now_s += dt
            actions = runner.next_actions(now_s)
            done_before = runner.done_steps()
            action = {'robot_done': actions.robot, 'human_done': actions.human}.get(name)
            if action is not None:
                for executor in ((ROBOT, HUMAN) if action.handover else (action.executor,)):
                    runner.step_done(action.step_id, action.unit, executor, now_s)
            elif name == 'people':
                runner.on_person_positions(np.array(people, dtype=float).reshape(-1, 2), now_s)
            elif name in ('stop', 'clear', 'absent', 'present'):
                getattr(runner, {'stop': 'on_protective_stop', 'clear': 'on_safety_clear',
                                 'absent': 'on_person_absent', 'present': 'on_person_present'}[name])(now_s)
            assert done_before <= runner.done_steps(), 'a done step was lost'
        runner.on_person_present(now_s)
        runner.on_safety_clear(now_s)
        for _ in range(500):
            actions = runner.next_actions(now_s)
            if runner.finished:
                break
            first = min((a for a in (actions.robot, actions.human) if a is not None),
                        key=lambda a: (a.expected_end_s, a.executor))
            now_s = max(now_s, first.expected_end_s)
            for executor in ((ROBOT, HUMAN) if first.handover else (first.executor,)):
                runner.step_done(first.step_id, first.unit, executor, now_s)
        assert runner.finished
        keys = [e.key for e in runner.log]
        assert len(keys) == len(set(keys)) == units * len(recipe.steps)
        log = Schedule(tuple(sorted(runner.log, key=lambda e: e.start_s)), 0.0, now_s, 'log')
        assert schedule_violations(recipe, log, units, check_durations=False) == []
        runs.append((runner.log, runner.replan_reasons, runner.reach_deferrals))
    assert runs[0] == runs[1]


def test_the_supervisors_station_positions_are_the_twin_layouts():
    from smartcell.core.node_params import SUPERVISOR
    from smartcell.twin.world import DEFAULT_LAYOUT
    configured = {name: (x, y) for name, x, y in parse_station_positions(SUPERVISOR.defaults()['station_positions_xy'])}
    layout = {s.name: tuple(s.position_m[:2]) for s in DEFAULT_LAYOUT.stations}
    assert sorted(configured) == sorted(layout)
    assert all(np.allclose(configured[name], layout[name]) for name in layout)


def test_the_cell_controller_feeds_the_runner_the_tracked_people(repo):
    """Wiring: the controller hands every people update to the job runner, with the configured stations."""
    from smartcell.core.cell.controller import CellController, JointSample
    from smartcell.core.cell.states import State
    from smartcell.core.node_params import SUPERVISOR
    from smartcell.core.safety.monitor import PeopleObservation
    config = repo / 'config'
    params = {**SUPERVISOR.defaults(), 'robot_base_xyz_yaw': [0.0, 0.0, 0.75, 0.0], 'lockstep': True,
              'job': 'job_gearbox', 'units': 1}
    cell = CellController.from_params(params, config / 'stopping.yaml', config / 'body_regions.yaml',
                                      config / 'motions.yaml', lambda job: load_recipe(config / f'{job}.yaml'))
    assert cell.config.station_positions_xy[2] == ('assembly', 0.70, 0.0)
    home = np.array([0.0, -1.571, 1.571, -1.571, -1.571, 0.0])
    t = 0.0

    def tick(person):
        nonlocal t
        t += 1.0 / 30.0
        cell.on_cycle(PeopleObservation(t, 'world', np.array([[*person, 0.0]])), JointSample(t, home, np.zeros(6)), t)

    for _ in range(45):                       # restart interlock, then start with the person far away
        tick((4.0, 3.0))
    assert cell.request('start', t).success
    for _ in range(60):
        tick((4.0, 3.0))
    assert cell.state in (State.RUNNING, State.PROTECTIVE_STOP) and cell.runner is not None
    assert cell.runner.stations_in_reach == frozenset()
    tick((1.20, 0.0))                          # at the shared station's person place
    assert cell.runner.stations_in_reach == frozenset({'assembly'})
    tick((math.nan, 0.0))
    assert cell.runner.stations_in_reach is None     # NaN: unknown, nothing preferred


def test_the_runner_plans_the_persons_walks_between_stations_at_the_configured_speed(repo):
    recipe = load_recipe(repo / 'config' / 'job_gearbox.yaml')
    stations = parse_station_positions(['pick 0.35 -0.35', 'place -0.35 0.35', 'assembly 0.70 0.0',
                                        'operator_bench 3.6 -1.1'])
    walking = ShiftRunner(recipe, 2, SCHEDULER, config=ShiftConfig(station_positions_xy=stations,
                                                                    person_walking_speed_mps=1.6))
    teleporting = ShiftRunner(recipe, 2, SCHEDULER, config=ShiftConfig(station_positions_xy=stations))
    bench_to_assembly_s = math.hypot(3.6 - 0.70, -1.1 - 0.0) / 1.6
    person = sorted((e for e in walking.plan.entries if e.actor in (HUMAN, BOTH)), key=lambda e: e.start_s)
    walks = [(a, b) for a, b in zip(person, person[1:]) if {a.station, b.station} == {'operator_bench', 'assembly'}]
    assert walks and all(b.start_s - a.end_s >= bench_to_assembly_s - 1e-9 for a, b in walks)
    assert walking.plan.makespan_s > teleporting.plan.makespan_s
    with pytest.raises(ValueError, match='person_walking_speed_mps'):
        ShiftConfig(person_walking_speed_mps=-1.0)
