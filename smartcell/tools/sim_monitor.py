"""The observer side of `smartcell sim`: progress bar and final KPIs, read from latched status topics.

It subscribes only to low-rate or latest-value topics (twin/status, cell/kpi), so it neither
slows the lockstep loop nor depends on seeing every message.
"""
from __future__ import annotations

import math
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from smartcell.nodes.common import stamp_ns
from smartcell.tools.cell_processes import CellProcesses

# The lockstep loop, in order: twin -> scanner -> supervisor -> arm -> twin (and the arm's relay).
LOCKSTEP_CHAIN = ('scan', 'twin/joint_states', 'humans', 'humans/velocities', 'joint_states', 'safety/verdict',
                  'arm/joint_trajectory', 'twin/joint_command')
LATEST = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def values_of(msg: DiagnosticArray, name: str) -> dict[str, str] | None:
    for status in msg.status:
        if status.name == name:
            return {kv.key: kv.value for kv in status.values}
    return None


class SimMonitor:
    def __init__(self, context: Context, duration_s: float, progress: bool) -> None:
        self._node = Node('smartcell_sim', context=context)
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self._node)
        self._duration_s = duration_s
        self._twin: DiagnosticArray | None = None
        self._kpi: DiagnosticArray | None = None
        self._node.create_subscription(DiagnosticArray, 'twin/status', self._on_twin, LATEST)
        self._node.create_subscription(DiagnosticArray, 'cell/kpi', self._on_kpi, LATEST)
        self._bar = None
        self._units_shown: str | None = None
        if progress:
            from tqdm import tqdm
            self._bar = tqdm(total=round(duration_s, 1), unit='sim s', desc='simulated shift', mininterval=0.5,
                             bar_format='{l_bar}{bar}| {n:.0f}/{total:.0f} sim s '
                                        '[{elapsed}<{remaining}, {rate_fmt}{postfix}]')

    def _on_twin(self, msg: DiagnosticArray) -> None:
        self._twin = msg
        values = values_of(msg, 'smartcell/twin') or {}
        if self._bar is not None and 'sim_time_s' in values:
            # update() (not a forced refresh) lets tqdm rate-limit the output, also into a log file
            self._bar.update(min(float(values['sim_time_s']), self._duration_s) - self._bar.n)

    def _on_kpi(self, msg: DiagnosticArray) -> None:
        self._kpi = msg
        if self._bar is None:
            return
        values = values_of(msg, 'smartcell/cell') or {}
        # Units of a job, else pick-and-place cycles: what the shift has produced so far.
        done, label = (values.get('units_completed'), 'units') if 'units_completed' in values \
            else (values.get('cycles'), 'cycles')
        if done is not None and _is_number(done) and done != self._units_shown:
            self._units_shown = done
            self._bar.set_postfix_str(f'{label} done {float(done):.0f}', refresh=False)

    def wait_for_kpis(self, processes: CellProcesses, start_timeout_s: float,
                      stall_timeout_s: float) -> dict[str, float]:
        last_progress: tuple[str | None, float] = (None, time.monotonic())   # (twin's sim_time_s, when seen)
        started = time.monotonic()
        try:
            while True:
                self._executor.spin_once(timeout_sec=0.1)
                # The observer only needs the latest values (depth-1 readers keep them for it): pacing
                # it leaves the cores to the lockstep loop instead of handling every tick's KPIs.
                time.sleep(0.05)
                processes.check_alive()
                status = self._twin
                twin = values_of(status, 'smartcell/twin') if status is not None else None
                if status is None or twin is None:
                    if time.monotonic() - started > start_timeout_s:
                        raise RuntimeError(f'the twin did not start within {start_timeout_s:.0f} s; logs in '
                                           f'{processes.log_dir}')
                    continue
                if twin.get('state') == 'failed':
                    raise RuntimeError(f'the twin failed: {status.status[0].message}; logs in {processes.log_dir}')
                if twin.get('state') == 'finished' and self._kpi is not None \
                        and stamp_ns(self._kpi.header.stamp) >= int(twin['last_tick_ns']):
                    return self._collect(twin)
                if twin.get('sim_time_s') != last_progress[0]:
                    last_progress = (twin.get('sim_time_s'), time.monotonic())
                elif time.monotonic() - last_progress[1] > stall_timeout_s:
                    raise RuntimeError(f'no simulated progress for {stall_timeout_s:.0f} s (twin: '
                                       f'{status.status[0].message}); {self.lockstep_graph()}; '
                                       f'logs in {processes.log_dir}')
        finally:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._node.destroy_node()

    def lockstep_graph(self) -> str:
        """Publishers -> subscribers of each topic of the lockstep chain as this node sees the ROS graph:
        a link missing there is why a run stalls (a node that never came up, discovery that failed)."""
        links = []
        for topic in LOCKSTEP_CHAIN:
            name = self._node.resolve_topic_name(topic)
            links.append(f'{topic} {len(self._node.get_publishers_info_by_topic(name))}->'
                         f'{len(self._node.get_subscriptions_info_by_topic(name))}')
        return 'publishers->subscribers on the graph: ' + ', '.join(links)

    def _collect(self, twin: dict[str, str]) -> dict[str, float]:
        cell = values_of(self._kpi, 'smartcell/cell') or {}
        sim_time = float(twin['sim_time_s'])
        wall = float(twin['wall_time_s'])
        return {
            'sim_time_s': sim_time,
            'wall_time_s': wall,
            'real_time_factor': sim_time / wall if wall > 0 else math.inf,
            'min_person_robot_distance_m': float(twin['min_person_robot_distance_m']),
            'contacts': float(twin['contacts']),
            **{key: float(value) for key, value in cell.items() if _is_number(value)},
        }


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
