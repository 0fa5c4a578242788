"""`smartcell safety-report` end to end on a log the monitor writes, and on bad files."""
import json
import math

import numpy as np
import pytest

from smartcell.core.safety.authority import load_or_create_cell_key
from smartcell.core.safety.evidence import EvidenceWriter
from smartcell.core.safety.monitor import (PeopleObservation, RobotObservation, SafetyConfig, SafetyMonitor,
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
    ('this is not json\n{"kind":"cycle","stamp_s":1.0}\n', 'not an evidence log'),
    ('{"kind":"cycle","stamp_s":1.0,"speed_scale":1.0}\n', 'without a hash chain'),
    ('', 'holds no records'),
    (None, 'not found'),
])
def test_bad_files_exit_2_with_a_clear_error(tmp_path, capsys, content, fragment):
    path = tmp_path / 'bad.jsonl'
    if content is not None:
        path.write_text(content)
    assert main([str(path)]) == 2
    assert fragment in capsys.readouterr().err


def test_clean_intact_log_passes_with_its_key(tmp_path, capsys):
    key_file = tmp_path / 'cell.key'
    key = load_or_create_cell_key(key_file)
    path = tmp_path / 'keyed.jsonl'
    with EvidenceWriter(path, key=key) as writer:
        for k in range(30):
            writer.write(cycle(k * DT, separation_m=3.0, sp_m=1.0, scale=1.0))
    assert main([str(path), '--key-file', str(key_file)]) == 0
    out = capsys.readouterr().out
    assert 'evidence chain: intact, 31 records' in out and 'MACs' in out and 'result: PASS' in out
    assert main([str(path), '--key-file', str(tmp_path / 'missing.key')]) == 2


def cycle(stamp_s, separation_m, sp_m, scale):
    return {'kind': 'cycle', 'stamp_s': stamp_s, 'mode': 'automatic', 'state': 'normal', 'zone': 'clear',
            'separation_m': separation_m, 'protective_separation_m': sp_m, 'margin_m': separation_m - sp_m,
            'speed_scale': scale, 'applied_scale': scale, 'target_scale': scale, 'reason': ''}


@pytest.fixture
def violation_log(tmp_path):
    """The arm keeps moving at full scale while a person is 0.4 m inside S_p for three cycles."""
    path = tmp_path / 'violation.jsonl'
    with EvidenceWriter(path) as writer:
        for k in range(60):
            close = 20 <= k < 23
            writer.write(cycle(k * DT, 0.6 if close else 3.0, 1.0, 1.0))
    return path


def test_violation_exits_1_and_is_marked_on_the_plot(violation_log, tmp_path, capsys):
    out = tmp_path / 'v.png'
    assert main([str(violation_log), '--plot', str(out)]) == 1
    text = capsys.readouterr().out
    assert 'VIOLATION: closer than S_p while moving' in text and 'VIOLATIONS: 3' in text
    assert 'closer_than_sp_while_moving' in text and 'result: FAIL (3 violation(s))' in text
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    clean_log, clean_png = tmp_path / 'clean.jsonl', tmp_path / 'clean.png'
    with EvidenceWriter(clean_log) as writer:
        for k in range(60):
            writer.write(cycle(k * DT, 3.0, 1.0, 1.0))
    assert main([str(clean_log), '--plot', str(clean_png)]) == 0
    assert red_pixels(out) > 50 and red_pixels(clean_png) == 0     # markers and a red title only on violations


def test_the_cycle_that_leaves_collaborative_mode_is_judged_by_pfl(tmp_path, capsys):
    # make sim: a person leaves the shared station; the switch back to SSM is judged at once on the
    # same data and stops the arm, but that instant the arm still applies the PFL verdict (scale 1)
    path = tmp_path / 'switch.jsonl'
    with EvidenceWriter(path) as writer:
        for k in range(30):
            writer.write({**cycle(k * DT, 1.3, math.nan, 1.0), 'mode': 'collaborative', 'margin_m': math.inf})
        writer.write({**cycle(30 * DT - 1e-9, 1.36, 2.24, 0.0), 'applied_scale': 1.0})     # the switch: stop
        writer.write(cycle(31 * DT, 1.40, 1.42, 0.0))                                       # stopped
        writer.write({**cycle(32 * DT, 1.40, 1.42, 0.5), 'applied_scale': 0.0})            # SSM moves again
    assert main([str(path)]) == 1
    text = capsys.readouterr().out
    # only the SSM-governed cycle counts: -0.02 m at 32 DT, not the -0.88 m of the switch
    assert 'VIOLATIONS: 1' in text and '-0.020 m' in text and '1.360 m' not in text


