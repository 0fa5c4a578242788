"""Verdict period while idle vs while a 100000-unit order is accepted and started (issue 11, item 5).

A real supervisor process in a real-time cell (not lockstep); this process plays the scanner (people
at 30 Hz from a node named `scanner`) and the arm's joint states (50 Hz), and measures at a
`safety/verdict` subscriber. Two windows of the same length in one run, side by side:

* idle: the cell idle, nobody near;
* order: from publishing a schema-valid 100000-unit order on `mes/job_order` (then `cell/start`) on.

For each: verdict period p50/p99/max (receipt to receipt) and latency p50/p99 (people stamp -> verdict
receipt; the verdict carries the people stamp). The aim: order p99 within 10 % of idle p99.

    .venv/bin/python bench/bench_large_order.py [--window 20] [--units 100000]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HOME = [0.0, -1.571, 1.571, -1.571, -1.571, 0.0]


def stats(values_s: np.ndarray) -> dict[str, float]:
    ms = np.asarray(values_s) * 1e3
    return {'n': int(len(ms)), 'p50_ms': float(np.percentile(ms, 50)), 'p99_ms': float(np.percentile(ms, 99)),
            'max_ms': float(ms.max())}


def cpu_s(pid: int) -> float:
    """CPU time (user + system) the process has used so far, s."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--window', type=float, default=20.0, help='seconds measured in each window')
    parser.add_argument('--units', type=int, default=100000, help='order quantity')
    args = parser.parse_args()

    from smartcell.tools.cell_processes import CellProcesses, isolated_ros_env, node_command
    env = isolated_ros_env()
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'AMENT_PREFIX_PATH')})

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import Pose, PoseArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from smartcell.core.robot.kinematics import JOINT_NAMES
    from smartcell.nodes.common import LATCHED_QOS, STREAM_QOS

    work = Path(tempfile.mkdtemp(prefix='bench-large-order-'))
    processes = CellProcesses(work / 'logs', env)
    processes.start('supervisor', node_command('smartcell.nodes.supervisor', 'supervisor', None, {
        'robot_base_xyz_yaw': [0.0, 0.0, 0.75, 0.0], 'max_order_units': max(args.units, 1),
        'order_store_file': str(work / 'orders.sqlite'), 'cell_key_file': str(work / 'cell.key'),
        'arm_node': ''}))
    rclpy.init()
    people_node = rclpy.create_node('scanner')
    node = rclpy.create_node('bench_large_order')
    executor = SingleThreadedExecutor()
    executor.add_node(people_node)
    executor.add_node(node)
    people_pub = people_node.create_publisher(PoseArray, 'humans', STREAM_QOS)
    joints_pub = node.create_publisher(JointState, 'joint_states', STREAM_QOS)
    order_pub = node.create_publisher(String, 'mes/job_order', QoSProfile(
        depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    received: list[tuple[float, float]] = []        # (receipt monotonic s, latency s)
    state = {'cell': '', 'events': []}

    def on_verdict(msg: DiagnosticArray) -> None:
        now = node.get_clock().now().nanoseconds
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        received.append((time.monotonic(), (now - stamp) * 1e-9))

    def publish_people() -> None:
        msg = PoseArray()
        msg.header.stamp, msg.header.frame_id = people_node.get_clock().now().to_msg(), 'world'
        pose = Pose()
        pose.position.x, pose.position.y, pose.orientation.w = 4.0, 3.0, 1.0
        msg.poses.append(pose)
        people_pub.publish(msg)

    def publish_joints() -> None:
        msg = JointState(name=list(JOINT_NAMES), position=HOME, velocity=[0.0] * 6)
        msg.header.stamp = node.get_clock().now().to_msg()
        joints_pub.publish(msg)

    node.create_subscription(DiagnosticArray, 'safety/verdict', on_verdict, STREAM_QOS)
    node.create_subscription(String, 'cell/state', lambda m: state.update(cell=m.data), LATCHED_QOS)
    node.create_subscription(String, 'cell/events', lambda m: state['events'].append(json.loads(m.data)), 500)
    people_node.create_timer(1 / 30, publish_people)
    node.create_timer(1 / 50, publish_joints)

    def spin_until(condition, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if processes.failed():
                raise SystemExit(f'supervisor died while waiting for {what}:\n{processes.log_tail("supervisor")}')
            if time.monotonic() > deadline:
                raise SystemExit(f'timed out after {timeout_s} s waiting for {what}')
            executor.spin_once(timeout_sec=0.01)

    supervisor_pid = processes.processes['supervisor'].pid
    cpu: dict[str, float] = {}

    def window(seconds: float) -> tuple[np.ndarray, np.ndarray]:
        start = len(received)
        end = time.monotonic() + seconds
        used = cpu_s(supervisor_pid)
        spin_until(lambda: time.monotonic() >= end, seconds + 5, 'the window')
        cpu['idle'] = (cpu_s(supervisor_pid) - used) / seconds
        rows = np.array(received[start:])
        return np.diff(rows[:, 0]), rows[:, 1]

    try:
        spin_until(lambda: state['cell'] == 'idle' and len(received) > 60, 60, 'the supervisor idle with verdicts')
        idle_period, idle_latency = window(args.window)

        order_id = f'bench-{time.time_ns()}'
        order_pub.publish(String(data=json.dumps({'order_id': order_id, 'work_master': 'gearbox',
                                                  'quantity': args.units})))
        start = len(received)
        t0 = time.monotonic()
        end = t0 + args.window
        used = cpu_s(supervisor_pid)
        spin_until(lambda: any(e.get('order_id') == order_id and e['type'] in ('job_accepted', 'job_rejected')
                               for e in state['events']), 30, 'the order answered')
        accepted_s = time.monotonic() - t0
        verdict = next(e for e in state['events'] if e.get('order_id') == order_id)
        if verdict['type'] != 'job_accepted':
            raise SystemExit(f'order rejected: {verdict}')
        client = node.create_client(Trigger, 'cell/start')
        spin_until(client.service_is_ready, 10, 'cell/start')
        asked = time.monotonic()
        future = client.call_async(Trigger.Request())
        spin_until(future.done, 30, 'the cell/start answer')
        start_answer_s = time.monotonic() - asked
        spin_until(lambda: any(e['type'] == 'job_started' and e.get('order_id') == order_id
                               for e in state['events']), 30, 'the job started')
        spin_until(lambda: time.monotonic() >= end, args.window + 60, 'the window')
        cpu['order'] = (cpu_s(supervisor_pid) - used) / (time.monotonic() - t0)
        rows = np.array(received[start:])
        order_period, order_latency, order_times = np.diff(rows[:, 0]), rows[:, 1], rows[1:, 0]
    finally:
        executor.shutdown()
        node.destroy_node()
        people_node.destroy_node()
        rclpy.shutdown()
        processes.stop()

    idle, order = stats(idle_period), stats(order_period)
    print(f'verdict period at the subscriber, {args.window:g} s windows, people at 30 Hz, '
          f'{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}:')
    print(f"  {'window':<34} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'lat p50':>8} {'lat p99':>8} "
          f"{'sup. CPU':>8}")
    for name, key, period, latency in (('idle', 'idle', idle, stats(idle_latency)),
                                       (f'{args.units}-unit order accepted+started', 'order', order,
                                        stats(order_latency))):
        print(f"  {name:<34} {period['n']:>6} {period['p50_ms']:>8.1f} {period['p99_ms']:>8.1f} "
              f"{period['max_ms']:>8.1f} {latency['p50_ms']:>8.1f} {latency['p99_ms']:>8.1f} {cpu[key]:>7.0%}")
    ratio = order['p99_ms'] / idle['p99_ms']
    print(f'  order accepted after {accepted_s * 1e3:.0f} ms; cell/start answered in {start_answer_s * 1e3:.0f} ms')
    print(f'  p99 ratio order/idle: {ratio:.3f} (aim <= 1.10)')
    gaps = np.argsort(order_period)[::-1][:8]
    print('  largest gaps in the order window (s after the order was published: gap ms): ' + ', '.join(
        f'{order_times[i] - t0:.2f}: {order_period[i] * 1e3:.0f}' for i in sorted(gaps)))
    return 0 if ratio <= 1.10 else 1


if __name__ == '__main__':
    sys.exit(main())
