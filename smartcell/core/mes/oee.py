"""OEE (availability x performance x quality) from the cell's own `cell/events`, with losses attributed.

Definitions (docs/mes.md has the worked examples the tests use):
* planned time  = the window (a shift, or a job from `job_started` to `job_complete`); there is no
  separate planned-downtime input: breaks show up as an attributed loss, not as hidden time.
* run time      = time in state `running`.
* availability  = run time / planned time.
* performance   = sum(ideal cycle time x units) / run time. Above 1.0 means the ideal cycle time
  is wrong (too long); it is reported as is and flagged, never clipped.
* quality       = good units / units.
Downtime is attributed by the cell state it was spent in (table below); slowdowns are reported
as time spent at reduced speed (an upper bound of the speed loss they caused).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Mapping, Sequence

from smartcell.core.mes.records import SafetyEventsSummary


class Loss(str, Enum):
    SAFETY_STOP = 'safety_stop'                 # protective / emergency stop
    FAULT = 'fault'
    STARVATION_PERSON = 'starvation_person'     # waiting for the person (reason names operator/person)
    CHANGEOVER = 'changeover'                   # between one job's end and the next job's start
    OTHER_STOP = 'other_stop'                   # idle without a next job, paused, stopping, unknown


# Cell state -> loss when the cell is not running. Unknown states count as OTHER_STOP.
STATE_LOSS: dict[str, Loss] = {
    'protective_stop': Loss.SAFETY_STOP,
    'emergency_stop': Loss.SAFETY_STOP,
    'fault': Loss.FAULT,
}
# Words in a state-change reason that mean the cell waited for the person.
PERSON_WORDS = ('operator', 'person', 'human', 'worker')
RUNNING = 'running'


@dataclass(frozen=True)
class Losses:
    """Where the time went, s (availability losses) plus performance/quality losses."""

    safety_stop_s: float = 0.0
    fault_s: float = 0.0
    starvation_person_s: float = 0.0
    changeover_s: float = 0.0
    other_stop_s: float = 0.0
    slowdown_s: float = 0.0          # time at reduced speed after `slowdown` events, s
    speed_loss_s: float = 0.0        # run time - ideal time; negative when performance > 1
    quality_loss_s: float = 0.0      # ideal time of scrap units


@dataclass(frozen=True)
class OeeResult:
    window_start_s: float
    window_end_s: float
    planned_time_s: float
    run_time_s: float
    ideal_time_s: float              # sum of ideal cycle time x units
    units: int
    good: int
    scrap: int
    availability: float
    performance: float               # NOT clipped; see performance_over_100
    quality: float
    oee: float
    performance_over_100: bool       # the ideal cycle time is too long (or counts are wrong)
    losses: Losses
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        return asdict(self)


@dataclass(frozen=True)
class _Segment:
    start_s: float
    end_s: float
    state: str
    reason: str


def _sorted(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(events, key=lambda e: float(e.get('stamp', 0.0)))


def _segments(events: Sequence[Mapping[str, Any]], start_s: float, end_s: float,
              initial_state: str) -> list[_Segment]:
    """The cell's state timeline clipped to the window (state before the window from earlier events)."""
    state, reason = initial_state, ''
    segments: list[_Segment] = []
    cursor = start_s
    for event in events:
        if event.get('type') != 'state_change':
            continue
        stamp = float(event['stamp'])
        if stamp <= start_s:
            state, reason = str(event.get('to', state)), str(event.get('reason', ''))
            continue
        if stamp >= end_s:
            break
        segments.append(_Segment(cursor, stamp, state, reason))
        state, reason, cursor = str(event.get('to', state)), str(event.get('reason', '')), stamp
    segments.append(_Segment(cursor, end_s, state, reason))
    return [s for s in segments if s.end_s > s.start_s]


def _between_jobs(segment: _Segment, job_marks: Sequence[tuple[float, str]]) -> bool:
    """True when the last job mark before the segment is a completion and a start follows it."""
    before = [kind for stamp, kind in job_marks if stamp <= segment.start_s]
    after = [kind for stamp, kind in job_marks if stamp >= segment.end_s]
    return bool(before) and before[-1] == 'job_complete' and 'job_started' in after


def classify_stop(segment_state: str, reason: str, between_jobs: bool) -> Loss:
    """Loss category of time spent not running."""
    loss = STATE_LOSS.get(segment_state)
    if loss is not None:
        return loss
    if any(word in reason.lower() for word in PERSON_WORDS):
        return Loss.STARVATION_PERSON
    if between_jobs:
        return Loss.CHANGEOVER
    return Loss.OTHER_STOP


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0


