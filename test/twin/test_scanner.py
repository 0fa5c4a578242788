"""The simulated safety laser scanner: geometry, legs at the right range and bearing, REP 117 inf."""
import math

import numpy as np
import pytest

from smartcell.twin.human import BodyDimensions, PathBuilder, PersonState
from smartcell.twin.scanner import SafetyScanner, ScannerConfig
from smartcell.twin.scenarios import scenario_paths
from smartcell.twin.world import CellWorld

pytestmark = pytest.mark.twin


def _world_with_person(client, urdf_path, state: PersonState | None) -> CellWorld:
    world = CellWorld(client, urdf_path=urdf_path, people=[PathBuilder((50.0, 50.0)).build()])
    if state is not None:
        world.set_person_state(0, state)
    return world


def _scanner(world: CellWorld, config: ScannerConfig = ScannerConfig(), seed: int = 0,
             use_capsules: bool = True) -> SafetyScanner:
    return SafetyScanner(world.client_id, world.layout.scanner, config, rng=np.random.default_rng(seed),
                         moving_shapes=world.moving_shapes(),
                         people_capsules=world.people_capsules if use_capsules else None,
                         boxed_shapes=world.robot_shapes() if use_capsules else None)


def test_scan_layout_is_a_laserscan_of_541_beams_over_270_degrees(client, urdf_path):
    world = _world_with_person(client, urdf_path, None)
    frame = _scanner(world).scan(stamp_s=1.25)
    assert frame.ranges.dtype == np.float32 and frame.ranges.shape == (541,)
    assert math.degrees(frame.angle_min_rad) == pytest.approx(-135.0)
    assert math.degrees(frame.angle_max_rad) == pytest.approx(135.0)
    assert math.degrees(frame.angle_increment_rad) == pytest.approx(0.5)
    assert (frame.range_min_m, frame.range_max_m, frame.stamp_s) == (0.05, 9.0, 1.25)
    assert frame.frame_id == 'scanner_link'
    assert frame.scan_time_s == pytest.approx(1 / 30)
    finite = frame.ranges[np.isfinite(frame.ranges)]
    assert np.all((finite >= 0.05) & (finite <= 9.0))
    with pytest.raises(ValueError):
        frame.ranges[0] = 1.0                      # frames are immutable


def test_beams_through_the_fence_opening_return_inf(client, urdf_path):
    world = _world_with_person(client, urdf_path, None)
    scanner = _scanner(world)
    frame = scanner.scan(0.0)
    mount = world.layout.scanner
    fence = world.layout.fence
    # Bearing from the scanner to the middle of the opening: nothing out there within 9 m.
    x, y, _ = mount.position_m
    bearing = math.atan2(fence.opening_centre_y_m - y, fence.xmax_m - x) - mount.yaw_rad
    beam = int(round((bearing - frame.angle_min_rad) / frame.angle_increment_rad))
    assert np.all(np.isinf(frame.ranges[beam - 5:beam + 6]))
    # And a beam at the fence panel below the opening hits the panel (a finite range).
    bearing_panel = math.atan2(fence.ymin_m + 0.3 - y, fence.xmax_m - x) - mount.yaw_rad
    beam_panel = int(round((bearing_panel - frame.angle_min_rad) / frame.angle_increment_rad))
    expected = math.hypot(fence.xmax_m - fence.thickness_m / 2 - x, fence.ymin_m + 0.3 - y)
    assert frame.ranges[beam_panel] == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize('xy', [(2.0, 0.0), (1.6, 1.3), (1.3, -0.2), (-0.2, 1.4)])
def test_scanner_sees_both_legs_at_their_range_and_bearing(client, urdf_path, xy):
    dims = BodyDimensions()
    # Facing away from the scanner, so that the two legs are side by side, not one behind the other.
    mount_xy = (0.95, 0.55)
    to_person = math.atan2(xy[1] - mount_xy[1], xy[0] - mount_xy[0])
    state = PersonState(*xy, yaw_rad=to_person)
    world = _world_with_person(client, urdf_path, state)
    config = ScannerConfig(noise_std_m=0.01)
    frame = _scanner(world, config).scan(0.0)
    lateral = np.array([-math.sin(state.yaw_rad), math.cos(state.yaw_rad)]) * dims.hip_half_width_m
    for leg in (np.array(xy) + lateral, np.array(xy) - lateral):
        offset = leg - mount_xy
        bearing = math.atan2(offset[1], offset[0]) - world.layout.scanner.yaw_rad
        beam = int(round((bearing - frame.angle_min_rad) / frame.angle_increment_rad))
        # The beam through the leg's axis meets its surface one radius short of the axis.
        expected = float(np.hypot(*offset)) - dims.lower_leg_radius_m
        assert frame.ranges[beam] == pytest.approx(expected, abs=4 * config.noise_std_m + 0.005)


def test_range_noise_has_the_configured_sigma(client, urdf_path):
    world = _world_with_person(client, urdf_path, PersonState(2.0, 0.0, 0.0))
    exact = _scanner(world, ScannerConfig(noise_std_m=0.0)).scan(0.0).ranges.astype(float)
    noisy_scanner = _scanner(world, ScannerConfig(noise_std_m=0.02), seed=3)
    hit = np.isfinite(exact)
    errors = np.concatenate([noisy_scanner.scan(0.0).ranges[hit].astype(float) - exact[hit] for _ in range(20)])
    assert np.all(np.isfinite(errors))                  # noise never turns a hit into "no return"
    assert np.std(errors) == pytest.approx(0.02, rel=0.1)
    assert abs(np.mean(errors)) < 0.002


