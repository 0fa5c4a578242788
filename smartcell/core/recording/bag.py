"""A rosbag2-compatible MCAP file: what `ros2 bag record -s mcap` writes, with our own writer.

Profile `ros2`, message encoding `cdr`, one schema per type (`ros2msg`, the full definition text of
smartcell.core.recording.msgdef), one channel per topic with the publishers' `offered_qos_profiles`
(rosbag2's version-8 YAML: enum values as integers, which its reader assumes when the file carries
no `rosbag2` metadata record) and chunks compressed with zstd (the rosbag2 `zstd_fast` preset).
Run information goes in a separate MCAP metadata record (`smartcell`), which rosbag2 ignores.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Mapping, Sequence

import yaml
from mcap.writer import CompressionType, Writer

PROFILE = 'ros2'
MESSAGE_ENCODING = 'cdr'
SCHEMA_ENCODING = 'ros2msg'
RUN_METADATA = 'smartcell'            # metadata record: the run's configuration, for replay
INFINITE_NS = 0x7FFFFFFFFFFFFFFF     # RMW_DURATION_INFINITE
COMPRESSION = {'zstd': CompressionType.ZSTD, 'lz4': CompressionType.LZ4, 'none': CompressionType.NONE}


@dataclass(frozen=True)
class QosOffer:
    """One publisher's offered QoS, with rmw's enum values (history 1 keep_last, reliability 1 reliable /
    2 best_effort, durability 1 transient_local / 2 volatile, liveliness 1 automatic)."""

    history: int
    depth: int
    reliability: int
    durability: int
    liveliness: int
    deadline_ns: int = INFINITE_NS
    lifespan_ns: int = INFINITE_NS
    liveliness_lease_ns: int = INFINITE_NS
    avoid_ros_namespace_conventions: bool = False


def _duration(ns: int) -> dict[str, int]:
    ns = min(max(int(ns), 0), INFINITE_NS)
    return {'sec': ns // 1_000_000_000, 'nsec': ns % 1_000_000_000}


def offered_qos_yaml(offers: Sequence[QosOffer]) -> str:
    """The channel's offered_qos_profiles value (rosbag2 metadata version 8)."""
    profiles = [{'history': o.history, 'depth': o.depth, 'reliability': o.reliability,
                 'durability': o.durability, 'deadline': _duration(o.deadline_ns),
                 'lifespan': _duration(o.lifespan_ns), 'liveliness': o.liveliness,
                 'liveliness_lease_duration': _duration(o.liveliness_lease_ns),
                 'avoid_ros_namespace_conventions': o.avoid_ros_namespace_conventions} for o in offers]
    return yaml.safe_dump(profiles, default_flow_style=False, sort_keys=False).strip() if profiles else ''


class RecordingWriter:
    """Writes one MCAP file; topics are added as they are discovered, messages as they arrive."""

    def __init__(self, stream: BinaryIO, compression: str = 'zstd', library: str = 'smartcell recorder') -> None:
        if compression not in COMPRESSION:
            raise ValueError(f'unknown compression {compression!r}; accepted: {", ".join(COMPRESSION)}')
        self._writer = Writer(stream, compression=COMPRESSION[compression])
        self._writer.start(profile=PROFILE, library=library)
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._sequence: dict[int, int] = {}
        self.counts: dict[str, int] = {}
        self._closed = False

    def add_topic(self, topic: str, type_name: str, definition: str, offered_qos: str) -> int:
        """The channel of `topic` (created once; a topic keeps its first type)."""
        if topic in self._channels:
            return self._channels[topic]
        if type_name not in self._schemas:
            self._schemas[type_name] = self._writer.register_schema(type_name, SCHEMA_ENCODING,
                                                                    definition.encode())
        channel = self._writer.register_channel(topic, MESSAGE_ENCODING, self._schemas[type_name],
                                                {'offered_qos_profiles': offered_qos})
        self._channels[topic] = channel
        self._sequence[channel] = 0
        self.counts[topic] = 0
        return channel

    def write(self, topic: str, log_time_ns: int, data: bytes, publish_time_ns: int | None = None) -> None:
        channel = self._channels[topic]
        self._sequence[channel] += 1
        self._writer.add_message(channel, log_time=int(log_time_ns), data=bytes(data),
                                 publish_time=int(log_time_ns if publish_time_ns is None else publish_time_ns),
                                 sequence=self._sequence[channel] & 0xFFFFFFFF)
        self.counts[topic] += 1

    def add_metadata(self, name: str, values: Mapping[str, str]) -> None:
        self._writer.add_metadata(name, {str(k): str(v) for k, v in values.items()})

    def close(self) -> None:
        """Write the summary (statistics, indexes); safe to call twice."""
        if not self._closed:
            self._closed = True
            self._writer.finish()
