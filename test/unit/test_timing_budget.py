"""T_r covers the people timeout it relies on: the start-up rule of SafetyPipeline.from_params."""
from __future__ import annotations

import pytest

from smartcell.core.node_params import SUPERVISOR
from smartcell.core.params import ConfigError
from smartcell.core.safety.pipeline import SafetyPipeline, check_reaction_time, reaction_budget_s
from smartcell.share import share_file


def supervisor_config(**overrides) -> dict:
    return {**{spec.name: spec.default for spec in SUPERVISOR.specs}, 'evidence_log': '', **overrides}


@pytest.mark.parametrize('people_timeout_s, required_s', [(0.07, 0.155), (0.1, 0.2), (0.17, 0.305)])
def test_budget_is_timeout_plus_watchdog_period_plus_arm_hop(people_timeout_s, required_s):
    assert reaction_budget_s(people_timeout_s) == pytest.approx(required_s)


def test_defaults_satisfy_the_rule():
    config = supervisor_config()
    assert check_reaction_time(config) <= config['reaction_time_s']


@pytest.mark.parametrize('reaction_time_s, people_timeout_s', [(0.15, 0.07), (0.15, 0.17), (0.30, 0.17)])
def test_short_reaction_time_is_refused_naming_both_keys(reaction_time_s, people_timeout_s):
    config = supervisor_config(reaction_time_s=reaction_time_s, people_timeout_s=people_timeout_s)
    with pytest.raises(ConfigError) as refused:
        SafetyPipeline.from_params(config, share_file('config', 'stopping.yaml'),
                                   share_file('config', 'body_regions.yaml'))
    assert 'reaction_time_s' in str(refused.value) and 'people_timeout_s' in str(refused.value)


def test_exactly_the_budget_is_accepted():
    config = supervisor_config(people_timeout_s=0.1, reaction_time_s=reaction_budget_s(0.1))
    pipeline = SafetyPipeline.from_params(config, share_file('config', 'stopping.yaml'),
                                          share_file('config', 'body_regions.yaml'))
    pipeline.close()
