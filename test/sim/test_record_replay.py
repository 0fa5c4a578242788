"""`smartcell sim --record` writes a rosbag2-compatible MCAP; `smartcell replay` re-judges it.

One short simulated run (real node processes, real DDS, the PyBullet twin) is recorded; the file
is opened with two independent readers (mcap + mcap-ros2-support, rosbags), then replayed into a
fresh CellController, untouched and with one people message moved onto the robot.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip('pybullet')
pytest.importorskip('rclpy')
mcap_reader = pytest.importorskip('mcap.reader')
pytestmark = [pytest.mark.ros, pytest.mark.twin, pytest.mark.slow]

DURATION_S = 8.0
TICK_HZ = 30.0
TICKS = int(DURATION_S * TICK_HZ)
LOCKSTEP_TOPICS = ('/humans', '/joint_states', '/safety/verdict', '/scan', '/twin/joint_states', '/clock')


@pytest.fixture(scope='module')
def recording(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp('record') / 'run'
    run = subprocess.run([sys.executable, '-m', 'smartcell.cli', 'sim', '--record', '--no-progress',
                          '--duration', str(DURATION_S), '--seed', '3', '--scenario', 'shift',
                          '--without', 'sensors,mes', '--log-dir', str(run_dir)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f'recording: {run_dir / "run.mcap"}' in run.stdout
    return run_dir / 'run.mcap'


def decoded(path: Path) -> dict[str, list]:
    from mcap_ros2.decoder import DecoderFactory
    messages: dict[str, list] = {}
    with open(path, 'rb') as stream:
        reader = mcap_reader.make_reader(stream, decoder_factories=[DecoderFactory()])
        for _, channel, message, ros_msg in reader.iter_decoded_messages(log_time_order=False):
            messages.setdefault(channel.topic, []).append((message, ros_msg))
    return messages


def stamp_ns(ros_msg) -> int:
    return ros_msg.header.stamp.sec * 1_000_000_000 + ros_msg.header.stamp.nanosec


def test_the_mcap_reader_finds_every_tick_with_rosbag2_channel_info(recording):
    with open(recording, 'rb') as stream:
        reader = mcap_reader.make_reader(stream)
        header = reader.get_header()
        summary = reader.get_summary()
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
    assert header.profile == 'ros2'
    channels = {c.topic: c for c in summary.channels.values()}
    assert set(LOCKSTEP_TOPICS) <= set(channels)
    for channel in channels.values():
        schema = summary.schemas[channel.schema_id]
        assert channel.message_encoding == 'cdr' and schema.encoding == 'ros2msg'
        assert schema.name.count('/msg/') == 1 and schema.data, channel.topic
        offered = yaml.safe_load(channel.metadata['offered_qos_profiles'])
        assert offered and all({'reliability', 'durability', 'deadline', 'liveliness'} <= set(p) for p in offered)
    assert '/parameter_events' not in channels
    verdict_schema = summary.schemas[channels['/safety/verdict'].schema_id].data.decode()
    assert 'MSG: diagnostic_msgs/KeyValue' in verdict_schema and 'MSG: builtin_interfaces/Time' in verdict_schema
    stored = json.loads(metadata['smartcell']['parameters'])
    assert stored['lockstep'] is True and stored['auto_start'] is True

    messages = decoded(recording)
    counts = summary.statistics.channel_message_counts
    for topic in LOCKSTEP_TOPICS:
        assert counts[channels[topic].id] == len(messages[topic]), topic
    # Every tick of the run, from the first: the recorder was subscribed before anything published.
    expected = [round(k * 1e9 / TICK_HZ) for k in range(TICKS)]
    for topic in ('/humans', '/joint_states', '/safety/verdict', '/scan', '/twin/joint_states'):
        stamps = sorted({stamp_ns(m) for _, m in messages[topic]})
        assert stamps == expected, (topic, stamps[:3], len(stamps))
    clock = [m.clock.sec * 10**9 + m.clock.nanosec for _, m in messages['/clock']]
    assert clock == sorted(clock) and clock[-1] >= expected[-1]
    log_times = [record.log_time for record, _ in messages['/humans']]
    assert log_times == sorted(log_times) and log_times[-1] <= expected[-1] + 10**9   # sim time, not wall time
    verdict = messages['/safety/verdict'][-1][1].status[0]
    assert {kv.key for kv in verdict.values} >= {'speed_scale', 'state', 'separation_m'}


def test_rosbags_reads_the_same_file(recording):
    anyreader = pytest.importorskip('rosbags.highlevel')
    with anyreader.AnyReader([recording]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        types = {c.topic: c.msgtype for c in reader.connections}
        humans = [reader.deserialize(raw, c.msgtype) for c, _, raw in
                  reader.messages(connections=[c for c in reader.connections if c.topic == '/humans'])]
        for connection, _, raw in reader.messages():
            reader.deserialize(raw, connection.msgtype)          # every message decodes
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
    # Tick 0 is published again while the nodes warm up (every node handles a repeat idempotently).
    assert min(counts['/humans'], counts['/safety/verdict'], counts['/joint_states']) >= TICKS
    assert types['/humans'] == 'geometry_msgs/msg/PoseArray'
    assert types['/safety/verdict'] == 'diagnostic_msgs/msg/DiagnosticArray'
    assert sorted({h.header.stamp.sec * 10**9 + h.header.stamp.nanosec for h in humans}) == \
        [round(k * 1e9 / TICK_HZ) for k in range(TICKS)]
    assert all(h.header.frame_id == 'world' for h in humans)
    assert qos['/humans'] and qos['/humans'][0].reliability.name == 'RELIABLE'
    assert qos['/cell/state'][0].durability.name == 'TRANSIENT_LOCAL'


def test_replay_agrees_with_every_recorded_verdict(recording):
    from smartcell.tools.replay import check
    agreement = check(recording)
    assert agreement.ok, agreement.summary()
    assert agreement.compared == TICKS and agreement.max_abs_scale_diff == 0.0


def test_replay_command_prints_the_agreement(recording):
    run = subprocess.run([sys.executable, '-m', 'smartcell.cli', 'replay', str(recording)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f'{TICKS}/{TICKS} verdicts agree' in run.stdout


def tamper(source: Path, target: Path, tick: int, xy_m: tuple[float, float]) -> int:
    """Copy the recording, with the people of one tick replaced by one person at xy_m; its stamp in ns."""
    from geometry_msgs.msg import Pose, PoseArray
    from mcap.writer import Writer
    from rclpy.serialization import deserialize_message, serialize_message

    wanted = round(tick * 1e9 / TICK_HZ)
    with open(source, 'rb') as stream, open(target, 'wb') as out:
        reader = mcap_reader.make_reader(stream)
        summary = reader.get_summary()
        writer = Writer(out)
        writer.start(profile=reader.get_header().profile, library='tamper')
        schema_ids = {sid: writer.register_schema(s.name, s.encoding, s.data) for sid, s in summary.schemas.items()}
        channel_ids = {cid: writer.register_channel(c.topic, c.message_encoding, schema_ids[c.schema_id], c.metadata)
                       for cid, c in summary.channels.items()}
        for metadata in reader.iter_metadata():
            writer.add_metadata(metadata.name, metadata.metadata)
        changed = 0
        for _, channel, message in reader.iter_messages(log_time_order=False):
            data = message.data
            if channel.topic == '/humans':
                people = deserialize_message(data, PoseArray)
                if people.header.stamp.sec * 10**9 + people.header.stamp.nanosec == wanted:
                    pose = Pose()
                    pose.position.x, pose.position.y = xy_m
                    people.poses = [pose]
                    data = serialize_message(people)
                    changed += 1
            writer.add_message(channel_ids[channel.id], message.log_time, data, message.publish_time,
                               message.sequence)
        writer.finish()
    assert changed == 1
    return wanted


def test_replay_detects_one_tampered_people_message(recording, tmp_path):
    from smartcell.tools.replay import check, read_recording
    recorded = {v.stamp_ns: v for v in read_recording(recording).verdicts}
    base = read_recording(recording).parameters['robot_base_xyz_yaw']
    # A tick the cell ran at some speed: a person standing on the robot's base must stop it there.
    tick = next(k for k in range(TICKS // 2, TICKS) if recorded[round(k * 1e9 / TICK_HZ)].speed_scale > 0.0)
    stamp = tamper(recording, tmp_path / 'tampered.mcap', tick, (base[0] + 0.3, base[1]))
    agreement = check(tmp_path / 'tampered.mcap')
    assert not agreement.ok
    assert agreement.first is not None and agreement.first.stamp_ns == stamp, agreement.summary()
    assert agreement.first.replayed.speed_scale == 0.0 and agreement.first.recorded.speed_scale > 0.0
    run = subprocess.run([sys.executable, '-m', 'smartcell.cli', 'replay', str(tmp_path / 'tampered.mcap')],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and 'first at stamp' in run.stdout, run.stdout + run.stderr[-2000:]
