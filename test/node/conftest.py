"""Node tests over real DDS: node executables in their own processes, this process as the peer."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import pytest

rclpy = pytest.importorskip('rclpy')

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
