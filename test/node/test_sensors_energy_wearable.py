"""Energy meter and wearable nodes in their own processes over real DDS."""
from __future__ import annotations

import json

import pytest

from smartcell.tools.cell_processes import node_command

pytestmark = pytest.mark.ros

ALLOWED_WEARABLE_TOPICS = {'/operator/fatigue', '/diagnostics', '/rosout', '/parameter_events'}


def test_wearable_publishes_only_the_fatigue_index(peer, processes):
    from diagnostic_msgs.msg import DiagnosticArray
    from rcl_interfaces.msg import Log
    from std_msgs.msg import Float64

    from smartcell.nodes.common import LATCHED_QOS
    processes.start('wearable', node_command('smartcell.nodes.wearable', 'wearable', None, {
        'source': 'sim', 'sim_rate_hz': 20.0, 'publish_rate_hz': 10.0, 'seed': 5}))
    indices, statuses, logs = [], [], []
    peer.node.create_subscription(Float64, 'operator/fatigue', lambda m: indices.append(m.data), LATCHED_QOS)
    peer.node.create_subscription(DiagnosticArray, '/diagnostics',
                                  lambda m: statuses.extend(s for s in m.status if s.name == 'smartcell/wearable'), 10)
    peer.node.create_subscription(Log, '/rosout', lambda m: logs.append(m) if m.name == 'wearable' else None, 10)
    peer.wait_for(lambda: len(indices) >= 10 and any(s.level[0] == 0 for s in statuses), 30.0,
                  'fatigue index and OK diagnostics', processes)
    assert all(0.0 <= i <= 1.0 for i in indices)
    # The graph: what the wearable node publishes and subscribes to.
    published = {name for name, _ in peer.node.get_publisher_names_and_types_by_node('wearable', '/')}
    subscribed = {name for name, _ in peer.node.get_subscriber_names_and_types_by_node('wearable', '/')}
    assert published <= ALLOWED_WEARABLE_TOPICS, published
    assert '/operator/fatigue' in published
    assert not any('mes' in name for name in published | subscribed)
    # Diagnostics carry the index and counts, never heart rate or motion.
    keys = {kv.key for s in statuses for kv in s.values}
    assert keys == {'fatigue_index', 'samples_accepted', 'samples_rejected', 'source'}
    assert not any('bpm' in s.message or 'heart' in s.message.lower() for s in statuses)
    assert not any('heart' in log.msg.lower() or 'bpm' in log.msg for log in logs)


def test_wearable_reports_stale_and_the_conservative_index_when_the_device_is_silent(peer, processes):
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Float64

    from smartcell.nodes.common import LATCHED_QOS
    processes.start('wearable', node_command('smartcell.nodes.wearable', 'wearable', None, {
        'source': 'topics', 'publish_rate_hz': 10.0, 'stale_timeout_s': 0.5, 'stale_fatigue_index': 1.0}))
    indices, levels = [], []
    peer.node.create_subscription(Float64, 'operator/fatigue', lambda m: indices.append(m.data), LATCHED_QOS)
    peer.node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: levels.extend(
        s.level[0] for s in m.status if s.name == 'smartcell/wearable'), 10)
    peer.wait_for(lambda: levels and indices, 30.0, 'first index', processes)
    assert levels[-1] == 3 and indices[-1] == 1.0
    heart_rate = peer.node.create_publisher(Float64, 'wearable/raw/heart_rate_bpm', 10)
    peer.node.create_timer(0.05, lambda: heart_rate.publish(Float64(data=70.0)))   # resting: index stays 0
    peer.wait_for(lambda: levels[-1] == 0 and indices[-1] == 0.0, 30.0, 'fresh index from the device', processes)


