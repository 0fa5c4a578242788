"""ISA-95 records: serialisation, deterministic ids, job-order validation (incl. hypothesis), event mapping."""
import json
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcell.core.mes.records import (
    ORDER_SCHEMA, Alarm, EquipmentState, JobOrder, JobResponse, JobTracker, OrderRejected, Record, SafetyEvent,
    Stream, is_chained, make_record, order_to_json, records_from_event, stream_class, validate_order)

KNOWN = ('bracket_a', 'bracket_b')
VALID = {'order_id': 'PO-1001', 'work_master': 'bracket_a', 'quantity': 20, 'priority': 3,
         'parameters': {'torque_nm': 4.5, 'label': 'x', 'inspect': True},
         'requested_start_s': 1_700_000_000, 'requested_end_s': 1_700_003_600.5}


def test_core_imports_no_ros_or_pybullet():
    code = ('import sys, smartcell.core.mes.records, smartcell.core.mes.oee, smartcell.core.mes.audit_trail, '
            'smartcell.core.mes.params;'
            'bad = [m for m in ("rclpy", "pybullet", "paho", "asyncua", "sqlite3") if m in sys.modules];'
            'print(bad); sys.exit(1 if bad else 0)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_valid_order_round_trip():
    order = validate_order(VALID, KNOWN)
    assert order == JobOrder('PO-1001', 'bracket_a', 20, 3, VALID['parameters'], 1.7e9, 1_700_003_600.5)
    again = validate_order(order_to_json(order), KNOWN)
    assert again == order
    assert validate_order({'order_id': 'a', 'work_master': 'bracket_b', 'quantity': 1}, KNOWN).priority == 5


@pytest.mark.parametrize('change,field_name,words', [
    ({'quantity': 0}, 'quantity', 'out of range'),
    ({'quantity': 100_001}, 'quantity', 'out of range'),
    ({'quantity': 5.0}, 'quantity', 'type float'),
    ({'quantity': '5'}, 'quantity', 'type str'),
    ({'quantity': True}, 'quantity', 'type bool'),
    ({'priority': 11}, 'priority', 'out of range'),
    ({'work_master': 'unknown_part'}, 'work_master', 'unknown work master'),
    ({'order_id': ''}, 'order_id', 'invalid'),
    ({'order_id': 'a b'}, 'order_id', 'invalid'),
    ({'order_id': 'x' * 65}, 'order_id', 'invalid'),
    ({'requested_start_s': float('nan')}, 'requested_start_s', 'not finite'),
    ({'requested_end_s': 1_699_999_999}, 'requested_end_s', 'must be after'),
    ({'parameters': {'torque_nm': float('inf')}}, 'parameters', 'torque_nm'),
    ({'parameters': {'nested': {'a': 1}}}, 'parameters', 'nested'),
    ({'parameters': [1, 2]}, 'parameters', 'type list'),
    ({'colour': 'red'}, 'colour', 'unknown field'),
])
def test_invalid_orders_name_field_and_accepted_values(change, field_name, words):
    with pytest.raises(OrderRejected) as info:
        validate_order({**VALID, **change}, KNOWN)
    assert info.value.field_name == field_name
    assert words in info.value.reason
    assert 'accepted' in info.value.reason or 'after' in info.value.reason


@pytest.mark.parametrize('missing', [k for k, rule in ORDER_SCHEMA.items() if rule.required])
def test_missing_required_field(missing):
    raw = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(OrderRejected, match=f'missing field {missing!r}'):
        validate_order(raw, KNOWN)


@pytest.mark.parametrize('raw', ['{not json', '[1, 2]', 'null', b'\xff\xfe', 42])
def test_not_an_object(raw):
    with pytest.raises(OrderRejected, match='JSON'):
        validate_order(raw, KNOWN)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
                           lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(max_size=5), children, max_size=3), max_leaves=5)


@settings(max_examples=300, deadline=None)
@given(field_name=st.sampled_from(sorted(ORDER_SCHEMA)), value=json_values)
def test_any_field_value_is_accepted_only_if_it_meets_the_schema(field_name, value):
    """Either a valid JobOrder with exactly that value comes back, or OrderRejected naming a reason."""
    raw = {**VALID, field_name: value}
    try:
        order = validate_order(raw, KNOWN)
    except OrderRejected as exc:
        assert exc.reason
        return
    got = getattr(order, field_name)
    if field_name == 'quantity':
        assert type(value) is int and 1 <= value <= 100_000
    if field_name == 'priority':
        assert type(value) is int and 1 <= value <= 10
    if field_name == 'work_master':
        assert value in KNOWN
    if isinstance(value, float):
        assert math.isfinite(value)
    assert got == value or (value is None and got is None) or float(got) == value


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_random_objects_never_crash_the_validator(raw):
    try:
        order = validate_order(raw, KNOWN)
    except OrderRejected as exc:
        assert isinstance(exc.reason, str) and exc.reason
    else:
        assert order.work_master in KNOWN and 1 <= order.quantity <= 100_000


