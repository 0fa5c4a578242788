"""A running simulated cell's ROS graph matches smartcell.interfaces: types, publishers, QoS."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

rclpy = pytest.importorskip('rclpy')

from rclpy.qos import DurabilityPolicy, ReliabilityPolicy  # noqa: E402

from smartcell.interfaces import TOPICS, Durability, Qos, Reliability, compatible  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.twin]
CELL = {'twin', 'scanner', 'arm', 'supervisor', 'vibration_sensor', 'energy_meter', 'wearable', 'mes_bridge'}
RELIABILITY = {ReliabilityPolicy.RELIABLE: Reliability.RELIABLE, ReliabilityPolicy.BEST_EFFORT: Reliability.BEST_EFFORT}
DURABILITY = {DurabilityPolicy.VOLATILE: Durability.VOLATILE,
              DurabilityPolicy.TRANSIENT_LOCAL: Durability.TRANSIENT_LOCAL}


def test_the_running_cell_matches_the_interface_table(tmp_path):
    sim = subprocess.Popen([sys.executable, '-m', 'smartcell.cli', 'sim', '--no-progress', '--duration', '60',
                            '--without', 'mes', '--log-dir', str(tmp_path / 'run')],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, 'SMARTCELL_SIM_DOMAIN_ID': os.environ['ROS_DOMAIN_ID']})
    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    node = rclpy.create_node('interface_probe', context=context)
    running = {'twin', 'scanner', 'arm', 'supervisor', 'vibration_sensor', 'energy_meter', 'wearable'}
    expected = [t for t in TOPICS if running & set(t.publishers)]
    try:
        seen: dict[str, tuple] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and sim.poll() is None and len(seen) < len(expected):
            for entry in expected:
                name = node.resolve_topic_name(entry.name)
                pubs = [i for i in node.get_publishers_info_by_topic(name) if i.node_name != 'interface_probe']
                subs = [i for i in node.get_subscriptions_info_by_topic(name) if i.node_name != 'interface_probe']
                cell_pubs = {i.node_name for i in pubs}
                if running & set(entry.publishers) <= cell_pubs:
                    seen[entry.name] = (pubs, subs)
            time.sleep(0.2)
        missing = [t.name for t in expected if t.name not in seen]
        if missing:
            sim.send_signal(signal.SIGINT)     # SIGTERM would skip sim's finally: its nodes would live on
            output = sim.communicate(timeout=60)[0]
            raise AssertionError(f'never published by the running cell: {missing}; sim said:\n{output[-3000:]}')
        for entry in expected:
            pubs, subs = seen[entry.name]
            for info in pubs:
                assert info.topic_type == entry.type, (entry.name, info.topic_type)
                assert info.node_name in entry.publishers, (entry.name, info.node_name)
                assert RELIABILITY[info.qos_profile.reliability] is entry.publisher_qos.reliability, entry.name
                assert DURABILITY[info.qos_profile.durability] is entry.publisher_qos.durability, entry.name
            for info in subs:
                actual = Qos(RELIABILITY[info.qos_profile.reliability], DURABILITY[info.qos_profile.durability], 1)
                assert compatible(entry.publisher_qos, actual) == '', (entry.name, info.node_name)
                if info.node_name in entry.subscribers:       # the cell's own nodes: exactly as the table says
                    assert (actual.reliability, actual.durability) == (entry.subscriber_qos.reliability,
                                                                       entry.subscriber_qos.durability), \
                        (entry.name, info.node_name)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
        sim.send_signal(signal.SIGINT)
        sim.wait(timeout=60)
