"""Recorded safety verdicts against re-computed ones: the agreement a shadow mode reports."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class VerdictSample:
    """One verdict as the arm sees it: the people data's stamp, the speed scale in [0, 1], the safety state."""

    stamp_ns: int
    speed_scale: float
    state: str


@dataclass(frozen=True)
class Disagreement:
    stamp_ns: int
    recorded: VerdictSample | None
    replayed: VerdictSample | None
    reason: str


@dataclass(frozen=True)
class Agreement:
    """compared: stamps with a verdict on both sides; a stamp on one side only is a disagreement too,
    except replayed stamps before the first or after the last recorded verdict (the recording started
    late or ended first; the replayed inputs still set the controller's state)."""

    compared: int
    agreed: int
    max_abs_scale_diff: float
    disagreements: int
    first: Disagreement | None
    tail_not_recorded: int
    head_not_recorded: int = 0


    @property
    def ok(self) -> bool:
        return self.compared > 0 and self.disagreements == 0

    def summary(self) -> str:
        text = (f'{self.agreed}/{self.compared} verdicts agree, max |delta speed_scale| = '
                f'{self.max_abs_scale_diff:.3g}, {self.disagreements} disagreement(s)')
        if self.head_not_recorded:
            text += f' ({self.head_not_recorded} replayed before the first recorded verdict, not compared)'
        if self.tail_not_recorded:
            text += f' ({self.tail_not_recorded} replayed after the last recorded verdict, not compared)'
        if self.first is not None:
            text += f'; first at stamp {self.first.stamp_ns * 1e-9:.6f} s: {self.first.reason}'
        return text


def last_per_stamp(samples: Iterable[VerdictSample]) -> dict[int, VerdictSample]:
    """The verdict that stood for each stamp (a repeated tick repeats its verdict; the last one counts)."""
    return {s.stamp_ns: s for s in samples}


def compare_verdicts(recorded: Iterable[VerdictSample], replayed: Iterable[VerdictSample],
                     scale_tolerance: float = 1e-9) -> Agreement:
    """Stamp by stamp: equal state and |delta scale| <= scale_tolerance; a NaN scale never agrees."""
    rec, rep = last_per_stamp(recorded), last_per_stamp(replayed)
    first_recorded, last_recorded = min(rec, default=-1), max(rec, default=-1)
    compared = agreed = disagreements = tail = head = 0
    max_diff = 0.0
    first: Disagreement | None = None
    for stamp in sorted(set(rec) | set(rep)):
        a, b = rec.get(stamp), rep.get(stamp)
        if a is None and stamp > last_recorded:
            tail += 1
            continue
        if a is None and stamp < first_recorded:
            head += 1
            continue
        reason = ''
        if a is None:
            reason = 'a replayed verdict the recording does not have'
        elif b is None:
            reason = 'a recorded verdict the replay did not produce (its people or joint data are not recorded?)'
        else:
            compared += 1
            diff = abs(a.speed_scale - b.speed_scale)
            diff = math.inf if math.isnan(diff) else diff
            max_diff = max(max_diff, diff)
            if a.state != b.state:
                reason = f'state {a.state!r} recorded, {b.state!r} replayed'
            elif not diff <= scale_tolerance:
                reason = f'speed_scale {a.speed_scale!r} recorded, {b.speed_scale!r} replayed'
            else:
                agreed += 1
        if reason:
            disagreements += 1
            if first is None:
                first = Disagreement(stamp, a, b, reason)
    return Agreement(compared, agreed, max_diff, disagreements, first, tail, head)
