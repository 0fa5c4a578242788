"""Node tests over real DDS: node executables in their own processes, this process as the peer."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')

from builtin_interfaces.msg import Duration  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from smartcell.core.node_params import ARM  # noqa: E402
from smartcell.core.robot.kinematics import JOINT_NAMES  # noqa: E402
from smartcell.core.safety.verdict import VERDICT_STATUS_NAME  # noqa: E402
from smartcell.nodes.common import LATCHED_QOS, STREAM_QOS  # noqa: E402
from smartcell.tools.cell_processes import CellProcesses  # noqa: E402


class RosPeer:
    """A node in the test process, spun only while waiting for a condition (never a fixed sleep)."""

    def __init__(self, context) -> None:
        from rclpy.executors import SingleThreadedExecutor
        self.context = context
        self.node = rclpy.create_node(f'test_peer_{os.getpid()}', context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def wait_for(self, condition: Callable[[], bool], timeout_s: float, what: str,
                 processes: CellProcesses | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if processes is not None and processes.failed():
                name = next(iter(processes.failed()))
                raise AssertionError(f'{name} exited while waiting for {what}:\n{processes.log_tail(name)}')
            if time.monotonic() > deadline:
                raise AssertionError(f'timed out after {timeout_s} s waiting for {what}')
            self.executor.spin_once(timeout_sec=0.02)

    def call(self, srv_type, name: str, timeout_s: float = 20.0, processes: CellProcesses | None = None):
        client = self.node.create_client(srv_type, name)
        self.wait_for(client.service_is_ready, timeout_s, f'service {name}', processes)
        future = client.call_async(srv_type.Request())
        self.wait_for(future.done, timeout_s, f'answer of {name}', processes)
        self.node.destroy_client(client)
        return future.result()


@pytest.fixture
def peer():
    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    ros_peer = RosPeer(context)
    yield ros_peer
    ros_peer.node.destroy_node()
    rclpy.shutdown(context=context)


@pytest.fixture
def processes(tmp_path: Path):
    procs = CellProcesses(tmp_path / 'logs', dict(os.environ))
    yield procs
    procs.stop()


# Where the arm's sim backend starts (its initial_positions_rad default, the cell's home): the fake twin
# starts there too, so the first echoed command is no jump.
HOME = list(ARM.by_name['initial_positions_rad'].default)


class FakeTwin:
    """Plays the twin: echoes the arm's commands back as measured joint states."""

    def __init__(self, peer, publish_verdicts: bool = True) -> None:
        node = peer.node
        self.peer = peer
        self.position = np.array(HOME)
        self.commands: list[JointState] = []
        self.results: list[DiagnosticStatus] = []
        self.mode = ''
        self.state_pub = node.create_publisher(JointState, 'twin/joint_states', STREAM_QOS)
        # Only when this process plays the supervisor: the arm refuses commands from any other
        # publisher, so a test with the real supervisor must not even advertise these topics.
        self.verdict_pub = node.create_publisher(DiagnosticArray, 'safety/verdict', STREAM_QOS) \
            if publish_verdicts else None
        self.trajectory_pub = node.create_publisher(JointTrajectory, 'arm/joint_trajectory', 10) \
            if publish_verdicts else None
        node.create_subscription(JointState, 'twin/joint_command', self._on_command, STREAM_QOS)
        node.create_subscription(DiagnosticStatus, 'arm/trajectory_result', self.results.append, 10)
        node.create_subscription(String, 'arm/mode', self._on_mode, LATCHED_QOS)
        self.scale = 1.0 if publish_verdicts else None
        node.create_timer(0.02, self._tick)

    def _on_command(self, msg: JointState) -> None:
        self.commands.append(msg)
        self.position = np.array(msg.position)

    def _on_mode(self, msg: String) -> None:
        self.mode = msg.data

    def _tick(self) -> None:
        now = self.peer.node.get_clock().now().to_msg()
        state = JointState(name=list(JOINT_NAMES), position=self.position.tolist(), velocity=[0.0] * 6)
        state.header.stamp = now
        self.state_pub.publish(state)
        if self.scale is not None:
            status = DiagnosticStatus(name=VERDICT_STATUS_NAME, values=[KeyValue(key='speed_scale',
                                                                                value=repr(self.scale))])
            verdict = DiagnosticArray(status=[status])
            verdict.header.stamp = now
            self.verdict_pub.publish(verdict)

    def send(self, trajectory_id: str, target: list[float], seconds: float) -> None:
        msg = JointTrajectory(joint_names=list(JOINT_NAMES))
        msg.header.frame_id = trajectory_id
        msg.points = [JointTrajectoryPoint(positions=target, time_from_start=Duration(
            sec=int(seconds), nanosec=int((seconds % 1) * 1e9)))]
        self.trajectory_pub.publish(msg)

    def result(self, trajectory_id: str) -> DiagnosticStatus | None:
        return next((r for r in self.results if r.name == trajectory_id), None)




@pytest.fixture
def fake_twin():
    """A factory: FakeTwin(peer) echoes the arm's commands back as measured joint states."""
    return FakeTwin
