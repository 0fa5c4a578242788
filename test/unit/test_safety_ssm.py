"""SSM (ISO/TS 15066 5.5.4), the stopping model and ISO 13855 zone sizing against hand arithmetic."""
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcell.core.params import ConfigError
from smartcell.core.safety.ssm import (LookAhead, SeparationInputs, StoppingPoint, StoppingSteps,
                                       check_protective_field, full_scale_speed, human_speed_bound,
                                       intrusion_distance_iso13855_mm,
                                       look_ahead_scale, max_robot_speed, minimum_distance_iso13855_mm,
                                       protective_separation, speed_scale_for)
from smartcell.core.safety.stopping import StoppingModel

# T_r 0.1 s, T_s 0.3 s, S_s 0.2 m, C 0.1 m, Z_d 0.05 m, Z_r 0.02 m, floor 1.6 m/s
INPUTS = SeparationInputs(reaction_time_s=0.1, stopping_time_s=0.3, stopping_distance_m=0.2,
                          intrusion_distance_m=0.1, sensor_uncertainty_m=0.05, robot_position_uncertainty_m=0.02)

CONFIG = Path(__file__).resolve().parents[2] / 'config'


@pytest.mark.parametrize('v_h,v_r,expected', [
    # S_h = 1.6 * (0.1 + 0.3) = 0.64 (1.0 m/s floored to 1.6); S_r = 0.5 * 0.1 = 0.05;
    # S_s = 0.2; C + Z_d + Z_r = 0.17  ->  0.64 + 0.05 + 0.2 + 0.17 = 1.06
    (1.0, 0.5, 1.06),
    # v_h above the floor: S_h = 2.0 * 0.4 = 0.8  ->  0.8 + 0.05 + 0.2 + 0.17 = 1.22
    (2.0, 0.5, 1.22),
    # robot moving away: S_r = 0  ->  0.64 + 0 + 0.2 + 0.17 = 1.01
    (1.6, -0.5, 1.01),
    # person walking away (negative speed toward the robot) still counts at the floor: 1.01
    (-1.0, 0.0, 1.01),
    # unknown (NaN) person speed -> floor: 1.01
    (math.nan, 0.0, 1.01),
])
def test_protective_separation_hand_computed(v_h, v_r, expected):
    assert protective_separation(INPUTS, v_h, v_r) == pytest.approx(expected)


def test_stopping_point_overrides_the_fixed_terms():
    # S_h = 1.6 * (0.1 + 0.5) = 0.96; S_r = 1.0 * 0.1 = 0.1; S_s = 0.4; 0.17 -> 1.63
    assert protective_separation(INPUTS, 0.0, 1.0, StoppingPoint(0.5, 0.4)) == pytest.approx(1.63)


def test_unknown_robot_speed_makes_the_separation_infinite():
    assert protective_separation(INPUTS, 1.6, math.nan) == math.inf


@pytest.mark.parametrize('separation,expected', [
    (1.06, 0.5),      # (1.06 - 1.01) / 0.1 = 0.5 m/s
    (1.21, 2.0),      # (1.21 - 1.01) / 0.1 = 2.0 m/s
    (1.01, 0.0),      # exactly the speed-independent part: must stand still
    (0.90, 0.0),      # closer than that: never negative
])
def test_max_robot_speed_closed_form(separation, expected):
    assert max_robot_speed(separation, INPUTS, 1.6) == pytest.approx(expected, abs=1e-12)


def test_max_robot_speed_with_speed_dependent_stopping_bisects_conservatively():
    # S_s = 0.3 * v, T_s = 0.2 * v: S_p(v) = 1.6 (0.1 + 0.2 v) + 0.1 v + 0.3 v + 0.17 = 0.33 + 0.72 v
    # separation 1.05 -> v = (1.05 - 0.33) / 0.72 = 1.0 m/s
    def stopping(v):
        return StoppingPoint(0.2 * v, 0.3 * v)
    speed = max_robot_speed(1.05, INPUTS, 1.6, stopping)
    assert speed == pytest.approx(1.0, abs=1e-9)
    assert protective_separation(INPUTS, 1.6, speed, stopping(speed)) <= 1.05


