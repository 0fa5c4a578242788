"""The cell state machine: every (state, event) pair of the table, legal or not."""
import itertools

import pytest

from smartcell.core.cell.states import (FACTS, REQUESTS, SERVICE_REQUESTS, TRANSITIONS, CellStateMachine, Event,
                                 IllegalTransition, State)

# The expected table, written out independently of the module so a wrong entry fails here.
S, E = State, Event
EXPECTED_REQUESTS = {
    (S.IDLE, E.START): S.STARTING,
    (S.STARTING, E.STOP): S.STOPPING,
    (S.RUNNING, E.PAUSE): S.PAUSED,
    (S.RUNNING, E.STOP): S.STOPPING,
    (S.PAUSED, E.RESUME): S.RUNNING,
    (S.PAUSED, E.STOP): S.STOPPING,
    (S.PROTECTIVE_STOP, E.PAUSE): S.PAUSED,
    (S.PROTECTIVE_STOP, E.STOP): S.STOPPING,
    (S.EMERGENCY_STOP, E.RESET): S.IDLE,
    (S.FAULT, E.RESET): S.IDLE,
    **{(state, E.EMERGENCY_STOP): S.EMERGENCY_STOP for state in State},
}
EXPECTED_FACTS = {
    (S.STARTING, E.STARTED): S.RUNNING,
    (S.STOPPING, E.STOPPED): S.IDLE,
    (S.RUNNING, E.JOB_COMPLETE): S.STOPPING,
    (S.PAUSED, E.JOB_COMPLETE): S.STOPPING,
    (S.PROTECTIVE_STOP, E.JOB_COMPLETE): S.STOPPING,
    (S.STOPPING, E.JOB_COMPLETE): S.STOPPING,
    (S.RUNNING, E.SAFETY_STOP): S.PROTECTIVE_STOP,
    (S.PROTECTIVE_STOP, E.SAFETY_CLEAR): S.RUNNING,
    **{(state, E.FAULT_DETECTED): S.FAULT for state in State if state is not S.EMERGENCY_STOP},
    (S.EMERGENCY_STOP, E.FAULT_DETECTED): S.EMERGENCY_STOP,
}
for state in State:   # safety facts are accepted everywhere; outside the pairs above they change nothing
    EXPECTED_FACTS.setdefault((state, E.SAFETY_STOP), state)
    EXPECTED_FACTS.setdefault((state, E.SAFETY_CLEAR), state)
EXPECTED = {**EXPECTED_REQUESTS, **EXPECTED_FACTS}


def machine_in(state: State) -> CellStateMachine:
    """Drive a fresh machine into `state` through legal events only."""
    paths = {
        S.IDLE: [],
        S.STARTING: [E.START],
        S.RUNNING: [E.START, E.STARTED],
        S.PAUSED: [E.START, E.STARTED, E.PAUSE],
        S.PROTECTIVE_STOP: [E.START, E.STARTED, E.SAFETY_STOP],
        S.STOPPING: [E.START, E.STARTED, E.STOP],
        S.EMERGENCY_STOP: [E.EMERGENCY_STOP],
        S.FAULT: [E.FAULT_DETECTED],
    }
    machine = CellStateMachine(now_s=0.0)
    for t, event in enumerate(paths[state]):
        machine.handle(event, now_s=float(t))
    assert machine.state is state
    return machine


def test_table_is_exactly_the_expected_one():
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize('state,event', list(itertools.product(State, Event)))
def test_every_pair(state, event):
    machine = machine_in(state)
    before = machine.history
    if (state, event) in EXPECTED:
        transition = machine.handle(event, now_s=100.0, reason='test')
        assert machine.state is EXPECTED[(state, event)]
        assert transition.source is state and transition.event is event and transition.time_s == 100.0
        assert machine.history[-1] == transition and transition.reason == 'test'
    else:
        with pytest.raises(IllegalTransition) as err:
            machine.handle(event, now_s=100.0)
        assert state.value in str(err.value) and event.value in str(err.value)
        assert machine.state is state and machine.history == before


@pytest.mark.parametrize('state', list(State))
def test_emergency_stop_from_anywhere_then_only_reset(state):
    machine = machine_in(state)
    machine.handle(E.EMERGENCY_STOP, now_s=50.0, reason='button')
    for event in REQUESTS:
        if event not in (E.RESET, E.EMERGENCY_STOP):
            assert not machine.accepts(event)
    for event in FACTS:
        if machine.accepts(event):
            machine.handle(event, now_s=51.0)
        assert machine.state is S.EMERGENCY_STOP
    machine.handle(E.RESET, now_s=52.0)
    assert machine.state is S.IDLE


def test_protective_stop_resumes_automatically_but_not_into_an_active_stop():
    machine = machine_in(S.RUNNING)
    machine.handle(E.SAFETY_STOP, now_s=10.0, reason='person at 0.4 m')
    assert machine.state is S.PROTECTIVE_STOP
    machine.handle(E.SAFETY_CLEAR, now_s=12.0)
    assert machine.state is S.RUNNING
    # Paused, a person walks in; resuming must not reach RUNNING while the stop is active.
    machine.handle(E.PAUSE, now_s=13.0)
    machine.handle(E.SAFETY_STOP, now_s=14.0)
    assert machine.state is S.PAUSED and machine.safety_stop_active
    transition = machine.handle(E.RESUME, now_s=15.0)
    assert machine.state is S.PROTECTIVE_STOP and transition.target is S.PROTECTIVE_STOP
    assert [t.target for t in machine.history[-2:]] == [S.RUNNING, S.PROTECTIVE_STOP]
    machine.handle(E.SAFETY_CLEAR, now_s=16.0)
    assert machine.state is S.RUNNING


def test_started_while_safety_stop_active_goes_to_protective_stop():
    machine = CellStateMachine()
    machine.handle(E.SAFETY_STOP, now_s=0.5)
    machine.handle(E.START, now_s=1.0)
    machine.handle(E.SAFETY_STOP, now_s=1.5)
    assert machine.state is S.STARTING              # start-up continues; the arm obeys the verdict
    machine.handle(E.STARTED, now_s=2.0)
    assert machine.state is S.PROTECTIVE_STOP
    machine.handle(E.SAFETY_CLEAR, now_s=3.0)
    assert machine.state is S.RUNNING


def test_service_requests_answer_like_trigger():
    machine = CellStateMachine()
    assert set(SERVICE_REQUESTS.values()) == set(REQUESTS)
    ok, message = machine.request('start', now_s=1.0)
    assert ok and message == 'IDLE -> STARTING'
    ok, message = machine.request('resume', now_s=2.0)
    assert not ok and 'RESUME' in message and 'STARTING' in message and machine.state is S.STARTING
    ok, message = machine.request('jump', now_s=3.0)
    assert not ok and "'jump'" in message


def test_history_is_bounded_and_since_tracks_state_entry():
    machine = CellStateMachine(history_limit=3)
    for t in range(10):
        machine.handle(E.SAFETY_STOP if t % 2 else E.SAFETY_CLEAR, now_s=float(t))
    assert len(machine.history) == 3 and machine.history[-1].time_s == 9.0
    assert machine.since_s == 0.0          # self-loops do not re-enter IDLE
    machine.handle(E.START, now_s=20.0)
    assert machine.since_s == 20.0
