"""The cell's job-order queue with ISA-95 job states, free of ROS.

Orders arrive as JSON from the MES bridge (already schema-checked there; checked again here,
since any node can publish on the topic). Each order is in one ISA-95 job state:

  waiting -> running -> completed | aborted        (cell/start runs the oldest waiting order)
  waiting -> cancelled                             (only an order not yet running can be cancelled)

Duplicates are refused by order id in any state, and the ids seen survive restarts when a store
is given (`OrderStore`: the supervisor passes a SQLite one), so a transient-local or retained
order re-delivered to a restarted supervisor is not run twice.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from typing import Callable, Protocol

JOB_STATES = ('waiting', 'ready', 'running', 'held', 'completed', 'aborted', 'cancelled')
FINAL_STATES = ('completed', 'aborted', 'cancelled')
MAX_ORDER_ID_CHARS = 128


class OrderError(ValueError):
    """An order refused: names the order (or the message it could not read) and why."""

    def __init__(self, message: str, order_id: str = '', excerpt: str = '', duplicate: bool = False) -> None:
        super().__init__(message)
        self.order_id = order_id
        self.excerpt = excerpt
        self.duplicate = duplicate


@dataclass(frozen=True)
class JobOrder:
    order_id: str
    work_master: str            # the product; the recipe is config/job_<work_master>.yaml
    quantity: int
    state: str = 'waiting'
    received_s: float = 0.0


class OrderStore(Protocol):
    """Where orders outlive the process (see smartcell.io.order_store.SqliteOrderStore)."""

    def load(self) -> list[JobOrder]: ...

    def save(self, order: JobOrder) -> None: ...


def message_excerpt(raw: str, limit: int = 80) -> str:
    """What an answer to an unreadable message quotes: its start and a hash of the whole."""
    digest = hashlib.sha256(raw.encode('utf-8', 'replace')).hexdigest()[:12]
    return f'{raw[:limit]!r} (sha256 {digest})'


def parse_order(raw: str, max_units: int) -> JobOrder:
    """A JobOrder from JSON text, or OrderError naming what is wrong (never another exception)."""
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, TypeError, RecursionError) as exc:
        raise OrderError(f'unreadable job order: {exc}', excerpt=message_excerpt(str(raw))) from None
    if not isinstance(data, dict):
        raise OrderError(f'a job order is a JSON object, got {type(data).__name__}', excerpt=message_excerpt(raw))
    order_id = data.get('order_id')
    if not isinstance(order_id, str) or not order_id.strip() or len(order_id) > MAX_ORDER_ID_CHARS:
        raise OrderError(f'order_id must be a non-empty string of at most {MAX_ORDER_ID_CHARS} characters, '
                         f'got {order_id!r:.60}', excerpt=message_excerpt(raw))
    work_master = data.get('work_master')
    if not isinstance(work_master, str) or not work_master or not work_master.replace('_', '').isalnum():
        raise OrderError(f'order {order_id!r}: work_master must be a product name (letters, digits, _), '
                         f'got {work_master!r:.60}', order_id=order_id)
    quantity = data.get('quantity')
    if isinstance(quantity, float) and math.isfinite(quantity) and quantity.is_integer():
        quantity = int(quantity)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= max_units:
        raise OrderError(f'order {order_id!r}: quantity must be a whole number in [1, {max_units}], '
                         f'got {quantity!r:.60}', order_id=order_id)
    return JobOrder(order_id, work_master, quantity)


def _refuse_constant(name: str) -> float:
    raise ValueError(f'{name} is not a number a job order may carry')


class OrderBook:
    """The queue: oldest waiting order first; every order keeps its final state."""

    def __init__(self, max_units: int = 100000, store: OrderStore | None = None) -> None:
        self.max_units = max_units
        self._store = store
        self._orders: dict[str, JobOrder] = {}
        if store is not None:
            for order in store.load():
                # A restart ends whatever ran: the cell starts idle, the job did not finish.
                if order.state in ('running', 'held'):
                    order = replace(order, state='aborted')
                    store.save(order)
                self._orders[order.order_id] = order

    def submit(self, raw: str, known_product: Callable[[str], str], now_s: float = 0.0) -> JobOrder:
        order = parse_order(raw, self.max_units)
        if order.order_id in self._orders:
            seen = self._orders[order.order_id]
            raise OrderError(f'order {order.order_id!r} was received before (now {seen.state}); ignored',
                             order_id=order.order_id, duplicate=True)
        why_not = known_product(order.work_master)
        if why_not:
            refused = replace(order, state='cancelled', received_s=now_s)
            self._keep(refused)             # the id is used: a corrected order needs a new one
            raise OrderError(f'order {order.order_id!r}: {why_not}', order_id=order.order_id)
        order = replace(order, received_s=now_s)
        self._keep(order)
        return order

    def next_waiting(self) -> JobOrder | None:
        waiting = [o for o in self._orders.values() if o.state == 'waiting']
        return min(waiting, key=lambda o: o.received_s) if waiting else None

    def position(self, order_id: str) -> int:
        """1 for the next order to run."""
        waiting = sorted((o for o in self._orders.values() if o.state == 'waiting'), key=lambda o: o.received_s)
        return next((i + 1 for i, o in enumerate(waiting) if o.order_id == order_id), 0)

    def state_of(self, order_id: str) -> str:
        order = self._orders.get(order_id)
        return order.state if order is not None else ''

    def cancel(self, order_id: str) -> None:
        order = self._orders.get(order_id)
        if order is None:
            raise OrderError(f'no order {order_id!r}', order_id=order_id)
        if order.state != 'waiting':
            raise OrderError(f'order {order_id!r} is {order.state}: only a waiting order can be cancelled '
                             '(abort a running one with cell/stop)', order_id=order_id)
        self._keep(replace(order, state='cancelled'))

    def finish(self, order_id: str, state: str) -> None:
        if state not in JOB_STATES:
            raise ValueError(f'unknown job state {state!r}; accepted: {", ".join(JOB_STATES)}')
        order = self._orders.get(order_id)
        if order is not None:
            self._keep(replace(order, state=state))

    def _keep(self, order: JobOrder) -> None:
        self._orders[order.order_id] = order
        if self._store is not None:
            self._store.save(order)
