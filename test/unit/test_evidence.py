"""Evidence log: round trip, non-finite numbers, durability policy, crash-truncated last line."""
import io
import json
import math

import pytest

from smartcell.core.evidence import EvidenceError, EvidenceWriter, cycle_record, read_evidence
from smartcell.core.safety import Mode, SafetyEvent, SafetyState, SafetyVerdict


def verdict(stamp_s, separation_m=math.inf, scale=1.0):
    return SafetyVerdict(stamp_s, Mode.AUTOMATIC, SafetyState.NORMAL, 'clear', separation_m, math.nan, 1.2, 1.6,
                         0.3, scale, '', -1, math.inf, scale)


def test_round_trip_keeps_values_and_non_finite_numbers(tmp_path):
    path = tmp_path / 'logs' / 'evidence.jsonl'
    with EvidenceWriter(path) as writer:
        writer.cycle(verdict(1.0), applied_scale=1.0)
        writer.cycle(verdict(1.033, separation_m=0.8, scale=0.3), applied_scale=0.9)
        writer.event(SafetyEvent(1.033, 'intrusion', SafetyState.REDUCED, 'warning', 'person 0 at 0.80 m', 0.3,
                                 {'separation_m': 0.8}))
    log = read_evidence(path)
    assert log.truncated_tail is None
    assert [r['kind'] for r in log.records] == ['cycle', 'cycle', 'event']
    first, second = log.cycles()
    assert first['separation_m'] == math.inf and math.isnan(first['protective_separation_m'])
    assert first['state'] == 'normal' and first['mode'] == 'automatic'
    assert second['separation_m'] == 0.8 and second['applied_scale'] == 0.9 and second['speed_scale'] == 0.3
    event = log.events()[0]
    assert event['event'] == 'intrusion' and event['details'] == {'separation_m': 0.8}
    # every line is strict JSON (no NaN/Infinity tokens)
    for line in path.read_text().splitlines():
        json.loads(line, parse_constant=lambda token: pytest.fail(f'non-standard JSON token {token}'))


def test_appending_never_truncates(tmp_path):
    path = tmp_path / 'evidence.jsonl'
    for stamp in (1.0, 2.0):
        with EvidenceWriter(path) as writer:
            writer.cycle(verdict(stamp), 1.0)
    assert [r['stamp_s'] for r in read_evidence(path).records] == [1.0, 2.0]


def test_injected_stream_is_flushed_per_record():
    class Recorder(io.StringIO):
        flushes = 0

        def flush(self):
            Recorder.flushes += 1
            super().flush()
    stream = Recorder()
    writer = EvidenceWriter(stream, fsync='always')      # no file descriptor: flushed, not synced
    writer.write(cycle_record(verdict(1.0), 1.0))
    writer.write(cycle_record(verdict(2.0), 1.0))
    assert Recorder.flushes == 2 and stream.getvalue().count('\n') == 2


def test_fsync_policy_syncs_events(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr('smartcell.core.evidence.os.fsync', lambda fd: synced.append(fd))
    with EvidenceWriter(tmp_path / 'e.jsonl', fsync='events') as writer:
        writer.cycle(verdict(1.0), 1.0)
        assert synced == []
        writer.event(SafetyEvent(1.0, 'stop', SafetyState.PROTECTIVE_STOP, 'protective', 'close', 0.0))
        assert len(synced) == 1


def test_truncated_last_line_is_reported_not_fatal(tmp_path):
    path = tmp_path / 'crashed.jsonl'
    with EvidenceWriter(path) as writer:
        writer.cycle(verdict(1.0), 1.0)
    with open(path, 'a') as stream:
        stream.write('{"kind":"cycle","stamp_s":2.0,"separ')     # the writer died here
    log = read_evidence(path)
    assert len(log.records) == 1 and log.truncated_tail.startswith('{"kind":"cycle"')


@pytest.mark.parametrize('content,fragment', [
    ('{"kind":"cycle","stamp_s":1.0}\nnot json\n{"kind":"cycle","stamp_s":2.0}\n', 'line 2 is not JSON'),
    ('{"kind":"other","stamp_s":1.0}\n', 'line 1 is not an evidence record'),
    ('[1, 2]\n', 'line 1 is not an evidence record'),
])
def test_bad_lines_inside_the_log_raise_naming_the_line(tmp_path, content, fragment):
    path = tmp_path / 'bad.jsonl'
    path.write_text(content)
    with pytest.raises(EvidenceError, match=fragment):
        read_evidence(path)


def test_missing_file_and_bad_records_are_refused(tmp_path):
    with pytest.raises(EvidenceError, match='not found'):
        read_evidence(tmp_path / 'none.jsonl')
    with pytest.raises(ValueError, match="kind 'cycle' or 'event'"):
        EvidenceWriter(io.StringIO()).write({'stamp_s': 1.0})
    with pytest.raises(ValueError, match='fsync policy'):
        EvidenceWriter(io.StringIO(), fsync='sometimes')
