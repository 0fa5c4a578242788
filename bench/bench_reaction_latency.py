"""Reaction latency: people message published -> the arm applies the new speed scale (3 processes).

In the same run, the floor: a bare rclpy two-hop forwarding pipeline (source -> forwarder -> sink,
three processes, same message types and QoS). Prints p50/p99/max of both and their ratio.

    .venv/bin/python bench/bench_reaction_latency.py [--messages 10000] [--rate 100]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROLE_FORWARDER, ROLE_SINK = 'forwarder', 'sink'


def run_role(role: str) -> int:
    """The floor's two hops: plain rclpy, no logic."""
    import rclpy
    from geometry_msgs.msg import PoseArray
    from rclpy.experimental import EventsExecutor
    from sensor_msgs.msg import TimeReference

    from smartcell.nodes.common import STREAM_QOS

    rclpy.init()
    node = rclpy.create_node(f'bench_{role}')
    if role == ROLE_FORWARDER:
        out = node.create_publisher(PoseArray, 'bench/hop', STREAM_QOS)
        node.create_subscription(PoseArray, 'bench/in', out.publish, STREAM_QOS)
    else:
        out = node.create_publisher(TimeReference, 'bench/out', STREAM_QOS)

        def on_hop(msg: PoseArray) -> None:
            reply = TimeReference(time_ref=msg.header.stamp)
            reply.header.stamp = node.get_clock().now().to_msg()
            out.publish(reply)
        node.create_subscription(PoseArray, 'bench/hop', on_hop, STREAM_QOS)
    executor = EventsExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    return 0


def measure(publish_topic: str, reply_topic: str, messages: int, rate_hz: float, with_robot: bool) -> np.ndarray:
    """Publish people messages; return latencies (s) from their stamps to the replies' stamps."""
    import rclpy
    from geometry_msgs.msg import Pose, PoseArray
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState, TimeReference

    from smartcell.core.robot.kinematics import JOINT_NAMES
    from smartcell.nodes.common import STREAM_QOS

    node = rclpy.create_node('bench_source')
    people_pub = node.create_publisher(PoseArray, publish_topic, STREAM_QOS)
    joints_pub = node.create_publisher(JointState, 'twin/joint_states', STREAM_QOS)
    latencies: dict[int, float] = {}

    def on_reply(msg: TimeReference) -> None:
        sent = msg.time_ref.sec * 1_000_000_000 + msg.time_ref.nanosec
        latencies.setdefault(sent, (msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec - sent) * 1e-9)

    node.create_subscription(TimeReference, reply_topic, on_reply, STREAM_QOS)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    deadline = time.monotonic() + 60
    # Wait until the whole chain answers (discovery), then measure.
    while len(latencies) == 0 and time.monotonic() < deadline:
        _publish_people(node, people_pub, 0, Pose, PoseArray)
        if with_robot:
            _publish_joints(node, joints_pub, JointState, JOINT_NAMES)
        executor.spin_once(timeout_sec=0.05)
    if not latencies:
        raise RuntimeError(f'no reply on {reply_topic} within 60 s')
    latencies.clear()
    period = 1.0 / rate_hz
    sent_stamps = []
    next_time = time.monotonic()
    for k in range(messages):
        while time.monotonic() < next_time:
            executor.spin_once(timeout_sec=max(0.0, next_time - time.monotonic()))
        next_time += period
        if with_robot and k % 2 == 0:
            _publish_joints(node, joints_pub, JointState, JOINT_NAMES)
        sent_stamps.append(_publish_people(node, people_pub, k, Pose, PoseArray))
    drain = time.monotonic() + 5
    while len(latencies) < messages and time.monotonic() < drain:
        executor.spin_once(timeout_sec=0.05)
    node.destroy_node()
    missing = sum(1 for s in sent_stamps if s not in latencies)
    if missing:
        print(f'  warning: {missing} of {messages} messages got no reply')
    return np.array([latencies[s] for s in sent_stamps if s in latencies])


def _publish_people(node, publisher, k, Pose, PoseArray) -> int:
    """Alternate an intrusion (0.4 m from the base) with a clear cell every 25 messages."""
    msg = PoseArray()
    msg.header.frame_id = 'world'
    msg.header.stamp = node.get_clock().now().to_msg()
    pose = Pose()
    pose.position.x = 0.4 if (k // 25) % 2 else 4.0
    pose.orientation.w = 1.0
    msg.poses.append(pose)
    publisher.publish(msg)
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _publish_joints(node, publisher, JointState, names) -> None:
    msg = JointState(name=list(names), position=[0.0, -1.57, 1.57, -1.57, -1.57, 0.0], velocity=[0.0] * 6)
    msg.header.stamp = node.get_clock().now().to_msg()
    publisher.publish(msg)


def summary(label: str, latencies_s: np.ndarray) -> dict[str, float]:
    ms = latencies_s * 1e3
    figures = {'p50': float(np.percentile(ms, 50)), 'p99': float(np.percentile(ms, 99)), 'max': float(ms.max())}
    print(f'{label:<34} n={len(ms):>6}  p50={figures["p50"]:6.3f} ms  p99={figures["p99"]:6.3f} ms  '
          f'max={figures["max"]:7.3f} ms')
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--messages', type=int, default=10000)
    parser.add_argument('--rate', type=float, default=100.0, help='people messages per second')
    parser.add_argument('--role', choices=(ROLE_FORWARDER, ROLE_SINK), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        return run_role(args.role)

    import rclpy

    from smartcell.core.node_params import ARM, SUPERVISOR  # noqa: F401 - fail early if the package is broken
    from smartcell.tools.cell_processes import CellProcesses, isolated_ros_env, node_command

    env = isolated_ros_env()
    import os
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'AMENT_PREFIX_PATH')})
    rclpy.init()
    log_dir = Path(tempfile.mkdtemp(prefix='smartcell-bench-'))
    print(f'{args.messages} people messages at {args.rate:.0f} Hz per pipeline; domain {env["ROS_DOMAIN_ID"]}')
    floor_procs = CellProcesses(log_dir / 'floor', env)
    cell_procs = CellProcesses(log_dir / 'cell', env)
    try:
        for role in (ROLE_FORWARDER, ROLE_SINK):
            floor_procs.start(role, [sys.executable, __file__, '--role', role])
        floor = measure('bench/in', 'bench/out', args.messages, args.rate, with_robot=False)
        floor_procs.stop()
        # The real nodes, wall clock, real-time mode (no lockstep); the arm on its sim backend without a twin.
        cell_procs.start('supervisor', node_command('smartcell.nodes.supervisor', 'supervisor', None,
                                                    {'people_timeout_s': 0.5, 'reaction_time_s': 0.8}))
        cell_procs.start('arm', node_command('smartcell.nodes.arm', 'arm', None, {'backend': 'sim'}))
        full = measure('humans', 'arm/speed_limit_applied', args.messages, args.rate, with_robot=True)
    finally:
        floor_procs.stop()
        cell_procs.stop()
        rclpy.shutdown()
    floor_figures = summary('floor: bare rclpy two hops', floor)
    cell_figures = summary('cell: people -> supervisor -> arm', full)
    print(f'ratio p50 {cell_figures["p50"] / floor_figures["p50"]:.2f}x   '
          f'p99 {cell_figures["p99"] / floor_figures["p99"]:.2f}x   (aim: p99 <= 1.5x, max <= 20 ms)')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
