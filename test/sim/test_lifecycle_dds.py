"""The cell's lifecycle once over DDS, with the real-time twin (not lockstep) and the real processes.

The table test over the ROS-free controller (test/unit/test_cell_controller.py) covers every state and
request; this is the same sequence once through the real `cell/*` services, topics and processes (twin,
scanner, arm, supervisor from smartcell.topology, started with the installed cell file like `ros2 launch
... sim:=true`): a refused request, start, stop reaching IDLE at rest, start again and an abort during
the handover of the shipped demo job (the operator's mode restored, intent and step cleared), start,
emergency stop with the arm held, refused requests there, and the authorised reset back to IDLE.
The twin's person is the task-driven 'operator': it walks to the steps the supervisor shows.
"""
from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip('pybullet')
rclpy = pytest.importorskip('rclpy')

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from diagnostic_msgs.srv import AddDiagnostics  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from smartcell import interfaces  # noqa: E402
from smartcell.core.cell.authorisation import signed_request, user_key  # noqa: E402
from smartcell.core.robot.motions import ARRIVAL_TOLERANCE_RAD  # noqa: E402
from smartcell.core.safety.verdict import VERDICT_STATUS_NAME  # noqa: E402
from smartcell.nodes.common import qos_profile  # noqa: E402
from smartcell.share import share_file  # noqa: E402
from smartcell.tools.cell_processes import CellProcesses, node_command  # noqa: E402
from smartcell.topology import nodes_for  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.twin, pytest.mark.slow]

_spec = importlib.util.spec_from_file_location('smartcell_node_test_conftest',
                                               Path(__file__).resolve().parents[1] / 'node' / 'conftest.py')
_node_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_node_conftest)
RosPeer = _node_conftest.RosPeer

NODES = ('twin', 'scanner', 'arm', 'supervisor')     # the safety chain; the sensors, MES and HMI are not needed
# Not in smartcell.interfaces.SERVICES (yet): the signed-request service of the supervisor (its docstring).
OPERATOR_REQUEST = 'cell/operator_request'
USER, PASSWORD = 'alice', 'alice-secret'
STILL_RAD = 1e-6          # rad: a held arm repeats its position (PyBullet holds it to ~1e-15 rad)
HOLD_SAMPLES = 45         # twin/joint_states (30 Hz) watched while the arm must hold: 1.5 s of sim time
CELL_STATUS, SAFETY_STATUS = 'smartcell/supervisor/cell', 'smartcell/supervisor/safety'
OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


def level(status: DiagnosticStatus) -> int:
    """rclpy gives a byte field as bytes."""
    return status.level if isinstance(status.level, int) else ord(status.level)


def every_message(name: str):
    """The topic's QoS from the interface table, deep enough that no state in a quick succession is lost."""
    qos = qos_profile(interfaces.topic(name).publisher_qos)
    qos.depth = 100
    return qos


