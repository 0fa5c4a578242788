"""The cell's lifecycle, tested on the ROS-free CellController (the supervisor node only converts)."""
from __future__ import annotations

import itertools
import math
import json
from pathlib import Path

import numpy as np
import pytest

from smartcell.core.cell.controller import CELL_LEVEL, REQUESTS, CellController, JointSample, Level
from smartcell.core.cell.orders import OrderBook
from smartcell.core.cell.states import TRANSITIONS, Event, State
from smartcell.core.node_params import SUPERVISOR
from smartcell.core.safety.monitor import Mode, PeopleObservation, SafetyState
from smartcell.core.tasks.recipe import load_recipe

CONFIG = Path(__file__).resolve().parents[2] / 'config'
HOME = np.array([0.0, -1.571, 1.571, -1.571, -1.571, 0.0])
FAR = (4.0, 3.0)          # a person well outside the warning zone (m, world)
DT = 1.0 / 30.0


def controller(**overrides) -> CellController:
    params = {**SUPERVISOR.defaults(), 'robot_base_xyz_yaw': [0.0, 0.0, 0.75, 0.0], 'lockstep': True, **overrides}
    return CellController.from_params(params, CONFIG / 'stopping.yaml', CONFIG / 'body_regions.yaml',
                                      CONFIG / 'motions.yaml', lambda job: load_recipe(CONFIG / f'{job}.yaml'))


class Run:
    """Drives a controller tick by tick with a person and an ideal arm that reaches each target."""

    def __init__(self, cell: CellController) -> None:
        self.cell = cell
        self.t = 0.0
        self.q = HOME.copy()
        self.target: np.ndarray | None = None
        self.person = FAR
        self.outputs = []
        self.displays: dict[str, dict] = {}

    def tick(self, moving: bool = False) -> None:
        self.t += DT
        qd = np.full(6, 0.5) if moving else np.zeros(6)
        people = PeopleObservation(self.t, 'world', np.array([[*self.person, 0.0]]))
        self.record(self.cell.on_cycle(people, JointSample(self.t, self.q.copy(), qd), self.t))

    def record(self, output) -> None:
        self.outputs.append(output)
        if output.motion is not None:
            self.target = np.array(output.motion.positions_rad)
        for topic, payload in output.displays:
            self.displays[topic] = dict(payload)

    def arrive(self) -> None:
        if self.target is not None:
            self.q = self.target.copy()

    def advance(self) -> np.ndarray | None:
        """One tick with the arm reaching its target; the new target when a motion was sent."""
        before = self.target
        self.tick()
        self.arrive()
        return self.target if self.target is not before else None

    def run(self, seconds: float) -> None:
        for _ in range(int(seconds / DT)):
            self.tick()
            self.arrive()

    def request(self, name: str):
        output = self.cell.request(name, self.t)
        self.record(output)
        return output

    def events(self, kind: str) -> list[dict]:
        return [dict(e.fields) for o in self.outputs for e in o.events if e.type == kind]


def started(**overrides) -> Run:
    run = Run(controller(**overrides))
    run.run(1.5)                       # restart interlock: hold, then ramp
    assert run.request('start').success
    run.run(2.0)
    assert run.cell.state is State.RUNNING
    return run


@pytest.mark.parametrize('state, request_name', list(itertools.product(State, REQUESTS)))
def test_every_request_in_every_state_follows_the_table(state, request_name):
    """The controller answers each (state, request) pair exactly as the transition table says."""
    run = Run(controller())
    run.cell.cell._state = state       # put the machine in the state under test
    expected = TRANSITIONS.get((state, REQUESTS[request_name]))
    answer = run.request(request_name)
    assert answer.success is (expected is not None), answer.message
    if expected is None:
        assert run.cell.state is state and request_name.upper() in answer.message.upper()


@pytest.mark.parametrize('hold_in', ['running', 'paused', 'protective_stop'])
def test_stop_reaches_idle_once_the_arm_is_at_rest(hold_in):
    run = started()
    if hold_in == 'paused':
        assert run.request('pause').success
    elif hold_in == 'protective_stop':
        run.person = (0.3, 0.3)
        run.run(0.5)
        assert run.cell.state is State.PROTECTIVE_STOP
    assert run.request('stop').success
    run.tick(moving=True)              # still moving: not yet idle
    assert run.cell.state in (State.STOPPING, State.IDLE)
    if hold_in != 'protective_stop':
        assert run.cell.state is State.STOPPING
    run.arrive()
    run.run(0.5)
    assert run.cell.state is State.IDLE
    assert run.request('reset').success is False        # nothing to reset from IDLE
    assert run.request('start').success                 # and the cell starts again


