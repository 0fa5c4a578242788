"""Job orders kept in SQLite, so that duplicate detection and order states survive a restart."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from smartcell.core.cell.orders import JobOrder

SCHEMA = '''CREATE TABLE IF NOT EXISTS job_orders (
    order_id TEXT PRIMARY KEY, work_master TEXT NOT NULL, quantity INTEGER NOT NULL,
    state TEXT NOT NULL, received_s REAL NOT NULL)'''


class SqliteOrderStore:
    """smartcell.core.cell.orders.OrderStore on a SQLite file (WAL, one row per order)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute('PRAGMA journal_mode=WAL')
        self._db.execute(SCHEMA)
        self._db.commit()

    def load(self) -> list[JobOrder]:
        rows = self._db.execute('SELECT order_id, work_master, quantity, state, received_s FROM job_orders '
                                'ORDER BY received_s, order_id').fetchall()
        return [JobOrder(str(o), str(w), int(q), str(s), float(r)) for o, w, q, s, r in rows]

    def save(self, order: JobOrder) -> None:
        self._db.execute('INSERT OR REPLACE INTO job_orders VALUES (?, ?, ?, ?, ?)',
                         (order.order_id, order.work_master, order.quantity, order.state, order.received_s))
        self._db.commit()

    def close(self) -> None:
        self._db.close()
