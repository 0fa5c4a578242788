"""`smartcell safety-report LOG [--key-file KEY] [--plot out.png] [--json]`: verify and summarise a safety evidence log.

First verifies the log's hash chain, its MACs (with --key-file, the cell key) and its anchor
(LOG.anchor), and names every finding (smartcell.core.safety.evidence.verify_evidence). With
`--anchor-seq N --anchor-hash H` (an `anchor` record the supervisor sent to the MES: its body's
evidence_seq and evidence_hash) the log must also hold record N with hash H: a log cut before N, or
re-sealed from before N together with its local anchor, fails. Then prints:
cycles and time span; stops by reason; the worst margin min(separation - S_p) while the arm was
moving; violations (a cycle closer than S_p while moving, a contact above its body region's limit);
time at reduced speed and stopped; reaction times from each intrusion to the arm reporting the
commanded scale. With --plot, separation vs S_p and the speed scales over time, violations marked.

Exit status: 0 only for an intact chain without violations; 1 for a violation or a broken chain
(edited, re-sealed, reordered, records or tail missing, missing anchor, not matching the MES
anchor); 2 unreadable, empty or not an evidence chain, or bad options.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smartcell.core.jsonio import strict_json_dumps
from smartcell.core.mes.audit_trail import Anchor, Finding, FindingKind
from smartcell.core.safety.evidence import (EvidenceError, EvidenceLog, VerificationResult, read_evidence,
                                            verify_evidence)
from smartcell.tools.audit import findings_to_show, read_key_file

STOP_EVENTS = ('stop', 'fault', 'emergency_stop')
EXIT_OK, EXIT_FAIL, EXIT_UNREADABLE = 0, 1, 2
MAX_LISTED = 10
MAX_ACCOUNTED_GAP_S = 1.0       # a longer gap between cycles is a silence, not time at some speed
_SCALE_TOLERANCE = 1e-6
HASH_HEX_DIGITS = 64


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
    violations: list[dict[str, Any]] = field(default_factory=list)   # stamp_s, kind, detail


@dataclass(frozen=True)
class Violation:
    stamp_s: float
    kind: str           # closer_than_sp_while_moving | contact_above_limit
    detail: str


def _moving(record: dict[str, Any]) -> bool:
    return record.get('applied_scale', 0.0) > 0.0 or record.get('speed_scale', 0.0) > 0.0


def _pfl_applied(previous: dict[str, Any] | None) -> bool:
    """The arm still applies a collaborative (PFL) verdict: in the cycle right after one (a switch back
    to separation monitoring is judged at once on the same data) its speed was chosen by the PFL cap,
    with contact permitted, so that cycle is judged by PFL (speed cap, contacts), not against S_p."""
    return previous is not None and previous.get('mode') == 'collaborative'


def _braking(previous: dict[str, Any] | None, record: dict[str, Any]) -> bool:
    """The arm still moves only because it is braking: the previous verdict and this one stop it. S_p is
    the distance at which a stop must begin (ISO/TS 15066 5.5.4); once begun, the ground covered while
    stopping is S_p's own S_s term, so these cycles are not judged against S_p again."""
    return previous is not None and previous.get('speed_scale', 1.0) <= 0.0 and record.get('speed_scale', 1.0) <= 0.0


def _judged_against_sp(previous: dict[str, Any] | None, record: dict[str, Any]) -> bool:
    return _moving(record) and not _pfl_applied(previous) and not _braking(previous, record)


