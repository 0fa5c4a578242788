"""The shift report from a run directory made here with the real writers (evidence log, event journal, outbox)."""
from __future__ import annotations

import json
import math
import re
import sqlite3
from pathlib import Path

import pytest

from smartcell.core.mes.oee import compute_oee
from smartcell.core.safety.evidence import EvidenceWriter
from smartcell.io.event_journal import EventJournal
from smartcell.tools.report import (ReportError, cause_of, energy_per_part, load_run, main, oee_events, render,
                                    stops, write_report)

END_S = 60.0
STOP_AT_S, RESUME_AT_S = 20.0, 26.5


def cycle(stamp_s: float, separation_m: float, sp_m: float, scale: float) -> dict:
    return {'kind': 'cycle', 'stamp_s': stamp_s, 'mode': 'automatic', 'state': 'normal', 'zone': 'clear',
            'separation_m': separation_m, 'protective_separation_m': sp_m, 'margin_m': separation_m - sp_m,
            'speed_scale': scale, 'applied_scale': scale, 'target_scale': scale, 'reason': ''}


def make_run(run_dir: Path, outbox: bool = True, journal: bool = True) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / 'kpis.json').write_text(json.dumps({'units_completed': 2, 'sim_time_s': END_S, 'protective_stops': 1,
                                                   'min_separation_m': 0.41, 'min_person_robot_distance_m': math.inf}))
    writer = EvidenceWriter(run_dir / 'safety_evidence.jsonl')
    for tick in range(600):
        t = tick * 0.1
        separation = math.inf if t < 10 else 3.0 - 0.1 * (t - 10) if t < STOP_AT_S else 2.0
        scale = 0.0 if STOP_AT_S <= t < RESUME_AT_S else 1.0
        writer.write(cycle(t, separation, 0.9 if math.isfinite(separation) else math.nan, scale))
        if t == STOP_AT_S:
            writer.write({'kind': 'event', 'event': 'stop', 'stamp_s': t, 'state': 'protective_stop',
                          'zone': 'protective', 'speed_scale': 0.0, 'reason': 'person 0 at 0.41 m, inside 0.6 m',
                          'details': {}})
        if t == RESUME_AT_S:
            writer.write({'kind': 'event', 'event': 'resume', 'stamp_s': t, 'state': 'reduced', 'zone': 'clear',
                          'speed_scale': 0.1, 'reason': 'ramping up', 'details': {}})
    writer.write({'kind': 'event', 'event': 'stop', 'stamp_s': 55.0, 'state': 'protective_stop',
                  'zone': 'protective', 'speed_scale': 0.0, 'reason': 'person 1 at 0.2 m, inside 0.6 m', 'details': {}})
    writer.close()
    events = [{'type': 'state_change', 'stamp': 0.0, 'to': 'running', 'reason': 'start'},
              {'type': 'state_change', 'stamp': STOP_AT_S, 'to': 'protective_stop', 'reason': 'person 0 at 0.41 m'},
              {'type': 'state_change', 'stamp': RESUME_AT_S, 'to': 'running', 'reason': 'clear'},
              {'type': 'unit_complete', 'stamp': 30.0, 'good': True, 'order_id': ''},
              {'type': 'unit_complete', 'stamp': 50.0, 'good': False, 'order_id': ''}]
    if journal:
        store = EventJournal(run_dir / 'cell_events.sqlite')
        store.append([{**event, 'seq': index} for index, event in enumerate(events, start=1)])
        store.close()
    if outbox:
        with sqlite3.connect(run_dir / 'mes_outbox.sqlite') as db:
            db.execute('CREATE TABLE records (pos INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL)')
            for record in (
                    {'kind': 'EquipmentState', 'stamp_s': 0.0, 'body': {'state': 'running', 'reason': 'start'}},
                    {'kind': 'EquipmentState', 'stamp_s': STOP_AT_S, 'body': {'state': 'protective_stop',
                                                                              'reason': 'person 0 at 0.41 m'}},
                    {'kind': 'EquipmentState', 'stamp_s': RESUME_AT_S, 'body': {'state': 'running', 'reason': 'clear'}},
                    {'kind': 'EquipmentState', 'stamp_s': 40.0, 'body': {'mode': 'collaborative', 'state': ''}},
                    {'kind': 'UnitRecord', 'stamp_s': 30.0, 'body': {'unit': 0, 'good': True, 'energy_j': 2400.0,
                                                                     'cycle_time_s': 30.0}},
                    {'kind': 'UnitRecord', 'stamp_s': 50.0, 'body': {'unit': 1, 'good': False, 'energy_j': None,
                                                                     'cycle_time_s': 20.0}}):
                db.execute('INSERT INTO records (json) VALUES (?)', (json.dumps(record),))
    (run_dir / 'supervisor.log').write_text('[INFO] [1.0] [supervisor]: up\n[WARN] [2.0] [supervisor]: late step\n')
    return run_dir