def test_abort_during_a_handover_restores_the_mode_and_clears_the_displays():
    run = started(job='job_demo', units=1, handover_presence_m=3.0)
    run.person = (0.9, 0.6)            # at the table, where the part is handed over
    for _ in range(int(60 / DT)):
        run.tick()
        run.arrive()
        if run.cell.safety.mode is Mode.COLLABORATIVE:
            break
    assert run.cell.safety.mode is Mode.COLLABORATIVE, 'no handover step reached'
    assert run.displays['robot/intent'].get('handover') is True
    assert run.request('stop').success
    run.run(0.5)
    assert run.cell.state is State.IDLE
    assert run.cell.safety.mode is Mode.AUTOMATIC and run.cell.safety.last_verdict.mode is Mode.AUTOMATIC
    for topic in ('robot/intent', 'operator/current_step', 'operator/next_step'):
        assert run.displays[topic] == {}, topic
    assert run.events('job_aborted') and run.events('job_aborted')[0]['produced'] == 0
    assert run.request('emergency_stop').success and run.request('reset').success
    run.run(1.0)
    assert run.cell.safety.last_verdict.mode is Mode.AUTOMATIC


def test_emergency_stop_latches_until_reset_and_never_resumes_by_itself():
    run = started()
    assert run.request('emergency_stop').success
    assert run.cell.safety.last_verdict.state is SafetyState.EMERGENCY_STOP
    run.run(2.0)
    assert run.cell.state is State.EMERGENCY_STOP and run.cell.safety.last_verdict.speed_scale == 0.0
    assert run.request('start').success is False
    assert run.request('reset').success
    assert run.cell.state is State.IDLE
    run.run(3.0)                       # hold 0.5 s, then the ramp at 0.5/s
    assert run.cell.safety.last_verdict.state is SafetyState.NORMAL


@pytest.mark.parametrize('state', list(State))
def test_the_diagnostic_level_of_every_state(state):
    run = Run(controller())
    run.run(1.0)
    run.cell.cell._state = state
    cell_report = run.cell.diagnostics(run.t)[1]
    assert cell_report.level is CELL_LEVEL.get(state, Level.OK)
    assert cell_report.level is (Level.ERROR if state in (State.FAULT, State.EMERGENCY_STOP) else
                                 Level.WARN if state is State.PROTECTIVE_STOP else Level.OK)


def test_events_carry_a_gapless_sequence_and_the_configured_cell_id():
    run = started(cell_id='cell-07')
    run.request('pause')
    run.request('resume')
    seqs = [e.seq for o in run.outputs for e in o.events]
    assert seqs == list(range(1, len(seqs) + 1))
    record = run.outputs[-1].events[-1].as_record(run.cell.config.cell_id, 'x')
    assert record['cell_id'] == 'cell-07'
    assert json.loads(json.dumps(record)) == record


def test_reselecting_the_mode_is_not_an_event_and_a_change_is_not_a_stop():
    run = started()
    same = run.cell.set_mode(Mode.AUTOMATIC, run.t)
    assert same.success and same.events == () and same.verdict is None
    changed = run.cell.set_mode(Mode.MANUAL_REDUCED, run.t)
    kinds = [e.type for e in changed.events]
    assert 'mode_change' in kinds and 'safety_stop' not in kinds
    assert run.cell.state is State.RUNNING


def test_a_stray_input_is_a_protective_stop_with_an_error_diagnostic():
    run = started()
    output = run.cell.on_input_refused('2 publishers on humans (/scanner, /stranger)', run.t)
    assert output.verdict.state is SafetyState.PROTECTIVE_STOP and output.verdict.speed_scale == 0.0
    assert run.cell.state is State.PROTECTIVE_STOP
    safety = run.cell.diagnostics(run.t)[0]
    assert safety.level is Level.ERROR and '/stranger' in safety.message


def test_nan_joint_states_stop_the_arm_with_the_reason():
    run = started()
    run.t += DT
    q = HOME.copy()
    q[2] = float('nan')
    output = run.cell.on_cycle(PeopleObservation(run.t, 'world', np.array([[*FAR, 0.0]])),
                               JointSample(run.t, q, np.zeros(6)), run.t)
    assert output.verdict.speed_scale == 0.0 and 'NaN' in output.verdict.reason
    assert run.cell.state is State.PROTECTIVE_STOP