class Cell:
    """The four processes, and this process as the operator and the observer of the cell's topics."""

    def __init__(self, peer: RosPeer, processes: CellProcesses, work: Path) -> None:
        self.peer, self.processes = peer, processes
        salt = os.urandom(16)
        self.key = user_key(PASSWORD, salt, 1000)
        users = work / 'users.yaml'
        users.write_text(f"{USER}: {{password_hash: 'pbkdf2_sha256$1000${salt.hex()}${self.key.hex()}', "
                         'role: operator}\n')
        users.chmod(0o600)
        overrides: dict[str, dict[str, object]] = {
            # real time: the twin paced by the wall clock and publishing /clock, as `ros2 launch ... sim:=true`
            'twin': {'lockstep': False, 'real_time_factor': 1.0, 'scenario': 'operator', 'seed': 1},
            'supervisor': {'job': 'job_demo', 'units': 50, 'operator_users_file': str(users),
                           'evidence_log': str(work / 'evidence.jsonl'),
                           'order_store_file': str(work / 'orders.sqlite'),
                           'event_journal_file': str(work / 'events.sqlite')}}
        config = share_file('config', 'cell.yaml')
        self.cell_id = yaml.safe_load(config.read_text())['/**']['ros__parameters']['cell_id']
        for spec in nodes_for(sim=True, groups=('cell',)):
            if spec.name in NODES:
                processes.start(spec.name, node_command(spec.module, spec.name, config,
                                                        {**spec.sim_overrides, **overrides.get(spec.name, {})},
                                                        '', work / f'{spec.name}.overrides.yaml'))
        node = peer.node
        self.states: list[tuple[float, str]] = []            # (monotonic s, cell/state)
        self.verdicts: list[tuple[float, dict[str, str]]] = []
        self.joints: list[tuple[float, np.ndarray, np.ndarray]] = []     # (monotonic s, rad, rad/s)
        self.diagnostics: list[tuple[float, DiagnosticStatus]] = []
        self.displays: dict[str, dict] = {}
        self.events: list[dict] = []
        node.create_subscription(String, interfaces.topic('cell/state').name,
                                 lambda m: self.states.append((time.monotonic(), m.data)), every_message('cell/state'))
        node.create_subscription(DiagnosticArray, interfaces.topic('safety/verdict').name, self._on_verdict,
                                 every_message('safety/verdict'))
        node.create_subscription(JointState, interfaces.topic('twin/joint_states').name, self._on_joints,
                                 every_message('twin/joint_states'))
        node.create_subscription(DiagnosticArray, interfaces.topic('/diagnostics').name,
                                 lambda m: self.diagnostics.extend((time.monotonic(), s) for s in m.status),
                                 every_message('/diagnostics'))
        for name in ('robot/intent', 'operator/current_step'):
            node.create_subscription(String, interfaces.topic(name).name,
                                     lambda m, name=name: self.displays.__setitem__(name, json.loads(m.data)),
                                     every_message(name))
        node.create_subscription(String, interfaces.topic('cell/events').name,
                                 lambda m: self.events.append(json.loads(m.data)), every_message('cell/events'))
        self.wait(lambda: self.state == 'idle' and self.verdicts and len(self.joints) > 10, 60,
                  'the cell idle, verdicts and twin joint states flowing')

    # -- inputs ------------------------------------------------------------------------------------------
    def _on_verdict(self, msg: DiagnosticArray) -> None:
        status = next((s for s in msg.status if s.name == VERDICT_STATUS_NAME), None)
        if status is not None:
            self.verdicts.append((time.monotonic(), {kv.key: kv.value for kv in status.values}))

    def _on_joints(self, msg: JointState) -> None:
        self.joints.append((time.monotonic(), np.array(msg.position), np.array(msg.velocity)))

    # -- what the cell says --------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.states[-1][1] if self.states else ''

    def entered(self, state: str) -> float:
        """When this process received the latest switch to `state` (monotonic s)."""
        return next(t for t, s in reversed(self.states) if s == state)

    def supervisor_status(self, name: str, after_s: float) -> DiagnosticStatus | None:
        """The supervisor's newest `name` status received after `after_s`."""
        return next((s for t, s in reversed(self.diagnostics) if t > after_s and s.name == name), None)

    def verdicts_after(self, after_s: float) -> list[dict[str, str]]:
        return [v for t, v in self.verdicts if t > after_s]

    def assert_mode_settles(self, after_s: float, mode: str, what: str) -> None:
        """Verdicts after `after_s` reach `mode` and stay there. Verdicts judged before the state change
        can still be on their way (cell/state and safety/verdict are separate topics): at most a few."""
        self.wait(lambda: any(v['mode'] == mode for v in self.verdicts_after(after_s)), 5, f'{mode} after {what}')
        modes = [v['mode'] for v in self.verdicts_after(after_s)]
        first = modes.index(mode)
        self.wait(lambda: len(self.verdicts_after(after_s)) >= first + 30, 10, f'verdicts after {what}')
        modes = [v['mode'] for v in self.verdicts_after(after_s)]
        assert first <= 3 and set(modes[first:]) == {mode}, (what, modes)

    def joints_after(self, after_s: float) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(q, v) for t, q, v in self.joints if t > after_s]

    def moving(self) -> bool:
        return bool(self.joints) and float(np.max(np.abs(self.joints[-1][2]))) > 0.05

    def at_rest(self, samples: int = 10) -> bool:
        """The last `samples` twin joint states all below the controller's arrival speed."""
        recent = self.joints[-samples:]
        return len(recent) == samples and all(float(np.max(np.abs(v))) < ARRIVAL_TOLERANCE_RAD
                                              for _, _, v in recent)

    def situation(self) -> str:
        verdict = self.verdicts[-1][1] if self.verdicts else {}
        changes = [f"{e['from']}->{e['to']} ({e['reason']})" for e in self.events if e['type'] == 'state_change']
        return (f"cell {self.state!r}, verdict {verdict.get('mode')} {verdict.get('state')} "
                f"{verdict.get('reason')!r}, displays {self.displays}, transitions {changes[-6:]}")

    # -- waiting and asking ----------------------------------------------------------------------------------
    def wait(self, condition, timeout_s: float, what: str) -> None:
        try:
            self.peer.wait_for(condition, timeout_s, what, self.processes)
        except AssertionError as exc:
            raise AssertionError(f'{exc}\n{self.situation()}') from None

    def call(self, name: str) -> Trigger.Response:
        entry = next(s for s in interfaces.SERVICES if s.name == name)
        assert entry.type == 'std_srvs/srv/Trigger' and entry.server == 'supervisor', entry
        return self.peer.call(Trigger, entry.name, processes=self.processes)

    def operator(self, request: str) -> AddDiagnostics.Response:
        """A request signed by the authorised operator, as the operator station sends it."""
        client = self.peer.node.create_client(AddDiagnostics, OPERATOR_REQUEST)
        self.wait(client.service_is_ready, 20, OPERATOR_REQUEST)
        future = client.call_async(AddDiagnostics.Request(
            load_namespace=signed_request(self.key, USER, request, time.time_ns())))
        self.wait(future.done, 20, f'the answer to the signed {request}')
        self.peer.node.destroy_client(client)
        return future.result()

    # -- steps of the sequence ---------------------------------------------------------------------------------
    def start_running(self, signed: bool = False) -> None:
        answer = self.operator('start') if signed else self.call('cell/start')
        assert answer.success, answer.message
        assert answer.message.startswith('idle -> '), answer.message
        self.wait(lambda: self.state == 'running', 20, 'running')

    def stop_to_idle(self, what: str) -> float:
        """cell/stop, then IDLE only with the arm at rest; returns when IDLE was received."""
        requested = time.monotonic()
        answer = self.call('cell/stop')
        assert answer.success, answer.message
        assert answer.message.split(' -> ')[-1] in ('stopping', 'idle'), answer.message
        self.wait(lambda: self.states[-1][0] > requested and self.state == 'idle', 30, f'idle after {what}')
        idle_s = self.entered('idle')
        # The supervisor went IDLE on the arm's joint states: the twin's own, from then on, show it at rest.
        self.wait(lambda: len(self.joints_after(idle_s)) >= 10, 10, 'twin joint states after IDLE')
        after = self.joints_after(idle_s)[:10]
        speed = max(float(np.max(np.abs(v))) for _, v in after)
        spread = float(np.max(np.ptp(np.array([q for q, _ in after]), axis=0)))
        assert speed < ARRIVAL_TOLERANCE_RAD and spread < 10 * ARRIVAL_TOLERANCE_RAD, \
            f'{what}: IDLE while the arm still moved ({speed:.4f} rad/s, {spread:.4f} rad)'
        self.assert_supervisor_levels(idle_s, cell=(OK,), safety=(OK, WARN), message='idle')
        return idle_s

    def assert_supervisor_levels(self, after_s: float, cell: tuple[int, ...], safety: tuple[int, ...],
                                 message: str) -> None:
        """The supervisor's /diagnostics (1 Hz) after `after_s`: its cell status says `message` at a level
        in `cell`, its safety status is at a level in `safety`."""
        self.wait(lambda: self.supervisor_status(CELL_STATUS, after_s) is not None and
                  self.supervisor_status(SAFETY_STATUS, after_s) is not None, 10,
                  f'supervisor diagnostics after {message}')
        status = self.supervisor_status(CELL_STATUS, after_s)
        safety_status = self.supervisor_status(SAFETY_STATUS, after_s)
        assert status.message == message and level(status) in cell, (status.message, level(status))
        assert level(safety_status) in safety, (message, level(safety_status), safety_status.message)
        assert status.hardware_id == safety_status.hardware_id == self.cell_id


