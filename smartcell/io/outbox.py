"""Store-and-forward outbox: every record goes to SQLite (WAL, on disk) first, then to each transport.

Contract (documented in docs/mes.md):
* A record is on disk, in one transaction with its per-stream sequence number and audit hash, before
  any transport sees it. A `kill -9` at any moment loses nothing that `append` returned.
* Delivery is at-least-once per transport, in storage order (so in order per stream): a transport's
  cursor only moves past records it acknowledged. A crash between send and cursor update re-sends.
* Record ids are unique and, for cell events, deterministic: consumers deduplicate on `record_id`
  and get exactly-once *at the consumer*. Appending a record whose id is stored already is a no-op.
* Bounded: when more than `capacity_records` are undelivered, a new telemetry record replaces the
  oldest undelivered telemetry record; production and safety records are never dropped (the
  outbox grows past its capacity for them and `fill_fraction` > 1 says so; the bridge alarms at 80 %).
* Durability: `synchronous='NORMAL'` (default) survives process crashes; `'FULL'` also survives
  power loss at the cost of an fsync per transaction.
* Tamper evidence (smartcell.core.mes.audit_trail): chained records are sealed with SHA-256 and, when
  the outbox is given the cell key, an HMAC kept in the `mac` column (not sent to transports). The
  chain's head (position, hash, MAC) is written to `<db>.anchor` at open, every
  `anchor_every_records` chained records and at close, so deleting the newest records is detected.
  Non-finite floats are stored as null (strict JSON; a NaN has no canonical form to hash).
"""
from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

from smartcell.core.jsonio import to_strict
from smartcell.core.mes.audit_trail import (AUDIT_KEY_PURPOSE, GENESIS_HASH, Anchor, anchor_path_for, derive_key,
                                           seal, write_anchor)
