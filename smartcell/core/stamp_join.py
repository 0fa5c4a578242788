"""Exact-stamp pairing of two streams (the message_filters TimeSynchronizer idea), free of ROS.

In lockstep simulation the people seen at t must be judged against the robot at t, whatever
arrives first; the arm pairs the twin's state of tick t with the verdict of tick t the same way.
Pairs come out in stamp order; once a pair is taken, older unpaired entries on both sides are
dropped (they can never pair any more). Each side keeps at most `depth` entries (the oldest
received goes first), so a stream whose partner never comes cannot grow without bound.

Two ways to take pairs: `add_left`/`add_right` return every pair completed at once (the supervisor,
smartcell replay); `put_left`/`put_right` then `pop_pair(ready)` take them one at a time, the
earliest first, while `ready` allows (the arm: a pair whose verdict names a motion still on its way
waits, and every later pair waits behind it, so ticks are handled strictly in stamp order).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, TypeVar

A = TypeVar('A')
B = TypeVar('B')


class ExactStampJoiner(Generic[A, B]):
    """Pairs items of two streams by equal integer stamps (ns).

    drop_stale: refuse an item stamped at or before the last pair taken (a late or repeated message
    of a tick already handled must not be handled twice; lockstep time only goes forward). `clear()`
    forgets that mark too (a clock jump: pairing starts afresh on the new timeline).
    """

    def __init__(self, depth: int = 64, *, drop_stale: bool = False) -> None:
        if depth < 1:
            raise ValueError(f'depth must be at least 1, got {depth}')
        self._depth = depth
        self._drop_stale = drop_stale
        self._left: OrderedDict[int, A] = OrderedDict()
        self._right: OrderedDict[int, B] = OrderedDict()
        self._last_paired_ns: int | None = None

    @property
    def last_paired_ns(self) -> int | None:
        """The stamp of the last pair taken since start or `clear()`; None before any."""
        return self._last_paired_ns

    def __len__(self) -> int:
        """Unpaired entries held, both sides together."""
        return len(self._left) + len(self._right)

    def add_left(self, stamp_ns: int, item: A) -> list[tuple[int, A, B]]:
        """Store `item` and return every pair now complete, in stamp order."""
        self.put_left(stamp_ns, item)
        return self._drain()

    def add_right(self, stamp_ns: int, item: B) -> list[tuple[int, A, B]]:
        self.put_right(stamp_ns, item)
        return self._drain()

    def put_left(self, stamp_ns: int, item: A) -> bool:
        """Store `item` without taking pairs; False when it was dropped as stale (see drop_stale)."""
        return self._put(self._left, stamp_ns, item)

    def put_right(self, stamp_ns: int, item: B) -> bool:
        return self._put(self._right, stamp_ns, item)

    def pop_pair(self, ready: Callable[[int, A, B], bool] | None = None) -> tuple[int, A, B] | None:
        """Take the earliest complete pair, or None when there is none or `ready` refuses it (it then
        stays, and so does every later pair: nothing overtakes it)."""
        common = [k for k in self._left if k in self._right]
        if not common:
            return None
        key = min(common)
        if ready is not None and not ready(key, self._left[key], self._right[key]):
            return None
        pair = (key, self._left.pop(key), self._right.pop(key))
        for side in (self._left, self._right):
            for old in [k for k in side if k < key]:
                del side[old]
        self._last_paired_ns = key
        return pair

    def clear(self) -> None:
        """Forget every unpaired entry and the last pair's stamp."""
        self._left.clear()
        self._right.clear()
        self._last_paired_ns = None

    def _put(self, side: OrderedDict, stamp_ns: int, item: object) -> bool:
        if self._drop_stale and self._last_paired_ns is not None and stamp_ns <= self._last_paired_ns:
            return False
        side[stamp_ns] = item
        while len(side) > self._depth:
            side.popitem(last=False)
        return True

    def _drain(self) -> list[tuple[int, A, B]]:
        pairs = []
        while (pair := self.pop_pair()) is not None:
            pairs.append(pair)
        return pairs
