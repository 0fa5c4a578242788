"""The recorder node over real DDS: QoS adaptation, latched values, the file it leaves on shutdown."""
from __future__ import annotations

import pytest
import yaml

rclpy = pytest.importorskip('rclpy')
mcap_reader = pytest.importorskip('mcap.reader')

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from std_msgs.msg import Float64, String  # noqa: E402

from smartcell.tools.cell_processes import node_command  # noqa: E402

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def read(path):
    from mcap_ros2.decoder import DecoderFactory
    with open(path, 'rb') as stream:
        reader = mcap_reader.make_reader(stream, decoder_factories=[DecoderFactory()])
        channels = {c.topic: c for c in reader.get_summary().channels.values()}
        messages: dict[str, list] = {}
        for _, channel, _, msg in reader.iter_decoded_messages(log_time_order=False):
            messages.setdefault(channel.topic, []).append(msg)
    return channels, messages


def test_best_effort_and_latched_publishers_are_recorded_with_their_offered_qos(peer, processes, tmp_path):
    output = tmp_path / 'out.mcap'
    # Latched before the recorder exists: only a transient-local subscription gets it.
    latched = peer.node.create_publisher(String, 'cell/state', LATCHED)
    latched.publish(String(data='idle'))
    # Declared to the recorder (reliable) but published best effort, as a lidar driver does.
    sensor = peer.node.create_publisher(Float64, 'sensor_value', qos_profile_sensor_data)
    processes.start('recorder', node_command('smartcell.nodes.recorder', 'recorder', None, {
        'output_file': str(output), 'topics': ['sensor_value std_msgs/msg/Float64'], 'config_node': ''}))
    peer.wait_for(lambda: latched.get_subscription_count() >= 1 and sensor.get_subscription_count() >= 1, 30,
                  'the recorder subscribed to both topics', processes)
    values = [float(i) for i in range(20)]
    sent = 0

    def publish_and_count() -> bool:
        nonlocal sent
        if sent < len(values):
            sensor.publish(Float64(data=values[sent]))
            sent += 1
        return sent == len(values)

    peer.wait_for(publish_and_count, 10, 'values published')
    processes.stop()                     # SIGINT: the recorder drains and writes the summary
    assert processes.processes['recorder'].returncode == 0, processes.log_tail('recorder')

    channels, messages = read(output)
    assert [m.data for m in messages['/cell/state']] == ['idle']
    (offered,) = yaml.safe_load(channels['/cell/state'].metadata['offered_qos_profiles'])
    assert offered['durability'] == 1 and offered['reliability'] == 1          # transient local, reliable
    (offered,) = yaml.safe_load(channels['/sensor_value'].metadata['offered_qos_profiles'])
    assert offered['reliability'] == 2                                          # best effort
    received = [m.data for m in messages.get('/sensor_value', [])]
    assert received and set(received) <= set(values) and received == sorted(received)
    assert 'subscribing again' in (tmp_path / 'logs' / 'recorder.log').read_text()


def test_a_malformed_topics_entry_is_a_configuration_error(processes, tmp_path):
    processes.start('recorder', node_command('smartcell.nodes.recorder', 'recorder', None, {
        'output_file': str(tmp_path / 'x.mcap'), 'topics': ['humans'], 'config_node': ''}))
    process = processes.processes['recorder']
    assert process.wait(timeout=60) == 2
    assert 'expected "TOPIC pkg/msg/Type [latched]"' in processes.log_tail('recorder')