def test_a_people_stamp_from_the_future_never_hides_later_data():
    run = started(lockstep=False)
    run.t += DT
    ahead = PeopleObservation(run.t + 5.0, 'world', np.empty((0, 3)))
    run.cell.on_cycle(ahead, JointSample(run.t, HOME, np.zeros(6)), run.t)
    run.person = (0.3, 0.3)            # the real scanner sees a person right at the robot
    run.tick()
    assert run.cell.safety.last_verdict.speed_scale == 0.0


@pytest.mark.parametrize('raw, words', [
    ('{not json', 'unreadable'), ('[1, 2]', 'JSON object'), ('{"order_id": "o1"}', 'work_master'),
    ('{"order_id": "o1", "work_master": "demo", "quantity": Infinity}', 'unreadable'),
    ('{"order_id": "o1", "work_master": "demo", "quantity": 0}', 'quantity'),
    ('{"order_id": "o1", "work_master": "demo", "quantity": 99999999}', 'quantity'),
    ('{"order_id": "o1", "work_master": {"a": 1}, "quantity": 1}', 'work_master'),
    ('{"order_id": "o1", "work_master": "nosuch", "quantity": 1}', 'unknown product')])
def test_bad_orders_are_rejected_by_name_and_change_nothing(raw, words):
    run = Run(controller())
    output = run.cell.on_order(raw, 0.0)
    assert output.success is False and words in output.message
    rejected = [e for e in output.events if e.type == 'job_rejected']
    assert rejected and (rejected[0].fields['order_id'] or rejected[0].fields['received'])
    assert run.cell.state is State.IDLE and run.cell.orders.next_waiting() is None


def test_orders_queue_run_in_turn_and_a_waiting_one_can_be_cancelled():
    run = Run(controller())
    for order_id in ('o1', 'o2', 'o3'):
        assert run.cell.on_order(json.dumps({'order_id': order_id, 'work_master': 'demo', 'quantity': 1}), 0.0).success
    assert run.cell.on_order(json.dumps({'order_id': 'o1', 'work_master': 'demo', 'quantity': 1}), 0.0).success is False
    assert run.cell.cancel_order('o2', 0.0).success
    run.run(1.5)
    assert run.request('start').success
    assert run.cell.orders.state_of('o1') == 'running' and run.cell.orders.state_of('o3') == 'waiting'
    assert run.cell.cancel_order('o1', run.t).success is False        # running: abort with stop instead
    assert run.request('stop').success
    run.run(0.5)
    assert run.cell.orders.state_of('o1') == 'aborted' and run.cell.orders.state_of('o2') == 'cancelled'


def test_a_large_order_is_planned_in_batches():
    """100000 units: accepting and starting it plans only plan_horizon_units units."""
    run = Run(controller(plan_horizon_units=2, max_order_units=100000))
    assert run.cell.on_order(json.dumps({'order_id': 'big', 'work_master': 'demo', 'quantity': 100000}), 0.0).success
    run.run(1.5)
    assert run.request('start').success
    assert run.cell.runner.units == 2


def test_duplicates_survive_a_restart_through_the_store(tmp_path):
    from smartcell.io.order_store import SqliteOrderStore
    store = SqliteOrderStore(tmp_path / 'orders.sqlite')
    first = Run(controller())
    first.cell.orders = OrderBook(store=store)
    assert first.cell.on_order(json.dumps({'order_id': 'o1', 'work_master': 'demo', 'quantity': 1}), 0.0).success
    again = OrderBook(store=SqliteOrderStore(tmp_path / 'orders.sqlite'))
    second = Run(controller())
    second.cell.orders = again
    assert second.cell.on_order(json.dumps({'order_id': 'o1', 'work_master': 'demo', 'quantity': 1}),
                                0.0).success is False
    assert again.state_of('o1') == 'waiting'


def test_every_event_of_the_table_is_reachable():
    assert {e for (_, e) in TRANSITIONS} == set(Event)


def test_nobody_in_sight_during_a_job_hands_either_steps_to_the_robot_and_back():
    run = started(job='job_demo', units=2, person_absent_s=2.0)
    runner = run.cell.runner
    assert runner is not None and runner.human_present
    cell = run.cell
    for _ in range(int(3.0 / DT)):                 # the scanner sees nobody for 3 s
        run.t += DT
        run.record(cell.on_cycle(PeopleObservation(run.t, 'world', np.empty((0, 3))),
                                 JointSample(run.t, run.q.copy(), np.zeros(6)), run.t))
    assert run.events('person_absent') and not cell.runner.human_present
    run.tick()                                     # somebody is back
    assert run.events('person_present') and cell.runner.human_present


