"""The real cell processes (twin, scanner, arm, supervisor, MES bridge) running a job; the bridge is
killed with SIGKILL mid-job and restarted. The supervisor's journal and the bridge's outbox on disk
must then agree: every event's records exactly once, in seq order, no gap. Every event is signed with
the cell key, and the evidence log's head reaches the outbox's `anchor` stream."""
from __future__ import annotations

import dataclasses
import json
import sqlite3
import time

import pytest

pytest.importorskip('pybullet')
pytest.importorskip('rclpy')
pytestmark = [pytest.mark.ros, pytest.mark.twin, pytest.mark.slow]

from smartcell.core.mes.audit_trail import Anchor  # noqa: E402
from smartcell.core.mes.records import JobTracker, records_from_event  # noqa: E402
from smartcell.core.safety.authority import default_cell_key_path, load_or_create_cell_key, verify_event  # noqa: E402
from smartcell.io.broker import free_port  # noqa: E402
from smartcell.io.event_journal import EventJournal  # noqa: E402
from smartcell.tools.cell_processes import CellProcesses, isolated_ros_env, node_command  # noqa: E402
from smartcell.tools.safety_report import check_external_anchor  # noqa: E402
from smartcell.tools.sim import node_overrides, parse_args  # noqa: E402
from smartcell.topology import nodes_for  # noqa: E402


def query(path, sql, default=0):
    if not path.exists():
        return default
    with sqlite3.connect(f'file:{path}?mode=ro', uri=True) as db:
        try:
            row = db.execute(sql).fetchone()
        except sqlite3.OperationalError:        # the table is not there yet
            return default
    return default if row is None or row[0] is None else row[0]


def wait_for(condition, timeout_s, processes, what):
    deadline = time.monotonic() + timeout_s
    while not condition():
        processes.check_alive()
        assert time.monotonic() < deadline, f'timed out waiting for {what}; logs in {processes.log_dir}'
        time.sleep(0.1)      # polling files on disk with a deadline


def test_bridge_killed_during_a_job_loses_nothing_and_repeats_nothing(tmp_path):
    log_dir = tmp_path / 'run'
    options = parse_args(['--no-progress', '--duration', '60', '--seed', '3', '--job', 'job_demo',
                          '--without', 'sensors', '--log-dir', str(log_dir),
                          '-p', 'supervisor.evidence_anchor_period_s:=5.0'])
    options = dataclasses.replace(options, opcua_port=free_port())
    overrides = node_overrides(options)
    journal, outbox = log_dir / 'cell_events.sqlite', log_dir / 'mes_outbox.sqlite'
    last_seq = lambda: query(journal, 'SELECT max(seq) FROM events')                          # noqa: E731
    stored_seq = lambda: query(outbox, "SELECT seq FROM event_cursor WHERE source = 'cell'")  # noqa: E731
    specs = nodes_for(sim=True, groups=options.groups)
    bridge = next(spec for spec in specs if spec.name == 'mes_bridge')
    processes = CellProcesses(log_dir, isolated_ros_env())
    try:
        processes.start_nodes(specs, options.config, overrides)
        wait_for(lambda: query(journal, "SELECT min(seq) FROM events WHERE type = 'job_started'") and stored_seq(),
                 180, processes, 'the job to start and the bridge to store events')
        processes.kill('mes_bridge')
        killed_at = last_seq()
        del processes.processes['mes_bridge']        # killed on purpose: not a failure of the run
        wait_for(lambda: last_seq() >= killed_at + 3, 180, processes, 'events while the bridge is dead')
        missed = last_seq() - stored_seq()
        processes.start('mes_bridge', node_command(bridge.module, 'mes_bridge', options.config,
                                                   overrides['mes_bridge'], '', log_dir / 'mes_bridge.overrides.yaml'))
        wait_for(lambda: query(journal, f"SELECT count(*) FROM events WHERE type = 'unit_complete' "
                                        f"AND seq > {killed_at}"), 300, processes, 'a unit after the restart')
        settled = {'seq': -1, 'since': time.monotonic()}

        def caught_up_and_quiet():
            head = last_seq()
            if head != settled['seq']:
                settled.update(seq=head, since=time.monotonic())
            return stored_seq() == head and time.monotonic() - settled['since'] > 3.0

        wait_for(caught_up_and_quiet, 300, processes, 'the bridge to catch up with the journal')
    finally:
        processes.stop()
    assert missed >= 3, 'the bridge missed nothing: the test did not test the replay'
    events = [json.loads(text) for text in EventJournal(journal).after(0, limit=10**6)]
    assert [e['seq'] for e in events] == list(range(1, len(events) + 1))       # gapless at the source
    with sqlite3.connect(outbox) as db:
        rows = [json.loads(text) for (text,) in db.execute('SELECT json FROM records ORDER BY pos')]
    cell_id = rows[0]['cell_id']
    tracker = JobTracker()
    expected = [r.record_id for e in events for r in records_from_event(e, cell_id, tracker)]
    wanted = set(expected)
    assert [r['record_id'] for r in rows if r['record_id'] in wanted] == expected   # each once, in seq order
    units = [r['body'] for r in rows if r['stream'] == 'unit']
    assert units and all(u['cycle_time_s'] is not None and u['cycle_time_s'] > 0 for u in units)
    assert stored_seq() == events[-1]['seq']
    # only the supervisor's signed events were sealed: each verifies under the cell key
    key = load_or_create_cell_key(default_cell_key_path(events[0]['cell_id']))
    assert [verify_event(key, e) for e in events] == [None] * len(events)
    # the evidence log's head went to the MES; the log on disk holds every anchored record
    anchors = [r['body'] for r in rows if r['stream'] == 'anchor']
    assert anchors and [a['evidence_seq'] for a in anchors] == sorted(a['evidence_seq'] for a in anchors)
    for anchor in anchors:
        assert check_external_anchor(log_dir / 'safety_evidence.jsonl',
                                     Anchor(anchor['evidence_seq'], anchor['evidence_hash'])) == []
