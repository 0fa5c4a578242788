"""PFL (ISO/TS 15066 Annex A): the shipped table against the standard, and eq. (A.4)-(A.6) by hand."""
import math
from pathlib import Path

import pytest
import yaml

from smartcell.core.params import ConfigError
from smartcell.core.safety.pfl import (BodyModel, ContactForceModel, ContactOutcome, contact_verdict,
                                       max_contact_speed, max_transient_speed, reduced_mass, robot_effective_mass,
                                       transient_contact_force_N)

CONFIG = Path(__file__).resolve().parents[2] / 'config'
BODY = BodyModel.from_yaml(CONFIG / 'body_regions.yaml')


# Table A.2 (force N, lowest pressure N/cm^2) and Table A.3 (k N/mm, m_H kg), typed in again from
# the standard so a typo in config/body_regions.yaml shows up here.
@pytest.mark.parametrize('region,force,lowest_pressure,k,m_h,transient', [
    ('skull_forehead', 130, 110, 150, 4.4, False),
    ('face', 65, 110, 75, 4.4, False),
    ('neck', 150, 140, 50, 1.2, True),
    ('back_shoulders', 210, 160, 35, 40, True),
    ('chest', 140, 120, 25, 40, True),
    ('abdomen', 110, 140, 10, 40, True),
    ('pelvis', 180, 210, 25, 40, True),
    ('upper_arms_elbows', 150, 190, 30, 3, True),
    ('lower_arms_wrists', 160, 180, 40, 2, True),
    ('hands_fingers', 140, 190, 75, 0.6, True),
    ('thighs_knees', 220, 220, 50, 75, True),
    ('lower_legs', 130, 210, 60, 75, True),
])
def test_shipped_table_matches_iso_ts_15066_tables_a2_a3(region, force, lowest_pressure, k, m_h, transient):
    entry = BODY.region(region)
    assert entry.force_N == force
    assert entry.min_pressure_N_per_cm2 == lowest_pressure
    assert entry.spring_constant_N_per_mm == k
    assert entry.effective_mass_kg == m_h
    assert entry.transient_permitted is transient
    assert entry.transient_force_N == (2 * force if transient else 0.0)


def test_all_29_body_areas_are_present_and_head_is_not_exposed():
    assert sum(len(r.pressures_N_per_cm2) for r in BODY.regions.values()) == 29
    assert not {'skull_forehead', 'face'} & set(BODY.exposed)


def test_effective_and_reduced_mass():
    # m_R = 16 / 2 + 1 = 9 kg (eq. A.5); mu(hands) = 1 / (1/0.6 + 1/9) = 0.5625 kg (eq. A.4)
    assert robot_effective_mass(16.0, 1.0) == pytest.approx(9.0)
    assert reduced_mass(0.6, 9.0) == pytest.approx(0.5625)


@pytest.mark.parametrize('region,area,expected', [
    # hands: F = 2 * 140 = 280 N; sqrt(0.5625 kg * 75 000 N/m) = 205.396 -> 1.3632 m/s
    ('hands_fingers', None, 280.0 / math.sqrt(0.5625 * 75000.0)),
    # upper arms: mu = 1 / (1/3 + 1/9) = 2.25 kg; F = 300 N; sqrt(2.25 * 30 000) = 259.81 -> 1.1547 m/s
    ('upper_arms_elbows', None, 300.0 / math.sqrt(2.25 * 30000.0)),
    # chest: mu = 1 / (1/40 + 1/9) = 7.3469 kg; F = 280 N; k = 25 000 N/m -> 0.6533 m/s
    ('chest', None, 280.0 / math.sqrt(1.0 / (1 / 40 + 1 / 9) * 25000.0)),
    # hands with 0.5 cm^2: pressure bound 2 * 190 * 0.5 = 190 N < 280 N -> 190 / 205.396 = 0.925 m/s
    ('hands_fingers', 0.5, 190.0 / math.sqrt(0.5625 * 75000.0)),
    # hands with 1 cm^2: 380 N > 280 N, the force limit stays
    ('hands_fingers', 1.0, 280.0 / math.sqrt(0.5625 * 75000.0)),
    # no transient contact allowed with the face
    ('face', None, 0.0),
])
def test_max_transient_speed(region, area, expected):
    assert max_transient_speed(BODY.region(region), 16.0, 1.0, area) == pytest.approx(expected)


