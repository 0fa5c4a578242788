"""Audit trail: the SHA-256 chain of production/safety records, its MACs and anchor, and `smartcell audit verify`.

Every tampering test works on a copy of a real outbox database (records stored by the Outbox, as the
MES bridge stores them) and checks both the finding and the exit status.
"""
import json
import shutil
import sqlite3

import pytest

from smartcell.core.mes.audit_trail import (AUDIT_KEY_PURPOSE, GENESIS_HASH, Anchor, FindingKind, anchor_path_for,
                                           derive_key, record_hash, seal, verify_chain)
from smartcell.core.safety.authority import load_or_create_cell_key
from smartcell.core.mes.records import Alarm, JobResponse, SafetyEvent, make_record, telemetry_record
from smartcell.io.outbox import Outbox, iter_audit_records
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


def make_key_file(path):
    """A cell key file as the cell creates it (32 random bytes, mode 0600)."""
    return load_or_create_cell_key(path)


@pytest.fixture
def keyed_db(tmp_path):
    """A real outbox database sealed with a cell key, closed (anchor at its head), and the key file."""
    key_file = tmp_path / 'cell.key'
    key = make_key_file(key_file)
    db = tmp_path / 'outbox.sqlite'
    box = Outbox(db, transports=['mqtt'], key=key)
    for i in range(10):
        box.append(make_record(JobResponse(order_id=f'O{i}', state='completed', produced=i), 'c', float(i),
                               source_id=f'e{i}'))
        box.append(make_record(SafetyEvent(kind='safety_stop', reason=f'person {i}'), 'c', float(i),
                               source_id=f's{i}'))
    box.close()
    return db, key_file, key


def chained_rows(db):
    con = sqlite3.connect(db)
    rows = con.execute('SELECT pos, json, mac FROM records WHERE chained = 1 ORDER BY pos').fetchall()
    con.close()
    return rows


def reseal_from(db, index, change, key=None):
    """Change chained record `index` and re-compute every hash after it, as a forger without the key would."""
    con = sqlite3.connect(db)
    rows = con.execute('SELECT pos, json FROM records WHERE chained = 1 ORDER BY pos').fetchall()
    prev = json.loads(rows[index - 1][1])['hash'] if index else GENESIS_HASH
    for number, (pos, text) in enumerate(rows[index:]):
        record = json.loads(text)
        if number == 0:
            change(record)
        record = seal(record, prev, key)
        mac = record.pop('mac', None)
        con.execute('UPDATE records SET json = ?, mac = coalesce(?, mac) WHERE pos = ?',
                    (json.dumps(record, sort_keys=True, separators=(',', ':')), mac, pos))
        prev = record['hash']
    con.commit()
    con.close()


def run(capsys, *argv):
    status = audit_main(['verify', *map(str, argv)])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_keyed_database_verifies_with_its_key(keyed_db, capsys):
    db, key_file, _ = keyed_db
    status, text = run(capsys, db, '--key-file', key_file)
    assert status == 0, text
    assert 'audit OK: 20 records' in text and 'MACs verified' in text and 'anchor matches' in text
    # the MAC is kept beside the record: the JSON sent to the MES carries no MAC
    assert all(mac and '"mac"' not in text_ for _, text_, mac in chained_rows(db))


def test_wrong_key_is_a_bad_mac(keyed_db, tmp_path, capsys):
    db, _, _ = keyed_db
    other = tmp_path / 'other.key'
    make_key_file(other)
    status, text = run(capsys, db, '--key-file', other)
    assert status == 1 and 'bad_mac at seq 1' in text


def test_resealed_chain_is_caught_by_the_mac_and_by_the_anchor(keyed_db, capsys):
    db, key_file, _ = keyed_db
    reseal_from(db, 5, lambda r: r['body'].update(reason='nobody'))      # a stop rewritten as harmless
    assert verify_chain(iter_audit_records(db)).ok       # the hash chain alone holds after re-sealing
    status, text = run(capsys, db, '--key-file', key_file)
    assert status == 1 and 'bad_mac at seq 6' in text
    # without the key the anchor still names the old head: the re-sealed chain does not end there
    status, text = run(capsys, db)
    assert status == 1 and 'anchor_mismatch at seq 20' in text


def test_resealed_chain_and_forged_anchor_are_caught_with_the_key(keyed_db, capsys):
    db, key_file, _ = keyed_db
    reseal_from(db, 0, lambda r: r['body'].update(produced=99))
    head = json.loads(chained_rows(db)[-1][1])['hash']
    from smartcell.core.mes.audit_trail import write_anchor
    write_anchor(anchor_path_for(db), Anchor(20, head))           # no key: no valid anchor MAC either
    status, text = run(capsys, db)
    assert status == 0            # without the key a complete forgery holds: that is what the key is for
    assert 'no --key-file' in text
    status, text = run(capsys, db, '--key-file', key_file)
    assert status == 1 and 'bad_mac at seq 1' in text and 'anchor_mismatch' in text


def test_deleted_tail_is_caught_by_the_anchor(keyed_db, capsys):
    db, key_file, _ = keyed_db
    con = sqlite3.connect(db)
    con.execute('DELETE FROM records WHERE pos IN (SELECT pos FROM records WHERE chained = 1 '
                'ORDER BY pos DESC LIMIT 3)')
    con.commit()
    con.close()
    status, text = run(capsys, db, '--key-file', key_file)
    assert status == 1 and 'tail_missing' in text and 'after seq 17' in text


