"""OPC UA server load: 1,000 variables updated at 1 Hz, CPU share of the server process.

The server (with its update loop) runs in this process; an asyncua client in a separate process
subscribes to all 1,000 variables (1 s publishing interval) so its CPU is not counted. Prints the
CPU time of this process / wall time, without and with the subscribed client.
Run: .venv/bin/python bench/bench_opcua.py [--variables 1000] [--seconds 20]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartcell.io.broker import free_port  # noqa: E402
from smartcell.io.opcua import OpcUaServer, OpcUaSettings  # noqa: E402

CLIENT = r'''
import asyncio, sys
from asyncua import Client, ua
class Count:
    n = 0
    def datachange_notification(self, node, value, data):
        Count.n += 1
async def main(url, count, seconds):
    async with Client(url) as client:
        idx = await client.get_namespace_index('urn:smartcell:mes')
        nodes = [client.get_node(ua.NodeId(f'cell-1/Bench/Var_{i:04d}', idx)) for i in range(count)]
        sub = await client.create_subscription(1000, Count())
        await sub.subscribe_data_change(nodes)
        print('subscribed', flush=True)
        await asyncio.sleep(seconds + 5)
        print(f'notifications {Count.n}', flush=True)
asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
'''


def measure(server: OpcUaServer, count: int, seconds: float) -> float:
    """Update every variable once a second for `seconds`; return CPU share of this process, %."""
    paths = [f'Bench/Var_{i:04d}' for i in range(count)]
    cpu0, wall0 = time.process_time(), time.monotonic()
    tick = 0
    while time.monotonic() - wall0 < seconds:
        server.set_values({p: float(tick) + i * 1e-3 for i, p in enumerate(paths)})
        tick += 1
        time.sleep(max(0.0, wall0 + tick - time.monotonic()))   # 1 Hz update schedule
    return 100.0 * (time.process_time() - cpu0) / (time.monotonic() - wall0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--variables', type=int, default=1000)
    parser.add_argument('--seconds', type=float, default=20.0)
    args = parser.parse_args()
    url = f'opc.tcp://127.0.0.1:{free_port()}/smartcell/'
    server = OpcUaServer(OpcUaSettings(endpoint=url, extra_variables=args.variables), lambda c, a: (False, '')).start()
    try:
        idle = measure(server, args.variables, args.seconds)
        print(f'{args.variables} variables at 1 Hz, no client:        {idle:.1f} % of one core')
        client = subprocess.Popen([sys.executable, '-c', CLIENT, url, str(args.variables), str(args.seconds)],
                                  stdout=subprocess.PIPE, text=True)
        assert client.stdout.readline().strip() == 'subscribed'
        busy = measure(server, args.variables, args.seconds)
        notifications = client.stdout.readline().strip()
        client.wait(30)
        print(f'{args.variables} variables at 1 Hz, 1 subscribed client: {busy:.1f} % of one core '
              f'(client got {notifications.split()[-1]} notifications)')
        print(f'values written by the server: {server.writes_applied}')
    finally:
        server.stop()


if __name__ == '__main__':
    main()
