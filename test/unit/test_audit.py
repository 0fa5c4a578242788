"""Audit trail: the SHA-256 chain of production/safety records and the `smartcell audit verify` tool."""
import sqlite3

import pytest

from smartcell.core.audit import GENESIS_HASH, record_hash, seal, verify_chain
from smartcell.core.mes import Alarm, JobResponse, SafetyEvent, make_record, telemetry_record
from smartcell.io.outbox import Outbox
from smartcell.tools.audit import main as audit_main


def chain(n):
    records, prev = [], GENESIS_HASH
    for i in range(n):
        sealed = seal(make_record(Alarm(code=f'A{i}', severity='info', text='t'), 'c', float(i)).to_dict(), prev)
        records.append(sealed)
        prev = sealed['hash']
    return records


def test_intact_chain_verifies():
    result = verify_chain(chain(5))
    assert result.ok and result.checked == 5


@pytest.mark.parametrize('index', [0, 2, 4])
def test_changed_record_is_named(index):
    records = chain(5)
    records[index]['body']['text'] = 'tampered'
    result = verify_chain(records)
    assert not result.ok and result.first_bad_index == index
    assert result.first_bad_id == records[index]['record_id']


def test_removed_and_reordered_records_break_the_chain():
    records = chain(5)
    assert verify_chain(records[:2] + records[3:]).first_bad_index == 2
    assert verify_chain([records[1], records[0]] + records[2:]).first_bad_index == 0
    # re-hashing a tampered record does not help: the next one's prev_hash no longer matches
    records[1]['body']['text'] = 'x'
    records[1]['hash'] = record_hash(records[1])
    assert verify_chain(records).first_bad_index == 2


def fill_outbox(path, n=30):
    box = Outbox(path, transports=['mqtt'])
    for i in range(n):
        box.append(make_record(JobResponse(order_id=f'O{i}', state='completed', produced=i), 'c', float(i),
                               source_id=f'e{i}'))
        box.append(telemetry_record('c', float(i), 'AxisPositions', {'q_rad': [0.1 * i] * 6}))
        box.append(make_record(SafetyEvent(kind='slowdown', duration_s=1.0), 'c', float(i), source_id=f's{i}'))
    box.close()


def test_tool_on_database_and_on_export_with_one_flipped_byte(tmp_path, capsys):
    db = tmp_path / 'outbox.sqlite'
    fill_outbox(db)
    assert audit_main(['verify', str(db)]) == 0
    assert 'audit OK: 60 records' in capsys.readouterr().out
    export = tmp_path / 'trail.jsonl'
    assert audit_main(['export', str(db), str(export)]) == 0
    assert audit_main(['verify', str(export)]) == 0
    lines = export.read_bytes().splitlines(keepends=True)
    target = 16      # a JobResponse line (records alternate JobResponse, SafetyEvent)
    line = bytearray(lines[target])
    offset = line.index(b'"produced":') + len(b'"produced":')     # a digit: still valid JSON after the flip
    line[offset] ^= 0x01
    lines[target] = bytes(line)
    export.write_bytes(b''.join(lines))
    capsys.readouterr()
    assert audit_main(['verify', str(export)]) == 1
    err = capsys.readouterr().err
    assert f'FAILED at record {target}' in err


def test_tool_on_tampered_database(tmp_path, capsys):
    db = tmp_path / 'outbox.sqlite'
    fill_outbox(db, n=10)
    con = sqlite3.connect(db)
    pos, text = con.execute('SELECT pos, json FROM records WHERE chained = 1 ORDER BY pos LIMIT 1 OFFSET 7').fetchone()
    con.execute('UPDATE records SET json = ? WHERE pos = ?', (text.replace('"cell_id":"c"', '"cell_id":"d"'),
                                                               pos))
    con.commit()
    con.close()
    assert audit_main(['verify', str(db)]) == 1
    assert 'FAILED at record 7' in capsys.readouterr().err


def test_tool_unreadable_file_exits_2(tmp_path):
    assert audit_main(['verify', str(tmp_path / 'missing.jsonl')]) == 2
    garbage = tmp_path / 'bad.jsonl'
    garbage.write_text('{"record_id": "x"\n')
    assert audit_main(['verify', str(garbage)]) == 1
