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
