"""SafetyMonitor.update() cost against the number of people (UR5e, 9 capsules, the shipped stopping table).

    .venv/bin/python bench/bench_safety_monitor.py     (run from the repository root)
"""
import time
import numpy as np
from smartcell.core.robot.kinematics import LINK_CAPSULE_RADII, capsule_point_velocities, link_capsules
from smartcell.core.safety.monitor import (PeopleObservation, RobotObservation, SafetyConfig, SafetyMonitor,
                                           StoppingModel)

from pathlib import Path

model = StoppingModel.from_yaml(Path(__file__).resolve().parents[1] / 'config' / 'stopping.yaml')
q = np.array([0.3, -1.2, 1.4, -1.57, -1.57, 0.0])
caps = link_capsules(q)
vel = capsule_point_velocities(q, np.array([1.0, 0.5, 0.5, 0, 0, 0]))
rng = np.random.default_rng(1)
for n in (0, 1, 3, 10):
    monitor = SafetyMonitor(SafetyConfig(), model)
    start = rng.uniform(-4, 4, (n, 2))
    durations = []
    for k in range(3000):
        t = k / 30.0
        xy = start + 0.01 * np.sin(k / 10.0)
        positions = np.column_stack([xy, np.ones(n)]) if n else np.zeros((0, 3))
        t0 = time.perf_counter()
        monitor.update(PeopleObservation(t, 'world', positions),
                       RobotObservation(t, caps, LINK_CAPSULE_RADII, vel, 0.5), t)
        durations.append(time.perf_counter() - t0)
    d = np.array(durations) * 1e3
    print(f'{n:2d} people x {len(caps)} capsules: update() median {np.median(d):.3f} ms, '
          f'p99 {np.percentile(d, 99):.3f} ms')