@pytest.mark.parametrize('bad', [{'reaction_time_s': 0.0}, {'reaction_time_s': 0.1, 'intrusion_distance_m': -0.1},
                                 {'reaction_time_s': math.nan}, {'reaction_time_s': 0.1, 'stopping_time_s': math.inf}])
def test_separation_inputs_refuse_bad_values_naming_them(bad):
    with pytest.raises(ConfigError) as err:
        SeparationInputs(**bad)
    assert next(k for k in bad if k != 'reaction_time_s' or len(bad) == 1) in str(err.value)


times = st.floats(0.0, 2.0)
speeds = st.floats(-5.0, 5.0)


@settings(max_examples=200, deadline=None)
@given(v_h=speeds, v_r=speeds, dv=st.floats(0.0, 3.0), t_r=st.floats(0.01, 1.0), dt=st.floats(0.0, 1.0),
       t_s=times, s_s=st.floats(0.0, 2.0))
def test_protective_separation_is_monotone_and_bounded_below(v_h, v_r, dv, t_r, dt, t_s, s_s):
    base = SeparationInputs(reaction_time_s=t_r, intrusion_distance_m=0.3, sensor_uncertainty_m=0.1,
                            robot_position_uncertainty_m=0.05)
    stop = StoppingPoint(t_s, s_s)
    s_p = protective_separation(base, v_h, v_r, stop)
    assert s_p >= 0.3 + 0.1 + 0.05
    assert protective_separation(base, v_h, v_r + dv, stop) >= s_p - 1e-12
    slower = SeparationInputs(reaction_time_s=t_r + dt, intrusion_distance_m=0.3, sensor_uncertainty_m=0.1,
                              robot_position_uncertainty_m=0.05)
    assert protective_separation(slower, v_h, v_r, stop) >= s_p - 1e-12
    assert protective_separation(base, v_h, v_r, StoppingPoint(t_s + dt, s_s)) >= s_p - 1e-12


