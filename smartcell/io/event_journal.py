"""The cell's event journal: every cell event on disk (SQLite) before it is published.

The supervisor appends the events of one controller call in one transaction (synchronous=FULL:
the commit has reached the disk when `append` returns), then publishes them on `cell/events`. So
an event a consumer could have seen is always in the journal, and the journal is what a consumer
that missed events (the MES bridge after a restart or a gap in `seq`) gets them back from,
byte for byte (the same `event_id`, hence the same MES record ids).

`seq` is the controller's per-cell, gapless sequence number; after a restart the controller
continues from `last_seq()`. A journal that does not continue its own sequence (a hole, a repeat)
refuses the append: that is a bug upstream, never papered over.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

SCHEMA = '''CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,           -- the controller's per-cell sequence number, 1, 2, ...
    type TEXT NOT NULL,
    json TEXT NOT NULL                 -- the event exactly as published on cell/events
)'''


class JournalError(RuntimeError):
    """An append that would break the journal's sequence (names both numbers)."""


class EventJournal:
    """Append-only SQLite journal of one cell's events (WAL, fsync on every commit). Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute('PRAGMA journal_mode=WAL')
        # FULL: a committed event survives a power cut, not only a process crash (the MES relies on it)
        self._db.execute('PRAGMA synchronous=FULL')
        self._db.execute(SCHEMA)
        self._last = int(self._db.execute('SELECT coalesce(max(seq), 0) FROM events').fetchone()[0])

    def last_seq(self) -> int:
        """The newest journaled seq (0: empty); the controller starts after it."""
        return self._last

    def append(self, events: Sequence[Mapping[str, Any]]) -> list[str]:
        """Store events (dicts with an integer `seq` continuing the journal) in one transaction; returns
        their JSON text, which is what must be published (so replays are identical)."""
        if not events:
            return []
        texts = [json.dumps(dict(e), allow_nan=False, sort_keys=True, default=str) for e in events]
        with self._lock:
            expected = self._last + 1
            for event in events:
                if event.get('seq') != expected:
                    raise JournalError(f'event seq {event.get("seq")!r} does not continue the journal '
                                       f'{self.path} (expected {expected})')
                expected += 1
            self._db.execute('BEGIN IMMEDIATE')
            try:
                rows = [(e['seq'], str(e.get('type', '')), t) for e, t in zip(events, texts, strict=True)]
                self._db.executemany('INSERT INTO events (seq, type, json) VALUES (?, ?, ?)', rows)
                self._db.execute('COMMIT')
            except BaseException:
                self._db.execute('ROLLBACK')
                raise
            self._last = expected - 1
        return texts

    def after(self, seq: int, limit: int = 100) -> list[str]:
        """Up to `limit` journaled events with a seq above `seq`, oldest first (JSON text)."""
        with self._lock:
            rows = self._db.execute('SELECT json FROM events WHERE seq > ? ORDER BY seq LIMIT ?',
                                    (int(seq), int(limit))).fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def default_journal_path(ros_home: Path, cell_id: str) -> Path:
    """Outside `smartcell sim`: <ROS_HOME>/smartcell/events_<cell_id>.sqlite."""
    return ros_home / 'smartcell' / f'events_{cell_id}.sqlite'
