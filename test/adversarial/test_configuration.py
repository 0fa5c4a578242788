"""Configuration that breaks the safety argument, refused by the running cell."""
from __future__ import annotations

import pytest

from smartcell_adversarial import probe, start_cell

pytestmark = pytest.mark.ros


@pytest.fixture(scope='module')
def mismatched(request, tmp_path_factory):
    return start_cell(request, tmp_path_factory, with_scanner=False, arm={'max_joint_speed_fraction': 1.0})


def test_speed_fraction_mismatch_is_refused(mismatched):
    cell = mismatched
    with probe(cell, 'configuration', 'arm max_joint_speed_fraction 1.0, supervisor 0.5', near=False):
        cell.wait(lambda: cell.errors('max_joint_speed_fraction'), 10, 'an ERROR naming the mismatch')
        start = len(cell.truth)
        cell.call('cell/start')
        cell.pace(1.0)
        assert cell.scale() in (None, 0.0)
        cell.assert_still(start, 'mismatched speed fractions')


@pytest.fixture(scope='module')
def fast_ramp_down(request, tmp_path_factory):
    return start_cell(request, tmp_path_factory, with_scanner=False, arm={'scale_ramp_down_per_s': 8.0})


def test_an_arm_dropping_its_scale_faster_than_the_supervisor_assumes_is_refused(fast_ramp_down):
    # The supervisor bounds the arm's applied scale by a 4/s ramp-down; an arm at 8/s would move
    # slower than that bound says, and the supervisor would underrate its speed at full scale.
    cell = fast_ramp_down
    with probe(cell, 'configuration', 'arm scale_ramp_down_per_s 8, supervisor 4', near=False):
        cell.wait(lambda: cell.errors('scale_ramp_down_per_s'), 10, 'an ERROR naming the mismatch')
        start = len(cell.truth)
        cell.call('cell/start')
        cell.pace(1.0)
        assert cell.scale() in (None, 0.0)
        cell.assert_still(start, 'arm ramping down faster than the supervisor assumes')