from smartcell.core.mes.records import Record, is_chained

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    pos INTEGER PRIMARY KEY AUTOINCREMENT,   -- storage order = delivery order
    record_id TEXT NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    chained INTEGER NOT NULL,                -- 1: production/safety (kept, audit chain); 0: telemetry
    json TEXT NOT NULL,
    mac TEXT                                 -- HMAC of the chained record under the cell key; NULL: unkeyed
);
CREATE INDEX IF NOT EXISTS records_telemetry ON records(pos) WHERE chained = 0;
CREATE INDEX IF NOT EXISTS records_chained ON records(pos) WHERE chained = 1;
CREATE TABLE IF NOT EXISTS streams (stream TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (transport TEXT PRIMARY KEY, delivered_pos INTEGER NOT NULL);
-- the newest cell event seq whose records are stored (same transaction): where the replay resumes
CREATE TABLE IF NOT EXISTS event_cursor (source TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""


class TransportDown(RuntimeError):
    """The transport cannot deliver now (broker or MES unreachable); the dispatcher backs off."""


@dataclass(frozen=True)
class Pending:
    """One stored record waiting for a transport: its JSON is sent as is (no re-encoding)."""

    pos: int
    record_id: str
    stream: str
    seq: int
    json: str

    def record(self) -> Record:
        return Record.from_json(self.json)


class Transport(Protocol):
    """A destination of records. `send` returns how many of `items`, from the first, were delivered."""

    name: str

    def send(self, items: Sequence[Pending]) -> int: ...


@dataclass(frozen=True)
class OutboxConfig:
    capacity_records: int = 1_000_000     # undelivered records before telemetry is dropped
    alarm_fraction: float = 0.8           # fill fraction that raises the OUTBOX_FULL alarm
    synchronous: str = 'NORMAL'           # NORMAL: crash-safe; FULL: power-loss-safe
    batch_size: int = 500                 # records per transport send
    backoff_initial_s: float = 0.5        # first retry delay after a failed send, s
    backoff_max_s: float = 60.0           # retry delay ceiling, s
    anchor_every_records: int = 100       # chained records between anchor updates (and at open and close)

    def __post_init__(self) -> None:
        if self.synchronous not in ('NORMAL', 'FULL'):
            raise ValueError(f'synchronous must be NORMAL or FULL, got {self.synchronous!r}')
        if self.capacity_records < 1 or self.batch_size < 1 or self.anchor_every_records < 1:
            raise ValueError('capacity_records, batch_size and anchor_every_records must be >= 1')
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError('need 0 < backoff_initial_s <= backoff_max_s')


@dataclass(frozen=True)
class AppendResult:
    record: Record | None        # as stored (seq, hashes); None when refused
    duplicate: bool = False      # the id was stored already: nothing changed
    dropped_telemetry: int = 0   # older telemetry records dropped to make room
    refused: bool = False        # a telemetry record refused (full, nothing older to drop)


class Outbox:
    """SQLite WAL store of records with a delivery cursor per transport. Thread-safe.

    `key`: the cell key (bytes); chained records then carry an HMAC under a key derived from it.
    """

    def __init__(self, path: str | Path, transports: Sequence[str], config: OutboxConfig = OutboxConfig(),
                 on_append: Callable[[], None] | None = None, key: bytes | None = None) -> None:
        self.path = Path(path)
        self.anchor_path = anchor_path_for(self.path)
        self._mac_key = derive_key(key, AUDIT_KEY_PURPOSE) if key is not None else None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.transports = tuple(transports)
        # Called after new records were appended (the dispatcher's wake-up). Public and settable after
        # construction: the dispatcher that wakes needs the outbox first.
        self.on_append = on_append
        self._lock = threading.Lock()
        self._closed = False
        self.anchor_error = ''
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute('PRAGMA journal_mode=WAL')
        self._db.execute(f'PRAGMA synchronous={config.synchronous}')
        # checkpoint every ~40 MB of WAL instead of ~4 MB: checkpoints fsync, appends need not wait for them
        self._db.execute('PRAGMA wal_autocheckpoint=10000')
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute('PRAGMA table_info(records)')}
        if 'mac' not in columns:        # a store written before records were keyed
            self._db.execute('ALTER TABLE records ADD COLUMN mac TEXT')
        with self._transaction():
            top = self._db.execute('SELECT coalesce(max(pos), 0) FROM records').fetchone()[0]
            for name in self.transports:
                # a transport added to an existing store starts with records stored from now on
                self._db.execute('INSERT OR IGNORE INTO cursors VALUES (?, ?)', (name, top))
        self._load_state()
        self._write_anchor()

    # ------------------------------------------------------------ state

    def _load_state(self) -> None:
        db = self._db
        self._seq = dict(db.execute('SELECT stream, last_seq FROM streams'))
        head = db.execute('SELECT json FROM records WHERE chained = 1 ORDER BY pos DESC LIMIT 1').fetchone()
        self._chain_head = Record.from_json(head[0]).hash if head else GENESIS_HASH
        self._chain_length = db.execute('SELECT count(*) FROM records WHERE chained = 1').fetchone()[0]
        self._anchored_length = -1
        self._cursor = {name: db.execute('SELECT delivered_pos FROM cursors WHERE transport = ?',
                                         (name,)).fetchone()[0] for name in self.transports}
        self._backlog = {name: db.execute('SELECT count(*) FROM records WHERE pos > ?', (pos,)).fetchone()[0]
                         for name, pos in self._cursor.items()}

    def _transaction(self):
        return _Transaction(self._db)

    # ------------------------------------------------------------ writing

    def append(self, record: Record) -> AppendResult:
        return self.append_many([record])[0]

    def append_many(self, records: Sequence[Record], event_seq: int | None = None) -> list[AppendResult]:
        """Store records in one transaction (sequence numbers and chain hashes assigned here).

        `event_seq`: the newest cell event these records come from; stored in the same transaction, so
        after a crash `event_seq()` names exactly the events whose records are here (the replay hook)."""
        results: list[AppendResult] = []
        with self._lock:
            seq_before, head_before = dict(self._seq), self._chain_head
            backlog_before, length_before = dict(self._backlog), self._chain_length
            try:
                with self._transaction():
                    touched: set[str] = set()
                    results = [self._append_locked(r, touched) for r in records]
                    self._db.executemany(
                        'INSERT INTO streams VALUES (?, ?) '
                        'ON CONFLICT(stream) DO UPDATE SET last_seq = excluded.last_seq',
                        [(stream, self._seq[stream]) for stream in touched])
                    if event_seq is not None:
                        self._db.execute('INSERT INTO event_cursor VALUES (?, ?) ON CONFLICT(source) DO UPDATE '
                                         'SET seq = max(seq, excluded.seq)', ('cell', int(event_seq)))
            except BaseException:
                self._seq, self._chain_head, self._backlog = seq_before, head_before, backlog_before
                self._chain_length = length_before
                raise
            if self._chain_length - self._anchored_length >= self.config.anchor_every_records:
                self._write_anchor()    # after the commit: the anchor never names a record not stored
        if self.on_append is not None and any(r.record is not None and not r.duplicate for r in results):
            self.on_append()
        return results

    def _append_locked(self, record: Record, touched: set[str]) -> AppendResult:
        db = self._db
        chained = is_chained(record.stream)
        dropped = 0
        if not chained and self._undelivered() >= self.config.capacity_records:
            if db.execute('SELECT 1 FROM records WHERE record_id = ?', (record.record_id,)).fetchone():
                return self._duplicate(record.record_id)
            dropped = self._drop_oldest_telemetry()
            if dropped == 0:
                return AppendResult(None, refused=True)
        seq = self._seq.get(record.stream, 0) + 1
        data = to_strict(record.to_dict())        # NaN/inf -> null: strict JSON, one canonical form to hash
        data['seq'] = seq
        mac = None
        if chained:
            data = seal(data, self._chain_head, self._mac_key)
            mac = data.pop('mac', None)           # kept beside the record, not sent to the MES
        text = json.dumps(data, sort_keys=True, separators=(',', ':'), allow_nan=False)
        # the UNIQUE record_id makes a re-sent record a no-op; its seq is then not consumed
        cursor = db.execute('INSERT OR IGNORE INTO records (record_id, stream, seq, chained, json, mac) '
                            'VALUES (?, ?, ?, ?, ?, ?)',
                            (record.record_id, record.stream, seq, int(chained), text, mac))
        if cursor.rowcount == 0:
            return self._duplicate(record.record_id)
        self._seq[record.stream] = seq
        touched.add(record.stream)
        if chained:
            self._chain_head = data['hash']
            self._chain_length += 1
        for name in self.transports:
            self._backlog[name] += 1
        return AppendResult(Record.from_dict(data), dropped_telemetry=dropped)

    def _duplicate(self, record_id: str) -> AppendResult:
        found = self._db.execute('SELECT json FROM records WHERE record_id = ?', (record_id,)).fetchone()
        return AppendResult(Record.from_json(found[0]), duplicate=True)

    def _drop_oldest_telemetry(self) -> int:
        low = min(self._cursor.values(), default=0)
        row = self._db.execute('SELECT pos FROM records WHERE chained = 0 AND pos > ? ORDER BY pos LIMIT 1',
                               (low,)).fetchone()
        if row is None:
            return 0
        self._db.execute('DELETE FROM records WHERE pos = ?', (row[0],))
        for name, cursor in self._cursor.items():
            if row[0] > cursor:
                self._backlog[name] -= 1
        return 1

    # ------------------------------------------------------------ delivery

    def pending(self, transport: str, limit: int | None = None) -> list[Pending]:
        """The next undelivered records for a transport, in storage order."""
        with self._lock:
            rows = self._db.execute(
                'SELECT pos, record_id, stream, seq, json FROM records WHERE pos > ? ORDER BY pos LIMIT ?',
                (self._cursor[transport], limit or self.config.batch_size)).fetchall()
        return [Pending(*row) for row in rows]

    def ack(self, transport: str, upto_pos: int) -> None:
        """The transport delivered every record up to and including `upto_pos`."""
        with self._lock:
            old = self._cursor[transport]
            if upto_pos <= old:
                return
            with self._transaction():
                delivered = self._db.execute('SELECT count(*) FROM records WHERE pos > ? AND pos <= ?',
                                             (old, upto_pos)).fetchone()[0]
                self._db.execute('UPDATE cursors SET delivered_pos = ? WHERE transport = ?', (upto_pos, transport))
                self._cursor[transport] = upto_pos
                self._backlog[transport] -= delivered
                # telemetry delivered everywhere is no longer needed; production/safety stay (audit trail)
                self._db.execute('DELETE FROM records WHERE chained = 0 AND pos <= ?',
                                 (min(self._cursor.values()),))

    # ------------------------------------------------------------ reading

    def _undelivered(self) -> int:
        return max(self._backlog.values(), default=0)

    def backlog(self, transport: str | None = None) -> int:
        """Undelivered records for one transport, or the largest backlog of all."""
        with self._lock:
            return self._backlog[transport] if transport else self._undelivered()

    def fill_fraction(self) -> float:
        return self.backlog() / self.config.capacity_records

    def event_seq(self) -> int:
        """The newest cell event seq whose records are stored (0: none yet)."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM event_cursor WHERE source = 'cell'").fetchone()
        return int(row[0]) if row else 0

    def audit_records(self) -> Iterator[dict | Exception]:
        """The chained records, unreadable rows as exceptions (see `iter_audit_records`)."""
        yield from iter_audit_records(self.path)

    def _write_anchor(self) -> None:
        """The chain head to `<db>.anchor` (atomic replace); a failure is kept in `anchor_error`, not raised."""
        anchor = Anchor.make(self._chain_length, self._chain_head, self._mac_key)
        try:
            # fsync only when the database itself is power-loss safe: an anchor on disk ahead of a
            # database that lost its last transactions would read as a deleted tail
            write_anchor(self.anchor_path, anchor, sync=self.config.synchronous == 'FULL')
        except OSError as exc:
            self.anchor_error = f'anchor {self.anchor_path} not written: {exc}'
            return
        self.anchor_error = ''
        self._anchored_length = self._chain_length

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._anchored_length != self._chain_length:
                self._write_anchor()
            self._db.close()
            self._closed = True


class _Transaction:
    """BEGIN IMMEDIATE .. COMMIT, ROLLBACK on any error (the connection is in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute('BEGIN IMMEDIATE')

    def __exit__(self, exc_type, exc, tb) -> None:
        self._db.execute('COMMIT' if exc_type is None else 'ROLLBACK')


def iter_audit_records(path: str | Path) -> Iterator[dict | Exception]:
    """The chained records of an outbox database, in chain order, each with its `mac` when keyed.

    Unreadable rows come as exceptions. A file that is not SQLite, or has no records table, raises
    sqlite3.DatabaseError on the first iteration.
    """
    db = sqlite3.connect(f'{Path(path).resolve().as_uri()}?mode=ro', uri=True)
    try:
        columns = {row[1] for row in db.execute('PRAGMA table_info(records)')}
        mac_column = 'mac' if 'mac' in columns else 'NULL'
        for text, mac in db.execute(f'SELECT json, {mac_column} FROM records WHERE chained = 1 ORDER BY pos'):
            try:
                record = json.loads(text)
            except ValueError as exc:
                yield exc
                continue
            if mac and isinstance(record, dict):
                record['mac'] = mac
            yield record
    finally:
        db.close()


# ---------------------------------------------------------------- dispatcher

def backoff_delay_s(failures: int, initial_s: float, max_s: float) -> float:
    """Exponential backoff: initial, 2x, 4x, ... capped at max_s (failures >= 1)."""
    return min(max_s, initial_s * 2.0 ** max(0, failures - 1))


@dataclass
class LinkState:
    """Delivery state of one transport, shown in /diagnostics."""

    up: bool = True
    failures: int = 0                  # consecutive failed attempts
    next_try_s: float = 0.0            # monotonic time of the next attempt
    last_error: str = ''
    delivered: int = 0                 # records delivered since start


@dataclass
class Dispatcher:
    """Worker thread that drains the outbox to every transport, each with its own exponential backoff."""

    outbox: Outbox
    transports: Sequence[Transport]
    clock: Callable[[], float] = time.monotonic
    idle_poll_s: float = 1.0
    links: dict[str, LinkState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [t.name for t in self.transports]
        missing = set(names) - set(self.outbox.transports)
        if missing:
            raise ValueError(f'transport(s) {sorted(missing)} have no cursor in the outbox; '
                             f'outbox transports: {", ".join(self.outbox.transports)}')
        self.links = {name: LinkState() for name in names}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> 'Dispatcher':
        self._thread = threading.Thread(target=self._run, name='outbox-dispatcher', daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            wait_s = self.step()
            self._wake.wait(timeout=wait_s)
            self._wake.clear()

    def step(self) -> float:
        """One pass over the transports; returns how long to wait before the next pass, s."""
        now = self.clock()
        wait_s = self.idle_poll_s
        for transport in self.transports:
            link = self.links[transport.name]
            if now < link.next_try_s:
                wait_s = min(wait_s, link.next_try_s - now)
                continue
            items = self.outbox.pending(transport.name)
            if not items:
                continue
            try:
                sent = transport.send(items)
                error = '' if sent == len(items) else f'only {sent} of {len(items)} acknowledged'
            except TransportDown as exc:
                sent, error = 0, str(exc) or 'transport down'
            except Exception as exc:  # a transport bug must not stop delivery to the others: back off, report
                sent, error = 0, f'{type(exc).__name__}: {exc}'
            if sent:
                self.outbox.ack(transport.name, items[sent - 1].pos)
                link.delivered += sent
            if error:
                link.up, link.failures, link.last_error = False, link.failures + 1, error
                link.next_try_s = now + backoff_delay_s(link.failures, self.outbox.config.backoff_initial_s,
                                                        self.outbox.config.backoff_max_s)
                wait_s = min(wait_s, link.next_try_s - now)
            else:
                link.up, link.failures, link.last_error, link.next_try_s = True, 0, '', 0.0
                wait_s = 0.0    # there may be more
        return max(0.0, wait_s)


# ---------------------------------------------------------------- writer thread

class OutboxWriter:
    """Takes records from any thread without blocking and appends them in batches on its own thread.

    ROS callbacks must not do disk I/O; they `submit` here. `on_result` (called on the writer
    thread) sees every AppendResult, e.g. to raise an alarm when telemetry is refused.
    """

    def __init__(self, outbox: Outbox, on_result: Callable[[AppendResult], None] | None = None,
                 max_batch: int = 1000) -> None:
        self.outbox = outbox
        self._on_result = on_result
        self._max_batch = max_batch
        # (records of one submit, the cell event seq they come from) or None: stop
        self._queue: 'queue.Queue[tuple[list[Record], int | None] | None]' = queue.Queue()
        self._thread = threading.Thread(target=self._run, name='outbox-writer', daemon=True)
        self.last_error = ''
        self.written = 0

    def start(self) -> 'OutboxWriter':
        self._thread.start()
        return self

    def submit(self, records: Sequence[Record], event_seq: int | None = None) -> None:
        """Queue records; `event_seq` (the cell event they come from, maybe with no records at all) is
        stored in the same transaction as they are."""
        self._queue.put((list(records), event_seq))

    def queued(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = None in batch
            items = [item for item in batch if item is not None]
            if not items:
                continue
            records = [record for item in items for record in item[0]]
            seqs = [item[1] for item in items if item[1] is not None]
            while True:
                try:
                    results = self.outbox.append_many(records, max(seqs) if seqs else None)
                    break
                except sqlite3.Error as exc:
                    # the disk is full or the file is broken: retry this batch before any later one, so
                    # the stored event seq never runs ahead of records that are not stored yet
                    self.last_error = f'outbox write failed: {exc}'
                    time.sleep(0.5)     # back off before touching the failing disk again (writer thread only)
            self.last_error = ''
            self.written += sum(1 for r in results if r.record is not None and not r.duplicate)
            if self._on_result is not None:
                for result in results:
                    self._on_result(result)
