"""Run the twin alone (no ROS): the arm cycling between pick and place, people from a scenario.

    python -m smartcell.twin.demo --gui --scenario shift --seed 1      # watch it (needs a display)
    python -m smartcell.twin.demo --duration 30                        # headless: prints a summary
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from smartcell.core.robot.kinematics import inverse_kinematics
from smartcell.twin.scanner import ScannerConfig, world_scanner
from smartcell.twin.scenarios import SCENARIOS, scenario_paths
from smartcell.twin.world import DEFAULT_LAYOUT, HOME_Q_RAD, CellLayout, CellWorld, connect, disconnect

CYCLE_S = 6.0                   # pick -> place -> pick
APPROACH_HEIGHT_M = 0.25        # tool above the station


def station_joint_targets(layout: CellLayout = DEFAULT_LAYOUT) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions (rad) with the tool pointing down 0.25 m above the pick and the place station."""
    base = np.asarray(layout.robot_base_position_m)
    c, s = math.cos(layout.robot_base_yaw_rad), math.sin(layout.robot_base_yaw_rad)
    world_to_base = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    targets = []
    for name in ('pick', 'place'):
        pose = np.eye(4)
        pose[:3, :3] = world_to_base @ np.diag([1.0, -1.0, -1.0])       # tool z along world -z
        above = np.asarray(layout.station(name).position_m) + (0.0, 0.0, APPROACH_HEIGHT_M)
        pose[:3, 3] = world_to_base @ (above - base)
        targets.append(inverse_kinematics(pose, np.asarray(HOME_Q_RAD)))
    return targets[0], targets[1]


def arm_target(t_s: float, pick: np.ndarray, place: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smooth back-and-forth between two joint positions: q (rad) and qd (rad/s) at time t (s)."""
    s = 0.5 - 0.5 * math.cos(2 * math.pi * t_s / CYCLE_S)
    ds = math.pi / CYCLE_S * math.sin(2 * math.pi * t_s / CYCLE_S)
    return pick + s * (place - pick), ds * (place - pick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='smartcell twin-demo', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gui', action='store_true', help='open the PyBullet window and run in real time')
    parser.add_argument('--scenario', default='shift', choices=sorted(SCENARIOS))
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--duration', type=float, default=60.0, help='simulated seconds')
    args = parser.parse_args(argv)
    if not args.duration > 0:
        parser.error(f'--duration must be > 0 s, got {args.duration}')
    client = connect(gui=args.gui)
    try:
        world = CellWorld(client, seed=args.seed, people=scenario_paths(args.scenario, args.seed, args.duration))
        config = ScannerConfig()
        scanner = world_scanner(world, config)
        pick, place = station_joint_targets(world.layout)
        closest_m, contacts, people_beams = math.inf, 0, 0
        wall_start = time.perf_counter()
        while world.sim_time < args.duration:
            world.set_joint_targets(*arm_target(world.sim_time, pick, place))
            world.step(config.period_s)
            scanner.scan(world.sim_time)
            people_beams += scanner.last_beams_cast > 0
            closest_m = min(closest_m, world.min_person_robot_distance())
            contacts += bool(world.person_robot_contacts())
            if args.gui:          # pace to the wall clock so that it can be watched
                time.sleep(max(0.0, world.sim_time - (time.perf_counter() - wall_start)))
        wall_s = time.perf_counter() - wall_start
        print(f'scenario {args.scenario}, seed {args.seed}: {world.sim_time:.1f} s simulated in {wall_s:.1f} s; '
              f'closest person-robot distance {closest_m:.2f} m; ticks with contact {contacts}; '
              f'scans with a person near the beams {people_beams}')
    finally:
        disconnect(client)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
