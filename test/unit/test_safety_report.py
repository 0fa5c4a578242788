"""`smartcell safety-report` end to end on a log the monitor writes, and on bad files."""
import json

import numpy as np
import pytest

from smartcell.core.evidence import EvidenceWriter
from smartcell.core.safety import (PeopleObservation, RobotObservation, SafetyConfig, SafetyMonitor,
                                   SeparationInputs)
from smartcell.tools.safety_report import main, reason_kind

DT = 1.0 / 30.0
LAG_CYCLES = 2          # the simulated arm applies a commanded scale two cycles later


@pytest.fixture
def log_path(tmp_path):
    """6 s: nobody, a person walks in to 0.5 m (stop) and out again; the arm lags two cycles."""
    monitor = SafetyMonitor(SafetyConfig(separation=SeparationInputs(reaction_time_s=0.1)), None)
    capsules = np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    path = tmp_path / 'evidence.jsonl'
    commanded = [0.0] * LAG_CYCLES
    with EvidenceWriter(path) as writer:
        for k in range(181):
            t = k * DT
            x = 3.0 if t < 2.0 else max(0.8, 3.0 - 2.0 * (t - 2.0)) if t < 4.0 else 3.0
            applied = commanded[-LAG_CYCLES]
            velocities = np.zeros((1, 2, 3))
            velocities[0, 1, 0] = 0.5 * applied
            verdict = monitor.update(PeopleObservation(t, 'world', np.array([[x, 0.0, 1.0]])),
                                     RobotObservation(t, capsules, np.array([0.1]), velocities, applied), t)
            commanded.append(verdict.speed_scale)
            writer.cycle(verdict, applied)
            for event in monitor.drain_events():
                writer.event(event)
    return path


def test_report_prints_the_summary_and_plots(log_path, tmp_path, capsys):
    out = tmp_path / 'plots' / 'safety.png'
    assert main([str(log_path), '--plot', str(out)]) == 0
    text = capsys.readouterr().out
    assert 'cycles: 181' in text
    assert 'person # at # m, inside the protective distance # m' in text
    assert 'worst margin while moving' in text
    assert 'reaction intrusion -> scale applied: 1 of 1' in text
    assert out.is_file() and out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_report_json_figures(log_path, capsys):
    assert main([str(log_path), '--json']) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary['cycles'] == 181
    # the arm applies the commanded scale two cycles after the intrusion
    assert summary['reaction_times_s'] == [pytest.approx(LAG_CYCLES * DT)]
    assert summary['stopped_time_s'] > 0.5 and summary['reduced_speed_time_s'] > 0.0
    assert sum(summary['stops_by_reason'].values()) >= 1
    assert not summary['truncated_tail']


@pytest.mark.parametrize('content,fragment', [
    ('this is not json\n{"kind":"cycle","stamp_s":1.0}\n', 'line 1 is not JSON'),
    ('', 'no cycle records'),
    (None, 'not found'),
])
def test_bad_files_exit_2_with_a_clear_error(tmp_path, capsys, content, fragment):
    path = tmp_path / 'bad.jsonl'
    if content is not None:
        path.write_text(content)
    assert main([str(path)]) == 2
    assert fragment in capsys.readouterr().err


def test_bad_options_exit_2():
    assert main(['--colour']) == 2


def test_reasons_group_without_their_numbers():
    assert reason_kind('person 0 at 0.51 m, inside the protective distance 0.6 m') == \
        reason_kind('person 1 at 0.32 m, inside the protective distance 0.6 m')