@settings(max_examples=200, deadline=None)
@given(v_r=st.floats(0.0, 5.0), v_h=st.floats(0.0, 3.0))
def test_max_robot_speed_inverts_protective_separation(v_r, v_h):
    separation = protective_separation(INPUTS, v_h, v_r)
    assert max_robot_speed(separation, INPUTS, v_h) == pytest.approx(v_r, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(separation=st.floats(0.0, 4.0), v_full=st.floats(-1.0, 3.0), v_h=st.floats(0.0, 3.0))
def test_speed_scale_is_the_largest_scale_that_fits(separation, v_full, v_h):
    model = StoppingModel.from_yaml(CONFIG / 'stopping.yaml')
    scale = float(speed_scale_for(separation, INPUTS, v_h, v_full, model.steps(1.0)))
    assert 0.0 <= scale <= 1.0

    def required(s):
        point = model.at(s, 1.0)
        return protective_separation(INPUTS, v_h, s * v_full, point)
    if scale > 0.0:
        assert required(scale) <= separation + 1e-9
    if scale < 1.0:
        assert required(min(1.0, scale + 1e-6)) > separation


def test_speed_scale_without_model_equals_the_closed_form():
    # max_robot_speed(1.06) = 0.5 m/s; at 2 m/s full-scale speed the scale is 0.25
    assert float(speed_scale_for(1.06, INPUTS, 1.6, 2.0)) == pytest.approx(0.25, abs=1e-9)
    # robot moving away from the person: only the fixed part counts: 1.01 <= 1.06 -> full speed
    assert float(speed_scale_for(1.06, INPUTS, 1.6, -2.0)) == 1.0
    # unknown full-scale speed (NaN) is treated as infinite: only scale 0 fits
    assert float(speed_scale_for(1.06, INPUTS, 1.6, math.nan)) == 0.0


@pytest.mark.parametrize('measured,scale,expected', [
    (0.5, 0.5, 1.0),       # 0.5 m/s at half speed -> 1.0 m/s at full speed
    (-0.2, 0.25, -0.8),    # moving away stays moving away
    (0.0, 0.01, 1.5),      # below min_scale 0.05: the nominal 1.5 m/s toward the person
    (0.0, math.nan, 1.5),
])
def test_full_scale_speed_guards_small_scales(measured, scale, expected):
    assert float(full_scale_speed(measured, scale, 1.5, 0.05)) == pytest.approx(expected)


# ---------------------------------------------------------------------------------------------
# Stopping model
# ---------------------------------------------------------------------------------------------

# The first, provisional UR5e table (per joint, Annex B layout); config/stopping.yaml itself is
# regenerated from twin measurements, so its numbers are not pinned here.
PROVISIONAL = {
    'provisional': True, 'rated_payload_kg': 5.0,
    'speed_fractions': [0.33, 0.66, 1.0], 'payload_fractions': [0.33, 0.66, 1.0],
    'joints': {
        'shoulder_pan': {'lever_arm_m': 1.0,
                         'stopping_time_s': [[0.12, 0.13, 0.14], [0.20, 0.22, 0.24], [0.28, 0.31, 0.34]],
                         'stopping_distance_rad': [[0.030, 0.035, 0.040], [0.100, 0.110, 0.120],
                                                   [0.210, 0.240, 0.270]]},
        'shoulder_lift': {'lever_arm_m': 1.0,
                          'stopping_time_s': [[0.11, 0.12, 0.14], [0.19, 0.21, 0.24], [0.27, 0.30, 0.34]],
                          'stopping_distance_rad': [[0.025, 0.030, 0.035], [0.090, 0.100, 0.120],
                                                    [0.190, 0.220, 0.260]]},
        'elbow': {'lever_arm_m': 0.65,
                  'stopping_time_s': [[0.09, 0.10, 0.11], [0.15, 0.16, 0.18], [0.22, 0.24, 0.26]],
                  'stopping_distance_rad': [[0.020, 0.022, 0.025], [0.070, 0.080, 0.090], [0.150, 0.170, 0.190]]},
    },
}


def test_joint_tables_combine_conservatively():
    model = StoppingModel.from_mapping(PROVISIONAL)
    assert model.provisional
    # 100 % / 100 %: T_s = max(0.34, 0.34, 0.26) = 0.34 s; S_s = 0.27*1.0 + 0.26*1.0 + 0.19*0.65 = 0.6535 m
    assert model.stopping_time(1.0, 1.0) == pytest.approx(0.34)
    assert model.stopping_distance(1.0, 1.0) == pytest.approx(0.6535)
    # 0.5 / 0.5 take the 66 % / 66 % point: T_s = max(0.22, 0.21, 0.16); S_s = 0.11 + 0.10 + 0.08*0.65 = 0.262
    assert model.stopping_time(0.5, 0.5) == pytest.approx(0.22)
    assert model.stopping_distance(0.5, 0.5) == pytest.approx(0.262)
    # below 33 %: the 33 % point (never extrapolated toward zero): 0.03 + 0.025 + 0.02*0.65 = 0.068
    assert model.stopping_distance(0.1, 0.1) == pytest.approx(0.068)
    assert model.payload_fraction(2.5) == pytest.approx(0.5)


def test_shipped_table_loads_and_is_conservative():
    model = StoppingModel.from_yaml(CONFIG / 'stopping.yaml')
    fractions = np.linspace(0.0, 1.0, 21)
    for payload in (0.0, 0.5, 1.0):
        t_s, s_s = model.lookup(fractions, payload)
        assert np.all(np.diff(t_s) >= 0.0) and np.all(np.diff(s_s) >= 0.0)
        assert np.all(t_s > 0.0) and np.all(s_s > 0.0)
    # never below any table point at or under the query
    assert model.stopping_distance(1.0, 1.0) >= np.max(model.stopping_distance_m)


@pytest.mark.parametrize('speed,payload', [(1.01, 0.5), (0.5, 1.2), (-0.1, 0.5), (math.nan, 0.5)])
def test_lookup_refuses_fractions_outside_the_table(speed, payload):
    model = StoppingModel.from_yaml(CONFIG / 'stopping.yaml')
    with pytest.raises(ValueError, match='must be in \\[0, 1\\]'):
        model.at(speed, payload)


def write_model(tmp_path, document):
    path = tmp_path / 'stopping.yaml'
    path.write_text(yaml.safe_dump(document))
    return path


ROBOT = {'speed_fractions': [0.5, 1.0], 'payload_fractions': [1.0],
         'robot_table': {'stopping_time_s': [[0.4], [0.3]], 'stopping_distance_m': [[0.1], [0.3]]}}


def test_lookup_never_falls_below_a_neighbour(tmp_path):
    # The measured time dips at full speed (0.3 < 0.4): the envelope keeps 0.4 s.
    model = StoppingModel.from_yaml(write_model(tmp_path, ROBOT))
    assert model.stopping_time(1.0, 1.0) == pytest.approx(0.4)
    # 0.7 lies between 0.5 and 1.0: the upper neighbour (0.3 m), not an interpolation (0.18 m)
    assert model.stopping_distance(0.7, 1.0) == pytest.approx(0.3)
    fractions = np.linspace(0.0, 1.0, 41)
    t_s, s_s = model.lookup(fractions, 1.0)
    assert np.all(np.diff(t_s) >= 0.0) and np.all(np.diff(s_s) >= 0.0)


@pytest.mark.parametrize('change,fragment', [
    ({'speed_fractions': [0.5, 0.9]}, 'ending at 1.0'),
    ({'speed_fractions': [1.0, 0.5]}, 'strictly increasing'),
    ({'robot_table': {'stopping_time_s': [[0.4]], 'stopping_distance_m': [[0.1], [0.3]]}}, 'rows'),
    ({'robot_table': {'stopping_time_s': [[0.4], [-0.3]], 'stopping_distance_m': [[0.1], [0.3]]}}, '>= 0'),
    ({'joints': {}}, 'exactly one of robot_table'),
    ({'colour': 'red'}, "unknown key(s) ['colour']"),
])
def test_bad_stopping_files_name_the_problem(tmp_path, change, fragment):
    with pytest.raises(ConfigError) as err:
        StoppingModel.from_yaml(write_model(tmp_path, {**ROBOT, **change}))
    assert fragment in str(err.value)


def test_missing_stopping_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match='not found'):
        StoppingModel.from_yaml(tmp_path / 'nope.yaml')


