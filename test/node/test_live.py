"""`smartcell live` over real DDS and a real WebSocket client: the foxglove-sdk server advertises the
cell's topics with their ros2msg definitions and forwards the CDR bytes DDS delivered; /clock becomes
the clients' time; latched topics reach a client that subscribes late."""
from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time

import pytest

rclpy = pytest.importorskip('rclpy')

from geometry_msgs.msg import Pose, PoseArray  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync import client as sync_client  # noqa: E402

from smartcell.nodes.common import LATCHED_QOS, STREAM_QOS  # noqa: E402

pytestmark = pytest.mark.ros
MESSAGE_DATA = 0x01          # Foxglove WebSocket binary opcode: uint32 subscription id, uint64 log time, payload
TIME = 0x02                  # Foxglove WebSocket binary opcode: uint64 server time, ns


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def live():
    port = free_port()
    process = subprocess.Popen([sys.executable, '-m', 'smartcell.cli', 'live', '--port', str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    yield process, port
    process.terminate()
    try:
        process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def connect(process, port: int, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise AssertionError(f'smartcell live exited:\n{process.communicate()[0]}')
        try:
            return sync_client.connect(f'ws://127.0.0.1:{port}', subprotocols=['foxglove.sdk.v1'], open_timeout=2)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)   # the server process is starting: poll its port (no DDS involved)


class FoxgloveClient:
    """A Foxglove WebSocket client driven step by step, spinning the ROS peer between frames."""

    def __init__(self, ws, peer) -> None:
        self.ws = ws
        self.peer = peer
        self.channels: dict[str, dict] = {}
        self.pending: dict[int, int] = {}            # channel id -> subscription id asked for
        self.times_ns: list[int] = []                # the server's time broadcasts

    def step(self, send=None):
        """Publish (optionally), spin the peer, read at most one frame: (subscription, payload) or None."""
        if send is not None:
            send()
        self.peer.executor.spin_once(timeout_sec=0.01)
        try:
            frame = self.ws.recv(timeout=0.1)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise AssertionError(f'server closed the connection: {exc}') from exc
        if isinstance(frame, str):
            message = json.loads(frame)
            if message['op'] == 'advertise':
                self.channels.update({c['topic']: c for c in message['channels']})
            elif message['op'] == 'status' and message['message'].startswith('Unknown channel ID: '):
                # foxglove-sdk 0.30 can answer a subscribe sent right after an advertise before it
                # knows the channel for this client (the Foxglove app subscribes later, from its
                # panels): ask again, as the app would when it reconnects a panel.
                channel_id = int(message['message'].rsplit(' ', 1)[1])
                self._send_subscribe({channel_id: self.pending[channel_id]})
            return None
        if frame[0] == TIME:
            self.times_ns.append(struct.unpack_from('<Q', frame, 1)[0])
            return None
        assert frame[0] == MESSAGE_DATA, frame[:1]
        subscription, _log_time_ns = struct.unpack_from('<IQ', frame, 1)
        return subscription, frame[13:]

    def wait(self, condition, what: str, send=None, timeout_s: float = 30.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = condition(self.step(send))
            if result:
                return result
        raise AssertionError(f'timed out after {timeout_s} s waiting for {what}; advertised: {sorted(self.channels)}')

    def subscribe(self, ids_by_topic: dict[str, int]) -> None:
        wanted = {self.channels[topic]['id']: sub for topic, sub in ids_by_topic.items()}
        self.pending.update(wanted)
        self._send_subscribe(wanted)

    def _send_subscribe(self, subscription_by_channel: dict[int, int]) -> None:
        self.ws.send(json.dumps({'op': 'subscribe', 'subscriptions': [
            {'id': sub, 'channelId': channel} for channel, sub in subscription_by_channel.items()]}))


def data_of(subscription: int, kind):
    return lambda got: deserialize_message(got[1], kind) if got and got[0] == subscription else None


def test_a_websocket_client_receives_the_cells_topics_as_ros2_cdr(peer, live):
    process, port = live
    state = peer.node.create_publisher(String, 'cell/state', LATCHED_QOS)
    humans = peer.node.create_publisher(PoseArray, 'humans', STREAM_QOS)
    state.publish(String(data='running'))

    def publish_people():
        msg = PoseArray()
        msg.header.frame_id = 'world'
        msg.header.stamp = peer.node.get_clock().now().to_msg()
        msg.poses.append(Pose())
        msg.poses[0].position.x = 1.25
        humans.publish(msg)

    with connect(process, port) as ws:
        client = FoxgloveClient(ws, peer)
        client.wait(lambda _: {'/cell/state', '/humans'} <= set(client.channels), 'advertisements',
                    send=publish_people)
        people = client.channels['/humans']
        assert (people['encoding'], people['schemaName'], people['schemaEncoding']) == \
            ('cdr', 'geometry_msgs/msg/PoseArray', 'ros2msg')
        assert 'MSG: geometry_msgs/Pose\n' in people['schema'] and 'MSG: std_msgs/Header\n' in people['schema']
        client.subscribe({'/cell/state': 1, '/humans': 2})
        assert client.wait(data_of(1, String), 'the latched cell/state').data == 'running'
        got_people = client.wait(data_of(2, PoseArray), 'humans', send=publish_people)
        assert got_people.header.frame_id == 'world' and got_people.poses[0].position.x == 1.25

    # /clock (simulated time) becomes the clients' time: Foxglove's clock follows the cell's stamps.
    clock = peer.node.create_publisher(Clock, '/clock', 10)
    simulated = Clock()
    simulated.clock.sec, simulated.clock.nanosec = 1234, 500
    with connect(process, port) as ws:
        timed = FoxgloveClient(ws, peer)
        timed.wait(lambda _: 1234 * 1_000_000_000 + 500 in timed.times_ns, 'the simulated time',
                   send=lambda: clock.publish(simulated))

    # A client that comes after the bridge forwarded the latched state still gets it, as a DDS late
    # joiner would: the bridge sends the last value again on subscription.
    with connect(process, port) as ws:
        late = FoxgloveClient(ws, peer)
        late.wait(lambda _: '/cell/state' in late.channels, 'advertisement to the late client')
        late.subscribe({'/cell/state': 5})
        assert late.wait(data_of(5, String), 'the latched cell/state for the late client').data == 'running'
    assert process.poll() is None
