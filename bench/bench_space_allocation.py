"""Space-aware allocation: robot steps started within a person's reach, and makespan, old rule vs new.

Run from the repository root:
    .venv/bin/python bench/bench_space_allocation.py            # shipped jobs, 3 units
    .venv/bin/python bench/bench_space_allocation.py --units 5

In process, no ROS: the job runner (ShiftRunner) is ticked every `--dt` s of simulated time with
nominal step durations; every step is reported done at its expected end. The person is tracked with
Gaussian noise (`--noise` m per axis, seeded) and is, by scenario,

  * `at-assembly`: standing at the assembly station's person place (1.20, 0) all the time (working
    there on something the recipe does not model, or waiting for the robot);
  * `follows-steps`: at the place of the station of their current step and back at the bench when
    they have none (as the twin's simulated operator; walking is instantaneous here);
  * `walks-stays`: walks (`--walk` m/s, straight line) to the place of their current step's station
    and, with no step, stays where they are (e.g. waiting at the table for the robot).

"old" is the rule before space awareness (no station positions); "new" gets the twin layout's
station positions and the default reach (0.85 m, hysteresis 0.1 m); "new-" is "new" with
reach_defer_awaited=False (a step the person's next step waits for is not deferred). A robot-only step counts as
started in reach when the person's true position is within 0.85 m of its station at its start.
Prints figures only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartcell.core.tasks.job_runner import PERSON_REACH_M, ShiftConfig, ShiftRunner  # noqa: E402
from smartcell.core.tasks.recipe import BOTH, HUMAN, ROBOT, load_recipe  # noqa: E402
from smartcell.core.tasks.scheduling import Scheduler  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The twin's DEFAULT_LAYOUT (smartcell/twin/world.py), copied: the core takes positions as configuration.
STATIONS_XY = (('pick', 0.35, -0.35), ('place', -0.35, 0.35), ('assembly', 0.70, 0.0), ('operator_bench', 3.6, -1.1))
# Where the person stands to work at each station: the layout's person_xy_m, else the table's front edge.
PERSON_AT = {'assembly': (1.20, 0.0), 'operator_bench': (3.6, -0.55), 'pick': (1.20, -0.35), 'place': (1.20, 0.35)}
JOBS = ('job_demo', 'job_gearbox', 'job_kitting')


SCENARIOS = ('at-assembly', 'follows-steps', 'walks-stays')


def run(recipe_path: Path, units: int, scenario: str, rule: str, dt_s: float, noise_m: float,
        seed: int, walk_mps: float = 1.0) -> dict[str, float]:
    recipe = load_recipe(recipe_path)
    config = ShiftConfig(station_positions_xy=STATIONS_XY if rule != 'old' else (),
                         reach_defer_awaited=rule != 'new-')
    runner = ShiftRunner(recipe, units, Scheduler(time_budget_s=None), now_s=0.0, config=config)
    stations = {name: np.array([x, y]) for name, x, y in STATIONS_XY}
    rng = np.random.default_rng(seed)
    person = np.array(PERSON_AT['assembly'])
    started: set[tuple[int, str]] = set()
    in_reach = robot_started = 0
    now_s = 0.0
    while not runner.finished:
        if now_s > 100_000:
            raise RuntimeError(f'{recipe.job} did not finish')
        tracked = person + rng.normal(0.0, noise_m, 2)
        runner.on_person_positions(tracked.reshape(1, 2), now_s)
        actions = runner.next_actions(now_s)
        if scenario == 'follows-steps':
            person = np.array(PERSON_AT[actions.human.station] if actions.human else PERSON_AT['operator_bench'])
        elif scenario == 'walks-stays' and actions.human is not None:
            to_go = np.array(PERSON_AT[actions.human.station]) - person
            distance = float(np.linalg.norm(to_go))
            person = person + to_go * min(1.0, walk_mps * dt_s / distance) if distance > 0 else person
        robot = actions.robot
        if robot is not None and not robot.handover and (robot.unit, robot.step_id) not in started:
            started.add((robot.unit, robot.step_id))
            robot_started += 1
            in_reach += float(np.linalg.norm(person - stations[robot.station])) <= PERSON_REACH_M
        for action in (actions.robot, actions.human):
            if action is not None and action.expected_end_s <= now_s + 1e-9:
                executors = (ROBOT, HUMAN) if action.handover else (action.executor,)
                for executor in executors:
                    if runner.state_of(action.unit, action.step_id).value == 'active':
                        runner.step_done(action.step_id, action.unit, executor, now_s)
        now_s = round(now_s + dt_s, 9)
    kpis = runner.kpis(now_s)
    makespan = max(e.end_s for e in runner.log)
    handovers = sum(1 for e in runner.log if e.actor == BOTH)
    return {'robot_steps': robot_started, 'in_reach': in_reach, 'makespan_s': makespan,
            'replans': kpis.replans, 'deferrals': len(runner.reach_deferrals), 'handovers': handovers,
            'human_idle_s': kpis.human_idle_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--units', type=int, default=3)
    parser.add_argument('--dt', type=float, default=0.1, help='tick, simulated s')
    parser.add_argument('--noise', type=float, default=0.03, help='tracking noise per axis, m (1 sigma)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--walk', type=float, default=1.0, help='walking speed in walks-stays, m/s')
    parser.add_argument('--jobs', nargs='*', default=list(JOBS))
    args = parser.parse_args(argv)
    print(f'{args.units} units, tick {args.dt} s, tracking noise {args.noise} m, reach {PERSON_REACH_M} m')
    print(f'{"job":12s} {"scenario":14s} {"rule":4s} {"robot steps in reach":>21s} {"makespan s":>11s} '
          f'{"person idle s":>14s} {"re-plans":>9s} {"deferrals":>10s}')
    for job in args.jobs:
        path = REPO / 'config' / f'{job}.yaml'
        if not path.exists():
            print(f'{job}: no such recipe, skipped')
            continue
        for scenario in SCENARIOS:
            for rule in ('old', 'new', 'new-'):
                r = run(path, args.units, scenario, rule, args.dt, args.noise, args.seed, args.walk)
                print(f'{job:12s} {scenario:14s} {rule:4s} '
                      f'{r["in_reach"]:>10d} of {r["robot_steps"]:<7d} {r["makespan_s"]:>11.1f} '
                      f'{r["human_idle_s"]:>14.1f} {r["replans"]:>9d} {r["deferrals"]:>10d}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