def test_cycles_of_a_stop_under_way_are_not_judged_against_sp_again(tmp_path, capsys):
    # S_p is where a stop must begin; the arm brakes over the following cycles (the ground it covers is
    # S_p's S_s). A stop begun too late, and moving on while inside S_p, are violations.
    path = tmp_path / 'braking.jsonl'
    with EvidenceWriter(path) as writer:
        writer.write(cycle(0.0, 2.0, 1.9, 1.0))                                           # moving, 0.1 m spare
        writer.write({**cycle(DT, 1.95, 1.9, 0.0), 'applied_scale': 1.0})                 # stop begins in time
        writer.write({**cycle(2 * DT, 1.7, 1.8, 0.0), 'applied_scale': 0.6})              # braking
        writer.write({**cycle(3 * DT, 1.6, 1.7, 0.0), 'applied_scale': 0.2})              # braking
        writer.write({**cycle(4 * DT, 1.6, 1.65, 0.3), 'applied_scale': 0.0})             # moves on inside S_p
        writer.write({**cycle(5 * DT, 1.6, 1.9, 0.0), 'applied_scale': 0.3})              # a stop too late
    assert main([str(path)]) == 1
    text = capsys.readouterr().out
    assert 'VIOLATIONS: 2' in text
    assert '0.133 s  closer_than_sp_while_moving' in text and '0.167 s  closer_than_sp_while_moving' in text


def red_pixels(png):
    import matplotlib.image
    image = matplotlib.image.imread(png)
    return int(((image[..., 0] > 0.8) & (image[..., 1] < 0.2) & (image[..., 2] < 0.2)).sum())


def test_contact_above_its_limit_is_a_violation(tmp_path, capsys):
    path = tmp_path / 'contact.jsonl'
    with EvidenceWriter(path) as writer:
        writer.write(cycle(0.0, 3.0, 1.0, 0.0))
        writer.write({'kind': 'event', 'event': 'contact', 'stamp_s': 0.5, 'state': 'emergency_stop',
                      'zone': 'fault', 'speed_scale': 0.0, 'reason': 'contact with hand: 300 N',
                      'details': {'region': 'hand', 'force_N': 300.0, 'limit_N': 280.0,
                                  'outcome': 'above_transient'}})
        writer.write(cycle(1.0, 3.0, 1.0, 0.0))
    assert main([str(path), '--json']) == 1
    report = json.loads(capsys.readouterr().out)
    assert report['result'] == 'FAIL' and report['violations'][0]['kind'] == 'contact_above_limit'


def test_tampered_log_exits_1_naming_the_finding(log_path, capsys):
    text = log_path.read_text()
    assert '"event":"stop"' in text
    log_path.write_text(text.replace('"event":"stop"', '"event":"resume"'))      # stops rewritten as normal
    assert main([str(log_path)]) == 1
    out = capsys.readouterr().out
    assert 'evidence chain: BROKEN (bad_hash' in out and 'result: FAIL (evidence chain broken)' in out


