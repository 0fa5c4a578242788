"""Sim speed: real-time factor of the full simulated cell vs PyBullet stepping the same world alone.

Both in the same run, same scenario and seed:
  - full cell: `smartcell sim` (twin + scanner + arm + supervisor processes over DDS, lockstep);
  - physics only: the same world (arm moving, person walking, a scan per tick) with no ROS.

    .venv/bin/python bench/bench_sim_speed.py [--duration 120] [--seed 1] [--scenario shift]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--duration', type=float, default=120.0, help='simulated seconds per measurement')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--scenario', default='shift')
    args = parser.parse_args()

    from bench_twin import physics_only_rtf
    from smartcell.share import share_file
    from smartcell.tools.sim import SimOptions, run

    physics = physics_only_rtf(args.duration, args.seed)
    options = SimOptions(args.duration, args.seed, args.scenario, False, share_file('config', 'cell.yaml'),
                         Path(tempfile.mkdtemp(prefix='smartcell-bench-sim-')), progress=False)
    kpis = run(options)
    full = kpis['real_time_factor']
    print(f'simulated {args.duration:.0f} s, scenario {args.scenario}, seed {args.seed}')
    print(f'physics only (PyBullet, no ROS)  : {physics:7.1f} x real time')
    print(f'full cell (4 processes over DDS) : {full:7.1f} x real time  ({kpis["wall_time_s"]:.1f} s wall)')
    print(f'ratio full / physics-only        : {full / physics:7.2f}   (aims: full >= 30x, ratio >= 0.33)')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
