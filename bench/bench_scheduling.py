"""Scheduling benchmark: time for a 200-step job, makespan gain over the baselines, heuristic gap.

Run from the repository root:
    .venv/bin/python bench/bench_scheduling.py            # all figures
    .venv/bin/python bench/bench_scheduling.py --quick    # fewer jobs

Prints figures only; goals (200 steps <= 100 ms) are judged by the reader, not asserted.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartcell.core.tasks.scheduling import (Scheduler, naive_schedule, schedule_violations,  # noqa: E402
                                       sequential_schedule)
from smartcell.core.tasks.recipe import generated_recipe, load_recipe  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def time_large_job(n_steps: int, seeds: range, scheduler: Scheduler) -> None:
    times_ms, gains = [], []
    for seed in seeds:
        recipe = generated_recipe(n_steps, seed, n_stations=8)
        start = time.perf_counter()
        schedule = scheduler.schedule(recipe)
        times_ms.append(1000.0 * (time.perf_counter() - start))
        assert not schedule_violations(recipe, schedule), f'invalid schedule for seed {seed}'
        gains.append(1.0 - schedule.makespan_s / naive_schedule(recipe).makespan_s)
    print(f'{n_steps}-step generated jobs ({len(seeds)} seeds, time budget {scheduler.time_budget_s} s): '
          f'scheduling time median {statistics.median(times_ms):.1f} ms, max {max(times_ms):.1f} ms; '
          f'gain over naive {100 * statistics.mean(gains):.1f} % mean')


def gains_on_generated_jobs(count: int, scheduler: Scheduler) -> None:
    rows = {'naive': [], 'sequential': []}
    methods: dict[str, int] = {}
    for seed in range(count):
        n_steps = 8 + seed % 40
        units = 1 + seed % 4
        recipe = generated_recipe(n_steps, 1000 + seed, n_stations=3 + seed % 4, handover_share=0.1,
                                  either_share=0.35)
        best = scheduler.schedule(recipe, units)
        methods[best.method] = methods.get(best.method, 0) + 1
        for name, baseline in (('naive', naive_schedule), ('sequential', sequential_schedule)):
            rows[name].append(1.0 - best.makespan_s / baseline(recipe, units).makespan_s)
    print(f'{count} generated jobs (8-47 steps, 1-4 units): winning method {methods}')
    for name, gains in rows.items():
        print(f'  makespan gain over {name:10s}: mean {100 * statistics.mean(gains):5.1f} %, '
              f'min {100 * min(gains):5.1f} %, max {100 * max(gains):5.1f} %')


def shipped_job(scheduler: Scheduler) -> None:
    recipe = load_recipe(REPO / 'config' / 'job_gearbox.yaml')
    for units in (1, 3, 10):
        start = time.perf_counter()
        best = scheduler.schedule(recipe, units)
        elapsed_ms = 1000.0 * (time.perf_counter() - start)
        naive, sequential = naive_schedule(recipe, units), sequential_schedule(recipe, units)
        print(f'gearbox x{units:<2d}: best {best.makespan_s:6.0f} s ({best.method}, {elapsed_ms:.0f} ms), '
              f'naive {naive.makespan_s:6.0f} s (-{100 * (1 - best.makespan_s / naive.makespan_s):.0f} %), '
              f'sequential {sequential.makespan_s:6.0f} s '
              f'(-{100 * (1 - best.makespan_s / sequential.makespan_s):.0f} %)')


def heuristic_gap(count: int) -> None:
    exact = Scheduler(exact_max_steps=8, time_budget_s=None)
    heuristic = Scheduler(exact_max_steps=0, time_budget_s=None)
    gaps, proven = [], 0
    for seed in range(count):
        recipe = generated_recipe(7, 5000 + seed, n_stations=3, handover_share=0.15, either_share=0.4)
        optimum = exact.schedule(recipe)
        proven += optimum.optimal
        gaps.append(heuristic.schedule(recipe).makespan_s / optimum.makespan_s - 1.0)
    print(f'heuristic vs exact on {count} 7-step jobs ({proven} proven optimal): optimal in '
          f'{sum(g < 1e-9 for g in gaps)}/{count}, mean gap {100 * statistics.mean(gaps):.2f} %, '
          f'max gap {100 * max(gaps):.1f} %')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='fewer generated jobs')
    args = parser.parse_args(argv)
    default = Scheduler()
    time_large_job(200, range(5 if args.quick else 20), default)
    time_large_job(200, range(3 if args.quick else 5), Scheduler(time_budget_s=None))
    shipped_job(default)
    gains_on_generated_jobs(20 if args.quick else 100, default)
    heuristic_gap(20 if args.quick else 100)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
