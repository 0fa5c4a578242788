"""`smartcell sim`: the simulated cell, faster than real time, ending in a KPI table.

Starts the same nodes as `ros2 launch smartcell cell.launch.py sim:=true` (the list in
smartcell.topology), each in its own process over real DDS, with the twin as the clock in
lockstep: every tick waits for the arm's command computed from that tick's scan, so the same
seed gives the same run, as fast as the machine allows.

Each run is isolated: its own DDS domain, its MES outbox in the run directory, its OPC UA server on
a free port, MQTT off (no broker needed; `-p mes_bridge.mqtt_enabled:=true` and a port to use one).
`-p NODE.NAME:=VALUE` overrides a parameter of the cell file (it wins over the file's node section);
a port that is taken, an unknown job or a bad override is refused before any process starts; any
node that dies fails the run (exit 1) with the end of its log.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping

from smartcell.core.params import ConfigError, load_cell_config
from smartcell.topology import DEFAULT_GROUPS, nodes_for, param_registry
from smartcell.tools.cell_processes import (CellProcesses, OverrideRefused, isolated_ros_env, merge_overrides,
                                            parse_override)

START_TIMEOUT_S = 60.0          # wall seconds for all processes to come up
STALL_TIMEOUT_S = 30.0          # wall seconds without simulated progress before giving up
RECORDING = 'run.mcap'          # --record: the run's topics, in the run directory
# What smartcell replay needs from the first tick (the supervisor's lockstep inputs and its verdicts)
REPLAY_TOPICS = ('humans', 'humans/velocities', 'joint_states', 'safety/verdict')
HMI_ACTIONS = 'hmi_actions.jsonl'   # --hmi: the operator's actions, in the run directory
# The operator station only on request (--hmi): a lockstep run is over before anyone could look.
SIM_GROUPS: tuple[str, ...] = tuple(g for g in DEFAULT_GROUPS if g != 'hmi')


@dataclass(frozen=True)
class SimOptions:
    duration_s: float
    seed: int
    scenario: str
    gui: bool
    config: Path
    log_dir: Path
    progress: bool
    job: str = ''
    groups: tuple[str, ...] = SIM_GROUPS                     # + 'record' with --record, 'hmi' with --hmi
    overrides: tuple[tuple[str, str, object], ...] = ()     # (node, parameter, value) from -p, applied last
    opcua_port: int = 0                                       # 0: a free port picked at start
    hmi_port: int = 0                                         # --hmi; 0: a free port picked at start
    units: int = 0                                            # --units; 0: for the whole run


# `--job` without `--units`: a shift, the job repeated until the run ends (the supervisor's maximum).
UNITS_FOR_THE_WHOLE_RUN = 100000

# What `smartcell sim` sets itself: an override of these is refused, naming the option to use.
RESERVED = {('twin', 'duration_s'): 'smartcell sim sets it: use --duration',
            ('twin', 'seed'): 'smartcell sim sets it: use --seed',
            ('twin', 'scenario'): 'smartcell sim sets it: use --scenario',
            ('twin', 'gui'): 'smartcell sim sets it: use --gui',
            ('supervisor', 'job'): 'smartcell sim sets it: use --job',
            ('supervisor', 'units'): 'smartcell sim sets it: use --units',
            ('supervisor', 'evidence_log'): 'smartcell sim writes it into the run directory: use --log-dir',
            ('supervisor', 'order_store_file'): 'smartcell sim keeps it in the run directory: use --log-dir',
            ('supervisor', 'event_journal_file'): 'smartcell sim keeps it in the run directory: use --log-dir',
            ('recorder', 'output_file'): 'smartcell sim --record writes <run dir>/run.mcap: use --log-dir',
            **{(node, 'lockstep'): 'the lockstep is how smartcell sim runs (ros2 launch runs in real time)'
               for node in ('twin', 'arm', 'supervisor')}}


def parse_args(argv: list[str]) -> SimOptions:
    from smartcell.share import ShareFileMissing, share_file
    parser = argparse.ArgumentParser(prog='smartcell sim', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--duration', type=float, default=300.0, help='simulated seconds (default 300)')
    parser.add_argument('--seed', type=int, default=1, help='scenario and noise seed (default 1)')
    parser.add_argument('--scenario', default=None, help='person behaviour: ' + ', '.join(scenario_names())
                        + ' (default: shift; operator with --job: the simulated operator does the job\'s steps)')
    parser.add_argument('--gui', action='store_true', help='show the PyBullet GUI (needs a display)')
    parser.add_argument('--config', type=Path, default=None, help='cell parameter file (default: installed cell.yaml)')
    parser.add_argument('--job', default='', help='job recipe to run (default: the pick-and-place cycle)')
    parser.add_argument('--units', type=int, default=0,
                        help='units of the --job to make (default 0: as many as the run lasts, a shift)')
    parser.add_argument('--log-dir', type=Path, default=None, help='node logs and evidence (default runs/<time>)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--hmi', action='store_true',
                        help='start the operator station (browser) too and print its URL; its actions go to '
                             f'<run dir>/{HMI_ACTIONS}')
    parser.add_argument('--record', action='store_true',
                        help='record every topic to <run dir>/run.mcap (rosbag2-compatible MCAP; smartcell replay)')
    parser.add_argument('--without', default='', metavar='GROUPS',
                        help='comma-separated optional node groups to leave out: sensors, mes')
    parser.add_argument('-p', '--param', action='append', default=[], metavar='NODE.NAME:=VALUE',
                        help='override a parameter of the cell file for one node (wins over the file; repeatable), '
                             'e.g. -p mes_bridge.opcua_endpoint:=opc.tcp://127.0.0.1:4850/smartcell/')
    args = parser.parse_args(argv)
    without = {g for g in args.without.split(',') if g}
    if without - {'sensors', 'mes'}:
        parser.error(f'unknown group(s) in --without: {sorted(without - {"sensors", "mes"})}; accepted: sensors, mes')
    if not args.duration > 0:
        parser.error(f'--duration must be > 0 s, got {args.duration}')
    if not 0 <= args.units <= UNITS_FOR_THE_WHOLE_RUN:
        parser.error(f'--units must be in [0, {UNITS_FOR_THE_WHOLE_RUN}] (0: for the whole run), got {args.units}')
    if args.units and not args.job:
        parser.error('--units needs --job (the bare pick-and-place cycle runs for the whole run)')
    if not 0 <= args.seed < 2**31:
        parser.error(f'--seed must be in [0, 2^31), got {args.seed}')
    if args.job:
        try:
            args.job = resolve_job(args.job)
        except ValueError as exc:
            parser.error(str(exc))
    try:
        registry = param_registry()
        overrides = tuple(parse_override(text, registry, RESERVED) for text in args.param)
    except OverrideRefused as exc:
        parser.error(str(exc))
    if args.scenario is None:
        args.scenario = 'operator' if args.job else 'shift'
    if args.scenario not in scenario_names():
        parser.error(f'unknown scenario {args.scenario!r}; accepted: {", ".join(scenario_names())}')
    try:
        config = args.config or share_file('config', 'cell.yaml')
    except ShareFileMissing as exc:
        parser.error(str(exc))
    log_dir = args.log_dir or Path('runs') / datetime.now().strftime('sim-%Y%m%d-%H%M%S')
    return SimOptions(args.duration, args.seed, args.scenario, args.gui, Path(config), log_dir,
                      not args.no_progress, args.job,
                      tuple(g for g in SIM_GROUPS if g not in without) + (('record',) if args.record else ())
                      + (('hmi',) if args.hmi else ()),
                      overrides, units=args.units)


def known_jobs() -> list[str]:
    """The job recipes installed with the package (config/job_*.yaml that load as recipes)."""
    from smartcell.core.tasks.recipe import load_recipe
    from smartcell.share import share_dir
    names = []
    for path in sorted((share_dir() / 'config').glob('job_*.yaml')):
        try:
            load_recipe(path)
        except (ValueError, OSError, KeyError, TypeError):
            continue          # job_orders.yaml and other non-recipes
        names.append(path.stem)
    return names


def resolve_job(job: str) -> str:
    """The recipe file for --job (a name such as job_demo or demo, or a path); ValueError lists the known jobs."""
    from smartcell.core.tasks.recipe import load_recipe
    from smartcell.share import ShareFileMissing, share_dir
    if '/' in job or job.endswith('.yaml'):
        path = Path(job)
    else:
        try:
            folder = share_dir() / 'config'
        except ShareFileMissing as exc:
            raise ValueError(str(exc)) from exc
        path = folder / f'{job}.yaml'
        if not path.is_file() and not job.startswith('job_'):
            path = folder / f'job_{job}.yaml'
    if not path.is_file():
        raise ValueError(f'unknown job {job!r}; known jobs: {", ".join(known_jobs()) or "(none installed)"} '
                         '(or the path of a recipe file)')
    try:
        load_recipe(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f'job {job!r} ({path}) is not a valid recipe: {exc}') from exc
    return str(path.resolve())


def scenario_names() -> list[str]:
    try:
        from smartcell.twin.scenarios import SCENARIOS, TASK_DRIVEN_SCENARIO
    except ImportError as exc:   # pybullet is optional on hardware (no wheel for Python 3.12)
        raise SystemExit(f'smartcell sim needs the PyBullet twin: {exc}. Install pybullet==3.2.7 '
                         '(Python 3.11).') from None
    return sorted(SCENARIOS) + [TASK_DRIVEN_SCENARIO]


def node_overrides(options: SimOptions) -> dict[str, dict[str, object]]:
    """What simulation changes against the cell file: lockstep, the scenario, sim time.

    The lockstep nodes (scanner, arm, supervisor) take their time from the stamps of the tick they
    handle, so they need no /clock (three fewer messages a tick); the others run on sim time.
    """
    sim_time = {'use_sim_time': True}
    overrides: dict[str, dict[str, object]] = {spec.name: dict(sim_time) for spec in nodes_for(sim=True)}
    overrides.update({
        'twin': {'lockstep': True, 'duration_s': float(options.duration_s), 'seed': options.seed,
                 'scenario': options.scenario, 'gui': options.gui,
                 # --record: tick 0 is held until the recorder also receives the twin's streams.
                 'min_subscribers': 2 if 'record' in options.groups else 1},
        # Lockstep: the scanner runs on the tick stamps without /clock, so no clock to compare them with.
        'scanner': {'max_stamp_offset_s': 0.0},
        'arm': {'backend': 'sim', 'lockstep': True},
        'supervisor': {'lockstep': True, 'auto_start': True,
                       'evidence_log': str((options.log_dir / 'safety_evidence.jsonl').resolve()),
                       'order_store_file': str((options.log_dir / 'job_orders.sqlite').resolve()),
                       'event_journal_file': str((options.log_dir / 'cell_events.sqlite').resolve()),
                       **({'job': options.job, 'units': options.units or UNITS_FOR_THE_WHOLE_RUN}
                          if options.job else {})},
        # --hmi: the port printed before the run, the operator's actions in the run directory.
        'hmi': {**sim_time, 'port': options.hmi_port, 'action_log': str((options.log_dir / HMI_ACTIONS).resolve())},
        # The run's own outbox and OPC UA port; MQTT only on request (it needs a broker of the user's).
        'recorder': {**sim_time, 'output_file': str((options.log_dir / RECORDING).resolve())},
        'mes_bridge': {**sim_time, 'db_path': str((options.log_dir / 'mes_outbox.sqlite').resolve()),
                       'opcua_endpoint': f'opc.tcp://127.0.0.1:{options.opcua_port}/smartcell/',
                       'mqtt_enabled': False},
    })
    return merge_overrides(overrides, options.overrides)


def hmi_url(options: SimOptions, resolved: Mapping[str, Mapping[str, object]]) -> str:
    """The operator station's address (a -p hmi.port:=... wins over the port picked here)."""
    hmi = {**resolved.get('hmi', {}), **node_overrides(options).get('hmi', {})}
    host = str(hmi.get('host', '127.0.0.1'))
    scheme = 'https' if hmi.get('tls_cert_file') else 'http'
    return f'{scheme}://{"127.0.0.1" if host in ("0.0.0.0", "::") else host}:{hmi["port"]}/'


