"""Allocation and scheduling: optimality on small jobs, constraints on random jobs, baselines."""
import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from smartcell.core.tasks.scheduling import (InProgress, PlanRequest, Schedule, ScheduledStep, ScheduleError, Scheduler,
                                       naive_schedule, person_travel_times, schedule_violations, sequential_schedule,
                                       validate_schedule)
from smartcell.core.tasks.recipe import BOTH, HUMAN, ROBOT, generated_recipe, load_recipe, recipe_from_dict

EXACT = Scheduler(exact_max_steps=8, time_budget_s=None)
HEURISTIC_ONLY = Scheduler(exact_max_steps=0, time_budget_s=None, search_iterations=100)


def brute_force_makespan(recipe) -> float:
    """Optimal makespan by a different method: enumerate executors and the order of every pair of
    steps that share a resource (disjunctive graph); earliest starts are longest paths."""
    steps = recipe.steps
    ids = [s.id for s in steps]
    best = math.inf
    for executors in itertools.product(*[s.executors for s in steps]):
        use = [{s.station} | ({ROBOT, HUMAN} if e == BOTH else {e}) for s, e in zip(steps, executors)]
        dur = [s.duration_s(e) for s, e in zip(steps, executors)]
        n = len(steps)
        reach = [[False] * n for _ in range(n)]   # reach[a][b]: a must end before b starts
        for b, s in enumerate(steps):
            for before in s.after:
                reach[ids.index(before)][b] = True
        for k, a, b in itertools.product(range(n), repeat=3):
            reach[a][b] = reach[a][b] or (reach[a][k] and reach[k][b])
        pairs = [(a, b) for a, b in itertools.combinations(range(n), 2) if use[a] & use[b]]
        best = min(best, _orient(pairs, 0, reach, dur, n))
    return best


def _orient(pairs, i, reach, dur, n):
    while i < len(pairs) and (reach[pairs[i][0]][pairs[i][1]] or reach[pairs[i][1]][pairs[i][0]]):
        i += 1
    if i == len(pairs):
        return _longest_path(reach, dur, n)
    best = math.inf
    a, b = pairs[i]
    for first, second in ((a, b), (b, a)):
        closed = [row[:] for row in reach]
        sources = [x for x in range(n) if x == first or closed[x][first]]
        targets = [y for y in range(n) if y == second or closed[second][y]]
        for x in sources:
            for y in targets:
                closed[x][y] = True
        best = min(best, _orient(pairs, i + 1, closed, dur, n))
    return best


def _longest_path(reach, dur, n):
    finish = {}

    def end(b):
        if b not in finish:
            finish[b] = dur[b] + max((end(a) for a in range(n) if reach[a][b]), default=0.0)
        return finish[b]

    return max(end(b) for b in range(n))


@pytest.mark.parametrize('seed', range(40))
def test_exact_matches_brute_force_on_small_jobs(seed):
    recipe = generated_recipe(3 + seed % 5, seed, n_stations=2 + seed % 2, handover_share=0.15,
                              either_share=0.35, precedence_density=0.3, max_duration_s=6)
    schedule = EXACT.schedule(recipe)
    validate_schedule(recipe, schedule)
    assert schedule.optimal
    assert schedule.makespan_s == pytest.approx(brute_force_makespan(recipe))


def test_brute_force_itself_sees_resource_conflicts():
    # Two robot steps at different stations, independent: brute force must serialise them.
    recipe = recipe_from_dict({'job': 'two', 'stations': ['a', 'b'], 'steps': [
        {'id': 'x', 'actor': 'robot', 'kind': 'pick', 'station': 'a', 'duration_s': 2},
        {'id': 'y', 'actor': 'robot', 'kind': 'place', 'station': 'b', 'duration_s': 3}]})
    assert brute_force_makespan(recipe) == 5.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 25), seed=st.integers(0, 10_000), units=st.integers(1, 3),
       stations=st.integers(1, 4), handovers=st.floats(0.0, 0.4), either=st.floats(0.0, 0.6),
       exact=st.booleans())