def test_stops_carry_their_cause_and_duration(tmp_path):
    data = load_run(make_run(tmp_path / 'run'))
    found = stops(data.events)
    assert [(s.stamp_s, s.kind) for s in found] == [(STOP_AT_S, 'stop'), (55.0, 'stop')]
    assert found[0].duration_s == pytest.approx(RESUME_AT_S - STOP_AT_S)
    assert found[1].duration_s is None                      # still stopped when the run ended
    assert cause_of(found[0].reason) == cause_of(found[1].reason) == 'person # at # m, inside # m'


def test_outbox_records_become_the_events_oee_reads(tmp_path):
    data = load_run(make_run(tmp_path / 'run'))
    from_outbox = compute_oee(oee_events(data.outbox), 0.0, END_S, 10.0)
    from_journal = compute_oee(data.journal, 0.0, END_S, 10.0)
    assert from_outbox == from_journal
    assert from_journal.losses.safety_stop_s == pytest.approx(RESUME_AT_S - STOP_AT_S)
    assert (from_journal.units, from_journal.good) == (2, 1)
    assert energy_per_part(data.outbox) == [(0, 2400.0, 30.0), (1, None, 20.0)]


def test_report_is_one_self_contained_file_with_every_section(tmp_path):
    run = make_run(tmp_path / 'run')
    assert main([str(run), '--ideal-cycle-s', '10']) == 0
    text = (run / 'report.html').read_text()
    for section in ('kpis', 'separation', 'stops', 'oee', 'energy', 'vibration', 'logs'):
        assert f'id="{section}"' in text
    assert text.count('<svg') == 3                          # separation+speed, OEE waterfall, energy per part
    # nothing is fetched: no script, no external source or stylesheet (SVG namespaces are not fetched)
    assert '<script' not in text
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text)
    oee = compute_oee(load_run(run).journal, 0.0, END_S, 10.0)
    assert f'OEE {oee.oee:.0%}' in text
    assert 'hash chain and anchor intact' in text
    assert 'not measured' in text                                   # the unit without an energy value
    assert '1 of 2 units measured, mean 2.40 kJ per part' in text
    assert 'late step' in text                                      # node log warnings are listed
    assert 'nobody came' in text                                    # inf distance, not "inf m"
    assert 'record' in text and 'vibration/health' in text          # why vibration health is missing


def test_missing_sources_are_sentences_and_a_tampered_log_is_named(tmp_path):
    run = make_run(tmp_path / 'run', outbox=False, journal=False)
    lines = (run / 'safety_evidence.jsonl').read_text().splitlines()
    lines[5] = lines[5].replace('"separation_m":"inf"', '"separation_m":9.0')
    (run / 'safety_evidence.jsonl').write_text('\n'.join(lines) + '\n')
    text = write_report(run).read_text()
    assert 'Neither an event journal nor a MES outbox' in text
    assert 'No unit records' in text
    assert 'NOT INTACT' in text


def test_an_unreadable_run_directory_is_refused(tmp_path, capsys):
    assert main([str(tmp_path / 'nothing')]) == 2
    assert 'run directory not found' in capsys.readouterr().err
    (tmp_path / 'run').mkdir()
    with pytest.raises(ReportError, match='kpis.json'):
        load_run(tmp_path / 'run')
    (tmp_path / 'run' / 'kpis.json').write_text('{}')
    with pytest.raises(ReportError, match='evidence log not found'):
        load_run(tmp_path / 'run')


def test_render_needs_no_outbox_for_the_safety_part(tmp_path):
    data = load_run(make_run(tmp_path / 'run', outbox=False))
    text = render(data, 10.0)
    assert text.count('<svg') == 2                          # separation+speed and the OEE waterfall (journal)


def test_margins_below_sp_are_told_apart_by_what_the_arm_was_allowed_to_do():
    from smartcell.tools.report import margin_sentence
    moving = cycle(1.0, 1.5, 1.0, 1.0)                                       # +0.5 m at full speed
    reacting = {**cycle(2.0, 0.4, 1.0, 0.0), 'applied_scale': 0.6}          # stop commanded, arm still slowing
    handover = {**cycle(3.0, 0.3, 1.0, 0.2), 'mode': 'collaborative'}       # PFL, not SSM
    text = margin_sentence([moving, reacting, handover])
    assert '<b>0.500 m</b>' in text and 'below zero' not in text
    assert '1 cycle(s) closer than S_p with the stop already commanded' in text
    assert '1 cycle(s) closer than S_p in collaborative mode' in text
    assert 'below zero' in margin_sentence([cycle(1.0, 0.8, 1.0, 0.5)])     # a real violation is named


def test_oee_window_is_the_job_when_there_is_one():
    from smartcell.tools.report import oee_window
    assert oee_window([{'type': 'job_started', 'stamp': 2.0}, {'type': 'job_complete', 'stamp': 40.0}], 60.0)[:2] \
        == (2.0, 40.0)
    assert oee_window([{'type': 'job_started', 'stamp': 2.0}], 60.0)[:2] == (0.0, 60.0)
