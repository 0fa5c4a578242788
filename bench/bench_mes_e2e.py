"""End-to-end delay, cell event -> MQTT consumer, with every part real and healthy.

A ROS publisher (this process) sends `cell/events` at --rate Hz; the mes_bridge executable stores
each record on disk and publishes it; a deduplicating MQTT consumer stamps its arrival. Delay =
arrival wall time - event stamp (ROS system time, same clock). Prints p50/p95/max.
Run: .venv/bin/python bench/bench_mes_e2e.py [--events 400] [--rate 20]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rclpy  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from smartcell.io.broker import LocalBroker, free_port  # noqa: E402
from smartcell.io.mqtt import DedupConsumer  # noqa: E402


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--events', type=int, default=400)
    parser.add_argument('--rate', type=float, default=20.0, help='events per second')
    args = parser.parse_args()
    domain = 100 + random.randrange(100)
    namespace = f'/mes_bench_{uuid.uuid4().hex[:8]}'     # other sessions may share the domain id
    work = Path(tempfile.mkdtemp(prefix='bench-e2e-'))
    with LocalBroker(workdir=work / 'broker') as broker:
        consumer = DedupConsumer('127.0.0.1', broker.port, 'smartcell/bench/#').start()
        consumer.subscribed.wait(10)
        env = {**os.environ, 'ROS_DOMAIN_ID': str(domain), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
               'AMENT_PREFIX_PATH': str(ROOT / '.venv'), 'PYTHONPATH': str(ROOT)}
        bridge = subprocess.Popen(
            [sys.executable, '-m', 'smartcell.nodes.mes_bridge', '--ros-args', '-r', f'__ns:={namespace}',
             '-p', 'cell_id:=bench',
             '-p', f'db_path:={work / "outbox.sqlite"}', '-p', f'mqtt_port:={broker.port}',
             '-p', f'opcua_endpoint:=opc.tcp://127.0.0.1:{free_port()}/smartcell/'],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=domain)
        node = rclpy.create_node('bench_events', namespace=namespace, context=context)
        publisher = node.create_publisher(String, 'cell/events', 50)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        try:
            deadline = time.monotonic() + 60
            while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
            consumer.wait_until(lambda c: c.other.get('smartcell/bench/status') == b'online', 30)
            stamps = {}
            period = 1.0 / args.rate
            next_at = time.monotonic()
            for i in range(args.events):
                stamp = node.get_clock().now().nanoseconds * 1e-9
                event = {'event_id': str(uuid.uuid4()), 'cell_id': 'bench', 'type': 'alarm', 'stamp': stamp,
                         'code': f'B{i}', 'severity': 'info', 'text': 'bench'}
                stamps[f'B{i}'] = stamp
                publisher.publish(String(data=json.dumps(event)))
                next_at += period
                executor.spin_once(timeout_sec=max(0.0, next_at - time.monotonic()))
            consumer.wait_until(lambda c: len(c.records.get('alarm', [])) >= args.events, 60)
            delays = [consumer.received_at[r['record_id']] - stamps[r['body']['code']]
                      for r in consumer.records.get('alarm', [])]
            print(f'event -> MQTT consumer, {len(delays)} of {args.events} events at {args.rate:g} Hz '
                  f'({broker.kind} broker): p50 {1000 * percentile(delays, 0.5):.1f} ms, '
                  f'p95 {1000 * percentile(delays, 0.95):.1f} ms, max {1000 * max(delays):.1f} ms')
        finally:
            bridge.send_signal(signal.SIGINT)
            bridge.wait(20)
            consumer.stop()
            node.destroy_node()
            rclpy.shutdown(context=context)


if __name__ == '__main__':
    main()
