"""`smartcell report RUN_DIR [--out FILE] [--ideal-cycle-s S]`: the shift report of a run, one HTML file.

Reads only the run directory that `smartcell sim` (or a real cell with the same paths) leaves:
`kpis.json`; `safety_evidence.jsonl` (smartcell.core.safety.evidence); the cell's event journal
`cell_events.sqlite` (smartcell.io.event_journal: the `cell/events` OEE is computed from); the MES
outbox `mes_outbox.sqlite` when the run had the MES bridge (units and their energy); an MCAP
recording `*.mcap` when the run was recorded; `hmi_actions.jsonl` when the operator station ran;
the node logs. Writes `report.html` beside them (default): KPIs; separation against S_p and the
speed scale over time; the stops with their causes; OEE with its losses as a waterfall; energy per
part; vibration health; node log warnings and errors. Every figure is an inline SVG and there is no
script or external link: the file opens without network access and can be mailed as it is.

A missing source is a sentence in the report saying what is missing and why it matters, never an
empty plot. Exit status: 0 written; 2 the directory or its kpis.json/evidence cannot be read.
"""
from __future__ import annotations

import argparse
import html
import io
import json
import math
import re
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

REPORT_NAME = 'report.html'
STOP_EVENTS = ('stop', 'fault', 'emergency_stop')
CLEAR_EVENTS = ('resume', 'full_speed', 'clear')
MAX_LISTED = 50
MAX_PLOT_POINTS = 4000          # cycles thinned to this many per line (min/max kept by the step plot)
LOG_LINE = re.compile(r'^\[(WARN|ERROR|FATAL)\]')


@dataclass
class RunData:
    run_dir: Path
    kpis: dict[str, float]
    cycles: list[dict[str, Any]]
    events: list[dict[str, Any]]
    evidence_note: str                                  # chain verification in one sentence
    outbox: list[dict[str, Any]] | None                 # None: no MES outbox in this run
    journal: list[dict[str, Any]] | None                # cell/events from the journal; None: none kept
    vibration: dict[str, 'Gearbox'] | None              # hardware id -> health over the run; None: not recorded
    vibration_note: str
    actions: list[dict[str, Any]]
    log_findings: dict[str, list[str]] = field(default_factory=dict)


class ReportError(ValueError):
    """The run directory cannot be reported on; the message names the file."""


# ------------------------------------------------------------------------------------------ reading

def load_run(run_dir: Path) -> RunData:
    from smartcell.core.safety.evidence import EvidenceError, read_evidence, verify_evidence
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f'run directory not found: {run_dir}')
    kpis_path = run_dir / 'kpis.json'
    try:
        kpis = json.loads(kpis_path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f'cannot read {kpis_path}: {exc}') from exc
    if not isinstance(kpis, dict):
        raise ReportError(f'{kpis_path} is not a JSON object')
    evidence_path = run_dir / 'safety_evidence.jsonl'
    try:
        log = read_evidence(evidence_path)
    except EvidenceError as exc:
        raise ReportError(str(exc)) from exc
    result = verify_evidence(evidence_path)
    if result.ok:
        note = f'hash chain and anchor intact ({len(log.records)} records); MACs not checked here ' \
               '(smartcell safety-report --key-file)'
    else:
        kinds = ', '.join(sorted(result.finding_counts)) or 'findings'
        note = f'NOT INTACT: {kinds} (run smartcell safety-report {evidence_path} for details)'
    vibration, vibration_note = _read_vibration(run_dir)
    return RunData(run_dir, {k: float(v) for k, v in kpis.items() if isinstance(v, (int, float))},
                   log.cycles(), log.events(), note, _read_outbox(run_dir / 'mes_outbox.sqlite'),
                   _read_sqlite_json(run_dir / 'cell_events.sqlite', 'SELECT json FROM events ORDER BY seq'),
                   vibration, vibration_note, _read_jsonl(run_dir / 'hmi_actions.jsonl'), _read_logs(run_dir))


