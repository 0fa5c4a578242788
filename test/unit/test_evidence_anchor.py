"""The evidence log's head off the machine: controller event -> MES `anchor` record -> safety-report check."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from smartcell.core.cell.controller import CellController, JointSample
from smartcell.core.mes.audit_trail import anchor_path_for, read_anchor
from smartcell.core.mes.records import EvidenceAnchor, JobTracker, Stream, is_chained, records_from_event
from smartcell.core.node_params import SUPERVISOR
from smartcell.core.safety.monitor import PeopleObservation
from smartcell.core.tasks.recipe import load_recipe
from smartcell.tools.safety_report import main as safety_report

CONFIG = Path(__file__).resolve().parents[2] / 'config'
HOME = np.array([0.0, -1.571, 1.571, -1.571, -1.571, 0.0])


def controller(evidence_log: str) -> CellController:
    params = {**SUPERVISOR.defaults(), 'robot_base_xyz_yaw': [0.0, 0.0, 0.75, 0.0], 'lockstep': True,
              'evidence_log': evidence_log}
    return CellController.from_params(params, CONFIG / 'stopping.yaml', CONFIG / 'body_regions.yaml',
                                      CONFIG / 'motions.yaml', lambda job: load_recipe(CONFIG / f'{job}.yaml'))


def run(cell: CellController, cycles: int, start_s: float = 0.0) -> float:
    t = start_s
    for _ in range(cycles):
        t += 1.0 / 30.0
        cell.on_cycle(PeopleObservation(t, 'world', np.array([[4.0, 3.0, 0.0]])),
                      JointSample(t, HOME.copy(), np.zeros(6)), t)
    return t


def test_the_anchor_event_names_the_synced_head_and_becomes_a_chained_anchor_record(tmp_path):
    log = tmp_path / 'evidence.jsonl'
    cell = controller(str(log))
    t = run(cell, 20)
    output = cell.evidence_anchor(t)
    [event] = [e for e in output.events if e.type == 'evidence_anchor']
    last = json.loads(log.read_text().splitlines()[-1])
    assert (event.fields['evidence_seq'], event.fields['evidence_hash']) == (last['seq'], last['hash'])
    local = read_anchor(anchor_path_for(log))              # anchored now, not only every 100 records
    assert (local.seq, local.hash) == (last['seq'], last['hash'])

    [record] = records_from_event(event.as_record('cell-1', 'e-1'), 'cell-1', JobTracker())
    assert record.stream == Stream.ANCHOR.value == 'anchor' and is_chained(record.stream)
    assert record.kind == EvidenceAnchor.__name__
    assert record.body == {'evidence_seq': last['seq'], 'evidence_hash': last['hash']}

    # the auditor's check: intact now; cut after more cycles -> fails against the anchor sent before
    run(cell, 300, t)
    cell.close()
    anchor_args = ['--anchor-seq', str(record.body['evidence_seq']), '--anchor-hash', record.body['evidence_hash']]
    assert safety_report([str(log), *anchor_args]) == 0
    lines = log.read_text().splitlines(keepends=True)
    log.write_text(''.join(lines[:last['seq'] - 5]))
    anchor_path_for(log).unlink()                          # the local anchor rewritten too
    assert safety_report([str(log), '--no-anchor']) == 0
    assert safety_report([str(log), '--no-anchor', *anchor_args]) == 1


def test_no_evidence_log_no_anchor_event():
    cell = controller('')
    t = run(cell, 3)
    assert not [e for e in cell.evidence_anchor(t).events if e.type == 'evidence_anchor']
