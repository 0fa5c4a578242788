"""The cell's event seq continues from the journal across a restart: no repeat, no gap."""
from __future__ import annotations

from pathlib import Path

import pytest

from smartcell.core.cell.controller import CellController
from smartcell.core.node_params import SUPERVISOR
from smartcell.core.tasks.recipe import load_recipe
from smartcell.io.event_journal import EventJournal, JournalError

CONFIG = Path(__file__).resolve().parents[2] / 'config'


def controller(last_seq: int) -> CellController:
    params = {**SUPERVISOR.defaults(), 'robot_base_xyz_yaw': [0.0, 0.0, 0.75, 0.0], 'lockstep': True}
    return CellController.from_params(params, CONFIG / 'stopping.yaml', CONFIG / 'body_regions.yaml',
                                      CONFIG / 'motions.yaml', lambda job: load_recipe(CONFIG / f'{job}.yaml'),
                                      last_seq=last_seq)


def journal_call(journal: EventJournal, output, cell_id: str = 'cell-1') -> list[int]:
    journal.append([e.as_record(cell_id, f'id-{e.seq}') for e in output.events])
    return [e.seq for e in output.events]


def test_a_restarted_controller_continues_the_journal(tmp_path):
    journal = EventJournal(tmp_path / 'events.sqlite')
    first = controller(journal.last_seq())
    seqs = journal_call(journal, first.request('start', 1.0)) + journal_call(journal, first.request('stop', 2.0))
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 2
    journal.close()
    reopened = EventJournal(tmp_path / 'events.sqlite')
    second = controller(reopened.last_seq())                   # the supervisor after a restart
    more = journal_call(reopened, second.request('start', 3.0))
    assert more[0] == seqs[-1] + 1
    stale = controller(0)                                        # a controller that forgot the journal
    with pytest.raises(JournalError, match='does not continue'):
        journal_call(reopened, stale.request('start', 4.0))