def test_a_clock_reset_stops_the_cell_and_re_arms_it_on_the_new_time():
    run = started()
    assert run.cell.safety.last_verdict.speed_scale > 0.0
    run.t = 0.5                                    # the twin restarted: sim time starts again
    run.tick()
    assert run.cell.safety.last_verdict.speed_scale == 0.0
    assert 'clock jumped back' in run.cell.safety.last_verdict.reason and run.events('clock_jump')
    assert run.cell.state is State.PROTECTIVE_STOP
    run.run(4.0)                                   # fresh data on the new timeline: hold, ramp, resume
    assert run.cell.state is State.RUNNING and run.cell.safety.last_verdict.speed_scale == 1.0


def started_at_first_step(**overrides) -> Run:
    """A job started with the arm never arriving: the robot stays at its first step (a pick, no handover)."""
    run = Run(controller(**overrides))
    run.run(1.5)
    assert run.request('start').success
    return run


def hold(run: Run, seconds: float, people: np.ndarray) -> None:
    for _ in range(int(seconds / DT)):
        run.t += DT
        run.record(run.cell.on_cycle(PeopleObservation(run.t, 'world', people),
                                     JointSample(run.t, run.q.copy(), np.zeros(6)), run.t))


def test_a_person_at_the_shared_workspace_is_collaboration_not_an_intrusion():
    run = started_at_first_step(job='job_demo', units=2, collaborative_regions_xyr=[1.2, 0.0, 0.5])
    hold(run, 1.0, np.array([[1.25, 0.05, 0.0]]))          # working at the assembly station
    assert run.cell.intent.get('handover') is False
    assert run.cell.safety.mode is Mode.COLLABORATIVE
    assert run.events('mode_change')[-1]['reason'] == 'person at a shared workspace'
    assert 'safety_stop' not in [e.type for o in run.outputs[-20:] for e in o.events]
    hold(run, 1.0, np.array([[2.5, 1.5, 0.0]]))            # somewhere else: separation monitoring again
    assert run.cell.safety.mode is Mode.AUTOMATIC


def test_shared_workspaces_need_everyone_inside_and_never_override_t1():
    run = started_at_first_step(job='job_demo', units=2, collaborative_regions_xyr=[1.2, 0.0, 0.5])
    hold(run, 1.0, np.array([[1.2, 0.0, 0.0], [2.0, 1.5, 0.0]]))     # one inside, one walking by
    assert run.cell.safety.mode is Mode.AUTOMATIC
    assert run.cell.set_mode(Mode.MANUAL_REDUCED, run.t).success
    hold(run, 1.0, np.array([[1.2, 0.0, 0.0]]))
    assert run.cell.safety.mode is Mode.MANUAL_REDUCED
    run_without = started_at_first_step(job='job_demo', units=2)          # no workspace declared
    hold(run_without, 1.0, np.array([[1.2, 0.0, 0.0]]))
    assert run_without.cell.safety.mode is Mode.AUTOMATIC


@pytest.mark.parametrize('regions', [[1.0, 2.0], [0.0, 0.0, -1.0], [0.0, float('nan'), 1.0]])
def test_bad_shared_workspaces_are_refused(regions):
    from smartcell.core.params import ConfigError
    with pytest.raises(ConfigError, match='collaborative_regions_xyr'):
        controller(collaborative_regions_xyr=regions)


def test_the_edge_of_a_shared_workspace_does_not_flip_the_mode_every_cycle():
    run = started_at_first_step(job='job_demo', units=2, collaborative_regions_xyr=[1.2, 0.0, 0.5])
    hold(run, 0.5, np.array([[1.2, 0.0, 0.0]]))
    assert run.cell.safety.mode is Mode.COLLABORATIVE
    before = len(run.events('mode_change'))
    for k in range(30):                                    # tracking noise around the edge (0.5 m)
        hold(run, DT, np.array([[1.2 + (0.48 if k % 2 else 0.55), 0.0, 0.0]]))
    # Out at the edge, once (separation monitoring errs early), and not back in on the noise.
    assert len(run.events('mode_change')) == before + 1 and run.cell.safety.mode is Mode.AUTOMATIC
    for k in range(30):                                    # noise around the way in (0.25 m inside the edge)
        hold(run, DT, np.array([[1.2 + (0.2 if k % 2 else 0.3), 0.0, 0.0]]))
    assert len(run.events('mode_change')) == before + 2 and run.cell.safety.mode is Mode.COLLABORATIVE


