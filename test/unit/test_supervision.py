import math

import numpy as np
import pytest

from smartcell.core.robot.kinematics import link_capsules
from smartcell.core.safety.pipeline import BasePose, CellKpis, robot_geometry

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


class RecordingMonitor:
    """Stands in for SafetyMonitor: records what the pipeline hands over, answers given scales."""

    def __init__(self, scales):
        self.scales = list(scales)
        self.applied = []

    def update(self, people, robot, now_s):
        from smartcell.core.safety.monitor import Mode, SafetyState, SafetyVerdict
        self.applied.append(robot.applied_scale)
        return SafetyVerdict(now_s, Mode.AUTOMATIC, SafetyState.NORMAL, 'clear', math.inf, math.nan, 1.0, 1.6, 0.0,
                             self.scales.pop(0), '', -1)

    def drain_events(self):
        return []


def test_pipeline_divides_by_a_lower_bound_of_the_applied_scale():
    from smartcell.core.safety.pipeline import APPLIED_SCALE_HISTORY, SafetyPipeline
    commanded = [0.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    monitor = RecordingMonitor(commanded)
    pipeline = SafetyPipeline(monitor, BasePose(0, 0, 0, 0))
    people = (0.0, 'world', np.zeros((0, 3)))
    for _ in range(len(commanded)):
        pipeline.evaluate(people, (0.0, HOME, np.zeros(6)), 0.0)
    # The arm lags and ramps: a low scale commanded once bounds the applied scale for a few ticks.
    assert APPLIED_SCALE_HISTORY == 4
    assert monitor.applied == [0.0, 0.0, 0.0, 0.0, 0.2, 1.0, 1.0]


def test_scanner_field_closer_than_iso13855_requires_is_refused(repo):
    import pytest as _pytest

    from smartcell.core.node_params import SUPERVISOR
    from smartcell.core.params import ConfigError
    from smartcell.core.safety.stopping import StoppingModel
    from smartcell.core.safety.pipeline import check_scanner_field
    stopping = StoppingModel.from_yaml(repo / 'config' / 'stopping.yaml')
    config = SUPERVISOR.defaults()
    required = check_scanner_field(config, stopping)
    # S = 1600 mm/s x (0.08 s + longest stop) + (1200 - 0.4 x 170) mm
    expected = (1600 * (0.08 + float(np.max(stopping.stopping_time_s))) + 1200 - 0.4 * 170) / 1000
    assert required == _pytest.approx(expected)
    with _pytest.raises(ConfigError, match='scanner_protective_field_m=1.0 m is smaller than'):
        check_scanner_field({**config, 'scanner_protective_field_m': 1.0}, stopping)


def test_handover_presence_helpers():
    from smartcell.core.robot.kinematics import forward_kinematics
    from smartcell.core.safety.pipeline import BasePose, person_near, tool_tip_world
    q = np.array([0.0, -1.571, 1.571, -1.571, -1.571, 0.0])
    base = BasePose(1.0, 2.0, 0.75, math.pi / 2)
    tool0 = forward_kinematics(q)
    local_tip = tool0[:3, 3] + 0.15 * tool0[:3, 2]
    expected = np.array([1.0 - local_tip[1], 2.0 + local_tip[0], 0.75 + local_tip[2]])     # yaw 90 deg
    assert tool_tip_world(q, base) == pytest.approx(expected)
    assert person_near(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([1.5, 1.0]), 0.6)
    assert not person_near(np.array([[0.0, 0.0]]), np.array([1.5, 1.0]), 0.6)
    assert not person_near(np.empty((0, 2)), np.array([0.0, 0.0]), 5.0)
    assert not person_near(np.array([[math.nan, 0.0]]), np.array([0.0, 0.0]), 5.0)
