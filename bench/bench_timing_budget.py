"""Timing budget of the safety chain, idle and with both cores busy, side by side in one run.

Starts the real node processes of a real-time (not lockstep) simulated cell, as `ros2 launch
smartcell cell.launch.py sim:=true` does (twin on sim time at real-time factor 1, scanner, arm,
supervisor with auto_start), and watches it from a peer process for `--seconds` idle, then for
`--seconds` beside a bounded CPU stress (one busy-looping process per core, or `stress-ng` when
installed and `--stress stress-ng`), which ends with the phase.

Measured, per phase (distributions p50 / p99 / p99.9 / max):
- people age at the supervisor: what the supervisor compares with `people_timeout_s`: at each
  `humans` arrival, the sim clock (`/clock`) minus the stamp of the newest earlier message
  (`SafetyMonitor.on_silence` uses exactly now - newest stamp), s;
- people period: wall time between `humans` messages at a subscriber, s;
- verdict period at the arm: wall (steady) time between `safety/verdict` messages, which is what
  the arm's deadman (steady clock) measures, s; and the deadman margin, `deadman_timeout_s` minus
  the longest gap;
- spurious stops: verdicts that change to a stop for 'people data silent', and deadman trips
  counted from the arm's log.

    .venv/bin/python bench/bench_timing_budget.py [--seconds 60] [--workers 2] [--stress python|stress-ng]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The source tree, like the node processes (`python -m` from the repository root), not an older install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault('AMENT_PREFIX_PATH', sys.prefix)

PERCENTILES = (50.0, 99.0, 99.9)


def busy_loop(until_monotonic: float) -> None:
    """One core's worth of pure-Python work, bounded in time."""
    x = 0
    while time.monotonic() < until_monotonic:
        for _ in range(10000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF


class Stress:
    """A bounded CPU load beside the cell: `workers` busy processes that end by themselves."""

    def __init__(self, kind: str, workers: int, seconds: float) -> None:
        self.kind, self.workers, self.seconds = kind, workers, seconds
        self._procs: list = []

    def __enter__(self) -> 'Stress':
        until = time.monotonic() + self.seconds
        if self.kind == 'stress-ng':
            self._procs = [subprocess.Popen(['stress-ng', '--cpu', str(self.workers), '--timeout',
                                             f'{int(self.seconds) + 1}s', '--quiet'])]
        else:
            ctx = multiprocessing.get_context('spawn')
            self._procs = [ctx.Process(target=busy_loop, args=(until,), daemon=True) for _ in range(self.workers)]
            for proc in self._procs:
                proc.start()
        return self

    def __exit__(self, *exc) -> None:
        for proc in self._procs:
            if isinstance(proc, subprocess.Popen):
                proc.terminate()
                proc.wait(timeout=10)
            else:
                proc.terminate()
                proc.join(timeout=10)


class Observer:
    """Peer node: records arrivals of humans, safety/verdict and /clock (never publishes)."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseArray
        from rclpy.executors import SingleThreadedExecutor
        from rosgraph_msgs.msg import Clock

        from smartcell.nodes.common import STREAM_QOS
        self.node = rclpy.create_node('bench_timing_observer')
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.clock_s: float | None = None
        self.reset()
        self.node.create_subscription(Clock, '/clock', self._on_clock, 10)
        self.node.create_subscription(PoseArray, 'humans', self._on_humans, STREAM_QOS)
        self.node.create_subscription(DiagnosticArray, 'safety/verdict', self._on_verdict, STREAM_QOS)

    def reset(self) -> None:
        self.people_wall: list[float] = []
        self.people_age_s: list[float] = []
        self.verdict_wall: list[float] = []
        self.moving_verdicts = 0
        self.silence_stops: list[str] = []
        self._newest_stamp_s: float | None = None
        self._last_reason = ''

    def _on_clock(self, msg) -> None:
        self.clock_s = msg.clock.sec + msg.clock.nanosec * 1e-9

    def _on_humans(self, msg) -> None:
        self.people_wall.append(time.monotonic())
        stamp_s = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if self._newest_stamp_s is not None and self.clock_s is not None:
            self.people_age_s.append(self.clock_s - self._newest_stamp_s)
        self._newest_stamp_s = stamp_s if self._newest_stamp_s is None else max(self._newest_stamp_s, stamp_s)

    def _on_verdict(self, msg) -> None:
        self.verdict_wall.append(time.monotonic())
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            reason = values.get('reason', '')
            if float(values.get('speed_scale', '0') or 0.0) > 0.0:
                self.moving_verdicts += 1
            if 'silent' in reason and 'silent' not in self._last_reason:
                self.silence_stops.append(reason)
            self._last_reason = reason

    def spin_for(self, seconds: float, processes=None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)
            if processes is not None:
                processes.check_alive()

    def wait_for(self, condition, timeout_s: float, what: str, processes) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            processes.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f'timed out after {timeout_s} s waiting for {what} (seen: '
                                   f'{len(self.people_wall)} humans, {len(self.verdict_wall)} verdicts, '
                                   f'{self.moving_verdicts} moving, clock {self.clock_s}, '
                                   f'last reason {self._last_reason!r})')
            self.executor.spin_once(timeout_sec=0.05)


def distribution(values_s) -> dict[str, float]:
    values = np.asarray(values_s, dtype=float)
    if values.size == 0:
        return {'n': 0}
    out = {'n': int(values.size)}
    out.update({f'p{p:g}': float(np.percentile(values, p)) for p in PERCENTILES})
    out['max'] = float(values.max())
    return out


def deadman_trips(log: Path, since_bytes: int) -> tuple[int, int]:
    """Deadman trips written to the arm's log after `since_bytes`; returns (count, new size)."""
    data = log.read_bytes() if log.exists() else b''
    return data[since_bytes:].count(b'(deadman)'), len(data)


def phase_figures(observer: Observer, deadman_timeout_s: float, trips: int) -> dict[str, object]:
    verdict_gaps = np.diff(observer.verdict_wall)
    figures = {'people_age_s': distribution(observer.people_age_s),
               'people_period_s': distribution(np.diff(observer.people_wall)),
               'verdict_period_s': distribution(verdict_gaps),
               'deadman_min_margin_s': float(deadman_timeout_s - verdict_gaps.max()) if verdict_gaps.size else None,
               'verdicts_moving': observer.moving_verdicts,
               'silence_stops': len(observer.silence_stops),
               'deadman_trips': trips}
    return figures


def format_table(idle: dict, loaded: dict, people_timeout_s: float, deadman_timeout_s: float) -> str:
    rows = []
    for key, label in (('people_age_s', f'people age at supervisor (timeout {people_timeout_s:g} s)'),
                       ('people_period_s', 'people period (wall)'),
                       ('verdict_period_s', f'verdict period at arm (deadman {deadman_timeout_s:g} s)')):
        for stat in ('p50', 'p99', 'p99.9', 'max'):
            a, b = idle[key].get(stat), loaded[key].get(stat)
            rows.append((f'{label} {stat}', _ms(a), _ms(b)))
        rows.append((f'{label} n', str(idle[key]['n']), str(loaded[key]['n'])))
    rows.append(('deadman min margin', _ms(idle['deadman_min_margin_s']), _ms(loaded['deadman_min_margin_s'])))
    for key, label in (('silence_stops', 'stops for people data silent'), ('deadman_trips', 'arm deadman trips'),
                       ('verdicts_moving', 'verdicts letting the arm move')):
        rows.append((label, str(idle[key]), str(loaded[key])))
    width = max(len(r[0]) for r in rows)
    lines = [f'{"":{width}}  {"idle":>12}  {"both cores busy":>16}']
    lines += [f'{name:{width}}  {a:>12}  {b:>16}' for name, a, b in rows]
    return '\n'.join(lines)


def _ms(value) -> str:
    return '-' if value is None else f'{value * 1e3:.1f} ms'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=60.0, help='wall seconds per phase (default 60)')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 2, help='busy processes (default: cores)')
    parser.add_argument('--stress', choices=('python', 'stress-ng'), default='python')
    parser.add_argument('--people-timeout', type=float, default=None,
                        help='supervisor people_timeout_s for the run (default: config/cell.yaml)')
    parser.add_argument('--deadman-timeout', type=float, default=None,
                        help='arm deadman_timeout_s for the run (default: config/cell.yaml)')
    parser.add_argument('--json', type=Path, default=None, help='also write the figures here')
    args = parser.parse_args()
    if args.stress == 'stress-ng' and not shutil.which('stress-ng'):
        parser.error('stress-ng is not installed (apt-get install stress-ng), or use --stress python')

    import rclpy

    from smartcell.core.params import load_cell_config
    from smartcell.share import share_file
    from smartcell.tools.cell_processes import CellProcesses, isolated_ros_env
    from smartcell.topology import nodes_for, param_registry

    config = share_file('config', 'cell.yaml')
    resolved = load_cell_config(config, param_registry())
    people_timeout_s = args.people_timeout or resolved['supervisor']['people_timeout_s']
    deadman_timeout_s = args.deadman_timeout or resolved['arm']['deadman_timeout_s']
    work = Path(tempfile.mkdtemp(prefix='smartcell-timing-'))
    env = isolated_ros_env()
    env['ROS_HOME'] = str(work / 'ros_home')
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'AMENT_PREFIX_PATH')})
    # As cell.launch.py sim:=true: the twin (on wall time) is the clock, paced in real time, no lockstep.
    sim_time = {'use_sim_time': True}
    overrides = {'twin': {'lockstep': False, 'real_time_factor': 1.0, 'scenario': 'shift', 'seed': 1},
                 'scanner': dict(sim_time),
                 'arm': {**sim_time, 'backend': 'sim', 'deadman_timeout_s': deadman_timeout_s},
                 'supervisor': {**sim_time, 'auto_start': True, 'people_timeout_s': people_timeout_s,
                                'order_store_file': str(work / 'orders.sqlite')}}
    processes = CellProcesses(work / 'logs', env)
    rclpy.init()
    figures: dict[str, object] = {}
    try:
        processes.start_nodes(nodes_for(sim=True, groups=('cell',)), config, overrides)
        observer = Observer()
        observer.wait_for(lambda: observer.moving_verdicts > 30, 90.0, "the cell running (verdicts > 0)", processes)
        arm_log = work / 'logs' / 'arm.log'
        _, offset = deadman_trips(arm_log, 0)
        for phase, stress in (('idle', None), ('loaded', Stress(args.stress, args.workers, args.seconds))):
            observer.reset()
            load_before = os.getloadavg()[0]
            if stress is None:
                observer.spin_for(args.seconds, processes)
            else:
                with stress:
                    observer.spin_for(args.seconds, processes)
            trips, offset = deadman_trips(arm_log, offset)
            figures[phase] = phase_figures(observer, deadman_timeout_s, trips)
            figures[phase]['load_average_1min'] = round(os.getloadavg()[0], 2)
            figures[phase]['load_average_before'] = round(load_before, 2)
            if phase == 'idle':
                print(f'idle phase done ({args.seconds:g} s); loading {args.workers} cores with {args.stress} ...',
                      flush=True)
        processes.check_alive()
    finally:
        failed = processes.stop()
        rclpy.shutdown()
    print(f'real-time cell (twin, scanner, arm, supervisor), {args.seconds:g} s per phase, '
          f'{args.workers} x {args.stress} busy loops in the loaded phase, {os.cpu_count()} cores')
    print(format_table(figures['idle'], figures['loaded'], people_timeout_s, deadman_timeout_s))
    print(f'1-min load average at the end: idle {figures["idle"]["load_average_1min"]}, '
          f'loaded {figures["loaded"]["load_average_1min"]}')
    if failed:
        print(f'nodes that failed on shutdown: {failed}')
    figures.update({'people_timeout_s': people_timeout_s, 'deadman_timeout_s': deadman_timeout_s,
                    'seconds': args.seconds, 'workers': args.workers, 'stress': args.stress})
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(f'logs in {work / "logs"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
