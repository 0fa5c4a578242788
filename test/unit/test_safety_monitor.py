"""SafetyMonitor behaviour: doubt stops, zones and SSM, hold and ramp, e-stop latch, mode caps."""
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

import smartcell.core.safety.monitor as safety
from smartcell.core.params import ConfigError
from smartcell.core.safety.monitor import (EVENT_ON_TRANSITION, BodyModel, Mode, PeopleObservation, RobotObservation,
                                   SafetyConfig, SafetyMonitor, SafetyState, SeparationInputs, StoppingModel,
                                   segment_closest_parameters)

DT = 1.0 / 30.0          # scanner period, s
# A separation model small enough that only the zones matter (S_p(v) = 1.6 * 0.05 + 0.05 v m).
ZONES_ONLY = SeparationInputs(reaction_time_s=0.05)

CONFIG = Path(__file__).resolve().parents[2] / 'config'


def robot(stamp_s, speed_x_mps=0.0, applied_scale=1.0):
    """One vertical capsule from the floor to 1 m at the origin, radius 0.1 m, moving along +x."""
    capsules = np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    velocities = np.zeros((1, 2, 3))
    velocities[0, :, 0] = speed_x_mps * applied_scale
    return RobotObservation(stamp_s, capsules, np.array([0.1]), velocities, applied_scale)


def people(stamp_s, *xs, frame='world'):
    return PeopleObservation(stamp_s, frame, np.array([[x, 0.0, 1.0] for x in xs]).reshape(-1, 3))


def run(monitor, t0, t1, xs_of_t=lambda t: (), speed_x_mps=0.0):
    """Feed one message per scanner period from t0 to t1 (s); returns the verdicts."""
    verdicts = []
    for k in range(int(round((t1 - t0) / DT)) + 1):
        t = t0 + k * DT
        applied = monitor.last_verdict.speed_scale if monitor.last_verdict else 0.0
        verdicts.append(monitor.update(people(t, *xs_of_t(t)), robot(t, speed_x_mps, applied), t))
    return verdicts


def started(config=None, **kwargs):
    """A monitor past its start-up restart interlock and ramp, at full speed with nobody around."""
    monitor = SafetyMonitor(config or SafetyConfig(separation=ZONES_ONLY), None, **kwargs)
    verdicts = run(monitor, 0.0, 3.0)
    assert verdicts[-1].speed_scale == 1.0 and verdicts[-1].state is SafetyState.NORMAL
    monitor.drain_events()
    return monitor


def test_separation_is_cylinder_to_capsule_surface():
    monitor = started()
    # person axis at x = 2.0; capsule axis at x = 0: 2.0 - 0.1 (capsule) - 0.2 (person) = 1.7 m
    verdict = monitor.update(people(3.1, 2.0), robot(3.1), 3.1)
    assert verdict.separation_m == pytest.approx(1.7)
    assert verdict.closest_person_index == 0
    verdict = monitor.update(people(3.2, 4.0, -1.5), robot(3.2), 3.2)
    assert verdict.closest_person_index == 1
    assert verdict.separation_m == pytest.approx(1.2)


def test_segment_closest_points_handle_parallel_and_point_segments():
    vertical = np.array([[[1.0, 0.0, 0.0], [1.0, 0.0, 2.0]]])
    others = np.array([[[0.0, 0.0, 0.5], [0.0, 0.0, 1.5]],      # parallel, 1 m apart
                       [[0.0, 0.0, 3.0], [0.0, 0.0, 3.0]],      # a point above: to (1, 0, 2): sqrt(1 + 1)
                       [[-1.0, 0.0, 1.0], [3.0, 0.0, 1.0]]])    # crossing the axis: 0
    _, _, distance = segment_closest_parameters(vertical, others)
    assert distance[0] == pytest.approx([1.0, math.sqrt(2.0), 0.0])


@pytest.mark.parametrize('observation,fragment', [
    (lambda t: PeopleObservation(t, 'world', np.array([[np.nan, 0.0, 1.0]])), 'NaN'),
    (lambda t: people(t, 2.0, frame='scanner_link'), "frame 'scanner_link', expected 'world'"),
    (lambda t: people(t - 0.5, 2.0), 's old'),
    (lambda t: people(t + 0.5, 2.0), 'in the future'),
    (lambda t: people(t, 20.0), 'outside the plausible workspace'),
    (lambda t: PeopleObservation(t, 'world', np.zeros((2, 2))), '(N, 3)'),
    (lambda t: PeopleObservation(math.nan, 'world', np.zeros((1, 3))), 'stamp is not finite'),
])
def test_doubtful_people_data_stops_with_the_reason(observation, fragment):
    monitor = started()
    t = 3.2
    verdict = monitor.update(observation(t), robot(t), t)
    assert verdict.state is SafetyState.PROTECTIVE_STOP
    assert verdict.zone == 'fault'
    assert verdict.speed_scale == 0.0
    assert fragment in verdict.reason
    assert [e.kind for e in monitor.drain_events()] == ['fault']


def test_stamps_going_backwards_stop():
    monitor = started()
    monitor.update(people(3.2, 2.0), robot(3.2), 3.2)
    verdict = monitor.update(people(3.19, 2.0), robot(3.2), 3.21)
    assert verdict.state is SafetyState.PROTECTIVE_STOP and 'not newer' in verdict.reason


