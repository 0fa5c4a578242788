"""Recording helpers without ROS: message definitions, the MCAP layout, verdict comparison."""
from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import pytest
import yaml

from smartcell.core.recording.bag import INFINITE_NS, QosOffer, RecordingWriter, offered_qos_yaml
from smartcell.core.recording.compare import VerdictSample, compare_verdicts
from smartcell.core.recording.msgdef import SEPARATOR, DefinitionNotFound, dependencies, full_text, msg_reader

SHARE = [Path(sys.prefix) / 'share']


def test_dependencies_as_rosbag2_finds_them():
    text = '# a comment naming Foo\nstd_msgs/Header header\nDiagnosticStatus[] status\nuint8 OK=0\nstring[<=3] names\n'
    assert dependencies(text, 'diagnostic_msgs') == ['diagnostic_msgs/DiagnosticStatus', 'std_msgs/Header']


def test_full_text_appends_each_dependency_once_depth_first():
    texts = {('a', 'Top'): 'b/Mid m\nb/Leaf l\n', ('b', 'Mid'): 'Leaf l\n', ('b', 'Leaf'): 'int32 x\n'}
    text = full_text('a/msg/Top', lambda package, name: texts[(package, name)])
    assert text == ('b/Mid m\nb/Leaf l\n' + '\n' + SEPARATOR + 'MSG: b/Leaf\nint32 x\n'
                    + '\n' + SEPARATOR + 'MSG: b/Mid\nLeaf l\n')


def test_installed_definitions_decode_with_an_independent_reader():
    """The schema text we build lets mcap-ros2-support decode what rclpy serialised."""
    pytest.importorskip('rclpy')
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from rclpy.serialization import serialize_message

    msg = DiagnosticArray(status=[DiagnosticStatus(level=b'\x01', name='smartcell/safety',
                                                   values=[KeyValue(key='speed_scale', value='0.3')])])
    msg.header.stamp.sec, msg.header.frame_id = 12, 'world'
    stream = io.BytesIO()
    writer = RecordingWriter(stream)
    writer.add_topic('/safety/verdict', 'diagnostic_msgs/msg/DiagnosticArray',
                     full_text('diagnostic_msgs/msg/DiagnosticArray', msg_reader(SHARE)),
                     offered_qos_yaml([QosOffer(1, 20, 1, 2, 1)]))
    writer.write('/safety/verdict', 5, serialize_message(msg))
    writer.close()
    stream.seek(0)
    reader = make_reader(stream, decoder_factories=[DecoderFactory()])
    (_, channel, record, decoded), = list(reader.iter_decoded_messages())
    assert channel.message_encoding == 'cdr' and record.log_time == 5
    assert decoded.header.stamp.sec == 12 and decoded.header.frame_id == 'world'
    assert decoded.status[0].values[0].key == 'speed_scale' and decoded.status[0].level == 1


def test_a_missing_definition_is_named():
    with pytest.raises(DefinitionNotFound, match='no_such_msgs/msg/Thing.msg'):
        full_text('no_such_msgs/msg/Thing', msg_reader(SHARE))


def test_offered_qos_is_rosbag2_version_8_yaml():
    (profile,) = yaml.safe_load(offered_qos_yaml([QosOffer(1, 1, 1, 1, 1, lifespan_ns=2_500_000_000)]))
    assert profile['reliability'] == 1 and profile['durability'] == 1 and profile['history'] == 1
    assert profile['lifespan'] == {'sec': 2, 'nsec': 500_000_000}
    assert profile['deadline'] == {'sec': INFINITE_NS // 10**9, 'nsec': INFINITE_NS % 10**9}
    assert offered_qos_yaml([]) == ''


def test_unknown_compression_is_refused():
    with pytest.raises(ValueError, match='accepted: zstd, lz4, none'):
        RecordingWriter(io.BytesIO(), compression='brotli')


def v(stamp: int, scale: float, state: str = 'normal') -> VerdictSample:
    return VerdictSample(stamp, scale, state)


def test_identical_verdicts_agree():
    recorded = [v(1, 1.0), v(2, 0.3, 'reduced'), v(3, 0.0, 'protective_stop')]
    agreement = compare_verdicts(recorded, list(recorded))
    assert agreement.ok and agreement.compared == 3 and agreement.max_abs_scale_diff == 0.0


@pytest.mark.parametrize('replayed,reason', [
    ([v(1, 1.0), v(2, 0.3 + 1e-6, 'reduced')], 'speed_scale'),
    ([v(1, 1.0), v(2, 0.3, 'protective_stop')], "state 'reduced' recorded, 'protective_stop' replayed"),
    ([v(1, 1.0), v(2, math.nan, 'reduced')], 'speed_scale'),
    ([v(1, 1.0)], 'the replay did not produce'),
])
def test_a_difference_is_a_disagreement_named_at_its_stamp(replayed, reason):
    agreement = compare_verdicts([v(1, 1.0), v(2, 0.3, 'reduced')], replayed)
    assert not agreement.ok and reason in agreement.first.reason
    assert agreement.disagreements == 1


def test_tolerance_and_the_unrecorded_head_and_tail():
    agreement = compare_verdicts([v(1, 0.5)], [v(0, 0.0), v(1, 0.5 + 1e-4), v(2, 1.0)], scale_tolerance=1e-3)
    assert agreement.ok and agreement.tail_not_recorded == 1 and agreement.head_not_recorded == 1
    assert agreement.max_abs_scale_diff == pytest.approx(1e-4)


def test_a_verdict_missing_inside_the_recording_is_a_disagreement():
    agreement = compare_verdicts([v(1, 1.0), v(3, 1.0)], [v(1, 1.0), v(2, 1.0), v(3, 1.0)])
    assert not agreement.ok and 'the recording does not have' in agreement.first.reason


def test_nothing_to_compare_is_not_agreement():
    assert not compare_verdicts([], []).ok