def test_deleted_tail_and_reversed_log_exit_1(log_path, tmp_path, capsys):
    lines = log_path.read_text().splitlines(keepends=True)
    log_path.write_text(''.join(lines[:len(lines) // 2]))
    assert main([str(log_path)]) == 1
    assert 'tail_missing' in capsys.readouterr().out
    log_path.write_text(''.join(reversed(lines)))
    assert main([str(log_path), '--json']) == 1
    report = json.loads(capsys.readouterr().out)
    assert report['chain']['finding_counts']['reordered'] > 100 and report['result'] == 'FAIL'


def test_json_report_is_strict_json_with_reasons(tmp_path, capsys):
    path = tmp_path / 'nobody.jsonl'
    with EvidenceWriter(path) as writer:
        for k in range(5):
            writer.write(cycle(k * DT, math.inf, math.nan, 1.0))
    assert main([str(path), '--json']) == 0
    text = capsys.readouterr().out
    report = json.loads(text, parse_constant=lambda token: pytest.fail(f'non-standard JSON token {token}'))
    assert report['worst_margin_m'] is None and report['worst_margin_m_reason'] == 'nobody near the moving arm'
    assert report['result'] == 'PASS' and report['chain']['ok']


def test_bad_options_exit_2():
    assert main(['--colour']) == 2


def test_reasons_group_without_their_numbers():
    assert reason_kind('person 0 at 0.51 m, inside the protective distance 0.6 m') == \
        reason_kind('person 1 at 0.32 m, inside the protective distance 0.6 m')


# -- an anchor kept off the machine (the MES `anchor` stream) ----------------------------------------------
def mes_anchor_args(log_path):
    """What the supervisor sends to the MES now: the head of the log (EvidenceWriter.anchor)."""
    last = json.loads(log_path.read_text().splitlines()[-1])
    return ['--anchor-seq', str(last['seq']), '--anchor-hash', last['hash']]


def test_an_intact_log_passes_against_an_earlier_mes_anchor(log_path, capsys):
    anchor = mes_anchor_args(log_path)
    with EvidenceWriter(log_path) as writer:          # the cell went on after the anchor was sent
        for k in range(5):
            writer.write(cycle(10.0 + k * DT, separation_m=3.0, sp_m=1.0, scale=1.0))
    assert main([str(log_path), *anchor]) == 0
    assert 'result: PASS' in capsys.readouterr().out


def test_a_truncated_log_fails_against_an_anchor_taken_before_the_truncation(log_path, capsys):
    anchor = mes_anchor_args(log_path)
    lines = log_path.read_text().splitlines(keepends=True)
    log_path.write_text(''.join(lines[:len(lines) // 2]))
    # the attacker also rewrites the local anchor to the new end: only the MES copy still knows
    (log_path.parent / (log_path.name + '.anchor')).unlink()
    with EvidenceWriter(log_path):
        pass                                            # reopening re-anchors the cut log locally
    assert main([str(log_path)]) == 0                   # the local anchor alone cannot tell
    capsys.readouterr()
    assert main([str(log_path), *anchor]) == 1
    out = capsys.readouterr().out
    assert 'tail_missing' in out and f'MES anchor seq {anchor[1]}' in out and 'result: FAIL' in out


def test_a_resealed_log_fails_against_the_mes_anchor(log_path, capsys):
    anchor = mes_anchor_args(log_path)
    lines = log_path.read_text().splitlines(keepends=True)
    cut = len(lines) // 2
    log_path.write_text(''.join(lines[:cut]))
    (log_path.parent / (log_path.name + '.anchor')).unlink()
    with EvidenceWriter(log_path) as writer:            # re-sealed: as many records again, other content
        while sum(1 for _ in log_path.open()) < len(lines) + 2:
            writer.write(cycle(100.0, separation_m=3.0, sp_m=1.0, scale=1.0))
    assert main([str(log_path)]) == 0
    capsys.readouterr()
    assert main([str(log_path), *anchor, '--json']) == 1
    report = json.loads(capsys.readouterr().out)
    assert report['chain']['finding_counts'] == {'anchor_mismatch': 1} and report['result'] == 'FAIL'


def test_an_emptied_log_fails_against_the_mes_anchor(log_path, capsys):
    anchor = mes_anchor_args(log_path)
    log_path.write_text('')
    (log_path.parent / (log_path.name + '.anchor')).unlink()
    assert main([str(log_path), *anchor, '--no-anchor']) == 1
    assert 'tail_missing' in capsys.readouterr().err


@pytest.mark.parametrize('args, words', [(['--anchor-seq', '3'], 'go together'),
                                         (['--anchor-seq', '0', '--anchor-hash', 'a' * 64], '>= 1'),
                                         (['--anchor-seq', '3', '--anchor-hash', 'xyz'], 'hex digits')])
def test_a_bad_mes_anchor_option_exits_2(log_path, capsys, args, words):
    assert main([str(log_path), *args]) == 2
    assert words in capsys.readouterr().err