def test_every_schedule_respects_every_constraint(n, seed, units, stations, handovers, either, exact):
    recipe = generated_recipe(n, seed, n_stations=stations, handover_share=handovers, either_share=either,
                              integer_durations=False)
    scheduler = EXACT if exact else HEURISTIC_ONLY
    best = scheduler.schedule(recipe, units)
    for schedule in (best, naive_schedule(recipe, units), sequential_schedule(recipe, units)):
        assert schedule_violations(recipe, schedule, units) == []
    assert best.makespan_s <= naive_schedule(recipe, units).makespan_s + 1e-9
    assert best.makespan_s <= sequential_schedule(recipe, units).makespan_s + 1e-9


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), units=st.integers(1, 3), done_share=st.floats(0.0, 0.8),
       human_back_s=st.floats(0.0, 50.0), either_to=st.sampled_from([None, ROBOT, HUMAN]))
def test_replanning_respects_constraints(seed, units, done_share, human_back_s, either_to):
    recipe = generated_recipe(10, seed, n_stations=3, handover_share=0.2, either_share=0.4)
    # Take a real plan, mark its earliest entries done and those running at `now` in progress.
    full = EXACT.schedule(recipe, units)
    now = full.makespan_s * done_share
    done = frozenset(e.key for e in full.entries if e.end_s <= now)
    running = tuple(InProgress(e.unit, e.step_id, e.actor, e.start_s, e.end_s)
                    for e in full.entries if e.start_s <= now < e.end_s)
    request = PlanRequest(recipe, units, now_s=now, done=done, in_progress=running,
                          executor_free_s=((HUMAN, now + human_back_s),), either_to=either_to)
    plan = HEURISTIC_ONLY.plan(request)
    assert schedule_violations(recipe, plan, units, done=done) == []
    for e in plan.entries:
        if not e.fixed:
            assert e.start_s >= now - 1e-9
            if e.actor in (HUMAN, BOTH):
                assert e.start_s >= now + human_back_s - 1e-9
            if either_to and len(recipe.by_id[e.step_id].executors) == 2:
                assert e.actor == either_to


# -- the person's walks between stations --------------------------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 20), seed=st.integers(0, 10_000), units=st.integers(1, 3), exact=st.booleans(),
       walks=st.lists(st.floats(0.0, 20.0), min_size=6, max_size=6), done_share=st.floats(0.0, 0.7))
def test_every_plan_leaves_the_person_time_to_walk(n, seed, units, exact, walks, done_share):
    recipe = generated_recipe(n, seed, n_stations=4, handover_share=0.2, either_share=0.4, integer_durations=False)
    stations = [f'station_{i}' for i in range(4)]
    travel = tuple((a, b, t) for (a, b), t in zip(itertools.combinations(stations, 2), walks))
    scheduler = EXACT if exact else HEURISTIC_ONLY
    plan = scheduler.plan(PlanRequest(recipe, units, person_travel_s=travel))
    assert schedule_violations(recipe, plan, units, person_travel_s=travel) == []
    free = scheduler.plan(PlanRequest(recipe, units))
    if free.optimal:                                       # walking never makes the optimum shorter
        assert plan.makespan_s >= free.makespan_s - 1e-9
    # re-planned with steps done and running: still room to walk after the running one
    now = plan.makespan_s * done_share
    done = frozenset(e.key for e in plan.entries if e.end_s <= now)
    running = tuple(InProgress(e.unit, e.step_id, e.actor, e.start_s, e.end_s)
                    for e in plan.entries if e.start_s <= now < e.end_s)
    again = HEURISTIC_ONLY.plan(PlanRequest(recipe, units, now_s=now, done=done, in_progress=running,
                                            person_travel_s=travel))
    assert schedule_violations(recipe, again, units, done=done, person_travel_s=travel) == []


def walking_recipe():
    """Four person steps, two at the bench and two at the assembly station, in any order."""
    return recipe_from_dict({'job': 'walks', 'stations': ['bench', 'assembly'], 'steps': [
        {'id': f'{kind}_{k}', 'actor': 'human', 'kind': 'assemble', 'station': station, 'duration_s': 5}
        for k in range(2) for kind, station in (('fetch', 'bench'), ('fit', 'assembly'))]})