@pytest.mark.parametrize('observation,fragment', [
    (lambda t: robot(t - 1.0), 'robot data is'),
    (lambda t: robot(t + 1.0), 'robot data stamp is 1.000 s in the future'),
    (lambda t: robot(t, applied_scale=1.5), 'outside [0, 1]'),
    (lambda t: safety.RobotObservation(t, np.full((1, 2, 3), np.nan), np.array([0.1]), np.zeros((1, 2, 3)), 1.0),
     'NaN'),
    (lambda t: safety.RobotObservation(t, np.zeros((1, 3)), np.array([0.1]), np.zeros((1, 3)), 1.0), 'shapes'),
])
def test_doubtful_robot_data_stops_with_the_reason(observation, fragment):
    monitor = started()
    verdict = monitor.update(people(3.2, 2.0), observation(3.2), 3.2)
    assert verdict.state is SafetyState.PROTECTIVE_STOP and fragment in verdict.reason


def test_silence_stops_and_fresh_data_does_not():
    monitor = SafetyMonitor(SafetyConfig(separation=ZONES_ONLY), None)
    first = monitor.on_silence(0.0)
    assert first is not None and first.speed_scale == 0.0 and 'no people data' in first.reason
    monitor.update(people(1.0, 3.0), robot(1.0), 1.0)
    assert monitor.on_silence(1.05) is None                       # 50 ms < 70 ms timeout
    late = monitor.on_silence(1.08)                                # 80 ms > 70 ms
    assert late.state is SafetyState.PROTECTIVE_STOP and 'silent for 0.080 s' in late.reason


def test_internal_error_is_a_fault_stop(monkeypatch):
    monitor = started()

    def broken(*args, **kwargs):
        raise RuntimeError('boom')
    monkeypatch.setattr(safety, 'pair_geometry', broken)
    verdict = monitor.update(people(3.2, 2.0), robot(3.2), 3.2)
    assert verdict.state is SafetyState.FAULT and verdict.speed_scale == 0.0 and 'boom' in verdict.reason
    assert [e.kind for e in monitor.drain_events()] == ['fault']


def test_zones_slow_at_once_then_hold_then_ramp():
    monitor = started()
    # warning zone: separation 1.0 m (x = 1.3) -> reduced 0.3 immediately
    verdict = monitor.update(people(3.1, 1.3), robot(3.1), 3.1)
    assert (verdict.state, verdict.zone, verdict.speed_scale) == (SafetyState.REDUCED, 'warning', 0.3)
    assert 'warning distance' in verdict.reason
    # protective zone: separation 0.5 m (x = 0.8) -> stop immediately
    verdict = monitor.update(people(3.2, 0.8), robot(3.2), 3.2)
    assert (verdict.state, verdict.zone, verdict.speed_scale) == (SafetyState.PROTECTIVE_STOP, 'protective', 0.0)
    assert [e.kind for e in monitor.drain_events()] == ['intrusion', 'slow_down', 'stop']
    # the person leaves: hold 0.5 s at 0, then ramp at 0.5/s
    verdicts = run(monitor, 3.3, 6.0, lambda t: (3.0,))
    scales = np.array([v.speed_scale for v in verdicts])
    times = np.array([v.stamp_s for v in verdicts])
    assert np.all(scales[times < 3.3 + 0.5 - 1e-9] == 0.0)
    assert 'restart interlock' in verdicts[0].reason
    # 1 s after the hold ended the scale is 0.5 (within one period of ramp)
    at = int(np.argmin(np.abs(times - (3.3 + 0.5 + 1.0))))
    assert scales[at] == pytest.approx(0.5, abs=0.5 * DT + 1e-9)
    assert np.all(np.diff(scales) <= 0.5 * DT + 1e-9)
    assert scales[-1] == 1.0
    assert [e.kind for e in monitor.drain_events()] == ['resume', 'full_speed']


def test_from_a_reduced_speed_the_scale_ramps_up_at_once_only_a_stop_needs_the_restart_hold():
    """The restart interlock is for a restart: after the warning zone slowed the arm (0.3, still
    moving) the scale ramps back as soon as the person leaves; after a stop it waits resume_hold_s."""
    monitor = started()
    reduced = monitor.update(people(3.1, 1.3), robot(3.1), 3.1)             # warning zone: 0.3, moving
    assert reduced.speed_scale == 0.3
    verdicts = run(monitor, 3.1 + DT, 3.6, lambda t: (3.0,))                # the person leaves
    scales = [v.speed_scale for v in verdicts]
    assert scales[0] == pytest.approx(0.3 + monitor.config.ramp_up_per_s * DT, abs=1e-9)
    assert all('restart interlock' not in v.reason for v in verdicts)
    assert np.all(np.diff(scales) > 0.0)
    stopped = monitor.update(people(3.7, 0.8), robot(3.7), 3.7)             # protective zone: stop
    assert stopped.speed_scale == 0.0
    verdicts = run(monitor, 3.7 + DT, 4.1, lambda t: (3.0,))               # 0.4 s clear < 0.5 s hold
    assert all(v.speed_scale == 0.0 for v in verdicts) and 'restart interlock' in verdicts[-1].reason


def test_a_dip_during_the_hold_restarts_it():
    monitor = started()
    monitor.update(people(3.1, 0.8), robot(3.1), 3.1)                      # stop
    run(monitor, 3.2, 3.5, lambda t: (3.0,))                                 # 0.3 s clear
    monitor.update(people(3.55, 0.8), robot(3.55), 3.55)                   # back in: stop again
    verdicts = run(monitor, 3.6, 4.05, lambda t: (3.0,))                    # 0.45 s clear < 0.5 s hold
    assert all(v.speed_scale == 0.0 for v in verdicts)


def ssm_config():
    # S_p(v) = 1.6 (0.5 + 0.2) + 0.5 v + 0.1 + 0.2 = 1.42 + 0.5 v (m); zones are out of the way
    return SafetyConfig(separation=SeparationInputs(reaction_time_s=0.5, stopping_time_s=0.2,
                                                    stopping_distance_m=0.1, intrusion_distance_m=0.2),
                        warning_distance_m=0.5, protective_distance_m=0.2)