def _read_outbox(path: Path) -> list[dict[str, Any]] | None:
    return _read_sqlite_json(path, 'SELECT json FROM records ORDER BY pos')


def _read_sqlite_json(path: Path, query: str) -> list[dict[str, Any]] | None:
    """The JSON objects of a one-column query, read only; None when the file is missing or not that database."""
    if not path.is_file():
        return None
    try:
        connection = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
        try:
            rows = connection.execute(query).fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    records = []
    for (text,) in rows:
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding='utf-8', errors='replace').splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def _read_logs(run_dir: Path) -> dict[str, list[str]]:
    found = {}
    for path in sorted(run_dir.glob('*.log')):
        lines = [line.rstrip() for line in path.read_text(encoding='utf-8', errors='replace').splitlines()
                 if LOG_LINE.match(line)]
        if lines:
            found[path.stem] = lines
    return found


@dataclass
class Gearbox:
    """One gearbox's `vibration/health` over the run: finite health indices and the last status."""

    points: list[tuple[float, float]] = field(default_factory=list)     # (stamp_s, health index)
    level: int = 0
    message: str = ''
    iso_zone: str = ''
    windows: str = ''


LEVELS = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}


def _read_vibration(run_dir: Path) -> tuple[dict[str, Gearbox] | None, str]:
    """Gearbox health from a recording of `vibration/health`, if the run was recorded."""
    recordings = sorted(run_dir.glob('*.mcap'))
    if not recordings:
        return None, ('not recorded: the vibration sensor reports health on vibration/health, which only a '
                      'recording keeps (smartcell sim --record)')
    try:
        from mcap.reader import make_reader
        from mcap_ros2.reader import read_ros2_messages
    except ImportError:
        return None, f'{recordings[0].name} present, but the mcap-ros2-support reader is not installed'
    gearboxes: dict[str, Gearbox] = {}
    try:
        with open(recordings[0], 'rb') as handle:      # only the health channel is decoded (a run has ~20 MB)
            summary = make_reader(handle).get_summary()
        topics = sorted({c.topic for c in (summary.channels.values() if summary else ())
                         if c.topic.endswith('vibration/health')})
        for message in (read_ros2_messages(str(recordings[0]), topics=topics) if topics else ()):
            stamp = message.ros_msg.header.stamp
            stamp_s = stamp.sec + stamp.nanosec * 1e-9
            for status in message.ros_msg.status:
                box = gearboxes.setdefault(status.hardware_id or status.name, Gearbox())
                values = {kv.key: kv.value for kv in status.values}
                level = status.level[0] if isinstance(status.level, (bytes, bytearray)) else int(status.level)
                box.level, box.message = level, status.message
                box.iso_zone, box.windows = values.get('iso_zone', ''), values.get('windows', '')
                health = _finite(_float(values.get('health_index')))
                if math.isfinite(health):
                    box.points.append((stamp_s, health))
    except Exception as exc:  # noqa: BLE001 - a damaged recording is a sentence in the report, not a crash
        return None, f'{recordings[0].name} could not be read: {exc}'
    if not gearboxes:
        return None, f'{recordings[0].name} holds no vibration/health messages'
    return gearboxes, f'from vibration/health in {recordings[0].name}'


def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


# ------------------------------------------------------------------------------------------ analysis

@dataclass(frozen=True)
class Stop:
    stamp_s: float
    kind: str
    reason: str
    duration_s: float | None       # until the next resume/full speed; None: still stopped at the end


def stops(events: Iterable[dict[str, Any]]) -> list[Stop]:
    """Each stop event with its cause and how long until the arm was released again."""
    ordered = sorted(events, key=lambda e: float(e.get('stamp_s', 0.0)))
    found = []
    for index, event in enumerate(ordered):
        if event.get('event') not in STOP_EVENTS:
            continue
        start = float(event.get('stamp_s', 0.0))
        end = next((float(e['stamp_s']) for e in ordered[index + 1:] if e.get('event') in CLEAR_EVENTS), None)
        found.append(Stop(start, str(event.get('event')), str(event.get('reason', '')),
                          None if end is None else end - start))
    return found


