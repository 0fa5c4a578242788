"""`smartcell check-motions`: sweep the arm's named configurations and the segments between them
through the twin's cell (table, fence, furniture) before they run on the arm.

    smartcell check-motions [--motions config/motions.yaml]

Exit status 0 when everything clears, 1 with a list of the collisions, 2 on a bad file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='smartcell check-motions', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--motions', default='', help='motions file (default: the installed config/motions.yaml)')
    args = parser.parse_args(argv)
    from smartcell.core.robot.motions import UR5E_JOINT_LIMITS, MotionLibrary
    from smartcell.core.params import ConfigError
    from smartcell.share import ShareFileMissing, share_file
    from smartcell.twin.motion_check import ARM_CLEARANCE_M, TOOL_CLEARANCE_M, check_motions, commanded_segments
    try:
        path = Path(args.motions) if args.motions else share_file('config', 'motions.yaml')
        library = MotionLibrary.from_yaml(path, UR5E_JOINT_LIMITS)
    except (ConfigError, ShareFileMissing, OSError) as exc:
        print(f'smartcell check-motions: {exc}', file=sys.stderr)
        return 2
    problems = check_motions(library)
    print(f'{path}: {len(library.configurations)} configurations, {len(commanded_segments(library))} segments; '
          f'clearance {ARM_CLEARANCE_M * 100:.0f} cm (tool {TOOL_CLEARANCE_M * 100:.0f} cm)')
    for problem in problems:
        print(f'  collision: {problem}')
    print('all clear' if not problems else f'{len(problems)} problem(s)')
    return 1 if problems else 0


if __name__ == '__main__':
    raise SystemExit(main())
