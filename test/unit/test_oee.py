"""OEE worked examples, computed by hand (numbers in the comments) and checked against compute_oee."""
import pytest

from smartcell.core.mes.oee import Loss, classify_stop, compute_oee, job_window, state_before

IDEAL = {'J1': 30.0, 'J2': 40.0}   # s per unit


def sc(stamp, frm, to, reason=''):
    return {'type': 'state_change', 'stamp': float(stamp), 'from': frm, 'to': to, 'reason': reason}


def units(order_id, first_stamp, count, bad=0, spacing=1.0):
    return [{'type': 'unit_complete', 'stamp': first_stamp + i * spacing, 'order_id': order_id, 'unit': i + 1,
             'cycle_time_s': 30.0, 'good': i >= bad} for i in range(count)]


def shift_events():
    """An 8 h shift (0..28800 s) with one of each loss."""
    return ([
        {'type': 'job_started', 'stamp': 0.0, 'order_id': 'J1'}, sc(0, 'idle', 'running'),
        sc(3600, 'running', 'fault', 'gripper'), sc(4500, 'fault', 'running'),               # fault 900 s
        {'type': 'slowdown', 'stamp': 5000.0, 'duration_s': 120.0, 'reason': 'person in warning zone'},
        sc(10000, 'running', 'protective_stop', 'person in stop zone'), sc(10300, 'protective_stop', 'running'),
        sc(14000, 'running', 'paused', 'waiting for operator to load parts'), sc(14600, 'paused', 'running'),
        {'type': 'job_complete', 'stamp': 20000.0, 'order_id': 'J1', 'produced': 500, 'good': 495, 'scrap': 5},
        sc(20000, 'running', 'idle', 'job complete'),
        {'type': 'job_started', 'stamp': 21200.0, 'order_id': 'J2'}, sc(21200, 'idle', 'running'),  # changeover 1200 s
        {'type': 'job_complete', 'stamp': 26000.0, 'order_id': 'J2', 'produced': 100, 'good': 90, 'scrap': 10},
        sc(26000, 'running', 'idle', 'no more orders'),                                       # other stop 2800 s
    ] + units('J1', 100.0, 500, bad=5, spacing=30.0) + units('J2', 21300.0, 100, bad=10, spacing=40.0))


def test_shift_worked_example():
    r = compute_oee(shift_events(), 0.0, 28800.0, IDEAL)
    # run = 28800 - 900 - 300 - 600 - 1200 - 2800 = 23000 s
    assert r.run_time_s == pytest.approx(23000.0)
    assert r.losses.fault_s == pytest.approx(900.0)
    assert r.losses.safety_stop_s == pytest.approx(300.0)
    assert r.losses.starvation_person_s == pytest.approx(600.0)
    assert r.losses.changeover_s == pytest.approx(1200.0)
    assert r.losses.other_stop_s == pytest.approx(2800.0)
    assert r.losses.slowdown_s == pytest.approx(120.0)
    # ideal = 500 x 30 + 100 x 40 = 19000 s; A = 23000/28800; P = 19000/23000; Q = 585/600
    assert (r.units, r.good, r.scrap) == (600, 585, 15)
    assert r.availability == pytest.approx(23000 / 28800)
    assert r.performance == pytest.approx(19000 / 23000)
    assert r.quality == pytest.approx(0.975)
    assert r.oee == pytest.approx(0.6432291666, rel=1e-9)   # 19000/28800 x 0.975
    assert r.losses.speed_loss_s == pytest.approx(4000.0)
    assert r.losses.quality_loss_s == pytest.approx(5 * 30 + 10 * 40)
    assert not r.performance_over_100 and r.warnings == ()


def test_job_worked_example():
    events = shift_events()
    start, end = job_window(events, 'J2')
    assert (start, end) == (21200.0, 26000.0)
    r = compute_oee(events, start, end, IDEAL, order_id='J2', initial_state=state_before(events, start))
    # A = 4800/4800, P = 100 x 40 / 4800 = 0.8333, Q = 90/100 -> OEE 0.75
    assert r.availability == pytest.approx(1.0)
    assert r.performance == pytest.approx(4000 / 4800)
    assert r.quality == pytest.approx(0.9)
    assert r.oee == pytest.approx(0.75)


def test_performance_above_100_percent_is_flagged_not_clipped():
    events = [sc(0, 'idle', 'running')] + units('J1', 10.0, 25, spacing=20.0)
    r = compute_oee(events, 0.0, 600.0, 30.0)
    # 25 units x 30 s = 750 s of ideal time in 600 s of running: P = 1.25
    assert r.performance == pytest.approx(1.25)
    assert r.oee == pytest.approx(1.25)
    assert r.performance_over_100
    assert any('100 %' in w for w in r.warnings)
    assert r.losses.speed_loss_s == pytest.approx(-150.0)


def test_state_before_window_is_used_and_boundary_units_counted_once():
    events = [sc(0, 'idle', 'running'), sc(50, 'running', 'fault', 'x')] + units('J1', 100.0, 2, spacing=100.0)
    # units at 100 and 200; windows (0,100] and (100,200]: one unit each, none twice
    first = compute_oee(events, 0.0, 100.0, 10.0)
    second = compute_oee(events, 100.0, 200.0, 10.0, initial_state=state_before(events, 100.0))
    assert first.units == 1 and second.units == 1
    assert second.losses.fault_s == pytest.approx(100.0) and second.run_time_s == 0.0
    assert any('no run time' in w for w in second.warnings)


@pytest.mark.parametrize('state,reason,between,expected', [
    ('protective_stop', '', False, Loss.SAFETY_STOP),
    ('emergency_stop', 'operator pressed e-stop', True, Loss.SAFETY_STOP),   # state wins over words
    ('fault', '', True, Loss.FAULT),
    ('paused', 'Waiting for Operator', False, Loss.STARVATION_PERSON),
    ('idle', '', True, Loss.CHANGEOVER),
    ('idle', '', False, Loss.OTHER_STOP),
    ('some_new_state', '', False, Loss.OTHER_STOP),
])
def test_stop_classification_table(state, reason, between, expected):
    assert classify_stop(state, reason, between) is expected


@pytest.mark.parametrize('kwargs,match', [
    (dict(window_start_s=10.0, window_end_s=10.0, ideal_cycle_s=1.0), 'positive length'),
    (dict(window_start_s=0.0, window_end_s=10.0, ideal_cycle_s=0.0), 'ideal cycle time must be > 0'),
    (dict(window_start_s=0.0, window_end_s=10.0, ideal_cycle_s={'other': 1.0}), "order 'J1'"),
])
def test_bad_inputs_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        compute_oee(units('J1', 1.0, 1), **kwargs)


def test_safety_summary_of_the_shift():
    from smartcell.core.mes.oee import safety_summary
    events = shift_events() + [sc(27000, 'idle', 'emergency_stop', 'e-stop'), sc(27100, 'emergency_stop', 'idle')]
    result = compute_oee(events, 0.0, 28800.0, IDEAL)
    summary = safety_summary(events, result)
    assert (summary.safety_stops, summary.emergency_stops, summary.slowdowns) == (0, 1, 1)
    assert summary.stop_time_s == pytest.approx(300.0 + 100.0)      # protective stop + e-stop
    assert summary.slowdown_time_s == pytest.approx(120.0)
    assert (summary.window_start_s, summary.window_end_s) == (0.0, 28800.0)