def test_the_plan_sends_the_person_across_the_cell_once_not_back_and_forth():
    travel = (('bench', 'assembly', 10.0),)
    plan = EXACT.plan(PlanRequest(walking_recipe(), 1, person_travel_s=travel))
    assert plan.optimal and plan.makespan_s == pytest.approx(30.0)       # 4 x 5 s and one walk, not three
    stations = [e.station for e in sorted(plan.entries, key=lambda e: e.start_s)]
    assert stations in (['bench', 'bench', 'assembly', 'assembly'], ['assembly', 'assembly', 'bench', 'bench'])
    assert EXACT.plan(PlanRequest(walking_recipe(), 1)).makespan_s == pytest.approx(20.0)   # walks not planned
    assert person_travel_times([('bench', 0.0, 0.0), ('assembly', 3.0, 4.0)], 1.25) == (('bench', 'assembly', 4.0),)
    with pytest.raises(ValueError, match='walking speed'):
        person_travel_times([('bench', 0.0, 0.0)], 0.0)
    with pytest.raises(ValueError, match='person_travel_s'):
        EXACT.plan(PlanRequest(walking_recipe(), 1, person_travel_s=(('bench', 'assembly', math.nan),)))


def test_the_validator_names_a_walk_too_short():
    recipe = walking_recipe()
    rows = [('fetch_0', 'bench', 0.0), ('fit_0', 'assembly', 7.0), ('fetch_1', 'bench', 22.0),
            ('fit_1', 'assembly', 40.0)]
    entries = tuple(ScheduledStep(0, step, HUMAN, station, start, start + 5.0) for step, station, start in rows)
    schedule = Schedule(entries, 0.0, 45.0, 'test')
    problems = schedule_violations(recipe, schedule, person_travel_s=(('bench', 'assembly', 10.0),))
    assert len(problems) == 1 and "cannot walk from 'bench'" in problems[0] and "'fit_0'" in problems[0]
    assert schedule_violations(recipe, schedule) == []


@pytest.mark.parametrize('units', [1, 3, 10])
def test_shipped_gearbox_job_beats_both_baselines(repo, units, capsys):
    recipe = load_recipe(repo / 'config' / 'job_gearbox.yaml')
    best = Scheduler(time_budget_s=None).schedule(recipe, units)
    naive, sequential = naive_schedule(recipe, units), sequential_schedule(recipe, units)
    for schedule in (best, naive, sequential):
        validate_schedule(recipe, schedule, units)
    assert best.makespan_s <= naive.makespan_s and best.makespan_s <= sequential.makespan_s
    # The shipped job has parallel robot/person work, so a real gain must show, not just a tie.
    assert best.makespan_s < naive.makespan_s and best.makespan_s < sequential.makespan_s
    with capsys.disabled():
        print(f'\ngearbox x{units}: best {best.makespan_s:.0f} s ({best.method}), naive {naive.makespan_s:.0f} s '
              f'(-{100 * (1 - best.makespan_s / naive.makespan_s):.0f} %), sequential {sequential.makespan_s:.0f} s '
              f'(-{100 * (1 - best.makespan_s / sequential.makespan_s):.0f} %)')


def test_batch_pipelines_units(repo):
    recipe = load_recipe(repo / 'config' / 'job_gearbox.yaml')
    one = Scheduler(time_budget_s=None).schedule(recipe, 1)
    three = Scheduler(time_budget_s=None).schedule(recipe, 3)
    assert three.makespan_s < 3 * one.makespan_s
    unit1_start = min(e.start_s for e in three.entries if e.unit == 1)
    unit0_end = max(e.end_s for e in three.entries if e.unit == 0)
    assert unit1_start < unit0_end   # unit 1 started before unit 0 was finished


def test_deterministic_without_time_budget(repo):
    recipe = generated_recipe(60, 7, n_stations=5)
    a = Scheduler(time_budget_s=None).schedule(recipe, 2)
    b = Scheduler(time_budget_s=None).schedule(recipe, 2)
    assert a == b