def cause_of(reason: str) -> str:
    """A stop reason without its numbers: 'person 0 at 0.13 m, ...' and 'person 1 at 0.2 m' count as one cause."""
    return re.sub(r'-?\d+(\.\d+)?', '#', reason).strip() or '(no reason given)'


def margin_sentence(cycles: list[dict[str, Any]]) -> str:
    """The worst margin (separation - S_p) while the supervisor let the arm move under SSM, and the cycles
    closer than S_p that are not that: the arm still slowing after a stop was commanded (the reaction time
    S_p covers), and collaborative mode (PFL force limits apply there, not S_p)."""
    ssm = [c for c in cycles if c.get('mode') != 'collaborative']
    commanded = [_finite(c.get('margin_m')) for c in ssm if _finite(c.get('speed_scale')) > 0]
    worst = min((m for m in commanded if math.isfinite(m)), default=math.inf)
    reacting = sum(1 for c in ssm if not _finite(c.get('speed_scale')) > 0 and _finite(c.get('applied_scale')) > 0
                   and _finite(c.get('margin_m')) < 0)
    collaborative = sum(1 for c in cycles if c.get('mode') == 'collaborative' and _finite(c.get('margin_m')) < 0)
    text = ('Worst margin (separation - S_p) while the arm was allowed to move under SSM: <b>'
            + ('none (nobody within range)' if worst == math.inf else f'{worst:.3f} m') + '</b>'
            + (' <span class="bad">below zero: closer than S_p at a commanded speed</span>' if worst < 0 else '') + '.')
    if reacting:
        text += (f' {reacting} cycle(s) closer than S_p with the stop already commanded and the arm still '
                 'slowing (the reaction the stopping data of S_p covers).')
    if collaborative:
        text += f' {collaborative} cycle(s) closer than S_p in collaborative mode (PFL limits apply, not S_p).'
    return text