def test_heavier_payload_lowers_the_permissible_speed():
    hands = BODY.region('hands_fingers')
    assert max_transient_speed(hands, 16.0, 5.0) < max_transient_speed(hands, 16.0, 1.0)


@pytest.mark.parametrize('region', ['hands_fingers', 'lower_arms_wrists', 'upper_arms_elbows', 'chest'])
@pytest.mark.parametrize('area', [None, 0.5, 1.0])
def test_clamping_halves_the_permissible_speed(region, area):
    # quasi-static force and pressure (1x) instead of the transient ones (2x) in v = F / sqrt(mu k)
    transient = max_contact_speed(BODY.region(region), 16.0, 1.0, area, clamping=False)
    clamped = max_contact_speed(BODY.region(region), 16.0, 1.0, area, clamping=True)
    assert transient == pytest.approx(max_transient_speed(BODY.region(region), 16.0, 1.0, area))
    assert clamped == pytest.approx(transient / 2.0)


def test_clamping_hands_cap_hand_computed_and_no_contact_with_the_face():
    # hands, M = 16 kg, m_L = 1 kg: F = 140 N quasi-static; sqrt(0.5625 kg * 75 000 N/m) = 205.396 -> 0.6816 m/s
    assert max_contact_speed(BODY.region('hands_fingers'), 16.0, 1.0, clamping=True) == pytest.approx(
        140.0 / math.sqrt(0.5625 * 75000.0))
    # a clamping contact starts with an impact: still none with the face or skull
    assert max_contact_speed(BODY.region('face'), 16.0, 1.0, clamping=True) == 0.0
    assert max_contact_speed(BODY.region('skull_forehead'), 16.0, 1.0, 1.0, clamping=True) == 0.0


def test_the_shipped_station_allows_clamping_and_an_absent_key_assumes_it():
    assert BODY.clamping_possible is True
    document = yaml.safe_load(open(CONFIG / 'body_regions.yaml'))
    assert BodyModel.from_mapping({**document, 'clamping_possible': False}).clamping_possible is False
    document.pop('clamping_possible')
    assert BodyModel.from_mapping(document).clamping_possible is True


@pytest.mark.parametrize('value', ['yes', 1, 0, None, [True]])
def test_a_clamping_flag_that_is_not_a_bool_is_refused(tmp_path, value):
    document = yaml.safe_load(open(CONFIG / 'body_regions.yaml'))
    document['clamping_possible'] = value
    path = tmp_path / 'regions.yaml'
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match='clamping_possible must be true or false'):
        BodyModel.from_yaml(path)
    with pytest.raises(ConfigError, match='clamping_possible'):
        BodyModel(BODY.regions, BODY.exposed, value)


@pytest.mark.parametrize('region,force,transient,outcome,limit', [
    ('hands_fingers', 200.0, True, ContactOutcome.WITHIN_LIMIT, 280.0),
    ('hands_fingers', 280.0, True, ContactOutcome.WITHIN_LIMIT, 280.0),      # at the limit: within
    ('hands_fingers', 281.0, True, ContactOutcome.ABOVE_TRANSIENT, 280.0),
    ('hands_fingers', 150.0, False, ContactOutcome.ABOVE_QUASI_STATIC, 140.0),
    ('hands_fingers', math.nan, False, ContactOutcome.ABOVE_QUASI_STATIC, 140.0),
    ('face', 10.0, True, ContactOutcome.ABOVE_TRANSIENT, 0.0),
])
def test_contact_verdict(region, force, transient, outcome, limit):
    verdict = contact_verdict(BODY.region(region), force, transient)
    assert verdict.outcome is outcome
    assert verdict.limit_N == limit
    assert verdict.within_limit == (outcome is ContactOutcome.WITHIN_LIMIT)


@pytest.mark.parametrize('mutate,fragment', [
    (lambda d: d['regions']['chest'].update(force_N=-1), "'chest': force_N must be a number > 0"),
    (lambda d: d['regions']['chest'].pop('areas'), "region 'chest' must hold exactly"),
    (lambda d: d.update(exposed=['tail']), 'exposed must list region names'),
    (lambda d: d['regions']['neck']['areas'].update(neck_muscle='soft'), "area 'neck_muscle'"),
])
def test_bad_body_region_files_name_the_problem(tmp_path, mutate, fragment):
    document = yaml.safe_load(open(CONFIG / 'body_regions.yaml'))
    mutate(document)
    path = tmp_path / 'regions.yaml'
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as err:
        BodyModel.from_yaml(path)
    assert fragment in str(err.value)


