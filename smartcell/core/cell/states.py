"""The cell state machine: one transition table, requests and facts, a history with reasons.

The CellController (smartcell.core.cell.controller) owns one CellStateMachine. Operator services
(std_srvs/Trigger) become
*request* events; safety verdicts, arm and job progress become *fact* events. A request the
table does not accept raises IllegalTransition naming the state and the event, and changes
nothing (the node answers success=False with that message).

Where a protective stop resumes to, and why:
  * PROTECTIVE_STOP -> RUNNING on SAFETY_CLEAR, automatically. A protective stop triggered by
    speed and separation monitoring (ISO 10218-2, ISO/TS 15066) may resume automatically once
    the separation is restored; the person walking away is the "reset".
  * EMERGENCY_STOP -> IDLE only on an explicit RESET; an emergency stop must never resume by
    itself (ISO 13850, ISO 10218-1), and after a reset the operator starts again deliberately.
  * FAULT -> IDLE only on RESET, for the same reason: someone must have looked at it.
  * A pause is an operator decision, so safety facts while PAUSED (or STARTING) are recorded but
    keep the state; entering RUNNING (RESUME, STARTED) while the safety stop is still active
    lands in PROTECTIVE_STOP, never in RUNNING with a person in the protective zone, and from
    there SAFETY_CLEAR resumes as usual. The arm obeys the safety verdict's speed scale in every
    state anyway; these states decide what the cell *asks* the arm to do.

Pure Python; no ROS.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable


class State(str, Enum):
    IDLE = 'IDLE'                        # no job running, robot at rest
    STARTING = 'STARTING'                # start requested: arm readiness / homing in progress
    RUNNING = 'RUNNING'                  # steps are dispatched to robot and person
    PAUSED = 'PAUSED'                    # operator pause: no new robot motion
    PROTECTIVE_STOP = 'PROTECTIVE_STOP'  # person in the protective zone / safety data in doubt
    EMERGENCY_STOP = 'EMERGENCY_STOP'    # e-stop: only RESET leaves it
    FAULT = 'FAULT'                      # arm or cell fault: only RESET leaves it
    STOPPING = 'STOPPING'                # finishing the current motion, then IDLE


class Event(str, Enum):
    # Requests (operator services).
    START = 'START'
    STOP = 'STOP'
    PAUSE = 'PAUSE'
    RESUME = 'RESUME'
    RESET = 'RESET'
    EMERGENCY_STOP = 'EMERGENCY_STOP'
    # Facts (what the cell observed).
    STARTED = 'STARTED'                  # arm ready, job loaded
    STOPPED = 'STOPPED'                  # arm at rest after a stop
    SAFETY_STOP = 'SAFETY_STOP'          # person in the protective zone, or safety data stale/missing
    SAFETY_CLEAR = 'SAFETY_CLEAR'        # protective zone clear and safety data fresh
    FAULT_DETECTED = 'FAULT_DETECTED'
    JOB_COMPLETE = 'JOB_COMPLETE'        # last step of the last unit done


REQUESTS: tuple[Event, ...] = (Event.START, Event.STOP, Event.PAUSE, Event.RESUME, Event.RESET,
                               Event.EMERGENCY_STOP)
FACTS: tuple[Event, ...] = tuple(e for e in Event if e not in REQUESTS)

# The supervisor's std_srvs/Trigger services and the request each one sends.
SERVICE_REQUESTS: dict[str, Event] = {
    'start': Event.START,
    'stop': Event.STOP,
    'pause': Event.PAUSE,
    'resume': Event.RESUME,
    'reset': Event.RESET,
    'emergency_stop': Event.EMERGENCY_STOP,
}

S, E = State, Event
TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.IDLE, E.START): S.STARTING,
    (S.STARTING, E.STARTED): S.RUNNING,
    (S.STARTING, E.STOP): S.STOPPING,
    (S.RUNNING, E.PAUSE): S.PAUSED,
    (S.RUNNING, E.STOP): S.STOPPING,
    (S.RUNNING, E.SAFETY_STOP): S.PROTECTIVE_STOP,
    (S.RUNNING, E.JOB_COMPLETE): S.STOPPING,
    (S.PAUSED, E.RESUME): S.RUNNING,
    (S.PAUSED, E.STOP): S.STOPPING,
    (S.PAUSED, E.JOB_COMPLETE): S.STOPPING,
    (S.PROTECTIVE_STOP, E.SAFETY_CLEAR): S.RUNNING,   # SSM protective stop: automatic resume
    (S.PROTECTIVE_STOP, E.PAUSE): S.PAUSED,
    (S.PROTECTIVE_STOP, E.STOP): S.STOPPING,
    (S.PROTECTIVE_STOP, E.JOB_COMPLETE): S.STOPPING,
    (S.STOPPING, E.STOPPED): S.IDLE,
    (S.STOPPING, E.JOB_COMPLETE): S.STOPPING,         # the last step ended while stopping: nothing to add
    (S.EMERGENCY_STOP, E.RESET): S.IDLE,              # never automatic
    (S.FAULT, E.RESET): S.IDLE,
}
# Facts that can arrive in any state are always accepted, so a callback never has to guess.
for _state in State:
    TRANSITIONS[(_state, E.EMERGENCY_STOP)] = S.EMERGENCY_STOP
    TRANSITIONS.setdefault((_state, E.SAFETY_STOP), _state)
    TRANSITIONS.setdefault((_state, E.SAFETY_CLEAR), _state)
    TRANSITIONS[(_state, E.FAULT_DETECTED)] = S.FAULT
# ... except that an emergency stop outranks a fault: it stays until RESET.
TRANSITIONS[(S.EMERGENCY_STOP, E.FAULT_DETECTED)] = S.EMERGENCY_STOP
del _state, S, E


class IllegalTransition(ValueError):
    """The event is not accepted in the current state; nothing changed."""

    def __init__(self, state: State, event: Event) -> None:
        accepted = sorted(e.value for (s, e) in TRANSITIONS if s == state and e in REQUESTS)
        super().__init__(f'{event.value} is not accepted in state {state.value}; '
                         f'requests accepted there: {", ".join(accepted) or "none"}')
        self.state = state
        self.event = event


@dataclass(frozen=True)
class Transition:
    time_s: float          # clock of the caller (sim or wall), s
    source: State
    event: Event
    target: State
    reason: str = ''
    follows: Event | None = None   # set when the table itself continued after `follows` (RUNNING -> stop)


class CellStateMachine:
    """Applies TRANSITIONS; keeps the latest safety fact so RESUME never lands in RUNNING unsafely."""

    def __init__(self, now_s: float = 0.0, history_limit: int = 1000) -> None:
        self._state = State.IDLE
        self._since_s = now_s
        self._safety_stop_active = False
        self._history: list[Transition] = []
        self._history_limit = history_limit
        self._callbacks: list[Callable[[Transition], None]] = []

    def add_callback(self, callback: Callable[[Transition], None]) -> None:
        """Called after every transition (state already entered), in registration order: the one
        place where side effects of transitions live (yasmin's add_transition_cb idea)."""
        self._callbacks.append(callback)

    @property
    def state(self) -> State:
        return self._state

    @property
    def since_s(self) -> float:
        """Time the current state was entered, s."""
        return self._since_s

    @property
    def safety_stop_active(self) -> bool:
        return self._safety_stop_active

    @property
    def history(self) -> tuple[Transition, ...]:
        """The last `history_limit` transitions, oldest first."""
        return tuple(self._history)

    def accepts(self, event: Event) -> bool:
        return (self._state, event) in TRANSITIONS

    def handle(self, event: Event, now_s: float, reason: str = '') -> Transition:
        """Apply `event`; raise IllegalTransition (and change nothing) when the table has no entry.

        Entering RUNNING while a safety stop is still active continues straight to
        PROTECTIVE_STOP; the returned transition is then that second one (both are in history).
        """
        event = Event(event)
        target = TRANSITIONS.get((self._state, event))
        if target is None:
            raise IllegalTransition(self._state, event)
        if event is Event.SAFETY_STOP:
            self._safety_stop_active = True
        elif event is Event.SAFETY_CLEAR:
            self._safety_stop_active = False
        transition = self._enter(target, event, now_s, reason)
        if target is State.RUNNING and self._safety_stop_active:
            transition = self._enter(TRANSITIONS[(State.RUNNING, Event.SAFETY_STOP)], Event.SAFETY_STOP, now_s,
                                     'safety stop still active on entering RUNNING', follows=event)
        return transition

    def request(self, service: str, now_s: float, reason: str = '') -> tuple[bool, str]:
        """A Trigger service call by name -> (success, message), as the node answers it."""
        event = SERVICE_REQUESTS.get(service)
        if event is None:
            return False, f'unknown service {service!r}; accepted: {", ".join(SERVICE_REQUESTS)}'
        source = self._state
        try:
            transition = self.handle(event, now_s, reason or f'service {service}')
        except IllegalTransition as exc:
            return False, str(exc)
        return True, f'{source.value} -> {transition.target.value}'

    def _enter(self, target: State, event: Event, now_s: float, reason: str,
               follows: Event | None = None) -> Transition:
        transition = Transition(now_s, self._state, event, target, reason, follows)
        if target is not self._state:
            self._since_s = now_s
        self._state = target
        self._history.append(transition)
        del self._history[:-self._history_limit]
        for callback in self._callbacks:
            callback(transition)
        return transition