def test_ssm_limits_below_the_zone_rule():
    monitor = started(ssm_config())
    # separation 1.7 m (x = 2.0), robot at 1 m/s toward the person at full scale, person standing
    # (v_h bound = floor 1.6 m/s). The scale must hold until the next verdict is applied: P + L =
    # 0.04 + 0.05 s. During L the arm keeps its present speed v_now and the person walks in:
    # d_H = 1.7 - (1.6 + v_now) 0.05; then S_p with T_r + P: 1.6 (0.54 + 0.2) + 0.54 s + 0.3 = 1.484 + 0.54 s
    # (the tracker says standing, exactly: a first sighting without an estimate would count as
    # approaching at the floor and grow like one, 1.6 + 4 * 0.09 m/s)
    def standing(monitor, speed_x_mps):
        verdicts = []
        for k in range(7):
            t = 3.1 + k * DT
            applied = monitor.last_verdict.speed_scale
            verdicts.append(monitor.update(tracked(t, 2.0, (0.0, 0.0), np.zeros((2, 2))),
                                           robot(t, speed_x_mps, applied), t))
        return verdicts

    verdicts = standing(monitor, 1.0)
    first = (1.7 - (1.6 + 1.0) * 0.05 - 1.484) / 0.54                    # from full speed: 0.159
    assert verdicts[0].speed_scale == pytest.approx(first, abs=1e-9)
    # then, at v_now = the applied scale x 1 m/s, a higher target (0.237 at 0.159 m/s); from a reduced
    # speed (no stop, so no restart interlock) the scale ramps toward it at once, at ramp_up_per_s
    ramp = monitor.config.ramp_up_per_s
    for before, after in zip(verdicts, verdicts[1:]):
        assert after.target_scale == pytest.approx((1.7 - (1.6 + before.speed_scale) * 0.05 - 1.484) / 0.54,
                                                   abs=1e-9)
        assert after.speed_scale == pytest.approx(min(after.target_scale, before.speed_scale + ramp * DT), abs=1e-9)
    assert verdicts[1].speed_scale > first
    # evidence S_p uses T_r alone at the applied speed: 1.6 * 0.7 + 0.5 * v_now + 0.3 m
    v_now = verdicts[-2].speed_scale
    assert verdicts[-1].protective_distance_m == pytest.approx(1.42 + 0.5 * v_now)
    assert verdicts[-1].margin_m == pytest.approx(1.7 - 1.42 - 0.5 * v_now)
    assert verdicts[-1].zone == 'clear' and verdicts[-1].reason.startswith('SSM')
    assert verdicts[-1].human_speed_mps == pytest.approx(1.6)
    # robot moving away at the same speed: only the fixed part 1.484 m <= d_H 1.62 m -> full speed target
    away = standing(started(ssm_config()), -1.0)
    assert away[-1].target_scale == 1.0


def test_person_walking_away_slows_no_more_than_one_standing_still():
    standing = run(started(ssm_config()), 3.1, 3.5, lambda t: (2.0,), speed_x_mps=1.0)[-1]
    # walking away at 1 m/s and passing x = 2.0 at t = 3.5
    leaving = run(started(ssm_config()), 3.1, 3.5, lambda t: (2.0 + (t - 3.5),), speed_x_mps=1.0)[-1]
    # approaching at 2.5 m/s (> floor): S_h grows by (2.5 - 1.6) * 0.7 = 0.63 m -> must be slower
    approaching = run(started(ssm_config()), 3.1, 3.5, lambda t: (2.0 - 2.5 * (t - 3.5),), speed_x_mps=1.0)[-1]
    # (leaving came from closer, so its arm already runs slower and carries less into the look-ahead)
    assert leaving.target_scale >= standing.target_scale - 1e-9
    assert leaving.human_speed_mps == pytest.approx(1.6)
    assert approaching.human_speed_mps == pytest.approx(2.5, abs=1e-6)
    assert approaching.target_scale < standing.target_scale


def test_stopping_model_and_evidence_margin():
    model = StoppingModel.from_yaml(CONFIG / 'stopping.yaml')
    monitor = SafetyMonitor(SafetyConfig(), model)
    verdicts = run(monitor, 0.0, 3.0, lambda t: (4.0,), speed_x_mps=1.0)
    last = verdicts[-1]
    assert 0.0 < last.speed_scale <= 1.0
    # the margin is separation - S_p at the speeds of the moment
    assert last.margin_m == pytest.approx(last.separation_m - last.protective_distance_m)
    assert last.protective_distance_m > SafetyConfig().separation.fixed_margin_m


def test_emergency_stop_needs_an_explicit_reset():
    monitor = started()
    verdict = monitor.emergency_stop(3.1, 'button')
    assert verdict.state is SafetyState.EMERGENCY_STOP and 'button' in verdict.reason
    later = run(monitor, 3.2, 5.0, lambda t: (3.0,))
    assert all(v.state is SafetyState.EMERGENCY_STOP and v.speed_scale == 0.0 for v in later)
    assert monitor.on_silence(5.01).state is SafetyState.EMERGENCY_STOP
    reset = monitor.reset(5.05)
    assert reset.state is SafetyState.PROTECTIVE_STOP and reset.speed_scale == 0.0
    after = run(monitor, 5.1, 8.0, lambda t: (3.0,))
    assert after[0].speed_scale == 0.0 and after[-1].speed_scale == 1.0
    kinds = [e.kind for e in monitor.drain_events()]
    assert kinds[0] == 'emergency_stop' and 'reset' in kinds and kinds[-1] == 'full_speed'


