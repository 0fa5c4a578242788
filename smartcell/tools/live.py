"""`smartcell live`: watch a running cell in Foxglove through the foxglove-sdk WebSocket server.

Every topic on the ROS graph (in this process's ROS_DOMAIN_ID) is bridged as it appears, as the
CDR bytes DDS delivered, with its full `ros2msg` definition as the channel schema: Foxglove (the
app or its web version, "Open connection" -> Foxglove WebSocket -> ws://HOST:PORT) decodes them
like a rosbag2 MCAP and shows the 3D scene from /tf, /tf_static, /robot_description, `scan`,
`humans` and `humans/markers`, plots of `speed_scale` and the verdicts, the diagnostics...

Transient-local topics (/tf_static, /robot_description, the latched cell state) are sent again to
each client that subscribes later, as a DDS late joiner would get them. When the cell publishes
/clock (simulation), the server's time capability gives the clients the simulated time.

    smartcell live [--host 127.0.0.1] [--port 8765] [--exclude /rosout ...]

`smartcell sim` runs each run in its own DDS domain: give it one with SMARTCELL_SIM_DOMAIN_ID and
start `smartcell live` with ROS_DOMAIN_ID set to the same number (README, TF, RViz and Foxglove).
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:      # foxglove-sdk loads when `smartcell live` starts, not at import
    from foxglove import Channel
    from foxglove.websocket import WebSocketServer

DEFAULT_EXCLUDE = ('/rosout', '/parameter_events')
DISCOVERY_PERIOD_S = 1.0
RESEND_DELAY_S = 0.1


def share_dirs() -> list[Path]:
    """<prefix>/share of every ament prefix: where the interface packages keep their .msg files."""
    prefixes = os.environ.get('AMENT_PREFIX_PATH', sys.prefix).split(os.pathsep)
    return [Path(p) / 'share' for p in prefixes if p]


def subscription_durability_is_latched(offers: list[str]) -> bool:
    """A topic is latched for the bridge when every publisher offers transient local (else a transient-
    local subscription would not connect to the volatile ones)."""
    return bool(offers) and all(offer == 'transient_local' for offer in offers)


class LiveBridge:
    """ROS topics -> foxglove channels; built on an rclpy node and a foxglove context (both injected)."""

    def __init__(self, node, context, exclude: tuple[str, ...] = DEFAULT_EXCLUDE) -> None:
        import foxglove
        from smartcell.core.recording.msgdef import DefinitionNotFound, full_text, msg_reader

        self._foxglove = foxglove
        self._node = node
        self._context = context
        self._exclude = set(exclude)
        self._read_msg = msg_reader(share_dirs())
        self._full_text = full_text
        self._not_found = DefinitionNotFound
        self.channels: dict[str, Channel] = {}         # topic -> foxglove channel
        self.skipped: dict[str, str] = {}              # topic -> why it is not bridged
        self._latched: dict[str, bytes] = {}           # topic -> last message, for late subscribers
        self._resend: dict[str, float] = {}           # topic -> monotonic s a client subscribed
        self._lock = threading.Lock()
        self.forwarded = 0
        self.server: WebSocketServer | None = None     # set once started: /clock -> the clients' clock

    def discover(self) -> None:
        """Bridge the topics that appeared on the graph since the last call."""
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        for topic, types in self._node.get_topic_names_and_types():
            if topic in self.channels or topic in self.skipped or topic in self._exclude:
                continue
            publishers = [info for info in self._node.get_publishers_info_by_topic(topic)
                          if info.node_name != self._node.get_name()]
            if not publishers:
                continue
            if len(types) != 1:
                self.skipped[topic] = f'{len(types)} types on the topic: {types}'
                continue
            type_name = types[0]
            try:
                definition = self._full_text(type_name, self._read_msg)
                message_type = _message_class(type_name)
            except (self._not_found, ValueError, ImportError, AttributeError) as exc:
                self.skipped[topic] = f'no definition for {type_name}: {exc}'
                self._node.get_logger().warning(f'not bridged: {topic}: {self.skipped[topic]}')
                continue
            offers = ['transient_local' if info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
                      else 'volatile' for info in publishers]
            latched = subscription_durability_is_latched(offers)
            qos = QoSProfile(depth=10 if latched else 50,
                             reliability=ReliabilityPolicy.RELIABLE if latched else ReliabilityPolicy.BEST_EFFORT,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
            schema = self._foxglove.Schema(name=type_name, encoding='ros2msg', data=definition.encode())
            channel = self._foxglove.Channel(topic, schema=schema, message_encoding='cdr', context=self._context)
            self.channels[topic] = channel
            self._node.create_subscription(message_type, topic, self._forwarder(topic, channel, latched), qos,
                                           raw=True)

    def _forwarder(self, topic: str, channel, latched: bool):
        def forward(data: bytes) -> None:
            if latched:
                with self._lock:
                    self._latched[topic] = data
            channel.log(data, log_time=time.time_ns())
            self.forwarded += 1
            if topic == '/clock' and self.server is not None:
                # Simulated time: Foxglove's clock follows the cell's (as foxglove_bridge with use_sim_time),
                # so its TF lookups and plots run on the stamps the cell puts in its messages.
                from rclpy.serialization import deserialize_message
                from rosgraph_msgs.msg import Clock
                clock = deserialize_message(data, Clock).clock
                self.server.broadcast_time(clock.sec * 1_000_000_000 + clock.nanosec)
        return forward

    def request_resend(self, topic: str) -> None:
        """A client subscribed (server thread): its copy of a latched topic goes out from the ROS thread."""
        with self._lock:
            self._resend.setdefault(topic, time.monotonic())

    def resend_latched(self) -> None:
        """Give the clients that subscribed at least RESEND_DELAY_S ago the last value of each latched
        topic (a DDS late joiner gets it). Not from the subscribe callback itself: foxglove-sdk calls
        it before the client's sink is registered, so a message logged there can be lost."""
        now = time.monotonic()
        with self._lock:
            due = [topic for topic, since in self._resend.items() if now - since >= RESEND_DELAY_S]
            for topic in due:
                del self._resend[topic]
            values = [(topic, self._latched[topic]) for topic in due if topic in self._latched]
        for topic, data in values:
            self.channels[topic].log(data, log_time=time.time_ns())


