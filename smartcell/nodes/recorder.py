"""Recorder node: every topic of the cell into one rosbag2-compatible MCAP file."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
import os
import sys
import time
from datetime import datetime, timezone
from importlib import import_module
from pathlib import Path
from typing import Any

from rcl_interfaces.srv import GetParameters
from rclpy.node import Node
from rclpy.parameter import parameter_value_to_python
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future

from smartcell.core.node_params import RECORDER
from smartcell.core.params import ConfigError
from smartcell.core.recording.bag import RUN_METADATA, QosOffer, RecordingWriter, offered_qos_yaml
from smartcell.core.recording.msgdef import DefinitionNotFound, full_text, msg_reader, split_type
from smartcell.nodes.common import declare_config, guarded, run_node, steady_clock
from smartcell.topology import param_registry

QUIET_S = 0.1          # shutdown drain: this long without a message means nothing is in flight


@dataclass
class _Topic:
    type_name: str
    msg_type: type
    definition: str
    subscription: Any = None
    generation: int = 0
    retired: list = field(default_factory=list)
    reliable: bool = True
    latched: bool = False
    registered: bool = False        # its channel is in the file
    declared: bool = False          # in `topics`: its matching publishers are reported once
    matched: bool = False


class Recorder(Node):
    """Writes every topic of the ROS graph (except `exclude_topics`) to one MCAP file, as
    `ros2 bag record -a -s mcap` would: CDR bytes as received (raw subscriptions, nothing decoded),
    the full message definition per type, the publishers' offered QoS per channel.

    Subscribes: the `topics` declared (at start, reliable, before their publishers exist, so a run's
    first messages are recorded; subscribed again with less when a publisher offers less) and every
    other topic with a publisher, found by scanning the graph every `discovery_period_s`, with a QoS
    every publisher matches (reliable only if all offer it, transient local only if all offer it:
    latched values are recorded too); `queue_depth` history each.
    Publishes: nothing. Services: none.
    Writes: `output_file` (profile ros2, encoding cdr, schemas ros2msg, zstd chunks); log time = the
    node's clock at reception (sim time under use_sim_time); the parameters of `config_node` (fetched
    once through its get_parameters service) as metadata `smartcell`, for `smartcell replay`.
    Parameters: smartcell.core.node_params.RECORDER.
    """

    def __init__(self) -> None:
        super().__init__('recorder')
        self._cfg = declare_config(self, RECORDER)
        path = Path(self._cfg.output_file or default_output())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = open(path, 'wb')
        except OSError as exc:
            raise ConfigError(f'recorder.output_file: cannot write {path}: {exc}') from exc
        self.path = path
        self._writer = RecordingWriter(self._stream, str(self._cfg.compression))
        self._read_msg = msg_reader(share_dirs())
        self._excluded = {self.resolve_topic_name(t) for t in self._cfg.exclude_topics}
        self._recorded: dict[str, _Topic] = {}
        self._skipped: set[str] = set()
        self._last_message_wall = time.monotonic()
        config_node = str(self._cfg.config_node)
        self._config_names = [s.name for s in param_registry()[config_node].specs] if config_node in \
            param_registry() else []
        self._config_client = self.create_client(GetParameters, f'{config_node}/get_parameters') \
            if config_node else None
        self._config_future: Future | None = None
        for line in self._cfg.topics:
            topic, type_name, latched = parse_topic_entry(line)
            entry = self._declare(self.resolve_topic_name(topic), type_name)
            if entry is not None:       # subscribed before the publishers exist: nothing is missed
                entry.declared = True
                self._subscribe(self.resolve_topic_name(topic), entry, reliable=True, latched=latched)
        self.create_timer(float(self._cfg.discovery_period_s), guarded(self._discover, self._on_error),
                          clock=steady_clock())
        self.get_logger().info(f'recording to {path}')

    # -- subscriptions -------------------------------------------------------------------------------
    def _declare(self, topic: str, type_name: str) -> _Topic | None:
        """What recording `topic` needs (message class, definition), or None (logged once) when unknown."""
        try:
            package, short = split_type(type_name)
            msg_type = getattr(import_module(f'{package}.msg'), short)
            definition = full_text(type_name, self._read_msg)
        except (ValueError, ImportError, AttributeError, DefinitionNotFound) as exc:
            self._skipped.add(topic)
            self.get_logger().warning(f'not recording {topic} ({type_name}): {exc}')
            return None
        entry = _Topic(type_name, msg_type, definition)
        self._recorded[topic] = entry
        return entry

    def _subscribe(self, topic: str, entry: _Topic, reliable: bool, latched: bool) -> None:
        """A (new) subscription for `topic`. A replaced one is kept, muted, never destroyed: destroying it
        while the executor holds one of its events (the incompatible-QoS event that led here) kills the
        process; it is replaced at most twice (reliable, then transient local, are only ever dropped)."""
        if entry.subscription is not None:
            entry.retired.append(entry.subscription)
        entry.reliable, entry.latched = reliable, latched
        entry.generation += 1
        qos = QoSProfile(depth=int(self._cfg.queue_depth), history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
        entry.subscription = self.create_subscription(
            entry.msg_type, topic, guarded(lambda data, topic=topic, generation=entry.generation:
                                           self._on_message(topic, data, generation), self._on_error),
            qos, raw=True)

    def _discover(self) -> None:
        """New topics get a subscription with a QoS every publisher matches (rosbag2's adaptation);
        a declared topic whose publisher turns out best effort is subscribed again, best effort."""
        for topic, types in self.get_topic_names_and_types():
            if topic in self._excluded or topic in self._skipped:
                continue
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers:
                continue
            offers = [qos_offer(info.qos_profile) for info in publishers]
            reliable, latched = compatible_qos(offers)
            entry = self._recorded.get(topic)
            if entry is None:
                entry = self._declare(topic, types[0])
                if entry is None:
                    continue
                self._subscribe(topic, entry, reliable, latched)
            elif entry.type_name not in types:
                self._skipped.add(topic)
                self.get_logger().warning(f'{topic} is published as {types}, not the declared {entry.type_name}: '
                                          'not recorded')
                continue
            elif (entry.reliable and not reliable) or (entry.latched and not latched):
                self.get_logger().info(f'{topic}: a publisher offers less than declared, subscribing again '
                                       f'({"reliable" if reliable else "best effort"}, '
                                       f'{"transient local" if latched else "volatile"})')
                self._subscribe(topic, entry, entry.reliable and reliable, entry.latched and latched)
            if not entry.registered:
                self._register(topic, entry, offers)
            if entry.declared and not entry.matched and entry.subscription.get_publisher_count() >= len(publishers):
                # `smartcell sim --record` waits for this line before starting the twin
                entry.matched = True
                self.get_logger().info(f'matched {topic} ({len(publishers)} publisher(s))')
        self._fetch_config()

    def _register(self, topic: str, entry: _Topic, offers: list[QosOffer]) -> None:
        self._writer.add_topic(topic, entry.type_name, entry.definition, offered_qos_yaml(offers))
        entry.registered = True

    def _on_message(self, topic: str, data: bytes, generation: int) -> None:
        entry = self._recorded[topic]
        if generation != entry.generation:      # a replaced subscription: its messages come on the new one
            return
        if not entry.registered:       # data before the graph named its publisher: register with what is known
            self._register(topic, entry, [qos_offer(i.qos_profile) for i in self.get_publishers_info_by_topic(topic)])
        self._writer.write(topic, self.get_clock().now().nanoseconds, data)
        self._last_message_wall = time.monotonic()

    # -- the run's configuration, for replay -------------------------------------------------------------
    def _fetch_config(self) -> None:
        if self._config_client is None or not self._config_names:
            return
        if self._config_future is None:
            if self._config_client.service_is_ready():
                self._config_future = self._config_client.call_async(GetParameters.Request(names=self._config_names))
            return
        if not self._config_future.done():
            return
        response = self._config_future.result()
        self._config_client = None          # asked once; without them replay needs --config
        values = {name: parameter_value_to_python(value)
                  for name, value in zip(self._config_names, response.values, strict=True)}
        self._writer.add_metadata(RUN_METADATA, {
            'config_node': str(self._cfg.config_node), 'namespace': self.get_namespace(),
            'parameters': json.dumps(values, default=list)})
        self.get_logger().info(f'stored the parameters of {self._cfg.config_node} ({len(values)})')

    def _on_error(self, name: str, exc: BaseException) -> None:
        self.get_logger().error(f'internal error in {name}: {exc!r}')

    # -- end -----------------------------------------------------------------------------------------
    def on_shutdown(self) -> None:
        """Take what is still in the subscriptions' queues, then write the file's summary."""
        executor = self.executor
        deadline = time.monotonic() + float(self._cfg.drain_s)
        while executor is not None and time.monotonic() < deadline and \
                time.monotonic() - self._last_message_wall < QUIET_S:
            executor.spin_once(timeout_sec=QUIET_S / 2)
        self._writer.close()
        self._stream.close()
        counts = self._writer.counts
        self.get_logger().info(f'wrote {sum(counts.values())} messages on {len(counts)} topics to {self.path}')


def qos_offer(profile: QoSProfile) -> QosOffer:
    return QosOffer(history=int(profile.history), depth=int(profile.depth), reliability=int(profile.reliability),
                    durability=int(profile.durability), liveliness=int(profile.liveliness),
                    deadline_ns=profile.deadline.nanoseconds, lifespan_ns=profile.lifespan.nanoseconds,
                    liveliness_lease_ns=profile.liveliness_lease_duration.nanoseconds,
                    avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions))


def compatible_qos(offers: list[QosOffer]) -> tuple[bool, bool]:
    """(reliable, transient local) that every offer matches, as rosbag2 adapts its subscriptions:
    each only when all publishers offer it."""
    return (all(o.reliability == int(ReliabilityPolicy.RELIABLE) for o in offers),
            all(o.durability == int(DurabilityPolicy.TRANSIENT_LOCAL) for o in offers))


def parse_topic_entry(line: str) -> tuple[str, str, bool]:
    """'cell/state std_msgs/msg/String latched' -> (topic, type, latched); ConfigError otherwise."""
    parts = line.split()
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != 'latched'):
        raise ConfigError(f'recorder.topics entry {line!r}: expected "TOPIC pkg/msg/Type [latched]"')
    return parts[0], parts[1], len(parts) == 3


def share_dirs() -> list[Path]:
    """Where interface packages keep their .msg files: <prefix>/share of every ament prefix."""
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    return [Path(p) / 'share' for p in prefixes + [sys.prefix]]


def default_output() -> Path:
    home = Path(os.environ.get('ROS_HOME') or Path.home() / '.ros')
    return home / 'smartcell' / 'recordings' / datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S.mcap')


def main(args: list[str] | None = None) -> int:
    return run_node(Recorder, args)


if __name__ == '__main__':
    raise SystemExit(main())
