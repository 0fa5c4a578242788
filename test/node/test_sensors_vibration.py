"""Vibration sensor node in its own process over real DDS: an injected fault reaches ERROR."""
from __future__ import annotations

import pytest

from smartcell.core.sensors.params import UR5E_JOINTS
from smartcell.core.sensors.vibration import FAULT_CODES, FEATURE_COLUMNS
from smartcell.tools.cell_processes import node_command

pytestmark = pytest.mark.ros

JOINT_STATE_PERIOD_S = 1.0 / 30.0


def _joint_state_pump(peer, speed_rad_s: float):
    """A timer that publishes joint states whose stamps advance 1/30 s per message, faster than
    real time (like a simulation on sim time), with every joint moving at `speed_rad_s`."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState

    from smartcell.nodes.common import s_to_stamp
    publisher = peer.node.create_publisher(JointState, 'joint_states',
                                           QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE))
    clock = {'t': 100.0, 'publisher': publisher}

    def tick():
        msg = JointState()
        msg.header.stamp = s_to_stamp(clock['t'])
        msg.name = list(UR5E_JOINTS)
        msg.position = [speed_rad_s * (clock['t'] - 100.0)] * 6     # encoder consistent with the speed
        msg.velocity = [speed_rad_s] * 6
        msg.effort = [40.0] * 6
        publisher.publish(msg)
        clock['t'] += JOINT_STATE_PERIOD_S
    return clock, peer.node.create_timer(0.005, tick)


def _batch_node_with_joint_states(peer, processes, fs: float, window: int, extra: dict) -> tuple[dict, object]:
    """A batch-fed vibration node on elbow_joint, its health statuses by name and the raw publisher, once
    joint states flow to it: a batch is judged at the joint's latest speed, and on a loaded machine the
    joint_states subscription can match well after the raw one."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import Float64MultiArray
    processes.start('vibration_sensor', node_command('smartcell.nodes.vibration_sensor', 'vibration_sensor', None, {
        'source': 'batch', 'joint_names': ['elbow_joint'], 'sample_rate_hz': fs, 'window_s': window / fs,
        'stale_timeout_s': 30.0, **extra}))
    statuses: dict = {}
    peer.node.create_subscription(DiagnosticArray, 'vibration/health',
                                  lambda m: statuses.update({s.name: s for s in m.status}), 10)
    raw = peer.node.create_publisher(Float64MultiArray, 'vibration/raw/elbow_joint',
                                     QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    clock, _ = _joint_state_pump(peer, speed_rad_s=1.0)
    peer.wait_for(lambda: raw.get_subscription_count() > 0 and clock['publisher'].get_subscription_count() > 0,
                  30.0, 'node subscribed to the raw topic and joint states', processes)
    matched_t = clock['t']
    peer.wait_for(lambda: clock['t'] >= matched_t + 30 * JOINT_STATE_PERIOD_S, 10.0, 'joint states flowing',
                  processes)
    return statuses, raw


def test_injected_outer_race_fault_reaches_error_on_its_gearbox_only(peer, processes):
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Float64MultiArray
    processes.start('vibration_sensor', node_command('smartcell.nodes.vibration_sensor', 'vibration_sensor', None, {
        'source': 'sim', 'sample_rate_hz': 6400.0, 'window_s': 0.25, 'baseline_windows': 6,
        'fault': 'outer_race', 'fault_joint': 'elbow_joint', 'fault_onset_s': 3.0,
        'fault_initial_severity': 0.05, 'fault_growth_per_s': 0.6, 'seed': 3}))
    statuses = {}
    features = []
    peer.node.create_subscription(DiagnosticArray, '/diagnostics',
                                  lambda m: statuses.update({s.name: s for s in m.status}), 10)
    peer.node.create_subscription(Float64MultiArray, 'vibration/features', features.append, 10)
    clock, _ = _joint_state_pump(peer, speed_rad_s=1.0)

    def level(joint):
        status = statuses.get(f'smartcell/vibration_sensor/{joint}')
        return None if status is None else status.level[0]

    peer.wait_for(lambda: level('elbow_joint') == 2, 60.0, 'ERROR on the elbow gearbox', processes)
    elbow = statuses['smartcell/vibration_sensor/elbow_joint']
    assert elbow.hardware_id == 'gearbox/elbow_joint'
    values = {kv.key: kv.value for kv in elbow.values}
    assert values['fault'] == 'outer_race'
    assert float(values['health_index']) >= 6.0
    assert clock['t'] > 103.0                         # the fault only began 3 s (sim) after the start
    # Healthy gearboxes were assessed and are not in ERROR.
    others = [level(j) for j in UR5E_JOINTS if j != 'elbow_joint']
    assert all(lvl in (0, 1) for lvl in others), others
    assert statuses['smartcell/vibration_sensor'].level[0] == 2
    # The labelled feature matrix: one row per joint, the documented columns.
    last = features[-1]
    assert last.layout.dim[0].label == 'joints:' + ','.join(UR5E_JOINTS)
    assert last.layout.dim[1].label == 'features:' + ','.join(FEATURE_COLUMNS)
    row = list(last.data)[2 * len(FEATURE_COLUMNS):3 * len(FEATURE_COLUMNS)]
    assert FAULT_CODES[int(row[FEATURE_COLUMNS.index('fault_code')])] == 'outer_race'


def test_gearboxes_go_stale_when_joint_states_stop(peer, processes):
    from diagnostic_msgs.msg import DiagnosticArray
    processes.start('vibration_sensor', node_command('smartcell.nodes.vibration_sensor', 'vibration_sensor', None, {
        'source': 'sim', 'sample_rate_hz': 6400.0, 'window_s': 0.25, 'stale_timeout_s': 0.5}))
    statuses = {}
    peer.node.create_subscription(DiagnosticArray, '/diagnostics',
                                  lambda m: statuses.update({s.name: s for s in m.status}), 10)
    name = 'smartcell/vibration_sensor/wrist_3_joint'
    peer.wait_for(lambda: name in statuses, 30.0, 'first diagnostics', processes)
    assert statuses[name].level[0] == 3 and 'no accelerometer input yet' in statuses[name].message
    _, pump = _joint_state_pump(peer, speed_rad_s=1.0)
    peer.wait_for(lambda: statuses[name].level[0] == 0, 30.0, 'OK while joint states flow', processes)
    peer.node.destroy_timer(pump)
    peer.wait_for(lambda: statuses[name].level[0] == 3, 30.0, 'STALE after joint states stop', processes)
    assert 'no accelerometer input for' in statuses[name].message


def test_unknown_fault_joint_is_a_configuration_error(processes, peer):
    processes.start('vibration_sensor', node_command('smartcell.nodes.vibration_sensor', 'vibration_sensor', None,
                                                     {'fault_joint': 'knee_joint'}))
    peer.wait_for(lambda: 'vibration_sensor' in processes.failed(), 30.0, 'the node to refuse the config')
    assert processes.failed()['vibration_sensor'] == 2
    assert 'knee_joint' in processes.log_tail('vibration_sensor')


def test_hardware_batch_stream_with_a_growing_defect_reaches_error(peer, processes):
    """source=batch: the node sees only raw Float64MultiArray batches (as from a DAQ) and joint states."""
    import array

    import numpy as np
    from std_msgs.msg import Float64MultiArray

    from smartcell.twin.vibration_model import GearboxModel, GearboxVibration
    fs, window = 6400.0, 1600
    statuses, raw = _batch_node_with_joint_states(peer, processes, fs, window, {'baseline_windows': 5})
    model = GearboxModel(sample_rate_hz=fs, resonance_hz=0.3 * fs)
    generator = GearboxVibration(model, np.random.default_rng(4))
    name = 'smartcell/vibration_sensor/elbow_joint'

    def windows_done() -> int:
        status = statuses.get(name)
        return 0 if status is None else int({kv.key: kv.value for kv in status.values}['windows'])
    # Healthy windows for the baseline, one at a time so every window sees the current joint speed.
    for k in range(6):
        raw.publish(Float64MultiArray(data=array.array('d', generator.generate(window, 1.0, 40.0, {}).tobytes())))
        peer.wait_for(lambda: windows_done() >= k + 1, 30.0, f'window {k + 1} analysed', processes)
    assert statuses[name].level[0] == 0, statuses[name].message
    for k in range(6, 12):
        samples = generator.generate(window, 1.0, 40.0, {'inner_race': 1.0})
        raw.publish(Float64MultiArray(data=array.array('d', samples.tobytes())))
        peer.wait_for(lambda: windows_done() >= k + 1, 30.0, f'window {k + 1} analysed', processes)
    status = statuses[name]
    values = {kv.key: kv.value for kv in status.values}
    assert status.level[0] == 2, status.message
    assert values['fault'] == 'inner_race'
    assert int(values['samples_received']) == 12 * window


def test_hardware_imu_stream_with_nan_samples_is_an_error(peer, processes):
    """source=imu: one sample per sensor_msgs/Imu; a NaN sample marks the window (and gearbox) ERROR."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Imu
    processes.start('vibration_sensor', node_command('smartcell.nodes.vibration_sensor', 'vibration_sensor', None, {
        'source': 'imu', 'joint_names': ['wrist_1_joint'], 'sample_rate_hz': 500.0, 'window_s': 0.05,
        'stale_timeout_s': 30.0}))
    statuses = {}
    peer.node.create_subscription(DiagnosticArray, 'vibration/health',
                                  lambda m: statuses.update({s.name: s for s in m.status}), 10)
    imu = peer.node.create_publisher(Imu, 'vibration/raw/wrist_1_joint',
                                     QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    peer.wait_for(lambda: imu.get_subscription_count() > 0, 30.0, 'node subscribed to the IMU topic', processes)
    for k in range(25):                       # one 25-sample window, sample 7 broken
        msg = Imu()
        msg.linear_acceleration.x = float('nan') if k == 7 else 0.1 * (-1) ** k
        imu.publish(msg)
    name = 'smartcell/vibration_sensor/wrist_1_joint'
    peer.wait_for(lambda: name in statuses, 30.0, 'the window verdict', processes)
    assert statuses[name].level[0] == 2
    assert 'NaN' in statuses[name].message
    assert statuses[name].hardware_id == 'gearbox/wrist_1_joint'


def _learn_baseline_file(path, fs, window, joint, seed):
    """A healthy recording of the batch test's gearbox, learnt with the CLI for `joint`."""
    import numpy as np

    from smartcell.tools.analyze_vibration import main
    from smartcell.twin.vibration_model import GearboxModel, GearboxVibration
    generator = GearboxVibration(GearboxModel(sample_rate_hz=fs, resonance_hz=0.3 * fs), np.random.default_rng(seed))
    recording = path.parent / f'{joint}_healthy.npy'
    np.save(recording, generator.generate(24 * window, 1.0, 40.0, {}))
    assert main([str(a) for a in [recording, '--fs', fs, '--shaft-hz', generator.shaft_hz(1.0), '--bearing', '6205',
                                  '--window-s', window / fs, '--learn-baseline', path, '--joint', joint]]) == 0


def test_a_learnt_baseline_file_rates_health_from_the_first_window(peer, processes, tmp_path, capsys):
    """baseline_file: no learning phase; the first window is assessed against the file's baseline
    and the second (an inner-race defect) is an ERROR."""
    import array

    import numpy as np
    from std_msgs.msg import Float64MultiArray

    from smartcell.twin.vibration_model import GearboxModel, GearboxVibration
    fs, window = 6400.0, 1600
    baseline_file = tmp_path / 'gearboxes.json'
    _learn_baseline_file(baseline_file, fs, window, 'elbow_joint', seed=5)
    capsys.readouterr()
    statuses, raw = _batch_node_with_joint_states(peer, processes, fs, window, {'baseline_file': str(baseline_file)})
    generator = GearboxVibration(GearboxModel(sample_rate_hz=fs, resonance_hz=0.3 * fs), np.random.default_rng(6))
    name = 'smartcell/vibration_sensor/elbow_joint'

    def values() -> dict[str, str]:
        status = statuses.get(name)
        return {} if status is None else {kv.key: kv.value for kv in status.values}
    raw.publish(Float64MultiArray(data=array.array('d', generator.generate(window, 1.0, 40.0, {}).tobytes())))
    peer.wait_for(lambda: values().get('windows') == '1', 30.0, 'the first window analysed', processes)
    first = values()
    assert first['state'] == 'assessed', statuses[name].message
    assert float(first['health_index']) < 3.0 and statuses[name].level[0] == 0, statuses[name].message
    faulty = generator.generate(window, 1.0, 40.0, {'inner_race': 1.0})
    raw.publish(Float64MultiArray(data=array.array('d', faulty.tobytes())))
    peer.wait_for(lambda: values().get('windows') == '2', 30.0, 'the second window analysed', processes)
    assert statuses[name].level[0] == 2 and float(values()['health_index']) >= 6.0, statuses[name].message


def test_a_baseline_file_learnt_on_other_windows_stops_the_node_at_start_up(peer, processes, tmp_path, capsys):
    baseline_file = tmp_path / 'gearboxes.json'
    _learn_baseline_file(baseline_file, 6400.0, 1600, 'elbow_joint', seed=5)      # 0.25 s windows
    capsys.readouterr()
    processes.start('vibration_sensor', node_command('smartcell.nodes.vibration_sensor', 'vibration_sensor', None, {
        'source': 'batch', 'joint_names': ['elbow_joint'], 'sample_rate_hz': 6400.0, 'window_s': 0.5,
        'baseline_file': str(baseline_file)}))
    peer.wait_for(lambda: 'vibration_sensor' in processes.failed(), 30.0, 'the node to refuse the baseline file')
    assert processes.failed()['vibration_sensor'] == 2
    log = processes.log_tail('vibration_sensor')
    assert str(baseline_file) in log and 'learnt on 0.25 s windows, the node uses 0.5 s' in log
