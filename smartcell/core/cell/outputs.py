"""What the supervisor decides about its outputs, free of ROS: verdict stamps, journal records, replay pages."""
from __future__ import annotations

import math
from typing import Any

from smartcell.core.cell.controller import CLOCK_JUMP_S, CellEvent

NS_PER_S = 1_000_000_000
REPLAY_PAGE_EVENTS = 100         # journaled events replayed per page


class VerdictStamps:
    """Verdict stamps (ns) that never go back by less than a clock jump.

    Outside lockstep a watchdog verdict is stamped now and the next people verdict carries its
    (older) data stamp; the arm reads a stamp going back as a clock jump, so the older one is raised
    to the newest. A real clock reset (a restarted twin: at least CLOCK_JUMP_S back) is passed on:
    the arm must see it.
    """

    def __init__(self) -> None:
        self._last_ns = 0

    def next(self, stamp_ns: int) -> int:
        behind_ns = self._last_ns - stamp_ns
        if 0 < behind_ns < CLOCK_JUMP_S * NS_PER_S:
            stamp_ns = self._last_ns
        self._last_ns = stamp_ns
        return stamp_ns


def journal_record(event: CellEvent, cell_id: str, event_id: str) -> dict[str, Any]:
    """An event as journaled and published: NaN and infinities become null (JSON has neither)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in event.as_record(cell_id, event_id).items()}


class ReplayPages:
    """Which journaled events to replay next for a consumer that asked with the last seq it has.

    Paged, so one timer callback never replays a long history at once; seq is gapless in the
    journal, so a full page means the next one starts right after it.
    """

    def __init__(self, page_events: int = REPLAY_PAGE_EVENTS) -> None:
        self.page_events = page_events
        self._after: int | None = None

    def request(self, last_seq: int) -> None:
        self._after = int(last_seq)

    @property
    def after(self) -> int | None:
        """The seq the next page starts after (None: nothing to replay)."""
        return self._after

    def sent(self, count: int) -> None:
        """`count` events of the page after `after` were replayed."""
        if self._after is not None:
            self._after = self._after + count if count == self.page_events else None