def test_deleted_middle_and_swapped_records_break_links(keyed_db, tmp_path, capsys):
    db, key_file, _ = keyed_db
    copy = tmp_path / 'copy.sqlite'
    shutil.copyfile(db, copy)
    shutil.copyfile(anchor_path_for(db), anchor_path_for(copy))
    con = sqlite3.connect(db)
    pos = [row[0] for row in con.execute('SELECT pos FROM records WHERE chained = 1 ORDER BY pos')]
    con.execute('DELETE FROM records WHERE pos = ?', (pos[8],))
    con.commit()
    con.close()
    status, text = run(capsys, db, '--key-file', key_file)
    assert status == 1 and 'broken_link at seq 9' in text and 'tail_missing' in text
    con = sqlite3.connect(copy)
    (a, ja), (b, jb) = con.execute('SELECT pos, json FROM records WHERE chained = 1 ORDER BY pos LIMIT 2').fetchall()
    con.execute('UPDATE records SET json = ? WHERE pos = ?', (jb, a))
    con.execute('UPDATE records SET json = ? WHERE pos = ?', (ja, b))
    con.commit()
    con.close()
    status, text = run(capsys, copy, '--no-anchor')
    assert status == 1 and 'broken_link at seq 1' in text


def test_empty_database_is_not_ok(tmp_path, capsys):
    db = tmp_path / 'empty.sqlite'
    Outbox(db, transports=['mqtt']).close()
    status, text = run(capsys, db)
    assert status == 1 and 'empty' in text and 'audit OK' not in text
    status, text = run(capsys, db, '--no-anchor')
    assert status == 1 and 'empty' in text


def test_emptied_database_is_a_deleted_tail(keyed_db, capsys):
    db, key_file, _ = keyed_db
    con = sqlite3.connect(db)
    con.execute('DELETE FROM records')
    con.commit()
    con.close()
    status, text = run(capsys, db, '--key-file', key_file)
    assert status == 1 and 'empty' in text and 'tail_missing' in text


def test_missing_or_damaged_anchor_is_a_finding(keyed_db, capsys):
    db, key_file, _ = keyed_db
    anchor_path_for(db).write_text('{"seq": "garbage"')
    status, text = run(capsys, db, '--key-file', key_file)
    assert status == 1 and 'anchor_missing' in text
    anchor_path_for(db).unlink()
    status, text = run(capsys, db, '--key-file', key_file)
    assert status == 1 and 'anchor_missing' in text and 'no anchor file' in text
    status, text = run(capsys, db, '--key-file', key_file, '--no-anchor')
    assert status == 0 and 'newest records cannot be detected' in text     # OK, with a warning


@pytest.mark.parametrize('content', [
    b'\x89PNG\r\n\x1a\n' + bytes(range(256)),               # binary
    b'hello, this is a text file\nnot records\n',           # text
    b'{"record_id": "x"\n',                                  # broken JSON
    b'{"record_id": "x", "stream": "unit"}\n',               # JSON records without a chain
    b'SQLite format 3\x00' + b'\x00' * 200,                   # SQLite magic, damaged file
])
def test_a_file_that_is_not_an_audit_chain_says_so_with_exit_2(tmp_path, capsys, content):
    path = tmp_path / 'file.bin'
    path.write_bytes(content)
    status, text = run(capsys, path)
    assert status == 2 and 'is not an audit chain' in text and 'FAILED' not in text


def test_sqlite_without_the_records_table_is_not_an_audit_chain(tmp_path, capsys):
    db = tmp_path / 'other.sqlite'
    con = sqlite3.connect(db)
    con.execute('CREATE TABLE measurements (t REAL, v REAL)')
    con.commit()
    con.close()
    status, text = run(capsys, db)
    assert status == 2 and 'SQLite database without the outbox records table' in text


def test_missing_file_and_bad_key_file_exit_2(tmp_path, capsys, keyed_db):
    db, _, _ = keyed_db
    assert run(capsys, tmp_path / 'missing.sqlite')[0] == 2
    status, text = run(capsys, db, '--key-file', tmp_path / 'no.key')
    assert status == 2 and 'key file' in text
    assert audit_main(['verify']) == 2                    # usage error


def test_verify_chain_mac_and_anchor_in_core():
    key = derive_key(b'k' * 32, AUDIT_KEY_PURPOSE)
    records, prev = [], GENESIS_HASH
    for i in range(4):
        records.append(seal({'record_id': str(i), 'n': i}, prev, key))
        prev = records[-1]['hash']
    anchor = Anchor.make(4, prev, key)
    result = verify_chain(records, key, anchor, require_anchor=True)
    assert result.ok and result.mac_checked and result.keyed and result.anchor_checked
    assert verify_chain([], key, None).findings[0].kind is FindingKind.EMPTY
    unkeyed = [seal({k: v for k, v in r.items() if k != 'mac'}, r['prev_hash']) for r in records]
    assert [f.kind for f in verify_chain(unkeyed, key).findings] == [FindingKind.BAD_MAC] * 4
    forged = Anchor(4, prev, 'f' * 64)
    assert verify_chain(records, key, forged).findings[0].kind is FindingKind.ANCHOR_MISMATCH
    assert verify_chain(records[:3], key, anchor).findings[0].kind is FindingKind.TAIL_MISSING


def test_records_stored_with_nan_before_strict_json_still_verify():
    legacy = seal({'record_id': 'old', 'body': {'cycle_time_s': float('nan')}}, GENESIS_HASH)
    assert verify_chain([legacy]).ok


def test_a_safety_evidence_log_is_pointed_to_safety_report(tmp_path, capsys):
    from smartcell.core.safety.evidence import EvidenceWriter
    path = tmp_path / 'evidence.jsonl'
    with EvidenceWriter(path) as writer:
        writer.write({'kind': 'cycle', 'stamp_s': 0.0})
    status, text = run(capsys, path)
    assert status == 2 and 'a safety evidence log' in text and 'safety-report' in text