# ---------------------------------------------------------------------------------------------
# ISO 13855
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('height_mm,expected_mm', [
    (0.0, 1200.0),      # 1200 - 0
    (300.0, 1080.0),    # 1200 - 0.4 * 300
    (875.0, 850.0),     # 1200 - 350 = 850: the floor exactly
    (1000.0, 850.0),    # 1200 - 400 = 800 < 850 -> 850
])
def test_intrusion_distance(height_mm, expected_mm):
    assert intrusion_distance_iso13855_mm(height_mm) == pytest.approx(expected_mm)


def test_minimum_distance_worked_case():
    # T = 0.5 s, H = 300 mm: S = 1600 * 0.5 + 1080 = 1880 mm
    assert minimum_distance_iso13855_mm(0.5, 300.0) == pytest.approx(1880.0)


@pytest.mark.parametrize('call,fragment', [
    (lambda: intrusion_distance_iso13855_mm(-1.0), 'outside ISO 13855 limits'),
    (lambda: intrusion_distance_iso13855_mm(1001.0), 'outside ISO 13855 limits'),
    # d = 70 mm: H >= 15 * (70 - 50) = 300 mm
    (lambda: intrusion_distance_iso13855_mm(200.0, detection_capability_mm=70.0), '15 (d - 50) = 300 mm'),
    (lambda: minimum_distance_iso13855_mm(0.5, 300.0, approach_speed_mm_per_s=1000.0), '>= 1600 mm/s'),
    (lambda: minimum_distance_iso13855_mm(-0.1, 300.0), 'stopping time T'),
])
def test_iso13855_refuses_out_of_range_inputs(call, fragment):
    with pytest.raises(ConfigError) as err:
        call()
    assert fragment in str(err.value)


def test_check_protective_field_names_field_and_values():
    check_protective_field(1.9, 1.88)
    with pytest.raises(ConfigError) as err:
        check_protective_field(1.5, 1.88, 'scanner_protective_field_m')
    assert 'scanner_protective_field_m=1.5' in str(err.value) and '1.880' in str(err.value)