def test_energy_meter_reports_energy_per_part_from_joint_torques_and_speeds(peer, processes):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from smartcell.nodes.common import s_to_stamp
    processes.start('energy_meter', node_command('smartcell.nodes.energy_meter', 'energy_meter', None, {
        'source': 'joint_states', 'idle_power_w': 100.0, 'copper_loss_w_per_nm2': 0.0,
        'friction_loss_w_per_rad_s': 0.0, 'grid_co2e_g_per_kwh': 400.0, 'report_rate_hz': 20.0,
        'environment': 'sim'}))
    reports, meter_status = [], {}
    from diagnostic_msgs.msg import DiagnosticArray
    peer.node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: meter_status.update(
        {s.name: {kv.key: kv.value for kv in s.values} for s in m.status}), 10)
    peer.node.create_subscription(String, 'energy/report', lambda m: reports.append(json.loads(m.data)),
                                  QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                                             durability=DurabilityPolicy.TRANSIENT_LOCAL))
    joints = peer.node.create_publisher(JointState, 'joint_states', QoSProfile(depth=200,
                                        reliability=ReliabilityPolicy.RELIABLE))
    events = peer.node.create_publisher(String, 'cell/events', QoSProfile(depth=100,
                                        reliability=ReliabilityPolicy.RELIABLE))
    peer.wait_for(lambda: joints.get_subscription_count() and events.get_subscription_count() and reports, 30.0,
                  'energy meter to connect', processes)
    # 5 s of 10 N m x 2 rad/s on one joint at 30 Hz: (20 W + 100 W idle) x 5 s = 600 J. Sent in
    # chunks of 15, each one waited for, so the node's reader queue (depth 20) never overflows.
    for chunk_start in range(0, 151, 15):
        for k in range(chunk_start, min(chunk_start + 15, 151)):
            msg = JointState()
            msg.header.stamp = s_to_stamp(50.0 + k / 30.0)
            msg.name = ['a', 'b']
            msg.position = [0.0, 0.0]
            msg.velocity = [2.0, 0.0]
            msg.effort = [10.0, 0.0]
            joints.publish(msg)
        metered_j = 120.0 * (min(chunk_start + 15, 151) - 1) / 30.0
        peer.wait_for(lambda: reports[-1]['energy_j_total'] >= metered_j - 1e-6, 30.0,
                      f'{metered_j:.0f} J metered', processes)
    events.publish(String(data=json.dumps({'event_id': 'e1', 'cell_id': 'c', 'type': 'unit_complete',
                                           'stamp': 55.0, 'order_id': 'WO-7', 'unit': 1,
                                           'cycle_time_s': 5.0, 'good': True})))
    peer.wait_for(lambda: reports[-1]['last_cycle'] is not None, 30.0, 'the part report', processes)
    report = reports[-1]
    assert set(report) == {'stamp', 'power_w', 'energy_j_total', 'last_cycle', 'grid_co2e_g_per_kwh'}
    assert report['last_cycle']['unit'] == 1
    assert report['last_cycle']['energy_j'] == pytest.approx(600.0, rel=1e-6)
    assert report['last_cycle']['co2e_g'] == pytest.approx(600.0 / 3.6e6 * 400.0, rel=1e-6)
    assert report['power_w'] == pytest.approx(120.0)
    # Per-joint energy in /diagnostics: joint a did 20 W x 5 s, joint b nothing.
    peer.wait_for(lambda: 'energy_j_a' in meter_status.get('smartcell/energy_meter', {}), 30.0,
                  'per-joint energy on /diagnostics', processes)
    assert float(meter_status['smartcell/energy_meter']['energy_j_a']) == pytest.approx(100.0, rel=1e-3)
    assert float(meter_status['smartcell/energy_meter']['energy_j_b']) == 0.0


def test_energy_meter_power_meter_source_meters_and_goes_stale(peer, processes):
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Float64, String
    processes.start('energy_meter', node_command('smartcell.nodes.energy_meter', 'energy_meter', None, {
        'source': 'power_meter', 'report_rate_hz': 10.0, 'stale_timeout_s': 0.5, 'environment': 'off'}))
    reports, levels = [], []
    peer.node.create_subscription(String, 'energy/report', lambda m: reports.append(json.loads(m.data)), 10)
    peer.node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: levels.extend(
        s.level[0] for s in m.status if s.name == 'smartcell/energy_meter'), 10)
    peer.wait_for(lambda: levels and levels[-1] == 3, 30.0, 'STALE before any power reading', processes)
    meter = peer.node.create_publisher(Float64, 'energy/power_w', 10)
    pump = peer.node.create_timer(0.05, lambda: meter.publish(Float64(data=500.0)))
    peer.wait_for(lambda: reports and reports[-1]['power_w'] == 500.0 and reports[-1]['energy_j_total'] > 100.0,
                  30.0, 'metered power', processes)
    peer.wait_for(lambda: levels[-1] == 0, 30.0, 'OK while the meter reports', processes)
    peer.node.destroy_timer(pump)
    peer.wait_for(lambda: levels[-1] == 3, 30.0, 'STALE after the meter stops', processes)


def test_environment_topics_alarm_and_stale(peer, processes):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import RelativeHumidity, Temperature
    from std_msgs.msg import Float64
    processes.start('energy_meter', node_command('smartcell.nodes.energy_meter', 'energy_meter', None, {
        'source': 'power_meter', 'report_rate_hz': 10.0, 'environment': 'topics', 'environment_timeout_s': 5.0}))
    status = {}
    peer.node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: status.update(
        {s.name: s for s in m.status if s.name == 'smartcell/energy_meter/environment'}), 10)
    name = 'smartcell/energy_meter/environment'
    peer.wait_for(lambda: name in status, 30.0, 'environment status', processes)
    assert status[name].level[0] == 3                      # nothing read yet: STALE, not "clean air"
    temperature = peer.node.create_publisher(Temperature, 'environment/temperature', 10)
    humidity = peer.node.create_publisher(RelativeHumidity, 'environment/humidity', 10)
    pm2_5 = peer.node.create_publisher(Float64, 'environment/pm2_5_ug_m3', 10)
    pm10 = peer.node.create_publisher(Float64, 'environment/pm10_ug_m3', 10)
    readings = {'temperature_c': 45.0}

    def publish_all():
        temperature.publish(Temperature(temperature=readings['temperature_c']))
        humidity.publish(RelativeHumidity(relative_humidity=0.45))
        pm2_5.publish(Float64(data=8.0))
        pm10.publish(Float64(data=15.0))
    peer.node.create_timer(0.05, publish_all)
    peer.wait_for(lambda: status[name].level[0] == 2, 30.0, 'ERROR at 45 degC', processes)
    assert 'temperature' in status[name].message
    readings['temperature_c'] = 22.0
    peer.wait_for(lambda: status[name].level[0] == 0, 30.0, 'OK back in the band', processes)
    values = {kv.key: kv.value for kv in status[name].values}
    assert float(values['humidity_pct']) == pytest.approx(45.0)