def test_the_bare_cycle_collaborates_at_a_shared_workspace_too():
    run = started(collaborative_regions_xyr=[1.2, 0.0, 0.5])           # no job: the pick-and-place cycle
    assert run.cell.runner is None
    hold(run, 1.0, np.array([[1.25, 0.05, 0.0]]))
    assert run.cell.safety.mode is Mode.COLLABORATIVE
    assert run.events('mode_change')[-1]['reason'] == 'person at a shared workspace'
    hold(run, 1.0, np.array([[2.5, 1.5, 0.0]]))
    assert run.cell.safety.mode is Mode.AUTOMATIC
    assert run.request('stop').success
    run.run(1.0)
    hold(run, 0.5, np.array([[1.25, 0.05, 0.0]]))                      # idle: no collaboration to choose
    assert run.cell.state is State.IDLE and run.cell.safety.mode is Mode.AUTOMATIC


def test_a_person_with_no_step_is_not_away_however_long_the_robot_takes():
    # The robot never arrives at its first step: the person, waiting out of view, gets nothing to do.
    run = started_at_first_step(job='job_demo', units=1, person_absent_s=2.0)
    hold(run, 10.0, np.empty((0, 3)))
    assert run.cell.human_step is None
    assert not run.events('person_absent') and run.cell.runner.human_present


def test_a_person_on_their_own_step_out_of_view_is_not_away_until_it_should_be_over():
    run = started_at_first_step(job='job_gearbox', units=1, person_absent_s=2.0)
    run.tick()
    step = run.cell.human_step
    assert step is not None and run.cell.runner.recipe.by_id[step[1]].station == 'operator_bench'
    nominal_s = run.cell.runner.recipe.by_id[step[1]].duration_s('human')   # at the bench, outside the fence
    hold(run, nominal_s - 0.5, np.empty((0, 3)))                      # unseen, but within the step's time
    assert not run.events('person_absent') and run.cell.runner.human_present
    hold(run, 3.0, np.empty((0, 3)))                                  # nominal end + 2 s: away
    assert run.events('person_absent') and not run.cell.runner.human_present
    # Their own step is shown again; acknowledging it is their word that they are back.
    hold(run, DT, np.empty((0, 3)))
    assert run.cell.human_step is not None
    done = run.cell.on_operator_done(run.t)
    run.record(done)
    assert done.success and run.events('person_present') and run.cell.runner.human_present


def _started_with(recipe_document: dict, **overrides) -> Run:
    from smartcell.core.tasks.recipe import recipe_from_dict
    recipe = recipe_from_dict(recipe_document)
    params = {**SUPERVISOR.defaults(), 'robot_base_xyz_yaw': [0.0, 0.0, 0.75, 0.0], 'lockstep': True,
              'job': recipe.job, 'units': 1, 'collaborative_regions_xyr': [1.2, 0.0, 0.6], **overrides}
    run = Run(CellController.from_params(params, CONFIG / 'stopping.yaml', CONFIG / 'body_regions.yaml',
                                         CONFIG / 'motions.yaml', lambda job: recipe))
    run.run(1.5)
    assert run.request('start').success
    return run


def _pose_names(run: Run, targets) -> list[str]:
    """The motions.yaml names of successive motion targets."""
    return [next(n for n, q in run.cell.motions.configurations.items() if np.allclose(q, target))
            for target in targets]


def test_an_arm_with_no_step_left_parks_away_from_the_shared_station():
    from smartcell.core.cell.controller import HANDOVER_POSE, PARK_POSE
    run = _started_with({'job': 'handover_only', 'stations': ['pick', 'assembly'], 'steps': [
        {'id': 'pick_part', 'actor': 'robot', 'kind': 'pick', 'station': 'pick', 'duration_s': 4.0},
        {'id': 'present_part', 'actor': 'both', 'kind': 'present', 'station': 'assembly', 'duration_s': 3.0,
         'after': ['pick_part']},
        {'id': 'assemble_part', 'actor': 'human', 'kind': 'assemble', 'station': 'assembly', 'duration_s': 10.0,
         'after': ['present_part']}]})
    configurations = run.cell.motions.configurations
    run.person = (1.25, 0.05)                          # at the station: takes the part, never acks the assembly
    targets = []
    for _ in range(int(30.0 / DT)):
        run.tick()
        run.arrive()
        targets.append(run.target)
        if run.cell.human_step is not None and run.cell.human_step[1] == 'present_part':
            run.record(run.cell.on_operator_done(run.t))
    assert run.cell.runner.state_of(0, 'present_part').value == 'done'
    assert run.cell.runner.upcoming('robot') is None
    assert any(t is not None and np.allclose(t, configurations[HANDOVER_POSE]) for t in targets)
    # The handover left the tool over the shared station; with nothing left to do the arm leaves it.
    assert np.allclose(targets[-1], configurations[PARK_POSE]) and np.allclose(run.q, configurations[PARK_POSE])


