"""The MES bridge's event gate: only the supervisor's signed events, each seq once."""
from __future__ import annotations

import json

import pytest

from smartcell.core.mes.event_gate import EventGate
from smartcell.core.safety.authority import sign_event

KEY = bytes(range(32))


def event(seq, key=KEY, **fields):
    body = {'event_id': f'e-{seq}', 'cell_id': 'cell-1', 'seq': seq, 'type': 'alarm', 'stamp': 1.5, 'code': 'A',
            **fields}
    return {**body, 'auth': sign_event(key, body)}


def test_signed_events_pass_and_verbatim_replay_topic_repeats_are_left_to_the_sequencer():
    gate = EventGate(KEY)
    assert gate.check(event(1), live=True, last_handled_seq=0) is None
    # the supervisor's replay overlaps: same bytes, same signature -> not a refusal (the sequencer drops it)
    assert gate.check(json.loads(json.dumps(event(1))), live=False, last_handled_seq=1) is None
    assert gate.refused == 0


@pytest.mark.parametrize('forged, kind', [
    ({k: v for k, v in event(1).items() if k != 'auth'}, 'unsigned'),
    ({**event(1), 'auth': ''}, 'unsigned'),
    ({**event(1), 'auth': 'zz' * 32}, 'unsigned'),
    (event(1, key=bytes(32)), 'bad_signature'),
    ({**event(1), 'code': 'CHANGED'}, 'bad_signature'),
    ({**event(1), 'seq': 2}, 'bad_signature'),
])
def test_unsigned_and_wrongly_signed_events_are_refused_by_kind(forged, kind):
    gate = EventGate(KEY)
    refusal = gate.check(forged, live=True, last_handled_seq=0)
    assert refusal is not None and refusal.kind == kind and 'seq' in refusal.reason
    assert gate.counts[kind] == 1 and gate.last == refusal


def test_a_handled_seq_on_the_live_topic_is_a_replay():
    gate = EventGate(KEY)
    assert gate.check(event(1), live=True, last_handled_seq=0) is None
    refusal = gate.check(event(1), live=True, last_handled_seq=1)
    assert refusal is not None and refusal.kind == 'replayed'
    # older than the gate remembers (e.g. sealed before a restart): the sequencer's last seq decides
    assert EventGate(KEY).check(event(3), live=True, last_handled_seq=7).kind == 'replayed'


def test_the_live_copy_after_its_replayed_copy_is_not_a_replay_but_a_second_live_copy_is():
    gate = EventGate(KEY)
    assert gate.check(event(1), live=False, last_handled_seq=0) is None      # the replay delivered first
    assert gate.check(event(1), live=True, last_handled_seq=1) is None       # then the (first) live copy
    assert gate.check(event(1), live=True, last_handled_seq=1).kind == 'replayed'
    assert gate.check(event(1), live=False, last_handled_seq=1) is None      # the replay topic may repeat


def test_a_handled_seq_with_another_signature_is_a_replay_on_either_topic():
    gate = EventGate(KEY)
    assert gate.check(event(5), live=False, last_handled_seq=0) is None
    other = event(5, code='B')          # validly signed, another event with the same seq (another journal)
    assert gate.check(other, live=False, last_handled_seq=5).kind == 'replayed'


def test_malformed_messages_are_counted():
    gate = EventGate(KEY)
    gate.malformed('not JSON')
    assert gate.counts['malformed'] == 1 and gate.refused == 1


def test_remembered_signatures_are_bounded():
    gate = EventGate(KEY, capacity=2)
    for seq in (1, 2, 3):
        assert gate.check(event(seq), live=False, last_handled_seq=0) is None
    assert len(gate._seen) == 2