def test_stopping_steps_follow_the_programmed_speed_fraction():
    model = StoppingModel.from_yaml(CONFIG / 'stopping.yaml')
    # the programme's full scale is 50 % of the joint limits: scale 1.0 -> fraction 0.5 -> 50 % row
    steps = model.steps(1.0, speed_fraction_at_full_scale=0.5)
    t_s, s_s = steps.at(1.0)
    assert float(t_s) == pytest.approx(model.stopping_time(0.5, 1.0))
    assert float(s_s) == pytest.approx(model.stopping_distance(0.5, 1.0))
    # scale 0.6 -> fraction 0.3 -> 33 % row; scale 0.3 -> 0.15 -> 20 % row, a fifth of the 100 % distance
    assert float(steps.at(0.6)[1]) == pytest.approx(model.stopping_distance(0.33, 1.0))
    assert float(steps.at(0.3)[1]) == pytest.approx(model.stopping_distance(0.2, 1.0))
    assert float(steps.at(0.3)[1]) < 0.25 * model.stopping_distance(1.0, 1.0)


def test_a_measured_table_round_trips_through_the_file_format(tmp_path):
    measured = StoppingModel(np.array([0.33, 0.66, 1.0]), np.array([0.5, 1.0]),
                             np.array([[0.1, 0.12], [0.2, 0.22], [0.3, 0.33]]),
                             np.array([[0.05, 0.06], [0.15, 0.17], [0.3, 0.35]]), rated_payload_kg=5.0,
                             source='twin measurement')
    path = tmp_path / 'stopping.yaml'
    path.write_text(yaml.safe_dump(measured.to_mapping('ur5e')))
    loaded = StoppingModel.from_yaml(path)
    assert not loaded.provisional and loaded.source == 'twin measurement'
    assert loaded.stopping_distance(0.5, 0.7) == pytest.approx(0.17)
    np.testing.assert_allclose(loaded.stopping_time_s, measured.stopping_time_s)


def test_a_table_measured_for_a_faster_full_scale_is_refused_for_a_slower_cell():
    model = StoppingModel.from_yaml(CONFIG / 'stopping.yaml')
    assert model.full_scale_speed_fraction == 0.5
    model.check_cell_fraction(0.5)
    model.check_cell_fraction(1.0)                     # higher cell fraction: lower scales, shorter stops
    with pytest.raises(ConfigError, match='max_joint_speed_fraction=0.3'):
        model.check_cell_fraction(0.3)
    round_trip = StoppingModel.from_mapping(model.to_mapping('ur5e'))
    assert round_trip.full_scale_speed_fraction == 0.5
    document = model.to_mapping('ur5e')
    document['full_scale_speed_fraction'] = 1.5
    with pytest.raises(ConfigError, match='full_scale_speed_fraction must be in'):
        StoppingModel.from_mapping(document)
    del document['full_scale_speed_fraction']
    StoppingModel.from_mapping(document).check_cell_fraction(0.05)   # ramped from scale 1: valid anywhere


# -- look-ahead: the scale must hold until the next verdict has taken effect ----------------------

LOOK = LookAhead(update_period_s=0.04, actuation_lag_s=0.05, human_accel_mps2=4.0)     # H = 0.09 s


@pytest.mark.parametrize('v_h,expected', [
    (2.0, 2.36),          # an estimate above the floor grows by a_h H = 4 * 0.09 = 0.36 m/s
    (1.5, 1.86),          # 1.5 + 0.36 is above the floor
    (0.5, 1.6),           # 0.86: the floor already is the worst case
    (-1.0, 1.6),          # walking away: floor
    (math.nan, 1.96),     # unknown: the floor, grown like an estimate at the floor
    (1.6, 1.96),
])
def test_human_speed_bound_over_the_horizon(v_h, expected):
    assert float(human_speed_bound(INPUTS, v_h, LOOK)) == pytest.approx(expected)


def test_look_ahead_hand_computed():
    # d = 2.0 m, v_h 2.0 -> 2.36 m/s, arm now at 0.5 m/s toward the person, v_full 1.0 m/s:
    # d_H = 2.0 - (2.36 + 0.5) * 0.05 = 1.857 m; S_p(s) with T_r + P = 0.14 s:
    # 2.36 (0.14 + 0.3) + 0.2 + 0.17 + 0.14 s = 1.4084 + 0.14 s  ->  s = (1.857 - 1.4084) / 0.14 > 1 -> 1
    assert float(look_ahead_scale(2.0, INPUTS, 2.0, 1.0, 0.5, LOOK)) == 1.0
    # d = 1.5 m: d_H = 1.357 m < 1.4084 m: nothing fits, not even standing still -> 0
    assert float(look_ahead_scale(1.5, INPUTS, 2.0, 1.0, 0.5, LOOK)) == 0.0
    # d = 1.6 m: d_H = 1.457 m -> s = (1.457 - 1.4084) / 0.14 = 0.347
    assert float(look_ahead_scale(1.6, INPUTS, 2.0, 1.0, 0.5, LOOK)) == pytest.approx(0.0486 / 0.14)


