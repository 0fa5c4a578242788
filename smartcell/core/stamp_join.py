"""Exact-stamp pairing of two streams (the message_filters TimeSynchronizer idea), free of ROS.

In lockstep simulation the people seen at t must be judged against the robot at t, whatever
arrives first; the arm pairs the twin's state of tick t with the verdict of tick t the same way.
Older unpaired entries are dropped once a newer pair completes; each side keeps at most `depth`.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

A = TypeVar('A')
B = TypeVar('B')


class ExactStampJoiner(Generic[A, B]):
    def __init__(self, depth: int = 64) -> None:
        self._depth = depth
        self._left: OrderedDict[int, A] = OrderedDict()
        self._right: OrderedDict[int, B] = OrderedDict()

    def add_left(self, stamp_ns: int, item: A) -> list[tuple[int, A, B]]:
        self._left[stamp_ns] = item
        return self._pairs()

    def add_right(self, stamp_ns: int, item: B) -> list[tuple[int, A, B]]:
        self._right[stamp_ns] = item
        return self._pairs()

    def clear(self) -> None:
        self._left.clear()
        self._right.clear()

    def _pairs(self) -> list[tuple[int, A, B]]:
        for side in (self._left, self._right):
            while len(side) > self._depth:
                side.popitem(last=False)
        pairs = []
        for key in sorted(k for k in self._left if k in self._right):
            pairs.append((key, self._left.pop(key), self._right.pop(key)))
            for side in (self._left, self._right):
                for old in [k for k in side if k < key]:
                    del side[old]
        return pairs