def _message_class(type_name: str):
    from importlib import import_module
    package, _, name = type_name.split('/')
    return getattr(import_module(f'{package}.msg'), name)


def _listener(bridge: LiveBridge):
    import foxglove

    class Listener(foxglove.ServerListener):
        def on_subscribe(self, client, channel) -> None:   # noqa: ARG002 - protocol signature
            bridge.request_resend(channel.topic)

    return Listener()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='smartcell live', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on (default 127.0.0.1: this '
                        'machine only; 0.0.0.0 exposes the cell to the network, unauthenticated)')
    parser.add_argument('--port', type=int, default=8765, help='WebSocket port (default 8765, Foxglove\'s)')
    parser.add_argument('--exclude', nargs='*', default=list(DEFAULT_EXCLUDE), help='topics not to bridge')
    args = parser.parse_args(argv)

    try:
        import foxglove
    except ImportError:
        print('smartcell live: foxglove-sdk is not installed (pip install -r requirements.txt)', file=sys.stderr)
        return 2
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init(args=[])
    node = rclpy.create_node('smartcell_live')
    context = foxglove.Context()
    bridge = LiveBridge(node, context, tuple(args.exclude))
    try:
        server = foxglove.start_server(name='smartcell', host=args.host, port=args.port, context=context,
                                       server_listener=_listener(bridge), capabilities=[foxglove.Capability.Time])
    except Exception as exc:  # noqa: BLE001 - the SDK raises its own types for a taken port / bad host
        print(f'smartcell live: cannot listen on {args.host}:{args.port}: {exc}', file=sys.stderr)
        node.destroy_node()
        rclpy.shutdown()
        return 1
    bridge.server = server
    print(f'smartcell live: Foxglove WebSocket on ws://{args.host}:{server.port} '
          f'(ROS_DOMAIN_ID={os.environ.get("ROS_DOMAIN_ID", "0")})', flush=True)
    node.create_timer(DISCOVERY_PERIOD_S, bridge.discover)
    node.create_timer(RESEND_DELAY_S, bridge.resend_latched)
    bridge.discover()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