@pytest.fixture
def cell(tmp_path: Path):
    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    peer = RosPeer(context)
    processes = CellProcesses(tmp_path / 'logs', dict(os.environ))
    try:
        yield Cell(peer, processes, tmp_path)
    finally:
        failed = processes.stop()
        peer.node.destroy_node()
        rclpy.shutdown(context=context)
    assert not failed, {name: processes.log_tail(name) for name in failed}


def test_lifecycle_over_dds_with_the_real_time_twin(cell: Cell):
    # A request the state does not accept: refused with the state and the request named, nothing changes.
    refused = cell.call('cell/resume')
    assert not refused.success and 'RESUME' in refused.message and 'IDLE' in refused.message, refused.message
    assert cell.state == 'idle'

    # start -> RUNNING, the arm moving; stop -> IDLE only once the arm is at rest.
    cell.start_running()
    cell.wait(cell.moving, 20, 'the arm moving for the first step')
    cell.stop_to_idle('stop from RUNNING')

    # start again, up to the handover (robot and person at the shared station, the cell COLLABORATIVE),
    # and abort there: the operator's mode comes back, the robot's intent and the person's step clear.
    cell.start_running()
    cell.wait(lambda: cell.displays.get('robot/intent', {}).get('step') == 'present_part' and
              cell.displays.get('operator/current_step', {}).get('step') == 'present_part' and
              cell.verdicts[-1][1]['mode'] == 'collaborative', 60, 'the handover of the demo job')
    assert cell.displays['robot/intent']['handover'] is True
    idle_s = cell.stop_to_idle('an abort during the handover')
    cell.assert_mode_settles(idle_s, 'automatic', 'the abort')
    assert cell.displays['robot/intent'] == {} and cell.displays['operator/current_step'] == {}, cell.displays
    aborted = [e for e in cell.events if e['type'] == 'job_aborted']
    assert len(aborted) == 2 and aborted[-1]['produced'] == 0, aborted

    # start, then the emergency stop with the arm in motion: EMERGENCY_STOP, ERROR, the arm held.
    cell.start_running()
    cell.wait(cell.moving, 30, 'the arm moving again')
    answer = cell.call('cell/emergency_stop')
    assert answer.success, answer.message
    cell.wait(lambda: cell.state == 'emergency_stop', 10, 'emergency stop')
    estop_s = cell.entered('emergency_stop')
    cell.wait(cell.at_rest, 10, 'the arm at rest after the emergency stop')
    held_from = len(cell.joints)
    cell.assert_supervisor_levels(estop_s, cell=(ERROR,), safety=(ERROR,), message='emergency_stop')
    assert cell.verdicts[-1][1]['state'] == 'emergency_stop' and float(cell.verdicts[-1][1]['speed_scale']) == 0.0
    # Requests the state does not accept, or not from just anybody: refused with the reason.
    refused = cell.call('cell/start')
    assert not refused.success and 'START' in refused.message and 'EMERGENCY_STOP' in refused.message, \
        refused.message
    refused = cell.call('cell/reset')
    assert not refused.success and 'authorised operator' in refused.message, refused.message
    cell.wait(lambda: len(cell.joints) >= held_from + HOLD_SAMPLES, 10, 'twin joint states while held')
    held = np.array([q for _, q, _ in cell.joints[held_from - 1:]])
    assert float(np.max(np.ptp(held, axis=0))) < STILL_RAD, 'the arm moved during the emergency stop'
    assert cell.state == 'emergency_stop'

    # The authorised reset: back to IDLE, no longer ERROR, in the operator's mode, nothing displayed.
    answer = cell.operator('reset')
    assert answer.success, answer.message
    cell.wait(lambda: cell.state == 'idle', 10, 'idle after the reset')
    reset_s = cell.entered('idle')
    cell.assert_supervisor_levels(reset_s, cell=(OK,), safety=(OK, WARN), message='idle')
    cell.assert_mode_settles(reset_s, 'automatic', 'the reset')
    assert cell.displays['robot/intent'] == {} and cell.displays['operator/current_step'] == {}, cell.displays
