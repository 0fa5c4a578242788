"""Strict JSON: no NaN/Infinity token ever written; KPIs get null plus a reason."""
import json
import math

import numpy as np
import pytest

from smartcell.core.jsonio import strict_json_dumps, to_strict, with_reasons


def strict_loads(text):
    return json.loads(text, parse_constant=lambda token: pytest.fail(f'non-standard JSON token {token}'))


def test_kpis_get_null_and_a_reason():
    kpis = {'units_completed': 0, 'cycle_time_mean_s': math.nan, 'min_person_robot_distance_m': math.inf,
            'robot_utilisation': np.float64(0.25)}
    data = strict_loads(strict_json_dumps(kpis, reasons={'cycle_time_mean_s': 'no unit completed'}, indent=2))
    assert data['cycle_time_mean_s'] is None and data['cycle_time_mean_s_reason'] == 'no unit completed'
    assert data['min_person_robot_distance_m'] is None
    assert data['min_person_robot_distance_m_reason'] == 'unbounded (+inf)'
    assert data['robot_utilisation'] == 0.25 and data['units_completed'] == 0
    assert 'units_completed_reason' not in data


def test_nested_values_numpy_and_tuples_become_plain_json():
    value = {'a': [1.0, -math.inf, (np.float32(2.5), np.int64(3))], 'b': {'c': math.nan}, 'd': np.array([1, 2])}
    assert strict_loads(strict_json_dumps(value)) == {'a': [1.0, None, [2.5, 3]], 'b': {'c': None}, 'd': [1, 2]}
    assert to_strict(True) is True


def test_an_existing_reason_is_kept():
    assert with_reasons({'x': math.nan, 'x_reason': 'sensor off'}) == {'x': None, 'x_reason': 'sensor off'}
