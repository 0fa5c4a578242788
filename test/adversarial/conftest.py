"""The adversarial tier: a real cell (scanner, supervisor, arm processes over DDS) under attack.

Every probe runs against processes started exactly as the launch file starts them; this process
plays the twin (FakeTwin: it echoes the arm's joint commands back as measured joint states, so those
commands are the ground truth of the arm's motion) and the attacker. A probe is counted as

* `unsafe` when the arm moved while a person stood inside the protective zone (any commanded joint
  step above STILL_RAD after the cell had stopped for that person), or a refused input was silently
  accepted;
* `crash` when a cell process died or stopped answering;
* `handled` otherwise.

The counts are printed at the end of the run (and written to $SMARTCELL_ADVERSARIAL_REPORT as JSON
when that is set); README quotes them with the command.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from diagnostic_msgs.srv import AddDiagnostics  # noqa: E402
from geometry_msgs.msg import Pose, PoseArray  # noqa: E402
from sensor_msgs.msg import JointState, LaserScan, TimeReference  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from smartcell.core.cell.authorisation import signed_request, user_key  # noqa: E402
from smartcell.nodes.common import LATCHED_QOS, STREAM_QOS  # noqa: E402
from smartcell.tools.cell_processes import CellProcesses, node_command  # noqa: E402

from scan_helpers import legs_ranges, scan_msg  # noqa: E402

_spec = importlib.util.spec_from_file_location('smartcell_node_test_conftest',
                                               Path(__file__).resolve().parents[1] / 'node' / 'conftest.py')
_node = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_node)
RosPeer, FakeTwin = _node.RosPeer, _node.FakeTwin

# The probe modules import the harness by this name (pytest runs with --import-mode=importlib).
sys.modules.setdefault('smartcell_adversarial', sys.modules[__name__])

STILL_RAD = 1e-6          # a held arm repeats its position exactly; anything larger is motion
NEAR = (0.7, 0.0)         # world m: at the table edge, inside S_p and the protective zone
FAR = (4.0, 3.0)          # world m: outside the warning zone
PASSWORD = 'alice-secret'
RESULTS: Counter = Counter()
PROBES: list[dict] = []

def people_msg(node, positions, frame: str = 'world', stamp=None) -> PoseArray:
    msg = PoseArray()
    msg.header.stamp = stamp if stamp is not None else node.get_clock().now().to_msg()
    msg.header.frame_id = frame
    for x, y in positions:
        pose = Pose()
        pose.position.x, pose.position.y = float(x), float(y)
        pose.orientation.w = 1.0
        msg.poses.append(pose)
    return msg


class Unsafe(AssertionError):
    pass


class Crash(AssertionError):
    pass


class AdversarialCell:
    """Scanner (optional), supervisor and arm processes; the twin, the people and the attacker here.

    with_scanner: people come from the real scanner process, fed scans by a node named `twin`;
    without: a node of this process named `scanner` publishes `humans` itself (it passes the
    supervisor's graph check, so the content of people messages can be attacked).
    """

    def __init__(self, peer: RosPeer, processes: CellProcesses, work: Path, with_scanner: bool = True,
                 supervisor: dict | None = None, arm: dict | None = None) -> None:
        self.peer, self.processes, self.work = peer, processes, work
        self.with_scanner = with_scanner
        salt = os.urandom(16)
        self.key = user_key(PASSWORD, salt, 1000)
        (work / 'users.yaml').write_text(
            f"alice: {{password_hash: 'pbkdf2_sha256$1000${salt.hex()}${self.key.hex()}', role: operator}}\n")
        os.chmod(work / 'users.yaml', 0o600)
        self.supervisor_params = {
            'robot_base_xyz_yaw': [0.0, 0.0, 0.75, 0.0], 'warning_distance_m': 2.5, 'protective_distance_m': 0.6,
            'expected_people_publisher': 'scanner', 'operator_users_file': str(work / 'users.yaml'),
            'max_order_units': 100000, 'evidence_log': str(work / 'evidence.jsonl'),
            # This process plays the scanner on 2 loaded cores: its timer jitters by tens of ms, which the
            # product's 70 ms people timeout would (rightly) read as a silent scanner. A longer timeout
            # and the reaction time that covers it (a larger S_p) keep the probes about the attacks.
            'people_timeout_s': 0.25, 'reaction_time_s': 0.45, 'robot_state_timeout_s': 0.5, **(supervisor or {})}
        # Verdicts carry the people data's stamp, silence verdicts the present: a step back of up to
        # people_timeout_s is normal and must stay under the arm's clock-jump tolerance.
        self.arm_params = {'clock_jump_tolerance_s': 0.6, **(arm or {})}
        self.person: tuple[float, float] | None = FAR
        context = peer.context
        if with_scanner:
            processes.start('scanner', node_command('smartcell.nodes.scanner', 'scanner', None,
                                                    {'expected_scan_publisher': 'twin'}))
            self.source = rclpy.create_node('twin', context=context)
            self.scan_pub = self.source.create_publisher(LaserScan, 'scan', STREAM_QOS)
        else:
            self.source = rclpy.create_node('scanner', context=context)
            self.people_pub = self.source.create_publisher(PoseArray, 'humans', STREAM_QOS)
        peer.executor.add_node(self.source)
        self.source.create_timer(1 / 50, self._publish_people)
        self.start_supervisor()
        processes.start('arm', node_command('smartcell.nodes.arm', 'arm', None, self.arm_params))
        self.twin = FakeTwin(peer, publish_verdicts=False)
        node = peer.node
        self.truth: list[tuple[float, np.ndarray]] = []      # (monotonic s, commanded positions rad)
        node.create_subscription(JointState, 'twin/joint_command',
                                 lambda m: self.truth.append((time.monotonic(), np.array(m.position))), STREAM_QOS)
        self.state = ''
        self.applied: list[float] = []
        self.verdicts: list[DiagnosticArray] = []
        self.verdict_count = 0
        self.verdict_rx: list[float] = []
        self.trajectories: list[JointTrajectory] = []
        self.diagnostics: list = []
        self.events: list[dict] = []
        node.create_subscription(String, 'cell/state', lambda m: setattr(self, 'state', m.data), LATCHED_QOS)
        node.create_subscription(TimeReference, 'arm/speed_limit_applied',
                                 lambda m: self.applied.append(float(m.source)), STREAM_QOS)
        node.create_subscription(DiagnosticArray, 'safety/verdict', self._on_verdict, STREAM_QOS)
        node.create_subscription(JointTrajectory, 'arm/joint_trajectory', self.trajectories.append, 10)
        node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: self.diagnostics.extend(m.status), 50)
        node.create_subscription(String, 'cell/events', lambda m: self.events.append(json.loads(m.data)), 500)
        self.wait(lambda: self.state == 'idle' and len(self.twin.commands) > 3 and self.verdicts, 40, 'cell idle')

    def start_supervisor(self) -> None:
        self.processes.start('supervisor', node_command('smartcell.nodes.supervisor', 'supervisor', None,
                                                        self.supervisor_params))

    def _on_verdict(self, msg: DiagnosticArray) -> None:
        if msg.status and msg.status[0].hardware_id == '':
            return                  # this process's own spoofed verdicts (the supervisor names its cell)
        self.verdict_count += 1
        self.verdicts.append(msg)
        self.verdict_rx.append(time.monotonic())
        del self.verdicts[:-400], self.verdict_rx[:-400]

    def _publish_people(self) -> None:
        if self.person is None:
            return
        if self.with_scanner:
            # The scanner sits at the world origin, facing +x: a person at world (x, y) is at (x, y) in its frame.
            self.scan_pub.publish(scan_msg(self.source.get_clock().now().to_msg(), ranges=legs_ranges(*self.person)))
        else:
            self.people_pub.publish(people_msg(self.source, [self.person]))

    # -- waiting and calling ---------------------------------------------------------------------------
    def wait(self, condition, timeout_s: float, what: str) -> None:
        try:
            self.peer.wait_for(condition, timeout_s, what, self.processes)
        except AssertionError as exc:
            if self.processes.failed():
                raise Crash(str(exc)) from exc
            raise AssertionError(f'{exc}\n{self.situation()}') from None

    def situation(self) -> str:
        """What the cell looked like: for failure messages."""
        last = {kv.key: kv.value for kv in self.verdicts[-1].status[0].values} if self.verdicts else {}
        errors = sorted({f'{s.name}: {s.message[:160]}' for s in self.diagnostics[-60:]
                         if s.level in (1, 2, b'\x01', b'\x02')})
        changes = [f"{e.get('from')}->{e.get('to')}: {e.get('reason')}" for e in self.events
                   if e.get('type') == 'state_change'][-4:]
        errors = changes + errors
        return (f'cell {self.state!r}, arm {self.twin.mode!r}, applied {self.applied[-1:]}, person {self.person}, '
                f"verdict {last.get('state')} {last.get('speed_scale')} {last.get('reason')!r}\n  "
                + '\n  '.join(errors))

    def pace(self, seconds: float) -> None:
        """Keep the attack going for `seconds` (the executor spins: messages flow both ways)."""
        end = time.monotonic() + seconds
        self.wait(lambda: time.monotonic() >= end, seconds + 5, f'{seconds} s of attack')

    def call(self, name: str):
        return self.peer.call(Trigger, name, processes=self.processes)

    def operator(self, request: str, stamp_ns: int | None = None, raw: str | None = None):
        client = self.peer.node.create_client(AddDiagnostics, 'cell/operator_request')
        self.wait(client.service_is_ready, 20, 'cell/operator_request')
        message = raw if raw is not None else signed_request(
            self.key, 'alice', request, time.time_ns() if stamp_ns is None else stamp_ns)
        future = client.call_async(AddDiagnostics.Request(load_namespace=message))
        self.wait(future.done, 20, 'operator request answer')
        self.peer.node.destroy_client(client)
        return future.result(), message

    # -- the cell's situation ----------------------------------------------------------------------------
    def scale(self) -> float | None:
        return self.applied[-1] if self.applied else None

    def running_far(self) -> None:
        """A person far away, the cell running and the arm executing the cycle (from whatever state
        the previous probe left: reset a fault, an authorised reset of an emergency stop, start)."""
        self.person = FAR
        deadline = time.monotonic() + 60
        while self.state != 'running':
            if time.monotonic() > deadline:
                raise AssertionError(f'cell not running again after 60 s\n{self.situation()}')
            state = self.state
            if state == 'emergency_stop':
                self.operator('reset')
            elif state == 'fault':          # e.g. a replayed trajectory refused under the real motion's id
                self.call('cell/reset')
            elif state == 'paused':
                self.call('cell/resume')
            elif state == 'idle':
                answer = self.call('cell/start')
                if not answer.success and 'authorised operator' in answer.message:
                    self.operator('start')
            end = time.monotonic() + 10
            self.wait(lambda state=state, end=end: self.state != state or time.monotonic() > end, 15,
                      f'the cell leaving {state}')
        self.wait(lambda: self.twin.mode == 'executing' and (self.scale() or 0) > 0, 40, 'arm executing')

    def person_near(self) -> int:
        """Put the person at the table edge, wait for the cell to stop for them; returns the truth index
        from which the arm must not move."""
        self.person = NEAR
        self.wait(lambda: self.twin.mode in ('paused', 'idle', 'held'), 15, 'the arm stopped for the person')
        self.wait(lambda: self.state in ('protective_stop', 'idle', 'fault', 'emergency_stop'), 15, 'cell stopped')
        # The target scale is 0 at once; the arm decelerates along its path over ~0.25 s (category 2).
        self.wait(self.at_rest, 10, 'the arm at rest')
        return len(self.truth)

    def motion_since(self, index: int) -> float:
        """The largest joint step the arm commanded since truth[index], rad."""
        positions = [q for _, q in self.truth[max(index - 1, 0):]]
        if len(positions) < 2:
            return 0.0
        return float(np.max(np.abs(np.diff(np.array(positions), axis=0))))

    def at_rest(self) -> bool:
        return len(self.truth) > 10 and self.motion_since(len(self.truth) - 10) <= STILL_RAD

    def assert_still(self, index: int, what: str) -> None:
        step = self.motion_since(index)
        if step > STILL_RAD:
            raise Unsafe(f'{what}: the arm moved (joint step {step:.2e} rad) with a person in the protective zone')

    def assert_alive(self, what: str) -> None:
        if self.processes.failed():
            name = next(iter(self.processes.failed()))
            raise Crash(f'{what}: {name} died:\n{self.processes.log_tail(name)}')
        count = self.verdict_count
        try:
            self.wait(lambda: self.verdict_count > count + 2, 5, 'fresh verdicts')
        except AssertionError as exc:
            raise Crash(f'{what}: the supervisor stopped publishing verdicts') from exc
        count = len(self.twin.commands)
        self.wait(lambda: len(self.twin.commands) > count + 2, 5, 'fresh arm commands')

    def errors(self, text: str) -> list:
        return [s for s in self.diagnostics if s.level in (2, b'\x02') and text in s.message]


@contextmanager
def probe(cell: AdversarialCell, kind: str, name: str, count: int = 1, near: bool = True):
    """One probe (or `count` generated ones): the person near and the arm stopped first (near=True),
    then the attack inside the block; afterwards the arm must not have moved and every process
    must be alive and answering."""
    start = cell.person_near() if near else len(cell.truth)
    outcome = 'handled'
    try:
        yield start
        if near:
            cell.assert_still(start, name)
        cell.assert_alive(name)
    except Unsafe:
        outcome = 'unsafe'
        raise
    except Crash:
        outcome = 'crash'
        raise
    except BaseException:
        outcome = 'failed'
        raise
    finally:
        RESULTS[outcome] += count
        PROBES.append({'kind': kind, 'name': name, 'count': count, 'outcome': outcome})


def start_cell(request, tmp_path_factory, **options):
    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    peer = RosPeer(context)
    processes = CellProcesses(tmp_path_factory.mktemp('logs'), dict(os.environ))
    try:
        cell = AdversarialCell(peer, processes, tmp_path_factory.mktemp('cell'), **options)
    except BaseException:
        processes.stop()
        peer.node.destroy_node()
        rclpy.shutdown(context=context)
        raise

    def finish() -> None:
        processes.stop()
        peer.node.destroy_node()
        rclpy.shutdown(context=context)
    request.addfinalizer(finish)
    return cell


def pytest_terminal_summary(terminalreporter) -> None:
    if not PROBES:
        return
    total = sum(RESULTS.values())
    kinds = Counter()
    for entry in PROBES:
        kinds[entry['kind']] += entry['count']
    terminalreporter.write_sep('=', 'adversarial tier')
    terminalreporter.write_line(f"probes {total}: handled {RESULTS['handled']}, unsafe {RESULTS['unsafe']}, "
                                f"crashes {RESULTS['crash']}, other failures {RESULTS['failed']}")
    terminalreporter.write_line('by class: ' + ', '.join(f'{k} {v}' for k, v in sorted(kinds.items())))
    target = os.environ.get('SMARTCELL_ADVERSARIAL_REPORT')
    if target:
        Path(target).write_text(json.dumps({'probes': total, **RESULTS, 'by_class': kinds, 'detail': PROBES},
                                           indent=1))
