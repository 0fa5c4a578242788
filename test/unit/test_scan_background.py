"""The static background rule: readings at the empty cell's scan are not legs; nothing else is dropped."""
import json
import math

import numpy as np
import pytest

from smartcell.core.sensors.background import (BackgroundError, ScanBackground, background_from_json,
                                               read_background_file, teach_background, write_background_file)
from smartcell.core.sensors.people_tracking import (PeopleTracker, Pose2D, TrackerConfig,
                                                    leg_candidates)
from smartcell.core.sensors.scan_validation import ScanLayout

LAYOUT = ScanLayout(-math.radians(135.0), math.radians(0.5), 541, 0.05, 9.0)
GEOMETRY = LAYOUT.geometry()
ANGLES = LAYOUT.angle_min_rad + np.arange(LAYOUT.beam_count) * LAYOUT.angle_increment_rad
POSE = (0.95, 0.55, 0.785)
TOLERANCE_M = 0.05


def wall_ranges(distance_m: float = 1.5) -> np.ndarray:
    """A straight wall distance_m in front of the scanner (x = distance_m), seen over +-60 deg."""
    ranges = np.full(ANGLES.size, np.inf)
    front = np.abs(ANGLES) < math.radians(60.0)
    ranges[front] = distance_m / np.cos(ANGLES[front])
    return ranges


def with_circles(ranges: np.ndarray, circles) -> np.ndarray:
    """Ranges with circles (x, y, r in the scanner frame) in front of whatever was there."""
    out = ranges.copy()
    d = np.stack((np.cos(ANGLES), np.sin(ANGLES)), axis=1)
    for cx, cy, r in circles:
        b = d @ np.array([cx, cy])
        disc = b * b - (cx * cx + cy * cy - r * r)
        hit = (disc >= 0) & (b - np.sqrt(np.maximum(disc, 0)) > 0)
        out[hit] = np.minimum(out[hit], (b - np.sqrt(np.maximum(disc, 0)))[hit])
    return out


def background_of(ranges: np.ndarray) -> ScanBackground:
    return ScanBackground(LAYOUT, ranges, 'scanner_link', POSE)


def fragment_of_wall() -> np.ndarray:
    """What issue 13's ghost was: a leg-wide piece of wall between two shadows (here: beams cut off)."""
    wall = wall_ranges()
    piece = wall.copy()
    centre = int(np.argmin(np.abs(ANGLES)))
    keep = np.zeros(ANGLES.size, dtype=bool)
    keep[centre:centre + 20] = True                      # 20 beams of 0.5 deg at 1.5 m: ~0.26 m of wall
    piece[~keep] = np.inf
    return piece


def test_a_leg_wide_piece_of_wall_is_a_leg_without_background_and_nothing_with_it():
    piece = fragment_of_wall()
    assert len(leg_candidates(piece, GEOMETRY, TrackerConfig())) == 1          # the ghost
    background = background_of(wall_ranges())
    noisy = piece + np.random.default_rng(1).normal(0.0, 0.01, piece.size)    # 1 cm noise, 5 sigma tolerance
    assert len(leg_candidates(background.foreground(noisy, TOLERANCE_M), GEOMETRY, TrackerConfig())) == 0


def test_a_person_standing_against_the_wall_is_kept_and_found():
    wall = wall_ranges(1.5)
    background = background_of(wall)
    # Two 4 cm-radius legs (thin: 8 cm) touching the wall: their fronts are 8 cm before it.
    scene = with_circles(wall, [(1.5 - 0.04, -0.12, 0.04), (1.5 - 0.04, 0.12, 0.04)])
    # Without the background those legs join the wall into one cluster too wide for a leg: unseen.
    assert len(leg_candidates(scene, GEOMETRY, TrackerConfig())) == 0
    kept = background.foreground(scene, TOLERANCE_M)
    legs_beams = np.flatnonzero(scene < wall - 1e-9)
    assert np.array_equal(kept[legs_beams], scene[legs_beams])     # every leg return survives
    tracker = PeopleTracker(TrackerConfig(), Pose2D(0.0, 0.0, 0.0), GEOMETRY, background)
    tracks = tracker.update(scene, 0.0)
    assert len(tracks) == 1
    assert abs(tracks[0].position_m[0] - 1.46) < 0.08 and abs(tracks[0].position_m[1]) < 0.08


def test_readings_shorter_or_longer_than_the_background_are_never_dropped():
    wall = wall_ranges(1.5)
    background = background_of(wall)
    front = np.isfinite(wall)
    shorter = np.where(front, wall - TOLERANCE_M - 0.005, np.inf)
    longer = np.where(front, wall + TOLERANCE_M + 0.005, np.inf)    # the wall is gone: what is behind is unknown
    assert np.array_equal(background.foreground(shorter, TOLERANCE_M), shorter)
    assert np.array_equal(background.foreground(longer, TOLERANCE_M), longer)
    # A return on a beam that saw nothing when taught is always kept.
    behind = np.where(~front, 3.0, np.inf)
    assert np.array_equal(background.foreground(behind, TOLERANCE_M), behind)
    at = background.foreground(wall + 0.03, TOLERANCE_M)
    assert np.all(np.isinf(at))


