"""Scenarios and the person model: deterministic per seed, plausible paths, walking legs."""
import math

import numpy as np
import pytest

from smartcell.twin.human import (ISO_TS_15066_REGIONS, REGION_NAMES, RUNNING_SPEED_MPS, BodyDimensions, PathBuilder,
                                  PersonState, region_poses)
from smartcell.twin.scenarios import SCENARIOS, scenario_paths
from smartcell.twin.world import DEFAULT_LAYOUT

pytestmark = pytest.mark.twin

DURATION_S = 600.0


def _sampled(paths, step_s: float = 0.1, duration_s: float = DURATION_S) -> np.ndarray:
    """(people, samples, 6): x, y, yaw, speed, gait phase, reach."""
    times = np.arange(0.0, duration_s, step_s)
    return np.array([[[s.x_m, s.y_m, s.yaw_rad, s.speed_mps, s.gait_phase_rad, s.reach]
                      for s in (path.state_at(t) for t in times)] for path in paths])


@pytest.mark.parametrize('name', ['shift', 'shift_two_people', 'intrusion'])
def test_same_seed_same_paths_other_seed_other_paths(name):
    first = _sampled(scenario_paths(name, seed=11, duration_s=DURATION_S))
    again = _sampled(scenario_paths(name, seed=11, duration_s=DURATION_S))
    other = _sampled(scenario_paths(name, seed=12, duration_s=DURATION_S))
    np.testing.assert_array_equal(first, again)
    assert first.shape == other.shape and not np.allclose(first, other)


def test_empty_has_nobody():
    assert scenario_paths('empty', seed=1, duration_s=60.0) == ()


def test_unknown_scenario_lists_the_accepted_names():
    with pytest.raises(ValueError) as info:
        scenario_paths('rush_hour', seed=1, duration_s=10.0)
    for name in SCENARIOS:
        assert name in str(info.value)
    assert {'shift', 'empty', 'intrusion'} <= set(SCENARIOS)


def _inside_fence(xy: np.ndarray) -> np.ndarray:
    f = DEFAULT_LAYOUT.fence
    return (xy[..., 0] > f.xmin_m) & (xy[..., 0] < f.xmax_m) & (xy[..., 1] > f.ymin_m) & (xy[..., 1] < f.ymax_m)


@pytest.mark.parametrize('seed', range(5))
def test_shift_person_mostly_outside_sometimes_at_the_shared_station(seed):
    states = _sampled(scenario_paths('shift', seed=seed, duration_s=DURATION_S))[0]
    inside = _inside_fence(states[:, :2])
    assert 0.0 < inside.mean() < 0.5
    assembly = np.array(DEFAULT_LAYOUT.station('assembly').person_xy_m)
    at_station = np.linalg.norm(states[:, :2] - assembly, axis=1) < 0.05
    assert at_station.any() or inside.any()


@pytest.mark.parametrize('name, seed', [('shift', s) for s in range(5)] + [('intrusion', s) for s in range(3)]
                         + [('shift_two_people', 1)])
def test_paths_keep_off_the_table_and_cross_the_fence_only_at_the_opening(name, seed):
    layout = DEFAULT_LAYOUT
    table = layout.table
    for person in _sampled(scenario_paths(name, seed=seed, duration_s=DURATION_S), step_s=0.05):
        xy = person[:, :2]
        body_radius_m = 0.2
        in_table = (np.abs(xy[:, 0] - table.centre_m[0]) < table.size_m[0] / 2 + body_radius_m) & \
                   (np.abs(xy[:, 1] - table.centre_m[1]) < table.size_m[1] / 2 + body_radius_m)
        assert not in_table.any(), xy[in_table][:3]
        crossing = np.nonzero(_inside_fence(xy[1:]) != _inside_fence(xy[:-1]))[0]
        fence = layout.fence
        half = fence.opening_width_m / 2
        for k in crossing:
            assert abs(xy[k, 1] - fence.opening_centre_y_m) < half, f'crossed the fence at {xy[k]}'
        assert person[:, 3].max() <= RUNNING_SPEED_MPS + 1e-9


def test_intrusion_comes_close_to_the_robot_and_reaches_in():
    states = _sampled(scenario_paths('intrusion', seed=2, duration_s=60.0), duration_s=60.0)[0]
    robot_xy = np.array(DEFAULT_LAYOUT.robot_base_position_m[:2])
    assert np.linalg.norm(states[:, :2] - robot_xy, axis=1).min() < 1.3
    assert states[:, 5].max() == pytest.approx(1.0)
    assert states[:, 3].max() >= 1.6 - 1e-9


def test_regions_cover_the_iso_ts_15066_body_regions():
    assert set(REGION_NAMES) == set(ISO_TS_15066_REGIONS)
    for required in ('head', 'torso', 'upper_arm_left', 'forearm_hand_right', 'lower_leg_left', 'thigh_right'):
        assert required in REGION_NAMES


def _lower_leg_offsets(state: PersonState) -> np.ndarray:
    positions, _ = region_poses(state)
    legs = [REGION_NAMES.index('lower_leg_left'), REGION_NAMES.index('lower_leg_right')]
    return positions[legs, 0] - state.x_m            # forward offsets (person faces +x)


def test_legs_swing_alternately_while_walking_and_stand_together_when_still():
    quarter = PersonState(0.0, 0.0, 0.0, speed_mps=1.6, gait_phase_rad=math.pi / 2)
    three_quarters = PersonState(0.0, 0.0, 0.0, speed_mps=1.6, gait_phase_rad=3 * math.pi / 2)
    left, right = _lower_leg_offsets(quarter)
    assert left > 0.1 and right < -0.1                  # left leg ahead
    left, right = _lower_leg_offsets(three_quarters)
    assert left < -0.1 and right > 0.1                  # then the right one
    np.testing.assert_allclose(_lower_leg_offsets(PersonState(0.0, 0.0, 0.0)), 0.0, atol=1e-12)


def test_reaching_raises_the_hands_forward_to_shoulder_height():
    dims = BodyDimensions()
    positions, _ = region_poses(PersonState(1.0, 2.0, math.pi / 2, reach=1.0), dims)
    hand = positions[REGION_NAMES.index('forearm_hand_right')]
    assert hand[2] == pytest.approx(dims.shoulder_height_m)
    assert hand[1] - 2.0 == pytest.approx(dims.upper_arm_length_m + dims.forearm_hand_length_m / 2)   # along +y


def test_path_walks_at_the_given_speed_and_holds_after_the_end():
    path = PathBuilder((0.0, 0.0)).walk_to((3.2, 0.0), speed_mps=1.6).wait(2.0, reach=0.5).build()
    assert path.end_s == pytest.approx(4.0)
    mid = path.state_at(1.0)
    assert (mid.x_m, mid.speed_mps, mid.yaw_rad) == pytest.approx((1.6, 1.6, 0.0))
    assert path.state_at(3.0).reach == pytest.approx(0.5)
    end = path.state_at(100.0)
    assert (end.x_m, end.speed_mps, end.reach) == pytest.approx((3.2, 0.0, 0.0))
    with pytest.raises(ValueError, match='speed'):
        PathBuilder((0.0, 0.0)).walk_to((1.0, 0.0), speed_mps=0.0)