def check_ports(options: SimOptions, resolved: Mapping[str, Mapping[str, object]]) -> None:
    """ConfigError for a server port that another program holds, before any node starts."""
    from smartcell.core.mes.params import endpoint_host, endpoint_port, port_taken_message
    from smartcell.io.broker import port_taken
    bridge = {**resolved.get('mes_bridge', {}), **node_overrides(options).get('mes_bridge', {})}
    if 'mes' not in options.groups or not bridge.get('opcua_enabled', True):
        return
    endpoint = str(bridge['opcua_endpoint'])
    taken = port_taken(endpoint_host(endpoint), endpoint_port(endpoint))
    if taken:
        raise ConfigError(port_taken_message(endpoint, taken))


def run(options: SimOptions, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run one simulated shift; returns the KPIs. Raises RuntimeError with the failing node's log."""
    resolved = load_cell_config(options.config, param_registry())   # refuse bad config before starting anything
    import dataclasses
    import os

    from smartcell.io.broker import free_port
    if not options.opcua_port:
        # Picked here and bound by the bridge a few seconds later: another program could take it in
        # between (then the bridge exits with the port named, and so does the run).
        options = dataclasses.replace(options, opcua_port=free_port())
    if 'hmi' in options.groups and not options.hmi_port:
        options = dataclasses.replace(options, hmi_port=free_port())    # printed before the run starts
    check_ports(options, resolved)

    import rclpy
    from smartcell.tools.sim_monitor import SimMonitor
    env = env or isolated_ros_env()
    # This process observes the same private domain as the nodes it starts.
    for key in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE'):
        os.environ[key] = env[key]
    processes = CellProcesses(options.log_dir, env)
    context = None
    try:
        specs = nodes_for(sim=True, groups=options.groups)
        recorder = [spec for spec in specs if spec.name == 'recorder']
        if recorder:      # subscribed before anything publishes, so the recording starts with the run
            processes.start_nodes(recorder, options.config, node_overrides(options))
            wait_for_recorder(processes, START_TIMEOUT_S, ['recording to'])
            # The twin starts the lockstep run: only once the recorder receives what replay needs.
            later = [spec for spec in specs if spec.name == 'twin']
            processes.start_nodes([spec for spec in specs if spec not in recorder + later], options.config,
                                  node_overrides(options))
            wait_for_recorder(processes, START_TIMEOUT_S, [f'matched /{topic} ' for topic in REPLAY_TOPICS])
            processes.start_nodes(later, options.config, node_overrides(options))
        else:
            processes.start_nodes(specs, options.config, node_overrides(options))
        if 'hmi' in options.groups:
            print(f'operator station: {hmi_url(options, resolved)}', flush=True)
        context = rclpy.Context()
        rclpy.init(context=context, args=[])
        monitor = SimMonitor(context, options.duration_s, options.progress)
        kpis = monitor.wait_for_kpis(processes, START_TIMEOUT_S, STALL_TIMEOUT_S)
        # A short run can end before a slow node is even up: the run counts only once every node is up
        # (a node that fails at start-up fails the run) and the MES has every journaled event.
        wait_until_up(context, processes, START_TIMEOUT_S)
        if 'mes' in options.groups:
            wait_for_mes(processes, node_overrides(options), START_TIMEOUT_S)
        processes.check_alive()          # a node that died near the end fails the run too
    finally:
        failed = processes.stop()
        if context is not None and context.ok():
            rclpy.shutdown(context=context)
    # A node that failed on the way out (an error exit, not one that had to be killed when it hung)
    errors = {name: code for name, code in failed.items() if code is not None and code > 0}
    if errors:
        name, code = next(iter(errors.items()))
        raise RuntimeError(f'node {name!r} exited with code {code} when the run ended; its log ends with:\n'
                           f'{processes.log_tail(name)}')
    return kpis


def wait_for_recorder(processes: CellProcesses, timeout_s: float, lines: list[str]) -> None:
    """Until the recorder's log has every one of `lines`; RuntimeError if a node dies or it takes too long."""
    deadline = time.monotonic() + timeout_s
    log = processes.log_dir / 'recorder.log'
    while not all(line in (text := log.read_text(errors='replace') if log.exists() else '') for line in lines):
        processes.check_alive()
        if time.monotonic() > deadline:
            missing = [line for line in lines if line not in text]
            raise RuntimeError(f'the recorder did not log {missing} within {timeout_s:.0f} s:\n'
                               f'{processes.log_tail("recorder")}')
        time.sleep(0.05)      # polling a log file with a deadline


def wait_until_up(context, processes: CellProcesses, timeout_s: float) -> None:
    """Every started node is on the ROS graph; RuntimeError (with its log) for one that exited."""
    from rclpy.node import Node
    node = Node('smartcell_sim_graph', context=context)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            processes.check_alive()
            missing = set(processes.processes) - set(node.get_node_names())
            if not missing:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f'node(s) {sorted(missing)} not up after {timeout_s:.0f} s; logs in '
                                   f'{processes.log_dir}')
            time.sleep(0.1)       # polling the graph with a deadline
    finally:
        node.destroy_node()


