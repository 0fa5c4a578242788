"""Cell events in `seq` order, each exactly once: the MES bridge's side of the event journal.

The supervisor numbers every cell event (`seq`, per cell, gapless, continued across restarts from
its journal) and journals it before publishing. A consumer that keeps the last seq it has handled
(`last_seq`) therefore knows exactly what it has not seen: an event with seq <= last_seq is a
repeat (dropped), seq == last_seq + 1 is next (handled), anything above leaves a hole, whose
events it asks the supervisor to replay from the journal; the later events wait here meanwhile.

Pure and ROS-free; the bridge persists `last_seq` with the records it produced (one outbox
transaction), so a bridge killed at any moment resumes with neither a repeat nor a gap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

MAX_HELD_EVENTS = 10_000      # events kept while a hole is being filled; beyond that the newest are dropped
                              # (they are in the journal and come back with the next replay)


@dataclass
class EventSequencer:
    """Takes events in any order and with repeats; gives them back in seq order, each once."""

    last_seq: int = 0                             # the newest seq handled (persisted by the caller)
    max_held: int = MAX_HELD_EVENTS
    held: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    repeats: int = 0                              # events dropped because they were handled already
    dropped_held: int = 0                         # events not held (the hole was too long); replayed later
    unnumbered: int = 0                           # events without an integer seq (not from a journaling cell)

    def offer(self, event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The events that are now next in order (maybe none, maybe several that were waiting)."""
        seq = event.get('seq')
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            self.unnumbered += 1
            return []
        if seq <= self.last_seq or seq in self.held:
            self.repeats += 1
            return []
        if seq > self.last_seq + 1:
            if len(self.held) < self.max_held:
                self.held[seq] = event
            else:
                self.dropped_held += 1
            return []
        ready = [event]
        self.last_seq = seq
        while self.last_seq + 1 in self.held:
            self.last_seq += 1
            ready.append(self.held.pop(self.last_seq))
        return ready

    @property
    def hole(self) -> tuple[int, int] | None:
        """(first missing seq, first seq held after it), or None when nothing is missing as far as seen."""
        if not self.held:
            return None
        return self.last_seq + 1, min(self.held)