def test_manual_reduced_caps_every_capsule_point():
    monitor = started()
    verdict = monitor.set_mode(Mode.MANUAL_REDUCED, 3.1)
    # judged at once on the latest data, which is 0.1 s old by now: stale -> stop
    assert verdict.speed_scale == 0.0 and 'old' in verdict.reason
    assert [e.kind for e in monitor.drain_events()][0] == 'mode_change'
    verdicts = run(monitor, 3.2, 6.0, lambda t: (3.0,), speed_x_mps=1.0)
    # fastest point 1.0 m/s at full scale -> 0.25 / 1.0
    assert verdicts[-1].speed_scale == pytest.approx(0.25)
    assert verdicts[-1].mode is Mode.MANUAL_REDUCED and 'T1' in verdicts[-1].reason
    # at a tiny applied scale the measured speed is not trusted: nominal 1.0 m/s is assumed -> 0.25
    tiny = monitor.update(people(6.1, 3.0), robot(6.1, 0.0, applied_scale=0.01), 6.1)
    assert tiny.target_scale == pytest.approx(0.25)


@pytest.mark.parametrize('exposed,robot_speed,cap,region', [
    # upper arms: transient limit 1.1547 m/s (see test_safety_pfl); robot at 2 m/s -> 0.577
    (['hands_fingers', 'lower_arms_wrists', 'upper_arms_elbows'], 2.0, 300.0 / math.sqrt(2.25 * 30000.0),
     'upper_arms_elbows'),
    # chest only: 0.6533 m/s; robot at 2 m/s -> 0.327
    (['chest'], 2.0, 280.0 / math.sqrt(1.0 / (1 / 40 + 1 / 9) * 25000.0), 'chest'),
    # hands only: 1.3632 m/s > 1 m/s robot -> no cap (transient); 0.6816 m/s with clamping
    (['hands_fingers'], 1.0, 280.0 / math.sqrt(0.5625 * 75000.0), 'hands_fingers'),
])
@pytest.mark.parametrize('clamping', [False, True])
def test_collaborative_mode_caps_by_the_most_restrictive_exposed_region(exposed, robot_speed, cap, region, clamping):
    body = BodyModel.from_yaml(CONFIG / 'body_regions.yaml')
    body = BodyModel(body.regions, tuple(exposed), clamping)
    monitor = SafetyMonitor(SafetyConfig(separation=ZONES_ONLY), None, Mode.COLLABORATIVE, body)
    verdicts = run(monitor, 0.0, 4.0, lambda t: (3.0,), speed_x_mps=robot_speed)
    # clamping possible: the quasi-static limits (1x instead of 2x), half the transient cap
    applied_cap = cap / 2.0 if clamping else cap
    assert verdicts[-1].target_scale == pytest.approx(min(1.0, applied_cap / robot_speed))
    assert verdicts[-1].allowed_speed_mps == pytest.approx(applied_cap)
    if verdicts[-1].target_scale < 1.0:
        limit = 'quasi-static limit (clamping possible)' if clamping else 'transient limit'
        assert f'collaborative: PFL {limit} of {region}: every capsule point capped at' in verdicts[-1].reason



def test_the_pfl_cap_holds_for_an_arm_speeding_up_until_the_next_verdict_applies():
    body = BodyModel.from_yaml(CONFIG / 'body_regions.yaml')
    monitor = SafetyMonitor(SafetyConfig(separation=ZONES_ONLY), None, Mode.COLLABORATIVE, body)
    run(monitor, 0.0, 4.0, lambda t: (3.0,), speed_x_mps=0.5)           # steady 0.5 m/s at full scale
    cap = monitor.last_verdict.allowed_speed_mps
    assert monitor.last_verdict.target_scale == pytest.approx(min(1.0, cap / 0.5))
    # The arm's full-scale speed grows 0.5 -> 0.6 m/s in one scanner period (3 m/s^2): the cap is
    # applied to the speed reached by the time a later verdict takes effect, the next one (P + L) or,
    # should the people data stop now, the timeout's stop (people_timeout_s + L), the later of the two.
    t = 4.0 + DT
    verdict = monitor.update(people(t, 3.0), robot(t, 0.6, 1.0), t)
    config = monitor.config
    horizon = max(config.update_period_s, config.people_timeout_s) + config.actuation_lag_s
    expected = 0.6 + (0.1 / DT) * horizon
    assert verdict.target_scale == pytest.approx(cap / expected)
    assert f'{expected:.3f} m/s within' in verdict.reason
    t += DT                                                              # slowing down: its present speed
    assert monitor.update(people(t, 3.0), robot(t, 0.55, 1.0), t).target_scale == pytest.approx(min(1.0, cap / 0.55))

def test_collaborative_without_body_model_stops():
    monitor = SafetyMonitor(SafetyConfig(separation=ZONES_ONLY), None, Mode.COLLABORATIVE)
    verdicts = run(monitor, 0.0, 2.0, lambda t: (3.0,))
    assert verdicts[-1].speed_scale == 0.0 and 'body-region model' in verdicts[-1].reason


def test_contact_above_limit_latches_emergency_stop():
    body = BodyModel.from_yaml(CONFIG / 'body_regions.yaml')
    monitor = SafetyMonitor(SafetyConfig(separation=ZONES_ONLY), None, body=body)
    run(monitor, 0.0, 3.0)
    assert monitor.report_contact(3.1, 'hands_fingers', 100.0, transient=True).within_limit
    assert monitor.last_verdict.state is SafetyState.NORMAL
    assert not monitor.report_contact(3.2, 'hands_fingers', 300.0, transient=True).within_limit
    assert monitor.last_verdict.state is SafetyState.EMERGENCY_STOP
    contacts = [e for e in monitor.drain_events() if e.kind == 'contact']
    assert [c.details['force_N'] for c in contacts] == [100.0, 300.0]


