"""ISO 13855 perpendicular approach (light curtain at the fence opening): the standard's own cases."""
import pytest

from smartcell.core.params import ConfigError
from smartcell.core.safety.pipeline import check_light_curtain
from smartcell.core.safety.ssm import light_curtain_distance_mm


@pytest.mark.parametrize('t_s, d_mm, expected_mm', [
    (0.1, 14.0, 200.0),          # K = 2000, C = 0
    (0.1, 30.0, 328.0),          # K = 2000, C = 8 (30 - 14) = 128
    (0.3, 30.0, 608.0),          # 2000 T + C = 728 > 500 -> K = 1600: 480 + 128
    (0.25, 14.0, 500.0),         # 2000 T = 500: not above 500, stays
    (0.26, 14.0, 500.0),         # 520 > 500 -> 1600 T = 416, but never below 500
    (0.02, 14.0, 100.0),         # 40 mm: never below 100
    (0.1, 10.0, 200.0),          # C is never negative
    (0.2, 50.0, 1170.0),         # d > 40 mm: 1600 T + 850
])
def test_minimum_distance(t_s, d_mm, expected_mm):
    assert light_curtain_distance_mm(t_s, d_mm) == pytest.approx(expected_mm)


@pytest.mark.parametrize('t_s, d_mm', [(-0.1, 14.0), (float('nan'), 14.0), (0.1, 0.0), (0.1, 80.0),
                                       (0.1, float('inf'))])
def test_bad_inputs_are_refused(t_s, d_mm):
    with pytest.raises(ConfigError):
        light_curtain_distance_mm(t_s, d_mm)


def test_the_start_up_check_names_the_key():
    config = {'light_curtain_distance_m': 0.3, 'light_curtain_resolution_mm': 30.0,
              'light_curtain_response_time_s': 0.015}
    with pytest.raises(ConfigError, match='light_curtain_distance_m'):
        check_light_curtain(config, stopping_time_s=0.3)
    assert check_light_curtain({**config, 'light_curtain_distance_m': 0.0}, 0.3) == 0.0    # no curtain
    required = check_light_curtain({**config, 'light_curtain_distance_m': 2.0}, 0.3)
    assert required == pytest.approx((1600 * 0.315 + 128) / 1000)