def compute_oee(events: Iterable[Mapping[str, Any]], window_start_s: float, window_end_s: float,
                ideal_cycle_s: float | Mapping[str, float], order_id: str | None = None,
                initial_state: str = 'idle') -> OeeResult:
    """OEE over [window_start_s, window_end_s) from cell events (any order, any extra types).

    `ideal_cycle_s` is one ideal cycle time, s, or one per order id. With `order_id`, only that
    order's units count (use `job_window` for the window). Raises ValueError for an empty window,
    a non-positive ideal cycle time, or a unit of an order without an ideal cycle time.
    """
    if not window_end_s > window_start_s:
        raise ValueError(f'window must have positive length, got [{window_start_s}, {window_end_s})')
    ordered = _sorted(events)
    segments = _segments(ordered, window_start_s, window_end_s, initial_state)
    # a unit is stamped when its cycle ends, so it belongs to (start, end]; a slowdown to [start, end)
    unit_events = [e for e in ordered if e.get('type') == 'unit_complete'
                   and window_start_s < float(e.get('stamp', 0.0)) <= window_end_s]
    slowdown_events = [e for e in ordered if e.get('type') == 'slowdown'
                       and window_start_s <= float(e.get('stamp', 0.0)) < window_end_s]
    job_marks = [(float(e['stamp']), str(e['type'])) for e in ordered
                 if e.get('type') in ('job_started', 'job_complete')]

    stop_time = {loss: 0.0 for loss in Loss}
    run_time = 0.0
    for segment in segments:
        length = segment.end_s - segment.start_s
        if segment.state == RUNNING:
            run_time += length
        else:
            stop_time[classify_stop(segment.state, segment.reason, _between_jobs(segment, job_marks))] += length

    warnings: list[str] = []
    units = good = 0
    ideal_time = scrap_ideal = 0.0
    for event in unit_events:
        unit_order = str(event.get('order_id', ''))
        if order_id is not None and unit_order != order_id:
            continue
        ideal = _ideal_for(ideal_cycle_s, unit_order)
        units += 1
        ideal_time += ideal
        if bool(event.get('good', False)):
            good += 1
        else:
            scrap_ideal += ideal
    slowdown = sum(float(e.get('duration_s', 0.0)) for e in slowdown_events)

    planned = window_end_s - window_start_s
    availability = _ratio(run_time, planned)
    performance = _ratio(ideal_time, run_time)
    quality = _ratio(good, units)
    if run_time == 0:
        warnings.append('no run time in the window: performance reported as 0')
    if units == 0:
        warnings.append('no units in the window: quality reported as 0')
    over = performance > 1.0
    if over:
        warnings.append(f'performance {performance:.1%} > 100 %: the ideal cycle time is too long '
                        'or units were counted twice')
    losses = Losses(safety_stop_s=stop_time[Loss.SAFETY_STOP], fault_s=stop_time[Loss.FAULT],
                    starvation_person_s=stop_time[Loss.STARVATION_PERSON],
                    changeover_s=stop_time[Loss.CHANGEOVER], other_stop_s=stop_time[Loss.OTHER_STOP],
                    slowdown_s=min(slowdown, run_time), speed_loss_s=run_time - ideal_time,
                    quality_loss_s=scrap_ideal)
    return OeeResult(window_start_s=window_start_s, window_end_s=window_end_s, planned_time_s=planned,
                     run_time_s=run_time, ideal_time_s=ideal_time, units=units, good=good, scrap=units - good,
                     availability=availability, performance=performance, quality=quality,
                     oee=availability * performance * quality, performance_over_100=over, losses=losses,
                     warnings=tuple(warnings))


def _ideal_for(ideal_cycle_s: float | Mapping[str, float], order_id: str) -> float:
    if isinstance(ideal_cycle_s, Mapping):
        if order_id not in ideal_cycle_s:
            raise ValueError(f'no ideal cycle time for order {order_id!r}; known: {", ".join(sorted(ideal_cycle_s))}')
        value = float(ideal_cycle_s[order_id])
    else:
        value = float(ideal_cycle_s)
    if not value > 0:
        raise ValueError(f'ideal cycle time must be > 0 s, got {value!r} for order {order_id!r}')
    return value


def job_window(events: Iterable[Mapping[str, Any]], order_id: str) -> tuple[float, float]:
    """(job_started stamp, job_complete stamp) of an order; ValueError if it has not started and ended."""
    start = end = None
    for event in _sorted(events):
        if event.get('order_id') != order_id:
            continue
        if event.get('type') == 'job_started' and start is None:
            start = float(event['stamp'])
        elif event.get('type') == 'job_complete':
            end = float(event['stamp'])
    if start is None or end is None:
        raise ValueError(f'order {order_id!r} has no job_started and job_complete events')
    return start, end


def state_before(events: Iterable[Mapping[str, Any]], stamp_s: float, default: str = 'idle') -> str:
    """The cell state in force at `stamp_s` (for `initial_state` of a later window)."""
    state = default
    for event in _sorted(events):
        if float(event.get('stamp', 0.0)) > stamp_s:
            break
        if event.get('type') == 'state_change':
            state = str(event.get('to', state))
    return state


def safety_summary(events: Iterable[Mapping[str, Any]], result: OeeResult, order_id: str = '') -> SafetyEventsSummary:
    """Safety activity in the window of an OEE result (a job or a shift)."""
    window = [e for e in events if result.window_start_s <= float(e.get('stamp', 0.0)) < result.window_end_s]
    return SafetyEventsSummary(
        window_start_s=result.window_start_s, window_end_s=result.window_end_s, order_id=order_id,
        safety_stops=sum(1 for e in window if e.get('type') == 'safety_stop'),
        emergency_stops=sum(1 for e in window if e.get('type') == 'state_change' and e.get('to') == 'emergency_stop'),
        slowdowns=sum(1 for e in window if e.get('type') == 'slowdown'),
        stop_time_s=result.losses.safety_stop_s, slowdown_time_s=result.losses.slowdown_s)