def find_violations(log: EvidenceLog) -> list[Violation]:
    """Cycles where the arm moved closer than S_p, and contacts above their body region's limit."""
    found = []
    previous: dict[str, Any] | None = None
    for cycle in log.cycles():
        margin = cycle.get('margin_m')
        judged, previous = _judged_against_sp(previous, cycle), cycle
        if judged and isinstance(margin, (int, float)) and margin < 0.0:
            found.append(Violation(cycle['stamp_s'], 'closer_than_sp_while_moving',
                                   f'separation {cycle.get("separation_m", math.nan):.3f} m < S_p '
                                   f'{cycle.get("protective_separation_m", math.nan):.3f} m with the arm moving '
                                   f'(applied scale {cycle.get("applied_scale", math.nan):.2f})'))
    for event in log.events():
        details = event.get('details') or {}
        force, limit = details.get('force_N'), details.get('limit_N')
        above = details.get('outcome', 'within_limit') != 'within_limit' or (
            isinstance(force, (int, float)) and isinstance(limit, (int, float)) and force > limit)
        if event.get('event') == 'contact' and above:
            found.append(Violation(event['stamp_s'], 'contact_above_limit', event.get('reason', '')))
    return sorted(found, key=lambda v: v.stamp_s)


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
    befores: list[dict[str, Any] | None] = [None, *cycles[:-1]]
    afters: list[dict[str, Any] | None] = [*cycles[1:], None]
    for before, record, after in zip(befores, cycles, afters):
        moving = _judged_against_sp(before, record)
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
                   worst_at, reduced_s, stopped_s, len(intrusions), reactions, never, log.truncated_tail is not None,
                   [asdict(v) for v in find_violations(log)])


def check_external_anchor(log: Path, anchor: Anchor) -> list[Finding]:
    """Findings of the log against an anchor kept elsewhere (the MES): [] when the log holds record
    `anchor.seq` with hash `anchor.hash`, else tail_missing (cut before it) or anchor_mismatch (re-sealed)."""
    result = verify_evidence(log, None, anchor, require_anchor=True)
    where = f'MES anchor seq {anchor.seq} hash {anchor.hash[:16]}...'
    return [Finding(f.kind, f.seq, f'{where}: {f.detail}') for f in result.findings
            if f.kind in (FindingKind.TAIL_MISSING, FindingKind.ANCHOR_MISMATCH)]


def with_findings(result: VerificationResult, extra: list[Finding]) -> VerificationResult:
    """`result` with more findings (and their counts)."""
    if not extra:
        return result
    counts = dict(result.finding_counts)
    for finding in extra:
        counts[finding.kind.value] = counts.get(finding.kind.value, 0) + 1
    return dataclasses.replace(result, findings=result.findings + tuple(extra), finding_counts=counts)


def external_anchor(seq: int | None, hash_: str | None) -> Anchor | None:
    """The --anchor-seq/--anchor-hash pair as an Anchor; ValueError naming what is wrong with it."""
    if seq is None and hash_ is None:
        return None
    if seq is None or hash_ is None:
        raise ValueError('--anchor-seq and --anchor-hash go together (the evidence_seq and evidence_hash of one '
                         'MES anchor record)')
    if seq < 1:
        raise ValueError(f'--anchor-seq must be >= 1, got {seq}')
    if len(hash_) != HASH_HEX_DIGITS or any(c not in '0123456789abcdef' for c in hash_):
        raise ValueError(f'--anchor-hash must be {HASH_HEX_DIGITS} lower-case hex digits, got {hash_!r}')
    return Anchor(seq, hash_)


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
    if summary.violations:
        lines.append(f'VIOLATIONS: {len(summary.violations)}')
        lines += [f'  {v["stamp_s"]:10.3f} s  {v["kind"]}: {v["detail"]}' for v in summary.violations[:MAX_LISTED]]
        if len(summary.violations) > MAX_LISTED:
            lines.append(f'  ... and {len(summary.violations) - MAX_LISTED} more')
    else:
        lines.append('violations: none')
    return '\n'.join(lines)