def test_demo_job_is_solved_exactly(repo):
    recipe = load_recipe(repo / 'config' / 'job_demo.yaml')
    schedule = Scheduler().schedule(recipe)
    assert schedule.optimal
    assert schedule.makespan_s == pytest.approx(brute_force_makespan(recipe))


# --- the validator catches every kind of violation ---------------------------------------------

DEMO = recipe_from_dict({'job': 'v', 'stations': ['a', 'b'], 'steps': [
    {'id': 'r1', 'actor': 'robot', 'kind': 'pick', 'station': 'a', 'duration_s': 2},
    {'id': 'h1', 'actor': 'human', 'kind': 'fetch', 'station': 'b', 'duration_s': 3},
    {'id': 'e1', 'actor': 'either', 'kind': 'place', 'station': 'b', 'duration_s': {'robot': 4, 'human': 5},
     'after': ['r1']},
    {'id': 'hand', 'actor': 'both', 'kind': 'present', 'station': 'a', 'duration_s': 1, 'after': ['e1', 'h1']},
]})


def entries(*rows):
    return tuple(ScheduledStep(0, step_id, actor, DEMO.by_id[step_id].station, start, end)
                 for step_id, actor, start, end in rows)


GOOD = [('r1', 'robot', 0, 2), ('h1', 'human', 0, 3), ('e1', 'robot', 3, 7), ('hand', 'both', 7, 8)]


def with_rows(rows, makespan=None):
    span = max(r[3] for r in rows) if makespan is None else makespan
    return Schedule(entries(*rows), 0.0, span, 'test')


def test_validator_accepts_a_good_schedule():
    assert schedule_violations(DEMO, with_rows(GOOD)) == []


@pytest.mark.parametrize('rows,fragment', [
    ([GOOD[0], GOOD[1], ('e1', 'robot', 1, 5), ('hand', 'both', 7, 8)], "starts at 1 s before 'r1'"),
    ([GOOD[0], ('h1', 'human', 2, 5), ('e1', 'human', 3, 8), ('hand', 'both', 8, 9)], "'human' is used by"),
    ([GOOD[0], GOOD[1], ('e1', 'robot', 2, 6), ('hand', 'both', 7, 8)], "'b' is used by"),
    ([GOOD[0], GOOD[1], ('e1', 'robot', 3, 7), ('hand', 'robot', 7, 8)], "given to 'robot'"),
    ([GOOD[0], GOOD[1], ('e1', 'robot', 3, 6), ('hand', 'both', 7, 8)], 'lasts 3 s'),
    ([GOOD[0], GOOD[1], GOOD[2]], "'hand' of unit 0 is missing"),
    ([GOOD[0], GOOD[0], GOOD[1], GOOD[2], GOOD[3]], 'scheduled twice'),
    ([('r1', 'robot', -1, 1), GOOD[1], GOOD[2], GOOD[3]], 'before the plan origin'),
    ([GOOD[0], ('h1', 'human', 0, 3), ('e1', 'robot', 3, 7), ('hand', 'both', 6.5, 7.5)], "'robot' is used by"),
])
def test_validator_names_each_violation(rows, fragment):
    problems = schedule_violations(DEMO, with_rows(rows))
    assert any(fragment in p for p in problems), problems
    with pytest.raises(ScheduleError):
        validate_schedule(DEMO, with_rows(rows))


def test_validator_checks_the_makespan():
    assert any('makespan_s' in p for p in schedule_violations(DEMO, with_rows(GOOD, makespan=5.0)))


def test_gearbox_single_unit_is_proven_optimal_by_the_exact_search(repo):
    recipe = load_recipe(repo / 'config' / 'job_gearbox.yaml')
    proven = Scheduler(exact_max_steps=len(recipe.steps), time_budget_s=None).schedule(recipe)
    assert proven.optimal
    assert Scheduler().schedule(recipe).makespan_s == pytest.approx(proven.makespan_s)