# The handover waits for the person's 10 s preparation; the arm has placed its part by then.
PLACE_THEN_HANDOVER = {'job': 'place_then_handover', 'stations': ['pick', 'place', 'assembly'], 'steps': [
    {'id': 'pick_part', 'actor': 'robot', 'kind': 'pick', 'station': 'pick', 'duration_s': 4.0},
    {'id': 'place_part', 'actor': 'robot', 'kind': 'place', 'station': 'place', 'duration_s': 4.0,
     'after': ['pick_part']},
    {'id': 'prepare', 'actor': 'human', 'kind': 'inspect', 'station': 'assembly', 'duration_s': 10.0},
    {'id': 'present_part', 'actor': 'both', 'kind': 'present', 'station': 'assembly', 'duration_s': 3.0,
     'after': ['place_part', 'prepare']}]}


@pytest.mark.parametrize('person, waits_at', [((1.25, 0.05), 'above_pick'),   # at the shared station
                                              ((0.9, -0.12), None)])           # also within reach of above_pick
def test_an_arm_with_no_step_now_waits_outside_the_shared_workspace_nearest_its_next_step(person, waits_at):
    """Placed, with the handover still waiting for the person, the arm does not idle across the cell:
    it waits at the pose outside the shared workspace nearest to the handover's first pose (above the
    pick station), unless that pose is within a tracked person's reach; then it stays where it is.
    Every pose of every step is still visited in order."""
    from smartcell.core.cell.controller import HANDOVER_POSE, inside_workspaces
    from smartcell.core.safety.pipeline import tool_tip_world
    run = _started_with(PLACE_THEN_HANDOVER)
    run.person = person
    targets, waits = [], []
    for _ in range(int(40.0 / DT)):
        sent = run.advance()
        if sent is not None:
            targets.append(sent)
            if run.cell.robot_step is None:
                waits.append(sent)
        shown = run.displays.get('operator/current_step') or {}
        if run.cell.human_step is not None and run.t >= shown.get('expected_end_s', math.inf):
            run.record(run.cell.on_operator_done(run.t))
    assert run.events('job_complete'), 'the job did not finish'
    step_poses = ['above_pick', 'pick', 'above_pick', 'above_place', 'place', 'above_place', 'above_assembly',
                  HANDOVER_POSE]
    if waits_at is None:
        assert not waits and _pose_names(run, targets) == step_poses
    else:
        assert _pose_names(run, waits) == [waits_at]
        assert _pose_names(run, targets) == step_poses[:6] + [waits_at] + step_poses[6:]
        tool_xy = tool_tip_world(run.cell.motions.configurations[waits_at], run.cell.safety.base)[:2]
        assert not inside_workspaces(tool_xy, run.cell.config.collaborative_regions_xyr)[0]


def test_a_step_that_comes_while_the_arm_moves_to_wait_still_begins_at_its_first_pose():
    """The arm is on its way to wait above the pick station when the handover is dispatched: that
    motion's arrival is not the handover's first pose; the arm goes above the station, then presents."""
    run = _started_with(PLACE_THEN_HANDOVER)
    run.person = (1.25, 0.05)
    configurations = run.cell.motions.configurations
    while not (run.target is not None and np.allclose(run.target, configurations['above_pick'])
               and run.cell.robot_step is None):
        run.tick()
        run.arrive()
        assert run.t < 30.0, 'the arm never went to wait above the pick station'
    while run.cell.robot_step is None:                 # on its way; the person finishes preparing
        run.tick(moving=True)
        if run.cell.human_step is not None:
            run.record(run.cell.on_operator_done(run.t))
        assert run.t < 40.0, 'the handover was never dispatched'
    assert run.cell.robot_step[1] == 'present_part'
    run.arrive()                                       # now at above_pick
    targets = [sent for sent in (run.advance() for _ in range(int(5.0 / DT))) if sent is not None]
    assert _pose_names(run, targets)[:2] == ['above_assembly', 'present']


