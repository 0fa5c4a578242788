"""`smartcell stopping-table` measures in the twin, and the shipped table is what it produces."""
import pytest

pytest.importorskip('pybullet')

from smartcell.core.safety.stopping import StoppingModel  # noqa: E402
from smartcell.core.robot.trajectory import ScaleRamp  # noqa: E402
from smartcell.tools.stopping_table import measure  # noqa: E402


def test_faster_means_longer_stops_and_the_ramp_sets_the_time():
    ramp = ScaleRamp(down_per_s=4.0)
    slow_t, slow_angle = measure(0, 0.33, 1.65, ramp)
    fast_t, fast_angle = measure(0, 1.0, 1.65, ramp)
    assert fast_angle > 2.5 * slow_angle                 # distance grows with speed
    assert slow_t == pytest.approx(0.25, abs=0.02)        # a 4/s ramp takes 0.25 s from full scale
    # A linear ramp from v covers v * T / 2; physics lag can only add to it.
    assert slow_angle >= 0.33 * 3.14159 * 0.25 / 2 * 0.95


def test_a_stop_ramps_from_the_scale_the_joint_runs_at():
    # Scale 1 = half the joint limits: at 10 % of the limit the arm runs at scale 0.2, and a 4/s
    # ramp from 0.2 takes 0.05 s; from scale 1 (no cell fraction given) it takes 0.25 s.
    ramp = ScaleRamp(down_per_s=4.0)
    low_t, low_angle = measure(0, 0.1, 1.65, ramp, full_scale_fraction=0.5)
    full_t, full_angle = measure(0, 0.1, 1.65, ramp)
    assert low_t == pytest.approx(0.05, abs=0.01) and full_t == pytest.approx(0.25, abs=0.02)
    assert low_angle < full_angle / 4
    assert low_angle >= 0.1 * 3.14159 * 0.05 / 2 * 0.9        # v T / 2 of a linear ramp, within the PD lag
    # at the cell's full scale nothing changes
    assert measure(0, 0.5, 1.65, ramp, full_scale_fraction=0.5)[0] == pytest.approx(measure(0, 0.5, 1.65, ramp)[0])


def test_shipped_table_is_measured_and_loads(repo):
    model = StoppingModel.from_yaml(repo / 'config' / 'stopping.yaml')
    assert not model.provisional
    assert 'stopping-table' in model.source
