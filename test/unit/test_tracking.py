import numpy as np
import pytest

from smartcell.core.sensors.people_tracking import (PeopleTracker, Pose2D, ScanGeometry, TrackerConfig, leg_candidates,
                                     pair_legs)

GEOMETRY = ScanGeometry(angle_min_rad=-np.deg2rad(135), angle_increment_rad=np.deg2rad(0.5),
                        range_min_m=0.05, range_max_m=9.0)
BEAMS = 541


def angles():
    return GEOMETRY.angle_min_rad + np.arange(BEAMS) * GEOMETRY.angle_increment_rad


def scan_of_circles(circles, background=np.inf):
    """Exact ranges to circles (x, y, r) in the scanner frame, by ray-circle intersection."""
    ranges = np.full(BEAMS, background, dtype=float)
    for a_index, a in enumerate(angles()):
        d = np.array([np.cos(a), np.sin(a)])
        for cx, cy, r in circles:
            c = np.array([cx, cy])
            b = d @ c
            disc = b * b - (c @ c - r * r)
            if disc >= 0 and b - np.sqrt(disc) > 0:
                ranges[a_index] = min(ranges[a_index], b - np.sqrt(disc))
    return ranges


def person(x, y, stride=0.25, leg_r=0.06):
    return [(x, y - stride / 2, leg_r), (x, y + stride / 2, leg_r)]


def test_two_legs_are_found_near_their_axes():
    legs = leg_candidates(scan_of_circles(person(2.0, 0.5)), GEOMETRY, TrackerConfig())
    assert len(legs) == 2
    expected = np.array([[2.0, 0.375], [2.0, 0.625]])
    for leg in legs:
        assert np.min(np.hypot(*(expected - leg).T)) < 0.03


def test_wall_is_not_a_leg_and_empty_scan_gives_nothing():
    wall = np.full(BEAMS, np.inf)
    wall[200:300] = 2.0 / np.cos(angles()[200:300] - angles()[250])
    assert len(leg_candidates(wall, GEOMETRY, TrackerConfig())) == 0
    assert len(leg_candidates(np.full(BEAMS, np.inf), GEOMETRY, TrackerConfig())) == 0


def test_pairing_makes_one_person_from_two_legs_and_keeps_a_lone_leg():
    people = pair_legs(np.array([[1.0, 0.0], [1.0, 0.3], [4.0, 4.0]]), 0.65)
    assert sorted(n for _, n in people) == [1, 2]
    centres = sorted(tuple(np.round(c, 3)) for c, _ in people)
    assert centres == [(1.0, 0.15), (4.0, 4.0)]


def test_tracker_transforms_to_world_keeps_ids_and_estimates_velocity():
    pose = Pose2D(1.0, -1.0, np.pi / 2)   # scanner x axis points along world +y
    tracker = PeopleTracker(TrackerConfig(velocity_gain=1.0), pose, GEOMETRY)
    dt, speed = 1 / 30, 1.6
    seen = []
    for k in range(10):
        x = 3.0 - speed * dt * k          # walking toward the scanner along its x axis
        seen.append(tracker.update(scan_of_circles(person(x, 0.0)), stamp_s=k * dt))
    assert all(len(t) == 1 for t in seen)
    assert len({t[0].track_id for t in seen}) == 1
    last = seen[-1][0]
    # scanner (x, y) -> world (1 - y, -1 + x)
    assert last.position_m == pytest.approx((1.0, -1.0 + 3.0 - speed * dt * 9 + 0.06), abs=0.05)
    assert last.velocity_mps == pytest.approx((0.0, -speed), abs=0.15)


def test_track_coasts_briefly_then_is_dropped():
    tracker = PeopleTracker(TrackerConfig(track_timeout_s=0.2), Pose2D(0, 0, 0), GEOMETRY)
    tracker.update(scan_of_circles(person(2.0, 0.0)), 0.0)
    empty = np.full(BEAMS, np.inf)
    coasting = tracker.update(empty, 0.1)
    assert len(coasting) == 1 and coasting[0].legs_seen == 0
    assert tracker.update(empty, 0.5) == []


def test_people_outside_the_monitored_area_are_ignored():
    config = TrackerConfig(monitored_area_m=(-1.0, -1.0, 1.0, 1.0))
    tracker = PeopleTracker(config, Pose2D(0, 0, 0), GEOMETRY)
    assert tracker.update(scan_of_circles(person(3.0, 0.0)), 0.0) == []
    assert len(tracker.update(scan_of_circles(person(0.8, 0.0)), 0.1)) == 1


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match='monitored_area_m'):
        TrackerConfig(monitored_area_m=(1.0, 0.0, -1.0, 2.0))
