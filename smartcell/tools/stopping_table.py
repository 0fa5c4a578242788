"""`smartcell stopping-table`: measure the arm's category-2 stopping time and distance in the twin.

For each of the three joints nearest the base (as ISO 10218-1 Annex B asks makers to publish),
at 33/66/100 % of its maximum speed and 33/66/100 % of the rated payload: the joint runs at
constant speed, a controlled stop is commanded through the same speed-scale ramp the arm node
uses (the path is kept, the scale goes to 0), and the PyBullet physics (position control with the
UR5e's torque limits) is stepped until the joint is still. The result is written in the format of
config/stopping.yaml, which the supervisor's SSM reads for T_s and S_s.

    smartcell stopping-table [--out config/stopping.yaml] [--ramp-down 4.0]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import yaml

from smartcell.core.robot.kinematics import JOINT_NAMES, PAYLOAD_KG, UR5E_LIMITS
from smartcell.core.robot.trajectory import ScaleRamp

# Fine at low speed: SSM lets the arm creep near people, where a coarse first step (33 %) would
# charge the stopping distance of a third of full speed for any motion at all.
SPEED_FRACTIONS = (0.1, 0.2, 0.33, 0.5, 0.66, 1.0)
PAYLOAD_FRACTIONS = (0.33, 0.66, 1.0)
MEASURED_JOINTS = {'shoulder_pan': (0, 1.0), 'shoulder_lift': (1, 1.0), 'elbow': (2, 0.65)}   # index, lever arm m
START_Q = np.array([-2.5, -1.2, -2.0, -1.571, -1.571, 0.0])   # room to run on every measured joint
STILL_RADPS = 0.01                       # joint speed below which it counts as stopped, rad/s
RUN_UP_S = 0.4                           # constant-speed run before the stop, s
PHYSICS_RATE_HZ = 1000.0                 # finer than the cell's 240 Hz: the stop lasts a few 100 ms


def measure(joint_index: int, speed_fraction: float, payload_kg: float, ramp: ScaleRamp,
            client_id: int | None = None, full_scale_fraction: float | None = None) -> tuple[float, float]:
    """(stopping time s, stopping angle rad) of one joint, from the stop command to standstill.

    As in the cell, the stop ramps the speed scale down from the scale the joint runs at: speed
    fraction / full_scale_fraction (scale 1 runs at full_scale_fraction of the limit); None ramps
    from scale 1 whatever the speed (the longest stop)."""
    import pybullet as p

    from smartcell.twin.world import DEFAULT_LAYOUT, CellWorld, connect, disconnect
    own = client_id is None
    client = connect() if client_id is None else client_id
    world = CellWorld(client, DEFAULT_LAYOUT, seed=0, physics_rate_hz=PHYSICS_RATE_HZ, initial_q_rad=tuple(START_Q))
    try:
        tool = world.robot.link_index('gripper')
        p.changeDynamics(world.robot.body_id, tool, mass=max(payload_kg, 1e-3), physicsClientId=client)
        dt = 1.0 / PHYSICS_RATE_HZ
        speed = speed_fraction * UR5E_LIMITS.velocity[joint_index]
        direction = np.zeros(len(JOINT_NAMES))
        direction[joint_index] = 1.0
        start_scale = 1.0 if full_scale_fraction is None else min(1.0, speed_fraction / full_scale_fraction)
        q_target, scale = START_Q.copy(), start_scale
        for _ in range(int(RUN_UP_S / dt)):
            q_target = q_target + direction * speed * dt
            world.set_joint_targets(q_target, direction * speed)
            world.step(dt)
        stop_angle = world.joint_state()[0][joint_index]
        elapsed = 0.0
        while True:
            scale = ramp.step(scale, 0.0, dt)
            q_target = q_target + direction * speed * (scale / start_scale) * dt
            world.set_joint_targets(q_target, direction * speed * (scale / start_scale))
            world.step(dt)
            elapsed += dt
            q, qd, _ = world.joint_state()
            if scale == 0.0 and abs(qd[joint_index]) < STILL_RADPS:
                return elapsed, abs(q[joint_index] - stop_angle)
            if elapsed > 5.0:
                raise RuntimeError(f'joint {JOINT_NAMES[joint_index]} did not stop within 5 s')
    finally:
        world.close()
        if own:
            disconnect(client)


def stopping_table(ramp: ScaleRamp, full_scale_fraction: float | None = None) -> dict:
    joints = {}
    for name, (index, lever) in MEASURED_JOINTS.items():
        times, angles = [], []
        for speed in SPEED_FRACTIONS:
            row = [measure(index, speed, payload * PAYLOAD_KG, ramp, full_scale_fraction=full_scale_fraction)
                   for payload in PAYLOAD_FRACTIONS]
            # Rounded up (never down) to the table's resolution.
            times.append([math.ceil(t * 1000) / 1000 for t, _ in row])
            angles.append([math.ceil(a * 10000) / 10000 for _, a in row])
        joints[name] = {'lever_arm_m': lever, 'stopping_time_s': times, 'stopping_distance_rad': angles}
    return {
        'robot': 'ur5e', 'stop_category': 2, 'provisional': False,
        'source': (f'measured in the PyBullet twin by `smartcell stopping-table` (speed-scale ramp '
                   f'{ramp.down_per_s:g}/s, physics {PHYSICS_RATE_HZ:g} Hz); a twin, not the real arm: check the '
                   "UR5e manual's stopping data on site"),
        'rated_payload_kg': PAYLOAD_KG, 'speed_fractions': list(SPEED_FRACTIONS),
        'payload_fractions': list(PAYLOAD_FRACTIONS),
        **({} if full_scale_fraction is None else {'full_scale_speed_fraction': full_scale_fraction}),
        'joints': joints,
    }


HEADER = """# Robot stopping model for SSM (ISO/TS 15066 5.5.4: T_s and S_s), in the ISO 10218-1 Annex B layout:
# stopping time and distance at 10/20/33/50/66/100 % speed x 33/66/100 % payload (rows = speed, columns =
# payload), for the three joints nearest the base. Written by `smartcell stopping-table`: measured in
# the PyBullet twin, stop category 2 through the arm's speed-scale ramp, started from the scale that runs
# the joint at that speed when scale 1 is full_scale_speed_fraction of the limits. Read by
# smartcell.core.safety.stopping.StoppingModel (T_s = max over joints, S_s = sum(angle x lever arm)).
"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='smartcell stopping-table', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', type=Path, default=None, help='write the table here (default: print it)')
    parser.add_argument('--ramp-down', type=float, default=4.0,
                        help="the arm's scale_ramp_down_per_s, 1/s (default 4.0 as in config/cell.yaml)")
    parser.add_argument('--full-scale-fraction', type=float, default=0.5,
                        help='the cell\'s max_joint_speed_fraction: a stop ramps down from the scale that '
                             'runs a joint at the measured speed (default 0.5 as in config/cell.yaml; 0 = always '
                             'from scale 1, the longest stops, valid for any cell)')
    args = parser.parse_args(argv)
    if not args.ramp_down > 0:
        parser.error(f'--ramp-down must be > 0 1/s, got {args.ramp_down}')
    if not 0.0 <= args.full_scale_fraction <= 1.0:
        parser.error(f'--full-scale-fraction must be in [0, 1], got {args.full_scale_fraction}')
    table = stopping_table(ScaleRamp(down_per_s=args.ramp_down), args.full_scale_fraction or None)
    text = HEADER + yaml.safe_dump(table, sort_keys=False, default_flow_style=None, width=100)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f'stopping table written to {args.out}')
    return 0