def test_contact_spanning_two_regions_is_judged_by_the_stricter_one():
    # Hands and fingers allow 140 N quasi-static, lower arms 160 N: 150 N on "forearm or hand" is too much.
    body = BodyModel.from_yaml(CONFIG / 'body_regions.yaml')
    monitor = SafetyMonitor(SafetyConfig(separation=ZONES_ONLY), None, body=body)
    run(monitor, 0.0, 3.0)
    assert monitor.report_contact(3.1, ['lower_arms_wrists'], 150.0, transient=False).within_limit
    verdict = monitor.report_contact(3.2, ['lower_arms_wrists', 'hands_fingers'], 150.0, transient=False,
                                     source='person_0/forearm_hand_left on wrist_3_link')
    assert verdict.region == 'hands_fingers' and verdict.limit_N == 140.0 and not verdict.within_limit
    assert monitor.last_verdict.state is SafetyState.EMERGENCY_STOP
    assert 'forearm_hand_left on wrist_3_link' in monitor.last_verdict.reason
    with pytest.raises(ConfigError, match='unknown body region'):
        monitor.report_contact(3.3, ['elbow'], 1.0, transient=False)


def test_event_table_covers_every_state_change():
    pairs = {(a, b) for a in SafetyState for b in SafetyState if a is not b}
    assert set(EVENT_ON_TRANSITION) == pairs


@pytest.mark.parametrize('kwargs,fragment', [
    ({'protective_distance_m': 2.0}, 'must be smaller than warning_distance_m'),
    ({'people_timeout_s': 0.0}, 'people_timeout_s must be a number > 0'),
    ({'reduced_speed_scale': 1.5}, 'reduced_speed_scale must be in [0, 1]'),
    ({'workspace_min_m': (0.0, 0.0, 0.0), 'workspace_max_m': (1.0, -1.0, 1.0)}, 'min < max'),
    ({'ramp_up_per_s': math.nan}, 'ramp_up_per_s'),
])
def test_config_errors_name_the_key(kwargs, fragment):
    with pytest.raises(ConfigError) as err:
        SafetyConfig(**kwargs)
    assert fragment in str(err.value)


def test_finite_ramp_down_is_counted_in_the_reaction_time():
    config = SafetyConfig(ramp_down_per_s=4.0)
    assert config.effective_separation.reaction_time_s == pytest.approx(config.separation.reaction_time_s + 0.25)


