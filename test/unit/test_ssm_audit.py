"""The campaign's ground-truth audit and its static-zone baseline, against hand-computed cases."""
import math

import numpy as np
import pytest

from smartcell.core.safety.ssm import SeparationInputs, StoppingSteps
from smartcell.core.safety.ground_truth import (PersonTruth, SsmAudit, StaticZonePolicy, closest_points_on_segments,
                                      robot_speed_toward)

INPUTS = SeparationInputs(reaction_time_s=0.1, human_speed_floor_mps=1.6)
# Below scale 0.5: T_s 0.2 s, S_s 0.1 m; above: T_s 0.3 s, S_s 0.3 m.
STEPS = StoppingSteps(np.array([0.5, 1.0]), np.array([0.2, 0.3]), np.array([0.1, 0.3]))
DT = 1 / 30


def audit() -> SsmAudit:
    return SsmAudit(INPUTS, STEPS)


def test_allowed_speed_by_hand():
    # scale 1: S_p(v) = 1.6 (0.1 + 0.3) + 0.1 v + 0.3 = 0.94 + 0.1 v; d = 1.14 -> v = 2.0 m/s
    person = PersonTruth(1.14, 1.0, 0.0)
    assert audit().allowed_speed(person, 1.0) == pytest.approx(2.0)
    # the person's own speed counts above the floor: 2.0 m/s -> S_p(0) = 2.0 * 0.4 + 0.3 = 1.1 -> 0.4 m/s
    assert audit().allowed_speed(PersonTruth(1.14, 2.0, 0.0), 1.0) == pytest.approx(0.4)
    # at a low scale the shorter stop leaves more room: 1.6 * 0.3 + 0.1 = 0.58 -> (1.14 - 0.58) / 0.1
    assert audit().allowed_speed(person, 0.3) == pytest.approx(5.6)
    assert audit().allowed_speed(PersonTruth(0.5, 1.0, 0.0), 1.0) == 0.0


def test_moving_faster_than_allowed_is_a_violation_and_standing_still_is_not():
    checker = audit()
    assert checker.sample(0.0, [PersonTruth(1.14, 1.0, 1.9)], 1.9, 1.0, 1.0) == 0
    assert checker.sample(DT, [PersonTruth(1.14, 1.0, 2.1)], 2.1, 1.0, 1.0) == 1
    assert checker.kept[0].kind == 'moving' and checker.kept[0].allowed_speed_mps == pytest.approx(2.0)
    assert checker.sample(2 * DT, [PersonTruth(0.2, 1.0, 0.0)], 0.0, 0.0, 1.0) == 0      # close but still
    assert checker.sample(3 * DT, [PersonTruth(0.2, 1.0, -0.5)], 0.5, 1.0, 1.0) == 0     # moving away
    assert checker.violations == 1
    assert checker.worst_margin_m == pytest.approx(1.14 - (0.94 + 0.21))


def test_a_stop_within_its_budget_passes_and_one_beyond_fails():
    # Stop commanded at 1 m/s, scale 1: budget v T_r + S_s = 0.1 + 0.3 = 0.4 m, still after 0.4 s.
    good, slow = audit(), audit()
    speeds_good = [1.0, 1.0, 1.0, 0.9, 0.6, 0.3, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    speeds_slow = [1.0] * 16                                       # never slows down
    for checker, speeds in ((good, speeds_good), (slow, speeds_slow)):
        for k, speed in enumerate(speeds):
            checker.sample(k * DT, [PersonTruth(3.0, 0.0, 0.0)], speed, 1.0, 0.0)
    assert good.violations == 0
    assert slow.violations > 0 and all(v.kind == 'stopping' for v in slow.kept)
    assert 'travelled' in slow.kept[0].detail
    # a stop that keeps creeping after T_r + T_s also fails, however short the distance
    creep = audit()
    for k in range(20):
        creep.sample(k * DT, [], 0.0 if k < 3 else 0.05, 1.0, 0.0)
    assert creep.violations > 0 and 'still at' in creep.kept[-1].detail
    # the next stop starts a new budget
    assert audit().sample(0.0, [], 1.0, 1.0, 0.0) == 0


def test_robot_speed_toward_a_person_is_the_approach_component():
    person = np.array([[[2.0, 0.0, 0.0], [2.0, 0.0, 1.8]]])          # standing at x = 2
    points = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    toward = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert robot_speed_toward(person, points, toward) == pytest.approx(1.0)
    away = np.array([[-1.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    assert robot_speed_toward(person, points, away) < 0.0
    sideways = np.array([[0.0, 0.7, 0.0], [0.0, 0.0, 0.0]])
    assert robot_speed_toward(person, points, sideways) == pytest.approx(0.0, abs=1e-12)
    closest = closest_points_on_segments(np.array([[5.0, 0.0, 3.0]]), person)
    assert closest[0, 0] == pytest.approx([2.0, 0.0, 1.8])


def test_static_zone_stops_inside_holds_then_releases_and_stops_on_silence():
    zone = StaticZonePolicy((0.0, 0.0), 3.0, hold_s=0.5, timeout_s=0.07)
    assert zone.update(np.array([[5.0, 0.0]]), 0.0) == 0.0            # starts stopped: hold first
    assert zone.update(np.array([[5.0, 0.0]]), 0.5) == 1.0
    assert zone.update(np.array([[2.0, 1.0]]), 0.6) == 0.0            # inside
    assert zone.update(np.empty((0, 2)), 0.7) == 0.0                  # left, hold running
    assert zone.update(np.empty((0, 2)), 1.2) == 1.0
    assert zone.update(np.array([[math.nan, 0.0]]), 1.3) == 0.0       # doubt is a person inside
    assert zone.on_silence(1.33) is None
    assert zone.update(np.empty((0, 2)), 1.9) == 0.0                  # clear again: a new hold
    assert zone.update(np.empty((0, 2)), 2.4) == 1.0
    assert zone.on_silence(2.45) is None
    assert zone.on_silence(2.5) == 0.0
    with pytest.raises(ValueError, match='radius'):
        StaticZonePolicy((0.0, 0.0), 0.0, 0.5, 0.07)