def oee_events(outbox: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The MES records as the `cell/events` that smartcell.core.mes.oee.compute_oee reads."""
    events = []
    for record in outbox:
        body, stamp = record.get('body') or {}, record.get('stamp_s')
        if not isinstance(stamp, (int, float)):
            continue
        if record.get('kind') == 'EquipmentState' and body.get('state'):
            events.append({'type': 'state_change', 'stamp': float(stamp), 'to': body['state'],
                           'reason': str(body.get('reason', ''))})
        elif record.get('kind') == 'UnitRecord':
            events.append({'type': 'unit_complete', 'stamp': float(stamp), 'good': bool(body.get('good')),
                           'order_id': str(body.get('order_id', ''))})
    return events


def oee_window(events: Iterable[dict[str, Any]], end_s: float) -> tuple[float, float, str]:
    """The job (first job_started to last job_complete) when the events have one, else the whole run."""
    starts = [float(e['stamp']) for e in events if e.get('type') == 'job_started' and 'stamp' in e]
    ends = [float(e['stamp']) for e in events if e.get('type') == 'job_complete' and 'stamp' in e]
    if starts and ends and max(ends) > min(starts):
        return min(starts), max(ends), 'the job, from job_started to job_complete'
    return 0.0, end_s, 'the whole run'


def energy_per_part(outbox: Iterable[dict[str, Any]]) -> list[tuple[int, float | None, float | None]]:
    """(unit, energy J or None when not measured, cycle time s) per UnitRecord, in order."""
    out: list[tuple[int, float | None, float | None]] = []
    for record in outbox:
        if record.get('kind') != 'UnitRecord':
            continue
        body = record.get('body') or {}
        energy = body.get('energy_j')
        out.append((int(body.get('unit', len(out))), float(energy) if isinstance(energy, (int, float)) else None,
                    float(body['cycle_time_s']) if isinstance(body.get('cycle_time_s'), (int, float)) else None))
    return out


# ------------------------------------------------------------------------------------------ figures

def _svg(figure) -> str:
    import matplotlib
    import matplotlib.pyplot as plt
    buffer = io.StringIO()
    # Text as text (searchable, a third of the size); no date in the metadata (same run, same file).
    with matplotlib.rc_context({'svg.fonttype': 'none', 'svg.hashsalt': 'smartcell-report'}):
        figure.savefig(buffer, format='svg', bbox_inches='tight', metadata={'Date': None})
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index('<svg'):]          # drop the XML prolog and DOCTYPE: inline in HTML


def _finite(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def _thin(cycles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    step = max(1, len(cycles) // MAX_PLOT_POINTS)
    return cycles[::step]


def separation_figure(cycles: list[dict[str, Any]], stop_list: list[Stop]) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    shown = _thin(cycles)
    t = [float(c['stamp_s']) for c in shown]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.2), sharex=True,
                                         gridspec_kw={'height_ratios': [3, 2]})
    separation = [_finite(c.get('separation_m')) for c in shown]
    sp = [_finite(c.get('protective_separation_m')) for c in shown]
    top.plot(t, separation, lw=1.0, color='#1565c0', label='separation (closest person), m')
    top.plot(t, sp, lw=1.0, color='#c62828', label='protective separation S_p, m')
    for stop in stop_list:
        top.axvline(stop.stamp_s, color='#c62828', alpha=0.25, lw=3)
    finite = [v for v in separation + sp if math.isfinite(v)]
    top.set_ylim(0, min(max(finite, default=3.0) * 1.05, 6.0))
    top.set_ylabel('m')
    top.legend(loc='upper right', fontsize=8)
    top.grid(alpha=0.3)
    top.set_title('Separation against S_p (red bands: stops)', fontsize=10)
    bottom.step(t, [_finite(c.get('speed_scale')) for c in shown], where='post', lw=1.0, color='#2e7d32',
                label='commanded speed scale')
    bottom.step(t, [_finite(c.get('applied_scale')) for c in shown], where='post', lw=1.0, color='#ef6c00',
                alpha=0.8, label='applied by the arm')
    bottom.set_ylim(-0.05, 1.05)
    bottom.set_ylabel('speed scale')
    bottom.set_xlabel('time, s')
    bottom.legend(loc='lower right', fontsize=8)
    bottom.grid(alpha=0.3)
    return _svg(figure)


def waterfall_figure(oee) -> str:
    """Planned time, the losses taken off it one by one, and the fully productive time left."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    losses = oee.losses
    steps = [('safety stops', losses.safety_stop_s), ('faults', losses.fault_s),
             ('waiting for the person', losses.starvation_person_s), ('changeover', losses.changeover_s),
             ('other stops', losses.other_stop_s), ('speed loss', max(losses.speed_loss_s, 0.0)),
             ('quality loss', losses.quality_loss_s)]
    figure, axes = plt.subplots(figsize=(10, 3.6))
    labels, level = ['planned time'], oee.planned_time_s
    axes.bar(0, level, color='#546e7a')
    for index, (name, value) in enumerate(steps, start=1):
        axes.bar(index, -value, bottom=level, color='#c62828' if value > 0 else '#cfd8dc')
        axes.text(index, level, f'-{value:.0f} s', ha='center', va='bottom', fontsize=8)
        level -= value
        labels.append(name)
    axes.bar(len(labels), level, color='#2e7d32')
    axes.text(len(labels), level, f'{level:.0f} s', ha='center', va='bottom', fontsize=8)
    labels.append('fully productive')
    axes.set_xticks(range(len(labels)), labels, rotation=20, ha='right', fontsize=8)
    axes.set_ylabel('s')
    axes.set_title(f'OEE {oee.oee:.0%} = availability {oee.availability:.0%} x performance '
                   f'{oee.performance:.0%} x quality {oee.quality:.0%}', fontsize=10)
    axes.grid(axis='y', alpha=0.3)
    return _svg(figure)


def energy_figure(parts: list[tuple[int, float | None, float | None]]) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(10, 2.8))
    for index, (_, energy, _) in enumerate(parts):
        if energy is None:
            axes.bar(index, 0, color='#cfd8dc')
            axes.text(index, 0, 'not measured', ha='center', va='bottom', fontsize=7, color='#546e7a')
        else:
            axes.bar(index, energy / 1000.0, color='#1565c0')
    axes.set_xticks(range(len(parts)), [f'unit {u}' for u, _, _ in parts], fontsize=8)
    axes.set_ylabel('energy, kJ')
    axes.grid(axis='y', alpha=0.3)
    return _svg(figure)