def test_the_tolerance_cannot_be_set_to_a_legs_thickness():
    with pytest.raises(ValueError, match='background_tolerance_m'):
        TrackerConfig(background_tolerance_m=0.08)
    with pytest.raises(ValueError, match='background_tolerance_m'):
        TrackerConfig(background_tolerance_m=0.0)


def test_the_file_round_trips_as_strict_json(tmp_path):
    background = background_of(wall_ranges())
    path = tmp_path / 'bg.json'
    write_background_file(path, background)
    text = path.read_text()
    assert 'Infinity' not in text and 'NaN' not in text
    loaded = read_background_file(path)
    assert loaded.layout == LAYOUT and loaded.frame_id == 'scanner_link'
    finite = np.isfinite(background.ranges_m)
    assert np.array_equal(np.isfinite(loaded.ranges_m), finite)
    assert np.allclose(loaded.ranges_m[finite], background.ranges_m[finite], atol=1e-4)
    loaded.check_fits('scanner_link', POSE, LAYOUT)
    loaded.check_fits('scanner_link', POSE, None)


@pytest.mark.parametrize('change, message', [
    (lambda d: d.update(beam_count=540), 'ranges for a layout of 540'),
    (lambda d: d.update(ranges_m=d['ranges_m'][:-1]), '540 ranges'),
    (lambda d: d.update(angle_increment_rad=-0.01), 'not a beam layout'),
    (lambda d: d.update(angle_min_rad=None), 'angle_min_rad'),
    (lambda d: d.update(version=2), 'version'),
    (lambda d: d.update(format='other'), 'format'),
    (lambda d: d.update(scanner_pose_xy_yaw=[1.0, 2.0]), 'scanner_pose_xy_yaw'),
    (lambda d: d.update(frame_id=''), 'frame_id'),
    (lambda d: d['ranges_m'].__setitem__(300, 'far'), 'ranges_m'),
    (lambda d: d['ranges_m'].__setitem__(300, 12.0), 'beam 300'),
    (lambda d: d['ranges_m'].__setitem__(300, 0.01), 'beam 300'),
])
def test_a_wrong_file_is_refused_naming_what_is_wrong(tmp_path, change, message):
    data = background_of(wall_ranges()).to_json()
    change(data)
    path = tmp_path / 'bg.json'
    path.write_text(json.dumps(data))
    with pytest.raises(BackgroundError, match=message) as error:
        read_background_file(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize('text', ['', '{', '[1, 2]', '{"ranges_m": [Infinity]}', 'null'])
def test_a_corrupt_file_is_refused(tmp_path, text):
    path = tmp_path / 'bg.json'
    path.write_text(text)
    with pytest.raises(BackgroundError, match='background file'):
        read_background_file(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(BackgroundError, match='nope.json'):
        read_background_file(tmp_path / 'nope.json')


@pytest.mark.parametrize('frame, pose, layout, message', [
    ('laser', POSE, None, "frame 'scanner_link'"),
    ('scanner_link', (0.96, 0.55, 0.785), None, 'teach the background again'),
    ('scanner_link', (0.95, 0.55, 0.80), None, 'teach the background again'),
    ('scanner_link', POSE, ScanLayout(-math.radians(135.0), math.radians(0.5), 540, 0.05, 9.0), 'beam layout'),
    ('scanner_link', POSE, ScanLayout(-math.radians(120.0), math.radians(0.5), 541, 0.05, 9.0), 'beam layout'),
    ('scanner_link', POSE, ScanLayout(-math.radians(135.0), math.radians(0.25), 541, 0.05, 9.0), 'beam layout'),
])
def test_a_background_of_another_scanner_is_refused(frame, pose, layout, message):
    with pytest.raises(BackgroundError, match=message):
        background_of(wall_ranges()).check_fits(frame, pose, layout)


def test_a_scan_of_another_beam_count_is_never_masked():
    with pytest.raises(ValueError, match='540 beams'):
        background_of(wall_ranges()).foreground(np.ones(540), TOLERANCE_M)


def test_teaching_takes_the_median_and_refuses_somebody_walking_through():
    rng = np.random.default_rng(2)
    wall = wall_ranges()
    scans = [wall + rng.normal(0.0, 0.01, wall.size) for _ in range(30)]
    taught = teach_background(scans, LAYOUT, 'scanner_link', POSE, TOLERANCE_M)
    finite = np.isfinite(wall)
    assert np.array_equal(np.isfinite(taught.ranges_m), finite)
    assert np.max(np.abs(taught.ranges_m[finite] - wall[finite])) < 0.01
    assert taught.scans == 30
    person = with_circles(wall, [(1.0, 0.0, 0.06)])
    with pytest.raises(BackgroundError, match='not steady'):
        teach_background(scans[:20] + [person] * 10, LAYOUT, 'scanner_link', POSE, TOLERANCE_M)


def test_from_json_refuses_a_non_object():
    with pytest.raises(BackgroundError, match='JSON object'):
        background_from_json([1, 2, 3])
