"""Which cell events the MES bridge may seal: only the supervisor's, each once. Pure and ROS-free.

Any process on the DDS domain can publish on `cell/events`; the audit trail must hold only what the
supervisor journaled. The supervisor signs every event with the cell key when it journals it
(smartcell.core.safety.authority.sign_event), so the live copy on `cell/events` and the replayed copy
on `cell/events/replay` carry the same bytes and signature. The gate refuses, by name:

- `unsigned`: no `auth` (or not 64 lower-case hex digits);
- `bad_signature`: the signature is not the cell key's over exactly these fields (forged, altered,
  or signed with another cell's key);
- `replayed`: a signed event arriving on the live topic a second time (the supervisor publishes each
  event there once; repeats belong on the replay topic), or on the live topic with a seq handled
  before this gate remembers it (sealed before a restart), or with another signature than the one
  handled for that seq (a replay from another journal);
- `malformed`: not a JSON object with a type.

A verbatim repeat on the replay topic is not a refusal: the supervisor's own replay overlaps what
the bridge already has; the EventSequencer drops it (never sealed twice) and counts it as repeated.
Nor is the live copy of an event whose replayed copy came first (two DDS writers need not deliver in
the order they wrote): it is its first time on the live topic.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping

from smartcell.core.safety.authority import AUTH_KEY, verify_event

REFUSAL_KINDS = ('unsigned', 'bad_signature', 'replayed', 'malformed')
REMEMBERED_SIGNATURES = 10_000        # seq -> signature of the newest events handled (for replays with another)


@dataclass(frozen=True)
class Refusal:
    kind: str            # one of REFUSAL_KINDS
    reason: str          # names the event (seq, type) and why


@dataclass
class EventGate:
    """Checks each event before the sequencer sees it; counts and remembers the refusals."""

    key: bytes
    capacity: int = REMEMBERED_SIGNATURES
    counts: Counter[str] = field(default_factory=Counter)
    last: Refusal | None = None
    _seen: OrderedDict[int, tuple[str, bool]] = field(default_factory=OrderedDict)   # seq -> (auth, seen live)

    def check(self, event: Mapping[str, Any], live: bool, last_handled_seq: int) -> Refusal | None:
        """None when `event` may go on to the sequencer; `live`: it came on `cell/events` (not the replay);
        `last_handled_seq`: the newest seq whose records are sealed or queued (EventSequencer.last_seq)."""
        reason = verify_event(self.key, event)
        if reason is not None:
            signature = event.get(AUTH_KEY)
            kind = 'bad_signature' if isinstance(signature, str) and signature and 'does not match' in reason \
                else 'unsigned'
            return self._refuse(kind, reason)
        seq, signature = event.get('seq'), str(event[AUTH_KEY])
        if not isinstance(seq, int) or isinstance(seq, bool):
            return None                        # signed but unnumbered: the sequencer counts it, nothing sealed
        known = self._seen.get(seq)
        what = f'cell event seq {seq} ({event.get("type")!r})'
        if known is not None and known[0] != signature:
            return self._refuse('replayed', f'{what} was already handled with another signature (a replay from '
                                'another journal or cell)')
        if live and known is not None and known[1]:
            return self._refuse('replayed', f'{what} arrived a second time on cell/events: a replay')
        if live and known is None and seq <= last_handled_seq:
            return self._refuse('replayed', f'{what} arrived on cell/events after seq {last_handled_seq} was '
                                'handled: a replay')
        self._seen[seq] = (signature, live or (known is not None and known[1]))
        self._seen.move_to_end(seq)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return None

    def malformed(self, reason: str) -> Refusal:
        return self._refuse('malformed', reason)

    @property
    def refused(self) -> int:
        return sum(self.counts.values())

    def _refuse(self, kind: str, reason: str) -> Refusal:
        self.counts[kind] += 1
        self.last = Refusal(kind, reason)
        return self.last