def vibration_figure(series: dict[str, list[tuple[float, float]]]) -> str:
    """Health index over time per gearbox (only gearboxes with assessed windows)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(10, 2.8))
    for name, points in sorted(series.items()):
        axes.plot([p[0] for p in points], [p[1] for p in points], lw=1.0, label=name)
    axes.set_ylabel('health index')
    axes.set_xlabel('time, s')
    axes.legend(fontsize=7, ncol=3)
    axes.grid(alpha=0.3)
    return _svg(figure)


# ------------------------------------------------------------------------------------------ HTML

KPI_LABELS = (
    ('units_completed', 'units completed', '{:.0f}'), ('cycles', 'pick-and-place cycles', '{:.0f}'),
    ('cycle_time_mean_s', 'cycle time per unit, mean', '{:.1f} s'), ('cycle_time_std_s', 'cycle time, sd', '{:.1f} s'),
    ('robot_utilisation', 'robot utilisation', '{:.0%}'), ('human_utilisation', 'person utilisation', '{:.0%}'),
    ('robot_idle_s', 'robot idle', '{:.0f} s'), ('human_idle_s', 'person idle', '{:.0f} s'),
    ('replans', 're-plans', '{:.0f}'), ('reallocated_steps', 're-allocated steps', '{:.0f}'),
    ('sim_time_s', 'simulated time', '{:.1f} s'), ('wall_time_s', 'wall time', '{:.1f} s'),
    ('real_time_factor', 'real-time factor', '{:.1f} x'),
    ('min_person_robot_distance_m', 'min person-robot distance (true)', '{:.2f} m'),
    ('min_separation_m', 'min separation seen by the supervisor', '{:.2f} m'),
    ('reduced_speed_time_s', 'time at reduced speed', '{:.1f} s'),
    ('safety_stop_time_s', 'time stopped by safety', '{:.1f} s'),
    ('protective_stops', 'protective stops', '{:.0f}'), ('contacts', 'ticks with a person-robot contact', '{:.0f}'),
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #1d2327; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; border-bottom: 1px solid #cfd8dc; padding-bottom: 0.2em;
margin-top: 1.6em; } table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 0.2em 0.8em;
border-bottom: 1px solid #eceff1; text-align: left; } td.num { text-align: right; } .note { color: #546e7a;
font-size: 0.9em; } .bad { color: #c62828; font-weight: 600; } .ok { color: #2e7d32; } svg { max-width: 100%;
height: auto; } .kpis { columns: 2; } pre { font-size: 0.8em; white-space: pre-wrap; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def _table(header: list[str], rows: list[list[Any]], numeric: Iterable[int] = ()) -> str:
    numeric = set(numeric)
    head = ''.join(f'<th>{_e(h)}</th>' for h in header)
    body = ''.join('<tr>' + ''.join(f'<td class="num">{_e(v)}</td>' if i in numeric else f'<td>{_e(v)}</td>'
                                    for i, v in enumerate(row)) + '</tr>' for row in rows)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _kpi_rows(kpis: dict[str, float]) -> list[list[str]]:
    rows = []
    for key, label, fmt in KPI_LABELS:
        if key not in kpis:
            continue
        value = kpis[key]
        rows.append([label, 'nobody came' if value == math.inf else fmt.format(value)])
    return rows


def render(data: RunData, ideal_cycle_s: float) -> str:
    from smartcell.core.mes.oee import compute_oee
    stop_list = stops(data.events)
    sections = [f'<h1>Shift report: {_e(data.run_dir.name)}</h1>',
                f'<p class="note">Run directory {_e(data.run_dir.resolve())}. Safety evidence: '
                f'<span class="{"bad" if "NOT" in data.evidence_note else "ok"}">'
                f'{_e(data.evidence_note)}</span>.</p>',
                '<h2 id="kpis">KPIs</h2>', '<div class="kpis">' + _table(['KPI', 'value'], _kpi_rows(data.kpis), [1])
                + '</div>']

    sections.append('<h2 id="separation">Separation and speed</h2>')
    if data.cycles:
        sections.append(separation_figure(data.cycles, stop_list))
        sections.append(f'<p>{len(data.cycles)} safety cycles. {margin_sentence(data.cycles)}</p>')
    else:
        sections.append('<p class="note">The evidence log holds no safety cycles.</p>')

    sections.append('<h2 id="stops">Stops and their causes</h2>')
    if stop_list:
        causes: dict[str, list[Stop]] = {}
        for stop in stop_list:
            causes.setdefault(cause_of(stop.reason), []).append(stop)
        sections.append(_table(['cause', 'stops', 'time stopped'], [
            [cause, len(group), f'{sum(s.duration_s or 0.0 for s in group):.1f} s'
             + ('' if all(s.duration_s is not None for s in group) else ' + still stopped at the end')]
            for cause, group in sorted(causes.items(), key=lambda item: -len(item[1]))], [1, 2]))
        sections.append(_table(['time', 'event', 'reason', 'duration'], [
            [f'{s.stamp_s:.2f} s', s.kind, s.reason,
             'until the end' if s.duration_s is None else f'{s.duration_s:.2f} s']
            for s in stop_list[:MAX_LISTED]], [0, 3]))
        if len(stop_list) > MAX_LISTED:
            sections.append(f'<p class="note">{len(stop_list) - MAX_LISTED} more stops not listed.</p>')
    else:
        sections.append('<p>No stop in this run.</p>')

    sections.append('<h2 id="oee">OEE and its losses</h2>')
    end_s = data.kpis.get('sim_time_s') or max((float(c['stamp_s']) for c in data.cycles), default=0.0)
    if data.journal is not None:
        events, source = data.journal, "the cell's event journal (cell_events.sqlite)"
    elif data.outbox is not None:
        events, source = oee_events(data.outbox), 'the MES outbox (EquipmentState and UnitRecord records)'
    else:
        events, source = None, ''
    if events is None:
        sections.append('<p class="note">Neither an event journal nor a MES outbox in this run: the cell '
                        'states and units that OEE needs were not kept.</p>')
    elif end_s <= 0:
        sections.append('<p class="note">The run has no length: no OEE.</p>')
    else:
        start_s, stop_s, window = oee_window(events, float(end_s))
        oee = compute_oee(events, start_s, stop_s, ideal_cycle_s)
        sections.append(waterfall_figure(oee))
        sections.append(f'<p class="note">Window {start_s:.1f} to {stop_s:.1f} s ({window}); ideal cycle time '
                        f'{ideal_cycle_s:g} s '
                        f'(--ideal-cycle-s); states and units from {source} (smartcell.core.mes.oee).'
                        + ''.join(f' {_e(w)}.' for w in oee.warnings) + '</p>')

    sections.append('<h2 id="energy">Energy per part</h2>')
    parts = energy_per_part(data.outbox or [])
    if parts:
        sections.append(energy_figure(parts))
        measured = [e for _, e, _ in parts if e is not None]
        sections.append(f'<p>{len(measured)} of {len(parts)} units measured'
                        + (f', mean {sum(measured) / len(measured) / 1000:.2f} kJ per part' if measured else '')
                        + '. A unit without a value had no complete meter window (docs/sensors.md).</p>')
    else:
        sections.append('<p class="note">No unit records (no MES outbox, or no unit completed).</p>')

    sections.append('<h2 id="vibration">Vibration health</h2>')
    if data.vibration:
        assessed = {name: box.points for name, box in data.vibration.items() if box.points}
        if assessed:
            sections.append(vibration_figure(assessed))
        sections.append(_table(['gearbox', 'last level', 'ISO 20816 zone', 'windows', 'last assessment'], [
            [name, LEVELS.get(box.level, str(box.level)), box.iso_zone or '-', box.windows, box.message]
            for name, box in sorted(data.vibration.items())], [3]))
        if not assessed:
            sections.append('<p>No window was assessed (the health index is unknown, not good): see the last '
                            'assessment of each gearbox above.</p>')
    sections.append(f'<p class="note">Gearbox health: {_e(data.vibration_note)}.</p>')
    vibration_lines = data.log_findings.get('vibration_sensor', [])
    if vibration_lines:
        sections.append('<pre>' + _e('\n'.join(vibration_lines[-10:])) + '</pre>')

    if data.actions:
        sections.append('<h2 id="operator">Operator actions</h2>')
        sections.append(_table(['time (UTC)', 'user', 'action', 'result'], [
            [a.get('time_utc', ''), a.get('user', ''), a.get('action', ''),
             ('done: ' if a.get('ok') else 'refused: ') + str(a.get('message', ''))]
            for a in data.actions[:MAX_LISTED]]))

    sections.append('<h2 id="logs">Node log warnings and errors</h2>')
    if data.log_findings:
        sections.append(_table(['node', 'lines', 'last'], [[node, len(lines), lines[-1][:200]]
                                                           for node, lines in data.log_findings.items()], [1]))
    else:
        sections.append('<p>No warning or error in the node logs.</p>')
    body = '\n'.join(sections)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>smartcell shift report '
            f'{_e(data.run_dir.name)}</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n')


def write_report(run_dir: Path, out: Path | None = None, ideal_cycle_s: float | None = None) -> Path:
    """Write the report of `run_dir` (default `run_dir/report.html`); returns its path. ReportError if unreadable."""
    if ideal_cycle_s is None:
        from smartcell.core.mes.params import MES_BRIDGE
        defaults = MES_BRIDGE.by_name['ideal_cycle_s'].default     # one per work master, s
        ideal_cycle_s = float(defaults[0] if isinstance(defaults, list) else defaults)
    out = Path(out) if out else Path(run_dir) / REPORT_NAME
    text = render(load_run(Path(run_dir)), ideal_cycle_s)
    temporary = out.with_name(out.name + '.tmp')
    temporary.write_text(text, encoding='utf-8')
    temporary.replace(out)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='smartcell report', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('run_dir', type=Path,
                        help='a run directory of smartcell sim (kpis.json, safety_evidence.jsonl)')
    parser.add_argument('--out', type=Path, default=None, help='HTML file to write (default RUN_DIR/report.html)')
    parser.add_argument('--ideal-cycle-s', type=float, default=None,
                        help="ideal cycle time for OEE performance, s (default: the MES bridge's first work master)")
    args = parser.parse_args(argv)
    if args.ideal_cycle_s is not None and not args.ideal_cycle_s > 0:
        parser.error(f'--ideal-cycle-s must be > 0, got {args.ideal_cycle_s}')
    try:
        path = write_report(args.run_dir, args.out, args.ideal_cycle_s)
    except ReportError as exc:
        print(f'smartcell report: {exc}', file=sys.stderr)
        return 2
    print(f'shift report: {path}')
    return 0