def wait_for_mes(processes: CellProcesses, overrides: dict[str, dict[str, object]], timeout_s: float) -> None:
    """The MES outbox has the records of every event in the supervisor's journal (the bridge catches up
    by replay, e.g. when it came up after the run's first events); RuntimeError when it does not."""
    import sqlite3
    journal = Path(str(overrides['supervisor']['event_journal_file']))
    outbox = Path(str(overrides['mes_bridge']['db_path']))

    def newest(path: Path, query: str) -> int:
        if not path.exists():
            return 0
        with sqlite3.connect(f'file:{path}?mode=ro', uri=True) as db:
            try:
                row = db.execute(query).fetchone()
            except sqlite3.OperationalError:      # the table is not created yet
                return 0
        return int(row[0]) if row and row[0] is not None else 0

    deadline = time.monotonic() + timeout_s
    while True:
        processes.check_alive()
        journaled = newest(journal, 'SELECT max(seq) FROM events')
        stored = newest(outbox, "SELECT seq FROM event_cursor WHERE source = 'cell'")
        if stored >= journaled:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f'the MES bridge has cell events up to seq {stored} of {journaled} after '
                               f'{timeout_s:.0f} s; logs in {processes.log_dir}')
        time.sleep(0.1)           # polling two files with a deadline