def test_noise_comes_only_from_the_given_generator(client, urdf_path):
    world = _world_with_person(client, urdf_path, PersonState(2.0, 0.0, 0.0))
    first = _scanner(world, seed=7).scan(0.0).ranges
    second = _scanner(world, seed=7).scan(0.0).ranges
    other = _scanner(world, seed=8).scan(0.0).ranges
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize('scenario, duration_s, use_capsules', [('shift_two_people', 120.0, True),
                                                                ('intrusion', 40.0, True), ('intrusion', 40.0, False)])
def test_casting_only_beams_near_moving_shapes_equals_casting_all(client, urdf_path, scenario, duration_s,
                                                                  use_capsules):
    world = CellWorld(client, urdf_path=urdf_path, people=scenario_paths(scenario, 5, duration_s))
    scanner = _scanner(world, ScannerConfig(noise_std_m=0.0), use_capsules=use_capsules)
    compared_with_people = 0
    for tick in range(int(duration_s * 30)):
        world.step(1 / 30)
        if tick % 15:
            continue
        sectored, full = scanner.scan(0.0), scanner.scan(0.0, cast_all_beams=True)
        np.testing.assert_allclose(sectored.ranges, full.ranges, atol=1e-5)
        compared_with_people += scanner.last_beams_cast > 0
    assert compared_with_people > 10


@pytest.mark.parametrize('kwargs, name', [({'rate_hz': 50.0}, 'rate_hz'), ({'noise_std_m': -0.1}, 'noise_std_m'),
                                          ({'range_min_m': 10.0}, 'range_min_m')])
def test_bad_scanner_config_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ScannerConfig(**kwargs)


@pytest.mark.parametrize('scenario', ['empty', 'intrusion'])
def test_core_people_tracker_finds_the_simulated_person_and_nothing_else(client, urdf_path, scenario):
    """End to end with smartcell.core.sensors.people_tracking: the static cell gives no tracks; a person is tracked."""
    from smartcell.core.sensors.people_tracking import PeopleTracker, Pose2D, ScanGeometry, TrackerConfig
    world = CellWorld(client, urdf_path=urdf_path, people=scenario_paths(scenario, 2, 30.0))
    scanner = _scanner(world)
    mount = world.layout.scanner
    first = scanner.scan(0.0)
    tracker = PeopleTracker(TrackerConfig(monitored_area_m=(-6.0, -6.0, 6.0, 6.0)),
                            Pose2D(mount.position_m[0], mount.position_m[1], mount.yaw_rad),
                            ScanGeometry(first.angle_min_rad, first.angle_increment_rad, first.range_min_m,
                                         first.range_max_m))
    errors_m, ticks_with_tracks = [], 0
    for _ in range(30 * 30):
        world.step(1 / 30)
        tracks = tracker.update(np.asarray(scanner.scan(world.sim_time).ranges, dtype=float), world.sim_time)
        ticks_with_tracks += bool(tracks)
        if tracks and world.paths:
            truth = world.paths[0].state_at(world.sim_time)
            errors_m.append(min(math.hypot(t.position_m[0] - truth.x_m, t.position_m[1] - truth.y_m) for t in tracks))
    if scenario == 'empty':
        assert ticks_with_tracks == 0
    else:
        assert ticks_with_tracks > 100
        assert np.median(errors_m) < 0.1


def test_without_the_moving_shapes_every_beam_is_cast_and_people_are_seen(client, urdf_path):
    """A scanner not told what moves must not bake a person into a static background."""
    world = _world_with_person(client, urdf_path, PersonState(2.0, 0.0, 0.0))
    scanner = SafetyScanner(client, world.layout.scanner, ScannerConfig(noise_std_m=0.0), rng=np.random.default_rng(0))
    with_person = scanner.scan(0.0).ranges
    assert scanner.last_beams_cast == with_person.size
    world.set_person_state(0, PersonState(1.6, 1.3, 0.0))        # the person moves elsewhere
    moved = scanner.scan(0.0).ranges
    informed = _scanner(world, ScannerConfig(noise_std_m=0.0)).scan(0.0).ranges
    np.testing.assert_allclose(moved, informed, atol=1e-5)
    assert not np.allclose(np.nan_to_num(moved, posinf=99), np.nan_to_num(with_person, posinf=99))


@pytest.mark.parametrize('scenario', ['intrusion', 'shift_two_people'])
def test_every_simulated_scan_passes_the_scanner_nodes_validation(client, urdf_path, scenario):
    """The twin is a well-behaved driver: no scan of a whole run is rejected (no false stops in sim),
    with noise, people close to the scanner and the layout fixed by the first scan."""
    from smartcell.core.sensors.scan_validation import RawScan, ScanGate, ScanLimits, ValidScan
    world = CellWorld(client, urdf_path=urdf_path, people=scenario_paths(scenario, 3, 40.0))
    scanner = _scanner(world)
    gate = ScanGate(ScanLimits(frame_id=world.layout.scanner.frame_id))
    returns = []
    for tick in range(40 * 30):
        world.step(1 / 30)
        frame = scanner.scan(world.sim_time)
        ns = int(round(frame.stamp_s * 1e9))
        result = gate.check(RawScan(ns // 10**9, ns % 10**9, frame.frame_id, frame.angle_min_rad, frame.angle_max_rad,
                                    frame.angle_increment_rad, frame.time_increment_s, frame.scan_time_s,
                                    frame.range_min_m, frame.range_max_m, frame.ranges), now_s=frame.stamp_s)
        assert isinstance(result, ValidScan), f'tick {tick}: {result}'
        returns.append(result.returns)
    assert gate.rejected == {} and gate.layout is not None and gate.layout.beam_count == 541
    assert min(returns) > 0                     # the fence and furniture are always in view