def test_a_rotating_link_counts_its_fastest_end_toward_the_person():
    monitor = started()
    # horizontal link from (0, 0, 1) to (1, 0, 1) swinging about its first end: the far end moves
    # at 1 m/s along +y, the near end stands. Person at (0.5, 1.5): the link moves toward them
    # at up to 1 m/s (far end), not 0.5 m/s (closest point) and not 0 (near end).
    capsules = np.array([[[0.0, 0.0, 1.0], [1.0, 0.0, 1.0]]])
    velocities = np.array([[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    observation = RobotObservation(3.1, capsules, np.array([0.1]), velocities, 1.0)
    verdict = monitor.update(PeopleObservation(3.1, 'world', np.array([[0.5, 1.5, 1.0]])), observation, 3.1)
    assert verdict.robot_speed_toward_human_mps == pytest.approx(1.0)
    # 1.5 - 0.1 - 0.2 = 1.2 m from the link surface
    assert verdict.separation_m == pytest.approx(1.2)


def test_a_new_person_counts_at_the_floor_speed_and_a_tracked_one_at_their_speed():
    monitor = started(ssm_config())
    first = monitor.update(people(3.1, 2.5), robot(3.1), 3.1)
    # a second person appears far from the first: unmatched -> floor 1.6 m/s
    second = monitor.update(people(3.1 + DT, 2.5 - 3.0 * DT, -2.0), robot(3.1 + DT), 3.1 + DT)
    assert first.human_speed_mps == pytest.approx(1.6)
    # person 0 approached at 3 m/s and limits the arm; person 1 (new) is at the floor
    assert second.human_speed_mps == pytest.approx(3.0)


def test_config_from_flat_parameters():
    config = SafetyConfig.from_mapping({'warning_distance_m': 2.0, 'world_frame': 'cell', 'reaction_time_s': 0.2,
                                        'workspace_min_m': [-3.0, -3.0, -0.5], 'robot_state_timeout_s': 0.3})
    assert config.warning_distance_m == 2.0 and config.expected_frame == 'cell'
    assert config.separation.reaction_time_s == 0.2 and config.robot_timeout_s == 0.3
    assert config.separation.intrusion_distance_m == SafetyConfig().separation.intrusion_distance_m
    assert config.workspace_min_m == (-3.0, -3.0, -0.5)
    with pytest.raises(ConfigError, match="unknown safety parameter 'warning_distance'; accepted: "):
        SafetyConfig.from_mapping({'warning_distance': 2.0})
    assert SafetyConfig.from_mapping({'job': 'x'}, ignore_unknown=True) == SafetyConfig()
    with pytest.raises(ConfigError, match='reaction_time_s must be > 0'):
        SafetyConfig.from_mapping({'reaction_time_s': 0.0})


def test_verdict_fields_for_the_wire():
    monitor = started()
    fields = monitor.update(people(3.1, 1.3), robot(3.1), 3.1).as_fields()
    assert fields['state'] == 'reduced' and fields['zone'] == 'warning' and fields['speed_scale'] == 0.3
    assert fields['separation_m'] == pytest.approx(1.0) and 'warning distance' in fields['reason']


def test_collaborative_mode_lets_pfl_replace_the_separation_stop():
    """At a handover the person is within S_p on purpose: PFL caps the speed instead of stopping."""
    body = BodyModel.from_yaml(CONFIG / 'body_regions.yaml')
    automatic = SafetyMonitor(SafetyConfig(separation=ZONES_ONLY), None, Mode.AUTOMATIC, body)
    collaborative = SafetyMonitor(SafetyConfig(separation=ZONES_ONLY), None, Mode.COLLABORATIVE, body)
    close = lambda t: (0.45,)     # noqa: E731 - inside the protective distance of 0.6 m
    assert run(automatic, 0.0, 3.0, close, speed_x_mps=2.0)[-1].speed_scale == 0.0
    verdict = run(collaborative, 0.0, 3.0, close, speed_x_mps=2.0)[-1]
    # the shipped station allows clamping: the upper arms' quasi-static cap 0.577 m/s, robot at 2 m/s
    assert verdict.target_scale == pytest.approx(150.0 / math.sqrt(2.25 * 30000.0) / 2.0)
    assert verdict.speed_scale > 0.0
    assert 'PFL quasi-static limit (clamping possible) of upper_arms_elbows' in verdict.reason


def test_a_mode_change_is_judged_at_once_and_is_not_a_stop():
    monitor = started()
    before = monitor.last_verdict
    assert before.speed_scale == 1.0
    monitor.drain_events()
    same = monitor.set_mode(Mode.AUTOMATIC, before.stamp_s)
    assert same is before and monitor.drain_events() == []          # re-selecting the mode: nothing happens
    changed = monitor.set_mode(Mode.MANUAL_REDUCED, before.stamp_s)
    assert changed.state is not SafetyState.PROTECTIVE_STOP and changed.speed_scale > 0.0
    events = monitor.drain_events()
    assert [e.kind for e in events] == ['mode_change'] and events[0].details == {'from': 'automatic',
                                                                              'to': 'manual_reduced'}


# -- the person's speed from the tracker's velocity estimate (issue 13) ----------------------------

def tracked(stamp_s, x, velocity, cov):
    """One person at (x, 0) with the tracker's velocity (m/s) and covariance ((m/s)^2)."""
    return PeopleObservation(stamp_s, 'world', np.array([[x, 0.0, 1.0]]), np.array([velocity], dtype=float),
                             np.array([cov], dtype=float))


@pytest.mark.parametrize('velocity, cov, expected', [
    ((-1.0, 0.0), [[0.25, 0.0], [0.0, 0.25]], 2.0),      # approaching 1 m/s, sigma 0.5: 1 + 2 * 0.5
    ((-2.0, 0.5), [[0.09, 0.02], [0.02, 0.04]], 2.6),    # only the component toward the robot: 2 + 2 * 0.3
    ((1.0, 0.0), [[0.01, 0.0], [0.0, 0.01]], 1.6),       # walking away: the ISO 13855 floor
    ((0.0, 1.5), [[0.01, 0.0], [0.0, 0.01]], 1.6),       # passing by: 0 + 2 * 0.1 -> floor
    ((-1.5, 0.0), [[0.0, 0.0], [0.0, 0.0]], 1.6),        # an exact estimate below the floor: floor
])
def test_human_speed_is_the_upper_bound_of_the_projected_velocity(velocity, cov, expected):
    monitor = started(ssm_config())
    verdict = monitor.update(tracked(3.1, 2.5, velocity, cov), robot(3.1, 1.0), 3.1)
    assert verdict.human_speed_mps == pytest.approx(expected, abs=1e-9)


def test_a_position_jump_is_no_speed_spike_when_the_tracker_gives_a_velocity():
    # the tracked position jumps 0.3 m toward the robot in one 40 ms period (a leg seen alone): a
    # difference of positions says 7.5 m/s, the filter says standing, give or take 0.1 m/s
    quiet = [[0.01, 0.0], [0.0, 0.01]]
    with_velocity = started(ssm_config())
    with_velocity.update(tracked(3.1, 2.5, (0.0, 0.0), quiet), robot(3.1, 1.0), 3.1)
    after = with_velocity.update(tracked(3.1 + DT, 2.2, (0.0, 0.0), quiet), robot(3.1 + DT, 1.0), 3.1 + DT)
    assert after.human_speed_mps == pytest.approx(1.6)
    # without velocities the old rule stays: the difference of positions
    old_rule = started(ssm_config())
    old_rule.update(people(3.1, 2.5), robot(3.1, 1.0), 3.1)
    spike = old_rule.update(people(3.1 + DT, 2.2), robot(3.1 + DT, 1.0), 3.1 + DT)
    assert spike.human_speed_mps == pytest.approx(0.3 / DT)
    assert spike.target_scale < after.target_scale


@pytest.mark.parametrize('velocities, cov', [
    (np.array([[np.nan, 0.0]]), np.array([[[0.01, 0.0], [0.0, 0.01]]])),          # NaN
    (np.array([[0.0, 0.0]]), np.array([[[-0.01, 0.0], [0.0, 0.01]]])),             # negative variance
    (np.array([[0.0, 0.0]]), np.array([[[0.01, 0.5], [0.0, 0.01]]])),              # not symmetric
    (np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([[[0.01, 0.0], [0.0, 0.01]]] * 2)),   # another count
    (np.array([[0.0, 0.0]]), None),                                                  # no covariance
])
def test_unusable_velocity_data_falls_back_to_the_difference_of_positions(velocities, cov):
    monitor = started(ssm_config())
    monitor.update(people(3.1, 2.5), robot(3.1, 1.0), 3.1)
    bad = PeopleObservation(3.1 + DT, 'world', np.array([[2.5 - 3.0 * DT, 0.0, 1.0]]), velocities, cov)
    verdict = monitor.update(bad, robot(3.1 + DT, 1.0), 3.1 + DT)
    assert verdict.state is not SafetyState.FAULT
    assert verdict.human_speed_mps == pytest.approx(3.0)


def test_velocity_of_one_person_and_the_old_rule_for_another():
    monitor = started(ssm_config())
    monitor.update(people(3.1, 2.5, -2.0), robot(3.1, 1.0), 3.1)
    # person 0: a trusted estimate, approaching at 1 m/s, sigma 0.1; person 1 (NaN estimate) walks at 3 m/s
    observation = PeopleObservation(3.1 + DT, 'world', np.array([[2.5, 0.0, 1.0], [-2.0 + 3.0 * DT, 0.0, 1.0]]),
                                    np.array([[-1.0, 0.0], [np.nan, np.nan]]),
                                    np.array([[[0.01, 0.0], [0.0, 0.01]], [[0.01, 0.0], [0.0, 0.01]]]))
    verdict = monitor.update(observation, robot(3.1 + DT, 0.0), 3.1 + DT)
    # person 1 is nearer and faster: it limits, at the speed its positions give (3 m/s)
    assert verdict.human_speed_mps == pytest.approx(3.0)


def test_the_safety_pipeline_hands_the_velocities_to_the_monitor():
    from smartcell.core.safety.monitor import SafetyVerdict
    from smartcell.core.safety.pipeline import BasePose, SafetyPipeline

    class Recording:
        mode, last_verdict = Mode.AUTOMATIC, None

        def __init__(self):
            self.seen = []

        def update(self, people, robot, now_s):
            self.seen.append(people)
            return SafetyVerdict(now_s, Mode.AUTOMATIC, SafetyState.NORMAL, 'clear', math.inf, math.nan, 1.0, 1.6,
                                 0.0, 1.0, '', -1)

        def drain_events(self):
            return []
    monitor = Recording()
    observation = tracked(0.0, 2.0, (-1.0, 0.5), [[0.04, 0.0], [0.0, 0.04]])
    SafetyPipeline(monitor, BasePose(0, 0, 0, 0)).evaluate(observation, None, 0.0)
    assert monitor.seen[0].velocities_mps.tolist() == [[-1.0, 0.5]]
    assert monitor.seen[0].velocity_cov.tolist() == [[[0.04, 0.0], [0.0, 0.04]]]


# -- SSM look-ahead (make sim, 269.1 s: 1.4 mm inside S_p one tick after a verdict of scale 1) -------

def cell_like_monitor():
    """The supervisor's SSM numbers (config/cell.yaml, config/stopping.yaml), at full speed, nobody around."""
    config = SafetyConfig.from_mapping({'reaction_time_s': 0.31, 'intrusion_distance_m': 0.65,
                                        'sensor_uncertainty_m': 0.1, 'robot_position_uncertainty_m': 0.02,
                                        'warning_distance_m': 2.5, 'protective_distance_m': 0.6,
                                        'reduced_speed_scale': 1.0, 'people_timeout_s': 0.17,
                                        'speed_fraction_at_full_scale': 0.5})
    monitor = SafetyMonitor(config, StoppingModel.from_yaml(CONFIG / 'stopping.yaml'))
    for k in range(100):
        applied = monitor.last_verdict.speed_scale if monitor.last_verdict else 0.0
        monitor.update(PeopleObservation(k * DT, 'world', np.zeros((0, 3))), arm(k * DT, (0.0, 1.0, 0.0), applied),
                       k * DT)
    assert monitor.last_verdict.speed_scale == 1.0
    return monitor


def arm(stamp_s, velocity_full_mps, applied_scale):
    """One capsule on the table (0.75-1.5 m high) at the origin, moving at velocity x applied scale."""
    velocities = np.zeros((1, 2, 3))
    velocities[0, :, :] = np.asarray(velocity_full_mps) * applied_scale
    return RobotObservation(stamp_s, np.array([[[0.0, 0.0, 0.75], [0.0, 0.0, 1.5]]]), np.array([0.1]), velocities,
                            applied_scale)


def walker(stamp_s, x, speed_toward_mps):
    """A person at (x, 0) walking toward the robot; the tracker's estimate exact (covariance 0)."""
    return PeopleObservation(stamp_s, 'world', np.array([[x, 0.0, 1.0]]), np.array([[-speed_toward_mps, 0.0]]),
                             np.zeros((1, 2, 2)))


def test_the_verdict_slows_in_time_where_the_old_rule_went_inside_s_p_next_tick():
    from smartcell.core.safety.ssm import speed_scale_for
    model = StoppingModel.from_yaml(CONFIG / 'stopping.yaml')
    t = 100 * DT
    reference = cell_like_monitor()
    steps = model.steps(model.payload_fraction(reference.config.payload_kg), 0.5)
    # the old rule: T_r + one update period, v_h as estimated now (1.977 m/s); the link moves across
    old_inputs = dataclasses.replace(reference.config.effective_separation, reaction_time_s=0.31 + 0.04)
    low, high = 0.5, 5.0                       # the smallest separation at which it allowed full speed
    for _ in range(60):
        middle = 0.5 * (low + high)
        low, high = (low, middle) if speed_scale_for(middle, old_inputs, 1.977, 0.0, steps) >= 1.0 else (middle, high)
    x = high + 0.005 + 0.2 + 0.1               # + person radius + capsule radius
    separation_m = high + 0.005

    def next_tick_margin(monitor, scale):
        # one tick later: 2.3 m/s closer, v_h 2.0 m/s, the link turned 0.163 m/s toward the person
        return monitor.update(walker(t + DT, x - 2.3 * DT, 2.0), arm(t + DT, (0.163, 0.987, 0.0), scale),
                              t + DT).margin_m

    old = cell_like_monitor()
    old.update(walker(t, x, 1.977), arm(t, (0.0, 1.0, 0.0), 1.0), t)
    assert float(speed_scale_for(separation_m, old_inputs, 1.977, 0.0, steps)) == 1.0
    assert next_tick_margin(old, 1.0) < 0.0                     # what the evidence showed: inside S_p, moving
    new = cell_like_monitor()
    verdict = new.update(walker(t, x, 1.977), arm(t, (0.0, 1.0, 0.0), 1.0), t)
    assert 0.0 < verdict.speed_scale < 1.0 and 'look-ahead' in verdict.reason
    assert next_tick_margin(new, verdict.speed_scale) >= 0.0


@pytest.mark.parametrize('people_data', [
    PeopleObservation(3.4, 'world', np.array([[math.nan, 0.0, 1.0]])),
    PeopleObservation(3.4, 'world', np.array([[2.5, 0.0, 1.0]]), np.array([[math.nan, 0.0]]), np.zeros((1, 2, 2))),
])
def test_the_look_ahead_still_stops_on_doubt_and_floors_an_unknown_speed(people_data):
    monitor = cell_like_monitor()
    verdict = monitor.update(people_data, arm(3.4, (1.0, 0.0, 0.0), 1.0), 3.4)
    if np.isnan(people_data.positions_m).any():
        assert verdict.speed_scale == 0.0 and 'NaN' in verdict.reason
    else:               # a NaN velocity: no slower than a person known to approach at the floor speed
        assert verdict.human_speed_mps == pytest.approx(1.6)
        known = cell_like_monitor().update(walker(3.4, 2.5, 1.6), arm(3.4, (1.0, 0.0, 0.0), 1.0), 3.4)
        assert 0.0 < verdict.target_scale <= known.target_scale


def test_the_look_ahead_defaults_cover_the_chain_they_stand_for():
    from smartcell.core.safety.pipeline import VERDICT_TO_ARM_S
    from smartcell.core.sensors.people_tracking import TrackerConfig
    config = SafetyConfig()
    # L: at least the verdict-to-arm time the reaction budget counts, and the lockstep twin's one tick
    assert config.actuation_lag_s >= max(VERDICT_TO_ARM_S, DT)
    # a_h: the tracker's own acceleration model of a person at the same confidence as the speed bound
    assert config.human_accel_bound_mps2 >= safety.VELOCITY_BOUND_SIGMAS * TrackerConfig().accel_noise_mps2
    for name in ('actuation_lag_s', 'human_accel_bound_mps2'):
        with pytest.raises(ConfigError, match=name):
            SafetyConfig(**{name: 0.0})


# -- the mode cap and the arm's applied scale (job_demo: the PFL cap froze the arm at 0.04-0.2) ------
def test_rising_under_the_mode_cap_ramps_without_the_restart_interlock():
    monitor = started()
    monitor.set_mode(Mode.MANUAL_REDUCED, 3.1)
    run(monitor, 3.2, 6.0, lambda t: (3.0,), speed_x_mps=1.0)        # T1 cap 0.25 m/s: scale 0.25
    assert monitor.last_verdict.speed_scale == pytest.approx(0.25)
    # The programme slows to 0.5 m/s at full scale: the cap allows 0.5 at once. The robot's own speed
    # is what the cap bounds, so the scale ramps from the next cycle on, with no restart hold.
    t = 6.0 + DT
    verdict = monitor.update(people(t, 3.0), robot(t, 0.5, 0.25), t)
    assert verdict.target_scale == pytest.approx(0.5)
    assert verdict.speed_scale == pytest.approx(0.25 + monitor.config.ramp_up_per_s * DT)
    assert 'restart interlock' not in verdict.reason and 'under the mode cap' in verdict.reason
    # A person inside the protective distance still stops it, and leaving holds the restart interlock.
    t += DT
    assert monitor.update(people(t, 0.3), robot(t, 0.5, 0.25), t).speed_scale == 0.0
    t += DT
    held = monitor.update(people(t, 3.0), robot(t, 0.5, 0.0), t)
    assert held.speed_scale == 0.0 and 'restart interlock' in held.reason


def test_the_applied_scale_bound_follows_the_arms_ramp_down_not_the_command():
    from smartcell.core.safety.pipeline import AppliedScaleBound
    ramped, at_once = AppliedScaleBound(ramp_down_per_s=4.0), AppliedScaleBound()
    for bound in (ramped, at_once):
        for k in range(5):
            bound.at(k * DT)
            bound.commanded(1.0)
        assert bound.at(5 * DT) == 1.0
        bound.commanded(0.2)                    # the monitor drops the scale to 0.2 at once
    seen = []
    for k in range(6, 16):
        seen.append((ramped.at(k * DT), at_once.at(k * DT)))
        ramped.commanded(0.2)
        at_once.commanded(0.2)
    # The arm slows its scale at 4/s: 1.0 -> 0.2 takes 0.2 s, not one tick.
    assert [round(r, 4) for r, _ in seen[:6]] == [round(max(0.2, 1.0 - 4.0 * DT * k), 4) for k in range(1, 7)]
    assert seen[-1][0] == pytest.approx(0.2)
    assert all(once == 0.2 for _, once in seen)       # an arm that may drop at once: the command itself
    # A stamp going back (a restarted clock) takes the smallest recent command again.
    ramped.commanded(0.9)
    assert ramped.at(0.0) == pytest.approx(0.2)
    # A rising command counts once every recent one has risen (the arm keeps up a tick or three late).
    for k in range(1, 5):
        assert ramped.at(16 * DT + k * DT) == pytest.approx(0.2 if k < 4 else 0.9)
        ramped.commanded(0.9)
    with pytest.raises(ConfigError, match='ramp-down must be > 0'):
        AppliedScaleBound(ramp_down_per_s=0.0)
