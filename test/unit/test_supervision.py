import math

import numpy as np
import pytest

from smartcell.core.kinematics import link_capsules
from smartcell.core.supervision import BasePose, CellKpis, robot_geometry

HOME = np.array([0.0, -1.571, 1.571, -1.571, -1.571, 0.0])


def test_geometry_is_moved_by_the_base_pose():
    base = BasePose(1.0, 2.0, 0.8, math.pi / 2)
    geometry = robot_geometry(0.0, HOME, np.zeros(6), base)
    local = link_capsules(HOME)
    # yaw +90 deg: (x, y) -> (-y, x), then translated
    expected = np.stack([-local[..., 1] + 1.0, local[..., 0] + 2.0, local[..., 2] + 0.8], axis=-1)
    assert geometry.capsules_m == pytest.approx(expected)
    assert np.all(geometry.velocities_mps == 0.0)


def test_velocities_rotate_with_the_base():
    qd = np.array([1.0, 0, 0, 0, 0, 0])
    straight = robot_geometry(0.0, HOME, qd, BasePose(0, 0, 0, 0.0)).velocities_mps
    turned = robot_geometry(0.0, HOME, qd, BasePose(0, 0, 0, math.pi)).velocities_mps
    assert turned[..., :2] == pytest.approx(-straight[..., :2])
    assert np.abs(straight).max() > 0.1


def test_bad_base_pose_is_refused():
    with pytest.raises(ValueError, match='x, y, z'):
        BasePose.from_list([0.0, 1.0])


def test_kpis_account_time_by_stamps_only_while_working():
    kpis = CellKpis()
    kpis.account(1.0, math.inf, 0.0, working=True)
    kpis.account(0.3, 1.2, 0.5, working=True)       # 0.5 s reduced
    kpis.account(0.0, 0.4, 1.5, working=True)       # 1.0 s stopped
    kpis.account(0.0, 0.3, 2.0, working=False)      # idle: not counted, separation still is
    assert kpis.reduced_speed_time_s == pytest.approx(0.5)
    assert kpis.safety_stop_time_s == pytest.approx(1.0)
    assert kpis.min_separation_m == pytest.approx(0.3)
    assert kpis.as_dict()['min_separation_m'] == pytest.approx(0.3)
