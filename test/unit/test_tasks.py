"""Recipe loading and validation: every error names the step and the problem."""
import copy
import math

import pytest
import yaml

from smartcell.core.params import ConfigError
from smartcell.core.tasks.recipe import (BOTH, EITHER, HUMAN, ROBOT, RecipeError, find_cycle, generated_recipe,
                                         load_recipe, recipe_from_dict, topological_order)

BASE = {
    'job': 'unit_test',
    'stations': ['kitting', 'assembly'],
    'parts': ['housing'],
    'tools': ['screwdriver'],
    'steps': [
        {'id': 'pick', 'actor': 'robot', 'kind': 'pick', 'station': 'kitting', 'duration_s': 5.0,
         'parts': ['housing']},
        {'id': 'give', 'actor': 'both', 'kind': 'present', 'station': 'assembly', 'duration_s': 3.0,
         'after': ['pick']},
        {'id': 'screw', 'actor': 'human', 'kind': 'fasten', 'station': 'assembly', 'duration_s': 10,
         'after': ['give'], 'tools': ['screwdriver'], 'cv': 0.2},
        {'id': 'stow', 'actor': 'either', 'kind': 'place', 'station': 'kitting',
         'duration_s': {'robot': 6.0, 'human': 4.0}, 'after': ['screw']},
    ],
}


DELETE = object()   # marks a key to remove


def changed(step_index=None, **changes):
    document = copy.deepcopy(BASE)
    target = document if step_index is None else document['steps'][step_index]
    for key, value in changes.items():
        if value is DELETE:
            del target[key]
        else:
            target[key] = value
    return document



def test_base_recipe_loads_with_every_field():
    recipe = recipe_from_dict(BASE)
    assert [s.id for s in recipe.steps] == ['pick', 'give', 'screw', 'stow']
    give, screw, stow = recipe.step('give'), recipe.step('screw'), recipe.step('stow')
    assert give.is_handover and give.executors == (BOTH,) and give.duration_s(BOTH) == 3.0
    assert screw.cv == 0.2 and screw.tools == ('screwdriver',) and screw.duration_s(HUMAN) == 10.0
    assert stow.executors == (ROBOT, HUMAN) and stow.duration_s(ROBOT) == 6.0 and stow.duration_s(HUMAN) == 4.0
    assert recipe.successors()['give'] == ('screw',)
    with pytest.raises(ValueError, match="'stow' cannot be done by 'both'"):
        stow.duration_s(BOTH)


@pytest.mark.parametrize('document,fragments', [
    (changed(0, actor='android'), ["step 'pick'", "unknown actor 'android'", 'robot, human, either, both']),
    (changed(0, station='paint_shop'), ["step 'pick'", "unknown station 'paint_shop'", 'kitting, assembly']),
    (changed(1, after=['ghost']), ["step 'give'", "unknown step 'ghost'"]),
    (changed(0, parts=['gear']), ["step 'pick'", "'gear'", 'does not declare', 'housing']),
    (changed(2, tools=['hammer']), ["step 'screw'", "'hammer'", 'does not declare']),
    (changed(0, duration_s=-1.0), ["step 'pick'", 'positive']),
    (changed(0, duration_s=0), ["step 'pick'", 'positive']),
    (changed(0, duration_s=math.nan), ["step 'pick'", 'finite']),
    (changed(0, duration_s=math.inf), ["step 'pick'", 'finite']),
    (changed(0, duration_s='fast'), ["step 'pick'", 'must be a number']),
    (changed(3, duration_s={'robot': 6.0}), ["step 'stow'", 'both robot and human']),
    (changed(3, duration_s={'robot': 6.0, 'human': 0.0}), ["step 'stow'", 'positive']),
    (changed(0, duration_s={'robot': 6.0, 'human': 4.0}), ["step 'pick'", 'only for actor either']),
    (changed(0, cv=1.5), ["step 'pick'", 'cv', '[0, 1]']),
    (changed(0, cv=math.nan), ["step 'pick'", 'cv', 'finite']),
    (changed(0, colour='red'), ["step 'pick'", "unknown key(s) colour", 'accepted: id, actor']),
    (changed(None, owner='me'), ['unknown key(s) owner']),
    (changed(0, kind='present'), ["step 'pick'", "kind 'present'", "actor 'robot'"]),
    (changed(1, kind='pick'), ["step 'give'", "kind 'pick'", "actor 'both'", 'present, receive']),
    (changed(3, kind='assemble'), ["step 'stow'", "kind 'assemble'", "actor 'either'"]),
    (changed(0, station=DELETE), ["step 'pick'", 'missing key(s) station']),
    (changed(None, steps=[]), ['non-empty list of steps']),
    (changed(None, stations=[]), ['lists no stations']),
    (changed(None, job=''), ['job must be a non-empty string']),
])
def test_each_error_names_the_step_and_the_problem(document, fragments):
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(document)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_duplicate_ids_are_rejected():
    document = copy.deepcopy(BASE)
    document['steps'].append(dict(document['steps'][0]))
    with pytest.raises(RecipeError, match="step 'pick': duplicate id"):
        recipe_from_dict(document)


