"""`smartcell campaign`: N seeded safety scenarios in the twin, SSM audited against ground truth.

Each scenario (people walking 1.0-1.6 m/s or running 2.0 m/s to every side of the robot that the
fence leaves open, passing, standing, reaching in, stopping short; or working at the shared
assembly station: at it all run, handing parts over from the bench, reaching across the table; one
or two people, so one can hide the other from the scanner; sometimes a scanner dropout) runs twice
on the same paths: with the supervisor's safety pipeline (SSM + zones + fail-safe, PFL caps in the
shared workspaces, config/cell.yaml) and with a static stop zone sized by ISO 13855. Reported
(smartcell.core.safety.ground_truth has the rule):

  * contacts above the body region's quasi-static limit (ISO/TS 15066 Annex A) - must be 0;
  * samples where the true separation was below S_p while the robot moved faster than allowed,
    or a commanded stop ran longer or further than the stopping model promises - must be 0;
  * in collaborative mode (PFL instead of S_p), samples with the robot faster than the PFL cap - must be 0;
  * parts per hour with SSM against the static zone, overall and per behaviour.

    smartcell campaign --scenarios 1000 --workers 2 --output campaign.json

Exit status 1 when SSM had any violation, collaborative overspeed or contact above a limit; 2 on bad
arguments or configuration (e.g. a scanner background_file that does not fit the scanner).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DURATION_S = 30.0


def _run_one(job: tuple[int, int, float, str, str, tuple[str, ...]]) -> list[dict]:
    index, seed, duration_s, cell_yaml, config_dir, policies = job
    from smartcell.twin.campaign import CampaignSettings, campaign_scenario, run_scenario
    settings = CampaignSettings.from_files(Path(cell_yaml), Path(config_dir))
    scenario = campaign_scenario(index, seed, duration_s)
    results = []
    for policy in policies:
        result = run_scenario(scenario, policy, settings).as_dict()
        result['description'] = scenario.description
        results.append(result)
    return results


def _totals(rows: list[dict]) -> dict[str, Any]:
    """One policy's figures over some scenarios' results."""
    duration = sum(r['duration_s'] for r in rows)
    rate_hz = rows[0].get('scan_rate_hz', 1.0) if rows else 1.0
    parts = sum(r['parts'] for r in rows)
    return {
        'violations': sum(r['violations'] for r in rows),
        'scenarios_with_violations': sum(1 for r in rows if r['violations']),
        'contacts': sum(r['contacts'] for r in rows),
        'contacts_above_limit': sum(r['contacts_above_limit'] for r in rows),
        'rated_force_stops': sum(r.get('rated_force_stops', 0) for r in rows),
        'peak_contact_force_n': max((r.get('peak_contact_force_n', 0.0) for r in rows), default=0.0),
        'peak_robot_force_n': max((r.get('peak_robot_force_n', 0.0) for r in rows), default=0.0),
        'contacts_above_limit_by_person': sum(r.get('contacts_above_limit_by_person', 0) for r in rows),
        'pfl_overspeed_samples': sum(r.get('pfl_overspeed_samples', 0) for r in rows),
        'ghost_share': sum(r.get('ghost_ticks', 0) for r in rows) / (duration * rate_hz) if duration else math.nan,
        'stops': sum(r['stops'] for r in rows),
        'stopped_share': sum(r['stopped_time_s'] for r in rows) / duration if duration else math.nan,
        'collaborative_share': sum(r.get('collaborative_time_s', 0.0) for r in rows) / duration if duration
        else math.nan,
        'approach_samples': sum(r['approach_samples'] for r in rows),
        'worst_margin_m': min((r['worst_margin_m'] for r in rows), default=math.inf),
        'min_separation_m': min((r['min_separation_m'] for r in rows), default=math.inf),
        'parts': parts,
        'parts_per_hour': parts / duration * 3600.0 if duration else math.nan,
    }


def _gain(values: dict[str, Any]) -> float | None:
    """SSM parts per hour over the static zone's, minus 1; None without both or when static made none."""
    if 'ssm' in values and 'static' in values and values['static']['parts_per_hour'] > 0:
        return values['ssm']['parts_per_hour'] / values['static']['parts_per_hour'] - 1
    return None


def failed(totals: dict[str, Any]) -> bool:
    """The audit's verdict on one policy's totals: any contact above a limit, any sample faster than
    S_p allows or any stop beyond the stopping model, any collaborative sample above the PFL cap."""
    return bool(totals['violations'] or totals['contacts_above_limit'] or totals['pfl_overspeed_samples'])


