"""Command authority: the cell key file, signed verdicts, trajectories and cell events, replays."""
from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from smartcell.core.safety.authority import (CELL_KEY_BYTES, MAX_SEQUENCE_AHEAD_NS, CellKeyError, SeenSignatures,
                                             SequenceGuard,
                                             default_cell_key_path, load_or_create_cell_key, sign_trajectory,
                                             sign_event, sign_verdict, signed_id, split_signed_id, verify_event,
                                             verify_trajectory, verify_verdict)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
VERDICT = dict(stamp_ns=1_700_000_000_123_456_789, sequence=42, speed_scale=0.3, state='reduced',
               motion='motion-7')
TRAJECTORY = dict(trajectory_id='motion-7', stamp_ns=5_000_000_000,
                  positions=[[0.0, -1.571, 1.571, -1.571, -1.571, 0.0], [0.5, -1.571, 1.571, -1.571, -1.571, 0.0]],
                  times_ns=[0, 1_500_000_000])


# -- key file ------------------------------------------------------------------------------------------
def test_missing_key_file_is_created_private_with_a_random_key(tmp_path):
    path = tmp_path / 'keys' / 'cell-01.key'
    key = load_or_create_cell_key(path)
    assert len(key) == CELL_KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_cell_key(path) == key                      # read back, not re-created
    assert load_or_create_cell_key(tmp_path / 'other.key') != key    # a fresh random key per cell
    assert [p.name for p in path.parent.iterdir()] == ['cell-01.key']   # no temporary file left


