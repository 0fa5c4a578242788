"""Evidence log: round trip, non-finite numbers, durability policy, crash-truncated last line."""
import io
import json
import math

import pytest

from smartcell.core.safety.evidence import EvidenceError, EvidenceWriter, cycle_record, read_evidence
from smartcell.core.safety.monitor import Mode, SafetyEvent, SafetyState, SafetyVerdict


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
    opened = Recorder.flushes                            # the session record
    writer.write(cycle_record(verdict(1.0), 1.0))
    writer.write(cycle_record(verdict(2.0), 1.0))
    assert Recorder.flushes - opened == 2 and stream.getvalue().count('\n') == 3


def test_fsync_policy_syncs_events(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr('smartcell.core.safety.evidence.os.fsync', lambda fd: synced.append(fd))
    with EvidenceWriter(tmp_path / 'e.jsonl', fsync='events', anchor_every=1000) as writer:
        opened = len(synced)                             # the session record and the first anchor
        writer.cycle(verdict(1.0), 1.0)
        assert len(synced) == opened
        writer.event(SafetyEvent(1.0, 'stop', SafetyState.PROTECTIVE_STOP, 'protective', 'close', 0.0))
        assert len(synced) > opened


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


# ---------------------------------------------------------------- tamper evidence
#
# A real log: the SafetyMonitor's cycles and events while a person walks up to the arm (intrusion,
# stop) and away again, written by the EvidenceWriter with the cell key. Each test tampers with a
# copy of it one way and checks the finding the verifier names.

import hashlib  # noqa: E402
import shutil  # noqa: E402

import numpy as np  # noqa: E402

from smartcell.core.mes.audit_trail import (GENESIS_HASH, Anchor, FindingKind, anchor_path_for, read_anchor,  # noqa: E402
                                           seal, write_anchor)
from smartcell.core.safety.authority import load_or_create_cell_key  # noqa: E402
from smartcell.core.safety.evidence import verify_evidence  # noqa: E402
from smartcell.core.safety.monitor import PeopleObservation, RobotObservation, SafetyConfig, SafetyMonitor  # noqa: E402
from smartcell.core.safety.monitor import SeparationInputs  # noqa: E402

DT = 1.0 / 30.0


def write_real_log(path, key=None, cycles=150, anchor_every=100):
    monitor = SafetyMonitor(SafetyConfig(separation=SeparationInputs(reaction_time_s=0.1)), None)
    capsules = np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    applied = 0.0
    with EvidenceWriter(path, key=key, anchor_every=anchor_every) as writer:
        for k in range(cycles):
            t = k * DT
            x = 3.0 if t < 1.0 else max(0.5, 3.0 - 3.0 * (t - 1.0)) if t < 3.0 else 3.0
            velocities = np.zeros((1, 2, 3))
            velocities[0, 1, 0] = 0.5 * applied
            v = monitor.update(PeopleObservation(t, 'world', np.array([[x, 0.0, 1.0]])),
                               RobotObservation(t, capsules, np.array([0.1]), velocities, applied), t)
            writer.cycle(v, applied)
            for event in monitor.drain_events():
                writer.event(event)
            applied = v.speed_scale
    return path


@pytest.fixture(scope='module')
def real(tmp_path_factory):
    """(log, cell key) of an intact keyed log; tests tamper with copies."""
    directory = tmp_path_factory.mktemp('evidence')
    key = load_or_create_cell_key(directory / 'cell.key')
    return write_real_log(directory / 'evidence.jsonl', key), key


@pytest.fixture
def copy(real, tmp_path):
    log, key = real
    target = tmp_path / 'evidence.jsonl'
    shutil.copyfile(log, target)
    shutil.copyfile(anchor_path_for(log), anchor_path_for(target))
    return target, key


def lines_of(path):
    return path.read_text().splitlines(keepends=True)


def reseal(lines, change, key=None):
    """Apply `change` to the parsed records and re-compute every seq, hash (and MAC with `key`)."""
    out, prev = [], GENESIS_HASH
    records = change([json.loads(line) for line in lines])
    for seq, record in enumerate(records, start=1):
        record = {k: v for k, v in record.items() if k not in ('hash', 'mac')}
        record['seq'] = seq
        record = seal(record, prev, key)
        prev = record['hash']
        out.append(json.dumps(record, sort_keys=True, separators=(',', ':')) + '\n')
    return out


def stops_as_normal(records):
    for r in records:
        if r.get('event') == 'stop':
            r.update(event='resume', state='normal', reason='')
        if r.get('kind') == 'cycle' and r.get('state') == 'protective_stop':
            r.update(state='normal', speed_scale=1.0, reason='')
    return records


def kinds(result):
    return {f.kind for f in result.findings}


def test_real_log_is_intact_keyed_and_anchored(real):
    log, key = real
    result = verify_evidence(log, key)
    assert result.ok and result.is_chain and result.mac_checked and result.keyed and result.anchor_checked
    assert result.cycles == 150 and result.events >= 2 and result.records == result.last_seq
    assert read_anchor(anchor_path_for(log)).seq == result.last_seq      # close() anchored the head
    assert any(r['event'] == 'stop' for r in read_evidence(log).events())
    unkeyed = verify_evidence(log)                    # without the key: chain and anchor only, and said so
    assert unkeyed.ok and not unkeyed.mac_checked and 'no key was given' in unkeyed.notes[0]


def test_edited_stops_break_their_hashes(copy):
    path, key = copy
    text = path.read_text()
    assert '"event":"stop"' in text
    path.write_text(text.replace('"event":"stop"', '"event":"resume"'))
    result = verify_evidence(path, key)
    assert kinds(result) == {FindingKind.BAD_HASH}          # edited in place: the MAC is not even reached
    assert all('edited' in f.detail for f in result.findings)
    assert not read_evidence(path).events() or all(e['event'] != 'stop' for e in read_evidence(path).events())


def test_stops_rewritten_and_resealed_without_the_key_are_caught(copy):
    path, key = copy
    path.write_text(''.join(reseal(lines_of(path), stops_as_normal)))
    with_key = verify_evidence(path, key)
    assert FindingKind.BAD_MAC in kinds(with_key) and with_key.findings[0].seq == 1
    without_key = verify_evidence(path)               # the anchor still names the old head's hash
    assert kinds(without_key) == {FindingKind.ANCHOR_MISMATCH}
    assert 're-sealed' in without_key.findings[0].detail


def test_resealed_log_with_a_forged_anchor_is_caught_only_with_the_key(copy):
    path, key = copy
    forged = reseal(lines_of(path), stops_as_normal)
    path.write_text(''.join(forged))
    last = json.loads(forged[-1])
    write_anchor(anchor_path_for(path), Anchor(last['seq'], last['hash']))
    assert verify_evidence(path).ok                   # the documented limit: without the key, a forgery holds
    result = verify_evidence(path, key)
    assert {FindingKind.BAD_MAC, FindingKind.ANCHOR_MISMATCH} <= kinds(result)


def test_deleted_middle_half_is_a_broken_link(copy):
    path, key = copy
    lines = lines_of(path)
    n = len(lines)
    path.write_text(''.join(lines[:n // 4] + lines[3 * n // 4:]))
    result = verify_evidence(path, key)
    assert kinds(result) == {FindingKind.BROKEN_LINK}
    assert result.findings[0].seq == 3 * n // 4 + 1 and 'are missing' in result.findings[0].detail


def test_deleted_first_half_is_a_broken_link_at_the_start(copy):
    path, key = copy
    lines = lines_of(path)
    path.write_text(''.join(lines[len(lines) // 2:]))
    result = verify_evidence(path, key)
    assert kinds(result) == {FindingKind.BROKEN_LINK} and 'the log starts at seq' in result.findings[0].detail


def test_deleted_tail_is_caught_by_the_anchor(copy):
    path, key = copy
    lines = lines_of(path)
    path.write_text(''.join(lines[:-20]))
    result = verify_evidence(path, key)
    assert kinds(result) == {FindingKind.TAIL_MISSING}
    assert f'after seq {len(lines) - 20}' in result.findings[0].detail
    anchor_path_for(path).unlink()                    # and with the anchor deleted too
    assert kinds(verify_evidence(path, key)) == {FindingKind.ANCHOR_MISSING}
    assert verify_evidence(path, key, require_anchor=False).ok


def test_reversed_log_is_reordered(copy):
    path, key = copy
    path.write_text(''.join(reversed(lines_of(path))))
    result = verify_evidence(path, key)
    assert FindingKind.REORDERED in kinds(result) and not result.ok


@pytest.mark.parametrize('tamper', ['swap', 'repeat'])
def test_swapped_or_repeated_records_are_reordered(copy, tamper):
    path, key = copy
    lines = lines_of(path)
    if tamper == 'swap':
        lines[40], lines[41] = lines[41], lines[40]
    else:
        lines.insert(60, lines[50])
    path.write_text(''.join(lines))
    result = verify_evidence(path, key)
    assert FindingKind.REORDERED in kinds(result)


def test_wrong_key_is_a_bad_mac(copy, tmp_path):
    path, _ = copy
    other = load_or_create_cell_key(tmp_path / 'other.key')
    result = verify_evidence(path, other)
    assert FindingKind.BAD_MAC in kinds(result) and FindingKind.ANCHOR_MISMATCH in kinds(result)


def test_empty_log_is_never_ok(tmp_path, copy):
    empty = tmp_path / 'empty.jsonl'
    empty.write_text('')
    result = verify_evidence(empty)
    assert not result.ok and not result.is_chain and kinds(result) == {FindingKind.EMPTY}
    path, key = copy
    path.write_text('\n')                             # emptied, but its anchor names the old head
    assert kinds(verify_evidence(path, key)) == {FindingKind.EMPTY, FindingKind.TAIL_MISSING}


@pytest.mark.parametrize('content,fragment', [
    (b'\x89PNG\r\n\x1a\n' + bytes(range(256)), 'not an evidence log'),
    (b'hello\nworld\n', 'not an evidence log'),
    (b'{"kind":"cycle","stamp_s":1.0,"speed_scale":1.0}\n', 'without a hash chain'),
])
def test_a_file_that_is_not_a_chain_says_so(tmp_path, content, fragment):
    path = tmp_path / 'x.jsonl'
    path.write_bytes(content)
    result = verify_evidence(path)
    assert kinds(result) == {FindingKind.NOT_A_CHAIN} and fragment in result.findings[0].detail
    assert not result.ok and not result.is_chain


def test_stripped_chain_fields_are_not_a_chain(copy):
    path, key = copy
    stripped = [{k: v for k, v in json.loads(line).items() if k not in ('seq', 'hash', 'prev_hash', 'mac')}
                for line in lines_of(path)]
    path.write_text(''.join(json.dumps(r) + '\n' for r in stripped if r['kind'] != 'session'))
    assert kinds(verify_evidence(path, key)) == {FindingKind.NOT_A_CHAIN}


def test_crashed_writer_then_reopened_verifies(tmp_path):
    key = load_or_create_cell_key(tmp_path / 'cell.key')
    path = tmp_path / 'e.jsonl'
    writer = EvidenceWriter(path, key=key, anchor_every=5)
    for k in range(12):
        writer.cycle(verdict(k * DT), 1.0)
    writer._stream.write('{"kind":"cycle","stamp_s":9.0,"sep')     # the process dies mid-line
    writer._stream.flush()
    crashed = verify_evidence(path, key)
    assert crashed.ok and crashed.truncated_tail       # up to anchor_every-1 cycles after the anchor: allowed
    assert read_evidence(path).truncated_tail.startswith('{"kind":"cycle"')
    with EvidenceWriter(path, key=key) as again:       # the next supervisor continues the chain
        again.cycle(verdict(1.0), 1.0)
    result = verify_evidence(path, key)
    assert result.ok and not result.truncated_tail and result.cycles == 13
    sessions = [json.loads(line) for line in lines_of(path) if '"session"' in line]
    assert len(sessions) == 2 and sessions[1]['continues_seq'] == 13
    assert sessions[1]['partial_line_sha256'] == hashlib.sha256(b'{"kind":"cycle","stamp_s":9.0,"sep').hexdigest()
    assert len(read_evidence(path).cycles()) == 13


def test_an_unreadable_line_inside_the_log_is_a_finding(copy):
    path, key = copy
    lines = lines_of(path)
    lines.insert(30, 'garbage the next writer never named\n')
    path.write_text(''.join(lines))
    assert FindingKind.UNREADABLE in kinds(verify_evidence(path, key))
    with pytest.raises(EvidenceError, match='line 31 is not JSON'):
        read_evidence(path)


def test_reopening_continues_the_chain_and_refuses_an_unchained_log(tmp_path):
    path = tmp_path / 'e.jsonl'
    for stamp in (1.0, 2.0):
        with EvidenceWriter(path) as writer:
            writer.cycle(verdict(stamp), 1.0)
    result = verify_evidence(path)
    assert result.ok and result.records == 4 and result.cycles == 2
    legacy = tmp_path / 'legacy.jsonl'
    legacy.write_text('{"kind":"cycle","stamp_s":1.0}\n')
    with pytest.raises(EvidenceError, match='move it aside'):
        EvidenceWriter(legacy)


def test_anchor_follows_every_event_and_every_n_cycles(tmp_path):
    path = tmp_path / 'e.jsonl'
    writer = EvidenceWriter(path, anchor_every=10)
    assert read_anchor(anchor_path_for(path)).seq == 1                    # the session record
    for k in range(9):
        writer.cycle(verdict(k * DT), 1.0)
    assert read_anchor(anchor_path_for(path)).seq == 1
    writer.cycle(verdict(0.5), 1.0)
    assert read_anchor(anchor_path_for(path)).seq == 11
    writer.event(SafetyEvent(0.6, 'stop', SafetyState.PROTECTIVE_STOP, 'protective', 'close', 0.0))
    assert read_anchor(anchor_path_for(path)) == Anchor(12, writer.head.hash)
    writer.cycle(verdict(0.7), 1.0)
    writer.close()
    assert read_anchor(anchor_path_for(path)).seq == 13


def test_every_line_is_strict_json_with_seq_and_hashes(real):
    log, _ = real
    previous = GENESIS_HASH
    for seq, line in enumerate(lines_of(log), start=1):
        record = json.loads(line, parse_constant=lambda token: pytest.fail(f'non-standard JSON token {token}'))
        assert record['seq'] == seq and record['prev_hash'] == previous and len(record['mac']) == 64
        previous = record['hash']
