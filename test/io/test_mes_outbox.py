"""Outbox on disk (SQLite WAL): sequence numbers, idempotent append, bounded size policy, dispatcher backoff."""
import sqlite3
import threading
import time

import pytest

from smartcell.core.mes.records import EquipmentState, JobResponse, SafetyEvent, make_record, telemetry_record
from smartcell.io.outbox import Dispatcher, Outbox, OutboxConfig, TransportDown, backoff_delay_s


def production(i):
    return make_record(JobResponse(order_id=f'O{i}', state='running', produced=i), 'c', float(i), source_id=f'p{i}')


def safety(i):
    return make_record(SafetyEvent(kind='safety_stop', reason=str(i)), 'c', float(i), source_id=f's{i}')


def telemetry(i):
    return telemetry_record('c', float(i), 'AxisPositions', {'i': i})


def test_wal_sequences_and_idempotent_append(tmp_path):
    box = Outbox(tmp_path / 'o.sqlite', ['mqtt', 'opcua'])
    assert sqlite3.connect(tmp_path / 'o.sqlite').execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
    stored = [box.append(r).record for r in (production(0), safety(0), production(1), telemetry(0))]
    assert [(r.stream, r.seq) for r in stored] == [('job_response', 1), ('safety', 1), ('job_response', 2),
                                                    ('telemetry', 1)]
    assert stored[1].prev_hash == stored[0].hash and stored[2].prev_hash == stored[1].hash
    assert stored[3].hash == ''   # telemetry is not chained
    again = box.append(production(1))
    assert again.duplicate and again.record == stored[2]
    assert box.backlog('mqtt') == 4 and box.backlog('opcua') == 4
    box.close()
    reopened = Outbox(tmp_path / 'o.sqlite', ['mqtt', 'opcua'])
    assert reopened.append(production(1)).duplicate
    nxt = reopened.append(production(2)).record
    assert nxt.seq == 3 and nxt.prev_hash == stored[2].hash
    assert reopened.backlog() == 5


def test_ack_moves_cursor_and_prunes_delivered_telemetry_only(tmp_path):
    box = Outbox(tmp_path / 'o.sqlite', ['a', 'b'])
    box.append_many([production(0), telemetry(0), safety(0), telemetry(1)])
    items = box.pending('a')
    assert [i.seq for i in items] == [1, 1, 1, 2]
    box.ack('a', items[-1].pos)
    assert box.backlog('a') == 0 and box.backlog('b') == 4
    assert box.pending('a') == []
    box.ack('b', items[1].pos)
    assert box.backlog('b') == 2
    rows = sqlite3.connect(tmp_path / 'o.sqlite').execute('SELECT stream FROM records ORDER BY pos').fetchall()
    assert [r[0] for r in rows] == ['job_response', 'safety', 'telemetry']   # telemetry 0 delivered to both: gone


def test_capacity_drops_oldest_telemetry_never_production_or_safety(tmp_path):
    box = Outbox(tmp_path / 'o.sqlite', ['mqtt'], OutboxConfig(capacity_records=4))
    box.append_many([telemetry(0), production(0), telemetry(1), safety(0)])
    assert box.fill_fraction() == 1.0
    result = box.append(telemetry(2))                 # full: oldest telemetry (0) makes room
    assert result.dropped_telemetry == 1 and result.record is not None
    assert [i.record().body.get('i') for i in box.pending('mqtt') if i.stream == 'telemetry'] == [1, 2]
    for i in range(1, 4):                              # production and safety are always taken
        assert box.append(production(i)).record is not None
    assert box.append(safety(1)).record is not None
    assert box.backlog() == 8 and box.fill_fraction() == 2.0
    for i in (3, 4, 5):                                # each new sample replaces the oldest one
        assert box.append(telemetry(i)).dropped_telemetry == 1
    assert [i.record().body.get('i') for i in box.pending('mqtt') if i.stream == 'telemetry'] == [4, 5]
    streams = [i.stream for i in box.pending('mqtt')]
    assert streams.count('job_response') == 4 and streams.count('safety') == 2


def test_full_of_production_refuses_new_telemetry(tmp_path):
    box = Outbox(tmp_path / 'o.sqlite', ['mqtt'], OutboxConfig(capacity_records=2))
    box.append_many([production(0), safety(0)])
    refused = box.append(telemetry(0))                 # nothing droppable: the sample is refused
    assert refused.refused and refused.record is None
    assert box.backlog() == 2


@pytest.mark.parametrize('failures,expected', [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (50, 30.0)])
def test_backoff_doubles_up_to_the_ceiling(failures, expected):
    assert backoff_delay_s(failures, 0.5, 30.0) == expected


class FlakyTransport:
    """In-memory transport: down while `down` is set, acknowledges at most `max_ack` per call."""

    name = 'mqtt'

    def __init__(self):
        self.down = threading.Event()
        self.received = []
        self.max_ack = None

    def send(self, items):
        if self.down.is_set():
            raise TransportDown('MES unreachable (test)')
        take = items if self.max_ack is None else items[:self.max_ack]
        self.received.extend(i.record_id for i in take)
        return len(take)


