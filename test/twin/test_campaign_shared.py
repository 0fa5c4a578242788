"""The campaign's shared tasks at the assembly station (issue 13 item 6), the collaborative regions it
takes from the supervisor's configuration, and the scanner background it runs as the scanner node does."""
import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from smartcell.core.sensors.background import BackgroundError, read_background_file
from smartcell.tools import campaign as campaign_tool
from smartcell.twin.campaign import (SHARED_TASKS, CampaignSettings, _in_shared_workspace, campaign_scenario,
                                      run_scenario)
from smartcell.twin.human import REGION_NAMES, PersonState, region_segments
from smartcell.twin.world import DEFAULT_LAYOUT

STATION = DEFAULT_LAYOUT.station('assembly')
BENCH = DEFAULT_LAYOUT.station('operator_bench')
TABLE_FRONT_X_M = DEFAULT_LAYOUT.table.centre_m[0] + DEFAULT_LAYOUT.table.size_m[0] / 2
SHARED_REGION = [1.2, 0.0, 0.6]        # x, y, radius m: where the operator stands at the assembly station
SEED_WITH_ALL_SHARED_TASKS = 327       # its scenarios 0-2 are the three shared tasks


@pytest.fixture(scope='module')
def settings(repo: Path) -> CampaignSettings:
    return CampaignSettings.from_files(repo / 'config' / 'cell.yaml', repo / 'config')


def with_regions(settings: CampaignSettings, regions: list[float]) -> CampaignSettings:
    return dataclasses.replace(settings, supervisor={**settings.supervisor, 'collaborative_regions_xyr': regions})


def first_of(kind: str, duration_s: float = 20.0):
    return next(s for s in (campaign_scenario(i, 1, duration_s) for i in range(200)) if s.kind == kind)


