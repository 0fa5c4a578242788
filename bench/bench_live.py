"""Live view benchmark: `smartcell live` bridging a running `smartcell sim` to a Foxglove WebSocket client.

    .venv/bin/python bench/bench_live.py [--duration-s 60] [--listen-s 45]

Starts the simulated cell (lockstep, as fast as the machine allows, without the MES and sensor
groups) in a private DDS domain, `smartcell live` in the same domain on a free port, and a
WebSocket client that subscribes to every channel it is advertised. Reports the channels, the
messages and bytes per second the client received, per topic, and the bridge's hop (the message's
log time, stamped by the bridge when DDS delivered it, to its arrival at the client) p50/p99.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--duration-s', type=float, default=60.0, help='simulated seconds of the cell run')
    parser.add_argument('--listen-s', type=float, default=45.0, help='wall seconds the client listens')
    args = parser.parse_args()
    from websockets.sync.client import connect

    domain = str(random.SystemRandom().randint(101, 232))
    env = {**os.environ, 'ROS_DOMAIN_ID': domain, 'SMARTCELL_SIM_DOMAIN_ID': domain,
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'AMENT_PREFIX_PATH': os.environ.get('AMENT_PREFIX_PATH',
                                                                                            sys.prefix)}
    port = free_port()
    live = subprocess.Popen([sys.executable, '-m', 'smartcell.cli', 'live', '--port', str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    sim = subprocess.Popen([sys.executable, '-m', 'smartcell.cli', 'sim', '--no-progress', '--duration',
                            str(args.duration_s), '--without', 'mes,sensors', '--log-dir',
                            f'/tmp/bench_live_{domain}'], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ws = connect(f'ws://127.0.0.1:{port}', subprotocols=['foxglove.sdk.v1'], open_timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        topics: dict[int, str] = {}
        counts: collections.Counter = collections.Counter()
        sizes: collections.Counter = collections.Counter()
        hops_ms: list[float] = []
        first = last = None
        start = time.monotonic()
        with ws:
            while time.monotonic() - start < args.listen_s:
                try:
                    frame = ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                if isinstance(frame, str):
                    message = json.loads(frame)
                    wanted = []
                    if message['op'] == 'advertise':
                        for channel in message['channels']:
                            topics[channel['id']] = channel['topic']
                            wanted.append(channel['id'])
                    elif message['op'] == 'status' and message['message'].startswith('Unknown channel ID: '):
                        wanted.append(int(message['message'].rsplit(' ', 1)[1]))
                    if wanted:
                        ws.send(json.dumps({'op': 'subscribe', 'subscriptions': [
                            {'id': c, 'channelId': c} for c in wanted]}))
                    continue
                now_ns = time.time_ns()
                subscription, log_time_ns = struct.unpack_from('<IQ', frame, 1)
                counts[topics[subscription]] += 1
                sizes[topics[subscription]] += len(frame) - 13
                hops_ms.append((now_ns - log_time_ns) / 1e6)
                first = first or time.monotonic()
                last = time.monotonic()
        span = (last - first) if first and last and last > first else float('nan')
        print(f'channels advertised: {len(topics)}, with data: {len(counts)}; '
              f'{sum(counts.values())} messages, {sum(sizes.values()) / 1e6:.1f} MB in {span:.1f} s '
              f'({sum(counts.values()) / span:.0f} msg/s, {sum(sizes.values()) / span / 1e6:.2f} MB/s)')
        if hops_ms:
            print(f'bridge hop (DDS delivery -> WebSocket client): p50 {np.percentile(hops_ms, 50):.2f} ms, '
                  f'p99 {np.percentile(hops_ms, 99):.2f} ms, max {max(hops_ms):.2f} ms')
        for topic, count in sorted(counts.items()):
            print(f'  {topic:28s} {count:6d} msgs  {count / span:7.1f}/s  {sizes[topic] / count:8.0f} B avg')
        silent = sorted(set(topics.values()) - set(counts))
        if silent:
            print(f'advertised without a message in the window: {", ".join(silent)}')
    finally:
        for process in (sim, live):
            process.send_signal(signal.SIGINT)      # smartcell sim stops its nodes on SIGINT (not on SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
