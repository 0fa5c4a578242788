"""The `smartcell` command: one entry point, one module per sub-command (imported on demand)."""
from __future__ import annotations

import os
import sys
from importlib import import_module

# sub-command -> (module with main(argv) -> int, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    'sim': ('smartcell.tools.sim', 'run the simulated cell (PyBullet twin + the cell nodes) faster than real time'),
    'twin-demo': ('smartcell.twin.demo', 'the PyBullet twin alone (headless or --gui), arm cycling, a person walking'),
    'safety-report': ('smartcell.tools.safety_report', 'summarise and plot a safety evidence log'),
    'report': ('smartcell.tools.report', 'shift report of a run directory as one HTML file (KPIs, separation vs S_p, '
               'stops, OEE losses, energy per part, vibration health); smartcell sim writes it at the end'),
    'campaign': ('smartcell.tools.campaign', 'seeded safety scenarios in the twin: SSM audited against ground truth, '
                 'parts/hour vs a static zone'),
    'check-motions': ('smartcell.tools.check_motions', "sweep the arm's named motions through the twin's cell: "
                      'table, fence, furniture'),
    'stopping-table': ('smartcell.tools.stopping_table', "measure the arm's stopping times and distances in the twin"),
    'teach-background': ('smartcell.tools.teach_background', "record the empty cell's scan as the scanner's static "
                         'background (commissioning; --twin: from the twin\'s layout)'),
    'analyze-vibration': ('smartcell.tools.analyze_vibration', 'analyse a recorded vibration signal'),
    'replay': ('smartcell.tools.replay', 're-judge a recorded run (MCAP) with a fresh CellController and compare '
               'the verdicts'),
    'faults': ('smartcell.tools.faults', 'fault campaign: kill -9 each node and stop the broker during a real-time '
               'shift; check MES records (no loss, no duplicate), orders answered, deadman stops, return to service'),
    'live': ('smartcell.tools.live', 'bridge the running cell\'s topics to Foxglove (foxglove-sdk WebSocket server, '
             'ws://127.0.0.1:8765)'),
    'audit': ('smartcell.tools.audit',
              'verify or export the audit trail (hash chain) of production and safety records'),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ['usage: smartcell <command> [options]   (smartcell <command> --help for its options)', '',
             'commands:']
    lines += [f'  {name.ljust(width)}  {text}' for name, (_, text) in COMMANDS.items()]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The ROS wheels do not set the ament index; a venv install is its own prefix.
    os.environ.setdefault('AMENT_PREFIX_PATH', sys.prefix)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f'smartcell: unknown command {command!r}; accepted: {", ".join(COMMANDS)}', file=sys.stderr)
        return 2
    module = import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == '__main__':
    raise SystemExit(main())
