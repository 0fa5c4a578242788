"""Benchmark of the PyBullet twin alone (no ROS): real-time factor and scanner ray-cast time.

Steps the same world as the full cell - the arm cycling between the pick and place stations,
people following a scenario, one safety scan per 30 Hz tick, the true person-robot distance and
contacts every tick - and reports how many simulated seconds run per wall-clock second.

    .venv/bin/python bench/bench_twin.py [--duration 120] [--seed 1]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from a checkout without installing

from smartcell.twin.demo import arm_target, station_joint_targets  # noqa: E402
from smartcell.twin.scanner import SafetyScanner, ScannerConfig  # noqa: E402
from smartcell.twin.scenarios import scenario_paths  # noqa: E402
from smartcell.twin.world import DEFAULT_LAYOUT, CellWorld, connect, disconnect  # noqa: E402

TICK_RATE_HZ = 30.0


@dataclass(frozen=True)
class BenchResult:
    sim_time_s: float
    wall_time_s: float
    cpu_time_s: float                    # this process's CPU time: less sensitive to a busy machine
    scan_ms: np.ndarray                  # per scan
    beams_cast: np.ndarray               # per scan
    full_scan_ms: float                  # mean time of casting all 541 beams

    @property
    def real_time_factor(self) -> float:
        return self.sim_time_s / self.wall_time_s

    @property
    def cpu_real_time_factor(self) -> float:
        return self.sim_time_s / self.cpu_time_s


def run(duration_s: float, seed: int, scenario: str = 'shift') -> BenchResult:
    client = connect(gui=False)
    try:
        world = CellWorld(client, DEFAULT_LAYOUT, seed=seed, people=scenario_paths(scenario, seed, duration_s))
        scanner = SafetyScanner(client, DEFAULT_LAYOUT.scanner, ScannerConfig(rate_hz=TICK_RATE_HZ),
                                rng=np.random.default_rng(seed), moving_shapes=world.moving_shapes(),
                                people_capsules=world.people_capsules, boxed_shapes=world.robot_shapes())
        pick, place = station_joint_targets(DEFAULT_LAYOUT)
        ticks = int(round(duration_s * TICK_RATE_HZ))
        scan_ms, beams = np.empty(ticks), np.empty(ticks)
        start, start_cpu = time.perf_counter(), time.process_time()
        for k in range(ticks):
            world.set_joint_targets(*arm_target(world.sim_time, pick, place))
            world.step(1.0 / TICK_RATE_HZ)
            world.joint_state()
            t0 = time.perf_counter()
            scanner.scan(world.sim_time)
            scan_ms[k] = (time.perf_counter() - t0) * 1e3
            beams[k] = scanner.last_beams_cast
            world.min_person_robot_distance()
            world.person_robot_contacts()
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        t0 = time.perf_counter()
        for _ in range(50):
            scanner.scan(world.sim_time, cast_all_beams=True)
        full_ms = (time.perf_counter() - t0) / 50 * 1e3
        return BenchResult(world.sim_time, wall, cpu, scan_ms, beams, full_ms)
    finally:
        disconnect(client)


def physics_only_rtf(duration_s: float, seed: int) -> float:
    """Simulated seconds per wall second of the twin alone ('shift' scenario), for the full-cell benchmark."""
    return run(duration_s, seed).real_time_factor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--duration', type=float, default=120.0, help='simulated seconds per scenario')
    parser.add_argument('--seed', type=int, default=1)
    args = parser.parse_args(argv)
    print(f'twin only, {args.duration:.0f} s simulated per scenario, seed {args.seed}, '
          f'{TICK_RATE_HZ:.0f} Hz ticks, 240 Hz physics')
    print(f'{"scenario":<18}{"RTF wall":>10}{"RTF cpu":>9}{"scan mean ms":>14}{"scan p95 ms":>13}'
          f'{"beams cast":>12}{"541-beam cast ms":>18}')
    print(f'load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs')
    for scenario in ('empty', 'shift', 'shift_two_people', 'intrusion'):
        result = run(args.duration, args.seed, scenario)
        print(f'{scenario:<18}{result.real_time_factor:>9.1f}x{result.cpu_real_time_factor:>8.1f}x'
              f'{result.scan_ms.mean():>14.3f}'
              f'{np.percentile(result.scan_ms, 95):>13.3f}{result.beams_cast.mean():>12.1f}'
              f'{result.full_scan_ms:>18.3f}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