def _cycle_time(kpis: dict[str, float]) -> str:
    mean, sd = kpis.get('cycle_time_mean_s'), kpis.get('cycle_time_std_s')
    if not isinstance(mean, (int, float)) or not isinstance(sd, (int, float)):
        return 'none: no unit completed'
    return f'{mean:.1f} +- {sd:.1f} s'


def _pace(kpis: dict[str, float]) -> str:
    actual, planned = kpis.get('time_per_unit_s'), kpis.get('planned_time_per_unit_s')
    if not isinstance(planned, (int, float)):
        return 'no plan'
    if not isinstance(actual, (int, float)):
        return f'none / {planned:.1f} s'
    return f'{actual:.1f} / {planned:.1f} s = {actual / planned:.2f}x'


def format_kpis(kpis: dict[str, float]) -> str:
    rows = [('pick-and-place cycles', f'{kpis["cycles"]:.0f}')] if 'units_completed' not in kpis else [
        ('units completed', f'{kpis["units_completed"]:.0f}'),
        ('cycle time per unit (mean +- sd)', _cycle_time(kpis)),
        ('time per unit (actual / planned)', _pace(kpis)),
        ('robot / person utilisation', f'{kpis["robot_utilisation"]:.0%} / {kpis["human_utilisation"]:.0%}'),
        ('robot / person idle', f'{kpis["robot_idle_s"]:.0f} / {kpis["human_idle_s"]:.0f} s'),
        ('re-plans (re-allocated steps)', f'{kpis["replans"]:.0f} ({kpis["reallocated_steps"]:.0f})'),
    ]
    rows += [
        ('simulated time', f'{kpis["sim_time_s"]:.1f} s'),
        ('wall time', f'{kpis["wall_time_s"]:.1f} s'),
        ('real-time factor', f'{kpis["real_time_factor"]:.1f} x'),
        ('min person-robot distance (true)', _metres(kpis['min_person_robot_distance_m'])),
        ('min separation seen by the supervisor', _metres(kpis['min_separation_m'])),
        ('time at reduced speed', f'{kpis["reduced_speed_time_s"]:.1f} s'),
        ('time stopped by safety', f'{kpis["safety_stop_time_s"]:.1f} s'),
        ('protective stops', f'{kpis["protective_stops"]:.0f}'),
        ('ticks with a person-robot contact', f'{kpis["contacts"]:.0f}'),
    ]
    width = max(len(name) for name, _ in rows)
    line = '-' * (width + 16)
    return '\n'.join([line] + [f'{name.ljust(width)}  {value:>13}' for name, value in rows] + [line])


def _metres(value: float) -> str:
    return 'nobody came' if value == float('inf') else f'{value:.2f} m'


def _stop_on_sigterm(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt     # the run's `finally` stops every node it started (SIGTERM would skip it)


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        kpis = run(options)
    except ConfigError as exc:
        print(f'smartcell sim: configuration error: {exc}', file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f'smartcell sim: {exc}', file=sys.stderr)
        return 1
    print(format_kpis(kpis))
    (options.log_dir / 'kpis.json').write_text(json.dumps(kpis, indent=2, sort_keys=True))
    print(f'logs, evidence and kpis.json in {options.log_dir}')
    from smartcell.tools.report import ReportError, write_report
    try:
        print(f'shift report: {write_report(options.log_dir)}')
    except ReportError as exc:
        print(f'smartcell sim: no shift report: {exc}', file=sys.stderr)
        return 1
    if 'record' in options.groups:
        recording = options.log_dir / RECORDING
        print(f'recording: {recording} (check it with: smartcell replay {recording})')
    return 0
