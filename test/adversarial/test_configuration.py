"""Configuration that breaks the safety argument, refused by the running cell."""
from __future__ import annotations

import pytest

from smartcell_adversarial import probe, start_cell

pytestmark = pytest.mark.ros

# (arm override, the parameter the ERROR must name, what is wrong with it)
MISMATCHES = {
    'speed_fraction': ({'max_joint_speed_fraction': 1.0}, 'max_joint_speed_fraction',
                       'arm max_joint_speed_fraction 1.0, supervisor 0.5'),
    # The supervisor bounds the arm's applied scale by a 4/s ramp-down; an arm at 8/s would move
    # slower than that bound says, and the supervisor would underrate its speed at full scale.
    'ramp_down': ({'scale_ramp_down_per_s': 8.0}, 'scale_ramp_down_per_s',
                  'arm scale_ramp_down_per_s 8, supervisor 4'),
}


@pytest.fixture(scope='module', params=sorted(MISMATCHES))
def mismatched(request, tmp_path_factory):
    arm, name, what = MISMATCHES[request.param]
    return start_cell(request, tmp_path_factory, with_scanner=False, arm=arm), name, what


def test_an_arm_configured_against_the_supervisors_assumptions_is_refused(mismatched):
    cell, name, what = mismatched
    with probe(cell, 'configuration', what, near=False):
        cell.wait(lambda: cell.errors(name), 10, 'an ERROR naming the mismatch')
        start = len(cell.truth)
        cell.call('cell/start')
        cell.pace(1.0)
        assert cell.scale() in (None, 0.0)
        cell.assert_still(start, what)