def test_record_json_round_trip_and_deterministic_ids():
    body = JobResponse(order_id='PO-1', state='completed', produced=3, good=2, scrap=1, energy_j=12.5)
    first = make_record(body, 'cell-1', 12.0, source_id='evt-1')
    second = make_record(body, 'cell-1', 12.0, source_id='evt-1')
    other = make_record(body, 'cell-2', 12.0, source_id='evt-1')
    assert first.record_id == second.record_id != other.record_id
    assert make_record(body, 'cell-1', 12.0).record_id != make_record(body, 'cell-1', 12.0).record_id
    assert Record.from_json(first.to_json()) == first
    assert first.typed_body() == body
    assert first.stream == 'job_response' and is_chained(first.stream)
    assert not is_chained('telemetry')
    with pytest.raises(ValueError, match='unknown stream'):
        stream_class('nope')


def test_events_map_to_records_with_job_memory():
    tracker = JobTracker()
    tracker.remember(validate_order(VALID, KNOWN))
    events = [
        {'event_id': 'e1', 'type': 'job_accepted', 'stamp': 1.0, 'order_id': 'PO-1001'},
        {'event_id': 'e2', 'type': 'job_started', 'stamp': 2.0, 'order_id': 'PO-1001'},
        {'event_id': 'e3', 'type': 'state_change', 'stamp': 2.0, 'from': 'idle', 'to': 'running', 'reason': 'job'},
        {'event_id': 'e4', 'type': 'unit_complete', 'stamp': 30.0, 'order_id': 'PO-1001', 'unit': 1,
         'cycle_time_s': 28.0, 'good': True},
        {'event_id': 'e5', 'type': 'unit_complete', 'stamp': 62.0, 'order_id': 'PO-1001', 'unit': 2,
         'cycle_time_s': 32.0, 'good': False},
        {'event_id': 'e6', 'type': 'safety_stop', 'stamp': 63.0, 'reason': 'person in stop zone'},
        {'event_id': 'e7', 'type': 'alarm', 'stamp': 64.0, 'code': 'X1', 'severity': 'weird', 'text': 't'},
        {'event_id': 'e8', 'type': 'job_complete', 'stamp': 90.0, 'order_id': 'PO-1001', 'produced': 2,
         'good': 1, 'scrap': 1},
        {'event_id': 'e9', 'type': 'something_new', 'stamp': 91.0},
    ]
    energy = {'energy_j': 100.0, 'co2e_g': 0.5}
    records = [r for e in events for r in records_from_event(e, 'cell-1', tracker, energy)]
    kinds = [(r.stream, r.kind) for r in records]
    assert kinds == [('job_response', 'JobResponse'), ('job_response', 'JobResponse'),
                     ('equipment_state', 'EquipmentState'), ('unit', 'UnitRecord'), ('unit', 'UnitRecord'),
                     ('safety', 'SafetyEvent'), ('alarm', 'Alarm'), ('job_response', 'JobResponse')]
    final = records[-1].typed_body()
    assert final.state == 'completed' and final.work_master == 'bracket_a' and final.quantity == 20
    assert (final.produced, final.good, final.scrap) == (2, 1, 1)
    assert final.actual_start_s == 2.0 and final.actual_end_s == 90.0 and final.run_time_s == 88.0
    assert final.mean_cycle_time_s == pytest.approx(30.0)
    assert final.energy_j == pytest.approx(200.0) and final.co2e_g == pytest.approx(1.0)
    assert records[6].typed_body() == Alarm(code='X1', severity='critical', text='t')   # unknown -> most serious
    assert records[5].typed_body() == SafetyEvent(kind='safety_stop', reason='person in stop zone')
    assert records[2].typed_body() == EquipmentState(state='running', previous='idle', reason='job')
    # replaying the same events gives the same ids (idempotent re-send)
    replay = [r.record_id for e in events for r in records_from_event(e, 'cell-1', JobTracker(), energy)]
    assert replay == [r.record_id for r in records]
    assert len(set(replay)) == len(replay)
    assert all(r.cell_id == 'cell-1' for r in records)


def test_no_energy_means_none_not_zero():
    tracker = JobTracker()
    event = {'event_id': 'u', 'type': 'unit_complete', 'stamp': 1.0, 'order_id': 'A', 'unit': 1,
             'cycle_time_s': 1.0, 'good': True}
    (unit,) = records_from_event(event, 'c', tracker)
    assert unit.body['energy_j'] is None and tracker.responses['A'].energy_j is None
    assert json.loads(unit.to_json())['stream'] == Stream.UNIT.value
