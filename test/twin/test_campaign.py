"""The safety campaign on a small N (the README gives the 1000-scenario figures and the command)."""
import json
import math
from pathlib import Path

import pytest

from smartcell.tools import campaign as campaign_tool
from smartcell.twin.campaign import BEHAVIOURS, CampaignSettings, campaign_scenario, run_scenario


@pytest.fixture(scope='module')
def settings(repo: Path) -> CampaignSettings:
    return CampaignSettings.from_files(repo / 'config' / 'cell.yaml', repo / 'config')


def test_scenarios_are_seeded_and_cover_the_behaviours():
    first = campaign_scenario(3, 7, 20.0)
    again = campaign_scenario(3, 7, 20.0)
    assert first.description == again.description and first.seed == again.seed
    assert [p.state_at(9.0) for p in first.paths] == [p.state_at(9.0) for p in again.paths]
    assert campaign_scenario(4, 7, 20.0).description != first.description
    scenarios = [campaign_scenario(i, 1, 20.0) for i in range(60)]
    kinds = {s.kind for s in scenarios}
    assert set(BEHAVIOURS) <= kinds and 'two_people' in kinds
    assert any(s.dropout_s for s in scenarios)
    assert any('runs 2.0 m/s' in s.description for s in scenarios)
    sides = {side for s in scenarios for side in ('front', 'front-left', 'left', 'back-left')
             if f'to the {side},' in s.description or f'to the {side} ' in s.description}
    assert {'front', 'left'} <= sides


def test_ssm_has_no_violation_where_no_safety_function_has_many(settings):
    scenario = next(s for s in (campaign_scenario(i, 1, 12.0) for i in range(50)) if s.kind == 'reach_in')
    ssm = run_scenario(scenario, 'ssm', settings)
    unsafe = run_scenario(scenario, 'none', settings)
    assert ssm.violations == 0 and ssm.contacts_above_limit == 0, ssm.examples
    assert ssm.stopped_time_s > 1.0                               # it held the arm for the person
    assert unsafe.violations > 10 and unsafe.stops == 0          # the audit can fail
    # Without a safety function the arm is never held (a 12 s run ends within the same part either way)
    assert unsafe.parts >= ssm.parts and unsafe.stopped_time_s < ssm.stopped_time_s - 1.0
    assert all(e['kind'] == 'moving' for e in unsafe.examples)


def test_a_run_is_deterministic(settings):
    scenario = campaign_scenario(5, 1, 8.0)
    first, second = (run_scenario(scenario, 'ssm', settings).as_dict() for _ in range(2))
    for result in (first, second):
        result.pop('wall_s')
    assert first == second


def test_the_command_reports_a_small_campaign(tmp_path, capsys):
    out = tmp_path / 'campaign.json'
    status = campaign_tool.main(['--scenarios', '2', '--duration', '8', '--workers', '2', '--output', str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert 'SSM parts per hour vs the static zone' in printed and 'contacts above the quasi-static limit' in printed
    report = json.loads(out.read_text())
    summary = report['summary']
    assert summary['scenarios'] == 2 and len(report['scenarios']) == 4
    assert summary['ssm']['violations'] == 0 and summary['ssm']['contacts_above_limit'] == 0
    assert math.isfinite(summary['static']['parts_per_hour'])


@pytest.mark.parametrize('argv,fragment', [
    (['--scenarios', '0'], '--scenarios must be >= 1'),
    (['--duration', 'nan'], '--duration must be in'),
    (['--policies', 'ssm,fast'], '--policies'),
])
def test_bad_arguments_are_refused(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        campaign_tool.main(argv)
    assert exit_info.value.code == 2
    assert fragment in capsys.readouterr().err