def poll(condition, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_dispatcher_backs_off_while_down_then_delivers_all_in_order(tmp_path):
    box = Outbox(tmp_path / 'o.sqlite', ['mqtt'], OutboxConfig(backoff_initial_s=0.01, backoff_max_s=0.05,
                                                                batch_size=50))
    transport = FlakyTransport()
    dispatcher = Dispatcher(box, [transport])
    box.on_append = dispatcher.wake
    dispatcher.start()
    try:
        transport.down.set()
        records = [make_record(EquipmentState(state=str(i)), 'c', float(i), source_id=f'e{i}') for i in range(500)]
        box.append_many(records[:250])
        assert poll(lambda: dispatcher.links['mqtt'].failures >= 3)
        assert not dispatcher.links['mqtt'].up and 'unreachable' in dispatcher.links['mqtt'].last_error
        box.append_many(records[250:])
        transport.max_ack = 7                            # partial acknowledgements are retried from the gap
        transport.down.clear()
        assert poll(lambda: box.backlog('mqtt') == 0)
        assert transport.received == [r.record_id for r in records]
        assert dispatcher.links['mqtt'].delivered == 500
    finally:
        dispatcher.stop()


def test_dispatcher_rejects_transport_without_cursor(tmp_path):
    box = Outbox(tmp_path / 'o.sqlite', ['opcua'])
    with pytest.raises(ValueError, match='no cursor'):
        Dispatcher(box, [FlakyTransport()])


# ---------------------------------------------------------------- sealing: MAC, anchor, strict JSON

def test_keyed_outbox_keeps_macs_beside_records_and_verifies(tmp_path):
    from smartcell.core.mes.audit_trail import AUDIT_KEY_PURPOSE, derive_key, read_anchor, anchor_path_for, verify_chain
    from smartcell.core.safety.authority import load_or_create_cell_key
    from smartcell.io.outbox import iter_audit_records
    key = load_or_create_cell_key(tmp_path / 'cell.key')
    box = Outbox(tmp_path / 'o.sqlite', ['mqtt'], key=key)
    box.append_many([production(0), telemetry(0), safety(0)])
    sent = [item.json for item in box.pending('mqtt')]
    assert all('"mac"' not in text for text in sent)          # consumers get the record as before
    box.close()
    records = list(iter_audit_records(tmp_path / 'o.sqlite'))
    assert len(records) == 2 and all(len(r['mac']) == 64 for r in records)
    anchor = read_anchor(anchor_path_for(tmp_path / 'o.sqlite'))
    assert (anchor.seq, anchor.hash) == (2, records[-1]['hash'])
    audit_key = derive_key(key, AUDIT_KEY_PURPOSE)
    assert verify_chain(records, audit_key, anchor, require_anchor=True).ok
    assert not verify_chain(records, derive_key(b'x' * 32, AUDIT_KEY_PURPOSE)).ok


def test_anchor_is_written_at_open_every_n_chained_records_and_at_close(tmp_path):
    from smartcell.core.mes.audit_trail import anchor_path_for, read_anchor
    path = tmp_path / 'o.sqlite'
    box = Outbox(path, ['mqtt'], OutboxConfig(anchor_every_records=5))
    assert read_anchor(anchor_path_for(path)).seq == 0
    box.append_many([production(i) for i in range(4)] + [telemetry(i) for i in range(10)])
    assert read_anchor(anchor_path_for(path)).seq == 0      # telemetry is not chained
    box.append(safety(0))
    assert read_anchor(anchor_path_for(path)).seq == 5
    box.append(safety(1))
    box.close()
    assert read_anchor(anchor_path_for(path)).seq == 6


def test_non_finite_numbers_are_stored_as_null(tmp_path):
    import json
    box = Outbox(tmp_path / 'o.sqlite', ['mqtt'])
    stored = box.append(make_record(JobResponse(order_id='O', state='completed', mean_cycle_time_s=float('nan'),
                                                energy_j=float('inf')), 'c', 1.0, source_id='n')).record
    assert stored.body['mean_cycle_time_s'] is None and stored.body['energy_j'] is None
    text = box.pending('mqtt')[0].json
    json.loads(text, parse_constant=lambda token: pytest.fail(f'non-standard JSON token {token}'))


def test_store_written_before_macs_is_upgraded_in_place(tmp_path):
    path = tmp_path / 'old.sqlite'
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE records (pos INTEGER PRIMARY KEY AUTOINCREMENT, record_id TEXT NOT NULL UNIQUE,
            stream TEXT NOT NULL, seq INTEGER NOT NULL, chained INTEGER NOT NULL, json TEXT NOT NULL);
        CREATE TABLE streams (stream TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
        CREATE TABLE cursors (transport TEXT PRIMARY KEY, delivered_pos INTEGER NOT NULL);
    """)
    con.close()
    box = Outbox(path, ['mqtt'], key=b'k' * 32)
    assert box.append(production(0)).record.seq == 1
    box.close()
    assert sqlite3.connect(path).execute('SELECT mac FROM records').fetchone()[0]
