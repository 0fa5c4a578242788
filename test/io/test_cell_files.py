"""A namespaced cell's journal and order store continue from their files of before the namespace was
in their names (real SQLite on disk)."""
from __future__ import annotations

from smartcell.io.cell_files import adopt_legacy_file
from smartcell.io.event_journal import EventJournal


def event(seq: int) -> dict:
    return {'seq': seq, 'type': 'state_change', 'event_id': f'e{seq}'}


def test_the_first_start_under_the_new_name_continues_the_old_journal_with_its_seq(tmp_path):
    legacy, path = tmp_path / 'events_cell-01.sqlite', tmp_path / 'events_cell-01_cell_a.sqlite'
    old = EventJournal(legacy)
    old.append([event(1), event(2), event(3)])      # still open: the last commits may sit in its WAL
    assert adopt_legacy_file(path, legacy)
    journal = EventJournal(path)
    assert journal.last_seq() == 3                  # the MES bridge's cursor stays valid: no "replayed" refusals
    assert journal.after(0) == old.after(0)
    journal.append([event(4)])
    assert journal.last_seq() == 4 and old.last_seq() == 3        # the old file is left as it was
    assert not adopt_legacy_file(path, legacy)      # once only: an existing file is never replaced
    assert EventJournal(path).last_seq() == 4
    assert not (tmp_path / 'events_cell-01_cell_a.sqlite.adopting').exists()


def test_nothing_to_adopt_without_an_old_file_or_under_the_same_name(tmp_path):
    assert not adopt_legacy_file(tmp_path / 'events_cell-01_cell_a.sqlite', tmp_path / 'events_cell-01.sqlite')
    assert not (tmp_path / 'events_cell-01_cell_a.sqlite').exists()
    same = tmp_path / 'events_cell-01.sqlite'
    EventJournal(same).append([event(1)])
    assert not adopt_legacy_file(same, same)