def summarize(results: list[dict], policies: tuple[str, ...]) -> dict:
    """Totals per policy and the SSM gain over the static zone, overall and per behaviour."""
    summary: dict[str, Any] = {'scenarios': len({r['index'] for r in results})}
    for policy in policies:
        summary[policy] = _totals([r for r in results if r['policy'] == policy])
    gain = _gain(summary)
    if gain is not None:
        summary['ssm_gain_over_static'] = gain
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({r['kind'] for r in results}):
        rows = [r for r in results if r['kind'] == kind]
        by_kind[kind] = {'scenarios': len({r['index'] for r in rows})}
        for policy in policies:
            by_kind[kind][policy] = _totals([r for r in rows if r['policy'] == policy])
        gain = _gain(by_kind[kind])
        if gain is not None:
            by_kind[kind]['ssm_gain_over_static'] = gain
    summary['by_kind'] = by_kind
    return summary


def format_summary(summary: dict, policies: tuple[str, ...], wall_s: float, workers: int) -> str:
    lines = [f'{summary["scenarios"]} scenarios, {wall_s:.0f} s wall with {workers} worker(s)', '']
    rows = [('contacts above the quasi-static limit (robot\'s share)', 'contacts_above_limit', '{:.0f}'),
            ('samples faster than allowed (S_p) or stops beyond the model', 'violations', '{:.0f}'),
            ('scenarios with such samples', 'scenarios_with_violations', '{:.0f}'),
            ('collaborative samples faster than the PFL cap', 'pfl_overspeed_samples', '{:.0f}'),
            ('contacts (region x link x tick)', 'contacts', '{:.0f}'),
            ('largest robot share of a contact force, Annex A model (N)', 'peak_robot_force_n', '{:.0f}'),
            ('largest contact force a person met, their swing included (N)', 'peak_contact_force_n', '{:.0f}'),
            ('contacts above the limit only by the person\'s own swing', 'contacts_above_limit_by_person', '{:.0f}'),
            ('contacts held by the cobot\'s own force limit', 'rated_force_stops', '{:.0f}'),
            ('robot approaching a person within 2 m (samples)', 'approach_samples', '{:.0f}'),
            ('worst margin d - S_p while approaching (m)', 'worst_margin_m', '{:.3f}'),
            ('closest true person-robot distance (m)', 'min_separation_m', '{:.3f}'),
            ('scans with more people tracked than there are', 'ghost_share', '{:.2%}'),
            ('stops', 'stops', '{:.0f}'),
            ('share of time stopped', 'stopped_share', '{:.1%}'),
            ('share of time collaborative (PFL caps)', 'collaborative_share', '{:.1%}'),
            ('parts per hour', 'parts_per_hour', '{:.1f}')]
    width = max(len(r[0]) for r in rows)
    lines.append(' ' * width + ''.join(f'{p:>12}' for p in policies))
    for label, key, fmt in rows:
        lines.append(label.ljust(width) + ''.join(f'{fmt.format(summary[p][key]):>12}' for p in policies))
    if 'ssm_gain_over_static' in summary:
        lines += ['', f'SSM parts per hour vs the static zone: {summary["ssm_gain_over_static"]:+.1%}']
    elif 'ssm' in policies and 'static' in policies:
        lines += ['', 'SSM parts per hour vs the static zone: no ratio (the static zone made no parts)']
    # Per behaviour, per policy: parts/h, stops, share stopped, audit findings (violations +
    # collaborative overspeed samples, contacts above the limit), share collaborative.
    columns = (('parts/h', 'parts_per_hour', '{:.1f}'), ('stops', 'stops', '{:.0f}'),
               ('stopped', 'stopped_share', '{:.0%}'), ('viol', 'violations', '{:.0f}'),
               ('>limit', 'contacts_above_limit', '{:.0f}'), ('collab', 'collaborative_share', '{:.0%}'))
    kind_width = max([len('behaviour')] + [len(k) for k in summary['by_kind']]) + 2
    lines += ['', 'by what the people do (viol: samples faster than S_p or the PFL cap, or stops beyond the '
              'model; >limit: contacts above the quasi-static limit):',
              f'{"":<{kind_width}}{"":>9}' + ''.join(f'  {p:<{8 * len(columns) - 2}}' for p in policies)
              + ('  SSM vs' if 'ssm_gain_over_static' in summary or {'ssm', 'static'} <= set(policies) else ''),
              f'{"behaviour":<{kind_width}}{"scenarios":>9}' + ''.join(f'{c[0]:>8}' for _ in policies for c in columns)
              + ('  static' if {'ssm', 'static'} <= set(policies) else '')]
    for kind, values in summary['by_kind'].items():
        line = f'{kind:<{kind_width}}{values["scenarios"]:>9}'
        for policy in policies:
            totals = dict(values[policy], violations=values[policy]['violations']
                          + values[policy]['pfl_overspeed_samples'])
            line += ''.join(f'{fmt.format(totals[key]):>8}' for _, key, fmt in columns)
        if {'ssm', 'static'} <= set(policies):
            gain = values.get('ssm_gain_over_static')
            line += f'{gain:>+8.0%}' if gain is not None else f'{"n/a":>8}'
        lines.append(line)
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='smartcell campaign', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--scenarios', type=int, default=1000, help='number of scenarios (default 1000)')
    parser.add_argument('--seed', type=int, default=1, help='campaign seed: same seed, same scenarios')
    parser.add_argument('--duration', type=float, default=DEFAULT_DURATION_S, help='simulated s per scenario')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1, help='parallel processes')
    parser.add_argument('--policies', default='ssm,static',
                        help="comma-separated of ssm, static, none ('none' = no safety function: the audit's "
                             'own check that it can fail)')
    parser.add_argument('--config', default='', help='cell parameter file (default: the installed config/cell.yaml)')
    parser.add_argument('--output', default='', help='write per-scenario results and the summary as JSON here')
    args = parser.parse_args(argv)
    from smartcell.twin.campaign import POLICIES
    policies = tuple(p for p in args.policies.split(',') if p)
    problems = []
    if args.scenarios < 1:
        problems.append(f'--scenarios must be >= 1, got {args.scenarios}')
    if not (math.isfinite(args.duration) and 1.0 <= args.duration <= 3600.0):
        problems.append(f'--duration must be in [1, 3600] s, got {args.duration}')
    if args.workers < 1:
        problems.append(f'--workers must be >= 1, got {args.workers}')
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        problems.append(f'--policies {args.policies!r}: accepted {", ".join(POLICIES)}')
    if problems:
        parser.error('; '.join(problems))
    from smartcell.core.params import ConfigError
    from smartcell.share import ShareFileMissing, share_dir, share_file
    from smartcell.twin.campaign import CampaignSettings
    try:
        # As the nodes: the cell file names other files only where it overrides the installed ones.
        cell_yaml = Path(args.config) if args.config else share_file('config', 'cell.yaml')
        config_dir = share_dir() / 'config'
        CampaignSettings.from_files(cell_yaml, config_dir).static_field_radius_m()     # fail before forking
    except (ConfigError, ShareFileMissing, OSError, ValueError) as exc:     # BackgroundError is a ValueError
        print(f'smartcell campaign: {exc}', file=sys.stderr)
        return 2

    jobs = [(i, args.seed, args.duration, str(cell_yaml), str(config_dir), policies) for i in range(args.scenarios)]
    results: list[dict] = []
    start = time.perf_counter()
    workers = min(args.workers, args.scenarios)
    with ProcessPoolExecutor(workers, mp_context=get_context('spawn')) as pool:
        for done, scenario_results in enumerate(pool.map(_run_one, jobs, chunksize=1), start=1):
            results.extend(scenario_results)
            if done % max(1, args.scenarios // 20) == 0 or done == args.scenarios:
                print(f'campaign: {done}/{args.scenarios} scenarios, {time.perf_counter() - start:.0f} s',
                      file=sys.stderr, flush=True)
    wall_s = time.perf_counter() - start
    summary = summarize(results, policies)
    summary.update(wall_s=wall_s, workers=workers, seed=args.seed, duration_s=args.duration,
                   simulated_s=args.duration * args.scenarios * len(policies))
    print(format_summary(summary, policies, wall_s, workers))
    if args.output:
        Path(args.output).write_text(json.dumps(_finite({'summary': summary, 'scenarios': results}), indent=1))
        print(f'\nper-scenario results: {args.output}')
    return 1 if 'ssm' in policies and failed(summary['ssm']) else 0


def _finite(value):
    """Plain JSON: numpy numbers as Python ones, infinities and NaN (nothing measured) as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


if __name__ == '__main__':
    raise SystemExit(main())
