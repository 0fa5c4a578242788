"""The arm's motions are swept through the cell before they run (twin node start-up, check-motions)."""
import math

import yaml

from smartcell.core.robot.motions import UR5E_JOINT_LIMITS, MotionLibrary
from smartcell.tools import check_motions as check_motions_tool
from smartcell.twin.motion_check import check_motions, commanded_segments


def test_the_shipped_motions_clear_the_cell(repo):
    library = MotionLibrary.from_yaml(repo / 'config' / 'motions.yaml', UR5E_JOINT_LIMITS)
    segments = commanded_segments(library)
    assert ('above_pick', 'pick') in segments and ('place', 'above_place') in segments
    assert ('above_pick', 'above_place') in segments
    assert check_motions(library) == []


def test_a_configuration_in_the_table_and_a_segment_through_the_fence_are_found(repo, tmp_path):
    document = yaml.safe_load((repo / 'config' / 'motions.yaml').read_text())
    pick = list(document['configurations']['pick'])
    pick[1] += 0.25                                   # shoulder down: the tool into the table top
    document['configurations']['pick'] = pick
    # Arm stretched out level toward -x: through the back fence 0.75 m behind the base.
    document['configurations']['above_back'] = [math.pi, -0.2, 0.0, -1.571, -1.571, 0.0]
    document['cycles']['to_the_back'] = ['above_place', 'above_back']
    path = tmp_path / 'motions.yaml'
    path.write_text(yaml.safe_dump(document))
    problems = check_motions(MotionLibrary.from_yaml(path, UR5E_JOINT_LIMITS))
    text = [str(p) for p in problems]
    assert any(p.segment == ('pick', 'pick') and p.obstacle == 'work_table' for p in problems), text
    assert any(p.obstacle.startswith('fence') and 'above_back' in p.segment for p in problems), text
    assert check_motions_tool.main(['--motions', str(path)]) == 1


def test_the_command_reports_all_clear_and_refuses_a_bad_file(repo, tmp_path, capsys):
    assert check_motions_tool.main(['--motions', str(repo / 'config' / 'motions.yaml')]) == 0
    assert 'all clear' in capsys.readouterr().out
    bad = tmp_path / 'bad.yaml'
    bad.write_text('configurations: {home: [0, 0]}\n')
    assert check_motions_tool.main(['--motions', str(bad)]) == 2