def test_the_margin_that_went_negative_next_tick_is_kept():
    # make sim, 269.067 -> 269.100 s (before the look-ahead): the rule chose scale 1.0 with v_h 1.977 m/s
    # and the link moving across (0 m/s toward the person); one 33 ms tick later the person had come
    # 0.076 m closer at 2.3 m/s, v_h had grown to 2.0 m/s and the link had turned 0.163 m/s toward
    # them: separation < S_p while moving at scale 1. Here with the cell's T_r 0.31 s and a constant stop.
    cell = SeparationInputs(reaction_time_s=0.31, stopping_time_s=0.3, stopping_distance_m=0.3,
                            intrusion_distance_m=0.65, sensor_uncertainty_m=0.1, robot_position_uncertainty_m=0.02)
    tick_s = 1.0 / 30.0

    def margin_next_tick(d_m, scale):
        v_r_next = 0.163 * scale                                   # the link turned toward the person
        return d_m - 2.3 * tick_s - v_r_next * tick_s - protective_separation(cell, 2.0, v_r_next)

    old_rule = SeparationInputs(**{**cell.__dict__, 'reaction_time_s': 0.31 + LOOK.update_period_s})
    # the smallest separation at which the old rule (T_r + one period, v_h as estimated) allowed full speed
    d_m = 1e-6 + protective_separation(old_rule, 1.977, 0.0)
    assert float(speed_scale_for(d_m, old_rule, 1.977, 0.0)) == 1.0
    assert margin_next_tick(d_m, 1.0) < 0.0                        # the violation, reproduced
    # the look-ahead stops the arm at this very verdict: the link (moving across, 0 m/s toward the
    # person) has no S_r to give up, and S_h at the bound 1.977 + 4 * 0.09 = 2.337 m/s does not fit
    assert float(look_ahead_scale(d_m, cell, 1.977, 1.0, 0.0, LOOK)) == 0.0
    # further away the arm keeps moving, and the next tick's margin stays >= 0
    for extra_m in (0.5, 0.8, 1.2):
        scale = float(look_ahead_scale(d_m + extra_m, cell, 1.977, 1.0, 0.0, LOOK))
        assert scale > 0.0
        assert margin_next_tick(d_m + extra_m, scale) >= 0.0


finite = st.floats(-5.0, 5.0)


@settings(max_examples=300, deadline=None)
@given(separation=st.one_of(st.floats(-1.0, 6.0), st.just(math.nan)), v_h=st.one_of(finite, st.just(math.nan)),
       v_full=st.one_of(finite, st.just(math.nan)), v_now=st.one_of(finite, st.just(math.nan)),
       period=st.floats(0.0, 0.1), lag=st.floats(0.0, 0.2), accel=st.floats(0.0, 10.0))
def test_the_look_ahead_never_allows_more_than_the_rule_without_it(separation, v_h, v_full, v_now, period, lag,
                                                                    accel):
    steps = StoppingSteps(np.array([0.33, 0.66, 1.0]), np.array([0.1, 0.2, 0.3]), np.array([0.05, 0.15, 0.3]))
    look = LookAhead(period, lag, accel)
    with_look = float(look_ahead_scale(separation, INPUTS, v_h, v_full, v_now, look, steps))
    without = float(speed_scale_for(separation, INPUTS, v_h, v_full, steps))
    assert 0.0 <= with_look <= without
    if math.isnan(separation):
        assert with_look == 0.0                                     # unknown separation: stop


@pytest.mark.parametrize('name', ['update_period_s', 'actuation_lag_s', 'human_accel_mps2'])
@pytest.mark.parametrize('value', [-0.01, math.nan, math.inf])
def test_look_ahead_refuses_bad_values(name, value):
    with pytest.raises(ConfigError, match=name):
        LookAhead(**{'update_period_s': 0.04, 'actuation_lag_s': 0.05, 'human_accel_mps2': 4.0, name: value})