def test_the_cell_plans_a_handover_with_the_arms_approach_and_a_robot_step_with_its_motions():
    """The person waits through the arm's approach into the handover pose, from where the arm waits
    for it (above the pick station, outside the shared workspace): the plan counts it. A robot step
    never lasts less than its own motions at the nominal speed; a longer recipe duration stands."""
    from smartcell.core.robot.motions import UR5E_JOINT_LIMITS, segment_plan
    from smartcell.core.tasks.recipe import recipe_from_dict
    document = {'job': 'quick', 'stations': ['pick', 'assembly'], 'steps': [
        {'id': 'pick_part', 'actor': 'robot', 'kind': 'pick', 'station': 'pick', 'duration_s': 0.1},
        {'id': 'present_part', 'actor': 'both', 'kind': 'present', 'station': 'assembly', 'duration_s': 3.0,
         'after': ['pick_part']},
        {'id': 'stow_part', 'actor': 'either', 'kind': 'place', 'station': 'pick',
         'duration_s': {'robot': 9.0, 'human': 6.0}, 'after': ['present_part']}]}
    cell = controller(collaborative_regions_xyr=[1.2, 0.0, 0.6], nominal_speed_fraction=0.5)
    cell._load_recipe_file = lambda job: recipe_from_dict(document)
    planned = cell.load_job('quick')
    q = cell.motions.configurations

    def seconds(*names: str) -> float:
        return sum(float(segment_plan(np.asarray(q[a]), np.asarray(q[b]), UR5E_JOINT_LIMITS, 0.5).times_s[0])
                   for a, b in zip(names, names[1:]))

    approach = seconds('above_pick', 'above_assembly', 'present')
    assert approach > 2.0
    assert planned.step('present_part').duration_s('both') == pytest.approx(3.0 + approach)
    assert planned.step('pick_part').duration_s('robot') == pytest.approx(seconds('above_pick', 'pick', 'above_pick'))
    assert planned.step('stow_part').durations_s == (('robot', 9.0), ('human', 6.0))
    assert cell.load_job('quick') is planned                       # timed once per job


def test_the_person_is_shown_their_own_work_at_a_handover_beside_its_planned_end():
    """The planned end of a handover holds the arm's approach; the person's own work is the recipe's."""
    run = started(job='job_demo', units=1, collaborative_regions_xyr=[1.2, 0.0, 0.6])
    run.person = (1.25, 0.05)
    for _ in range(int(20.0 / DT)):
        run.tick()
        run.arrive()
        if run.cell.human_step is not None:
            break
    shown = run.displays['operator/current_step']
    assert shown['step'] == 'present_part' and shown['work_s'] == 3.0            # config/job_demo.yaml
    assert shown['expected_end_s'] - shown['started_s'] > 3.0 + 2.0


def test_the_arm_holds_the_part_out_until_the_person_confirms_the_handover():
    from smartcell.core.cell.controller import HANDOVER_POSE
    run = started(job='job_demo', units=1, collaborative_regions_xyr=[1.2, 0.0, 0.6])
    run.person = (1.25, 0.05)                          # at the station, taking the part, not yet confirming
    for _ in range(int(15.0 / DT)):
        run.tick()
        run.arrive()
    assert run.cell.runner.state_of(0, 'present_part').value == 'active'
    assert np.allclose(run.target, run.cell.motions.configurations[HANDOVER_POSE])   # not parked away


def test_an_arm_with_no_step_outside_the_shared_workspace_waits_where_it_is():
    from smartcell.core.cell.controller import PARK_POSE
    run = started(job='job_gearbox', units=1, collaborative_regions_xyr=[1.2, 0.0, 0.6])
    for _ in range(int(60.0 / DT)):                     # nobody acknowledges: the robot runs out of steps
        run.tick()
        run.arrive()
    assert run.cell.runner.upcoming('robot') is not None
    at = [name for name, q in run.cell.motions.configurations.items() if np.allclose(run.q, q)]
    assert at and PARK_POSE not in at and not any('assembly' in name for name in at), at