def test_concurrent_creators_agree_on_one_key(tmp_path):
    path = tmp_path / 'cell.key'
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(load_or_create_cell_key(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1


@pytest.mark.parametrize('mode', [0o640, 0o604, 0o660, 0o644, 0o620])
def test_key_file_readable_or_writable_by_others_is_refused(tmp_path, mode):
    path = tmp_path / 'cell.key'
    load_or_create_cell_key(path)
    os.chmod(path, mode)
    with pytest.raises(CellKeyError, match=f'{path}.*group or others.*chmod 600'):
        load_or_create_cell_key(path)


@pytest.mark.parametrize('size', [0, 16, 31, 33, 64])
def test_key_file_of_the_wrong_size_is_refused(tmp_path, size):
    path = tmp_path / 'cell.key'
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b'k' * size)
    os.close(fd)
    with pytest.raises(CellKeyError, match=f'{path} has {size} bytes, expected 32'):
        load_or_create_cell_key(path)


def test_key_path_that_is_a_directory_or_a_symlink_is_refused(tmp_path):
    directory = tmp_path / 'dir.key'
    directory.mkdir(mode=0o700)
    with pytest.raises(CellKeyError, match='dir.key'):
        load_or_create_cell_key(directory)
    real = tmp_path / 'real.key'
    load_or_create_cell_key(real)
    link = tmp_path / 'link.key'
    link.symlink_to(real)
    with pytest.raises(CellKeyError, match='link.key'):
        load_or_create_cell_key(link)


def test_default_key_path_is_under_ros_home():
    assert str(default_cell_key_path('cell-01', {'ROS_HOME': '/var/ros'})) == '/var/ros/smartcell/cell-01.key'
    assert default_cell_key_path('c', {}).parts[-3:] == ('.ros', 'smartcell', 'c.key')
    with pytest.raises(CellKeyError):
        default_cell_key_path('../etc', {})


# -- verdicts ------------------------------------------------------------------------------------------
def test_a_signed_verdict_verifies():
    signature = sign_verdict(KEY, **VERDICT)
    assert len(signature) == 64 and int(signature, 16) >= 0
    assert verify_verdict(KEY, **VERDICT, signature=signature) is None


@pytest.mark.parametrize('field, value', [
    ('stamp_ns', VERDICT['stamp_ns'] + 1), ('sequence', 43), ('speed_scale', 1.0),
    ('speed_scale', 0.30000000000000004), ('state', 'normal'), ('motion', 'motion-8'), ('motion', ''),
])
def test_tampering_with_any_verdict_field_breaks_the_signature(field, value):
    signature = sign_verdict(KEY, **VERDICT)
    tampered = {**VERDICT, field: value}
    reason = verify_verdict(KEY, **tampered, signature=signature)
    assert reason is not None and 'does not match' in reason


@pytest.mark.parametrize('signature, words', [
    (None, 'not signed'), ('', 'not signed'), ('ab' * 31, 'malformed'), ('AB' * 32, 'malformed'),
    ('zz' * 32, 'malformed'), ('ab' * 33, 'malformed'),
])
def test_missing_or_malformed_signature_is_named(signature, words):
    assert words in verify_verdict(KEY, **VERDICT, signature=signature)


def test_a_verdict_signed_with_another_key_is_refused():
    assert 'does not match' in verify_verdict(KEY, **VERDICT, signature=sign_verdict(OTHER_KEY, **VERDICT))


def test_field_boundaries_cannot_be_shifted():
    # Length-prefixed fields: moving characters from one field to the next changes the message.
    a = sign_verdict(KEY, **{**VERDICT, 'state': 'reduced', 'motion': 'x'})
    b = sign_verdict(KEY, **{**VERDICT, 'state': 'reducedx', 'motion': ''})
    assert a != b


def test_nan_scale_never_verifies():
    signature = sign_verdict(KEY, **{**VERDICT, 'speed_scale': float('nan')})
    assert 'not finite' in verify_verdict(KEY, **{**VERDICT, 'speed_scale': float('nan')}, signature=signature)


def test_sequence_guard_refuses_replays_and_old_sequences():
    guard = SequenceGuard()
    assert guard.check(5) is None
    guard.accept(5)
    assert 'replayed' in guard.check(5)
    assert 'not above the last accepted 5' in guard.check(4)
    with pytest.raises(ValueError):
        guard.accept(5)
    guard.accept(6)
    assert guard.last_accepted == 6


def test_a_sequence_far_ahead_of_the_wall_clock_is_refused_and_does_not_lock_the_supervisor_out():
    now = [10**18]
    guard = SequenceGuard(now_ns=lambda: now[0])
    forged = now[0] + MAX_SEQUENCE_AHEAD_NS + 1
    reason = guard.check(forged)
    assert reason is not None and 'ahead of this host' in reason and 'synchronised' in reason
    with pytest.raises(ValueError):
        guard.accept(forged)
    assert guard.last_accepted is None
    guard.accept(now[0] + MAX_SEQUENCE_AHEAD_NS)         # at the bound: a skewed but genuine clock
    now[0] += 2 * MAX_SEQUENCE_AHEAD_NS
    assert guard.check(forged) is None                   # the clock caught up: no longer ahead


# -- trajectories --------------------------------------------------------------------------------------
def test_a_signed_trajectory_verifies_and_round_trips_through_frame_id():
    signature = sign_trajectory(KEY, **TRAJECTORY)
    frame_id = signed_id('motion-7', signature)
    assert frame_id == f'motion-7#{signature}'
    assert split_signed_id(frame_id) == ('motion-7', signature)
    assert split_signed_id('motion-7') == ('motion-7', None)
    assert verify_trajectory(KEY, **TRAJECTORY, signature=signature) is None


def _moved(positions, k, j, delta):
    out = [list(p) for p in positions]
    out[k][j] += delta
    return out


@pytest.mark.parametrize('field, value', [
    ('trajectory_id', 'motion-8'), ('stamp_ns', 5_000_000_001),
    ('positions', _moved(TRAJECTORY['positions'], 1, 0, 1e-12)),
    ('positions', _moved(TRAJECTORY['positions'], 0, 5, 0.1)),
    ('positions', [TRAJECTORY['positions'][1], TRAJECTORY['positions'][0]]),
    ('positions', [p[::-1] for p in TRAJECTORY['positions']]),     # joint order swapped
    ('times_ns', [0, 1_000_000_000]), ('times_ns', [1, 1_500_000_000]),
])
def test_tampering_with_any_trajectory_field_breaks_the_signature(field, value):
    signature = sign_trajectory(KEY, **TRAJECTORY)
    reason = verify_trajectory(KEY, **{**TRAJECTORY, field: value}, signature=signature)
    assert reason is not None and 'does not match' in reason


def test_extra_or_missing_points_break_the_signature():
    signature = sign_trajectory(KEY, **TRAJECTORY)
    shorter = dict(TRAJECTORY, positions=TRAJECTORY['positions'][:1], times_ns=TRAJECTORY['times_ns'][:1])
    assert 'does not match' in verify_trajectory(KEY, **shorter, signature=signature)
    mismatched = dict(TRAJECTORY, times_ns=TRAJECTORY['times_ns'][:1])
    assert 'cannot be verified' in verify_trajectory(KEY, **mismatched, signature=signature)


def test_verdict_and_trajectory_signatures_are_not_interchangeable():
    verdict_signature = sign_verdict(KEY, stamp_ns=0, sequence=0, speed_scale=0.0, state='', motion='')
    empty = dict(trajectory_id='', stamp_ns=0, positions=[], times_ns=[])
    assert verify_trajectory(KEY, **empty, signature=verdict_signature) is not None


def test_trajectory_id_with_the_separator_cannot_be_signed():
    with pytest.raises(ValueError, match='may not contain'):
        sign_trajectory(KEY, **{**TRAJECTORY, 'trajectory_id': 'a#b'})


def test_seen_signatures_are_bounded():
    seen = SeenSignatures(capacity=3)
    for name in 'abcd':
        seen.add(name)
    assert 'a' not in seen and all(name in seen for name in 'bcd')


def test_a_key_of_the_wrong_length_cannot_sign():
    with pytest.raises(CellKeyError):
        sign_verdict(b'short', **VERDICT)


# -- cell events ---------------------------------------------------------------------------------------
EVENT = {'event_id': '5b0c3f3e-1d2a-4a57-9d55-3f3c1b1b6a10', 'cell_id': 'cell_1', 'seq': 17, 'type': 'unit_complete',
         'stamp': 123.456789, 'order_id': 'PO-1', 'unit': 3, 'cycle_time_s': 0.1 + 0.2, 'good': True,
         'details': {'steps': ['pick', 'place'], 'scrap': None}, 'who': 'Zoë'}


def signed_event(event=EVENT, key=KEY):
    return {**event, 'auth': sign_event(key, event)}


def test_a_signed_event_verifies_after_a_json_round_trip():
    event = signed_event()
    # what the bridge gets: the journal's JSON text (sort_keys, default separators) parsed again
    assert verify_event(KEY, json.loads(json.dumps(event, sort_keys=True))) is None
    assert verify_event(KEY, event) is None


def test_the_signature_does_not_depend_on_key_order():
    assert sign_event(KEY, dict(reversed(list(EVENT.items())))) == sign_event(KEY, EVENT)


@pytest.mark.parametrize('field, value', [('seq', 18), ('type', 'state_change'), ('stamp', 123.45679),
                                          ('cell_id', 'cell_2'), ('unit', '3'), ('good', 1),
                                          ('details', {'steps': ['place', 'pick'], 'scrap': None}),
                                          ('extra', 'added')])
def test_changing_adding_or_retyping_any_event_field_breaks_the_signature(field, value):
    event = {**signed_event(), field: value}
    assert 'does not match' in verify_event(KEY, event)


def test_removing_an_event_field_breaks_the_signature():
    event = signed_event()
    del event['order_id']
    assert 'does not match' in verify_event(KEY, event)


@pytest.mark.parametrize('signature, words', [(None, 'not signed'), ('', 'not signed'), ('ab' * 31, 'malformed'),
                                              ('AB' * 32, 'malformed'), (12345, 'malformed')])
def test_an_unsigned_or_malformed_event_signature_is_named(signature, words):
    event = dict(EVENT) if signature is None else {**EVENT, 'auth': signature}
    reason = verify_event(KEY, event)
    assert words in reason and 'seq 17' in reason and 'unit_complete' in reason


def test_an_event_signed_with_another_key_is_refused():
    assert 'does not match' in verify_event(KEY, signed_event(key=OTHER_KEY))


def test_an_event_signature_is_not_a_verdict_or_trajectory_signature():
    empty_event: dict = {}
    verdict_signature = sign_verdict(KEY, stamp_ns=0, sequence=0, speed_scale=0.0, state='', motion='')
    assert verify_event(KEY, {**empty_event, 'auth': verdict_signature}) is not None
    assert verify_verdict(KEY, stamp_ns=0, sequence=0, speed_scale=0.0, state='', motion='',
                          signature=sign_event(KEY, empty_event)) is not None


def test_an_event_with_nan_cannot_be_signed_or_verified():
    with pytest.raises(ValueError):
        sign_event(KEY, {**EVENT, 'stamp': float('nan')})
    assert 'cannot be verified' in verify_event(KEY, {**EVENT, 'stamp': float('nan'), 'auth': 'ab' * 32})