def test_unknown_region_names_the_accepted_ones():
    with pytest.raises(ConfigError, match="unknown body region 'tail'; accepted: skull_forehead"):
        BODY.region('tail')


# -- the twin's contact forces (Annex A's two-body model) ----------------------------------------

def test_a_contact_at_the_permissible_speed_meets_exactly_its_limit():
    hand = BODY.region('hands_fingers')
    v = max_contact_speed(hand, 16.0, 1.0, clamping=True)
    assert transient_contact_force_N(hand, v, 16.0, 1.0) == pytest.approx(hand.force_N)
    # by hand: m_R = 16/2 + 1 = 9 kg, mu = (1/0.6 + 1/9)^-1 = 0.5625 kg, k = 75 000 N/m
    assert transient_contact_force_N(hand, 0.25, 16.0, 1.0) == pytest.approx(0.25 * math.sqrt(0.5625 * 75_000))
    with pytest.raises(ValueError, match='closing speed'):
        transient_contact_force_N(hand, float('nan'), 16.0, 1.0)


def test_a_contact_episode_is_the_first_touch_then_the_spring_the_robot_compresses_up_to_its_rated_limit():
    model = ContactForceModel(BODY, 16.0, 1.0, 120.0)
    episode = model.touch(['lower_arms_wrists', 'hands_fingers'], 0.1)
    assert episode.region.name == 'hands_fingers'           # the stricter of the two
    first = episode.force_N
    assert first == pytest.approx(0.1 * math.sqrt(0.5625 * 75_000))
    episode.push(-0.5, 0.01)                                # moving away compresses nothing
    assert episode.compression_m == 0.0 and episode.force_N == first
    episode.push(0.1, 0.01)                                 # 1 mm into a 75 N/mm hand: 75 N
    assert episode.force_N == pytest.approx(75.0) and not episode.rated_stop
    episode.push(0.1, 0.01)                                 # 2 mm would be 150 N: the robot's limit holds it at 120
    assert episode.force_N == pytest.approx(120.0) and episode.rated_stop
    assert model.touch(['hands_fingers'], -0.3).force_N == 0.0     # a region moving away from the robot


def test_a_rated_force_limit_above_an_exposed_region_is_refused_naming_it():
    with pytest.raises(ConfigError, match=r'hands_fingers \(140 N\).*at most 140 N'):
        ContactForceModel(BODY, 16.0, 1.0, 150.0)
    with pytest.raises(ConfigError, match='rated force limit must be a number > 0'):
        ContactForceModel(BODY, 16.0, 1.0, float('nan'))
    with pytest.raises(ConfigError, match='payload'):
        ContactForceModel(BODY, 16.0, -1.0, 100.0)


def test_a_hand_swung_into_a_slow_arm_is_the_persons_force_and_the_robots_share_is_its_own_speed():
    model = ContactForceModel(BODY, 16.0, 1.0, 120.0)
    episode = model.touch(['hands_fingers'], 1.2, robot_speed_mps=0.2)
    root_mu_k = math.sqrt(0.5625 * 75_000)
    assert episode.force_N == pytest.approx(1.2 * root_mu_k)        # 243 N: what the hand meets
    assert episode.robot_force_N == pytest.approx(0.2 * root_mu_k)  # 41 N: what the robot brought
    episode.push(0.1, 0.01)                                         # then the robot pushes on: its force
    assert episode.robot_force_N == pytest.approx(75.0)
    assert model.touch(['hands_fingers'], 0.8, robot_speed_mps=-0.1).robot_force_N == 0.0   # arm moving away


def test_a_touch_at_an_unknown_speed_is_taken_as_above_every_limit():
    model = ContactForceModel(BODY, 16.0, 1.0, 120.0)
    unknown_relative = model.touch(['hands_fingers'], float('nan'), 0.1)
    assert unknown_relative.force_N == math.inf and unknown_relative.robot_force_N < 140.0
    unknown_robot = model.touch(['hands_fingers'], 0.3, float('nan'))
    assert unknown_robot.robot_force_N == math.inf
    assert not contact_verdict(unknown_robot.region, unknown_robot.robot_force_N, False).within_limit
    both = model.touch(['hands_fingers'], float('nan'))
    assert both.force_N == both.robot_force_N == math.inf
