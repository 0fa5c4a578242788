"""ExactStampJoiner: the one exact-stamp pairing of the supervisor, smartcell replay and the arm."""
from __future__ import annotations

import random

import pytest

from smartcell.core.stamp_join import ExactStampJoiner


def test_pairs_equal_stamps_whichever_side_arrives_first():
    joiner: ExactStampJoiner[str, str] = ExactStampJoiner()
    assert joiner.add_left(10, 'people@10') == []
    assert joiner.add_right(10, 'joints@10') == [(10, 'people@10', 'joints@10')]
    assert joiner.add_right(20, 'joints@20') == []
    assert joiner.add_left(20, 'people@20') == [(20, 'people@20', 'joints@20')]
    assert len(joiner) == 0
    assert joiner.last_paired_ns == 20


def test_different_stamps_never_pair():
    joiner: ExactStampJoiner[str, str] = ExactStampJoiner()
    assert joiner.add_left(10, 'a') == []
    assert joiner.add_right(11, 'b') == []
    assert len(joiner) == 2
    assert joiner.last_paired_ns is None


def test_one_arrival_completing_several_pairs_returns_them_in_stamp_order():
    joiner: ExactStampJoiner[str, str] = ExactStampJoiner()
    for key in (30, 10, 20):
        joiner.add_right(key, f'r{key}')
    # 10 and 20 wait on the left; 30 arriving takes 30 only, and drops the older ones (they never pair now)
    joiner.put_left(20, 'l20')
    joiner.put_left(10, 'l10')
    assert joiner.add_left(30, 'l30') == [(10, 'l10', 'r10'), (20, 'l20', 'r20'), (30, 'l30', 'r30')]


def test_older_unpaired_entries_are_dropped_once_a_newer_pair_is_taken():
    joiner: ExactStampJoiner[str, str] = ExactStampJoiner()
    joiner.add_left(5, 'orphan-left')
    joiner.add_right(7, 'orphan-right')
    assert joiner.add_left(9, 'l9') == []
    assert joiner.add_right(9, 'r9') == [(9, 'l9', 'r9')]
    assert len(joiner) == 0
    assert joiner.add_right(5, 'late') == []     # without drop_stale a late entry is held (it pairs with nothing)
    assert len(joiner) == 1


def test_each_side_is_bounded_by_depth_dropping_the_oldest_received():
    joiner: ExactStampJoiner[int, int] = ExactStampJoiner(depth=3)
    for key in range(10):
        joiner.put_left(key, key)
    assert len(joiner) == 3
    assert joiner.add_right(6, 6) == []          # 6 was dropped: only 7, 8, 9 are kept
    assert joiner.add_right(7, 7) == [(7, 7, 7)]


def test_depth_below_one_is_refused():
    with pytest.raises(ValueError, match='depth'):
        ExactStampJoiner(depth=0)


def test_drop_stale_refuses_stamps_at_or_before_the_last_pair():
    joiner: ExactStampJoiner[str, str] = ExactStampJoiner(drop_stale=True)
    assert joiner.put_left(100, 'l') and joiner.put_right(100, 'r')
    assert joiner.pop_pair() == (100, 'l', 'r')
    assert not joiner.put_left(100, 'repeated tick')
    assert not joiner.put_right(99, 'late tick')
    assert joiner.put_right(101, 'next tick')
    assert len(joiner) == 1


def test_without_drop_stale_a_repeated_tick_pairs_again():
    """The supervisor's behaviour: a re-sent tick 0 (the twin holding for the recorder) is judged again."""
    joiner: ExactStampJoiner[str, str] = ExactStampJoiner()
    assert joiner.add_left(0, 'a') == [] and joiner.add_right(0, 'b') == [(0, 'a', 'b')]
    assert joiner.add_right(0, 'b2') == [] and joiner.add_left(0, 'a2') == [(0, 'a2', 'b2')]


def test_clear_forgets_entries_and_the_stale_mark():
    """A clock jump: the new timeline starts below the old one and must pair again."""
    joiner: ExactStampJoiner[str, str] = ExactStampJoiner(drop_stale=True)
    joiner.put_left(50, 'l'), joiner.put_right(50, 'r')
    assert joiner.pop_pair() is not None
    joiner.put_left(60, 'waiting')
    joiner.clear()
    assert len(joiner) == 0 and joiner.last_paired_ns is None
    assert joiner.put_left(1, 'l1') and joiner.put_right(1, 'r1')
    assert joiner.pop_pair() == (1, 'l1', 'r1')


def test_a_pair_that_is_not_ready_holds_every_later_pair_behind_it():
    joiner: ExactStampJoiner[str, str] = ExactStampJoiner(drop_stale=True)
    for key in (1, 2, 3):
        joiner.put_left(key, f'verdict{key}')
        joiner.put_right(key, f'state{key}')
    blocked = {2}
    seen: list[int] = []

    def ready(key: int, left: str, right: str) -> bool:
        seen.append(key)
        assert (left, right) == (f'verdict{key}', f'state{key}')
        return key not in blocked

    assert joiner.pop_pair(ready) == (1, 'verdict1', 'state1')
    assert joiner.pop_pair(ready) is None          # 2 waits, and 3 may not overtake it
    assert joiner.pop_pair(ready) is None
    assert seen == [1, 2, 2]
    assert len(joiner) == 4 and joiner.last_paired_ns == 1
    blocked.clear()
    assert joiner.pop_pair(ready) == (2, 'verdict2', 'state2')
    assert joiner.pop_pair(ready) == (3, 'verdict3', 'state3')
    assert joiner.pop_pair(ready) is None


def _reference_pairs(events: list[tuple[str, int]], depth: int) -> list[list[tuple[int, str, str]]]:
    """The joiner as first written (the supervisor's semantics), to check the rewrite against."""
    from collections import OrderedDict
    left: OrderedDict[int, str] = OrderedDict()
    right: OrderedDict[int, str] = OrderedDict()
    out = []
    for side_name, key in events:
        (left if side_name == 'L' else right)[key] = f'{side_name}{key}'
        for side in (left, right):
            while len(side) > depth:
                side.popitem(last=False)
        pairs = []
        for k in sorted(k for k in left if k in right):
            pairs.append((k, left.pop(k), right.pop(k)))
            for side in (left, right):
                for old in [o for o in side if o < k]:
                    del side[old]
        out.append(pairs)
    return out


@pytest.mark.parametrize('seed', range(20))
def test_add_returns_what_the_original_joiner_returned_on_random_interleavings(seed):
    rng = random.Random(seed)
    depth = rng.choice([2, 4, 64])
    events = [(rng.choice('LR'), rng.randrange(30)) for _ in range(200)]
    joiner: ExactStampJoiner[str, str] = ExactStampJoiner(depth=depth)
    got = [(joiner.add_left if s == 'L' else joiner.add_right)(k, f'{s}{k}') for s, k in events]
    assert got == _reference_pairs(events, depth)