def test_time_per_unit_is_measured_against_the_schedulers_plan():
    run = started(job='job_demo', units=2, collaborative_regions_xyr=[1.2, 0.0, 0.5])
    before = run.cell.kpi_values(run.t)
    assert before['time_per_unit_s'] is None and before['time_per_unit_reason'] == 'no unit completed yet'
    planned = before['planned_time_per_unit_s']
    assert isinstance(planned, float) and 10.0 < planned < 30.0        # 2 units of a ~22 s job, overlapped
    run.person = (1.25, 0.05)                                           # at the station: takes parts, acks
    for _ in range(int(120.0 / DT)):
        run.tick()
        run.arrive()
        if run.cell.human_step is not None:
            run.record(run.cell.on_operator_done(run.t))
        if run.cell.kpi_values(run.t)['units_completed'] == 2:
            break
    values = run.cell.kpi_values(run.t)
    assert values['units_completed'] == 2
    stamps = {e.type: e.stamp_s for o in run.outputs for e in o.events if e.type in ('job_started', 'unit_complete')}
    assert values['time_per_unit_s'] == pytest.approx((stamps['unit_complete'] - stamps['job_started']) / 2)
    assert values['time_per_unit_ratio'] == pytest.approx(values['time_per_unit_s'] / planned)


def test_the_plan_for_the_units_done_counts_each_batch_as_first_planned():
    # Two units per batch, three units: the third unit's plan is the second batch's, after the first
    # batch's span; not the first batch's span per unit (a batch fills and drains, so a unit of a batch
    # just begun is planned late in it too).
    run = started(job='job_demo', units=3, plan_horizon_units=2, collaborative_regions_xyr=[1.2, 0.0, 0.5])
    job = run.cell._job
    first_unit, first_batch = job.planned_time_for_units_s(1), job.planned_time_for_units_s(2)
    assert 0.0 < first_unit < first_batch and job.planned_s_per_unit == pytest.approx(first_batch / 2)
    run.person = (1.25, 0.05)
    seen = {}
    for _ in range(int(180.0 / DT)):
        run.tick()
        run.arrive()
        if run.cell.human_step is not None:
            run.record(run.cell.on_operator_done(run.t))
        values = run.cell.kpi_values(run.t)
        seen.setdefault(values['units_completed'], values)
        if values['units_completed'] == 3:
            break
    assert seen[1]['planned_time_per_unit_s'] == pytest.approx(first_unit)
    assert seen[2]['planned_time_per_unit_s'] == pytest.approx(first_batch / 2)
    third = job.planned_time_for_units_s(3) - first_batch      # the second batch as planned when it began
    assert 0.0 < third < first_batch
    assert seen[3]['planned_time_per_unit_s'] == pytest.approx((first_batch + third) / 3)
    assert seen[3]['planned_time_per_unit_s'] != pytest.approx(first_batch / 2)
    assert seen[3]['time_per_unit_ratio'] == pytest.approx(seen[3]['time_per_unit_s'] /
                                                           seen[3]['planned_time_per_unit_s'])


def test_a_motion_the_arm_aborted_on_a_clock_jump_is_planned_again_not_a_fault():
    run = started()
    motion = run.cell.last_motion
    assert motion
    output = run.cell.on_motion_result(motion, False, 'aborted: joint_states stamp jumped back by 83 s', run.t)
    assert run.cell.state is State.RUNNING and [e.type for e in output.events] == ['motion_aborted']
    run.tick()
    assert run.cell.last_motion != motion                      # re-planned from where the arm is
    refused = run.cell.on_motion_result(run.cell.last_motion, False, 'rejected: joint 2 beyond its limit', run.t)
    assert run.cell.state is State.FAULT and 'fault' in [e.type for e in refused.events]


def test_a_touch_within_its_limit_stops_the_arm_until_they_part_and_one_above_latches_an_emergency_stop():
    run = started()
    touch = [('person_0/forearm_hand_right on wrist_3_link', ('lower_arms_wrists', 'hands_fingers'), 60.0)]
    output = run.cell.on_contacts(touch, run.t)
    run.record(output)
    assert output.verdict.state is SafetyState.PROTECTIVE_STOP and output.verdict.speed_scale == 0.0
    assert 'touching a person' in output.verdict.reason and 'wrist_3_link (60 N)' in output.verdict.reason
    assert run.cell.state is State.PROTECTIVE_STOP
    for _ in range(15):                       # still touching: held
        run.tick()
        run.record(run.cell.on_contacts(touch, run.t))
        assert run.outputs[-1].verdict.speed_scale == 0.0
    run.run(3.0)                              # parted: back in service after hold and ramp, by itself
    assert run.cell.state is State.RUNNING and run.outputs[-1].verdict.speed_scale > 0.0
    output = run.cell.on_contacts([(touch[0][0], touch[0][1], 141.0)], run.t)     # hands: 140 N
    assert output.verdict.state is SafetyState.EMERGENCY_STOP
    run.run(3.0)
    assert run.cell.state is State.EMERGENCY_STOP
