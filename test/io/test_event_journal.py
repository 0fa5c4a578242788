"""The event journal on real SQLite and the sequencer that reads it: each event once, in order, no gap."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from smartcell.core.mes.sequence import EventSequencer
from smartcell.io.event_journal import EventJournal, JournalError


def event(seq, kind='alarm'):
    return {'seq': seq, 'type': kind, 'event_id': f'e{seq}', 'stamp': float(seq)}


def test_append_after_and_restart_continue_the_sequence(tmp_path):
    journal = EventJournal(tmp_path / 'j.sqlite')
    assert journal.last_seq() == 0
    texts = journal.append([event(1), event(2), event(3)])
    assert [json.loads(t)['seq'] for t in texts] == [1, 2, 3]
    assert journal.after(1, limit=1) == [texts[1]] and journal.after(3) == []
    journal.close()
    reopened = EventJournal(tmp_path / 'j.sqlite')
    assert reopened.last_seq() == 3 and reopened.after(0) == texts      # byte for byte: same event ids


@pytest.mark.parametrize('seqs', [[2], [1, 3], [1, 1], [0]])
def test_an_append_that_breaks_the_sequence_is_refused_whole(tmp_path, seqs):
    journal = EventJournal(tmp_path / 'j.sqlite')
    with pytest.raises(JournalError, match='does not continue'):
        journal.append([event(s) for s in seqs])
    assert journal.last_seq() == 0 and journal.after(0) == []


APPEND_FOREVER = """
import sys
from smartcell.io.event_journal import EventJournal
journal = EventJournal(sys.argv[1])
seq = journal.last_seq()
while True:
    seq += 1
    journal.append([{'seq': seq, 'type': 'alarm', 'event_id': f'e{seq}', 'stamp': float(seq)}])
"""


def test_kill_9_while_appending_leaves_a_gapless_journal(tmp_path):
    path = tmp_path / 'j.sqlite'
    child = subprocess.Popen([sys.executable, '-c', APPEND_FOREVER, str(path)])
    try:
        deadline = time.monotonic() + 60
        while not path.exists() or EventJournal(path).last_seq() < 50:
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)          # polling the file with a deadline
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    journal = EventJournal(path)
    seqs = [json.loads(t)['seq'] for t in journal.after(0, limit=10**6)]
    assert seqs == list(range(1, journal.last_seq() + 1)) and len(seqs) >= 50
    journal.append([event(journal.last_seq() + 1)])                    # and it goes on after the crash


def test_sequencer_gives_each_event_once_in_order_and_names_the_hole():
    seq = EventSequencer(last_seq=2)
    assert seq.offer(event(2)) == [] and seq.repeats == 1             # handled before the restart
    assert [e['seq'] for e in seq.offer(event(3))] == [3]
    assert seq.offer(event(6)) == [] and seq.offer(event(5)) == []
    assert seq.hole == (4, 5)
    assert [e['seq'] for e in seq.offer(event(4))] == [4, 5, 6]          # the replay fills the hole
    assert seq.hole is None and seq.last_seq == 6
    assert seq.offer(event(5)) == [] and seq.offer({'type': 'x'}) == [] and seq.unnumbered == 1


def test_sequencer_with_a_bounded_hold_still_converges_by_replay():
    seq = EventSequencer(max_held=2)
    for n in (3, 4, 5):
        seq.offer(event(n))
    assert seq.dropped_held == 1 and seq.hole == (1, 3)
    delivered = []
    for n in range(1, 6):                     # the replay of everything after last_seq (0)
        delivered += [e['seq'] for e in seq.offer(event(n))]
    assert delivered == [1, 2, 3, 4, 5]