def cell_yaml_with(repo: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = (repo / 'config' / 'cell.yaml').read_text()
    assert old in text
    path = tmp_path / 'cell.yaml'
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize('kind', SHARED_TASKS)
def test_shared_tasks_are_generated_the_same_for_the_same_seed(kind):
    first = first_of(kind)
    again = campaign_scenario(first.index, 1, 20.0)
    assert again.kind == kind and again.description == first.description and len(first.paths) == 1
    times = np.arange(0.0, 20.0, 0.1)
    assert [first.paths[0].state_at(t) for t in times] == [again.paths[0].state_at(t) for t in times]


def test_shared_station_operator_works_there_all_run_and_reaches_now_and_then():
    for scenario in [s for s in (campaign_scenario(i, 1, 20.0) for i in range(60)) if s.kind == 'shared_station']:
        states = [scenario.paths[0].state_at(t) for t in np.arange(0.0, 20.0, 0.1)]
        assert max(math.dist((s.x_m, s.y_m), STATION.person_position_m()) for s in states) < 0.35
        reach = [s.reach for s in states]
        assert max(reach) >= 0.5 and min(reach) == 0.0, scenario.description


def test_handover_goes_from_the_bench_to_the_station_and_back_repeatedly():
    path = first_of('handover', 30.0).paths[0]
    at_station, at_bench, where = [], [], ''
    for t in np.arange(0.0, 30.0, 0.05):
        state = path.state_at(t)
        here = (state.x_m, state.y_m)
        if math.dist(here, STATION.person_position_m()) < 0.3 and state.reach >= 0.7 and where != 'station':
            at_station.append(t)
            where = 'station'
        elif math.dist(here, BENCH.person_position_m()) < 0.05 and where != 'bench':
            at_bench.append(t)
            where = 'bench'
    assert len(at_station) >= 2 and len(at_bench) >= 2, (at_station, at_bench)


def test_reach_across_puts_the_hands_over_the_table_toward_the_robot():
    path = first_of('reach_across').paths[0]
    hand = [i for i, name in enumerate(REGION_NAMES) if name.startswith('forearm_hand')]
    tips = []
    for t in np.arange(0.0, 20.0, 0.1):
        segments, _ = region_segments(path.state_at(t))
        tips.append(segments[hand][:, :, 0].min())
    # At the table edge with the arms out, the hands reach 0.4 m or more past it, over the robot's side.
    assert min(tips) < TABLE_FRONT_X_M - 0.4


def test_two_people_never_share_the_station_spot():
    pairs = [s for s in (campaign_scenario(i, 1, 8.0) for i in range(300)) if s.kind == 'two_people']
    assert pairs
    for scenario in pairs:
        assert sum(f'({task})' in scenario.description for task in SHARED_TASKS) <= 1, scenario.description


def test_at_the_shared_station_ssm_works_where_the_static_zone_stops(settings):
    scenario = first_of('shared_station', 12.0)
    shared = with_regions(settings, SHARED_REGION)
    ssm, static = run_scenario(scenario, 'ssm', shared), run_scenario(scenario, 'static', shared)
    assert ssm.violations == 0 and ssm.contacts_above_limit == 0 and ssm.pfl_overspeed_samples == 0, ssm.examples
    assert ssm.collaborative_time_s > 0.8 * scenario.duration_s       # PFL caps, not separation stops
    assert static.parts == 0 and ssm.parts > 0                        # inside the static zone all along
    # Without a declared region the same operator is judged by SSM all run.
    alone = run_scenario(scenario, 'ssm', with_regions(settings, [0.0, 0.0, 0.0]))
    assert alone.collaborative_time_s == 0.0 and alone.violations == 0 and alone.contacts_above_limit == 0


def test_the_audit_fails_at_the_station_with_no_safety_function(settings):
    scenario = first_of('shared_station', 12.0)
    unsafe = run_scenario(scenario, 'none', with_regions(settings, SHARED_REGION))
    assert unsafe.violations > 10 and unsafe.stops == 0
    assert unsafe.collaborative_time_s == 0.0         # no safety function claims PFL: S_p judges every tick


def test_the_collaborative_regions_come_from_the_supervisor_config(repo, tmp_path):
    text = (repo / 'config' / 'cell.yaml').read_text()
    yaml = tmp_path / 'cell.yaml'
    yaml.write_text(re.sub(r'collaborative_regions_xyr: \[[^]]*\]', 'collaborative_regions_xyr: [1.2, 0.0, 0.6]', text))
    settings = CampaignSettings.from_files(yaml, repo / 'config')
    assert list(settings.supervisor['collaborative_regions_xyr']) == SHARED_REGION
    result = run_scenario(first_of('shared_station', 6.0), 'ssm', settings)
    assert result.collaborative_time_s > 3.0


def test_the_campaign_loads_the_scanner_background_and_it_removes_ghosts(settings, repo):
    assert settings.background is not None
    shipped = read_background_file(repo / 'config' / 'scanner_background_twin.json')
    assert np.array_equal(settings.background.ranges_m, shipped.ranges_m)
    scenario = first_of('reach_across', 8.0)
    with_background = run_scenario(scenario, 'ssm', settings)
    without = run_scenario(scenario, 'ssm', dataclasses.replace(settings, background=None))
    assert with_background.ghost_ticks == 0 and without.ghost_ticks > 30


def test_a_background_of_another_mount_is_refused(repo, tmp_path, capsys):
    yaml = cell_yaml_with(repo, tmp_path, 'scanner_pose_xy_yaw: [0.95, 0.55,', 'scanner_pose_xy_yaw: [0.90, 0.55,')
    with pytest.raises(BackgroundError, match='teach the background again'):
        CampaignSettings.from_files(yaml, repo / 'config')
    assert campaign_tool.main(['--scenarios', '1', '--config', str(yaml)]) == 2
    assert 'background' in capsys.readouterr().err


def test_a_small_campaign_lists_every_shared_task(tmp_path, capsys):
    out = tmp_path / 'campaign.json'
    status = campaign_tool.main(['--scenarios', '3', '--seed', str(SEED_WITH_ALL_SHARED_TASKS), '--duration', '6',
                                 '--workers', '2', '--output', str(out)])
    printed = capsys.readouterr().out
    summary = json.loads(out.read_text())['summary']
    assert set(summary['by_kind']) == set(SHARED_TASKS)
    table = printed[printed.index('by what the people do'):]
    assert all(f'\n{task} ' in table for task in SHARED_TASKS), table
    for task in SHARED_TASKS:
        figures = summary['by_kind'][task]
        assert {'parts_per_hour', 'stops', 'stopped_share', 'violations', 'contacts_above_limit'} <= set(figures['ssm'])
    assert status == (1 if campaign_tool.failed(summary['ssm']) else 0), printed


@pytest.mark.parametrize('xy,inside', [((1.2, 0.0), True), ((1.2, 0.84), True), ((1.2, 0.86), False),
                                       ((0.3, 0.0), False), ((2.3, 1.1), False)])
def test_only_people_truly_in_the_shared_workspace_are_spared_the_s_p_rule(xy, inside):
    # The region of cell.yaml grown by 0.25 m (SHARED_WORKSPACE_HYSTERESIS_M), an allowance for the tracks the
    # controller decides by; anybody beyond is judged against S_p even in collaborative mode.
    regions = np.array([SHARED_REGION])
    assert _in_shared_workspace(PersonState(*xy, yaw_rad=0.0), regions) is inside