def format_verification(result: VerificationResult) -> str:
    checks = ['hash chain'] + (['MACs'] if result.mac_checked else []) + (['anchor'] if result.anchor_checked else [])
    if result.ok:
        lines = [f'evidence chain: intact, {result.records} records up to seq {result.last_seq} '
                 f'({", ".join(checks)} checked)']
    else:
        counts = result.finding_counts
        lines = [f'evidence chain: BROKEN ({", ".join(f"{k} {n}" for k, n in counts.items())})']
        shown = findings_to_show(result.findings, MAX_LISTED)
        lines += [f'  {finding}' for finding in shown]
        if sum(counts.values()) > len(shown):
            lines.append(f'  ... and {sum(counts.values()) - len(shown)} more')
    lines += [f'note: {note}' for note in result.notes]
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
    violations = find_violations(log)
    if violations:
        by_stamp = {c['stamp_s']: c for c in cycles}
        stamps = [v.stamp_s for v in violations]
        heights = finite([by_stamp.get(v.stamp_s, {}).get('separation_m', 0.0) for v in violations])
        top.scatter(stamps, [h if math.isfinite(h) else 0.0 for h in heights], color='red', marker='x', zorder=5,
                    label=f'violation ({len(violations)})')
        for stamp in stamps:
            top.axvline(stamp, color='red', alpha=0.15)
        top.legend(loc='upper right')
        top.set_title(f'{len(violations)} violation(s): closer than S_p while moving / contact above limit',
                      color='red')
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
    parser.add_argument('--key-file', type=Path, help='the cell key file: check every record\'s MAC')
    parser.add_argument('--anchor', type=Path, help='anchor file (default LOG.anchor)')
    parser.add_argument('--no-anchor', action='store_true',
                        help='do not require the anchor (deletion of the newest records then goes unnoticed)')
    parser.add_argument('--anchor-seq', type=int, metavar='N',
                        help="evidence_seq of an `anchor` record from the MES: the log must hold record N ...")
    parser.add_argument('--anchor-hash', metavar='HASH', help='... with this hash (its evidence_hash)')
    try:
        options = parser.parse_args(argv)
    except SystemExit as exc:           # argparse has printed the usage error
        return int(exc.code or 0)
    try:
        key = None
        if options.key_file is not None:
            key = read_key_file(options.key_file)
        if not options.log.is_file():
            raise EvidenceError(f'evidence log not found: {options.log}')
        mes_anchor = external_anchor(options.anchor_seq, options.anchor_hash)
        verification = verify_evidence(options.log, key, options.anchor, require_anchor=not options.no_anchor)
        if mes_anchor is not None and FindingKind.NOT_A_CHAIN not in verification.kinds():
            verification = with_findings(verification, check_external_anchor(options.log, mes_anchor))
    except (EvidenceError, ValueError, OSError) as exc:    # ValueError: a key file that cannot be used
        print(f'smartcell safety-report: {exc}', file=sys.stderr)
        return EXIT_UNREADABLE
    kinds = verification.kinds()
    if FindingKind.NOT_A_CHAIN in kinds or kinds == {FindingKind.EMPTY}:
        print(f'smartcell safety-report: {options.log}: {verification.findings[0].detail}', file=sys.stderr)
        return EXIT_UNREADABLE
    try:
        log = read_evidence(options.log)
        summary = summarise(log)
    except EvidenceError as exc:
        print(f'smartcell safety-report: {exc}', file=sys.stderr)
        if not verification.ok:         # unreadable because it was tampered with: say so
            print(format_verification(verification), file=sys.stderr)
            return EXIT_FAIL
        return EXIT_UNREADABLE
    failures = ([] if verification.ok else ['evidence chain broken']) + \
        ([f'{len(summary.violations)} violation(s)'] if summary.violations else [])
    if options.json:
        report = {**asdict(summary), 'chain': {
            'ok': verification.ok, 'records': verification.records, 'last_seq': verification.last_seq,
            'mac_checked': verification.mac_checked, 'anchor_checked': verification.anchor_checked,
            'finding_counts': dict(verification.finding_counts),
            'findings': [{'kind': f.kind.value, 'seq': f.seq, 'detail': f.detail} for f in verification.findings],
            'notes': list(verification.notes)}, 'result': 'FAIL' if failures else 'PASS', 'failures': failures}
        print(strict_json_dumps(report, reasons={
            'worst_margin_m': 'nobody near the moving arm', 'worst_margin_stamp_s': 'nobody near the moving arm'},
            indent=2))
    else:
        print(format_verification(verification))
        print(format_summary(summary))
    if options.plot is not None:
        plot(log, options.plot)
        print(f'plot written to {options.plot}', file=sys.stderr if options.json else sys.stdout)
    if not options.json:
        print(f'result: FAIL ({"; ".join(failures)})' if failures else 'result: PASS')
    return EXIT_FAIL if failures else EXIT_OK


if __name__ == '__main__':
    raise SystemExit(main(sys.argv[1:]))