def test_cycles_are_named():
    document = copy.deepcopy(BASE)
    document['steps'][0]['after'] = ['stow']          # pick -> stow -> screw -> give -> pick
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(document)
    message = str(err.value)
    assert 'precedence cycle' in message
    cycle = message.split('precedence cycle ')[1].split(' -> ')
    assert cycle[0] == cycle[-1] and set(cycle) == {'pick', 'give', 'screw', 'stow'}


def test_self_cycle_is_named():
    with pytest.raises(RecipeError, match=r"step 'pick': precedence cycle pick -> pick"):
        recipe_from_dict(changed(0, after=['pick']))


def test_find_cycle_returns_empty_without_cycle():
    assert find_cycle({'a': [], 'b': ['a'], 'c': ['a', 'b']}) == []
    assert find_cycle({'a': ['c'], 'b': ['a'], 'c': ['b']}) in (['a', 'c', 'b', 'a'], ['b', 'a', 'c', 'b'],
                                                                ['c', 'b', 'a', 'c'])


def test_stations_can_come_from_the_cell():
    document = changed(None, stations=DELETE)
    with pytest.raises(RecipeError, match='lists no stations'):
        recipe_from_dict(document)
    recipe = recipe_from_dict(document, stations=['kitting', 'assembly'])
    assert recipe.stations == ('kitting', 'assembly')


def test_recipe_error_is_a_config_error_and_value_error():
    assert issubclass(RecipeError, ConfigError) and issubclass(RecipeError, ValueError)


def test_file_errors(tmp_path):
    with pytest.raises(RecipeError, match='not found'):
        load_recipe(tmp_path / 'missing.yaml')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('steps: [unclosed')
    with pytest.raises(RecipeError, match='not valid YAML'):
        load_recipe(bad)
    good = tmp_path / 'good.yaml'
    good.write_text(yaml.safe_dump(BASE))
    assert load_recipe(good).job == 'unit_test'


@pytest.mark.parametrize('name', ['job_gearbox.yaml', 'job_demo.yaml', 'job_kitting.yaml'])
def test_shipped_recipes_load(repo, name):
    recipe = load_recipe(repo / 'config' / name)
    order = topological_order(recipe)
    assert sorted(order) == sorted(s.id for s in recipe.steps)
    for step in recipe.steps:
        assert all(order.index(b) < order.index(step.id) for b in step.after)


def test_gearbox_has_what_the_brief_asks(repo):
    recipe = load_recipe(repo / 'config' / 'job_gearbox.yaml')
    actors = [s.actor for s in recipe.steps]
    assert 10 <= len(recipe.steps) <= 15
    assert actors.count(BOTH) == 2 and {ROBOT, HUMAN, EITHER} <= set(actors)
    at_assembly = {s.actor for s in recipe.steps if s.station == 'assembly'}
    assert {ROBOT, HUMAN, BOTH} <= at_assembly


def test_kitting_schedules_person_bound_and_its_ideal_cycle_is_the_cells(repo):
    from smartcell.core.params import load_cell_config
    from smartcell.core.tasks.scheduling import Scheduler, naive_schedule, sequential_schedule, validate_schedule
    from smartcell.topology import param_registry
    recipe = load_recipe(repo / 'config' / 'job_kitting.yaml')
    actors = [s.actor for s in recipe.steps]
    assert {ROBOT, HUMAN, EITHER, BOTH} <= set(actors)
    assert {s.station for s in recipe.steps} == {'pick', 'place', 'assembly', 'operator_bench'}
    assert all(s.station != 'operator_bench' for s in recipe.steps if s.actor != HUMAN)   # outside the fence
    scheduler = Scheduler(time_budget_s=None)
    three = scheduler.schedule(recipe, 3)
    validate_schedule(recipe, three, 3)
    assert three.makespan_s < naive_schedule(recipe, 3).makespan_s < sequential_schedule(recipe, 3).makespan_s
    # Over a batch the person's 38 s of work per unit sets the pace (the robot's is shorter): the
    # MES's ideal cycle for the product is that best batch cycle.
    person_s = sum(s.duration_s(HUMAN if s.actor == HUMAN else BOTH) for s in recipe.steps if s.actor in (HUMAN, BOTH))
    ten = scheduler.schedule(recipe, 10)
    assert ten.makespan_s / 10 == pytest.approx(person_s) == pytest.approx(38.0)
    mes = load_cell_config(repo / 'config' / 'cell.yaml', param_registry())['mes_bridge']
    assert dict(zip(mes['work_masters'], mes['ideal_cycle_s']))['kitting'] == pytest.approx(ten.makespan_s / 10)


@pytest.mark.parametrize('seed', range(5))
def test_generated_recipes_are_valid_and_deterministic(seed):
    a = generated_recipe(30, seed)
    assert a == generated_recipe(30, seed) and len(a.steps) == 30
