"""`smartcell safety-report LOG [--plot out.png] [--json]`: summarise a safety evidence log.

Prints: cycles and time span; stops by reason; the worst margin min(separation - S_p) while the
arm was moving; time at reduced speed and stopped; reaction times from each intrusion to the arm
reporting the commanded scale. With --plot, separation vs S_p and the speed scales over time.
Exit codes: 0 report printed, 2 unreadable or empty log / bad options.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smartcell.core.evidence import EvidenceError, EvidenceLog, read_evidence

STOP_EVENTS = ('stop', 'fault', 'emergency_stop')
MAX_ACCOUNTED_GAP_S = 1.0       # a longer gap between cycles is a silence, not time at some speed
_SCALE_TOLERANCE = 1e-6


@dataclass
class Summary:
    cycles: int
    start_s: float
    end_s: float
    stops_by_reason: dict[str, int]
    worst_margin_m: float            # min(separation - S_p) over cycles with the arm moving; inf if none
    worst_margin_stamp_s: float
    reduced_speed_time_s: float
    stopped_time_s: float
    intrusions: int
    reaction_times_s: list[float] = field(default_factory=list)
    reactions_never_applied: int = 0
    truncated_tail: bool = False


def reason_kind(reason: str) -> str:
    """A reason with its numbers replaced by '#', so stops group by cause, not by distance."""
    return re.sub(r'-?\d+(\.\d+)?', '#', reason).strip() or '(no reason given)'


def summarise(log: EvidenceLog) -> Summary:
    cycles = sorted(log.cycles(), key=lambda r: r['stamp_s'])
    if not cycles:
        raise EvidenceError(f'{log.path}: the log holds no cycle records')
    stops = Counter(reason_kind(e.get('reason', '')) for e in log.events() if e.get('event') in STOP_EVENTS)
    worst, worst_at = math.inf, math.nan
    reduced_s = stopped_s = 0.0
    for record, after in zip(cycles, cycles[1:] + [None]):
        moving = record.get('applied_scale', 0.0) > 0.0 or record.get('speed_scale', 0.0) > 0.0
        margin = record.get('margin_m', math.inf)
        if moving and isinstance(margin, (int, float)) and margin < worst:
            worst, worst_at = margin, record['stamp_s']
        if after is None:
            continue
        dt = after['stamp_s'] - record['stamp_s']
        if not 0.0 < dt <= MAX_ACCOUNTED_GAP_S:
            continue
        if record['speed_scale'] <= 0.0:
            stopped_s += dt
        elif record['speed_scale'] < 1.0:
            reduced_s += dt
    reactions, never = [], 0
    intrusions = [e for e in log.events() if e.get('event') == 'intrusion']
    for event in intrusions:
        commanded = event.get('speed_scale', 0.0)
        applied = next((c for c in cycles if c['stamp_s'] >= event['stamp_s']
                        and c.get('applied_scale', 1.0) <= commanded + _SCALE_TOLERANCE), None)
        if applied is None:
            never += 1
        else:
            reactions.append(applied['stamp_s'] - event['stamp_s'])
    return Summary(len(cycles), cycles[0]['stamp_s'], cycles[-1]['stamp_s'], dict(stops.most_common()), worst,
                   worst_at, reduced_s, stopped_s, len(intrusions), reactions, never, log.truncated_tail is not None)


def format_summary(summary: Summary) -> str:
    lines = [f'cycles: {summary.cycles} over {summary.end_s - summary.start_s:.2f} s '
             f'({summary.start_s:.3f} .. {summary.end_s:.3f} s)']
    if summary.truncated_tail:
        lines.append('warning: the last line was truncated (writer crashed mid-record); it was skipped')
    lines.append(f'stops: {sum(summary.stops_by_reason.values())}')
    lines += [f'  {count:5d}  {reason}' for reason, count in summary.stops_by_reason.items()]
    if math.isfinite(summary.worst_margin_m):
        verdict = 'OK' if summary.worst_margin_m >= 0.0 else 'VIOLATION: closer than S_p while moving'
        lines.append(f'worst margin while moving (separation - S_p): {summary.worst_margin_m:.3f} m '
                     f'at {summary.worst_margin_stamp_s:.3f} s  {verdict}')
    else:
        lines.append('worst margin while moving: nobody near the moving arm')
    lines.append(f'time at reduced speed: {summary.reduced_speed_time_s:.2f} s; '
                 f'stopped: {summary.stopped_time_s:.2f} s')
    if summary.reaction_times_s:
        ordered = sorted(summary.reaction_times_s)
        lines.append(f'reaction intrusion -> scale applied: {len(ordered)} of {summary.intrusions}, '
                     f'median {ordered[len(ordered) // 2]:.3f} s, max {ordered[-1]:.3f} s')
    else:
        lines.append(f'reaction intrusion -> scale applied: none measured ({summary.intrusions} intrusions)')
    if summary.reactions_never_applied:
        lines.append(f'  {summary.reactions_never_applied} intrusion(s) never saw the commanded scale applied')
    return '\n'.join(lines)


def plot(log: EvidenceLog, out: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')               # headless: files only, never a window
    import matplotlib.pyplot as plt

    cycles = sorted(log.cycles(), key=lambda r: r['stamp_s'])
    t = [c['stamp_s'] for c in cycles]

    def finite(values: list[Any]) -> list[float]:
        return [v if isinstance(v, (int, float)) and math.isfinite(v) else math.nan for v in values]

    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
    top.plot(t, finite([c.get('separation_m') for c in cycles]), label='separation (m)')
    top.plot(t, finite([c.get('protective_separation_m') for c in cycles]), label='S_p (m)')
    top.set_ylabel('m')
    top.legend(loc='upper right')
    bottom.step(t, [c['speed_scale'] for c in cycles], where='post', label='commanded scale')
    bottom.step(t, finite([c.get('applied_scale') for c in cycles]), where='post', label='applied scale')
    for event in log.events():
        if event.get('event') in STOP_EVENTS:
            bottom.axvline(event['stamp_s'], color='red', alpha=0.3)
    bottom.set_ylim(-0.05, 1.05)
    bottom.set_xlabel('time (s)')
    bottom.legend(loc='upper right')
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='smartcell safety-report', description=__doc__.splitlines()[0])
    parser.add_argument('log', type=Path, help='evidence log (JSON lines) written by the supervisor')
    parser.add_argument('--plot', type=Path, metavar='OUT.png', help='plot separation vs S_p and the speed scale')
    parser.add_argument('--json', action='store_true', help='print the summary as JSON instead of text')
    try:
        options = parser.parse_args(argv)
    except SystemExit as exc:           # argparse has printed the usage error
        return int(exc.code or 0)
    try:
        log = read_evidence(options.log)
        summary = summarise(log)
    except EvidenceError as exc:
        print(f'smartcell safety-report: {exc}', file=sys.stderr)
        return 2
    if options.json:
        print(json.dumps({k: (v if not isinstance(v, float) or math.isfinite(v) else str(v))
                          for k, v in asdict(summary).items()}, indent=2))
    else:
        print(format_summary(summary))
    if options.plot is not None:
        plot(log, options.plot)
        print(f'plot written to {options.plot}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main(sys.argv[1:]))
